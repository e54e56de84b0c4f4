"""HTTP benchmark: Switchboard spear endpoint list (JSON, XML) and create, jade token auth and pjsip
endpoint list, kazoo routing cluster list, against a bare Starlette baseline.

Runs `switchboard serve` on a fresh SQLite database and a one-route Starlette app, both under uvicorn
(uvloop, httptools, one worker, access log off), loads each with h2load (HTTP/1.1) and then with wrk,
and prints requests/s and p99 latency with their ratio to the baseline, all from this one run.
h2load's figures are the measurement (its p99 is computed here from its per-request log); wrk's are
printed beside them: against a uvloop server wrk reports a p99 tail of 0.3-1.3 s that the server's
own per-request stamps and h2load do not see (bench/README.md shows the evidence).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "admin", "bench-password"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
ENDPOINTS = 100
CREATE_BODY = {"endpoint": {"name": "bench N", "ip_address": "10.0.0.1"}}

BASELINE_APP = textwrap.dedent("""
    import sys

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route


    async def hello(request):
        return PlainTextResponse("hello")


    app = Starlette(routes=[Route("/", hello)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                access_log=False, lifespan="off", server_header=False, log_level="warning")
""")

CREATE_LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Result:
    name: str
    rps: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    wrk: Result | None = None  # the same scenario under wrk, printed beside h2load's


def free_port() -> int:
    """A port free for both TCP and UDP (the SIP listener binds both)."""
    while True:
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with contextlib.suppress(OSError):
                udp.bind(("127.0.0.1", port))
                return port


def request(
    url: str,
    body: dict | None = None,
    accept: str = "application/json",
    method: str | None = None,
    headers: dict[str, str] | None = None,
):
    headers = {"Authorization": AUTH, "Accept": accept, "Content-Type": "application/json", **(headers or {})}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=10) as resp:
        return json.loads(resp.read()) if accept == "application/json" else resp.read()


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.1)
    sys.exit(f"{url} did not answer 200 within {timeout}s")


def start(stack: contextlib.ExitStack, cmd: list[str], log: Path, env: dict | None = None):
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    stack.callback(stop, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def parse_wrk(name: str, output: str) -> Result:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and p99):
        sys.exit(f"could not parse wrk output for {name}:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Result(
        name,
        float(rps[1]),
        to_ms(p99[1]),
        int(non_2xx[1]) if non_2xx else 0,
        sum(map(int, sock.groups())) if sock else 0,
    )


def wrk(
    name: str,
    url: str,
    args,
    accept: str = "application/json",
    script: Path | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    cmd = [
        "wrk",
        "-t1",
        f"-c{args.connections}",
        "--latency",
        "-H",
        f"Authorization: {AUTH}",
        "-H",
        f"Accept: {accept}",
    ]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", str(script)]
    if args.warmup:
        subprocess.run([*cmd, f"-d{args.warmup}s", url], check=True, capture_output=True)
    out = subprocess.run([*cmd, f"-d{args.duration}s", url], check=True, capture_output=True, text=True)
    return parse_wrk(name, out.stdout)


def h2load(
    name: str,
    url: str,
    args,
    accept: str = "application/json",
    body: Path | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    """h2load over HTTP/1.1, one thread, `args.connections` clients, for `args.duration` seconds after
    `args.warmup` of warm-up; req/s and the status counts from its summary, p99 from its per-request
    log (the requests that started after the warm-up)."""
    with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log") as log:
        cmd = ["h2load", "--h1", "-t1", f"-c{args.connections}", f"-D{args.duration}", f"--log-file={log.name}"]
        cmd += ["-H", f"Authorization: {AUTH}", "-H", f"Accept: {accept}"]
        if args.warmup:
            cmd.append(f"--warm-up-time={args.warmup}")
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        if body is not None:
            cmd += ["-d", str(body), "-H", "Content-Type: application/json"]
        out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
        rows = [line.split("\t") for line in Path(log.name).read_text().splitlines() if line.strip()]
    rps = re.search(r"^finished in [\d.]+\w+, ([\d.]+) req/s", out, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    failed = re.search(r"^requests: .*?(\d+) failed, (\d+) errored, (\d+) timeout", out, re.M)
    if not (rps and codes and failed and rows):
        sys.exit(f"could not parse h2load output for {name}:\n{out}")
    first = min(int(r[0]) for r in rows)
    measured = sorted(int(r[2]) for r in rows if int(r[0]) >= first + args.warmup * 1_000_000)
    p99 = measured[min(len(measured) - 1, int(len(measured) * 0.99))] / 1000 if measured else float("nan")
    return Result(name, float(rps[1]), p99, int(codes[3]) + int(codes[4]), sum(map(int, failed.groups())))


def both(name: str, url: str, args, accept: str = "application/json", headers=None, body=None, script=None):
    """The scenario under h2load (the figures), then under wrk (printed beside them)."""
    result = h2load(name, url, args, accept, body, headers)
    result.wrk = wrk(name, url, args, accept, script, headers)
    return result


def log_problems(log: Path) -> Counter[str]:
    """ERROR/CRITICAL records and the exception that ends each traceback, counted, without timestamps."""
    problems: Counter[str] = Counter()
    in_traceback = False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and not line.startswith(" "):
            problems[f"exception: {line}"] += 1
            in_traceback = False
        elif record := re.search(r"\b(ERROR|CRITICAL)\b.*", line):
            problems[record[0]] += 1
    return problems


def print_table(results: list[Result], base: Result, args) -> None:
    print(
        f"\nh2load --h1 -t1 -c{args.connections} -D{args.duration} (warm-up {args.warmup}s), then wrk -t1 "
        f"-c{args.connections} -d{args.duration}s, on {os.cpu_count()} cores; switchboard's event loop: "
        f"{args.event_loop}; the load generator and the server share the machine, so absolute figures are "
        "machine-bound."
    )
    print("Ratios are against the baseline from this same run: req/s x (higher is better), p99 x (lower).")
    print("errors: h2load's failed+errored+timeout requests, wrk's socket errors; both should be 0.\n")
    print(
        f"{'scenario':<32}{'req/s':>10}{'p99 ms':>9}{'non-2xx':>8}{'errors':>7}{'req/s x':>9}{'p99 x':>7}"
        f"{'| wrk req/s':>12}{'p99 ms':>9}{'non-2xx':>8}{'errors':>7}"
    )
    for r in results:
        w = r.wrk
        print(
            f"{r.name:<32}{r.rps:>10.1f}{r.p99_ms:>9.2f}{r.non_2xx:>8}{r.socket_errors:>7}"
            f"{r.rps / base.rps:>9.3f}{r.p99_ms / base.p99_ms:>7.2f}"
            + (f"{'| ':>3}{w.rps:>9.1f}{w.p99_ms:>9.2f}{w.non_2xx:>8}{w.socket_errors:>7}" if w else "")
        )


# issue 17's targets for the lists (spear, jade, kazoo) at 64 connections
MIN_RATIO, GOAL_RATIO, MAX_P99_MS = 0.2, 0.5, 50.0


def print_targets(lists: list[Result], base: Result) -> None:
    print(
        f"\nTargets for the lists: req/s >= {MIN_RATIO}x the baseline (goal {GOAL_RATIO}x), "
        f"p99 < {MAX_P99_MS:.0f} ms (bench/README.md says what limits them)"
    )
    for r in lists:
        ratio = r.rps / base.rps
        verdict = "goal met" if ratio >= GOAL_RATIO else "met" if ratio >= MIN_RATIO else "not met"
        p99 = "met" if r.p99_ms < MAX_P99_MS else "not met"
        wrk_p99 = f" (wrk says {r.wrk.p99_ms:.1f} ms)" if r.wrk else ""
        print(f"  {r.name:<32}req/s {ratio:.3f}x: {verdict}; p99 {r.p99_ms:.1f} ms: {p99}{wrk_p99}")


def setup(api: str) -> dict:
    """100 spear endpoints, a jade pjsip.conf of 100 endpoints and 100 kazoo routing customer clusters;
    the URLs to load (with their Accept) and the tokens."""
    uid = request(f"{api}/users/me")["id"]
    endpoints_url = f"{api}/users/{uid}/endpoints"
    for n in range(1, ENDPOINTS + 1):
        request(endpoints_url, {"endpoint": {"name": f"bench {n}", "ip_address": f"10.0.0.{n}"}})
    count = len(request(endpoints_url)["collection"])
    if count != ENDPOINTS:
        sys.exit(f"expected {ENDPOINTS} endpoints, the list has {count}")

    # jade: a token, and a pjsip.conf with ENDPOINTS endpoints (each with its auth and aor)
    token = request(f"{api}/v1/admin/login", {})["result"]["authtoken"]
    conf = "".join(
        f"[ep{n}]\ntype=endpoint\nauth=ep{n}\naors=ep{n}\ncontext=demo\n\n"
        f"[ep{n}]\ntype=auth\nusername=ep{n}\npassword=secret{n}\n\n"
        f"[ep{n}]\ntype=aor\nmax_contacts=1\n\n"
        for n in range(1, ENDPOINTS + 1)
    )
    put = urllib.request.Request(
        f"{api}/v1/admin/pjsip/configurations/pjsip.conf?authtoken={token}",
        json.dumps({"data": conf}).encode(),
        method="PUT",
    )
    urllib.request.urlopen(put, timeout=10).close()
    pjsip_url = f"{api}/v1/admin/pjsip/endpoints?authtoken={token}"
    count = len(request(pjsip_url)["result"]["list"])
    if count != ENDPOINTS:
        sys.exit(f"expected {ENDPOINTS} pjsip endpoints, the list has {count}")

    # kazoo: an X-Auth-Token from PUT /v2/user_auth, and ENDPOINTS routing customer clusters
    login = {"data": {"username": USER, "password": PASSWORD}}
    kazoo_token = request(f"{api}/v2/user_auth", login, method="PUT")["auth_token"]
    kazoo_headers = {"X-Auth-Token": kazoo_token}
    clusters_url = f"{api}/v2/support/routing/customer_clusters"
    for n in range(1, ENDPOINTS + 1):
        cluster = {
            "name": f"bench cluster {n}",
            "owner": "bench",
            "ips": {"inbound": {"east": [f"10.1.0.{n}"]}, "outbound": {"east": [f"10.2.0.{n}"]}},
            "randomize_routing": False,
        }
        request(f"{clusters_url}/bench{n}", {"data": cluster}, method="PUT", headers=kazoo_headers)
    count = len(request(clusters_url, headers=kazoo_headers)["data"])
    if count != ENDPOINTS:
        sys.exit(f"expected {ENDPOINTS} kazoo customer clusters, the list has {count}")
    return {
        "spear": (endpoints_url, "application/json"),
        "spear-xml": (endpoints_url, "application/xml"),
        "jade": (pjsip_url, "application/json"),
        "jade-info": (f"{api}/v1/admin/info?authtoken={token}", "application/json"),
        "kazoo": (clusters_url, "application/json"),
        "token": token,
        "kazoo_token": kazoo_token,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured seconds before each (default 1)")
    parser.add_argument(
        "--event-loop", choices=("uvloop", "asyncio"), default="uvloop", help="SWITCHBOARD_EVENT_LOOP (default uvloop)"
    )
    args = parser.parse_args()
    for tool, package in (("h2load", "nghttp2-client"), ("wrk", "wrk")):
        if shutil.which(tool) is None:
            sys.exit(f"http_bench needs {tool} (Debian package {package}; `make test-deps` installs it)")

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="switchboard-bench-")))

        base_port = free_port()
        (tmp / "hello_app.py").write_text(BASELINE_APP)
        hello = start(stack, [sys.executable, str(tmp / "hello_app.py"), str(base_port)], tmp / "hello.log")
        base_url = f"http://127.0.0.1:{base_port}/"
        wait_ready(base_url, hello)

        http_port, sip_port = free_port(), free_port()
        env = os.environ | {
            "SWITCHBOARD_DATABASE_URL": f"sqlite:///{tmp}/db.sqlite",
            "SWITCHBOARD_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "SWITCHBOARD_SIP_LISTEN": f"127.0.0.1:{sip_port}",
            "SWITCHBOARD_DATA_DIR": str(tmp),
            "SWITCHBOARD_ADMIN_USERNAME": USER,
            "SWITCHBOARD_ADMIN_PASSWORD": PASSWORD,
            "SWITCHBOARD_EVENT_LOOP": args.event_loop,
        }
        server_log = tmp / "switchboard.log"
        switchboard = str(Path(sys.executable).with_name("switchboard"))
        server = start(stack, [switchboard, "serve"], server_log, env)
        api = f"http://127.0.0.1:{http_port}"
        wait_ready(f"{api}/healthz", server)

        urls = setup(api)
        endpoints_url, pjsip_url, token = urls["spear"][0], urls["jade"][0], urls["token"]
        clusters_url, kazoo_headers = urls["kazoo"][0], {"X-Auth-Token": urls["kazoo_token"]}

        create_lua = tmp / "create.lua"
        create_lua.write_text(CREATE_LUA.format(body=json.dumps(CREATE_BODY)))
        create_body = tmp / "create.json"
        create_body.write_text(json.dumps(CREATE_BODY))

        print(f"measuring ({args.duration}s each, {args.warmup}s warm-up) ...", file=sys.stderr)
        base = both("baseline: Starlette hello", base_url, args, accept="text/plain")
        spear_list = both(f"GET endpoints x{ENDPOINTS} JSON", endpoints_url, args)
        spear_xml = both(f"GET endpoints x{ENDPOINTS} XML", endpoints_url, args, accept="application/xml")
        jade_info = both("jade GET /v1/admin/info", f"{api}/v1/admin/info?authtoken={token}", args)
        jade_list = both(f"jade GET pjsip endpoints x{ENDPOINTS}", pjsip_url, args)
        kazoo_list = both(f"kazoo GET clusters x{ENDPOINTS}", clusters_url, args, headers=kazoo_headers)
        # Last: every create makes the list longer.
        create = both("POST endpoint (create) JSON", endpoints_url, args, body=create_body, script=create_lua)
        results = [base, spear_list, spear_xml, jade_info, jade_list, kazoo_list, create]
        print_table(results, base, args)
        print_targets([spear_list, jade_list, kazoo_list], base)

        for proc in (server, hello):
            stop(proc)
        problems = log_problems(server_log) + log_problems(tmp / "hello.log")
        if problems:
            print("\nProblems in the server logs (count, message):")
            for message, n in problems.most_common():
                print(f"{n:>6}  {message}")


if __name__ == "__main__":
    main()
