"""The kazoo dialect: KAZOO's support API for a mobile carrier (MVNO) business, under /v2."""

from fastapi import APIRouter

from switchboard.api.kazoo import accounts, auth, clusters, subscriptions, support
from switchboard.api.kazoo.envelope import owns

router = APIRouter(prefix="/v2")
router.include_router(auth.login_api)
router.include_router(accounts.accounts_api)
router.include_router(accounts.accounts_read_api)
for module_router in (
    support.carrier_api,
    support.devices_api,
    support.ports_api,
    support.ports_local_api,
    subscriptions.carrier_api,
    subscriptions.api,
    clusters.clusters_api,
    clusters.routing_api,
):
    router.include_router(module_router, prefix="/support")

__all__ = ["router", "owns"]
