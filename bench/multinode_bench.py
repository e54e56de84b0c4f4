"""Multi-node benchmark: REGISTER-with-digest per second for one `serve` node and for two nodes on
one PostgreSQL behind Kamailio's dispatcher (deploy/kamailio-dispatcher.cfg), in the same run.

Open loop (DESIGN.md): sipp offers a rate (`-r`, register_auth.xml: REGISTER -> 401 -> REGISTER
with digest -> 200, 200 distinct users) for a few seconds per step; the rate is ramped up and the
figure is the highest offered rate with 0 failed registrations and 0 unexpected messages, done in
about the step's time (a step that took over 20% longer fell behind the offered rate). Rows:
one node direct, one node behind the balancer, two nodes behind the balancer. On a small machine
(the CI box has 2 cores) the two nodes, PostgreSQL, Kamailio and sipp share those cores, so the
second node adds little or nothing here: the row shows the balancer's cost and that nothing is lost.

    python bench/multinode_bench.py [--seconds 4] [--rates 50,100,200,300,400,600]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ADMIN_PASSWORD, PgDatabase, Server, pg_reason  # noqa: E402 - after the path tweak
from tests.e2e.test_balancer import Balancer  # noqa: E402
from tests.sip_peers import Jade, missing, pjsip_account, run_sipp, write_users_csv  # noqa: E402

USERS = [(f"bench{i:04d}", f"bench-{i}-pw") for i in range(1, 201)]


def ramp(port: int, workdir: Path, csv: Path, rates: list[int], seconds: float) -> tuple[int, list[str]]:
    best, notes = 0, []
    for rate in rates:
        calls = int(rate * seconds)
        for _ in range(2):  # once more when sipp did not start (a local port taken meanwhile)
            out = run_sipp(
                port,
                "register_auth.xml",
                workdir,
                calls=calls,
                rate=rate,
                inf=csv,
                keys={"expires": "600"},
                timeout=seconds * 4 + 10,
            )
            if out.successful or out.failed:
                break
        kept_up = out.elapsed <= seconds * 1.2 + 0.5  # open loop: a step that ran long fell behind the rate
        ok = out.returncode == 0 and out.failed == 0 and out.successful == calls and kept_up
        notes.append(f"{rate}/s: {out.successful} ok, {out.failed} failed in {out.elapsed:.1f} s")
        if out.successful == 0:
            notes.append(f"sipp rc {out.returncode}: {out.stderr.strip()[-300:]}")
        if not ok:
            errors = workdir / "sipp-errors.log"
            if errors.exists():  # why (the unexpected messages sipp saw), for the figures' notes
                text = errors.read_text(errors="replace")
                kinds = sorted(set(re.findall(r"SIP/2.0 (\d{3} [^\r\n]*)", text)))[:5]
                notes.append(f"unexpected answers: {kinds or 'none (timeouts)'}")
                errors.unlink()
            break
        best = rate
    return best, notes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rates", default="500,1000,1500,2000,2500,3000,4000,5000")
    args = p.parse_args()
    if reason := missing("sipp", "kamailio") or pg_reason():
        sys.exit(f"multinode bench needs sipp, kamailio and PostgreSQL: {reason}")
    rates = [int(r) for r in args.rates.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="sb-multinode-bench-"))
    pg = PgDatabase()
    nodes: list[Server] = []
    balancers: list[Balancer] = []
    try:
        env = {"SWITCHBOARD_LOG_LEVEL": "error", "SWITCHBOARD_SIP_REQUESTS_PER_SECOND": "0"}
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        a = Server("postgres", pg.url, tmp / "a", extra_env=env).start()
        nodes.append(a)
        key = (a.data_dir / "secret.key").read_text().strip()
        b = Server("postgres", pg.url, tmp / "b", extra_env={**env, "SWITCHBOARD_SECRET_KEY": key}).start()
        nodes.append(b)
        with Jade(a.url, "admin", ADMIN_PASSWORD) as jade:
            jade.put_pjsip("".join(pjsip_account(u, pw, max_contacts=2, remove_existing="yes") for u, pw in USERS))
        csv = write_users_csv(tmp / "users.csv", USERS)
        one = Balancer(tmp / "lb1", [a.sip_port]).start()
        two = Balancer(tmp / "lb2", [a.sip_port, b.sip_port]).start()
        balancers += [one, two]
        rows = [
            ("one node, direct", a.sip_port),
            ("one node behind the balancer", one.port),
            ("two nodes behind the balancer", two.port),
        ]
        print(
            f"REGISTER with digest, open loop, {args.seconds:g} s per step, {len(USERS)} users, {os.cpu_count()} cores"
        )
        results = []
        for name, port in rows:
            best, notes = ramp(port, tmp, csv, rates, args.seconds)
            results.append((name, best, notes))
        print(f"{'setup':34} {'highest rate with 0 failures (registrations/s)':>48}")
        for name, best, notes in results:
            print(f"{name:34} {best:>48}")
            for n in notes:
                print(f"{'':36}{n}")
    finally:
        for lb in balancers:
            lb.stop()
        for srv in nodes:
            srv.stop()
        pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
