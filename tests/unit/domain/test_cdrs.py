"""CDRs: Asterisk's rules for a record from the caller's channel (real engine.channel.Channel
objects, set as a call sets them), storage and queries on SQLite and PostgreSQL, Master.csv, and
the background writer (batching, retry on a transient error, flush)."""

from __future__ import annotations

import asyncio
import csv
import io
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from switchboard.domain.cdrs import (
    CSV_COLUMNS,
    CdrService,
    CdrWriter,
    cdr_from_channel,
    clid,
    disposition,
)
from switchboard.domain.errors import Invalid, NotFound
from switchboard.engine.channel import UP, Channel

T0 = 1_700_000_000.25  # 2023-11-14 22:13:20.25 UTC


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def call(
    *,
    answered_after: float | None = 2.0,
    ended_after: float = 65.7,
    cause: int = 16,
    num: str = "100",
    name: str = "Alice",
    exten: str = "200",
    context: str = "internal",
    created: float = T0,
) -> Channel:
    """A caller's channel through a call: created, dialplan ran Dial, maybe answered, ended."""
    ch = Channel("alice", context=context, exten=exten, caller_num=num, caller_name=name, account_code="acme")
    ch.created = created
    ch.set_app("Dial", "PJSIP/bob,30")
    ch.cdr["dstchannel"] = "PJSIP/bob-0000002a"
    if answered_after is not None:
        ch.set_state(UP)
        ch.answered_at = created + answered_after
    ch.mark_gone(cause)
    ch.ended_at = created + ended_after
    return ch


# ---- cdr_from_channel -----------------------------------------------------------------------------
def test_answered_call_record():
    ch = call()
    r = cdr_from_channel(ch)
    assert r["src"] == "100" and r["clid"] == '"Alice" <100>'
    assert (r["dst"], r["dcontext"]) == ("200", "internal")
    assert r["channel"] == ch.name and r["channel"].startswith("PJSIP/alice-")
    assert (r["dstchannel"], r["lastapp"], r["lastdata"]) == ("PJSIP/bob-0000002a", "Dial", "PJSIP/bob,30")
    assert r["start"] == datetime(2023, 11, 14, 22, 13, 20, 250000)
    assert r["answer"] == datetime(2023, 11, 14, 22, 13, 22, 250000)
    assert r["end"] == datetime(2023, 11, 14, 22, 14, 25, 950000)
    assert (r["duration"], r["billsec"]) == (65, 63)  # truncated, as Asterisk
    assert r["disposition"] == "ANSWERED" and r["amaflags"] == "DOCUMENTATION"
    assert r["uniqueid"] == ch.uniqueid and r["linkedid"] == ch.uniqueid
    assert r["accountcode"] == "acme" and r["userfield"] == "" and r["peeraccount"] == ""
    assert r["sequence"] == int(ch.uniqueid.split(".")[1])


def test_unanswered_call_has_no_answer_and_no_billsec():
    r = cdr_from_channel(call(answered_after=None, ended_after=12.9, cause=19))
    assert r["answer"] is None and r["billsec"] == 0 and r["duration"] == 12
    assert r["disposition"] == "NO ANSWER"


@pytest.mark.parametrize(
    ("cause", "want"),
    [(17, "BUSY"), (34, "CONGESTION"), (42, "CONGESTION"), (16, "NO ANSWER"), (19, "NO ANSWER"), (21, "NO ANSWER"),
     (3, "FAILED"), (1, "FAILED"), (20, "FAILED"), (38, "FAILED"), (127, "FAILED")],
)  # fmt: skip
def test_disposition_of_unanswered_calls(cause, want):
    assert cdr_from_channel(call(answered_after=None, cause=cause))["disposition"] == want


def test_answered_wins_over_the_hangup_cause():
    assert cdr_from_channel(call(cause=17))["disposition"] == "ANSWERED"
    assert disposition(False, None) == "NO ANSWER"


def test_clid_forms():
    assert clid("Alice", "100") == '"Alice" <100>'
    assert clid("", "100") == "100"
    assert clid("Alice", "") == "Alice"
    assert clid("", "") == ""


def test_linked_calls_and_cdr_fields_from_the_channel():
    a = call()
    b = Channel("bob", linkedid=a.linkedid)
    b.mark_gone(16)
    a.cdr.update(amaflags="billing", userfield="vip", peeraccount="other")
    r = cdr_from_channel(a)
    assert cdr_from_channel(b)["linkedid"] == a.uniqueid
    assert (r["amaflags"], r["userfield"], r["peeraccount"]) == ("BILLING", "vip", "other")


def test_a_channel_not_ended_yet_ends_now_and_long_text_is_cut():
    ch = Channel("alice", caller_num="1" * 500)
    ch.set_app("Playback", "x" * 10_000 + "\x00")
    r = cdr_from_channel(ch)
    assert r["end"] >= r["start"] and r["duration"] == 0
    assert len(r["src"]) == 255 and len(r["lastdata"]) == 4096 and "\x00" not in r["lastdata"]


# ---- CSV ------------------------------------------------------------------------------------------------
def test_master_csv_columns_and_quoting():
    ch = call(name='Al "the" Pal')
    text = CdrService.csv([cdr_from_channel(ch)])
    assert text.count("\n") == 1 and text.endswith("\n")
    line = text.rstrip("\n")
    assert line.startswith('"acme","100","200","internal","""Al ""the"" Pal"" <100>",')
    times = '"2023-11-14 22:13:20","2023-11-14 22:13:22","2023-11-14 22:14:25"'
    assert f',{times},65,63,"ANSWERED","DOCUMENTATION",' in line
    cells = next(csv.reader(io.StringIO(text)))
    assert len(cells) == len(CSV_COLUMNS)
    assert dict(zip(CSV_COLUMNS, cells, strict=True))["uniqueid"] == ch.uniqueid
    unanswered = CdrService.csv([cdr_from_channel(call(answered_after=None))])
    assert ',"2023-11-14 22:13:20",,"2023-11-14 22:14:25",65,0,"NO ANSWER",' in unanswered


# ---- storage and queries ------------------------------------------------------------------------------
def _at(i: int, **kw) -> Channel:
    return call(created=T0 + i * 100, **kw)


async def test_record_get_and_idempotent(migrated_db):
    svc = CdrService()
    ch = call()
    async with migrated_db.transaction() as conn:
        stored = await svc.record(conn, ch)
        again = await svc.record(conn, cdr_from_channel(ch))  # the same call twice: stored once
    assert stored["id"] == again["id"] and stored["uniqueid"] == ch.uniqueid
    async with migrated_db.transaction(write=False) as conn:
        got = await svc.get(conn, ch.uniqueid)
        rows, total = await svc.list(conn)
        with pytest.raises(NotFound):
            await svc.get(conn, "no.such")
    assert total == 1 and rows[0]["uniqueid"] == ch.uniqueid
    assert got["start"] == datetime(2023, 11, 14, 22, 13, 20, 250000) and got["answer"] is not None


async def test_list_newest_first_paging_and_filters(migrated_db):
    svc = CdrService()
    chans = [
        _at(0),
        _at(1, answered_after=None, cause=17, num="101"),
        _at(2, exten="300"),
        _at(3, answered_after=None, cause=19, num="101"),
        _at(4),
    ]
    chans[4].linkedid = chans[3].linkedid
    async with migrated_db.transaction() as conn:
        await svc.record_many(conn, [cdr_from_channel(c) for c in chans])
    ids = [c.uniqueid for c in chans]
    async with migrated_db.transaction(write=False) as conn:

        async def uids(**kw):
            rows, total = await svc.list(conn, **kw)
            return [r["uniqueid"] for r in rows], total

        assert await uids() == (ids[::-1], 5)
        assert await uids(page=1, size=2) == (ids[4:2:-1], 5)
        assert await uids(page=3, size=2) == ([ids[0]], 5)
        assert await uids(page=4, size=2) == ([], 5)
        assert await uids(src="101") == ([ids[3], ids[1]], 2)
        assert await uids(dst="300") == ([ids[2]], 1)
        assert await uids(disposition="busy") == ([ids[1]], 1)
        assert await uids(disposition="NO ANSWER") == ([ids[3]], 1)
        assert await uids(linkedid=chans[3].linkedid) == ([ids[4], ids[3]], 2)
        since, until = utc(T0 + 100), utc(T0 + 300)
        assert await uids(since=since, until=until) == ([ids[2], ids[1]], 2)  # since inclusive, until not
        assert await uids(since=since, src="101", size=1) == ([ids[3]], 2)
        for kw in ({"page": 0}, {"size": 0}, {"size": 1001}, {"disposition": "MAYBE"}):
            with pytest.raises(Invalid):
                await svc.list(conn, **kw)


# ---- the writer -------------------------------------------------------------------------------------------
class FlakyDb:
    """A Database whose next `fail` write transactions raise (a transient error), counting commits."""

    def __init__(self, db, fail: int = 0):
        self.db, self.fail, self.commits = db, fail, 0

    @asynccontextmanager
    async def transaction(self, *, write: bool = True):
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("database went away")
        async with self.db.transaction(write=write) as conn:
            yield conn
        self.commits += 1


async def _count(db) -> int:
    async with db.transaction(write=False) as conn:
        return (await CdrService().list(conn, size=1000))[1]


async def test_writer_batches_in_the_background(migrated_db):
    db = FlakyDb(migrated_db)
    writer = CdrWriter(db, CdrService(), batch_size=50, linger=0.05)
    writer.start()
    for i in range(120):
        writer.channel_ended(_at(i))  # sync, returns at once
    assert writer.pending == 120
    for _ in range(200):
        if writer.written == 120:
            break
        await asyncio.sleep(0.02)
    assert writer.written == 120 and writer.pending == 0
    assert db.commits == 3  # 50 + 50 + 20
    assert await _count(migrated_db) == 120
    assert await writer.stop() is True


async def test_writer_retries_a_transient_error_and_loses_nothing(migrated_db):
    db = FlakyDb(migrated_db, fail=3)
    writer = CdrWriter(db, CdrService(), linger=0, retry_min=0.01, retry_max=0.05)
    writer.start()
    for i in range(5):
        writer.channel_ended(_at(i))
    for _ in range(200):
        if writer.written == 5:
            break
        await asyncio.sleep(0.02)
    assert writer.failures == 3 and writer.written == 5
    assert await _count(migrated_db) == 5
    await writer.stop()


async def test_flush_writes_what_is_queued_and_disabled_legs_are_skipped(migrated_db):
    writer = CdrWriter(FlakyDb(migrated_db, fail=1), CdrService(), retry_min=0.01)  # never started
    leg = _at(1)
    leg.cdr["disable"] = True  # a dialled leg: in its caller's record only
    writer.channel_ended(_at(0))
    writer.channel_ended(leg)
    assert writer.pending == 1
    assert await writer.flush() is True
    assert writer.pending == 0 and await _count(migrated_db) == 1


async def test_flush_gives_up_after_its_timeout_and_says_what_was_lost(migrated_db, caplog):
    writer = CdrWriter(FlakyDb(migrated_db, fail=10**6), CdrService(), retry_min=0.01, retry_max=0.02)
    ch = _at(0)
    writer.channel_ended(ch)
    assert await writer.stop(timeout=0.1) is False
    assert writer.pending == 1 and ch.uniqueid in caplog.text


async def test_stop_during_a_write_keeps_the_batch(migrated_db):
    gate = asyncio.Event()

    class SlowDb(FlakyDb):
        @asynccontextmanager
        async def transaction(self, *, write: bool = True):
            await gate.wait()
            async with super().transaction(write=write) as conn:
                yield conn

    writer = CdrWriter(SlowDb(migrated_db), CdrService(), linger=0)
    writer.start()
    writer.channel_ended(_at(0))
    await asyncio.sleep(0.05)  # the task is inside the write, waiting
    task = asyncio.ensure_future(writer.stop())
    await asyncio.sleep(0.05)
    gate.set()
    assert await task is True
    assert await _count(migrated_db) == 1
