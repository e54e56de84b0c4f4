"""The probe dialect: what the probe-server software (`switchboard probe`) talks to.

`/probe/v1/login`, `/probe/v1/tests` and `/probe/v1/results`, JSON only, HTTP Basic
`server_id:agent_key` on every call. See envelope.py for the wire format and errors, auth.py for
the key check, v1.py for the routes."""

from fastapi import APIRouter

from switchboard.api.probe import v1
from switchboard.api.probe.envelope import owns

router = APIRouter()
router.include_router(v1.api)

__all__ = ["owns", "router"]
