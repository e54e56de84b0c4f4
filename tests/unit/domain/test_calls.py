"""Originate requests (domain/calls.py): what is accepted, the defaults, every problem reported."""

from __future__ import annotations

import pytest

from switchboard.domain.calls import OriginateRequest, parse_caller_id, parse_originate
from switchboard.domain.errors import Invalid, NotFound

ENDPOINTS, TRUNKS = {"100", "alice"}, {"carrier"}


def parse(**data) -> OriginateRequest:
    return parse_originate(data, endpoint_exists=ENDPOINTS.__contains__, trunk_exists=TRUNKS.__contains__)


def problems(**data) -> dict:
    with pytest.raises(Invalid) as e:
        parse(**data)
    return dict(e.value.problems)


def test_endpoint_with_defaults():
    r = parse(endpoint="PJSIP/100", context="internal", exten="200")
    assert (r.resource, r.number) == ("100", None)
    assert r.arguments() == {
        "endpoint": "PJSIP/100",
        "context": "internal",
        "exten": "200",
        "priority": 1,
        "caller_id": "",
        "timeout": 30,
        "variables": {},
    }


def test_number_through_a_trunk_and_every_field():
    r = parse(
        endpoint="pjsip/0123456@carrier",
        context="out",
        exten="s",
        priority=2,
        caller_id='"Front desk" <555>',
        timeout=45,
        variables={"FOO": "bar", "N": 3},
    )
    assert (r.endpoint, r.resource, r.number) == ("PJSIP/0123456@carrier", "carrier", "0123456")
    assert (r.priority, r.caller_id, r.timeout, r.variables) == (2, '"Front desk" <555>', 45, {"FOO": "bar", "N": "3"})
    # a number through a pjsip.conf endpoint (Asterisk's PJSIP/number@endpoint)
    assert parse(endpoint="PJSIP/99@alice", context="c", exten="s").resource == "alice"


def test_unknown_endpoint_or_trunk_is_not_found():
    with pytest.raises(NotFound, match="endpoint nobody"):
        parse(endpoint="PJSIP/nobody", context="c", exten="s")
    with pytest.raises(NotFound, match="trunk nowhere"):
        parse(endpoint="PJSIP/123@nowhere", context="c", exten="s")


def test_every_problem_is_reported():
    assert set(problems()) == {"endpoint", "context", "exten"}
    got = problems(
        endpoint="SIP/100", context="a b", exten="", priority="1", caller_id=5, timeout=0, variables={"a b": "x"}
    )
    assert set(got) == {"endpoint", "context", "exten", "priority", "caller_id", "timeout", "variables"}
    for bad in ("PJSIP/", "PJSIP/1@", "PJSIP/1@a@b", "100", "", " "):
        assert "endpoint" in problems(endpoint=bad, context="c", exten="s"), bad
    assert "priority" in problems(endpoint="PJSIP/100", context="c", exten="s", priority=True)
    assert "timeout" in problems(endpoint="PJSIP/100", context="c", exten="s", timeout=601)
    assert "variables" in problems(endpoint="PJSIP/100", context="c", exten="s", variables=[])
    assert "variables" in problems(endpoint="PJSIP/100", context="c", exten="s", variables={"X": None})
    assert "caller_id" in problems(endpoint="PJSIP/100", context="c", exten="s", caller_id="bad <")


def test_caller_id_forms():
    assert parse_caller_id("Alice <100>") == ("Alice", "100")
    assert parse_caller_id('"Alice Smith" <100>') == ("Alice Smith", "100")
    assert parse_caller_id("<100>") == ("", "100")
    assert parse_caller_id("100") == ("", "100")
