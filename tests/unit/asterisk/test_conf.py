"""Asterisk-syntax configuration files: parsing, inheritance, splicing, rendering and their errors."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.asterisk.conf import ConfError, ConfFile, Option, parse, render_section

RES_PARKING = """\
[general]
parkeddynamic = yes

[default]
parkext => 700
parkpos => 701-720
context => parkedcalls
parkingtime => 45

[edvina]
context => edvina_park
parkpos => 800-850
findslot => next
comebacktoorigin = no
comebackdialtime = 90
comebackcontext = edvinapark-timeout
parkedmusicclass = edvina
"""

QUEUES = """\
; queues.conf
[general]
persistentmembers = yes

[queue-template](!)
strategy = ringall ; ring everyone
timeout = 15
member => PJSIP/supervisor,0,Supervisor

[support](queue-template)
timeout = 30
member => PJSIP/agent-01,0,Agent One
member => PJSIP/agent-02,0,Agent Two
member => PJSIP/agent-03,5,Agent Three
"""

PJSIP = """\
;-- pjsip.conf
   generated for tests --;
[transport-udp]
type=transport
protocol=udp
bind=0.0.0.0

[endpoint-basic](!)
type=endpoint
context=from-internal
disallow=all
allow=ulaw

[auth-userpass](!)
type=auth
auth_type=userpass

[199](endpoint-basic)
auth=199
aors=199
allow=alaw

[199](auth-userpass)
password=s3cr\\;et
username=199

[199]
type=aor
max_contacts=2
contact=sip:199@10.0.0.1:5060
contact=sip:199@10.0.0.2:5060
"""


def test_res_parking_sections_and_options():
    conf = parse(RES_PARKING)
    assert conf.names() == ["general", "default", "edvina"]
    assert conf.resolved("general") == {"parkeddynamic": "yes"}
    default = conf.get("default")
    assert [(o.key, o.op, o.value) for o in default.options][:2] == [
        ("parkext", "=>", "700"),
        ("parkpos", "=>", "701-720"),
    ]
    assert default.options[0] == Option("parkext", "=>", "700", 5)
    assert conf.resolved("edvina")["comebackdialtime"] == "90"
    assert conf.resolved("edvina")["context"] == "edvina_park"
    assert conf.get("edvina").options[3].op == "="
    assert conf.preamble_end == 0
    assert conf.get("nope") is None


def test_queues_members_and_templates():
    conf = parse(QUEUES)
    tpl = conf.get("queue-template")
    assert tpl.template and tpl.bases == []
    support = conf.get("support")
    assert not support.template and support.bases == ["queue-template"]
    resolved = conf.resolved("support")
    assert resolved["strategy"] == "ringall"
    assert resolved["timeout"] == "30"
    assert resolved["member"] == "PJSIP/agent-03,5,Agent Three"
    assert conf.multi("support", "member") == [
        "PJSIP/supervisor,0,Supervisor",
        "PJSIP/agent-01,0,Agent One",
        "PJSIP/agent-02,0,Agent Two",
        "PJSIP/agent-03,5,Agent Three",
    ]
    assert conf.multi("support", "nothing") == []
    assert conf.preamble_end == 0  # the leading comment is attached to [general]


def test_pjsip_types_templates_and_repeated_sections():
    conf = parse(PJSIP)
    assert conf.names() == ["transport-udp", "endpoint-basic", "auth-userpass", "199"]
    assert conf.preamble_end == 0  # the block comment sits right above the first header: it belongs to it
    assert conf.get("transport-udp").start == 0
    endpoint, auth, aor = conf.all("199")
    assert endpoint.bases == ["endpoint-basic"] and auth.bases == ["auth-userpass"]
    assert conf.resolved("199") == {
        "type": "endpoint",
        "context": "from-internal",
        "disallow": "all",
        "allow": "alaw",
        "auth": "199",
        "aors": "199",
    }
    assert conf.multi("199", "allow") == ["ulaw", "alaw"]
    assert {o.key: o.value for o in conf.options_of(auth)}["password"] == "s3cr;et"
    assert [o.value for o in aor.options if o.key == "contact"] == ["sip:199@10.0.0.1:5060", "sip:199@10.0.0.2:5060"]


def test_block_comment_lines_count_as_comments():
    conf = parse(";-- a\nb --;\n[x]\nk=v\n")
    assert conf.get("x").start == 0 and conf.preamble_end == 0
    conf = parse(";-- a\nb --;\n\n[x]\nk=v ;-- inline --; \n")
    assert conf.preamble_end == 3
    assert conf.resolved("x") == {"k": "v"}
    # nested block comments
    assert parse("[x]\n;-- ;-- in --; still --;\nk=v\n").resolved("x") == {"k": "v"}
    assert parse("[x]\nk=a;--c--;b\n").resolved("x") == {"k": "ab"}


def test_syntax_details():
    conf = parse(
        '#include "common.conf"\n#include other.conf\n#tryinclude <maybe.conf>\n#exec /bin/gen\n'
        "[s](!,a,b)\nempty=\nspaced   =   v  w  \nk=>x\nesc = a\\;b ; real comment\nx = y = z\n"
        "[a]\n[b]\n"
    )
    assert conf.includes == ["common.conf", "other.conf", "maybe.conf"]
    assert conf.execs == ["/bin/gen"]
    sec = conf.get("s")
    assert sec.template and sec.bases == ["a", "b"]
    assert [(o.key, o.op, o.value) for o in sec.options] == [
        ("empty", "=", ""),
        ("spaced", "=", "v  w"),
        ("k", "=>", "x"),
        ("esc", "=", "a;b"),
        ("x", "=", "y = z"),
    ]
    assert conf.preamble_end == 4


def test_crlf_is_accepted_and_preserved():
    text = "; c\r\n\r\n[a]\r\nk = v\r\n\r\n[b]\r\nx => 1\r\n"
    conf = parse(text)
    assert conf.resolved("a") == {"k": "v"} and conf.get("b").options[0].op == "=>"
    new = conf.replace_section("a", {"k": "w"})
    assert new == "; c\r\n\r\n[a]\r\nk = w\r\n\r\n[b]\r\nx => 1\r\n"


def test_append_sections():
    conf = parse("[a]\nk=1\n[a](+)\nj=2\n")
    assert conf.resolved("a") == {"k": "1", "j": "2"}
    assert conf.get("a").options == [Option("k", "=", "1", 2)]
    assert conf.replace_section("a", {"z": "9"}) == "[a]\nz = 9\n"


def test_section_ranges_own_comments_and_blank_lines():
    text = "; file header\n\n[a]\nk=1\n; trailing a\n\n; about b\n; more about b\n[b]\nx=1\n\n[c]\n"
    conf = parse(text)
    a, b, c = conf.sections
    assert (conf.preamble_end, a.start, a.end, b.start, b.end, c.start, c.end) == (2, 2, 6, 6, 11, 11, 12)
    assert "".join(text.splitlines(True)[b.start : b.end]) == "; about b\n; more about b\n[b]\nx=1\n\n"


def test_remove_section_keeps_everything_else():
    text = "; file header\n\n[a]\nk=1\n\n; about b\n[b]\nx=1\n\n[c]\ny=2\n[b]\nz=3\n"
    conf = parse(text)
    assert conf.remove_section("b") == "; file header\n\n[a]\nk=1\n\n[c]\ny=2\n"
    assert conf.remove_section("a") == "; file header\n\n; about b\n[b]\nx=1\n\n[c]\ny=2\n[b]\nz=3\n"
    assert conf.remove_section("missing") == text


def test_replace_section_in_place_and_append():
    text = "; hdr\n\n; about a\n[a] ; inline\nk=1 ; one\n; comment between\nj=2\n; after last\n\n[b]\nx=1"
    conf = parse(text)
    new = conf.replace_section("a", [("k", "=>", "9"), ("m", "=", "a;b")], template=True, bases=["t"])
    assert new == "; hdr\n\n; about a\n[a](!,t)\nk => 9\nm = a\\;b\n; after last\n\n[b]\nx=1"
    assert parse(new).get("a").template
    appended = conf.replace_section("c", {"q": "1"})
    assert appended == text + "\n\n[c]\nq = 1\n"
    assert parse("").replace_section("c", {}) == "[c]\n"
    assert parse("[a]\n\n").replace_section("c", {}) == "[a]\n\n[c]\n"
    assert parse("[a]\n").replace_section("c", {}) == "[a]\n\n[c]\n"


def test_replace_with_own_options_is_equivalent():
    conf = parse(PJSIP)
    sec = conf.get("endpoint-basic")
    new = parse(conf.replace_section("endpoint-basic", [(o.key, o.op, o.value) for o in sec.options], True, sec.bases))
    assert [(s.name, s.template, s.bases, s.options) for s in new.sections] == [
        (s.name, s.template, s.bases, s.options) for s in conf.sections
    ]
    assert new.text.startswith(";-- pjsip.conf\n   generated for tests --;\n")


def test_render_section():
    assert render_section("q", {"a": "1", "b": ""}) == "[q]\na = 1\nb =\n"
    assert render_section("t", [("member", "=>", "x;y")], template=True, bases=("a", "b")) == (
        "[t](!,a,b)\nmember => x\\;y\n"
    )
    assert render_section("d", [], bases=["base"]) == "[d](base)\n"
    assert render_section("x", []) == "[x]\n"


@pytest.mark.parametrize(
    ("name", "options", "bases"),
    [
        ("", {}, ()),
        ("a]b", {}, ()),
        ("a\nb", {}, ()),
        ("ok", {"a\nb": "v"}, ()),
        ("ok", {"k": "v\nw"}, ()),
        ("ok", {"k": "v\rw"}, ()),
        ("ok", {"a=b": "v"}, ()),
        ("ok", {"a[": "v"}, ()),
        ("ok", {"a]": "v"}, ()),
        ("ok", {"a;": "v"}, ()),
        ("ok", {"   ": "v"}, ()),
        ("ok", {"#include": "v"}, ()),
        ("ok", [("k", "==", "v")], ()),
        ("ok", [("k", "v")], ()),
        ("ok", {}, ("a,b",)),
        ("ok", {}, ("",)),
    ],
)
def test_render_rejections(name, options, bases):
    with pytest.raises(ConfError) as info:
        render_section(name, options, bases=bases)
    assert info.value.line is None


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("k = v\n", 1, "before any [section]"),
        ("; c\n\n[a]\nk=v\njust words\n", 5, "expected 'key = value'"),
        ("[a]\n[b\n", 2, "unterminated '['"),
        ("[a]\n\n[]\n", 3, "empty section name"),
        ("[   ]\n", 1, "empty section name"),
        ("[a\tb]\n", 1, "invalid character"),
        ("[a[b]\n", 1, "invalid character '['"),
        ("[a]x\n", 1, "unexpected text"),
        ("[a](!\n", 1, "unterminated '('"),
        ("[a]\n = v\n", 2, "empty key"),
        ("[a]\n=> v\n", 2, "empty key"),
        ("#include\n", 1, "needs an argument"),
        ("[a]\n#define x\n", 2, "unknown directive"),
    ],
)
def test_parse_rejections(text, line, reason):
    with pytest.raises(ConfError) as info:
        parse(text)
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(info.value) == f"line {line}: {info.value.reason}"


def test_inheritance_errors():
    conf = parse("[a](missing)\nk=v\n")
    with pytest.raises(ConfError) as info:
        conf.resolved("a")
    assert info.value.line == 1 and "unknown template 'missing'" in info.value.reason
    conf = parse("[x]\n[a](b)\nk=1\n[b](a)\nj=2\n")
    with pytest.raises(ConfError, match="cycle"):
        conf.resolved("a")
    with pytest.raises(ConfError, match="cycle"):
        parse("[a](a)\n").multi("a", "k")
    with pytest.raises(ConfError, match="no section"):
        conf.resolved("zzz")
    # a later section of the same name may inherit from the earlier one: not a cycle
    conf = parse("[a]\nk=1\n[a](a)\nj=2\n")
    assert [o.key for o in conf.options_of(conf.all("a")[1])] == ["k", "j"]


def test_forward_base_and_chained_templates():
    conf = parse("[c](b)\nz=3\n[b](!,a)\ny=2\nx=9\n[a](!)\nx=1\n")
    assert conf.resolved("c") == {"x": "9", "y": "2", "z": "3"}
    assert conf.multi("c", "x") == ["1", "9"]


def test_conferror_without_line():
    err = ConfError(None, "boom")
    assert str(err) == "boom" and err.line is None and isinstance(err, ValueError)


def test_large_file_parses_fast():
    block = '[ep{0}](endpoint-basic)\n; comment {0}\nauth=ep{0}\naors=ep{0} ; trailing\ncallerid="X" <{0}>\n\n'
    text = "[endpoint-basic](!)\ntype=endpoint\n\n" + "".join(block.format(i) for i in range(1000))
    t0 = time.perf_counter()
    conf = parse(text)
    assert time.perf_counter() - t0 < 0.5
    assert len(conf.sections) == 1001 and conf.resolved("ep999")["type"] == "endpoint"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]()!,=>;-\\#"ab c\t\r\n\x00x=_')) | st.characters(), max_size=200))
def test_parse_only_raises_conferror(text):
    try:
        conf = parse(text)
    except ConfError as e:
        assert e.line is None or 1 <= e.line <= text.count("\n") + 1
        return
    assert isinstance(conf, ConfFile)
    for name in conf.names():
        try:
            conf.resolved(name)
        except ConfError:
            pass
        try:
            rest = parse(conf.remove_section(name))
        except ConfError:
            continue  # only when a block comment straddles sections
        assert name not in rest.names()


_name = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="[]"), min_size=1, max_size=12)
_key = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="=[];#"), min_size=1, max_size=12)
_value = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)
_WS = " \t\r\n\x0b\x0c"


@settings(max_examples=300, deadline=None)
@given(
    _name.filter(lambda s: s.strip(_WS) not in ("", "other", "after")),
    st.lists(st.tuples(_key.filter(lambda s: s.strip(_WS)), st.sampled_from(["=", "=>"]), _value), max_size=6),
    st.booleans(),
    st.lists(_name.filter(lambda s: s.strip(_WS) and not set(s) & set("(),") and s.strip(_WS) not in "!+"), max_size=3),
)
def test_render_parse_round_trip(name, options, template, bases):
    text = render_section(name, options, template, bases)
    conf = parse("; before\n[other]\nk=v\n\n" + text + "\n[after]\n")
    sec = conf.sections[1]
    assert sec.name == name.strip(_WS)
    assert sec.template == template
    assert sec.bases == [b.strip(_WS) for b in bases]
    assert [(o.key, o.op, o.value) for o in sec.options] == [(k.strip(_WS), op, v.strip(_WS)) for k, op, v in options]
    replaced = conf.replace_section(sec.name, [(o.key, o.op, o.value) for o in sec.options], template, sec.bases)
    assert replaced == conf.text
