"""KAZOO cluster documents (each with its carrier API URL and key; the master cluster exists from
the first start) and the routing documents (customer clusters, carrier SBCs, media servers)."""

from __future__ import annotations

import re

import orjson
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain import repos
from switchboard.domain.errors import Conflict, Forbidden, NotFound
from switchboard.domain.kazoo.documents import (
    CARRIER_SBC,
    CLUSTER,
    CUSTOMER_CLUSTER,
    ID_PATTERN,
    MEDIA_SERVER,
    SUBSCRIPTION,
    D,
    Doc,
    check_id,
    delete_doc,
    doc_texts,
    find_docs,
    get_doc,
    insert_doc,
    merge,
    new_id,
    public,
    save_doc,
)
from switchboard.domain.kazoo.validation import Problems, invalid, validate_routing
from switchboard.domain.security import MASK, SecretBox
from switchboard.store import tables as t

# what a routing document's list entry shows besides its id (the spec's lists), by kind
_SUMMARY_KEYS = {
    CUSTOMER_CLUSTER: ("name", "owner"),
    CARRIER_SBC: ("name", "carrier", "location", "mobile_media_server"),
    MEDIA_SERVER: ("name", "location", "carrier_sbc_priority"),
}


class Clusters:
    """Part of KazooService: cluster and routing documents."""

    box: SecretBox
    _lists: repos.Reads

    # ---- clusters ------------------------------------------------------------------------------------
    async def ensure_master_cluster(
        self,
        conn: AsyncConnection,
        cluster_id: str | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
    ) -> Doc:
        """The master cluster document exists from the first start (its id configurable); a
        configured carrier URL/key is applied to it on every start."""
        found = await find_docs(conn, CLUSTER, D.account_id.is_(None))
        master = next((d for d in found if d.body.get("pvt_master")), None)
        if master is None:
            ident = cluster_id or new_id()
            master = await insert_doc(
                conn,
                CLUSTER,
                ident,
                {
                    "id": ident,
                    "mvno_id": None,
                    "api_url": None,
                    "api_key": None,
                    "hosted_billing_account_id": None,
                    "pvt_master": True,
                },
                None,
            )
        changed = False
        if api_url:
            master.body["api_url"], changed = api_url, True
        if api_key:
            master.body["api_key"], changed = self.box.encrypt(api_key), True
        return await save_doc(conn, master) if changed else master

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
        if not ID_PATTERN.match(cluster_id):
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
            return self.cluster_view(await insert_doc(conn, CLUSTER, cluster_id, body, None)), True
        body["pvt_master"] = existing.body.get("pvt_master", False)
        existing.body = body
        return self.cluster_view(await save_doc(conn, existing)), False

    async def delete_cluster(self, conn: AsyncConnection, cluster_id: str) -> dict:
        doc = await get_doc(conn, CLUSTER, check_id(cluster_id, CLUSTER))
        if doc.body.get("pvt_master"):
            raise Forbidden("the master cluster cannot be deleted")
        for d in await find_docs(conn, SUBSCRIPTION):
            if d.body.get("pvt_cluster_id") == cluster_id:
                raise Conflict("id", f"the cluster holds subscriptions (e.g. {d.id}); move them first")
        await delete_doc(conn, doc)
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
        summary = {"id": doc.id}
        for k in _SUMMARY_KEYS[doc.kind]:
            if k in b:
                summary[k] = b[k]
        return summary

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
                    await save_doc(conn, d)
        elif doc.kind == CARRIER_SBC:
            for d in await find_docs(conn, MEDIA_SERVER):
                priority = d.body.get("carrier_sbc_priority")
                if not isinstance(priority, dict):
                    continue
                kept = {
                    c: [i for i in ids if i != doc.id] if isinstance(ids, list) else ids for c, ids in priority.items()
                }
                if kept != priority:
                    d.body = {**d.body, "carrier_sbc_priority": kept}
                    await save_doc(conn, d)

    @staticmethod
    def _clean(data: dict) -> dict:
        return {k: v for k, v in data.items() if k != "id" and not k.startswith(("pvt_", "_"))}

    async def routing_list(self, conn: AsyncConnection, kind: str) -> list[dict]:
        """Every document's summary. A summary is a function of the document's id and stored text,
        so it is kept by those (the same dict is handed out again: callers only read it); a list
        read request after request otherwise parsed every body again (measured: ~40 % of a
        100-document list). Cleared when full, like any other such memo here. The list itself is
        kept while the database is unchanged (repos.Reads): asked again, it runs no query."""
        out = self._lists.get(conn, ("routing", kind))
        if out is not None:
            return out
        out, memo = [], _SUMMARIES.memo
        for ident, text in await doc_texts(conn, kind):
            key = (kind, ident, text)
            summary = memo.get(key)
            out.append(summary if summary is not None else _SUMMARIES.keep(key, _SUMMARIES.build(*key)))
        return self._lists.put(conn, ("routing", kind), out)

    async def routing_get(self, conn: AsyncConnection, kind: str, ident: str) -> dict:
        return self.routing_view(await get_doc(conn, kind, check_id(ident, kind)))

    async def routing_create(self, conn: AsyncConnection, kind: str, data: dict, ident: str | None = None) -> dict:
        if ident is None:
            ident = new_id()
        elif not ID_PATTERN.match(ident):
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
        return self.routing_view(await insert_doc(conn, kind, ident, body, None))

    async def routing_replace(self, conn: AsyncConnection, kind: str, ident: str, data: dict) -> dict:
        doc = await get_doc(conn, kind, check_id(ident, kind))
        body = self._clean(data)
        validate_routing(kind, body)
        await self._check_refs(conn, kind, body)
        doc.body = body
        return self.routing_view(await save_doc(conn, doc))

    async def routing_patch(self, conn: AsyncConnection, kind: str, ident: str, data: dict) -> dict:
        doc = await get_doc(conn, kind, check_id(ident, kind))
        body = merge(doc.body, self._clean(data), deep=True)
        validate_routing(kind, body)
        await self._check_refs(conn, kind, body)
        doc.body = body
        return self.routing_view(await save_doc(conn, doc))

    async def routing_delete(self, conn: AsyncConnection, kind: str, ident: str) -> dict:
        doc = await get_doc(conn, kind, check_id(ident, kind))
        await self._drop_references(conn, doc)
        await delete_doc(conn, doc)
        return self.routing_view(doc)


# routing_list's summaries, by (kind, id, stored text)
_SUMMARIES = repos.Views(
    lambda kind, ident, text: Clusters.routing_summary(Doc(kind, ident, None, orjson.loads(text), None, None))
)
