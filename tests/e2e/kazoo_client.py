"""A small KAZOO API client for the e2e tests, and users of each authentication level made with
the real CLI (`switchboard user create --role ...`)."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_PASSWORD, BIN, Server, reported_port
from tests.sip_peers import stop_process, wait_for

ENVELOPE_OK = {"auth_token", "data", "request_id", "status"}
ENVELOPE_ERR = {"auth_token", "data", "error", "message", "request_id", "status"}


def cli_user(server: Server, role: str) -> tuple[str, str]:
    """A user of `role` created with the CLI against the server's database; (username, password)."""
    name, password = f"kz-{role}-{secrets.token_hex(3)}", f"pw-{secrets.token_hex(6)}"
    subprocess.run(
        [
            str(BIN / "switchboard"),
            "user",
            "create",
            name,
            "--password",
            password,
            "--role",
            role,
            "--database-url",
            server.database_url,
        ],
        check=True,
        capture_output=True,
        env=server.env(),
        timeout=60,
    )
    return name, password


def md5_credentials(username: str, password: str) -> str:
    return hashlib.md5(f"{username.lower()}:{password}".encode(), usedforsecurity=False).hexdigest()


class Kazoo:
    """Calls /v2 with X-Auth-Token (and X-Kazoo-Cluster-ID when set)."""

    def __init__(self, server: Server, token: str | None = None, cluster: str | None = None):
        self.server = server
        self.http = httpx.Client(base_url=server.url + "/v2", timeout=30)
        self.token = token
        self.cluster = cluster

    @classmethod
    def login(cls, server: Server, username: str = "admin", password: str = ADMIN_PASSWORD) -> Kazoo:
        k = cls(server)
        r = k.call("PUT", "/user_auth", json={"data": {"username": username, "password": password}}, auth=False)
        assert r.status_code == 201, r.text
        k.token = r.json()["auth_token"]
        return k

    def close(self) -> None:
        self.http.close()

    def headers(self, auth: bool = True, **extra: str) -> dict[str, str]:
        h = {}
        if auth and self.token:
            h["X-Auth-Token"] = self.token
        if self.cluster:
            h["X-Kazoo-Cluster-ID"] = self.cluster
        h.update(extra)
        return h

    def call(
        self, method: str, path: str, *, auth: bool = True, headers: dict | None = None, **kw: Any
    ) -> httpx.Response:
        return self.http.request(method, path, headers={**self.headers(auth), **(headers or {})}, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> dict:
        """The envelope of a successful call (checks status and envelope keys)."""
        r = self.call(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        body = r.json()
        assert ENVELOPE_OK <= set(body), body
        assert body["status"] == "success" and body["auth_token"] == (self.token or body["auth_token"])
        assert len(body["request_id"]) >= 16
        return body

    def err(self, method: str, path: str, status: int, message: str | None = None, **kw: Any) -> dict:
        """The envelope of a refused call: KAZOO's error body with the status as a string."""
        r = self.call(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        body = r.json()
        assert set(body) == ENVELOPE_ERR, body
        assert body["status"] == "error" and body["error"] == str(status), body
        if message is not None:
            assert body["message"] == message, body
        return body


class CarrierSandbox:
    """A real `switchboard carrier-sandbox` process seeded with `data` (written to workdir)."""

    def __init__(self, workdir: Path, data: dict):
        self.workdir, self.data = workdir, data
        self.port = 0  # until it starts: it binds port 0 and says which it got
        self.url = ""
        self.api_key = data["api_key"]
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "sandbox.log"

    def start(self) -> CarrierSandbox:
        path = self.workdir / "carrier.json"
        path.write_text(json.dumps(self.data))
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        offset = log.tell()
        self.proc = subprocess.Popen(
            [str(BIN / "switchboard"), "carrier-sandbox", "--listen", f"127.0.0.1:{self.port}", "--data", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.port = reported_port(self.proc, self.log_path, offset, "carrier-sandbox")
        self.url = f"http://127.0.0.1:{self.port}"

        def up() -> bool:
            try:
                return (
                    httpx.get(
                        self.url + "/v1/usage", timeout=1, headers={"Authorization": f"Bearer {self.api_key}"}
                    ).status_code
                    == 200
                )
            except httpx.HTTPError:
                return False

        wait_for(up, 20, what="carrier-sandbox up")
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = httpx.request(
            method, self.url + "/v1/admin" + path, timeout=10, headers={"Authorization": f"Bearer {self.api_key}"}, **kw
        )
        assert r.status_code < 300, r.text
        return r


def use_carrier(k: Kazoo, sandbox: CarrierSandbox, mvno: str = "2600hz_sandbox") -> str:
    """Point the master cluster at the sandbox; returns the master cluster's id."""
    master = [c for c in k.ok("GET", "/support/clusters")["data"] if c["master"]][0]
    k.ok(
        "PUT",
        f"/support/clusters/{master['id']}",
        json={"data": {"mvno_id": mvno, "api_url": sandbox.url, "api_key": sandbox.api_key}},
    )
    return master["id"]
