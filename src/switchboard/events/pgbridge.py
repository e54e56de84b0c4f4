"""Events across nodes sharing one PostgreSQL: LISTEN/NOTIFY on channel `switchboard_events`.

Numbering: the cluster has one sequence (`switchboard_event_seq`, migration 0007). A node's
publisher takes the events published on it in batches; per batch, one transaction takes a
transaction-level advisory lock, draws the batch's numbers from the sequence and NOTIFYs the
events (packed, several per notification, under PostgreSQL's 8,000-byte payload limit). The lock
is held until the commit and notifications are delivered in commit order, so every listener, on
any node, receives the whole cluster's events in increasing sequence order. Each node, the
publishing one too, takes its events from its LISTEN connection into its bus (`EventBus.deliver`),
so a subscriber sees one monotonic sequence whichever node it is connected to, and may resume on
another node with the same number.

A node's history starts when its LISTEN starts (earlier numbers are `lost` to it: a resume from
before gets a `gap`); when the LISTEN connection drops, it reconnects and marks the numbers drawn
meanwhile as lost. Publishing never blocks: events wait in a bounded queue while PostgreSQL is
unreachable (the oldest are dropped beyond `MAX_PENDING`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from switchboard.events import NODE_ID
from switchboard.events.bus import Event, EventBus

log = logging.getLogger("switchboard.events")

CHANNEL = "switchboard_events"
SEQUENCE = "switchboard_event_seq"
LOCK_KEY = 7305502  # pg_advisory_xact_lock key of the publishers
MAX_PAYLOAD = 7_800  # bytes per NOTIFY (PostgreSQL refuses 8,000 and more)
MAX_BATCH = 500
MAX_PENDING = 100_000


def listener_name() -> str:
    """The application_name of this node's LISTEN connection (seen in pg_stat_activity)."""
    return f"switchboard-listen-{NODE_ID}"


def dsn_of(database_url: str) -> str:
    """asyncpg's DSN for a `postgresql://` or `postgresql+asyncpg://` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _wire(ev: Event) -> bytes:
    item = orjson.dumps([ev.seq, ev.type, ev.time, ev.data, ev.owner], default=str)
    if len(item) > MAX_PAYLOAD - 16:  # too big for one notification: keep the small fields
        small = {k: v for k, v in ev.data.items() if isinstance(v, (int, float, bool, type(None))) or len(str(v)) < 200}
        small["truncated"] = True
        item = orjson.dumps([ev.seq, ev.type, ev.time, small, ev.owner], default=str)
        if len(item) > MAX_PAYLOAD - 16:
            item = orjson.dumps([ev.seq, ev.type, ev.time, {"truncated": True}, ev.owner])
    return item


def pack(events: list[Event]) -> list[str]:
    """Numbered events as NOTIFY payloads: JSON arrays of [seq, type, time, data, owner]."""
    out: list[str] = []
    cur: list[bytes] = []
    size = 2
    for ev in events:
        item = _wire(ev)
        if cur and size + len(item) + 1 > MAX_PAYLOAD:
            out.append((b"[" + b",".join(cur) + b"]").decode())
            cur, size = [], 2
        cur.append(item)
        size += len(item) + 1
    if cur:
        out.append((b"[" + b",".join(cur) + b"]").decode())
    return out


def unpack(payload: str) -> list[Event]:
    return [Event(seq, type_, time_, data, owner) for seq, type_, time_, data, owner in orjson.loads(payload)]


class PgBridge:
    def __init__(self, bus: EventBus, database_url: str, *, retry: float = 1.0):
        self.bus, self.dsn, self.retry = bus, dsn_of(database_url), retry
        self._pending: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._listen_ok = asyncio.Event()
        # from now on the bus hands its events to us (queued until start()) and takes the cluster's numbers
        bus.reset(0)
        bus._outbound = self._enqueue

    def _enqueue(self, ev: Event) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self.bus.dropped += 1
        self._pending.append(ev)
        self._wake.set()

    async def start(self, timeout: float = 10.0) -> None:
        self._tasks = [asyncio.ensure_future(self._listen_loop()), asyncio.ensure_future(self._publish_loop())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listen_ok.wait(), timeout)

    async def stop(self, timeout: float = 3.0) -> None:
        """Send what is pending (for up to `timeout` seconds), then close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._pending and loop.time() < deadline and self._publisher is not None:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in (self._listener, self._publisher):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)

    # ---- LISTEN ----------------------------------------------------------------------------
    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        try:
            for ev in unpack(payload):
                self.bus.deliver(ev)
        except Exception:  # noqa: BLE001 - a bad payload must not stop the listener
            log.exception("could not read an event notification")

    async def _listen_loop(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=10, server_settings={"application_name": listener_name()}
                )
                self._listener = conn
                await conn.add_listener(CHANNEL, self._on_notify)
                # everything numbered before our LISTEN started is not in this node's history
                last = await conn.fetchval(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {SEQUENCE}")
                self.bus.mark_lost(int(last))
                self._listen_ok.set()
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.execute("SELECT 1"), 5)
                log.warning("event LISTEN connection closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep trying while PostgreSQL is away
                log.warning("event LISTEN failed (%s); retrying", e)
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    self._listener.terminate()
                self._listener = None
            await asyncio.sleep(self.retry)

    # ---- NOTIFY ----------------------------------------------------------------------------
    async def _publish_loop(self) -> None:
        await self._listen_ok.wait()  # numbers drawn before our LISTEN would be lost to our own node
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(MAX_BATCH, len(self._pending)))]
                try:
                    await self._send(batch)
                except asyncio.CancelledError:
                    self._pending.extendleft(reversed(batch))
                    raise
                except Exception as e:  # noqa: BLE001 - retried: the events wait in the queue
                    log.warning("event NOTIFY failed (%s); retrying", e)
                    self._pending.extendleft(reversed(batch))
                    if self._publisher is not None:
                        with contextlib.suppress(Exception):
                            self._publisher.terminate()
                        self._publisher = None
                    await asyncio.sleep(self.retry)

    async def _send(self, batch: list[Event]) -> None:
        if self._publisher is None or self._publisher.is_closed():
            self._publisher = await asyncpg.connect(self.dsn, timeout=10)
        conn = self._publisher
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            seqs = sorted(
                r[0]
                for r in await conn.fetch(f"SELECT nextval('{SEQUENCE}') FROM generate_series(1, $1::int)", len(batch))
            )
            numbered = [Event(s, ev.type, ev.time, ev.data, ev.owner) for s, ev in zip(seqs, batch, strict=True)]
            await conn.execute(
                f"SELECT pg_notify('{CHANNEL}', p) FROM unnest($1::text[]) WITH ORDINALITY AS x(p, i) ORDER BY i",
                pack(numbered),
            )
