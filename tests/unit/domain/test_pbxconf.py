"""The configuration service's rules: validation per file as Invalid, secrets masked and restored, cfg option values
(the text rules themselves are tested in tests/unit/asterisk/)."""

from __future__ import annotations

import pytest

from switchboard.asterisk import conf
from switchboard.asterisk.conf import section_data
from switchboard.domain.errors import Invalid
from switchboard.domain.pbxconf import (
    DEFAULTS,
    data_options,
    mask_secrets,
    restore_secrets,
    validate_text,
)


@pytest.mark.parametrize("family", ["dialplan", "pjsip", "queue", "park"])
def test_defaults_are_valid(family):
    validate_text(family, DEFAULTS[family])


@pytest.mark.parametrize(
    "family, text",
    [
        ("queue", "[q]\nstrategy = sometimes\n"),
        ("queue", "[q]\nmember => nobody\n"),
        ("queue", "[q]\nmember => PJSIP/a,high\n"),
        ("queue", "[q]\nmaxlen = -1\n"),
        ("park", "[lot]\nparkpos => 720-701\n"),
        ("park", "[lot]\nparkpos => 701\n"),
        ("park", "[lot]\nparkingtime => soon\n"),
        ("park", "[lot]\nfindslot => last\n"),
        ("pjsip", "[a]\ntype=endpoint\nauth=missing\n"),
        ("dialplan", "[c]\nexten => 1,n,NoOp()\n"),
        ("dialplan", "[c]\ninclude => nowhere\n"),
        ("queue", "key = outside a section\n"),
    ],
)
def test_invalid_files_are_refused_with_the_reason(family, text):
    with pytest.raises(Invalid) as e:
        validate_text(family, text)
    assert e.value.field == "data" and "invalid" in str(e.value)


def test_queue_and_parking_files_that_load():
    validate_text(
        "queue",
        "[sales_1]\nstrategy = rrmemory\nservicelevel = 5\nmember => PJSIP/a,0,Agent A\nmember => Agent/10001\n",
    )
    validate_text("park", "[general]\n[edvina]\nparkpos => 800-850\nfindslot => next\ncomebackdialtime = 90\n")


def test_secrets_are_masked_and_restored():
    old = "[a]\ntype=auth\npassword = s3cr\\;et ; note\nusername=a\n\n[a]\ntype=aor\n[b]\ntype=auth\nmd5_cred=abc\n"
    shown = mask_secrets(old)
    assert "s3cr" not in shown and "abc" not in shown and shown.count("********") == 2
    assert "; note" in shown
    assert restore_secrets(shown, old) == old
    edited = shown.replace("username=a", "username=alice")
    assert restore_secrets(edited, old) == old.replace("username=a", "username=alice")
    with pytest.raises(Invalid):
        restore_secrets(shown + "[c]\ntype=auth\npassword=********\n", old)
    assert mask_secrets("[a]\npassword =\n") == "[a]\npassword =\n"  # nothing to hide


def test_cfg_values_read_and_write_as_jade_shows_them():
    cf = conf.parse("[edvina]\ncontext => edvina_park\ncomebacktoorigin = no\nmember => A/1\nmember => A/2\n")
    assert section_data(cf, "edvina") == {
        "context": "> edvina_park",
        "comebacktoorigin": "no",
        "member": ["> A/1", "> A/2"],
    }
    assert data_options({"context": "> edvina_park", "comebackdialtime": "90", "member": ["> A/1", "A/2"]}) == [
        ("context", "=>", "edvina_park"),
        ("comebackdialtime", "=", "90"),
        ("member", "=>", "A/1"),
        ("member", "=", "A/2"),
    ]
    for bad in ([], {"k": {"nested": 1}}, {"k": True}, {"k": None}):
        with pytest.raises(Invalid):
            data_options(bad)
