"""jade routers and the OpenAPI documentation of request bodies.

Each resource module builds an APIRouter with `router(tag)` (admin permission) or
`router(tag, me=True)` (any user); the route classes are auth.py's, the request helpers (ctx,
json_body) api.common's. `api/jade/__init__.py` mounts every router twice, under `/v1` and bare,
as jade serves both."""

from __future__ import annotations

from fastapi import APIRouter

from switchboard.api.jade.auth import TOKEN, JadeAdminRoute, JadeUserRoute


def router(tag: str, *, me: bool = False, route_class=None, dependencies=None) -> APIRouter:
    cls = route_class or (JadeUserRoute if me else JadeAdminRoute)
    return APIRouter(route_class=cls, tags=[f"jade: {tag}"], dependencies=dependencies or [TOKEN])


_S = {"type": "string"}
_SN = {"type": ["string", "null"]}
_I = {"type": "integer"}
PERMS = {
    "type": "array",
    "items": {"type": "object", "properties": {"permission": {"enum": ["admin", "user"]}}, "required": ["permission"]},
}
OPTIONS = {"type": "object", "additionalProperties": {"anyOf": [_S, {"type": "array", "items": _S}]}}
SDP_ITEMS = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": _S, "minProperties": 1, "maxProperties": 1},
}

SCHEMAS = {
    "user": ({"username": _S, "password": _S, "name": _S}, ("username", "password")),
    "user_update": ({"username": _S, "password": _S, "name": _S}, ()),
    "manager_user": (
        {"username": _S, "password": _S, "name": _S, "context": _S, "permissions": PERMS},
        ("username", "password"),
    ),
    "manager_user_update": ({"username": _S, "password": _S, "name": _S, "context": _S, "permissions": PERMS}, ()),
    "permission": ({"user_uuid": _S, "permission": {"enum": ["admin", "user"]}}, ("user_uuid", "permission")),
    "contact": (
        {"user_uuid": _S, "type": {"enum": ["pjsip_endpoint", "sip_peer"]}, "target": _S, "name": _SN, "detail": _SN},
        ("user_uuid", "type", "target"),
    ),
    "contact_update": (
        {"user_uuid": _S, "type": {"enum": ["pjsip_endpoint", "sip_peer"]}, "target": _S, "name": _SN, "detail": _SN},
        (),
    ),
    "buddy": ({"uuid_user": _S, "name": _SN, "detail": _SN}, ("uuid_user",)),
    "buddy_update": ({"name": _SN, "detail": _SN}, ()),
    "chat": ({"name": _SN, "detail": _SN, "type": _I, "members": {"type": "array", "items": _S}}, ()),
    "chat_update": ({"name": _SN, "detail": _SN}, ()),
    "message": ({"message": _S}, ()),
    "adpma": ({"name": _SN, "detail": _SN}, ()),
    "adp": ({"dpma_uuid": _S, "sequence": _I, "name": _SN, "detail": _SN, "command": _SN}, ("dpma_uuid", "sequence")),
    "adp_update": ({"uuid": _S, "dpma_uuid": _S, "sequence": _I, "name": _SN, "detail": _SN, "command": _SN}, ()),
    "file": ({"data": _S}, ("data",)),
    "section": ({"name": _S, "data": OPTIONS}, ("name",)),
    "section_update": ({"data": OPTIONS}, ()),
    "sdp": ({"name": _S, "data": SDP_ITEMS}, ("name", "data")),
    "sdp_update": ({"data": SDP_ITEMS}, ("data",)),
    "originate": (
        {
            "endpoint": _S,
            "context": _S,
            "exten": _S,
            "priority": {"type": "integer", "minimum": 1, "default": 1},
            "caller_id": _SN,
            "timeout": {"type": "integer", "minimum": 1, "maximum": 600, "default": 30},
            "variables": {"type": "object", "additionalProperties": _S},
        },
        ("endpoint", "context", "exten"),
    ),
}


def doc(name: str) -> dict:
    """openapi_extra documenting a JSON request body (validation is the domain's)."""
    props, required = SCHEMAS[name]
    schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
