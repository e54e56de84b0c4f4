"""Shared fixtures: a real `switchboard serve` process on free ports, on SQLite and (where it
answers) PostgreSQL, each PostgreSQL session in a fresh database that is dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

PG_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# SWITCHBOARD_TEST_STRICT=1 (set by .ci/run): what would skip for a missing part (PostgreSQL, a SIP
# tool) fails instead, so a green CI run cannot hide a suite that did not run
STRICT = os.environ.get("SWITCHBOARD_TEST_STRICT") == "1"


def skip_or_fail(reason: str) -> None:
    """pytest.skip(reason); in strict mode a failure instead."""
    if STRICT:
        pytest.fail(f"SWITCHBOARD_TEST_STRICT=1, so this does not skip: {reason}", pytrace=False)
    pytest.skip(reason)


BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-secret-1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for TCP and UDP both (SIP takes the same number on each)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_available() -> str | None:
    """None when PostgreSQL answers at PG_URL; else the reason it does not."""
    try:
        asyncio.run(_pg("SELECT 1"))
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "not here"
        return f"PostgreSQL not reachable at {PG_URL}: {e.__class__.__name__}: {e}"


_PG_REASON: list[str | None] = []


def pg_reason() -> str | None:
    if not _PG_REASON:
        _PG_REASON.append(postgres_available())
    return _PG_REASON[0]


class PgDatabase:
    """A fresh database on the PostgreSQL server: created now, dropped by drop()."""

    def __init__(self):
        self.name = f"sb_test_{secrets.token_hex(6)}"
        asyncio.run(_pg(f'CREATE DATABASE "{self.name}"'))
        base, _, _ = PG_URL.rpartition("/")
        self.url = f"{base}/{self.name}"

    def drop(self) -> None:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


LISTENING = re.compile(rb"switchboard: listening http=\S+:(\d+) sip=\S+:(\d+)")


def reported_port(proc: subprocess.Popen, log_path: Path, offset: int, name: str, timeout: float = 20) -> int:
    """The HTTP port a process started with port 0 says it got (`<name>: listening http=host:port`)."""
    pattern = re.compile(re.escape(name).encode() + rb": listening http=\S+:(\d+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            f.seek(offset)
            m = pattern.search(f.read())
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{Path(log_path).read_text(errors='replace')}")
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not say which port it listens on:\n{Path(log_path).read_text(errors='replace')}")


@dataclass
class Server:
    """A running `switchboard serve`. Its first start binds port 0 for HTTP and SIP and reads the
    ports it got from its "listening" line (no free-port guess that another process could take
    before serve binds it); a restart asks for the same ports again."""

    backend: str
    database_url: str
    data_dir: Path
    http_port: int = 0
    sip_port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "SWITCHBOARD_DATABASE_URL": self.database_url,
                "SWITCHBOARD_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
                "SWITCHBOARD_SIP_LISTEN": f"127.0.0.1:{self.sip_port}",
                "SWITCHBOARD_DATA_DIR": str(self.data_dir),
                "SWITCHBOARD_ADMIN_USERNAME": "admin",
                "SWITCHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                # the suites make many failed logins from 127.0.0.1 on purpose; the throttle's own tests
                # (tests/e2e/test_security.py) run servers with the default limits
                "SWITCHBOARD_AUTH_FAILURES_PER_MINUTE": "100000",
                "SWITCHBOARD_AUTH_SOURCE_FAILURES_PER_MINUTE": "0",
                "SWITCHBOARD_AUTH_ACCOUNT_FAILURES_PER_MINUTE": "0",
                # likewise for SIP digests: wrong passwords and unknown names from 127.0.0.1, on purpose
                "SWITCHBOARD_SIP_AUTH_SOURCE_FAILURES_PER_MINUTE": "0",
                "SWITCHBOARD_SIP_AUTH_ACCOUNT_FAILURES_PER_MINUTE": "0",
                "SWITCHBOARD_LOG_LEVEL": "warning",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30) -> Server:
        self.log_path = self.data_dir / "serve.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        offset = log.tell()
        self.proc = subprocess.Popen(
            [str(BIN / "switchboard"), "serve"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(self.log_path, "rb") as f:
                    f.seek(offset)
                    taken = b"already in use" in f.read()
                if taken and (self.http_port or self.sip_port):
                    # a restart asks for its ports again; meanwhile another process may have got one
                    # of them (they are in the ephemeral range): start on fresh ones (port 0)
                    self.http_port = self.sip_port = 0
                    return self.start(timeout)
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.log()}")
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = LISTENING.search(f.read())
            if m is None:
                time.sleep(0.05)
                continue
            self.http_port, self.sip_port = int(m.group(1)), int(m.group(2))
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"serve did not become healthy:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def client(self, user: str = "admin", password: str = ADMIN_PASSWORD, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, password) if user else None, timeout=20, **kw)


@pytest.fixture(params=["sqlite", "postgres"])
async def migrated_db(request, tmp_path):
    """An in-process Database, migrated: SQLite in tmp_path, or a fresh PostgreSQL database dropped
    afterwards (unit tests of services that run on both)."""
    from switchboard.store.db import Database

    pg = None
    if request.param == "postgres":
        if reason := await asyncio.to_thread(pg_reason):
            skip_or_fail(reason)
        pg = await asyncio.to_thread(PgDatabase)
        db = Database(pg.url)
    else:
        db = Database(f"sqlite:///{tmp_path}/unit.db")
    await db.migrate()
    try:
        yield db
    finally:
        await db.close()
        if pg is not None:
            await asyncio.to_thread(pg.drop)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request) -> str:
    if request.param == "postgres" and (reason := pg_reason()):
        skip_or_fail(f"PostgreSQL run skipped: {reason}")
    return request.param


def make_server(backend: str, tmp: Path, **extra_env) -> tuple[Server, PgDatabase | None]:
    pg = None
    if backend == "postgres":
        pg = PgDatabase()
        url = pg.url
    else:
        url = f"sqlite:///{tmp}/switchboard.db"
    return Server(backend, url, tmp, extra_env=extra_env), pg


@pytest.fixture(scope="session")
def server(backend):
    tmp = Path(tempfile.mkdtemp(prefix=f"sb-e2e-{backend}-"))
    srv, pg = make_server(backend, tmp)
    srv.start()
    yield srv
    code = srv.stop()
    log = srv.log()
    if pg:
        pg.drop()
    shutil.rmtree(tmp, ignore_errors=True)
    assert code == 0, f"serve did not stop cleanly on SIGTERM ({code})"
    assert "Traceback" not in log, log


@pytest.fixture
def fresh_server(backend, tmp_path):
    """A server of its own (restart tests): stopped and its database dropped afterwards."""
    srv, pg = make_server(backend, tmp_path)
    yield srv
    srv.stop(signal.SIGKILL)
    if pg:
        pg.drop()


@pytest.fixture(scope="session")
def admin(server) -> httpx.Client:
    with server.client() as c:
        yield c


_counter = iter(range(1, 10**9))


def new_user(admin: httpx.Client, category: str = "Normal", **fields) -> dict:
    """Create a user through the API; returns its JSON plus the password used."""
    n = next(_counter)
    body = {
        "username": f"user{n}_{secrets.token_hex(3)}",
        "password": f"pw-{n}-secret",
        "name": f"User {n}",
        "email": f"user{n}@example.com",
        "category": category,
        **fields,
    }
    r = admin.post("/users", json={"user": body})
    assert r.status_code == 201, r.text
    return {**r.json(), "password": body["password"]}


@pytest.fixture
def alice(admin):
    return new_user(admin)


@pytest.fixture
def bob(admin):
    return new_user(admin)


def as_user(server: Server, user: dict) -> httpx.Client:
    return server.client(user["username"], user["password"])
