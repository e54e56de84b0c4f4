"""extensions.conf semantics on top of `switchboard.asterisk.conf`: validation, a dialplan model, matching and lookup.

* `validate(text)` parses and checks the file, returning a `Dialplan`. ``[general]`` and ``[globals]`` (any case)
  hold plain settings; every other section is a context. Template contexts ``[t](!)`` are checked but are not
  contexts themselves; their lines are copied (bases first) into the contexts that inherit them. Repeated
  sections of one context name merge, as in Asterisk. Keys are case-insensitive; `=` and `=>` are both accepted.
* Priorities are resolved per extension (extension + caller-id match): ``n`` is the previous step of that
  extension plus one, the first numeric priority must be 1, ``hint`` is stored in `Extension.hint`.
* `pattern_matches`: ``X`` 0-9, ``Z`` 1-9, ``N`` 2-9 (any case), ``[...]`` classes with ranges, trailing ``.`` one or
  more and ``!`` zero or more characters; ``-`` outside a class is eye candy and ignored; other characters are
  literals; letters compare case-insensitively. A name not starting with ``_`` matches exactly (case-insensitive).
* Searches follow pbx_find_extension with Asterisk's default linear walk (``extenpatternmatchnew=no``), and are
  done for a (context, extension, priority) triple, never for an extension alone: `Dialplan.find` walks the
  context's extensions in `Context.ordered` order (ast_add_extension2's ext_cmp: literal names before patterns;
  patterns position by position, fewer possible characters first: literal 1 < class size < N 8 < Z 9 < X 10 <
  ``.`` < ``!``, a shorter pattern before a longer one with the same start, ties by the lowest character then the
  text; of one name, the caller-id specific extension first). The first extension that matches *and has that
  priority* wins: one that matches but lacks the priority does not end the search, the walk goes on to the next
  matching extension, then to the includes, depth-first in order, each context once. So a hint-only extension
  never takes a call, and ``exten => 100,1,...`` with ``exten => _1XX,2,...`` runs 100's priority 1 then _1XX's
  priority 2. `find_label` is the same walk for a label (Goto(label)); `exists`, `can_match` (E_CANMATCH) and
  `can_match_more` (E_MATCHMORE: an extension could match with more digits; the first matching extension that
  ends in ``!`` makes the answer no) likewise. `lookup` gives the extension holding priority 1. `Dialplan.
  autofallthrough` reads ``[general] autofallthrough`` (default yes). Switches are parsed, never followed.
* `sdp_view` / `sdp_lines`: jade's per-context wire format, ``{"exten": "> _X.,1,NoOp(q)"}`` (the raw text after
  the first ``=``), and its inverse to (key, op, value) triples for `render_section`.
* `compile_adpmas`: each adpma (an async dialplan group ``{uuid, name, detail}``) becomes a context::

      ; <adpma name>
      [adpma-<adpma uuid>]
      exten => _.,1,NoOp(<adpma name, sanitized>)
      same => n,<adp command>              ; one per adp of the group, ascending sequence, ties by name
      same => n,NoOp(<adp name, sanitized>) ; for an adp with an empty/None command

  Adps (``{uuid, dpma_uuid, name, sequence, command, detail}``) whose dpma_uuid names no adpma are ignored;
  contexts follow the order of `adpmas`, separated by a blank line. Sanitizing removes parentheses, brackets,
  braces, ``$`` and backslashes (no dialplan expansion) and turns control characters into spaces. A command must be
  one valid application call (``Name`` or ``Name(args)`` with balanced parentheses), else ConfError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from switchboard.asterisk.conf import WS, ConfError, Option, parse, render_section

__all__ = [
    "Context",
    "Dialplan",
    "CANMATCH",
    "MATCH",
    "MATCHMORE",
    "Extension",
    "Found",
    "Step",
    "compile_adpmas",
    "extension_match",
    "pattern_matches",
    "sdp_lines",
    "sdp_view",
    "validate",
]

_SPECIAL = ("general", "globals")
_SWITCHES = ("switch", "eswitch", "lswitch")
_PRIORITY = re.compile(r"(\d+|n|hint)(?:\((.*)\))?", re.I)
_LABEL = re.compile(r"\w[\w.\-]*")
_APP = re.compile(r"\w+", re.A)
_LITERAL = re.compile(r"[\w*#+\-.@~]+", re.A)
_UNSAFE = re.compile(r"[()\[\]{}$\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Step:
    priority: int
    label: str | None
    app: str
    args: str
    line: int = 0


@dataclass
class Extension:
    exten: str
    callerid: str | None
    priorities: list[Step] = field(default_factory=list)
    hint: str | None = None
    line: int = 0


@dataclass
class Context:
    name: str
    extensions: list[Extension] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    ignorepats: list[str] = field(default_factory=list)
    switches: list[str] = field(default_factory=list)

    _order: list[Extension] | None = field(default=None, init=False, repr=False, compare=False)
    _order_len: int = field(default=-1, init=False, repr=False, compare=False)

    def ordered(self) -> list[Extension]:
        """The extensions in Asterisk's context order (ast_add_extension2 / ext_cmp): literal names first, then
        patterns fewest-matches-first position by position; of one name, caller-id specific ones first."""
        if self._order is None or self._order_len != len(self.extensions):
            self._order = sorted(self.extensions, key=_order_key)
            self._order_len = len(self.extensions)
        return self._order

    def match(self, number: str, callerid: str | None = None) -> Extension | None:
        """Best extension of this context alone (no includes) for `number` that has a priority 1."""
        for ext in self.ordered():
            if ext.priorities and _cid_ok(ext, callerid) and extension_match(ext.exten, number, MATCH):
                return ext
        return None


class Found(NamedTuple):
    """One step found by a dialplan search: the context it was found in (maybe an included one)."""

    context: str
    extension: Extension
    step: Step


def _order_key(ext: Extension) -> tuple:
    if not ext.exten.startswith("_"):  # ext_cmp_exten: byte order, '-' ignored
        return (0, ext.exten.replace("-", ""), ext.callerid is None, ext.callerid or "")
    return (1, _scan(ext.exten)[1], ext.callerid is None, ext.exten, ext.callerid or "")


def _cid_ok(ext: Extension, callerid: str | None) -> bool:
    if ext.callerid is None:
        return True
    return bool(callerid) and extension_match(ext.callerid, callerid, MATCH) != 0


class _Final(Exception):
    """E_MATCHMORE met an extension ending in '!': the answer is final (no)."""


@dataclass
class Dialplan:
    contexts: dict[str, Context] = field(default_factory=dict)
    general: dict[str, str] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)
    templates: dict[str, Context] = field(default_factory=dict)

    @property
    def autofallthrough(self) -> bool:
        """``[general] autofallthrough`` (default yes)."""
        for key, value in self.general.items():
            if key.lower() == "autofallthrough":
                return value.strip(WS).lower() in ("yes", "true", "y", "t", "1", "on")
        return True

    def _search(
        self, context: str, data: str, mode: int, callerid: str | None, want: Callable[[Extension], Step | None]
    ) -> Found | None:
        """pbx_find_extension with the default (extenpatternmatchnew=no) linear walk: each context's extensions in
        `Context.ordered` order; the first one that matches `data` in `mode`, passes its caller-id match and has
        the wanted step wins; a matching extension without that step does not stop the walk (the next matching
        one is tried); then the includes, depth-first in order; each context is searched once (names compared
        case-insensitively, as the include stack does); switches are not followed."""
        seen: set[str] = set()

        def visit(name: str) -> Found | None:
            key = name.lower()
            ctx = self.contexts.get(name)
            if ctx is None or key in seen:
                return None
            seen.add(key)
            for ext in ctx.ordered():
                m = extension_match(ext.exten, data, mode)
                if not m or not _cid_ok(ext, callerid):
                    continue
                if m == 2 and mode == MATCHMORE:
                    raise _Final
                step = want(ext)
                if step is not None:
                    return Found(ctx.name, ext, step)
            for inc in ctx.includes:
                found = visit(inc)
                if found is not None:
                    return found
            return None

        try:
            return visit(context)
        except _Final:
            return None

    def find(self, context: str, exten: str, priority: int, callerid: str | None = None) -> Found | None:
        """The step Asterisk runs at (context, exten, priority): see `_search`."""

        def want(ext: Extension) -> Step | None:
            for step in ext.priorities:
                if step.priority == priority:
                    return step
            return None

        return self._search(context, exten, MATCH, callerid, want)

    def find_label(self, context: str, exten: str, label: str, callerid: str | None = None) -> Found | None:
        """The step labelled `label` (case-sensitive, as Asterisk) of the extension matching `exten`."""

        def want(ext: Extension) -> Step | None:
            for step in ext.priorities:
                if step.label == label:
                    return step
            return None

        return self._search(context, exten, MATCH, callerid, want)

    def exists(self, context: str, exten: str, priority: int = 1, callerid: str | None = None) -> bool:
        """ast_exists_extension."""
        return self.find(context, exten, priority, callerid) is not None

    def can_match(self, context: str, digits: str, callerid: str | None = None) -> bool:
        """ast_canmatch_extension: an extension matches `digits` now or could with more digits."""
        return self._search(context, digits, CANMATCH, callerid, _first_step) is not None

    def can_match_more(self, context: str, digits: str, callerid: str | None = None) -> bool:
        """ast_matchmore_extension: some extension could match if more digits came (``.`` always can; the first
        matching extension ending in ``!`` makes the answer no)."""
        return self._search(context, digits, MATCHMORE, callerid, _first_step) is not None

    def lookup(self, context: str, number: str, callerid: str | None = None) -> Extension | None:
        """The extension a call to `number` starts in (the one holding priority 1), or None."""
        found = self.find(context, number, 1, callerid)
        return found.extension if found else None


def _first_step(ext: Extension) -> Step | None:
    for step in ext.priorities:
        if step.priority == 1:
            return step
    return None


MATCH, CANMATCH, MATCHMORE = 0, 1, 2


@lru_cache(maxsize=8192)
def _elements(pattern: str) -> tuple[frozenset[str] | str, ...]:
    """Per-position character sets of an `_` pattern (lower case), ``"."`` / ``"!"`` for the wildcards."""
    body, out = pattern[1:], []
    _scan(pattern)  # validates
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c in ".!":
            out.append(c)
        elif c == "[":
            close = body.find("]", i + 1)
            out.append(frozenset(ch.lower() for ch in _char_class(body[i + 1 : close], pattern)))
            i = close
        elif c in "xXzZnN":
            lo = {"x": 0, "z": 1, "n": 2}[c.lower()]
            out.append(frozenset(str(d) for d in range(lo, 10)))
        elif c != "-":
            out.append(frozenset(c.lower()))
        i += 1
    return tuple(out)


def extension_match(pattern: str, data: str, mode: int = MATCH) -> int:
    """_extension_match_core: 0 no, 1 yes, 2 yes by a trailing ``!`` (early match).

    MATCH: `data` is matched completely. CANMATCH: `data` matches, or is a prefix of something that would.
    MATCHMORE: `data` is a proper prefix of something that would match (a literal name longer than `data`, a
    pattern with positions left; ``.`` always can take more). Literal names ignore ``-`` on both sides."""
    if not pattern.startswith("_"):
        p, d = pattern.replace("-", "").lower(), data.replace("-", "").lower()
        if len(p) < len(d):
            return 0
        if mode == MATCH:
            return int(p == d)
        if not p.startswith(d):
            return 0
        return int(len(p) > len(d)) if mode == MATCHMORE else 1
    if mode == MATCH:
        if not pattern_matches(pattern, data):
            return 0
        return 2 if pattern.endswith("!") and len(data) >= len(_elements(pattern)) - 1 else 1
    els = _elements(pattern)
    k = 0
    for ch in data:
        if ch == "-":
            continue
        if k >= len(els):
            return 0
        el = els[k]
        if el == ".":
            return 1
        if el == "!":
            return 2
        if ch.lower() not in el:
            return 0
        k += 1
    if k == len(els):
        return 0 if mode == MATCHMORE else 1
    if els[k] == "!":
        return 2
    return 1


@lru_cache(maxsize=8192)
def _scan(pattern: str) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Regex source and specificity key of an `_` pattern; ConfError (no line) when malformed."""
    body, out, key = pattern[1:], [], []
    if not body:
        raise ConfError(None, "empty pattern '_'")
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c in ".!":
            if i != n - 1:
                raise ConfError(None, f"{c!r} is only allowed at the end of pattern {pattern!r}")
            out.append(".+" if c == "." else ".*")
            key.append((1000 if c == "." else 1001, ""))
        elif c == "[":
            close = body.find("]", i + 1)
            if close == -1:
                raise ConfError(None, f"unterminated '[' in pattern {pattern!r}")
            chars = _char_class(body[i + 1 : close], pattern)
            out.append("[" + "".join(re.escape(ch) for ch in sorted(chars)) + "]")
            key.append((len(chars), min(chars)))
            i = close
        elif c in "xXzZnN":
            lo = {"x": "0", "z": "1", "n": "2"}[c.lower()]
            out.append(f"[{lo}-9]")
            key.append((10 - int(lo), lo))
        elif c.isalnum() and c.isascii() or c in "*#+":
            out.append(re.escape(c))
            key.append((1, c.lower()))
        elif c != "-":
            raise ConfError(None, f"invalid character {c!r} in pattern {pattern!r}")
        i += 1
    return "".join(out), tuple(key)


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_scan(pattern)[0], re.I | re.S)


def _char_class(spec: str, pattern: str) -> set[str]:
    if not spec:
        raise ConfError(None, f"empty character class [] in pattern {pattern!r}")
    chars: set[str] = set()
    k = 0
    while k < len(spec):
        c = spec[k]
        if not (c.isalnum() and c.isascii() or c in "*#+-"):
            raise ConfError(None, f"invalid character {c!r} in character class of pattern {pattern!r}")
        if k + 2 < len(spec) and spec[k + 1] == "-":
            hi = spec[k + 2]
            if hi < c or not (hi.isalnum() and hi.isascii() or hi in "*#+"):
                raise ConfError(None, f"bad range {c}-{hi} in pattern {pattern!r}")
            chars.update(chr(o) for o in range(ord(c), ord(hi) + 1))
            k += 3
        else:
            chars.add(c)
            k += 1
    return chars


def pattern_matches(pattern: str, number: str) -> bool:
    """Asterisk extension matching (see the module docstring); ConfError on a malformed `_` pattern."""
    if not pattern.startswith("_"):
        return pattern.lower() == number.lower()
    return _regex(pattern).fullmatch(number) is not None


def _check_exten(exten: str, what: str, line: int) -> None:
    if not exten:
        raise ConfError(line, f"empty {what}")
    if exten.startswith("_"):
        try:
            _scan(exten)
        except ConfError as e:
            raise ConfError(line, e.reason) from None
    elif not _LITERAL.fullmatch(exten):
        raise ConfError(line, f"invalid {what} {exten!r}")


def _parse_app(text: str, line: int | None) -> tuple[str, str]:
    """`Name` or `Name(args)` with balanced parentheses (backslash escapes a character)."""
    text = text.strip(WS)
    if not text:
        raise ConfError(line, "missing application")
    open_ = text.find("(")
    name = (text if open_ == -1 else text[:open_]).rstrip(WS)
    if not _APP.fullmatch(name):
        raise ConfError(line, f"invalid application name {name!r}")
    if open_ == -1:
        return name, ""
    depth, i, n = 0, open_, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if not depth:
                break
        i += 1
    if depth:
        raise ConfError(line, f"unbalanced '(' in {name}(...)")
    if i != n - 1:
        raise ConfError(line, f"unexpected text {text[i + 1 :]!r} after {name}(...)")
    return name, text[open_ + 1 : i]


def _add_step(ext: Extension, spec: str, rest: str | None, line: int) -> None:
    m = _PRIORITY.fullmatch(spec.strip(WS))
    if not m:
        raise ConfError(line, f"invalid priority {spec.strip(WS)!r} for {ext.exten}")
    pri, label = m.group(1).lower(), m.group(2)
    if rest is None:
        raise ConfError(line, f"missing application after priority {spec.strip(WS)!r}")
    if pri == "hint":
        if label is not None:
            raise ConfError(line, "a hint cannot have a label")
        if ext.hint is not None:
            raise ConfError(line, f"duplicate hint for {ext.exten}")
        if not rest.strip(WS):
            raise ConfError(line, f"empty hint for {ext.exten}")
        ext.hint = rest.strip(WS)
        return
    if label is not None and not _LABEL.fullmatch(label):
        raise ConfError(line, f"invalid label {label!r}")
    steps = ext.priorities
    if pri == "n":
        if not steps:
            raise ConfError(line, f"priority n without a previous priority for {ext.exten}")
        number = steps[-1].priority + 1
    else:
        number = int(pri)
        if number < 1:
            raise ConfError(line, f"priority must be a positive integer, not {number}")
        if not steps and number != 1:
            raise ConfError(line, f"first priority of {ext.exten} must be 1, not {number}")
    for step in steps:
        if step.priority == number:
            raise ConfError(line, f"duplicate priority {number} for {ext.exten} (first at line {step.line})")
        if label is not None and step.label == label:
            raise ConfError(line, f"duplicate label {label!r} for {ext.exten}")
    app, args = _parse_app(rest, line)
    steps.append(Step(number, label, app, args, line))


def _fill_context(ctx: Context, options: list[Option], exts: dict, includes: list[tuple[str, int]]) -> None:
    last: Extension | None = None
    for o in options:
        key, value = o.key.lower(), o.value
        if key == "exten":
            head, has_priority, rest = value.partition(",")
            exten, slash, cid = head.strip(WS).partition("/")
            exten, cid = exten.strip(WS), cid.strip(WS)
            _check_exten(exten, "extension", o.line)
            if slash:
                _check_exten(cid, "caller id match", o.line)
            if not has_priority:
                raise ConfError(o.line, f"missing priority for {exten}")
            ext = exts.get((exten, cid or None))
            if ext is None:
                ext = exts[exten, cid or None] = Extension(exten, cid or None, line=o.line)
                ctx.extensions.append(ext)
            last = ext
            spec, comma, app = rest.partition(",")
            _add_step(ext, spec, app if comma else None, o.line)
        elif key == "same":
            if last is None:
                raise ConfError(o.line, f"same => before any exten => in context {ctx.name}")
            spec, comma, app = value.partition(",")
            _add_step(last, spec, app if comma else None, o.line)
        elif key == "include":
            name = re.split(r"[,|]", value, maxsplit=1)[0].strip(WS)
            if not name:
                raise ConfError(o.line, "include => needs a context name")
            ctx.includes.append(name)
            includes.append((name, o.line))
        elif key in ("ignorepat", *_SWITCHES):
            if not value:
                raise ConfError(o.line, f"{key} => needs a value")
            (ctx.ignorepats if key == "ignorepat" else ctx.switches).append(value)
        else:
            raise ConfError(o.line, f"unknown dialplan directive {o.key}")


def validate(text: str, provided: Iterable[str] = ()) -> Dialplan:
    """Parse and check an extensions.conf; ConfError (with line) on the first problem. `provided`: contexts
    another module generates (res_parking's lot contexts), which an include may name."""
    provided = set(provided)
    conf = parse(text)
    plan = Dialplan()
    exts: dict[tuple[str, str], dict] = {}
    includes: list[tuple[str, int]] = []
    for sec in conf.sections:
        options = conf.options_of(sec)
        low = sec.name.lower()
        if low in _SPECIAL:
            (plan.general if low == "general" else plan.globals).update({o.key: o.value for o in options})
            continue
        kind = "template" if sec.template else "context"
        pool = plan.templates if sec.template else plan.contexts
        ctx = pool.setdefault(sec.name, Context(sec.name))
        _fill_context(ctx, options, exts.setdefault((kind, sec.name), {}), includes)
    for name, line in includes:
        if name not in plan.contexts and name not in provided:
            hint = " (templates are not contexts)" if name in plan.templates else ""
            raise ConfError(line, f"include of unknown context {name}{hint}")
    return plan


def sdp_view(text: str) -> list[dict[str, Any]]:
    """Per-context view: `{"name": ctx, "data": [{key: raw text after the first "=", stripped}, ...]}`."""
    return [
        {"name": s.name, "data": [{o.key: o.raw} for o in s.options]}
        for s in parse(text).sections
        if s.name.lower() not in _SPECIAL
    ]


def sdp_lines(data: Iterable[Any]) -> list[tuple[str, str, str]]:
    """Inverse of one context's `sdp_view` data: `{k: "> v"}` -> (k, "=>", "v"), `{k: "v"}` -> (k, "=", "v")."""
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ConfError(None, f"data item {i}: expected an object with exactly one key")
        ((key, value),) = item.items()
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfError(None, f"data item {i}: key and value must be strings")
        if value.startswith(">"):
            out.append((key, "=>", value[1:].strip(WS)))
        else:
            out.append((key, "=", value.strip(WS)))
    return out


def _sanitize(name: Any) -> str:
    return " ".join(_UNSAFE.sub("", _CONTROL.sub(" ", str(name or ""))).split())


def _sequence(adp: Mapping[str, Any]) -> int:
    try:
        return int(adp.get("sequence") or 0)
    except (TypeError, ValueError):
        raise ConfError(None, f"adp {adp.get('name')!r}: sequence must be an integer") from None


def compile_adpmas(adpmas: Iterable[Mapping[str, Any]], adps: Iterable[Mapping[str, Any]]) -> str:
    """extensions.conf text for the async dialplan (mapping in the module docstring); passes `validate`."""
    rules: dict[str, list[Mapping[str, Any]]] = {}
    for adp in adps:
        rules.setdefault(str(adp.get("dpma_uuid")), []).append(adp)
    blocks, seen = [], set()
    for group in adpmas:
        uuid = str(group.get("uuid") or "").strip(WS)
        if not uuid or uuid in seen:
            raise ConfError(None, f"adpma uuid {uuid!r} is empty or repeated")
        seen.add(uuid)
        title = _sanitize(group.get("name"))
        lines = [("exten", "=>", f"_.,1,NoOp({title})")]
        for adp in sorted(rules.get(uuid, []), key=lambda a: (_sequence(a), str(a.get("name") or ""))):
            command = str(adp.get("command") or "").strip(WS)
            if not command:
                command = f"NoOp({_sanitize(adp.get('name'))})"
            elif "\n" in command or "\r" in command:
                raise ConfError(None, f"adp {adp.get('name')!r}: newline in command")
            else:
                try:
                    _parse_app(command, None)
                except ConfError as e:
                    raise ConfError(None, f"adp {adp.get('name')!r}: {e.reason}") from None
            lines.append(("same", "=>", f"n,{command}"))
        comment = " ".join(str(group.get("name") or "").split())
        blocks.append(f";{' ' + comment if comment else ''}\n" + render_section(f"adpma-{uuid}", lines))
    return "\n".join(blocks)
