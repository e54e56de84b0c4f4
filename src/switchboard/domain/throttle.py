"""Failed-authentication throttling that an attacker can neither dodge nor turn against other users.

One `FailureThrottle` per protocol (HTTP logins, SIP digest). Failures are counted in a sliding
window (60 s) under three keys, and each key has its own limit:

- **pair** (source address, account): the guesses one source makes at one account. Past the limit
  that pair is banned: the attacker stops guessing that account from there, and nobody else is
  affected (the account's owner at another address, other users at this address).
- **source** (address, across accounts): a source spraying many accounts. Past the limit the source
  is banned for every account it has not authenticated to successfully before (see below).
- **account** (across sources): one account guessed from many addresses (a botnet, or rotating
  forged `X-Forwarded-For` values where a proxy is trusted). Past the limit the account is banned
  for every source it has not authenticated from successfully before.

**Known-good pairs**: a (source, account) that authenticated successfully in the last
`remember_seconds` (24 h) is exempt from the source and account bans, never from its own pair ban.
So a user behind the same NAT as an attacker, or whose account is under a distributed attack,
still gets in from where they usually do, while the attacker's guesses stay bounded per pair.

A ban lasts `ban_seconds` from the failure that crossed the limit (fail2ban's findtime/maxretry/
bantime); requests refused while banned are not verified and not counted again (they cost nothing
and do not extend the ban). `bans()` lists current bans and `lift()` removes them (the admin
routes). Pure: no I/O, the clock is a parameter; memory is bounded (oldest entries dropped)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

PAIR, SOURCE, ACCOUNT = "pair", "source", "account"
_MAX_KEYS = 100_000


@dataclass(frozen=True)
class Limits:
    """Failures per window allowed per key kind (0: that kind is not limited)."""

    per_pair: int = 20
    per_source: int = 100
    per_account: int = 100
    window: float = 60.0
    ban_seconds: float = 60.0
    remember_seconds: float = 86_400.0


@dataclass(frozen=True)
class Ban:
    kind: str  # pair | source | account
    source: str | None
    account: str | None
    failures: int
    until: float  # the clock's time (monotonic by default)

    def as_dict(self, now: float, wall: float) -> dict:
        """For the admin view: seconds left and the wall-clock end."""
        left = max(0.0, self.until - now)
        return {
            "kind": self.kind,
            "source": self.source,
            "account": self.account,
            "failures": self.failures,
            "seconds_left": round(left, 1),
            "until": wall + left,
        }


class FailureThrottle:
    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self._clock = clock
        self._failures: OrderedDict[tuple, deque[float]] = OrderedDict()  # key -> failure times in the window
        self._bans: dict[tuple, Ban] = {}
        self._good: OrderedDict[tuple[str, str], float] = OrderedDict()  # (source, account) -> last success
        # SIP workers (engine/workers.py): set in the main process, whose throttle counts every
        # process's failures; awaited after the bans changed, it resolves once every process has them
        self.shared: Callable[[], Awaitable[None]] | None = None

    @staticmethod
    def _keys(source: str, account: str) -> tuple[tuple, tuple, tuple]:
        return (PAIR, source, account), (SOURCE, source, None), (ACCOUNT, None, account)

    def _limit(self, kind: str) -> int:
        lim = self.limits
        return lim.per_pair if kind == PAIR else lim.per_source if kind == SOURCE else lim.per_account

    def _known_good(self, source: str, account: str, now: float) -> bool:
        seen = self._good.get((source, account))
        return seen is not None and now - seen < self.limits.remember_seconds

    def _active(self, key: tuple, now: float) -> Ban | None:
        ban = self._bans.get(key)
        if ban is not None and ban.until <= now:
            del self._bans[key]
            return None
        return ban

    def check(self, source: str, account: str) -> float | None:
        """None when this source may try this account now; else the seconds until it may."""
        if not self._bans:
            return None
        now = self._clock()
        good = self._known_good(source, account, now)
        worst = None
        for key in self._keys(source, account):
            if good and key[0] != PAIR:
                continue
            ban = self._active(key, now)
            if ban is not None:
                left = ban.until - now
                worst = left if worst is None else max(worst, left)
        return worst

    def failed(self, source: str, account: str) -> bool:
        """Count a failed authentication; bans the keys whose limit it reaches (True if any)."""
        banned = False
        now = self._clock()
        lim = self.limits
        for key in self._keys(source, account):
            limit = self._limit(key[0])
            if limit <= 0:
                continue
            window = self._failures.get(key)
            if window is None:
                if len(self._failures) >= _MAX_KEYS:
                    self._failures.popitem(last=False)
                window = self._failures[key] = deque()
            else:
                self._failures.move_to_end(key)
            while window and now - window[0] > lim.window:
                window.popleft()
            window.append(now)
            if len(window) >= limit:
                if len(self._bans) >= _MAX_KEYS:
                    self._prune(now)
                self._bans[key] = Ban(key[0], key[1], key[2], len(window), now + lim.ban_seconds)
                banned = True
        return banned

    def succeeded(self, source: str, account: str) -> None:
        """Remember that this source authenticated this account (exempt from source/account bans)."""
        pair = (source, account)
        self._good[pair] = self._clock()
        self._good.move_to_end(pair)
        if len(self._good) > _MAX_KEYS:
            self._good.popitem(last=False)

    def _prune(self, now: float) -> None:
        for key in [k for k, b in self._bans.items() if b.until <= now]:
            del self._bans[key]
        while len(self._bans) >= _MAX_KEYS:
            del self._bans[next(iter(self._bans))]

    def bans(self) -> list[Ban]:
        """The bans in force, longest remaining first."""
        now = self._clock()
        self._prune(now)
        return sorted(self._bans.values(), key=lambda b: b.until, reverse=True)

    def snapshot(self) -> list[list]:
        """The bans in force as [kind, source, account, failures, seconds left] (for mirror())."""
        now = self._clock()
        return [[b.kind, b.source, b.account, b.failures, b.until - now] for b in self.bans()]

    def mirror(self, bans: list[list]) -> None:
        """Hold exactly these bans (another process's snapshot()); failures are counted there."""
        now = self._clock()
        self._bans = {(k, s, a): Ban(k, s, a, n, now + left) for k, s, a, n, left in bans}

    def lift(self, *, source: str | None = None, account: str | None = None) -> int:
        """Lift the bans (and forget the failures) that name this source and/or account: with both,
        only their pair's; with one, every ban naming it; with neither, all. Returns how many bans."""

        def hit(key: tuple) -> bool:
            _, s, a = key
            if source is not None and account is not None:
                return s == source and a == account
            return (source is None or s == source) and (account is None or a == account)

        lifted = [k for k in self._bans if hit(k)]
        for k in lifted:
            del self._bans[k]
        for k in [k for k in self._failures if hit(k)]:
            del self._failures[k]
        return len(lifted)
