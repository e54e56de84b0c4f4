"""Database.sqlite_write: the registrar's write path without SQLAlchemy (one sqlite3 connection of the
Database's own): all or nothing, seen by every reader and by the change mark, waiting on the loop for
another process's write lock, and taking turns with this process's other writers."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import text

from switchboard.store.db import Database


@pytest.fixture
async def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/db.sqlite")
    await db.migrate()
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    yield db
    await db.close()


async def rows(db) -> list[int]:
    async with db.transaction(write=False) as conn:
        return [r[0] for r in (await conn.execute(text("SELECT x FROM t ORDER BY x"))).all()]


def insert(conn: sqlite3.Connection, *values: int) -> int:
    conn.executemany("INSERT INTO t (x) VALUES (?)", [(v,) for v in values])
    return len(values)


async def test_a_write_commits_all_or_nothing_and_moves_the_mark(db):
    assert db.has_sqlite_writer
    before = db.change_mark()
    assert await db.sqlite_write(insert, 1, 2) == 2
    assert await rows(db) == [1, 2] and db.change_mark() != before
    after = db.change_mark()
    with pytest.raises(sqlite3.IntegrityError):
        await db.sqlite_write(insert, 3, 1)  # 1 exists: nothing of this write stays
    assert await rows(db) == [1, 2] and db.change_mark() == after
    assert await db.sqlite_write(insert, 3) == 1  # the connection is usable again
    assert await rows(db) == [1, 2, 3]


async def test_it_waits_on_the_loop_for_another_process_lock(db, tmp_path):
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)  # as a SIP worker or the CLI
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker():  # the loop keeps running while the write waits
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    tick = asyncio.ensure_future(ticker())
    write = asyncio.ensure_future(db.sqlite_write(insert, 7))
    await asyncio.sleep(0.05)
    assert not write.done() and ticks > 5
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(write, 5) == 1
    tick.cancel()
    assert await rows(db) == [7]


async def test_it_takes_turns_with_this_process_writers(db):
    release = asyncio.Event()

    async def holder():
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t (x) VALUES (1)"))
            await release.wait()

    held = asyncio.ensure_future(holder())
    await asyncio.sleep(0.01)
    write = asyncio.ensure_future(db.sqlite_write(insert, 2))
    await asyncio.sleep(0.01)
    assert not write.done()  # the in-process write lock, not a busy retry
    release.set()
    await held
    assert await write == 1 and await rows(db) == [1, 2]
