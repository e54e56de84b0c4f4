"""Every kazoo route × anonymous / user A / user B / master / super_master, against a real serve.

- anonymous (no token) → 401 invalid_credentials; a plain user → 403 forbidden everywhere under
  /v2/support and on account writes;
- a master (or admin) → 403 on super_master routes, admitted on master routes (ports, account reads);
- a super_master is admitted everywhere (the answer is then whatever the route gives: 404 for the
  made-up ids used here, 400 for empty bodies, 502 when the carrier is not configured), never
  401/403 and never 500."""

from __future__ import annotations

import pytest

from tests.e2e.kazoo_client import Kazoo, cli_user

A, S, D, M = "0" * 32, "1" * 32, "2" * 32, "+15550001234"
SUPER_ROUTES = (
    [
        ("PUT", f"/support/accounts/{A}/devices/import"),
        ("GET", f"/support/phone_numbers/{M}/device"),
        ("GET", f"/support/phone_numbers/{M}/subscription"),
        ("GET", "/support/devices/ESN1/subscription"),
        ("GET", "/support/usage/unknown_numbers"),
        ("GET", "/support/usage/unknown_numbers/201701"),
        ("GET", "/support/usage/audit"),
        ("GET", "/support/usage/audit/201701"),
        ("GET", "/support/usage/audit/201701/csv"),
        ("PATCH", f"/support/accounts/{A}/devices/{D}"),
        ("POST", "/support/subscriptions/lookup"),
        ("PUT", f"/support/accounts/{A}/subscriptions/import"),
        ("DELETE", f"/support/accounts/{A}/subscriptions/{S}"),
        ("PATCH", f"/support/accounts/{A}/subscriptions/{S}"),
        ("POST", f"/support/accounts/{A}/subscriptions/{S}/move"),
        ("GET", "/support/clusters"),
        ("GET", f"/support/clusters/{S}"),
        ("PUT", f"/support/clusters/{S}"),
        ("DELETE", f"/support/clusters/{S}"),
        ("PUT", "/accounts"),
    ]
    + [
        (m, p)
        for kind in ("customer_clusters", "carrier_sbcs", "media_servers")
        for m, p in (
            ("GET", f"/support/routing/{kind}"),
            ("GET", f"/support/routing/{kind}/{S}"),
            ("POST", f"/support/routing/{kind}/{S}"),
            ("PATCH", f"/support/routing/{kind}/{S}"),
            ("DELETE", f"/support/routing/{kind}/{S}"),
        )
    ]
    + [
        ("PUT", f"/support/routing/customer_clusters/{S}"),
        ("PUT", "/support/routing/carrier_sbcs"),
        ("PUT", "/support/routing/media_servers"),
    ]
)
MASTER_ROUTES = [
    ("POST", "/support/ports/poll"),
    ("POST", f"/support/ports/in/{S}/status"),
    ("GET", f"/support/ports/in/{S}"),
    ("GET", "/accounts"),
    ("GET", f"/accounts/{A}"),
]


@pytest.fixture(scope="module")
def actors(server):
    out = {"anonymous": Kazoo(server)}
    for label, role in (
        ("user_a", "user"),
        ("user_b", "user"),
        ("master", "master"),
        ("admin", "admin"),
        ("super_master", "super_master"),
    ):
        name, password = cli_user(server, role)
        out[label] = Kazoo.login(server, name, password)
    # a cluster without a carrier, so carrier routes answer 502 quickly instead of calling out
    sm = out["super_master"]
    cid = "authz-no-carrier"
    sm.call(
        "PUT",
        f"/support/clusters/{cid}",
        json={"data": {"mvno_id": "x", "api_url": "http://127.0.0.1:9", "api_key": "k"}},
    )
    for k in out.values():
        k.cluster = cid
    yield out
    for k in out.values():
        k.close()


def _expect(actor: str, level: str) -> int | None:
    if actor == "anonymous":
        return 401
    if actor.startswith("user"):
        return 403
    if actor in ("master", "admin") and level == "super":
        return 403
    return None  # admitted


@pytest.mark.parametrize("actor", ["anonymous", "user_a", "user_b", "master", "admin", "super_master"])
def test_matrix(actors, actor):
    k = actors[actor]
    failures = []
    for level, routes in (("super", SUPER_ROUTES), ("master", MASTER_ROUTES)):
        for method, path in routes:
            kw = {"json": {"data": {}}} if method in ("PUT", "POST", "PATCH") else {}
            r = k.call(method, path, **kw)
            expect = _expect(actor, level)
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            if expect is not None:
                if r.status_code != expect or body.get("error") != str(expect):
                    failures.append(f"{method} {path}: {r.status_code} (want {expect})")
            elif r.status_code in (401, 403) or r.status_code >= 500 and r.status_code not in (502, 504):
                failures.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)
