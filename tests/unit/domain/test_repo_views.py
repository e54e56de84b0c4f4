"""repos.Views: a list's views kept by the rows they were built from are those built afresh, and a
changed row (a renamed or cancelled endpoint) gets a new one at once."""

from __future__ import annotations

import orjson

from switchboard.api.spear.endpoints import fields
from switchboard.api.spear.envelope import json_record
from switchboard.domain import repos
from switchboard.domain.entities import utcnow
from switchboard.store import tables as t
from switchboard.store.db import Database


async def test_views_follow_the_rows(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/db.sqlite")
    await db.migrate()
    now = utcnow()
    user = {"username": "u", "username_key": "u", "email": "u@example.com", "password_hash": "x", "active": True}
    user |= {"is_admin": False, "created_at": now, "updated_at": now}
    views = repos.Views(lambda e: json_record(fields(e)), size=3)
    stmt = repos.endpoints.select().order_by(t.endpoints.c.id)

    async def both():
        async with db.transaction() as conn:
            return await repos.endpoints.fetch_views(conn, stmt, None, views), await repos.endpoints.fetch(conn, stmt)

    try:
        async with db.transaction() as conn:
            uid = (
                await conn.execute(t.users.insert().values(**_known(t.users, user)).returning(t.users.c.id))
            ).scalar()
            for n in range(2):
                await repos.endpoints.insert(
                    conn,
                    {"user_id": uid, "name": f"ep {n}", "description": None, "ip_address": f"10.0.0.{n}"}
                    | {"is_server": False, "created_at": now, "updated_at": now, "deleted_at": None},
                )
        for _ in range(2):  # built, then from the memo
            kept, entities = await both()
            assert [orjson.dumps(v) for v in kept] == [orjson.dumps(json_record(fields(e))) for e in entities]
        assert b'"name":"ep 1"' in orjson.dumps(kept[1])
        first = kept[0]
        async with db.transaction() as conn:
            await repos.endpoints.update(conn, entities[0].id, {"name": "renamed", "deleted_at": now})
        kept, entities = await both()
        assert kept[0] is not first
        assert orjson.loads(orjson.dumps(kept[0]))["name"] == "renamed"
        assert orjson.loads(orjson.dumps(kept[0]))["deleted_at"] is not None
        assert len(views.memo) <= 3  # emptied when full
    finally:
        await db.close()


def _known(table, values: dict) -> dict:
    """The values the table has columns for, and a value for every other non-null column."""
    out = {k: v for k, v in values.items() if k in table.c}
    for col in table.c:
        if col.name not in out and not col.nullable and col.server_default is None and not col.primary_key:
            out[col.name] = False if str(col.type) == "BOOLEAN" else ""
    return out
