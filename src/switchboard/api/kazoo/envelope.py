"""KAZOO wire format.

Success: `{"auth_token", "data", ...extra keys the spec shows (carrier, account_id)..., "request_id",
"status": "success"}`. Errors: `{"auth_token", "data": {...}, "error": "<status>", "message":
"<kazoo reason>", "request_id", "status": "error"}` with the same HTTP status:

| status | message | when |
|---|---|---|
| 400 | `validation error` | a field is invalid: `data.<field>.<rule>.message` (required, type, pattern, |
|     |                    | enum, format, not_found, ...) |
| 400 | `invalid request` | the body is not a JSON object, a parameter cannot be read (or holds U+0000) |
| 401 | `invalid_credentials` | no, bad, expired or revoked `X-Auth-Token`; a failed `PUT /v2/user_auth` |
| 403 | `forbidden` | the token's user lacks the route's authentication level; a protected document |
| 404 | `bad_identifier` | an id names nothing (`data.cause` is the id) |
| 404 | `not_found` | no such route |
| 405 | `invalid_method` | the route has no such method |
| 409 | `conflict` | a duplicate (id, MDN, ESN, SIP username) or a document still referenced |
| 413 | `request_entity_too_large` | body over 1 MiB |
| 415 | `unsupported_media_type` | a body whose Content-Type is not JSON (see below) |
| 429 | `too_many_requests` | too many failed logins from one source (`Retry-After`) |
| 500 | `unspecified_fault` | an unexpected failure (logged; never details) |
| 502 | `bad_gateway` | the carrier's API failed or refused us |
| 504 | `gateway_timeout` | the carrier's API did not answer in time |

`request_id` is the client's `X-Request-ID` when it sends a sane one, else a fresh 32-hex id; it
is also returned as the `X-Request-ID` header. `auth_token` is the token this request was
authenticated with (or the one a login issued), else the `X-Auth-Token` sent; a 401 never echoes
a token: there it is "".

Request bodies are JSON, sent as `application/json`, `application/*+json`, with no Content-Type,
or as `application/x-www-form-urlencoded` (what the spec's `curl -d` examples send); any other
Content-Type with a body is a 415. A body may be wrapped in `{"data": {...}}` (KAZOO's form) and
envelope flags (`carrier`, `recursive`, ...) sit beside `data`."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from fastapi import Request, Response

from switchboard.api.common import HttpStatus
from switchboard.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Malformed,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unsupported,
    Upstream,
)
from switchboard.domain.kazoo import invalid

JSON_TYPE = "application/json"
PREFIX = "/v2"
_RID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def owns(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def request_id(request: Request) -> str:
    rid = getattr(request.state, "kazoo_request_id", None)
    if rid is None:
        given = request.headers.get("x-request-id")
        rid = given if given and _RID.match(given) else uuid.uuid4().hex
        request.state.kazoo_request_id = rid
    return rid


def auth_token(request: Request) -> str:
    """The token a response echoes (error_response: never on a 401): the one authentication
    accepted (kazoo.auth sets `kazoo_token` only then) or a login issued, else the X-Auth-Token sent."""
    return getattr(request.state, "kazoo_token", None) or request.headers.get("x-auth-token") or ""


def respond(request: Request, data: Any, status: int = 200, **extra: Any) -> Response:
    rid = request_id(request)
    body = {"auth_token": auth_token(request), "data": data, **extra, "request_id": rid, "status": "success"}
    return Response(orjson.dumps(body), status, media_type=JSON_TYPE, headers={"X-Request-ID": rid})


def _field_errors(exc: Invalid) -> dict:
    rules = getattr(exc, "rules", None) or [(f, "invalid", r) for f, r in exc.problems]
    out: dict[str, Any] = {}
    for field, rule, message in rules:
        out.setdefault(field or "data", {})[rule] = {"message": message}
    return out


def render(exc: DomainError) -> tuple[int, str, dict, dict[str, str]]:
    """(HTTP status, kazoo message, data, extra headers) of a domain error."""
    match exc:
        case Malformed():
            return 400, "invalid request", {"message": str(exc)}, {}
        case Invalid():
            return 400, "validation error", _field_errors(exc), {}
        case Unauthenticated():
            return 401, "invalid_credentials", {"message": str(exc)}, {}
        case Forbidden():
            return 403, "forbidden", {"message": str(exc)}, {}
        case NotFound():
            ident = getattr(exc, "ident", None)
            return 404, "bad_identifier", {"cause": ident, "message": str(exc)}, {}
        case Conflict():
            data = {"message": exc.reason}
            if exc.field:
                data["field"] = exc.field
            return 409, "conflict", data, {}
        case TooLarge():
            return 413, "request_entity_too_large", {"message": str(exc)}, {}
        case Unsupported():
            return 415, "unsupported_media_type", {"message": str(exc)}, {}
        case RateLimited():
            return 429, "too_many_requests", {"message": str(exc)}, {"Retry-After": str(exc.retry_after)}
        case Upstream():
            return exc.status, "gateway_timeout" if exc.status == 504 else "bad_gateway", {"message": str(exc)}, {}
        case HttpStatus():
            message = {404: "not_found", 405: "invalid_method"}.get(exc.status, "error")
            return exc.status, message, {"message": exc.detail}, {}
    return 500, "unspecified_fault", {"message": "internal server error"}, {}


def error_response(request: Request, exc: DomainError) -> Response:
    status, message, data, headers = render(exc)
    rid = request_id(request)
    body = {
        "auth_token": "" if status == 401 else auth_token(request),  # a refused token is never echoed
        "data": data,
        "error": str(status),
        "message": message,
        "request_id": rid,
        "status": "error",
    }
    return Response(orjson.dumps(body), status, media_type=JSON_TYPE, headers={"X-Request-ID": rid, **headers})


def data_of(envelope: dict, *, required: bool = True) -> dict:
    """`envelope["data"]` (must be an object). Without a `data` key, the envelope itself is read as
    the data (a body sent without KAZOO's wrapper)."""
    if "data" not in envelope:
        if required and not envelope:
            raise Invalid("data", "Field is required but missing")
        return {k: v for k, v in envelope.items() if k not in ("carrier", "recursive", "verb")}
    data = envelope["data"]
    if not isinstance(data, dict):
        raise invalid("data", "type", "Value is not of type 'object'")
    return data
