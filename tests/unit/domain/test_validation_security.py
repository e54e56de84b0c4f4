"""Host validation, secrets at rest, tokens."""

from __future__ import annotations

import pytest

from switchboard.domain import security
from switchboard.domain.validation import is_host


@pytest.mark.parametrize(
    "value,ok",
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("2001:db8::5", True),
        ("sip.example.com", True),
        ("localhost", True),
        ("999.1.1.1", False),
        ("bad host", False),
        ("-x.com", False),
        ("a" * 64 + ".com", False),
        ("", False),
        ("exa_mple.com", False),
        ("example.com.", True),
    ],
)
def test_is_host(value, ok):
    assert is_host(value) is ok


def test_secret_box_round_trip_and_key_file(tmp_path):
    box = security.SecretBox.from_settings(None, tmp_path)
    key_file = tmp_path / "secret.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    ct = box.encrypt("sip-secret")
    assert "sip-secret" not in ct and box.decrypt(ct) == "sip-secret"
    again = security.SecretBox.from_settings(None, tmp_path)  # same key on the next start
    assert again.decrypt(ct) == "sip-secret"
    other = security.SecretBox(security.SecretBox.generate_key())
    with pytest.raises(ValueError):
        other.decrypt(ct)
    assert box.mac("a", "b") != box.mac("a\0b") or box.mac("a", "b") != other.mac("a", "b")


def test_passwords_and_tokens():
    h = security.hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert security.verify_password(h, "correct horse")
    assert not security.verify_password(h, "wrong")
    assert not security.verify_password(None, "anything")
    assert not security.verify_password("not-a-hash", "x")
    t1, t2 = security.new_token(), security.new_token("uuid")
    assert len(t1) >= 40 and len(t2) == 36 and t1 != security.new_token()
    assert security.token_digest(t1) != t1 and len(security.token_digest(t1)) == 64
