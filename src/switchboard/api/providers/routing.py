"""providers route classes, request helpers and the OpenAPI documentation of bodies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Security
from fastapi.security import APIKeyHeader

from switchboard.api.common import DialectRoute, after_commit, read_body
from switchboard.api.providers import auth, envelope
from switchboard.domain import trunks as model
from switchboard.domain.errors import Invalid, NotFound


class _Providers:
    name = "providers"
    error_response = staticmethod(envelope.error_response)

    def __init__(self, authenticate):
        self.authenticate = authenticate


class ProvidersAdminRoute(DialectRoute):
    dialect = _Providers(auth.authenticate_admin)


class ProvidersLoginRoute(DialectRoute):
    """POST /api/account/credentials/verify authenticates with the body's username and password."""

    dialect = _Providers(auth.login)


# Documentation only (the route classes enforce): shows the access_token header in the OpenAPI document.
TOKEN = Security(
    APIKeyHeader(
        name=auth.HEADER,
        auto_error=False,
        scheme_name="providers_access_token",
        description="token from POST /api/account/credentials/verify (32-64 characters)",
    )
)


def router(tag: str, *, route_class=ProvidersAdminRoute, dependencies=None) -> APIRouter:
    return APIRouter(
        route_class=route_class,
        tags=[f"providers: {tag}"],
        dependencies=[TOKEN] if dependencies is None else dependencies,
    )


def ctx(request: Request):
    """(services, connection, acting user) of this request."""
    return request.app.state.services, request.state.conn, request.state.user


async def body(request: Request, *, required: bool = True) -> dict:
    return envelope.parse_object(await read_body(request), required=required)


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


__all__ = ["after_commit", "body", "ctx", "provider_id", "router", "TOKEN"]

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
ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {"code": _I, "message": _S}}}}
EMPTY = {"type": "object"}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def doc(
    *, body: dict | None = None, response: dict | None = None, parameters: list | None = None, public: bool = False
) -> dict:
    """openapi_extra for a providers route (validation is the domain's and the handlers')."""
    extra: dict[str, Any] = {
        "responses": {
            "200": {"description": "Successful operation", "content": _json(response or EMPTY)},
            "400": {
                "description": "Invalid request (" + envelope.INVALID_ID + " for an unknown id)",
                "content": _json(ERROR),
            },
            "401": {
                "description": "Missing, malformed or unknown access_token"
                if not public
                else "Wrong username or password",
                "content": _json(ERROR),
            },
        }
    }
    if not public:
        extra["responses"]["403"] = {"description": "Not an admin", "content": _json(ERROR)}
    if body is not None:
        extra["requestBody"] = {"required": True, "content": _json(body)}
    if parameters:
        extra["parameters"] = parameters
    return extra


def query(name: str, schema: dict, description: str, *, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}
