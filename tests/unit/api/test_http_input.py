"""HTTP input rules every dialect shares (api.common): the Content-Type a route reads (else 415),
U+0000 in a query parameter (400, before authentication); spear XML bodies in any declared
encoding; kazoo 401 bodies that never echo the token sent."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response

from switchboard.api import common
from switchboard.api.common import JSON_BODY, XML_BODY, DialectRoute, check_media_type, media_matches, media_type
from switchboard.api.kazoo import envelope as kazoo
from switchboard.api.spear import envelope as spear
from switchboard.domain.errors import Malformed, NotFound, Unauthenticated, Unsupported


# ---- Content-Type ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,media",
    [
        (None, ""),
        ("", ""),
        ("  ", ""),
        ("application/json", "application/json"),
        ("Application/JSON; charset=UTF-8", "application/json"),
        (" text/xml ;charset=latin-1", "text/xml"),
    ],
)
def test_media_type(value, media):
    assert media_type(value) == media


@pytest.mark.parametrize(
    "media,patterns,ok",
    [
        ("application/json", JSON_BODY, True),
        ("application/vnd.api+json", JSON_BODY, True),
        ("application/merge-patch+json", JSON_BODY, True),
        ("application/x-www-form-urlencoded", JSON_BODY, True),
        ("application/+json", JSON_BODY, False),  # `*` is at least one character
        ("application/jsonx", JSON_BODY, False),
        ("text/json", JSON_BODY, False),
        ("text/plain", JSON_BODY, False),
        ("application/xml", JSON_BODY, False),
        ("application/xml", XML_BODY, True),
        ("text/xml", XML_BODY, True),
        ("application/atom+xml", XML_BODY, True),
        ("image/svg+xml", XML_BODY, False),
        ("application/json+xml", XML_BODY, True),
    ],
)
def test_media_matches(media, patterns, ok):
    assert media_matches(media, patterns) is ok


def test_check_media_type():
    for value in (
        None,
        "",
        "application/json",
        "application/problem+json; charset=utf-8",
        "application/x-www-form-urlencoded",
    ):
        check_media_type(value, JSON_BODY)
    for value in ("text/plain", "image/png", "multipart/form-data; boundary=x", "garbage", "application/xml"):
        with pytest.raises(Unsupported, match="Content-Type"):
            check_media_type(value, JSON_BODY)
    with pytest.raises(Unsupported) as e:  # a header value is shown only when it is short and printable
        check_media_type("x/" + "y" * 200, JSON_BODY)
    assert "yyyy" not in str(e.value)


def request_with(body: bytes, content_type: str | None = None) -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type is not None else []
    sent = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return sent.pop(0)

    return Request({"type": "http", "method": "POST", "headers": headers, "query_string": b""}, receive)


def test_read_body_checks_the_content_type_of_a_body():
    read = common.read_body
    assert asyncio.run(read(request_with(b'{"a": 1}', "application/json"))) == b'{"a": 1}'
    assert asyncio.run(read(request_with(b'{"a": 1}'))) == b'{"a": 1}'  # none: the route's default
    assert asyncio.run(read(request_with(b"", "image/png"))) == b""  # no body, nothing to refuse
    with pytest.raises(Unsupported):
        asyncio.run(read(request_with(b'{"a": 1}', "text/plain")))
    assert asyncio.run(read(request_with(b"<a/>", "text/xml"), spear.BODY_TYPES)) == b"<a/>"
    with pytest.raises(Unsupported):
        asyncio.run(read(request_with(b"a=1", "application/x-www-form-urlencoded"), spear.BODY_TYPES))


def test_415_in_each_error_format():
    exc = Unsupported("Content-Type text/plain is not accepted here")
    assert common.error_status(exc) == (415, str(exc), {})  # jade, providers, probe
    r = spear.error_response(request_with(b""), exc)
    assert r.status_code == 415 and orjson.loads(r.body) == {"errors": [str(exc)]}
    status, message, data, _ = kazoo.render(exc)
    assert (status, message, data) == (415, "unsupported_media_type", {"message": str(exc)})


# ---- U+0000 in a query parameter -------------------------------------------------------------------
class _Dialect:
    name = "test"
    authenticated = 0

    async def authenticate(self, request, conn, services):
        _Dialect.authenticated += 1
        raise Unauthenticated("no")

    def error_response(self, request, exc):
        status = 400 if isinstance(exc, Malformed) else 401
        return Response(orjson.dumps({"error": str(exc)}), status)


class _Route(DialectRoute):
    dialect = _Dialect()


def _app() -> FastAPI:
    @asynccontextmanager
    async def transaction(write: bool):
        yield None

    app = FastAPI()
    app.state.services = SimpleNamespace(db=SimpleNamespace(transaction=transaction))
    app.router.route_class = _Route

    @app.get("/things")
    async def things(name: str | None = None):
        return {"name": name}

    return app


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://test") as c:
        return await c.get(url)


@pytest.mark.parametrize("query", ["name=%00", "name=a%00b", "na%00me=x", "x=1&y=%00", "%00"])
async def test_nul_in_a_query_parameter_is_400_before_authentication(query):
    _Dialect.authenticated = 0
    r = await get(f"/things?{query}")
    assert r.status_code == 400 and "U+0000" in r.json()["error"], r.text
    assert _Dialect.authenticated == 0


@pytest.mark.parametrize("query", ["name=x", "name=%2500", "name=%01", "name=%25%30%30"])
async def test_other_queries_reach_authentication(query):
    _Dialect.authenticated = 0
    assert (await get(f"/things?{query}")).status_code == 401
    assert _Dialect.authenticated == 1


# ---- spear XML encodings -----------------------------------------------------------------------
def endpoint(encoding: str, name: str, codec: str | None = None) -> bytes:
    text = f'<?xml version="1.0" encoding="{encoding}"?><endpoint><name>{name}</name></endpoint>'
    return text.encode(codec or encoding)


@pytest.mark.parametrize(
    "encoding,codec,name",
    [
        ("UTF-8", None, "caf\u00e9"),
        ("ISO-8859-1", "latin-1", "caf\u00e9"),
        ("iso-8859-15", None, "\u20ac"),
        ("windows-1252", "cp1252", "\u20ac"),
        ("KOI8-R", "koi8-r", "\u0434\u0430"),
        ("UTF-16", "utf-16", "caf\u00e9 \u65e5"),
        ("UTF-16BE", "utf-16-be", "caf\u00e9"),
        ("UTF-8", "utf-8-sig", "caf\u00e9"),
        ("Shift_JIS", "shift_jis", "\u65e5\u672c"),
        ("EUC-JP", "euc-jp", "\u65e5\u672c"),
        ("Big5", "big5", "\u4e2d\u6587"),
        ("GB18030", "gb18030", "\u4e2d\u6587"),
        ("EUC-KR", "euc-kr", "\ud55c"),
        ("UTF-32", "utf-32", "caf\u00e9 \U0001f600"),
    ],
)
def test_xml_in_a_known_encoding_parses(encoding, codec, name):
    assert spear.parse_body(endpoint(encoding, name, codec), "application/xml", "endpoint") == {"name": name}


@pytest.mark.parametrize(
    "body,says",
    [
        (endpoint("bogus", "x", "utf-8"), "unknown or unsupported encoding 'bogus'"),
        (endpoint("rot13", "x", "utf-8"), "unknown or unsupported encoding 'rot13'"),
        (endpoint("base64", "x", "utf-8"), "unknown or unsupported encoding"),
        (endpoint("mbcs", "x", "utf-8"), "unknown or unsupported encoding"),
        (endpoint("UTF-8", "caf\u00e9", "latin-1"), "not well-formed"),
        (endpoint("UTF-16", "x", "utf-8"), "encoding specified in XML declaration is incorrect"),
        (endpoint("ISO-8859-1", "x", "utf-16"), "malformed XML"),
        (b'<?xml version="1.0" encoding="Shift_JIS"?><endpoint><name>\x81\xff</name></endpoint>', "does not decode"),
        (endpoint("UTF-32", "x", "utf-8"), "does not decode"),
        (b"\xff\xfe\x00\x00<\x00\x00\x00?", "does not decode"),
        (endpoint("idna", "x", "utf-8"), "malformed XML"),
        (endpoint("punycode", "x", "utf-8"), "malformed XML"),
        (b'<?xml version="1.0" encoding=""?><endpoint/>', "malformed XML"),
        (b'<?xml version="1.0" encoding="\xe9"?><endpoint/>', "malformed XML"),
    ],
)
def test_xml_that_cannot_be_decoded_is_malformed(body, says):
    for ct in ("application/xml", "text/xml", ""):
        with pytest.raises(Malformed, match=says):
            spear.parse_body(body, ct, "endpoint")


def test_xml_is_chosen_by_the_media_type_only():
    doc = b"<endpoint><name>a</name></endpoint>"
    assert spear.parse_body(doc, "application/vnd.spear+xml; charset=utf-8", "endpoint") == {"name": "a"}
    assert spear.parse_body(doc, "", "endpoint") == {"name": "a"}
    with pytest.raises(Malformed, match="JSON"):
        spear.parse_body(doc, "application/json", "endpoint")


# ---- kazoo: a 401 never echoes a token ------------------------------------------------------------
def kazoo_request(token: str | None = None, checked: str | None = None) -> Request:
    headers = [(b"x-auth-token", token.encode())] if token else []
    r = Request({"type": "http", "method": "GET", "headers": headers, "query_string": b""})
    if checked:
        r.state.kazoo_token = checked
    return r


def test_kazoo_401_never_echoes_a_token():
    for req in (kazoo_request("sent-token"), kazoo_request("sent-token", checked="sent-token")):
        body = orjson.loads(kazoo.error_response(req, Unauthenticated("invalid or expired token")).body)
        assert body["auth_token"] == "" and body["error"] == "401", body
    body = orjson.loads(kazoo.error_response(kazoo_request("good", checked="good"), NotFound("cluster", "x")).body)
    assert body["auth_token"] == "good"
    body = orjson.loads(kazoo.respond(kazoo_request("good", checked="good"), {}).body)
    assert body["auth_token"] == "good" and body["status"] == "success"
