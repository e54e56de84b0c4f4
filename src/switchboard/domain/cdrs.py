"""Call detail records (CDRs) as Asterisk writes them: one record per call, from the caller's
channel (Asterisk's "Party A"), with Asterisk's fields, dispositions and cdr-csv format.

Rules (`cdr_from_channel`):
- src: the caller's number; clid: Asterisk's merged caller ID (`"name" <num>`, or the name or
  the number alone when only one is known).
- dst, dcontext, dstchannel, lastapp, lastdata: from `ch.cdr`, which the call engine keeps (the
  destination as the dialplan saw it, the last application run, the dialled channel).
- start: the channel's creation; answer: when it was answered (None if never); end: when it
  ended. duration = end - start, billsec = end - answer (0 unanswered), whole seconds, truncated
  (as Asterisk without `initiatedseconds`).
- disposition: ANSWERED when answered; else by hangup cause: 17 → BUSY; 34, 42 → CONGESTION;
  causes that mean the call could not be placed (FAILED_CAUSES: no route, unallocated or changed
  number, destination out of order, network failure, protocol errors...) → FAILED; anything else
  (normal clearing, no answer, rejected, none) → NO ANSWER. (Asterisk itself maps only 3 and 20
  to FAILED; the wider set tells a broken route from a caller who gave up.)
- amaflags: `ch.cdr["amaflags"]`, default DOCUMENTATION; userfield, peeraccount from `ch.cdr`
  too; accountcode the channel's; uniqueid, linkedid the channel's; sequence the channel's
  sequence number (the part of the uniqueid after the dot).
- `ch.cdr["disable"]` true (Asterisk's `CDR_PROP(disable)`): no record — how the call engine
  keeps a dialled leg (Party B, already in its caller's record as dstchannel) out of the table.

Text fields are cut to their column sizes and NUL characters dropped, so a record is always
storable (a write that can never succeed would hold the writer's queue forever).

`CdrWriter` is what the call engine calls when a channel ends: it never blocks and never loses a
record to a transient database error (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.errors import Invalid, NotFound
from switchboard.store import tables as t

log = logging.getLogger("switchboard.cdr")

ANSWERED, NO_ANSWER, BUSY, FAILED, CONGESTION = "ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"
DISPOSITIONS = (ANSWERED, NO_ANSWER, BUSY, FAILED, CONGESTION)
AMAFLAGS = ("OMIT", "BILLING", "DOCUMENTATION")
BUSY_CAUSES = frozenset({17})
CONGESTION_CAUSES = frozenset({34, 42})
# Q.850 causes of a call that could not be placed (vs. one that rang out or was given up)
FAILED_CAUSES = frozenset({1, 3, 20, 22, 27, 28, 38, 41, 44, 58, 65, 88, 102, 111, 127})

# Asterisk's cdr-csv Master.csv columns, in order (with loguniqueid, loguserfield and
# newcdrcolumns on: the last three are peeraccount, linkedid, sequence)
CSV_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
)
_INT_COLUMNS = frozenset({"duration", "billsec", "sequence"})
_TIME_COLUMNS = frozenset({"start", "answer", "end"})
# what a record holds (the table's columns but the id)
FIELDS = tuple(c.name for c in t.cdrs.columns if c.name != "id")
_TEXT_LIMITS = {
    c.name: getattr(c.type, "length", None) or 4096
    for c in t.cdrs.columns
    if c.name not in _INT_COLUMNS | _TIME_COLUMNS | {"id"}
}

PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 100, 1000


# ---- one record from a channel (pure) ---------------------------------------------------------------
def clid(name: str, num: str) -> str:
    """Asterisk's ast_callerid_merge: `"name" <num>`, or whichever part is known."""
    if name and num:
        return f'"{name}" <{num}>'
    return name or num or ""


def disposition(answered: bool, cause: int | None) -> str:
    if answered:
        return ANSWERED
    if cause in BUSY_CAUSES:
        return BUSY
    if cause in CONGESTION_CAUSES:
        return CONGESTION
    if cause in FAILED_CAUSES:
        return FAILED
    return NO_ANSWER


def _utc(epoch: float | None) -> datetime | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _seconds(later: float, earlier: float) -> int:
    """Whole seconds between two instants, truncated (Asterisk's duration and billsec)."""
    return max(0, (round(later * 1000) - round(earlier * 1000)) // 1000)


def _sequence(uniqueid: str) -> int:
    _, _, seq = uniqueid.rpartition(".")
    return int(seq) if seq.isdigit() else 0


def cdr_from_channel(ch: Any) -> dict[str, Any]:
    """The CDR of a call from its caller's channel (engine.channel.Channel, duck-typed: this layer
    does not import the engine). A channel not marked gone yet ends now."""
    extra = ch.cdr
    start = ch.created
    end = ch.ended_at if ch.ended_at is not None else time.time()
    answer = ch.answered_at
    record = {
        "accountcode": ch.account_code or "",
        "src": ch.caller_num or "",
        "dst": str(extra.get("dst") or ""),
        "dcontext": str(extra.get("dcontext") or ""),
        "clid": clid(ch.caller_name or "", ch.caller_num or ""),
        "channel": ch.name,
        "dstchannel": str(extra.get("dstchannel") or ""),
        "lastapp": str(extra.get("lastapp") or ""),
        "lastdata": str(extra.get("lastdata") or ""),
        "start": _utc(start),
        "answer": _utc(answer),
        "end": _utc(end),
        "duration": _seconds(end, start),
        "billsec": _seconds(end, answer) if answer is not None else 0,
        "disposition": disposition(answer is not None, ch.hangup_cause),
        "amaflags": str(extra.get("amaflags") or "DOCUMENTATION").upper(),
        "uniqueid": ch.uniqueid,
        "linkedid": ch.linkedid or ch.uniqueid,
        "userfield": str(extra.get("userfield") or ""),
        "peeraccount": str(extra.get("peeraccount") or ""),
        "sequence": _sequence(ch.uniqueid),
    }
    return normalize(record)


def normalize(record: dict[str, Any]) -> dict[str, Any]:
    """A record as stored: every field present, text without NULs and cut to its column's size,
    amaflags and disposition among Asterisk's values."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = record.get(name)
        if name in _TEXT_LIMITS:
            out[name] = str(value or "").replace("\x00", "")[: _TEXT_LIMITS[name]]
        elif name in _INT_COLUMNS:
            out[name] = int(value or 0)
        else:
            out[name] = value
    if out["amaflags"] not in AMAFLAGS:
        out["amaflags"] = "DOCUMENTATION"
    if out["disposition"] not in DISPOSITIONS:
        raise ValueError(f"disposition {out['disposition']!r} is not one of {DISPOSITIONS}")
    if not out["uniqueid"] or out["start"] is None or out["end"] is None:
        raise ValueError("a CDR needs uniqueid, start and end")
    if not out["linkedid"]:
        out["linkedid"] = out["uniqueid"]
    return out


# ---- storage and queries ----------------------------------------------------------------------------
class CdrService:
    """Stores and reads CDRs. `list` filters and pages; `csv` renders Asterisk's Master.csv."""

    async def record(self, conn: AsyncConnection, ch_or_dict: Any) -> dict[str, Any]:
        """Store one CDR (from a channel or a record dict); returns the record as stored. A record
        whose uniqueid is already stored is left as it is (a retried write stores a call once)."""
        record = ch_or_dict if isinstance(ch_or_dict, dict) else cdr_from_channel(ch_or_dict)
        await self.record_many(conn, [record])
        row = (await conn.execute(select(t.cdrs).where(t.cdrs.c.uniqueid == record["uniqueid"]))).first()
        return {str(k): v for k, v in row._mapping.items()}

    async def record_many(self, conn: AsyncConnection, records: Iterable[dict[str, Any]]) -> None:
        rows = [normalize(r) for r in records]
        if not rows:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(dialect.insert(t.cdrs).on_conflict_do_nothing(index_elements=["uniqueid"]), rows)

    async def get(self, conn: AsyncConnection, uniqueid: str) -> dict[str, Any]:
        row = (await conn.execute(select(t.cdrs).where(t.cdrs.c.uniqueid == uniqueid))).first()
        if row is None:
            raise NotFound("cdr", uniqueid)
        return {str(k): v for k, v in row._mapping.items()}

    async def list(
        self,
        conn: AsyncConnection,
        *,
        page: int = 1,
        size: int = PAGE_SIZE_DEFAULT,
        src: str | None = None,
        dst: str | None = None,
        disposition: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        linkedid: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """(rows of the page, newest start first, and the number of rows matching). Filters are exact
        matches; `since` keeps calls that started at or after it, `until` those started before it
        (naive UTC datetimes). page is 1-based; size 1..PAGE_SIZE_MAX."""
        if page < 1:
            raise Invalid("page", "must be an integer of 1 or more")
        if not 1 <= size <= PAGE_SIZE_MAX:
            raise Invalid("page_size", f"must be an integer from 1 to {PAGE_SIZE_MAX}")
        if disposition is not None and disposition.upper() not in DISPOSITIONS:
            raise Invalid("disposition", f"must be one of {', '.join(DISPOSITIONS)}")
        c = t.cdrs.c
        where = []
        if src is not None:
            where.append(c.src == src)
        if dst is not None:
            where.append(c.dst == dst)
        if disposition is not None:
            where.append(c.disposition == disposition.upper())
        if since is not None:
            where.append(c.start >= since)
        if until is not None:
            where.append(c.start < until)
        if linkedid is not None:
            where.append(c.linkedid == linkedid)
        total = (await conn.execute(select(func.count()).select_from(t.cdrs).where(*where))).scalar_one()
        q = select(t.cdrs).where(*where).order_by(c.start.desc(), c.id.desc()).limit(size).offset((page - 1) * size)
        rows = [{str(k): v for k, v in r._mapping.items()} for r in (await conn.execute(q)).all()]
        return rows, total

    @staticmethod
    def csv(rows: Iterable[dict[str, Any]]) -> str:
        """Asterisk's cdr-csv Master.csv lines (usegmtime, loguniqueid, loguserfield and newcdrcolumns
        on): text fields in double quotes (a quote doubled), numbers bare, instants
        "YYYY-MM-DD HH:MM:SS" UTC in quotes, an empty answer as an empty field; no header line."""
        buf = io.StringIO()
        for row in rows:
            cells = []
            for name in CSV_COLUMNS:
                value = row.get(name)
                if name in _INT_COLUMNS:
                    cells.append(str(int(value or 0)))
                elif name in _TIME_COLUMNS:
                    cells.append(f'"{value.strftime("%Y-%m-%d %H:%M:%S")}"' if value is not None else "")
                else:
                    cells.append('"' + str(value or "").replace('"', '""') + '"')
            buf.write(",".join(cells) + "\n")
        return buf.getvalue()

    @staticmethod
    def csv_rows(text: str) -> list[list[str]]:
        """Read Master.csv text back (tests, tools): one list of cells per record."""
        return list(csv.reader(io.StringIO(text)))


# ---- the writer the call engine uses --------------------------------------------------------------
class CdrWriter:
    """Writes CDRs in the background, batched, each batch in its own transaction.

    `channel_ended(ch)` (sync, never blocks, never raises for a storable record) takes the record
    from the channel at once and queues it. The background task (`start()`) waits `linger` seconds
    after the first queued record for more to gather (or until `batch_size` are queued), then
    writes them in one transaction. A failed write (database down, a lock timeout) puts the batch
    back at the head of the queue and is retried with exponential backoff from `retry_min` to
    `retry_max` seconds, forever: nothing is dropped while the process lives. Writes are
    idempotent (by uniqueid), so a batch whose commit succeeded but was reported as failed is not
    stored twice. `flush()` writes whatever is queued now (used at shutdown: `stop()` cancels the
    task, then flushes); only records still unwritten when its timeout expires are lost, and each
    is logged (as an error, with its fields) so it can be recovered from the log.
    """

    def __init__(
        self,
        db,
        cdrs: CdrService,
        *,
        batch_size: int = 200,
        linger: float = 0.2,
        retry_min: float = 0.2,
        retry_max: float = 10.0,
    ):
        self.db, self.cdrs = db, cdrs
        self.batch_size, self.linger = batch_size, linger
        self.retry_min, self.retry_max = retry_min, retry_max
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one batch in flight (the task's or flush()'s)
        self._task: asyncio.Task | None = None
        self.written = 0  # records stored (or found stored) so far
        self.failures = 0  # failed batch writes so far (each retried)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def channel_ended(self, ch: Any) -> None:
        """The call engine: a caller's channel ended. Queues its CDR (unless `ch.cdr["disable"]`)."""
        if ch.cdr.get("disable"):
            return
        self.enqueue(cdr_from_channel(ch))

    def enqueue(self, record: dict[str, Any]) -> None:
        self._queue.append(normalize(record))
        self._wake.set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        delay = self.retry_min
        while True:
            await self._wake.wait()
            if len(self._queue) < self.batch_size and self.linger > 0:
                await asyncio.sleep(self.linger)
            try:
                await self._write_batch()
                delay = self.retry_min
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure is retried; the batch is back in the queue
                self.failures += 1
                log.warning(
                    "CDR write failed (%s: %s); %d queued, retrying in %.1f s",
                    type(e).__name__,
                    e,
                    len(self._queue),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
            if not self._queue:
                self._wake.clear()

    async def _write_batch(self) -> int:
        async with self._lock:
            n = min(self.batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(n)]
            if not batch:
                return 0
            try:
                async with self.db.transaction() as conn:
                    await self.cdrs.record_many(conn, batch)
            except BaseException:
                self._queue.extendleft(reversed(batch))
                raise
            self.written += len(batch)
            return len(batch)

    async def flush(self, timeout: float | None = 10.0) -> bool:
        """Write everything queued now, retrying failures until `timeout` seconds passed (None: no
        limit). True when the queue is empty; False (and each unwritten record logged) otherwise."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = self.retry_min
        while self._queue:
            try:
                await self._write_batch()
                delay = self.retry_min
            except Exception as e:  # noqa: BLE001
                self.failures += 1
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    for record in self._queue:
                        log.error("CDR not written (%s: %s): %r", type(e).__name__, e, record)
                    return False
                await asyncio.sleep(delay if left is None else min(delay, left))
                delay = min(delay * 2, self.retry_max)
        return True

    async def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop the background task, then flush (shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return await self.flush(timeout)
