"""sip/headers.py: Via, tags, name-addr, Contact (the registrar's helpers, same behaviour)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.sip.headers import (
    contact_uri_and_params,
    name_addr,
    params,
    parse_via,
    split_contacts,
    tag,
    top_via,
    uri_params,
    uri_user,
    via_params,
    with_received,
)
from switchboard.sip.message import Message, ParseError


def test_parse_via():
    assert parse_via("SIP/2.0/UDP h:5060;rport;branch=z9hG4bKa ") == ("UDP", "h:5060", "z9hG4bKa")
    assert parse_via("SIP/2.0/udp H : 5060 ;BRANCH=z9hG4bKb;branch=x") == ("UDP", "h:5060", "z9hG4bKb")
    assert parse_via("SIP / 2.0 / TCP h (comment);branch=z9hG4bKc").branch == "z9hG4bKc"
    assert parse_via("SIP/2.0/UDP h;received=192.0.2.1").branch == ""
    assert parse_via("SIP/2.0/UDP h;branch=z9hG4bKd").sent_by == "h"
    with pytest.raises(ParseError):
        parse_via("nonsense")
    with pytest.raises(ParseError):
        top_via(Message(method="OPTIONS", uri="sip:x"))
    assert via_params("SIP/2.0/UDP h;rport=5;Received=1.2.3.4") == {"rport": "5", "received": "1.2.3.4"}


def test_tags_and_params():
    assert tag('"A" <sip:a@h;tag=no>;tag=yes') == "yes"
    assert tag("<sip:a@h;tag=no>") == ""
    assert tag("sip:a@h;tag=x;foo") == "x"
    assert tag(None) == "" and tag("") == ""
    assert params(";A=1;b;a=2") == {"a": "1", "b": ""}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"Bob" <sip:bob@h;transport=tcp>;tag=x', ("Bob", "sip:bob@h;transport=tcp", {"tag": "x"})),
        ("sip:bob@h;tag=x", ("", "sip:bob@h", {"tag": "x"})),
        ('"a \\"q\\"" <sips:b@h>', ('a "q"', "sips:b@h", {})),
        ("Bob <sip:b@h>;expires=60;Q=0.5", ("Bob", "sip:b@h", {"expires": "60", "q": "0.5"})),
        ("<sip:r@p;lr>", ("", "sip:r@p;lr", {})),
    ],
)
def test_name_addr(value, expected):
    assert tuple(name_addr(value)) == expected


def test_uri_params():
    assert uri_params("sip:r@p;lr;transport=TCP?h=1") == {"lr": "", "transport": "TCP"}
    assert uri_params("sip:r@p") == {}


# --- Contact and To helpers (the registrar's and trunk registration's) ------------------------------------


def test_split_contacts():
    assert split_contacts(["<sip:a@h>;q=1, <sip:b@h>"]) == ["<sip:a@h>;q=1", "<sip:b@h>"]
    assert split_contacts(['"x, y" <sip:a@h;p=1,2>, sip:b@h', " *"]) == ['"x, y" <sip:a@h;p=1,2>', "sip:b@h", "*"]
    assert split_contacts(["", " , "]) == []


def test_contact_uri_and_params():
    assert contact_uri_and_params('"Name" <sip:u@h;transport=tcp>;expires=60;q=0.5') == (
        "sip:u@h;transport=tcp",
        {"expires": "60", "q": "0.5"},
    )
    assert contact_uri_and_params("sip:u@h;expires=30") == ("sip:u@h", {"expires": "30"})
    assert contact_uri_and_params("<sip:u@h") == ("sip:u@h", {})
    assert contact_uri_and_params('<sip:u@h>;+sip.instance="<urn:x>"') == ("sip:u@h", {"+sip.instance": "<urn:x>"})


def test_uri_user():
    assert uri_user("<sips:Alice@h>") == "Alice"
    assert uri_user("sip:h") is None and uri_user(None) is None


_contact = st.from_regex(
    r'(("[a-z ,]{0,6}" )?<sip:[a-z]{1,5}@[a-z]{1,5}(;[a-z]{1,3}=[a-z0-9,]{1,3})?>'
    r"|sip:[a-z]{1,5}@h)(;expires=[0-9]{1,3})?",
    fullmatch=True,
)


@given(st.lists(_contact, min_size=1, max_size=4))
def test_split_contacts_round_trip(contacts):
    assert split_contacts([", ".join(contacts)]) == contacts


# --- Via received / rport ----------------------------------------------------------------------------------


def _req(via: str) -> Message:
    return Message(method="OPTIONS", uri="sip:x", headers=[("Via", via), ("CSeq", "1 OPTIONS")])


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        (
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5070;received=192.0.2.7",
        ),
        (
            "SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP 10.0.0.1;rport=5070;branch=z9hG4bK1;received=192.0.2.7",
        ),
        ("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=192.0.2.7"),
        ("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1", "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1"),
    ],
)
def test_with_received(via, expected):
    req = _req(via)
    assert with_received(req, "192.0.2.7", 5070) == expected
    assert req.get("Via") == expected


def test_with_received_only_touches_the_top_via():
    req = Message(
        method="OPTIONS",
        uri="sip:x",
        headers=[("Via", "SIP/2.0/UDP a;branch=z9hG4bK1;rport"), ("Via", "SIP/2.0/UDP b;branch=z9hG4bK2;rport")],
    )
    with_received(req, "192.0.2.7", 1)
    assert req.get_all("Via")[1] == "SIP/2.0/UDP b;branch=z9hG4bK2;rport"
    assert with_received(Message(method="OPTIONS", uri="sip:x"), "h", 1) is None
