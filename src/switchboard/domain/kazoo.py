"""The KAZOO support model: accounts, and the JSON documents KAZOO keeps for a mobile carrier
(MVNO) business — devices, subscriptions, port-in requests, cluster documents and the routing
documents (customer clusters, carrier SBCs, media servers).

Documents are stored as JSON in `kazoo_documents` (kind + id), with the lookup keys (mdn, esn,
sim, the device's SIP username) kept in columns beside the body. Everything carrier-side goes
through `switchboard.carrier.adapter.CarrierClient`; this module never speaks the carrier's wire
format.

Choices where the spec is silent (see also api/kazoo):
- **Ids**: generated ids are 32 hex (uuid4). Ids a client names in a path (clusters, customer
  clusters) are 1-64 characters of letters, digits, `_`, `-`, `.`.
- **MDNs** are stored in E.164: a 10-digit number is a North American one (+1 added), other digit
  strings get a `+`. `/phone_numbers/5550001111/device` and `/phone_numbers/+15550001111/device` name
  the same number.
- **Secrets**: a device's `voice.sip.password` and a cluster's `api_key` are encrypted at rest
  (SecretBox) and shown as "********", like every other secret of every dialect; "********" sent
  back keeps the stored value. (The spec's cluster example shows `{ENCRYPTED_API_KEY}`: a
  placeholder, which we fill with the mask rather than ciphertext, so that nothing derived from the
  key leaves the server.)
- **Timestamps** shown in documents (`activation_date`, `last_manual_update`, `pvt_created`,
  `pvt_modified`) are KAZOO's Gregorian seconds (seconds since 0000-01-01).
- **PATCH**: routing documents are deep-merged (the spec's customer-cluster example keeps the
  sibling zones); device and subscription PATCHes take the spec's `recursive` flag (default
  false): false merges top-level keys only, true merges deeply. `null` deletes a key either way.
- **One device per MDN** and per ESN, one subscription per MDN/ESN/SIM (across accounts): an
  import of a number that is already in the database is 409.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.entities import utcnow
from switchboard.domain.errors import Conflict, Forbidden, Invalid, NotFound
from switchboard.domain.security import SecretBox
from switchboard.domain.validation import e164
from switchboard.store import tables as t

GREGORIAN_OFFSET = 62167219200  # seconds from 0000-01-01 to 1970-01-01 (KAZOO's calendar)
MASK = "********"
DEVICE, SUBSCRIPTION, CLUSTER, PORT = "device", "subscription", "cluster", "port_in"
CUSTOMER_CLUSTER, CARRIER_SBC, MEDIA_SERVER = "customer_cluster", "carrier_sbc", "media_server"
ROUTING_KINDS = (CUSTOMER_CLUSTER, CARRIER_SBC, MEDIA_SERVER)
PORT_STATES = ("unconfirmed", "submitted", "pending", "scheduled", "completed", "rejected", "canceled")
DEFAULT_CAPS = {"caps": {"blocking": {"cap": 0}, "throttling": {"cap": 0, "rate": "256k"}}}
MAX_MONTHS = 36
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_MONTH = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")


def gregorian(ts: float | None = None) -> int:
    return int(time.time() if ts is None else ts) + GREGORIAN_OFFSET


def new_id() -> str:
    return uuid.uuid4().hex


class KazooInvalid(Invalid):
    """Validation errors with KAZOO's rule names: problems are (field path, rule, message)."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.rules = [(f, r, m) for f, r, m in problems]
        super().__init__(problems=[(f, m) for f, _, m in problems])


def invalid(field: str, rule: str, message: str) -> KazooInvalid:
    return KazooInvalid([(field, rule, message)])


class CarrierMissing(NotFound):
    """The carrier has no subscription for what was asked (404, bad_identifier)."""

    def __init__(self, what: str):
        super().__init__("carrier subscription", what)


# ---- small pure helpers ----------------------------------------------------------------------------
def normalize_mdn(value: Any, field: str = "mdn") -> str:
    """An MDN in E.164 (+ and digits); formatting characters are dropped."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "type", "must be a phone number (string)")
    number = e164(value)
    if number is None:
        raise invalid(field, "pattern", "must be a phone number: 7 to 15 digits, optionally with a leading +")
    return number


def check_id(value: str, kind: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise NotFound(kind, value)
    return value


def month_range(frm: str | None, to: str | None, month: str | None) -> list[str]:
    """The months of a usage report, oldest first. `month` overrides from/to; both default to
    the current month (UTC)."""
    now = datetime.now(UTC).strftime("%Y%m")
    if month is not None:
        frm = to = month
    frm, to = frm or now, to or now
    for name, v in (("from", frm), ("to", to)):
        if not _MONTH.match(v):
            raise invalid(name, "pattern", "must be a month as YYYYMM")
    if frm > to:
        raise invalid("from", "maximum", "must not be after to")
    y, m = int(frm[:4]), int(frm[4:])
    out = []
    while f"{y:04d}{m:02d}" <= to:
        out.append(f"{y:04d}{m:02d}")
        if len(out) > MAX_MONTHS:
            raise invalid("from", "range", f"a report covers at most {MAX_MONTHS} months")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def merge(base: dict, patch: dict, *, deep: bool = True) -> dict:
    """KAZOO PATCH: keys of `patch` replace those of `base`; `null` deletes; objects merge
    recursively when `deep` (else replace). Returns a new dict."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif deep and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v, deep=True)
        else:
            out[k] = copy.deepcopy(v)
    return out


def public(doc: dict) -> dict:
    """A document as clients see it: without private (`pvt_`, `_`) keys."""
    return {k: v for k, v in doc.items() if not k.startswith(("pvt_", "_"))}


def _is_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class Problems:
    """Collects (field, rule, message) while validating a document."""

    def __init__(self):
        self.items: list[tuple[str, str, str]] = []

    def add(self, field: str, rule: str, message: str) -> None:
        self.items.append((field, rule, message))

    def raise_any(self) -> None:
        if self.items:
            raise KazooInvalid(self.items)

    def string(self, doc: dict, key: str, path: str, *, required: bool = False, max_len: int = 255) -> None:
        v = doc.get(key)
        if v is None:
            if required:
                self.add(path, "required", "Field is required but missing")
        elif not isinstance(v, str):
            self.add(path, "type", "Value is not of type 'string'")
        elif required and not v.strip():
            self.add(path, "minLength", "Value must be at least 1 character")
        elif len(v) > max_len:
            self.add(path, "maxLength", f"Value must be at most {max_len} characters")

    def obj(self, doc: dict, key: str, path: str) -> dict | None:
        v = doc.get(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            self.add(path, "type", "Value is not of type 'object'")
            return None
        return v

    def ips(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.add(path, "type", "Value is not of type 'array'")
            return
        for i, ip in enumerate(value):
            if not _is_ip(ip):
                self.add(f"{path}.{i}", "format", "Value is not an IP address")

    def boolean(self, doc: dict, key: str, path: str) -> None:
        if key in doc and not isinstance(doc[key], bool):
            self.add(path, "type", "Value is not of type 'boolean'")


_RATE = re.compile(r"^\d+(\.\d+)?[kKmMgG]?$")


def _caps(p: Problems, value: Any, path: str) -> None:
    """Usage policies (`data.caps.blocking.cap`, `throttling.rate`, ... at any depth): a `cap` is a
    number of bytes (integer >= 0), a `rate` a bit rate like "256k"."""
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        where = f"{path}.{k}"
        if k == "cap" and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            p.add(where, "minimum", "Value must be a whole number of bytes, 0 or more")
        elif k == "rate" and not (isinstance(v, str) and _RATE.match(v)):
            p.add(where, "pattern", "Value must be a bit rate such as 64k, 256k or 1M")
        elif isinstance(v, dict):
            _caps(p, v, where)


def _location(p: Problems, doc: dict) -> None:
    loc = p.obj(doc, "location", "location")
    if loc:
        for k in ("zone", "state", "city"):
            p.string(loc, k, f"location.{k}")


def _regex(value: Any) -> bool:
    """number_formatting patterns are written /.../ (KAZOO's Erlang re, PCRE-like)."""
    if not isinstance(value, str):
        return False
    text = value[1:-1] if len(value) >= 2 and value[0] == "/" and value[-1] == "/" else value
    try:
        re.compile(text)
    except re.error:
        return False
    return True


def validate_routing(kind: str, doc: dict) -> None:
    """Shape checks of a routing document (references are checked against the database apart)."""
    p = Problems()
    p.string(doc, "name", "name", required=True)
    if kind == CUSTOMER_CLUSTER:
        p.string(doc, "owner", "owner")
        ips = p.obj(doc, "ips", "ips")
        for direction in ("inbound", "outbound"):
            zones = p.obj(ips or {}, direction, f"ips.{direction}")
            for zone, lst in (zones or {}).items():
                p.ips(lst, f"ips.{direction}.{zone}")
        p.boolean(doc, "randomize_routing", "randomize_routing")
    elif kind == CARRIER_SBC:
        p.string(doc, "carrier", "carrier")
        _location(p, doc)
        if "ips" in doc:
            p.ips(doc["ips"], "ips")
        p.string(doc, "mobile_media_server", "mobile_media_server", max_len=64)
        dirs = doc.get("call_directions")
        if dirs is not None:
            if not isinstance(dirs, list):
                p.add("call_directions", "type", "Value is not of type 'array'")
            else:
                for i, d in enumerate(dirs):
                    if not isinstance(d, dict):
                        p.add(f"call_directions.{i}", "type", "Value is not of type 'object'")
                        continue
                    p.string(d, "direction", f"call_directions.{i}.direction", required=True)
                    hdrs = p.obj(d, "headers", f"call_directions.{i}.headers")
                    for hk, hv in (hdrs or {}).items():
                        if not isinstance(hv, str):
                            p.add(f"call_directions.{i}.headers.{hk}", "type", "Value is not of type 'string'")
        fmt = p.obj(doc, "number_formatting", "number_formatting")
        for direction, rules in (fmt or {}).items():
            if not isinstance(rules, dict):
                p.add(f"number_formatting.{direction}", "type", "Value is not of type 'object'")
                continue
            for target, rule in rules.items():
                path = f"number_formatting.{direction}.{target}"
                if not isinstance(rule, dict):
                    p.add(path, "type", "Value is not of type 'object'")
                    continue
                if not _regex(rule.get("pattern")):
                    p.add(f"{path}.pattern", "format", "Value is not a valid regular expression")
                p.string(rule, "replace", f"{path}.replace")
    elif kind == MEDIA_SERVER:
        _location(p, doc)
        ifaces = p.obj(doc, "interfaces", "interfaces")
        if ifaces:
            for k, v in ifaces.items():
                if isinstance(v, dict):
                    for ck, cv in v.items():
                        if not isinstance(cv, str):
                            p.add(f"interfaces.{k}.{ck}", "type", "Value is not of type 'string'")
                elif not isinstance(v, str):
                    p.add(f"interfaces.{k}", "type", "Value is not of type 'string' or 'object'")
        prio = p.obj(doc, "carrier_sbc_priority", "carrier_sbc_priority")
        for carrier, ids in (prio or {}).items():
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                p.add(f"carrier_sbc_priority.{carrier}", "type", "Value is not an array of SBC ids")
        if "top_ips" in doc:
            p.ips(doc["top_ips"], "top_ips")
    p.raise_any()


# ---- storage -------------------------------------------------------------------------------------------
@dataclass
class Doc:
    kind: str
    id: str
    account_id: str | None
    body: dict
    created_at: datetime
    modified_at: datetime


_D = t.kazoo_documents.c


def _row(r) -> Doc:
    return Doc(r.kind, r.id, r.account_id, orjson.loads(r.body), r.created_at, r.modified_at)


def _keys(kind: str, body: dict) -> dict:
    """The lookup columns of a document's body."""
    if kind == DEVICE:
        sub = body.get("subscription") if isinstance(body.get("subscription"), dict) else {}
        sip = (body.get("voice") or {}).get("sip") if isinstance(body.get("voice"), dict) else None
        user = sip.get("username") if isinstance(sip, dict) and isinstance(sip.get("username"), str) else None
        return {"mdn": _str(sub.get("mdn")), "esn": _str(sub.get("esn")), "sim": _str(sub.get("sim")),
                "sip_username": user or None}
    if kind in (SUBSCRIPTION, PORT):
        return {"mdn": _str(body.get("mdn")), "esn": _str(body.get("esn")), "sim": _str(body.get("sim")),
                "sip_username": None}
    return {"mdn": None, "esn": None, "sim": None, "sip_username": None}


def _str(v: Any) -> str | None:
    return v[:64] if isinstance(v, str) and v else None


async def get_doc(conn: AsyncConnection, kind: str, ident: str, *, account_id: str | None = None) -> Doc:
    q = select(t.kazoo_documents).where(_D.kind == kind, _D.id == ident)
    if account_id is not None:
        q = q.where(_D.account_id == account_id)
    r = (await conn.execute(q)).first()
    if r is None:
        raise NotFound(kind, ident)
    return _row(r)


async def find_docs(conn: AsyncConnection, kind: str, *where, limit: int | None = None) -> list[Doc]:
    q = select(t.kazoo_documents).where(_D.kind == kind, *where).order_by(_D.created_at, _D.id)
    if limit:
        q = q.limit(limit)
    return [_row(r) for r in (await conn.execute(q)).all()]


async def _insert(conn: AsyncConnection, kind: str, ident: str, body: dict, account_id: str | None) -> Doc:
    now = utcnow()
    await conn.execute(insert(t.kazoo_documents).values(
        kind=kind, id=ident, account_id=account_id, body=orjson.dumps(body).decode(),
        created_at=now, modified_at=now, **_keys(kind, body)))
    return Doc(kind, ident, account_id, body, now, now)


async def _save(conn: AsyncConnection, doc: Doc) -> Doc:
    doc.modified_at = utcnow()
    await conn.execute(update(t.kazoo_documents).where(_D.kind == doc.kind, _D.id == doc.id).values(
        account_id=doc.account_id, body=orjson.dumps(doc.body).decode(), modified_at=doc.modified_at,
        **_keys(doc.kind, doc.body)))
    return doc


async def _delete(conn: AsyncConnection, doc: Doc) -> None:
    await conn.execute(delete(t.kazoo_documents).where(_D.kind == doc.kind, _D.id == doc.id))


# ---- the service --------------------------------------------------------------------------------------
class KazooService:
    """Everything the kazoo dialect does, on a connection the caller's transaction owns."""

    def __init__(self, box: SecretBox):
        self.box = box

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
        row = {"id": new_id(), "name": name, "name_key": name.lower(), "realm": data.get("realm"),
               "created_at": now, "updated_at": now}
        await conn.execute(insert(t.kazoo_accounts).values(**row))
        return self.account_view(row)

    @staticmethod
    def account_view(row) -> dict:
        m = row if isinstance(row, dict) else row._mapping
        return {"id": m["id"], "name": m["name"], "realm": m["realm"],
                "created": gregorian(m["created_at"].replace(tzinfo=UTC).timestamp())}

    async def account(self, conn: AsyncConnection, account_id: str) -> dict:
        if not isinstance(account_id, str) or not _HEX32.match(account_id):
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

    # ---- clusters ------------------------------------------------------------------------------------
    async def ensure_master_cluster(self, conn: AsyncConnection, cluster_id: str | None = None,
                                    api_url: str | None = None, api_key: str | None = None) -> Doc:
        """The master cluster document exists from the first start (its id configurable); a
        configured carrier URL/key is applied to it on every start."""
        found = await find_docs(conn, CLUSTER, _D.account_id.is_(None))
        master = next((d for d in found if d.body.get("pvt_master")), None)
        if master is None:
            ident = cluster_id or new_id()
            master = await _insert(conn, CLUSTER, ident, {"id": ident, "mvno_id": None, "api_url": None,
                                                          "api_key": None, "hosted_billing_account_id": None,
                                                          "pvt_master": True}, None)
        changed = False
        if api_url:
            master.body["api_url"], changed = api_url, True
        if api_key:
            master.body["api_key"], changed = self.box.encrypt(api_key), True
        return await _save(conn, master) if changed else master

    async def master_cluster(self, conn: AsyncConnection) -> Doc:
        found = [d for d in await find_docs(conn, CLUSTER) if d.body.get("pvt_master")]
        if not found:
            raise NotFound(CLUSTER, "master")
        return found[0]

    async def cluster(self, conn: AsyncConnection, cluster_id: str | None) -> Doc:
        if cluster_id is None:
            return await self.master_cluster(conn)
        return await get_doc(conn, CLUSTER, check_id(cluster_id, CLUSTER))

    @staticmethod
    def cluster_view(doc: Doc) -> dict:
        out = {"id": doc.id, **{k: doc.body.get(k) for k in ("mvno_id", "api_url", "hosted_billing_account_id")}}
        out["api_key"] = MASK if doc.body.get("api_key") else None
        for k, v in public(doc.body).items():
            out.setdefault(k, v)
        out["master"] = bool(doc.body.get("pvt_master"))
        return out

    def carrier_credentials(self, doc: Doc) -> tuple[str, str] | None:
        url, key = doc.body.get("api_url"), doc.body.get("api_key")
        if not url or not key:
            return None
        return url, self.box.decrypt(key)

    async def put_cluster(self, conn: AsyncConnection, cluster_id: str, data: dict) -> tuple[dict, bool]:
        """Create the cluster document, or replace it (the spec has no other way to change one)."""
        if not _ID.match(cluster_id):
            raise invalid("id", "pattern", "must be 1-64 letters, digits, '_', '-' or '.'")
        p = Problems()
        p.string(data, "mvno_id", "mvno_id", required=True)
        p.string(data, "api_url", "api_url", required=True, max_len=2048)
        p.string(data, "api_key", "api_key", required=True, max_len=1024)
        p.string(data, "hosted_billing_account_id", "hosted_billing_account_id", max_len=32)
        url = data.get("api_url")
        if isinstance(url, str) and not re.match(r"^https?://[^\s/]+", url):
            p.add("api_url", "format", "must be an http:// or https:// URL")
        p.raise_any()
        billing = data.get("hosted_billing_account_id")
        if billing:
            try:
                await self.account(conn, billing)
            except NotFound:
                raise invalid("hosted_billing_account_id", "not_found", "names no account") from None
        try:
            existing = await get_doc(conn, CLUSTER, cluster_id)
        except NotFound:
            existing = None
        key = data["api_key"]
        if key == MASK:  # the mask we showed, sent back: keep the key
            if existing is None or not existing.body.get("api_key"):
                raise invalid("api_key", "required", "no key is stored yet: send the key itself")
            enc = existing.body["api_key"]
        else:
            enc = self.box.encrypt(key)
        body = {k: v for k, v in data.items() if not k.startswith(("pvt_", "_")) and k != "id"}
        body.update(id=cluster_id, api_url=url.rstrip("/"), api_key=enc)
        body.setdefault("hosted_billing_account_id", None)
        if existing is None:
            return self.cluster_view(await _insert(conn, CLUSTER, cluster_id, body, None)), True
        body["pvt_master"] = existing.body.get("pvt_master", False)
        existing.body = body
        return self.cluster_view(await _save(conn, existing)), False

    async def delete_cluster(self, conn: AsyncConnection, cluster_id: str) -> dict:
        doc = await get_doc(conn, CLUSTER, check_id(cluster_id, CLUSTER))
        if doc.body.get("pvt_master"):
            raise Forbidden("the master cluster cannot be deleted")
        for d in await find_docs(conn, SUBSCRIPTION):
            if d.body.get("pvt_cluster_id") == cluster_id:
                raise Conflict("id", f"the cluster holds subscriptions (e.g. {d.id}); move them first")
        await _delete(conn, doc)
        await conn.execute(delete(t.kazoo_port_cursors).where(t.kazoo_port_cursors.c.cluster_id == cluster_id))
        return self.cluster_view(doc)

    async def clusters(self, conn: AsyncConnection) -> list[dict]:
        return [self.cluster_view(d) for d in await find_docs(conn, CLUSTER)]

    # ---- routing documents ------------------------------------------------------------------------
    @staticmethod
    def routing_view(doc: Doc) -> dict:
        return {"id": doc.id, **public({k: v for k, v in doc.body.items() if k != "id"})}

    @staticmethod
    def routing_summary(doc: Doc) -> dict:
        b = doc.body
        keys = {CUSTOMER_CLUSTER: ("name", "owner"),
                CARRIER_SBC: ("name", "carrier", "location", "mobile_media_server"),
                MEDIA_SERVER: ("name", "location", "carrier_sbc_priority")}[doc.kind]
        return {"id": doc.id, **{k: b[k] for k in keys if k in b}}

    async def _check_refs(self, conn: AsyncConnection, kind: str, body: dict) -> None:
        if kind == CARRIER_SBC and body.get("mobile_media_server"):
            try:
                await get_doc(conn, MEDIA_SERVER, check_id(body["mobile_media_server"], MEDIA_SERVER))
            except NotFound:
                raise invalid("mobile_media_server", "not_found", "names no media server") from None
        if kind == MEDIA_SERVER:
            problems = Problems()
            for carrier, ids in (body.get("carrier_sbc_priority") or {}).items():
                for i, sbc in enumerate(ids):
                    try:
                        await get_doc(conn, CARRIER_SBC, check_id(sbc, CARRIER_SBC))
                    except NotFound:
                        problems.add(f"carrier_sbc_priority.{carrier}.{i}", "not_found", f"{sbc} names no carrier SBC")
            problems.raise_any()

    async def _drop_references(self, conn: AsyncConnection, doc: Doc) -> None:
        """Before `doc` goes: remove what names it from the other routing documents (an SBC's
        `mobile_media_server` naming a deleted media server is removed; a deleted SBC leaves every
        media server's `carrier_sbc_priority` lists). Documents that name each other could otherwise
        never be deleted, and a reference to nothing would be reported as valid."""
        if doc.kind == MEDIA_SERVER:
            for d in await find_docs(conn, CARRIER_SBC):
                if d.body.get("mobile_media_server") == doc.id:
                    d.body = {k: v for k, v in d.body.items() if k != "mobile_media_server"}
                    await _save(conn, d)
        elif doc.kind == CARRIER_SBC:
            for d in await find_docs(conn, MEDIA_SERVER):
                priority = d.body.get("carrier_sbc_priority")
                if not isinstance(priority, dict):
                    continue
                kept = {c: [i for i in ids if i != doc.id] if isinstance(ids, list) else ids
                        for c, ids in priority.items()}
                if kept != priority:
                    d.body = {**d.body, "carrier_sbc_priority": kept}
                    await _save(conn, d)

    @staticmethod
    def _clean(data: dict) -> dict:
        return {k: v for k, v in data.items() if k != "id" and not k.startswith(("pvt_", "_"))}

    async def routing_list(self, conn: AsyncConnection, kind: str) -> list[dict]:
        return [self.routing_summary(d) for d in await find_docs(conn, kind)]

    async def routing_get(self, conn: AsyncConnection, kind: str, ident: str) -> dict:
        return self.routing_view(await get_doc(conn, kind, check_id(ident, kind)))

    async def routing_create(self, conn: AsyncConnection, kind: str, data: dict, ident: str | None = None) -> dict:
        if ident is None:
            ident = new_id()
        elif not _ID.match(ident):
            raise invalid("id", "pattern", "must be 1-64 letters, digits, '_', '-' or '.'")
        body = self._clean(data)
        validate_routing(kind, body)
        await self._check_refs(conn, kind, body)
        try:
            await get_doc(conn, kind, ident)
        except NotFound:
            pass
        else:
            raise Conflict("id", f"a {kind} with id {ident} exists; POST replaces it, PATCH changes it")
        return self.routing_view(await _insert(conn, kind, ident, body, None))

    async def routing_replace(self, conn: AsyncConnection, kind: str, ident: str, data: dict) -> dict:
        doc = await get_doc(conn, kind, check_id(ident, kind))
        body = self._clean(data)
        validate_routing(kind, body)
        await self._check_refs(conn, kind, body)
        doc.body = body
        return self.routing_view(await _save(conn, doc))

    async def routing_patch(self, conn: AsyncConnection, kind: str, ident: str, data: dict) -> dict:
        doc = await get_doc(conn, kind, check_id(ident, kind))
        body = merge(doc.body, self._clean(data), deep=True)
        validate_routing(kind, body)
        await self._check_refs(conn, kind, body)
        doc.body = body
        return self.routing_view(await _save(conn, doc))

    async def routing_delete(self, conn: AsyncConnection, kind: str, ident: str) -> dict:
        doc = await get_doc(conn, kind, check_id(ident, kind))
        await self._drop_references(conn, doc)
        await _delete(conn, doc)
        return self.routing_view(doc)

    # ---- devices ---------------------------------------------------------------------------------------
    def device_view(self, doc: Doc) -> dict:
        b = copy.deepcopy(doc.body)
        enc = b.get("pvt_sip_password")
        out = {"id": doc.id, **public({k: v for k, v in b.items() if k != "id"})}
        sip = (out.get("voice") or {}).get("sip") if isinstance(out.get("voice"), dict) else None
        if isinstance(sip, dict) and enc:
            sip["password"] = MASK
        return out

    def device_password(self, doc: Doc) -> str | None:
        enc = doc.body.get("pvt_sip_password")
        return self.box.decrypt(enc) if enc else None

    async def sip_accounts(self, conn: AsyncConnection) -> list[dict]:
        """The devices' `voice.sip` accounts the registrar accepts: username, password, device_id, account_id,
        realm. A device without a password is left out (it never registers unauthenticated)."""
        out = []
        for doc in await find_docs(conn, DEVICE, _D.sip_username.is_not(None)):
            password = self.device_password(doc)
            if password is not None:
                sip = (doc.body.get("voice") or {}).get("sip") or {}
                out.append({"username": _keys(DEVICE, doc.body)["sip_username"], "password": password,
                            "device_id": doc.id, "account_id": doc.account_id, "realm": sip.get("realm") or None})
        return out

    def _device_body(self, body: dict, old: dict | None) -> dict:
        """Validate a device body and move its SIP password into the encrypted private key."""
        p = Problems()
        p.string(body, "name", "name", max_len=128)
        voice = p.obj(body, "voice", "voice")
        sip = p.obj(voice or {}, "sip", "voice.sip")
        if sip is not None:
            p.string(sip, "username", "voice.sip.username", required=True, max_len=128)
            p.string(sip, "realm", "voice.sip.realm")
            p.string(sip, "password", "voice.sip.password", max_len=128)
            user = sip.get("username")
            if isinstance(user, str) and not re.match(r"^[A-Za-z0-9_.!~*'()&=+$,;?/-]+$", user):
                p.add("voice.sip.username", "pattern", "must be a SIP user name (no spaces, '@' or ':')")
        _caps(p, p.obj(body, "data", "data"), "data")
        p.obj(body, "model", "model")
        sub = p.obj(body, "subscription", "subscription")
        p.raise_any()
        if sub and sub.get("mdn") is not None:
            sub["mdn"] = normalize_mdn(sub["mdn"], "subscription.mdn")
        # password: a new value is encrypted; "********" or no password keeps the stored one; ""
        # removes it
        out = copy.deepcopy(body)
        old_enc = (old or {}).get("pvt_sip_password")
        if sip is not None:
            pw = out["voice"]["sip"].pop("password", None)
            if pw == MASK or (pw is None and old_enc):
                if pw == MASK and not old_enc:
                    raise invalid("voice.sip.password", "required", "no password is stored to keep")
                out["pvt_sip_password"] = old_enc
            elif pw:
                out["pvt_sip_password"] = self.box.encrypt(pw)
            else:
                out.pop("pvt_sip_password", None)
        else:
            out.pop("pvt_sip_password", None)
        return out

    def check_device_input(self, data: dict) -> None:
        """Validate what a client gives for a new device before the carrier is asked anything."""
        self._device_body({k: v for k, v in data.items() if k not in ("id", "esn", "mdn", "sim")}, None)

    async def _unique(self, conn: AsyncConnection, kind: str, *, mdn=None, esn=None, sim=None,
                      sip_username=None, exclude: str | None = None) -> None:
        for col, value, label in ((_D.mdn, mdn, "mdn"), (_D.esn, esn, "esn"), (_D.sim, sim, "sim"),
                                  (_D.sip_username, sip_username, "voice.sip.username")):
            if not value:
                continue
            where = [col == value] if label == "voice.sip.username" else [_D.kind == kind, col == value]
            q = select(_D.id, _D.kind, _D.account_id).where(*where)
            for r in (await conn.execute(q)).all():
                if r.id != exclude:
                    raise Conflict(label, f"{value} already belongs to {r.kind} {r.id} (account {r.account_id})")

    async def device(self, conn: AsyncConnection, account_id: str, device_id: str) -> Doc:
        await self.account(conn, account_id)
        return await get_doc(conn, DEVICE, check_id(device_id, DEVICE), account_id=account_id)

    async def device_by_mdn(self, conn: AsyncConnection, mdn: str) -> Doc:
        try:
            number = normalize_mdn(mdn)
        except Invalid:
            raise NotFound("phone_number", mdn) from None
        found = await find_docs(conn, DEVICE, _D.mdn == number, limit=1)
        if not found:
            raise NotFound("phone_number", mdn)
        return found[0]

    @staticmethod
    def subscription_of(record: dict, *, csa_flat: bool = False) -> dict:
        """The carrier record as a device's `subscription`."""
        out = {"esn": record.get("esn"), "mdn": record.get("mdn"), "sim": record.get("sim"),
               "imsi": record.get("imsi"), "plan": record.get("plan"), "features": list(record.get("features") or []),
               "carrier_data": dict(record.get("carrier_data") or {})}
        if record.get("activation_date") is not None:
            out["activation_date"] = record["activation_date"]
        if csa_flat and out["carrier_data"].get("csa") is not None:
            out["csa"] = out["carrier_data"]["csa"]  # the spec's import example shows csa here
        return out

    async def import_device(self, conn: AsyncConnection, account_id: str, data: dict, record: dict,
                            carrier: str, cluster_id: str) -> Doc:
        """A device (and its subscription document) for an active carrier subscription."""
        await self.account(conn, account_id)
        body = {k: v for k, v in data.items() if k not in ("id", "esn", "mdn", "sim") and not k.startswith("pvt_")}
        body["subscription"] = self.subscription_of(record, csa_flat=True)
        body["model"] = record.get("model") or body.get("model") or {}
        body.setdefault("data", copy.deepcopy(DEFAULT_CAPS))
        body["carrier"] = carrier
        body = self._device_body(body, None)
        keys = _keys(DEVICE, body)
        await self._unique(conn, DEVICE, mdn=keys["mdn"], esn=keys["esn"], sip_username=keys["sip_username"])
        sub = await self.subscription_in_db(conn, record)
        if sub is not None and sub.account_id != account_id:
            raise Conflict("mdn", f"{record.get('mdn')} is a subscription of account {sub.account_id}")
        device_id = new_id()
        if sub is None:
            sub = await self._insert_subscription(conn, account_id, record, carrier, cluster_id)
        body["pvt_subscription_id"] = sub.id
        sub.body["pvt_device_id"] = device_id
        await _save(conn, sub)
        return await _insert(conn, DEVICE, device_id, body, account_id)

    async def patch_device(self, conn: AsyncConnection, account_id: str, device_id: str, data: dict,
                           *, recursive: bool) -> Doc:
        doc = await self.device(conn, account_id, device_id)
        patch = {k: v for k, v in data.items() if k != "id" and not k.startswith(("pvt_", "_"))}
        body = self._device_body(merge(doc.body, patch, deep=recursive), doc.body)
        props = body.get("additional_properties") if isinstance(body.get("additional_properties"), dict) else {}
        body["additional_properties"] = {**props, "last_manual_update": gregorian()}
        keys = _keys(DEVICE, body)
        await self._unique(conn, DEVICE, mdn=keys["mdn"], esn=keys["esn"], sip_username=keys["sip_username"],
                           exclude=doc.id)
        doc.body = body
        return await _save(conn, doc)

    # ---- subscriptions ---------------------------------------------------------------------------------
    @staticmethod
    def subscription_view(doc: Doc) -> dict:
        b = doc.body
        out = {"id": doc.id}
        for k in ("esn", "sim", "mdn", "imsi", "plan", "features", "suspended", "carrier_data"):
            out[k] = b.get(k)
        out["carrier_name"] = b.get("pvt_carrier_name")
        for k, v in public(b).items():
            out.setdefault(k, v)
        return out

    @staticmethod
    def subscription_document(doc: Doc) -> dict:
        """The full document (private fields included) as the lookup shows it."""
        b = {k: v for k, v in doc.body.items() if k != "id"}
        b["pvt_created"] = gregorian(doc.created_at.replace(tzinfo=UTC).timestamp())
        b["pvt_modified"] = gregorian(doc.modified_at.replace(tzinfo=UTC).timestamp())
        b["_id"] = doc.id
        return b

    async def subscription_in_db(self, conn: AsyncConnection, record: dict) -> Doc | None:
        """The subscription document of a carrier record (by MDN, then ESN, then SIM), if imported."""
        for col, key in ((_D.mdn, "mdn"), (_D.esn, "esn"), (_D.sim, "sim")):
            v = record.get(key)
            if v:
                found = await find_docs(conn, SUBSCRIPTION, col == v, limit=1)
                if found:
                    return found[0]
        return None

    async def _insert_subscription(self, conn: AsyncConnection, account_id: str, record: dict, carrier: str,
                                   cluster_id: str, mvno: str | None = None) -> Doc:
        body = {"esn": record.get("esn"), "sim": record.get("sim"), "mdn": record.get("mdn"),
                "imsi": record.get("imsi"), "plan": record.get("plan"),
                "features": list(record.get("features") or []), "suspended": bool(record.get("suspended")),
                "carrier_data": dict(record.get("carrier_data") or {}),
                "pvt_carrier_name": carrier, "pvt_mvno": mvno, "pvt_cluster_id": cluster_id,
                "pvt_type": "subscription"}
        if record.get("activation_date") is not None:
            body["activation_date"] = record["activation_date"]
        return await _insert(conn, SUBSCRIPTION, new_id(), body, account_id)

    async def subscription(self, conn: AsyncConnection, account_id: str, sub_id: str) -> Doc:
        await self.account(conn, account_id)
        return await get_doc(conn, SUBSCRIPTION, check_id(sub_id, SUBSCRIPTION), account_id=account_id)

    async def import_subscription(self, conn: AsyncConnection, account_id: str, record: dict,
                                  device_data: dict | None, carrier: str, cluster_id: str,
                                  mvno: str | None) -> Doc:
        await self.account(conn, account_id)
        existing = await self.subscription_in_db(conn, record)
        if existing is not None:
            raise Conflict("mdn", f"the subscription is already imported as {existing.id} "
                                  f"(account {existing.account_id})")
        sub = await self._insert_subscription(conn, account_id, record, carrier, cluster_id, mvno)
        if record.get("esn"):  # tied to a device: the device comes along
            body = {k: v for k, v in (device_data or {}).items() if k != "id" and not k.startswith("pvt_")}
            body["subscription"] = self.subscription_of(record)
            body["model"] = record.get("model") or body.get("model") or {}
            body.setdefault("data", copy.deepcopy(DEFAULT_CAPS))
            body["carrier"] = carrier
            body.setdefault("name", (record.get("model") or {}).get("name") or record.get("mdn"))
            body = self._device_body(body, None)
            keys = _keys(DEVICE, body)
            await self._unique(conn, DEVICE, mdn=keys["mdn"], esn=keys["esn"], sip_username=keys["sip_username"])
            device_id = new_id()
            body["pvt_subscription_id"] = sub.id
            await _insert(conn, DEVICE, device_id, body, account_id)
            sub.body["pvt_device_id"] = device_id
            await _save(conn, sub)
        return sub

    async def _device_of(self, conn: AsyncConnection, sub: Doc) -> Doc | None:
        dev_id = sub.body.get("pvt_device_id")
        if dev_id:
            try:
                return await get_doc(conn, DEVICE, dev_id)
            except NotFound:
                return None
        return None

    async def delete_subscription(self, conn: AsyncConnection, account_id: str, sub_id: str, *,
                                  cascade: bool) -> Doc:
        sub = await self.subscription(conn, account_id, sub_id)
        device = await self._device_of(conn, sub)
        if device is not None:
            if cascade:
                await _delete(conn, device)
            else:
                device.body.pop("pvt_subscription_id", None)
                await _save(conn, device)
        await _delete(conn, sub)
        return sub

    async def patch_subscription(self, conn: AsyncConnection, account_id: str, sub_id: str, data: dict,
                                 *, recursive: bool) -> Doc:
        sub = await self.subscription(conn, account_id, sub_id)
        patch = {k: v for k, v in data.items() if k != "id" and not k.startswith(("pvt_", "_"))}
        body = merge(sub.body, patch, deep=recursive)
        p = Problems()
        for k in ("esn", "sim", "imsi", "plan"):
            if body.get(k) is not None and not isinstance(body[k], str):
                p.add(k, "type", "Value is not of type 'string'")
        if "features" in body and not (isinstance(body["features"], list)
                                       and all(isinstance(f, str) for f in body["features"])):
            p.add("features", "type", "Value is not an array of strings")
        p.boolean(body, "suspended", "suspended")
        p.obj(body, "carrier_data", "carrier_data")
        p.obj(body, "additional_properties", "additional_properties")
        p.raise_any()
        if body.get("mdn") is not None:
            body["mdn"] = normalize_mdn(body["mdn"])
        props = body.get("additional_properties") if isinstance(body.get("additional_properties"), dict) else {}
        body["additional_properties"] = {**props, "last_manual_update": gregorian()}
        keys = _keys(SUBSCRIPTION, body)
        await self._unique(conn, SUBSCRIPTION, mdn=keys["mdn"], esn=keys["esn"], sim=keys["sim"], exclude=sub.id)
        sub.body = body
        return await _save(conn, sub)

    async def move_subscription(self, conn: AsyncConnection, account_id: str, sub_id: str,
                                target_account_id: Any, target_cluster_id: Any) -> Doc:
        sub = await self.subscription(conn, account_id, sub_id)
        p = Problems()
        if target_account_id is None:
            p.add("target_account_id", "required", "Field is required but missing")
        elif not isinstance(target_account_id, str):
            p.add("target_account_id", "type", "Value is not of type 'string'")
        if target_cluster_id is not None and not isinstance(target_cluster_id, str):
            p.add("target_cluster_id", "type", "Value is not of type 'string'")
        p.raise_any()
        try:
            await self.account(conn, target_account_id)
        except NotFound:
            raise invalid("target_account_id", "not_found", "names no account") from None
        if target_cluster_id is not None:
            try:
                await self.cluster(conn, target_cluster_id)
            except NotFound:
                raise invalid("target_cluster_id", "not_found", "names no cluster") from None
            sub.body["pvt_cluster_id"] = target_cluster_id
        sub.account_id = target_account_id
        device = await self._device_of(conn, sub)
        if device is not None:
            device.account_id = target_account_id
            await _save(conn, device)
        return await _save(conn, sub)

    # ---- ports -------------------------------------------------------------------------------------------
    @staticmethod
    def port_view(doc: Doc) -> dict:
        return {"id": doc.id, **public({k: v for k, v in doc.body.items() if k != "id"})}

    async def port_cursor(self, conn: AsyncConnection, cluster_id: str) -> str | None:
        c = t.kazoo_port_cursors.c
        r = (await conn.execute(select(c.cursor).where(c.cluster_id == cluster_id))).first()
        return r.cursor if r else None

    async def apply_port_messages(self, conn: AsyncConnection, cluster_id: str, before: str | None,
                                  messages: list[dict], cursor: str | None) -> list[Doc]:
        """Record the carrier's port messages (each at most once: a concurrent poll that already
        moved the cursor wins, and a message already in a port's history is skipped)."""
        if await self.port_cursor(conn, cluster_id) != before:
            return []  # another poll applied these messages in the meantime
        touched: dict[str, Doc] = {}
        for m in messages:
            doc = await self._apply_port(conn, m, source="carrier", forced=False)
            if doc is not None:
                touched[doc.id] = doc
        c = t.kazoo_port_cursors.c
        await conn.execute(delete(t.kazoo_port_cursors).where(c.cluster_id == cluster_id))
        await conn.execute(insert(t.kazoo_port_cursors).values(cluster_id=cluster_id, cursor=cursor,
                                                               polled_at=utcnow()))
        return list(touched.values())

    async def _apply_port(self, conn: AsyncConnection, m: dict, *, source: str, forced: bool) -> Doc | None:
        port_id = m.get("port_id")
        code = m.get("code")
        if not isinstance(port_id, str) or not _ID.match(port_id) or code not in PORT_STATES:
            return None
        stamp = m.get("timestamp") if isinstance(m.get("timestamp"), int) else gregorian()
        entry = {"code": code, "source": source, "timestamp": stamp}
        if m.get("message"):
            entry["message"] = m["message"]
        try:
            doc = await get_doc(conn, PORT, port_id)
        except NotFound:
            mdn = None
            if m.get("mdn"):
                try:
                    mdn = normalize_mdn(m["mdn"])
                except Invalid:
                    mdn = None
            doc = await _insert(conn, PORT, port_id, {"mdn": mdn, "esn": m.get("esn"), "status": None,
                                                      "history": []}, None)
        history = doc.body.setdefault("history", [])
        if not forced and any(h.get("code") == code and h.get("timestamp") == stamp and h.get("source") == source
                              for h in history):
            return None
        history.append(entry)
        doc.body["status"] = {"code": code, "source": source, "timestamp": stamp}
        if forced:
            doc.body["status"]["forced_update"] = True
        await self._port_to_device(conn, doc, code)
        return await _save(conn, doc)

    async def _port_to_device(self, conn: AsyncConnection, port: Doc, code: str) -> None:
        """completed: the ported number becomes the device's MDN (and its subscription's);
        canceled: the device keeps its number. Either way the device records the port's outcome."""
        if code not in ("completed", "canceled"):
            return
        device = None
        if port.body.get("esn"):
            found = await find_docs(conn, DEVICE, _D.esn == port.body["esn"], limit=1)
            device = found[0] if found else None
        if device is None and port.body.get("mdn"):
            found = await find_docs(conn, DEVICE, _D.mdn == port.body["mdn"], limit=1)
            device = found[0] if found else None
        if device is None:
            port.body["device_id"] = None
            return
        port.body["device_id"] = device.id
        port.body["account_id"] = device.account_id
        number = port.body.get("mdn")
        device.body["port_in"] = {"id": port.id, "status": code, "number": number, "updated": gregorian()}
        if code == "completed" and number:
            await self._unique(conn, DEVICE, mdn=number, exclude=device.id)
            sub = device.body.setdefault("subscription", {})
            sub["mdn"] = number
            sub_id = device.body.get("pvt_subscription_id")
            if sub_id:
                try:
                    sdoc = await get_doc(conn, SUBSCRIPTION, sub_id)
                except NotFound:
                    sdoc = None
                if sdoc is not None:
                    await self._unique(conn, SUBSCRIPTION, mdn=number, exclude=sdoc.id)
                    sdoc.body["mdn"] = number
                    await _save(conn, sdoc)
        await _save(conn, device)

    async def set_port_status(self, conn: AsyncConnection, port_id: str, data: dict) -> Doc:
        doc = await get_doc(conn, PORT, check_id(port_id, PORT))
        p = Problems()
        code = data.get("code")
        if code is None:
            p.add("code", "required", "Field is required but missing")
        elif code not in PORT_STATES:
            p.add("code", "enum", f"Value not found in enumerated list of values: {', '.join(PORT_STATES)}")
        p.string(data, "source", "source")
        p.string(data, "message", "message", max_len=1024)
        p.raise_any()
        out = await self._apply_port(conn, {"port_id": doc.id, "code": code, "message": data.get("message")},
                                     source=data.get("source") or "support", forced=True)
        return out if out is not None else doc

    # ---- usage ---------------------------------------------------------------------------------------------
    async def owners_of(self, conn: AsyncConnection, mdns: list[str]) -> dict[str, str]:
        """mdn -> account id for the numbers the database knows (devices, then subscriptions)."""
        out: dict[str, str] = {}
        for i in range(0, len(mdns), 500):
            chunk = mdns[i:i + 500]
            for kind in (DEVICE, SUBSCRIPTION):
                q = select(_D.mdn, _D.account_id).where(_D.kind == kind, _D.mdn.in_(chunk))
                for r in (await conn.execute(q)).all():
                    if r.account_id:
                        out.setdefault(r.mdn, r.account_id)
        return out


async def poll_ports(db, kazoo: KazooService, client, cluster_id: str) -> tuple[int, list[Doc]]:
    """Pull the cluster's carrier port messages after the stored cursor and apply them; the
    cursor moves in the same transaction as the documents, so a message is applied once."""
    async with db.transaction(write=False) as conn:
        before = await kazoo.port_cursor(conn, cluster_id)
    from switchboard.carrier.adapter import CarrierError

    try:
        messages, cursor = await client.port_messages(before)
    except CarrierError as e:
        if type(e) is not CarrierError or before is None:
            raise
        # the carrier refused our cursor (its log was reset): read it again from the start; a
        # message already recorded is recognised in the port's history and not applied twice
        logging.getLogger("switchboard.kazoo").warning(
            "carrier refused port cursor %r of cluster %s (%s): polling from the start", before, cluster_id, e)
        messages, cursor = await client.port_messages(None)
    if not messages and cursor == before:
        return 0, []
    async with db.transaction() as conn:
        docs = await kazoo.apply_port_messages(conn, cluster_id, before, messages, cursor)
    return len(messages), docs


async def run_port_poller(db, kazoo: KazooService, client_for, every: float) -> None:
    """The regular port poll the spec mentions: every `every` seconds, each cluster with a carrier
    API. `client_for(cluster_doc)` gives the cluster's CarrierClient. Failures are logged."""
    import asyncio

    log = logging.getLogger("switchboard.kazoo")
    while True:
        await asyncio.sleep(every)
        try:
            async with db.transaction(write=False) as conn:
                clusters = await find_docs(conn, CLUSTER)
            for cluster in clusters:
                if kazoo.carrier_credentials(cluster) is None:
                    continue
                try:
                    count, _ = await poll_ports(db, kazoo, client_for(cluster), cluster.id)
                    if count:
                        log.info("port poll of cluster %s: %d message(s)", cluster.id, count)
                except Exception as e:  # one cluster's carrier being down must not stop the others
                    log.warning("port poll of cluster %s failed: %s", cluster.id, e)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("port poll failed")


__all__ = ["KazooService", "KazooInvalid", "CarrierMissing", "merge", "normalize_mdn", "month_range", "gregorian"]
