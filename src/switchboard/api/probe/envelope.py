"""Probe wire format: JSON bodies; errors `{"error": {"code": N, "message": "..."}}` with HTTP status N.

- 400: unreadable JSON or a body that is not an object; 401: no, malformed or wrong credentials,
  or a cancelled server (with `WWW-Authenticate: Basic`); 403, 404, 405, 409 as usual;
  413: body too large; 415: a body whose Content-Type is not JSON (`application/json`,
  `application/*+json`, none, or the form type `curl -d` sends); 422: a field or result item that
  is invalid (for a results batch, `error.refused` lists the indexes of the items at fault; the
  batch stored nothing); 429: rate limited; 500: an unexpected failure (never with details)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response

from switchboard.api.common import error_status
from switchboard.domain.errors import (
    DomainError,
    Invalid,
    Unauthenticated,
)

JSON_TYPE = "application/json"
PREFIX = "/probe"


def owns(path: str) -> bool:
    """Is this path in the probe dialect's namespace (for 404/405 bodies)?"""
    return path == PREFIX or path.startswith(PREFIX + "/")


def respond(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=JSON_TYPE)


def _status(exc: DomainError) -> tuple[int, str, dict[str, str]]:
    """The shared mapping, except a Basic challenge on 401 and 422 for invalid results."""
    match exc:
        case Unauthenticated():
            return 401, str(exc), {"WWW-Authenticate": 'Basic realm="switchboard probe"'}
        case Invalid():
            return 422, str(exc), {}
    return error_status(exc)


def error_response(request: Request, exc: DomainError) -> Response:
    status, message, headers = _status(exc)
    error: dict[str, Any] = {"code": status, "message": message}
    if isinstance(getattr(exc, "indexes", None), list):  # a refused results batch: which items are at fault
        error["refused"] = exc.indexes
    return Response(orjson.dumps({"error": error}), status, headers=headers or None, media_type=JSON_TYPE)
