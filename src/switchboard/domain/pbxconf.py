"""PBX configuration: the Asterisk-syntax files the engine loads, kept in the database.

Each family has one *live* file (`extensions.conf`, `pjsip.conf`, `queues.conf`,
`res_parking.conf`, `agents.conf`) and the backups a write leaves behind: every change keeps the previous text
as `<file>.<RFC 3339 ns timestamp>` (e.g. `extensions.conf.2018-05-20T19:54:00.661266450Z`).
A write is validated first by `asterisk.files.load` (the dialplan by `asterisk.dialplan.validate`,
pjsip by `asterisk.pjsip.load`, queues, parking and agents by `asterisk.queues` / `asterisk.parking` /
`asterisk.agents`); invalid
text is refused with Invalid and nothing changes. The text rules live in `switchboard.asterisk`; this
module is the service that stores the files, their backups and their secrets. The live file cannot
be deleted; backups can; backups are read-only.

Section-level views (jade's cfg_parkinglots, cfg_queues, sdps, and the parkinglots PUT) are parsed
from the live file and written back into it with `ConfFile.replace_section`/`remove_section`, so
the rest of the file (comments included) stays as it was; they take the same backup path.

Option values on the wire: the text after the first `=` of the line, stripped — so
`context => edvina_park` reads `"> edvina_park"` and a value written as `"> x"` becomes
`key => x` (the form the spec's examples use both ways). A key repeated in one section
(`member =>` in queues.conf) reads as a list of such strings and may be written as one.

Secrets: pjsip.conf holds SIP passwords, so that family's texts (live and backups) are stored
encrypted (Fernet, the SecretBox key), and every view of them shows `password` / `md5_cred`
values as "********". A PUT may send the masked form back: each masked value is restored from
the live file's section of the same name and type (a masked value with nothing to restore is
refused), so GET → edit → PUT never loses or reveals a secret.

The async dialplan: adpmas (groups) and adps (rules) are records; `asterisk.dialplan.compile_adpmas`
turns them into one context per adpma (`adpma-<uuid>`, rules in sequence order), which the engine
loads together with extensions.conf. An adp needs an existing adpma; deleting an adpma deletes
its adps.
"""

from __future__ import annotations

import re
import time
import uuid as uuidlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.asterisk import conf, dialplan, files, parking, pjsip
from switchboard.asterisk.conf import section_data
from switchboard.asterisk.files import FILES
from switchboard.domain import repos
from switchboard.domain.entities import rfc3339_ns
from switchboard.domain.errors import Invalid, NotFound
from switchboard.domain.security import MASK, SecretBox
from switchboard.store import tables as t

DEFAULTS = {
    "dialplan": """; Switchboard dialplan (Asterisk extensions.conf syntax)
[general]
static = yes
writeprotect = no

[globals]

[demo]
exten => 100,1,NoOp(sample_park)
same => n,Park()
exten => _X.,1,NoOp(demo)
same => n,Hangup()
""",
    "pjsip": """; Switchboard PJSIP configuration (Asterisk pjsip.conf syntax)
[transport-udp]
type = transport
protocol = udp
bind = 0.0.0.0

[transport-tcp]
type = transport
protocol = tcp
bind = 0.0.0.0
""",
    "queue": """; Switchboard queues (Asterisk queues.conf syntax)
[general]
persistentmembers = yes
""",
    "park": """; Switchboard parking (Asterisk res_parking.conf syntax)
[general]

[default]
parkext => 700
parkpos => 701-720
context => parkedcalls
parkingtime => 45
""",
    "agent": """; Switchboard agents (Asterisk agents.conf syntax, app_agent_pool): one section per agent id
[general]
""",
}


def validate_text(family: str, text: str, provided: Iterable[str] = ()) -> Any:
    """Parse and check one family's file (asterisk.files.load); returns what the engine loads. Raises Invalid.
    `provided`: for extensions.conf, the contexts res_parking generates (an include may name them)."""
    try:
        return files.load(family, text, provided)
    except (conf.ConfError, pjsip.PjsipError) as e:
        raise Invalid("data", f"invalid {FILES[family]}: {e}") from None


def data_options(data: Any) -> list[tuple[str, str, str]]:
    """A cfg `data` object → (key, op, value) lines; a list value repeats the key."""
    if not isinstance(data, dict):
        raise Invalid("data", "must be an object of option names to values")
    out = []
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise Invalid(key, "must be a string (or a list of strings)")
            v = str(v).strip()
            out.append((key, "=>", v[1:].strip()) if v.startswith(">") else (key, "=", v))
    return out


_SECRET_LINE = re.compile(
    r"^(\s*(?:password|md5_cred)\s*=>?\s*)((?:\\;|[^;\r\n])*?)(\s*(?:;.*)?)$", re.IGNORECASE | re.MULTILINE
)
_SECRET_KEYS = ("password", "md5_cred")


def mask_secrets(text: str) -> str:
    return _SECRET_LINE.sub(lambda m: m.group(1) + (MASK if m.group(2).strip() else "") + m.group(3), text)


def restore_secrets(new: str, old: str) -> str:
    """Put back the secrets a client sent masked, from the same section (name and type) of old."""
    if MASK not in new:
        return new
    try:
        cf_new, cf_old = conf.parse(new), conf.parse(old)
    except conf.ConfError:
        return new  # validation reports it
    known: dict[tuple[str, str, str], str] = {}
    for sec in cf_old.sections:
        typ = next((o.value.strip() for o in sec.options if o.key.lower() == "type"), "")
        for o in sec.options:
            if o.key.lower() in _SECRET_KEYS:
                known[(sec.name, typ, o.key.lower())] = o.value
    lines = new.splitlines(keepends=True)
    for sec in cf_new.sections:
        typ = next((o.value.strip() for o in sec.options if o.key.lower() == "type"), "")
        for o in sec.options:
            if o.key.lower() in _SECRET_KEYS and o.value.strip() == MASK:
                secret = known.get((sec.name, typ, o.key.lower()))
                if secret is None:
                    raise Invalid(
                        "data",
                        f"[{sec.name}] {o.key} is masked and there is no stored secret to keep; send the secret itself",
                    )
                i = o.line - 1
                lines[i] = lines[i].replace(MASK, secret.replace(";", "\\;"), 1)
    return "".join(lines)


class ConfigService:
    def __init__(self, box: SecretBox | None = None):
        self._box = box

    def _seal(self, family: str, text: str) -> str:
        return "fernet:" + self._box.encrypt(text) if family == "pjsip" and self._box else text

    def _open(self, data: str) -> str:
        return self._box.decrypt(data[7:]) if data.startswith("fernet:") and self._box else data

    def _shown(self, family: str, text: str) -> str:
        return mask_secrets(text) if family == "pjsip" else text

    # ---- files ----------------------------------------------------------------------------
    async def ensure_defaults(self, conn: AsyncConnection) -> None:
        have = set((await conn.execute(select(t.config_files.c.family).where(t.config_files.c.live))).scalars())
        now = time.time_ns()
        for family, name in FILES.items():
            if family not in have:
                await conn.execute(
                    insert(t.config_files).values(
                        family=family,
                        name=name,
                        data=self._seal(family, DEFAULTS[family]),
                        live=True,
                        created_ns=now,
                        updated_ns=now,
                    )
                )

    async def live(self, conn: AsyncConnection, family: str) -> tuple[str, int]:
        c = t.config_files.c
        row = (await conn.execute(select(c.data, c.updated_ns).where(c.family == family, c.live))).first()
        return (self._open(row.data), row.updated_ns) if row else (DEFAULTS[family], 0)

    async def provided_contexts(self, conn: AsyncConnection, family: str) -> set[str]:
        """For extensions.conf: the contexts res_parking generates from the live res_parking.conf (its lots'
        contexts and park-dial), which an include may name; nothing for the other files."""
        if family != "dialplan":
            return set()
        text, _ = await self.live(conn, "park")
        try:
            return parking.context_names(conf.parse(text))
        except conf.ConfError:
            return set()

    async def files(self, conn: AsyncConnection, family: str) -> list[dict]:
        c = t.config_files.c
        rows = (
            await conn.execute(
                select(c.name, c.data).where(c.family == family).order_by(c.live.desc(), c.created_ns.desc())
            )
        ).all()
        return [{"data": self._shown(family, self._open(r.data)), "name": r.name} for r in rows]

    async def file(self, conn: AsyncConnection, family: str, name: str) -> dict:
        c = t.config_files.c
        row = (await conn.execute(select(c.name, c.data).where(c.family == family, c.name == name))).first()
        if row is None:
            raise NotFound("configuration", name)
        return {"data": self._shown(family, self._open(row.data)), "name": row.name}

    async def write(self, conn: AsyncConnection, family: str, text: str) -> Any:
        """Validate and store a new live text, keeping the old one as a timestamped backup.
        Returns the parsed result (what the engine will load)."""
        if not isinstance(text, str):
            raise Invalid("data", "must be the file's text")
        if len(text) > 512 * 1024:
            raise Invalid("data", "is too long (maximum is 512 KiB)")
        parsed = validate_text(family, text, await self.provided_contexts(conn, family))
        current, _ = await self.live(conn, family)
        if current == text:
            return parsed
        now = time.time_ns()
        c = t.config_files.c
        await conn.execute(
            insert(t.config_files).values(
                family=family,
                name=f"{FILES[family]}.{rfc3339_ns(now)}",
                data=self._seal(family, current),
                live=False,
                created_ns=now,
                updated_ns=now,
            )
        )
        res = await conn.execute(
            update(t.config_files)
            .where(c.family == family, c.live)
            .values(data=self._seal(family, text), updated_ns=now)
        )
        if not res.rowcount:
            await conn.execute(
                insert(t.config_files).values(
                    family=family,
                    name=FILES[family],
                    data=self._seal(family, text),
                    live=True,
                    created_ns=now,
                    updated_ns=now,
                )
            )
        return parsed

    async def put_file(self, conn: AsyncConnection, family: str, name: str, text: Any) -> None:
        if name != FILES[family]:
            await self.file(conn, family, name)  # 404 when unknown
            raise Invalid("name", f"backups are read-only; write {FILES[family]}")
        if family == "pjsip" and isinstance(text, str):
            text = restore_secrets(text, (await self.live(conn, family))[0])
        await self.write(conn, family, text)

    async def delete_file(self, conn: AsyncConnection, family: str, name: str) -> None:
        if name == FILES[family]:
            raise Invalid("name", f"the live {name} cannot be deleted")
        c = t.config_files.c
        res = await conn.execute(delete(t.config_files).where(c.family == family, c.name == name, ~c.live))
        if not res.rowcount:
            raise NotFound("configuration", name)

    # ---- sections -------------------------------------------------------------------------
    async def parsed(self, conn: AsyncConnection, family: str) -> conf.ConfFile:
        text, _ = await self.live(conn, family)
        return conf.parse(text)

    async def sections(self, conn: AsyncConnection, family: str, *, skip=("general",)) -> list[dict]:
        cf = await self.parsed(conn, family)
        return [{"data": section_data(cf, n), "name": n} for n in cf.names() if n not in skip]

    async def section(self, conn: AsyncConnection, family: str, name: str) -> dict:
        cf = await self.parsed(conn, family)
        if cf.get(name) is None or name == "general":
            raise NotFound("section", name)
        return {"data": section_data(cf, name), "name": name}

    @staticmethod
    def _check_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip():
            raise Invalid("name", "can't be blank")
        if any(ch in name for ch in "[]\r\n;") or len(name) > 80:
            raise Invalid("name", "may not contain [ ] ; or line breaks (at most 80 characters)")
        return name.strip()

    async def put_section(
        self,
        conn: AsyncConnection,
        family: str,
        name: str,
        options,
        *,
        create_only: bool = False,
        must_exist: bool = False,
    ) -> None:
        from switchboard.domain.errors import Conflict

        name = self._check_name(name)
        if name == "general" and family != "dialplan":
            raise Invalid("name", "general is the file's settings section, not a " + family)
        cf = await self.parsed(conn, family)
        exists = cf.get(name) is not None
        if create_only and exists:
            raise Conflict("name", "has already been taken")
        if must_exist and not exists:
            raise NotFound("section", name)
        try:
            text = cf.replace_section(name, options)
        except conf.ConfError as e:
            raise Invalid("data", str(e)) from None
        await self.write(conn, family, text)

    async def delete_section(self, conn: AsyncConnection, family: str, name: str) -> None:
        cf = await self.parsed(conn, family)
        if cf.get(name) is None or name == "general":
            raise NotFound("section", name)
        await self.write(conn, family, cf.remove_section(name))

    # ---- sdps: dialplan contexts ------------------------------------------------------------
    async def sdps(self, conn: AsyncConnection) -> list[dict]:
        text, _ = await self.live(conn, "dialplan")
        return dialplan.sdp_view(text)

    async def sdp(self, conn: AsyncConnection, name: str) -> dict:
        for item in await self.sdps(conn):
            if item["name"] == name:
                return item
        raise NotFound("dialplan context", name)

    async def put_sdp(self, conn: AsyncConnection, name: str, data: Any) -> None:
        if name in ("general", "globals"):
            raise Invalid("name", f"{name} is a settings section, not a context")
        if not isinstance(data, list):
            raise Invalid("data", 'must be a list of one-key objects like {"exten": "> 100,1,NoOp()"}')
        try:
            lines = dialplan.sdp_lines(data)
        except conf.ConfError as e:
            raise Invalid("data", str(e)) from None
        await self.put_section(conn, "dialplan", name, lines)

    async def delete_sdp(self, conn: AsyncConnection, name: str) -> None:
        await self.sdp(conn, name)
        await self.delete_section(conn, "dialplan", name)

    # ---- async dialplan (adpma / adp) --------------------------------------------------------
    _ma = [t.adpmas.c[n] for n in ("uuid", "name", "detail", "created_ns", "updated_ns")]

    async def adpmas(self, conn: AsyncConnection) -> list[dict]:
        rows = (await conn.execute(select(*self._ma).order_by(t.adpmas.c.id))).all()
        return [repos.plain(r) for r in rows]

    async def adpma(self, conn: AsyncConnection, ident: str) -> dict:
        row = (await conn.execute(select(*self._ma).where(t.adpmas.c.uuid == ident))).first()
        if row is None:
            raise NotFound("adpma", ident)
        return repos.plain(row)

    @staticmethod
    def _texts(data: dict, keys) -> dict:
        out = {}
        for k in keys:
            if k in data:
                v = data[k]
                if v is not None and not isinstance(v, str):
                    raise Invalid(k, "must be a string")
                if v is not None and len(v) > 4000:
                    raise Invalid(k, "is too long (maximum is 4000 characters)")
                out[k] = v
        return out

    async def create_adpma(self, conn: AsyncConnection, data: dict) -> dict:
        values = self._texts(data, ("name", "detail"))
        new = str(uuidlib.uuid4())
        await conn.execute(insert(t.adpmas).values(uuid=new, created_ns=time.time_ns(), updated_ns=None, **values))
        return await self.adpma(conn, new)

    async def update_adpma(self, conn: AsyncConnection, ident: str, data: dict) -> dict:
        await self.adpma(conn, ident)
        values = self._texts(data, ("name", "detail"))
        if values:
            await conn.execute(
                update(t.adpmas).where(t.adpmas.c.uuid == ident).values(updated_ns=time.time_ns(), **values)
            )
        return await self.adpma(conn, ident)

    async def delete_adpma(self, conn: AsyncConnection, ident: str) -> None:
        row = (await conn.execute(select(t.adpmas.c.id).where(t.adpmas.c.uuid == ident))).first()
        if row is None:
            raise NotFound("adpma", ident)
        await conn.execute(delete(t.adps).where(t.adps.c.adpma_id == row.id))
        await conn.execute(delete(t.adpmas).where(t.adpmas.c.id == row.id))

    def _adp_query(self):
        a = t.adps.c
        return (
            select(
                a.uuid,
                t.adpmas.c.uuid.label("dpma_uuid"),
                a.sequence,
                a.name,
                a.detail,
                a.command,
                a.created_ns,
                a.updated_ns,
            )
            .join(t.adpmas, t.adpmas.c.id == a.adpma_id)
            .order_by(t.adpmas.c.id, a.sequence, a.id)
        )

    async def adps(self, conn: AsyncConnection) -> list[dict]:
        return [repos.plain(r) for r in (await conn.execute(self._adp_query())).all()]

    async def adp(self, conn: AsyncConnection, ident: str) -> dict:
        row = (await conn.execute(self._adp_query().where(t.adps.c.uuid == ident))).first()
        if row is None:
            raise NotFound("adp", ident)
        return repos.plain(row)

    async def _adp_values(self, conn: AsyncConnection, data: dict, *, create: bool) -> dict:
        values = self._texts(data, ("name", "detail", "command"))
        if "command" in values and values["command"] and "\n" in values["command"]:
            raise Invalid("command", "must be one dialplan application call")
        if values.get("command"):
            try:
                dialplan.validate(f"[x]\nexten => s,1,{values['command']}\n")
            except conf.ConfError as e:
                raise Invalid("command", f"is not a valid dialplan application: {e.reason}") from None
        if "sequence" in data or create:
            seq = data.get("sequence", 0 if not create else None)
            if seq is None and create:
                raise Invalid("sequence", "can't be blank")
            if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= 2**31 - 1:
                raise Invalid("sequence", "must be a non-negative integer")
            values["sequence"] = seq
        if "dpma_uuid" in data or create:
            ref = data.get("dpma_uuid")
            row = None
            if isinstance(ref, str):
                row = (await conn.execute(select(t.adpmas.c.id).where(t.adpmas.c.uuid == ref))).first()
            if row is None:
                raise Invalid("dpma_uuid", "must name an existing adpma")
            values["adpma_id"] = row.id
        return values

    async def create_adp(self, conn: AsyncConnection, data: dict) -> dict:
        values = await self._adp_values(conn, data, create=True)
        new = str(uuidlib.uuid4())
        await conn.execute(insert(t.adps).values(uuid=new, created_ns=time.time_ns(), updated_ns=None, **values))
        return await self.adp(conn, new)

    async def update_adp(self, conn: AsyncConnection, ident: str, data: dict) -> dict:
        await self.adp(conn, ident)
        if "uuid" in data and data["uuid"] != ident:
            raise Invalid("uuid", "does not match the adp in the path")
        values = await self._adp_values(conn, data, create=False)
        if values:
            await conn.execute(update(t.adps).where(t.adps.c.uuid == ident).values(updated_ns=time.time_ns(), **values))
        return await self.adp(conn, ident)

    async def delete_adp(self, conn: AsyncConnection, ident: str) -> None:
        res = await conn.execute(delete(t.adps).where(t.adps.c.uuid == ident))
        if not res.rowcount:
            raise NotFound("adp", ident)
