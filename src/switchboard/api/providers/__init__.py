"""The providers dialect (PortSIP): SIP trunks behind `/api/providers/*`, with an `access_token`
header from `POST /api/account/credentials/verify`. See envelope.py for the wire format and
errors, auth.py for tokens and permissions, providers.py for the routes' choices."""

from fastapi import APIRouter

from switchboard.api.providers import auth, providers
from switchboard.api.providers.envelope import owns

router = APIRouter()
for r in (auth.login_api, providers.api):
    router.include_router(r)

__all__ = ["owns", "router"]
