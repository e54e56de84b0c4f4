"""Probe benchmark: what one agent loop sustains, measured against a Responder in another process.

(a) OPTIONS packets/s with RTT error < 1 ms. Concurrent `run_test`s (each COUNT requests GAP_MS apart) are
    ramped up step by step. Within a step the N tests start staggered evenly across one packet gap (test i
    sends its first request at base + i/N x GAP_MS, as the agent staggers its tests' first runs), so the
    step's packets go out evenly spaced at a sustained N x 1000 / GAP_MS packets/s for COUNT x GAP_MS,
    rather than in lockstep bursts of N. Every test's socket is opened before base: in the agent, tests
    start spread over their interval, so opening sockets is a trickle, not a crowd in the first gap. Sends
    are loop timers, which uvloop fires on a 1 ms grid: above GAP_MS tests, about N / GAP_MS requests share
    each millisecond. "achieved" is the sends counted over the time from the step's first to its last send.
    Per answered request, RTT error = the RTT `run_test` measured minus the responder's own answer time
    (answered_at - received_at, both time.perf_counter(), which is CLOCK_MONOTONIC and so comparable across
    processes): what is left is loopback transit plus the time the answer waited for the agent's loop, i.e.
    the measurement's error. A step passes when no request is lost and both the median and the p99 RTT
    error are under 1 ms. The ramp climbs LEVELS until a step fails, then bisects between the last passing
    and the first failing step (--bisect steps); the highest passing step's rate is reported.
(b) Tests per agent at the default schedule (every 60 s, 25 packets 100 ms apart): derived from (a)
    (rate x 60 / 25), and measured: N tests' schedule compressed in time by --compress (interval and packet
    gap divided by it, the same staggered start the agent uses), run for --rounds intervals, reporting how
    late test starts and packet sends were against their scheduled times (drift), loss and RTT error.

    .venv/bin/python bench/probe_bench.py [--count 150] [--bisect 4] [--tests 1000] [--compress 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time

from switchboard.probe import measure
from switchboard.probe.responder import Responder

COUNT, GAP_MS = 150, 20  # per test in a ramp step: 3 s of sending, 50 packets/s per test
LEVELS = [1, 2, 5, 10, 20, 40, 80, 160, 320, 640, 1280]
ERR_LIMIT_MS = 1.0
TARGET_TESTS = 1000
GOLDEN = 0.6180339887498949


def runner():
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover
        return asyncio.run


# ---------------------------------------------------------------- responder process


def responder_main(conn) -> None:
    async def main() -> None:
        resp = await Responder().start("127.0.0.1", 0)
        conn.send(resp.port)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()

        def on_cmd() -> None:
            cmd = conn.recv()
            if cmd == "collect":
                reqs, resp.requests = resp.requests, []
                os.set_blocking(conn.fileno(), True)  # the loop's reader made it non-blocking
                conn.send([(r.call_id, r.received_at, r.answered_at) for r in reqs])
            elif not stop.done():
                stop.set_result(None)

        loop.add_reader(conn.fileno(), on_cmd)
        await stop
        resp.stop()

    runner()(main())


# ---------------------------------------------------------------- agent side


class RecordingProbe(measure._Probe):
    """measure's own per-test protocol, also noting each request's Call-ID (by index) and how late each send
    was against its scheduled time, so RTTs can be paired with the responder's timestamps."""

    send_lateness: list[float] = []
    send_times: list[float] = []  # time.perf_counter() of every send (the ramp's achieved rate)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ids: list[bytes | None] = [None] * self.count
        self.start_at = _start_at.get()

    def begin(self) -> None:
        """With a start time (the ramp), the socket is already open: the first send waits for that time."""
        if self.start_at is None:
            super().begin()
        else:
            self.handle = self.loop.call_at(self.start_at, super().begin)

    def _send(self) -> None:
        i = self.sent
        RecordingProbe.send_lateness.append(self.loop.time() - (self.start + i * self.interval))
        RecordingProbe.send_times.append(time.perf_counter())
        super()._send()
        self.ids[i] = next(reversed(self.sent_at)) if self.sent_at else None


_probes: list[RecordingProbe] = []
_start_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("start_at", default=None)


def _factory(*args, **kwargs) -> RecordingProbe:
    p = RecordingProbe(*args, **kwargs)
    _probes.append(p)
    return p


measure._Probe = _factory  # measure_rtts looks the class up at call time


async def measured_test(
    port: int, count: int, gap_ms: float, at: float | None = None, start_late: list[float] | None = None
) -> list[tuple[bytes, float | None]]:
    """One run_test-equivalent (measure_rtts + the same protocol), returning (Call-ID, RTT ms) pairs. With
    `at` (loop time) the socket is opened now and the first request sent at `at`; how late it went is
    appended to `start_late`."""
    _start_at.set(at)  # this task's own context: read by the RecordingProbe measure_rtts creates
    rtts, error = await measure.measure_rtts("127.0.0.1", port, count=count, interval_ms=gap_ms)
    if error:
        raise RuntimeError(error)
    probe = next(p for p in _probes if p.rtts is rtts)
    _probes.remove(probe)
    if at is not None and start_late is not None:
        start_late.append(probe.start - at)
    return list(zip(probe.ids, rtts, strict=True))


def errors_against(pairs, conn) -> tuple[list[float], int, int]:
    """RTT errors (ms) for answered requests, plus sent and lost counts."""
    conn.send("collect")
    own = {cid.encode(): (ans - rec) * 1000.0 for cid, rec, ans in conn.recv() if ans is not None}
    errs, lost = [], 0
    for cid, rtt in pairs:
        if rtt is None:
            lost += 1
        elif cid in own:
            errs.append(rtt - own[cid])
    return errs, len(pairs), lost


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def ramp_step(port: int, conn, n: int, count: int) -> dict:
    """n concurrent tests of `count` packets GAP_MS apart, their starts spread evenly over one gap."""
    loop = asyncio.get_running_loop()
    RecordingProbe.send_lateness.clear()
    RecordingProbe.send_times.clear()
    start_late: list[float] = []
    base = loop.time() + 0.1 + n * 200e-6  # room to open every socket before the first start
    runs = await asyncio.gather(
        *(measured_test(port, count, GAP_MS, base + i * GAP_MS / 1000.0 / n, start_late) for i in range(n))
    )
    pairs = [p for r in runs for p in r]
    errs, sent, lost = errors_against(pairs, conn)
    times = RecordingProbe.send_times
    span = max(times) - min(times) if len(times) > 1 else 0.0
    row = {
        "tests": n,
        "offered": n * 1000.0 / GAP_MS,
        "pps": (len(times) - 1) / span if span > 0 else float("nan"),
        "sent": sent,
        "loss": 100.0 * lost / sent,
        "lost": lost,
        "err_p50": statistics.median(errs) if errs else float("nan"),
        "err_p99": pct(errs, 0.99),
        "late_p99": pct(RecordingProbe.send_lateness, 0.99) * 1000.0,
        "start_p99": pct(start_late, 0.99) * 1000.0,
    }
    row["ok"] = not lost and row["err_p50"] < ERR_LIMIT_MS and row["err_p99"] < ERR_LIMIT_MS
    print(
        f"  {n:>5} tests  offered {row['offered']:>8.0f} pkt/s  achieved {row['pps']:>8.0f} pkt/s  "
        f"err p50 {row['err_p50']:.3f} p99 {row['err_p99']:.3f} ms  loss {row['loss']:.2f} %  "
        f"{'pass' if row['ok'] else 'FAIL'}",
        file=sys.stderr,
        flush=True,
    )
    await asyncio.sleep(0.3)  # let late answers and closed sockets settle before the next step
    return row


async def ramp(port: int, conn, max_level: int, count: int, bisect: int) -> list[dict]:
    """Climb LEVELS until a step fails, then bisect between the last passing and first failing level."""
    rows = []
    good, bad = 0, None
    for n in [lv for lv in LEVELS if lv <= max_level]:
        row = await ramp_step(port, conn, n, count)
        rows.append(row)
        if not row["ok"]:
            bad = n
            break
        good = n
    for _ in range(bisect):
        if bad is None or bad - good <= max(1, good // 16):
            break
        mid = (good + bad) // 2
        row = await ramp_step(port, conn, mid, count)
        rows.append(row)
        if row["ok"]:
            good = mid
        else:
            bad = mid
    return rows


async def schedule(port: int, conn, tests: int, compress: float, rounds: int) -> dict:
    """`tests` tests on the agent's schedule shape (staggered first run, next run = previous scheduled time +
    interval), the default 60 s / 25 x 100 ms compressed by `compress`."""
    interval, gap, count = 60.0 / compress, 100.0 / compress, 25
    loop = asyncio.get_running_loop()
    start_late: list[float] = []
    results: list[list] = []
    RecordingProbe.send_lateness.clear()
    base = loop.time() + 0.5

    async def one(i: int) -> None:
        at = base + ((i * GOLDEN) % 1.0) * interval
        runs = []
        for _ in range(rounds):
            await asyncio.sleep(max(0.0, at - loop.time()))
            start_late.append(loop.time() - at)
            runs.append(asyncio.ensure_future(measured_test(port, count, gap)))
            at += interval
        results.extend(await asyncio.gather(*runs))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(tests)))
    wall = time.perf_counter() - t0
    pairs = [p for r in results for p in r]
    errs, sent, lost = errors_against(pairs, conn)
    sl = [x * 1000.0 for x in RecordingProbe.send_lateness]
    st = [x * 1000.0 for x in start_late]
    return {
        "tests": tests,
        "compress": compress,
        "interval": interval,
        "gap": gap,
        "wall": wall,
        "sent": sent,
        "offered": tests * count / interval,
        "loss": 100.0 * lost / sent if sent else float("nan"),
        "start_p50": pct(st, 0.5),
        "start_p99": pct(st, 0.99),
        "start_max": max(st),
        "send_p50": pct(sl, 0.5),
        "send_p99": pct(sl, 0.99),
        "send_max": max(sl),
        "err_p50": statistics.median(errs) if errs else float("nan"),
        "err_p99": pct(errs, 0.99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=COUNT, help=f"packets per test in a ramp step (default {COUNT})")
    ap.add_argument("--bisect", type=int, default=4, help="bisection steps after the ramp's first failure")
    ap.add_argument("--tests", type=int, default=TARGET_TESTS, help="tests in the schedule run (default 1000)")
    ap.add_argument("--compress", type=float, default=4.0, help="time compression of the default schedule")
    ap.add_argument("--rounds", type=int, default=2, help="intervals per test in the schedule run")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, max(LEVELS) + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    max_level = max(lv for lv in LEVELS if lv + 64 <= want)

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=responder_main, args=(child,), daemon=True)
    proc.start()
    try:
        port = parent.recv()

        async def both():
            print(
                f"(a) ramp: concurrent run_test, {args.count} OPTIONS x {GAP_MS} ms each, starts staggered "
                "evenly across one gap",
                file=sys.stderr,
                flush=True,
            )
            rows = await ramp(port, parent, max_level, args.count, args.bisect)
            print(
                f"(b) schedule: {args.tests} tests, default schedule / {args.compress:g}", file=sys.stderr, flush=True
            )
            sched = await schedule(port, parent, args.tests, args.compress, args.rounds)
            return rows, sched

        rows, sched = runner()(both())
        parent.send("stop")
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()

    print("\n(a) OPTIONS packets/s, one agent loop (uvloop) vs a Responder in another process;")
    print(f"    each step: N tests x {args.count} packets {GAP_MS} ms apart, starts staggered evenly over one gap")
    print(
        f"{'tests':>6} {'offered pkt/s':>14} {'achieved pkt/s':>15} {'loss %':>7} {'err p50 ms':>11} "
        f"{'err p99 ms':>11} {'send late p99 ms':>17} {'start late p99 ms':>18} {'':>5}"
    )
    for r in sorted(rows, key=lambda r: r["tests"]):
        print(
            f"{r['tests']:>6} {r['offered']:>14.0f} {r['pps']:>15.0f} {r['loss']:>7.2f} {r['err_p50']:>11.3f} "
            f"{r['err_p99']:>11.3f} {r['late_p99']:>17.3f} {r['start_p99']:>18.3f} {'pass' if r['ok'] else 'FAIL':>5}"
        )
    good = [r for r in rows if r["ok"]]
    top = max(good, key=lambda r: r["tests"]) if good else None
    best = top["pps"] if top else 0.0
    capped = top is not None and all(r["ok"] for r in rows)
    print(
        f"highest sustained rate with median and p99 RTT error < {ERR_LIMIT_MS:g} ms and no loss: {best:.0f} pkt/s"
        + (
            f" ({top['tests']} tests; err p50 {top['err_p50']:.3f} ms, p99 {top['err_p99']:.3f} ms)"
            if top
            else " (no step passed)"
        )
        + (" (ramp ended at its top level without failing: a lower bound)" if capped else "")
    )

    derived = best * 60.0 / 25.0
    s = sched
    print("\n(b) tests per agent at the default schedule (60 s interval, 25 packets x 100 ms)")
    print(f"{'figure':<44} {'value':>12}")
    print(
        f"{'derived from (a): pkt/s x 60 / 25':<44} {derived:>12.0f}   vs target {TARGET_TESTS} tests"
        + (" (lower bound)" if capped else "")
    )
    print(f"{'measured: tests scheduled':<44} {s['tests']:>12}   vs target {TARGET_TESTS} tests")
    print(f"{'  compression (interval s / gap ms)':<44} {s['compress']:>5g} ({s['interval']:g} s / {s['gap']:g} ms)")
    print(f"{'  offered load pkt/s':<44} {s['offered']:>12.0f}")
    print(f"{'  packets sent / wall s':<44} {s['sent']:>12} / {s['wall']:.1f}")
    print(
        f"{'  test start drift p50 / p99 / max ms':<44} {s['start_p50']:.3f} / {s['start_p99']:.3f} / "
        f"{s['start_max']:.3f}"
    )
    print(
        f"{'  packet send drift p50 / p99 / max ms':<44} {s['send_p50']:.3f} / {s['send_p99']:.3f} / "
        f"{s['send_max']:.3f}"
    )
    print(f"{'  loss %':<44} {s['loss']:>12.3f}")
    print(f"{'  RTT error p50 / p99 ms':<44} {s['err_p50']:.3f} / {s['err_p99']:.3f}")


if __name__ == "__main__":
    main()
