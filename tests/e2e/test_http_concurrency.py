"""Many HTTP clients at once against a running server: the first request of each connection
carries Basic credentials nobody has verified yet (argon2 runs in a worker thread).

Found by bench/http_bench.py: 64 such requests at once held every SQLite connection while their
argon2 ran, the 41st waited for a connection inside SQLAlchemy's pool on the event loop thread,
and so the whole server (HTTP and SIP) froze until the pool's 30 s timeout, then answered 500."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import make_server, new_user
from tests.sip_peers import sip_options_status

CLIENTS = 64


async def burst(url: str, auth: tuple[str, str], method: str, path: str, json: dict | None = None):
    """CLIENTS requests at once, each on a connection of its own."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, auth=auth, limits=limits, timeout=25) as client:
        return await asyncio.gather(*(client.request(method, path, json=json) for _ in range(CLIENTS)))


def test_first_logins_at_once_all_answered(fresh_server):
    srv = fresh_server.start()
    with srv.client() as admin:
        reader, writer = new_user(admin), new_user(admin)
    started = time.monotonic()
    reads = asyncio.run(burst(srv.url, (reader["username"], reader["password"]), "GET", "/users/me"))
    assert [r.status_code for r in reads] == [200] * CLIENTS, {r.status_code for r in reads}
    assert {r.json()["id"] for r in reads} == {reader["id"]}

    body = {"endpoint": {"name": "herd", "ip_address": "10.9.0.1"}}
    path = f"/users/{writer['id']}/endpoints"
    writes = asyncio.run(burst(srv.url, (writer["username"], writer["password"]), "POST", path, body))
    assert [r.status_code for r in writes] == [201] * CLIENTS, {r.status_code for r in writes}
    elapsed = time.monotonic() - started
    assert elapsed < 15, f"{2 * CLIENTS} requests took {elapsed:.1f} s"

    with srv.client(writer["username"], writer["password"]) as c:
        listed = c.get(path)
    assert listed.status_code == 200
    assert len(listed.json()["collection"]) == CLIENTS
    assert "Traceback" not in srv.log()


def test_the_stdlib_event_loop_serves_http_and_sip(tmp_path):
    """SWITCHBOARD_EVENT_LOOP=asyncio (the choice for HTTP tail latency): the same server."""
    srv, _ = make_server("sqlite", tmp_path, SWITCHBOARD_EVENT_LOOP="asyncio", SWITCHBOARD_LOG_LEVEL="info")
    srv.start()
    try:
        with srv.client() as admin:
            assert admin.get("/users/me").status_code == 200
        assert sip_options_status(srv.sip_port) == 200
        assert "event loop asyncio" in srv.log()
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in srv.log()
