"""store/db.py's change mark and lazy read transactions, and the caches that trust them
(repos.Reads): a mark changes with every commit by anyone (this process, another connection as a
SIP worker or the CLI would hold), and what a read unit kept is handed out again only while it does
not; a read unit that only finds cached answers never touches the database."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import text

from switchboard.domain import repos
from switchboard.domain.entities import utcnow
from switchboard.domain.errors import Unauthenticated
from switchboard.domain.identity import IdentityService
from switchboard.domain.monitoring import MonitoringService
from switchboard.domain.security import SecretBox, token_digest
from switchboard.store.db import Database


@pytest.fixture
async def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/db.sqlite")
    await db.migrate()
    yield db
    await db.close()


async def mark_of(db) -> object:
    async with db.transaction(write=False) as conn:
        return conn.mark


async def test_the_mark_changes_with_every_commit_by_anyone_and_only_then(db, tmp_path):
    first = await mark_of(db)
    assert first is not None and await mark_of(db) == first
    async with db.transaction(write=False) as conn:  # a read changes nothing, nor a write of nothing
        await conn.execute(text("SELECT count(*) FROM users"))
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE users SET name = name WHERE id = -1"))
    assert await mark_of(db) == first
    async with db.transaction() as conn:  # this process's own write
        assert conn.mark is None  # a write transaction's reads are never kept
        await conn.execute(text("CREATE TABLE mine (x INTEGER)"))
    second = await mark_of(db)
    assert second != first
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)  # as another process would
    try:
        other.execute("CREATE TABLE scratch (x INTEGER)")
        third = await mark_of(db)
        assert third not in (first, second)
        other.execute("BEGIN")
        other.execute("INSERT INTO scratch VALUES (1)")
        assert await mark_of(db) == third  # not committed yet
        other.execute("ROLLBACK")
        assert await mark_of(db) == third
        other.execute("INSERT INTO scratch VALUES (2)")
        assert await mark_of(db) != third
    finally:
        other.close()


async def test_no_mark_without_a_file_or_on_another_database(tmp_path):
    missing = Database(f"sqlite:///{tmp_path}/not-yet.sqlite")
    assert missing.change_mark() is None  # not created: nothing may be kept (and nothing is created)
    assert not (tmp_path / "not-yet.sqlite").exists()
    await missing.migrate()
    other = Database(f"sqlite:///{tmp_path}/other.sqlite")
    await other.migrate()
    try:
        assert missing.change_mark() is not None
        assert missing.change_mark() != other.change_mark()  # each database's marks are its own
    finally:
        await missing.close()
        await other.close()


async def test_a_read_unit_begins_at_its_first_statement(db):
    pool = db.engine.pool
    async with db.transaction(write=False):
        assert pool.checkedout() == 0
    async with db.transaction(write=False) as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0
    with pytest.raises(RuntimeError):
        async with db.transaction(write=False) as conn:
            await conn.execute(text("SELECT 1"))
            raise RuntimeError("handler failed")
    assert pool.checkedout() == 0


async def test_kept_reads_are_handed_out_only_under_the_same_mark(db):
    reads = repos.Reads(size=2)
    async with db.transaction(write=False) as conn:
        assert reads.put(conn, "k", [1]) == [1]
    async with db.transaction(write=False) as conn:
        assert reads.get(conn, "k") == [1]
    async with db.transaction() as conn:
        assert reads.get(conn, "k") is None  # a write transaction: never
        reads.put(conn, "w", [2])
        await conn.execute(text("CREATE TABLE mine (x INTEGER)"))
    async with db.transaction(write=False) as conn:
        assert reads.get(conn, "k") is None and reads.get(conn, "w") is None
        for n in range(3):
            reads.put(conn, n, n)
    assert len(reads.memo) <= 2  # emptied when full


@pytest.fixture
async def people(db):
    ids = IdentityService(SecretBox(SecretBox.generate_key()), cache_seconds=60)
    async with db.transaction() as conn:
        await ids.ensure_bootstrap_admin(conn, "root", "root-password")
        root = await ids.authenticate_password(conn, "root", "root-password")
        carol = await ids.create_user(conn, root, {"username": "carol", "password": "carol-pass-1"})
    return ids, root, carol


async def test_a_kept_token_grant_follows_a_revocation_by_another_process_and_the_clock(db, people, tmp_path):
    ids, root, _ = people
    async with db.transaction() as conn:
        token, _ = await ids.issue_token(conn, root, issued_by="test")
        short, _ = await ids.issue_token(conn, root, issued_by="test", ttl=timedelta(seconds=1))
    for _ in range(2):
        async with db.transaction(write=False) as conn:
            assert (await ids.authenticate_token(conn, token)).id == root.id
            assert (await ids.authenticate_token(conn, short)).id == root.id
    async with db.transaction(write=False) as conn:  # the second time: from what was kept
        await ids.authenticate_token(conn, token)
        assert db.engine.pool.checkedout() == 0
    await asyncio.sleep(1.1)  # expired while kept, nothing written meanwhile
    async with db.transaction(write=False) as conn:
        with pytest.raises(Unauthenticated):
            await ids.authenticate_token(conn, short)
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)  # the CLI, another node's process
    try:
        other.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ?", (utcnow().isoformat(" "), token_digest(token))
        )
    finally:
        other.close()
    async with db.transaction(write=False) as conn:
        with pytest.raises(Unauthenticated):
            await ids.authenticate_token(conn, token)


async def test_a_kept_password_login_follows_a_change_by_another_process(db, people, tmp_path):
    ids, _, carol = people
    for _ in range(2):
        async with db.transaction(write=False) as conn:
            assert (await ids.authenticate_password(conn, "carol", "carol-pass-1")).id == carol.id
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        other.execute("UPDATE users SET deleted_at = ? WHERE id = ?", (utcnow().isoformat(" "), carol.id))
    finally:
        other.close()
    async with db.transaction(write=False) as conn:
        with pytest.raises(Unauthenticated):
            await ids.authenticate_password(conn, "carol", "carol-pass-1")


async def test_a_kept_endpoint_list_follows_a_change_by_another_process(db, people, tmp_path):
    _, root, carol = people
    monitoring = MonitoringService()
    views = repos.Views(lambda e: e.name)
    async with db.transaction() as conn:
        await monitoring.create_endpoint(conn, root, carol.id, {"name": "first", "ip_address": "10.0.0.1"})

    async def names():
        async with db.transaction(write=False) as conn:
            return await monitoring.list_endpoints(conn, root, carol.id, views=views)

    assert await names() == ["first"] and await names() == ["first"]
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        other.execute("UPDATE endpoints SET name = 'renamed' WHERE user_id = ?", (carol.id,))
    finally:
        other.close()
    assert await names() == ["renamed"]


async def test_the_mark_is_read_from_the_wal_index_and_a_torn_header_asks_sqlite(db, tmp_path):
    """In WAL mode the mark comes from the -shm file's header (no statement): the test above ran on it.
    While a commit writes that header its two copies differ, and the PRAGMA answers instead, with a
    mark that equals no header mark (a miss, never a false hit); a header of another version is never
    trusted."""
    first = await mark_of(db)
    assert db._shm is not None and first == (first[0], bytes(db._shm[:48]))
    mapped = db._shm
    torn = bytearray(mapped[:96])
    torn[50] ^= 0xFF  # the second copy differs from the first
    db._shm = torn
    try:
        fallback = db.change_mark()
        assert fallback is not None and fallback != first and isinstance(fallback[1], int)
    finally:
        db._shm = mapped
    assert db.change_mark() == first

    from switchboard.store import db as db_module

    shm = tmp_path / "fake-shm"
    shm.write_bytes(bytes(96))  # version 0: not a WAL index this code knows
    assert db_module._map_wal_index(str(shm)) is None
    assert db_module._map_wal_index(str(tmp_path / "missing-shm")) is None


async def test_another_process_commit_changes_the_mark(db, tmp_path):
    """The WAL index is shared memory: a commit by another process (a SIP worker, the CLI) shows at once."""
    import subprocess
    import sys

    before = await mark_of(db)
    assert db._shm is not None
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE x (y)'); c.commit()"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "db.sqlite")], check=True, timeout=60)
    after = await mark_of(db)
    assert after != before and await mark_of(db) == after
