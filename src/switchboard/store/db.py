"""Database access: SQLite (WAL) or PostgreSQL (asyncpg), Alembic migrations, and the
one-transaction-per-request unit of work.

Both give the domain the same awaitable connection API. PostgreSQL uses SQLAlchemy's async
engine. SQLite runs its statements directly on the event loop thread through a sync engine:
an indexed SQLite query takes ~10 µs, while a round trip through aiosqlite's worker thread took
~200-700 µs on this machine (measured; bench/http_bench.py shows the request-rate effect), so a
thread hop costs far more than the work. Writers are serialised by an asyncio lock (SQLite has one
writer anyway) and begin IMMEDIATE, so a statement never waits on another in-process writer;
synchronous=NORMAL in WAL mode means a commit does not fsync (checkpoints do)."""

from __future__ import annotations

import asyncio
import itertools
import mmap
import sqlite3
import struct
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_BUSY_SECONDS = 30  # how long a statement waits for another connection's lock
_BUSY_MS = _BUSY_SECONDS * 1000
_DATABASES = itertools.count(1)  # each Database's number, part of its change marks


def async_url(url: str) -> str:
    """Map the documented URL forms (`sqlite:///path`, `postgresql://...`) to our drivers."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        u = u.set(drivername="sqlite+pysqlite")
    elif u.get_backend_name() in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
    return u.render_as_string(hide_password=False)


def alembic_config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


# SQLite's WAL index (https://www.sqlite.org/walformat.html): the -shm file begins with two copies of a
# 48-byte header (iVersion 3007000, native byte order; isInit at byte 12)
_WAL_HEADER = 48
_WAL_HEADERS = 2 * _WAL_HEADER
_WAL_INDEX_VERSION = 3007000


def _set_pragmas(conn, busy_ms: int) -> None:
    """What every connection of ours sets (the pool's, on connect; sqlite_write's writer)."""
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", f"busy_timeout={busy_ms}"):
        conn.execute(f"PRAGMA {pragma}")


def _map_wal_index(path: str) -> mmap.mmap | None:
    """The WAL index's headers, mapped read-only; None when there is no such file or its header is
    not one this code knows (another version, not initialised): change_mark then asks SQLite."""
    try:
        with open(path, "rb") as f:
            shm = mmap.mmap(f.fileno(), _WAL_HEADERS, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    (version,) = struct.unpack_from("=I", shm, 0)
    if version != _WAL_INDEX_VERSION or shm[12] != 1:
        shm.close()
        return None
    return shm


class Database:
    def __init__(self, url: str, *, pool_size: int = 20):
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict = {}
        if self.is_sqlite:
            db_path = make_url(self.url).database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        # connections kept open for the request concurrency we expect: an overflow connection is
        # closed when returned, and reopening one (PRAGMAs, WAL set-up) costs far more than a query
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        if self.is_sqlite:
            kwargs["connect_args"]["check_same_thread"] = False
            self.engine = create_engine(self.url, **kwargs)
        else:
            self.engine = create_async_engine(self.url, **kwargs)
        # SQLite allows one writer; serialising writers in-process avoids busy upgrade failures,
        # and BEGIN IMMEDIATE protects against other processes (the CLI) as well.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # SQLite's pool is a sync QueuePool used on the loop thread: a checkout from an exhausted
        # pool would block the thread (and so the coroutines holding connections, which could
        # never give them back) until its timeout. Waiting for a connection happens here instead,
        # on the loop: e.g. 64 concurrent first logins each hold a read connection while argon2
        # runs in a worker thread, and the 41st waits here, not in the pool (found by
        # bench/http_bench.py's POST scenario: the server stalled for 30 s).
        self._slots = asyncio.Semaphore(2 * pool_size) if self.is_sqlite else None
        # change_mark()'s connection, opened on first use
        self._ident = next(_DATABASES)
        self._watch: sqlite3.Connection | None = None
        self._watch_path: str | None = None
        self._shm: mmap.mmap | None = None  # the WAL index (change_mark), mapped on first use
        self._writer: sqlite3.Connection | None = None  # sqlite_write's connection, opened on first use
        self._shm_tried = False
        if self.is_sqlite:
            db_path = make_url(self.url).database
            if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
                self._watch_path = str(Path(db_path).resolve())
        if self.is_sqlite:
            self._install_sqlite_hooks()

    def _install_sqlite_hooks(self) -> None:
        sync_engine = self.engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no cover - driver callback
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite quirk)
            cur = dbapi_conn.cursor()
            _set_pragmas(cur, _BUSY_MS)
            cur.close()

    def transaction(self, *, write: bool = True) -> AbstractAsyncContextManager[AsyncConnection]:
        """One unit of work: committed when the block ends normally, rolled back on any error. On
        SQLite a read is a _LazyRead (it begins at its first statement)."""
        if self.is_sqlite and not write:
            return _LazyRead(self)
        return self._transaction(write)

    @asynccontextmanager
    async def _transaction(self, write: bool) -> AsyncIterator[AsyncConnection]:
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        slots = self._slots
        await self._slot()
        try:
            async with self._write_lock:
                with self.engine.connect() as conn:
                    await _sqlite_begin_immediate(conn)
                    with conn.begin():
                        yield _LoopConnection(conn)
        finally:
            slots.release()

    async def _slot(self) -> None:
        """A connection slot (see _slots): waited for on the loop, as the pool's own checkout would."""
        slots = self._slots
        if slots.locked():
            async with asyncio.timeout(30):  # the pool's own checkout timeout
                await slots.acquire()
        else:
            await slots.acquire()

    def change_mark(self) -> tuple | None:
        """A value that changes whenever any connection commits a change to the database: this
        process's pool, a SIP worker, the CLI, another program. Read before a read transaction
        begins, it lets a cache keep what that transaction read for as long as the mark stays the
        same (the reads then saw exactly the data a later reader with the same mark would). SQLite
        only; None where there is none (PostgreSQL, an in-memory database, a file that does not
        exist yet), and then nothing may be cached. The mark names this Database too (two
        databases' values may be equal).

        Where it comes from: SQLite's `PRAGMA data_version`, on a connection of its own that never
        writes (the value changes when another connection commits). In WAL mode (ours: see
        "connect") the same fact is read for ~0.3 µs instead of ~12 µs (measured inside `serve`
        under load; ~1.5 µs alone) from the WAL index's header in the `-shm` file, mapped read-only:
        every commit rewrites it (its change counter, frame count and checksums; see
        https://www.sqlite.org/walformat.html), and SQLite keeps two copies, written one after the
        other, so a header read while a commit writes it shows two different copies and the
        PRAGMA answers instead. The two kinds of mark never compare equal (a spurious miss, never a
        false hit). The mapping stays the file SQLite uses because the watching connection keeps
        the database open (the `-shm` is only removed by the last connection to close); a header of
        an unknown version or not initialised is not trusted (the PRAGMA is used, always)."""
        shm = self._shm
        if shm is not None:
            head = shm[:_WAL_HEADERS]
            if head[:_WAL_HEADER] == head[_WAL_HEADER:]:
                return (self._ident, head[:_WAL_HEADER])
        watch = self._watch
        if watch is None:
            if self._watch_path is None:
                return None
            try:
                watch = self._watch = sqlite3.connect(
                    f"file:{quote(self._watch_path)}?mode=rw", uri=True, check_same_thread=False, isolation_level=None
                )
            except sqlite3.Error:  # not created yet (before the first migration): try again next time
                return None
        try:
            mark = (self._ident, watch.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None
        if shm is None and not self._shm_tried:  # the watching connection has read: -shm exists in WAL mode
            self._shm_tried = True
            self._shm = _map_wal_index(self._watch_path + "-shm")
            if self._shm is not None:
                return self.change_mark()
        return mark

    @property
    def has_sqlite_writer(self) -> bool:
        """Whether sqlite_write can be used: a SQLite database in a file."""
        return self._watch_path is not None

    async def sqlite_write(self, fn, *args):
        """`fn(sqlite3_connection, *args)` in one write transaction (BEGIN IMMEDIATE ... COMMIT, or
        ROLLBACK when it raises) on a sqlite3 connection of this Database's own, without SQLAlchemy:
        for a hot path whose statements are plain SQL (the registrar's binding writes). SQLAlchemy's
        pool checkout, transaction objects, connection reset and busy-timeout switching cost more
        than the statements of a small group of REGISTERs (measured: 107.7 -> 92.6 µs of CPU per
        REGISTER transaction with this path; bench/README.md). In-process writers still take turns
        (the same write lock as `transaction`); other processes are waited for on the loop, as
        there. Only where `has_sqlite_writer`."""
        async with self._write_lock:
            conn = self._writer
            if conn is None:
                conn = sqlite3.connect(self._watch_path, check_same_thread=False, isolation_level=None)
                _set_pragmas(conn, 0)  # its BEGIN IMMEDIATE waits on the loop (_begin_immediate)
                self._writer = conn
            await _begin_immediate(conn)
            try:
                out = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return out

    async def migrate(self) -> str:
        """Bring the schema to the newest revision; returns what was done, for the log: "schema
        created (revision R)", "schema migrated from A to B" or "schema up to date (revision R)"."""

        def upgrade(sync_conn) -> tuple[str | None, str | None]:
            before = MigrationContext.configure(sync_conn).get_current_revision()
            command.upgrade(alembic_config(sync_conn), "head")
            return before, MigrationContext.configure(sync_conn).get_current_revision()

        async with self.transaction() as conn:
            if not self.is_sqlite:
                # several nodes may start at once: one migrates, the others wait for it
                await conn.execute(text("SELECT pg_advisory_xact_lock(7305501)"))
            before, after = await conn.run_sync(upgrade)
        if before is None:
            return f"schema created (revision {after})"
        if before != after:
            return f"schema migrated from revision {before} to {after}"
        return f"schema up to date (revision {after})"

    async def ping(self) -> bool:
        try:
            async with self.transaction(write=False) as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm, self._shm_tried = None, False
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.is_sqlite:
            self.engine.dispose()
        else:
            await self.engine.dispose()


def _sqlite_begin(conn: Connection, mode: str) -> None:
    """BEGIN DEFERRED or IMMEDIATE on the driver's connection (in autocommit mode: see "connect"),
    before SQLAlchemy's own begin (a no-op for pysqlite); its commit or rollback ends it. Issued
    here rather than from a "begin" event listener: any engine event makes SQLAlchemy dispatch
    events on every connection and statement, which cost more than the queries (measured: ~40 µs
    per transaction)."""
    conn.connection.driver_connection.execute(f"BEGIN {mode}")


async def _sqlite_begin_immediate(conn: Connection) -> None:
    """BEGIN IMMEDIATE on a pool connection, waiting on the loop while another process (a SIP
    worker, the CLI) holds the write lock (_begin_immediate), its busy timeout off meanwhile."""
    raw = conn.connection.driver_connection
    raw.execute("PRAGMA busy_timeout=0")
    try:
        await _begin_immediate(raw)
    finally:
        raw.execute(f"PRAGMA busy_timeout={_BUSY_MS}")


async def _begin_immediate(raw: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE on a connection whose busy timeout is 0, waiting on the loop while another
    process holds the write lock. SQLite's own busy handler would sleep in the thread, that is, stop
    the event loop for 1-100 ms at a time (its back-off), which at a few thousand REGISTERs/s
    overflows the UDP receive buffer. So the attempt is retried here, yielding, for as long as
    busy_timeout would have waited (30 s)."""
    delay, deadline = 0.0002, None
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            now = asyncio.get_running_loop().time()
            deadline = deadline or now + _BUSY_SECONDS
            if now > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.005)


class _LoopConnection:
    """The awaitable face of a sync SQLite connection (the subset of AsyncConnection we use):
    execute() returns the same buffered result object AsyncConnection.execute() does. `mark`:
    see _LazyRead (None: a write transaction, whose reads a cache must not keep)."""

    __slots__ = ("_conn",)
    mark = None

    def __init__(self, conn: Connection):
        self._conn = conn

    @property
    def dialect(self):
        return self._conn.dialect

    async def execute(self, statement, parameters=None):
        return self._conn.execute(statement, parameters)

    async def run_sync(self, fn, *args, **kw):
        return fn(self._conn, *args, **kw)


class _LazyRead:
    """A SQLite read transaction that begins at its first statement: a request whose answer
    comes from caches (authentication, a list kept by its change mark) takes no connection slot,
    checks out no connection and runs no BEGIN/COMMIT. It reads one snapshot from its first
    statement on, as a transaction begun earlier would (BEGIN DEFERRED takes its snapshot at the
    first read anyway). Its own async context manager (Database.transaction) rather than a
    generator's, which cost a few µs more per request. `mark`: Database.change_mark() read on
    entering, before the transaction began, so whatever it reads is at least that fresh (see
    change_mark). One task at a time uses a unit, as with any of our connections (asyncpg's refuses
    concurrent use too)."""

    __slots__ = ("_db", "_conn", "_txn", "mark")

    def __init__(self, db: Database):
        self._db = db
        self._conn: Connection | None = None
        self._txn = None
        self.mark: tuple[int, int] | None = None

    async def __aenter__(self) -> _LazyRead:
        self.mark = self._db.change_mark()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        self._end(commit=exc_type is None)
        return False

    @property
    def dialect(self):
        return self._db.engine.dialect

    async def _begin(self) -> Connection:
        await self._db._slot()
        try:
            conn = self._db.engine.connect()
            try:
                _sqlite_begin(conn, "DEFERRED")
                self._txn = conn.begin()
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._db._slots.release()
            raise
        self._conn = conn
        return conn

    async def execute(self, statement, parameters=None):
        return (self._conn or await self._begin()).execute(statement, parameters)

    async def run_sync(self, fn, *args, **kw):
        return fn(self._conn or await self._begin(), *args, **kw)

    def _end(self, *, commit: bool) -> None:
        conn, txn = self._conn, self._txn
        if conn is None:
            return
        self._conn = self._txn = None
        try:
            if commit:
                txn.commit()
            else:
                txn.rollback()
        finally:
            try:
                conn.close()
            finally:
                self._db._slots.release()
