"""VoIP Spear wire format: JSON or Rails-style XML chosen by Accept / Content-Type, and errors.

- JSON objects are bare; lists are `{"collection": [...], "metadata": {"count": N}}`; dates
  `YYYY-MM-DD HH:MM:SS` (UTC).
- XML is what Rails' to_xml writes: `<?xml ...?>`, dashed element names in alphabetical order,
  `type="integer|float|boolean|datetime"`, `nil="true"` for null, lists `<endpoints type="array">`,
  dates `YYYY-MM-DDTHH:MM:SSZ`.
- Errors: 422 `{"errors": [...]}` / `<errors><error>...</error></errors>`; the same body for 400,
  401, 403, 404, 413 and 429 so a client has one error shape to read.
- Request bodies: JSON `{"endpoint": {...}}` (or the bare object), or XML `<endpoint>...</endpoint>`
  with dashed or underscored names, parsed with defusedxml (no DTDs, no entity expansion).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import escape

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from fastapi import Request, Response

from switchboard.api.common import HttpStatus, InternalError, reject_nul
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
    full_messages,
)

XML_TYPE = "application/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

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


# ---- XML ----------------------------------------------------------------------------------
_DATETIME_SUFFIXES = ("_at", "_date", "_since")  # a nil datetime still says type="datetime"


def _xml_element(name: str, v: Any, indent: str) -> str:
    tag = name.replace("_", "-")
    if v is None:
        typ = ' type="datetime"' if name.endswith(_DATETIME_SUFFIXES) else ""
        return f'{indent}<{tag}{typ} nil="true"></{tag}>'
    if isinstance(v, bool):
        return f'{indent}<{tag} type="boolean">{"true" if v else "false"}</{tag}>'
    if isinstance(v, int):
        return f'{indent}<{tag} type="integer">{v}</{tag}>'
    if isinstance(v, float):
        return f'{indent}<{tag} type="float">{v!r}</{tag}>'
    if isinstance(v, datetime):
        return f'{indent}<{tag} type="datetime">{v.isoformat("T", "seconds")}Z</{tag}>'
    return f"{indent}<{tag}>{escape(str(v))}</{tag}>"


def _xml_record(root: str, fields: Fields, indent: str) -> str:
    inner = indent + "  "
    body = "\n".join(_xml_element(k, v, inner) for k, v in sorted(fields, key=lambda kv: kv[0]))
    return f"{indent}<{root}>\n{body}\n{indent}</{root}>"


def xml_object(root: str, fields: Fields) -> str:
    return XML_DECL + _xml_record(root, fields, "") + "\n"


def xml_list(root: str, item: str, records: Iterable[Fields]) -> str:
    parts = [_xml_record(item, f, "  ") for f in records]
    if not parts:
        return XML_DECL + f'<{root} type="array"/>\n'
    return XML_DECL + f'<{root} type="array">\n' + "\n".join(parts) + f"\n</{root}>\n"


# ---- responses ----------------------------------------------------------------------------
def render(request: Request, item: str, fields: Fields, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    if wants_xml(request):
        return Response(xml_object(item.replace("_", "-"), fields), status, headers, media_type=XML_TYPE)
    return Response(orjson.dumps(json_object(fields)), status, headers, media_type=JSON_TYPE)


def render_list(request: Request, plural: str, item: str, records: list[Fields]) -> Response:
    if wants_xml(request):
        return Response(xml_list(plural.replace("_", "-"), item.replace("_", "-"), records),
                        media_type=XML_TYPE)
    body = {"collection": [json_object(f) for f in records], "metadata": {"count": len(records)}}
    return Response(orjson.dumps(body), media_type=JSON_TYPE)


def errors_response(request: Request, status: int, messages: list[str],
                    headers: dict[str, str] | None = None) -> Response:
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
            return errors_response(request, 401, ["Unauthorized: " + str(exc)],
                                   {"WWW-Authenticate": 'Basic realm="Switchboard", charset="UTF-8"'})
        case Forbidden():
            return errors_response(request, 403, ["Forbidden: " + str(exc)])
        case NotFound():
            return errors_response(request, 404, ["Not found"])
        case TooLarge():
            return errors_response(request, 413, [str(exc)])
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


def parse_body(body: bytes, content_type: str, item: str) -> dict[str, Any]:
    """The object the client sent for `item` (e.g. 'endpoint'), keys in snake_case."""
    if not body.strip():
        return {}
    is_xml = "xml" in content_type.lower() or (not content_type and body.lstrip()[:1] == b"<")
    if is_xml:
        try:
            root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except (ParseError, DefusedXmlException, ValueError) as e:
            raise Malformed(f"malformed XML: {e}") from None
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
