"""Authorization matrix of the jade dialect: every jade route × anonymous / user A / user B /
admin / super_master (the bootstrap admin), with the error envelope of every refusal.

Admin routes: anonymous 401, plain users 403, admins 2xx (or a 4xx the content calls for).
`/me/*` and `/admin/info` (the caller's own record): any user. A's chats and buddies are A's:
404 for everyone else, admins included (`/me` is personal). Writes use names unique to this
module and are undone at the end; objects a write destroys are made once per admin role, and
the refused roles aim at the admin's copy, so a refusal that still wrote shows up as the admin's
404. Login, logout and token life are tested below the matrix."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, new_user

ROLES = ("anon", "a", "b", "admin", "super")
ANY = (401, 200, 200, 200, 200)
OWN = (401, 200, 404, 404, 404)  # objects under A's /me: A only


def admin_only(status: int = 200) -> tuple[int, ...]:
    return (401, 403, 403, status, status)


ADMIN = admin_only()
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class TokenAuth(httpx.Auth):
    """jade's authentication: `?authtoken=` on every call (None: no token at all)."""

    def __init__(self, token: str | None):
        self.token = token

    def auth_flow(self, request):
        if self.token is not None:
            request.url = request.url.copy_merge_params({"authtoken": self.token})
        yield request


def jade_login(url: str, username: str, password: str) -> str:
    r = httpx.post(url + "/v1/admin/login", auth=(username, password), timeout=20)
    assert r.status_code == 200, r.text
    token = r.json()["result"]["authtoken"]
    assert UUID.match(token), token
    return token


def jade_client(url: str, token: str | None) -> httpx.Client:
    return httpx.Client(base_url=url, auth=TokenAuth(token), timeout=20)


def check_envelope(r: httpx.Response) -> dict:
    """jade's wire format: {api_ver, statuscode = HTTP status, timestamp, result? | error{code, message}}."""
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["api_ver"] == "0.1", body
    assert body["statuscode"] == r.status_code, body
    assert TIMESTAMP.match(body["timestamp"]), body
    if r.status_code >= 400:
        assert set(body) == {"api_ver", "statuscode", "timestamp", "error"}, body
        assert body["error"]["code"] == r.status_code, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    else:
        assert "error" not in body, body
    return body


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json().get("result")


def listed(c: httpx.Client, path: str) -> list:
    result = ok(c.get(path))
    return result["list"] if isinstance(result, dict) else result


def find(c: httpx.Client, path: str, key: str, value: str, want: str = "uuid") -> str:
    for item in listed(c, path):
        if item.get(key) == value:
            return item[want]
    raise AssertionError(f"{path}: no item with {key}={value!r}")


# ---- the world: users, tokens, and one of each object ------------------------------------------
@dataclass
class World:
    clients: dict[str, httpx.Client]
    ids: dict[str, dict[str, str]]  # role -> placeholder values
    super: httpx.Client
    tag: str


def make_user(sup: httpx.Client, username: str, *, admin: bool = False) -> str:
    body = {"username": username, "password": "pw-" + username, "name": username}
    if admin:
        body["permissions"] = [{"permission": "admin"}, {"permission": "user"}]
    ok(sup.post("/v1/manager/users", json=body))
    return find(sup, "/v1/manager/users", "username", username)


def trunk_body(name: str) -> dict:
    """A trunk that never registers (IP_AUTH) at a host of its own."""
    return {"name": name, "auth_mode": "IP_AUTH", "protocol": "UDP", "hostname": f"{name}.example.com", "port": 5060}


FILES = {
    "pjsip": ("pjsip", "pjsip.conf"),
    "dialplan": ("dialplan", "extensions.conf"),
    "queue": ("queue", "queues.conf"),
    "park": ("park", "res_parking.conf"),
    "agent": ("agent", "agents.conf"),
}


def live_text(sup: httpx.Client, family: str) -> str:
    prefix, name = FILES[family]
    return ok(sup.get(f"/v1/admin/{prefix}/configurations/{name}"))["data"]


@pytest.fixture(scope="module")
def world(server, admin):
    tag = secrets.token_hex(3)
    a, b, adm = new_user(admin), new_user(admin), new_user(admin, category="Admin")
    tokens = {
        "anon": None,
        "a": jade_login(server.url, a["username"], a["password"]),
        "b": jade_login(server.url, b["username"], b["password"]),
        "admin": jade_login(server.url, adm["username"], adm["password"]),
        "super": jade_login(server.url, "admin", ADMIN_PASSWORD),
    }
    clients = {r: jade_client(server.url, t) for r, t in tokens.items()}
    sup = clients["super"]
    originals = {f: live_text(sup, f) for f in FILES}
    common: dict[str, str] = {"tag": tag, "A": ok(clients["a"].get("/v1/me/info"))["uuid"]}

    # PBX objects: an endpoint with auth and aor, an outbound registration, a queue with a member,
    # a parking lot, dialplan contexts and an adpma with one adp.
    ep = f"mx-{tag}"
    ok(
        sup.put(
            "/v1/admin/pjsip/configurations/pjsip.conf",
            json={
                "data": originals["pjsip"]
                + f"""
[{ep}]
type = endpoint
auth = {ep}
aors = {ep}
context = demo

[{ep}]
type = auth
auth_type = userpass
username = {ep}
password = secret-{tag}

[{ep}]
type = aor
max_contacts = 1

[{ep}-reg]
type = registration
server_uri = sip:sip.example.com:5070
client_uri = sip:u{tag}@sip.example.com:5070
outbound_auth = {ep}
"""
            },
        )
    )
    common.update(
        EP=ep,
        REG=f"{ep}-reg",
        ACCOUNT=f"u{tag}@sip.example.com:5070",
        Q=f"mxq-{tag}",
        LOT=f"mxlot-{tag}",
        SDP=f"mxsdp-{tag}",
        SDIAL=f"mxsdial-{tag}",
        AG=f"mxag-{tag}",
    )
    ok(sup.post("/v1/admin/agent/cfg_agents", json={"name": common["AG"], "data": {"fullname": "Matrix"}}))
    ok(
        sup.post(
            "/v1/admin/queue/cfg_queues",
            json={"name": common["Q"], "data": {"strategy": "ringall", "member": f"> PJSIP/{ep}"}},
        )
    )
    ok(sup.post("/v1/admin/park/cfg_parkinglots", json={"name": common["LOT"], "data": {"parkpos": "> 901-910"}}))
    ext = [{"exten": "> 100,1,NoOp(matrix)"}, {"same": "> n,Hangup()"}]
    ok(sup.post("/v1/admin/dialplan/sdps", json={"name": common["SDP"], "data": ext}))
    ok(sup.post("/v1/manager/sdialplans", json={"name": common["SDIAL"], "data": ext}))
    ok(sup.post("/v1/admin/dialplan/adpmas", json={"name": f"mx-{tag}", "detail": "matrix"}))
    common["ADPMA"] = find(sup, "/v1/admin/dialplan/adpmas", "name", f"mx-{tag}")
    ok(
        sup.post(
            "/v1/admin/dialplan/adps",
            json={"dpma_uuid": common["ADPMA"], "sequence": 1, "name": f"mx-{tag}", "command": "NoOp(matrix)"},
        )
    )
    common["ADP"] = find(sup, "/v1/admin/dialplan/adps", "name", f"mx-{tag}")

    common["TRUNK"] = f"mxtr-{tag}"
    ok(sup.post("/v1/manager/trunks", json=trunk_body(common["TRUNK"])))

    # users' things: a contact of A, A's buddies, A's chats (with a message)
    ok(
        sup.post(
            "/v1/admin/user/contacts",
            json={"user_uuid": common["A"], "type": "pjsip_endpoint", "target": ep, "name": f"mxc-{tag}"},
        )
    )
    common["CONTACT"] = find(sup, "/v1/admin/user/contacts", "name", f"mxc-{tag}")
    common["PERM_A"] = next(
        p["uuid"]
        for p in listed(sup, "/v1/admin/user/permissions")
        if p["user_uuid"] == common["A"] and p["permission"] == "user"
    )
    common["BT"] = make_user(sup, f"mxbt-{tag}")  # the buddy every role adds
    for key in ("BUDDY", "BUDDY_DEL"):
        target = make_user(sup, f"mx{key.lower()}-{tag}")
        ok(clients["a"].post("/v1/me/buddies", json={"uuid_user": target, "name": f"{key}-{tag}"}))
        try:
            common[key] = find(clients["a"], "/v1/me/buddies", "uuid_user", target)
        except AssertionError:  # the list failing is its own row's failure; keep the other rows going
            common[key] = "buddy-list-unreadable"
    for key in ("CHAT", "CHAT_DEL"):
        ok(clients["a"].post("/v1/me/chats", json={"name": f"{key}-{tag}", "detail": "matrix", "members": []}))
        common[key] = find(clients["a"], "/v1/me/chats", "name", f"{key}-{tag}")
    ok(clients["a"].post(f"/v1/me/chats/{common['CHAT']}/messages", json={"message": "hello"}))

    # what a write destroys or creates: one per admin role; refused roles aim at the admin's
    per_role: dict[str, dict[str, str]] = {}
    for role in ("admin", "super"):
        n = f"{tag}-{role}"
        mine = {
            "UNAME": f"mxnew-{n}",
            "UNAME2": f"mxmgr-{n}",
            "VICTIM": make_user(sup, f"mxv-{n}"),
            "VICTIM2": make_user(sup, f"mxv2-{n}"),
            "PROMOTE": make_user(sup, f"mxp-{n}"),
            "SDP_NEW": f"mxsdpn-{n}",
            "SDIAL_NEW": f"mxsdialn-{n}",
            "LOT_NEW": f"mxlotn-{n}",
            "Q_NEW": f"mxqn-{n}",
            "AG_NEW": f"mxagn-{n}",
            "ADPMA_NEW": f"mxn-{n}",
        }
        demoted = make_user(sup, f"mxd-{n}", admin=True)
        mine["DEMOTE"] = next(
            p["uuid"]
            for p in listed(sup, "/v1/admin/user/permissions")
            if p["user_uuid"] == demoted and p["permission"] == "admin"
        )
        ok(
            sup.post(
                "/v1/admin/user/contacts",
                json={"user_uuid": common["A"], "type": "sip_peer", "target": "x", "name": f"mxcd-{n}"},
            )
        )
        mine["CONTACT_DEL"] = find(sup, "/v1/admin/user/contacts", "name", f"mxcd-{n}")
        ok(sup.post("/v1/admin/dialplan/adpmas", json={"name": f"mxd-{n}"}))
        mine["ADPMA_DEL"] = find(sup, "/v1/admin/dialplan/adpmas", "name", f"mxd-{n}")
        ok(
            sup.post(
                "/v1/admin/dialplan/adps",
                json={"dpma_uuid": common["ADPMA"], "sequence": 2, "name": f"mxd-{n}", "command": "NoOp(delete me)"},
            )
        )
        mine["ADP_DEL"] = find(sup, "/v1/admin/dialplan/adps", "name", f"mxd-{n}")
        for key, path in (("SDP_DEL", "/v1/admin/dialplan/sdps"), ("SDIAL_DEL", "/v1/manager/sdialplans")):
            mine[key] = f"mx{key.lower()}-{n}"
            ok(sup.post(path, json={"name": mine[key], "data": ext}))
        for key in ("LOT_DEL", "LOT_DEL2"):
            mine[key] = f"mx{key.lower()}-{n}"
            ok(sup.post("/v1/admin/park/cfg_parkinglots", json={"name": mine[key], "data": {"parkpos": "> 911-920"}}))
        mine["TRUNK_NEW"], mine["TRUNK_DEL"] = f"mxtrn-{n}", f"mxtrd-{n}"
        ok(sup.post("/v1/manager/trunks", json=trunk_body(mine["TRUNK_DEL"])))
        mine["Q_DEL"] = f"mxqd-{n}"
        ok(sup.post("/v1/admin/queue/cfg_queues", json={"name": mine["Q_DEL"], "data": {"strategy": "linear"}}))
        mine["AG_DEL"] = f"mxagd-{n}"
        ok(sup.post("/v1/admin/agent/cfg_agents", json={"name": mine["AG_DEL"], "data": {"ackcall": "yes"}}))
        per_role[role] = mine
    ids = {role: {**common, **per_role.get(role, per_role["admin"])} for role in ROLES}
    w = World(clients, ids, sup, tag)
    yield w

    # undo: the files as they were, the adpmas (their adps go with them), the users made here
    for family, text in originals.items():
        prefix, name = FILES[family]
        sup.put(f"/v1/admin/{prefix}/configurations/{name}", json={"data": text})
    for m in listed(sup, "/v1/admin/dialplan/adpmas"):
        if (m["name"] or "").startswith("mx") and tag in (m["name"] or ""):
            sup.delete(f"/v1/admin/dialplan/adpmas/{m['uuid']}")
    for t in listed(sup, "/v1/manager/trunks"):
        if tag in t["name"]:
            sup.delete(f"/v1/manager/trunks/{t['name']}")
    for u in listed(sup, "/v1/admin/user/users"):
        if tag in u["username"]:
            sup.delete(f"/v1/admin/user/users/{u['uuid']}")
    for c in clients.values():
        c.close()


# ---- the matrix ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    method: str
    route: str  # as the OpenAPI document names it
    expected: tuple[int, ...]
    path: dict[str, str] = field(default_factory=dict)  # values of the route's {detail}/{item}
    body: Any = None  # JSON; strings "{KEY}" are filled from the ids; a callable gets the super client
    params: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        shown = self.route.format(**{k: v for k, v in self.path.items()}) if self.path else self.route
        return f"{self.method} {shown}"


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def same_text(family: str) -> Callable[[httpx.Client], dict]:
    """The live file as it is now (a write that changes nothing, but a write)."""
    return lambda sup: {"data": live_text(sup, family)}


def R(
    method: str, route: str, expected: tuple[int, ...], body: Any = None, params: dict | None = None, **path: str
) -> Row:
    return Row(method, route, expected, path, body, params or {})


V = "/v1"
D = "{detail}"
EXT = [{"exten": "> 200,1,NoOp(matrix)"}]
MATRIX = [
    # the caller's own record (any user) and users (admin)
    R("GET", f"{V}/admin/info", ANY),
    R("PUT", f"{V}/admin/info", ANY, body={}),
    R("GET", f"{V}/admin/user/users", ADMIN),
    R("POST", f"{V}/admin/user/users", ADMIN, body={"username": "{UNAME}", "password": "pw"}),
    R("GET", f"{V}/admin/user/users/{D}", ADMIN, detail="{A}"),
    R("PUT", f"{V}/admin/user/users/{D}", ADMIN, body={"name": "User A"}, detail="{A}"),
    R("DELETE", f"{V}/admin/user/users/{D}", ADMIN, detail="{VICTIM}"),
    R("GET", f"{V}/admin/user/users/{D}", admin_only(404), detail="00000000-0000-4000-8000-000000000000"),
    R("GET", f"{V}/manager/users", ADMIN),
    R(
        "POST",
        f"{V}/manager/users",
        ADMIN,
        body={"username": "{UNAME2}", "password": "pw", "context": "demo", "permissions": [{"permission": "user"}]},
    ),
    R("GET", f"{V}/manager/users/{D}", ADMIN, detail="{A}"),
    R("PUT", f"{V}/manager/users/{D}", ADMIN, body={"context": "demo"}, detail="{A}"),
    R("DELETE", f"{V}/manager/users/{D}", ADMIN, detail="{VICTIM2}"),
    R("GET", f"{V}/admin/user/permissions", ADMIN),
    R("POST", f"{V}/admin/user/permissions", ADMIN, body={"user_uuid": "{PROMOTE}", "permission": "admin"}),
    R("GET", f"{V}/admin/user/permissions/{D}", ADMIN, detail="{PERM_A}"),
    R("DELETE", f"{V}/admin/user/permissions/{D}", ADMIN, detail="{DEMOTE}"),
    R("DELETE", f"{V}/admin/user/permissions/{D}", admin_only(400), detail="{PERM_A}"),  # "user" stays
    R("GET", f"{V}/admin/user/contacts", ADMIN),
    R(
        "POST",
        f"{V}/admin/user/contacts",
        ADMIN,
        body={"user_uuid": "{A}", "type": "pjsip_endpoint", "target": "{EP}", "name": "mxcn-{tag}"},
    ),
    R("GET", f"{V}/admin/user/contacts/{D}", ADMIN, detail="{CONTACT}"),
    R("PUT", f"{V}/admin/user/contacts/{D}", ADMIN, body={"detail": "changed"}, detail="{CONTACT}"),
    R("DELETE", f"{V}/admin/user/contacts/{D}", ADMIN, detail="{CONTACT_DEL}"),
    # /me: any user, each on their own things
    R("GET", f"{V}/me/info", ANY),
    R("GET", f"{V}/me/contacts", ANY),
    R("GET", f"{V}/me/buddies", ANY),
    R("POST", f"{V}/me/buddies", ANY, body={"uuid_user": "{BT}"}),
    R("GET", f"{V}/me/buddies/{D}", OWN, detail="{BUDDY}"),
    R("PUT", f"{V}/me/buddies/{D}", OWN, body={"detail": "changed"}, detail="{BUDDY}"),
    R("DELETE", f"{V}/me/buddies/{D}", OWN, detail="{BUDDY_DEL}"),
    R("GET", f"{V}/me/chats", ANY),
    R("POST", f"{V}/me/chats", ANY, body={"name": "mxchat-{tag}", "detail": "d", "members": []}),
    R("GET", f"{V}/me/chats/{D}", OWN, detail="{CHAT}"),
    R("PUT", f"{V}/me/chats/{D}", OWN, body={"detail": "changed"}, detail="{CHAT}"),
    R("DELETE", f"{V}/me/chats/{D}", OWN, detail="{CHAT_DEL}"),
    R("GET", f"{V}/me/chats/{D}/messages", OWN, detail="{CHAT}"),
    R("POST", f"{V}/me/chats/{D}/messages", OWN, body={"message": "hi"}, detail="{CHAT}"),
    # dialplan
    R("GET", f"{V}/admin/dialplan/configurations", ADMIN),
    R("GET", f"{V}/admin/dialplan/configurations/{D}", ADMIN, detail="extensions.conf"),
    R("PUT", f"{V}/admin/dialplan/configurations/{D}", ADMIN, body=same_text("dialplan"), detail="extensions.conf"),
    R("DELETE", f"{V}/admin/dialplan/configurations/{D}", admin_only(400), detail="extensions.conf"),
    R("GET", f"{V}/admin/dialplan/adpmas", ADMIN),
    R("POST", f"{V}/admin/dialplan/adpmas", ADMIN, body={"name": "{ADPMA_NEW}", "detail": "d"}),
    R("GET", f"{V}/admin/dialplan/adpmas/{D}", ADMIN, detail="{ADPMA}"),
    R("PUT", f"{V}/admin/dialplan/adpmas/{D}", ADMIN, body={"detail": "changed"}, detail="{ADPMA}"),
    R("DELETE", f"{V}/admin/dialplan/adpmas/{D}", ADMIN, detail="{ADPMA_DEL}"),
    R("GET", f"{V}/admin/dialplan/adps", ADMIN),
    R(
        "POST",
        f"{V}/admin/dialplan/adps",
        ADMIN,
        body={"dpma_uuid": "{ADPMA}", "sequence": 3, "name": "mxadpn-{tag}", "command": "NoOp(new)"},
    ),
    R("GET", f"{V}/admin/dialplan/adps/{D}", ADMIN, detail="{ADP}"),
    R("PUT", f"{V}/admin/dialplan/adps/{D}", ADMIN, body={"detail": "changed"}, detail="{ADP}"),
    R("DELETE", f"{V}/admin/dialplan/adps/{D}", ADMIN, detail="{ADP_DEL}"),
    R("GET", f"{V}/admin/dialplan/sdps", ADMIN),
    R("POST", f"{V}/admin/dialplan/sdps", ADMIN, body={"name": "{SDP_NEW}", "data": EXT}),
    R("GET", f"{V}/admin/dialplan/sdps/{D}", ADMIN, detail="{SDP}"),
    R("PUT", f"{V}/admin/dialplan/sdps/{D}", ADMIN, body={"data": EXT}, detail="{SDP}"),
    R("DELETE", f"{V}/admin/dialplan/sdps/{D}", ADMIN, detail="{SDP_DEL}"),
    R("GET", f"{V}/manager/sdialplans", ADMIN),
    R("POST", f"{V}/manager/sdialplans", ADMIN, body={"name": "{SDIAL_NEW}", "data": EXT}),
    R("GET", f"{V}/manager/sdialplans/{D}", ADMIN, detail="{SDIAL}"),
    R("PUT", f"{V}/manager/sdialplans/{D}", ADMIN, body={"data": EXT}, detail="{SDIAL}"),
    R("DELETE", f"{V}/manager/sdialplans/{D}", ADMIN, detail="{SDIAL_DEL}"),
    # trunks
    R("GET", f"{V}/manager/trunks", ADMIN),
    R(
        "POST",
        f"{V}/manager/trunks",
        ADMIN,
        body={
            "name": "{TRUNK_NEW}",
            "auth_mode": "IP_AUTH",
            "protocol": "UDP",
            "hostname": "{TRUNK_NEW}.example.com",
            "port": 5060,
        },
    ),
    R("GET", f"{V}/manager/trunks/{D}", ADMIN, detail="{TRUNK}"),
    R("PUT", f"{V}/manager/trunks/{D}", ADMIN, body={"reregister_interval": 120}, detail="{TRUNK}"),
    R("DELETE", f"{V}/manager/trunks/{D}", ADMIN, detail="{TRUNK_DEL}"),
    R("GET", f"{V}/manager/trunks/{D}", admin_only(404), detail="mx-no-such-trunk"),
    # parking
    R("GET", f"{V}/admin/park/configurations", ADMIN),
    R("GET", f"{V}/admin/park/configurations/{D}", ADMIN, detail="res_parking.conf"),
    R("PUT", f"{V}/admin/park/configurations/{D}", ADMIN, body=same_text("park"), detail="res_parking.conf"),
    R("DELETE", f"{V}/admin/park/configurations/{D}", admin_only(400), detail="res_parking.conf"),
    R("GET", f"{V}/admin/park/cfg_parkinglots", ADMIN),
    R("POST", f"{V}/admin/park/cfg_parkinglots", ADMIN, body={"name": "{LOT_NEW}", "data": {"parkpos": "> 921-930"}}),
    R("GET", f"{V}/admin/park/cfg_parkinglots/{D}", ADMIN, detail="{LOT}"),
    R("PUT", f"{V}/admin/park/cfg_parkinglots/{D}", ADMIN, body={"data": {"parkpos": "> 901-912"}}, detail="{LOT}"),
    R("DELETE", f"{V}/admin/park/cfg_parkinglots/{D}", ADMIN, detail="{LOT_DEL}"),
    R("GET", f"{V}/admin/park/parkinglots", ADMIN),
    R("GET", f"{V}/admin/park/parkinglots/{D}", ADMIN, detail="{LOT}"),
    R("PUT", f"{V}/admin/park/parkinglots/{D}", ADMIN, body={"data": {"parkpos": "> 901-915"}}, detail="{LOT}"),
    R("DELETE", f"{V}/admin/park/parkinglots/{D}", ADMIN, detail="{LOT_DEL2}"),
    R("GET", f"{V}/admin/park/parkedcalls", ADMIN),
    R("GET", f"{V}/admin/park/parkedcalls/{D}", admin_only(404), detail="no-such-call"),
    R("DELETE", f"{V}/admin/park/parkedcalls/{D}", admin_only(404), detail="no-such-call"),
    # queues
    R("GET", f"{V}/admin/queue/configurations", ADMIN),
    R("GET", f"{V}/admin/queue/configurations/{D}", ADMIN, detail="queues.conf"),
    R("PUT", f"{V}/admin/queue/configurations/{D}", ADMIN, body=same_text("queue"), detail="queues.conf"),
    R("DELETE", f"{V}/admin/queue/configurations/{D}", admin_only(400), detail="queues.conf"),
    R("GET", f"{V}/admin/queue/cfg_queues", ADMIN),
    R("POST", f"{V}/admin/queue/cfg_queues", ADMIN, body={"name": "{Q_NEW}", "data": {"strategy": "rrmemory"}}),
    R("GET", f"{V}/admin/queue/cfg_queues/{D}", ADMIN, detail="{Q}"),
    R(
        "PUT",
        f"{V}/admin/queue/cfg_queues/{D}",
        ADMIN,
        body={"data": {"strategy": "ringall", "member": "> PJSIP/{EP}"}},
        detail="{Q}",
    ),
    R("DELETE", f"{V}/admin/queue/cfg_queues/{D}", ADMIN, detail="{Q_DEL}"),
    # agents.conf (Switchboard's addition)
    R("GET", f"{V}/admin/agent/configurations", ADMIN),
    R("GET", f"{V}/admin/agent/configurations/{D}", ADMIN, detail="agents.conf"),
    R("PUT", f"{V}/admin/agent/configurations/{D}", ADMIN, body=same_text("agent"), detail="agents.conf"),
    R("DELETE", f"{V}/admin/agent/configurations/{D}", admin_only(400), detail="agents.conf"),
    R("GET", f"{V}/admin/agent/cfg_agents", ADMIN),
    R("POST", f"{V}/admin/agent/cfg_agents", ADMIN, body={"name": "{AG_NEW}", "data": {"fullname": "New"}}),
    R("GET", f"{V}/admin/agent/cfg_agents/{D}", ADMIN, detail="{AG}"),
    R("PUT", f"{V}/admin/agent/cfg_agents/{D}", ADMIN, body={"data": {"fullname": "Matrix 2"}}, detail="{AG}"),
    R("DELETE", f"{V}/admin/agent/cfg_agents/{D}", ADMIN, detail="{AG_DEL}"),
    R("GET", f"{V}/admin/queue/queues", ADMIN),
    R("GET", f"{V}/admin/queue/queues/{D}", ADMIN, detail="{Q}"),
    R("GET", f"{V}/admin/queue/members", ADMIN),
    R("GET", f"{V}/admin/queue/members/{D}", ADMIN, params={"queue_name": "{Q}"}, detail="PJSIP/{EP}"),
    R("GET", f"{V}/admin/queue/entries", ADMIN),
    R("GET", f"{V}/admin/queue/entries/{D}", admin_only(404), detail="no-such-entry"),
    # pjsip
    R("GET", f"{V}/admin/pjsip/configurations", ADMIN),
    R("GET", f"{V}/admin/pjsip/configurations/{D}", ADMIN, detail="pjsip.conf"),
    R("PUT", f"{V}/admin/pjsip/configurations/{D}", ADMIN, body=same_text("pjsip"), detail="pjsip.conf"),
    R("DELETE", f"{V}/admin/pjsip/configurations/{D}", admin_only(400), detail="pjsip.conf"),
    R("GET", f"{V}/admin/pjsip/endpoints", ADMIN),
    R("GET", f"{V}/admin/pjsip/endpoints/{D}", ADMIN, detail="{EP}"),
    R("GET", f"{V}/admin/pjsip/aors", ADMIN),
    R("GET", f"{V}/admin/pjsip/aors/{D}", ADMIN, detail="{EP}"),
    R("GET", f"{V}/admin/pjsip/auths", ADMIN),
    R("GET", f"{V}/admin/pjsip/auths/{D}", ADMIN, detail="{EP}"),
    R("GET", f"{V}/admin/pjsip/registration_outbounds", ADMIN),
    R("GET", f"{V}/admin/pjsip/registration_outbounds/{D}", ADMIN, detail="{REG}"),
    R("GET", f"{V}/admin/pjsip/contacts", ADMIN),
    R("GET", f"{V}/admin/pjsip/contacts/{D}", admin_only(404), detail="{EP};@nosuchcontact"),
    # core (no module is unloaded here: loading a loaded one and reloading are harmless)
    R("GET", f"{V}/admin/core/systems", ADMIN),
    R("GET", f"{V}/admin/core/systems/{D}", ADMIN, detail="1"),
    R("GET", f"{V}/admin/core/modules", ADMIN),
    R("GET", f"{V}/admin/core/modules/{D}", ADMIN, detail="app_queue"),
    R("POST", f"{V}/admin/core/modules/{D}", ADMIN, detail="app_queue"),
    R("PUT", f"{V}/admin/core/modules/{D}", ADMIN, detail="app_queue"),
    R("DELETE", f"{V}/admin/core/modules/{D}", admin_only(404), detail="mod_no_such_module"),
    R("GET", f"{V}/admin/core/channels", ADMIN),
    R("GET", f"{V}/admin/core/channels/{D}", admin_only(404), detail="no-such-channel"),
    R("DELETE", f"{V}/admin/core/channels/{D}", admin_only(404), detail="no-such-channel"),
    # originate: refused before the body is read; an admin's unknown endpoint is a 404
    R(
        "POST",
        f"{V}/admin/core/channels",
        admin_only(404),
        body={"endpoint": "PJSIP/mx-no-such", "context": "c", "exten": "s"},
    ),
    # CDRs (Switchboard's addition)
    R("GET", f"{V}/admin/cdr/cdrs", ADMIN),
    R("GET", f"{V}/admin/cdr/cdrs/{{uniqueid}}", admin_only(404), uniqueid="1513946896.7"),
    # live views
    R("GET", f"{V}/agents", ADMIN),
    R("GET", f"{V}/agents/", admin_only(404), body={"id": "no-such-agent"}),
    R("GET", f"{V}/agents/{{item}}", admin_only(404), item="no-such-agent"),
    R("GET", f"{V}/device_states", ADMIN),
    R("GET", f"{V}/device_states/", ADMIN, body={"device": "PJSIP/{EP}"}),
    R("GET", f"{V}/device_states/{{item}}", ADMIN, item="PJSIP/{EP}"),
    R("GET", f"{V}/peers", ADMIN),
    R("GET", f"{V}/peers/", ADMIN, body={"peer": "PJSIP/{EP}"}),
    R("GET", f"{V}/peers/{{item}}", ADMIN, item="PJSIP/{EP}"),
    R("GET", f"{V}/registries", ADMIN),
    R("GET", f"{V}/registries/", ADMIN, body={"account": "{ACCOUNT}"}),
    R("GET", f"{V}/registries/{{item}}", ADMIN, item="{ACCOUNT}"),
    # authentication bans (not in jade's document; admin)
    R("GET", f"{V}/admin/security/bans", ADMIN),
    R("DELETE", f"{V}/admin/security/bans", ADMIN, params={"source": "192.0.2.250"}),
]
# tested on their own below (they authenticate differently)
SPECIAL = {("POST", f"{V}/admin/login"), ("DELETE", f"{V}/admin/login")}


def run_row(world: World, row: Row, role: str) -> httpx.Response:
    ids = world.ids[role]
    url = row.route.format(**{k: fill(v, ids) for k, v in row.path.items()}) if row.path else row.route
    body = row.body(world.super) if callable(row.body) else fill(row.body, ids)
    return world.clients[role].request(row.method, url, json=body, params=fill(row.params, ids) or None)


@pytest.mark.parametrize("row", MATRIX, ids=[r.id for r in MATRIX])
def test_matrix(world, row):
    responses = {role: run_row(world, row, role) for role in ROLES}
    got = tuple(r.status_code for r in responses.values())
    assert got == row.expected, {role: (r.status_code, r.text[:200]) for role, r in responses.items()}
    for r in responses.values():
        check_envelope(r)


def test_every_jade_route_is_in_the_matrix(server):
    """The matrix lists every jade operation the server documents (and nothing it dropped)."""
    doc = httpx.get(server.url + "/openapi.json", timeout=20).json()
    served = {
        (m.upper(), p)
        for p, ops in doc["paths"].items()
        if p.startswith(V + "/")
        for m in ops
        if m in ("get", "post", "put", "delete", "patch")
    }
    covered = {(r.method, r.route) for r in MATRIX} | SPECIAL
    assert served - covered == set(), "jade routes missing from the matrix"
    assert covered - served == set(), "matrix rows for routes the server does not serve"


# ---- login, logout, token life -----------------------------------------------------------------------
def test_login(server, world):
    """Every role logged in already (the world); here: what login refuses."""
    r = httpx.post(server.url + "/v1/admin/login", timeout=20)
    assert r.status_code == 401
    check_envelope(r)
    r = httpx.post(server.url + "/v1/admin/login", auth=("admin", "wrong-password"), timeout=20)
    assert r.status_code == 401
    check_envelope(r)
    r = httpx.post(server.url + "/v1/admin/login", auth=("admin", ADMIN_PASSWORD), timeout=20)
    body = check_envelope(r)
    assert r.status_code == 200 and UUID.match(body["result"]["authtoken"])
    # a token in the query is not a login: login takes HTTP Basic
    r = world.clients["super"].post("/v1/admin/login")
    assert r.status_code == 401
    check_envelope(r)


def test_logout_revokes_the_token(server, admin):
    u = new_user(admin)
    token = jade_login(server.url, u["username"], u["password"])
    other = jade_login(server.url, u["username"], u["password"])
    with jade_client(server.url, token) as c, jade_client(server.url, other) as c2:
        assert c.get("/v1/me/info").status_code == 200
        r = c.delete("/v1/admin/login")
        assert r.status_code == 200, r.text
        check_envelope(r)
        for path in ("/v1/me/info", "/v1/admin/info", "/me/info"):
            r = c.get(path)
            assert r.status_code == 401, (path, r.text)
            check_envelope(r)
        r = c.delete("/v1/admin/login")  # already revoked
        assert r.status_code == 401
        check_envelope(r)
        assert c2.get("/v1/me/info").status_code == 200  # only that token went
    r = httpx.delete(server.url + "/v1/admin/login", timeout=20)  # no token at all
    assert r.status_code == 401
    check_envelope(r)


def test_bare_routes_and_header_token(server, world):
    token = world.clients["a"].auth.token
    sup = world.clients["super"]
    v1 = world.clients["a"].get("/v1/admin/info")
    bare = world.clients["a"].get("/admin/info")
    assert bare.status_code == 200, bare.text
    assert check_envelope(bare)["result"] == check_envelope(v1)["result"]
    for path in ("/me/info", "/me/chats", "/v1/me/info"):
        r = httpx.get(server.url + path, headers={"X-Auth-Token": token}, timeout=20)
        assert r.status_code == 200, (path, r.text)
    # bare admin routes keep the admin rule
    assert world.clients["a"].get("/admin/user/users").status_code == 403
    assert sup.get("/admin/user/users").status_code == 200
    assert sup.get("/peers").status_code == 200
    r = httpx.get(server.url + "/admin/core/systems", timeout=20)
    assert r.status_code == 401
    check_envelope(r)
    # a token nobody issued
    for path in ("/v1/me/info", "/v1/admin/info", "/v1/admin/core/modules"):
        r = httpx.get(server.url + path, params={"authtoken": "00000000-0000-4000-8000-000000000000"}, timeout=20)
        assert r.status_code == 401, (path, r.text)
        check_envelope(r)
        r = httpx.get(server.url + path, headers={"X-Auth-Token": "not-a-token"}, timeout=20)
        assert r.status_code == 401, (path, r.text)


def test_token_of_a_cancelled_user_stops_working(server, world):
    sup = world.super
    name = f"mxcancel-{world.tag}"
    uuid = make_user(sup, name)
    token = jade_login(server.url, name, "pw-" + name)
    with jade_client(server.url, token) as c:
        assert ok(c.get("/v1/me/info"))["uuid"] == uuid
        ok(sup.delete(f"/v1/admin/user/users/{uuid}"))
        for path in ("/v1/me/info", "/v1/admin/info", "/me/chats"):
            r = c.get(path)
            assert r.status_code == 401, (path, r.text)
            check_envelope(r)
    r = httpx.post(server.url + "/v1/admin/login", auth=(name, "pw-" + name), timeout=20)
    assert r.status_code == 401
    check_envelope(r)


def test_promotion_and_demotion_take_effect_on_the_same_token(server, world):
    sup = world.super
    name = f"mxpromo-{world.tag}"
    uuid = make_user(sup, name)
    with jade_client(server.url, jade_login(server.url, name, "pw-" + name)) as c:
        assert c.get("/v1/admin/core/systems").status_code == 403
        ok(sup.post("/v1/admin/user/permissions", json={"user_uuid": uuid, "permission": "admin"}))
        assert c.get("/v1/admin/core/systems").status_code == 200
        perm = next(
            p["uuid"]
            for p in listed(sup, "/v1/admin/user/permissions")
            if p["user_uuid"] == uuid and p["permission"] == "admin"
        )
        ok(sup.delete(f"/v1/admin/user/permissions/{perm}"))
        r = c.get("/v1/admin/core/systems")
        assert r.status_code == 403
        check_envelope(r)
