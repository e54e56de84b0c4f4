"""VoIP Spear wire format: JSON or Rails-style XML chosen by Accept / Content-Type, and errors.

- JSON objects are bare; lists are `{"collection": [...], "metadata": {"count": N}}`; dates
  `YYYY-MM-DD HH:MM:SS` (UTC).
- XML is what Rails' to_xml writes: `<?xml ...?>`, dashed element names in alphabetical order,
  `type="integer|float|boolean|datetime"`, `nil="true"` for null, lists `<endpoints type="array">`,
  dates `YYYY-MM-DDTHH:MM:SSZ`.
- Errors: 422 `{"errors": [...]}` / `<errors><error>...</error></errors>`; the same body for 400,
  401, 403, 404, 413, 415 and 429 so a client has one error shape to read.
- Request bodies: JSON `{"endpoint": {...}}` (or the bare object), or XML `<endpoint>...</endpoint>`
  with dashed or underscored names, parsed with defusedxml (no DTDs, no entity expansion), in the
  encoding its declaration names (an unknown one, or bytes that do not decode: 400).
  Content-Type: JSON (`application/json`, `application/*+json`) or XML (`application/xml`,
  `text/xml`, `application/*+xml`); none at all reads XML when the body starts with `<` (or a byte
  order mark), else JSON; any other with a body: 415.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from operator import itemgetter
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import escape

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from fastapi import Request, Response

from switchboard.api.common import XML_BODY, HttpStatus, InternalError, media_matches, media_type, reject_nul
from switchboard.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Malformed,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unsupported,
    full_messages,
)

XML_TYPE = "application/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
BODY_TYPES = ("application/json", "application/*+json", *XML_BODY)  # what a write route reads (else 415)

Fields = Sequence[tuple[str, Any]]


def wants_xml(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    x, j = accept.find("xml"), accept.find("json")
    if x >= 0 or j >= 0:
        return j < 0 or (0 <= x < j)
    return "xml" in request.headers.get("content-type", "").lower()


# ---- JSON ---------------------------------------------------------------------------------
def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(" ", "seconds")  # YYYY-MM-DD HH:MM:SS; several times faster than strftime
    return v


def json_object(fields: Fields) -> dict:
    return {k: _json_value(v) for k, v in fields}


# Naive datetimes as _json_value writes them, remembered: formatting one cost several times the
# lookup, and a list's records come back request after request (measured: a 100-record list spent
# most of its rendering formatting dates). Only plain naive datetimes are kept, as their text is a
# function of their value (aware ones that are equal may read differently); cleared when full.
_SECONDS: dict[datetime, str] = {}
_SECONDS_MAX = 16_384


def _dumps_default(v: Any) -> Any:
    # with OPT_PASSTHROUGH_DATETIME orjson hands every datetime, date and time here: a datetime as
    # _json_value writes it, a date or time as orjson itself would (their isoformat)
    text = _SECONDS.get(v) if type(v) is datetime else None
    if text is not None:
        return text
    if isinstance(v, datetime):
        text = v.isoformat(" ", "seconds")
        if type(v) is datetime and v.tzinfo is None:
            if len(_SECONDS) >= _SECONDS_MAX:
                _SECONDS.clear()
            _SECONDS[v] = text
        return text
    if isinstance(v, date | time):
        return v.isoformat()
    raise TypeError


def dumps_records(body: Any) -> bytes:
    """orjson.dumps of a body whose records are plain dicts of raw field values (`dict(fields)`):
    the same bytes as with json_object, datetimes converted by orjson's callback instead of a
    Python pass over every value (a 100-record list spent most of its rendering there)."""
    return orjson.dumps(body, default=_dumps_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


# ---- XML ----------------------------------------------------------------------------------
_DATETIME_SUFFIXES = ("_at", "_date", "_since")  # a nil datetime still says type="datetime"
_name = itemgetter(0)  # a field's name: records' elements are in the order of their names


class _Tag:
    """One field name's element, its fixed parts written once (the text of a 100-record list was
    mostly rebuilt tag strings): `<tag>` for text, the typed openings, the nil element, `</tag>`."""

    __slots__ = ("text", "boolean", "integer", "float", "datetime", "nil", "close")

    def __init__(self, name: str):
        tag = name.replace("_", "-")
        self.text, self.close = f"<{tag}>", f"</{tag}>"
        self.boolean, self.integer = f'<{tag} type="boolean">', f'<{tag} type="integer">'
        self.float, self.datetime = f'<{tag} type="float">', f'<{tag} type="datetime">'
        typ = ' type="datetime"' if name.endswith(_DATETIME_SUFFIXES) else ""
        self.nil = f'<{tag}{typ} nil="true"></{tag}>'


_TAGS: dict[str, _Tag] = {}
# naive datetimes as XML writes them, remembered as _SECONDS does for JSON
_XML_TIMES: dict[datetime, str] = {}


def _xml_time(v: datetime) -> str:
    text = _XML_TIMES.get(v) if type(v) is datetime else None
    if text is None:
        text = f"{v.isoformat('T', 'seconds')}Z"
        if type(v) is datetime and v.tzinfo is None:
            if len(_XML_TIMES) >= _SECONDS_MAX:
                _XML_TIMES.clear()
            _XML_TIMES[v] = text
    return text


def _xml_element(name: str, v: Any, indent: str) -> str:
    t = _TAGS.get(name)
    if t is None:
        t = _TAGS[name] = _Tag(name)
    if v is None:
        return indent + t.nil
    if isinstance(v, bool):
        return f"{indent}{t.boolean}{'true' if v else 'false'}{t.close}"
    if isinstance(v, int):
        return f"{indent}{t.integer}{v}{t.close}"
    if isinstance(v, float):
        return f"{indent}{t.float}{v!r}{t.close}"
    if isinstance(v, datetime):
        return f"{indent}{t.datetime}{_xml_time(v)}{t.close}"
    return f"{indent}{t.text}{escape(str(v))}{t.close}"


def _xml_record(root: str, fields: Fields, indent: str) -> str:
    inner = indent + "  "
    body = "\n".join([_xml_element(k, v, inner) for k, v in sorted(fields, key=_name)])
    return f"{indent}<{root}>\n{body}\n{indent}</{root}>"


def xml_object(root: str, fields: Fields) -> str:
    return XML_DECL + _xml_record(root, fields, "") + "\n"


def xml_list(root: str, item: str, records: Iterable[Fields]) -> str:
    parts = [_xml_record(item, f, "  ") for f in records]
    if not parts:
        return XML_DECL + f'<{root} type="array"/>\n'
    return XML_DECL + f'<{root} type="array">\n' + "\n".join(parts) + f"\n</{root}>\n"


# ---- responses ----------------------------------------------------------------------------
def render(
    request: Request, item: str, fields: Fields, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    if wants_xml(request):
        return Response(xml_object(item.replace("_", "-"), fields), status, headers, media_type=XML_TYPE)
    return Response(orjson.dumps(json_object(fields)), status, headers, media_type=JSON_TYPE)


def render_list(request: Request, plural: str, item: str, records: list[Fields]) -> Response:
    if wants_xml(request):
        return Response(xml_list(plural.replace("_", "-"), item.replace("_", "-"), records), media_type=XML_TYPE)
    body = {"collection": [dict(f) for f in records], "metadata": {"count": len(records)}}
    return Response(dumps_records(body), media_type=JSON_TYPE)


def json_record(fields: Fields) -> orjson.Fragment:
    """One record of a JSON list, as render_list writes it, ready to be put in one (render_json_list)."""
    return orjson.Fragment(dumps_records(dict(fields)))


def render_json_list(records: list[orjson.Fragment]) -> Response:
    """render_list's JSON body from records already written (json_record): the same bytes."""
    body = {"collection": records, "metadata": {"count": len(records)}}
    return Response(orjson.dumps(body), media_type=JSON_TYPE)


def errors_response(
    request: Request, status: int, messages: list[str], headers: dict[str, str] | None = None
) -> Response:
    if wants_xml(request):
        items = "".join(f"\n  <error>{escape(m)}</error>" for m in messages)
        return Response(f"{XML_DECL}<errors>{items}\n</errors>\n", status, headers, media_type=XML_TYPE)
    return Response(orjson.dumps({"errors": messages}), status, headers, media_type=JSON_TYPE)


def error_response(request: Request, exc: DomainError) -> Response:
    match exc:
        case Invalid() | Conflict():
            return errors_response(request, 422, full_messages(exc))
        case Malformed():
            return errors_response(request, 400, [str(exc)])
        case Unauthenticated():
            return errors_response(
                request,
                401,
                ["Unauthorized: " + str(exc)],
                {"WWW-Authenticate": 'Basic realm="Switchboard", charset="UTF-8"'},
            )
        case Forbidden():
            return errors_response(request, 403, ["Forbidden: " + str(exc)])
        case NotFound():
            return errors_response(request, 404, ["Not found"])
        case TooLarge():
            return errors_response(request, 413, [str(exc)])
        case Unsupported():
            return errors_response(request, 415, [str(exc)])
        case RateLimited():
            return errors_response(request, 429, [str(exc)], {"Retry-After": str(exc.retry_after)})
        case HttpStatus():
            return errors_response(request, exc.status, [exc.detail])
        case InternalError():
            return errors_response(request, 500, ["Internal server error"])
    return errors_response(request, 500, ["Internal server error"])


# ---- request bodies -----------------------------------------------------------------------
def _xml_value(el) -> Any:
    if el.get("nil") == "true":
        return None
    text = (el.text or "").strip() if len(el) == 0 else None
    typ = el.get("type")
    if text is None:
        raise Malformed(f"element <{el.tag}> must hold text, not elements")
    if typ == "integer":
        try:
            return int(text)
        except ValueError:
            return text  # validation reports "is not a number"
    if typ == "float" or typ == "decimal":
        try:
            return float(text)
        except ValueError:
            return text
    if typ == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    return el.text or ""


# `<?xml version="1.0" encoding="NAME"` at the very start (the bytes of an ASCII-compatible encoding)
_DECLARED_ENCODING = re.compile(rb"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]{0,63})["']""")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", *_UTF32_BOMS)  # UTF-8, -16, -32: JSON has none


def _fromstring(source: bytes | str):
    return fromstring(source, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def _declared_encoding(body: bytes) -> str | None:
    m = _DECLARED_ENCODING.match(body)
    return m.group(1).decode("ascii") if m else None


def _xml_root(body: bytes):
    """The root element of an XML body, in the encoding its BOM or declaration names.

    expat reads UTF-8, UTF-16 and (through Python's codecs) any single-byte encoding itself; a
    multi-byte one (Shift_JIS, EUC-KR, GB18030, ...) it refuses with a ValueError, so that text is
    decoded here and parsed as text (expat then ignores the declared name), as is UTF-32 (by its
    BOM). An encoding Python does not know, or a codec that is no text encoding (rot13, base64),
    raises LookupError; bytes that do not decode, UnicodeError: both, like any other unreadable
    document, are the client's error (400), never a 500."""
    try:
        if body.startswith(_UTF32_BOMS):
            return _fromstring(body.decode("utf-32"))
        try:
            return _fromstring(body)
        except (DefusedXmlException, UnicodeError):
            raise
        except ValueError:  # "multi-byte encodings are not supported"
            encoding = _declared_encoding(body)
            if encoding is None:
                raise
            return _fromstring(body.decode(encoding))
    except LookupError:
        name = _declared_encoding(body)
        raise Malformed("malformed XML: unknown or unsupported encoding" + (f" {name!r}" if name else "")) from None
    except UnicodeError:
        name = _declared_encoding(body)
        raise Malformed("malformed XML: the body does not decode as " + (name or "its declared encoding")) from None
    except (ParseError, ValueError) as e:
        raise Malformed(f"malformed XML: {e}") from None


def parse_body(body: bytes, content_type: str, item: str) -> dict[str, Any]:
    """The object the client sent for `item` (e.g. 'endpoint'), keys in snake_case. The body's
    Content-Type (one of BODY_TYPES, checked by the caller) picks XML or JSON; without one, a body
    starting with `<` (or a byte order mark, which JSON never has) is XML."""
    if not body.strip():
        return {}
    media = media_type(content_type)
    if media_matches(media, XML_BODY) if media else (body.lstrip()[:1] == b"<" or body.startswith(_BOMS)):
        root = _xml_root(body)
        if root.tag.replace("-", "_") != item:
            raise Malformed(f"expected a <{item.replace('_', '-')}> document, got <{root.tag}>")
        return {child.tag.replace("-", "_"): _xml_value(child) for child in root}
    try:
        data = reject_nul(orjson.loads(body), body)
    except orjson.JSONDecodeError as e:
        raise Malformed(f"malformed JSON: {e}") from None
    if not isinstance(data, dict):
        raise Malformed(f"expected a JSON object with an {item!r} member")
    if item in data:
        inner = data[item]
        if not isinstance(inner, dict):
            raise Malformed(f"{item!r} must be a JSON object")
        return inner
    return data
