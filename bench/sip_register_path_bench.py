"""In-process micro-benchmark of the SIP work of one REGISTER+digest call (sipp's register_auth.xml), without
sockets, registrar or database: what sip/ (message, headers, digest, transaction, endpoint) costs per
transaction.

Two transactions per call, as sipp sends them (a new branch, Call-ID and From tag per call; MD5, qop=auth,
nc=00000001, a fresh nonce per call, as `supported_algorithms_uas = md5` makes the registrar challenge):

1. **challenge**: `Endpoint.receive` of the REGISTER without credentials -> the registrar's reads (To user,
   Authorization) -> `DigestServer.challenge` -> 401 with Server + WWW-Authenticate -> `respond_at_once`
   (serialised; completed state kept until timer J).
2. **register**: `Endpoint.receive` of the REGISTER with `Authorization` -> `DigestServer.verify` with a
   lookup returning the account's cached HA1 -> the registrar's reads (Call-ID, CSeq, Expires, Contact split
   into URI and parameters, User-Agent, Path) -> `Endpoint.pending` (the registrar answers once the binding
   is committed: a ServerTransaction) -> 200 with Server, Contact;expires and Date -> `Endpoint.respond`
   (serialised; completed state kept until timer J).

After an unmeasured pass registering the same users (as sip_bench measures refreshes of existing bindings),
it prints the best µs per transaction of each over `--rounds` rounds of `-n` calls (a fresh Endpoint and
DigestServer per round, sharing the secret; the nonces the answers carry were issued by that round's DigestServer
beforehand, as the registrar's own challenges issue them: a node that did not issue a nonce checks its MAC instead,
as in the warm-up), their mean (one transaction of each per call: comparable, minus
the registrar, the database and the socket work, with sip_bench's "us/tx"), and a breakdown of the register
transaction: parse alone, verify alone, the 200 built and serialised alone.

`--instructions` runs the same set-up under `valgrind --tool=callgrind` twice, once followed by a round of
min(n, 1000) calls, and prints the instructions per call and per transaction from the difference, so start-up and
set-up cancel out: unlike times, instruction counts repeat on a busy machine (to within a few hundred). The
callgrind outputs go to a temporary directory.

    PYTHONPATH=src python bench/sip_register_path_bench.py [-n 2000] [--rounds 15] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from email.utils import formatdate

from switchboard.sip import digest
from switchboard.sip.endpoint import DeliverRequest, Endpoint, Source
from switchboard.sip.headers import contact_uri_and_params, split_contacts, uri_user
from switchboard.sip.message import Message, parse, response_to

SECRET = b"bench-secret-0123456789abcdef"
REALM = "127.0.0.1"
HOST, PORT = "127.0.0.1", 5060
PEER = Source("127.0.0.1", 5070, "UDP")
SERVER = ("Server", "Switchboard/0.1.0")
PASSWORD = "secret"


def _register(i: int, user: str, cseq: int, authorization: str | None) -> bytes:
    """sipp's REGISTER (register_auth.xml), for call `i`."""
    lines = [
        f"REGISTER sip:{HOST}:{PORT} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-4242-{i}-{cseq};rport",
        f"From: <sip:{user}@{HOST}:{PORT}>;tag=4242SIPpTag00{i}",
        f"To: <sip:{user}@{HOST}:{PORT}>",
        f"Call-ID: {i}-4242@127.0.0.1",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@127.0.0.1:5070;transport=UDP>",
    ]
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    lines += ["Max-Forwards: 70", "Expires: 3600", "User-Agent: SIPp register_auth", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def _sipp_authorization(user: str, uri: str, nonce: str, opaque: str, cnonce: str) -> str:
    """The Authorization header sipp 3.6 builds for an MD5 qop=auth challenge (its spelling and order)."""
    secret = digest.ha1("MD5", user, REALM, PASSWORD)
    nc = "00000001"
    response = digest.digest_response("MD5", secret, "REGISTER", uri, nonce, qop="auth", nc=nc, cnonce=cnonce)
    return (
        f'Digest username="{user}",realm="{REALM}",cnonce="{cnonce}",nc={nc},qop=auth,uri="{uri}",'
        f'nonce="{nonce}",response="{response}",algorithm=MD5,opaque="{opaque}"'
    )


USERS = 2000


def calls(n: int, server: digest.DigestServer, first: int = 0) -> list[tuple[bytes, bytes]]:
    """(REGISTER without credentials, REGISTER with credentials) for n calls over 2,000 users; `first`: the
    number of the first call (its Call-ID, tags and branches), a multiple of 2,000 starting at user 0."""
    out = []
    for i in range(first, first + n):
        user = f"user{i % USERS:04d}"
        auth = _sipp_authorization(user, f"sip:{HOST}:{PORT}", server.new_nonce(), server.opaque, f"{i:08x}")
        out.append((_register(i, user, 1, None), _register(i, user, 2, auth)))
    return out


class Account:
    """The registrar's _Account.lookup: the HA1 of one user, computed once."""

    __slots__ = ("ha1",)

    def __init__(self) -> None:
        self.ha1: dict[tuple[str, str], str] = {}

    def lookup(self, user: str, realm: str, algorithm: str) -> str | None:
        value = self.ha1.get((user, algorithm))
        if value is None:
            value = self.ha1[(user, algorithm)] = digest.ha1(algorithm, user, realm, PASSWORD)
        return value


_date_cache: list = [0, ""]


def _date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True)]
    return _date_cache[1]


def challenge(req: Message, server: digest.DigestServer) -> Message:
    uri_user(req.get("To"))
    assert req.get("Authorization") is None
    return response_to(req, 401, headers=[SERVER, *[("WWW-Authenticate", c) for c in server.challenge()]])


def register(req: Message, server: digest.DigestServer, account: Account) -> Message:
    """What the registrar reads and answers for an authenticated REGISTER refreshing its one binding."""
    uri_user(req.get("To"))
    verdict = server.verify(req.method or "REGISTER", req.get("Authorization") or "", account.lookup)
    if not verdict.ok:
        raise SystemExit(f"digest refused: {verdict}")
    return ok_response(req)


def ok_response(req: Message) -> Message:
    req.get("Call-ID")
    req.cseq  # noqa: B018
    expires = int(req.get("Expires") or 3600)
    uri = ""
    for contact in split_contacts(req.get_all("Contact")):
        uri, params = contact_uri_and_params(contact)
        uri.lower().startswith(("sip:", "sips:"))
        params.get("expires")
    (req.get("User-Agent") or "")[:255]  # noqa: B018
    ",".join(req.get_all("Path"))[:2000]  # noqa: B018
    return response_to(req, 200, headers=[SERVER, ("Contact", f"<{uri}>;expires={expires}"), ("Date", _date())])


def run(data: list[tuple[bytes, bytes]], server: digest.DigestServer) -> tuple[float, float]:
    """Seconds spent on the challenge transactions and on the register transactions of `data` (whose nonces
    `server` issued, as the registrar's DigestServer issued those of the challenges its REGISTERs answer)."""
    endpoint = Endpoint(server=SERVER[1], max_transactions=50_000, max_completed=100_000)
    account = Account()
    receive, respond_at_once, pending, respond = (
        endpoint.receive,
        endpoint.respond_at_once,
        endpoint.pending,
        endpoint.respond,
    )
    clock = time.monotonic
    t_challenge = t_register = 0.0
    perf = time.perf_counter
    for first, second in data:
        t0 = perf()
        (incoming,) = receive(first, PEER, clock())
        sent = respond_at_once(incoming, challenge(incoming.message, server), clock())
        t1 = perf()
        (incoming,) = receive(second, PEER, clock())
        resp = register(incoming.message, server, account)
        pending(incoming)  # the registrar answers once the binding is committed
        actions = respond(incoming, resp, clock())
        t2 = perf()
        t_challenge += t1 - t0
        t_register += t2 - t1
    assert sent is not None and sent.startswith(b"SIP/2.0 401 ")
    assert actions[0].data.startswith(b"SIP/2.0 200 OK\r\n"), actions
    assert incoming.__class__ is DeliverRequest
    return t_challenge, t_register


def parts(data: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Seconds for the pieces of the register transaction, each alone over `data`."""
    server = digest.DigestServer(SECRET, REALM, algorithms=("MD5",))
    account = Account()
    second = [d[1] for d in data]
    perf = time.perf_counter
    t0 = perf()
    msgs = [parse(raw) for raw in second]
    t1 = perf()
    for m in msgs:
        server.verify("REGISTER", m.get("Authorization") or "", account.lookup)
    t2 = perf()
    for m in msgs:
        ok_response(m).to_bytes()
    t3 = perf()
    return {"parse": t1 - t0, "verify": t2 - t1, "200 built + to_bytes": t3 - t2}


def loop_only(n: int) -> None:
    """The measured work for --instructions: one round of n calls (set-up included; the difference of two
    runs removes it)."""
    warm_up(n)
    server = digest.DigestServer(SECRET, REALM, algorithms=("MD5",))
    data = calls(n, server, USERS * 1000)
    if os.environ.get("BENCH_LOOP") == "1":
        run(data, server)


def warm_up(n: int) -> None:
    """An unmeasured pass registering the same users once (other Call-IDs, tags and branches), as sip_bench does
    before measuring refreshes; its answers' nonces were issued by another node, so their MACs are checked."""
    run(calls(n, digest.DigestServer(SECRET, REALM, algorithms=("MD5",))), digest.DigestServer(SECRET, REALM))


def instructions(n: int) -> None:
    """Instructions per call: two callgrind runs with the same set-up for n calls, the second one also running
    the loop; their difference is the loop's."""
    counts = {}
    with tempfile.TemporaryDirectory(prefix="sipreg-cg-") as tmp:
        for loop in ("0", "1"):
            out = os.path.join(tmp, f"callgrind.{loop}")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
            subprocess.run(
                [*cmd, "--loop-only", "-n", str(n)],
                check=True,
                env={**os.environ, "BENCH_LOOP": loop},
                capture_output=True,
            )
            with open(out) as f:
                counts[loop] = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
    per_call = (counts["1"] - counts["0"]) / n
    print(f"instructions (callgrind, a loop of {n} calls minus the same run without it):")
    print(f"  per call (challenge + register): {per_call:,.0f}")
    print(f"  per transaction (mean of the two): {per_call / 2:,.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="calls per round (default 2000)")
    ap.add_argument("--rounds", type=int, default=15, help="rounds, best kept (default 15)")
    ap.add_argument("--instructions", action="store_true", help="also count instructions under callgrind")
    ap.add_argument("--loop-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.loop_only:
        loop_only(args.n)
        return 0

    best_c = best_r = float("inf")
    best_parts: dict[str, float] = {}
    warm_up(args.n)
    for i in range(args.rounds):
        server = digest.DigestServer(SECRET, REALM, algorithms=("MD5",))
        data = calls(args.n, server, USERS * 1000 * (i + 2))  # new Call-IDs, tags and branches every round
        c, r = run(data, server)
        best_c, best_r = min(best_c, c), min(best_r, r)
        for k, v in parts(data).items():
            best_parts[k] = min(best_parts.get(k, float("inf")), v)
    us = 1e6 / args.n
    print(f"REGISTER+digest through sip/ (Endpoint, DigestServer), {args.n} calls, best of {args.rounds} rounds:")
    print(f"  challenge transaction (REGISTER -> 401): {best_c * us:7.2f} µs")
    print(f"  register transaction (REGISTER+Authorization -> 200): {best_r * us:7.2f} µs")
    print(f"  per transaction (mean): {(best_c + best_r) * us / 2:7.2f} µs")
    print("  register transaction's pieces, each alone:")
    for k, v in best_parts.items():
        print(f"    {k}: {v * us:6.2f} µs")
    if args.instructions:
        instructions(min(args.n, 1000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
