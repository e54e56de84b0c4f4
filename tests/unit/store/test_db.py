"""store/db.py on SQLite: waiting for a connection or for another process's write lock happens on
the event loop (other coroutines keep running), never inside SQLite or SQLAlchemy's pool."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from sqlalchemy import text

from switchboard.store.db import Database


async def ticks_while(awaitable, period: float = 0.005) -> tuple[object, int]:
    """Run `awaitable`; count how often a concurrent coroutine got the loop meanwhile."""
    count = 0

    async def ticker():
        nonlocal count
        while True:
            await asyncio.sleep(period)
            count += 1

    task = asyncio.ensure_future(ticker())
    try:
        return await awaitable, count
    finally:
        task.cancel()


async def test_a_write_waits_for_another_process_lock_without_stopping_the_loop(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/db.sqlite")
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)  # as another process would
    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")

    async def write():
        started = time.monotonic()
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        return time.monotonic() - started

    waited, ticks = await ticks_while(write())
    assert 0.25 < waited < 5
    assert ticks >= 20  # ~60 at 5 ms: SQLite's busy handler would have held the loop for all 0.3 s
    async with db.transaction(write=False) as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30000  # restored
    other.close()
    await db.close()


async def test_more_transactions_than_connections_wait_on_the_loop(tmp_path):
    """Each holds its connection across an await of a thread (as a login's argon2 does): the ones
    past the pool's size wait for a connection without blocking the loop, so all complete."""
    db = Database(f"sqlite:///{tmp_path}/db.sqlite", pool_size=2)

    async def one():
        async with db.transaction(write=False) as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.to_thread(time.sleep, 0.02)

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(20))), 10)
    assert db.engine.pool.checkedout() == 0
    await db.close()
