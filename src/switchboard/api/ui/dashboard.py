"""The web dashboard: `/ui` (one page, its script and stylesheet, served from package data: no
build step, no CDN) and the few JSON routes the page needs that no dialect gives a token holder.

The page signs in with jade's `POST /v1/admin/login` and keeps the token in sessionStorage; it
reads the live views through jade (`?authtoken=`) and the event stream (`/events/stream`, see
events). Spear's routes take only HTTP Basic, so a token cannot read monitoring there: the routes
below serve the same data (endpoints and their VoIP tests, results and summaries per probe server,
alerts) to a token of any dialect (`Authorization: Bearer <token>`, `X-Auth-Token`, or
`?token=`), through the same domain services and with the same rules (an owner or an admin)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from switchboard.api.common import DialectRoute, DialectSpec, ctx, error_status, parse_id, token_authenticator
from switchboard.domain.errors import DomainError, Invalid, Unauthenticated
from switchboard.domain.results import ResultService, parse_limit, parse_time

JSON_TYPE = "application/json; charset=utf-8"
STATIC = {
    "app.js": "application/javascript; charset=utf-8",
    "chart.js": "application/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# the page loads nothing but its own files, talks only to this origin, and runs no inline script
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _load(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class _Assets:
    """The files, read once; each with an ETag so a reload costs a 304."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}

    def get(self, name: str) -> tuple[bytes, str]:
        if name not in self.files:
            body = _load(name)
            self.files[name] = (body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        return self.files[name]


assets = _Assets()


def _file(request: Request, name: str, media_type: str, extra: dict[str, str] | None = None) -> Response:
    body, etag = assets.get(name)
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", **(extra or {})}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


pages = APIRouter(include_in_schema=False)


@pages.get("/ui")
@pages.get("/ui/")
async def index(request: Request):
    return _file(
        request,
        "index.html",
        "text/html; charset=utf-8",
        {"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"},
    )


@pages.get("/ui/static/{name}")
async def static(request: Request, name: str):
    if name not in STATIC:
        return Response(orjson.dumps({"error": {"code": 404, "message": "no such file"}}), 404, media_type=JSON_TYPE)
    return _file(request, name, STATIC[name])


# ---- the JSON routes ------------------------------------------------------------------------
def token_of(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token = value if scheme.lower() == "bearer" else ""
    token = token or request.headers.get("x-auth-token") or request.query_params.get("token") or ""
    if not token.strip():
        raise Unauthenticated("a token is required (Authorization: Bearer, X-Auth-Token or ?token=)")
    return token.strip()


def error_response(request: Request, exc: DomainError) -> Response:
    status, message, headers = error_status(exc)
    return Response(
        orjson.dumps({"error": {"code": status, "message": message}}),
        status,
        headers=headers or None,
        media_type=JSON_TYPE,
    )


class UiRoute(DialectRoute):
    dialect = DialectSpec("ui", error_response, token_authenticator(token_of))


api = APIRouter(prefix="/ui/api", route_class=UiRoute, tags=["dashboard"])
results = ResultService()


def _iso(value: Any) -> Any:
    return value.isoformat(timespec="seconds") + "Z" if isinstance(value, datetime) else value


def _plain(row: dict) -> dict:
    return {k: _iso(v) for k, v in row.items()}


def respond(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type=JSON_TYPE)


def _user_id(request: Request, value: str | None) -> int:
    return request.state.user.id if value in (None, "", "me") else parse_id(value, "user")


@api.get("/me", summary="The signed-in user")
async def me(request: Request):
    u = request.state.user
    return respond({"id": u.id, "uuid": u.uuid, "username": u.username, "name": u.name, "admin": u.is_admin})


@api.get("/monitoring", summary="A user's endpoints, each with its VoIP tests (one per probe server)")
async def monitoring(request: Request, user_id: str | None = None):
    svc, conn, actor = ctx(request)
    uid = _user_id(request, user_id)
    servers = {s.id: s.name for s in await svc.monitoring.list_servers(conn, actor, status="all")}
    out = []
    for ep in await svc.monitoring.list_endpoints(conn, actor, uid):
        tests = await svc.monitoring.list_tests(conn, actor, uid, ep.id)
        out.append(
            {
                "id": ep.id,
                "name": ep.name,
                "ip_address": ep.ip_address,
                "tests": [
                    {
                        "id": v.id,
                        "server_id": v.server_id,
                        "server": servers.get(v.server_id, f"server {v.server_id}"),
                        "codec": v.codec,
                        "interval_seconds": v.interval_seconds,
                        "alert_threshold": v.alert_threshold,
                        "mos": v.last_mos,
                        "last_tested_at": _iso(v.last_tested_at),
                        "alerting_since": _iso(v.alerting_since),
                    }
                    for v in tests
                ],
            }
        )
    return respond({"user_id": uid, "endpoints": out})


@api.get("/endpoints/{endpoint_id}/series", summary="An endpoint's measurements per probe server")
async def series(
    request: Request,
    endpoint_id: str,
    user_id: str | None = None,
    kind: str = Query("results", description="results (each measurement), hour or day (summaries)"),
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    limit: str | None = None,
):
    """One series per VoIP test (probe server): raw results oldest first, or hour/day summaries."""
    svc, conn, actor = ctx(request)
    uid, eid = _user_id(request, user_id), parse_id(endpoint_id, "endpoint")
    if kind not in ("results", "hour", "day"):
        raise Invalid("kind", "must be results, hour or day")
    since, until = parse_time(from_, "from"), parse_time(to, "to")
    servers = {s.id: s.name for s in await svc.monitoring.list_servers(conn, actor, status="all")}
    out = []
    for v in await svc.monitoring.list_tests(conn, actor, uid, eid):
        if kind == "results":
            rows = await results.list_results(conn, v.id, since=since, until=until, limit=parse_limit(limit, 1000))
            points = [
                {
                    "t": _iso(r["tested_at"]),
                    "rtt": r["rtt_avg_ms"],
                    "jitter": r["jitter_ms"],
                    "loss": r["loss_pct"],
                    "mos": r["mos"],
                    "error": r["error"],
                }
                for r in reversed(rows)
            ]
        else:
            rows = await results.summary(conn, v.id, period=kind, since=since, until=until)
            points = [
                {
                    "t": _iso(r["period_start"]),
                    "rtt": r["rtt_avg_ms"],
                    "jitter": r["jitter_ms"],
                    "loss": r["loss_pct"],
                    "mos": r["mos_avg"],
                    "count": r["count"],
                }
                for r in rows
            ]
        out.append(
            {
                "test_id": v.id,
                "server_id": v.server_id,
                "server": servers.get(v.server_id, str(v.server_id)),
                "points": points,
            }
        )
    return respond({"endpoint_id": eid, "kind": kind, "series": out})


@api.get("/alerts", summary="A user's alert events, newest first")
async def alerts(request: Request, user_id: str | None = None, limit: str | None = None):
    svc, conn, actor = ctx(request)
    user = await svc.identity.get_user(conn, actor, _user_id(request, user_id))
    return respond({"list": [_plain(r) for r in await results.list_alerts(conn, user.id, limit=parse_limit(limit))]})
