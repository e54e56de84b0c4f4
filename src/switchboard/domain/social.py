"""A user's own corner of jade: address-book contacts (pointing at PBX targets such as a pjsip
endpoint), buddies (other users) and chat rooms with messages.

Chat model: a *room* (uuid, type, creator, owner, members) holds the messages; each member has
their own *chat* entry for the room (its own name and detail) — `/me/chats` lists the caller's
entries. Creating a chat creates the room and an entry for every member (so the other members see
it at once). Only members see a room or its messages; a non-member asking gets 404 (the room's
existence is not disclosed). Deleting a chat removes the caller's entry and their membership; the
room and its messages go when its last member leaves.
"""

from __future__ import annotations

import time
import uuid as uuidlib

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain import repos
from switchboard.domain.entities import User, utcnow
from switchboard.domain.errors import Conflict, Invalid, NotFound
from switchboard.store import tables as t

CONTACT_TYPES = ("pjsip_endpoint", "sip_peer")


def _text(data: dict, key: str, *, max_len: int = 255, required: bool = False) -> str | None:
    v = data.get(key)
    if v is None:
        if required:
            raise Invalid(key, "can't be blank")
        return None
    if not isinstance(v, str):
        raise Invalid(key, "must be a string")
    if required and not v.strip():
        raise Invalid(key, "can't be blank")
    if len(v) > max_len:
        raise Invalid(key, f"is too long (maximum is {max_len} characters)")
    return v


async def _user_ids(conn: AsyncConnection, uuids: list[str]) -> dict[str, int]:
    rows = (
        await conn.execute(
            select(t.users.c.uuid, t.users.c.id).where(t.users.c.uuid.in_(uuids), t.users.c.deleted_at.is_(None))
        )
    ).all()
    return {u: i for u, i in rows}


async def _uuid_of(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = (await conn.execute(select(t.users.c.id, t.users.c.uuid).where(t.users.c.id.in_(ids)))).all()
    return {i: u for i, u in rows}


# ---- contacts -------------------------------------------------------------------------------
class ContactService:
    _cols = [
        t.user_contacts.c[n]
        for n in ("id", "uuid", "user_id", "type", "target", "name", "detail", "created_at", "updated_at")
    ]

    async def list(self, conn: AsyncConnection, *, user_id: int | None = None) -> list[dict]:
        c = t.user_contacts.c
        q = select(*self._cols, t.users.c.uuid.label("user_uuid")).join(t.users, t.users.c.id == c.user_id)
        if user_id is not None:
            q = q.where(c.user_id == user_id)
        return [repos.plain(r) for r in (await conn.execute(q.order_by(c.id))).all()]

    async def get(self, conn: AsyncConnection, contact_uuid: str) -> dict:
        c = t.user_contacts.c
        row = (
            await conn.execute(
                select(*self._cols, t.users.c.uuid.label("user_uuid"))
                .join(t.users, t.users.c.id == c.user_id)
                .where(c.uuid == contact_uuid)
            )
        ).first()
        if row is None:
            raise NotFound("contact", contact_uuid)
        return repos.plain(row)

    @staticmethod
    def _fields(data: dict, *, create: bool) -> dict:
        values = {}
        typ = _text(data, "type", max_len=32, required=create)
        if typ is not None:
            if typ not in CONTACT_TYPES:
                raise Invalid("type", "must be one of: " + ", ".join(CONTACT_TYPES))
            values["type"] = typ
        target = _text(data, "target", required=create)
        if target is not None:
            values["target"] = target
        for k in ("name", "detail"):
            if k in data:
                values[k] = _text(data, k, max_len=255 if k == "name" else 4000)
        return values

    async def create(self, conn: AsyncConnection, data: dict) -> dict:
        values = self._fields(data, create=True)
        user_uuid = _text(data, "user_uuid", max_len=36, required=True)
        ids = await _user_ids(conn, [user_uuid])
        if user_uuid not in ids:
            raise Invalid("user_uuid", "names no user")
        new = str(uuidlib.uuid4())
        await conn.execute(
            insert(t.user_contacts).values(
                uuid=new, user_id=ids[user_uuid], created_at=utcnow(), updated_at=None, **values
            )
        )
        return await self.get(conn, new)

    async def update(self, conn: AsyncConnection, contact_uuid: str, data: dict) -> dict:
        current = await self.get(conn, contact_uuid)
        values = self._fields(data, create=False)
        if "user_uuid" in data:
            user_uuid = _text(data, "user_uuid", max_len=36, required=True)
            ids = await _user_ids(conn, [user_uuid])
            if user_uuid not in ids:
                raise Invalid("user_uuid", "names no user")
            values["user_id"] = ids[user_uuid]
        if values:
            values["updated_at"] = utcnow()
            await conn.execute(update(t.user_contacts).where(t.user_contacts.c.id == current["id"]).values(**values))
        return await self.get(conn, contact_uuid)

    async def delete(self, conn: AsyncConnection, contact_uuid: str) -> None:
        res = await conn.execute(delete(t.user_contacts).where(t.user_contacts.c.uuid == contact_uuid))
        if not res.rowcount:
            raise NotFound("contact", contact_uuid)


# ---- buddies --------------------------------------------------------------------------------
class BuddyService:
    async def list(self, conn: AsyncConnection, user: User) -> list[dict]:
        b = t.buddies.c
        q = (
            select(b.uuid, b.name, b.detail, b.created_at, b.updated_at, t.users.c.uuid.label("uuid_user"))
            .join(t.users, t.users.c.id == b.buddy_id)
            .where(b.user_id == user.id)
            .order_by(b.id)
        )
        return [
            {
                "detail": r.detail,
                "name": r.name,
                "tm_create": r.created_at,
                "tm_update": r.updated_at,
                "uuid": r.uuid,
                "uuid_user": r.uuid_user,
            }
            for r in (await conn.execute(q)).all()
        ]

    async def get(self, conn: AsyncConnection, user: User, buddy_uuid: str) -> dict:
        for item in await self.list(conn, user):
            if item["uuid"] == buddy_uuid:
                return item
        raise NotFound("buddy", buddy_uuid)

    async def create(self, conn: AsyncConnection, user: User, data: dict) -> dict:
        target = _text(data, "uuid_user", max_len=36, required=True)
        ids = await _user_ids(conn, [target])
        if target not in ids:
            raise Invalid("uuid_user", "names no user")
        if ids[target] == user.id:
            raise Invalid("uuid_user", "cannot be yourself")
        exists = (
            await conn.execute(
                select(t.buddies.c.id).where(t.buddies.c.user_id == user.id, t.buddies.c.buddy_id == ids[target])
            )
        ).first()
        if exists:
            raise Conflict("uuid_user", "is already a buddy")
        new = str(uuidlib.uuid4())
        await conn.execute(
            insert(t.buddies).values(
                uuid=new,
                user_id=user.id,
                buddy_id=ids[target],
                name=_text(data, "name"),
                detail=_text(data, "detail", max_len=4000),
                created_at=utcnow(),
                updated_at=None,
            )
        )
        return await self.get(conn, user, new)

    async def update(self, conn: AsyncConnection, user: User, buddy_uuid: str, data: dict) -> dict:
        await self.get(conn, user, buddy_uuid)
        values = {k: _text(data, k, max_len=255 if k == "name" else 4000) for k in ("name", "detail") if k in data}
        if values:
            await conn.execute(
                update(t.buddies)
                .where(t.buddies.c.uuid == buddy_uuid, t.buddies.c.user_id == user.id)
                .values(updated_at=utcnow(), **values)
            )
        return await self.get(conn, user, buddy_uuid)

    async def delete(self, conn: AsyncConnection, user: User, buddy_uuid: str) -> None:
        res = await conn.execute(
            delete(t.buddies).where(t.buddies.c.uuid == buddy_uuid, t.buddies.c.user_id == user.id)
        )
        if not res.rowcount:
            raise NotFound("buddy", buddy_uuid)


# ---- chats ----------------------------------------------------------------------------------
class ChatService:
    async def _room_view(self, conn: AsyncConnection, room_ids: list[int]) -> dict[int, dict]:
        if not room_ids:
            return {}
        r = t.chat_rooms.c
        rooms = (
            await conn.execute(
                select(r.id, r.uuid, r.type, r.creator_id, r.owner_id, r.created_at, r.updated_at).where(
                    r.id.in_(room_ids)
                )
            )
        ).all()
        m = t.chat_room_members.c
        members = (
            await conn.execute(
                select(m.room_id, t.users.c.uuid)
                .join(t.users, t.users.c.id == m.user_id)
                .where(m.room_id.in_(room_ids))
                .order_by(t.users.c.uuid)
            )
        ).all()
        uuids = await _uuid_of(conn, list({x.creator_id for x in rooms} | {x.owner_id for x in rooms}))
        out = {}
        for x in rooms:
            out[x.id] = {
                "members": [u for rid, u in members if rid == x.id],
                "tm_create": x.created_at,
                "tm_update": x.updated_at,
                "type": x.type,
                "uuid": x.uuid,
                "uuid_creator": uuids.get(x.creator_id),
                "uuid_owner": uuids.get(x.owner_id),
            }
        return out

    async def list(self, conn: AsyncConnection, user: User) -> list[dict]:
        c = t.chats.c
        rows = (
            await conn.execute(
                select(c.uuid, c.room_id, c.name, c.detail, c.created_at, c.updated_at)
                .where(c.user_id == user.id)
                .order_by(c.id)
            )
        ).all()
        rooms = await self._room_view(conn, [r.room_id for r in rows])
        return [
            {
                "detail": r.detail,
                "name": r.name,
                "room": rooms[r.room_id],
                "tm_create": r.created_at,
                "tm_update": r.updated_at,
                "uuid": r.uuid,
            }
            for r in rows
        ]

    async def _entry(self, conn: AsyncConnection, user: User, chat_uuid: str):
        c = t.chats.c
        row = (await conn.execute(select(c.id, c.room_id).where(c.uuid == chat_uuid, c.user_id == user.id))).first()
        if row is None:
            raise NotFound("chat", chat_uuid)
        return row

    async def get(self, conn: AsyncConnection, user: User, chat_uuid: str) -> dict:
        await self._entry(conn, user, chat_uuid)
        for item in await self.list(conn, user):
            if item["uuid"] == chat_uuid:
                return item
        raise NotFound("chat", chat_uuid)

    async def create(self, conn: AsyncConnection, user: User, data: dict) -> dict:
        name = _text(data, "name")
        detail = _text(data, "detail", max_len=4000)
        typ = data.get("type", 1)
        if not isinstance(typ, int) or isinstance(typ, bool) or typ < 0:
            raise Invalid("type", "must be a non-negative integer")
        members = data.get("members", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise Invalid("members", "must be a list of user uuids")
        ids = await _user_ids(conn, list({*members, user.uuid}))
        unknown = [m for m in members if m not in ids]
        if unknown:
            raise Invalid("members", "names unknown users: " + ", ".join(sorted(unknown)[:5]))
        now = utcnow()
        room_uuid = str(uuidlib.uuid4())
        room_id = (
            await conn.execute(
                insert(t.chat_rooms)
                .values(uuid=room_uuid, type=typ, creator_id=user.id, owner_id=user.id, created_at=now, updated_at=None)
                .returning(t.chat_rooms.c.id)
            )
        ).scalar_one()
        member_ids = sorted(set(ids.values()))
        await conn.execute(insert(t.chat_room_members), [{"room_id": room_id, "user_id": i} for i in member_ids])
        mine = str(uuidlib.uuid4())
        await conn.execute(
            insert(t.chats),
            [
                {
                    "uuid": mine if i == user.id else str(uuidlib.uuid4()),
                    "room_id": room_id,
                    "user_id": i,
                    "name": name,
                    "detail": detail,
                    "created_at": now,
                    "updated_at": None,
                }
                for i in member_ids
            ],
        )
        return await self.get(conn, user, mine)

    async def update(self, conn: AsyncConnection, user: User, chat_uuid: str, data: dict) -> dict:
        entry = await self._entry(conn, user, chat_uuid)
        values = {k: _text(data, k, max_len=255 if k == "name" else 4000) for k in ("name", "detail") if k in data}
        if values:
            await conn.execute(update(t.chats).where(t.chats.c.id == entry.id).values(updated_at=utcnow(), **values))
        return await self.get(conn, user, chat_uuid)

    async def delete(self, conn: AsyncConnection, user: User, chat_uuid: str) -> None:
        entry = await self._entry(conn, user, chat_uuid)
        await conn.execute(delete(t.chats).where(t.chats.c.id == entry.id))
        m = t.chat_room_members.c
        await conn.execute(delete(t.chat_room_members).where(m.room_id == entry.room_id, m.user_id == user.id))
        left = (await conn.execute(select(func.count()).where(m.room_id == entry.room_id))).scalar_one()
        if not left:
            await conn.execute(delete(t.chat_messages).where(t.chat_messages.c.room_id == entry.room_id))
            await conn.execute(delete(t.chat_rooms).where(t.chat_rooms.c.id == entry.room_id))

    async def messages(
        self, conn: AsyncConnection, user: User, chat_uuid: str, *, before_ns: int | None, count: int
    ) -> list[dict]:
        """Newest first; `before_ns` keeps only messages created strictly before that instant."""
        entry = await self._entry(conn, user, chat_uuid)
        msg = t.chat_messages.c
        q = (
            select(msg.uuid, msg.message, msg.created_ns, t.users.c.uuid.label("uuid_owner"))
            .join(t.users, t.users.c.id == msg.owner_id)
            .where(msg.room_id == entry.room_id)
        )
        if before_ns is not None:
            q = q.where(msg.created_ns < before_ns)
        rows = (await conn.execute(q.order_by(msg.created_ns.desc(), msg.id.desc()).limit(count))).all()
        return [
            {"message": orjson.loads(r.message), "tm_create": r.created_ns, "uuid": r.uuid, "uuid_owner": r.uuid_owner}
            for r in rows
        ]

    async def post_message(self, conn: AsyncConnection, user: User, chat_uuid: str, message: dict) -> dict:
        entry = await self._entry(conn, user, chat_uuid)
        raw = orjson.dumps(message)
        if len(raw) > 64 * 1024:
            raise Invalid("message", "is too long (maximum is 64 KiB)")
        new = str(uuidlib.uuid4())
        now_ns = time.time_ns()
        await conn.execute(
            insert(t.chat_messages).values(
                uuid=new, room_id=entry.room_id, owner_id=user.id, message=raw.decode(), created_ns=now_ns
            )
        )
        return {"message": message, "tm_create": now_ns, "uuid": new, "uuid_owner": user.uuid}
