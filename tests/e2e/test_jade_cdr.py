"""jade CDRs, live channels, originate and systems against a real `switchboard serve` (SQLite and
PostgreSQL): the routes' shapes with no calls, their validation and errors, CSV, and who may call
them. Live calls (records written, channels listed and hung up, originate answered) are the call
engine's e2e suite."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, new_user
from tests.e2e.test_jade_authz_matrix import check_envelope, jade_client, jade_login, trunk_body

CDRS = "/v1/admin/cdr/cdrs"
CHANNELS = "/v1/admin/core/channels"


@pytest.fixture(scope="module")
def jade(server):
    with jade_client(server.url, jade_login(server.url, "admin", ADMIN_PASSWORD)) as c:
        yield c


def ok(r: httpx.Response):
    assert r.status_code == 200, r.text
    return check_envelope(r).get("result")


def error(r: httpx.Response, status: int, *words: str) -> str:
    assert r.status_code == status, r.text
    message = check_envelope(r)["error"]["message"]
    for w in words:
        assert w in message, message
    return message


# ---- CDRs ------------------------------------------------------------------------------------------------
def test_cdr_list_empty_with_paging(jade):
    assert ok(jade.get(CDRS)) == {"list": [], "page": 1, "page_size": 100, "total": 0}
    assert ok(jade.get("/admin/cdr/cdrs", params={"page": "3", "page_size": "10"})) == {
        "list": [],
        "page": 3,
        "page_size": 10,
        "total": 0,
    }
    params = {
        "src": "100",
        "dst": "200",
        "disposition": "no answer",
        "linkedid": "1.2",
        "since": "2024-01-01T00:00:00Z",
        "until": "2024-01-02T00:00:00.123456789Z",
    }
    assert ok(jade.get(CDRS, params=params))["list"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
        ({"disposition": "MAYBE"}, "disposition"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-01T00:00:00Z"}, "until"),
        ({"format": "xml"}, "format"),
    ],
)
def test_cdr_list_bad_parameters(jade, params, field):
    error(jade.get(CDRS, params=params), 400, field)


def test_cdr_csv(jade):
    for r in (jade.get(CDRS, headers={"Accept": "text/csv"}), jade.get(CDRS, params={"format": "csv"})):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["x-total-count"] == "0" and r.text == ""
    # ?format=json wins over Accept
    assert ok(jade.get(CDRS, params={"format": "json"}, headers={"Accept": "text/csv"}))["list"] == []


def test_cdr_unknown_uniqueid(jade):
    error(jade.get(f"{CDRS}/1513946896.7"), 404, "cdr")
    error(jade.get("/admin/cdr/cdrs/1513946896.7", headers={"Accept": "text/csv"}), 404)


def test_admin_only(server, admin):
    user = new_user(admin)
    with (
        jade_client(server.url, None) as anon,
        jade_client(server.url, jade_login(server.url, user["username"], user["password"])) as plain,
    ):
        for method, path in (
            ("GET", CDRS),
            ("GET", f"{CDRS}/1.1"),
            ("GET", CHANNELS),
            ("POST", CHANNELS),
            ("DELETE", f"{CHANNELS}/1.1"),
        ):
            error(anon.request(method, path), 401)
            error(plain.request(method, path, json={}), 403)
        # the CSV form is refused the same way (in jade's JSON envelope)
        error(anon.get(CDRS, params={"format": "csv"}), 401)


# ---- systems and channels ----------------------------------------------------------------------------------
def test_systems_show_cdrs_and_call_counters(jade):
    for s in (ok(jade.get("/v1/admin/core/systems"))["list"][0], ok(jade.get("/v1/admin/core/systems/1"))):
        assert s["cdr_enabled"] == "Yes"
        assert s["current_calls"] == 0 and s["processed_calls"] == 0


def test_channels_empty_and_unknown(jade):
    assert ok(jade.get(CHANNELS)) == {"list": []}
    error(jade.get(f"{CHANNELS}/1513946896.7"), 404, "channel")
    error(jade.delete(f"{CHANNELS}/1513550354.0"), 404, "channel")
    error(jade.delete("/admin/core/channels/1513550354.0"), 404)


# ---- originate -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trunk(jade):
    name = f"cdr-trunk-{secrets.token_hex(3)}"
    ok(jade.post("/v1/manager/trunks", json=trunk_body(name)))
    yield name
    jade.delete(f"/v1/manager/trunks/{name}")


def test_originate_bad_input(jade):
    error(jade.post(CHANNELS, content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    error(jade.post(CHANNELS, json=[]), 400)
    msg = error(jade.post(CHANNELS, json={}), 400, "endpoint", "context", "exten")
    assert "required" in msg
    bad = {
        "endpoint": "SIP/100",
        "context": "internal",
        "exten": "200",
        "priority": "1",
        "timeout": 0,
        "variables": {"A": None},
    }
    error(jade.post(CHANNELS, json=bad), 400, "endpoint", "priority", "timeout", "variables")
    error(jade.post(CHANNELS, content=b"x", headers={"Content-Type": "text/plain"}), 415)


def test_originate_unknown_endpoint_or_trunk(jade):
    body = {"context": "internal", "exten": "200"}
    error(jade.post(CHANNELS, json={**body, "endpoint": "PJSIP/no-such-endpoint"}), 404, "endpoint")
    error(jade.post(CHANNELS, json={**body, "endpoint": "PJSIP/5551234@no-such-trunk"}), 404, "trunk")


def test_originate_with_nothing_to_call_is_404(jade, trunk):
    """A trunk whose host does not resolve, an endpoint with no registered contact: nothing to call,
    404 in jade's format, and no channel is left behind."""
    body = {"endpoint": f"PJSIP/5551234@{trunk}", "context": "internal", "exten": "200", "caller_id": "Desk <100>"}
    error(jade.post(CHANNELS, json=body), 404, "reachable contact")
    error(jade.post("/admin/core/channels", json=body), 404)
    endpoints = ok(jade.get("/v1/admin/pjsip/endpoints"))["list"]
    unregistered = [e for e in endpoints if not ok(jade.get("/v1/admin/pjsip/contacts"))["list"]]
    if unregistered:
        body["endpoint"] = f"PJSIP/{unregistered[0]['object_name']}"
        error(jade.post(CHANNELS, json=body), 404)
    assert ok(jade.get(CHANNELS)) == {"list": []}


def test_routes_are_documented(server):
    doc = httpx.get(server.url + "/openapi.json", timeout=20).json()
    paths = doc["paths"]
    assert set(paths[CDRS]) == {"get"} and set(paths[f"{CDRS}/{{uniqueid}}"]) == {"get"}
    assert {"get", "post"} <= set(paths[CHANNELS])
    params = {p["name"] for p in paths[CDRS]["get"]["parameters"]}
    assert {"page", "page_size", "src", "dst", "disposition", "linkedid", "since", "until", "format"} <= params
    schema = paths[CHANNELS]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["endpoint", "context", "exten"]
    assert "Switchboard" in paths[CHANNELS]["post"]["summary"]
