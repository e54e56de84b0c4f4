"""jade `/me/*`: the caller's own record, contacts, buddies and chats (any logged-in user).

Chat messages: GET is newest first; `timestamp` keeps messages created strictly before that
instant (RFC 3339, any fraction), `count` caps the number (default 100, at most 1000). POST takes
a JSON object (stored as the message, e.g. `{"message": "hi"}`) or a JSON string (stored as
`{"message": "<string>"}`); the spec's own example body `{"test message"}` is not JSON, and is
read the way its GET example shows it back: `{"message": "test message"}`.
"""

from __future__ import annotations

import re

import orjson
from fastapi import Request

from switchboard.api.common import ctx, json_body, read_body, reject_nul
from switchboard.api.jade import envelope
from switchboard.api.jade.routing import doc, router
from switchboard.api.jade.users import contact_view
from switchboard.domain.errors import Invalid, Malformed

api = router("me", me=True)

_BRACED_STRING = re.compile(rb'^\s*\{\s*("(?:[^"\\]|\\.)*")\s*\}\s*$', re.S)


@api.get("/me/info", summary="The caller, with chats and contacts")
async def me_info(request: Request):
    services, conn, user = ctx(request)
    contacts = [contact_view(request, c) for c in await services.contacts.list(conn, user_id=user.id)]
    return envelope.respond(
        {
            "chats": await services.chats.list(conn, user),
            "contacts": contacts,
            "name": user.name,
            "tm_create": user.created_at,
            "tm_update": user.updated_at if user.updated_at != user.created_at else None,
            "username": user.username,
            "uuid": user.uuid,
        }
    )


@api.get("/me/contacts", summary="The caller's contacts")
async def me_contacts(request: Request):
    services, conn, user = ctx(request)
    return envelope.listing([contact_view(request, c) for c in await services.contacts.list(conn, user_id=user.id)])


@api.get("/me/buddies", summary="The caller's buddies (a bare array, as the spec shows)")
async def buddies_list(request: Request):
    services, conn, user = ctx(request)
    return envelope.respond(await services.buddies.list(conn, user))


@api.post("/me/buddies", summary="Add a buddy: {uuid_user, name?, detail?}", openapi_extra=doc("buddy"))
async def buddies_create(request: Request):
    services, conn, user = ctx(request)
    await services.buddies.create(conn, user, await json_body(request))
    return envelope.ok()


@api.get("/me/buddies/{detail}", summary="One buddy")
async def buddies_show(request: Request, detail: str):
    services, conn, user = ctx(request)
    return envelope.respond(await services.buddies.get(conn, user, detail))


@api.put("/me/buddies/{detail}", summary="Update a buddy's name or detail", openapi_extra=doc("buddy_update"))
async def buddies_update(request: Request, detail: str):
    services, conn, user = ctx(request)
    await services.buddies.update(conn, user, detail, await json_body(request))
    return envelope.ok()


@api.delete("/me/buddies/{detail}", summary="Remove a buddy")
async def buddies_delete(request: Request, detail: str):
    services, conn, user = ctx(request)
    await services.buddies.delete(conn, user, detail)
    return envelope.ok()


@api.get("/me/chats", summary="The caller's chats (a bare array, as the spec shows)")
async def chats_list(request: Request):
    services, conn, user = ctx(request)
    return envelope.respond(await services.chats.list(conn, user))


@api.post(
    "/me/chats",
    summary="Create a chat room: {name, detail, type, members: [user uuid, ...]}",
    openapi_extra=doc("chat"),
)
async def chats_create(request: Request):
    services, conn, user = ctx(request)
    await services.chats.create(conn, user, await json_body(request))
    return envelope.ok()


@api.get("/me/chats/{detail}", summary="One chat (members only)")
async def chats_show(request: Request, detail: str):
    services, conn, user = ctx(request)
    return envelope.respond(await services.chats.get(conn, user, detail))


@api.put("/me/chats/{detail}", summary="Rename a chat or change its detail", openapi_extra=doc("chat_update"))
async def chats_update(request: Request, detail: str):
    services, conn, user = ctx(request)
    await services.chats.update(conn, user, detail, await json_body(request))
    return envelope.ok()


@api.delete("/me/chats/{detail}", summary="Leave and delete a chat")
async def chats_delete(request: Request, detail: str):
    services, conn, user = ctx(request)
    await services.chats.delete(conn, user, detail)
    return envelope.ok()


@api.get("/me/chats/{detail}/messages", summary="Messages, newest first (?timestamp= before, ?count=)")
async def messages_list(request: Request, detail: str, timestamp: str | None = None, count: str | None = None):
    services, conn, user = ctx(request)
    before = envelope.parse_timestamp(timestamp) if timestamp else None
    n = 100
    if count is not None:
        if not (count.isascii() and count.isdigit()) or not 1 <= int(count) <= 1000:
            raise Invalid("count", "must be an integer from 1 to 1000")
        n = int(count)
    return envelope.respond(await services.chats.messages(conn, user, detail, before_ns=before, count=n))


def _message_of(raw: bytes) -> dict:
    if not raw.strip():
        raise Malformed("a message body is required")
    try:
        data = reject_nul(orjson.loads(raw), raw)
    except orjson.JSONDecodeError:
        m = _BRACED_STRING.match(raw)
        if not m:
            raise Malformed("the body is not valid JSON") from None
        data = reject_nul(orjson.loads(m.group(1)), raw)
    if isinstance(data, str):
        data = {"message": data}
    if not isinstance(data, dict) or not data:
        raise Malformed("the message must be a JSON object or string")
    return data


@api.post("/me/chats/{detail}/messages", summary="Post a message to a chat", openapi_extra=doc("message"))
async def messages_create(request: Request, detail: str):
    services, conn, user = ctx(request)
    await services.chats.post_message(conn, user, detail, _message_of(await read_body(request)))
    return envelope.ok()
