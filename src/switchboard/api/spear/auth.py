"""Spear authentication: HTTP Basic on every request but the root URL.

Verified credentials are remembered briefly under an HMAC (IdentityService), so a client that
sends Basic on each call costs one indexed lookup, not an argon2 verification, per request."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from switchboard.domain.entities import User
from switchboard.domain.errors import Unauthenticated


def basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthenticated("HTTP Basic credentials required")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise Unauthenticated("malformed HTTP Basic credentials")
    return username, password


async def authenticate(request: Request, conn, services) -> User:
    username, password = basic_credentials(request)
    source = request.client.host if request.client else ""
    return await services.identity.authenticate_password(conn, username, password, source)
