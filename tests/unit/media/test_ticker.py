import asyncio
import time

from switchboard.media.ticker import Ticker


class Counter:
    def __init__(self, stop_after: int, busy: float = 0.0):
        self.n, self.stop_after, self.busy = 0, stop_after, busy
        self.times: list[float] = []

    def on_tick(self) -> bool:
        self.times.append(time.monotonic())
        self.n += 1
        if self.busy and self.n % 2:
            time.sleep(self.busy)  # a slow tick must not delay the schedule
        return self.n < self.stop_after


async def test_ticks_at_20ms_without_drift():
    ticker = Ticker()
    slow = Counter(50, busy=0.012)
    fast = Counter(25)
    start = time.monotonic()
    ticker.add(slow)
    ticker.add(fast)
    while slow.n < 50:
        await asyncio.sleep(0.01)
    elapsed = slow.times[-1] - start
    # 50 ticks at 20 ms = 1.0 s; a drifting timer (sleep 20 ms after each tick) would take ~1.3 s
    assert 0.95 < elapsed < 1.1, elapsed
    assert fast.n == 25 and fast not in ticker
    await asyncio.sleep(0.05)
    assert ticker._handle is None  # stopped with nobody subscribed
    assert ticker.rebases == 0


async def test_rebases_after_a_long_stall():
    ticker = Ticker()
    c = Counter(1000)
    ticker.add(c)
    await asyncio.sleep(0.05)
    time.sleep(0.5)  # the loop stalls for 25 ticks
    n = c.n
    await asyncio.sleep(0.1)
    assert c.n - n <= 8  # no burst of 25 catch-up ticks
    assert ticker.rebases == 1
    ticker.stop()


async def test_failing_subscriber_is_dropped():
    ticker = Ticker()

    class Broken:
        def on_tick(self):
            raise RuntimeError("boom")

    ok, broken = Counter(3), Broken()
    ticker.add(broken)
    ticker.add(ok)
    await asyncio.sleep(0.1)
    assert ok.n == 3 and broken not in ticker
