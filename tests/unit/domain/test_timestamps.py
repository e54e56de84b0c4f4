"""entities.rfc3339_ns keeps each second's text: what it writes is strftime's, whatever the order."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from switchboard.domain.entities import rfc3339_ns


def test_kept_seconds_write_what_strftime_writes():
    assert rfc3339_ns(1_527_000_000_979_704_248) == "2018-05-22T14:40:00.979704248Z"
    rng = random.Random(7)
    values = [rng.randrange(0, 4_000_000_000 * 10**9) for _ in range(3000)]
    values += [v + 1 for v in values[:100]] + [0, 999_999_999, 10**9]
    for ns in values * 2:  # the second time from what was kept (and past the memo's size)
        sec, frac = divmod(ns, 10**9)
        expected = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
        assert rfc3339_ns(ns) == expected
