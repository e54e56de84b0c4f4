"""Results, alerting and webhooks on a real database (temporary SQLite, and PostgreSQL where it answers):
ingestion driven in-process."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from switchboard.domain import repos
from switchboard.domain.errors import Invalid
from switchboard.domain.identity import IdentityService
from switchboard.domain.monitoring import MonitoringService
from switchboard.domain.results import BatchRefused, ResultService, summarize
from switchboard.domain.security import SecretBox
from switchboard.domain.webhooks import clean_webhook_url, deliver_pending, set_webhook_url

T0 = datetime(2024, 5, 1, 12, 0, 0)


@pytest.fixture
async def env(migrated_db):
    db = migrated_db
    ids = IdentityService(SecretBox(SecretBox.generate_key()))
    mon = MonitoringService()
    async with db.transaction() as conn:
        await ids.ensure_bootstrap_admin(conn, "root", "root-password")
        root = await repos.user_by_username(conn, "root")
        user = await ids.create_user(conn, root, {"username": "ann", "password": "ann-password"})
        server, _ = await mon.create_server(conn, root, {"name": "probe", "ip_address": "192.0.2.1"})
        other, _ = await mon.create_server(conn, root, {"name": "probe2", "ip_address": "192.0.2.2"})
        ep = await mon.create_endpoint(conn, user, user.id, {"name": "pbx", "ip_address": "198.51.100.9"})
        test = await mon.create_test(conn, user, user.id, ep.id, {"server_id": server.id, "alert_threshold": 3.5})
    yield db, mon, user, server, other, ep, test


def item(test_id: int, at: datetime, mos: float | None, **kw) -> dict:
    return {
        "uuid": kw.pop("uuid", str(uuid.uuid4())),
        "voip_test_id": test_id,
        "tested_at": at.isoformat() + "Z",
        "packets_sent": 10,
        "packets_received": 10,
        "loss_pct": 0.0,
        "rtt_min_ms": 1.0,
        "rtt_avg_ms": 2.0,
        "rtt_max_ms": 3.0,
        "jitter_ms": 0.5,
        "mos": mos,
        "error": None,
        **kw,
    }


async def alerts_of(db, user_id):
    async with db.transaction(write=False) as conn:
        return await ResultService().list_alerts(conn, user_id)


async def test_active_tests_for_server(env):
    db, mon, user, server, other, ep, test = env
    svc = ResultService()
    async with db.transaction() as conn:
        got = await svc.active_tests_for(conn, server)
        assert got == [
            {
                "id": test.id,
                "ip_address": "198.51.100.9",
                "codec": "G.711",
                "num_tests": 25,
                "interpacket_ms": 100,
                "interval_seconds": 60,
            }
        ]
        assert await svc.active_tests_for(conn, other) == []
        await mon.cancel_endpoint(conn, user, user.id, ep.id)
        assert await svc.active_tests_for(conn, server) == []


async def test_alerting_transitions(env):
    db, mon, user, server, _, ep, test = env
    svc = ResultService()
    moses = [4.2, 3.0, 2.0, 3.4, 4.0, 3.0, 3.0, 3.0, 3.0, 4.0, 4.1, 3.0, 4.0, 4.0, 4.3, 4.4]
    #        good  bad  bad  bad->ALERT(i=3)  ...   bad bad bad bad(i=8) good good bad good good good->CLEAR(i=14)
    batch = [item(test.id, T0 + timedelta(minutes=i), m) for i, m in enumerate(moses)]
    async with db.transaction() as conn:
        assert await svc.ingest(conn, server, batch[:4]) == 4
        t1 = await repos.voip_tests.get(conn, test.id)
        assert t1.alerting_since == T0 + timedelta(minutes=3) and t1.bad_streak == 3
        assert (t1.last_mos, t1.last_tested_at) == (3.4, T0 + timedelta(minutes=3))
    async with db.transaction() as conn:
        assert await svc.ingest(conn, server, batch[4:]) == 12
        t2 = await repos.voip_tests.get(conn, test.id)
        assert t2.alerting_since is None and t2.good_streak == 4 and t2.bad_streak == 0
        assert (t2.last_mos, t2.last_tested_at) == (4.4, T0 + timedelta(minutes=15))
    alerts = await alerts_of(db, user.id)
    assert [(a["kind"], a["mos"], a["created_at"]) for a in alerts] == [
        ("cleared", 4.3, T0 + timedelta(minutes=14)),
        ("alerting", 3.4, T0 + timedelta(minutes=3)),
    ]
    assert {a["webhook_status"] for a in alerts} == {"none"}  # no webhook_url


async def test_no_mos_counts_as_bad_and_order_within_batch(env):
    db, mon, user, server, _, ep, test = env
    svc = ResultService()
    batch = [
        item(test.id, T0 + timedelta(minutes=i), None, packets_received=0, loss_pct=100.0, error="timeout")
        for i in (2, 0, 1)
    ]  # posted out of order: applied in tested_at order
    async with db.transaction() as conn:
        assert await svc.ingest(conn, server, batch) == 3
        t1 = await repos.voip_tests.get(conn, test.id)
        assert t1.alerting_since == T0 + timedelta(minutes=2) and t1.last_mos is None
        # a late, older result is stored but moves neither the last result nor the streaks
        assert await svc.ingest(conn, server, [item(test.id, T0 - timedelta(hours=1), 4.4)]) == 1
        t2 = await repos.voip_tests.get(conn, test.id)
        assert (t2.last_tested_at, t2.bad_streak, t2.good_streak) == (T0 + timedelta(minutes=2), 3, 0)
        assert len(await svc.list_results(conn, test.id)) == 4


async def test_ingest_is_idempotent(env):
    db, mon, user, server, _, ep, test = env
    svc = ResultService()
    batch = [item(test.id, T0 + timedelta(seconds=i), 2.0) for i in range(3)]
    async with db.transaction() as conn:
        assert await svc.ingest(conn, server, batch) == 3
        assert await svc.ingest(conn, server, batch) == 0  # resent batch
        dup = item(test.id, T0 + timedelta(seconds=9), 2.0)
        assert await svc.ingest(conn, server, [dup, dup, batch[0]]) == 1
        rows = await svc.list_results(conn, test.id)
        assert len(rows) == 4 and rows[0]["tested_at"] == T0 + timedelta(seconds=9)  # newest first
        t1 = await repos.voip_tests.get(conn, test.id)
        assert t1.bad_streak == 4
    assert len(await alerts_of(db, user.id)) == 1  # one alert, not doubled


async def test_ingest_refuses_whole_batch(env):
    db, mon, user, server, other, ep, test = env
    svc = ResultService()
    good = item(test.id, T0, 4.0)
    cases = [
        ([good, item(test.id, T0, 7.0)], "results[1].mos"),
        ([good, {**item(test.id, T0, 4.0), "uuid": ""}], "results[1].uuid"),
        ([good, item(test.id, T0, 4.0, packets_received=11)], "results[1]"),
        ([good, {k: v for k, v in item(test.id, T0, 4.0).items() if k != "tested_at"}], "results[1].tested_at"),
        ([good, item(test.id, datetime(2999, 1, 1), 4.0)], "results[1].tested_at"),
        ([good, item(999_999, T0, 4.0)], "results[1].voip_test_id"),
        ([good, "nope"], "results[1]"),
    ]
    async with db.transaction() as conn:
        for batch, field in cases:
            with pytest.raises(BatchRefused) as e:
                await svc.ingest(conn, server, batch)
            assert e.value.field == field and e.value.indexes == [1], (field, e.value.problems)
        with pytest.raises(Invalid):
            await svc.ingest(conn, other, [good])  # not assigned to this server
        await mon.cancel_test(conn, user, user.id, ep.id, test.id)
        with pytest.raises(Invalid):
            await svc.ingest(conn, server, [good])  # cancelled test
        assert await svc.list_results(conn, test.id) == []


async def test_results_range_and_summary(env):
    db, mon, user, server, _, ep, test = env
    svc = ResultService()
    batch = [
        item(
            test.id,
            T0 + timedelta(minutes=5),
            4.0,
            packets_sent=10,
            packets_received=10,
            rtt_min_ms=1.0,
            rtt_avg_ms=2.0,
            rtt_max_ms=4.0,
            jitter_ms=1.0,
        ),
        item(
            test.id,
            T0 + timedelta(minutes=50),
            3.0,
            packets_sent=10,
            packets_received=5,
            rtt_min_ms=0.5,
            rtt_avg_ms=4.0,
            rtt_max_ms=9.0,
            jitter_ms=2.0,
        ),
        item(
            test.id,
            T0 + timedelta(hours=1, minutes=1),
            None,
            packets_sent=20,
            packets_received=0,
            loss_pct=100.0,
            rtt_min_ms=None,
            rtt_avg_ms=None,
            rtt_max_ms=None,
            jitter_ms=None,
        ),
    ]
    async with db.transaction() as conn:
        await svc.ingest(conn, server, batch)
        rows = await svc.list_results(conn, test.id, since=T0 + timedelta(minutes=5), until=T0 + timedelta(hours=1))
        assert [r["mos"] for r in rows] == [3.0, 4.0]
        assert len(await svc.list_results(conn, test.id, limit=1)) == 1
        with pytest.raises(Invalid):
            await svc.list_results(conn, test.id, since=T0, until=T0 - timedelta(seconds=1))
        hours = await svc.summary(conn, test.id, period="hour", since=T0 - timedelta(hours=1))
        days = await svc.summary(conn, test.id, period="day", since=T0 - timedelta(days=1))
        assert await svc.summary(conn, test.id) == []  # default range: the last 24 hours (2024 is long ago)
        with pytest.raises(Invalid):
            await svc.summary(conn, test.id, period="week")
    assert hours == [
        {
            "period_start": T0,
            "count": 2,
            "packets_sent": 20,
            "packets_received": 15,
            "loss_pct": 25.0,
            "rtt_avg_ms": 3.0,
            "rtt_min_ms": 0.5,
            "rtt_max_ms": 9.0,
            "jitter_ms": 1.5,
            "mos_avg": 3.5,
            "mos_min": 3.0,
        },
        {
            "period_start": T0 + timedelta(hours=1),
            "count": 1,
            "packets_sent": 20,
            "packets_received": 0,
            "loss_pct": 100.0,
            "rtt_avg_ms": None,
            "rtt_min_ms": None,
            "rtt_max_ms": None,
            "jitter_ms": None,
            "mos_avg": None,
            "mos_min": None,
        },
    ]
    assert days == [
        {
            "period_start": T0.replace(hour=0),
            "count": 3,
            "packets_sent": 40,
            "packets_received": 15,
            "loss_pct": 62.5,
            "rtt_avg_ms": 3.0,
            "rtt_min_ms": 0.5,
            "rtt_max_ms": 9.0,
            "jitter_ms": 1.5,
            "mos_avg": 3.5,
            "mos_min": 3.0,
        }
    ]
    assert summarize([], "hour") == []


def test_clean_webhook_url():
    assert clean_webhook_url(None) is None and clean_webhook_url("  ") is None
    assert clean_webhook_url(" https://hooks.example.com/a?b=1 ") == "https://hooks.example.com/a?b=1"
    for bad in ("ftp://x.example", "example.com/hook", "http://", "http://a b.example/", "https://x:99999/", 5):
        with pytest.raises(Invalid):
            clean_webhook_url(bad)


async def test_webhook_delivery_retries_and_records(env):
    db, mon, user, server, _, ep, test = env
    svc = ResultService()
    seen: list[dict] = []
    answers = iter([500, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        import json

        seen.append(json.loads(request.content))
        return httpx.Response(next(answers, 503))

    async with db.transaction() as conn:
        u = await repos.users.get(conn, user.id)
        await set_webhook_url(conn, u, "https://hooks.example.com/sb")
        await svc.ingest(conn, server, [item(test.id, T0 + timedelta(minutes=i), 1.5) for i in range(3)])
    [a] = await alerts_of(db, user.id)
    assert a["webhook_status"] == "pending"
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert (await deliver_pending(db, client=client))["retry"] == 1
        [a] = await alerts_of(db, user.id)
        assert (a["webhook_status"], a["webhook_attempts"], a["webhook_error"]) == ("pending", 1, "HTTP 500")
        assert (await deliver_pending(db, client=client))["delivered"] == 1
        [a] = await alerts_of(db, user.id)
        assert a["webhook_status"] == "delivered" and a["delivered_at"] is not None and a["webhook_attempts"] == 2
        assert (await deliver_pending(db, client=client))["delivered"] == 0  # nothing pending
    assert seen[-1] == {
        "event": "voip_test.alerting",
        "alert_id": a["id"],
        "voip_test_id": test.id,
        "endpoint_id": ep.id,
        "user_id": user.id,
        "mos": 1.5,
        "at": "2024-05-01T12:02:00Z",
    }


async def test_webhook_gives_up_and_never_raises(env):
    db, mon, user, server, _, ep, test = env

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with db.transaction() as conn:
        await set_webhook_url(conn, await repos.users.get(conn, user.id), "http://127.0.0.1:9/x")
        await ResultService().ingest(conn, server, [item(test.id, T0 + timedelta(minutes=i), 1.0) for i in range(3)])
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        for _ in range(3):
            await deliver_pending(db, client=client, max_attempts=3)
    [a] = await alerts_of(db, user.id)
    assert (a["webhook_status"], a["webhook_attempts"]) == ("failed", 3) and "ConnectError" in a["webhook_error"]
    await db.close()
    assert await deliver_pending(db) == {"delivered": 0, "retry": 0, "failed": 0, "none": 0}  # closed db: no raise
