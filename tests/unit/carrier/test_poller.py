"""The port poller (carrier/poller.py), the refused cursor as a named error (CursorRefused) and
the per-cluster client cache (carrier/clients.py), without a server."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import httpx
import pytest

from switchboard.carrier import CarrierClient, CarrierError, CarrierUnavailable, CursorRefused, poller
from switchboard.carrier.clients import CarrierClients
from switchboard.domain.errors import Upstream
from switchboard.domain.kazoo import CLUSTER, Doc, KazooService
from switchboard.domain.security import SecretBox

MESSAGE = {"port_id": "p1", "mdn": "+15550001111", "esn": None, "code": "submitted", "message": None, "timestamp": None}


class FakeDb:
    @contextlib.asynccontextmanager
    async def transaction(self, write: bool = True):
        yield None


class FakeKazoo:
    """What the poller uses of KazooService: the stored cursor, applying messages, credentials."""

    def __init__(self, cursor: str | None):
        self.cursor, self.applied = cursor, []

    async def port_cursor(self, conn, cluster_id):
        return self.cursor

    async def apply_port_messages(self, conn, cluster_id, before, messages, cursor):
        self.applied.append((cluster_id, before, messages, cursor))
        return []

    def carrier_credentials(self, doc):
        return ("http://carrier", "key") if doc.body.get("api_url") else None


class FakeClient:
    """port_messages answers from a script: an exception is raised, a tuple returned."""

    def __init__(self, *answers):
        self.answers, self.asked = list(answers), []

    async def port_messages(self, after):
        self.asked.append(after)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_a_refused_cursor_is_read_again_from_the_start():
    kazoo = FakeKazoo("c5")
    client = FakeClient(CursorRefused("HTTP 400"), ([MESSAGE], "c1"))
    assert await poller.poll_ports(FakeDb(), kazoo, client, "cl") == (1, [])
    assert client.asked == ["c5", None]
    assert kazoo.applied == [("cl", "c5", [MESSAGE], "c1")]


@pytest.mark.parametrize("error", [CarrierError("HTTP 409"), CarrierUnavailable("down")])
async def test_other_carrier_errors_are_not_retried(error):
    client = FakeClient(error)
    with pytest.raises(type(error)):
        await poller.poll_ports(FakeDb(), FakeKazoo("c5"), client, "cl")
    assert client.asked == ["c5"]


async def test_a_refusal_without_a_cursor_is_raised():
    client = FakeClient(CursorRefused("HTTP 400"))
    with pytest.raises(CursorRefused):
        await poller.poll_ports(FakeDb(), FakeKazoo(None), client, "cl")
    assert client.asked == [None]


async def test_nothing_new_applies_nothing():
    kazoo = FakeKazoo("c5")
    assert await poller.poll_ports(FakeDb(), kazoo, FakeClient(([], "c5")), "cl") == (0, [])
    assert kazoo.applied == []


def _answering(status: int, body: dict) -> CarrierClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body))
    return CarrierClient("http://carrier.test", "key", transport=transport, backoff=0)


async def test_adapter_names_the_refused_cursor():
    async with _answering(400, {"error": {"code": "invalid", "message": "after: not a cursor"}}) as client:
        with pytest.raises(CursorRefused) as e:
            await client.port_messages("c9")
        assert e.value.status == 502 and "400" in str(e.value)
        with pytest.raises(CarrierError) as e:  # no cursor named: a plain refusal
            await client.port_messages(None)
        assert type(e.value) is CarrierError


def _cluster(ident: str, url: str | None) -> Doc:
    now = datetime(2024, 1, 1)
    return Doc(CLUSTER, ident, None, {"api_url": url}, now, now)


async def test_run_port_poller_polls_each_cluster_and_survives_failures(monkeypatch):
    clusters = [_cluster("down", "http://a"), _cluster("none", None), _cluster("up", "http://b")]

    async def find_docs(conn, kind):
        assert kind == CLUSTER
        return clusters

    monkeypatch.setattr(poller, "find_docs", find_docs)
    kazoo = FakeKazoo(None)
    clients = {"down": FakeClient(CarrierUnavailable("down")), "up": FakeClient(([MESSAGE], "c1"))}
    asked = []

    def client_for(cluster):
        asked.append(cluster.id)
        return clients[cluster.id]

    task = asyncio.ensure_future(poller.run_port_poller(FakeDb(), kazoo, client_for, 0.001))
    for _ in range(200):
        if kazoo.applied:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert asked[:2] == ["down", "up"]  # the cluster without a carrier API is skipped
    assert kazoo.applied[0] == ("up", None, [MESSAGE], "c1")


async def test_carrier_clients_one_per_cluster_url_and_key():
    box = SecretBox(SecretBox.generate_key())
    clients = CarrierClients(KazooService(box))
    now = datetime(2024, 1, 1)
    doc = Doc(CLUSTER, "c", None, {"api_url": "http://a", "api_key": box.encrypt("k1")}, now, now)
    first = clients.client_for(doc)
    assert clients.client_for(doc) is first
    doc.body["api_key"] = box.encrypt("k2")
    second = clients.client_for(doc)
    assert second is not first
    with pytest.raises(Upstream):
        clients.client_for(Doc(CLUSTER, "x", None, {"api_url": None, "api_key": None}, now, now))
    await clients.aclose()
