"""app_queue's pure rules: empty conditions, member lines, the strategies' ranking (calc_metric)."""

from __future__ import annotations

import time

from switchboard.engine.apps.queue import metrics
from switchboard.engine.queuelive import MemberSpec, QueueConf, QueueLive, parse_empty


class FakePbx:
    def __init__(self):
        self.queue_live = QueueLive()


def conf(strategy: str, *members: str, **kw) -> QueueConf:
    return QueueConf(name="q", strategy=strategy, members=[MemberSpec.parse(m) for m in members], **kw)


def order(pbx, qc, linpos=0) -> list[str]:
    return [s.interface for _, _, s in metrics(pbx, qc, pbx.queue_live.member_specs(qc), linpos)]


def test_empty_conditions_as_asterisk():
    assert parse_empty("yes", joinempty=True) == frozenset()
    assert parse_empty("no", joinempty=True) == {"penalty", "invalid", "paused"}
    assert parse_empty("yes", joinempty=False) == {"penalty", "invalid", "paused"}
    assert parse_empty("strict", joinempty=True) == {"penalty", "invalid", "paused", "unavailable"}
    assert parse_empty("paused,inuse,wrapup", joinempty=True) == {"paused", "inuse", "wrapup"}


def test_member_line():
    m = MemberSpec.parse("PJSIP/a,2,Alice,Custom:a,no,10")
    assert (m.interface, m.penalty, m.display, m.state_if, m.ringinuse, m.wrapuptime) == (
        "PJSIP/a", 2, "Alice", "Custom:a", False, 10,
    )  # fmt: skip
    assert MemberSpec.parse("PJSIP/b").state_if == "PJSIP/b" and MemberSpec.parse("PJSIP/b").ringinuse is None


def test_penalty_tiers_and_penaltymemberslimit():
    pbx = FakePbx()
    qc = conf("ringall", "PJSIP/a,1", "PJSIP/b,0")
    assert order(pbx, qc) == ["PJSIP/b", "PJSIP/a"]
    qc = conf("linear", "PJSIP/a,1", "PJSIP/b,0", penaltymemberslimit=5)
    assert order(pbx, qc) == ["PJSIP/a", "PJSIP/b"], "penalties ignored with few members"


def test_rotation_fewest_and_least_recent():
    pbx = FakePbx()
    qc = conf("rrordered", "PJSIP/a", "PJSIP/b", "PJSIP/c")
    pbx.queue_live.stat("q").rrpos = 2
    assert order(pbx, qc) == ["PJSIP/c", "PJSIP/a", "PJSIP/b"]
    assert order(pbx, conf("linear", "PJSIP/a", "PJSIP/b", "PJSIP/c"), linpos=1)[0] == "PJSIP/b"
    live = pbx.queue_live
    live.member("q", "PJSIP/a").calls = 3
    live.member("q", "PJSIP/b").calls = 1
    assert order(pbx, conf("fewestcalls", "PJSIP/a", "PJSIP/b", "PJSIP/c"))[:2] == ["PJSIP/c", "PJSIP/b"]
    live.member("q", "PJSIP/a").lastcall = time.time() - 100
    live.member("q", "PJSIP/b").lastcall = time.time() - 10
    assert order(pbx, conf("leastrecent", "PJSIP/a", "PJSIP/b", "PJSIP/c")) == ["PJSIP/c", "PJSIP/a", "PJSIP/b"]


def test_priority_places_a_caller_ahead():
    from switchboard.engine.queuelive import Entry

    live = QueueLive()
    a, b, c = (Entry("q", object(), prio=p) for p in (0, 0, 5))
    assert live.join(a) == 1 and live.join(b) == 2 and live.join(c) == 1
    assert [live.position(e) for e in (a, b, c)] == [2, 3, 1]
