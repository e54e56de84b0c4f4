"""Several `serve` nodes on one PostgreSQL: the cluster's secret key check, and leases for the
background work that must run once per cluster.

Secret key: secrets at rest are encrypted with SWITCHBOARD_SECRET_KEY (domain/security.py), so
every node of a cluster needs the same key. The first node to start writes `key_check` (an
encryption of a known text) into `cluster_meta`; every start decrypts it, and a node whose key
cannot gets `KeyMismatch`, which `serve` turns into a one-line message and exit code 2 (no
traceback, nothing written). A database written before this check existed is checked against
its first encrypted trunk password, if any, before the check row is written.

Leases: one row per job in `leases` (name, holder, expires_at in the database's own epoch
seconds, so the nodes' clocks do not matter). A node takes a job with one upsert that succeeds
only when the row is absent, expired or already its own, and renews it every third of the lease
time; a node that cannot renew stops the job before its lease can run out (it counts from when
it asked, on its own monotonic clock). When the holder dies (SIGKILL), the row simply expires and
another node's next attempt (every fifth of the lease time) takes it: the job moves within the
lease time plus one attempt interval. A node that stops cleanly deletes its rows, so a survivor
takes over at its next attempt. Chosen over `SELECT ... FOR UPDATE SKIP LOCKED` (a row lock held
by an open transaction): a lock needs one connection held open per job for as long as the node
runs it, and a node whose connection hangs keeps the lock for as long as TCP takes to notice; an
expiring row moves after a bounded, configured time, whatever the network does.
On SQLite there is one node: every lease is always held, nothing is written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite

from switchboard.domain.security import SecretBox
from switchboard.events import NODE_ID
from switchboard.store import tables as t

log = logging.getLogger("switchboard.cluster")

KEY_CHECK = "key_check"
_KNOWN = "switchboard cluster key check v1"


class KeyMismatch(Exception):
    """This node's secret key is not the cluster's."""


async def check_secret_key(db, box: SecretBox) -> None:
    """Raise KeyMismatch unless `box` decrypts the cluster's key check (written on first start)."""
    c = t.cluster_meta.c
    async with db.transaction() as conn:
        stored = (await conn.execute(select(c.value).where(c.name == KEY_CHECK))).scalar()
        if stored is None:
            # an older database: its secrets were written with some key; check against one of them
            old = (await conn.execute(select(t.trunks.c.password_enc).limit(1))).scalar()
            if old:
                _decrypts(box, old)
            ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t.cluster_meta)
            await conn.execute(ins.values(name=KEY_CHECK, value=box.encrypt(_KNOWN)).on_conflict_do_nothing())
            stored = (await conn.execute(select(c.value).where(c.name == KEY_CHECK))).scalar()
    _decrypts(box, stored)


def _decrypts(box: SecretBox, ciphertext: str) -> None:
    try:
        box.decrypt(ciphertext)
    except ValueError:
        raise KeyMismatch(
            "this node's secret key (SWITCHBOARD_SECRET_KEY, or DATA_DIR/secret.key) is not the one the "
            "database's secrets were encrypted with: start it with the cluster's key"
        ) from None


class Leases:
    """Runs jobs once per cluster: `run(name, job)` keeps trying to hold lease `name` and runs
    `job()` (a coroutine that runs until cancelled) while it does."""

    def __init__(self, db, *, ttl: float = 10.0, node: str = NODE_ID):
        self.db, self.ttl, self.node = db, ttl, node
        self.held: dict[str, bool] = {}
        self._tasks: list[asyncio.Task] = []

    @property
    def single(self) -> bool:
        return self.db.is_sqlite

    async def acquire(self, name: str) -> bool:
        """Take or renew lease `name` for ttl seconds: True when this node holds it now."""
        if self.single:
            return True
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(
                    text(
                        "INSERT INTO leases (name, holder, expires_at)"
                        " VALUES (:n, :h, extract(epoch FROM clock_timestamp()) + :ttl)"
                        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                        " WHERE leases.holder = excluded.holder"
                        " OR leases.expires_at < extract(epoch FROM clock_timestamp())"
                        " RETURNING holder"
                    ),
                    {"n": name, "h": self.node, "ttl": self.ttl},
                )
            ).first()
        return row is not None

    async def release(self, name: str) -> None:
        if self.single:
            return
        c = t.leases.c
        async with self.db.transaction() as conn:
            await conn.execute(delete(t.leases).where(c.name == name, c.holder == self.node))

    async def holders(self) -> dict[str, str]:
        """Lease name -> holder, of the unexpired leases (for views and tests)."""
        if self.single:
            return dict.fromkeys(self.held, self.node)
        async with self.db.transaction(write=False) as conn:
            rows = (
                await conn.execute(
                    text("SELECT name, holder FROM leases WHERE expires_at >= extract(epoch FROM clock_timestamp())")
                )
            ).all()
        return {r.name: r.holder for r in rows}

    def run(self, name: str, job: Callable[[], Awaitable[None]]) -> asyncio.Task:
        task = asyncio.ensure_future(self._keep(name, job))
        self._tasks.append(task)
        return task

    async def _keep(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        running: asyncio.Task | None = None
        valid_until = 0.0
        renew, retry = self.ttl / 3, max(0.2, self.ttl / 5)
        try:
            while True:
                asked = time.monotonic()
                try:
                    got = await asyncio.wait_for(self.acquire(name), max(1.0, renew))
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - the database away: keep the job only while the lease lasts
                    log.warning("lease %s: could not renew (%s)", name, e)
                    got = None
                if got:
                    valid_until = asked + self.ttl
                    if running is None or running.done():
                        if running is None:
                            log.info("lease %s taken by node %s", name, self.node)
                        running = asyncio.ensure_future(job())
                    self.held[name] = True
                elif got is False or time.monotonic() > valid_until - renew:
                    if running is not None:
                        log.warning("lease %s lost by node %s: stopping the job", name, self.node)
                        await _cancel(running)
                        running = None
                    self.held[name] = False
                await asyncio.sleep(renew if running is not None else retry)
        finally:
            if running is not None:
                await _cancel(running)
            if self.held.pop(name, False):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.release(name), 3)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
