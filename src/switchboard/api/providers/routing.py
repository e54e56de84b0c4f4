"""providers routers, request helpers and the OpenAPI documentation of bodies (the route classes
are auth.py's, ctx and json_body api.common's, doc() envelope.py's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from switchboard.api.common import after_commit
from switchboard.api.providers.auth import TOKEN, ProvidersAdminRoute
from switchboard.api.providers.envelope import doc
from switchboard.domain import trunks as model
from switchboard.domain.errors import Invalid, NotFound


def router(tag: str, *, route_class=ProvidersAdminRoute, dependencies=None) -> APIRouter:
    return APIRouter(
        route_class=route_class,
        tags=[f"providers: {tag}"],
        dependencies=[TOKEN] if dependencies is None else dependencies,
    )


MAX_ID = 2**63 - 1


def provider_id(value: Any, *, field: str = "id") -> int:
    """A provider id from JSON (an integer) or a query string (digits). Missing or of the wrong
    type → 400 naming the field; an integer that names no provider → 400 INVALID_ID."""
    if value is None or value == "":
        raise Invalid(field, "can't be blank")
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            raise Invalid(field, "must be an integer")
        if len(digits) > 19:
            raise NotFound("trunk", text)
        value = int(text)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(field, "must be an integer")
    if not 1 <= value <= MAX_ID:
        raise NotFound("trunk", value)
    return value


__all__ = ["after_commit", "doc", "provider_id", "query", "router", "TOKEN"]

# ---- OpenAPI -----------------------------------------------------------------------------------
_S = {"type": "string"}
_B = {"type": "boolean"}
_I = {"type": "integer"}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_OBJECTS = {"type": "array", "items": {"type": "object"}, "maxItems": model.MAX_ITEMS}

PROVIDER_FIELDS: dict[str, dict] = {
    "name": {**_S, "minLength": 1, "maxLength": model.MAX_TEXT, "description": "Name of the provider (unique)."},
    "auth_mode": {"type": "string", "enum": list(model.AUTH_MODES), "description": "Authentication mode."},
    "protocol": {"type": "string", "enum": list(model.PROTOCOLS), "description": "Transport protocol."},
    "require_register": {
        **_B,
        "description": "Register to the provider (REGISTER_AUTH). Default: true for REGISTER_AUTH, false for IP_AUTH.",
    },
    "auth_id": {
        **_S,
        "maxLength": model.MAX_TEXT,
        "description": "Authentication ID (SIP username); required for REGISTER_AUTH.",
    },
    "password": {
        **_S,
        "maxLength": model.MAX_PASSWORD,
        "description": f"Password; required for REGISTER_AUTH. Never returned: shown as "
        f'"{model.MASK}" when set, "" when not; "{model.MASK}" in an update '
        f"leaves it unchanged.",
    },
    "hostname": {
        **_S,
        "minLength": 1,
        "maxLength": model.MAX_TEXT,
        "description": "SIP server host name or IP address (registrar).",
    },
    "port": {**_PORT, "description": "SIP server port."},
    "outbound_server": {**_S, "maxLength": model.MAX_TEXT, "description": 'Outbound proxy host, or "" (default).'},
    "outbound_server_port": {
        "type": "integer",
        "minimum": 0,
        "maximum": 65535,
        "description": "Outbound proxy port; 0 (default) = unset.",
    },
    "reregister_interval": {
        "type": "integer",
        "minimum": model.REREGISTER_MIN,
        "maximum": model.REREGISTER_MAX,
        "description": f"Registration refresh in seconds; default {model.REREGISTER_DEFAULT}.",
    },
    "ips": {
        "type": "array",
        "items": _S,
        "maxItems": model.MAX_ITEMS,
        "description": "IPv4/IPv6 addresses the provider's calls come from (IP_AUTH). "
        "Default: [hostname] when hostname is an IP address.",
    },
    "in_parameters": {**_OBJECTS, "description": "JSON objects, kept as given."},
    "out_parameters": {**_OBJECTS, "description": "JSON objects, kept as given."},
    "provider_in_lan": {**_B, "description": "Whether the provider is in the LAN; default false."},
    "single_via_header": {**_B, "description": "Whether the provider accepts a single Via only; default false."},
    "status": {
        "type": "string",
        "enum": ["ONLINE", "OFFLINE"],
        "description": "Live registration/qualify state; ignored in requests.",
    },
}
PROVIDER = {"type": "object", "properties": {"id": {**_I, "format": "int64"}, **PROVIDER_FIELDS}}


def query(name: str, schema: dict, description: str, *, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}
