"""Schemathesis over the served OpenAPI document: no generated request may cause a server error.
Runs against a server of its own (the generated data would otherwise mix with other tests')."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ADMIN_PASSWORD

ST = Path(sys.executable).parent / "schemathesis"


def run_schemathesis(url: str, auth: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ST), "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "-n", "15",
         "--seed", "20261123", "-a", auth, "--report", "junit", "--report-dir", str(tmp)],
        capture_output=True, text=True, timeout=600)


def test_no_server_errors(fresh_server, tmp_path):
    srv = fresh_server.start()
    with srv.client() as c:
        r = c.post("/users", json={"user": {"username": "fuzzuser", "password": "fuzz-password-1"}})
        assert r.status_code == 201
    for auth in (f"admin:{ADMIN_PASSWORD}", "fuzzuser:fuzz-password-1"):
        out = run_schemathesis(srv.url, auth, tmp_path)
        assert out.returncode == 0, out.stdout[-6000:]
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
