"""domain/throttle.py: per pair, per source and per account limits, known-good exemptions, bans
that end, admin lifting, bounded memory."""

from __future__ import annotations

from switchboard.domain.throttle import ACCOUNT, PAIR, SOURCE, FailureThrottle, Limits


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**kw) -> tuple[FailureThrottle, Clock]:
    clock = Clock()
    return FailureThrottle(
        Limits(**{"per_pair": 3, "per_source": 5, "per_account": 5, "window": 60, "ban_seconds": 30, **kw}), clock
    ), clock


def fail(th: FailureThrottle, source: str, account: str, n: int) -> None:
    for _ in range(n):
        assert th.check(source, account) is None
        th.failed(source, account)


def test_a_pair_is_banned_at_its_limit_and_nobody_else_is():
    th, _ = make()
    fail(th, "10.0.0.1", "alice", 3)
    assert th.check("10.0.0.1", "alice") == 30
    assert th.check("10.0.0.1", "bob") is None  # another user behind the same address
    assert th.check("10.0.0.2", "alice") is None  # the owner elsewhere
    assert [(b.kind, b.source, b.account, b.failures) for b in th.bans()] == [(PAIR, "10.0.0.1", "alice", 3)]


def test_the_ban_ends_and_old_failures_leave_the_window():
    th, clock = make()
    fail(th, "s", "a", 3)
    clock.now += 29.9
    assert th.check("s", "a") is not None
    clock.now += 0.2
    assert th.check("s", "a") is None and th.bans() == []
    th2, clock2 = make()
    fail(th2, "s", "a", 2)
    clock2.now += 61  # the two failures age out of the window: two more do not ban
    fail(th2, "s", "a", 2)
    assert th2.check("s", "a") is None


def test_a_spraying_source_is_banned_except_for_accounts_it_logged_in_to():
    th, _ = make()
    th.succeeded("s", "regular")
    for i in range(5):
        fail(th, "s", f"victim{i}", 1)
    assert th.check("s", "someone-new") is not None  # the source is banned for strangers
    assert th.check("s", "regular") is None  # a user who logs in from there as usual is not
    assert {b.kind for b in th.bans()} == {SOURCE}


def test_an_account_guessed_from_many_sources_is_banned_for_new_sources_only():
    th, _ = make()
    th.succeeded("home", "alice")
    for i in range(5):
        fail(th, f"bot{i}", "alice", 1)
    assert th.check("bot99", "alice") is not None
    assert th.check("home", "alice") is None
    assert {b.kind for b in th.bans()} == {ACCOUNT}


def test_a_known_good_pair_is_still_banned_by_its_own_failures():
    th, _ = make()
    th.succeeded("s", "a")
    fail(th, "s", "a", 3)
    assert th.check("s", "a") is not None


def test_refused_attempts_do_not_count_and_zero_means_no_limit():
    th, _ = make(per_source=0, per_account=0)
    fail(th, "s", "a", 3)
    for _ in range(100):  # the caller does not verify (nor count) while banned
        assert th.check("s", "a") is not None
    for i in range(50):
        fail(th, "s", f"other{i}", 1)  # no source limit
    assert [b.kind for b in th.bans()] == [PAIR]


def test_lift_by_source_account_or_pair_forgets_the_failures_too():
    th, _ = make(per_account=0, per_source=0)
    fail(th, "s1", "a", 3)
    fail(th, "s2", "a", 3)
    fail(th, "s1", "b", 2)
    assert th.lift(source="s2", account="a") == 1
    assert th.check("s2", "a") is None
    assert th.lift(source="s1") == 1
    th.failed("s1", "b")  # its two earlier failures were forgotten: one more does not ban
    assert th.check("s1", "b") is None
    fail(th, "s3", "c", 3)
    assert th.lift() == 1 and th.bans() == []


def test_memory_is_bounded(monkeypatch):
    from switchboard.domain import throttle

    monkeypatch.setattr(throttle, "_MAX_KEYS", 50)
    th, _ = make()
    for i in range(1000):
        th.failed(f"s{i}", f"a{i}")
        th.succeeded(f"s{i}", f"a{i}")
    assert len(th._failures) <= 50 and len(th._good) <= 50


def test_failed_says_when_a_ban_begins_and_a_mirror_holds_the_same_bans():
    """SIP workers: the main process counts (failed() tells it when to share) and each worker
    holds its snapshot (mirror()), checking with its own known-good pairs."""
    main, clock = make()
    assert [main.failed("10.0.0.1", "alice") for _ in range(3)] == [False, False, True]  # the pair's limit
    worker, wclock = make()
    worker.succeeded("10.0.0.9", "bob")
    worker.mirror(main.snapshot())
    assert worker.check("10.0.0.1", "alice") == 30 and worker.check("10.0.0.1", "carol") is None
    assert [(b.kind, b.source, b.account, b.failures) for b in worker.bans()] == [(PAIR, "10.0.0.1", "alice", 3)]
    for name in ("b1", "b2", "b3", "b4", "b5"):  # 5 failures from 10.0.0.9 over names: the source is banned
        main.failed("10.0.0.9", name)
    worker.mirror(main.snapshot())
    assert worker.check("10.0.0.9", "dave") is not None
    assert worker.check("10.0.0.9", "bob") is None  # known good here: exempt, as in one process
    wclock.now += 31
    assert worker.check("10.0.0.1", "alice") is None and worker.bans() == []  # the bans end on time
    main.lift()
    worker.mirror(main.snapshot())
    assert worker.bans() == []
