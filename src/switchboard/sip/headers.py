"""SIP header values, sans I/O: the one place inside sip/ that reads Via, tags, name-addr and Contact.

* Via (RFC 3261 §20.42): `parse_via` / `top_via` give (transport, sent-by, branch) with the fast path
  the transaction layer relies on (one `find` for the branch in the usual case); `with_received` adds
  `received` (§18.2.1) and fills `rport` (RFC 3581) on a request's top Via.
* Parameters and tags: `params(";a=1;b")`, `tag(From/To value)`.
* name-addr / addr-spec (§20.10, §25.1): `name_addr(value)` -> NameAddr(display, uri, params), the
  parameters after the `>` (or after the addr-spec) being the header's, not the URI's.
* Contact (§20.10): `split_contacts` (commas outside <> and quotes split), `contact_uri_and_params`,
  and `uri_user` (the user part of a SIP/SIPS URI).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from switchboard.sip.message import Message, ParseError

MAGIC_COOKIE = "z9hG4bK"

# --- parameters and tags ---------------------------------------------------------------------------------


def params(text: str) -> dict[str, str]:
    """`;a=1;B=x;c` -> {"a": "1", "b": "x", "c": ""}: names lower-cased, the first of a name kept."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            out.setdefault(name.strip().lower(), value.strip())
    return out


def tag(value: str | None) -> str:
    """The tag parameter of a From/To value (parameters inside <...> belong to the URI); "" if none."""
    if not value:
        return ""
    tail = value[value.rindex(">") + 1 :] if ">" in value else value.partition(";")[2]
    return params(tail).get("tag", "")


def with_tag(value: str, new_tag: str) -> str:
    """A From/To value with `;tag=new_tag` (replacing none: the caller checks `tag(value)` first)."""
    return f"{value};tag={new_tag}"


# --- Via -------------------------------------------------------------------------------------------------

_VIA = re.compile(r"\s*SIP\s*/\s*2\.0\s*/\s*([^\s/;]+)\s+([^;]+)", re.IGNORECASE)


class Via(NamedTuple):
    transport: str  # upper case
    sent_by: str  # host[:port], lower case, without whitespace
    branch: str  # "" when absent


_new_via = tuple.__new__


def parse_via(value: str) -> Via:
    """One Via value -> Via(transport, sent-by, branch); ParseError when it is not a Via."""
    if "(" in value:
        value = re.sub(r"\([^)]*\)", "", value)  # comments
    m = _VIA.match(value)
    if m is None:
        raise ParseError(f"bad Via {value!r}")
    transport, sent_by = m.group(1, 2)
    sent_by = ("".join(sent_by.split()) if " " in sent_by or "\t" in sent_by else sent_by).lower()
    rest = value[m.end() :]
    low = rest.lower()
    start = low.find(";branch=")
    if start >= 0 and low.count("branch") == 1 and rest.isascii():  # the usual case: no need to read every parameter
        start += 8
        end = rest.find(";", start)
        branch = (rest[start:] if end < 0 else rest[start:end]).strip()
    else:
        branch = params(rest).get("branch", "")
    return _new_via(Via, (transport.upper(), sent_by, branch))  # Via(...) without its Python-level __new__


def top_via(msg: Message) -> Via:
    value = msg.get("Via")
    if value is None:
        raise ParseError("no Via header")
    return parse_via(value)


def via_params(value: str) -> dict[str, str]:
    """The parameters of one Via value (branch, received, rport, ...)."""
    _, _, rest = value.partition(";")
    return params(rest)


def with_received(req: Message, host: str, port: int) -> str | None:
    """RFC 3261 §18.2.1 `received` and RFC 3581 `rport` on the top Via of `req`, in place (`received`).
    Returns the top Via value as it now is (None: the request has no Via)."""
    headers = req.headers
    for i, (n, v) in enumerate(headers):
        if n != "Via":
            continue
        top = v.split(",")[0] if "," in v and v.count("SIP/") > 1 else v
        new_top = received(top, host, port)
        if new_top is not top:
            headers[i] = (n, new_top if top is v else new_top + v[len(top) :])
        return new_top
    return None


def received(via: str, host: str, port: int) -> str:
    """One Via value as a server that got it from `host`:`port` passes it on: RFC 3261 §18.2.1 `received`
    when the sent-by host differs from `host` (or rport was asked for), RFC 3581 `rport=port` when asked
    for; `via` itself when neither applies."""
    if via.endswith(";rport") and via.count("rport") == 1:  # the common case: one valueless rport, last
        return f"{via}={port};received={host}"
    parts = via.split(";")
    sent_by = parts[0].split()[-1] if parts[0].split() else ""
    names = [p.strip().split("=")[0].lower() for p in parts[1:]]
    if "rport" in names:
        parts = [f"rport={port}" if p.strip().lower() == "rport" else p for p in parts]
        parts.append(f"received={host}")
    elif sent_by.rsplit(":", 1)[0].strip("[]") != host:
        parts.append(f"received={host}")
    else:
        return via
    return ";".join(parts)


# --- name-addr / addr-spec -------------------------------------------------------------------------------


class NameAddr(NamedTuple):
    display: str  # without quotes; "" if none
    uri: str
    params: dict[str, str]  # the header's parameters (tag, expires, q, lr, ...), names lower-cased


def name_addr(value: str) -> NameAddr:
    """`"Bob" <sip:bob@h;transport=tcp>;tag=x` -> NameAddr("Bob", "sip:bob@h;transport=tcp", {"tag": "x"});
    `sip:bob@h;tag=x` (addr-spec: the parameters are the header's, §20.10) -> ("", "sip:bob@h", {"tag": "x"})."""
    value = value.strip()
    if "<" in value:
        start, end = value.index("<"), value.find(">")
        display = value[:start].strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = display[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        uri = value[start + 1 : end if end > start else None].strip()
        rest = value[end + 1 :] if end > start else ""
    else:
        display = ""
        uri, _, rest = value.partition(";")
        uri = uri.strip()
    out: dict[str, str] = {}
    for p in rest.split(";"):
        k, _, v = p.strip().partition("=")
        if k:
            out.setdefault(k.strip().lower(), v.strip().strip('"'))
    return NameAddr(display, uri, out)


def uri_of(value: str) -> str:
    """The URI of a name-addr or addr-spec value (Contact, Route, Record-Route, From, To)."""
    return name_addr(value).uri


def uri_params(uri: str) -> dict[str, str]:
    """The parameters of a SIP URI (`;lr`, `;transport=tcp`), without its headers part."""
    uri = uri.partition("?")[0]
    _, _, rest = uri.partition(";")
    return params(rest)


# --- Contact ---------------------------------------------------------------------------------------------

_URI_USER = re.compile(r"sips?:([^@;>]+)@", re.IGNORECASE)


_USERS: dict[str, str | None] = {}  # value -> uri_user(value): a phone's To is the same in every REGISTER
_USERS_MAX = 8192


def uri_user(value: str | None) -> str | None:
    """The user part of the first SIP/SIPS URI in `value`, or None."""
    if not value:
        return None
    try:
        return _USERS[value]
    except KeyError:
        pass
    m = _URI_USER.search(value)
    user = m.group(1) if m else None
    if len(_USERS) >= _USERS_MAX:
        _USERS.clear()
    _USERS[value] = user
    return user


def split_contacts(values: list[str]) -> list[str]:
    """Contact header values -> one string per contact (commas outside <> and quotes split)."""
    out: list[str] = []
    for value in values:
        if "," not in value:  # one contact: the common case
            out.append(value.strip())
            continue
        cur: list[str] = []
        angle, quote = False, False
        for ch in value:
            if ch == '"' and not angle:
                quote = not quote
            elif ch == "<" and not quote:
                angle = True
            elif ch == ">" and not quote:
                angle = False
            if ch == "," and not angle and not quote:
                out.append("".join(cur).strip())
                cur = []
            else:
                cur.append(ch)
        out.append("".join(cur).strip())
    return [c for c in out if c]


_CONTACTS: dict[str, tuple[str, dict[str, str]]] = {}  # contact -> its URI and parameters (a phone's repeats)
_CONTACTS_MAX = 8192


def contact_uri_and_params(contact: str) -> tuple[str, dict[str, str]]:
    """`"Name" <sip:u@h;transport=tcp>;expires=60;q=0.5` -> ("sip:u@h;transport=tcp", {expires: 60, q: 0.5})."""
    known = _CONTACTS.get(contact)
    if known is not None:
        return known[0], known[1].copy()  # the caller's own dict
    uri, out = _contact_uri_and_params(contact)
    if len(_CONTACTS) >= _CONTACTS_MAX:
        _CONTACTS.clear()
    _CONTACTS[contact] = (uri, out.copy())
    return uri, out


def _contact_uri_and_params(contact: str) -> tuple[str, dict[str, str]]:
    if "<" in contact:
        start, end = contact.index("<"), contact.find(">")
        uri = contact[start + 1 : end if end > start else None].strip()
        rest = contact[end + 1 :] if end > start else ""
    else:
        uri, _, rest = contact.partition(";")
        uri, rest = uri.strip(), ";" + rest if rest else ""
    out = {}
    for p in rest.split(";"):
        k, _, v = p.strip().partition("=")
        if k:
            out[k.lower()] = v.strip().strip('"')
    return uri, out
