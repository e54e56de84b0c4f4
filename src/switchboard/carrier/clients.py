"""One `CarrierClient` per kazoo cluster: made on first use from the cluster document's `api_url`
and `api_key`, kept while they stay the same, replaced (the old one closed in the background) when
they change, and closed together when `serve` stops."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

from switchboard.carrier.adapter import CarrierClient
from switchboard.domain.errors import Upstream
from switchboard.domain.kazoo import Doc, KazooService


class CarrierClients:
    """The per-cluster client cache (`Services.carrier_clients`)."""

    def __init__(self, kazoo: KazooService):
        self.kazoo = kazoo
        self._clients: dict[tuple[str, str, str], CarrierClient] = {}

    def client_for(self, cluster: Doc) -> CarrierClient:
        """The cluster's CarrierClient (kept per cluster, URL and key); a cluster without a carrier
        API configured is a 502 (Upstream)."""
        creds = self.kazoo.carrier_credentials(cluster)
        if creds is None:
            raise Upstream(502, f"cluster {cluster.id} has no carrier API configured (api_url and api_key)")
        url, key = creds
        cache_key = (cluster.id, url, hashlib.sha256(key.encode()).hexdigest())
        client = self._clients.get(cache_key)
        if client is None:
            for old in [k for k in self._clients if k[0] == cluster.id]:
                # the cluster's URL or key changed: the old client is closed in the background
                asyncio.ensure_future(self._clients.pop(old).aclose())
            client = self._clients[cache_key] = CarrierClient(url, key)
        return client

    async def aclose(self) -> None:
        """Close every client (failures to close are ignored: this runs at shutdown)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()
