"""Searches as pbx_find_extension does them: (context, exten, priority), labels, exists, canmatch, matchmore."""

import pytest

from switchboard.asterisk.dialplan import CANMATCH, MATCH, MATCHMORE, extension_match, validate

PLAN = """\
[general]
autofallthrough=no

[main]
include => inc
exten => 100,1,NoOp(100-1)
exten => _1XX,1,NoOp(1XX-1)
same => 2,NoOp(1XX-2)
same => n(lab),NoOp(1XX-lab)
exten => _1X.,1,NoOp(1X.-1)
same => 4,NoOp(1X.-4)
exten => 200,hint,PJSIP/200
exten => _2XX,1,NoOp(2XX)
exten => 5,1,NoOp(five)
exten => 55,1,NoOp(fifty-five)
exten => _6!,1,NoOp(six-bang)
exten => _7X.,1,NoOp(seven)

[inc]
exten => 100,1,NoOp(inc-1)
same => 5,NoOp(inc-5)
exten => _9XXX,1,NoOp(nine)
"""


@pytest.fixture(scope="module")
def plan():
    return validate(PLAN)


def _args(found):
    return found.step.args if found else None


def test_priority_lookup_goes_on_to_the_next_matching_extension(plan):
    assert _args(plan.find("main", "100", 1)) == "100-1"  # literal first
    assert _args(plan.find("main", "100", 2)) == "1XX-2"  # 100 has no priority 2: the walk goes on
    assert _args(plan.find("main", "100", 3)) == "1XX-lab"
    assert _args(plan.find("main", "100", 4)) == "1X.-4"  # then _1X.
    found = plan.find("main", "100", 5)  # then the included context
    assert _args(found) == "inc-5" and found.context == "inc"
    assert plan.find("main", "100", 6) is None
    assert plan.find("main", "150", 4) is not None and plan.find("main", "15", 4) is None


def test_hint_only_extension_never_takes_a_call(plan):
    assert _args(plan.find("main", "200", 1)) == "2XX"
    assert plan.lookup("main", "200").exten == "_2XX"


def test_labels(plan):
    found = plan.find_label("main", "123", "lab")
    assert found.step.priority == 3 and found.extension.exten == "_1XX"
    assert plan.find_label("main", "123", "LAB") is None  # labels are case-sensitive
    assert plan.find_label("main", "100", "lab").step.priority == 3  # 100 has no such label: on to _1XX


def test_exists_and_autofallthrough_setting(plan):
    assert plan.exists("main", "9123")
    assert not plan.exists("main", "912")
    assert plan.exists("main", "100", 5)
    assert not plan.exists("nope", "100")
    assert plan.autofallthrough is False
    assert validate("[a]\nexten => s,1,NoOp\n").autofallthrough is True


def test_can_match_more(plan):
    assert plan.can_match_more("main", "5")  # 55 could still come
    assert not plan.can_match_more("main", "55")
    assert plan.can_match_more("main", "")
    assert plan.can_match_more("main", "9")  # through the include
    assert plan.can_match_more("main", "912")
    assert not plan.can_match_more("main", "9123")
    assert plan.can_match_more("main", "71")  # '.' can always take more
    assert plan.can_match_more("main", "7123456")
    assert not plan.can_match_more("main", "6")  # an extension ending in '!' makes the answer final
    assert not plan.can_match_more("main", "8")
    assert plan.can_match("main", "5") and plan.can_match("main", "9") and not plan.can_match("main", "8")


@pytest.mark.parametrize(
    ("pattern", "data", "mode", "expected"),
    [
        ("100", "100", MATCH, 1),
        ("100", "10", MATCH, 0),
        ("100", "10", CANMATCH, 1),
        ("100", "10", MATCHMORE, 1),
        ("100", "100", MATCHMORE, 0),
        ("100", "", MATCHMORE, 1),
        ("555-1234", "5551234", MATCH, 1),
        ("_X.", "1", MATCH, 0),
        ("_X.", "1", CANMATCH, 1),
        ("_X.", "12", MATCHMORE, 1),
        ("_XX", "12", MATCHMORE, 0),
        ("_XX", "12", CANMATCH, 1),
        ("_XX", "123", CANMATCH, 0),
        ("_1!", "1", MATCHMORE, 2),
        ("_1!", "123", MATCH, 2),
        ("_N", "1", CANMATCH, 0),
        ("_[a-c]X", "b", MATCHMORE, 1),
    ],
)
def test_extension_match_modes(pattern, data, mode, expected):
    assert extension_match(pattern, data, mode) == expected


def test_context_order_is_asterisks(plan):
    ctx = validate(
        "[c]\nexten => _X.,1,NoOp\nexten => _1!,1,NoOp\nexten => _1XX,1,NoOp\nexten => _1[0-5]X,1,NoOp\n"
        "exten => _NXX,1,NoOp\nexten => 1,1,NoOp\nexten => _1X,1,NoOp\nexten => 100/_555X,1,NoOp\n"
        "exten => 100,1,NoOp\n"
    ).contexts["c"]
    order = [(e.exten, e.callerid) for e in ctx.ordered()]
    assert order == [
        ("1", None),
        ("100", "_555X"),
        ("100", None),
        ("_1[0-5]X", None),
        ("_1X", None),
        ("_1XX", None),
        ("_1!", None),
        ("_NXX", None),
        ("_X.", None),
    ]
