"""The live event stream: `GET /events/stream` (Server-Sent Events) and `GET /events/ws`
(WebSocket), over the process's event bus (switchboard.events).

Authentication: a token of any dialect (jade's authtoken, the providers access_token, kazoo's
X-Auth-Token: all the identity service's tokens), given as `?token=`, `?authtoken=`, or the header
`Authorization: Bearer <t>`, `X-Auth-Token` or `access_token`. Without a valid one: 401 with
`{"error": {"code": 401, "message": ...}}` (WebSocket: accepted, then closed with code 4401). The
token is checked again every 15 s while a stream is open: a revoked token or a cancelled user ends
the stream (SSE: the response ends; WebSocket: close 4401).

Who sees what: admins (admin, master, super_master) every event; any other user only the events
about what the REST routes let them read: `probe.result` and `alert` of their own endpoints.

An event: `{"seq", "type", "time", "data"}`; `seq` grows monotonically (one sequence for the whole
cluster on PostgreSQL). Resume: SSE `Last-Event-ID` header or `?since=<seq>`; WebSocket `?since=`
or a text frame `{"since": N}` at any time (replays from N). Events with seq > since follow; when
some of them are no longer in the history (10,000 events / 10 minutes), a `gap` event
`{"from": a, "to": b}` (seq b) comes first. Without since: from now on."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse

from switchboard.domain.entities import User
from switchboard.domain.errors import Unauthenticated
from switchboard.events import Subscription, Viewer

log = logging.getLogger("switchboard.api.events")

KEEPALIVE = 15.0  # seconds between SSE keep-alive comments (and token re-checks)
BATCH = 500  # events read from the bus per step

router = APIRouter(tags=["events"])

EVENT_TYPES = (
    "registration.added registration.refreshed registration.removed contact.status trunk.status "
    "channel.created channel.state channel.hangup bridge.created bridge.destroyed dtmf queue.joined "
    "queue.left queue.member parking.parked parking.unparked agent.status probe.result alert "
    "config.reloaded gap"
).split()


def token_of(conn) -> str:
    """The token of a request or WebSocket handshake ("" when none)."""
    q, h = conn.query_params, conn.headers
    token = q.get("token") or q.get("authtoken") or ""
    if not token:
        scheme, _, value = h.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = value
    token = token or h.get("x-auth-token") or h.get("access_token") or ""
    return token.strip()


async def authenticate(services, token: str) -> User:
    if not token:
        raise Unauthenticated("a token is required: ?token=, Authorization: Bearer, X-Auth-Token or access_token")
    async with services.db.transaction(write=False) as conn:
        return await services.identity.authenticate_token(conn, token)


def viewer_of(user: User) -> Viewer:
    return Viewer(user.id, user.is_admin)


def parse_since(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    v = value.strip()
    if not (v.isascii() and v.isdigit()) or len(v) > 19:
        raise ValueError("since must be a non-negative integer (a sequence number)")
    return int(v)


def _error(status: int, message: str) -> Response:
    return Response(
        orjson.dumps({"error": {"code": status, "message": message}}), status, media_type="application/json"
    )


def sse_frame(ev) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (ev.seq, ev.type.encode(), ev.json())


_SSE_DOC = {
    "parameters": [
        {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "since", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
        {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "integer"}},
    ],
    "responses": {
        "200": {
            "description": "text/event-stream: `id: <seq>` / `event: <type>` / `data: <json event>`; "
            "a `: keep-alive` comment every 15 s",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        "400": {"description": "since / Last-Event-ID is not a sequence number"},
        "401": {"description": 'no valid token: `{"error": {"code": 401, "message"}}`'},
    },
}


_SSE_DESCRIPTION = (
    "Server-Sent Events of the event bus. Event types: "
    + ", ".join(f"`{t}`" for t in EVENT_TYPES)
    + """.

Each event's `data:` line is `{"seq", "type", "time" (RFC 3339 UTC), "data": {...}}`. Resume with the
`Last-Event-ID` header or `?since=<seq>` (events with seq > since); a `gap` event `{"from", "to"}`
says that events in between are no longer in the history (10,000 events / 10 minutes). Without
since: from now on. Token: `?token=`, `?authtoken=`, `Authorization: Bearer`, `X-Auth-Token` or
`access_token` (any dialect's login). Admins see every event; other users only `probe.result` and
`alert` of their own endpoints.

**WebSocket**: `GET /events/ws` (same token, `?since=`), one JSON event per text frame; send
`{"since": N}` at any time to replay from N; a missing or invalid token closes it with code 4401."""
)


@router.get(
    "/events/stream",
    summary="Live events (Server-Sent Events); the same events over WebSocket at /events/ws",
    description=_SSE_DESCRIPTION,
    openapi_extra=_SSE_DOC,
    response_class=StreamingResponse,
)
async def stream(request: Request):
    services = request.app.state.services
    try:
        user = await authenticate(services, token_of(request))
    except Unauthenticated as e:
        return _error(401, str(e))
    try:
        since = parse_since(request.headers.get("last-event-id") or request.query_params.get("since"))
    except ValueError as e:
        return _error(400, str(e))
    sub = services.events.subscribe(viewer_of(user), since)
    token = token_of(request)

    async def frames():
        yield b"retry: 2000\n\n"
        while True:
            events = await sub.next(timeout=KEEPALIVE, limit=BATCH, client=True)
            if events:
                yield b"".join(sse_frame(ev) for ev in events)
                continue
            if services.events.streams_ended:  # the server is stopping: the client reconnects later
                return
            try:
                await authenticate(services, token)
            except Unauthenticated:
                return
            yield b": keep-alive\n\n"

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/events/ws")
async def websocket_stream(ws: WebSocket):
    services = ws.app.state.services
    await ws.accept()
    token = token_of(ws)
    try:
        user = await authenticate(services, token)
        since = parse_since(ws.query_params.get("since"))
    except Unauthenticated as e:
        await ws.close(4401, str(e)[:120])
        return
    except ValueError as e:
        await ws.close(4400, str(e)[:120])
        return
    sub: Subscription = services.events.subscribe(viewer_of(user), since)

    async def receive() -> None:
        while True:
            text = await ws.receive_text()
            with contextlib.suppress(ValueError, TypeError):
                msg = orjson.loads(text)
                if isinstance(msg, dict) and isinstance(msg.get("since"), int) and msg["since"] >= 0:
                    sub.resume(msg["since"])

    reader = asyncio.ensure_future(receive())
    reader.add_done_callback(lambda _: services.events.wake())  # the sender stops waiting at once
    try:
        while not reader.done():
            events = await sub.next(timeout=KEEPALIVE, limit=BATCH, client=True)
            for ev in events:
                await ws.send_text(ev.json().decode())
            if not events and services.events.streams_ended:  # the server is stopping
                await ws.close(1001, "server stopping")
                return
            if not events:
                try:
                    await authenticate(services, token)
                except Unauthenticated:
                    await ws.close(4401, "token revoked or expired")
                    return
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
