"""Alert webhooks: a user's `webhook_url`, and the delivery of pending alert events to it.

Delivery (`deliver_pending`, run every few seconds by `run_webhook_worker`):
- each alert with webhook_status "pending" is POSTed as JSON
  `{"event": "voip_test.alerting"|"voip_test.cleared", "alert_id", "voip_test_id", "endpoint_id",
  "user_id", "mos", "at"}` (`at`: the result time, `YYYY-MM-DDTHH:MM:SSZ`) to the owner's
  webhook_url with a bounded timeout, redirects not followed;
- a 2xx answer marks it "delivered" (delivered_at set); anything else (status, timeout,
  connection error) adds an attempt and records the error, and after `max_attempts` the alert
  is "failed". One attempt per alert per pass, so retries are spaced by the worker's period;
- the HTTP calls run outside any database transaction, so probing and the API never wait on a
  slow receiver, and a failure is recorded, never raised. Delivery is at least once: a crash
  between the POST and the update, or two nodes running the worker, may repeat an event
  (receivers can deduplicate on alert_id)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain import repos
from switchboard.domain.entities import User, utcnow
from switchboard.domain.errors import Invalid
from switchboard.store import tables as t

log = logging.getLogger("switchboard.webhooks")

MAX_URL = 2048
BATCH = 100
CONCURRENCY = 10
_NO_URL = "\x00no-url"  # outcome of an alert whose owner removed the webhook_url meanwhile


def clean_webhook_url(value: Any) -> str | None:
    """A user's webhook URL: an absolute http(s) URL with a host, or None for null / blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("webhook_url", "must be an http or https URL")
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_URL:
        raise Invalid("webhook_url", f"is too long (maximum is {MAX_URL} characters)")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a bad port
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or any(c.isspace() or not c.isprintable() for c in value):
        raise Invalid("webhook_url", "must be an http or https URL")
    return value


async def set_webhook_url(conn: AsyncConnection, user: User, url: str | None) -> User:
    """Store an already cleaned URL (the caller has checked the actor may change `user`)."""
    if url == user.webhook_url:
        return user
    return await repos.users.update(conn, user.id, {"webhook_url": url, "updated_at": utcnow()})


def _at(value) -> str | None:
    return value.isoformat("T", "seconds") + "Z" if value is not None else None


async def _pending(db) -> list[dict[str, Any]]:
    a, v, u = t.alerts.c, t.voip_tests.c, t.users.c
    q = (
        select(
            a.id,
            a.voip_test_id,
            a.kind,
            a.mos,
            a.created_at,
            a.user_id,
            a.webhook_attempts,
            v.endpoint_id,
            u.webhook_url,
        )
        .join(t.voip_tests, v.id == a.voip_test_id)
        .join(t.users, u.id == a.user_id)
        .where(a.webhook_status == "pending")
        .order_by(a.id)
        .limit(BATCH)
    )
    async with db.transaction(write=False) as conn:
        return [repos.plain(r) for r in (await conn.execute(q)).mappings().all()]


async def _post(client: httpx.AsyncClient, alert: dict[str, Any], timeout: float) -> str | None:
    """None when delivered, else the error to record."""
    body = {
        "event": f"voip_test.{alert['kind']}",
        "alert_id": alert["id"],
        "voip_test_id": alert["voip_test_id"],
        "endpoint_id": alert["endpoint_id"],
        "user_id": alert["user_id"],
        "mos": alert["mos"],
        "at": _at(alert["created_at"]),
    }
    try:
        r = await client.post(
            alert["webhook_url"],
            json=body,
            timeout=timeout,
            headers={"User-Agent": "switchboard-webhooks", "X-Switchboard-Event": body["event"]},
        )
    except httpx.TimeoutException:
        return f"timed out after {timeout:g} s"
    except (httpx.HTTPError, ValueError, OSError) as e:
        return f"{e.__class__.__name__}: {e}"[:500] or e.__class__.__name__
    if 200 <= r.status_code < 300:
        return None
    return f"HTTP {r.status_code}"


async def deliver_pending(
    db, *, timeout: float = 5.0, max_attempts: int = 5, client: httpx.AsyncClient | None = None
) -> dict[str, int]:
    """One delivery pass over the pending alerts (up to 100). Returns counts of this pass:
    delivered, retry (still pending), failed (gave up), none (the URL was removed meanwhile).
    Never raises (errors are logged)."""
    counts = {"delivered": 0, "retry": 0, "failed": 0, "none": 0}
    own = client is None
    try:
        alerts = await _pending(db)
        if not alerts:
            return counts
        if own:
            client = httpx.AsyncClient(follow_redirects=False)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(alert):
            if not alert["webhook_url"]:
                return alert, _NO_URL
            async with gate:
                return alert, await _post(client, alert, timeout)

        outcomes = await asyncio.gather(*(one(a) for a in alerts))
        now = utcnow()
        async with db.transaction() as conn:
            for alert, error in outcomes:
                a = t.alerts.c
                if error == _NO_URL:
                    values = {"webhook_status": "none", "webhook_error": "no webhook_url"}
                    counts["none"] += 1
                elif error is None:
                    values = {
                        "webhook_status": "delivered",
                        "delivered_at": now,
                        "webhook_error": None,
                        "webhook_attempts": alert["webhook_attempts"] + 1,
                    }
                    counts["delivered"] += 1
                else:
                    attempts = alert["webhook_attempts"] + 1
                    gave_up = attempts >= max_attempts
                    values = {
                        "webhook_status": "failed" if gave_up else "pending",
                        "webhook_error": error,
                        "webhook_attempts": attempts,
                    }
                    counts["failed" if gave_up else "retry"] += 1
                await conn.execute(
                    update(t.alerts).where(a.id == alert["id"], a.webhook_status == "pending").values(**values)
                )
    except Exception:  # noqa: BLE001 - delivery must never take the caller down
        log.exception("webhook delivery pass failed")
    finally:
        if own and client is not None:
            await client.aclose()
    return counts


async def run_webhook_worker(db, every: float = 2.0, **kw) -> None:
    """Deliver pending alert webhooks every `every` seconds until cancelled."""
    while True:
        await deliver_pending(db, **kw)
        await asyncio.sleep(every)
