"""In-process micro-benchmark of the SIP receive path: REGISTER-like requests (a new branch each)
pushed through `SipEngine.receive` with a handler answering 200 at once, the engine before the
sans-I/O endpoint (git revision BASELINE, loaded from git) against the current one. No sockets: the
UDP transport is a stub whose sendto does nothing. Prints µs per message, best of several rounds.

    PYTHONPATH=src python bench/sip_endpoint_bench.py [N] [BASELINE]
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import time
from pathlib import Path


def _load(rev: str, path: str, name: str, replace: tuple[tuple[str, str], ...] = ()):
    src = subprocess.run(
        ["git", "show", f"{rev}:{path}"],
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        text=True,
    ).stdout
    for old, new in replace:
        src = src.replace(old, new)
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    sys.modules[name] = mod
    exec(compile(src, f"{name}.py", "exec"), mod.__dict__)
    return mod


def load_baseline(rev: str):
    """The engine and transaction modules as they were at `rev` (message.py is shared: unchanged)."""
    _load(rev, "src/switchboard/sip/transaction.py", "baseline_transaction")
    return _load(
        rev,
        "src/switchboard/sip/engine.py",
        "baseline_engine",
        (
            ("from switchboard.sip import transaction as tx_mod", "import baseline_transaction as tx_mod"),
            ("switchboard.sip.transaction", "baseline_transaction"),
        ),
    )


def messages(n: int) -> list[bytes]:
    return [
        (
            f"REGISTER sip:bench.test SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.1.2.3:5062;branch=z9hG4bK{i:08x}bench;rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:u{i % 500}@bench.test>;tag={i:06x}\r\nTo: <sip:u{i % 500}@bench.test>\r\n"
            f"Call-ID: {i:08x}@bench\r\nCSeq: {i + 1} REGISTER\r\n"
            f"Contact: <sip:u{i % 500}@10.1.2.3:5062;transport=udp>;expires=300\r\n"
            "User-Agent: bench\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        for i in range(n)
    ]


class _Stub:
    def sendto(self, data, addr):
        pass


def run(module, data: list[bytes]) -> float:
    from switchboard.sip.message import response_to

    def handler(req, source):
        return response_to(req, 200, headers=[("Contact", req.get("Contact") or ""), ("Expires", "300")])

    eng = module.SipEngine("127.0.0.1", 5060, handler=handler)
    eng._udp = _Stub()
    eng.running = True
    source = module.Source("10.1.2.3", 5062, "UDP")
    receive = eng.receive
    t0 = time.perf_counter()
    for d in data:
        receive(d, source)
    elapsed = time.perf_counter() - t0
    assert eng.stats["sent"] == len(data), eng.stats
    return elapsed / len(data) * 1e6


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    rev = sys.argv[2] if len(sys.argv) > 2 else "44cff30"
    import switchboard.sip.engine as current

    baseline = load_baseline(rev)
    data = messages(n)
    rounds = 25  # alternating, best of each: the machine is shared, the minimum is the least disturbed run
    best = {"baseline": float("inf"), "current": float("inf")}
    for _ in range(rounds):
        for name, mod in (("baseline", baseline), ("current", current)):
            best[name] = min(best[name], run(mod, data))
    print(f"REGISTER through SipEngine.receive, {n} messages, best of {rounds} alternating rounds (µs/message)")
    print(f"  baseline {rev}: {best['baseline']:.2f}")
    print(f"  current (Endpoint): {best['current']:.2f}  ({(best['current'] / best['baseline'] - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    asyncio.run(main())
