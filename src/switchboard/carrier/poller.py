"""The carrier's port-in messages, polled: `poll_ports` reads one cluster's messages after the
stored cursor and applies them to the kazoo documents (KazooService.apply_port_messages);
`run_port_poller` does that regularly for every cluster with a carrier API (the regular port poll
the spec mentions; `serve` runs it every `kazoo_port_poll_seconds`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from switchboard.carrier.adapter import CarrierClient, CursorRefused
from switchboard.domain.kazoo import CLUSTER, Doc, KazooService, find_docs

log = logging.getLogger("switchboard.kazoo")


async def poll_ports(db, kazoo: KazooService, client: CarrierClient, cluster_id: str) -> tuple[int, list[Doc]]:
    """Pull the cluster's carrier port messages after the stored cursor and apply them; the
    cursor moves in the same transaction as the documents, so a message is applied once."""
    async with db.transaction(write=False) as conn:
        before = await kazoo.port_cursor(conn, cluster_id)
    try:
        messages, cursor = await client.port_messages(before)
    except CursorRefused as e:
        if before is None:
            raise
        # the carrier refused our cursor (its log was reset): read it again from the start; a
        # message already recorded is recognised in the port's history and not applied twice
        log.warning("carrier refused port cursor %r of cluster %s (%s): polling from the start", before, cluster_id, e)
        messages, cursor = await client.port_messages(None)
    if not messages and cursor == before:
        return 0, []
    async with db.transaction() as conn:
        docs = await kazoo.apply_port_messages(conn, cluster_id, before, messages, cursor)
    return len(messages), docs


async def run_port_poller(db, kazoo: KazooService, client_for: Callable[[Doc], CarrierClient], every: float) -> None:
    """Every `every` seconds, poll each cluster with a carrier API. `client_for(cluster_doc)` gives
    the cluster's CarrierClient (CarrierClients.client_for). Failures are logged."""
    while True:
        await asyncio.sleep(every)
        try:
            async with db.transaction(write=False) as conn:
                clusters = await find_docs(conn, CLUSTER)
            for cluster in clusters:
                if kazoo.carrier_credentials(cluster) is None:
                    continue
                try:
                    count, _ = await poll_ports(db, kazoo, client_for(cluster), cluster.id)
                    if count:
                        log.info("port poll of cluster %s: %d message(s)", cluster.id, count)
                except Exception as e:  # one cluster's carrier being down must not stop the others
                    log.warning("port poll of cluster %s failed: %s", cluster.id, e)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("port poll failed")
