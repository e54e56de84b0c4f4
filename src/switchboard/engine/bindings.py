"""The bindings' rows (sip_contacts): what the registrar (engine/registrar.py) commits, and the sweep
that deletes expired bindings and reloads a node's copy.

Kept apart from the registrar, whose REGISTER path runs compiled by mypyc (switchboard/compiled.py):
everything here awaits the database, and an exception that SQLAlchemy's asyncpg driver raises through an
`async with` inside a compiled coroutine and on out of it crashed the process (a segmentation fault,
reproduced outside the project with mypy 2.4.1). Here it stays pure Python; the registrar's compiled
commit awaits `write` and catches what it raises, which is safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from switchboard import events
from switchboard.domain.cluster import NODE_ID
from switchboard.store import tables as t

log = logging.getLogger("switchboard.registrar")


@dataclass(slots=True)
class Binding:
    aor: str
    uri: str
    endpoint: str
    call_id: str
    cseq: int
    user_agent: str
    via_address: str
    transport: str
    path: str
    expires_at: int
    registered_at: int
    status: str = "Unknown"  # Reachable | Unreachable | Unknown (qualify)
    rtt_usec: int | None = None
    next_qualify: float = 0.0


_STORED = (
    "endpoint",
    "call_id",
    "cseq",
    "user_agent",
    "via_address",
    "transport",
    "path",
    "expires_at",
    "registered_at",
)
_STATEMENTS: dict[str, tuple] = {}
_COLUMNS = ("aor", "uri", *_STORED)
# SQLite: the same upsert and delete as plain SQL with positional parameters, run with the driver's
# executemany (no per-row SQLAlchemy parameter processing, which cost more than SQLite's own work)
_SQLITE_UPSERT = (
    f"INSERT INTO {t.sip_contacts.name} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    f" ON CONFLICT (aor, uri) DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in _STORED)}"
)
_SQLITE_DELETE = f"DELETE FROM {t.sip_contacts.name} WHERE aor = ? AND uri = ?"


def _statements(dialect: str) -> tuple:
    """(upsert, delete) for sip_contacts, built once per dialect."""
    stmts = _STATEMENTS.get(dialect)
    if stmts is None:
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.sip_contacts)
        ins = ins.values({k: bindparam(k) for k in _COLUMNS})
        upsert = ins.on_conflict_do_update(index_elements=["aor", "uri"], set_={k: ins.excluded[k] for k in _STORED})
        c = t.sip_contacts.c
        remove = delete(t.sip_contacts).where(c.aor == bindparam("k_aor"), c.uri == bindparam("k_uri"))
        stmts = _STATEMENTS[dialect] = (upsert, remove)
    return stmts


def _row(b: Binding) -> tuple:
    return (
        b.aor,
        b.uri,
        b.endpoint,
        b.call_id,
        b.cseq,
        b.user_agent,
        b.via_address,
        b.transport,
        b.path,
        b.expires_at,
        b.registered_at,
    )


def _write_sqlite(driver, deletes: list[tuple[str, str]], rows: list[tuple]) -> None:
    """On a sqlite3 connection, in its write transaction: executemany straight to the driver (no
    per-row SQLAlchemy parameter processing, which cost more than SQLite's own work)."""
    if deletes:
        driver.executemany(_SQLITE_DELETE, deletes)
    if rows:
        driver.executemany(_SQLITE_UPSERT, rows)


async def write(db, batch: list) -> None:
    """Commit the changes of a batch of REGISTERs, in one transaction: on a SQLite file through the
    database's own sqlite3 writer (Database.sqlite_write: no SQLAlchemy on this path), else in a
    SQLAlchemy transaction."""
    deletes = [(w.aor, uri) for w in batch for uri in w.removes]
    rows = [_row(b) for w in batch for b in w.upserts.values()]
    if db.has_sqlite_writer:
        await db.sqlite_write(_write_sqlite, deletes, rows)
        return
    async with db.transaction() as conn:
        if conn.dialect.name == "sqlite":  # named by a file: URI (no writer of its own)
            await conn.run_sync(lambda sync: _write_sqlite(sync.connection.driver_connection, deletes, rows))
            return
        upsert, remove = _statements(conn.dialect.name)
        if deletes:
            await conn.execute(remove, [{"k_aor": aor, "k_uri": uri} for aor, uri in deletes])
        if rows:
            await conn.execute(upsert, [dict(zip(_COLUMNS, r, strict=True)) for r in rows])


async def sweep(registrar) -> None:
    """Delete expired bindings and reload this node's copy from the database (other nodes'
    registrations included), keeping the qualify state of bindings it already knew."""
    now = int(time.time())
    c = t.sip_contacts.c
    seen = dict(registrar.generation)
    async with registrar.db.transaction() as conn:
        gone = (
            await conn.execute(
                delete(t.sip_contacts).where(c.expires_at <= now).returning(c.aor, c.uri, c.endpoint, c.user_agent)
            )
        ).all()
    for g in gone:  # (the node whose DELETE removed the row tells it, once)
        data = {"aor": g.aor, "contact": g.uri, "endpoint": g.endpoint, "user_agent": g.user_agent, "expires": 0}
        data["node"] = NODE_ID
        events.publish("registration.removed", {**data, "reason": "expired"})
    async with registrar.db.transaction(write=False) as conn:
        rows = (await conn.execute(select(*(getattr(c, k) for k in _COLUMNS)))).all()
    fresh: dict[str, dict[str, Binding]] = {}
    for r in rows:
        row: tuple[Any, ...] = tuple(r)
        b = registrar.pbx.contacts.get(r.aor, {}).get(r.uri)
        if b is None:
            b = Binding(*row)
        else:  # the same object: a qualify probe in flight updates what the views read
            for name, value in zip(_STORED, row[2:], strict=True):
                setattr(b, name, value)
        fresh.setdefault(r.aor, {})[r.uri] = b
    for aor, gen in registrar.generation.items():  # bound while we read: this node's copy is newer
        if seen.get(aor) != gen:
            if aor in registrar.pbx.contacts:
                fresh[aor] = registrar.pbx.contacts[aor]
            else:
                fresh.pop(aor, None)
    if fresh.keys() != registrar.pbx.contacts.keys() or any(
        fresh[a].keys() != registrar.pbx.contacts[a].keys() for a in fresh
    ):
        registrar.pbx.view_cache.clear()
    registrar.pbx.contacts = fresh


async def refresh_aors(registrar, aors) -> None:
    """Re-read these aors' bindings from the database into this node's copy (another node
    changed them: its registration.* event), keeping the qualify state of bindings it knew; an
    aor this node bound meanwhile keeps this node's (newer) copy."""
    aors = sorted(set(aors))
    if not aors:
        return
    c = t.sip_contacts.c
    seen = {a: registrar.generation.get(a) for a in aors}
    now = int(time.time())
    async with registrar.db.transaction(write=False) as conn:
        rows = (
            await conn.execute(select(*(getattr(c, k) for k in _COLUMNS)).where(c.aor.in_(aors), c.expires_at > now))
        ).all()
    fresh: dict[str, dict[str, Binding]] = {a: {} for a in aors}
    for r in rows:
        row: tuple[Any, ...] = tuple(r)
        b = registrar.pbx.contacts.get(r.aor, {}).get(r.uri)
        if b is None:
            b = Binding(*row)
        else:
            b.endpoint, b.call_id, b.cseq, b.user_agent = row[2:6]
            b.via_address, b.transport, b.path, b.expires_at = row[6:10]
        fresh[r.aor][r.uri] = b
    for aor, bindings in fresh.items():
        if registrar.generation.get(aor) != seen[aor]:
            continue
        if bindings:
            registrar.pbx.contacts[aor] = bindings
        else:
            registrar.pbx.contacts.pop(aor, None)
    registrar.pbx.view_cache.clear()


async def run_sweeper(registrar, every: float = 5.0) -> None:
    while True:
        try:
            await sweep(registrar)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("registration sweep failed")
        await asyncio.sleep(every)
