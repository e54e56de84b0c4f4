"""PortSIP providers wire format.

Success bodies are bare JSON objects (`{"id": 1}`, a provider, a page of providers, or `{}` for
update and destroy). Errors are `{"error": {"code": N, "message": "..."}}` with HTTP status N:

- 400: anything invalid in the request: unreadable JSON, a wrong type, a missing required field,
  a bad enum, a value out of range, a name already taken (the spec knows no 409), and an id that
  names no provider ("Invalid provider ID supplied.", the spec's text for destroy, used for show
  and update too);
- 401: no `access_token`, one of the wrong length, or one that is unknown, expired or revoked;
  a login with a wrong username or password;
- 403: a valid token whose user may not manage providers (not an admin);
- 404/405: no such route / method; 413: body too large; 415: a body whose Content-Type is not
  JSON (below); 429: too many failed logins (`Retry-After`); 500: an unexpected failure (never
  with details).

Request bodies are JSON, sent as `application/json`, `application/*+json`, with no Content-Type,
or as `application/x-www-form-urlencoded` (what the spec's `curl -d` samples send without `-H`)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response

from switchboard.api.common import error_status
from switchboard.domain.errors import (
    Conflict,
    DomainError,
    NotFound,
)

API_VERSION = "1.0"
JSON_TYPE = "application/json; charset=utf-8"
INVALID_ID = "Invalid provider ID supplied."
PREFIX = "/api"


def owns(path: str) -> bool:
    """Is this path in the providers dialect's namespace (for 404/405 bodies)?"""
    return path == PREFIX or path.startswith(PREFIX + "/")


def respond(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=JSON_TYPE)


def _status_and_message(exc: DomainError) -> tuple[int, str, dict[str, str]]:
    """The shared mapping, except that the spec answers 400 for an unknown provider and for a
    duplicate name."""
    match exc:
        case NotFound() if exc.kind == "trunk":
            return 400, INVALID_ID, {}
        case Conflict():
            return 400, f"{exc.field}: {exc.reason}" if exc.field else exc.reason, {}
    return error_status(exc)


def error_response(request: Request, exc: DomainError) -> Response:
    status, message, headers = _status_and_message(exc)
    body = {"error": {"code": status, "message": message}}
    return Response(orjson.dumps(body), status, headers=headers or None, media_type=JSON_TYPE)


# ---- OpenAPI: the error body and the responses of a route ------------------------------------
_S = {"type": "string"}
_I = {"type": "integer"}
ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {"code": _I, "message": _S}}}}
EMPTY = {"type": "object"}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def doc(
    *, body: dict | None = None, response: dict | None = None, parameters: list | None = None, public: bool = False
) -> dict:
    """openapi_extra for a providers route (validation is the domain's and the handlers')."""
    extra: dict[str, Any] = {
        "responses": {
            "200": {"description": "Successful operation", "content": _json(response or EMPTY)},
            "400": {
                "description": "Invalid request (" + INVALID_ID + " for an unknown id)",
                "content": _json(ERROR),
            },
            "401": {
                "description": "Missing, malformed or unknown access_token"
                if not public
                else "Wrong username or password",
                "content": _json(ERROR),
            },
        }
    }
    if not public:
        extra["responses"]["403"] = {"description": "Not an admin", "content": _json(ERROR)}
    if body is not None:
        extra["requestBody"] = {"required": True, "content": _json(body)}
    if parameters:
        extra["parameters"] = parameters
    return extra
