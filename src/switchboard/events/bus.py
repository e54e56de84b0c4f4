"""The event bus: every state change a live view shows is published once, gets a sequence number,
is kept in a bounded history ring and is read by subscribers (the SSE/WebSocket routes).

- `publish(type, data, owner=None)` is synchronous, never blocks its caller and never raises (a
  failure is logged): the SIP engine and the domain call it at each state change.
- Sequence numbers grow monotonically. In process (SQLite) they start at the wall clock in
  microseconds when the process starts and count up by one, so they keep growing across a restart
  (a client resuming with a number from the previous process gets a `gap`). Across nodes sharing
  PostgreSQL (`events.pgbridge`) the number is the cluster's: events go out through NOTIFY and
  every node, the publishing one included, takes them in from LISTEN in that order.
- A subscriber does not own a queue: it keeps a cursor (the last sequence number it read) and reads
  the history ring after it. A subscriber that falls behind further than the ring reaches, or that
  resumes from before the ring's start, gets one `gap` event (`{"from": a, "to": b}`: the events
  numbered a..b may be lost; the gap's own `seq` is b) and then everything the ring keeps.
- Who sees what: an event with `owner` None is about the PBX or the service (admins only); an event
  with an owner (a user id: probe results and alerts of the user's endpoints) is seen by admins and
  by that user.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

log = logging.getLogger("switchboard.events")

HISTORY_EVENTS = 10_000  # the ring keeps at most this many events ...
HISTORY_SECONDS = 600.0  # ... and none older than this


def utc_second_text(sec: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` (UTC) of a whole second since the epoch, each second's text kept
    (strftime cost more than the rest of a timestamp; the seconds asked for repeat). Shared by
    now_rfc3339 and domain.entities.rfc3339_ns."""
    text = _SECONDS.get(sec)
    if text is None:
        if len(_SECONDS) >= 1024:
            _SECONDS.clear()
        text = _SECONDS[sec] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text


_SECONDS: dict[int, str] = {}  # utc_second_text's, by second


def now_rfc3339() -> str:
    """RFC 3339 of now (microseconds, truncated): every event is stamped, and a strftime per event
    was ~3 % of a REGISTER's CPU in a SIP worker (py-spy, 4,000/s)."""
    return rfc3339_of_ns(time.time_ns())


def rfc3339_of_ns(ns: int) -> str:
    """RFC 3339 (UTC, microseconds, truncated) of a time in nanoseconds since the epoch."""
    sec, ns = divmod(ns, 1_000_000_000)
    return f"{utc_second_text(sec)}.{ns // 1000:06d}Z"


class Event:
    """One event. `time` (RFC 3339 UTC) may be given as text or, by `publish`, as the nanoseconds
    since the epoch, rendered when first read: most events (a registrar's refreshes) are never
    shown to a client, and the rendering cost more than the rest of publishing them."""

    __slots__ = ("seq", "type", "_time", "data", "owner", "kept_at", "_json")

    def __init__(
        self, seq: int, type: str, time: str | int, data: dict[str, Any], owner: int | None = None, kept_at: float = 0.0
    ):
        self.seq, self.type, self._time, self.data, self.owner = seq, type, time, data, owner
        self.kept_at = kept_at  # (monotonic) when the bus kept it
        self._json: bytes | None = None

    @property
    def time(self) -> str:
        t = self._time
        if t.__class__ is int:
            t = self._time = rfc3339_of_ns(t)  # type: ignore[arg-type]
        return t  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Event(seq={self.seq}, type={self.type!r}, time={self.time!r}, data={self.data!r}, owner={self.owner})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.seq, self.type, self.time, self.data, self.owner) == (
            other.seq,
            other.type,
            other.time,
            other.data,
            other.owner,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaced

    def public(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "time": self.time, "data": self.data}

    def json(self) -> bytes:
        """The event as sent to clients (cached: serialised once for every subscriber)."""
        if self._json is None:
            self._json = orjson.dumps(self.public(), default=str)
        return self._json


def gap_event(first: int, last: int) -> Event:
    return Event(last, "gap", now_rfc3339(), {"from": first, "to": last})


class Viewer:
    """Who reads a stream: admins see every event, other users the events they own."""

    __slots__ = ("user_id", "admin")

    def __init__(self, user_id: int | None, admin: bool):
        self.user_id, self.admin = user_id, admin

    def may_see(self, ev: Event) -> bool:
        return self.admin or (ev.owner is not None and ev.owner == self.user_id)


class EventBus:
    def __init__(self, *, max_events: int = HISTORY_EVENTS, max_age: float = HISTORY_SECONDS):
        self.max_events, self.max_age = max_events, max_age
        self._events: list[Event] = []
        self._seqs: list[int] = []
        self._start = 0  # index of the oldest kept event in _events/_seqs
        # the highest sequence number that is not (or no longer) in the ring: a cursor below it has a gap
        self._lost_upto = int(time.time() * 1_000_000) - 1
        self._next = self._lost_upto + 1  # in process: the next number given
        self._waiters: set[asyncio.Future] = set()
        # None: in process. Else fn(Event without seq) hands the event to the PostgreSQL bridge,
        # which numbers it and brings it back through deliver()
        self._outbound: Callable[[Event], None] | None = None
        self.published = 0  # counters for /healthz-like views and the bench
        self.dropped = 0
        # the server is stopping: clients' streams (SSE, WebSocket) end; the process's own readers go on
        self.streams_ended = False
        # fn(Event) called with each event as it is kept, in order, on the loop's thread: for a reader
        # that must see every event at once and cheaply (the SIP worker hub), where a Subscription
        # would wake a task per batch. A tap must not block; what it raises is logged.
        self.taps: list[Callable[[Event], None]] = []

    # ---- publishing --------------------------------------------------------------------------
    def publish(self, type: str, data: dict[str, Any], owner: int | None = None) -> None:
        """Publish one event (sync; never blocks, never raises)."""
        try:
            ev = Event(0, type, time.time_ns(), data, owner)
            self.published += 1
            if self._outbound is not None:
                self._outbound(ev)
                return
            ev.seq = self._next
            self._next += 1
            self.deliver(ev)
        except Exception:  # noqa: BLE001 - a publish must never break the state change it reports
            log.exception("could not publish a %s event", type)

    def deliver(self, ev: Event) -> None:
        """Keep a numbered event and wake the subscribers (events arrive in sequence order; an
        older or repeated number is ignored)."""
        if self._seqs and ev.seq <= self._seqs[-1]:
            return
        if ev.seq <= self._lost_upto:
            return
        ev.kept_at = time.monotonic()
        self._events.append(ev)
        self._seqs.append(ev.seq)
        self._prune()
        self.wake()
        for tap in self.taps:
            try:
                tap(ev)
            except Exception:  # noqa: BLE001 - one reader's failure must not stop the others
                log.exception("an event tap failed on a %s event", ev.type)

    def end_streams(self) -> None:
        """The server is stopping: every client stream's next(client=True) returns [] at once, and
        the stream ends (an open dashboard would otherwise hold the HTTP shutdown for its whole
        grace period and then be cancelled mid-read)."""
        self.streams_ended = True
        self.wake()

    def wake(self) -> None:
        """Wake every waiting subscriber (they read again; e.g. after one was told to resume)."""
        waiters, self._waiters = self._waiters, set()
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def reset(self, lost_upto: int = 0) -> None:
        """Forget the history and number from `lost_upto` on (the PostgreSQL bridge takes over the
        numbering: the cluster's sequence replaces the in-process one)."""
        self._events, self._seqs, self._start = [], [], 0
        self._lost_upto = lost_upto
        self._next = lost_upto + 1

    def mark_lost(self, upto: int) -> None:
        """Events up to `upto` are not in the history (the PostgreSQL bridge: before it started, or
        while its LISTEN connection was down)."""
        if upto > self._lost_upto:
            # drop what the ring holds at or below it (none in practice: numbers arrive in order)
            while self._start < len(self._seqs) and self._seqs[self._start] <= upto:
                self._start += 1
            self._lost_upto = max(self._lost_upto, upto)
            self.wake()  # waiting readers learn of the gap now, not at the next event

    def _prune(self) -> None:
        limit = time.monotonic() - self.max_age
        n = len(self._events)
        while self._start < n and (n - self._start > self.max_events or self._events[self._start].kept_at < limit):
            self._lost_upto = self._seqs[self._start]
            self._start += 1
        if self._start > 4096 and self._start * 2 > n:
            del self._events[: self._start]
            del self._seqs[: self._start]
            self._start = 0

    # ---- reading -----------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        """The newest sequence number kept (or lost), the cursor of a reader that wants only new events."""
        return self._seqs[-1] if len(self._seqs) > self._start else self._lost_upto

    @property
    def first_seq(self) -> int | None:
        return self._seqs[self._start] if len(self._seqs) > self._start else None

    def __len__(self) -> int:
        return len(self._seqs) - self._start

    def read(self, after: int, viewer: Viewer | None = None, limit: int = 1000) -> tuple[list[Event], int]:
        """The events after cursor `after` that `viewer` may see (a `gap` first when some were
        lost), at most `limit` of them, and the cursor to read from next."""
        out: list[Event] = []
        if after < self._lost_upto:
            out.append(gap_event(after + 1, self._lost_upto))
            after = self._lost_upto
        i = bisect.bisect_right(self._seqs, after, lo=self._start)
        end = len(self._seqs)
        cursor = after
        while i < end and len(out) < limit:
            ev = self._events[i]
            cursor = ev.seq
            if viewer is None or viewer.may_see(ev):
                out.append(ev)
            i += 1
        return out, cursor

    async def wait(self, after: int, timeout: float | None = None) -> bool:
        """Until an event newer than `after` is kept (True) or `timeout` passed (False)."""
        if self.last_seq > after:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(fut)
        return True

    def subscribe(self, viewer: Viewer | None = None, since: int | None = None) -> Subscription:
        """A reader from `since` (events numbered above it), or from now when None."""
        return Subscription(self, viewer, self.last_seq if since is None else max(since, 0))


class Subscription:
    """One stream's cursor over the bus."""

    def __init__(self, bus: EventBus, viewer: Viewer | None, cursor: int):
        self.bus, self.viewer, self.cursor = bus, viewer, cursor

    def resume(self, since: int) -> None:
        """Replay from `since` (the client asked for it); a reader waiting in next() reads again."""
        self.cursor = max(since, 0)
        self.bus.wake()

    async def next(self, timeout: float | None = None, limit: int = 1000, *, client: bool = False) -> list[Event]:
        """The next events this viewer may see ([] after `timeout` seconds without any). `client`:
        a client's stream, which also gets [] once the bus's streams have ended (end_streams)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            events, self.cursor = self.bus.read(self.cursor, self.viewer, limit)
            if events:
                return events
            if client and self.bus.streams_ended:
                return []
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return []
            await self.bus.wait(self.cursor, left)
