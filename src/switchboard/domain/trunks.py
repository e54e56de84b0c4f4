"""Trunks: the one SIP trunk model behind the PortSIP providers, jade's manager trunks, pjsip
registration_outbounds and jade registries (each dialect is a view of the same row).

Fields and rules (a write is validated as a whole; every problem is reported together). The
default is what a create without the field (or with null) gets:

- name: string, required; trimmed, non-empty, at most 255 characters, no control characters and
  no `[`/`]` (it doubles as a pjsip section name); unique.
- auth_mode: `IP_AUTH` or `REGISTER_AUTH`, required (any case; stored upper case).
- protocol: `UDP` or `TCP`, required (any case; stored upper case).
- hostname: an IPv4/IPv6 literal or an RFC 1123 host name, required.
- port: integer 1-65535, required (a JSON integer: not a string, not a boolean).
- auth_id: string without whitespace; required non-empty for REGISTER_AUTH; default "".
- password: string; required non-empty for REGISTER_AUTH; default ""; stored encrypted.
- require_register: JSON boolean; default true for REGISTER_AUTH, false for IP_AUTH.
- outbound_server: "" or a host (as hostname); default "".
- outbound_server_port: 0 (unset) or 1-65535; default 0.
- reregister_interval: integer 30-86400 (seconds); default 3600.
- ips: IPv4/IPv6 address strings (where an IP_AUTH trunk's calls come from), at most 100,
  stored normalised and without duplicates; default [hostname] when hostname is an IP literal,
  else [].
- in_parameters, out_parameters: JSON objects, at most 100, kept as given; default [].
- provider_in_lan, single_via_header: JSON booleans; default false.

A null value counts as "not given". An update is partial: the given fields are laid over the
stored trunk and the merged result is validated with the same rules (so switching a trunk to
REGISTER_AUTH needs an auth_id and a password, given now or stored before). Status is never a
field: it is the engine's live state (`Pbx.trunk_status`).

The password is kept encrypted (SecretBox) and never leaves the domain except through
`TrunkService.password()` (for the engine that registers the trunk); views show MASK.
"""

from __future__ import annotations

import ipaddress
import uuid as uuidlib
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.entities import utcnow
from switchboard.domain.errors import Conflict, Invalid, NotFound
from switchboard.domain.security import MASK, SecretBox  # MASK: what a view shows for a stored password
from switchboard.domain.validation import is_host
from switchboard.store import tables as t

AUTH_MODES = ("IP_AUTH", "REGISTER_AUTH")
PROTOCOLS = ("UDP", "TCP")
REREGISTER_MIN, REREGISTER_MAX, REREGISTER_DEFAULT = 30, 86400, 3600
MAX_ITEMS = 100
MAX_TEXT = 255
MAX_PASSWORD = 1000

# the fields a client writes (id, uuid, status and the timestamps are not among them)
FIELDS = (
    "name",
    "auth_mode",
    "protocol",
    "require_register",
    "auth_id",
    "password",
    "hostname",
    "port",
    "outbound_server",
    "outbound_server_port",
    "reregister_interval",
    "ips",
    "in_parameters",
    "out_parameters",
    "provider_in_lan",
    "single_via_header",
)


@dataclass(frozen=True, slots=True)
class Trunk:
    id: int
    uuid: str
    name: str
    auth_mode: str
    protocol: str
    require_register: bool
    auth_id: str
    password_enc: str
    hostname: str
    port: int
    outbound_server: str
    outbound_server_port: int
    reregister_interval: int
    ips: tuple[str, ...]
    in_parameters: tuple[dict, ...]
    out_parameters: tuple[dict, ...]
    provider_in_lan: bool
    single_via_header: bool
    created_at: Any
    updated_at: Any

    @property
    def registers(self) -> bool:
        """Does the engine register this trunk upstream?"""
        return self.auth_mode == "REGISTER_AUTH" and self.require_register


_JSON_COLUMNS = ("ips", "in_parameters", "out_parameters")
_COLUMNS = [t.trunks.c[f.name] for f in fields(Trunk)]


def _row_to_trunk(row) -> Trunk:
    values = dict(row._mapping)
    for key in _JSON_COLUMNS:
        values[key] = tuple(orjson.loads(values[key] or "[]"))
    values["require_register"] = bool(values["require_register"])
    values["provider_in_lan"] = bool(values["provider_in_lan"])
    values["single_via_header"] = bool(values["single_via_header"])
    return Trunk(**values)


# ---- validation (pure) -------------------------------------------------------------------------
def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


class _Checker:
    """Collects (field, reason) problems while reading a merged trunk document."""

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.problems: list[tuple[str, str]] = []

    def fail(self, field: str, reason: str) -> None:
        self.problems.append((field, reason))

    def text(self, field: str, *, required: bool = False, max_length: int = MAX_TEXT) -> str | None:
        value = self.data.get(field)
        if value is None:
            if required:
                self.fail(field, "can't be blank")
            return None if required else ""
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        value = value.strip()
        if required and not value:
            self.fail(field, "can't be blank")
            return None
        if len(value) > max_length:
            self.fail(field, f"is too long (maximum is {max_length} characters)")
            return None
        if _has_control(value):
            self.fail(field, "must not contain control characters")
            return None
        return value

    def choice(self, field: str, choices: tuple[str, ...]) -> str | None:
        value = self.data.get(field)
        if value is None:
            self.fail(field, "can't be blank")
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        upper = value.strip().upper()
        if upper not in choices:
            self.fail(field, "must be one of: " + ", ".join(choices))
            return None
        return upper

    def boolean(self, field: str, default: bool | None) -> bool | None:
        value = self.data.get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
            return None
        return value

    def integer(
        self, field: str, low: int, high: int, *, default: int | None = None, allow_zero: bool = False
    ) -> int | None:
        value = self.data.get(field)
        if value is None:
            if default is None:
                self.fail(field, "can't be blank")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, "must be an integer")
            return None
        if not (low <= value <= high or (allow_zero and value == 0)):
            self.fail(field, f"must be {'0 or ' if allow_zero else ''}between {low} and {high}")
            return None
        return value

    def host(self, field: str, *, required: bool) -> str | None:
        value = self.text(field, required=required)
        if value is None or (value == "" and not required):
            return value
        if not is_host(value):
            self.fail(field, "is not a valid IP address or host name")
            return None
        return value

    def items(self, field: str) -> list | None:
        value = self.data.get(field)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(field, "must be an array")
            return None
        if len(value) > MAX_ITEMS:
            self.fail(field, f"has too many items (maximum is {MAX_ITEMS})")
            return None
        return value

    def ips(self) -> list[str] | None:
        value = self.items("ips")
        if value is None:
            return None
        out: list[str] = []
        for item in value:
            try:
                if not isinstance(item, str):
                    raise ValueError
                addr = ipaddress.ip_address(item.strip())
            except ValueError:
                self.fail("ips", "must contain only IPv4 or IPv6 addresses")
                return None
            text = addr.compressed
            if text not in out:
                out.append(text)
        return out

    def objects(self, field: str) -> list[dict] | None:
        value = self.items(field)
        if value is None:
            return []
        if not all(isinstance(item, dict) for item in value):
            self.fail(field, "must contain only JSON objects")
            return None
        return value


def validate_trunk(data: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The clean column values (password in clear) of a trunk written as `data`: on create
    (`base` None) with the defaults of the module's table; on update laid over `base`, the stored
    trunk in the same form (see `TrunkService.editable`). Raises Invalid with every problem."""
    if not isinstance(data, dict):
        raise Invalid(None, "the trunk must be a JSON object")
    given = {k: v for k, v in data.items() if k in FIELDS and v is not None}
    merged = {**(base or {}), **given}
    c = _Checker(merged)

    name = c.text("name", required=True)
    if name is not None and ("[" in name or "]" in name):
        c.fail("name", "must not contain [ or ]")
    auth_mode = c.choice("auth_mode", AUTH_MODES)
    protocol = c.choice("protocol", PROTOCOLS)
    hostname = c.host("hostname", required=True)
    port = c.integer("port", 1, 65535)
    registering = auth_mode == "REGISTER_AUTH"
    auth_id = c.text("auth_id", required=registering)
    if auth_id and any(ch.isspace() for ch in auth_id):
        c.fail("auth_id", "must not contain whitespace")
    password = merged.get("password")
    if password is None:
        password = ""
        if registering:
            c.fail("password", "can't be blank")
    elif not isinstance(password, str):
        c.fail("password", "must be a string")
    elif registering and not password:
        c.fail("password", "can't be blank")
    elif len(password) > MAX_PASSWORD:
        c.fail("password", f"is too long (maximum is {MAX_PASSWORD} characters)")
    elif base is None and password == MASK:
        c.fail("password", "must be the password itself, not the mask " + MASK)
    require_register = c.boolean("require_register", registering)
    outbound_server = c.host("outbound_server", required=False)
    outbound_server_port = c.integer("outbound_server_port", 1, 65535, default=0, allow_zero=True)
    reregister_interval = c.integer("reregister_interval", REREGISTER_MIN, REREGISTER_MAX, default=REREGISTER_DEFAULT)
    ips = c.ips()
    if ips is None and "ips" not in merged and hostname:
        try:
            ips = [ipaddress.ip_address(hostname).compressed]
        except ValueError:
            ips = []
    in_parameters = c.objects("in_parameters")
    out_parameters = c.objects("out_parameters")
    provider_in_lan = c.boolean("provider_in_lan", False)
    single_via_header = c.boolean("single_via_header", False)
    if c.problems:
        raise Invalid(problems=c.problems)
    return {
        "name": name,
        "auth_mode": auth_mode,
        "protocol": protocol,
        "require_register": require_register,
        "auth_id": auth_id or "",
        "password": password,
        "hostname": hostname,
        "port": port,
        "outbound_server": outbound_server or "",
        "outbound_server_port": outbound_server_port,
        "reregister_interval": reregister_interval,
        "ips": ips or [],
        "in_parameters": in_parameters,
        "out_parameters": out_parameters,
        "provider_in_lan": provider_in_lan,
        "single_via_header": single_via_header,
    }


# ---- the service ---------------------------------------------------------------------------------
class TrunkService:
    def __init__(self, box: SecretBox | None = None):
        self._box = box

    def _require_box(self) -> SecretBox:
        if self._box is None:
            raise RuntimeError("TrunkService needs the SecretBox to handle trunk passwords")
        return self._box

    def password(self, trunk: Trunk) -> str:
        """The trunk's password in clear: for the engine's digest, never for a view."""
        return self._require_box().decrypt(trunk.password_enc) if trunk.password_enc else ""

    def editable(self, trunk: Trunk) -> dict[str, Any]:
        """The stored trunk as a write document (password in clear): the base of a partial update."""
        doc = {f: getattr(trunk, f) for f in FIELDS if f != "password"}
        doc.update(
            ips=list(trunk.ips),
            in_parameters=list(trunk.in_parameters),
            out_parameters=list(trunk.out_parameters),
            password=self.password(trunk),
        )
        return doc

    def _columns(self, values: dict[str, Any]) -> dict[str, Any]:
        cols = {k: v for k, v in values.items() if k not in ("password", *_JSON_COLUMNS)}
        for key in _JSON_COLUMNS:
            cols[key] = orjson.dumps(values[key]).decode()
        cols["password_enc"] = self._require_box().encrypt(values["password"])
        return cols

    # -- reads
    async def count(self, conn: AsyncConnection) -> int:
        return (await conn.execute(select(func.count()).select_from(t.trunks))).scalar_one()

    async def list(
        self, conn: AsyncConnection, *, offset: int = 0, limit: int | None = None, sort: str = "id"
    ) -> list[Trunk]:
        """A page of trunks; sort "id" (creation order) or "name" (then id)."""
        c = t.trunks.c
        order = [c.name, c.id] if sort == "name" else [c.id]
        q = select(*_COLUMNS).order_by(*order).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return [_row_to_trunk(r) for r in (await conn.execute(q)).all()]

    async def all(self, conn: AsyncConnection) -> list[Trunk]:
        """Every trunk, for the engine (registration, qualify)."""
        return await self.list(conn)

    async def find(self, conn: AsyncConnection, trunk_id: int) -> Trunk | None:
        row = (await conn.execute(select(*_COLUMNS).where(t.trunks.c.id == trunk_id))).first()
        return _row_to_trunk(row) if row is not None else None

    async def get(self, conn: AsyncConnection, trunk_id: int) -> Trunk:
        trunk = await self.find(conn, trunk_id)
        if trunk is None:
            raise NotFound("trunk", trunk_id)
        return trunk

    async def by_name(self, conn: AsyncConnection, name: str) -> Trunk | None:
        row = (await conn.execute(select(*_COLUMNS).where(t.trunks.c.name == name))).first()
        return _row_to_trunk(row) if row is not None else None

    async def _check_name(self, conn: AsyncConnection, name: str, own_id: int | None) -> None:
        other = await self.by_name(conn, name)
        if other is not None and other.id != own_id:
            raise Conflict("name", "has already been taken")

    # -- writes
    async def create(self, conn: AsyncConnection, data: dict[str, Any]) -> Trunk:
        values = validate_trunk(data)
        await self._check_name(conn, values["name"], None)
        now = utcnow()
        cols = {**self._columns(values), "uuid": str(uuidlib.uuid4()), "created_at": now, "updated_at": now}
        try:
            row = (await conn.execute(insert(t.trunks).values(**cols).returning(*_COLUMNS))).one()
        except IntegrityError as e:
            raise Conflict("name", "has already been taken") from e
        return _row_to_trunk(row)

    async def update(self, conn: AsyncConnection, trunk_id: int, data: dict[str, Any]) -> Trunk:
        """Partial update: only the given fields change; the merged trunk is validated whole."""
        trunk = await self.get(conn, trunk_id)
        if isinstance(data, dict) and data.get("password") == MASK:  # a view sent back unchanged
            data = {k: v for k, v in data.items() if k != "password"}
        values = validate_trunk(data, self.editable(trunk))
        if values["name"] != trunk.name:
            await self._check_name(conn, values["name"], trunk.id)
        cols = {**self._columns(values), "updated_at": utcnow()}
        try:
            row = (
                await conn.execute(
                    update(t.trunks).where(t.trunks.c.id == trunk.id).values(**cols).returning(*_COLUMNS)
                )
            ).one()
        except IntegrityError as e:
            raise Conflict("name", "has already been taken") from e
        return _row_to_trunk(row)

    async def delete(self, conn: AsyncConnection, trunk_id: int) -> None:
        res = await conn.execute(delete(t.trunks).where(t.trunks.c.id == trunk_id))
        if not res.rowcount:
            raise NotFound("trunk", trunk_id)
