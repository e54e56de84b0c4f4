"""SIP benchmark: REGISTER-with-digest and OPTIONS capacity, `switchboard serve` against Kamailio 5.6 on
the same machine, in one run, plus a cProfile summary of our REGISTER path.

Capacity is measured open loop: sipp offers a fixed rate (`-r`) for `--step-seconds` per step, the
rate climbs (`--rates`) until the first unclean step (a failed or missing call, a retransmission, an
unexpected message), and the figure is the highest clean offered rate, with the server's CPU per
transaction at that rate. The ramps run `--repeat` times (default 2), ours and Kamailio's taking turns, and
each target keeps its best: on a shared machine a slow spell (measured here: Kamailio's own capacity went
from 16,000 to 8,000/s between two runs an hour apart) only ever lowers a capacity, and taking turns keeps
it from lowering one side's every figure. A closed-loop figure follows as a second, labelled line (`-l` calls in
flight, no rate cap: it measures sipp's pace as much as the server's). Scenarios from
tests/e2e/sipp: register_auth.xml (REGISTER → 401 → REGISTER with an MD5 digest → 200; N distinct
users from an -inf csv) and options_uac.xml (OPTIONS → 200). Switchboard gets N pjsip.conf
accounts (endpoint + auth with `supported_algorithms_uas = md5` + aor) through jade; Kamailio
(2 UDP children, usrloc in memory, `pv_auth_check` against one password) uses the config of
tests/sip_peers.py. Each REGISTER measurement follows an unmeasured pass that registers every user
once, so both registrars measure refreshes of existing bindings. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pstats
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sip_peers import (  # noqa: E402 - after the path tweak
    Jade,
    Kamailio,
    free_port,
    missing,
    sip_options_status,
    sipp_args,
    stop_process,
    wait_for,
    write_users_csv,
)

ADMIN, ADMIN_PASSWORD = "admin", "bench-password"
# `switchboard serve` with a profiler that SIGUSR1 turns on and SIGUSR2 turns off and dumps (argv[1]),
# so the profile covers the measured run only, not start-up (imports, migrations, config load)
PROFILED_SERVE = """
import cProfile, signal, sys
out, prof = sys.argv[1], cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: prof.enable())
signal.signal(signal.SIGUSR2, lambda *_: (prof.disable(), prof.dump_stats(out)))
sys.argv = ["switchboard", "serve"]
from switchboard.cli import main
main()
"""
USER_PASSWORD = "benchpass"  # one password for every user: Kamailio's pv_auth_check takes one
# sipp's socket buffers (its default, 64 KB, drops answers during a pause of sipp at a few thousand/s)
SIPP_BUFFER = 4 << 20
# open-loop offered calls/s: above 40,000 (both sides' OPTIONS at the previous top) so that neither side's
# figure is the ramp's end; 64,000/s is about what one sipp process offers on this 2-core machine. Steps of
# 2,000 from 10,000 to 28,000, where both sides' REGISTER capacities now lie: with 12,000 -> 16,000 and 24,000
# -> 28,000 a capacity was read up to 25 % low, and the ratio up to a third off, from where the steps fell
RATES = (
    "500,1000,1500,2000,3000,4000,5000,6000,8000,10000,12000,14000,16000,18000,20000,22000,24000,26000,28000,"
    "32000,36000,40000,44000,48000,56000,64000"
)


@dataclass
class Run:
    scenario: str
    target: str
    successful: int  # sipp calls
    failed: int
    retransmissions: int
    elapsed: float
    per_call: int  # transactions per successful call
    server_cpu: float = 0.0  # CPU seconds of the server's processes during the run
    sipp_cpu: float = 0.0  # CPU seconds of sipp

    @property
    def tps(self) -> float:
        return self.successful * self.per_call / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def cpu_per_tx_us(self) -> float:
        transactions = self.successful * self.per_call
        return self.server_cpu / transactions * 1e6 if transactions else 0.0


def tree_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its descendants (Linux /proc)."""
    if pid is None:
        return 0.0
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total, grew = {pid}, 0.0, True
    while grew:
        grew = False
        for child, (parent, _) in stats.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    for member in tree:
        total += stats.get(member, (0, 0.0))[1]
    return total


# ---- switchboard serve ----------------------------------------------------------------------------------
class Serve:
    """`switchboard serve` on a SQLite database in `data`, optionally under cProfile."""

    def __init__(self, data: Path, sip_workers: int = 1):
        self.data, self.sip_workers = data, sip_workers
        self.http_port, self.sip_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, profile_to: Path | None = None, log_name: str = "serve.log") -> Serve:
        env = os.environ | {
            "SWITCHBOARD_DATABASE_URL": f"sqlite:///{self.data}/switchboard.db",
            "SWITCHBOARD_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "SWITCHBOARD_SIP_LISTEN": f"127.0.0.1:{self.sip_port}",
            "SWITCHBOARD_DATA_DIR": str(self.data),
            "SWITCHBOARD_ADMIN_USERNAME": ADMIN,
            "SWITCHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SWITCHBOARD_SIP_AUTH_FAILURES_PER_MINUTE": "1000000",
            "SWITCHBOARD_LOG_LEVEL": "warning",
            "SWITCHBOARD_SIP_WORKERS": str(self.sip_workers),
        }
        if profile_to is None:
            cmd = [str(Path(sys.executable).with_name("switchboard")), "serve"]
        else:
            cmd = [sys.executable, "-c", PROFILED_SERVE, str(profile_to)]
        self.log_path = self.data / log_name
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"serve exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            if sip_options_status(self.sip_port, timeout=0.3) == 200:
                with contextlib.suppress(Exception):
                    Jade(self.url, ADMIN, ADMIN_PASSWORD).close()
                    return self
            time.sleep(0.2)
        self.stop()
        sys.exit("serve did not come up within 60 s")

    def stop(self) -> int | None:
        return stop_process(self.proc, signal.SIGTERM, timeout=60)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)


def load_accounts(url: str, users: list[str]) -> float:
    """pjsip.conf with one account per user, through jade; seconds the PUT took."""
    # templates keep 2,000+ accounts under jade's 512 KiB limit on one file
    text = (
        "[ep](!)\ntype = endpoint\ncontext = default\ndisallow = all\nallow = ulaw\n\n"
        f"[au](!)\ntype = auth\nauth_type = userpass\npassword = {USER_PASSWORD}\nsupported_algorithms_uas = md5\n\n"
        "[ao](!)\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n\n"
    ) + "".join(
        f"[{u}](ep)\naors = {u}\nauth = {u}-auth\n\n[{u}-auth](au)\nusername = {u}\n\n[{u}](ao)\n\n" for u in users
    )  # noqa: E501
    jade = Jade(url, ADMIN, ADMIN_PASSWORD)
    try:
        started = time.monotonic()
        jade.put_pjsip(text)
        return time.monotonic() - started
    finally:
        jade.close()


# ---- sipp -------------------------------------------------------------------------------------------------
def _epoch(field: str) -> float:
    return float(field.split("\t")[-1])


def sipp(
    port: int,
    scenario: str,
    workdir: Path,
    *,
    duration: float | None,
    concurrency: int,
    calls: int | None = None,
    csv: Path | None = None,
    label: str = "run",
) -> dict[str, float]:
    """One sipp UAC run; its final cumulative statistics (from -trace_stat)."""
    stat = workdir / f"{label}-stat.csv"
    stat.unlink(missing_ok=True)
    extra = [
        "-r",
        "1000000",
        "-l",
        str(concurrency),
        "-m",
        str(calls or 1_000_000_000),
        "-recv_timeout",
        "5000",
        "-trace_stat",
        "-stf",
        str(stat),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(workdir / f"{label}-err.log"),
    ]
    if duration is not None:
        extra += ["-timeout", f"{int(duration)}s"]
    args = sipp_args(port, scenario, inf=csv, keys={"expires": "3600"} if csv else None, extra=extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, capture_output=True, text=True, cwd=workdir, timeout=(duration or 120) + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # sipp is the child just waited for
    if out.returncode not in (0, 1) or not stat.exists():
        sys.exit(f"sipp failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    lines = [line for line in stat.read_text().splitlines() if line.strip()]
    head, last = lines[0].split(";"), lines[-1].split(";")
    row = dict(zip(head, last, strict=False))
    return {
        "successful": int(row["SuccessfulCall(C)"]),
        "failed": int(row["FailedCall(C)"]),
        "retransmissions": int(row["Retransmissions(C)"]),
        "elapsed": _epoch(row["CurrentTime"]) - _epoch(row["StartTime"]),
        "sipp_cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
    }


def sipp_measured(pid: int | None, *a, **kw) -> dict[str, float]:
    """`sipp`, with the CPU seconds the server (process `pid` and its children) used meanwhile."""
    before = tree_cpu(pid)
    run = sipp(*a, **kw)
    run["server_cpu"] = tree_cpu(pid) - before
    return run


def measure(target: str, port: int, workdir: Path, csv: Path, args, pid: int | None = None) -> list[Run]:
    """Closed loop: `--concurrency` calls in flight, no rate cap, `--duration` s each (bindings exist)."""
    reg = sipp_measured(
        pid,
        port,
        "register_auth.xml",
        workdir,
        duration=args.duration,
        concurrency=args.concurrency,
        csv=csv,
        label=f"{target}-register",
    )
    opt = sipp_measured(
        pid,
        port,
        "options_uac.xml",
        workdir,
        duration=args.duration,
        concurrency=args.concurrency,
        label=f"{target}-options",
    )
    return [
        Run(
            "REGISTER+digest",
            target,
            reg["successful"],
            reg["failed"],
            reg["retransmissions"],
            reg["elapsed"],
            2,
            reg["server_cpu"],
            reg["sipp_cpu"],
        ),
        Run(
            "OPTIONS",
            target,
            opt["successful"],
            opt["failed"],
            opt["retransmissions"],
            opt["elapsed"],
            1,
            opt["server_cpu"],
            opt["sipp_cpu"],
        ),
    ]


# ---- open loop: a rate ramp -------------------------------------------------------------------------------
@dataclass
class Step:
    scenario: str
    target: str
    rate: int  # offered calls/s
    offered: int  # calls sipp was told to place
    successful: int
    failed: int
    retransmissions: int
    unexpected: int  # sipp's out-of-call and dead-call messages
    elapsed: float  # sipp's run, start to its last statistics line
    per_call: int  # transactions per call
    server_cpu: float
    sipp_cpu: float
    rcvbuf_drops: int  # the kernel's UDP RcvbufErrors during the step, machine-wide (/proc/net/snmp)

    @property
    def clean(self) -> bool:
        return self.successful == self.offered and not (self.failed or self.retransmissions or self.unexpected)

    @property
    def achieved(self) -> float:
        """Completed calls/s: below the offered rate when answers lagged (yet within sipp's 500 ms)."""
        return self.successful / self.elapsed if self.elapsed else 0.0

    @property
    def tx_rate(self) -> int:
        """Offered transactions/s."""
        return self.rate * self.per_call

    @property
    def cpu_per_tx_us(self) -> float:
        transactions = self.successful * self.per_call
        return self.server_cpu / transactions * 1e6 if transactions else float("nan")

    @property
    def why(self) -> str:
        parts = [] if self.successful == self.offered else [f"{self.successful}/{self.offered} calls completed"]
        for what, n in (
            ("failed", self.failed),
            ("retransmissions", self.retransmissions),
            ("unexpected messages", self.unexpected),
        ):
            if n:
                parts.append(f"{n} {what}")
        return ", ".join(parts)


def udp_rcvbuf_errors() -> int:
    """The kernel's count of UDP datagrams dropped for a full receive buffer (every socket of the machine)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path("/proc/net/snmp").read_text().splitlines()
        head, values = (line.split() for line in lines if line.startswith("Udp:"))
        return int(values[head.index("RcvbufErrors")])
    return 0


def stat_row(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False)) if len(lines) >= 2 else {}


def rate_step(
    target: str, scenario: str, port: int, rate: int, workdir: Path, args, pid: int | None, csv: Path | None
) -> Step:
    """sipp offering `rate` calls/s for `--step-seconds` (open loop: `-r`, with room for every call in flight)."""
    label = f"{target}-{Path(scenario).stem}-{rate}"
    calls = max(1, int(rate * args.step_seconds))
    stat = workdir / f"{label}-stat.csv"
    stat.unlink(missing_ok=True)
    extra = [
        "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(max(1000, rate * 10)),
        "-recv_timeout", "5000", "-timeout", f"{int(args.step_seconds + 30)}s", "-buff_size", str(SIPP_BUFFER),
        "-trace_stat", "-stf", str(stat), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / f"{label}-err.log"),
    ]  # fmt: skip
    for attempt in range(3):
        # sipp's own ports come from free_port() (bind, close, sipp binds again): another program can
        # take one meanwhile, and sipp then exits 254 before its first call; that step is run again
        cmd = sipp_args(port, scenario, inf=csv, keys={"expires": "3600"} if csv else None, extra=extra)
        cpu0, drops0 = tree_cpu(pid), udp_rcvbuf_errors()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=args.step_seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1, drops1 = tree_cpu(pid), udp_rcvbuf_errors()
        row = stat_row(stat)
        started = row.get("TotalCallCreated", "0") not in ("", "0")
        if out.returncode not in (0, 1) and not started and attempt < 2:
            print(f"  (sipp exited {out.returncode} before its first call: {out.stderr.strip()[-200:]!r}; again)")
            stat.unlink(missing_ok=True)
            continue
        break
    if out.returncode not in (0, 1) or not row:
        sys.exit(f"sipp ({target}, {scenario}, {rate}/s) exited with {out.returncode}:\n{out.stdout[-2000:]}")
    return Step(
        "REGISTER+digest" if csv else "OPTIONS",
        target,
        rate,
        calls,
        int(row["SuccessfulCall(C)"]),
        int(row["FailedCall(C)"]),
        int(row["Retransmissions(C)"]),
        sum(int(row.get(k, "0") or 0) for k in ("OutOfCallMsgs(C)", "DeadCallMsgs(C)")),
        _epoch(row["CurrentTime"]) - _epoch(row["StartTime"]),
        2 if csv else 1,
        cpu1 - cpu0,
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        drops1 - drops0,
    )


def ramp(target: str, scenario: str, port: int, workdir: Path, args, pid: int | None, csv: Path | None) -> list[Step]:
    """Steps of rising rate up to the first unclean one (included), printed as they come."""
    steps: list[Step] = []
    for rate in args.rates:
        step = rate_step(target, scenario, port, rate, workdir, args, pid, csv)
        steps.append(step)
        share = step.server_cpu / step.elapsed * 100 if step.elapsed else 0.0
        sipp_share = step.sipp_cpu / step.elapsed * 100 if step.elapsed else 0.0
        print(
            f"  {target:<12}{step.scenario:<16}{rate:>6}/s offered: {step.successful}/{step.offered} ok in "
            f"{step.elapsed:.1f} s ({step.achieved:.0f}/s), server {share:.0f}% cpu, {step.cpu_per_tx_us:.0f} us/tx, "
            f"sipp {sipp_share:.0f}% cpu, {step.rcvbuf_drops} udp rcvbuf drops — "
            f"{'clean' if step.clean else 'UNCLEAN: ' + step.why}",
            flush=True,
        )
        if not step.clean:
            break
        time.sleep(args.pause)
    time.sleep(max(args.pause, 3.0))  # let an overloaded server drain before the next ramp
    return steps


def best(steps: list[Step]) -> Step | None:
    clean = [s for s in steps if s.clean]
    return clean[-1] if clean else None


def best_ramp(ramps: list[list[Step]]) -> list[Step]:
    """Of one scenario's repeated ramps, the one that reached the highest clean rate (the first such)."""
    return max(ramps, key=lambda steps: (best(steps).rate if best(steps) else -1, steps[-1].clean))


def merge_repeats(runs: list[dict[str, list[Step]]]) -> dict[str, list[Step]]:
    """scenario -> its best ramp over the repeats (noise only ever lowers a capacity: see --repeat)."""
    return {scenario: best_ramp([run[scenario] for run in runs]) for scenario in runs[0]}


def capacities(runs: list[dict[str, list[Step]]], scenario: str) -> str:
    """Each repeat's capacity for `scenario`, in the order run."""
    return ", ".join(str(best(run[scenario]).rate) if best(run[scenario]) else "none" for run in runs)


def warm_registrations(target: str, port: int, workdir: Path, csv: Path, users: int) -> None:
    """Unmeasured: every user registered once, so the measurements are refreshes of existing bindings."""
    warm = sipp(port, "register_auth.xml", workdir, duration=None, concurrency=50, calls=users, csv=csv,
                label=f"{target}-warm")  # fmt: skip
    if warm["failed"] or warm["successful"] != users:
        print(f"warning: {target} warm-up registered {warm['successful']}/{users} ({warm['failed']} failed)")


def open_loop(
    target: str, port: int, workdir: Path, csv: Path, args, pid: int | None, options: bool = True
) -> dict[str, list[Step]]:
    warm_registrations(target, port, workdir, csv, args.users)
    out = {"REGISTER+digest": ramp(target, "register_auth.xml", port, workdir, args, pid, csv)}
    if options:
        out["OPTIONS"] = ramp(target, "options_uac.xml", port, workdir, args, pid, None)
    return out


# ---- report -----------------------------------------------------------------------------------------------
def log_problems(text: str) -> Counter[str]:
    problems: Counter[str] = Counter()
    in_traceback = False
    for line in text.splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and not line.startswith(" "):
            problems[f"exception: {line}"] += 1
            in_traceback = False
        elif record := re.search(r"\b(ERROR|CRITICAL)\b.*", line):
            problems[re.sub(r"\d+", "N", record[0])[:160]] += 1
    return problems


def print_open_loop(ours: dict[str, list[Step]], kam: dict[str, list[Step]], args, single=None) -> None:
    print(
        f"\nOPEN LOOP (capacity): sipp -r ramp {','.join(map(str, args.rates))} calls/s, {args.step_seconds:g} s "
        f"per step, {args.users} users; {os.cpu_count()} cores shared by sipp, the server and Kamailio."
    )
    print(
        "capacity = the highest offered rate whose step was clean (every call completed, 0 failed, 0 retransmissions,"
        "\n0 unexpected messages); '>=' when the ramp ended clean. REGISTER+digest: 2 transactions per call."
        "\nus/tx = the server's CPU time / transactions in that step; ratio = ours / kamailio;"
        "\nachieved/s = calls completed / the step's time at that rate (ours / kamailio): below the offered rate when"
        " answers lagged.\n"
    )
    print(
        f"{'scenario':<17}{'ours calls/s':>13}{'kamailio':>10}{'ratio':>7}{'ours us/tx':>12}{'kam us/tx':>11}"
        f"{'us/tx ratio':>13}{'achieved/s':>16}   first unclean step (ours | kamailio)"
    )
    rows = [(scenario, ours[scenario], scenario) for scenario in ours]
    if single:  # the same server with one SIP process (SWITCHBOARD_SIP_WORKERS=1), same run
        rows.insert(1, ("REGISTER 1 proc", single["REGISTER+digest"], "REGISTER+digest"))
    for scenario, mine, theirs in rows:
        o, k = best(mine), best(kam[theirs])

        def fig(steps: list[Step], b: Step | None) -> str:
            if b is None:
                return "none"
            return (">=" if steps[-1].clean else "") + str(b.rate)

        def unclean(steps: list[Step]) -> str:
            return f"{steps[-1].rate}/s: {steps[-1].why}" if steps and not steps[-1].clean else "-"

        ratio = o.rate / k.rate if o and k else float("nan")
        o_us, k_us = (b.cpu_per_tx_us if b else float("nan") for b in (o, k))
        print(
            f"{scenario:<17}{fig(mine, o):>13}{fig(kam[theirs], k):>10}{ratio:>7.2f}{o_us:>12.0f}"
            f"{k_us:>11.0f}{o_us / k_us if k_us else float('nan'):>13.1f}"
            f"{(f'{o.achieved:.0f} / {k.achieved:.0f}' if o and k else '-'):>16}   "
            f"{unclean(mine)} | {unclean(kam[theirs])}"
        )


def print_table(ours: list[Run], kam: list[Run], args) -> None:
    print(
        f"\nCLOSED LOOP (second line, not capacity): {args.concurrency} calls in flight, no rate cap, "
        f"{args.duration} s per measurement,"
    )
    print(
        "measures sipp's pace as much as the server's (Kamailio waits on sipp there). "
        "transactions/s = successful calls x transactions per call (REGISTER+digest: 2, OPTIONS: 1) / elapsed;"
        " ratio = ours / kamailio.\n"
    )
    print(
        f"{'scenario':<18}{'ours/s':>10}{'kamailio/s':>12}{'ratio':>8}{'failures':>10}{'retrans':>9}"
        f"{'ours calls':>12}{'kam calls':>11}"
    )
    for o, k in zip(ours, kam, strict=True):
        ratio = o.tps / k.tps if k.tps else float("nan")
        print(
            f"{o.scenario:<18}{o.tps:>10.0f}{k.tps:>12.0f}{ratio:>8.2f}{o.failed + k.failed:>10}"
            f"{o.retransmissions + k.retransmissions:>9}{o.successful:>12}{k.successful:>11}"
        )
    print("\nCPU during each measurement (share of one core; per transaction: the server's CPU time / transactions):")
    print(f"{'scenario':<18}{'target':<13}{'server cpu':>11}{'us/tx':>8}{'sipp cpu':>10}")
    for r in [x for pair in zip(ours, kam, strict=True) for x in pair]:
        share = r.server_cpu / r.elapsed * 100 if r.elapsed else 0.0
        sipp_share = r.sipp_cpu / r.elapsed * 100 if r.elapsed else 0.0
        print(f"{r.scenario:<18}{r.target:<13}{share:>10.0f}%{r.cpu_per_tx_us:>8.0f}{sipp_share:>9.0f}%")
    bad = [r for r in ours + kam if r.failed]
    for r in bad:
        print(f"FAILURES: {r.target} {r.scenario}: {r.failed} failed calls")


def print_profile(path: Path, run: dict[str, float], top: int) -> None:
    tps = run["successful"] * 2 / run["elapsed"] if run["elapsed"] else 0
    print(
        f"\ncProfile of `switchboard serve` during a REGISTER+digest run ({run['elapsed']:.1f} s, "
        f"{run['successful']} calls, {tps:.0f} transactions/s under the profiler, {run['failed']} failed):"
    )
    for key, n in (("cumulative", top), ("tottime", 15)):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(n)
        text = out.getvalue()
        body = text[text.find("   ncalls") :] if "   ncalls" in text else text
        print(f"\n-- top {n} by {key} --")
        print(body.rstrip())


def environment() -> str:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    versions = []
    for cmd in (["sipp", "-v"], ["kamailio", "-v"]):
        with contextlib.suppress(Exception):
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
            versions.append(lines[0][:60] if lines else "?")
    core = subprocess.run(  # as `switchboard serve` will import it (SWITCHBOARD_PURE_PYTHON, a stale build)
        [sys.executable, "-c", "import switchboard.compiled as s; print(s.RUNS_COMPILED)"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    versions.append("SIP core: " + ("compiled (mypyc)" if core == "True" else "pure Python"))
    return f"{os.cpu_count()} cores, load average {load}; " + "; ".join(versions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="distinct REGISTER users (default 2000)")
    parser.add_argument("--rates", default=RATES, help=f"open-loop offered calls/s, climbing (default {RATES})")
    parser.add_argument("--step-seconds", type=float, default=3, help="seconds per open-loop step (default 3)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between open-loop steps (default 1)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per closed-loop measurement (default 10)")
    parser.add_argument("--skip-closed", action="store_true", help="no closed-loop measurement")
    parser.add_argument("--concurrency", type=int, default=20, help="sipp calls in flight, -l (default 20)")
    parser.add_argument("--profile-duration", type=int, default=8, help="seconds of the profiled run; 0: none")
    parser.add_argument("--top", type=int, default=25, help="profile entries by cumulative time (default 25)")
    parser.add_argument(
        "--sip-workers", type=int, default=os.cpu_count() or 1, help="SWITCHBOARD_SIP_WORKERS (default: the cores)"
    )
    parser.add_argument(
        "--skip-single", action="store_true", help="no REGISTER ramp of a one-process server for comparison"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="open-loop ramps per target, ours and Kamailio's taking turns; each keeps its best (default 2)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, sipp stats, profile)")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    if reason := missing("sipp", "kamailio"):
        sys.exit(f"sip_bench needs sipp and kamailio: {reason}")

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="switchboard-sip-bench-"))
    users = [f"bench{i:05d}" for i in range(args.users)]
    csv = write_users_csv(tmp / "users.csv", [(u, USER_PASSWORD) for u in users])
    serve = Serve(tmp, args.sip_workers)
    kam = Kamailio(tmp / "kamailio", children=2, password=USER_PASSWORD, log_registers=False)
    log_text = ""
    try:
        serve.start()
        put = load_accounts(serve.url, users)
        print(f"pjsip.conf with {args.users} accounts loaded through jade in {put:.2f} s")
        print(f"environment: {environment()}; SIP workers: {args.sip_workers}", flush=True)
        # the ramps take turns (ours, Kamailio's, ours...): a spell of a slower machine (neighbours on
        # its host) then lowers one repeat of each, not one target's every figure; each keeps its best
        kam.start()
        ours_runs: list[dict[str, list[Step]]] = []
        kam_runs: list[dict[str, list[Step]]] = []
        for _ in range(max(1, args.repeat)):
            ours_runs.append(open_loop("switchboard", serve.sip_port, tmp, csv, args, serve.proc.pid))
            kam_runs.append(open_loop("kamailio", kam.port, tmp, csv, args, kam.proc.pid))
        ours_open, theirs_open = merge_repeats(ours_runs), merge_repeats(kam_runs)
        ours = [] if args.skip_closed else measure("switchboard", serve.sip_port, tmp, csv, args, serve.proc.pid)
        theirs = [] if args.skip_closed else measure("kamailio", kam.port, tmp, csv, args, kam.proc.pid)
        kam.stop()
        serve.stop()
        single = None
        if args.sip_workers > 1 and not args.skip_single:
            (tmp / "single").mkdir()
            one = Serve(tmp / "single", 1).start()
            load_accounts(one.url, users)
            single = open_loop("switchboard-1", one.sip_port, tmp, csv, args, one.proc.pid, options=False)
            one.stop()

        profile_run = None
        prof = tmp / "serve.prof"
        if args.profile_duration > 0:
            serve.start(profile_to=prof, log_name="serve-profiled.log")
            serve.signal(signal.SIGUSR1)
            profile_run = sipp(
                serve.sip_port,
                "register_auth.xml",
                tmp,
                duration=args.profile_duration,
                concurrency=args.concurrency,
                csv=csv,
                label="profiled-register",
            )
            serve.signal(signal.SIGUSR2)
            with contextlib.suppress(AssertionError):
                wait_for(prof.exists, 10, what="the profile")
                time.sleep(0.5)  # dump_stats may still be writing
            code = serve.stop()
            if not prof.exists():
                print(f"warning: profiled serve exited with {code}; no profile written")
                profile_run = None
        log_text = "".join(p.read_text(errors="replace") for p in tmp.glob("**/serve*.log"))

        print_open_loop(ours_open, theirs_open, args, single)
        if len(ours_runs) > 1:
            print(f"\nthe {len(ours_runs)} repeats' capacities, in the order run (the table keeps each one's best):")
            for scenario in ours_open:
                print(
                    f"  {scenario:<17}ours {capacities(ours_runs, scenario)}; kamailio {capacities(kam_runs, scenario)}"
                )
        if ours:
            print_table(ours, theirs, args)
        problems = log_problems(log_text)
        print("\nserver log: " + ("no ERROR/CRITICAL records or tracebacks" if not problems else ""))
        for what, n in problems.most_common(10):
            print(f"  {n:>6} x {what}")
        if profile_run is not None:
            print_profile(prof, profile_run, args.top)
        print(f"\nwhole bench run: {time.monotonic() - started:.0f} s")
        if any(r.failed for r in ours + theirs):
            sys.exit(1)
    finally:
        serve.stop()
        kam.stop()
        if args.keep:
            print(f"work directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
