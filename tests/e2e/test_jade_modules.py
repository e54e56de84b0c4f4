"""jade's module registry on a server of its own: list/show shapes, unknown modules, and what
loading, unloading and reloading do to the engine for real (SIP answers, the jade views)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.e2e.test_jade_authz_matrix import TIMESTAMP, check_envelope, jade_client, jade_login, ok

MODULES = {
    "res_pjsip",
    "chan_pjsip",
    "res_pjsip_registrar",
    "res_pjsip_outbound_registration",
    "pbx_config",
    "app_queue",
    "res_parking",
    "app_agent_pool",
}

PJSIP = """
[transport-udp]
type = transport
protocol = udp
bind = 0.0.0.0

[mod-ep]
type = endpoint
auth = mod-ep
aors = mod-ep
context = demo

[mod-ep]
type = auth
auth_type = userpass
username = mod-ep
password = mod-secret

[mod-ep]
type = aor
max_contacts = 2
"""


@pytest.fixture
def jade(fresh_server):
    srv = fresh_server.start()
    with jade_client(srv.url, jade_login(srv.url, "admin", ADMIN_PASSWORD)) as c:
        yield srv, c


def sip_options(port: int) -> str:
    """One SIP OPTIONS over UDP; the status line of the answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
        branch = uuid.uuid4().hex
        s.sendto(
            (
                f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{branch}\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=mod\r\nTo: <sip:ping@127.0.0.1>\r\n"
                f"Call-ID: {branch}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        data, _ = s.recvfrom(65535)
    text = data.decode(errors="replace")
    assert f"branch=z9hG4bK{branch}" in text and "CSeq: 1 OPTIONS" in text, text
    return text.split("\r\n", 1)[0]


def sipsak_status(port: int) -> str | None:
    """sipsak's view of the same (None when sipsak is not installed)."""
    if shutil.which("sipsak") is None:
        return None
    out = subprocess.run(
        ["sipsak", "-vv", "-s", f"sip:ping@127.0.0.1:{port}"], capture_output=True, text=True, timeout=20
    )
    return next((line.strip() for line in out.stdout.splitlines() if line.startswith("SIP/2.0 ")), out.stdout)


def module(c: httpx.Client, name: str) -> dict:
    return ok(c.get(f"/v1/admin/core/modules/{name}"))


def names(c: httpx.Client, path: str, key: str = "name") -> list[str]:
    return [x[key] for x in ok(c.get(path))["list"]]


def test_module_list_and_show_shapes(jade):
    _, c = jade
    r = c.get("/v1/admin/core/modules")
    listed = check_envelope(r)["result"]["list"]
    assert {m["name"] for m in listed} == MODULES
    for m in listed:
        assert {"load", "name", "size", "tm_update"} <= set(m), m
        assert m["load"] == "Running", m
        assert isinstance(m["size"], int) and not isinstance(m["size"], bool) and m["size"] > 0, m
        assert TIMESTAMP.match(m["tm_update"]), m
        shown = check_envelope(c.get(f"/v1/admin/core/modules/{m['name']}"))["result"]
        assert shown == m
    # bare route too
    assert ok(c.get("/admin/core/modules/app_queue"))["name"] == "app_queue"


def test_unknown_module_is_404(jade):
    _, c = jade
    for method in ("GET", "POST", "PUT", "DELETE"):
        r = c.request(method, "/v1/admin/core/modules/app_nonexistent")
        assert r.status_code == 404, (method, r.text)
        assert check_envelope(r)["error"]["code"] == 404
    assert {m["name"] for m in ok(c.get("/v1/admin/core/modules"))["list"]} == MODULES  # nothing was added


def test_unloading_res_pjsip_makes_sip_answer_503(jade):
    srv, c = jade
    assert sip_options(srv.sip_port) == "SIP/2.0 200 OK"
    r = c.delete("/v1/admin/core/modules/res_pjsip")
    assert r.status_code == 200, r.text
    check_envelope(r)
    assert module(c, "res_pjsip")["load"] == "Not Running"
    assert sip_options(srv.sip_port).startswith("SIP/2.0 503")
    if (status := sipsak_status(srv.sip_port)) is not None:
        assert status.startswith("SIP/2.0 503"), status
    r = c.post("/v1/admin/core/modules/res_pjsip")
    assert r.status_code == 200, r.text
    check_envelope(r)
    assert module(c, "res_pjsip")["load"] == "Running"
    assert sip_options(srv.sip_port) == "SIP/2.0 200 OK"
    if (status := sipsak_status(srv.sip_port)) is not None:
        assert status == "SIP/2.0 200 OK", status


def test_unloading_a_module_empties_its_views_and_loading_brings_them_back(jade):
    _, c = jade
    ok(c.put("/v1/admin/pjsip/configurations/pjsip.conf", json={"data": PJSIP}))
    ok(c.post("/v1/admin/queue/cfg_queues", json={"name": "modq", "data": {"member": "> PJSIP/mod-ep"}}))
    ok(c.post("/v1/admin/park/cfg_parkinglots", json={"name": "modlot", "data": {"parkpos": "> 801-805"}}))
    assert names(c, "/v1/admin/queue/queues") == ["modq"]
    assert [m["queue_name"] for m in ok(c.get("/v1/admin/queue/members"))["list"]] == ["modq"]
    assert "modlot" in names(c, "/v1/admin/park/parkinglots")
    assert names(c, "/v1/admin/pjsip/endpoints", "object_name") == ["mod-ep"]
    assert names(c, "/v1/peers", "peer") == ["PJSIP/mod-ep"]

    ok(c.delete("/v1/admin/core/modules/app_queue"))
    assert module(c, "app_queue")["load"] == "Not Running"
    assert names(c, "/v1/admin/queue/queues") == []
    assert ok(c.get("/v1/admin/queue/members"))["list"] == []
    assert c.get("/v1/admin/queue/queues/modq").status_code == 404
    assert names(c, "/v1/admin/queue/cfg_queues") == ["modq"]  # the file is still there
    ok(c.post("/v1/admin/core/modules/app_queue"))
    assert names(c, "/v1/admin/queue/queues") == ["modq"]
    assert ok(c.get("/v1/admin/queue/queues/modq"))["name"] == "modq"

    ok(c.delete("/v1/admin/core/modules/res_parking"))
    assert module(c, "res_parking")["load"] == "Not Running"
    assert ok(c.get("/v1/admin/park/parkinglots"))["list"] == []
    assert c.get("/v1/admin/park/parkinglots/modlot").status_code == 404
    ok(c.post("/v1/admin/core/modules/res_parking"))
    assert {"default", "modlot"} <= set(names(c, "/v1/admin/park/parkinglots"))

    ok(c.delete("/v1/admin/core/modules/chan_pjsip"))
    assert module(c, "chan_pjsip")["load"] == "Not Running"
    assert ok(c.get("/v1/admin/pjsip/endpoints"))["list"] == []
    assert c.get("/v1/admin/pjsip/endpoints/mod-ep").status_code == 404
    assert ok(c.get("/v1/peers"))["list"] == []
    assert c.get("/v1/peers/PJSIP/mod-ep").status_code == 404
    ok(c.post("/v1/admin/core/modules/chan_pjsip"))
    assert names(c, "/v1/admin/pjsip/endpoints", "object_name") == ["mod-ep"]
    assert names(c, "/v1/peers", "peer") == ["PJSIP/mod-ep"]
    assert {m["load"] for m in ok(c.get("/v1/admin/core/modules"))["list"]} == {"Running"}


def test_loading_twice_and_unloading_twice_are_harmless(jade):
    _, c = jade
    ok(c.post("/v1/admin/core/modules/app_queue"))
    assert module(c, "app_queue")["load"] == "Running"
    ok(c.delete("/v1/admin/core/modules/app_queue"))
    ok(c.delete("/v1/admin/core/modules/app_queue"))
    assert module(c, "app_queue")["load"] == "Not Running"
    ok(c.post("/v1/admin/core/modules/app_queue"))
    assert module(c, "app_queue")["load"] == "Running"


def _reload_instant(c: httpx.Client) -> str:
    s = ok(c.get("/v1/admin/core/systems/1"))
    return f"{s['reload_date']} {s['reload_time']}"


def test_reload_updates_module_and_system_times(jade):
    _, c = jade
    before = module(c, "app_queue")
    system_before = _reload_instant(c)
    startup = ok(c.get("/v1/admin/core/systems/1"))
    time.sleep(1.1)  # reload_time has whole seconds
    r = c.put("/v1/admin/core/modules/app_queue")
    assert r.status_code == 200, r.text
    check_envelope(r)
    after = module(c, "app_queue")
    assert after["tm_update"] > before["tm_update"], (before, after)
    assert after["load"] == "Running"
    assert _reload_instant(c) > system_before
    now = ok(c.get("/v1/admin/core/systems/1"))
    assert (now["startup_date"], now["startup_time"]) == (startup["startup_date"], startup["startup_time"])
    # a reload re-reads the file: what it holds is still (or again) what the engine has
    ok(c.post("/v1/admin/queue/cfg_queues", json={"name": "reloadq", "data": {}}))
    ok(c.put("/v1/admin/core/modules/app_queue"))
    assert names(c, "/v1/admin/queue/queues") == ["reloadq"]


def test_pjsip_conf_written_by_put_is_loaded_at_once(jade):
    srv, c = jade
    assert ok(c.get("/v1/admin/pjsip/endpoints"))["list"] == []
    r = c.put("/v1/admin/pjsip/configurations/pjsip.conf", json={"data": PJSIP})
    assert r.status_code == 200, r.text
    check_envelope(r)
    ep = ok(c.get("/v1/admin/pjsip/endpoints/mod-ep"))  # no wait: the reload follows the commit
    assert ep["object_name"] == "mod-ep" and ep["context"] == "demo" and ep["aors"] == "mod-ep"
    assert ok(c.get("/v1/admin/pjsip/aors/mod-ep"))["max_contacts"] == 2
    auth = ok(c.get("/v1/admin/pjsip/auths/mod-ep"))
    assert auth["username"] == "mod-ep" and auth["password"] == "********"
    # text/plain works too, and a change replaces what the engine has
    r = c.put(
        "/v1/admin/pjsip/configurations/pjsip.conf",
        content=PJSIP.replace("context = demo", "context = other"),
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    assert ok(c.get("/v1/admin/pjsip/endpoints/mod-ep"))["context"] == "other"
    # an invalid file is refused and the engine keeps what it had
    r = c.put("/v1/admin/pjsip/configurations/pjsip.conf", json={"data": "[broken\ntype = endpoint\n"})
    assert r.status_code == 400, r.text
    check_envelope(r)
    assert ok(c.get("/v1/admin/pjsip/endpoints/mod-ep"))["context"] == "other"
    # removing it removes it at once
    ok(c.put("/v1/admin/pjsip/configurations/pjsip.conf", json={"data": PJSIP.split("[mod-ep]")[0]}))
    assert c.get("/v1/admin/pjsip/endpoints/mod-ep").status_code == 404
    assert ok(c.get("/v1/admin/pjsip/endpoints"))["list"] == []
    assert sip_options(srv.sip_port) == "SIP/2.0 200 OK"
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
