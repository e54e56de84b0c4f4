"""KAZOO accounts, and the md5 `credentials` that `PUT /v2/user_auth` accepts."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.entities import utcnow
from switchboard.domain.errors import Conflict, NotFound
from switchboard.domain.kazoo.documents import HEX32, gregorian, new_id
from switchboard.domain.kazoo.validation import Problems
from switchboard.domain.security import SecretBox
from switchboard.store import tables as t


class Accounts:
    """Part of KazooService: accounts and login credentials."""

    box: SecretBox

    # ---- credentials (PUT /v2/user_auth's md5 form) -----------------------------------------------
    def credentials_digest(self, credentials: str) -> str:
        return self.box.mac("kazoo md5 credentials", credentials.strip().lower()).hex()

    async def set_credentials(self, conn: AsyncConnection, user_id: int, username: str, password: str) -> None:
        """Keep HMAC(md5("username:password")) so the md5 `credentials` login works (username in
        lower case, as the login's username match is case-insensitive)."""
        import hashlib

        md5 = hashlib.md5(f"{username.lower()}:{password}".encode(), usedforsecurity=False).hexdigest()
        digest = self.credentials_digest(md5)
        await conn.execute(delete(t.kazoo_credentials).where(t.kazoo_credentials.c.user_id == user_id))
        await conn.execute(insert(t.kazoo_credentials).values(user_id=user_id, digest=digest))

    async def user_id_by_credentials(self, conn: AsyncConnection, credentials: str) -> int | None:
        c = t.kazoo_credentials.c
        r = (await conn.execute(select(c.user_id).where(c.digest == self.credentials_digest(credentials)))).first()
        return r.user_id if r else None

    # ---- accounts --------------------------------------------------------------------------------------
    async def create_account(self, conn: AsyncConnection, data: dict) -> dict:
        p = Problems()
        p.string(data, "name", "name", required=True, max_len=128)
        p.string(data, "realm", "realm")
        p.raise_any()
        name = data["name"].strip()
        c = t.kazoo_accounts.c
        if (await conn.execute(select(c.id).where(c.name_key == name.lower()))).first():
            raise Conflict("name", "an account with this name exists")
        now = utcnow()
        row = {
            "id": new_id(),
            "name": name,
            "name_key": name.lower(),
            "realm": data.get("realm"),
            "created_at": now,
            "updated_at": now,
        }
        await conn.execute(insert(t.kazoo_accounts).values(**row))
        return self.account_view(row)

    @staticmethod
    def account_view(row) -> dict:
        m = row if isinstance(row, dict) else row._mapping
        return {
            "id": m["id"],
            "name": m["name"],
            "realm": m["realm"],
            "created": gregorian(m["created_at"].replace(tzinfo=UTC).timestamp()),
        }

    async def account(self, conn: AsyncConnection, account_id: str) -> dict:
        if not isinstance(account_id, str) or not HEX32.match(account_id):
            raise NotFound("account", account_id)
        r = (await conn.execute(select(t.kazoo_accounts).where(t.kazoo_accounts.c.id == account_id))).first()
        if r is None:
            raise NotFound("account", account_id)
        return self.account_view(r)

    async def account_by_name(self, conn: AsyncConnection, name: str) -> dict | None:
        c = t.kazoo_accounts.c
        r = (await conn.execute(select(t.kazoo_accounts).where(c.name_key == name.strip().lower()))).first()
        return self.account_view(r) if r else None

    async def accounts(self, conn: AsyncConnection) -> list[dict]:
        rows = (await conn.execute(select(t.kazoo_accounts).order_by(t.kazoo_accounts.c.created_at))).all()
        return [self.account_view(r) for r in rows]
