"""Probe API v1: login, the tests to run, and results.

- `POST /probe/v1/login` `{"version": "..."}` (optional) records the server's last login date (UTC),
  the client's address and the software version; answers `{"server_id", "name", "poll_seconds"}`.
- `GET /probe/v1/tests` → `{"tests": [...]}`: the active tests assigned to this server (a
  cancelled test, endpoint or owner drops out of the list; the agent stops running it). The answer
  carries an `ETag`; a request whose `If-None-Match` names it gets 304 and no body, so an agent can
  ask every `poll_seconds` (2) and learn of a new or changed test within seconds for the price of
  one indexed query.
- `POST /probe/v1/results` `{"results": [...]}` → `{"stored": N}`: each item carries the agent's
  uuid, so a resent batch is stored once (N counts only the new ones)."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response, Security
from fastapi.security import HTTPBasic

from switchboard.api.common import DialectRoute, DialectSpec, json_body
from switchboard.api.probe import auth, envelope
from switchboard.domain import repos
from switchboard.domain.entities import utcnow
from switchboard.domain.errors import Invalid

POLL_SECONDS = 2  # how often agents are told to ask for their tests (cheap: ETag / 304)
MAX_RESULTS = 1000
MAX_VERSION = 32
TEST_FIELDS = ("id", "ip_address", "codec", "num_tests", "interpacket_ms", "interval_seconds")


class ProbeRoute(DialectRoute):
    dialect = DialectSpec("probe", envelope.error_response, auth.authenticate_server)


# Documentation only (the route class enforces): shows HTTP Basic in the OpenAPI document.
BASIC = Security(
    HTTPBasic(
        auto_error=False,
        scheme_name="probe_agent_key",
        description="username = server id, password = the server's agent key",
    )
)

api = APIRouter(route_class=ProbeRoute, tags=["probe"], dependencies=[BASIC])

_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "object", "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}
    },
}
_NUM = {"type": ["number", "null"]}
_TEST = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "ip_address": {"type": "string", "description": "host or IP, optional :port"},
        "codec": {"type": "string"},
        "num_tests": {"type": "integer"},
        "interpacket_ms": {"type": "integer"},
        "interval_seconds": {"type": "integer"},
    },
}
_RESULT = {
    "type": "object",
    "required": ["uuid", "voip_test_id", "tested_at"],
    "properties": {
        "uuid": {"type": "string", "format": "uuid", "description": "the agent's id for the result (idempotency)"},
        "voip_test_id": {"type": "integer"},
        "tested_at": {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"},
        "packets_sent": {"type": "integer"},
        "packets_received": {"type": "integer"},
        "loss_pct": {"type": "number"},
        "rtt_min_ms": _NUM,
        "rtt_avg_ms": _NUM,
        "rtt_max_ms": _NUM,
        "jitter_ms": _NUM,
        "mos": {"type": "number"},
        "error": {"type": ["string", "null"]},
    },
}


def _doc(response: dict, body: dict | None = None) -> dict:
    extra: dict = {
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": response}}},
            "401": {
                "description": "wrong credentials or cancelled server",
                "content": {"application/json": {"schema": _ERROR}},
            },
        }
    }
    if body is not None:
        extra["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
        extra["responses"]["422"] = {"description": "invalid", "content": {"application/json": {"schema": _ERROR}}}
    return extra


@api.post(
    "/probe/v1/login",
    summary="Log a probe server in",
    openapi_extra=_doc(
        {
            "type": "object",
            "properties": {
                "server_id": {"type": "integer"},
                "name": {"type": "string"},
                "poll_seconds": {"type": "integer"},
            },
        },
        {"type": "object", "properties": {"version": {"type": "string", "maxLength": MAX_VERSION}}},
    ),
)
async def login(request: Request):
    """Record the login (date, client address, software version) and tell the agent how often to poll."""
    conn, server = request.state.conn, request.state.user
    data = await json_body(request, required=False)
    version = data.get("version", server.version)
    if version is not None and (not isinstance(version, str) or len(version) > MAX_VERSION):
        raise Invalid("version", f"must be a string of at most {MAX_VERSION} characters")
    ip = request.client.host if request.client else None
    server = await repos.servers.update(
        conn, server.id, {"last_login_date": utcnow(), "last_login_ip": ip, "version": version}
    )
    return envelope.respond({"server_id": server.id, "name": server.name, "poll_seconds": POLL_SECONDS})


@api.get(
    "/probe/v1/tests",
    summary="Active tests assigned to this server",
    openapi_extra=_doc({"type": "object", "properties": {"tests": {"type": "array", "items": _TEST}}}),
)
async def tests(request: Request):
    """The tests this server runs now; one missing from a later pull was cancelled: stop running it."""
    services, conn, server = request.app.state.services, request.state.conn, request.state.user
    found = await services.results.active_tests_for(conn, server)
    # plain str keys: orjson refuses str subclasses (SQLAlchemy quoted_name) as keys
    tests = [{str(getattr(k, "key", k)): v for k, v in item.items()} for item in found]
    response = envelope.respond({"tests": [{f: t.get(f) for f in TEST_FIELDS} for t in tests]})
    etag = '"' + hashlib.blake2b(response.body, digest_size=12).hexdigest() + '"'
    if etag in (request.headers.get("if-none-match") or "").replace(" ", "").split(","):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return response


@api.post(
    "/probe/v1/results",
    summary="Post a batch of results",
    openapi_extra=_doc(
        {"type": "object", "properties": {"stored": {"type": "integer", "description": "new results stored"}}},
        {
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": _RESULT, "maxItems": MAX_RESULTS}},
        },
    ),
)
async def results(request: Request):
    """Store results (idempotent by uuid: resending a batch stores nothing twice)."""
    services, conn, server = request.app.state.services, request.state.conn, request.state.user
    data = await json_body(request)
    items = data.get("results")
    if not isinstance(items, list):
        raise Invalid("results", "must be an array")
    if len(items) > MAX_RESULTS:
        raise Invalid("results", f"at most {MAX_RESULTS} per batch")
    if not all(isinstance(i, dict) for i in items):
        raise Invalid("results", "items must be objects")
    return envelope.respond({"stored": await services.results.ingest(conn, server, items)})
