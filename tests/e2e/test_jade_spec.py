"""The jade spec (jade-api.txt), example by example against a running server, then its rules.

Every curl example of the spec is replayed, in an order that gives it what it needs (pjsip.conf,
queues.conf and res_parking.conf are written first; an adpma before its adp; a chat before its
messages). For each: HTTP status = the example's statuscode, the envelope (`api_ver` "0.1",
`statuscode`, a nanosecond RFC 3339 `timestamp`, `result` exactly when the example has one) and
`assert_shape(result, example)`: every field the spec's example shows, with the same JSON type.
The examples are pasted from the spec at the end of this file (`EX`, keyed by method and path).

The spec's inputs are used as given, except where the server is shared with other test modules
(user names, context names: suffixed with random hex) or where the spec names things this PBX does
not have (Asterisk's app_voicemail module, the `Agent:1001` device): those are said where they
happen. Live call state (agents, channels, parked calls, queue entries, registered contacts) is
empty on this server, so those examples are replayed as the list shape plus 404 for the id.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, new_user

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BACKUP = re.compile(r"^extensions\.conf\.\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
CURL_FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
MASK = "********"
OK = {"api_ver": "0.1", "statuscode": 200}  # the `{$defhdr}` reply of writes

SEEN: list[tuple[str, str]] = []  # (path, body) of every response this module received
PASSWORDS: set[str] = {ADMIN_PASSWORD}  # account passwords used by this module
SIP_SECRETS: set[str] = set()  # pjsip auth passwords written by this module

DIALPLAN = "/v1/admin/dialplan"
EXTENSIONS = f"{DIALPLAN}/configurations/extensions.conf"
ADPMAS, ADPS, SDPS = f"{DIALPLAN}/adpmas", f"{DIALPLAN}/adps", f"{DIALPLAN}/sdps"
CFG_LOTS, LOTS = "/v1/admin/park/cfg_parkinglots", "/v1/admin/park/parkinglots"
USERS, MANAGER_USERS = "/v1/admin/user/users", "/v1/manager/users"


def uniq(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


# ---- checking ---------------------------------------------------------------------------------------
def _fits(actual, example) -> bool:
    try:
        assert_shape(actual, example)
        return True
    except AssertionError:
        return False


def assert_shape(actual, example, where: str = "result") -> None:
    """`actual` has every field the spec's `example` shows, each with the same JSON type, recursively.

    null in the example allows any type. A `tm_update` the example shows as a string may be null (the
    spec shows it both ways: null until the first update), and `tm_*` strings are RFC 3339 with ns.
    Lists: every actual item has the shape of some example item and every example item is matched by
    some actual item; an empty list passes (the callers check what a list must hold)."""
    if example is None:
        return
    key = where.rsplit(".", 1)[-1]
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        missing = sorted(set(example) - set(actual))
        assert not missing, f"{where}: missing {missing} (has {sorted(actual)})"
        for k, v in example.items():
            assert_shape(actual[k], v, f"{where}.{k}")
    elif isinstance(example, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        if not actual or not example:
            return
        for i, item in enumerate(actual):
            if not any(_fits(item, ex) for ex in example):
                assert_shape(item, example[0], f"{where}[{i}]")  # raises, saying what differs
                raise AssertionError(f"{where}[{i}] = {item!r} has the shape of no item of the example")
        for ex in example:
            assert any(_fits(item, ex) for item in actual), f"{where}: no item has the shape of {ex!r}"
    elif isinstance(example, bool):
        assert isinstance(actual, bool), f"{where}: expected a boolean, got {actual!r}"
    elif isinstance(example, int):
        assert isinstance(actual, int) and not isinstance(actual, bool), f"{where}: expected an integer, got {actual!r}"
    elif isinstance(example, float):
        assert isinstance(actual, float), f"{where}: expected a float, got {actual!r}"
    elif isinstance(example, str):
        if actual is None and key == "tm_update":
            return
        assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"
        if key.startswith("tm_"):
            assert TS.match(actual), f"{where}: {actual!r} is not an RFC 3339 timestamp with ns"
    else:  # pragma: no cover - the examples are JSON
        raise AssertionError(f"{where}: unexpected example value {example!r}")


def _what(r: httpx.Response) -> str:
    return f"{r.request.method} {r.request.url.path}?{r.request.url.query.decode()} -> {r.status_code}: {r.text[:600]}"


def envelope(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, _what(r)
    assert r.headers["content-type"].startswith("application/json"), _what(r)
    body = r.json()
    assert body["api_ver"] == "0.1" and body["statuscode"] == status, _what(r)
    assert isinstance(body["timestamp"], str) and TS.match(body["timestamp"]), _what(r)
    return body


def expect(r: httpx.Response, example: dict):
    """The response is the spec example's: its status, its envelope keys, its result's shape. → result"""
    body = envelope(r, example["statuscode"])
    assert set(body) == set(example) | {"timestamp"}, f"envelope keys {sorted(body)}: {_what(r)}"
    if "result" in example:
        assert_shape(body["result"], example["result"])
    return body.get("result")


def expect_error(r: httpx.Response, status: int) -> str:
    """jade's error envelope: HTTP status = statuscode, `error: {code, message}`, no result. → message"""
    body = envelope(r, status)
    assert set(body) == {"api_ver", "statuscode", "timestamp", "error"}, _what(r)
    err = body["error"]
    assert isinstance(err, dict) and {"code", "message"} <= set(err), _what(r)
    assert err["code"] == status and isinstance(err["message"], str) and err["message"], _what(r)
    return err["message"]


# ---- calling ---------------------------------------------------------------------------------------
class Jade:
    """A jade caller: `?authtoken=` on every call, bodies sent as `curl -d` sends them, responses recorded."""

    def __init__(self, server, token: str | None):
        self.http = httpx.Client(base_url=server.url, timeout=20)
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body=None,
        *,
        raw: bytes | None = None,
        params: dict | None = None,
        token=...,
        headers: dict | None = None,
    ) -> httpx.Response:
        query = dict(params or {})
        token = self.token if token is ... else token
        if token is not None:
            query["authtoken"] = token
        content = raw if raw is not None else None if body is None else json.dumps(body).encode()
        r = self.http.request(
            method,
            path,
            params=query,
            content=content,
            headers=headers if headers is not None else CURL_FORM if content is not None else None,
        )
        SEEN.append((path, r.text))
        return r

    def get(self, path: str, body=None, **kw) -> httpx.Response:
        return self.call("GET", path, body, **kw)

    def post(self, path: str, body=None, **kw) -> httpx.Response:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body=None, **kw) -> httpx.Response:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, body=None, **kw) -> httpx.Response:
        return self.call("DELETE", path, body, **kw)

    def result(self, path: str, **kw):
        """GET → result, asserting a 200 envelope (for reading state back, not for replaying examples)."""
        return envelope(self.get(path, **kw), 200)["result"]

    def close(self) -> None:
        self.http.close()


def login(server, username: str, password: str) -> str:
    """POST /v1/admin/login with HTTP Basic (the spec's `curl -u`) → the authtoken."""
    with httpx.Client(base_url=server.url, timeout=20) as h:
        r = h.post("/v1/admin/login", auth=(username, password))
    SEEN.append(("/v1/admin/login", r.text))
    token = expect(r, EX["POST /v1/admin/login"])["authtoken"]
    assert UUID.match(token), token
    return token


def login_refused(server, username: str, password: str) -> None:
    with httpx.Client(base_url=server.url, timeout=20) as h:
        r = h.post("/v1/admin/login", auth=(username, password))
    SEEN.append(("/v1/admin/login", r.text))
    expect_error(r, 401)


@dataclass
class Person:
    username: str
    password: str
    uuid: str
    jade: Jade


def person(server, admin) -> Person:
    """A plain user, created the spear way (POST /users), logged in to jade."""
    u = new_user(admin)
    PASSWORDS.add(u["password"])
    j = Jade(server, login(server, u["username"], u["password"]))
    info = j.result("/me/info")
    assert info["username"] == u["username"]
    return Person(u["username"], u["password"], info["uuid"], j)


# ---- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jade(server):
    """The admin's jade session."""
    j = Jade(server, login(server, "admin", ADMIN_PASSWORD))
    yield j
    j.close()


@pytest.fixture(scope="module")
def me(server, admin):
    p = person(server, admin)
    yield p
    p.jade.close()


@pytest.fixture(scope="module")
def buddy(server, admin):
    p = person(server, admin)
    yield p
    p.jade.close()


@pytest.fixture(scope="module")
def outsider(server, admin):
    p = person(server, admin)
    yield p
    p.jade.close()


def pjsip_conf(secret_agent: str, secret_199: str) -> str:
    objects = ""
    for name, secret in (("pjagent-01", secret_agent), ("199", secret_199)):
        objects += f"""
[{name}]
type = endpoint
context = demo
allow = all
aors = {name}
auth = {name}
mailboxes = {name}@vm-demo

[{name}]
type = auth
auth_type = userpass
username = {name}
password = {secret}

[{name}]
type = aor
max_contacts = 1
remove_existing = yes
"""
    return f"""; jade spec replay: the spec's pjsip objects
[transport-udp]
type = transport
protocol = udp
bind = 0.0.0.0

[transport-tcp]
type = transport
protocol = tcp
bind = 0.0.0.0
{objects}
[sip_proxy]
type = registration
server_uri = sip:sip_proxy:5060
client_uri = sip:2345@sip_proxy:5060
expiration = 120

[mysipprovider]
type = registration
server_uri = sip:mysipprovider.com
client_uri = sip:1234@mysipprovider.com
"""


QUEUES_CONF = """; jade spec replay: the spec's queue
[general]
persistentmembers = yes

[sales_1]
strategy = ringall
servicelevel = 5
member => Agent/10001
"""

# The spec's lots: `default` as its parkinglots example shows it (701-720, 45 s), and the
# cfg_parkinglots example's lots, written with `=` as that example reads them back (no "> ").
PARKING_CONF = """; jade spec replay: the spec's parking lots
[general]

[default]
parkext => 700
parkpos => 701-720
context => parkedcalls
parkingtime => 45

[test_park1]
context = teset
parkpos = 851-900

[jade-tesetqueue2]

[edvina]
comebackcontext = edvinapark-timeout
comebackdialtime = 90
comebacktoorigin = no
context = edvina_park
findslot = next
parkedmusicclass = edvina
parkpos = 800-850

[jade-testqueue2]
"""


@pytest.fixture(scope="module")
def pbx(jade):
    """The configuration the examples need, written through the file-level configurations routes."""
    secrets_ = (f"sip{secrets.token_hex(8)}", f"sip{secrets.token_hex(8)}")
    SIP_SECRETS.update(secrets_)
    for path, text in (
        ("/v1/admin/pjsip/configurations/pjsip.conf", pjsip_conf(*secrets_)),
        ("/v1/admin/queue/configurations/queues.conf", QUEUES_CONF),
        ("/v1/admin/park/configurations/res_parking.conf", PARKING_CONF),
    ):
        expect(jade.put(path, {"data": text}), OK)
        shown = text
        for secret in secrets_:
            shown = shown.replace(secret, "********")  # secrets show masked, never in clear
        assert jade.result(path)["data"] == shown
    return secrets_


@pytest.fixture(scope="module")
def contact(jade, pbx, me):
    """An address-book contact of `me` pointing at the spec's pjsip endpoint 199."""
    before = {c["uuid"] for c in jade.result("/v1/admin/user/contacts")["list"]}
    expect(
        jade.post(
            "/v1/admin/user/contacts",
            {
                "user_uuid": me.uuid,
                "type": "pjsip_endpoint",
                "target": "199",
                "name": "test target",
                "detail": "test target detail 4",
            },
        ),
        OK,
    )
    new = [c for c in jade.result("/v1/admin/user/contacts")["list"] if c["uuid"] not in before]
    assert len(new) == 1
    return new[0]


def new_chat(owner: Person, members: list[str], **fields) -> dict:
    """POST /me/chats → the caller's new chat entry (found as the one that was not there before)."""
    before = {c["uuid"] for c in owner.jade.result("/me/chats")}
    body = {"name": "test chat name", "detail": "test chat detail", "type": 1, "members": members, **fields}
    expect(owner.jade.post("/me/chats", body), EX["POST /me/chats"])
    new = [c for c in owner.jade.result("/me/chats") if c["uuid"] not in before]
    assert len(new) == 1, new
    return new[0]


def ns_timestamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def live_extensions(jade) -> str:
    return jade.result(EXTENSIONS)["data"]


def configuration_names(jade) -> list[str]:
    return [f["name"] for f in jade.result(f"{DIALPLAN}/configurations")["list"]]


# =====================================================================================================
# The spec's examples, in the order of the spec (each test after what it needs)
# =====================================================================================================
def test_login_and_logout(server):
    """POST /admin/login with `-u` → result.authtoken; DELETE /admin/login?authtoken= revokes that token."""
    token = login(server, "admin", ADMIN_PASSWORD)
    j = Jade(server, token)
    try:
        assert j.result("/v1/admin/info")["username"] == "admin"
        expect(j.delete("/v1/admin/login"), EX["DELETE /v1/admin/login"])
        expect_error(j.get("/v1/admin/info"), 401)
    finally:
        j.close()


def test_admin_info(jade):
    res = expect(jade.get("/v1/admin/info"), EX["GET /v1/admin/info"])
    assert res["username"] == "admin" and UUID.match(res["uuid"])


def test_core_systems(jade):
    lst = expect(jade.get("/v1/admin/core/systems"), EX["GET /v1/admin/core/systems"])["list"]
    assert [s["id"] for s in lst] == ["1"]
    res = expect(jade.get("/v1/admin/core/systems/1"), EX["GET /v1/admin/core/systems/<detail>"])
    assert res["id"] == "1"
    expect_error(jade.get("/v1/admin/core/systems/2"), 404)


def test_core_modules(jade, pbx):
    """The spec's module is Asterisk's app_voicemail, which this PBX does not have (unknown → 404); the
    examples are replayed on app_queue, which is loaded back at the end."""
    lst = expect(jade.get("/v1/admin/core/modules"), EX["GET /v1/admin/core/modules"])["list"]
    assert "app_queue" in {m["name"] for m in lst}
    expect_error(jade.get("/v1/admin/core/modules/app_voicemail"), 404)
    mod = "/v1/admin/core/modules/app_queue"
    res = expect(jade.get(mod), EX["GET /v1/admin/core/modules/<detail>"])
    assert res["name"] == "app_queue" and res["load"] == "Running"
    try:
        expect(jade.post(mod), EX["POST /v1/admin/core/modules/<detail>"])
        expect(jade.put(mod), EX["PUT /v1/admin/core/modules/<detail>"])
        expect(jade.delete(mod), EX["DELETE /v1/admin/core/modules/<detail>"])
        assert jade.result(mod)["load"] == "Not Running"
        assert jade.result("/v1/admin/queue/queues")["list"] == []
    finally:
        expect(jade.post(mod), EX["POST /v1/admin/core/modules/<detail>"])
    assert jade.result(mod)["load"] == "Running"
    assert "sales_1" in {q["name"] for q in jade.result("/v1/admin/queue/queues")["list"]}


def test_core_channels_live_state(jade):
    lst = expect(jade.get("/v1/admin/core/channels"), EX["GET /v1/admin/core/channels"])["list"]
    assert lst == []
    expect_error(jade.get("/v1/admin/core/channels/1513946896.7"), 404)
    expect_error(jade.delete("/v1/admin/core/channels/1513550354.0"), 404)


def test_agents_live_state(jade):
    lst = expect(jade.get("/agents"), EX["GET /agents"])["list"]
    assert lst == []
    expect_error(jade.get("/agents/", raw=b'{"id": "1001"}'), 404)
    expect_error(jade.get("/agents/1001"), 404)


def test_device_states(jade, pbx):
    lst = expect(jade.get("/device_states"), EX["GET /device_states"])["list"]
    assert {"device": "PJSIP/pjagent-01"} in lst and {"device": "PJSIP/199"} in lst
    res = expect(jade.get("/device_states/", raw=b'{"device": "PJSIP/pjagent-01"}'), EX["GET /device_states/"])
    assert res["device"] == "PJSIP/pjagent-01" and res["state"] == "UNAVAILABLE"  # nothing registered
    # the spec's own device is an agent's; there are no agents on this server
    expect_error(jade.get("/device_states/", raw=b'{"device": "Agent:1001"}'), 404)


def test_peers(jade, pbx):
    lst = expect(jade.get("/peers"), EX["GET /peers"])["list"]
    assert {"peer": "PJSIP/pjagent-01"} in lst and {"peer": "PJSIP/199"} in lst
    res = expect(jade.get("/peers/", raw=b'{"peer": "PJSIP/pjagent-01"}'), EX["GET /peers/"])
    assert res["peer"] == "PJSIP/pjagent-01" and res["channel_type"] == "PJSIP" and res["chan_object_type"] == "peer"
    # the bare name, as the spec's example sends it, names the same peer
    assert expect(jade.get("/peers/", raw=b'{"peer": "pjagent-01"}'), EX["GET /peers/"])["peer"] == "PJSIP/pjagent-01"
    expect_error(jade.get("/peers/", raw=b'{"peer": "agent-01"}'), 404)  # the spec's peer is not configured here


def test_registries(jade, pbx):
    lst = expect(jade.get("/registries"), EX["GET /registries"])["list"]
    assert {"account": "2345@sip_proxy:5060"} in lst and {"account": "1234@mysipprovider.com:5060"} in lst
    # The example shows "registration_time": "0" (a string) while its Returns section says <integer>:
    # the field's type is checked against Returns.
    example = copy.deepcopy(EX["GET /registries/"])
    example["result"]["registration_time"] = None
    res = expect(jade.get("/registries/", raw=b'{"account": "2345@sip_proxy"}'), example)
    assert isinstance(res["registration_time"], int) and not isinstance(res["registration_time"], bool)
    assert {k: res[k] for k in ("username", "domain", "domain_port", "host", "port", "refresh")} == {
        "username": "2345",
        "domain": "sip_proxy",
        "domain_port": 5060,
        "host": "sip_proxy",
        "port": 5060,
        "refresh": 120,
    }
    expect_error(jade.get("/registries/", raw=b'{"account": "9999@nowhere"}'), 404)


def test_dialplan_adpmas_and_adps(jade):
    before = {m["uuid"] for m in jade.result(ADPMAS)["list"]}
    expect(jade.post(ADPMAS, {"name": "test dpma", "detail": "test dpma dpma"}), EX["POST /v1/admin/dialplan/adpmas"])
    lst = expect(jade.get(ADPMAS), EX["GET /v1/admin/dialplan/adpmas"])["list"]
    new = [m for m in lst if m["uuid"] not in before]
    assert len(new) == 1
    dpma = new[0]
    assert UUID.match(dpma["uuid"]) and (dpma["name"], dpma["detail"], dpma["tm_update"]) == (
        "test dpma",
        "test dpma dpma",
        None,
    )
    one = f"{ADPMAS}/{dpma['uuid']}"
    assert expect(jade.get(one), EX["GET /v1/admin/dialplan/adpmas/<detail>"]) == dpma
    expect(jade.put(one, {"name": "test change name"}), EX["PUT /v1/admin/dialplan/adpmas/<detail>"])
    changed = jade.result(one)
    assert (changed["name"], changed["detail"], changed["tm_create"]) == (
        "test change name",
        "test dpma dpma",
        dpma["tm_create"],
    )
    assert isinstance(changed["tm_update"], str)

    before = {a["uuid"] for a in jade.result(ADPS)["list"]}
    expect(
        jade.post(ADPS, {"name": "test_dialplan_1", "dpma_uuid": dpma["uuid"], "sequence": 1}),
        EX["POST /v1/admin/dialplan/adps"],
    )
    lst = expect(jade.get(ADPS), EX["GET /v1/admin/dialplan/adps"])["list"]
    new = [a for a in lst if a["uuid"] not in before]
    assert len(new) == 1
    adp = new[0]
    assert (adp["name"], adp["dpma_uuid"], adp["sequence"], adp["command"], adp["detail"], adp["tm_update"]) == (
        "test_dialplan_1",
        dpma["uuid"],
        1,
        None,
        None,
        None,
    )
    path = f"{ADPS}/{adp['uuid']}"
    assert expect(jade.get(path), EX["GET /v1/admin/dialplan/adps/<detail>"]) == adp
    expect(
        jade.put(path, {"uuid": adp["uuid"], "dpma_uuid": dpma["uuid"], "sequence": 10}),
        EX["PUT /v1/admin/dialplan/adps/<detail>"],
    )
    changed = jade.result(path)
    assert changed["sequence"] == 10 and changed["name"] == "test_dialplan_1" and isinstance(changed["tm_update"], str)
    expect(jade.get(ADPS), EX["GET /v1/admin/dialplan/adps"])  # now with a tm_update, as the example shows

    expect(jade.delete(path), EX["DELETE /v1/admin/dialplan/adps/<detail>"])
    expect_error(jade.get(path), 404)
    expect(jade.delete(one), EX["DELETE /v1/admin/dialplan/adpmas/<detail>"])
    expect_error(jade.get(one), 404)
    assert dpma["uuid"] not in {m["uuid"] for m in jade.result(ADPMAS)["list"]}


def test_dialplan_configurations(jade):
    """The spec's list and GET examples, and DELETE of a backup (made by a valid write first)."""
    live = live_extensions(jade)
    expect(jade.put(EXTENSIONS, {"data": live + f"\n[{uniq('cfg')}]\nexten => s,1,NoOp(cfg)\n"}), OK)
    lst = expect(jade.get(f"{DIALPLAN}/configurations"), EX["GET /v1/admin/dialplan/configurations"])["list"]
    assert lst[0]["name"] == "extensions.conf"
    backups = [f for f in lst if f["name"] != "extensions.conf"]
    assert backups and all(BACKUP.match(f["name"]) for f in backups), [f["name"] for f in lst]
    newest = max(backups, key=lambda f: f["name"])
    assert newest["data"] == live
    res = expect(jade.get(EXTENSIONS), EX["GET /v1/admin/dialplan/configurations/<detail>"])
    assert res["name"] == "extensions.conf" and res == lst[0]
    expect(
        jade.delete(f"{DIALPLAN}/configurations/{newest['name']}"),
        EX["DELETE /v1/admin/dialplan/configurations/<detail>"],
    )
    assert newest["name"] not in configuration_names(jade)


DEMO_SDP = [
    {"exten": "> 100,1,NoOp(sample_park)"},
    {"same": "> n,park()"},
    {"exten": "> _X.,1,BackGround(demo-congrats)"},
    {"same": "> n,Hangup()"},
]


def test_dialplan_sdps(jade):
    """The spec's jade_demo (its data as the example shows it) and jade_demo3 (empty, then deleted)."""
    demo, demo3 = uniq("jade_demo"), uniq("jade_demo3")
    expect(jade.put(f"{SDPS}/{demo}", {"data": DEMO_SDP}), OK)
    expect(jade.put(f"{SDPS}/{demo3}", {"data": []}), OK)
    lst = expect(jade.get(SDPS), EX["GET /v1/admin/dialplan/sdps"])["list"]
    assert {"data": DEMO_SDP, "name": demo} in lst and {"data": [], "name": demo3} in lst
    res = expect(jade.get(f"{SDPS}/{demo}"), EX["GET /v1/admin/dialplan/sdps/<detail>"])
    assert res == {"data": DEMO_SDP, "name": demo}
    expect(jade.delete(f"{SDPS}/{demo3}"), EX["DELETE /v1/admin/dialplan/sdps/<detail>"])
    expect_error(jade.get(f"{SDPS}/{demo3}"), 404)
    assert demo3 not in {s["name"] for s in jade.result(SDPS)["list"]}


def test_park_cfg_parkinglots(jade, pbx):
    lst = expect(jade.get(CFG_LOTS), EX["GET /v1/admin/park/cfg_parkinglots"])["list"]
    lots = {lot["name"]: lot["data"] for lot in lst}
    assert lots["edvina"] == EX["GET /v1/admin/park/cfg_parkinglots/<detail>"]["result"]["data"]
    assert lots["test_park1"] == {"context": "teset", "parkpos": "851-900"}
    assert lots["jade-tesetqueue2"] == {} and lots["jade-testqueue2"] == {}
    res = expect(jade.get(f"{CFG_LOTS}/edvina"), EX["GET /v1/admin/park/cfg_parkinglots/<detail>"])
    assert res == EX["GET /v1/admin/park/cfg_parkinglots/<detail>"]["result"]
    expect(jade.delete(f"{CFG_LOTS}/jade-tesetqueue2"), EX["DELETE /v1/admin/park/cfg_parkinglots/<detail>"])
    expect_error(jade.get(f"{CFG_LOTS}/jade-tesetqueue2"), 404)
    assert "jade-tesetqueue2" not in {lot["name"] for lot in jade.result(CFG_LOTS)["list"]}


def test_park_parkinglots(jade, pbx):
    lst = expect(jade.get(LOTS), EX["GET /v1/admin/park/parkinglots"])["list"]
    default = next(lot for lot in lst if lot["name"] == "default")
    assert (default["start_space"], default["stop_spcae"], default["stop_space"], default["timeout"]) == (
        "701",
        "720",
        "720",
        45,
    )
    assert expect(jade.get(f"{LOTS}/default"), EX["GET /v1/admin/park/parkinglots/<detail>"]) == default
    edvina = jade.result(f"{LOTS}/edvina")
    assert (edvina["start_space"], edvina["stop_spcae"], edvina["stop_space"]) == ("800", "850", "850")

    body = {
        "context": "> edvina_park",
        "parkpos": "> 800-900",
        "findslot": "> next",
        "comebacktoorigin": "no",
        "comebackdialtime": "90",
        "comebackcontext": "edvinapark-timeout",
        "parkedmusicclass": "edvina",
    }
    expect(jade.put(f"{LOTS}/test_parkinglot", body), EX["PUT /v1/admin/park/parkinglots/<detail>"])
    lot = expect(jade.get(f"{LOTS}/test_parkinglot"), EX["GET /v1/admin/park/parkinglots/<detail>"])
    assert (lot["name"], lot["start_space"], lot["stop_spcae"], lot["stop_space"], lot["timeout"]) == (
        "test_parkinglot",
        "800",
        "900",
        "900",
        45,
    )
    assert jade.result(f"{CFG_LOTS}/test_parkinglot") == {"data": body, "name": "test_parkinglot"}
    expect(jade.delete(f"{LOTS}/test_parkinglot"), EX["DELETE /v1/admin/park/parkinglots/<detail>"])
    expect_error(jade.get(f"{LOTS}/test_parkinglot"), 404)
    assert "test_parkinglot" not in {lot["name"] for lot in jade.result(LOTS)["list"]}


def test_park_parkedcalls_live_state(jade):
    lst = expect(jade.get("/v1/admin/park/parkedcalls"), EX["GET /v1/admin/park/parkedcalls"])["list"]
    assert lst == []
    # the spec's curl says /park/parkedcalls/<id>: its section is /admin/park/parkedcalls/<detail>
    expect_error(jade.get("/v1/admin/park/parkedcalls/1514423984.115"), 404)
    expect_error(jade.get("/admin/park/parkedcalls/1514423984.115"), 404)
    expect_error(jade.delete("/v1/admin/park/parkedcalls/1515019232.8"), 404)


def test_pjsip_aors(jade, pbx):
    lst = expect(jade.get("/v1/admin/pjsip/aors"), EX["GET /v1/admin/pjsip/aors"])["list"]
    aors = {a["object_name"]: a for a in lst}
    assert aors["199"]["endpoint_name"] == "199" and aors["199"]["object_type"] == "aor"
    res = expect(jade.get("/v1/admin/pjsip/aors/pjagent-01"), EX["GET /v1/admin/pjsip/aors/<detail>"])
    assert (res["object_name"], res["object_type"], res["endpoint_name"], res["max_contacts"]) == (
        "pjagent-01",
        "aor",
        "pjagent-01",
        1,
    )
    expect_error(jade.get("/v1/admin/pjsip/aors/nosuchaor"), 404)


def test_pjsip_auths(jade, pbx):
    lst = expect(jade.get("/v1/admin/pjsip/auths"), EX["GET /v1/admin/pjsip/auths"])["list"]
    assert {"pjagent-01", "199"} <= {a["object_name"] for a in lst}
    assert all(a["password"] in (MASK, "") for a in lst)
    res = expect(jade.get("/v1/admin/pjsip/auths/pjagent-01"), EX["GET /v1/admin/pjsip/auths/<detail>"])
    assert (res["object_name"], res["object_type"], res["username"], res["auth_type"], res["endpoint_name"]) == (
        "pjagent-01",
        "auth",
        "pjagent-01",
        "userpass",
        "pjagent-01",
    )
    assert res["password"] == MASK  # never in clear (the spec's example echoes it)


def test_pjsip_contacts_live_state(jade, pbx):
    lst = expect(jade.get("/v1/admin/pjsip/contacts"), EX["GET /v1/admin/pjsip/contacts"])["list"]
    assert lst == []
    # the spec's curl says /pjsip/contacts/<id>: its section is /admin/pjsip/contacts/<detail>
    expect_error(jade.get("/v1/admin/pjsip/contacts/pjagent-01%3B%40116e48d167ff94856cbc9009cdc735b2"), 404)


def test_pjsip_endpoints(jade, pbx):
    lst = expect(jade.get("/v1/admin/pjsip/endpoints"), EX["GET /v1/admin/pjsip/endpoints"])["list"]
    assert {"pjagent-01", "199"} <= {e["object_name"] for e in lst}
    res = expect(jade.get("/v1/admin/pjsip/endpoints/pjagent-01"), EX["GET /v1/admin/pjsip/endpoints/<detail>"])
    assert (res["object_name"], res["object_type"], res["aors"], res["auth"], res["context"], res["mailboxes"]) == (
        "pjagent-01",
        "endpoint",
        "pjagent-01",
        "pjagent-01",
        "demo",
        "pjagent-01@vm-demo",
    )
    expect_error(jade.get("/v1/admin/pjsip/endpoints/nosuchendpoint"), 404)


def test_queue_entries_live_state(jade, pbx):
    lst = expect(jade.get("/v1/admin/queue/entries"), EX["GET /v1/admin/queue/entries"])["list"]
    assert lst == []
    expect_error(jade.get("/v1/admin/queue/entries/1513557067.6"), 404)


def test_queue_members(jade, pbx):
    lst = expect(jade.get("/v1/admin/queue/members"), EX["GET /v1/admin/queue/members"])["list"]
    assert "Agent/10001@sales_1" in {m["id"] for m in lst}
    res = expect(
        jade.get("/v1/admin/queue/members/Agent%2F10001", params={"queue_name": "sales_1"}),
        EX["GET /v1/admin/queue/members/<detail>"],
    )
    assert (res["id"], res["name"], res["queue_name"], res["location"], res["membership"]) == (
        "Agent/10001@sales_1",
        "Agent/10001",
        "sales_1",
        "Agent/10001",
        "static",
    )
    expect_error(jade.get("/v1/admin/queue/members/Agent%2F10001", params={"queue_name": "nosuchqueue"}), 404)


def test_queue_queues(jade, pbx):
    lst = expect(jade.get("/v1/admin/queue/queues"), EX["GET /v1/admin/queue/queues"])["list"]
    assert "sales_1" in {q["name"] for q in lst}
    res = expect(jade.get("/v1/admin/queue/queues/sales_1"), EX["GET /v1/admin/queue/queues/<detail>"])
    assert (res["name"], res["strategy"], res["service_level"], res["calls"]) == ("sales_1", "ringall", 5, 0)
    expect_error(jade.get("/v1/admin/queue/queues/nosuchqueue"), 404)


def test_admin_user_users(jade, server):
    username, password = uniq("test3"), f"t3-{secrets.token_hex(8)}"
    PASSWORDS.add(password)
    expect(
        jade.post(USERS, {"name": "test3", "password": password, "username": username}), EX["POST /v1/admin/user/users"]
    )
    lst = expect(jade.get(USERS), EX["GET /v1/admin/user/users"])["list"]
    assert all(u["password"] == MASK for u in lst)
    user = next(u for u in lst if u["username"] == username)
    assert user["name"] == "test3" and UUID.match(user["uuid"])
    path = f"{USERS}/{user['uuid']}"
    assert expect(jade.get(path), EX["GET /v1/admin/user/users/<detail>"]) == user
    login(server, username, password)
    expect(jade.put(path, {"name": "test3 change"}), EX["PUT /v1/admin/user/users/<detail>"])
    changed = jade.result(path)
    assert changed["name"] == "test3 change" and changed["username"] == username
    assert isinstance(changed["tm_update"], str)
    expect(jade.delete(path), EX["DELETE /v1/admin/user/users/<detail>"])
    login_refused(server, username, password)
    assert username not in {u["username"] for u in jade.result(USERS)["list"]}


def test_manager_users(jade, server):
    lst = expect(jade.get(MANAGER_USERS), EX["GET /v1/manager/users"])["list"]
    admin = next(u for u in lst if u["username"] == "admin")
    assert admin["permissions"] == [{"permission": "admin"}, {"permission": "user"}]
    username, password = uniq("test2"), f"t2-{secrets.token_hex(8)}"
    PASSWORDS.add(password)
    body = {
        "context": "demo",
        "name": "test2",
        "username": username,
        "password": password,
        "permissions": [{"permission": "user"}],
    }
    expect(jade.post(MANAGER_USERS, body), EX["POST /v1/manager/users"])
    user = next(u for u in jade.result(MANAGER_USERS)["list"] if u["username"] == username)
    assert (user["context"], user["name"], user["password"], user["permissions"]) == (
        "demo",
        "test2",
        MASK,
        [{"permission": "user"}],
    )
    path = f"{MANAGER_USERS}/{user['uuid']}"
    assert expect(jade.get(path), EX["GET /v1/manager/users/<detail>"]) == user
    expect(jade.put(path, {**body, "context": "demo-test"}), EX["PUT /v1/manager/users/<detail>"])
    changed = jade.result(path)
    assert changed["context"] == "demo-test" and changed["permissions"] == [{"permission": "user"}]
    login(server, username, password)
    expect(jade.delete(path), EX["DELETE /v1/manager/users/<detail>"])
    login_refused(server, username, password)


def test_me_buddies(me, buddy):
    expect(me.jade.post("/me/buddies", {"uuid_user": buddy.uuid}), EX["POST /me/buddies"])
    res = expect(me.jade.get("/me/buddies"), EX["GET /me/buddies"])
    assert [b["uuid_user"] for b in res] == [buddy.uuid]
    assert UUID.match(res[0]["uuid"])


def test_me_contacts(me, contact):
    lst = expect(me.jade.get("/v1/me/contacts"), EX["GET /v1/me/contacts"])["list"]
    assert [c["uuid"] for c in lst] == [contact["uuid"]]
    c = lst[0]
    assert (c["name"], c["detail"], c["target"], c["type"], c["user_uuid"]) == (
        "test target",
        "test target detail 4",
        "199",
        "pjsip_endpoint",
        me.uuid,
    )
    assert c["info"]["id"] == "199" and c["info"]["password"] == MASK and c["info"]["public_url"].startswith("sip:199@")


def test_me_chats(me, buddy):
    chat = new_chat(me, [buddy.uuid, me.uuid])  # the spec's POST example
    lst = expect(me.jade.get("/me/chats"), EX["GET /me/chats"])
    assert chat in lst
    room = chat["room"]
    assert (chat["name"], chat["detail"], room["type"]) == ("test chat name", "test chat detail", 1)
    assert sorted(room["members"]) == sorted([me.uuid, buddy.uuid])
    assert room["uuid_creator"] == me.uuid and room["uuid_owner"] == me.uuid
    assert expect(me.jade.get(f"/me/chats/{chat['uuid']}"), EX["GET /me/chats/<detail>"]) == chat
    # the other member has the room too, under an entry of its own
    assert room["uuid"] in {c["room"]["uuid"] for c in buddy.jade.result("/me/chats")}

    other = new_chat(me, [buddy.uuid])  # the PUT and DELETE examples name another chat
    expect(me.jade.put(f"/me/chats/{other['uuid']}", {"name": "update test chat name"}), EX["PUT /me/chats/<detail>"])
    assert me.jade.result(f"/me/chats/{other['uuid']}")["name"] == "update test chat name"
    expect(me.jade.delete(f"/me/chats/{other['uuid']}"), EX["DELETE /me/chats/<detail>"])
    expect_error(me.jade.get(f"/me/chats/{other['uuid']}"), 404)
    assert other["uuid"] not in {c["uuid"] for c in me.jade.result("/me/chats")}


def test_me_chat_messages(me, buddy):
    chat = new_chat(me, [buddy.uuid])
    path = f"/me/chats/{chat['uuid']}/messages"
    for _ in range(3):  # the spec's body, `-d '{"test message"}'`, read back as {"message": "test message"}
        expect(me.jade.post(path, raw=b'{"test message"}'), EX["POST /me/chats/<detail>/messages"])
        time.sleep(0.01)
    later = ns_timestamp(datetime.now(UTC) + timedelta(days=1))
    res = expect(me.jade.get(path, params={"timestamp": later, "count": "2"}), EX["GET /me/chats/<detail>/messages"])
    assert len(res) == 2
    assert all(m["message"] == {"message": "test message"} and m["uuid_owner"] == me.uuid for m in res)
    # the spec's own timestamp (2018) is before every message here
    res = expect(
        me.jade.get(path, params={"timestamp": "2018-03-30T08:30:02.364443446Z", "count": "2"}),
        EX["GET /me/chats/<detail>/messages"],
    )
    assert res == []


def test_me_info(me, buddy, contact):
    chat = new_chat(me, [buddy.uuid])
    res = expect(me.jade.get("/me/info"), EX["GET /me/info"])
    assert (res["username"], res["uuid"]) == (me.username, me.uuid)
    assert chat in res["chats"]
    assert contact["uuid"] in {c["uuid"] for c in res["contacts"]}
    assert all(c["info"]["password"] in (MASK, "") for c in res["contacts"] if c["info"])


# =====================================================================================================
# Documented routes the spec gives no example for
# =====================================================================================================
@pytest.mark.parametrize(
    "path",
    [
        "/v1/admin/park/configurations",
        "/v1/admin/pjsip/configurations",
        "/v1/admin/queue/configurations",
        "/v1/admin/queue/cfg_queues",
        "/v1/admin/pjsip/registration_outbounds",
        "/v1/admin/user/contacts",
        "/v1/admin/user/permissions",
        "/v1/manager/sdialplans",
    ],
)
def test_documented_lists_without_examples(jade, pbx, path):
    res = expect(jade.get(path), {**OK, "result": {"list": []}})
    assert res["list"] and all(isinstance(item, dict) for item in res["list"])


def test_documented_details_without_examples(jade, pbx):
    assert jade.result("/v1/admin/queue/cfg_queues/sales_1") == {
        "data": {"strategy": "ringall", "servicelevel": "5", "member": "> Agent/10001"},
        "name": "sales_1",
    }
    assert jade.result("/v1/admin/queue/configurations/queues.conf") == {"data": QUEUES_CONF, "name": "queues.conf"}
    assert jade.result("/v1/admin/park/configurations/res_parking.conf")["name"] == "res_parking.conf"
    reg = jade.result("/v1/admin/pjsip/registration_outbounds/sip_proxy")
    assert (reg["object_name"], reg["object_type"], reg["server_uri"], reg["client_uri"]) == (
        "sip_proxy",
        "registration",
        "sip:sip_proxy:5060",
        "sip:2345@sip_proxy:5060",
    )
    perms = jade.result("/v1/admin/user/permissions")["list"]
    admin_uuid = jade.result("/v1/admin/info")["uuid"]
    assert {p["permission"] for p in perms if p["user_uuid"] == admin_uuid} == {"admin", "user"}
    assert jade.result("/v1/manager/sdialplans/demo")["name"] == "demo"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/core/systems",
        "/admin/core/modules",
        "/admin/dialplan/adpmas",
        "/admin/dialplan/sdps",
        "/admin/park/parkinglots",
        "/admin/queue/queues",
        "/admin/pjsip/endpoints",
        "/admin/user/users",
        "/manager/users",
        "/agents",
        "/peers",
        "/device_states",
        "/registries",
        "/me/info",
        "/me/chats",
        "/admin/info",
    ],
)
def test_every_route_is_served_under_v1_and_bare(jade, pbx, path):
    v1, bare = envelope(jade.get("/v1" + path), 200), envelope(jade.get(path), 200)
    assert type(v1["result"]) is type(bare["result"])
    if isinstance(v1["result"], dict):
        assert set(v1["result"]) == set(bare["result"])


# =====================================================================================================
# Rules
# =====================================================================================================
@pytest.mark.parametrize(
    "bad",
    [
        "exten => 100,n,NoOp()\n",  # `n` as the first priority
        "include => nowhere_{hex}\nexten => 100,1,NoOp()\n",  # an include of an unknown context
    ],
)
def test_dialplan_invalid_put_is_refused_and_changes_nothing(jade, bad):
    live, names = live_extensions(jade), configuration_names(jade)
    text = live + f"\n[{uniq('bad')}]\n" + bad.format(hex=secrets.token_hex(4))
    expect_error(jade.put(EXTENSIONS, {"data": text}), 400)
    assert live_extensions(jade) == live
    assert configuration_names(jade) == names  # no backup either


def test_dialplan_valid_put_keeps_a_backup(jade):
    live, names = live_extensions(jade), set(configuration_names(jade))
    new = live + f"\n[{uniq('backup')}]\nexten => 100,1,NoOp(backup)\n"
    started = datetime.now(UTC)
    expect(jade.put(EXTENSIONS, {"data": new}), OK)
    assert live_extensions(jade) == new
    added = set(configuration_names(jade)) - names
    assert len(added) == 1, added
    backup = added.pop()
    assert BACKUP.match(backup), backup
    when = datetime.strptime(backup[len("extensions.conf.") :][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert started - timedelta(seconds=60) <= when <= datetime.now(UTC) + timedelta(seconds=60)
    assert jade.result(f"{DIALPLAN}/configurations/{backup}") == {"data": live, "name": backup}
    expect_error(jade.delete(EXTENSIONS), 400)  # the live file cannot be deleted
    assert live_extensions(jade) == new
    expect(jade.delete(f"{DIALPLAN}/configurations/{backup}"), OK)
    expect_error(jade.get(f"{DIALPLAN}/configurations/{backup}"), 404)
    assert backup not in configuration_names(jade)
    expect_error(jade.delete(f"{DIALPLAN}/configurations/{backup}"), 404)


def test_sdp_round_trip_shows_in_the_file(jade):
    name = uniq("sdp")
    data = [{"exten": "> _X.,1,NoOp(jade-queue)"}, {"same": "> n,Queue(jade-queue)"}]
    expect(jade.put(f"{SDPS}/{name}", {"data": data}), OK)
    lines = [ln.strip() for ln in live_extensions(jade).splitlines()]
    at = lines.index(f"[{name}]")
    assert lines[at + 1 : at + 3] == ["exten => _X.,1,NoOp(jade-queue)", "same => n,Queue(jade-queue)"]
    assert jade.result(f"{SDPS}/{name}") == {"data": data, "name": name}

    data = [{"exten": "> 200,1,Hangup()"}]
    expect(jade.put(f"{SDPS}/{name}", {"data": data}), OK)
    text = live_extensions(jade)
    lines = [ln.strip() for ln in text.splitlines()]
    at = lines.index(f"[{name}]")
    assert lines[at + 1] == "exten => 200,1,Hangup()" and "NoOp(jade-queue)" not in text
    assert jade.result(f"{SDPS}/{name}") == {"data": data, "name": name}

    expect(jade.delete(f"{SDPS}/{name}"), OK)
    assert f"[{name}]" not in live_extensions(jade)
    expect_error(jade.get(f"{SDPS}/{name}"), 404)


def test_cfg_parkinglots_show_in_the_loaded_lots(jade, pbx):
    lot = uniq("lot")
    data = {"parkpos": "> 901-910", "context": "> lot_ctx", "parkingtime": "30"}
    expect(jade.post(CFG_LOTS, {"name": lot, "data": data}), OK)
    assert jade.result(f"{CFG_LOTS}/{lot}") == {"data": data, "name": lot}
    live = jade.result(f"{LOTS}/{lot}")
    assert (live["start_space"], live["stop_spcae"], live["stop_space"], live["timeout"]) == ("901", "910", "910", 30)
    assert live in jade.result(LOTS)["list"]
    expect_error(jade.post(CFG_LOTS, {"name": lot, "data": data}), 409)  # the name is taken

    data = {"parkpos": "921-940", "parkingtime": "> 60"}
    expect(jade.put(f"{CFG_LOTS}/{lot}", {"data": data}), OK)
    assert jade.result(f"{CFG_LOTS}/{lot}") == {"data": data, "name": lot}
    live = jade.result(f"{LOTS}/{lot}")
    assert (live["start_space"], live["stop_spcae"], live["stop_space"], live["timeout"]) == ("921", "940", "940", 60)

    expect(jade.delete(f"{CFG_LOTS}/{lot}"), OK)
    expect_error(jade.get(f"{LOTS}/{lot}"), 404)
    expect_error(jade.get(f"{CFG_LOTS}/{lot}"), 404)
    assert lot not in {x["name"] for x in jade.result(LOTS)["list"]}
    assert f"[{lot}]" not in jade.result("/v1/admin/park/configurations/res_parking.conf")["data"]


def test_adp_with_an_unknown_dpma_is_refused(jade):
    before = jade.result(ADPS)["list"]
    expect_error(
        jade.post(ADPS, {"name": uniq("adp"), "dpma_uuid": "1d47735d-2265-463c-908a-d37dea085c21", "sequence": 1}), 400
    )
    expect_error(jade.post(ADPS, {"name": uniq("adp"), "sequence": 1}), 400)
    assert jade.result(ADPS)["list"] == before


def test_adps_are_listed_by_sequence(jade):
    before = {m["uuid"] for m in jade.result(ADPMAS)["list"]}
    expect(jade.post(ADPMAS, {"name": uniq("ordered"), "detail": "sequence order"}), OK)
    dpma = next(m["uuid"] for m in jade.result(ADPMAS)["list"] if m["uuid"] not in before)
    for seq, name in ((30, "c"), (10, "a"), (20, "b")):
        expect(jade.post(ADPS, {"name": name, "dpma_uuid": dpma, "sequence": seq, "command": f"NoOp({name})"}), OK)
    mine = [a for a in jade.result(ADPS)["list"] if a["dpma_uuid"] == dpma]
    assert [(a["sequence"], a["name"]) for a in mine] == [(10, "a"), (20, "b"), (30, "c")]
    last = mine[-1]
    expect(jade.put(f"{ADPS}/{last['uuid']}", {"sequence": 5}), OK)
    mine = [a for a in jade.result(ADPS)["list"] if a["dpma_uuid"] == dpma]
    assert [(a["sequence"], a["name"]) for a in mine] == [(5, "c"), (10, "a"), (20, "b")]
    expect(jade.delete(f"{ADPMAS}/{dpma}"), OK)  # takes its adps along
    expect_error(jade.get(f"{ADPS}/{last['uuid']}"), 404)


def test_chats_are_visible_to_members_only(jade, me, buddy, outsider):
    chat = new_chat(me, [buddy.uuid])
    path = f"/me/chats/{chat['uuid']}"
    expect(me.jade.post(f"{path}/messages", {"message": "members only"}), OK)
    for stranger in (outsider.jade, jade):  # a plain non-member, and an admin who is not a member
        expect_error(stranger.get(path), 404)
        expect_error(stranger.get(f"{path}/messages"), 404)
        expect_error(stranger.post(f"{path}/messages", {"message": "intrusion"}), 404)
        expect_error(stranger.put(path, {"name": "taken over"}), 404)
        expect_error(stranger.delete(path), 404)
        assert chat["room"]["uuid"] not in {c["room"]["uuid"] for c in stranger.result("/me/chats")}
    entry = next(c for c in buddy.jade.result("/me/chats") if c["room"]["uuid"] == chat["room"]["uuid"])
    msgs = buddy.jade.result(f"/me/chats/{entry['uuid']}/messages")
    assert [m["message"] for m in msgs] == [{"message": "members only"}]
    assert me.jade.result(path)["name"] == "test chat name"


def test_chat_messages_newest_first_with_count_and_timestamp(me, buddy):
    chat = new_chat(me, [buddy.uuid])
    path = f"/me/chats/{chat['uuid']}/messages"
    for i in range(3):
        expect(me.jade.post(path, {"message": f"m{i}"}), OK)
        time.sleep(0.01)
    expect(me.jade.post(path, raw=b'"a json string"'), OK)
    msgs = me.jade.result(path)
    assert [m["message"] for m in msgs] == [
        {"message": "a json string"},
        {"message": "m2"},
        {"message": "m1"},
        {"message": "m0"},
    ]
    assert [m["tm_create"] for m in msgs] == sorted((m["tm_create"] for m in msgs), reverse=True)
    assert [m["message"]["message"] for m in me.jade.result(path, params={"count": "2"})] == ["a json string", "m2"]
    m1 = msgs[2]
    older = me.jade.result(path, params={"timestamp": m1["tm_create"]})  # strictly before m1
    assert [m["message"]["message"] for m in older] == ["m0"]
    later = me.jade.result(path, params={"timestamp": msgs[0]["tm_create"], "count": "1"})
    assert [m["message"]["message"] for m in later] == ["m2"]
    for bad in ({"count": "0"}, {"count": "two"}, {"timestamp": "yesterday"}):
        expect_error(me.jade.get(path, params=bad), 400)


@pytest.mark.parametrize(
    "path",
    [
        "/me/info",
        "/v1/me/info",
        "/me/contacts",
        "/v1/me/contacts",
        "/me/buddies",
        "/v1/me/buddies",
        "/me/chats",
        "/v1/me/chats",
        "/v1/admin/info",
    ],
)
def test_me_routes_work_with_a_plain_users_token(me, path):
    envelope(me.jade.get(path), 200)


def test_admin_info_is_the_callers_own_record(me):
    """/admin/info (GET, and PUT without an example) is the caller's own record, for any user."""
    info = me.jade.result("/v1/admin/info")
    assert (info["username"], info["uuid"]) == (me.username, me.uuid)
    expect(me.jade.put("/v1/admin/info", {"name": "renamed by info"}), OK)
    info = me.jade.result("/v1/admin/info")
    assert (info["name"], info["username"]) == ("renamed by info", me.username)
    assert isinstance(info["tm_update"], str)


ADMIN_CALLS = [
    ("GET", "/v1/admin/core/systems", None),
    ("GET", "/v1/admin/core/modules", None),
    ("GET", "/v1/admin/core/channels", None),
    ("GET", "/v1/admin/user/users", None),
    ("GET", "/v1/admin/user/permissions", None),
    ("GET", "/v1/manager/users", None),
    ("GET", "/v1/admin/pjsip/endpoints", None),
    ("GET", "/v1/admin/pjsip/auths", None),
    ("GET", "/v1/admin/queue/queues", None),
    ("GET", "/v1/admin/park/parkinglots", None),
    ("GET", "/v1/admin/dialplan/configurations", None),
    ("GET", "/agents", None),
    ("GET", "/peers", None),
    ("GET", "/peers/", {"peer": "PJSIP/pjagent-01"}),
    ("GET", "/registries", None),
    ("GET", "/device_states", None),
    ("POST", "/v1/admin/dialplan/adpmas", {"name": "not allowed", "detail": "x"}),
    ("PUT", "/v1/admin/dialplan/configurations/extensions.conf", {"data": "[x]\n"}),
    ("POST", "/v1/admin/user/users", {"name": "x", "username": "not_allowed", "password": "not-allowed"}),
    ("DELETE", "/v1/admin/core/modules/app_queue", None),
    ("DELETE", "/v1/admin/core/channels/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS, ids=[f"{m} {p}" for m, p, _ in ADMIN_CALLS])
def test_admin_routes_refuse_a_plain_user(jade, pbx, me, method, path, body):
    expect_error(me.jade.call(method, path, body), 403)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/info", None),
        ("GET", "/v1/admin/core/systems", None),
        ("GET", "/me/info", None),
        ("GET", "/v1/me/chats", None),
        ("GET", "/agents", None),
        ("GET", "/v1/manager/users", None),
        ("POST", "/v1/admin/dialplan/adpmas", {"name": "x"}),
        ("DELETE", "/v1/admin/login", None),
        ("POST", "/me/buddies", {"uuid_user": "x"}),
    ],
)
@pytest.mark.parametrize("token", [None, "", "86f7c25d-54db-4ffd-9bf8-8f691fbb4b97", "not-a-token"])
def test_missing_or_bad_token_is_401(jade, method, path, body, token):
    expect_error(jade.call(method, path, body, token=token), 401)


def test_login_refuses_bad_credentials(server):
    login_refused(server, "admin", "wrong-password")
    login_refused(server, "nosuchuser", "whatever")
    with httpx.Client(base_url=server.url, timeout=20) as h:
        expect_error(h.post("/v1/admin/login"), 401)


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        ("POST", "/v1/admin/dialplan/adpmas", b'{"name": "x"'),
        ("POST", "/v1/admin/dialplan/adps", b"{'name': 'x'}"),
        ("PUT", "/v1/admin/dialplan/configurations/extensions.conf", b'{"data": '),
        ("PUT", "/v1/admin/dialplan/sdps/whatever", b"not json"),
        ("POST", "/v1/admin/park/cfg_parkinglots", b'{"name": "x", "data": {'),
        ("PUT", "/v1/admin/park/parkinglots/whatever", b"[1, 2"),
        ("POST", "/v1/admin/user/users", b'{"name": "x",}'),
        ("GET", "/peers/", b'{"peer": '),
    ],
)
def test_malformed_json_is_400(jade, method, path, raw):
    before = live_extensions(jade)
    expect_error(jade.call(method, path, raw=raw), 400)
    assert live_extensions(jade) == before


@pytest.mark.parametrize(
    ("path", "raw"),
    [("/me/chats", b'{"name": '), ("/me/buddies", b"{{}"), ("/me/chats/{chat}/messages", b'{"message": ')],
)
def test_malformed_json_is_400_for_plain_users(me, buddy, path, raw):
    chat = new_chat(me, [buddy.uuid]) if "{chat}" in path else None
    expect_error(me.jade.post(path.format(chat=chat["uuid"] if chat else ""), raw=raw), 400)


def test_passwords_never_appear_in_clear(jade, me, contact, pbx):
    """Account passwords and pjsip auth secrets never appear in any response, not even in the
    pjsip.conf file views (they show "********")."""
    for path in (
        USERS,
        MANAGER_USERS,
        "/v1/admin/info",
        "/v1/admin/user/contacts",
        "/v1/admin/pjsip/auths",
        "/v1/admin/pjsip/auths/199",
        "/v1/admin/pjsip/endpoints/199",
        "/v1/admin/pjsip/configurations",
        "/v1/admin/pjsip/configurations/pjsip.conf",
    ):
        envelope(jade.get(path), 200)
    for path in ("/me/info", "/me/contacts", "/v1/admin/info"):
        envelope(me.jade.get(path), 200)
    assert SEEN and len(PASSWORDS) > 1 and SIP_SECRETS
    for path, text in SEEN:
        for password in PASSWORDS:
            assert password not in text, f"a password in clear in the response to {path}"
        for secret in SIP_SECRETS:
            assert secret not in text, f"a pjsip secret in clear in the response to {path}"


# =====================================================================================================
# The spec's examples, as printed (`...` items dropped, the timestamp left out: every reply has one).
# Keyed by method and path; `<detail>` where the spec's path holds an id. The comment gives the line
# of jade-api.txt with the curl command. The details of live call state (an agent, a channel, a parked
# call, a registered contact, a queue entry) are kept for reference: with no calls they replay as 404.
# =====================================================================================================
# spec line 3052 (the endpoint: the list example at 2892 shows the same object; `allow` shortened)
ENDPOINT_EXAMPLE = {
    "account_code": "",
    "acl": "",
    "active_channels": "",
    "aggregate_mwi": "true",
    "allow": "(codec2|g723|ulaw|alaw|gsm|g726|g726aal2|adpcm|slin|lpc10|g729|speex|ilbc|g722|opus|silk)",
    "allow_overlap": "true",
    "allow_subscribe": "true",
    "allow_transfer": "true",
    "aors": "pjagent-01",
    "asymmetric_rtp_codec": "false",
    "auth": "pjagent-01",
    "bind_rtp_to_media_address": "false",
    "bundle": "false",
    "call_group": "",
    "caller_id": "<unknown>",
    "caller_id_privacy": "allowed_not_screened",
    "caller_id_tag": "",
    "connected_line_method": "invite",
    "contact_acl": "",
    "context": "demo",
    "cos_audio": 0,
    "cos_video": 0,
    "device_state": "Not in use",
    "device_state_busy_at": 0,
    "direct_media": "true",
    "direct_media_glare_mitigation": "none",
    "direct_media_method": "invite",
    "disable_direct_media_on_nat": "false",
    "disallow": "",
    "dtls_ca_file": "",
    "dtls_ca_path": "",
    "dtls_cert_file": "",
    "dtls_cipher": "",
    "dtls_fingerprint": "SHA-256",
    "dtls_private_key": "",
    "dtls_rekey": 0,
    "dtls_setup": "active",
    "dtls_verify": "No",
    "dtmf_mode": "rfc4733",
    "fax_detect": "false",
    "fax_detect_time": 0,
    "force_avp": "false",
    "force_rport": "true",
    "from_domain": "",
    "from_user": "",
    "g_726_non_standard": "false",
    "ice_support": "false",
    "identify_by": "username,ip",
    "inband_progress": "false",
    "incoming_mwi_mailbox": "pjagent-01@vm-demo",
    "language": "",
    "mailboxes": "pjagent-01@vm-demo",
    "max_audio_streams": 1,
    "max_video_streams": 1,
    "media_address": "",
    "media_encryption": "no",
    "media_encryption_optimistic": "false",
    "media_use_received_transport": "false",
    "message_context": "",
    "moh_passthrough": "false",
    "moh_suggest": "default",
    "mwi_from_user": "",
    "mwi_subscribe_replaces_unsolicited": "false",
    "named_call_group": "",
    "named_pickup_group": "",
    "notify_early_inuse_ringing": "false",
    "object_name": "pjagent-01",
    "object_type": "endpoint",
    "one_touch_recording": "false",
    "outbound_auth": "",
    "outbound_proxy": "",
    "pickup_group": "",
    "preferred_codec_only": "false",
    "record_off_feature": "automixmon",
    "record_on_feature": "automixmon",
    "redirect_method": "",
    "refer_blind_progress": "true",
    "rel_100": "yes",
    "rewrite_contact": "false",
    "rpid_immediate": "false",
    "rtcp_mux": "false",
    "rtp_engine": "asterisk",
    "rtp_ipv6": "false",
    "rtp_keepalive": 0,
    "rtp_symmetric": "false",
    "rtp_timeout": 0,
    "rtp_timeout_hold": 0,
    "sdp_owner": "-",
    "sdp_session": "Asterisk",
    "send_diversion": "true",
    "send_pai": "false",
    "send_rpid": "false",
    "set_var": "",
    "srtp_tag32": "false",
    "sub_min_expiry": "0",
    "subscribe_context": "",
    "t38_udptl": "false",
    "t38_udptl_ec": "none",
    "t38_udptl_ipv6": "false",
    "t38_udptl_maxdatagram": 0,
    "t38_udptl_nat": "false",
    "timers": "yes",
    "timers_min_se": "90",
    "timers_sess_expires": 1800,
    "tm_update": "2017-12-19T20:45:42.632334496Z",
    "tone_zone": "",
    "tos_audio": 0,
    "tos_video": 0,
    "transport": "transport-udp",
    "trust_id_inbound": "false",
    "trust_id_outbound": "false",
    "use_avpf": "false",
    "use_ptime": "false",
    "user_eq_phone": "false",
    "voicemail_extension": "",
    "webrtc": "no",
}

EX = {
    # spec line 93
    "GET /agents": {"api_ver": "0.1", "result": {"list": [{"id": "1001"}, {"id": "1002"}]}, "statuscode": 200},
    # spec line 194
    "GET /agents/": {
        "api_ver": "0.1",
        "result": {
            "account_code": "",
            "caller_id_name": "300",
            "caller_id_num": "300",
            "channel_name": "SIP/300-00000425",
            "channel_state": 6,
            "channel_state_desc": "Up",
            "connected_line_name": "<unknown>",
            "connected_line_num": "<unknown>",
            "context": "sample_agent_login",
            "exten": "s",
            "id": "1001",
            "language": "en",
            "linked_id": "1489423716.2037",
            "logged_in_time": 1489423716,
            "name": "Agent 1001",
            "priority": "2",
            "status": "AGENT_IDLE",
            "tm_update": "2017-03-13T17:19:06.724533682Z",
            "unique_id": "1489423716.2037",
        },
        "statuscode": 200,
    },
    # spec line 258
    "GET /device_states": {"api_ver": "0.1", "result": {"list": [{"device": "Agent:1001"}]}, "statuscode": 200},
    # spec line 313
    "GET /device_states/": {
        "api_ver": "0.1",
        "result": {"device": "Agent:1001", "state": "UNAVAILABLE", "tm_update": "2017-04-04T23:08:40.878892472Z"},
        "statuscode": 200,
    },
    # spec line 357
    "GET /peers": {"api_ver": "0.1", "result": {"list": [{"peer": "SIP/300"}]}, "statuscode": 200},
    # spec line 441
    "GET /peers/": {
        "api_ver": "0.1",
        "result": {
            "acl": "no",
            "address": "192.168.200.1:5060",
            "auto_comedia": "yes",
            "auto_force_port": "no",
            "chan_object_type": "peer",
            "channel_type": "SIP",
            "comedia": "yes",
            "description": "",
            "dynamic": "yes",
            "force_port": "no",
            "monitor_status": "OK (22 ms)",
            "peer": "SIP/agent-01",
            "realtime_device": "no",
            "status": "Registered",
            "text_support": "no",
            "tm_update": "2017-04-09T02:08:18.756977409Z",
            "video_support": "no",
        },
        "statuscode": 200,
    },
    # spec line 498
    "GET /registries": {
        "api_ver": "0.1",
        "result": {"list": [{"account": "2345@sip_proxy:5060"}, {"account": "1234@mysipprovider.com:5060"}]},
        "statuscode": 200,
    },
    # spec line 567
    "GET /registries/": {
        "api_ver": "0.1",
        "result": {
            "account": "2345@sip_proxy",
            "domain": "sip_proxy",
            "domain_port": 5060,
            "host": "sip_proxy",
            "port": 5060,
            "refresh": 120,
            "registration_time": "0",
            "state": "Request Sent",
            "tm_update": "2017-03-09T09:12:06.652539075Z",
            "username": "2345",
        },
        "statuscode": 200,
    },
    # spec line 643
    "GET /v1/admin/core/channels": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "account_code": "",
                    "application": "Queue",
                    "application_data": "",
                    "bridge_id": None,
                    "caller_id_name": "pjagent-01",
                    "caller_id_num": "pjagent-01",
                    "channel": "PJSIP/pjagent-01-00000007",
                    "channel_state": 4,
                    "channel_state_desc": "Ring",
                    "connected_line_name": "<unknown>",
                    "connected_line_num": "<unknown>",
                    "context": "queue_sales",
                    "duration": None,
                    "exten": "s",
                    "hangup_cause": None,
                    "hangup_cause_desc": None,
                    "language": "en",
                    "linked_id": "1513946896.7",
                    "priority": "2",
                    "tm_update": "2017-12-22T12:48:17.211205731Z",
                    "unique_id": "1513946896.7",
                    "variables": {},
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 760
    "GET /v1/admin/core/channels/<detail>": {
        "api_ver": "0.1",
        "result": {
            "account_code": "",
            "application": "Queue",
            "application_data": "",
            "bridge_id": None,
            "caller_id_name": "pjagent-01",
            "caller_id_num": "pjagent-01",
            "channel": "PJSIP/pjagent-01-00000007",
            "channel_state": 4,
            "channel_state_desc": "Ring",
            "connected_line_name": "<unknown>",
            "connected_line_num": "<unknown>",
            "context": "queue_sales",
            "duration": None,
            "exten": "s",
            "hangup_cause": None,
            "hangup_cause_desc": None,
            "language": "en",
            "linked_id": "1513946896.7",
            "priority": "2",
            "tm_update": "2017-12-22T12:48:17.211205731Z",
            "unique_id": "1513946896.7",
            "variables": {},
        },
        "statuscode": 200,
    },
    # spec line 812
    "DELETE /v1/admin/core/channels/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 854
    "GET /v1/admin/core/modules": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "load": "unknown",
                    "name": "app_voicemail",
                    "size": 1083280,
                    "tm_update": "2017-12-17T22:11:40.375546224Z",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 913
    "GET /v1/admin/core/modules/<detail>": {
        "api_ver": "0.1",
        "result": {
            "load": "unknown",
            "name": "app_voicemail",
            "size": 1083280,
            "tm_update": "2017-12-17T23:28:02.30024695Z",
        },
        "statuscode": 200,
    },
    # spec line 947
    "POST /v1/admin/core/modules/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 975
    "PUT /v1/admin/core/modules/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1003
    "DELETE /v1/admin/core/modules/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1067
    "GET /v1/admin/core/systems": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "ami_version": "4.0.0",
                    "ast_version": "GIT-master-e97e415M",
                    "cdr_enabled": "Yes",
                    "current_calls": 0,
                    "http_enabled": "No",
                    "id": "1",
                    "max_calls": 0,
                    "max_file_handles": 0,
                    "max_load_avg": 0.0,
                    "real_time_enabled": "No",
                    "reload_date": "2017-12-17",
                    "reload_time": "23:36:24",
                    "run_group": "",
                    "run_user": "",
                    "startup_date": "2017-12-17",
                    "startup_time": "10:17:20",
                    "system_name": "",
                    "tm_update": "2017-12-17T23:38:54.940300313Z",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 1169
    "GET /v1/admin/core/systems/<detail>": {
        "api_ver": "0.1",
        "result": {
            "ami_version": "4.0.0",
            "ast_version": "GIT-master-e97e415M",
            "cdr_enabled": "Yes",
            "current_calls": 0,
            "http_enabled": "No",
            "id": "1",
            "max_calls": 0,
            "max_file_handles": 0,
            "max_load_avg": 0.0,
            "real_time_enabled": "No",
            "reload_date": "2017-12-17",
            "reload_time": "23:36:24",
            "run_group": "",
            "run_user": "",
            "startup_date": "2017-12-17",
            "startup_time": "10:17:20",
            "system_name": "",
            "tm_update": "2017-12-17T23:42:16.933212413Z",
        },
        "statuscode": 200,
    },
    # spec line 1233
    "GET /v1/admin/dialplan/adps": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "command": None,
                    "detail": None,
                    "dpma_uuid": "1d47735d-2265-463c-908a-d37dea085c21",
                    "name": "test_dialplan_1",
                    "sequence": 10,
                    "tm_create": "2018-01-23T01:05:53.878811167Z",
                    "tm_update": "2018-01-23T01:27:54.670312624Z",
                    "uuid": "91bba56b-7ec5-4fe2-a724-9f39d527da8c",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 1275
    "POST /v1/admin/dialplan/adps": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1338
    "GET /v1/admin/dialplan/adps/<detail>": {
        "api_ver": "0.1",
        "result": {
            "command": None,
            "detail": None,
            "dpma_uuid": "1d47735d-2265-463c-908a-d37dea085c21",
            "name": "test_dialplan_1",
            "sequence": 1,
            "tm_create": "2018-01-23T01:38:38.698487606Z",
            "tm_update": None,
            "uuid": "abde9ef2-7255-4e64-acbe-a6edb964c442",
        },
        "statuscode": 200,
    },
    # spec line 1380
    "PUT /v1/admin/dialplan/adps/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1406
    "DELETE /v1/admin/dialplan/adps/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1450
    "GET /v1/admin/dialplan/adpmas": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "detail": "test dpma dpma",
                    "name": "test dpma",
                    "tm_create": "2018-01-22T23:40:55.513269352Z",
                    "tm_update": None,
                    "uuid": "1d47735d-2265-463c-908a-d37dea085c21",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 1489
    "POST /v1/admin/dialplan/adpmas": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1545
    "GET /v1/admin/dialplan/adpmas/<detail>": {
        "api_ver": "0.1",
        "result": {
            "detail": "test dpma dpma",
            "name": "test dpma",
            "tm_create": "2018-01-22T23:40:55.513269352Z",
            "tm_update": None,
            "uuid": "1d47735d-2265-463c-908a-d37dea085c21",
        },
        "statuscode": 200,
    },
    # spec line 1584
    "PUT /v1/admin/dialplan/adpmas/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1609
    "DELETE /v1/admin/dialplan/adpmas/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1664
    "GET /v1/admin/dialplan/configurations/<detail>": {
        "api_ver": "0.1",
        "result": {"data": "...", "name": "extensions.conf"},
        "statuscode": 200,
    },
    # spec line 1686
    "DELETE /v1/admin/dialplan/configurations/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1704
    "GET /v1/admin/dialplan/sdps": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "data": [{"exten": "> _X.,1,NoOp(jade-queue)"}, {"same": "> n,Queue(jade-queue)"}],
                    "name": "jade-queue",
                },
                {"data": [], "name": "jade_demo2"},
                {
                    "data": [
                        {"exten": "> 100,1,NoOp(sample_park)"},
                        {"same": "> n,park()"},
                        {"exten": "> _X.,1,BackGround(demo-congrats)"},
                        {"same": "> n,Hangup()"},
                    ],
                    "name": "jade_demo",
                },
                {"data": [], "name": "jade_demo3"},
            ],
        },
        "statuscode": 200,
    },
    # spec line 1769
    "GET /v1/admin/dialplan/sdps/<detail>": {
        "api_ver": "0.1",
        "result": {
            "data": [
                {"exten": "> 100,1,NoOp(sample_park)"},
                {"same": "> n,park()"},
                {"exten": "> _X.,1,BackGround(demo-congrats)"},
                {"same": "> n,Hangup()"},
            ],
            "name": "jade_demo",
        },
        "statuscode": 200,
    },
    # spec line 1806
    "DELETE /v1/admin/dialplan/sdps/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1828
    "GET /v1/admin/info": {
        "api_ver": "0.1",
        "result": {
            "name": "Test Administrator",
            "tm_create": "2018-04-28T05:03:36.560694725Z",
            "tm_update": "2018-04-28T07:10:29.116108422Z",
            "username": "admin",
            "uuid": "ed629979-802b-40f0-9098-b30b2988f9b6",
        },
        "statuscode": 200,
    },
    # spec line 1861
    "POST /v1/admin/login": {
        "api_ver": "0.1",
        "result": {"authtoken": "7ac326bf-e146-493a-b9c7-bfb990264b59"},
        "statuscode": 200,
    },
    # spec line 1878
    "DELETE /v1/admin/login": {"api_ver": "0.1", "statuscode": 200},
    # spec line 1900
    "GET /v1/admin/park/cfg_parkinglots": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {"data": {"context": "teset", "parkpos": "851-900"}, "name": "test_park1"},
                {"data": {}, "name": "jade-tesetqueue2"},
                {
                    "data": {
                        "comebackcontext": "edvinapark-timeout",
                        "comebackdialtime": "90",
                        "comebacktoorigin": "no",
                        "context": "edvina_park",
                        "findslot": "next",
                        "parkedmusicclass": "edvina",
                        "parkpos": "800-850",
                    },
                    "name": "edvina",
                },
                {"data": {}, "name": "jade-testqueue2"},
            ],
        },
        "statuscode": 200,
    },
    # spec line 1961
    "GET /v1/admin/park/cfg_parkinglots/<detail>": {
        "api_ver": "0.1",
        "result": {
            "data": {
                "comebackcontext": "edvinapark-timeout",
                "comebackdialtime": "90",
                "comebacktoorigin": "no",
                "context": "edvina_park",
                "findslot": "next",
                "parkedmusicclass": "edvina",
                "parkpos": "800-850",
            },
            "name": "edvina",
        },
        "statuscode": 200,
    },
    # spec line 1991
    "DELETE /v1/admin/park/cfg_parkinglots/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 2037
    "GET /v1/admin/park/parkedcalls": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "parkee_account_code": "",
                    "parkee_caller_id_name": "pjagent-01",
                    "parkee_caller_id_num": "pjagent-01",
                    "parkee_channel": "PJSIP/pjagent-01-00000044",
                    "parkee_channel_state": "6",
                    "parkee_channel_state_desc": "Up",
                    "parkee_connected_line_name": "<unknown>",
                    "parkee_connected_line_num": "<unknown>",
                    "parkee_context": "sample_park",
                    "parkee_exten": "s",
                    "parkee_linked_id": "1514423807.111",
                    "parkee_priority": "2",
                    "parkee_unique_id": "1514423807.111",
                    "parker_dial_string": "PJSIP/pjagent-01",
                    "parking_duration": 0,
                    "parking_lot": "default",
                    "parking_space": "701",
                    "parking_timeout": 45,
                    "tm_update": "2017-12-28T01:16:48.343347741Z",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 2147 (its curl says /park/parkedcalls/<id>; the section is /admin/park/parkedcalls/<detail>)
    "GET /v1/admin/park/parkedcalls/<detail>": {
        "api_ver": "0.1",
        "result": {
            "parkee_account_code": "",
            "parkee_caller_id_name": "pjagent-01",
            "parkee_caller_id_num": "pjagent-01",
            "parkee_channel": "PJSIP/pjagent-01-00000046",
            "parkee_channel_state": "6",
            "parkee_channel_state_desc": "Up",
            "parkee_connected_line_name": "<unknown>",
            "parkee_connected_line_num": "<unknown>",
            "parkee_context": "sample_park",
            "parkee_exten": "s",
            "parkee_linked_id": "1514423984.115",
            "parkee_priority": "2",
            "parkee_unique_id": "1514423984.115",
            "parker_dial_string": "PJSIP/pjagent-01",
            "parking_duration": 0,
            "parking_lot": "default",
            "parking_space": "701",
            "parking_timeout": 45,
            "tm_update": "2017-12-28T01:19:44.271005802Z",
        },
        "statuscode": 200,
    },
    # spec line 2196
    "DELETE /v1/admin/park/parkedcalls/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 2239
    "GET /v1/admin/park/parkinglots": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "name": "default",
                    "start_space": "701",
                    "stop_spcae": "720",
                    "timeout": 45,
                    "tm_update": "2017-12-28T01:16:46.350523532Z",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 2305
    "GET /v1/admin/park/parkinglots/<detail>": {
        "api_ver": "0.1",
        "result": {
            "name": "default",
            "start_space": "701",
            "stop_spcae": "720",
            "timeout": 45,
            "tm_update": "2017-12-28T01:16:46.350523532Z",
        },
        "statuscode": 200,
    },
    # spec line 2344
    "PUT /v1/admin/park/parkinglots/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 2371
    "DELETE /v1/admin/park/parkinglots/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 2437
    "GET /v1/admin/pjsip/aors": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "authenticate_qualify": "false",
                    "contacts": "",
                    "contacts_registered": 0,
                    "default_expiration": 3600,
                    "endpoint_name": "199",
                    "mailboxes": "",
                    "max_contacts": 1,
                    "maximum_expiration": 7200,
                    "minimum_expiration": 60,
                    "object_name": "199",
                    "object_type": "aor",
                    "outbound_proxy": "",
                    "qualify_frequency": 0,
                    "qualify_timeout": 3,
                    "remove_existing": "true",
                    "support_path": "false",
                    "tm_update": "2017-12-19T20:03:34.948197060Z",
                    "total_contacts": 0,
                    "voicemail_extension": "",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 2530
    "GET /v1/admin/pjsip/aors/<detail>": {
        "api_ver": "0.1",
        "result": {
            "authenticate_qualify": "false",
            "contacts": "pjagent-01/sip:35740219@10.12.118.159:49027",
            "contacts_registered": 1,
            "default_expiration": 3600,
            "endpoint_name": "pjagent-01",
            "mailboxes": "",
            "max_contacts": 1,
            "maximum_expiration": 7200,
            "minimum_expiration": 60,
            "object_name": "pjagent-01",
            "object_type": "aor",
            "outbound_proxy": "",
            "qualify_frequency": 0,
            "qualify_timeout": 3,
            "remove_existing": "true",
            "support_path": "false",
            "tm_update": "2017-12-19T20:03:36.64487822Z",
            "total_contacts": 1,
            "voicemail_extension": "",
        },
        "statuscode": 200,
    },
    # spec line 2605
    "GET /v1/admin/pjsip/auths": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "auth_type": "userpass",
                    "endpoint_name": "pjagent-01",
                    "md5_cred": "",
                    "nonce_lifetime": 32,
                    "object_name": "pjagent-01",
                    "object_type": "auth",
                    "password": "pjagent-01",
                    "realm": "",
                    "tm_update": "2017-12-19T20:03:36.42243261Z",
                    "username": "pjagent-01",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 2674
    "GET /v1/admin/pjsip/auths/<detail>": {
        "api_ver": "0.1",
        "result": {
            "auth_type": "userpass",
            "endpoint_name": "pjagent-01",
            "md5_cred": "",
            "nonce_lifetime": 32,
            "object_name": "pjagent-01",
            "object_type": "auth",
            "password": "pjagent-01",
            "realm": "",
            "tm_update": "2017-12-19T20:03:36.42243261Z",
            "username": "pjagent-01",
        },
        "statuscode": 200,
    },
    # spec line 2754
    "GET /v1/admin/pjsip/contacts": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "aor": "pjagent-01",
                    "authentication_qualify": 0,
                    "call_id": "c67ef58c-3b65-44cd-a9a8-784e2af542d3",
                    "endpoint_name": "pjagent-01",
                    "id": "pjagent-01;@116e48d167ff94856cbc9009cdc735b2",
                    "outbound_proxy": "",
                    "path": "",
                    "qualify_frequency": 0,
                    "qualify_timout": 3,
                    "reg_expire": 1513714265,
                    "round_trip_usec": "0",
                    "status": "Unknown",
                    "tm_update": "2017-12-19T20:29:36.751968068Z",
                    "uri": "sip:35740219@10.12.118.159:49027",
                    "user_agent": "Blink 3.0.3 (Linux)",
                    "via_address": "10.12.118.159:49027",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 2836 (its curl says /pjsip/contacts/<id>; the section is /admin/pjsip/contacts/<detail>)
    "GET /v1/admin/pjsip/contacts/<detail>": {
        "api_ver": "0.1",
        "result": {
            "aor": "pjagent-01",
            "authentication_qualify": 0,
            "call_id": "c67ef58c-3b65-44cd-a9a8-784e2af542d3",
            "endpoint_name": "pjagent-01",
            "id": "pjagent-01;@116e48d167ff94856cbc9009cdc735b2",
            "outbound_proxy": "",
            "path": "",
            "qualify_frequency": 0,
            "qualify_timout": 3,
            "reg_expire": 1513716547,
            "round_trip_usec": "N/A",
            "status": "Unknown",
            "tm_update": "2017-12-19T20:45:42.698151858Z",
            "uri": "sip:35740219@10.12.118.159:49027",
            "user_agent": "Blink 3.0.3 (Linux)",
            "via_address": "10.12.118.159:49027",
        },
        "statuscode": 200,
    },
    # spec line 2892
    "GET /v1/admin/pjsip/endpoints": {"api_ver": "0.1", "result": {"list": [ENDPOINT_EXAMPLE]}, "statuscode": 200},
    # spec line 3052
    "GET /v1/admin/pjsip/endpoints/<detail>": {"api_ver": "0.1", "result": ENDPOINT_EXAMPLE, "statuscode": 200},
    # spec line 3233
    "GET /v1/admin/queue/entries": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "caller_id_name": "pjagent-01",
                    "caller_id_num": "pjagent-01",
                    "channel": "PJSIP/pjagent-01-00000002",
                    "connected_line_name": "<unknown>",
                    "connected_line_num": "<unknown>",
                    "position": 1,
                    "queue_name": "sales_1",
                    "tm_update": "2017-12-18T00:23:39.821137155Z",
                    "unique_id": "1513556618.4",
                    "wait": None,
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 3310
    "GET /v1/admin/queue/entries/<detail>": {
        "api_ver": "0.1",
        "result": {
            "caller_id_name": "pjagent-01",
            "caller_id_num": "pjagent-01",
            "channel": "PJSIP/pjagent-01-00000004",
            "connected_line_name": "<unknown>",
            "connected_line_num": "<unknown>",
            "position": 1,
            "queue_name": "sales_1",
            "tm_update": "2017-12-18T00:31:08.754950500Z",
            "unique_id": "1513557067.6",
            "wait": None,
        },
        "statuscode": 200,
    },
    # spec line 3383
    "GET /v1/admin/queue/members": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "id": "sip/agent-02@sales_1",
                    "calls_taken": 0,
                    "in_call": 0,
                    "last_call": 0,
                    "last_pause": 0,
                    "location": "sip/agent-02",
                    "membership": "dynamic",
                    "name": "sip/agent-02",
                    "paused": 0,
                    "paused_reason": "",
                    "penalty": 0,
                    "queue_name": "sales_1",
                    "ring_inuse": None,
                    "state_interface": "sip/agent-02",
                    "status": 4,
                    "tm_update": "2017-12-18T00:31:04.175880809Z",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 3483
    "GET /v1/admin/queue/members/<detail>": {
        "api_ver": "0.1",
        "result": {
            "id": "Agent/10001@sales_1",
            "calls_taken": 0,
            "in_call": 0,
            "last_call": 0,
            "last_pause": 0,
            "location": "Agent/10001",
            "membership": "static",
            "name": "Agent/10001",
            "paused": 0,
            "paused_reason": "",
            "penalty": 0,
            "queue_name": "sales_1",
            "ring_inuse": None,
            "state_interface": "Agent/10001",
            "status": 4,
            "tm_update": "2017-12-18T00:31:04.234368754Z",
        },
        "statuscode": 200,
    },
    # spec line 3555
    "GET /v1/admin/queue/queues": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "abandoned": 2,
                    "calls": 0,
                    "completed": 0,
                    "hold_time": 0,
                    "max": 0,
                    "name": "sales_1",
                    "service_level": 5,
                    "service_level_perf": 0.0,
                    "strategy": "ringall",
                    "talk_time": 0,
                    "tm_update": "2017-12-18T00:31:04.142068111Z",
                    "weight": 0,
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 3639
    "GET /v1/admin/queue/queues/<detail>": {
        "api_ver": "0.1",
        "result": {
            "abandoned": 2,
            "calls": 0,
            "completed": 0,
            "hold_time": 0,
            "max": 0,
            "name": "sales_1",
            "service_level": 5,
            "service_level_perf": 0.0,
            "strategy": "ringall",
            "talk_time": 0,
            "tm_update": "2017-12-18T00:31:04.142068111Z",
            "weight": 0,
        },
        "statuscode": 200,
    },
    # spec line 3675
    "GET /v1/admin/user/users": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "name": "Test Administrator",
                    "password": "admin",
                    "tm_create": "2018-04-28T05:03:36.560694725Z",
                    "tm_update": "2018-04-28T07:10:29.116108422Z",
                    "username": "admin",
                    "uuid": "ed629979-802b-40f0-9098-b30b2988f9b6",
                },
                {
                    "name": "test1",
                    "password": "test1",
                    "tm_create": "2018-04-29T07:19:00.56688782Z",
                    "tm_update": "2018-05-02T16:18:36.730339477Z",
                    "username": "test1",
                    "uuid": "65abf0b4-9cd5-4bff-8ec9-c03c1aea22d4",
                },
                {
                    "name": "test2",
                    "password": "test2",
                    "tm_create": "2018-05-02T13:52:58.303710170Z",
                    "tm_update": "2018-05-03T03:55:08.886606228Z",
                    "username": "test2",
                    "uuid": "16d1e8ea-1331-4ba7-a371-2c6261e1ce33",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 3717
    "POST /v1/admin/user/users": {"api_ver": "0.1", "statuscode": 200},
    # spec line 3741
    "GET /v1/admin/user/users/<detail>": {
        "api_ver": "0.1",
        "result": {
            "name": "test2",
            "password": "test2",
            "tm_create": "2018-05-02T13:52:58.303710170Z",
            "tm_update": "2018-05-03T03:55:08.886606228Z",
            "username": "test2",
            "uuid": "16d1e8ea-1331-4ba7-a371-2c6261e1ce33",
        },
        "statuscode": 200,
    },
    # spec line 3763
    "PUT /v1/admin/user/users/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 3777
    "DELETE /v1/admin/user/users/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 3843
    "GET /v1/manager/users": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "context": "",
                    "name": "Test Administrator",
                    "password": "admin",
                    "permissions": [{"permission": "admin"}, {"permission": "user"}],
                    "tm_create": "2018-04-28T05:03:36.560694725Z",
                    "tm_update": "2018-04-28T07:10:29.116108422Z",
                    "username": "admin",
                    "uuid": "ed629979-802b-40f0-9098-b30b2988f9b6",
                },
                {
                    "context": "demo",
                    "name": "test1",
                    "password": "test1",
                    "permissions": [{"permission": "user"}],
                    "tm_create": "2018-04-29T07:19:00.56688782Z",
                    "tm_update": None,
                    "username": "test1",
                    "uuid": "65abf0b4-9cd5-4bff-8ec9-c03c1aea22d4",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 3892
    "POST /v1/manager/users": {"api_ver": "0.1", "statuscode": 200},
    # spec line 3916
    "GET /v1/manager/users/<detail>": {
        "api_ver": "0.1",
        "result": {
            "context": "demo",
            "name": "test2",
            "password": "test2",
            "permissions": [{"permission": "user"}],
            "tm_create": "2018-05-02T13:28:31.101851891Z",
            "tm_update": None,
            "username": "test2",
            "uuid": "3305c47b-fc87-4186-b4ef-30cef0c8f5b2",
        },
        "statuscode": 200,
    },
    # spec line 3944
    "PUT /v1/manager/users/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 3958
    "DELETE /v1/manager/users/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 3980
    "GET /me/buddies": {
        "api_ver": "0.1",
        "result": [
            {
                "detail": None,
                "name": None,
                "tm_create": "2018-03-28T01:37:52.133197867Z",
                "tm_update": None,
                "uuid": "611f9902-00c9-4765-9775-20fbaf8261b0",
                "uuid_user": "980404a2-f509-4140-9c92-96a018d1b61c",
            },
        ],
        "statuscode": 200,
    },
    # spec line 4004
    "POST /me/buddies": {"api_ver": "0.1", "statuscode": 200},
    # spec line 4024
    "GET /v1/me/contacts": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {
                    "detail": "test target detail 4",
                    "info": {
                        "id": "199",
                        "password": "199",
                        "public_url": "sip:199@192.168.200.10",
                        "realm": "localhost",
                    },
                    "name": "test target",
                    "target": "199",
                    "tm_create": "2018-02-13T17:54:12.399972783Z",
                    "tm_update": "2018-03-28T01:15:50.278779412Z",
                    "type": "pjsip_endpoint",
                    "user_uuid": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
                    "uuid": "62a78a12-34ba-4b4f-b9ea-e52e4bac6459",
                },
            ],
        },
        "statuscode": 200,
    },
    # spec line 4066
    "GET /me/chats": {
        "api_ver": "0.1",
        "result": [
            {
                "detail": "test chat detail",
                "name": "test chat name",
                "room": {
                    "members": ["59e3a7d5-b05f-43cd-abdf-db7009eed6cf", "980404a2-f509-4140-9c92-96a018d1b61c"],
                    "tm_create": "2018-03-27T06:53:37.432474880Z",
                    "tm_update": None,
                    "type": 1,
                    "uuid": "57b8706a-67e7-4c3a-a070-b164a08562ab",
                    "uuid_creator": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
                    "uuid_owner": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
                },
                "tm_create": "2018-03-27T06:53:37.496918935Z",
                "tm_update": None,
                "uuid": "15130428-6f27-456d-b744-6156e3a4b7a8",
            },
        ],
        "statuscode": 200,
    },
    # spec line 4101
    "POST /me/chats": {"api_ver": "0.1", "statuscode": 200},
    # spec line 4123
    "GET /me/chats/<detail>": {
        "api_ver": "0.1",
        "result": {
            "detail": "test chat detail",
            "name": "test chat name",
            "room": {
                "members": ["59e3a7d5-b05f-43cd-abdf-db7009eed6cf", "980404a2-f509-4140-9c92-96a018d1b61c"],
                "tm_create": "2018-03-27T06:53:37.432474880Z",
                "tm_update": None,
                "type": 1,
                "uuid": "57b8706a-67e7-4c3a-a070-b164a08562ab",
                "uuid_creator": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
                "uuid_owner": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
            },
            "tm_create": "2018-03-27T06:53:37.496918935Z",
            "tm_update": None,
            "uuid": "15130428-6f27-456d-b744-6156e3a4b7a8",
        },
        "statuscode": 200,
    },
    # spec line 4156
    "PUT /me/chats/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 4203
    "GET /me/chats/<detail>/messages": {
        "api_ver": "0.1",
        "result": [
            {
                "message": {"message": "test message"},
                "tm_create": "2018-03-27T10:26:14.452323600Z",
                "uuid": "1800fcee-1077-47f0-9d7c-3c7cde768e93",
                "uuid_owner": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
            },
            {
                "message": {"message": "test message"},
                "tm_create": "2018-03-27T08:30:50.225964433Z",
                "uuid": "eb251f63-8ed1-4a00-b757-20a88caa8a20",
                "uuid_owner": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
            },
        ],
        "statuscode": 200,
    },
    # spec line 4247
    "GET /me/info": {
        "api_ver": "0.1",
        "result": {
            "chats": [
                {
                    "detail": "test chat detail",
                    "name": "test chat name",
                    "room": {
                        "members": ["59e3a7d5-b05f-43cd-abdf-db7009eed6cf", "980404a2-f509-4140-9c92-96a018d1b61c"],
                        "tm_create": "2018-03-27T06:53:37.432474880Z",
                        "tm_update": None,
                        "type": 1,
                        "uuid": "57b8706a-67e7-4c3a-a070-b164a08562ab",
                        "uuid_creator": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
                        "uuid_owner": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
                    },
                    "tm_create": "2018-03-27T06:53:37.496918935Z",
                    "tm_update": None,
                    "uuid": "15130428-6f27-456d-b744-6156e3a4b7a8",
                },
            ],
            "contacts": [
                {
                    "detail": "test target detail 4",
                    "info": {
                        "id": "199",
                        "password": "199",
                        "public_url": "sip:199@192.168.200.10",
                        "realm": "localhost",
                    },
                    "name": "test target",
                    "target": "199",
                    "tm_create": "2018-02-13T17:54:12.399972783Z",
                    "tm_update": "2018-03-27T20:24:51.355343689Z",
                    "type": "pjsip_endpoint",
                    "user_uuid": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
                    "uuid": "62a78a12-34ba-4b4f-b9ea-e52e4bac6459",
                },
            ],
            "name": "teset admin",
            "tm_create": "2018-02-13T17:42:16.453145450Z",
            "tm_update": "2018-03-27T08:30:03.254978318Z",
            "username": "admin",
            "uuid": "59e3a7d5-b05f-43cd-abdf-db7009eed6cf",
        },
        "statuscode": 200,
    },
    # spec line 1627 (no curl: the reply printed under GET /admin/dialplan/configurations, its missing comma added)
    "GET /v1/admin/dialplan/configurations": {
        "api_ver": "0.1",
        "result": {
            "list": [
                {"data": "...", "name": "extensions.conf"},
                {"data": "...", "name": "extensions.conf.2018-05-20T19:54:00.66126645Z"},
            ]
        },
        "statuscode": 200,
    },
    # spec line 4172 (its reply is printed with typographic quotes; it is the `{$defhdr}` of a write)
    "DELETE /me/chats/<detail>": {"api_ver": "0.1", "statuscode": 200},
    # spec line 4233 (no reply shown: the `{$defhdr}` of a write)
    "POST /me/chats/<detail>/messages": {"api_ver": "0.1", "statuscode": 200},
}


def test_pjsip_conf_secrets_masked_and_kept_on_round_trip(jade, pbx):
    """GET shows "********"; PUTting the masked text back keeps the stored secrets; a masked secret
    for a section that had none is refused with 400 and changes nothing."""
    text = envelope(jade.get("/v1/admin/pjsip/configurations/pjsip.conf"), 200)["result"]["data"]
    assert "********" in text and not any(secret in text for secret in SIP_SECRETS)
    before = len(envelope(jade.get("/v1/admin/pjsip/configurations"), 200)["result"]["list"])
    edited = text + "\n; touched by the round-trip test\n"
    envelope(jade.put("/v1/admin/pjsip/configurations/pjsip.conf", {"data": edited}), 200)
    after = envelope(jade.get("/v1/admin/pjsip/configurations/pjsip.conf"), 200)["result"]["data"]
    assert after == edited  # still masked in the view, and the secrets behind it were kept
    assert envelope(jade.get("/v1/admin/pjsip/auths/199"), 200)["result"]["password"] == "********"
    bad = after + "\n[newauth]\ntype=auth\nusername=x\npassword=********\n"
    envelope(jade.put("/v1/admin/pjsip/configurations/pjsip.conf", {"data": bad}), 400)
    assert envelope(jade.get("/v1/admin/pjsip/configurations/pjsip.conf"), 200)["result"]["data"] == after
    assert len(envelope(jade.get("/v1/admin/pjsip/configurations"), 200)["result"]["list"]) == before + 1
