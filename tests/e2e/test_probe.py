"""The probe software end to end: a real `serve`, a separate `switchboard probe` process, a test
on a private server against a `Responder` run here. Endpoints take a host without a port (5060),
so each responder listens on its own loopback address 127.a.b.c:5060."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from switchboard.probe.responder import Responder
from tests.conftest import BIN, new_user, skip_or_fail

UUID_LINE = re.compile(r"result ([0-9a-f-]{36}) of test (\d+) spooled")


def wait_for(predicate, timeout: float, what: str, step: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def responder_ip():
    """A Responder (2 ms delay) on a loop of its own thread, at a random loopback address, port 5060."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    for _ in range(20):
        ip = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
        try:
            resp = asyncio.run_coroutine_threadsafe(Responder(delay_ms=2).start(ip, 5060), loop).result(5)
            break
        except OSError:
            continue
    else:
        skip_or_fail("no free loopback address for port 5060")
    yield ip
    loop.call_soon_threadsafe(resp.stop)
    loop.call_soon_threadsafe(loop.stop)


def setup_test(srv, admin: httpx.Client, ip: str) -> dict:
    """A user, a private server of theirs (with its one-time key), an endpoint at `ip` and a VoIP
    test run every 5 s."""
    user = new_user(admin)
    with srv.client(user["username"], user["password"]) as c:
        r = c.post("/servers", json={"server": {"name": "probe-e2e", "ip_address": "127.0.0.1"}})
        assert r.status_code == 201, r.text
        server = r.json()
        r = c.post(f"/users/{user['id']}/endpoints", json={"endpoint": {"name": "responder", "ip_address": ip}})
        assert r.status_code == 201, r.text
        ep = r.json()
        r = c.post(
            f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests",
            json={
                "voip_test": {"server_id": server["id"], "interval_seconds": 5, "num_tests": 5, "interpacket_ms": 20}
            },
        )
        assert r.status_code == 201, r.text
    return {
        "user": user,
        "server": server,
        "endpoint": ep,
        "test": r.json(),
        "base": f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests/{r.json()['id']}",
    }


class Probe:
    def __init__(self, srv, server: dict, spool: Path, key: str | None = None, poll_seconds: float | None = 2):
        self.log_path = spool.parent / f"{spool.name}.log"
        self.spool = spool
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        poll = ["--poll-seconds", str(poll_seconds)] if poll_seconds is not None else []
        self.proc = subprocess.Popen(
            [
                str(BIN / "switchboard"),
                "probe",
                "--url",
                srv.url,
                "--server-id",
                str(server["id"]),
                "--key",
                key or server["agent_key"],
                "--spool",
                str(spool),
                *poll,
                "--log-level",
                "info",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def uuids(self, test_id: int) -> list[str]:
        return [u for u, t in UUID_LINE.findall(self.log()) if int(t) == test_id]

    def spooled(self) -> set[str]:
        found = set()
        for p in self.spool.glob("*.jsonl"):
            for line in p.read_bytes().splitlines():
                try:
                    found.add(orjson.loads(line)["uuid"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    pass
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def stored_uuids(srv, test_id: int) -> list[str]:
    """Every stored result's uuid for the test, straight from the database (duplicates kept)."""
    sql = "SELECT uuid FROM voip_test_results WHERE voip_test_id = {}"
    if srv.backend == "sqlite":
        path = srv.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path, timeout=10) as db:
            return [r[0] for r in db.execute(sql.format("?"), (test_id,)).fetchall()]

    async def pg():
        import asyncpg

        conn = await asyncpg.connect(srv.database_url)
        try:
            return [r[0] for r in await conn.fetch(sql.format("$1"), test_id)]
        finally:
            await conn.close()

    return asyncio.run(pg())


def probe_call(srv, sid, key, method="POST", path="/probe/v1/login", **kw) -> httpx.Response:
    return httpx.request(method, srv.url + path, auth=(str(sid), key), timeout=10, **kw)


def test_probe_logs_in_runs_tests_and_reports(server, admin, tmp_path, responder_ip):
    env = setup_test(server, admin, responder_ip)
    sid, tid = env["server"]["id"], env["test"]["id"]
    probe = Probe(server, env["server"], tmp_path / "spool")
    try:
        shown = wait_for(lambda: (s := admin.get(f"/servers/{sid}").json())["last_login_date"] and s, 20, "login")
        assert shown["version"] and shown["last_login_ip"] == "127.0.0.1"
        # two runs, 5 s apart, reach the database
        wait_for(lambda: len(stored_uuids(server, tid)) >= 2, 25, "two results")
        test = admin.get(env["base"]).json()
        assert test["mos"] is not None and test["last_tested_at"] is not None
        results = admin.get(env["base"] + "/results")
        if results.status_code == 200:  # the results API (another part of the issue)
            items = results.json()["collection"]
            assert len(items) >= 2 and all(i["server_id"] == sid and i["packets_sent"] == 5 for i in items)
            assert all(i["packets_received"] == 5 and i["rtt_min_ms"] >= 2 for i in items), items
        # a cancelled test stops being run
        with server.client(env["user"]["username"], env["user"]["password"]) as c:
            assert c.delete(env["base"]).status_code == 200
        time.sleep(3)  # one poll (2 s) + a run in flight
        before = len(probe.uuids(tid))
        time.sleep(7)
        assert len(probe.uuids(tid)) == before, "a cancelled test was still run"
    finally:
        probe.stop()
    logged = probe.uuids(tid)
    stored = stored_uuids(server, tid)
    assert len(stored) == len(set(stored))
    assert set(logged) - set(stored) <= probe.spooled()
    assert "Traceback" not in probe.log(), probe.log()


def test_a_new_test_runs_within_seconds_and_unchanged_lists_cost_a_304(server, admin, tmp_path, responder_ip):
    """The agent's default poll (2 s, ETag): a test created while the probe runs gives its first
    result within seconds (it came after about 23 s with a 30 s poll)."""
    env = setup_test(server, admin, responder_ip)
    sid, key, tid = env["server"]["id"], env["server"]["agent_key"], env["test"]["id"]
    first = probe_call(server, sid, key, "GET", "/probe/v1/tests")
    etag = first.headers["etag"]
    assert first.status_code == 200 and [t["id"] for t in first.json()["tests"]] == [tid]
    again = probe_call(server, sid, key, "GET", "/probe/v1/tests", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    with server.client(env["user"]["username"], env["user"]["password"]) as c:  # the list changes
        assert c.delete(env["base"]).status_code == 200
        changed = probe_call(server, sid, key, "GET", "/probe/v1/tests", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.json()["tests"] == [], changed.text
        probe = Probe(server, env["server"], tmp_path / "spool", poll_seconds=None)  # the agent's default
        try:
            wait_for(lambda: "logged in" in probe.log(), 20, "login")
            time.sleep(1)
            r = c.post(
                f"/users/{env['user']['id']}/endpoints/{env['endpoint']['id']}/voip_tests",
                json={"voip_test": {"server_id": sid, "interval_seconds": 5, "num_tests": 3, "interpacket_ms": 20}},
            )
            assert r.status_code == 201, r.text
            created, new_id = time.monotonic(), r.json()["id"]
            wait_for(lambda: stored_uuids(server, new_id), 15, "the new test's first result")
            assert time.monotonic() - created < 12  # a 2 s poll, a first run within the 5 s interval, the send
        finally:
            probe.stop()


def test_wrong_and_cancelled_keys_are_refused(server, admin):
    env = setup_test(server, admin, "192.0.2.1")
    sid, key = env["server"]["id"], env["server"]["agent_key"]
    r = probe_call(server, sid, key, json={"version": "9.9"})
    assert r.status_code == 200 and r.json() == {"server_id": sid, "name": "probe-e2e", "poll_seconds": 2}
    r = probe_call(server, sid, key, "GET", "/probe/v1/tests")
    assert r.status_code == 200
    assert [t["id"] for t in r.json()["tests"]] == [env["test"]["id"]]
    assert set(r.json()["tests"][0]) >= {"id", "ip_address", "codec", "num_tests", "interpacket_ms", "interval_seconds"}
    for bad in ((sid, key + "x"), (sid + 1000, key), ("abc", key)):
        r = probe_call(server, *bad)
        assert r.status_code == 401 and r.json()["error"]["code"] == 401
    assert httpx.post(server.url + "/probe/v1/login").status_code == 401
    assert httpx.get(server.url + "/probe/v1/nothing").json()["error"]["code"] == 404
    # idempotent results: the same uuid twice stores once
    item = {
        "uuid": "6f0d8a36-2b1e-4a4e-9a55-3f2c1b0d9e01",
        "voip_test_id": env["test"]["id"],
        "tested_at": "2024-01-01T00:00:00Z",
        "packets_sent": 5,
        "packets_received": 5,
        "loss_pct": 0.0,
        "rtt_min_ms": 1.0,
        "rtt_avg_ms": 1.5,
        "rtt_max_ms": 2.0,
        "jitter_ms": 0.1,
        "mos": 4.4,
        "error": None,
    }
    assert probe_call(server, sid, key, path="/probe/v1/results", json={"results": [item]}).json() == {"stored": 1}
    assert probe_call(server, sid, key, path="/probe/v1/results", json={"results": [item]}).json() == {"stored": 0}
    bad = {**item, "uuid": "6f0d8a36-2b1e-4a4e-9a55-3f2c1b0d9e02", "voip_test_id": 10**9}
    r = probe_call(server, sid, key, path="/probe/v1/results", json={"results": [item, bad]})
    assert r.status_code == 422 and r.json()["error"]["refused"] == [1]
    # a cancelled server's key stops working
    with server.client(env["user"]["username"], env["user"]["password"]) as c:
        assert c.delete(f"/servers/{sid}").status_code == 200
    assert probe_call(server, sid, key).status_code == 401
    assert probe_call(server, sid, key, "GET", "/probe/v1/tests").status_code == 401


def test_openapi_documents_the_probe_routes(server):
    doc = httpx.get(server.url + "/openapi.json").json()
    for path, method in (("/probe/v1/login", "post"), ("/probe/v1/tests", "get"), ("/probe/v1/results", "post")):
        assert doc["paths"][path][method]["tags"] == ["probe"]


def test_local_probe_is_listed_on_a_fresh_install(server, admin):
    user = new_user(admin)
    with server.client(user["username"], user["password"]) as c:
        local = [s for s in c.get("/servers").json()["collection"] if s["name"] == "local"]
        assert len(local) == 1 and local[0]["private"] is False and local[0]["ip_address"] == "127.0.0.1"
    # the built-in agent logs in against its own HTTP service
    wait_for(lambda: admin.get(f"/servers/{local[0]['id']}").json()["last_login_date"], 20, "local login")
    key_file = server.data_dir / "probe.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_serve_restart_loses_and_doubles_nothing(fresh_server, tmp_path, responder_ip):
    srv = fresh_server.start()
    with srv.client() as admin:
        env = setup_test(srv, admin, responder_ip)
    tid = env["test"]["id"]
    probe = Probe(srv, env["server"], tmp_path / "spool")
    try:
        wait_for(lambda: len(stored_uuids(srv, tid)) >= 2, 30, "results before the restart")
        srv.stop(signal.SIGKILL)
        n = len(probe.uuids(tid))
        wait_for(lambda: len(probe.uuids(tid)) >= n + 2, 20, "results made while serve is down")
        srv.start()
        # every result the probe made reaches the database once
        wait_for(lambda: set(probe.uuids(tid)) <= set(stored_uuids(srv, tid)), 45, "the spool to drain")
        # the built-in probe and its key file survive a restart: still one "local" server
        with srv.client() as admin:
            assert [s["name"] for s in admin.get("/servers").json()["collection"]].count("local") == 1
    finally:
        probe.stop()
    logged, stored = probe.uuids(tid), stored_uuids(srv, tid)
    assert len(logged) >= 4 and len(logged) == len(set(logged))
    assert len(stored) == len(set(stored)), "a result was stored twice"
    assert set(stored) <= set(logged)
    assert set(logged) - set(stored) <= probe.spooled(), "a result was lost"
