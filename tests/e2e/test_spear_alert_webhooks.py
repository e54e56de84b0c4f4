"""Alerts and their webhooks end to end: a real `serve`, a separate `switchboard probe` process, real HTTP
receivers in this process, and an endpoint that goes bad and then good again.

Three users, each with a VoIP test (every 5 s, 5 OPTIONS 20 ms apart, G.711, alert_threshold 4.0) against
the same Responder on a community server one probe process runs, and each with a `webhook_url`:
  ok     a receiver answering 204
  error  a receiver answering 500
  down   a port nothing listens on (connection refused)

The Responder first drops every request (each result: 100 % loss, MOS 1.0, below the threshold); once all
three tests are alerting it answers every request (MOS about 4.41, above it) until all three cleared. The
webhook worker of `serve` runs every 2 s and gives up after 5 attempts. The scenario runs once per backend
(about 35 s); the tests below check what it recorded."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from switchboard.probe.responder import Responder
from tests.conftest import free_port, new_user
from tests.e2e.test_probe import Probe, wait_for

THRESHOLD = 4.0
STREAK = 3  # the rule: 3 bad results in a row raise an alert, 3 good ones clear it
MAX_ATTEMPTS = 5  # serve's webhook worker: deliver_pending's default
USERS = ("ok", "error", "down")


def utc(value: str) -> datetime:
    """A time as the API or a webhook renders it ("YYYY-MM-DD HH:MM:SS" or "...THH:MM:SSZ"), naive UTC."""
    return datetime.fromisoformat(value.removesuffix("Z").replace("T", " "))


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Receiver:
    """A webhook receiver on 127.0.0.1 (http.server in a thread): records every request and answers `status`."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsable": raw.decode("utf-8", "replace")}
                with receiver._lock:
                    receiver.requests.append(
                        {
                            "at": now_utc(),
                            "path": self.path,
                            "body": body,
                            "content_type": self.headers.get("Content-Type"),
                            "event_header": self.headers.get("X-Switchboard-Event"),
                        }
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/switchboard"

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def expected_transitions(results: list[dict]) -> list[tuple[str, str]]:
    """(kind, tested_at) of the alert events the issue's rule gives for results in time order."""
    bad = good = 0
    alerting = False
    out = []
    for r in results:
        if r["mos"] is None or r["mos"] < THRESHOLD:
            bad, good = bad + 1, 0
        else:
            bad, good = 0, good + 1
        if not alerting and bad >= STREAK:
            alerting = True
            out.append(("alerting", r["tested_at"]))
        elif alerting and good >= STREAK:
            alerting = False
            out.append(("cleared", r["tested_at"]))
    return out


@pytest.fixture(scope="module")
def scenario(server, tmp_path_factory):
    """Runs the bad → good scenario; returns per user what was observed when its test first showed
    `alerting_since` ("alerting") and at the end ("final"), plus the receivers' records."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    responder = asyncio.run_coroutine_threadsafe(Responder(drop=1.0).start("127.0.0.1", 0), loop).result(5)
    receivers = {"ok": Receiver(204), "error": Receiver(500)}
    urls = {
        "ok": receivers["ok"].url,
        "error": receivers["error"].url,
        "down": f"http://127.0.0.1:{free_port()}/hooks/switchboard",  # bound by nothing: refused
    }
    probe = srv_row = None
    clients = {}
    try:
        with server.client() as admin:
            r = admin.post("/servers", json={"server": {"name": "webhook-e2e", "ip_address": "127.0.0.1"}})
            assert r.status_code == 201, r.text
            srv_row = r.json()
            users = {name: new_user(admin, webhook_url=urls[name]) for name in USERS}
        env: dict[str, dict[str, Any]] = {}
        for name, user in users.items():
            assert user["webhook_url"] == urls[name], user
            c = clients[name] = server.client(user["username"], user["password"])
            r = c.post(
                f"/users/{user['id']}/endpoints",
                json={"endpoint": {"name": f"flaky-{name}", "ip_address": f"127.0.0.1:{responder.port}"}},
            )
            assert r.status_code == 201, r.text
            eid = r.json()["id"]
            r = c.post(
                f"/users/{user['id']}/endpoints/{eid}/voip_tests",
                json={
                    "voip_test": {
                        "server_id": srv_row["id"],
                        "interval_seconds": 5,
                        "num_tests": 5,
                        "interpacket_ms": 20,
                        "alert_threshold": THRESHOLD,
                    }
                },
            )
            assert r.status_code == 201, r.text
            test = r.json()
            assert test["alerting_since"] is None and test["alert_threshold"] == THRESHOLD, test
            env[name] = {
                "user": user,
                "endpoint_id": eid,
                "test_id": test["id"],
                "base": f"/users/{user['id']}/endpoints/{eid}/voip_tests/{test['id']}",
            }

        def state(name: str) -> dict[str, Any]:
            c, e = clients[name], env[name]
            test = c.get(e["base"])
            results = c.get(e["base"] + "/results", params={"limit": "1000"})
            alerts = c.get(f"/users/{e['user']['id']}/alerts")
            for resp in (test, results, alerts):
                assert resp.status_code == 200, resp.text
            return {  # results and alerts oldest first
                "test": test.json(),
                "results": list(reversed(results.json()["collection"])),
                "alerts": list(reversed(alerts.json()["collection"])),
                "at": now_utc(),
            }

        try:
            probe = Probe(server, srv_row, tmp_path_factory.mktemp("webhooks") / "spool")
        except OSError as exc:
            pytest.fail(f"cannot start `switchboard probe`: {exc}")  # a crashed process is a failure

        def running() -> None:
            if probe.proc.poll() is not None:
                pytest.fail(f"`switchboard probe` exited with {probe.proc.returncode}:\n{probe.log()}")

        first_failure_seen: dict[str, datetime] = {}  # when a failed delivery was first on record, per user

        def poll() -> dict[str, dict]:
            running()
            now = {name: state(name) for name in USERS}
            for name in ("error", "down"):
                if name not in first_failure_seen and any(
                    a["webhook_attempts"] >= 1 and a["webhook_error"] for a in now[name]["alerts"]
                ):
                    first_failure_seen[name] = now[name]["at"]
            return now

        # phase 1: everything dropped, until every test is alerting (3 results 5 s apart, plus the start)
        alerting: dict[str, dict] = {}

        def all_alerting():
            for name, s in poll().items():
                if name not in alerting and s["test"]["alerting_since"] is not None:
                    alerting[name] = s
            return len(alerting) == len(USERS)

        wait_for(all_alerting, 40, "every test alerting", step=0.5)
        responder.drop = 0.0  # one float store, read by the responder's loop for each later request

        # phase 2: everything answered, until every test cleared and every delivery outcome is in
        def settled():
            final = poll()
            ok, err = final["ok"], final["error"]
            return (
                all(final[n]["test"]["alerting_since"] is None and len(final[n]["alerts"]) == 2 for n in USERS)
                and len(receivers["ok"].received()) >= 2
                and all(a["webhook_status"] == "delivered" for a in ok["alerts"])
                and err["alerts"][0]["webhook_status"] == "failed"
                and all(a["webhook_attempts"] >= 1 for n in ("error", "down") for a in final[n]["alerts"])
                and set(first_failure_seen) == {"error", "down"}
                and all(
                    sum(utc(r["tested_at"]) > first_failure_seen[n] for r in final[n]["results"]) >= STREAK
                    for n in ("error", "down")
                )
            )

        wait_for(settled, 60, "every test cleared and every webhook delivered or failed", step=0.5)
        # the final state, read before the receivers' records so every attempt it counts is in them
        final = {name: state(name) for name in USERS}
        assert "Traceback" not in probe.log(), probe.log()
        yield {
            "env": env,
            "alerting": alerting,
            "final": final,
            "first_failure_seen": first_failure_seen,
            "received": {name: r.received() for name, r in receivers.items()},
            "probe_log": probe.log(),
        }
    finally:
        if probe is not None:
            probe.stop()
        if srv_row is not None:
            with server.client() as admin:
                admin.delete(f"/servers/{srv_row['id']}")
        for c in clients.values():
            c.close()
        for r in receivers.values():
            r.close()
        loop.call_soon_threadsafe(responder.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def body_for(scenario, name: str, alert: dict) -> dict:
    e = scenario["env"][name]
    return {
        "event": f"voip_test.{alert['kind']}",
        "alert_id": alert["id"],
        "voip_test_id": e["test_id"],
        "endpoint_id": e["endpoint_id"],
        "user_id": e["user"]["id"],
        "mos": alert["mos"],
        "at": utc(alert["created_at"]).isoformat("T", "seconds") + "Z",
    }


@pytest.mark.parametrize("name", USERS)
def test_three_bad_results_raise_an_alert(scenario, name):
    seen = scenario["alerting"][name]
    results, test = seen["results"], seen["test"]
    assert len(results) >= STREAK, results
    for r in results:  # everything dropped so far: total loss, MOS 1
        assert r["packets_sent"] == 5 and r["packets_received"] == 0 and r["mos"] == 1.0, r
    # alerting from the third result on, and one "alerting" event at that time
    assert test["alerting_since"] == results[STREAK - 1]["tested_at"], (test, results)
    assert [(a["kind"], a["voip_test_id"], a["mos"]) for a in seen["alerts"]] == [
        ("alerting", scenario["env"][name]["test_id"], 1.0)
    ], seen["alerts"]
    assert seen["alerts"][0]["created_at"] == test["alerting_since"]


@pytest.mark.parametrize("name", USERS)
def test_three_good_results_clear_it(scenario, name):
    final = scenario["final"][name]
    results, alerts = final["results"], final["alerts"]
    assert final["test"]["alerting_since"] is None, final["test"]
    # the events are exactly what the rule gives over the whole series: alerting on the 3rd bad result,
    # cleared on the 3rd good one after it
    want = expected_transitions(results)
    assert [k for k, _ in want] == ["alerting", "cleared"], results
    assert [(a["kind"], a["created_at"]) for a in alerts] == want, (alerts, results)
    cleared_at = want[1][1]
    clearing = [r for r in results if r["tested_at"] <= cleared_at][-STREAK:]
    assert all(r["packets_received"] == 5 and r["mos"] >= THRESHOLD for r in clearing), clearing
    assert alerts[1]["mos"] == clearing[-1]["mos"] and alerts[1]["mos"] > 4.3, (alerts, clearing)


def test_receiver_gets_both_transitions_as_json(scenario):
    alerts = scenario["final"]["ok"]["alerts"]
    got = scenario["received"]["ok"]
    # one POST per event, in order, each the documented JSON body; both marked delivered
    assert [g["body"] for g in got] == [body_for(scenario, "ok", a) for a in alerts], (got, alerts)
    assert [g["body"]["event"] for g in got] == ["voip_test.alerting", "voip_test.cleared"]
    for g in got:
        assert g["path"] == "/hooks/switchboard" and g["content_type"] == "application/json", g
        assert g["event_header"] == g["body"]["event"], g
    for a in alerts:
        assert (a["webhook_status"], a["webhook_attempts"], a["webhook_error"]) == ("delivered", 1, None), a
        assert a["delivered_at"] is not None and utc(a["delivered_at"]) >= utc(a["created_at"]), a
    # the alerting POST arrived while the test was still alerting (before the run that cleared it began)
    assert got[0]["at"] < utc(alerts[1]["created_at"]) <= got[1]["at"], (got, alerts)


def test_receiver_answering_500_gets_bounded_retries(scenario):
    alerting, cleared = scenario["final"]["error"]["alerts"]
    got = scenario["received"]["error"]
    # the alerting event: tried MAX_ATTEMPTS times (each reached the receiver), then given up
    assert (alerting["webhook_status"], alerting["webhook_attempts"]) == ("failed", MAX_ATTEMPTS), alerting
    assert alerting["webhook_error"] == "HTTP 500" and alerting["delivered_at"] is None, alerting
    tries = [g for g in got if g["body"].get("alert_id") == alerting["id"]]
    assert len(tries) == MAX_ATTEMPTS, tries
    assert all(g["body"] == body_for(scenario, "error", alerting) for g in tries), tries
    # retries are spaced by the worker's period (2 s), not fired back to back
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in zip(tries, tries[1:], strict=False)]
    assert all(gap >= 1.5 for gap in gaps), gaps
    # the cleared event is being tried the same way (failed or still pending, with the error recorded)
    assert cleared["webhook_status"] in ("pending", "failed") and cleared["webhook_error"] == "HTTP 500", cleared
    assert 1 <= cleared["webhook_attempts"] <= MAX_ATTEMPTS, cleared
    assert len([g for g in got if g["body"].get("alert_id") == cleared["id"]]) >= cleared["webhook_attempts"]
    # nothing else was sent to it
    assert {g["body"].get("alert_id") for g in got} <= {alerting["id"], cleared["id"]}


def test_receiver_down_records_connection_errors(scenario):
    for a in scenario["final"]["down"]["alerts"]:
        assert a["webhook_status"] in ("pending", "failed") and a["delivered_at"] is None, a
        assert 1 <= a["webhook_attempts"] <= MAX_ATTEMPTS, a
        assert a["webhook_error"].startswith("ConnectError"), a


@pytest.mark.parametrize("name", ["error", "down"])
def test_probing_continues_while_deliveries_fail(scenario, name):
    # results kept coming (and were ingested, and cleared the alert) after a failed delivery was on record
    since = scenario["first_failure_seen"][name]
    later = [r for r in scenario["final"][name]["results"] if utc(r["tested_at"]) > since]
    assert len(later) >= STREAK, (since, scenario["final"][name]["results"])
    assert "Traceback" not in scenario["probe_log"]


def test_scenario_took_real_time(scenario):
    # guard against a vacuous run: every test produced a bad streak and a good streak of real results
    for name in USERS:
        results = scenario["final"][name]["results"]
        assert len(results) >= 2 * STREAK, results
        span = (utc(results[-1]["tested_at"]) - utc(results[0]["tested_at"])).total_seconds()
        assert span >= (2 * STREAK - 1) * 5 - 2, (span, results)  # 5 s interval, 1 s rounding each end
