"""Repositories of the shared records (users, tokens, servers, endpoints, VoIP tests, results,
...): SQL as SQLAlchemy expressions, no SQL text. They live in domain/, not store/: they build
domain entities and raise domain errors (Conflict), and store/ (tables, migrations, the database)
sits below domain/ (import-linter's layers contract).

Not the only code that queries the database: the domain services in domain/pbxconf.py,
results.py, social.py, trunks.py, webhooks.py and the domain/kazoo/ package, and
engine/registrar.py and engine/runtime.py, build their own SQLAlchemy Core statements over
store.tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import datetime
from itertools import starmap
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.entities import Endpoint, Server, User, VoipTest, utcnow
from switchboard.domain.errors import Conflict
from switchboard.store import tables as t

E = TypeVar("E")


def constructor(entity: type[E]) -> Callable[..., E]:
    """`entity(*values)` for a frozen slotted dataclass, without its generated __init__: that one
    sets each field through object.__setattr__ (frozen), which made building the entities of a
    100-row list cost about as much as fetching the rows (measured). This sets the slots through
    their descriptors, all fields positionally as __init__ takes them; the object is the same
    (equal, hashed alike, still frozen). Any other class (or one with __post_init__) is its own
    constructor."""
    if not (
        is_dataclass(entity)
        and entity.__dataclass_params__.frozen
        and "__slots__" in entity.__dict__
        and not hasattr(entity, "__post_init__")
    ):
        return entity
    names = [f.name for f in fields(entity)]
    if any(not f.init for f in fields(entity)):
        return entity
    env: dict[str, Any] = {"_new": object.__new__, "_cls": entity}
    env.update({f"_set{i}": entity.__dict__[name].__set__ for i, name in enumerate(names)})
    args = ", ".join(f"_{i}" for i in range(len(names)))
    body = "".join(f"    _set{i}(o, _{i})\n" for i in range(len(names)))
    exec(f"def make({args}):\n    o = _new(_cls)\n{body}    return o\n", env)  # noqa: S102 - our own field list
    make = env["make"]
    make.__qualname__ = f"constructor.<{entity.__name__}>"
    return make


class Views:
    """Views kept by what they were built from (e.g. a record's rendered JSON by its row), so a list
    read request after request builds neither the entities nor their views again (a 100-row list
    spent ~25 % of its time there, measured). `build` must be a function of the key's values alone;
    the memo holds at most `size` views and is emptied when full."""

    __slots__ = ("build", "memo", "size")

    def __init__(self, build: Callable[..., Any], size: int = 16_384):
        self.build, self.size = build, size
        self.memo: dict[Any, Any] = {}

    def keep(self, key: Any, view: Any) -> Any:
        """Remember `view` under `key` (emptying the memo first when full); returns it."""
        _keep(self.memo, self.size, key, view)
        return view


def _keep(memo: dict, size: int, key: Any, value: Any) -> None:
    """memo[key] = value in a memo of at most `size` entries, emptied when full (Views, Reads)."""
    if len(memo) >= size:
        memo.clear()
    memo[key] = value


class Reads:
    """What a read transaction read (or made of it), kept under the database's change mark the
    transaction began with (`conn.mark`: store.db.Database.change_mark), and handed out again to
    a later read transaction whose mark is the same: no change has been committed in between by
    anyone (this process, a SIP worker, the CLI), so its reads would give the same. Where there is
    no mark (PostgreSQL, a write transaction) nothing is kept. The value must be a function of the
    database's content and the key alone: nothing that depends on the time or on in-memory state
    (the caller puts whatever else it depends on in the key). Callers only read what they get.
    At most `size` entries; emptied when full."""

    __slots__ = ("memo", "size")

    def __init__(self, size: int = 4_096):
        self.size = size
        self.memo: dict[Any, tuple[int, Any]] = {}

    def get(self, conn: AsyncConnection, key: Any) -> Any:
        """The value kept under `key` for conn's mark, or None."""
        mark = getattr(conn, "mark", None)
        if mark is None:
            return None
        hit = self.memo.get(key)
        return hit[1] if hit is not None and hit[0] == mark else None

    def put(self, conn: AsyncConnection, key: Any, value: Any) -> Any:
        """Keep `value` (read through `conn`) under `key` and conn's mark; returns it."""
        mark = getattr(conn, "mark", None)
        if mark is not None:
            _keep(self.memo, self.size, key, (mark, value))
        return value


class Repo:
    """CRUD over one table, returning one entity type."""

    def __init__(self, table, entity: type[E]):
        self.table = table
        self.entity = entity
        self._cols = [table.c[f.name] for f in fields(entity)]
        self._make = constructor(entity)
        # statements built once: building one and computing its cache key cost ~4x executing it
        self._by_id = select(*self._cols).where(table.c.id == bindparam("ident"))
        self._by_id_locked = self._by_id.with_for_update()

    def select(self):
        return select(*self._cols)

    async def get(self, conn: AsyncConnection, ident: int, *, for_update: bool = False) -> E | None:
        q = self._by_id_locked if for_update and conn.dialect.name == "postgresql" else self._by_id
        row = (await conn.execute(q, {"ident": ident})).first()
        return self._make(*row) if row is not None else None

    async def find(self, conn: AsyncConnection, *where, order=None, limit: int | None = None) -> list[E]:
        q = self.select().where(*where).order_by(*(order if order is not None else [self.table.c.id]))
        if limit is not None:
            q = q.limit(limit)
        return await self.fetch(conn, q)

    async def fetch(self, conn: AsyncConnection, statement, params: dict[str, Any] | None = None) -> list[E]:
        """The entities of a statement that selects this repo's columns (`select()`), e.g. one
        built once with bind parameters (`bindparam`) and executed with `params`."""
        return list(starmap(self._make, (await conn.execute(statement, params)).all()))

    async def fetch_views(self, conn: AsyncConnection, statement, params: dict[str, Any] | None, views: Views) -> list:
        """fetch(), each entity turned into `views`' view of it (see Views)."""
        out = []
        memo, build, make = views.memo, views.build, self._make
        for row in (await conn.execute(statement, params)).all():
            key = tuple(row)  # a Row compares in Python, a tuple in C (measured: 2 µs a lookup)
            view = memo.get(key)
            out.append(view if view is not None else views.keep(key, build(make(*key))))
        return out

    async def first(self, conn: AsyncConnection, *where) -> E | None:
        found = await self.find(conn, *where, limit=1)
        return found[0] if found else None

    async def insert(self, conn: AsyncConnection, values: dict[str, Any]) -> E:
        try:
            res = await conn.execute(insert(self.table).values(**values).returning(*self._cols))
        except IntegrityError as e:
            raise _conflict(e) from e
        return self._make(*res.one())

    async def update(self, conn: AsyncConnection, ident: int, values: dict[str, Any]) -> E:
        try:
            res = await conn.execute(
                update(self.table).where(self.table.c.id == ident).values(**values).returning(*self._cols)
            )
        except IntegrityError as e:
            raise _conflict(e) from e
        return self._make(*res.one())

    async def set_cancelled(self, conn: AsyncConnection, record: E, cancelled: bool) -> E:
        """Cancel (deleted_at = now) or re-activate (deleted_at = null); unchanged if already so."""
        if (record.deleted_at is not None) == cancelled:
            return record
        now = utcnow()
        return await self.update(conn, record.id, {"deleted_at": now if cancelled else None, "updated_at": now})


def plain(row) -> dict[str, Any]:
    """A result row (Row or RowMapping) as a dict with plain str keys (SQLAlchemy's column names are
    a str subclass that orjson refuses as keys)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return {str(k): v for k, v in mapping.items()}


def _conflict(e: IntegrityError) -> Conflict:
    msg = str(e.orig).lower()
    for col in ("username_key", "agent_key_hash", "token_hash", "uuid"):
        if col in msg:
            return Conflict(col.removesuffix("_key") if col == "username_key" else col, "has already been taken")
    return Conflict(None, "conflicts with an existing record")


def contains_ci(column, value: str):
    """Case-insensitive partial match, with LIKE wildcards in the value taken literally."""
    return func.lower(column).contains(value.lower(), autoescape=True)


def status_clause(column, status: str):
    """'active' -> not cancelled, 'cancelled' -> cancelled only, 'all' -> no condition."""
    if status == "active":
        return column.is_(None)
    if status == "cancelled":
        return column.is_not(None)
    return and_(True)


users = Repo(t.users, User)
servers = Repo(t.servers, Server)
endpoints = Repo(t.endpoints, Endpoint)
voip_tests = Repo(t.voip_tests, VoipTest)


_USER_BY_KEY = users.select().where(t.users.c.username_key == bindparam("key"))


async def user_by_username(conn: AsyncConnection, username: str) -> User | None:
    row = (await conn.execute(_USER_BY_KEY, {"key": username.lower()})).first()
    return users._make(*row) if row is not None else None


async def visible_servers(conn: AsyncConnection, user: User, *conditions) -> list[Server]:
    c = t.servers.c
    where = list(conditions)
    if not user.is_admin:
        where.append(or_(c.private.is_(False), c.owner_id == user.id))
    return await servers.find(conn, *where)


async def insert_token(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(t.api_tokens).values(**values))


_TOKEN_OWNER = (
    users.select()
    .join(t.api_tokens, t.api_tokens.c.user_id == t.users.c.id)
    .where(
        t.api_tokens.c.token_hash == bindparam("digest"),
        t.api_tokens.c.revoked_at.is_(None),
        t.api_tokens.c.expires_at > bindparam("now"),
    )
)


_TOKEN_OWNER = _TOKEN_OWNER.add_columns(t.api_tokens.c.expires_at)


async def token_owner(conn: AsyncConnection, digest: str, now: datetime) -> tuple[User, datetime] | None:
    """The user of an API token that is neither revoked nor expired at `now`, and when it expires."""
    row = (await conn.execute(_TOKEN_OWNER, {"digest": digest, "now": now})).first()
    return (users._make(*row[:-1]), row[-1]) if row is not None else None


async def revoke_tokens(
    conn: AsyncConnection, now: datetime, *, digest: str | None = None, user_id: int | None = None
) -> int:
    c = t.api_tokens.c
    where = [c.revoked_at.is_(None)]
    if digest is not None:
        where.append(c.token_hash == digest)
    if user_id is not None:
        where.append(c.user_id == user_id)
    res = await conn.execute(update(t.api_tokens).where(*where).values(revoked_at=now))
    return res.rowcount
