"""Spear results and alerts (read only; the probe servers write results through the probe API):

- `GET /users/{uid}/endpoints/{eid}/voip_tests/{tid}/results?from=&to=&limit=`: newest first;
  from/to are ISO 8601 or `YYYY-MM-DD HH:MM:SS` (UTC), inclusive; limit 1..1000, default 100.
- `GET .../voip_tests/{tid}/summary?period=hour|day&from=&to=`: per UTC hour (default) or day,
  oldest first; the range defaults to the last 24 hours (hour) or 30 days (day).
- `GET /users/{uid}/alerts?limit=`: the user's alerting / cleared events, newest first.

The endpoint's owner and administrators may read; another user gets 403, unknown ids 404 (as
for the VoIP tests themselves). Bad query values are 422."""

from __future__ import annotations

from fastapi import Query, Request

from switchboard.api.common import ctx
from switchboard.api.spear import schemas as sc
from switchboard.api.spear.envelope import render_list
from switchboard.api.spear.routing import router, user_id_of
from switchboard.api.spear.voip_tests import BASE, _ids
from switchboard.domain.results import (
    ALERT_FIELDS,
    RESULT_FIELDS,
    ResultService,
    parse_limit,
    parse_time,
)

api = router("results")
results = ResultService()  # stateless: the queries need nothing from the app's services

SUMMARY_FIELDS = (
    "period_start",
    "count",
    "packets_sent",
    "packets_received",
    "loss_pct",
    "rtt_avg_ms",
    "rtt_min_ms",
    "rtt_max_ms",
    "jitter_ms",
    "mos_avg",
    "mos_min",
)


def _records(rows: list[dict], names: tuple[str, ...]) -> list[tuple]:
    return [tuple((n, r[n]) for n in names) for r in rows]


@api.get(BASE + "/{test_id}/results", responses=sc.responses(sc.collection(sc.ResultOut), 403, 404, 422))
async def list_results(
    request: Request,
    user_id: str,
    endpoint_id: str,
    test_id: str,
    from_: str | None = Query(None, alias="from", description="ISO 8601 or YYYY-MM-DD HH:MM:SS"),
    to: str | None = Query(None, description="ISO 8601 or YYYY-MM-DD HH:MM:SS"),
    limit: str | None = Query(None, description="1..1000, default 100"),
):
    """A test's results, newest first."""
    svc, conn, actor = ctx(request)
    test = await svc.monitoring.get_test(conn, actor, *_ids(request, user_id, endpoint_id, test_id))
    rows = await results.list_results(
        conn, test.id, since=parse_time(from_, "from"), until=parse_time(to, "to"), limit=parse_limit(limit)
    )
    return render_list(request, "results", "result", _records(rows, RESULT_FIELDS))


@api.get(BASE + "/{test_id}/summary", responses=sc.responses(sc.collection(sc.SummaryOut), 403, 404, 422))
async def summary(
    request: Request,
    user_id: str,
    endpoint_id: str,
    test_id: str,
    period: str | None = Query(None, description="hour (default) or day"),
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
):
    """Aggregates per UTC hour or day, oldest first (default range: last 24 h / last 30 days)."""
    svc, conn, actor = ctx(request)
    test = await svc.monitoring.get_test(conn, actor, *_ids(request, user_id, endpoint_id, test_id))
    rows = await results.summary(
        conn,
        test.id,
        period=(period or "hour").strip().lower(),
        since=parse_time(from_, "from"),
        until=parse_time(to, "to"),
    )
    return render_list(request, "periods", "period", _records(rows, SUMMARY_FIELDS))


@api.get("/users/{user_id}/alerts", responses=sc.responses(sc.collection(sc.AlertOut), 403, 404, 422))
async def list_alerts(
    request: Request, user_id: str, limit: str | None = Query(None, description="1..1000, default 100")
):
    """The user's alert events (a test went alerting or cleared), newest first, with the state of
    their webhook delivery."""
    svc, conn, actor = ctx(request)
    user = await svc.identity.get_user(conn, actor, user_id_of(request, user_id))
    rows = await results.list_alerts(conn, user.id, limit=parse_limit(limit))
    return render_list(request, "alerts", "alert", _records(rows, ALERT_FIELDS))
