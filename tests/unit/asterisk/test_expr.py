"""$[...] expressions, from ast_expr2.y / ast_expr2.fl's rules."""

import pytest

from switchboard.asterisk.expr import evaluate, is_true


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # arithmetic: numbers are long doubles printed with %.18Lg
        ("1+2", "3"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10/3", "3.33333333333333333"),
        ("7/2", "3.5"),
        ("7%3", "1"),
        ("-3 % 2", "-1"),
        ("2*1.5", "3"),
        ("0.1+0.2", "0.3"),
        ("-5", "-5"),
        ("- 5 + 2", "-3"),
        ("100000000000000000000*10", "1e+21"),
        # non-numeric operands and division by zero, as the C code handles them
        ("abc + 2", "2"),
        ("abc + def", "0"),
        ("2 - abc", "2"),
        ("abc - 2", "-2"),
        ("abc * 2", "0"),
        ("abc / 2", "0"),
        ("2 / abc", "2147483647"),
        ("5/0", "2147483647"),
        ("5%0", "0"),
        ("-abc", "0"),
        # comparisons: numeric when both are numbers, else strings; quotes are part of the string
        ("1 = 1", "1"),
        ("1 == 1.0", "1"),
        ("3 > 10", "0"),
        ("abc < abd", "1"),
        ("10 < 9", "0"),
        ("10 < abc", "1"),
        ("abc = abc", "1"),
        ('"a" = a', "0"),
        ('"a b" = "a b"', "1"),
        ("1 != 2", "1"),
        ("2 >= 2", "1"),
        ("2 <= 1", "0"),
        # | and & give operands
        ("0 | 5", "5"),
        ("abc | def", "abc"),
        ("3 & 0", "0"),
        ("3 & 4", "3"),
        ("1 < 2 & 2 < 3", "1"),
        ("1 || 0", "1"),
        # unary !
        ("!0", "1"),
        ("!1", "0"),
        ("!abc", "1"),
        ('!""', "1"),
        # ternary
        ("1 ? a :: b", "a"),
        ("0 ? a :: b", "b"),
        ("abc ? y :: n", "y"),
        ('"" ? y :: n', "n"),
        ("1 ? 0 ? x :: y :: z", "y"),
        ("2 > 1 ? yes :: no", "yes"),
        # regular expressions
        ("1234 : 12", "2"),
        ("1234 : 23", "0"),
        ('"91234" : "9(.*)"', "1234"),
        ('"91234" : "8(.*)"', ""),
        ("abc =~ b", "1"),
        ('abc =~ "b(c)"', "c"),
        ("abc =~ x", "0"),
        ('abc =~ "("', ""),
        ("a ~~ b", "ab"),
        # strings, empty, syntax errors
        ('"abc"', '"abc"'),
        ("hello", "hello"),
        ("", ""),
        ("1 +", "0"),
        ("(1", "0"),
        ("1 2", "0"),
    ],
)
def test_evaluate(text, expected):
    assert evaluate(text) == expected


def test_functions_in_expressions():
    calls = []

    def functions(name, args):
        calls.append((name, args))
        return {"LEN": "5", "NAME": "bob"}.get(name)

    assert evaluate("LEN(hello) + 1", functions) == "6"
    assert evaluate("NAME(x) = bob", functions) == "1"
    assert evaluate("NOPE(1)", functions) == "0"
    assert evaluate("lower(1)", functions) == "0"  # not possibly a function name
    assert calls[0] == ("LEN", "hello")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", False), ("0", False), ("1", True), ("abc", True), ("00", False), ("-1", True), (" 0", False), (" ", True)],
)
def test_is_true_is_pbx_checkcondition(value, expected):
    assert is_true(value) is expected
