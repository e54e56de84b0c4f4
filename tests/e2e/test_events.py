"""The live event stream (/events/stream SSE, /events/ws WebSocket) against a real serve: tokens of
any dialect, registration and channel events from real SIP, resume without loss, `gap` for a resume
from too long ago, users seeing only their own endpoints' events, and on PostgreSQL two nodes on one
database seeing each other's events."""

from __future__ import annotations

import itertools
import json
import secrets
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from switchboard.domain.security import SecretBox
from tests.call_peers import Phone
from tests.conftest import ADMIN_PASSWORD, Server, as_user, make_server, new_user
from tests.sip_peers import Jade, SipUdpClient, pjsip_account

HISTORY = 60  # the module's servers keep 60 events (SWITCHBOARD_EVENT_HISTORY): the gap test overflows it

EXTENSIONS = """
[default]
exten => 600,1,Answer()
 same => n,Playback(hello-world)
 same => n,Hangup()
"""


class Sse:
    """An SSE client on a thread: the events it got (parsed `data:` JSON, with the `id`/`event` lines
    checked against it), the keep-alive comments, the status of the response."""

    def __init__(self, url: str, params: dict | None = None, headers: dict | None = None):
        self.events: list[dict] = []
        self.comments = 0
        self.status: int | None = None
        self.body = b""
        self._cond = threading.Condition()
        self._closed = False
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, params, headers), daemon=True)
        self._thread.start()
        assert self._started.wait(10), "no response to the SSE request"

    def _run(self, url, params, headers) -> None:
        try:
            with self._client.stream("GET", url, params=params, headers=headers) as r:
                self.status, self.content_type = r.status_code, r.headers.get("content-type", "")
                if r.status_code != 200:
                    self.body = r.read()
                    self._started.set()
                    return
                self._started.set()
                cur: dict[str, str] = {}
                for line in r.iter_lines():
                    if line == "":
                        if "data" in cur:
                            ev = json.loads(cur["data"])
                            assert str(ev["seq"]) == cur["id"] and ev["type"] == cur["event"], cur
                            with self._cond:
                                self.events.append(ev)
                                self._cond.notify_all()
                        cur = {}
                    elif line.startswith(":"):
                        self.comments += 1
                    else:
                        key, _, value = line.partition(":")
                        cur[key] = value[1:] if value.startswith(" ") else value
        except Exception:  # noqa: BLE001 - closed under it
            pass
        finally:
            self._started.set()

    def wait(self, pred, timeout: float = 10.0, what: str = "event") -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} in {[(e['type'], e['data']) for e in self.events][-20:]}")
                self._cond.wait(left)

    def close(self) -> None:
        self._closed = True
        self._client.close()


def ws_wait(ws, pred, timeout: float = 10.0, what: str = "event") -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {what} over WebSocket in {seen[-20:]}")
        try:
            ev = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            continue
        seen.append((ev["type"], ev["data"]))
        if pred(ev):
            return ev


class Node:
    def __init__(self, srv: Server, jade: Jade):
        self.srv, self.jade = srv, jade

    def sse(self, token: str | None = None, **params) -> Sse:
        if token is None:
            token = self.jade.token
        return Sse(self.srv.url + "/events/stream", params={"token": token, **params})

    def ws(self, token: str | None = None, **params):
        q = "&".join(f"{k}={v}" for k, v in {"token": token or self.jade.token, **params}.items())
        # entered here (websockets wants a context manager); the tests close it
        return ws_connect(f"ws://127.0.0.1:{self.srv.http_port}/events/ws?{q}", open_timeout=10).__enter__()


@pytest.fixture(scope="module")
def node(backend, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"events-{backend}")
    srv, pg = make_server(backend, tmp, SWITCHBOARD_EVENT_HISTORY=str(HISTORY))
    srv.start()
    jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
    jade.put_pjsip("\n".join(pjsip_account(n, f"{n}-pass", max_contacts=3) for n in ("ev1", "ev2", "ev3", "caller")))
    r = jade.call("PUT", "/admin/dialplan/configurations/extensions.conf", json={"data": EXTENSIONS})
    assert r.status_code == 200, r.text
    yield Node(srv, jade)
    jade.close()
    code = srv.stop()
    log = srv.log()
    if pg:
        pg.drop()
    assert code == 0, f"serve did not stop cleanly ({code})"
    assert "Traceback" not in log, log


def test_a_token_is_required(node):
    url = node.srv.url + "/events/stream"
    for params, headers in (({}, {}), ({"token": "nope"}, {}), ({}, {"Authorization": "Bearer nope"})):
        r = httpx.get(url, params=params, headers=headers, timeout=10)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == 401
    assert httpx.get(url, params={"token": node.jade.token, "since": "x"}, timeout=10).status_code == 400
    for q in ("", "?token=nope"):
        with ws_connect(f"ws://127.0.0.1:{node.srv.http_port}/events/ws{q}", open_timeout=10) as ws:
            with pytest.raises(ConnectionClosed) as exc:
                ws.recv(timeout=5)
            assert exc.value.rcvd.code == 4401


def test_tokens_of_every_dialect_in_every_place(node):
    """jade's authtoken, the providers access_token, kazoo's auth_token; query or headers."""
    url = node.srv.url
    providers = httpx.post(
        url + "/api/account/credentials/verify", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10
    ).json()["access_token"]
    ways = [
        {"params": {"authtoken": node.jade.token}},
        {"headers": {"X-Auth-Token": node.jade.token}},
        {"headers": {"access_token": providers}},
        {"headers": {"Authorization": f"Bearer {providers}"}},
    ]
    for way in ways:
        with httpx.stream("GET", url + "/events/stream", timeout=10, **way) as r:
            assert r.status_code == 200, way
            assert r.headers["content-type"].startswith("text/event-stream")


def test_sse_and_ws_see_a_registration(node):
    sse, ws = node.sse(), node.ws()
    try:
        time.sleep(0.3)
        with SipUdpClient(node.srv.sip_port, user_agent="events-test/1") as sip:
            assert sip.register("ev1", "ev1-pass", expires=120).status == 200
            got = sse.wait(lambda e: e["type"] == "registration.added" and e["data"]["aor"] == "ev1")
            assert got["data"]["user_agent"] == "events-test/1" and got["data"]["contact"].startswith("sip:ev1@")
            assert 100 <= got["data"]["expires"] <= 120 and got["time"].endswith("Z")
            over_ws = ws_wait(ws, lambda e: e["type"] == "registration.added" and e["data"]["aor"] == "ev1")
            assert over_ws == got
            assert sip.register("ev1", "ev1-pass", expires=120).status == 200
            sse.wait(lambda e: e["type"] == "registration.refreshed" and e["data"]["aor"] == "ev1")
            assert sip.register("ev1", "ev1-pass", expires=0).status == 200
            removed = sse.wait(lambda e: e["type"] == "registration.removed" and e["data"]["aor"] == "ev1")
            assert removed["data"]["reason"] == "unregistered"
        seqs = [e["seq"] for e in sse.events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    finally:
        sse.close()
        ws.close()


def test_channel_events_of_a_call(node):
    sse = node.sse()
    phone = Phone(user="caller")
    try:
        time.sleep(0.3)
        call = phone.call(node.srv.sip_port, "600", "caller", "caller-pass")
        assert call.status == 200, call.status
        created = sse.wait(lambda e: e["type"] == "channel.created", what="channel.created")
        uid = created["data"]["unique_id"]
        assert created["data"]["channel"].startswith("PJSIP/caller-") and created["data"]["exten"] == "600"
        sse.wait(lambda e: e["type"] == "channel.state" and e["data"]["unique_id"] == uid
                 and e["data"]["channel_state_desc"] == "Up", what="Up")  # fmt: skip
        hangup = sse.wait(lambda e: e["type"] == "channel.hangup" and e["data"]["unique_id"] == uid, 20)
        assert hangup["data"]["cause"] == 16 and hangup["data"]["cause_txt"] == "Normal Clearing"
        order = [e["type"] for e in sse.events if e["data"].get("unique_id") == uid]
        assert order[0] == "channel.created" and order[-1] == "channel.hangup"
    finally:
        phone.close()
        sse.close()


def _reload_dialplan(node) -> None:
    r = node.jade.call("PUT", "/admin/dialplan/configurations/extensions.conf", json={"data": EXTENSIONS})
    assert r.status_code == 200, r.text


def test_reconnect_with_the_last_seq_loses_nothing(node):
    first = node.sse()
    try:
        _reload_dialplan(node)
        last = first.wait(lambda e: e["type"] == "config.reloaded")["seq"]
    finally:
        first.close()
    # while nobody listens: three registrations and a reload
    with SipUdpClient(node.srv.sip_port) as sip:
        for n in ("ev1", "ev2", "ev3"):
            assert sip.register(n, f"{n}-pass", expires=60).status == 200
    _reload_dialplan(node)
    # resume: Last-Event-ID over SSE, ?since over WebSocket, {"since"} sent over WebSocket
    again = Sse(
        node.srv.url + "/events/stream", params={"token": node.jade.token}, headers={"Last-Event-ID": str(last)}
    )
    ws = node.ws(since=last)
    try:
        again.wait(lambda e: e["type"] == "config.reloaded")
        types = [(e["type"], e["data"].get("aor")) for e in again.events]
        assert types[:3] == [("registration.added", n) for n in ("ev1", "ev2", "ev3")], types
        assert "gap" not in [t for t, _ in types]
        assert all(e["seq"] > last for e in again.events)
        got = [ws_wait(ws, lambda e: True) for _ in range(len(again.events))]
        assert got == again.events[: len(got)]
        ws.send(json.dumps({"since": last}))
        replay = [ws_wait(ws, lambda e: True) for _ in range(3)]
        assert replay == again.events[:3]
    finally:
        again.close()
        ws.close()


def test_a_resume_from_too_long_ago_gets_a_gap(node):
    sse = node.sse()
    try:
        _reload_dialplan(node)
        old = sse.wait(lambda e: e["type"] == "config.reloaded")["seq"]
    finally:
        sse.close()
    for _ in range(HISTORY + 5):  # each reload publishes one event: the history overflows
        _reload_dialplan(node)
    late = node.sse(since=str(old))
    try:
        gap = late.wait(lambda e: True)
        assert gap["type"] == "gap" and gap["data"]["from"] == old + 1 and gap["data"]["to"] >= old + 1
        assert gap["seq"] == gap["data"]["to"]
        late.wait(lambda e: e["type"] != "gap")
        assert late.events[1]["seq"] > gap["seq"]
    finally:
        late.close()


def _spear_user_with_a_test(srv: Server, admin: httpx.Client) -> tuple[dict, int, int]:
    user = new_user(admin)
    with as_user(srv, user) as c:
        ep = c.post(f"/users/{user['id']}/endpoints", json={"endpoint": {"name": "PBX", "ip_address": "198.51.100.2"}})
        ep = ep.json()
        test = c.post(
            f"/users/{user['id']}/endpoints/{ep['id']}/voip_tests", json={"voip_test": {"server_id": _probe(srv)[0]}}
        ).json()
    return user, ep["id"], test["id"]


_PROBES: dict[str, tuple[int, str]] = {}
_TICK = itertools.count()  # results one second apart (alerting counts results newer than the last)


def _probe(srv: Server) -> tuple[int, str]:
    if srv.url not in _PROBES:
        with srv.client() as admin:
            s = admin.post("/servers", json={"server": {"name": "Probe", "ip_address": "203.0.113.9"}}).json()
        _PROBES[srv.url] = (s["id"], s["agent_key"])
    return _PROBES[srv.url]


def _post_result(srv: Server, test_id: int, mos: float) -> None:
    sid, key = _probe(srv)
    item = {
        "uuid": secrets.token_hex(16),
        "voip_test_id": test_id,
        "tested_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600 + next(_TICK))),
        "packets_sent": 5,
        "packets_received": 5,
        "rtt_min_ms": 1.0,
        "rtt_avg_ms": 1.5,
        "rtt_max_ms": 2.0,
        "jitter_ms": 0.1,
        "mos": mos,
    }
    r = httpx.post(srv.url + "/probe/v1/results", auth=(str(sid), key), json={"results": [item]}, timeout=10)
    assert r.json() == {"stored": 1}, r.text


def _login(srv: Server, user: dict) -> str:
    r = httpx.post(srv.url + "/v1/admin/login", auth=(user["username"], user["password"]), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["result"]["authtoken"]


def test_a_user_sees_only_their_own_endpoints_events(node):
    with node.srv.client() as admin:
        alice, alice_ep, alice_test = _spear_user_with_a_test(node.srv, admin)
        bob, bob_ep, bob_test = _spear_user_with_a_test(node.srv, admin)
    alice_sse, bob_sse, admin_sse = node.sse(_login(node.srv, alice)), node.sse(_login(node.srv, bob)), node.sse()
    alice_ws = node.ws(_login(node.srv, alice))
    try:
        time.sleep(0.3)
        _post_result(node.srv, bob_test, 4.3)
        with SipUdpClient(node.srv.sip_port) as sip:  # PBX events: admins only
            assert sip.register("ev2", "ev2-pass", expires=60).status == 200
        for _ in range(3):  # three bad results in a row: an alert
            _post_result(node.srv, alice_test, 1.5)
        mine = alice_sse.wait(lambda e: e["type"] == "alert")
        assert mine["data"]["kind"] == "alerting" and mine["data"]["endpoint_id"] == alice_ep
        alice_sse.wait(lambda e: e["type"] == "probe.result")
        ws_wait(alice_ws, lambda e: e["type"] == "alert")
        admin_sse.wait(lambda e: e["type"] == "alert" and e["data"]["endpoint_id"] == alice_ep)
        admin_sse.wait(lambda e: e["type"] == "probe.result" and e["data"]["endpoint_id"] == bob_ep)
        admin_sse.wait(lambda e: e["type"] == "registration.refreshed" or e["type"] == "registration.added")
        bob_sse.wait(lambda e: e["type"] == "probe.result" and e["data"]["endpoint_id"] == bob_ep)
        result = next(e for e in alice_sse.events if e["type"] == "probe.result")
        assert result["data"]["mos"] == 1.5 and result["data"]["rtt_avg_ms"] == 1.5 and "server_id" in result["data"]
        time.sleep(0.5)
        assert {e["data"]["endpoint_id"] for e in alice_sse.events} == {alice_ep}
        assert {e["type"] for e in alice_sse.events} == {"probe.result", "alert"}
        assert {e["data"]["endpoint_id"] for e in bob_sse.events} == {bob_ep}
        # a resume from long ago shows them nothing of others' either
        old = node.sse(_login(node.srv, bob), since="0")
        try:
            old.wait(lambda e: e["type"] == "probe.result")
            time.sleep(0.3)
            assert all(e["type"] == "gap" or e["data"].get("endpoint_id") == bob_ep for e in old.events)
        finally:
            old.close()
    finally:
        for s in (alice_sse, bob_sse, admin_sse):
            s.close()
        alice_ws.close()


def test_two_nodes_on_one_postgres_see_each_others_events(backend):
    if backend != "postgres":
        pytest.skip("in process only on SQLite")
    tmp = Path(tempfile.mkdtemp(prefix="sb-events-2nodes-"))
    key = SecretBox.generate_key()
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    a, pg = make_server("postgres", tmp / "a", SWITCHBOARD_SECRET_KEY=key)
    b = Server("postgres", a.database_url, tmp / "b", extra_env={"SWITCHBOARD_SECRET_KEY": key})
    try:
        a.start()
        b.start()
        jade_a = Jade(a.url, "admin", ADMIN_PASSWORD)
        jade_a.put_pjsip(pjsip_account("n1", "n1-pass"))
        token = jade_a.token  # a token from node A works on node B (one identity service, one database)
        on_b = Sse(b.url + "/events/stream", params={"token": token})
        on_a = Sse(a.url + "/events/stream", params={"token": token})
        try:
            assert on_b.status == 200 and on_a.status == 200, (on_b.body, on_a.body)
            time.sleep(0.5)
            jade_a.put_pjsip(pjsip_account("n1", "n1-pass"))  # config.reloaded on A
            with SipUdpClient(a.sip_port) as sip:
                assert sip.register("n1", "n1-pass", expires=60).status == 200
            got = on_b.wait(lambda e: e["type"] == "registration.added" and e["data"]["aor"] == "n1", 15)
            on_a.wait(lambda e: e["seq"] == got["seq"], 15)
            # the same cluster sequence on both nodes
            common = {e["seq"]: e for e in on_a.events} | {}
            for e in on_b.events:
                if e["seq"] in common:
                    assert common[e["seq"]] == e
            seqs = [e["seq"] for e in on_b.events]
            assert seqs == sorted(seqs)
            # and a resume on B with a number A gave
            resume = Sse(
                b.url + "/events/stream", params={"token": token}, headers={"Last-Event-ID": str(got["seq"] - 1)}
            )
            try:
                assert resume.wait(lambda e: True)["seq"] == got["seq"]
            finally:
                resume.close()
        finally:
            on_a.close()
            on_b.close()
            jade_a.close()
    finally:
        b.stop()
        a.stop()
        if pg:
            pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_sigterm_ends_open_streams_at_once(backend, tmp_path):
    """A server stopping with a dashboard open: its SSE and WebSocket streams end at the SIGTERM
    (the WebSocket with 1001 "going away"; uvicorn says 1012 when it closes it first), so the HTTP
    shutdown does not wait out its 15 s grace period nor cancel them mid-read (which logged a
    traceback)."""
    srv, pg = make_server(backend, tmp_path)
    srv.start()
    try:
        jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
        node = Node(srv, jade)
        sse, ws = node.sse(), node.ws()
        assert sse.status == 200
        t0 = time.monotonic()
        code = srv.stop(timeout=30)
        took = time.monotonic() - t0
        sse._thread.join(5)
        assert not sse._thread.is_alive(), "the SSE stream did not end"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        # 1001 from the stream itself, or 1012 from uvicorn's own shutdown when it gets there first
        assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
        jade.close()
        sse.close()
    finally:
        srv.stop(signal.SIGKILL)
        if pg:
            pg.drop()
    assert code == 0, srv.log()
    assert took < 10, f"stopping took {took:.1f} s"
    assert "Traceback" not in srv.log(), srv.log()
