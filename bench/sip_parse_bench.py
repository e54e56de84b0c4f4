"""SIP message parser benchmark: messages/s for `parse` and `Message.to_bytes` (switchboard.sip.message).

Three typical messages: a REGISTER carrying a digest Authorization, an INVITE with an SDP body, and a
200 OK that went through two proxies (three Via values and two Record-Route values on one line each).
Three operations on each: `parse`; `to_bytes` of the parsed message; and parse followed by what the
engine does with a request (read the Vias, rewrite the header list, read a header).

Each figure is the best of `--repeat` timed runs of `-n` calls, timed with time.perf_counter, so a
noisy neighbour on the machine costs less than it would on a single run. `--baseline PATH` loads
another copy of message.py (for instance the file as it was before a change, saved aside) and prints
its figures next to the current ones, with the speed-up; the two take turns run by run, so a change
in the machine's load affects both alike:

    .venv/bin/python bench/sip_parse_bench.py
    .venv/bin/python bench/sip_parse_bench.py --baseline /tmp/message_old.py -n 20000
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from types import ModuleType

REGISTER = (
    b"REGISTER sip:registrar.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Alice" <sip:alice@example.com>\r\n'
    b'From: "Alice" <sip:alice@example.com>;tag=456248\r\n'
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600\r\n"
    b'Authorization: Digest username="alice", realm="example.com", '
    b'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:registrar.example.com", '
    b'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
    b'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001\r\n'
    b"User-Agent: Example-Phone/1.2.3\r\n"
    b"Expires: 3600\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, REFER, MESSAGE, INFO, UPDATE\r\n"
    b"Content-Length: 0\r\n\r\n"
)

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Example-Phone/1.2.3\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3, "
    b"SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2, "
    b"SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n"
    b"Record-Route: <sip:server10.biloxi.example.com;lr>, <sip:bigbox3.site3.atlanta.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

MESSAGES = {"REGISTER+Authorization": REGISTER, "INVITE+SDP": INVITE, "200 OK (3 Via)": OK_200}


def load(path: str | None) -> ModuleType:
    if path is None:
        import switchboard.sip.message as current

        return current
    spec = importlib.util.spec_from_file_location("sip_message_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is created
    spec.loader.exec_module(module)
    return module


def _seconds(fn, arg, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn(arg)
    return time.perf_counter() - start


def _cases(module: ModuleType) -> dict[tuple[str, str], tuple]:
    """(operation, message) -> (function, argument) for one implementation."""
    out = {}
    for name, raw in MESSAGES.items():
        module.parse(raw)  # warm up (caches) and fail early on a message the parser refuses
        out[("parse", name)] = (module.parse, raw)
    for name, raw in MESSAGES.items():
        out[("to_bytes", name)] = (type(module.parse(raw)).to_bytes, module.parse(raw))
    for name, raw in MESSAGES.items():
        # what the engine does with a request: parse, read the Vias, rewrite the header list, answer
        out[("parse+get_all+headers", name)] = (lambda r, m=module: _touch(m.parse(r)), raw)
    return out


def measure(modules: list[ModuleType], n: int, repeat: int) -> list[dict[tuple[str, str], float]]:
    """Calls per second for each module: the best of `repeat` runs of `n` calls. The modules take
    turns run by run, so a change in the machine's load affects them alike."""
    cases = [_cases(m) for m in modules]
    best = [dict.fromkeys(cases[0], float("inf")) for _ in modules]
    for key in cases[0]:
        for _ in range(repeat):
            for i, case in enumerate(cases):
                best[i][key] = min(best[i][key], _seconds(*case[key], n))
    return [{key: n / seconds for key, seconds in b.items()} for b in best]


def _touch(msg) -> None:
    """What the engine does with a request it received (RFC 3261 §18.2.1 `received` on the top Via)."""
    msg.get_all("Via")
    msg.headers = list(msg.headers)
    msg.get("Call-ID")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20_000, help="calls per timed run (default 20000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per figure, best kept (default 5)")
    ap.add_argument("--baseline", metavar="PATH", help="another message.py to compare against")
    args = ap.parse_args(argv)

    modules = [load(None)] + ([load(args.baseline)] if args.baseline else [])
    results = measure(modules, args.n, args.repeat)
    current, baseline = results[0], (results[1] if args.baseline else None)

    head = f"{'operation':<24}{'message':<26}{'msgs/s':>12}"
    if baseline is not None:
        head += f"{'baseline':>12}{'speed-up':>10}"
    print(head)
    print("-" * len(head))
    for (op, name), value in current.items():
        line = f"{op:<24}{name:<26}{value:>12,.0f}"
        if baseline is not None:
            base = baseline[(op, name)]
            line += f"{base:>12,.0f}{value / base:>9.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
