"""Asterisk's ``$[...]`` expressions (main/ast_expr2.y + ast_expr2.fl), pure: `evaluate(text) -> str`.

The text is what is left between ``$[`` and ``]`` after variable substitution. `evaluate` never raises.

Lexing (as ast_expr2.fl): blanks separate tokens but are not needed around operators. Operators are ``|`` ``||``
``&`` ``&&`` ``=`` ``==`` ``!=`` ``<`` ``>`` ``<=`` ``>=`` ``+`` ``-`` ``*`` ``/`` ``%`` ``!`` ``:`` ``=~`` ``~~``
(concatenation) ``?`` ``::`` ``(`` ``)`` and ``,`` (function arguments only). ``"..."`` is one token *with* its
quotes. A run of digits with an optional fraction is a numeric string; a run of ``[A-Za-z0-9.';\\_^#@]``, bytes
>= 0x80 and ``$`` not followed by ``{`` is a string; a leftover ``${...}`` is one string token. Any other character
is dropped (flex's default rule).

Precedence, loosest first (ast_expr2.y): ``? ::`` (left), ``|``, ``&``, comparisons, ``+ -``, ``* / %``, unary
``!`` and ``-`` (prefix), ``: =~ ~~``, parentheses. ``a ? b :: c`` picks b when a is true.

Values are numbers or strings. A token is numeric when it starts with a digit, ``-`` or ``.`` and the rest are digits
or dots; numbers are long doubles in Asterisk (decimal with 19 significant digits here) printed as ``%.18Lg``, so
``$[10/3]`` is ``3.33333333333333333`` and ``$[7/2]`` is ``3.5``. Rules per operator, as the C code does them:

* comparisons compare numerically when neither side is a non-numeric string, else as strings (byte order, quotes
  kept: ``"a" = a`` is 0); they give 1 or 0.
* ``|`` gives the left operand unless it is empty or zero, then the right one; ``&`` gives the left operand when
  both are non-empty and non-zero, else 0.
* ``+``: a non-numeric operand is ignored (``abc + 2`` is 2; both non-numeric: 0); ``-``: ``abc - 2`` is -2,
  ``2 - abc`` is 2; ``*``: 0 when either is non-numeric; ``/``: 0 when the left is non-numeric, 2147483647 (INT_MAX)
  when the right is non-numeric or zero; ``%`` (fmod): 0 when either is non-numeric, 0 when the right is zero.
* unary ``-``: 0 when non-numeric. ``!x``: 1 when x is empty, "0" or a number 0; for another string, ``!atoi(x)``.
* ``a : re`` matches the POSIX extended regex at the start of a; ``a =~ re`` anywhere. With a group: the text of the
  first group ("" when no match), else the length of the match (0). Quotes around either operand are removed first.
  A regex that does not compile gives "".
* ``?``: a non-numeric condition is true unless it is "", ``""`` or "0"; a numeric one when non-zero.
* ``FUNC(args)`` calls the `functions` callback (name, comma-joined args) when given; unknown: 0.
* An empty expression gives ""; a syntax error gives "0" (ast_expr returns "0" when the parse produced nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation

__all__ = ["evaluate", "is_true"]

_CTX = Context(prec=19)
_INT_MAX = Decimal(2147483647)
_OPS = (
    "||",
    "&&",
    "==",
    "=~",
    "~~",
    ">=",
    "<=",
    "!=",
    "::",
    "|",
    "&",
    "=",
    ">",
    "<",
    "+",
    ",",
    "-",
    "*",
    "/",
    "%",
    "?",
    "!",
    ":",
    "(",
    ")",
)
_NUMBER_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_WORD = re.compile(r"(?:[A-Za-z0-9.';\\_^#@\x80-\U0010ffff]|\$(?!\{))+")
_NUMERIC = re.compile(r"[0-9.\-][0-9.]*")


class _Syntax(Exception):
    pass


class _Val:
    """A number (Decimal) or a string; `numeric` strings convert on demand (AST_EXPR_numeric_string)."""

    __slots__ = ("num", "s", "numeric")

    def __init__(self, num: Decimal | None = None, s: str | None = None, numeric: bool = False):
        self.num, self.s, self.numeric = num, s, numeric

    @classmethod
    def string(cls, s: str) -> _Val:
        return cls(s=s, numeric=bool(_NUMERIC.fullmatch(s)) if s else False)

    def is_string(self) -> bool:
        return self.num is None and not self.numeric

    def to_number(self) -> bool:
        if self.num is not None:
            return True
        if not self.numeric:
            return False
        try:
            self.num = _strtod(self.s or "")
        except InvalidOperation:
            return False
        self.s = None
        return True

    def text(self) -> str:
        return _fmt(self.num) if self.num is not None else (self.s or "")

    def zero_or_null(self) -> bool:
        if self.num is not None:
            return self.num == 0
        return not self.s or (self.to_number() and self.num == 0)


def _strtod(s: str) -> Decimal:
    m = re.match(r"-?(?:\d+\.?\d*|\.\d+)", s)
    return Decimal(m.group(0)) if m else Decimal(0)


def _fmt(d: Decimal) -> str:
    """printf("%.18Lg")."""
    if d.is_nan() or d.is_infinite():
        return "inf" if d > 0 else "-inf" if d.is_infinite() else "nan"
    if d == d.to_integral_value() and abs(d) < Decimal("1e18"):
        return str(int(d))
    d = +Context(prec=18).plus(d)
    exp = d.adjusted()
    if -5 <= exp < 18:
        text = format(d, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    mant = format(d.scaleb(-exp), "f")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"


def _num(d: Decimal) -> _Val:
    return _Val(num=d)


def _bool(b: bool) -> _Val:
    return _Val(num=Decimal(1 if b else 0))


def _tokens(text: str) -> list[tuple[str, str]]:
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c == '"':
            end = text.find('"', i + 1)
            if end == -1:  # no closing quote: the quote itself matches no rule and is dropped
                i += 1
                continue
            out.append(("S", text[i : end + 1]))
            i = end + 1
            continue
        if c == "$" and text.startswith("${", i):
            depth, j = 0, i + 2
            while j < n:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    if depth == 0:
                        break
                    depth -= 1
                j += 1
            out.append(("S", text[i : j + 1]))
            i = j + 1
            continue
        num = _NUMBER_TOKEN.match(text, i)
        word = _WORD.match(text, i)
        if word and (not num or word.end() > num.end()):
            out.append(("S", word.group(0)))
            i = word.end()
            continue
        if num:
            out.append(("N", num.group(0)))
            i = num.end()
            continue
        for op in _OPS:
            if text.startswith(op, i):
                out.append(("O", op))
                i += len(op)
                break
        else:  # flex's default rule drops a character no rule matches
            i += 1
    return out


class _Parser:
    def __init__(self, toks: list[tuple[str, str]], functions: Callable[[str, str], str | None] | None):
        self.toks, self.i, self.functions = toks, 0, functions

    def peek(self) -> str | None:
        if self.i < len(self.toks) and self.toks[self.i][0] == "O":
            return self.toks[self.i][1]
        return None

    def take(self, op: str) -> bool:
        if self.peek() == op:
            self.i += 1
            return True
        return False

    def parse(self) -> _Val:
        if not self.toks:
            return _Val(s="")
        v = self.cond()
        if self.i != len(self.toks):
            raise _Syntax
        return v

    def cond(self) -> _Val:
        a = self.or_()
        while self.take("?"):
            b = self.cond()
            if not self.take("::"):
                raise _Syntax
            c = self.or_()
            a = _op_cond(a, b, c)
        return a

    def or_(self) -> _Val:
        a = self.and_()
        while self.peek() in ("|", "||"):
            self.i += 1
            b = self.and_()
            a = b if a.zero_or_null() else a
        return a

    def and_(self) -> _Val:
        a = self.cmp()
        while self.peek() in ("&", "&&"):
            self.i += 1
            b = self.cmp()
            a = _num(Decimal(0)) if a.zero_or_null() or b.zero_or_null() else a
        return a

    def cmp(self) -> _Val:
        a = self.add()
        while self.peek() in ("=", "==", "!=", "<", ">", "<=", ">="):
            op = self.toks[self.i][1]
            self.i += 1
            a = _op_cmp(op, a, self.add())
        return a

    def add(self) -> _Val:
        a = self.mul()
        while self.peek() in ("+", "-"):
            op = self.toks[self.i][1]
            self.i += 1
            a = _op_arith(op, a, self.mul())
        return a

    def mul(self) -> _Val:
        a = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.toks[self.i][1]
            self.i += 1
            a = _op_arith(op, a, self.unary())
        return a

    def unary(self) -> _Val:
        if self.take("-"):
            a = self.unary()
            return _num(-a.num) if a.to_number() else _num(Decimal(0))
        if self.take("!"):
            return _op_compl(self.unary())
        return self.regex()

    def regex(self) -> _Val:
        a = self.primary()
        while self.peek() in (":", "=~", "~~"):
            op = self.toks[self.i][1]
            self.i += 1
            b = self.unary_operand()
            a = _op_concat(a, b) if op == "~~" else _op_regex(a, b, anchored=op == ":")
        return a

    def unary_operand(self) -> _Val:
        if self.take("-"):
            a = self.unary_operand()
            return _num(-a.num) if a.to_number() else _num(Decimal(0))
        if self.take("!"):
            return _op_compl(self.unary_operand())
        return self.primary()

    def primary(self) -> _Val:
        if self.i >= len(self.toks):
            raise _Syntax
        kind, text = self.toks[self.i]
        if kind == "O":
            if text != "(":
                raise _Syntax
            self.i += 1
            v = self.cond()
            if not self.take(")"):
                raise _Syntax
            return v
        self.i += 1
        if self.peek() == "(":
            self.i += 1
            args: list[str] = []
            if not self.take(")"):
                while True:
                    if self.peek() in (",", ")"):
                        args.append("")
                    else:
                        args.append(self.cond().text())
                    if self.take(")"):
                        break
                    if not self.take(","):
                        raise _Syntax
            return _call(self.functions, text, args)
        if kind == "N":
            return _Val(s=text, numeric=True)
        return _Val(s=text, numeric=bool(_NUMERIC.fullmatch(text)) and not text.startswith('"'))


def _call(functions: Callable[[str, str], str | None] | None, name: str, args: list[str]) -> _Val:
    if functions is None or not re.fullmatch(r"[A-Z_0-9]+", name):
        return _num(Decimal(0))
    try:
        out = functions(name, ",".join(args))
    except Exception:
        out = None
    if out is None:
        return _num(Decimal(0))
    if out and re.fullmatch(r"[-0-9. \t]+", out):
        return _num(_strtod(out.strip()))
    return _Val.string(out)


def _op_cmp(op: str, a: _Val, b: _Val) -> _Val:
    if a.is_string() or b.is_string():
        x, y = a.text(), b.text()
    else:
        a.to_number()
        b.to_number()
        x, y = a.num, b.num  # type: ignore[assignment]
    return _bool(
        {
            "=": x == y,
            "==": x == y,
            "!=": x != y,
            "<": x < y,  # type: ignore[operator]
            ">": x > y,  # type: ignore[operator]
            "<=": x <= y,  # type: ignore[operator]
            ">=": x >= y,  # type: ignore[operator]
        }[op]
    )


def _op_arith(op: str, a: _Val, b: _Val) -> _Val:
    an, bn = a.to_number(), b.to_number()
    try:
        if op == "+":
            if not an:
                return b if bn else _num(Decimal(0))
            if not bn:
                return a
            return _num(_CTX.add(a.num, b.num))
        if op == "-":
            if not an:
                return _num(-b.num) if bn else _num(Decimal(0))
            if not bn:
                return a
            return _num(_CTX.subtract(a.num, b.num))
        if op == "*":
            return _num(_CTX.multiply(a.num, b.num)) if an and bn else _num(Decimal(0))
        if op == "/":
            if not an:
                return _num(Decimal(0))
            if not bn or b.num == 0:
                return _num(_INT_MAX)
            return _num(_CTX.divide(a.num, b.num))
        # %
        if not an or not bn:
            return _num(Decimal(0))
        if b.num == 0:
            return b
        return _num(_CTX.remainder(a.num, b.num))
    except (InvalidOperation, ArithmeticError):
        return _num(Decimal(0))


def _op_compl(a: _Val) -> _Val:
    if a.num is not None:
        return _bool(a.num == 0)
    s = a.s or ""
    if not s or s == "0":
        return _bool(True)
    m = re.match(r"\s*[+-]?\d+", s)
    return _bool(not (int(m.group(0)) if m else 0))


def _op_cond(a: _Val, b: _Val, c: _Val) -> _Val:
    if a.is_string():
        s = a.s or ""
        return b if s and s != '""' and s != "0" else c
    a.to_number()
    return b if a.num else c


def _unquote(s: str) -> str:
    return s.replace('"', "") if len(s) >= 1 and s[0] == '"' and s[-1] == '"' else s


def _op_regex(a: _Val, b: _Val, *, anchored: bool) -> _Val:
    subject, pattern = _unquote(a.text()), _unquote(b.text())
    try:
        rx = re.compile(pattern)
    except re.error:
        return _Val(s="")
    m = rx.match(subject) if anchored else rx.search(subject)
    if m:
        if rx.groups:
            return _Val.string(m.group(1) or "")
        return _num(Decimal(m.end() - m.start()))
    return _Val(s="") if rx.groups else _num(Decimal(0))


def _op_concat(a: _Val, b: _Val) -> _Val:
    return _Val.string(_unquote(a.text()) + _unquote(b.text()))


def evaluate(text: str, functions: Callable[[str, str], str | None] | None = None) -> str:
    """The value of an expression (the text inside ``$[...]``) as Asterisk prints it; never raises."""
    try:
        return _Parser(_tokens(text), functions).parse().text()
    except _Syntax:
        return "0"
    except Exception:  # pragma: no cover - a bug here must not kill a call
        return "0"


def is_true(value: str) -> bool:
    """pbx_checkcondition: "" is false, a leading integer is its value, any other text is true."""
    if not value:
        return False
    m = re.match(r"\s*[+-]?\d+", value)
    if m:
        return int(m.group(0)) != 0
    return True
