"""Per-source request rate limit for the SIP engine (sans-I/O: the caller gives the time).

A token bucket per source address: `rate` requests per second sustained, bursts up to `burst`.
What exceeds it is dropped without an answer (as Kamailio's pike module does): an answer would cost
the same work the limit saves and would tell a flood it is being heard. Off (rate 0) by default:
one address can legitimately carry a whole office behind NAT, an SBC, a load balancer or a carrier.
Memory is bounded: past `max_sources` addresses the table starts again (every bucket full)."""

from __future__ import annotations


class SourceRateLimit:
    __slots__ = ("rate", "burst", "max_sources", "_buckets")

    def __init__(self, rate: float, burst: float | None = None, max_sources: int = 100_000):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self.max_sources = max_sources
        self._buckets: dict[str, list[float]] = {}  # source -> [tokens, time of the last update]

    def allow(self, source: str, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._buckets.clear()
            self._buckets[source] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True
