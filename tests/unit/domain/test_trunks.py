"""The trunk model's validation (pure): required fields, types, ranges, defaults, partial merge."""

from __future__ import annotations

import pytest

from switchboard.domain.errors import Invalid
from switchboard.domain.trunks import MASK, validate_trunk

IP_TRUNK = {"name": "carrier-a", "auth_mode": "IP_AUTH", "protocol": "UDP", "hostname": "192.0.2.10", "port": 5060}
REG_TRUNK = {
    "name": "carrier-b",
    "auth_mode": "REGISTER_AUTH",
    "protocol": "TCP",
    "hostname": "sip.example.com",
    "port": 5060,
    "auth_id": "1001",
    "password": "s3cret",
}


def problems(data, base=None) -> dict:
    with pytest.raises(Invalid) as e:
        validate_trunk(data, base)
    return dict(e.value.problems)


def test_defaults_of_an_ip_trunk():
    v = validate_trunk(IP_TRUNK)
    assert v == {
        **IP_TRUNK,
        "require_register": False,
        "auth_id": "",
        "password": "",
        "outbound_server": "",
        "outbound_server_port": 0,
        "reregister_interval": 3600,
        "ips": ["192.0.2.10"],
        "in_parameters": [],
        "out_parameters": [],
        "provider_in_lan": False,
        "single_via_header": False,
    }


def test_defaults_of_a_register_trunk():
    v = validate_trunk(REG_TRUNK)
    assert v["require_register"] is True and v["ips"] == [] and v["auth_id"] == "1001" and v["password"] == "s3cret"


def test_enums_any_case_stored_upper_and_status_ignored():
    v = validate_trunk({**IP_TRUNK, "auth_mode": "ip_auth", "protocol": "tcp", "status": "ONLINE", "id": 7})
    assert v["auth_mode"] == "IP_AUTH" and v["protocol"] == "TCP" and "status" not in v and "id" not in v


@pytest.mark.parametrize("field", ["name", "auth_mode", "protocol", "hostname", "port"])
def test_required_fields(field):
    data = {k: v for k, v in IP_TRUNK.items() if k != field}
    assert problems(data)[field] == "can't be blank"
    assert field in problems({**IP_TRUNK, field: None})  # null is "not given"


@pytest.mark.parametrize("field", ["auth_id", "password"])
def test_register_auth_needs_credentials(field):
    assert problems({**REG_TRUNK, field: ""})[field] == "can't be blank"
    assert field in problems({k: v for k, v in REG_TRUNK.items() if k != field})


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("port", 0, "must be between 1 and 65535"),
        ("port", 65536, "must be between 1 and 65535"),
        ("port", "5060", "must be an integer"),
        ("port", True, "must be an integer"),
        ("port", 5060.0, "must be an integer"),
        ("outbound_server_port", 70000, "must be 0 or between 1 and 65535"),
        ("outbound_server_port", -1, "must be 0 or between 1 and 65535"),
        ("reregister_interval", 29, "must be between 30 and 86400"),
        ("reregister_interval", 86401, "must be between 30 and 86400"),
        ("auth_mode", "DIGEST", "must be one of: IP_AUTH, REGISTER_AUTH"),
        ("protocol", "TLS", "must be one of: UDP, TCP"),
        ("protocol", 1, "must be a string"),
        ("require_register", "true", "must be true or false"),
        ("provider_in_lan", 1, "must be true or false"),
        ("single_via_header", "no", "must be true or false"),
        ("hostname", "bad host", "is not a valid IP address or host name"),
        ("hostname", "999.1.1.1", "is not a valid IP address or host name"),
        ("outbound_server", "exa_mple.com", "is not a valid IP address or host name"),
        ("name", "   ", "can't be blank"),
        ("name", "x" * 256, "is too long (maximum is 255 characters)"),
        ("name", "a[b]", "must not contain [ or ]"),
        ("name", "a\nb", "must not contain control characters"),
        ("name", 5, "must be a string"),
        ("auth_id", "a b", "must not contain whitespace"),
        ("ips", "192.0.2.1", "must be an array"),
        ("ips", ["192.0.2.1", "host.example.com"], "must contain only IPv4 or IPv6 addresses"),
        ("ips", [1], "must contain only IPv4 or IPv6 addresses"),
        ("in_parameters", [1, 2], "must contain only JSON objects"),
        ("out_parameters", {"a": 1}, "must be an array"),
    ],
)
def test_field_rules(field, value, reason):
    assert problems({**IP_TRUNK, field: value})[field] == reason


def test_every_problem_reported_together():
    assert set(problems({"port": "x", "protocol": "SCTP"})) == {"name", "auth_mode", "protocol", "hostname", "port"}


def test_ips_normalised_and_deduplicated_parameters_kept():
    params = [{"name": "x-foo", "value": "1"}, {"nested": {"a": [1, 2]}}]
    v = validate_trunk(
        {
            **IP_TRUNK,
            "ips": ["2001:DB8::0:1", "2001:db8::1", "198.51.100.7"],
            "in_parameters": params,
            "outbound_server": "proxy.example.net",
            "outbound_server_port": 5070,
        }
    )
    assert v["ips"] == ["2001:db8::1", "198.51.100.7"] and v["in_parameters"] == params
    assert v["outbound_server"] == "proxy.example.net" and v["outbound_server_port"] == 5070
    assert validate_trunk({**IP_TRUNK, "hostname": "sip.example.com"})["ips"] == []


def test_mask_refused_on_create():
    assert "password" in problems({**REG_TRUNK, "password": MASK})


def test_partial_update_merges_and_validates_the_result():
    base = validate_trunk(IP_TRUNK)
    v = validate_trunk({"port": 5080, "name": None}, base)
    assert v == {**base, "port": 5080}
    # switching to REGISTER_AUTH needs credentials, given now or stored before
    assert set(problems({"auth_mode": "REGISTER_AUTH"}, base)) == {"auth_id", "password"}
    v = validate_trunk({"auth_mode": "REGISTER_AUTH", "auth_id": "u1", "password": "p"}, base)
    assert v["auth_mode"] == "REGISTER_AUTH" and v["require_register"] is False  # stored value kept
    assert problems({"port": 0}, base) == {"port": "must be between 1 and 65535"}


def test_not_an_object():
    with pytest.raises(Invalid):
        validate_trunk(["name"])  # type: ignore[arg-type]
