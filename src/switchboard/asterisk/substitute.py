"""Variable substitution and application-argument splitting as Asterisk does them, pure.

`substitute(text, variables, functions)` follows pbx_substitute_variables_helper_full:

* Text is copied until ``${`` or ``$[``. No backslash escapes at this stage (Asterisk has none here either).
* ``${...}`` ends at the ``}`` that balances the braces after it. When the inside holds ``${`` or ``$[`` it is
  substituted first (so ``${${X}}`` and ``${ARG${N}}`` work). Then the name is split as parse_variable_name does:
  a ``:`` outside parentheses starts ``offset[:length]`` (read like ``sscanf("%d:%d")``: ``${X::2}`` is the whole
  value); a name with ``(`` is a function call ``NAME(args)`` whose args run to the last ``)``.
  Functions go to `functions(name, args)`, variables to `variables(name)`; None (unknown) gives "".
  Values are not substituted again.
* ``${X:offset:length}`` (Asterisk's substring()): a negative offset counts from the end (clamped to the start), an
  offset past the end gives ""; a negative length drops that many characters from the end.
* ``$[...]`` ends at the balancing ``]``; the inside is substituted first, then evaluated by `asterisk.expr`.
* An unterminated ``${`` / ``$[`` takes the rest of the text as its inside.

`split_args(text, delim=",", limit=None)` is ast_app_separate_args (remove_chars on): the delimiter splits only
outside ``(...)``, ``[...]`` and ``"..."``; double quotes are removed; a backslash is removed and the character
after it taken literally. An empty text gives no arguments; a trailing delimiter gives a last empty argument.
With `limit` (the number of arguments the application declares), the last one is the raw rest of the text, as
Asterisk's fixed-size argument arrays give it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from switchboard.asterisk.expr import evaluate

__all__ = ["parse_variable_name", "split_args", "substitute", "substring"]

Variables = Callable[[str], str | None]
Functions = Callable[[str, str], str | None]

_INT = re.compile(r"\s*([+-]?\d+)")
INT_MAX = 2**31 - 1


def _scan_int(text: str) -> tuple[int | None, str]:
    m = _INT.match(text)
    if not m:
        return None, text
    return int(m.group(1)), text[m.end() :]


def parse_variable_name(var: str) -> tuple[str, int, int, bool]:
    """(name, offset, length, is_function) of the inside of ``${...}`` (parse_variable_name)."""
    parens, isfunc = 0, False
    for i, c in enumerate(var):
        if c == "(":
            isfunc = True
            parens += 1
        elif c == ")":
            parens -= 1
        elif c == ":" and parens == 0:
            offset, length = 0, INT_MAX
            first, rest = _scan_int(var[i + 1 :])
            if first is not None:
                offset = first
                if rest.startswith(":"):
                    second, _ = _scan_int(rest[1:])
                    if second is not None:
                        length = second
            return var[:i], offset, length, isfunc
    return var, 0, INT_MAX, isfunc


def substring(value: str, offset: int, length: int) -> str:
    """Asterisk's substring() on a variable value."""
    lr = len(value)
    if offset == 0 and length >= lr:
        return value
    if offset < 0:
        offset = max(lr + offset, 0)
    if offset >= lr:
        return ""
    rest = value[offset:]
    if 0 <= length < lr - offset:
        return rest[:length]
    if length < 0:
        keep = lr + length - offset
        return rest[:keep] if keep > 0 else ""
    return rest


def split_function(call: str) -> tuple[str, str]:
    """``NAME(args)`` -> (NAME, args): args run from the first ``(`` to the last ``)`` (func_args)."""
    name, _, args = call.partition("(")
    close = args.rfind(")")
    if close != -1:
        args = args[:close]
    return name.strip(), args


def _end(text: str, start: int, opener: str, closer: str) -> tuple[int, bool]:
    """Index of the balancing closer for a construct whose inside starts at `start`; and whether the inside
    holds ``${`` or ``$[`` (needs substitution). -1 when unterminated."""
    depth, i, n, needsub = 1, start, len(text), False
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n and text[i + 1] in "{[":
            needsub = True
            if text[i + 1] == opener:
                depth += 1
            i += 2
            continue
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i, needsub
        i += 1
    return -1, needsub


def substitute(text: str, variables: Variables, functions: Functions | None = None) -> str:
    """`text` with ``${...}`` and ``$[...]`` replaced (rules in the module docstring); never raises."""
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        while j != -1 and not (j + 1 < n and text[j + 1] in "{["):
            j = text.find("$", j + 1)
        if j == -1:
            out.append(text[i:])
            break
        out.append(text[i:j])
        opener = text[j + 1]
        closer = "}" if opener == "{" else "]"
        end, needsub = _end(text, j + 2, opener, closer)
        inner = text[j + 2 : end] if end != -1 else text[j + 2 :]
        i = end + 1 if end != -1 else n
        if needsub:
            inner = substitute(inner, variables, functions)
        if opener == "[":
            out.append(evaluate(inner, functions))
            continue
        name, offset, length, isfunc = parse_variable_name(inner)
        value: str | None
        try:
            if isfunc:
                fname, args = split_function(name)
                value = functions(fname, args) if functions is not None else None
            else:
                value = variables(name)
        except Exception:
            value = None
        if value:
            out.append(substring(value, offset, length))
    return "".join(out)


def split_args(text: str, delim: str = ",", limit: int | None = None, *, raw: bool = False) -> list[str]:
    """Application arguments as ast_app_separate_args gives them (see the module docstring). `raw` keeps quotes
    and backslashes (the RAW_ARGS variant: a backslash still protects the character after it)."""
    args: list[str] = []
    if not text:
        return args
    cur: list[str] = []
    paren = bracket = 0
    quote = False
    i, n = 0, len(text)
    ended_on_delim = False
    if limit is not None and limit <= 1:
        return [text]
    while i < n:
        c = text[i]
        ended_on_delim = False
        if c == "(":
            paren += 1
        elif c == ")":
            paren = max(paren - 1, 0)
        elif c == "[":
            bracket += 1
        elif c == "]":
            bracket = max(bracket - 1, 0)
        elif c == '"' and delim != '"':
            quote = not quote
            if not raw:
                i += 1
                continue
        elif c == "\\":
            if raw:
                cur.append(text[i : i + 2])
            elif i + 1 < n:
                cur.append(text[i + 1])
            i += 2
            continue
        elif c == delim and not paren and not quote and not bracket:
            args.append("".join(cur))
            cur = []
            i += 1
            ended_on_delim = True
            if limit is not None and len(args) == limit - 1:
                args.append(text[i:])
                return args
            continue
        cur.append(c)
        i += 1
    if cur or ended_on_delim or not args:
        args.append("".join(cur))
    return args
