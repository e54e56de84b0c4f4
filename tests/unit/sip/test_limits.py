"""sip/limits.py: the per-source token bucket."""

from __future__ import annotations

from switchboard.sip.limits import SourceRateLimit


def test_a_burst_then_the_sustained_rate_per_source():
    lim = SourceRateLimit(10, burst=5)
    assert [lim.allow("a", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert lim.allow("b", 0.0)  # another source has its own bucket
    assert lim.allow("a", 0.1) and not lim.allow("a", 0.1)  # 10/s: one more after 0.1 s
    assert sum(lim.allow("a", 1.0 + i / 100) for i in range(100)) <= 5 + 11  # about 10/s over a second


def test_memory_is_bounded():
    lim = SourceRateLimit(1, max_sources=10)
    for i in range(100):
        lim.allow(f"s{i}", 0.0)
    assert len(lim._buckets) <= 10
