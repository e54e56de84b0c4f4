"""One 20 ms clock for everything the engine generates (played files, hold music, DTMF).

Ticks are scheduled against a monotonic base (`base + n * interval` on the loop's clock), so a
late tick does not delay the following ones: the schedule catches up (a short burst) instead of
drifting. If the loop was stalled for longer than `max_lag` the base is reset rather than
sending a long burst. The ticker stops when nobody is subscribed and starts again on `add`.
A subscriber is any object with `on_tick() -> bool`; False unsubscribes it.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, interval: float = 0.02, max_lag: float = 0.2, loop: asyncio.AbstractEventLoop | None = None):
        self.interval = interval
        self.max_lag = max_lag
        self._loop = loop
        self._subs: list = []
        self._handle: asyncio.TimerHandle | None = None
        self._base = 0.0
        self._n = 0
        self.ticks = 0
        self.rebases = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def add(self, sub) -> None:
        if sub not in self._subs:
            self._subs.append(sub)
        if self._handle is None:
            self._base = self.loop.time()
            self._n = 1
            self._handle = self.loop.call_at(self._base + self.interval, self._fire)

    def remove(self, sub) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def __contains__(self, sub) -> bool:
        return sub in self._subs

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._subs.clear()

    def _fire(self) -> None:
        self.ticks += 1
        for sub in list(self._subs):
            try:
                keep = sub.on_tick()
            except Exception:  # one broken generator must not stop the others
                log.exception("media generator failed; removed")
                keep = False
            if not keep:
                self.remove(sub)
        if not self._subs:
            self._handle = None
            return
        self._n += 1
        due = self._base + self._n * self.interval
        now = self.loop.time()
        if now - due > self.max_lag:
            self.rebases += 1
            self._base, self._n = now, 1
            due = now + self.interval
        self._handle = self.loop.call_at(due, self._fire)
