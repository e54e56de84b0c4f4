"""Spear authentication: HTTP Basic on every request but the root URL.

Verified credentials are remembered briefly under an HMAC (IdentityService), so a client that
sends Basic on each call costs one indexed lookup, not an argon2 verification, per request."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import basic_credentials, password_login
from switchboard.domain.entities import User


async def authenticate(request: Request, conn, services) -> User:
    username, password = basic_credentials(request)
    return await password_login(request, conn, services, username, password)
