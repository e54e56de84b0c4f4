"""Pure parts of the kazoo model: PATCH merging, MDN normalisation, usage month ranges, routing
document validation and Gregorian timestamps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.domain.errors import Invalid
from switchboard.domain.kazoo import (
    CARRIER_SBC,
    CUSTOMER_CLUSTER,
    MEDIA_SERVER,
    KazooInvalid,
    gregorian,
    merge,
    month_range,
    normalize_mdn,
    validate_routing,
)


def test_merge_deep_and_shallow():
    base = {"ips": {"inbound": {"east": ["1"]}, "outbound": {"east": ["2"], "west": ["3"]}}, "name": "n", "x": 1}
    patch = {"ips": {"outbound": {"east": ["9"]}}, "x": None}
    assert merge(base, patch) == {
        "ips": {"inbound": {"east": ["1"]}, "outbound": {"east": ["9"], "west": ["3"]}},
        "name": "n",
    }
    assert merge(base, patch, deep=False) == {"ips": {"outbound": {"east": ["9"]}}, "name": "n"}
    assert base["x"] == 1 and base["ips"]["outbound"]["east"] == ["2"]  # the input is not changed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=10,
)


@given(
    st.dictionaries(st.text(max_size=3), json_values, max_size=5),
    st.dictionaries(st.text(max_size=3), json_values, max_size=5),
)
def test_merge_properties(base, patch):
    out = merge(base, patch)
    for k, v in patch.items():
        if v is None:
            assert k not in out
        elif not isinstance(v, dict):
            assert out[k] == v
    for k in base:
        if k not in patch:
            assert out[k] == base[k]
    assert merge(out, {}) == out


@pytest.mark.parametrize(
    ("given", "expect"),
    [
        ("+15550001111", "+15550001111"),
        ("5550001111", "+15550001111"),
        ("15550001111", "+15550001111"),
        ("(555) 000-1111", "+15550001111"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_normalize_mdn(given, expect):
    assert normalize_mdn(given) == expect


@pytest.mark.parametrize("bad", ["", "abc", "+1", "+1234567890123456", 5550001111, None, "555-ABC-1111"])
def test_normalize_mdn_refuses(bad):
    with pytest.raises(Invalid):
        normalize_mdn(bad)


def test_month_range():
    assert month_range("201611", "201702", None) == ["201611", "201612", "201701", "201702"]
    assert month_range("201611", "201702", "201701") == ["201701"]  # month overrides
    assert len(month_range(None, None, None)) == 1
    for args in (
        ("201613", None, None),
        ("2016-11", None, None),
        ("201702", "201701", None),
        ("200001", "201001", None),
    ):
        with pytest.raises(KazooInvalid):
            month_range(*args)


def test_validate_routing_documents():
    validate_routing(CUSTOMER_CLUSTER, {"name": "c", "ips": {"inbound": {"east": ["10.0.0.1", "::1"]}}})
    with pytest.raises(KazooInvalid) as e:
        validate_routing(CUSTOMER_CLUSTER, {"ips": {"inbound": {"east": ["10.0.0.300"]}}, "randomize_routing": 1})
    fields = {f for f, _, _ in e.value.rules}
    assert fields == {"name", "ips.inbound.east.0", "randomize_routing"}
    validate_routing(
        CARRIER_SBC,
        {"name": "s", "number_formatting": {"a": {"to_number": {"pattern": "/^(\\d+)$/", "replace": "$1"}}}},
    )
    with pytest.raises(KazooInvalid) as e:
        validate_routing(
            CARRIER_SBC,
            {
                "name": "s",
                "call_directions": [{"headers": {"h": 1}}],
                "number_formatting": {"a": {"to_number": {"pattern": "/([/"}}},
            },
        )
    assert {f for f, _, _ in e.value.rules} == {
        "call_directions.0.direction",
        "call_directions.0.headers.h",
        "number_formatting.a.to_number.pattern",
    }
    with pytest.raises(KazooInvalid):
        validate_routing(MEDIA_SERVER, {"name": "m", "carrier_sbc_priority": {"sprint": "x"}, "top_ips": ["x"]})


def test_gregorian_seconds():
    assert gregorian(0) == 62167219200
    assert gregorian(1_500_000_000) == 63_667_219_200


def test_device_usage_policy_checks():
    from switchboard.domain.kazoo import KazooService
    from switchboard.domain.security import SecretBox

    svc = KazooService(SecretBox(SecretBox.generate_key()))
    svc.check_device_input({"data": {"caps": {"blocking": {"cap": 0}, "throttling": {"cap": 10, "rate": "256k"}}}})
    with pytest.raises(KazooInvalid) as e:
        svc.check_device_input({"data": {"blocking": {"cap": -1}, "throttling": {"cap": "x", "rate": "fast"}}})
    assert {f for f, _, _ in e.value.rules} == {"data.blocking.cap", "data.throttling.cap", "data.throttling.rate"}
