"""The generic KAZOO document store: documents are JSON bodies in `kazoo_documents` (kind + id),
with the lookup keys (mdn, esn, sim, the device's SIP username) kept in columns beside the body.
Also the ids (generated: 32 hex; named by a client: 1-64 letters, digits, `_`, `-`, `.`), KAZOO's
Gregorian timestamps and the PATCH merge."""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import starmap
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.entities import utcnow
from switchboard.domain.errors import Conflict, NotFound
from switchboard.store import tables as t

GREGORIAN_OFFSET = 62167219200  # seconds from 0000-01-01 to 1970-01-01 (KAZOO's calendar)
DEVICE, SUBSCRIPTION, CLUSTER, PORT = "device", "subscription", "cluster", "port_in"
CUSTOMER_CLUSTER, CARRIER_SBC, MEDIA_SERVER = "customer_cluster", "carrier_sbc", "media_server"
ROUTING_KINDS = (CUSTOMER_CLUSTER, CARRIER_SBC, MEDIA_SERVER)
PORT_STATES = ("unconfirmed", "submitted", "pending", "scheduled", "completed", "rejected", "canceled")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def gregorian(ts: float | None = None) -> int:
    return int(time.time() if ts is None else ts) + GREGORIAN_OFFSET


def new_id() -> str:
    return uuid.uuid4().hex


def check_id(value: str, kind: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise NotFound(kind, value)
    return value


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


# ---- storage ---------------------------------------------------------------------------------------------
@dataclass
class Doc:
    kind: str
    id: str
    account_id: str | None
    body: dict
    created_at: datetime
    modified_at: datetime


D = t.kazoo_documents.c  # the columns, for queries


# a Doc's columns, in Doc's order: rows are unpacked by position (a Row's attribute access by name
# cost more than parsing the body: measured on a 100-document list)
_DOC = select(D.kind, D.id, D.account_id, D.body, D.created_at, D.modified_at)
# the common lookups, built once (building a statement and its cache key costs more than running it)
_GET = _DOC.where(D.kind == bindparam("kind"), D.id == bindparam("ident"))
_GET_IN = _GET.where(D.account_id == bindparam("account_id"))
_FIND = _DOC.where(D.kind == bindparam("kind")).order_by(D.created_at, D.id)
_FIND_TEXT = select(D.id, D.body).where(D.kind == bindparam("kind")).order_by(D.created_at, D.id)


def _row(kind: str, ident: str, account_id: str | None, body: str, created_at: datetime, modified_at: datetime) -> Doc:
    return Doc(kind, ident, account_id, orjson.loads(body), created_at, modified_at)


def lookup_keys(kind: str, body: dict) -> dict:
    """The lookup columns of a document's body."""
    if kind == DEVICE:
        sub = body.get("subscription") if isinstance(body.get("subscription"), dict) else {}
        sip = (body.get("voice") or {}).get("sip") if isinstance(body.get("voice"), dict) else None
        user = sip.get("username") if isinstance(sip, dict) and isinstance(sip.get("username"), str) else None
        return {
            "mdn": _str(sub.get("mdn")),
            "esn": _str(sub.get("esn")),
            "sim": _str(sub.get("sim")),
            "sip_username": user or None,
        }
    if kind in (SUBSCRIPTION, PORT):
        return {
            "mdn": _str(body.get("mdn")),
            "esn": _str(body.get("esn")),
            "sim": _str(body.get("sim")),
            "sip_username": None,
        }
    return {"mdn": None, "esn": None, "sim": None, "sip_username": None}


def _str(v: Any) -> str | None:
    return v[:64] if isinstance(v, str) and v else None


async def get_doc(conn: AsyncConnection, kind: str, ident: str, *, account_id: str | None = None) -> Doc:
    params = {"kind": kind, "ident": ident}
    if account_id is not None:
        params["account_id"] = account_id
    r = (await conn.execute(_GET if account_id is None else _GET_IN, params)).first()
    if r is None:
        raise NotFound(kind, ident)
    return _row(*r)


async def find_docs(conn: AsyncConnection, kind: str, *where, limit: int | None = None) -> list[Doc]:
    if not where and not limit:
        return list(starmap(_row, (await conn.execute(_FIND, {"kind": kind})).all()))
    q = _DOC.where(D.kind == kind, *where).order_by(D.created_at, D.id)
    if limit:
        q = q.limit(limit)
    return list(starmap(_row, (await conn.execute(q)).all()))


async def doc_texts(conn: AsyncConnection, kind: str) -> Sequence[tuple[str, str]]:
    """(id, stored JSON text) of every document of a kind, in find_docs' order: for a view that is a
    function of the text and keeps it (parsing every body was most of a 100-document list's cost)."""
    return (await conn.execute(_FIND_TEXT, {"kind": kind})).all()


async def insert_doc(conn: AsyncConnection, kind: str, ident: str, body: dict, account_id: str | None) -> Doc:
    now = utcnow()
    await conn.execute(
        insert(t.kazoo_documents).values(
            kind=kind,
            id=ident,
            account_id=account_id,
            body=orjson.dumps(body).decode(),
            created_at=now,
            modified_at=now,
            **lookup_keys(kind, body),
        )
    )
    return Doc(kind, ident, account_id, body, now, now)


async def save_doc(conn: AsyncConnection, doc: Doc) -> Doc:
    doc.modified_at = utcnow()
    await conn.execute(
        update(t.kazoo_documents)
        .where(D.kind == doc.kind, D.id == doc.id)
        .values(
            account_id=doc.account_id,
            body=orjson.dumps(doc.body).decode(),
            modified_at=doc.modified_at,
            **lookup_keys(doc.kind, doc.body),
        )
    )
    return doc


async def delete_doc(conn: AsyncConnection, doc: Doc) -> None:
    """Remove the document (insert_doc adds one, save_doc writes its body and keys back)."""
    await conn.execute(delete(t.kazoo_documents).where(D.kind == doc.kind, D.id == doc.id))


async def ensure_unique(
    conn: AsyncConnection, kind: str, *, mdn=None, esn=None, sim=None, sip_username=None, exclude: str | None = None
) -> None:
    """409 when another document (other than `exclude`) of `kind` has this mdn, esn or sim, or when
    any document has this SIP username."""
    for col, value, label in (
        (D.mdn, mdn, "mdn"),
        (D.esn, esn, "esn"),
        (D.sim, sim, "sim"),
        (D.sip_username, sip_username, "voice.sip.username"),
    ):
        if not value:
            continue
        where = [col == value] if label == "voice.sip.username" else [D.kind == kind, col == value]
        q = select(D.id, D.kind, D.account_id).where(*where)
        for r in (await conn.execute(q)).all():
            if r.id != exclude:
                raise Conflict(label, f"{value} already belongs to {r.kind} {r.id} (account {r.account_id})")
