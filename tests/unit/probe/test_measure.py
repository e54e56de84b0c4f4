"""VoIP test runs (switchboard.probe.measure) against the test responder on loopback."""

import asyncio
import socket
import statistics
import time
from datetime import UTC, datetime

import pytest

from switchboard.probe.emodel import mos
from switchboard.probe.measure import TestResult, measure_rtts, rfc3550_jitter, run_test, split_target, summarize
from switchboard.probe.responder import Responder, expected_drops
from switchboard.sip.message import parse

# --- summarize(): pure maths ------------------------------------------------------------------------------


def test_summarize_all_answered():
    r = summarize([10.0, 12.0, 11.0, 15.0], "G.711")
    assert (r.packets_sent, r.packets_received, r.loss_pct) == (4, 4, 0.0)
    assert (r.rtt_min_ms, r.rtt_max_ms) == (10.0, 15.0)
    assert r.rtt_avg_ms == pytest.approx(12.0)
    # J = 0 -> 2/16 -> + (1 - J)/16 -> + (4 - J)/16
    j = 0.0
    for d in (2, 1, 4):
        j += (d - j) / 16
    assert r.jitter_ms == pytest.approx(j)
    assert r.mos == pytest.approx(mos(rtt_ms=12.0, jitter_ms=j, loss_pct=0, codec="G.711"))
    assert r.error is None
    assert r.tested_at.tzinfo is UTC


def test_summarize_with_losses_skips_them_for_jitter():
    r = summarize([10.0, None, 20.0, None], "G.729")
    assert (r.packets_sent, r.packets_received, r.loss_pct) == (4, 2, 50.0)
    assert r.rtt_avg_ms == 15.0
    assert r.jitter_ms == pytest.approx(10 / 16)  # D between the two received RTTs
    assert r.mos == pytest.approx(mos(rtt_ms=15.0, jitter_ms=10 / 16, loss_pct=50.0, codec="G.729"))


def test_summarize_constant_rtt_has_no_jitter():
    r = summarize([30.0] * 10, "G.711")
    assert r.jitter_ms == 0.0
    assert r.rtt_min_ms == r.rtt_avg_ms == r.rtt_max_ms == 30.0


def test_summarize_nothing_answered():
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    r = summarize([None, None, None], "G.711", tested_at=when)
    assert r == TestResult(3, 0, 100.0, None, None, None, None, 1.0, when, None)
    assert summarize([], "G.711").loss_pct == 100.0


def test_summarize_single_answer_and_unknown_codec():
    r = summarize([None, 42.0], "G.711")
    assert (r.rtt_min_ms, r.rtt_avg_ms, r.rtt_max_ms, r.jitter_ms, r.loss_pct) == (42.0, 42.0, 42.0, 0.0, 50.0)
    with pytest.raises(ValueError):
        summarize([None], "speex")


def test_rfc3550_jitter_converges_to_mean_abs_difference():
    series = [10.0, 20.0] * 200  # |D| = 10 every time
    assert rfc3550_jitter(series) == pytest.approx(10.0, rel=1e-6)
    assert rfc3550_jitter([]) == rfc3550_jitter([5.0]) == 0.0


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("sip.example.com", ("sip.example.com", 5060)),
        ("10.0.0.1:5070", ("10.0.0.1", 5070)),
        ("[2001:db8::1]:5062", ("2001:db8::1", 5062)),
        ("2001:db8::1", ("2001:db8::1", 5060)),
    ],
)
def test_split_target(target, expected):
    assert split_target(target) == expected


# --- run_test() against the responder -----------------------------------------------------------------


@pytest.fixture
async def responder_factory():
    started: list[Responder] = []

    async def make(**kwargs) -> Responder:
        r = await Responder(**kwargs).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


async def test_clean_path(responder_factory):
    resp = await responder_factory()
    r = await run_test("127.0.0.1", resp.port, count=10, interval_ms=10, codec="G.711")
    assert (r.packets_sent, r.packets_received, r.loss_pct, r.error) == (10, 10, 0.0, None)
    assert 0 < r.rtt_min_ms <= r.rtt_avg_ms <= r.rtt_max_ms < 20
    assert r.mos == pytest.approx(4.4, abs=0.02)
    # each request its own transaction: own Call-ID, CSeq 1, Max-Forwards 70, Via with rport
    assert len({q.call_id for q in resp.requests}) == 10


async def test_request_shape():
    got: list[bytes] = []

    class Catch(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            got.append(data)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Catch, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        await run_test("localhost", port, count=3, interval_ms=1, codec="G.711", timeout=0.05)
    finally:
        transport.close()
    msgs = [parse(d) for d in got]
    assert len(msgs) == 3
    for m in msgs:
        assert m.method == "OPTIONS" and m.uri == f"sip:localhost:{port}"
        assert m.cseq == (1, "OPTIONS") and m.get("Max-Forwards") == "70"
        via = m.get("Via")
        assert via.startswith("SIP/2.0/UDP 127.0.0.1:") and ";branch=z9hG4bK" in via and via.endswith(";rport")
        assert ";tag=" in m.get("From")
    assert len({m.get("Call-ID") for m in msgs}) == 3
    assert len({m.get("Via") for m in msgs}) == 3
    assert len({m.get("From") for m in msgs}) == 3


async def test_delay(responder_factory):
    resp = await responder_factory(delay_ms=50)
    rtts, error = await measure_rtts("127.0.0.1", resp.port, count=20, interval_ms=10)
    assert error is None and None not in rtts
    r = summarize(rtts, "G.711")
    assert abs(r.rtt_avg_ms - 50) <= 10
    # RTT error against the responder's own timestamps (hold time = answered_at - received_at)
    holds = [(q.answered_at - q.received_at) * 1000 for q in resp.requests]
    errors = [rtt - hold for rtt, hold in zip(rtts, holds, strict=True)]
    assert all(e >= 0 for e in errors)
    assert statistics.median(errors) < 2.0


async def test_drop_share_is_exact(responder_factory):
    # The responder decides in arrival order from random.Random(seed); loopback UDP loses nothing and one
    # client's requests arrive in send order, so the number lost is known exactly (tolerance 0).
    resp = await responder_factory(drop=0.3, seed=7)
    r = await run_test("127.0.0.1", resp.port, count=50, interval_ms=10, codec="G.711", timeout=0.5)
    dropped = expected_drops(50, 0.3, seed=7)
    assert r.packets_sent == 50
    assert r.packets_received == 50 - sum(dropped)
    assert r.loss_pct == pytest.approx(100 * sum(dropped) / 50)
    assert [q.dropped for q in resp.requests] == dropped
    assert 0 < r.mos < 4.0


async def test_jitter_lowers_mos(responder_factory):
    clean = await responder_factory()
    jittery = await responder_factory(delay_ms=25, jitter_ms=20, seed=3)
    a, d = await asyncio.gather(
        run_test("127.0.0.1", clean.port, count=50, interval_ms=10, codec="G.711"),
        run_test("127.0.0.1", jittery.port, count=50, interval_ms=10, codec="G.711"),
    )
    assert d.packets_received == 50
    # uniform ±20 ms: E|D| = 40/3 = 13.3 ms; the RFC 3550 estimator reaches ~96% of it after 49 steps
    assert 6 < d.jitter_ms < 20
    assert a.jitter_ms < 1
    assert d.mos < a.mos


async def test_silent_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        start = time.perf_counter()
        r = await run_test("127.0.0.1", sock.getsockname()[1], count=5, interval_ms=20, codec="G.711", timeout=0.5)
        elapsed = time.perf_counter() - start
    finally:
        sock.close()
    assert (r.packets_sent, r.packets_received, r.loss_pct, r.mos) == (5, 0, 100.0, 1.0)
    assert r.rtt_avg_ms is None and r.jitter_ms is None
    last_send = 4 * 0.020
    assert last_send + 0.5 <= elapsed + 0.005 < last_send + 0.5 + 0.25


async def test_unresolvable_host():
    r = await run_test("no-such-host.invalid", count=3, interval_ms=10, codec="G.711", timeout=0.1)
    assert r.error and "no-such-host.invalid" in r.error
    assert (r.packets_received, r.loss_pct, r.mos) == (0, 100.0, 1.0)


async def test_late_answers_are_losses(responder_factory):
    resp = await responder_factory(delay_ms=150)
    r = await run_test("127.0.0.1", resp.port, count=3, interval_ms=10, codec="G.711", timeout=0.1)
    assert (r.packets_received, r.loss_pct) == (0, 100.0)


async def test_sends_do_not_drift(responder_factory):
    resp = await responder_factory()
    await run_test("127.0.0.1", resp.port, count=20, interval_ms=10, codec="G.711")
    arrivals = [q.received_at for q in resp.requests]
    assert arrivals[-1] - arrivals[0] == pytest.approx(0.190, abs=0.03)


async def test_concurrent_tests(responder_factory):
    resp = await responder_factory()
    start = time.perf_counter()
    await run_test("127.0.0.1", resp.port, count=10, interval_ms=20, codec="G.711")
    single = time.perf_counter() - start

    start = time.perf_counter()
    results = await asyncio.gather(
        *(run_test("127.0.0.1", resp.port, count=10, interval_ms=20, codec="G.711") for _ in range(200))
    )
    elapsed = time.perf_counter() - start
    assert elapsed < single * 1.5 + 1.0
    assert all(r.packets_received == 10 for r in results)
    assert all(r.rtt_avg_ms < 50 for r in results)
