"""Several `serve` nodes on one PostgreSQL (issue 18): two real processes, each with its own data
dir, on one fresh database.

- a node whose secret key is not the cluster's refuses to start: one line, exit 2, no traceback;
- a pjsip.conf written through node A is served by node B within a second and B authenticates
  REGISTERs for its accounts; a module unloaded on A answers 503 on B; a trunk made on A is B's too;
- a binding made at A is in B's contacts (and removed from them when A removes it);
- background work (trunk registration) runs on one node and moves to the other when its node is
  SIGKILLed, within the lease time, while sipp registers through the survivor with 0 failures."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, BIN, PgDatabase, Server, pg_reason, skip_or_fail
from tests.sip_peers import (
    Jade,
    Kamailio,
    SipUdpClient,
    pjsip_account,
    run_sipp,
    sip_options_status,
    skip_without,
    wait_for,
    write_users_csv,
)

LEASE = 3.0  # seconds: SWITCHBOARD_LEASE_SECONDS of these nodes
FAST = {
    "SWITCHBOARD_TRUNK_RETRY_MIN": "1",
    "SWITCHBOARD_TRUNK_RETRY_MAX": "2",
    "SWITCHBOARD_TRUNK_QUALIFY_INTERVAL": "1",
    "SWITCHBOARD_LEASE_SECONDS": str(LEASE),
}


@pytest.fixture(scope="module")
def pg():
    if reason := pg_reason():
        skip_or_fail(f"multi-node needs PostgreSQL: {reason}")
    db = PgDatabase()
    yield db
    db.drop()


def node(pg: PgDatabase, tmp: Path, name: str, **env) -> Server:
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    return Server("postgres", pg.url, d, extra_env={**FAST, **env})


@pytest.fixture(scope="module")
def cluster(pg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multinode")
    a = node(pg, tmp, "a").start()
    key = (a.data_dir / "secret.key").read_text().strip()
    b = node(pg, tmp, "b", SWITCHBOARD_SECRET_KEY=key).start()
    ja, jb = Jade(a.url, "admin", ADMIN_PASSWORD), Jade(b.url, "admin", ADMIN_PASSWORD)
    yield a, b, ja, jb
    ja.close()
    jb.close()
    for srv in (a, b):
        code = srv.stop()
        assert code in (0, None, -9), f"serve did not stop cleanly ({code})"
        assert "Traceback" not in srv.log(), srv.log()
    shutil.rmtree(tmp, ignore_errors=True)


# ---- 1. the secret key ----------------------------------------------------------------------------
def test_a_node_with_another_secret_key_refuses_to_start(cluster, tmp_path):
    a, _, _, _ = cluster
    other = tmp_path / "other"
    other.mkdir()
    srv = Server("postgres", a.database_url, other)  # no key given: it makes its own, not the cluster's
    out = subprocess.run(
        [str(BIN / "switchboard"), "serve"], env=srv.env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "secret key" in lines[0] and "refusing to start" in lines[0], out.stderr
