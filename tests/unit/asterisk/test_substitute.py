"""Variable substitution (pbx_substitute_variables) and argument splitting (ast_app_separate_args)."""

import pytest

from switchboard.asterisk.substitute import parse_variable_name, split_args, substitute, substring

VARS = {"X": "hello", "Y": "X", "N": "2", "ARG2": "second", "EXTEN": "91234", "EMPTY": "", "A": "1", "B": "2"}


def functions(name, args):
    return {"LEN": str(len(args)), "CALLERID": f"cid-{args}", "UPPER": args.upper()}.get(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${X}", "hello"),
        ("${X:1}", "ello"),
        ("${X:-3}", "llo"),
        ("${X:1:2}", "el"),
        ("${X:-3:2}", "ll"),
        ("${X:1:-1}", "ell"),
        ("${X:0:-2}", "hel"),
        ("${X:-10}", "hello"),
        ("${X:10}", ""),
        ("${X:1:-10}", ""),
        ("${X::2}", "hello"),  # sscanf("%d:%d") fails on the empty offset: whole value
        ("${EXTEN:1}", "1234"),
        ("a${EXTEN:1}b", "a1234b"),
        ("${${Y}}", "hello"),
        ("${ARG${N}}", "second"),
        ("${UNKNOWN}x", "x"),
        ("${EMPTY}", ""),
        ("${LEN(${X})}", "5"),
        ("${CALLERID(num)}", "cid-num"),
        ("${UPPER(${X}):1:2}", "EL"),
        ("${NOPE(1)}", ""),
        ("$[${A}+${B}]", "3"),
        ("$[$[1+1]*3]", "6"),
        ("$[${X} = hello]", "1"),
        ("x$[1+1]y${X}z", "x2yhelloz"),
        ("$5 $$ ${X}", "$5 $$ hello"),
        ("${X", "hello"),  # unterminated: the rest is the name
        ("no dollars", "no dollars"),
    ],
)
def test_substitute(text, expected):
    assert substitute(text, VARS.get, functions) == expected


def test_values_are_not_substituted_again():
    assert substitute("${V}", {"V": "${X}"}.get) == "${X}"


def test_parse_variable_name_and_substring():
    assert parse_variable_name("X:1:2") == ("X", 1, 2, False)
    assert parse_variable_name("F(a:b):1") == ("F(a:b)", 1, 2**31 - 1, True)
    assert substring("abcdef", -2, 1) == "e"
    assert substring("abcdef", 2, -2) == "cd"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b", ["a", "b"]),
        ("a,", ["a", ""]),
        (",a", ["", "a"]),
        ("", []),
        ('"a,b",c', ["a,b", "c"]),
        ('x,"",y', ["x", "", "y"]),
        ("a\\,b,c", ["a,b", "c"]),
        ('a\\"b', ['a"b']),
        ("f(a,b),c", ["f(a,b)", "c"]),
        ("[a,b],c", ["[a,b]", "c"]),
        ("a)b,c", ["a)b", "c"]),
        ("a b , c", ["a b ", " c"]),  # no trimming
    ],
)
def test_split_args(text, expected):
    assert split_args(text) == expected


def test_split_args_limit_delimiter_and_raw():
    assert split_args("a,b,c,d", limit=2) == ["a", "b,c,d"]
    assert split_args('a,"b,c"', limit=2) == ["a", '"b,c"']  # the rest is raw, as Asterisk's last argument
    assert split_args("PJSIP/a&PJSIP/b", "&") == ["PJSIP/a", "PJSIP/b"]
    assert split_args('"x,y",a\\,b', raw=True) == ['"x,y"', "a\\,b"]
