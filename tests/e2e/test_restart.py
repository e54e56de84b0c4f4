"""What was acknowledged is there after SIGKILL and a new start (same database, same data dir)."""

from __future__ import annotations

import signal

from tests.conftest import ADMIN_PASSWORD


def test_acknowledged_writes_survive_sigkill(fresh_server):
    srv = fresh_server.start()
    with srv.client() as c:
        u = c.post("/users", json={"user": {"username": "durable", "password": "durable-pw-1"}}).json()
        ep = c.post(f"/users/{u['id']}/endpoints", json={"endpoint": {"name": "kept", "ip_address": "10.0.0.1"}})
        assert ep.status_code == 201
        s = c.post("/servers", json={"server": {"name": "kept", "ip_address": "10.0.0.2"}}).json()
        t = c.post(
            f"/users/{u['id']}/endpoints/{ep.json()['id']}/voip_tests", json={"voip_test": {"server_id": s["id"]}}
        )
        assert t.status_code == 201
    srv.stop(signal.SIGKILL)
    srv.start()
    with srv.client() as c:
        assert c.get(f"/users/{u['id']}").json()["username"] == "durable"
        assert c.get(f"/users/{u['id']}/endpoints/{ep.json()['id']}").json()["name"] == "kept"
        assert c.get(f"/servers/{s['id']}").json()["name"] == "kept"
        assert c.get(f"/users/{u['id']}/endpoints/{ep.json()['id']}/voip_tests").json()["metadata"]["count"] == 1
    with srv.client("durable", "durable-pw-1") as c:
        assert c.get("/users/me").status_code == 200
    with srv.client("admin", ADMIN_PASSWORD) as c:
        assert c.get("/users/me").json()["master"] is True


def test_sigterm_is_graceful(fresh_server):
    srv = fresh_server.start()
    assert srv.stop(signal.SIGTERM) == 0
    assert "switchboard stopped" in srv.log() or srv.proc.returncode == 0
    assert "Traceback" not in srv.log()
