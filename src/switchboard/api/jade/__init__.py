"""The jade dialect: a REST gateway over the PBX. Every route is served under `/v1` and bare."""

from fastapi import APIRouter

from switchboard.api.jade import agent, auth, cdr, core, dialplan, live, me, park, pjsip, queue, security, trunks, users

PREFIXES = ("/v1", "/admin", "/me", "/manager", "/agents", "/device_states", "/peers", "/registries")


def _all() -> APIRouter:
    r = APIRouter()
    for module_router in (
        auth.login_api,
        auth.logout_api,
        users.me_admin_api,
        users.api,
        me.api,
        dialplan.api,
        park.api,
        queue.api,
        agent.api,
        pjsip.api,
        trunks.api,
        core.api,
        core.calls_api,
        cdr.api,
        live.api,
        security.api,
    ):
        r.include_router(module_router)
    return r


router = APIRouter()
router.include_router(_all(), prefix="/v1")
bare = _all()
