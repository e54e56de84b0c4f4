"""Whose is a p99 tail: the server's or the load generator's? A bare asyncio server (no uvicorn, no
Starlette: a Protocol that starts a task per request, busy-works `--work` ms and answers 14 KB) stamps
every request when its bytes arrive, when its task starts and when its answer is written; it is then
loaded with h2load and with wrk (64 connections each, one after the other, on the same server), and
the server's own longest waits are printed beside each tool's p99 and max.

    .venv/bin/python bench/loadgen_check.py [--loop uvloop|asyncio] [--runs 3] [--duration 8]

Reading it: `arrival->answer` is the longest a request waited in the server; `answer->next` the
longest from an answer written to the next request of that connection arriving (a request stuck
in the kernel, unread, would show there). A tool whose max is far above the sum of the two is
timing something other than the server. See bench/README.md ("What limits the figures").
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SERVER = textwrap.dedent("""
    import asyncio, os, signal, sys, time
    loop_name, work = sys.argv[1], float(sys.argv[2]) / 1000
    if loop_name == "uvloop":
        import uvloop
        uvloop.install()
    BODY = b"x" * 14000
    ANSWER = b"HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\ncontent-type: text/plain\\r\\n\\r\\n" % len(BODY) + BODY
    clock, conns = time.perf_counter, []

    class Conn(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.log = transport, []
            conns.append(self)

        def data_received(self, data):
            self.log.append(("arrival", clock()))
            asyncio.get_running_loop().create_task(self.answer())

        async def answer(self):
            end = clock() + work
            while clock() < end:
                pass
            self.transport.write(ANSWER)
            self.log.append(("answer", clock()))

    def report():
        waits = {"arrival->answer": 0.0, "answer->next": 0.0}
        for c in conns:
            for (a, ta), (b, tb) in zip(c.log, c.log[1:]):
                key = "arrival->answer" if a == "arrival" else "answer->next"
                waits[key] = max(waits[key], (tb - ta) * 1000)
        conns.clear()
        print(" ".join(f"{k}={v:.0f}" for k, v in waits.items()), flush=True)

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, report)
        server = await loop.create_server(Conn, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


def h2load(url: str, duration: int, log: Path) -> tuple[float, float]:
    log.unlink(missing_ok=True)
    cmd = ["h2load", "--h1", "-t1", "-c64", f"-D{duration}", f"--log-file={log}", url]
    subprocess.run(cmd, check=True, capture_output=True)
    times = sorted(int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line.strip())
    return times[int(len(times) * 0.99)], times[-1]


def wrk(url: str, duration: int, script: Path) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{duration}s", "-s", str(script), url], check=True, capture_output=True, text=True
    ).stdout
    m = re.search(r"^p99=([\d.]+) max=([\d.]+)", out, re.M)
    if m is None:
        sys.exit(f"could not read wrk's output:\n{out}")
    return float(m[1]), float(m[2])


WRK_DONE = (
    'done = function(s, l, r) io.write(string.format("p99=%.1f max=%.1f\\n", l:percentile(99)/1000, l.max/1000)) end'
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--work", type=float, default=0.6, help="ms of busy work per request (default 0.6)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per tool per run (default 8)")
    args = parser.parse_args()
    for tool in ("h2load", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"loadgen_check needs {tool} (`make test-deps` installs it)")
    with tempfile.TemporaryDirectory(prefix="loadgen-check-") as tmp:
        script, log = Path(tmp) / "done.lua", Path(tmp) / "h2load.log"
        script.write_text(WRK_DONE)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, args.loop, str(args.work)], stdout=subprocess.PIPE, text=True
        )
        try:
            url = f"http://127.0.0.1:{server.stdout.readline().strip()}/"
            print(f"bare {args.loop} server, {args.work} ms a request, 64 connections, {args.duration} s per tool")
            print(f"{'run':<5}{'tool':<8}{'p99 ms':>9}{'max ms':>9}   server's longest waits (ms)")
            for run in range(1, args.runs + 1):
                for name in ("h2load", "wrk"):
                    p99, top = h2load(url, args.duration, log) if name == "h2load" else wrk(url, args.duration, script)
                    server.send_signal(signal.SIGUSR1)
                    waits = server.stdout.readline().strip()
                    print(f"{run:<5}{name:<8}{p99:>9.1f}{top:>9.1f}   {waits}", flush=True)
                    time.sleep(0.5)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(10)


if __name__ == "__main__":
    main()
