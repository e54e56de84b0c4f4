"""Where an HTTP list request spends its time: `switchboard serve` under cProfile (started after
set-up by SIGUSR1, dumped by SIGUSR2) while wrk loads one URL; prints the top entries by own and
cumulative time. Set-up as bench/http_bench.py (100 spear endpoints, a jade pjsip.conf with 100
endpoints, Basic auth as the bootstrap admin).

    PYTHONPATH=src .venv/bin/python bench/http_profile.py [spear|spear-xml|jade|jade-info|kazoo] [--duration 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_bench import AUTH, PASSWORD, USER, free_port, setup, start, wait_ready  # noqa: E402
from sip_bench import PROFILED_SERVE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="spear")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="switchboard-httpprof-")))
        http_port, sip_port = free_port(), free_port()
        env = os.environ | {
            "SWITCHBOARD_DATABASE_URL": f"sqlite:///{tmp}/db.sqlite",
            "SWITCHBOARD_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "SWITCHBOARD_SIP_LISTEN": f"127.0.0.1:{sip_port}",
            "SWITCHBOARD_DATA_DIR": str(tmp),
            "SWITCHBOARD_ADMIN_USERNAME": USER,
            "SWITCHBOARD_ADMIN_PASSWORD": PASSWORD,
        }
        prof = tmp / "serve.prof"
        server = start(stack, [sys.executable, "-c", PROFILED_SERVE, str(prof)], tmp / "serve.log", env)
        api = f"http://127.0.0.1:{http_port}"
        wait_ready(f"{api}/healthz", server)
        urls = setup(api)
        url, accept = urls[args.scenario]
        cmd = ["wrk", "-t1", f"-c{args.connections}", "--latency", "-H", f"Authorization: {AUTH}"]
        cmd += ["-H", f"Accept: {accept}"]
        if args.scenario == "kazoo":
            cmd += ["-H", f"X-Auth-Token: {urls['kazoo_token']}"]
        subprocess.run([*cmd, "-d1s", url], check=True, capture_output=True)
        server.send_signal(signal.SIGUSR1)
        out = subprocess.run([*cmd, f"-d{args.duration}s", url], check=True, capture_output=True, text=True)
        server.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while not prof.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        print(out.stdout)
        stats = pstats.Stats(str(prof))
        slow = [
            (ct / nc, nc, ct, f"{Path(fn[0]).name}:{fn[1]}({fn[2]})")
            for fn, (_, nc, _, ct, _) in stats.stats.items()
            if nc and ct / nc > 0.02
        ]
        print("-- calls taking > 20 ms each (cumulative): loop stalls --")
        for per, nc, _ct, name in sorted(slow, reverse=True)[:25]:
            print(f"{per * 1000:>9.1f} ms x {nc:<6} {name}")
        for key in ("tottime", "cumulative"):
            buf = io.StringIO()
            pstats.Stats(str(prof), stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
            text = buf.getvalue()
            print(f"-- by {key} --\n" + text[text.find("   ncalls") :])


if __name__ == "__main__":
    main()
