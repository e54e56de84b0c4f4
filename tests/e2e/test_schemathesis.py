"""Schemathesis over the served OpenAPI document: no generated request may cause a server error.
Runs against a server of its own (the generated data would otherwise mix with other tests').

Each identity fuzzes with HTTP Basic (spear, and jade's login) and a jade token in X-Auth-Token
(every other jade route, and every kazoo route: one token service), so the dialects are fuzzed
authenticated. The kazoo master cluster points at a real carrier-sandbox process. The operations that can take
the caller's own credentials away (a password change revokes its tokens; a logout revokes the
token) run last, in a pass of their own, so the main pass stays authenticated to its end; the
plain user goes first, as the admin's pass can change or cancel it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ADMIN_PASSWORD
from tests.e2e.kazoo_client import CarrierSandbox, Kazoo, use_carrier
from tests.e2e.test_jade_authz_matrix import jade_login

ST = Path(sys.executable).parent / "schemathesis"
SEED = "20261123"
EXAMPLES = "5"  # per operation and pass: about 170 operations; the file stays near 4 minutes
# (method, path) of the operations that can change or revoke the caller's own credentials
CREDENTIAL_OPS = {
    ("put", "/users/{user_id}"),
    ("patch", "/users/{user_id}"),
    ("delete", "/v1/admin/login"),
    ("put", "/v1/admin/info"),
}


def credential_operation_ids(url: str) -> list[str]:
    doc = httpx.get(f"{url}/openapi.json", timeout=20).json()
    ids = [
        op["operationId"]
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if (method, path) in CREDENTIAL_OPS
    ]
    assert len(ids) == len(CREDENTIAL_OPS), ids
    return ids


def run_schemathesis(url: str, auth: str, token: str, tmp: Path, *filters: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(ST),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "-n",
            EXAMPLES,
            "--seed",
            SEED,
            "-a",
            auth,
            "-H",
            f"X-Auth-Token: {token}",
            # the token comes from the header: no generated ?authtoken= may stand in for it
            "--generation-with-security-parameters",
            "false",
            # the live event stream never ends (Server-Sent Events): a fuzzer would wait on it forever
            "--exclude-path",
            "/events/stream",
            *filters,
            "--report",
            "junit",
            "--report-dir",
            str(tmp),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def token_works(url: str, token: str) -> bool:
    return httpx.get(f"{url}/v1/me/info", headers={"X-Auth-Token": token}, timeout=20).status_code == 200


CARRIER_DATA = Path(__file__).resolve().parent.parent / "carrier_data.json"


def test_no_server_errors(fresh_server, tmp_path):
    srv = fresh_server.start()
    # the kazoo carrier routes talk to a real carrier: without one they would answer 502
    sandbox = CarrierSandbox(tmp_path, json.loads(CARRIER_DATA.read_text())).start()
    kz = Kazoo.login(srv)
    use_carrier(kz, sandbox)
    kz.close()
    try:
        _fuzz(srv, tmp_path)
    finally:
        sandbox.stop()


def _fuzz(srv, tmp_path) -> None:
    with srv.client() as c:
        r = c.post("/users", json={"user": {"username": "fuzzuser", "password": "fuzz-password-1"}})
        assert r.status_code == 201
    identities = {"fuzzuser": "fuzz-password-1", "admin": ADMIN_PASSWORD}
    tokens = {user: jade_login(srv.url, user, password) for user, password in identities.items()}
    assert all(token_works(srv.url, t) for t in tokens.values())
    ops = credential_operation_ids(srv.url)
    main_pass = [arg for op in ops for arg in ("--exclude-operation-id", op)]
    credential_pass = [arg for op in ops for arg in ("--include-operation-id", op)]
    for user, password in identities.items():
        out = run_schemathesis(srv.url, f"{user}:{password}", tokens[user], tmp_path, *main_pass)
        assert out.returncode == 0, out.stdout[-6000:]
        assert token_works(srv.url, tokens[user]), f"{user}'s token died during the main pass"
        out = run_schemathesis(srv.url, f"{user}:{password}", tokens[user], tmp_path, *credential_pass)
        assert out.returncode == 0, out.stdout[-6000:]
    assert "Traceback" not in srv.log(), srv.log()[-4000:]


# requests the fuzzer found (not on every run) to end in a server error; pinned here
NUL_CASES = [
    ("POST", "/v1/admin/park/cfg_parkinglots", {"name": "nul-lot", "data": {"parkpos": "> 801-802", "x": "a\u0000b"}}),
    ("POST", "/v1/admin/dialplan/adpmas", {"name": "a\u0000b"}),
    ("POST", "/v1/admin/user/users", {"username": "nul\u0000user", "password": "pw"}),
    ("POST", "/v1/me/chats", {"name": "a\u0000b", "members": []}),
    ("PUT", "/v1/admin/pjsip/configurations/pjsip.conf", {"data": "; a\u0000b\n"}),
]


def test_nul_characters_in_jade_bodies_are_not_server_errors(fresh_server):
    """U+0000 is valid JSON; PostgreSQL cannot store it in text. Refuse it (4xx), never 500."""
    srv = fresh_server.start()
    token = jade_login(srv.url, "admin", ADMIN_PASSWORD)
    got = {}
    with httpx.Client(base_url=srv.url, params={"authtoken": token}, timeout=20) as c:
        for method, path, body in NUL_CASES:
            got[f"{method} {path} {body}"] = c.request(method, path, json=body).status_code
    assert all(status < 500 for status in got.values()), got
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
