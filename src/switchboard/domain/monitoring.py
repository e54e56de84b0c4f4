"""Monitoring: probe servers, the endpoints users watch, and the VoIP tests that join them.

Visibility rules (one place, every dialect):
- community servers (private false, no owner) are readable by every user and changed only by
  admins; private servers are seen and changed only by their owner and admins;
- an endpoint belongs to one user: that user and admins reach it, nobody else;
- a VoIP test needs a server that is active and visible to the endpoint's owner.
Cancelling (DELETE) sets deleted_at; activate clears it. Nothing is removed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain import repos, security
from switchboard.domain.entities import Endpoint, Server, User, VoipTest, utcnow
from switchboard.domain.errors import Forbidden, Invalid, NotFound
from switchboard.domain.validation import Host, HostPort, Input, RequiredText, validate
from switchboard.store import tables as t

CODECS = ("G.711", "G.711a", "G.722", "G.729", "GSM", "iLBC", "Opus")
_CODEC_KEYS = {c.lower().replace(".", "").replace("-", ""): c for c in CODECS}
Status = Literal["active", "cancelled", "all"]
MIN_INTERVAL, MAX_INTERVAL = 5, 86_400  # a test runs every 5 s .. once a day


# a user's endpoints by status, built once (list_endpoints without filters)
_ENDPOINTS_OF = {
    status: repos.endpoints.select()
    .where(t.endpoints.c.user_id == bindparam("user_id"), repos.status_clause(t.endpoints.c.deleted_at, status))
    .order_by(t.endpoints.c.id)
    for status in ("active", "cancelled", "all")
}


# ---- inputs -------------------------------------------------------------------------------
class ServerCreate(Input):
    name: RequiredText = Field(max_length=255)
    ip_address: Host = Field(max_length=255)
    region: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    private: bool | None = None


class ServerUpdate(Input):
    name: RequiredText | None = Field(default=None, max_length=255)
    ip_address: Host | None = Field(default=None, max_length=255)
    region: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)


class EndpointCreate(Input):
    name: RequiredText = Field(max_length=255)
    ip_address: HostPort = Field(max_length=255)  # an IP or DNS name, optional :port (default 5060)
    description: str | None = Field(default=None, max_length=10_000)


class EndpointUpdate(Input):
    name: RequiredText | None = Field(default=None, max_length=255)
    ip_address: str | None = None
    description: str | None = Field(default=None, max_length=10_000)


class _TestFields(Input):
    codec: str | None = None
    alert_threshold: float | None = Field(default=None, ge=1, le=5)
    num_tests: int | None = Field(default=None, ge=1, le=1000)
    interpacket_ms: int | None = Field(default=None, ge=10, le=1000)
    interval_seconds: int | None = Field(default=None, ge=MIN_INTERVAL, le=MAX_INTERVAL)

    @field_validator("codec")
    @classmethod
    def _codec(cls, v):
        if v is None:
            return v
        key = str(v).strip().lower().replace(".", "").replace("-", "")
        if key not in _CODEC_KEYS:
            raise ValueError(f"is not a supported codec ({', '.join(CODECS)})")
        return _CODEC_KEYS[key]


class VoipTestCreate(_TestFields):
    server_id: int


class VoipTestUpdate(_TestFields):
    server_id: int | None = None


TEST_DEFAULTS = {
    "codec": "G.711",
    "alert_threshold": 3.5,
    "num_tests": 25,
    "interpacket_ms": 100,
    "interval_seconds": 60,
}


def _changes(inp: Input, names: tuple[str, ...]) -> dict:
    """Fields the client sent. A sent null clears optional text; required fields stay as they are."""
    out = {}
    for n in names:
        if n in inp.model_fields_set:
            v = getattr(inp, n)
            if v is not None or n in ("description", "region"):
                out[n] = v
    return out


class MonitoringService:
    def __init__(self) -> None:
        self._lists = repos.Reads()  # lists kept while the database is unchanged

    # ---- servers ---------------------------------------------------------------------------
    async def list_servers(
        self,
        conn: AsyncConnection,
        actor: User,
        *,
        name: str | None = None,
        ip_address: str | None = None,
        community: bool = True,
        private: bool = True,
        status: str = "active",
    ) -> list[Server]:
        c = t.servers.c
        where = [repos.status_clause(c.deleted_at, status)]
        if name:
            where.append(repos.contains_ci(c.name, name))
        if ip_address:
            where.append(repos.contains_ci(c.ip_address, ip_address))
        if not community:
            where.append(c.private.is_(True))
        if not private:
            where.append(c.private.is_(False))
        return await repos.visible_servers(conn, actor, *where)

    async def get_server(self, conn: AsyncConnection, actor: User, server_id: int) -> Server:
        server = await repos.servers.get(conn, server_id)
        if server is None or not server.visible_to(actor):
            raise NotFound("server", server_id)
        return server

    async def _changeable_server(self, conn, actor: User, server_id: int) -> Server:
        server = await self.get_server(conn, actor, server_id)
        if not actor.is_admin and server.owner_id != actor.id:
            raise Forbidden("community servers are changed by administrators only")
        return server

    async def create_server(self, conn: AsyncConnection, actor: User, data: dict) -> tuple[Server, str]:
        """Admins create community servers (private false) unless they ask for private; a user's
        server is always private and theirs. Returns the server and its one-time agent key."""
        inp = validate(ServerCreate, data)
        private = True if not actor.is_admin else bool(inp.private)
        if not actor.is_admin and inp.private is False:
            raise Forbidden("only administrators create community servers")
        agent_key = security.new_token()
        now = utcnow()
        server = await repos.servers.insert(
            conn,
            {
                "name": inp.name,
                "ip_address": inp.ip_address,
                "region": inp.region,
                "description": inp.description,
                "private": private,
                "owner_id": actor.id if private else None,
                "version": None,
                "agent_key_hash": security.token_digest(agent_key),
                "last_login_date": None,
                "last_login_ip": None,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            },
        )
        return server, agent_key

    async def update_server(self, conn: AsyncConnection, actor: User, server_id: int, data: dict) -> Server:
        server = await self._changeable_server(conn, actor, server_id)
        values = _changes(validate(ServerUpdate, data), ("name", "ip_address", "region", "description"))
        if not values:
            return server
        values["updated_at"] = utcnow()
        return await repos.servers.update(conn, server.id, values)

    async def cancel_server(self, conn: AsyncConnection, actor: User, server_id: int) -> Server:
        server = await self._changeable_server(conn, actor, server_id)
        return await repos.servers.set_cancelled(conn, server, True)

    async def activate_server(self, conn: AsyncConnection, actor: User, server_id: int) -> Server:
        server = await self._changeable_server(conn, actor, server_id)
        return await repos.servers.set_cancelled(conn, server, False)

    # ---- endpoints -------------------------------------------------------------------------
    @staticmethod
    async def _owner(conn: AsyncConnection, actor: User, user_id: int) -> User:
        if user_id != actor.id and not actor.is_admin:
            raise Forbidden("you may only reach your own endpoints")
        owner = actor if user_id == actor.id else await repos.users.get(conn, user_id)
        if owner is None:
            raise NotFound("user", user_id)
        return owner

    async def list_endpoints(
        self,
        conn: AsyncConnection,
        actor: User,
        user_id: int,
        *,
        name: str | None = None,
        ip_address: str | None = None,
        status: str = "active",
        views: repos.Views | None = None,
    ) -> list:
        """The endpoints (entities, or `views`' views of them: repos.Views). An unfiltered list of
        views is kept while the database is unchanged (repos.Reads): asked again, it runs no query."""
        if not name and not ip_address:
            key = (actor.id, actor.role, user_id, status, views)
            found = self._lists.get(conn, key) if views is not None else None
            if found is not None:
                return found
            await self._owner(conn, actor, user_id)
            stmt = _ENDPOINTS_OF[status if status in ("active", "cancelled") else "all"]  # as status_clause
            if views is None:
                return await repos.endpoints.fetch(conn, stmt, {"user_id": user_id})
            found = await repos.endpoints.fetch_views(conn, stmt, {"user_id": user_id}, views)
            return self._lists.put(conn, key, found)
        await self._owner(conn, actor, user_id)
        c = t.endpoints.c
        where = [c.user_id == user_id, repos.status_clause(c.deleted_at, status)]
        if name:
            where.append(repos.contains_ci(c.name, name))
        if ip_address:
            where.append(repos.contains_ci(c.ip_address, ip_address))
        found = await repos.endpoints.find(conn, *where)
        return [views.build(e) for e in found] if views is not None else found

    async def get_endpoint(self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int) -> Endpoint:
        await self._owner(conn, actor, user_id)
        ep = await repos.endpoints.get(conn, endpoint_id)
        if ep is None or ep.user_id != user_id:
            raise NotFound("endpoint", endpoint_id)
        return ep

    async def create_endpoint(self, conn: AsyncConnection, actor: User, user_id: int, data: dict) -> Endpoint:
        await self._owner(conn, actor, user_id)
        inp = validate(EndpointCreate, data)
        now = utcnow()
        return await repos.endpoints.insert(
            conn,
            {
                "user_id": user_id,
                "name": inp.name,
                "ip_address": inp.ip_address,
                "description": inp.description,
                "is_server": False,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            },
        )

    async def update_endpoint(
        self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int, data: dict
    ) -> Endpoint:
        """The IP address is fixed at creation: sending the same one is accepted (clients echo
        the whole record back), a different one is a validation error."""
        ep = await self.get_endpoint(conn, actor, user_id, endpoint_id)
        inp = validate(EndpointUpdate, data)
        if inp.ip_address is not None and inp.ip_address.strip() != ep.ip_address:
            raise Invalid("ip_address", "cannot be changed after the endpoint is created")
        values = _changes(inp, ("name", "description"))
        if not values:
            return ep
        values["updated_at"] = utcnow()
        return await repos.endpoints.update(conn, ep.id, values)

    async def cancel_endpoint(self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int) -> Endpoint:
        ep = await self.get_endpoint(conn, actor, user_id, endpoint_id)
        return await repos.endpoints.set_cancelled(conn, ep, True)

    async def activate_endpoint(self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int) -> Endpoint:
        ep = await self.get_endpoint(conn, actor, user_id, endpoint_id)
        return await repos.endpoints.set_cancelled(conn, ep, False)

    # ---- voip tests ------------------------------------------------------------------------
    async def _usable_server(self, conn, owner: User, server_id: int) -> Server:
        server = await repos.servers.get(conn, server_id)
        if server is None or not server.usable_by(owner):
            raise Invalid("server_id", "is not a server available to this user")
        return server

    async def list_tests(
        self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int, *, status: str = "active"
    ) -> list[VoipTest]:
        await self.get_endpoint(conn, actor, user_id, endpoint_id)
        c = t.voip_tests.c
        return await repos.voip_tests.find(
            conn, c.endpoint_id == endpoint_id, repos.status_clause(c.deleted_at, status)
        )

    async def get_test(
        self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int, test_id: int
    ) -> VoipTest:
        await self.get_endpoint(conn, actor, user_id, endpoint_id)
        test = await repos.voip_tests.get(conn, test_id)
        if test is None or test.endpoint_id != endpoint_id:
            raise NotFound("voip test", test_id)
        return test

    async def create_test(
        self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int, data: dict
    ) -> VoipTest:
        ep = await self.get_endpoint(conn, actor, user_id, endpoint_id)
        inp = validate(VoipTestCreate, data)
        owner = await self._owner(conn, actor, ep.user_id)
        await self._usable_server(conn, owner, inp.server_id)
        now = utcnow()
        values = {k: (getattr(inp, k) if getattr(inp, k) is not None else d) for k, d in TEST_DEFAULTS.items()}
        return await repos.voip_tests.insert(
            conn,
            {
                "endpoint_id": ep.id,
                "server_id": inp.server_id,
                **values,
                "alerting_since": None,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            },
        )

    async def update_test(
        self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int, test_id: int, data: dict
    ) -> VoipTest:
        test = await self.get_test(conn, actor, user_id, endpoint_id, test_id)
        inp = validate(VoipTestUpdate, data)
        values = _changes(inp, ("server_id", *TEST_DEFAULTS))
        if "server_id" in values and values["server_id"] != test.server_id:
            owner = await self._owner(conn, actor, user_id)
            await self._usable_server(conn, owner, values["server_id"])
        if not values:
            return test
        values["updated_at"] = utcnow()
        return await repos.voip_tests.update(conn, test.id, values)

    async def cancel_test(
        self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int, test_id: int
    ) -> VoipTest:
        test = await self.get_test(conn, actor, user_id, endpoint_id, test_id)
        return await repos.voip_tests.set_cancelled(conn, test, True)

    async def activate_test(
        self, conn: AsyncConnection, actor: User, user_id: int, endpoint_id: int, test_id: int
    ) -> VoipTest:
        test = await self.get_test(conn, actor, user_id, endpoint_id, test_id)
        return await repos.voip_tests.set_cancelled(conn, test, False)
