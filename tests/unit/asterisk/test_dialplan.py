"""extensions.conf semantics: validation, the dialplan model, pattern matching, lookup, jade views, adpma compile."""

from __future__ import annotations

import time

import pytest

from switchboard.asterisk.conf import ConfError, parse, render_section
from switchboard.asterisk.dialplan import (
    Dialplan,
    Step,
    compile_adpmas,
    pattern_matches,
    sdp_lines,
    sdp_view,
    validate,
)

SPEC = """\
[general]
static = yes
writeprotect = no

[globals]
TRUNK = PJSIP/trunk

[jade-queue]
exten => _X.,1,NoOp(jade-queue)
same => n,Queue(jade-queue)

[jade_demo]
exten => 100,1,NoOp(sample_park)
same => n,park()
exten => _X.,1,BackGround(demo-congrats)
same => n,Hangup()

[jade_demo2]

[jade_demo3]
"""


def test_spec_example_validates():
    plan = validate(SPEC)
    assert isinstance(plan, Dialplan)
    assert list(plan.contexts) == ["jade-queue", "jade_demo", "jade_demo2", "jade_demo3"]
    assert plan.general == {"static": "yes", "writeprotect": "no"}
    assert plan.globals == {"TRUNK": "PJSIP/trunk"}
    queue = plan.contexts["jade-queue"].extensions[0]
    assert (queue.exten, queue.callerid, queue.hint) == ("_X.", None, None)
    assert queue.priorities == [
        Step(1, None, "NoOp", "jade-queue", line=9),
        Step(2, None, "Queue", "jade-queue", line=10),
    ]
    demo = plan.contexts["jade_demo"]
    assert [e.exten for e in demo.extensions] == ["100", "_X."]
    assert [(s.priority, s.app, s.args) for s in demo.extensions[0].priorities] == [
        (1, "NoOp", "sample_park"),
        (2, "park", ""),
    ]
    assert plan.contexts["jade_demo2"].extensions == []


def test_spec_sdp_view_and_round_trip():
    view = sdp_view(SPEC)
    assert view == [
        {"name": "jade-queue", "data": [{"exten": "> _X.,1,NoOp(jade-queue)"}, {"same": "> n,Queue(jade-queue)"}]},
        {
            "name": "jade_demo",
            "data": [
                {"exten": "> 100,1,NoOp(sample_park)"},
                {"same": "> n,park()"},
                {"exten": "> _X.,1,BackGround(demo-congrats)"},
                {"same": "> n,Hangup()"},
            ],
        },
        {"name": "jade_demo2", "data": []},
        {"name": "jade_demo3", "data": []},
    ]
    assert sdp_lines(view[0]["data"]) == [
        ("exten", "=>", "_X.,1,NoOp(jade-queue)"),
        ("same", "=>", "n,Queue(jade-queue)"),
    ]
    rebuilt = "\n".join(render_section(ctx["name"], sdp_lines(ctx["data"])) for ctx in view)
    assert sdp_view(rebuilt) == view
    original = parse(SPEC)
    for ctx in view:
        assert [(o.key, o.op, o.value) for o in parse(rebuilt).get(ctx["name"]).options] == [
            (o.key, o.op, o.value) for o in original.get(ctx["name"]).options
        ]
    assert validate(rebuilt).contexts.keys() == validate(SPEC).contexts.keys()


def test_sdp_view_details():
    text = "[t](!)\nexten=1,1,NoOp()\n[c](t)\ninclude   =>   t2 ; comment\nexten=>2,1,Set(a=b\\;c)\n[t2]\n"
    assert sdp_view(text) == [
        {"name": "t", "data": [{"exten": "1,1,NoOp()"}]},
        {"name": "c", "data": [{"include": ">   t2"}, {"exten": ">2,1,Set(a=b;c)"}]},
        {"name": "t2", "data": []},
    ]
    assert sdp_lines([{"include": ">   t2"}, {"exten": "1,1,NoOp()"}, {"x": ">"}]) == [
        ("include", "=>", "t2"),
        ("exten", "=", "1,1,NoOp()"),
        ("x", "=>", ""),
    ]


@pytest.mark.parametrize("item", [{}, {"a": "1", "b": "2"}, {"a": 1}, {1: "a"}, ["exten", "x"], "exten => x", None])
def test_sdp_lines_rejects_bad_items(item):
    with pytest.raises(ConfError, match="data item 1"):
        sdp_lines([{"ok": "> 1"}, item])


def test_features_hint_labels_callerid_includes_switches():
    plan = validate(
        """\
[from-internal]
include => shared
include => timed,09:00-17:00,mon-fri,*,*
ignorepat => 9
switch => Loopback/other
exten => 200,hint,PJSIP/200&PJSIP/201
exten => 200,1(start),Dial(PJSIP/200,20)
same => n(vm),VoiceMail(200@default,u)
same => 10,Hangup
exten => 200/5551234,1,Playback(vip)
exten => _9NXXXXXX,1,Set(CALLERID(num)=${CALLERID(num):1})
same => n,Dial(${TRUNK}/${EXTEN:1},,tT)
same => n,GotoIf($[${DIALSTATUS} = BUSY]?busy)
exten => s,1,Answer()
exten => s,2,Wait(1)

[shared]
exten => 999,1,NoOp

[timed]
"""
    )
    ctx = plan.contexts["from-internal"]
    assert ctx.includes == ["shared", "timed"]
    assert ctx.ignorepats == ["9"] and ctx.switches == ["Loopback/other"]
    ext200 = ctx.extensions[0]
    assert ext200.hint == "PJSIP/200&PJSIP/201"
    assert [(s.priority, s.label, s.app) for s in ext200.priorities] == [
        (1, "start", "Dial"),
        (2, "vm", "VoiceMail"),
        (10, None, "Hangup"),
    ]
    vip = ctx.extensions[1]
    assert (vip.exten, vip.callerid) == ("200", "5551234")
    outbound = ctx.extensions[2]
    assert outbound.priorities[0].args == "CALLERID(num)=${CALLERID(num):1}"
    assert outbound.priorities[2].args == "$[${DIALSTATUS} = BUSY]?busy"
    assert [s.priority for s in ctx.extensions[3].priorities] == [1, 2]


def test_templates_and_inheritance():
    plan = validate(
        """\
[common](!)
exten => i,1,Playback(invalid)
exten => h,1,Hangup()

[sales](common)
exten => 100,1,Dial(PJSIP/100)
same => n,Hangup()

[support](common)
exten => h,2,NoOp(after common)
"""
    )
    assert list(plan.contexts) == ["sales", "support"]
    assert list(plan.templates) == ["common"]
    assert [e.exten for e in plan.contexts["sales"].extensions] == ["i", "h", "100"]
    assert [s.priority for s in plan.contexts["support"].extensions[1].priorities] == [1, 2]


def test_repeated_context_sections_merge():
    plan = validate("[a]\nexten => 1,1,NoOp()\n[b]\n[a]\nexten => 1,2,NoOp()\nexten => 2,1,NoOp()\n")
    assert [e.exten for e in plan.contexts["a"].extensions] == ["1", "2"]
    assert len(plan.contexts["a"].extensions[0].priorities) == 2
    with pytest.raises(ConfError) as info:
        validate("[a]\nexten => 1,1,NoOp()\n[a]\nexten => 1,1,NoOp()\n")
    assert info.value.line == 4


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("exten => ,1,NoOp()", 2, "empty extension"),
        ("exten => _,1,NoOp()", 2, "empty pattern"),
        ("exten => _[12X,1,NoOp()", 2, "unterminated '['"),
        ("exten => _[]X,1,NoOp()", 2, "empty character class"),
        ("exten => _[5-1]X,1,NoOp()", 2, "bad range 5-1"),
        ("exten => _X.X,1,NoOp()", 2, "'.' is only allowed at the end"),
        ("exten => _X!X,1,NoOp()", 2, "'!' is only allowed at the end"),
        ("exten => _X.!,1,NoOp()", 2, "'.' is only allowed at the end"),
        ("exten => _X X,1,NoOp()", 2, "invalid character ' '"),
        ("exten => 1 2,1,NoOp()", 2, "invalid extension"),
        ("exten => 100/,1,NoOp()", 2, "empty caller id match"),
        ("exten => 100/_[,1,NoOp()", 2, "unterminated '['"),
        ("exten => 100", 2, "missing priority"),
        ("exten => 100,1", 2, "missing application"),
        ("exten => 100,1,", 2, "missing application"),
        ("exten => 100,x,NoOp()", 2, "invalid priority 'x'"),
        ("exten => 100,0,NoOp()", 2, "positive"),
        ("exten => 100,1(),NoOp()", 2, "invalid label ''"),
        ("exten => 100,1(a b),NoOp()", 2, "invalid label"),
        ("exten => 100,n,NoOp()", 2, "priority n without a previous priority for 100"),
        ("exten => 100,hint,PJSIP/1\nexten => 100,n,NoOp()", 3, "priority n without a previous priority for 100"),
        ("exten => 100,2,NoOp()", 2, "first priority of 100 must be 1"),
        ("exten => 100,1,NoOp()\nexten => 100,1,NoOp()", 3, "duplicate priority 1 for 100"),
        ("exten => 100,1,NoOp()\nsame => n,NoOp()\nexten => 100,2,NoOp()", 4, "duplicate priority 2"),
        ("exten => 100,1(a),NoOp()\nsame => n(a),NoOp()", 3, "duplicate label"),
        ("exten => 100,hint,A\nexten => 100,hint,B", 3, "duplicate hint"),
        ("exten => 100,hint(x),A", 2, "a hint cannot have a label"),
        ("exten => 100,hint,", 2, "empty hint"),
        ("same => n,NoOp()", 2, "same => before any exten"),
        ("include => nowhere", 2, "include of unknown context nowhere"),
        ("include => ,09:00-17:00", 2, "needs a context name"),
        ("include => tpl", 2, "templates are not contexts"),
        ("ignorepat =>", 2, "ignorepat => needs a value"),
        ("foo => bar", 2, "unknown dialplan directive foo"),
        ("exten => 1,1,NoOp(unbalanced", 2, "unbalanced '('"),
        ("exten => 1,1,NoOp((a)", 2, "unbalanced '('"),
        ("exten => 1,1,NoOp(a)b", 2, "unexpected text"),
        ("exten => 1,1,No-Op(a)", 2, "invalid application name"),
        ("exten => 1,1,(a)", 2, "invalid application name"),
        ("exten => 1,1,Dial PJSIP/1", 2, "invalid application name"),
    ],
)
def test_rejections(body, line, reason):
    text = "[ctx]\n" + body + "\n[tpl](!)\n"
    with pytest.raises(ConfError) as info:
        validate(text)
    assert info.value.line == line
    assert reason in info.value.reason


def test_rejections_from_conf_layer():
    with pytest.raises(ConfError) as info:
        validate("[a]\nexten => 1,1,NoOp()\nnot an option\n")
    assert info.value.line == 3
    with pytest.raises(ConfError) as info:
        validate("[a](missing)\n")
    assert info.value.line == 1 and "unknown template" in info.value.reason
    with pytest.raises(ConfError, match="cycle"):
        validate("[a](b)\n[b](a)\n")


def test_app_argument_forms():
    plan = validate(
        "[c]\nexten => 1,1,Set(X=${CUT(A,,1)}(x))\nsame => n,NoOp(a\\)b)\nsame => n,Verbose(1,$[1+(2*3)])\n"
        "same => n,Answer\nsame => n , NoOp ( spaced )\n"
    )
    steps = plan.contexts["c"].extensions[0].priorities
    assert [(s.app, s.args) for s in steps] == [
        ("Set", "X=${CUT(A,,1)}(x)"),
        ("NoOp", "a\\)b"),
        ("Verbose", "1,$[1+(2*3)]"),
        ("Answer", ""),
        ("NoOp", " spaced "),
    ]


@pytest.mark.parametrize(
    ("pattern", "number", "expected"),
    [
        ("_X.", "12", True),
        ("_X.", "1", False),
        ("_X.", "1*#a", True),
        ("_X!", "1", True),
        ("_NXX", "200", True),
        ("_NXX", "100", False),
        ("_NXX", "20", False),
        ("_NXX", "2000", False),
        ("_ZXX", "100", True),
        ("_ZXX", "010", False),
        ("_[1-5]XX", "599", True),
        ("_[1-5]XX", "699", False),
        ("_[13-5]X", "30", True),
        ("_[13-5]X", "20", False),
        ("_9!", "9", True),
        ("_9!", "9123", True),
        ("_9!", "8", False),
        ("_.", "anything", True),
        ("_!", "", True),
        ("_1-800-NXXXXXX", "18002223333", True),
        ("_nxx", "299", True),
        ("_sip*X", "SIP*1", True),
        ("_*#[a-c]", "*#B", True),
        ("100", "100", True),
        ("100", "1000", False),
        ("s", "S", True),
        ("fax", "fax", True),
        ("_X", "x", False),
    ],
)
def test_pattern_matches(pattern, number, expected):
    assert pattern_matches(pattern, number) is expected


def test_pattern_matches_rejects_bad_patterns():
    with pytest.raises(ConfError) as info:
        pattern_matches("_[5-1]", "3")
    assert info.value.line is None and "bad range" in info.value.reason


LOOKUP = """\
[main]
include => more
include => loop
exten => _X.,1,NoOp(any)
exten => _1XX,1,NoOp(1xx)
exten => _1[0-5]X,1,NoOp(class)
exten => _10X,1,NoOp(10x)
exten => _1!,1,NoOp(bang)
exten => 100,1,NoOp(literal)
exten => 100/_555X,1,NoOp(vip)
exten => 300,hint,PJSIP/300

[more]
include => main
exten => 700,1,NoOp(more)
exten => _X.,1,NoOp(shadowed)

[loop]
include => loop
exten => 800,1,NoOp(loop)
"""


def _app_args(ext):
    return ext.priorities[0].args if ext else None


def test_lookup_precedence_and_includes():
    plan = validate(LOOKUP)
    assert _app_args(plan.lookup("main", "100")) == "literal"
    assert _app_args(plan.lookup("main", "100", callerid="5551")) == "vip"
    assert _app_args(plan.lookup("main", "100", callerid="6661")) == "literal"
    assert _app_args(plan.lookup("main", "105")) == "10x"
    assert _app_args(plan.lookup("main", "125")) == "class"
    assert _app_args(plan.lookup("main", "175")) == "1xx"
    assert _app_args(plan.lookup("main", "1755")) == "bang"  # position 1: literal '1' beats X
    assert _app_args(plan.lookup("main", "7000")) == "any"
    assert _app_args(plan.lookup("main", "1")) == "bang"
    assert _app_args(plan.lookup("main", "700")) == "any"  # own patterns before includes
    assert _app_args(plan.lookup("more", "700")) == "more"
    assert _app_args(plan.lookup("more", "123")) == "shadowed"
    assert _app_args(plan.lookup("main", "300")) == "any"  # hint-only extensions do not take calls
    assert _app_args(plan.lookup("loop", "800")) == "loop"
    assert plan.lookup("loop", "801") is None
    assert plan.lookup("nope", "1") is None


def test_lookup_follows_includes_depth_first():
    plan = validate(
        "[a]\ninclude => b\ninclude => c\n[b]\ninclude => d\n[c]\nexten => 5,1,NoOp(c)\n[d]\nexten => _X,1,NoOp(d)\n"
    )
    assert _app_args(plan.lookup("a", "5")) == "d"
    assert _app_args(plan.lookup("c", "5")) == "c"


def test_compile_adpmas_validates():
    adpmas = [
        {"uuid": "11111111-aaaa", "name": "Night (mode)\nshift", "detail": "after hours"},
        {"uuid": "22222222-bbbb", "name": "Empty group", "detail": None},
    ]
    adps = [
        {"uuid": "r3", "dpma_uuid": "11111111-aaaa", "name": "hangup", "sequence": 30, "command": "Hangup()"},
        {"uuid": "r1", "dpma_uuid": "11111111-aaaa", "name": "b-play", "sequence": 10, "command": "Playback(night)"},
        {"uuid": "r2", "dpma_uuid": "11111111-aaaa", "name": "a-note (x)", "sequence": 10, "command": None},
        {"uuid": "r4", "dpma_uuid": "11111111-aaaa", "name": "semi", "sequence": "20", "command": "Set(A=1;2)"},
        {"uuid": "r5", "dpma_uuid": "11111111-aaaa", "name": "${SHELL(x)}", "sequence": 40, "command": ""},
        {"uuid": "r9", "dpma_uuid": "unknown", "name": "orphan", "sequence": 1, "command": "NoOp"},
    ]
    text = compile_adpmas(adpmas, adps)
    assert text == (
        "; Night (mode) shift\n"
        "[adpma-11111111-aaaa]\n"
        "exten => _.,1,NoOp(Night mode shift)\n"
        "same => n,NoOp(a-note x)\n"
        "same => n,Playback(night)\n"
        "same => n,Set(A=1\\;2)\n"
        "same => n,Hangup()\n"
        "same => n,NoOp(SHELLx)\n"
        "\n"
        "; Empty group\n"
        "[adpma-22222222-bbbb]\n"
        "exten => _.,1,NoOp(Empty group)\n"
    )
    plan = validate(text)
    steps = plan.contexts["adpma-11111111-aaaa"].extensions[0].priorities
    assert [(s.priority, s.app, s.args) for s in steps][3] == (4, "Set", "A=1;2")
    assert plan.lookup("adpma-22222222-bbbb", "42").priorities[0].args == "Empty group"
    assert compile_adpmas([], adps) == ""


@pytest.mark.parametrize(
    ("adpmas", "adps", "reason"),
    [
        (
            [{"uuid": "u", "name": "g"}],
            [{"dpma_uuid": "u", "name": "r", "sequence": 1, "command": "Dial("}],
            "unbalanced",
        ),
        ([{"uuid": "u", "name": "g"}], [{"dpma_uuid": "u", "name": "r", "sequence": 1, "command": "A\nB"}], "newline"),
        ([{"uuid": "u", "name": "g"}], [{"dpma_uuid": "u", "name": "r", "sequence": "x", "command": "A"}], "sequence"),
        ([{"uuid": "u", "name": "g"}, {"uuid": "u", "name": "h"}], [], "repeated"),
        ([{"uuid": "", "name": "g"}], [], "empty"),
    ],
)
def test_compile_adpmas_rejections(adpmas, adps, reason):
    with pytest.raises(ConfError, match=reason):
        compile_adpmas(adpmas, adps)


def test_large_dialplan_is_fast():
    ctx = "[ctx{0}]\ninclude => ctx{1}\nexten => _{0}XX,1,NoOp(x)\nsame => n,Dial(PJSIP/${{EXTEN}})\nsame => n,Hangup\n"
    text = "".join(ctx.format(i, (i + 1) % 500) for i in range(500))
    t0 = time.perf_counter()
    plan = validate(text)
    assert time.perf_counter() - t0 < 1.0
    assert plan.lookup("ctx0", "49912").exten == "_499XX"
