"""What jade acknowledged is there after SIGKILL and a new start, and is what the engine loads:
configuration files (with their backups), sections, the async dialplan, users, chats, tokens, and
the module registry's choices (an unloaded module stays unloaded)."""

from __future__ import annotations

import signal

from tests.conftest import ADMIN_PASSWORD
from tests.e2e.test_jade_authz_matrix import check_envelope, jade_client, jade_login, ok

PJSIP = """; restart test
[transport-udp]
type = transport
protocol = udp
bind = 0.0.0.0

[rs-ep]
type = endpoint
auth = rs-auth
aors = rs-ep
context = restart-ctx
callerid = Restart <100>

[rs-auth]
type = auth
auth_type = userpass
username = rs-user
password = rs-secret

[rs-ep]
type = aor
max_contacts = 3
"""
MASK = "********"
EXT = [{"exten": "> 300,1,NoOp(restart)"}, {"same": "> n,Hangup()"}]
FAMILIES = {
    "pjsip": "/v1/admin/pjsip/configurations",
    "dialplan": "/v1/admin/dialplan/configurations",
    "queue": "/v1/admin/queue/configurations",
    "park": "/v1/admin/park/configurations",
}


def listing(c, path: str) -> list:
    result = ok(c.get(path))
    return result["list"] if isinstance(result, dict) else result


def snapshot(c) -> dict:
    """Everything the test wrote, as the API shows it (engine views that app_queue's state
    does not change)."""
    return {
        "files": {f: listing(c, p) for f, p in FAMILIES.items()},
        "endpoint": ok(c.get("/v1/admin/pjsip/endpoints/rs-ep")),
        "aor": ok(c.get("/v1/admin/pjsip/aors/rs-ep")),
        "auth": ok(c.get("/v1/admin/pjsip/auths/rs-auth")),
        "peer": ok(c.get("/v1/peers/PJSIP/rs-ep")),
        "cfg_queue": ok(c.get("/v1/admin/queue/cfg_queues/rq")),
        "cfg_lot": ok(c.get("/v1/admin/park/cfg_parkinglots/rlot")),
        "lot": ok(c.get("/v1/admin/park/parkinglots/rlot")),
        "sdp": ok(c.get("/v1/admin/dialplan/sdps/rctx")),
        "adpmas": listing(c, "/v1/admin/dialplan/adpmas"),
        "adps": listing(c, "/v1/admin/dialplan/adps"),
        "users": sorted(listing(c, "/v1/manager/users"), key=lambda u: u["username"]),
        "modules": {m["name"]: m["load"] for m in listing(c, "/v1/admin/core/modules")},
    }


def without_times(obj):
    """The engine stamps its views with the load instant, which a restart renews."""
    if isinstance(obj, list):
        return [without_times(x) for x in obj]
    if isinstance(obj, dict):
        return {k: without_times(v) for k, v in obj.items() if k != "tm_update" or not isinstance(v, str)}
    return obj


def test_jade_writes_and_module_state_survive_sigkill(fresh_server):
    srv = fresh_server.start()
    with jade_client(srv.url, jade_login(srv.url, "admin", ADMIN_PASSWORD)) as c:
        super_uuid = ok(c.get("/v1/me/info"))["uuid"]
        ok(c.put("/v1/admin/pjsip/configurations/pjsip.conf", json={"data": PJSIP}))
        ok(
            c.post(
                "/v1/admin/queue/cfg_queues",
                json={"name": "rq", "data": {"strategy": "linear", "maxlen": "7", "member": "> PJSIP/rs-ep,2"}},
            )
        )
        ok(
            c.post(
                "/v1/admin/park/cfg_parkinglots",
                json={"name": "rlot", "data": {"parkpos": "> 801-809", "parkingtime": "> 30"}},
            )
        )
        ok(c.post("/v1/admin/dialplan/sdps", json={"name": "rctx", "data": EXT}))
        ok(c.post("/v1/admin/dialplan/adpmas", json={"name": "rdpma", "detail": "restart"}))
        dpma = next(m["uuid"] for m in listing(c, "/v1/admin/dialplan/adpmas") if m["name"] == "rdpma")
        ok(
            c.post(
                "/v1/admin/dialplan/adps",
                json={"dpma_uuid": dpma, "sequence": 1, "name": "radp", "command": "Dial(PJSIP/rs-ep)"},
            )
        )
        ok(c.post("/v1/admin/user/users", json={"username": "ruser", "password": "rpw", "name": "Restart User"}))
        user_token = jade_login(srv.url, "ruser", "rpw")
        with jade_client(srv.url, user_token) as u:
            ok(u.post("/v1/me/chats", json={"name": "rchat", "detail": "kept", "members": [super_uuid]}))
            chat = next(x["uuid"] for x in listing(u, "/v1/me/chats") if x["name"] == "rchat")
            ok(u.post(f"/v1/me/chats/{chat}/messages", json={"message": "before the crash"}))
            messages = ok(u.get(f"/v1/me/chats/{chat}/messages"))
            chats = listing(u, "/v1/me/chats")
        # each write left the previous text as a backup
        assert all(len(files) >= 2 for files in listing_files(c).values()), listing_files(c)

        assert [q["name"] for q in listing(c, "/v1/admin/queue/queues")] == ["rq"]
        r = c.delete("/v1/admin/core/modules/app_queue")
        assert r.status_code == 200, r.text
        check_envelope(r)
        assert listing(c, "/v1/admin/queue/queues") == []
        before = snapshot(c)
        assert before["modules"]["app_queue"] == "Not Running"

    srv.stop(signal.SIGKILL)
    srv.start()

    with jade_client(srv.url, jade_login(srv.url, "admin", ADMIN_PASSWORD)) as c:
        after = snapshot(c)
        assert after["files"] == before["files"]  # the live files and every backup, text for text
        live = next(f for f in after["files"]["pjsip"] if f["name"] == "pjsip.conf")["data"]
        assert live.replace("rs-secret", MASK) == PJSIP.replace("rs-secret", MASK)  # secrets may show masked
        assert without_times(after) == without_times(before)
        # what the engine loaded from them
        ep = after["endpoint"]
        assert (ep["object_name"], ep["context"], ep["auth"], ep["aors"]) == (
            "rs-ep",
            "restart-ctx",
            "rs-auth",
            "rs-ep",
        )
        assert after["aor"]["max_contacts"] == 3
        assert after["auth"]["username"] == "rs-user" and after["auth"]["password"] == MASK
        assert (after["lot"]["start_space"], after["lot"]["stop_space"], after["lot"]["timeout"]) == ("801", "809", 30)
        assert after["sdp"] == {"data": EXT, "name": "rctx"}
        assert [(a["name"], a["command"], a["dpma_uuid"]) for a in after["adps"]] == [
            ("radp", "Dial(PJSIP/rs-ep)", dpma)
        ]
        assert "ruser" in [u["username"] for u in after["users"]]

        # app_queue is still unloaded: no queue until it is loaded again
        assert after["modules"]["app_queue"] == "Not Running"
        assert [n for n, load in after["modules"].items() if load != "Running"] == ["app_queue"]
        assert listing(c, "/v1/admin/queue/queues") == []
        assert listing(c, "/v1/admin/queue/members") == []
        assert after["cfg_queue"]["data"] == {"maxlen": "7", "member": "> PJSIP/rs-ep,2", "strategy": "linear"}
        ok(c.post("/v1/admin/core/modules/app_queue"))
        assert ok(c.get("/v1/admin/core/modules/app_queue"))["load"] == "Running"
        queues = listing(c, "/v1/admin/queue/queues")
        assert [(q["name"], q["strategy"], q["max"]) for q in queues] == [("rq", "linear", 7)]
        members = listing(c, "/v1/admin/queue/members")
        assert [(m["queue_name"], m["location"], m["penalty"]) for m in members] == [("rq", "PJSIP/rs-ep", 2)]

        # the chat, seen by its other member
        super_chat = next(x for x in listing(c, "/v1/me/chats") if x["name"] == "rchat")
        assert ok(c.get(f"/v1/me/chats/{super_chat['uuid']}/messages"))[0]["message"] == {"message": "before the crash"}

    # the user's token from before the crash still works, and so does the password
    with jade_client(srv.url, user_token) as u:
        assert listing(u, "/v1/me/chats") == chats
        assert ok(u.get(f"/v1/me/chats/{chat}/messages")) == messages
    jade_login(srv.url, "ruser", "rpw")
    assert "Traceback" not in srv.log(), srv.log()[-4000:]


def listing_files(c) -> dict[str, list[str]]:
    return {f: [x["name"] for x in listing(c, p)] for f, p in FAMILIES.items()}


def test_a_module_loaded_again_stays_loaded_after_sigkill(fresh_server):
    srv = fresh_server.start()
    with jade_client(srv.url, jade_login(srv.url, "admin", ADMIN_PASSWORD)) as c:
        ok(c.post("/v1/admin/park/cfg_parkinglots", json={"name": "lot2", "data": {"parkpos": "> 851-852"}}))
        ok(c.delete("/v1/admin/core/modules/res_parking"))
        ok(c.delete("/v1/admin/core/modules/chan_pjsip"))
        ok(c.post("/v1/admin/core/modules/chan_pjsip"))
    srv.stop(signal.SIGKILL)
    srv.start()
    with jade_client(srv.url, jade_login(srv.url, "admin", ADMIN_PASSWORD)) as c:
        loads = {m["name"]: m["load"] for m in listing(c, "/v1/admin/core/modules")}
        assert loads["res_parking"] == "Not Running" and loads["chan_pjsip"] == "Running", loads
        assert listing(c, "/v1/admin/park/parkinglots") == []
        ok(c.post("/v1/admin/core/modules/res_parking"))
        assert "lot2" in [lot["name"] for lot in listing(c, "/v1/admin/park/parkinglots")]
