"""Asterisk-syntax configuration files (pjsip.conf, queues.conf, res_parking.conf, extensions.conf), sans-I/O.

`parse(text)` gives a `ConfFile`: sections with their options, template flags and bases, and the exact line range
of each section's text so that `replace_section` / `remove_section` can splice a block while every other byte of
the file stays as it was. `render_section` writes one section back in canonical form.

Rules chosen where Asterisk is loose:

* Lines are split on ``"\\n"`` only (a trailing ``"\\r"`` is dropped); only ASCII whitespace is stripped.
* ``;`` starts a comment, ``\\;`` is a literal semicolon, ``;--`` ... ``--;`` is a (nesting) block comment.
* ``#include``/``#tryinclude`` arguments (quotes removed) go to `ConfFile.includes`, ``#exec`` ones to
  `ConfFile.execs`; they are never resolved. Any other ``#word`` directive is an error.
* ``[name](+)`` appends to the previous section of that name (`Section.append`); `resolved` / `multi` /
  `expanded` see the continuation, `get` returns the first section only.
* A section's block runs from the comment lines directly above its header (no blank line between) to the start
  of the next block; blank lines after its last option belong to it. Lines before the first block are the preamble.
  A block comment that straddles two sections (opened on a content line) stays with the section that opened it;
  splicing such a file may leave the comment unbalanced.
* Bases may be defined before or after the section that inherits them (Asterisk wants them before).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "ConfError",
    "ConfFile",
    "Option",
    "Section",
    "int_value",
    "option_value",
    "parse",
    "render_section",
    "section_data",
]

WS = " \t\r\n\x0b\x0c"
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f\[\]]")
_BAD_BASE = re.compile(r"[\x00-\x1f\x7f\[\](),]")
_DIRECTIVE = re.compile(r"#([A-Za-z]+)[ \t]*(.*)")


class ConfError(ValueError):
    """A syntax or semantic error; `line` is 1-based (None when not tied to a line)."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Option:
    key: str
    op: str
    value: str
    line: int
    raw: str = field(default="", repr=False, compare=False)  # comment-free text after the first "=", stripped


@dataclass
class Section:
    name: str
    options: list[Option]
    template: bool
    bases: list[str]
    start: int
    end: int
    line: int = 0  # 1-based line of the [header]
    append: bool = False  # declared [name](+)


@dataclass
class ConfFile:
    text: str
    sections: list[Section]
    preamble_end: int
    includes: list[str] = field(default_factory=list)
    execs: list[str] = field(default_factory=list)

    def get(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def all(self, name: str) -> list[Section]:
        return [s for s in self.sections if s.name == name]

    def names(self) -> list[str]:
        return list(dict.fromkeys(s.name for s in self.sections))

    def _group(self, sec: Section) -> list[Section]:
        """`sec` plus the `(+)` continuations that follow it."""
        out = [sec]
        for s in self.sections[self.sections.index(sec) + 1 :]:
            if s.name == sec.name:
                if not s.append:
                    break
                out.append(s)
        return out

    def options_of(self, sec: Section, _stack: tuple[int, ...] = ()) -> list[Option]:
        """Inherited options (bases first, in order, recursively) then the section's own, in file order."""
        if id(sec) in _stack:
            raise ConfError(sec.line, f"template inheritance cycle through [{sec.name}]")
        stack = (*_stack, id(sec))
        out: list[Option] = []
        for base_name in sec.bases:
            base = self.get(base_name)
            if base is None:
                raise ConfError(sec.line, f"unknown template {base_name!r} inherited by [{sec.name}]")
            for part in self._group(base):
                out += self.options_of(part, stack)
        return out + sec.options

    def expanded(self, name: str) -> list[Option]:
        """All options of section `name` (first of that name plus its `(+)` continuations), inheritance applied."""
        sec = self.get(name)
        if sec is None:
            raise ConfError(None, f"no section [{name}]")
        return [o for part in self._group(sec) for o in self.options_of(part)]

    def resolved(self, name: str) -> dict[str, str]:
        return {o.key: o.value for o in self.expanded(name)}

    def multi(self, name: str, key: str) -> list[str]:
        return [o.value for o in self.expanded(name) if o.key == key]

    def replace_section(
        self,
        name: str,
        options: Iterable[tuple[str, str, str]] | Mapping[str, str],
        template: bool = False,
        bases: Iterable[str] = (),
    ) -> str:
        """New text with the first [name] (header through its last option, and its `(+)` continuations)
        replaced by a freshly rendered section; comments above the header and lines after the last option stay.
        A missing section is appended at the end after one blank line."""
        lines = _split(self.text)
        nl = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
        body = render_section(name, options, template, bases).replace("\n", nl)
        sec = self.get(name)
        if sec is None:
            text = self.text
            if text and not text.endswith("\n"):
                text += nl
            if lines and lines[-1].strip(WS):
                text += nl
            return text + body
        group = self._group(sec)
        last = max((o.line for o in sec.options), default=sec.line)
        edits = [(sec.line - 1, last, body)] + [(s.start, s.end, "") for s in group[1:]]
        return _splice(lines, edits)

    def remove_section(self, name: str) -> str:
        """New text without any [name] block (unchanged text when there is none)."""
        return _splice(_split(self.text), [(s.start, s.end, "") for s in self.all(name)])


def _split(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _splice(lines: list[str], edits: list[tuple[int, int, str]]) -> str:
    out: list[str] = []
    pos = 0
    for start, end, repl in sorted(edits):
        out += lines[pos:start]
        out.append(repl)
        pos = end
    out += lines[pos:]
    return "".join(out)


def _decomment(s: str, depth: int) -> tuple[str, int]:
    """Remove `;` comments (block comments nest across lines via `depth`), unescape `\\;`."""
    if not depth and ";" not in s:
        return s, 0
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        if depth:
            close, reopen = s.find("--;", i), s.find(";--", i)
            if reopen != -1 and (close == -1 or reopen < close):
                depth, i = depth + 1, reopen + 3
            elif close == -1:
                break
            else:
                depth, i = depth - 1, close + 3
            continue
        j = s.find(";", i)
        if j == -1:
            out.append(s[i:])
            break
        if j > i and s[j - 1] == "\\":
            out += (s[i : j - 1], ";")
            i = j + 1
            continue
        out.append(s[i:j])
        if not s.startswith(";--", j):
            break
        depth, i = 1, j + 3
    return "".join(out), depth


def _name_error(name: str, what: str, bad: re.Pattern[str] = _BAD_NAME) -> str | None:
    if not name:
        return f"empty {what}"
    m = bad.search(name)
    return f"invalid character {m.group()!r} in {what} {name!r}" if m else None


def _header(body: str, lineno: int) -> tuple[str, bool, bool, list[str]]:
    close = body.find("]")
    if close == -1:
        raise ConfError(lineno, "unterminated '[' in section header")
    name = body[1:close].strip(WS)
    err = _name_error(name, "section name")
    if err:
        raise ConfError(lineno, err)
    rest = body[close + 1 :].strip(WS)
    template = append = False
    bases: list[str] = []
    if rest:
        if rest[0] != "(":
            raise ConfError(lineno, f"unexpected text {rest!r} after section header")
        if not rest.endswith(")"):
            raise ConfError(lineno, "unterminated '(' in section header")
        for item in rest[1:-1].split(","):
            item = item.strip(WS)
            if item == "!":
                template = True
            elif item == "+":
                append = True
            elif item:
                err = _name_error(item, "template name", _BAD_BASE)
                if err:
                    raise ConfError(lineno, err)
                bases.append(item)
    return name, template, append, bases


def parse(text: str) -> ConfFile:
    lines = _split(text)
    sections: list[Section] = []
    includes: list[str] = []
    execs: list[str] = []
    kinds = bytearray(len(lines))  # 0 blank, 1 comment-only, 2 content, 3 comment-only inside a block comment
    cur: Section | None = None
    depth = 0
    for idx, raw in enumerate(lines):
        lineno = idx + 1
        line = raw.rstrip("\n").removesuffix("\r")
        was_in_comment = depth
        content, depth = _decomment(line, depth)
        body = content.strip(WS)
        if not body:
            kinds[idx] = 3 if was_in_comment else 1 if line.strip(WS) else 0
            continue
        kinds[idx] = 2
        first = body[0]
        if first == "[":
            name, template, append, bases = _header(body, lineno)
            cur = Section(name, [], template, bases, idx, len(lines), lineno, append)
            sections.append(cur)
        elif first == "#":
            m = _DIRECTIVE.fullmatch(body)
            word = m.group(1).lower() if m else ""
            if word not in ("include", "tryinclude", "exec"):
                raise ConfError(lineno, f"unknown directive {body.split()[0]!r}")
            arg = m.group(2).strip(WS)
            if len(arg) >= 2 and (arg[0], arg[-1]) in (('"', '"'), ("<", ">")):
                arg = arg[1:-1].strip(WS)
            if not arg:
                raise ConfError(lineno, f"#{word} needs an argument")
            (execs if word == "exec" else includes).append(arg)
        else:
            eq = body.find("=")
            if eq == -1:
                raise ConfError(lineno, f"expected 'key = value', a [section] header or a #directive, got {body!r}")
            key = body[:eq].strip(WS)
            if not key:
                raise ConfError(lineno, "empty key before '='")
            if cur is None:
                raise ConfError(lineno, f"option {key!r} before any [section]")
            arrow = body.startswith(">", eq + 1)
            value = body[eq + 2 if arrow else eq + 1 :].strip(WS)
            cur.options.append(Option(key, "=>" if arrow else "=", value, lineno, body[eq + 1 :].strip(WS)))
    for i, sec in enumerate(sections):
        start = sec.start
        while start > 0 and kinds[start - 1] in (1, 3):
            start -= 1
        while kinds[start] == 3:  # never start a block inside a block comment opened above it
            start += 1
        sec.start = start
        if i:
            sections[i - 1].end = start
    return ConfFile(text, sections, sections[0].start if sections else len(lines), includes, execs)


def _escape(s: str) -> str:
    return s.replace(";", "\\;")


def render_section(
    name: str,
    options: Iterable[tuple[str, str, str]] | Mapping[str, str],
    template: bool = False,
    bases: Iterable[str] = (),
) -> str:
    """`[name]` / `[name](!,base,...)` then one `key = value` / `key => value` line per option, ending in a newline.
    Surrounding whitespace of names, keys and values is dropped (Asterisk cannot represent it)."""
    name = name.strip(WS) if isinstance(name, str) else ""
    err = _name_error(name, "section name")
    if err:
        raise ConfError(None, err)
    flags = ["!"] if template else []
    for base in bases:
        base = base.strip(WS) if isinstance(base, str) else ""
        err = _name_error(base, "template name", _BAD_BASE) or (
            f"invalid template name {base!r}" if base == "+" else None
        )
        if err:
            raise ConfError(None, err)
        flags.append(base)
    out = [_escape(f"[{name}]" + (f"({','.join(flags)})" if flags else ""))]
    items = [(k, "=", v) for k, v in options.items()] if isinstance(options, Mapping) else options
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise ConfError(None, f"option must be a (key, op, value) triple, got {item!r}")
        key, op, value = item
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfError(None, f"option key and value must be strings, got {item!r}")
        key, value = key.strip(WS), value.strip(WS)
        if op not in ("=", "=>"):
            raise ConfError(None, f"invalid operator {op!r} for key {key!r}")
        if not key:
            raise ConfError(None, "empty option key")
        bad = next((c for c in key if c in "=[];\n\r"), None) or ("#" if key[0] == "#" else None)
        if bad:
            raise ConfError(None, f"invalid character {bad!r} in option key {key!r}")
        if "\n" in value or "\r" in value:
            raise ConfError(None, f"newline in the value of {key!r}")
        out.append(f"{key} {op} {_escape(value)}" if value else f"{key} {op}")
    return "\n".join(out) + "\n"


# ---- option values, as the engine and the cfg views read them ------------------------------------------------
def option_value(value: str) -> str:
    """The value after `key =` / `key =>` without the arrow (what the engine uses)."""
    v = value.strip()
    return v[1:].strip() if v.startswith(">") else v


def int_value(value: str, where: str, *, minimum: int = 0) -> int:
    """An integer option (ASCII digits, optional minus) of at least `minimum`; ConfError naming `where` if not."""
    v = value.strip()
    if not (v.isascii() and v.lstrip("-").isdigit()) or int(v) < minimum:
        raise ConfError(None, f"{where} must be an integer >= {minimum}, not {value!r}")
    return int(v)


def section_data(cf: ConfFile, name: str) -> dict[str, object]:
    """A section's options as the cfg views show them: the text after the first `=` of each line, stripped
    (`key => v` reads `"> v"`); a key repeated in the section (also across `[name](+)`) reads as a list."""
    data: dict[str, object] = {}
    for s in cf.all(name):
        for o in s.options:
            v = o.value.strip() if o.op == "=" else "> " + o.value.strip()
            if o.key in data:
                prev = data[o.key]
                data[o.key] = [*prev, v] if isinstance(prev, list) else [prev, v]
            else:
                data[o.key] = v
    return data
