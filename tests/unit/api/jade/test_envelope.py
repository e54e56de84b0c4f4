"""The jade wire format: envelopes, nanosecond timestamps, error mapping, body parsing."""

from __future__ import annotations

import re
from datetime import datetime

import orjson
import pytest

from switchboard.api.common import HttpStatus, parse_json_object
from switchboard.api.jade import envelope as env
from switchboard.api.jade.me import _message_of
from switchboard.domain.errors import Conflict, Forbidden, Invalid, Malformed, NotFound, Unauthenticated

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def test_ns_timestamp_form():
    assert env.ns_timestamp(1_526_995_454_979_704_248) == "2018-05-22T13:24:14.979704248Z"
    assert TS.match(env.ns_timestamp())


def test_stored_instants_render_with_nine_digits():
    assert env.ts(datetime(2018, 4, 28, 5, 3, 36, 560694)) == "2018-04-28T05:03:36.560694000Z"
    assert env.ts(None) is None
    assert env.stamp({"tm_update": None, "tm_create": 0, "room": {"tm_create": 1}, "name": "x"}) == {
        "tm_update": None,
        "tm_create": "1970-01-01T00:00:00.000000000Z",
        "room": {"tm_create": "1970-01-01T00:00:00.000000001Z"},
        "name": "x",
    }


@pytest.mark.parametrize(
    "text, ns",
    [
        ("2018-03-30T08:30:02.364443446Z", 1_522_398_602_364_443_446),
        ("2018-03-30T08:30:02Z", 1_522_398_602_000_000_000),
        ("2018-03-30T08:30:02.5+00:00", 1_522_398_602_500_000_000),
        ("2018-03-30T10:30:02.1+02:00", 1_522_398_602_100_000_000),
    ],
)
def test_parse_timestamp(text, ns):
    assert env.parse_timestamp(text) == ns


@pytest.mark.parametrize("bad", ["yesterday", "2018-13-01T00:00:00Z", "", "2018-03-30T08:30:02.Z"[:-3] + "x"])
def test_parse_timestamp_rejects(bad):
    with pytest.raises(Invalid):
        env.parse_timestamp(bad)


def test_respond_envelope():
    body = orjson.loads(env.respond({"list": []}).body)
    assert set(body) == {"api_ver", "statuscode", "timestamp", "result"}
    assert body["api_ver"] == "0.1" and body["statuscode"] == 200 and TS.match(body["timestamp"])
    assert set(orjson.loads(env.ok().body)) == {"api_ver", "statuscode", "timestamp"}


@pytest.mark.parametrize(
    "exc, status",
    [
        (Invalid("name", "can't be blank"), 400),
        (Malformed("bad json"), 400),
        (Unauthenticated("no"), 401),
        (Forbidden("no"), 403),
        (NotFound("chat", "x"), 404),
        (Conflict("name", "taken"), 409),
        (HttpStatus(405, "Method Not Allowed"), 405),
        (RuntimeError("boom"), 500),
    ],
)
def test_errors_carry_status_in_body_and_http(exc, status):
    resp = env.error_response(None, exc)
    body = orjson.loads(resp.body)
    assert resp.status_code == status == body["statuscode"] == body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "boom" not in body["error"]["message"]


def test_bodies():
    assert parse_json_object(b'{"a": 1}') == {"a": 1}
    assert parse_json_object(b"", required=False) == {}
    for bad in (b"{", b"[1]", b"", b"\xff"):
        with pytest.raises(Malformed):
            parse_json_object(bad)


def test_chat_message_forms():
    assert _message_of(b'{"message": "hi"}') == {"message": "hi"}
    assert _message_of(b'"hi"') == {"message": "hi"}
    assert _message_of(b'{"test message"}') == {"message": "test message"}  # the spec's own example
    for bad in (b"", b"{", b"[]", b"{}", b"42"):
        with pytest.raises(Malformed):
            _message_of(bad)


def test_a_kept_array_is_joined_into_the_bytes_orjson_writes(monkeypatch):
    """listing(bytes of a JSON array) gives exactly the bytes of the envelope serialised around it."""
    monkeypatch.setattr(env, "ns_timestamp", lambda ns=None: "2020-01-01T00:00:00.000000000Z")
    array = orjson.dumps([{"b": 1, "a": "x\u00e9\\"}, {"z": None}], option=orjson.OPT_SORT_KEYS)
    joined = env.listing(array)
    whole = env.respond({"list": orjson.Fragment(array)}, stamped=True)
    assert joined.body == whole.body and joined.status_code == 200
    assert joined.headers["content-type"] == whole.headers["content-type"]
    assert orjson.loads(joined.body)["result"]["list"][0] == {"a": "x\u00e9\\", "b": 1}
    assert env.listing(b"[]").body == env.respond({"list": []}).body
