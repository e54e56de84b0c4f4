"""The four files' text rules (asterisk.files, asterisk.queues, asterisk.parking) and the option value rules of
asterisk.conf, without the configuration service: errors are ConfError / PjsipError, not domain errors."""

from __future__ import annotations

import pytest

from switchboard.asterisk import conf, parking, queues
from switchboard.asterisk.conf import ConfError, int_value, option_value, section_data
from switchboard.asterisk.dialplan import Dialplan
from switchboard.asterisk.files import FILES, load, pjsip_sections
from switchboard.asterisk.parking import parse_parkpos
from switchboard.asterisk.pjsip import PjsipConfig, PjsipError


def test_each_family_loads_its_model():
    assert set(FILES) == {"dialplan", "pjsip", "queue", "park", "agent"}
    assert isinstance(load("dialplan", "[c]\nexten => 1,1,NoOp()\n"), Dialplan)
    assert isinstance(load("pjsip", "[a]\ntype=aor\n"), PjsipConfig)
    assert isinstance(load("queue", "[q]\nstrategy = linear\n"), conf.ConfFile)
    assert isinstance(load("park", "[lot]\nparkpos => 701-702\n"), conf.ConfFile)
    assert isinstance(load("agent", "[1001]\nackcall = yes\n"), conf.ConfFile)


@pytest.mark.parametrize(
    "family, text, error",
    [
        ("queue", "[q]\nstrategy = sometimes\n", "unknown strategy"),
        ("queue", "[q]\nmember => nobody\n", "TECH/resource"),
        ("queue", "[q]\nmember => PJSIP/a,high\n", "member penalty"),
        ("park", "[lot]\nparkpos => 720-701\n", "after its end"),
        ("park", "[lot]\nfindslot => last\n", "findslot"),
        ("pjsip", "[t](!)\ntype=aor\n[a](t,missing)\n", "unknown template"),
    ],
)
def test_rules_raise_conf_errors(family, text, error):
    with pytest.raises((ConfError, PjsipError), match=error):
        load(family, text)


def test_pjsip_templates_apply_per_section():
    cf = conf.parse(
        "[t](!)\nmax_contacts = 2\n[a](t)\ntype = aor\n[a]\ntype = auth\nusername = a\nallow = x\nallow = y\n"
    )
    assert pjsip_sections(cf) == [
        ("a", {"max_contacts": "2", "type": "aor"}, {"max_contacts": ["2"], "type": ["aor"]}),
        (
            "a",
            {"type": "auth", "username": "a", "allow": "y"},
            {"type": ["auth"], "username": ["a"], "allow": ["x", "y"]},
        ),
    ]


def test_option_values():
    assert option_value("> edvina_park") == "edvina_park"
    assert option_value("  plain ") == "plain"
    assert int_value(" 45 ", "x") == 45
    with pytest.raises(ConfError, match="x must be an integer >= 1"):
        int_value("0", "x", minimum=1)
    assert parse_parkpos("701-750", "lot") == (701, 750)
    with pytest.raises(ConfError, match="range"):
        parse_parkpos("701", "lot")
    cf = conf.parse("[q]\nmember => A/1\nmember = A/2\nstrategy = linear\n")
    assert section_data(cf, "q") == {"member": ["> A/1", "A/2"], "strategy": "linear"}
    queues.check(cf)
    parking.check(conf.parse("[general]\n[lot]\nparkingtime => 45\n"))
