"""Identity: one user table, roles, password and token authentication for every dialect.

Roles: super_master ⊃ master/admin ⊃ user. An actor may create or change only users whose role
ranks no higher than its own, and give only such roles; a super_master is changed only by a
super_master, and the last active super_master can be neither demoted nor cancelled.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import Literal

from pydantic import EmailStr, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain import repos, security
from switchboard.domain.entities import ROLES, User, utcnow
from switchboard.domain.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthenticated
from switchboard.domain.throttle import FailureThrottle, Limits
from switchboard.domain.validation import Input, RequiredText, validate
from switchboard.store import tables as t

RANK = {"super_master": 2, "master": 1, "admin": 1, "user": 0}
Role = Literal["super_master", "master", "admin", "user"]


class _UserFields(Input):
    name: str | None = Field(default=None, max_length=255)
    email: EmailStr | None = None
    time_zone: str | None = Field(default=None, max_length=64)
    role: Role | None = None

    @field_validator("email", mode="before")
    @classmethod
    def _blank_email(cls, v):
        return None if isinstance(v, str) and not v.strip() else v


class UserCreate(_UserFields):
    username: RequiredText = Field(max_length=150)
    password: str = Field(min_length=1, max_length=256)
    context: str | None = Field(default=None, max_length=80)


class UserUpdate(_UserFields):
    username: RequiredText | None = Field(default=None, max_length=150)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    context: str | None = Field(default=None, max_length=80)


MIN_PASSWORD = 8


def _validated(model, data: dict, min_password: int):
    """validate() plus the dialect's password length rule, all problems reported together."""
    pw = data.get("password") if isinstance(data, dict) else None
    extra = (
        [("password", f"is too short (minimum is {min_password} characters)")]
        if isinstance(pw, str) and 0 < len(pw) < min_password
        else []
    )
    try:
        inp = validate(model, data)
    except Invalid as e:
        raise Invalid(problems=[*e.problems, *extra]) from None
    if extra:
        raise Invalid(problems=extra)
    return inp


class IdentityService:
    def __init__(
        self,
        box: security.SecretBox,
        *,
        cache_seconds: float = 60.0,
        failures_per_minute: int = 20,
        cache_size: int = 10_000,
        limits: Limits | None = None,
    ):
        self._box = box
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        # HMAC(credentials) -> (user id, password hash seen, expiry): no argon2 per request
        self._cache: OrderedDict[bytes, tuple[int, str, float]] = OrderedDict()
        # HMAC(credentials) -> the outcome of the verification now running for them
        self._verifying: dict[bytes, asyncio.Future[bool]] = {}
        # a read transaction's user rows (by id) and token grants (by the token's digest: the
        # user and the expiry), kept while nothing in the database changes (repos.Reads): a
        # request authenticated again by the same credentials then runs no query
        self._users = repos.Reads(cache_size)
        self._tokens = repos.Reads(cache_size)
        # failed logins per (source, account), per source and per account (domain/throttle.py)
        self.throttle = FailureThrottle(limits or Limits(per_pair=failures_per_minute))
        # called as fn(conn, user_id, username, password) whenever a password is set (the kazoo
        # dialect keeps a keyed hash of KAZOO's md5 credentials)
        self.on_password_set: list = []

    # ---- authentication -------------------------------------------------------------------
    async def _password_set(self, conn: AsyncConnection, user: User, password: str) -> None:
        for fn in self.on_password_set:
            await fn(conn, user.id, user.username, password)

    def check_rate(self, source: str, account: str) -> None:
        """429 (RateLimited) while this source may not try this account (see domain/throttle.py)."""
        wait = self.throttle.check(source, account.lower())
        if wait is not None:
            raise RateLimited(max(1, int(wait) + 1))

    def record_failure(self, source: str, account: str) -> None:
        self.throttle.failed(source, account.lower())

    async def authenticate_password(
        self, conn: AsyncConnection, username: str, password: str, source: str = ""
    ) -> User:
        """Check a username/password; remembers a success for a short time under an HMAC of the
        credentials. The entry is only trusted while the user's stored hash is unchanged and the
        user is active, so a password change or cancellation takes effect at once on every node."""
        self.check_rate(source, username)
        key = self._box.mac(username.lower(), password)
        cached = self._cache.get(key)
        if cached is not None:
            user_id, seen_hash, expires = cached
            if expires > time.monotonic():
                user = self._users.get(conn, user_id) or self._users.put(
                    conn, user_id, await repos.users.get(conn, user_id)
                )
                if user and user.active and user.password_hash == seen_hash and user.username_key == username.lower():
                    self.throttle.succeeded(source, user.username_key)
                    return user
            self._cache.pop(key, None)
        pending = self._verifying.get(key)
        if pending is not None:
            # A concurrent request is verifying these very credentials: share its argon2 run (a
            # client opening 64 connections at once costs one verification, not 64).
            if await asyncio.shield(pending):
                return await self.authenticate_password(conn, username, password, source)
            self.record_failure(source, username)
            raise Unauthenticated("invalid username or password")
        verified = asyncio.get_running_loop().create_future()
        self._verifying[key] = verified
        ok = False
        try:
            user = await repos.user_by_username(conn, username)
            ok = await security.verify_password_async(user.password_hash if user else None, password)
            ok = ok and user is not None and user.active
            if not ok or user is None:
                self.record_failure(source, username)
                raise Unauthenticated("invalid username or password")
            self.throttle.succeeded(source, user.username_key)
            if self._cache_seconds > 0:
                self._cache[key] = (user.id, user.password_hash, time.monotonic() + self._cache_seconds)
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return user
        finally:
            del self._verifying[key]
            verified.set_result(ok)

    async def issue_token(
        self,
        conn: AsyncConnection,
        user: User,
        *,
        issued_by: str,
        ttl: timedelta = timedelta(hours=24),
        form: str = "opaque",
    ) -> tuple[str, User]:
        token = security.new_token(form)
        now = utcnow()
        await repos.insert_token(
            conn,
            {
                "token_hash": security.token_digest(token),
                "user_id": user.id,
                "issued_by": issued_by,
                "created_at": now,
                "expires_at": now + ttl,
                "revoked_at": None,
            },
        )
        return token, user

    async def authenticate_token(self, conn: AsyncConnection, token: str) -> User:
        """The active user of a token that is neither revoked nor expired (401 otherwise). While
        the database is unchanged (repos.Reads) the grant read last time is used again, its
        expiry checked against the clock each time."""
        digest, now = security.token_digest(token), utcnow()
        grant = self._tokens.get(conn, digest)
        if grant is None or grant[1] <= now:
            grant = await repos.token_owner(conn, digest, now)
            if grant is not None:
                self._tokens.put(conn, digest, grant)
        if grant is None or not grant[0].active:
            raise Unauthenticated("invalid or expired token")
        return grant[0]

    async def revoke_token(self, conn: AsyncConnection, token: str) -> bool:
        return await repos.revoke_tokens(conn, utcnow(), digest=security.token_digest(token)) > 0

    # ---- user management ------------------------------------------------------------------
    @staticmethod
    def _may_manage(actor: User, target_role: str) -> bool:
        if target_role == "super_master":
            return actor.is_super
        return actor.is_admin and RANK[actor.role] >= RANK[target_role]

    async def get_user(self, conn: AsyncConnection, actor: User, user_id: int) -> User:
        """Own record for anyone; any record for admins. Another user's id → Forbidden."""
        if user_id != actor.id and not actor.is_admin:
            raise Forbidden("you may only see your own account")
        user = await repos.users.get(conn, user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user

    async def list_users(
        self,
        conn: AsyncConnection,
        actor: User,
        *,
        name: str | None = None,
        email: str | None = None,
        username: str | None = None,
        roles: tuple[str, ...] | None = None,
        status: str = "active",
    ) -> list[User]:
        c = t.users.c
        where = [repos.status_clause(c.deleted_at, status)]
        if not actor.is_admin:
            where.append(c.id == actor.id)
        if name:
            where.append(repos.contains_ci(c.name, name))
        if email:
            where.append(repos.contains_ci(c.email, email))
        if username:
            where.append(repos.contains_ci(c.username, username))
        if roles is not None:
            where.append(c.role.in_(roles))
        return await repos.users.find(conn, *where)

    async def user_by_uuid(self, conn: AsyncConnection, actor: User, user_uuid: str) -> User:
        user = await repos.users.first(conn, t.users.c.uuid == user_uuid, t.users.c.deleted_at.is_(None))
        if user is None:
            raise NotFound("user", user_uuid)
        return await self.get_user(conn, actor, user.id)

    async def create_user(
        self, conn: AsyncConnection, actor: User | None, data: dict, *, min_password: int = MIN_PASSWORD
    ) -> User:
        """actor None is the system itself (bootstrap, CLI). `min_password` is the dialect's
        rule: 8 by default; jade's documented examples use shorter passwords."""
        inp = _validated(UserCreate, data, min_password)
        role = inp.role or "user"
        if actor is not None and not self._may_manage(actor, role):
            raise Forbidden("you may not create users with that role")
        if await repos.user_by_username(conn, inp.username):
            raise Conflict("username", "has already been taken")
        now = utcnow()
        user = await repos.users.insert(
            conn,
            {
                "uuid": str(uuid.uuid4()),
                "username": inp.username,
                "username_key": inp.username.lower(),
                "name": inp.name if inp.name is not None else inp.username,
                "email": inp.email,
                "password_hash": await security.hash_password_async(inp.password),
                "role": role,
                "time_zone": inp.time_zone or "UTC",
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
                "context": inp.context or "",
            },
        )
        await self._password_set(conn, user, inp.password)
        return user

    async def _target(self, conn: AsyncConnection, actor: User, user_id: int) -> User:
        target = await self.get_user(conn, actor, user_id)
        if target.id != actor.id and not self._may_manage(actor, target.role):
            raise Forbidden("you may not change this user")
        return target

    async def _other_supers(self, conn: AsyncConnection, user_id: int) -> int:
        c = t.users.c
        return len(await repos.users.find(conn, c.role == "super_master", c.deleted_at.is_(None), c.id != user_id))

    async def update_user(
        self, conn: AsyncConnection, actor: User, user_id: int, data: dict, *, min_password: int = MIN_PASSWORD
    ) -> User:
        target = await self._target(conn, actor, user_id)
        inp = _validated(UserUpdate, data, min_password)
        values: dict = {}
        if inp.role is not None and inp.role != target.role:
            if not self._may_manage(actor, inp.role) or not self._may_manage(actor, target.role):
                raise Forbidden("you may not give that role")
            if target.role == "super_master" and not await self._other_supers(conn, target.id):
                raise Invalid("role", "cannot be changed: this is the last super master")
            values["role"] = inp.role
        if inp.username is not None and inp.username.lower() != target.username_key:
            if await repos.user_by_username(conn, inp.username):
                raise Conflict("username", "has already been taken")
        if inp.username is not None:
            values.update(username=inp.username, username_key=inp.username.lower())
        for f in ("name", "time_zone", "context"):
            if getattr(inp, f) is not None:
                values[f] = getattr(inp, f)
        if "email" in inp.model_fields_set:
            values["email"] = inp.email
        if inp.password is not None:
            values["password_hash"] = await security.hash_password_async(inp.password)
            await repos.revoke_tokens(conn, utcnow(), user_id=target.id)
        if not values:
            return target
        values["updated_at"] = utcnow()
        user = await repos.users.update(conn, target.id, values)
        if inp.password is not None:
            await self._password_set(conn, user, inp.password)
        return user

    async def cancel_user(self, conn: AsyncConnection, actor: User, user_id: int) -> User:
        target = await self._target(conn, actor, user_id)
        if target.id == actor.id:
            raise Forbidden("you may not cancel your own account")
        await repos.revoke_tokens(conn, utcnow(), user_id=target.id)
        return await repos.users.set_cancelled(conn, target, True)

    async def activate_user(self, conn: AsyncConnection, actor: User, user_id: int) -> User:
        return await repos.users.set_cancelled(conn, await self._target(conn, actor, user_id), False)

    async def ensure_bootstrap_admin(
        self, conn: AsyncConnection, username: str, password: str | None
    ) -> tuple[bool, str | None]:
        """Create the super user on first start. Returns (created, the generated password to print
        once, or None when the user existed or the password was given)."""
        if await repos.user_by_username(conn, username):
            return False, None
        generated = None
        if not password:
            password = generated = security.new_token()[:24]
        await self.create_user(
            conn, None, {"username": username, "password": password, "name": "Administrator", "role": "super_master"}
        )
        return True, generated


__all__ = ["IdentityService", "ROLES", "UserCreate", "UserUpdate"]
