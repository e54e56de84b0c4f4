"""The carrier adapter against the carrier sandbox in-process (httpx.ASGITransport), and the
sandbox's own HTTP API: normalisation, lookups, usage paging, port message cursors, injected faults
mapped to the right exception classes, credentials refused, timeouts, retries and their bound,
validation (400, never 500), the data file and --persist."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import socket
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.carrier import (
    CarrierClient,
    CarrierError,
    CarrierRejected,
    CarrierTimeout,
    CarrierUnavailable,
)
from switchboard.carrier.adapter import normalize_mdn
from switchboard.carrier.sandbox import (
    CarrierData,
    ConfigError,
    DataFileError,
    SubscriptionIn,
    create_app,
    parse_listen,
)

SEED_FILE = Path(__file__).parents[2] / "carrier_data.json"
SEED = json.loads(SEED_FILE.read_text())
KEY = SEED["api_key"]
URL = "http://carrier.test"
AUTH = {"Authorization": f"Bearer {KEY}"}

SPEC_DEVICE = {  # the spec's device import / lookup example (mdn +15550001111)
    "esn": "270113177800000001",
    "mdn": "+15550001111",
    "sim": "01234567890123456789",
    "imsi": "9876543210",
    "plan": "260PLAN21",
    "features": ["international", "sip", "mms", "lte"],
    "carrier": "sprint",
    "carrier_data": {"msid": "012345678901234", "csa": "SFRSFR415"},
    "activation_date": 63648957842,
    "suspended": False,
    "model": {"name": "SAMSUNG L300 HANDSET KIT", "number": "SPHL300KTS", "manufacturer": "SAMSUNG"},
}
SPEC_LOOKUP = {  # the spec's "Lookup Carrier Subscription" carrier_data (mdn +14157487153)
    "esn": "A0000041563752",
    "mdn": "+14157487153",
    "sim": None,
    "imsi": None,
    "plan": "260PLAN1",
    "features": ["international", "sip", "mms", "tethering"],
    "carrier": "sprint",
    "carrier_data": {"msid": "000004156375241", "csa": "SFRSFR415"},
    "activation_date": 63746871056,
    "suspended": False,
    "model": None,
}


@pytest.fixture
def data() -> CarrierData:
    return CarrierData.from_dict(copy.deepcopy(SEED))


@pytest.fixture
def app(data):
    return create_app(data)


@pytest.fixture
async def raw(app):
    """Plain HTTP to the sandbox (with the key)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=URL, headers=AUTH) as c:
        yield c


def carrier(app, *, key: str = KEY, **kw) -> CarrierClient:
    kw.setdefault("backoff", 0.01)
    return CarrierClient(URL, key, transport=httpx.ASGITransport(app=app), **kw)


@pytest.fixture
async def client(app):
    c = carrier(app)
    yield c
    await c.aclose()


async def fault(raw, **body) -> None:
    r = await raw.post("/v1/admin/faults", json=body)
    assert r.status_code == 200, r.text


async def served(raw) -> int | None:
    """How many requests the current fault touched (None: no fault left)."""
    state = (await raw.get("/v1/admin/faults")).json()["fault"]
    return None if state is None else state["served"]


class Counting(httpx.AsyncBaseTransport):
    """A transport that answers from a list of responses (or exceptions) and counts requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def json_response(status: int, body) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


# ---- the seed file -------------------------------------------------------------------------------------
def test_seed_file_holds_the_spec_examples(data):
    assert data.api_key == KEY and data.carrier == "sprint"
    assert data.find(mdn="+15550001111")["model"]["number"] == "SPHL300KTS"
    assert data.find(mdn="+14157487153")["sim"] is None
    assert sum(data.usage_page("201701", None, 100)["items"][i]["bytes"] for i in range(9)) == 5468097625
    assert data.port_count() == 3


# ---- subscriptions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mdn", ["+15550001111", "15550001111", "5550001111", "(555) 000-1111", " 555.000.1111 "])
async def test_subscription_by_mdn_in_any_formatting_is_normalised(client, mdn):
    assert await client.subscription(mdn=mdn) == SPEC_DEVICE


async def test_subscription_by_esn_and_sim(client):
    assert await client.subscription(esn="a0000041563752") == SPEC_LOOKUP  # ESNs match in any case
    assert await client.subscription(sim="01234567890123456789") == SPEC_DEVICE
    device_less = await client.subscription(sim="89014103211118510720")
    assert device_less["esn"] is None and device_less["carrier"] == "boost" and device_less["model"] is None


async def test_unknown_subscription_is_none(client):
    assert await client.subscription(mdn="+15559990000") is None
    assert await client.subscription(esn="FFFFFFFF") is None
    assert await client.subscription(sim="0000") is None


async def test_carrier_filter(client):
    assert await client.subscription(mdn="+15550009999", carrier="sprint") is None
    assert (await client.subscription(mdn="+15550009999", carrier="BOOST"))["carrier"] == "boost"
    assert (await client.subscription(mdn="+15550001111", carrier="sprint"))["mdn"] == "+15550001111"


async def test_mdn_takes_precedence_over_esn_and_sim(client):
    found = await client.subscription(mdn="+14157487153", esn="270113177800000001", sim="01234567890123456789")
    assert found["mdn"] == "+14157487153"
    assert (await client.subscription(esn="270113177800000001", sim="89014103211118510720"))["mdn"] == "+15550001111"


async def test_subscription_needs_a_key(client):
    with pytest.raises(ValueError):
        await client.subscription()
    with pytest.raises(ValueError):
        await client.subscription(mdn="not a number")
    with pytest.raises(ValueError):
        await client.subscription(esn="  ")


async def test_suspended_subscription(client):
    assert (await client.subscription(mdn="+15550002221"))["suspended"] is True


@pytest.mark.parametrize(
    ("given", "expect"),
    [
        ("+15550001111", "+15550001111"),
        ("5550001111", "+15550001111"),
        ("1 (555) 000-1111", "+15550001111"),
        ("+442071838750", "+442071838750"),
        ("abc", None),
        ("+1", None),
        (5550001111, None),
        (None, None),
    ],
)
def test_adapter_mdn_normalisation(given, expect):
    assert normalize_mdn(given) == expect


# ---- usage -----------------------------------------------------------------------------------------------
async def test_usage_pages_follow_cursors(client):
    pages = [page async for page in client.usage("201701", page_size=2)]
    assert [len(p) for p in pages] == [2, 2, 2, 2, 1]
    rows = [row for page in pages for row in page]
    assert rows == sorted(SEED["usage"]["201701"].items())
    assert sum(b for _, b in rows) == 5468097625


async def test_usage_of_an_unknown_month_has_no_page(client):
    assert [page async for page in client.usage("209912")] == []


async def test_usage_arguments_are_checked_at_once(client):
    for month in ("2017", "201713", "201700", "abcdef", 201701):
        with pytest.raises(ValueError):
            client.usage(month)
    for size in (0, 10_001, True):
        with pytest.raises(ValueError):
            client.usage("201701", page_size=size)


async def test_usage_paging_is_stable_while_the_month_changes(client, raw):
    month = "202002"
    original = {f"+1555100{n:04d}": n for n in range(0, 100, 2)}  # even numbers
    assert (await raw.put(f"/v1/admin/usage/{month}", json=original)).status_code == 200
    seen: list[str] = []
    pages = client.usage(month, page_size=10)
    async for page in pages:
        seen.extend(m for m, _ in page)
        if len(seen) == 10:  # after the first page: add odd numbers before and after the cursor
            odd = {f"+1555100{n:04d}": n for n in range(1, 100, 2)}
            assert (await raw.patch(f"/v1/admin/usage/{month}", json=odd)).status_code == 200
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(original) <= set(seen)  # nothing skipped
    assert all(int(m[-4:]) > 18 for m in set(seen) - set(original))  # only rows after the cursor appear


# ---- port messages -----------------------------------------------------------------------------------------
async def test_port_messages_cursor_sees_each_message_once(client, raw):
    messages, cursor = await client.port_messages(None)
    assert [m["code"] for m in messages] == ["submitted", "pending", "rejected"]
    assert messages[0] == {
        "port_id": "port-7f3a91c2",
        "mdn": "+15557770001",
        "esn": "270113177800000001",
        "code": "submitted",
        "message": "port request received",
        "timestamp": 63750000000,
    }
    assert messages[2]["esn"] is None
    assert isinstance(cursor, str)
    assert await client.port_messages(cursor) == ([], cursor)  # nothing new: cursor unchanged
    new = [
        {"port_id": "port-7f3a91c2", "mdn": "5557770001", "code": "completed", "timestamp": 63750010000},
        {"port_id": "port-9", "mdn": "+15557770009", "code": "scheduled", "message": "FOC 2017-02-01", "timestamp": 1},
    ]
    r = await raw.post("/v1/admin/port_messages", json=new)
    assert r.status_code == 201 and r.json() == {"appended": 2, "total": 5}
    more, cursor2 = await client.port_messages(cursor)
    assert [(m["port_id"], m["code"], m["mdn"]) for m in more] == [
        ("port-7f3a91c2", "completed", "+15557770001"),
        ("port-9", "scheduled", "+15557770009"),
    ]
    assert cursor2 != cursor and await client.port_messages(cursor2) == ([], cursor2)


async def test_port_messages_follow_paging(client, raw):
    _, cursor = await client.port_messages(None)
    batch = [
        {"port_id": f"p-{n}", "mdn": f"+1555300{n:04d}", "code": "submitted", "timestamp": 63750000000 + n}
        for n in range(2500)
    ]
    assert (await raw.post("/v1/admin/port_messages", json=batch)).status_code == 201
    messages, end = await client.port_messages(cursor)
    assert [m["port_id"] for m in messages] == [f"p-{n}" for n in range(2500)]
    page = (await raw.get("/v1/port_messages", params={"after": cursor, "limit": 1000})).json()
    assert len(page["messages"]) == 1000 and page["has_more"] is True  # so the client did follow pages
    assert await client.port_messages(end) == ([], end)


async def test_port_messages_of_an_empty_log():
    empty = CarrierData(KEY)
    async with CarrierClient(URL, KEY, transport=httpx.ASGITransport(app=create_app(empty))) as c:
        assert await c.port_messages(None) == ([], None)


async def test_port_messages_drop_malformed_but_move_on():
    page = {
        "messages": [
            {"port_id": "ok-1", "mdn": "+15550001111", "code": "Pending", "timestamp": 5},
            {"port_id": 7, "code": "pending"},
            "junk",
            {"port_id": "ok-2", "mdn": "junk", "code": "completed", "timestamp": True, "esn": 3},
        ],
        "next_cursor": "c4",
        "has_more": False,
    }
    transport = Counting(json_response(200, page))
    async with CarrierClient(URL, KEY, transport=transport) as c:
        messages, cursor = await c.port_messages("c0")
    assert cursor == "c4"
    assert messages == [
        {"port_id": "ok-1", "mdn": "+15550001111", "esn": None, "code": "pending", "message": None, "timestamp": 5},
        {"port_id": "ok-2", "mdn": None, "esn": None, "code": "completed", "message": None, "timestamp": None},
    ]
    assert transport.requests[0].url.params["after"] == "c0"


# ---- faults, failures, retries ---------------------------------------------------------------------------------
async def test_503_until_cleared_is_unavailable_after_retries(client, raw):
    await fault(raw, status=503)
    with pytest.raises(CarrierUnavailable) as e:
        await client.subscription(mdn="+15550001111")
    assert e.value.status == 502 and "503" in str(e.value) and "3 attempts" in str(e.value)
    assert await served(raw) == 3  # one try and two retries
    with pytest.raises(CarrierUnavailable):
        [page async for page in client.usage("201701")]
    with pytest.raises(CarrierUnavailable):
        await client.port_messages(None)
    assert (await raw.get("/v1/admin/subscriptions")).status_code == 200  # admin is never faulted
    r = await raw.delete("/v1/admin/faults")
    assert r.json() == {"cleared": True, "served": 9}
    assert (await client.subscription(mdn="+15550001111"))["mdn"] == "+15550001111"


async def test_a_transient_503_is_retried(client, raw):
    await fault(raw, status=503, count=2)
    assert await client.subscription(mdn="+15550001111") == SPEC_DEVICE
    assert await served(raw) is None  # both faulted answers were used up by the retries


@pytest.mark.parametrize("status", [502, 504])
async def test_gateway_errors_are_retried(client, raw, status):
    await fault(raw, status=status, count=1)
    assert [len(p) async for p in client.usage("201611")] == [3]


async def test_500_is_not_retried(client, raw):
    await fault(raw, status=500)
    with pytest.raises(CarrierUnavailable) as e:
        await client.subscription(mdn="+15550001111")
    assert e.value.status == 502
    assert await served(raw) == 1


async def test_other_refusals_are_plain_carrier_errors(client, raw):
    await fault(raw, status=409)
    with pytest.raises(CarrierError) as e:
        await client.subscription(esn="A0000041563752")
    assert type(e.value) is CarrierError and e.value.status == 502 and "409" in str(e.value)
    await fault(raw, status=404)  # a 404 that is not the carrier's "no such subscription"
    with pytest.raises(CarrierUnavailable) as e:
        await client.subscription(esn="A0000041563752")
    assert "api_url" in str(e.value)


async def test_malformed_answer_is_unavailable_and_not_retried(client, raw):
    await fault(raw, malformed=True)
    with pytest.raises(CarrierUnavailable) as e:
        await client.subscription(mdn="+15550001111")
    assert "JSON" in str(e.value)
    assert await served(raw) == 1


async def test_slow_carrier_times_out(app, raw):
    await fault(raw, delay_seconds=5)
    c = carrier(app, timeout=0.2, retries=1, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(CarrierTimeout) as e:
        await c.subscription(mdn="+15550001111")
    elapsed = time.monotonic() - started
    assert e.value.status == 504 and "0.2 s" in str(e.value) and "2 attempts" in str(e.value)
    assert 0.4 <= elapsed < 2.0  # two attempts of 0.2 s and one short pause, not the 5 s delay
    assert await served(raw) == 2
    await c.aclose()


async def test_clearing_faults_releases_delayed_requests(raw):
    await fault(raw, delay_seconds=30)
    pending = asyncio.ensure_future(raw.get("/v1/subscriptions", params={"mdn": "+15550001111"}))
    await asyncio.sleep(0.1)
    assert not pending.done()
    assert (await raw.delete("/v1/admin/faults")).json() == {"cleared": True, "served": 1}
    r = await asyncio.wait_for(pending, 2)
    assert r.status_code == 200 and r.json()["subscription"]["mdn"] == "+15550001111"


async def test_delay_then_status(client, raw):
    await fault(raw, status=503, delay_seconds=0.05, count=1)
    r = await raw.get("/v1/usage")
    assert r.status_code == 503 and r.json()["error"]["code"] == "injected_fault"
    assert (await raw.get("/v1/usage")).status_code == 200


async def test_wrong_key_is_rejected_without_retry(app, raw, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "wrong-key-" + "x" * 12
    c = carrier(app, key=secret)
    with pytest.raises(CarrierRejected) as e:
        await c.subscription(mdn="+15550001111")
    assert e.value.status == 502 and "credentials" in str(e.value) and secret not in str(e.value)
    with pytest.raises(CarrierRejected):
        [page async for page in c.usage("201701")]
    with pytest.raises(CarrierRejected):
        await c.port_messages(None)
    await c.aclose()
    assert secret not in caplog.text and secret not in repr(c)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_unavailable():
    async with CarrierClient(f"http://127.0.0.1:{closed_port()}", KEY, retries=1, backoff=0.01) as c:
        with pytest.raises(CarrierUnavailable) as e:
            await c.subscription(mdn="+15550001111")
    assert "unreachable" in str(e.value) and "2 attempts" in str(e.value)


async def test_retries_and_their_bound(caplog):
    caplog.set_level(logging.DEBUG)
    transport = Counting(httpx.ConnectError("connection refused"))
    c = CarrierClient(URL, KEY, transport=transport, retries=3, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(CarrierUnavailable):
        await c.subscription(mdn="+15550001111")
    elapsed = time.monotonic() - started
    assert len(transport.requests) == 4
    assert 0.5 * (0.05 + 0.1 + 0.2) <= elapsed < 3  # three pauses, each at least half its nominal length
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in transport.requests)
    assert KEY not in caplog.text
    empty = {"month": "201701", "items": [], "next_cursor": None}
    transport = Counting(httpx.ReadError("reset"), httpx.ReadTimeout("slow"), json_response(200, empty))
    c = CarrierClient(URL, KEY, transport=transport, retries=2, backoff=0)
    assert [p async for p in c.usage("201701")] == []
    assert len(transport.requests) == 3
    transport = Counting(httpx.ReadTimeout("slow"))
    c = CarrierClient(URL, KEY, transport=transport, retries=0)
    with pytest.raises(CarrierTimeout) as e:
        await c.port_messages(None)
    assert len(transport.requests) == 1 and "1 attempt" in str(e.value)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(200, content=b"<html>"), CarrierUnavailable),
        (json_response(200, ["not", "an", "object"]), CarrierUnavailable),
        (json_response(200, {"subscription": {"mdn": "x"}}), CarrierUnavailable),
        (json_response(200, {"subscription": {"mdn": "+15550001111", "features": "sip"}}), CarrierUnavailable),
        (json_response(200, {"subscription": {"mdn": "+15550001111", "activation_date": "soon"}}), CarrierUnavailable),
        (httpx.Response(404, content=b"Not Found"), CarrierUnavailable),
        (json_response(403, {"error": {"code": "forbidden", "message": "no"}}), CarrierRejected),
        (json_response(301, {}), CarrierError),
    ],
)
async def test_unexpected_answers(answer, kind):
    async with CarrierClient(URL, KEY, transport=Counting(answer)) as c:
        with pytest.raises(kind) as e:
            await c.subscription(mdn="+15550001111")
    assert isinstance(e.value, CarrierError)


async def test_minimal_subscription_record_is_completed():
    answer = json_response(200, {"subscription": {"mdn": "5550001111", "model": {}}})
    async with CarrierClient(URL, KEY, transport=Counting(answer)) as c:
        record = await c.subscription(esn="E1", carrier="sprint")
    assert record == {
        "esn": None,
        "mdn": "+15550001111",
        "sim": None,
        "imsi": None,
        "plan": None,
        "features": [],
        "carrier": "sprint",
        "carrier_data": {"msid": None, "csa": None},
        "activation_date": None,
        "suspended": False,
        "model": None,
    }


async def test_usage_cursor_loop_is_refused():
    page = {"month": "201701", "items": [{"mdn": "+15550001111", "bytes": 1}], "next_cursor": "same"}
    transport = Counting(json_response(200, page))
    async with CarrierClient(URL, KEY, transport=transport) as c:
        with pytest.raises(CarrierUnavailable):
            [p async for p in c.usage("201701")]
    assert len(transport.requests) == 2


async def test_usage_rows_that_are_not_usage_are_dropped():
    items = [
        {"mdn": "5550001111", "bytes": 10},
        {"mdn": "nope", "bytes": 1},
        {"mdn": "+15550001112", "bytes": -1},
        {"mdn": "+15550001113", "bytes": True},
        "junk",
        {"mdn": "+15550001114", "bytes": 0},
    ]
    page = {"month": "201701", "items": items, "next_cursor": None}
    async with CarrierClient(URL, KEY, transport=Counting(json_response(200, page))) as c:
        assert [p async for p in c.usage("201701")] == [[("+15550001111", 10), ("+15550001114", 0)]]


async def test_a_misconfigured_api_url_makes_no_request():
    for url in ("", "carrier.example.com", "ftp://carrier.example.com", "http://"):
        transport = Counting(json_response(200, {}))
        async with CarrierClient(url, KEY, transport=transport) as c:
            with pytest.raises(CarrierUnavailable) as e:
                await c.subscription(mdn="+15550001111")
        assert "api_url" in str(e.value) and transport.requests == []


async def test_api_url_with_a_path_prefix():
    transport = Counting(json_response(200, {"messages": [], "next_cursor": "5", "has_more": False}))
    async with CarrierClient("https://user:pw@carrier.example.com/mvno/api?x=1", KEY, transport=transport) as c:
        assert await c.port_messages("5") == ([], "5")
        assert "pw" not in repr(c)
    request = transport.requests[0]
    assert str(request.url).startswith("https://carrier.example.com/mvno/api/v1/port_messages?")
    assert request.headers["authorization"] == f"Bearer {KEY}"  # user info in the URL does not replace the key


def test_client_arguments_are_checked():
    with pytest.raises(ValueError):
        CarrierClient(URL, KEY, timeout=0)
    with pytest.raises(ValueError):
        CarrierClient(URL, KEY, retries=-1)


# ---- the sandbox's HTTP API ---------------------------------------------------------------------------------------
ROUTES = [
    ("GET", "/v1/subscriptions?mdn=%2B15550001111", None),
    ("GET", "/v1/usage", None),
    ("GET", "/v1/usage/201701", None),
    ("GET", "/v1/port_messages", None),
    ("GET", "/v1/admin/subscriptions", None),
    ("POST", "/v1/admin/subscriptions", {"mdn": "+15550004444"}),
    ("DELETE", "/v1/admin/subscriptions?mdn=%2B15550001111", None),
    ("PUT", "/v1/admin/usage/201701", {}),
    ("PATCH", "/v1/admin/usage/201701", {}),
    ("POST", "/v1/admin/port_messages", []),
    ("GET", "/v1/admin/faults", None),
    ("POST", "/v1/admin/faults", {"status": 503}),
    ("DELETE", "/v1/admin/faults", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_needs_the_key(app, method, path, body):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=URL) as anon:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY}"}):
            r = await anon.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        r = await anon.request(method, path, json=body, headers=AUTH)
        assert r.status_code in (200, 201), r.text


async def test_openapi_documents_the_api(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=URL) as anon:
        doc = (await anon.get("/openapi.json")).json()
        assert (await anon.get("/docs")).status_code == 200
    assert {"/v1/subscriptions", "/v1/usage/{month}", "/v1/port_messages", "/v1/admin/faults"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "Bearer <api_key>" in doc["info"]["description"]
    lookup = doc["paths"]["/v1/subscriptions"]["get"]
    assert {"200", "400", "401", "404"} <= set(lookup["responses"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/subscriptions", None),
        ("GET", "/v1/subscriptions?mdn=%2B15550001111&esn=1", None),
        ("GET", "/v1/subscriptions?mdn=", None),
        ("GET", "/v1/subscriptions?mdn=five", None),
        ("GET", "/v1/subscriptions?esn=" + "9" * 65, None),
        ("GET", "/v1/usage/201713", None),
        ("GET", "/v1/usage/2017-01", None),
        ("GET", "/v1/usage/201701?limit=0", None),
        ("GET", "/v1/usage/201701?limit=10001", None),
        ("GET", "/v1/usage/201701?limit=ten", None),
        ("GET", "/v1/usage/201701?cursor=%25%25", None),
        ("GET", "/v1/usage/201701?cursor=bm9wZQ", None),
        ("GET", "/v1/port_messages?after=-1", None),
        ("GET", "/v1/port_messages?after=99", None),
        ("GET", "/v1/port_messages?after=1e3", None),
        ("GET", "/v1/port_messages?limit=1001", None),
        ("POST", "/v1/admin/subscriptions", {}),
        ("POST", "/v1/admin/subscriptions", {"mdn": "+15550004444", "colour": "red"}),
        ("POST", "/v1/admin/subscriptions", {"mdn": "+15550004444", "activation_date": "today"}),
        ("POST", "/v1/admin/subscriptions", {"mdn": "+15550004444", "suspended": "no"}),
        ("POST", "/v1/admin/subscriptions", {"mdn": "+15550004444", "features": "sip"}),
        ("POST", "/v1/admin/subscriptions", ["not", "an", "object"]),
        ("PUT", "/v1/admin/usage/201701", {"+15550001111": -1}),
        ("PUT", "/v1/admin/usage/201701", {"+15550001111": 1.5}),
        ("PUT", "/v1/admin/usage/201701", {"phone": 1}),
        ("PUT", "/v1/admin/usage/201701", {"5550001111": 1, "+15550001111": 2}),
        ("PUT", "/v1/admin/usage/201701", [1]),
        (
            "POST",
            "/v1/admin/port_messages",
            [{"port_id": "a b", "mdn": "+15550001111", "code": "pending", "timestamp": 1}],
        ),
        ("POST", "/v1/admin/port_messages", [{"port_id": "a", "mdn": "+15550001111", "code": "done", "timestamp": 1}]),
        ("POST", "/v1/admin/port_messages", [{"port_id": "a", "mdn": "+15550001111", "code": "pending"}]),
        ("POST", "/v1/admin/port_messages", {"port_id": "a"}),
        ("POST", "/v1/admin/faults", {}),
        ("POST", "/v1/admin/faults", {"status": 200}),
        ("POST", "/v1/admin/faults", {"status": 600}),
        ("POST", "/v1/admin/faults", {"status": 503, "count": 0}),
        ("POST", "/v1/admin/faults", {"delay_seconds": 301}),
        ("POST", "/v1/admin/faults", {"delay_seconds": -1}),
        ("DELETE", "/v1/admin/subscriptions", None),
    ],
)
async def test_bad_input_is_400(raw, data, method, path, body):
    before = data.to_dict()
    r = await raw.request(method, path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid" and error["message"]
    assert data.to_dict() == before and data.fault is None  # nothing changed


async def test_body_that_is_not_json(raw):
    r = await raw.post("/v1/admin/faults", content=b"{status: 503", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = await raw.post("/v1/admin/faults", content=b'{"status": 503}', headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "Content-Type: application/json" in r.json()["error"]["message"]


async def test_unknown_paths_and_methods_are_json(raw):
    r = await raw.get("/v2/whatever")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await raw.delete("/v1/usage")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def test_admin_subscriptions(raw, client):
    new = {"mdn": "(555) 000-4444", "esn": "abc123", "plan": "260PLAN1", "features": ["sip"]}
    r = await raw.post("/v1/admin/subscriptions", json=new)
    assert r.status_code == 201
    assert r.json()["subscription"]["mdn"] == "+15550004444" and r.json()["subscription"]["carrier"] == "sprint"
    assert (await client.subscription(esn="ABC123"))["mdn"] == "+15550004444"
    for clash in (
        {"mdn": "5550004444"},
        {"mdn": "+15550005555", "esn": "ABC123"},
        {"mdn": "+15550005555", "sim": "01234567890123456789"},
    ):
        r = await raw.post("/v1/admin/subscriptions", json=clash)
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    listed = (await raw.get("/v1/admin/subscriptions")).json()["subscriptions"]
    assert len(listed) == len(SEED["subscriptions"]) + 1
    r = await raw.delete("/v1/admin/subscriptions", params={"esn": "abc123"})
    assert r.status_code == 200 and r.json()["subscription"]["mdn"] == "+15550004444"
    assert await client.subscription(mdn="+15550004444") is None
    r = await raw.delete("/v1/admin/subscriptions", params={"esn": "abc123"})
    assert r.status_code == 404
    r = await raw.get("/v1/subscriptions", params={"mdn": "+15550004444"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_admin_usage(raw, client):
    r = await raw.put("/v1/admin/usage/201812", json={"555-000-1111": 5, "+15550001112": 7})
    assert r.json() == {"month": "201812", "mdns": 2, "total_bytes": 12}
    r = await raw.patch("/v1/admin/usage/201812", json={"+15550001111": None, "+15550001113": 1})
    assert r.json() == {"month": "201812", "mdns": 2, "total_bytes": 8}
    assert [p async for p in client.usage("201812")] == [[("+15550001112", 7), ("+15550001113", 1)]]
    assert (await raw.get("/v1/usage")).json() == {"months": ["201611", "201701", "201812"]}
    page = (await raw.get("/v1/usage/209901")).json()
    assert page == {"month": "209901", "items": [], "next_cursor": None}


async def test_fault_count_and_state(raw):
    assert (await raw.get("/v1/admin/faults")).json() == {"fault": None}
    r = await raw.post("/v1/admin/faults", json={"status": 503, "count": 2})
    assert r.json()["fault"] == {"status": 503, "delay_seconds": 0.0, "count": 2, "malformed": False, "served": 0}
    assert [(await raw.get("/v1/usage")).status_code for _ in range(3)] == [503, 503, 200]
    assert (await raw.get("/v1/admin/faults")).json() == {"fault": None}
    assert (await raw.delete("/v1/admin/faults")).json() == {"cleared": False, "served": 0}
    await fault(raw, malformed=True, status=502, count=1)
    r = await raw.get("/v1/usage")
    assert r.status_code == 502
    with pytest.raises(ValueError):
        r.json()


async def test_faults_apply_after_authentication(app, raw):
    await fault(raw, status=503, count=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=URL) as anon:
        assert (await anon.get("/v1/usage")).status_code == 401
    assert await served(raw) == 0


SERVER_APP = create_app(CarrierData.from_dict(copy.deepcopy(SEED)))


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(["mdn", "esn", "sim", "carrier", "cursor", "limit", "after"]),
    value=st.text(max_size=80),
    path=st.sampled_from(["/v1/subscriptions", "/v1/usage/201701", "/v1/port_messages", "/v1/admin/subscriptions"]),
)
def test_no_query_causes_a_server_error(key, value, path):
    method = "DELETE" if path.endswith("admin/subscriptions") else "GET"
    data = SERVER_APP.state.carrier

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=SERVER_APP)  # raises the app's exceptions, if any
        async with httpx.AsyncClient(transport=transport, base_url=URL, headers=AUTH) as c:
            return await c.request(method, path, params={key: value})

    r = asyncio.run(go())
    assert r.status_code in (200, 400, 404), r.text
    assert isinstance(r.json(), dict)
    if r.status_code == 200 and method == "DELETE":  # a lookup value that named a subscription: put it back
        data.add_subscription(SubscriptionIn.model_validate(r.json()["subscription"]))


# ---- the data file and the command's arguments ------------------------------------------------------------------
def test_data_file_errors(tmp_path):
    def load(doc) -> str:
        path = tmp_path / "carrier.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        with pytest.raises(DataFileError) as e:
            CarrierData.from_file(path)
        return str(e.value)

    assert "api_key" in load({"subscriptions": []})
    assert "colour" in load({"api_key": "k", "colour": "red"})
    assert "not JSON" in load("{")
    msg = load({"api_key": "k", "subscriptions": [{"mdn": "+15550001111"}, {"mdn": "5550001111"}]})
    assert "subscriptions.1" in msg and "+15550001111" in msg
    assert "usage" in load({"api_key": "k", "usage": {"2017": {}}})
    assert "usage.201701" in load({"api_key": "k", "usage": {"201701": {"x": 1}}})
    assert "port_messages" in load({"api_key": "k", "port_messages": [{"port_id": "p", "code": "pending"}]})
    with pytest.raises(DataFileError) as e:
        CarrierData.from_file(tmp_path / "missing.json")
    assert "missing.json" in str(e.value)


async def test_persist_writes_admin_changes_back(tmp_path, data):
    path = tmp_path / "carrier.json"
    path.write_text(SEED_FILE.read_text())
    app = create_app(CarrierData.from_file(path), persist_path=path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=URL, headers=AUTH) as c:
        assert (await c.post("/v1/admin/subscriptions", json={"mdn": "+15550004444"})).status_code == 201
        assert (await c.put("/v1/admin/usage/201901", json={"+15550004444": 9})).status_code == 200
        msg = {"port_id": "p-1", "mdn": "+15550004444", "code": "pending", "timestamp": 2}
        assert (await c.post("/v1/admin/port_messages", json=[msg])).status_code == 201
        assert (await c.post("/v1/admin/faults", json={"status": 503})).status_code == 200
    reloaded = CarrierData.from_file(path)
    assert reloaded.find(mdn="+15550004444") is not None
    assert reloaded.usage_page("201901", None, 10)["items"] == [{"mdn": "+15550004444", "bytes": 9}]
    assert reloaded.port_count() == 4 and reloaded.fault is None and reloaded.api_key == KEY
    # without persist_path the file is left alone
    before = path.read_text()
    app = create_app(CarrierData.from_file(path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=URL, headers=AUTH) as c:
        assert (await c.delete("/v1/admin/subscriptions", params={"mdn": "+15550004444"})).status_code == 200
    assert path.read_text() == before


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("127.0.0.1:8090", ("127.0.0.1", 8090)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:8090", ("::1", 8090)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
    ],  # any free port: the sandbox says which it got
)
def test_parse_listen(text, expect):
    assert parse_listen(text) == expect


@pytest.mark.parametrize("text", ["8090", ":8090", "host:", "host:-1", "host:65536", "host:http"])
def test_parse_listen_refuses(text):
    with pytest.raises(ConfigError):
        parse_listen(text)
