"""jade wire format.

Every response is `{"api_ver": "0.1", "statuscode": N, "timestamp": "<RFC 3339, ns>", "result"?}`
with HTTP status = statuscode; errors add `"error": {"code": N, "message": "..."}` (code is the
same number as statuscode: the spec names the key but never a value, so one number is the least
surprising choice). Lists are `result.list`, except where the spec's examples show a bare array
(`/me/buddies`, `/me/chats`, chat messages).

Request bodies are JSON, sent as `application/json`, `application/*+json`, with no Content-Type,
or as `application/x-www-form-urlencoded`: the spec's examples use `curl -d`, which sends that.
Any other Content-Type with a body is a 415 (a configuration file may also come as text/plain).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request, Response

from switchboard.api.common import error_status
from switchboard.domain.entities import rfc3339_ns
from switchboard.domain.errors import DomainError, Invalid

API_VER = "0.1"
JSON_TYPE = "application/json; charset=utf-8"


def ns_timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds, as jade writes it: 2018-05-22T13:24:14.979704248Z."""
    return rfc3339_ns(time.time_ns() if ns is None else ns)


def ts(value: datetime | int | None) -> str | None:
    """A stored instant (naive UTC datetime, or ns since the epoch) in jade's form; None stays null."""
    if value is None:
        return None
    if isinstance(value, int):
        return ns_timestamp(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def parse_timestamp(text: str) -> int:
    """jade's RFC 3339 timestamp (any fraction length, Z or offset) → ns since the epoch."""
    s = text.strip()
    frac_ns = 0
    try:
        if "." in s:
            head, _, rest = s.partition(".")
            digits = ""
            while rest and rest[0].isdigit():
                digits, rest = digits + rest[0], rest[1:]
            frac_ns = int((digits + "000000000")[:9]) if digits else 0
            s = head + rest
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Invalid("timestamp", "must be an RFC 3339 timestamp like 2018-03-30T08:30:02.364443446Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


def stamp(obj: Any) -> Any:
    """Render the `tm_*` instants of a result (datetimes or ns integers) in jade's form."""
    if isinstance(obj, list):
        return [stamp(x) for x in obj]
    if isinstance(obj, dict):
        return {k: (ts(v) if k.startswith("tm_") and not isinstance(v, str) else stamp(v)) for k, v in obj.items()}
    return obj


def respond(result: Any = None, status: int = 200, *, with_result: bool = True, stamped: bool = False) -> Response:
    """`stamped` True: the result's tm_* values are already strings (skips the walk)."""
    body: dict[str, Any] = {"api_ver": API_VER, "statuscode": status, "timestamp": ns_timestamp()}
    if with_result and result is not None:
        body["result"] = result if stamped else stamp(result)
    return Response(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), status, media_type=JSON_TYPE)


def ok() -> Response:
    """The bare `{$defhdr}` reply of writes."""
    return respond(None)


# where a kept list's bytes go in its envelope (never in orjson's output of the envelope's own values)
_SLOT = b"\x00list\x00"
_SLOT_FRAGMENT = orjson.Fragment(_SLOT)


def listing(items: list | bytes, *, stamped: bool = False) -> Response:
    """`{$defhdr, "result": {"list": items}}`. A kept JSON array (its bytes, as jade's endpoint list)
    is joined into the envelope's bytes, the same bytes orjson writes for it as an orjson.Fragment:
    serialising the envelope around it copied its ~250 KB two or three times more (orjson's growing
    buffer, then the bytes object), ~12 % of that list's CPU by py-spy."""
    if not isinstance(items, bytes):
        return respond({"list": items}, stamped=stamped)
    body = {"api_ver": API_VER, "statuscode": 200, "timestamp": ns_timestamp(), "result": {"list": _SLOT_FRAGMENT}}
    head, tail = orjson.dumps(body, option=orjson.OPT_SORT_KEYS).split(_SLOT)
    return Response(b"".join((head, items, tail)), 200, media_type=JSON_TYPE)


def error_response(request: Request, exc: DomainError) -> Response:
    status, message, headers = error_status(exc)
    body = {
        "api_ver": API_VER,
        "statuscode": status,
        "timestamp": ns_timestamp(),
        "error": {"code": status, "message": message},
    }
    return Response(orjson.dumps(body), status, headers=headers or None, media_type=JSON_TYPE)
