"""Probe authentication: HTTP Basic `server_id:agent_key` on every call.

The agent key is the random 256-bit token returned once when the server was created; the
database keeps only its SHA-256 (`servers.agent_key_hash`), so one digest and a constant-time
compare check it (no slow hash is needed for a random key). A cancelled server's key stops
working. The authenticated principal of a probe request is the `Server`, not a user."""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import Request

from switchboard.domain import repos, security
from switchboard.domain.entities import Server
from switchboard.domain.errors import Unauthenticated

MAX_ID_DIGITS = 18


def credentials(request: Request) -> tuple[int, str]:
    value = request.headers.get("authorization")
    if not value:
        raise Unauthenticated("HTTP Basic authentication required: server_id:agent_key")
    scheme, _, param = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("HTTP Basic authentication required: server_id:agent_key")
    try:
        decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthenticated("malformed Basic credentials") from None
    sid, sep, key = decoded.partition(":")
    if not sep or not (sid.isascii() and sid.isdigit()) or len(sid) > MAX_ID_DIGITS or not key:
        raise Unauthenticated("Basic credentials must be server_id:agent_key")
    return int(sid), key


async def authenticate_server(request: Request, conn, services) -> Server:
    server_id, key = credentials(request)
    server = await repos.servers.get(conn, server_id)
    digest = security.token_digest(key)
    if server is None or not server.agent_key_hash or not hmac.compare_digest(server.agent_key_hash, digest):
        raise Unauthenticated("unknown server or wrong agent key")
    if server.deleted_at is not None:
        raise Unauthenticated("this server is cancelled")
    return server
