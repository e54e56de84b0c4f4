"""VoIP test results: what probe servers report, the alerting rule, and the read side.

Ingest (`ResultService.ingest`, called by the probe API with one posted batch):
- The batch is all or nothing. Every item is validated first; any bad item raises `BatchRefused`
  (an `Invalid` whose problems name `results[i].field`, and whose `indexes` list the refused
  items) and nothing is stored. A well-formed item is also refused when its test is unknown, not
  assigned to the posting server, or not active (test, its endpoint or the endpoint's owner
  cancelled): the probe should drop the refused items (they will never be accepted) and resend
  the rest.
- `uuid` (printable text up to 36 characters, a UUID in practice) is the probe's id for a
  result and the idempotency key: an item whose uuid is already stored (or repeated earlier in
  the same batch) is skipped, so a resent batch is stored once.
  Two concurrent posts of the same new uuid meet the unique constraint: one transaction fails
  and the probe's resend is then skipped.
- The test's `last_mos` / `last_tested_at` move only forward (a late, older result is stored
  but does not replace a newer one).
- Alerting, per result in `tested_at` order, for results newer than the test's last result
  (late results are history, not a new streak): MOS below `alert_threshold` (or no MOS: nothing
  answered) is bad → bad_streak+1, good_streak 0; otherwise good_streak+1, bad_streak 0. At 3 bad
  in a row with no alert open, `alerting_since` = that result's time and an `alerts` row
  "alerting"; while alerting, 3 good in a row clear it (`alerting_since` null, row "cleared").
  Alert rows start with webhook_status "pending" when the owner has a webhook_url, else "none";
  webhooks.py delivers them.

Times are naive UTC datetimes, as stored."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard import events
from switchboard.domain import repos
from switchboard.domain.entities import Server, utcnow
from switchboard.domain.errors import Invalid
from switchboard.domain.validation import Input, validate
from switchboard.store import tables as t

STREAK = 3  # consecutive bad results raise an alert; as many good ones clear it
MAX_BATCH = 1000
MAX_LIMIT, DEFAULT_LIMIT = 1000, 100
FUTURE_SLACK = timedelta(minutes=5)  # a probe clock a little ahead is tolerated
PERIODS = {"hour": (timedelta(hours=1), timedelta(hours=24)), "day": (timedelta(days=1), timedelta(days=30))}


class BatchRefused(Invalid):
    """A posted batch was refused as a whole; `indexes` are the items at fault."""

    def __init__(self, problems: list[tuple[str | None, str]], indexes: list[int]):
        super().__init__(problems=problems)
        self.indexes = indexes


def to_utc_naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def parse_time(value: str | None, field: str) -> datetime | None:
    """Query times: ISO 8601 (`2024-05-01T12:00:00Z`, offsets allowed) or `YYYY-MM-DD HH:MM:SS`
    (UTC); None when absent or blank."""
    if value is None or not value.strip():
        return None
    try:
        return to_utc_naive(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise Invalid(field, "is not a valid time (ISO 8601 or YYYY-MM-DD HH:MM:SS, UTC)") from None


def parse_limit(value: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if value is None or not value.strip():
        return default
    v = value.strip()
    if not (v.isascii() and v.isdigit()) or not 1 <= int(v) <= maximum:
        raise Invalid("limit", f"must be a whole number from 1 to {maximum}")
    return int(v)


def _range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since > until:
        raise Invalid("from", "must not be after to")


class ResultIn(Input):
    uuid: str = Field(min_length=1, max_length=36)
    voip_test_id: int
    tested_at: datetime
    packets_sent: int = Field(ge=0, le=100_000)
    packets_received: int = Field(ge=0, le=100_000)
    loss_pct: float | None = Field(default=None, ge=0, le=100)
    rtt_min_ms: float | None = Field(default=None, ge=0)
    rtt_avg_ms: float | None = Field(default=None, ge=0)
    rtt_max_ms: float | None = Field(default=None, ge=0)
    jitter_ms: float | None = Field(default=None, ge=0)
    mos: float | None = Field(default=None, ge=1, le=5)
    error: str | None = Field(default=None, max_length=2000)

    @field_validator("uuid")
    @classmethod
    def _uuid(cls, v: str) -> str:
        v = v.strip()
        if not v or not v.isprintable():
            raise ValueError("can't be blank" if not v else "must be printable text")
        return v

    @field_validator("tested_at")
    @classmethod
    def _tested_at(cls, v: datetime) -> datetime:
        v = to_utc_naive(v)
        if v > utcnow() + FUTURE_SLACK:
            raise ValueError("is in the future")
        return v

    @model_validator(mode="after")
    def _packets(self):
        if self.packets_received > self.packets_sent:
            raise ValueError("packets_received cannot exceed packets_sent")
        return self

    @property
    def loss(self) -> float:
        if self.loss_pct is not None:
            return self.loss_pct
        if not self.packets_sent:
            return 100.0
        return round(100.0 * (self.packets_sent - self.packets_received) / self.packets_sent, 3)


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def summarize(rows: list[dict[str, Any]], period: str) -> list[dict[str, Any]]:
    """Aggregate result rows (keys tested_at, packets_sent, packets_received, rtt_*_ms, jitter_ms,
    mos) into UTC buckets of one hour or one day, oldest first. loss_pct is the overall share
    of packets lost; rtt_avg_ms, jitter_ms and mos_avg are means over the results that have them."""
    if period not in PERIODS:
        raise Invalid("period", "must be hour or day")
    buckets: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        at = r["tested_at"]
        start = at.replace(minute=0, second=0, microsecond=0)
        if period == "day":
            start = start.replace(hour=0)
        buckets[start].append(r)
    out = []
    for start in sorted(buckets):
        rs = buckets[start]
        sent = sum(r["packets_sent"] for r in rs)
        received = sum(r["packets_received"] for r in rs)

        def present(key: str, rs=rs) -> list[float]:
            return [r[key] for r in rs if r[key] is not None]

        mins, maxs, moses = present("rtt_min_ms"), present("rtt_max_ms"), present("mos")
        out.append(
            {
                "period_start": start,
                "count": len(rs),
                "packets_sent": sent,
                "packets_received": received,
                "loss_pct": round(100.0 * (sent - received) / sent, 3) if sent else None,
                "rtt_avg_ms": _avg(present("rtt_avg_ms")),
                "rtt_min_ms": min(mins) if mins else None,
                "rtt_max_ms": max(maxs) if maxs else None,
                "jitter_ms": _avg(present("jitter_ms")),
                "mos_avg": _avg(moses),
                "mos_min": min(moses) if moses else None,
            }
        )
    return out


_R = t.voip_test_results.c
_RESULT_COLS = (
    _R.id,
    _R.server_id,
    _R.measured_at.label("tested_at"),
    _R.packets_sent,
    _R.packets_received,
    _R.packet_loss_pct.label("loss_pct"),
    _R.rtt_min_ms,
    _R.latency_ms.label("rtt_avg_ms"),
    _R.rtt_max_ms,
    _R.jitter_ms,
    _R.mos,
    _R.error,
)
RESULT_FIELDS = tuple(str(c.key) for c in _RESULT_COLS)  # plain str: orjson refuses str subclasses as keys
_A = t.alerts.c
ALERT_FIELDS = (
    "id",
    "voip_test_id",
    "kind",
    "mos",
    "created_at",
    "webhook_status",
    "webhook_attempts",
    "webhook_error",
    "delivered_at",
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def result_event(it: ResultIn, tr: dict[str, Any], server_id: int) -> dict[str, Any]:
    """The data of a probe.result event (one stored result)."""
    return {
        "uuid": it.uuid,
        "voip_test_id": it.voip_test_id,
        "endpoint_id": tr["endpoint_id"],
        "server_id": server_id,
        "user_id": tr["user_id"],
        "tested_at": _iso(it.tested_at),
        "packets_sent": it.packets_sent,
        "packets_received": it.packets_received,
        "loss_pct": it.loss,
        "rtt_min_ms": it.rtt_min_ms,
        "rtt_avg_ms": it.rtt_avg_ms,
        "rtt_max_ms": it.rtt_max_ms,
        "jitter_ms": it.jitter_ms,
        "mos": it.mos,
        "error": it.error,
    }


class ResultService:
    # ---- probe side ----------------------------------------------------------------------
    async def active_tests_for(self, conn: AsyncConnection, server: Server) -> list[dict[str, Any]]:
        """The tests this server should run: active tests on active endpoints of active users,
        assigned to it (none when the server itself is cancelled). `ip_address` is the
        endpoint's (a host, optionally `host:port`)."""
        if server.deleted_at is not None:
            return []
        v, e, u = t.voip_tests.c, t.endpoints.c, t.users.c
        q = (
            select(v.id, e.ip_address, v.codec, v.num_tests, v.interpacket_ms, v.interval_seconds)
            .join(t.endpoints, e.id == v.endpoint_id)
            .join(t.users, u.id == e.user_id)
            .where(v.server_id == server.id, v.deleted_at.is_(None), e.deleted_at.is_(None), u.deleted_at.is_(None))
            .order_by(v.id)
        )
        return [repos.plain(r) for r in (await conn.execute(q)).mappings().all()]

    async def ingest(self, conn: AsyncConnection, server: Server, results: list[dict]) -> int:
        """Store one posted batch (see the module docstring); returns how many results were new."""
        if not isinstance(results, list):
            raise BatchRefused([("results", "must be a list")], [])
        if len(results) > MAX_BATCH:
            raise BatchRefused([("results", f"holds more than {MAX_BATCH} items")], [])
        items: list[ResultIn] = []
        problems: list[tuple[str | None, str]] = []
        bad: list[int] = []
        for i, raw in enumerate(results):
            if not isinstance(raw, dict):
                problems.append((f"results[{i}]", "must be an object"))
                bad.append(i)
                continue
            try:
                items.append(validate(ResultIn, raw))
            except Invalid as e:
                problems.extend((f"results[{i}].{f}" if f else f"results[{i}]", r) for f, r in e.problems)
                bad.append(i)
        if problems:
            raise BatchRefused(problems, bad)
        if not items:
            return 0

        v, e, u = t.voip_tests.c, t.endpoints.c, t.users.c
        test_ids = sorted({it.voip_test_id for it in items})
        q = (
            select(
                v.id,
                v.server_id,
                v.alert_threshold,
                v.alerting_since,
                v.last_tested_at,
                v.bad_streak,
                v.good_streak,
                v.deleted_at,
                e.id.label("endpoint_id"),
                e.user_id,
                e.deleted_at.label("endpoint_deleted_at"),
                u.deleted_at.label("user_deleted_at"),
                u.webhook_url,
            )
            .join(t.endpoints, e.id == v.endpoint_id)
            .join(t.users, u.id == e.user_id)
            .where(v.id.in_(test_ids))
        )
        tests = {r["id"]: repos.plain(r) for r in (await conn.execute(q)).mappings().all()}
        for i, it in enumerate(items):
            tr = tests.get(it.voip_test_id)
            if (
                tr is None
                or tr["server_id"] != server.id
                or tr["deleted_at"] is not None
                or tr["endpoint_deleted_at"] is not None
                or tr["user_deleted_at"] is not None
            ):
                problems.append((f"results[{i}].voip_test_id", "is not an active test assigned to this server"))
                bad.append(i)
        if problems:
            raise BatchRefused(problems, bad)

        uuids = [it.uuid for it in items]
        seen = set((await conn.execute(select(_R.uuid).where(_R.uuid.in_(uuids)))).scalars().all())
        new: list[ResultIn] = []
        for it in items:
            if it.uuid not in seen:
                seen.add(it.uuid)
                new.append(it)
        if not new:
            return 0
        new.sort(key=lambda it: (it.tested_at, it.uuid))
        await conn.execute(
            insert(t.voip_test_results),
            [
                {
                    "uuid": it.uuid,
                    "voip_test_id": it.voip_test_id,
                    "server_id": server.id,
                    "measured_at": it.tested_at,
                    "packets_sent": it.packets_sent,
                    "packets_received": it.packets_received,
                    "packet_loss_pct": it.loss,
                    "rtt_min_ms": it.rtt_min_ms,
                    "latency_ms": it.rtt_avg_ms,
                    "rtt_max_ms": it.rtt_max_ms,
                    "jitter_ms": it.jitter_ms,
                    "mos": it.mos,
                    "error": it.error,
                }
                for it in new
            ],
        )

        by_test: dict[int, list[ResultIn]] = defaultdict(list)
        for it in new:
            by_test[it.voip_test_id].append(it)
            tr = tests[it.voip_test_id]
            events.publish_after_commit(conn, "probe.result", result_event(it, tr, server.id), owner=tr["user_id"])
        for test_id, its in by_test.items():
            await self._apply(conn, tests[test_id], its)
        return len(new)

    @staticmethod
    async def _apply(conn: AsyncConnection, tr: dict[str, Any], its: list[ResultIn]) -> None:
        """Move one test's last result and alerting state over its new results (time order)."""
        last_at = tr["last_tested_at"]
        fresh = [it for it in its if last_at is None or it.tested_at > last_at]
        if not fresh:
            return
        bad, good, since = tr["bad_streak"], tr["good_streak"], tr["alerting_since"]
        alerts = []
        status = "pending" if tr["webhook_url"] else "none"
        for it in fresh:
            if it.mos is None or it.mos < tr["alert_threshold"]:
                bad, good = bad + 1, 0
            else:
                bad, good = 0, good + 1
            kind = None
            if since is None and bad >= STREAK:
                since, kind = it.tested_at, "alerting"
            elif since is not None and good >= STREAK:
                since, kind = None, "cleared"
            if kind:
                alerts.append(
                    {
                        "user_id": tr["user_id"],
                        "voip_test_id": tr["id"],
                        "kind": kind,
                        "mos": it.mos,
                        "created_at": it.tested_at,
                        "webhook_status": status,
                        "webhook_attempts": 0,
                        "webhook_error": None,
                        "delivered_at": None,
                    }
                )
        newest = fresh[-1]
        await conn.execute(
            update(t.voip_tests)
            .where(t.voip_tests.c.id == tr["id"])
            .values(
                last_mos=newest.mos,
                last_tested_at=newest.tested_at,
                bad_streak=bad,
                good_streak=good,
                alerting_since=since,
            )
        )
        if alerts:
            ids = (
                await conn.execute(insert(t.alerts).returning(t.alerts.c.id, sort_by_parameter_order=True), alerts)
            ).scalars()
            for alert_id, a in zip(ids, alerts, strict=True):
                data = {k: a[k] for k in ("user_id", "voip_test_id", "kind", "mos", "created_at")}
                data.update(id=alert_id, endpoint_id=tr["endpoint_id"], created_at=_iso(a["created_at"]))
                events.publish_after_commit(conn, "alert", data, owner=tr["user_id"])

    # ---- read side (callers check the actor may see the test / user) ---------------------
    async def list_results(
        self,
        conn: AsyncConnection,
        test_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[dict[str, Any]]:
        """A test's results, newest first, `since` <= tested_at <= `until`."""
        _range(since, until)
        q = select(*_RESULT_COLS).where(_R.voip_test_id == test_id)
        if since is not None:
            q = q.where(_R.measured_at >= since)
        if until is not None:
            q = q.where(_R.measured_at <= until)
        q = q.order_by(_R.measured_at.desc(), _R.id.desc()).limit(limit)
        return [repos.plain(r) for r in (await conn.execute(q)).mappings().all()]

    async def summary(
        self,
        conn: AsyncConnection,
        test_id: int,
        *,
        period: str = "hour",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Per-period aggregates (see `summarize`). Range: `since`..`until` when given; by default
        the last 24 hours for hour buckets and the last 30 days for day buckets (up to now)."""
        if period not in PERIODS:
            raise Invalid("period", "must be hour or day")
        _range(since, until)
        if since is None:
            since = (until or utcnow()) - PERIODS[period][1]
        q = select(
            _R.measured_at.label("tested_at"),
            _R.packets_sent,
            _R.packets_received,
            _R.rtt_min_ms,
            _R.latency_ms.label("rtt_avg_ms"),
            _R.rtt_max_ms,
            _R.jitter_ms,
            _R.mos,
        ).where(_R.voip_test_id == test_id, _R.measured_at >= since)
        if until is not None:
            q = q.where(_R.measured_at <= until)
        rows = [repos.plain(r) for r in (await conn.execute(q)).mappings().all()]
        return summarize(rows, period)

    async def list_alerts(
        self, conn: AsyncConnection, user_id: int, *, limit: int = DEFAULT_LIMIT
    ) -> list[dict[str, Any]]:
        """A user's alert events, newest first."""
        q = (
            select(*(_A[f] for f in ALERT_FIELDS))
            .where(_A.user_id == user_id)
            .order_by(_A.created_at.desc(), _A.id.desc())
            .limit(limit)
        )
        return [repos.plain(r) for r in (await conn.execute(q)).mappings().all()]
