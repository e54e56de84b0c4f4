"""VoIP Spear dialect (monitoring): users, servers, endpoints, VoIP tests, results and alerts.
JSON + Rails XML, HTTP Basic. See envelope.py for the wire format and auth.py for authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request

from switchboard import __version__
from switchboard.api.spear import endpoints, results, servers, users, voip_tests
from switchboard.api.spear.envelope import render
from switchboard.api.spear.routing import SpearPublicRoute

public = APIRouter(route_class=SpearPublicRoute, tags=["spear: root"])


@public.get("/")
async def root(request: Request):
    """The root URL answers without credentials: the API version and a short notice."""
    return render(
        request,
        "api",
        (("version", __version__), ("message", "Switchboard VoIP operations platform API (VoIP Spear dialect).")),
    )


router = APIRouter()
for r in (public, users.api, servers.api, endpoints.api, voip_tests.api, results.api):
    router.include_router(r)
