"""Authorization matrix: every spear route × anonymous / user A / user B / admin / super_master.

A owns the endpoint, the VoIP test and a private server; B is another normal user."""

from __future__ import annotations

import pytest

from tests.conftest import as_user, new_user

ROLES = ("anon", "a", "b", "admin", "super")


@pytest.fixture(scope="module")
def world(server, admin):
    a, b, adm, victim = new_user(admin), new_user(admin), new_user(admin, category="Admin"), new_user(admin)
    community = admin.post("/servers", json={"server": {"name": "pub", "ip_address": "192.0.2.1"}}).json()
    with as_user(server, a) as c:
        private = c.post("/servers", json={"server": {"name": "priv", "ip_address": "192.0.2.2"}}).json()
        ep = c.post(f"/users/{a['id']}/endpoints", json={"endpoint": {"name": "e", "ip_address": "192.0.2.3"}}).json()
        test = c.post(
            f"/users/{a['id']}/endpoints/{ep['id']}/voip_tests", json={"voip_test": {"server_id": community["id"]}}
        ).json()
    clients = {
        "anon": server.client(user=None),
        "a": as_user(server, a),
        "b": as_user(server, b),
        "admin": as_user(server, adm),
        "super": server.client(),
    }
    ids = {
        "A": a["id"],
        "V": victim["id"],
        "PRIV": private["id"],
        "PUB": community["id"],
        "EP": ep["id"],
        "T": test["id"],
    }
    yield clients, ids
    for c in clients.values():
        c.close()


EP = "/users/{A}/endpoints/{EP}"
T = EP + "/voip_tests/{T}"
# (method, path, body, expected status for anon, a, b, admin, super)
MATRIX = [
    ("GET", "/users", None, (401, 200, 200, 200, 200)),
    ("GET", "/users/{A}", None, (401, 200, 403, 200, 200)),
    ("POST", "/users", {"user": {"password": "password-123"}}, (401, 403, 403, 422, 422)),
    ("PUT", "/users/{A}", {"user": {"time_zone": "UTC"}}, (401, 200, 403, 200, 200)),
    ("PATCH", "/users/{A}", {"user": {"time_zone": "UTC"}}, (401, 200, 403, 200, 200)),
    ("DELETE", "/users/{V}", None, (401, 403, 403, 200, 200)),
    ("PUT", "/users/{V}/activate", None, (401, 403, 403, 200, 200)),
    ("GET", "/servers", None, (401, 200, 200, 200, 200)),
    ("GET", "/servers/{PUB}", None, (401, 200, 200, 200, 200)),
    ("GET", "/servers/{PRIV}", None, (401, 200, 404, 200, 200)),
    ("POST", "/servers", {"server": {"name": ""}}, (401, 422, 422, 422, 422)),
    ("PATCH", "/servers/{PRIV}", {"server": {"description": "d"}}, (401, 200, 404, 200, 200)),
    ("PATCH", "/servers/{PUB}", {"server": {"description": "d"}}, (401, 403, 403, 200, 200)),
    ("DELETE", "/servers/{PUB}", None, (401, 403, 403, 200, 200)),
    ("PATCH", "/servers/{PUB}/activate", None, (401, 403, 403, 200, 200)),
    ("DELETE", "/servers/{PRIV}", None, (401, 200, 404, 200, 200)),
    ("PATCH", "/servers/{PRIV}/activate", None, (401, 200, 404, 200, 200)),
    ("GET", "/users/{A}/endpoints", None, (401, 200, 403, 200, 200)),
    ("POST", "/users/{A}/endpoints", {"endpoint": {"name": ""}}, (401, 422, 403, 422, 422)),
    ("GET", EP, None, (401, 200, 403, 200, 200)),
    ("PUT", EP, {"endpoint": {"description": "x"}}, (401, 200, 403, 200, 200)),
    ("DELETE", EP, None, (401, 200, 403, 200, 200)),
    ("PUT", EP + "/activate", None, (401, 200, 403, 200, 200)),
    ("GET", EP + "/voip_tests", None, (401, 200, 403, 200, 200)),
    ("POST", EP + "/voip_tests", {"voip_test": {}}, (401, 422, 403, 422, 422)),
    ("GET", T, None, (401, 200, 403, 200, 200)),
    ("PUT", T, {"voip_test": {"num_tests": 30}}, (401, 200, 403, 200, 200)),
    ("DELETE", T, None, (401, 200, 403, 200, 200)),
    ("PUT", T + "/activate", None, (401, 200, 403, 200, 200)),
]


@pytest.mark.parametrize("method,path,body,expected", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_matrix(world, method, path, body, expected):
    clients, ids = world
    url = path.format(**ids)
    got = tuple(clients[r].request(method, url, json=body).status_code for r in ROLES)
    assert got == expected, dict(zip(ROLES, got, strict=True))
