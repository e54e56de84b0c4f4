"""KAZOO subscription documents (a carrier subscription imported into an account, with its device
when it has one): lookup, import, PATCH, move between accounts and clusters, delete; and which
account owns a number (usage reports)."""

from __future__ import annotations

import copy
from datetime import UTC
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.errors import Conflict, NotFound
from switchboard.domain.kazoo.devices import DEFAULT_CAPS
from switchboard.domain.kazoo.documents import (
    DEVICE,
    SUBSCRIPTION,
    D,
    Doc,
    check_id,
    delete_doc,
    ensure_unique,
    find_docs,
    get_doc,
    gregorian,
    insert_doc,
    lookup_keys,
    merge,
    new_id,
    public,
    save_doc,
)
from switchboard.domain.kazoo.validation import Problems, invalid, normalize_mdn


class Subscriptions:
    """Part of KazooService: subscriptions."""

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
        for col, key in ((D.mdn, "mdn"), (D.esn, "esn"), (D.sim, "sim")):
            v = record.get(key)
            if v:
                found = await find_docs(conn, SUBSCRIPTION, col == v, limit=1)
                if found:
                    return found[0]
        return None

    async def _insert_subscription(
        self,
        conn: AsyncConnection,
        account_id: str,
        record: dict,
        carrier: str,
        cluster_id: str,
        mvno: str | None = None,
    ) -> Doc:
        body = {
            "esn": record.get("esn"),
            "sim": record.get("sim"),
            "mdn": record.get("mdn"),
            "imsi": record.get("imsi"),
            "plan": record.get("plan"),
            "features": list(record.get("features") or []),
            "suspended": bool(record.get("suspended")),
            "carrier_data": dict(record.get("carrier_data") or {}),
            "pvt_carrier_name": carrier,
            "pvt_mvno": mvno,
            "pvt_cluster_id": cluster_id,
            "pvt_type": "subscription",
        }
        if record.get("activation_date") is not None:
            body["activation_date"] = record["activation_date"]
        return await insert_doc(conn, SUBSCRIPTION, new_id(), body, account_id)

    async def subscription(self, conn: AsyncConnection, account_id: str, sub_id: str) -> Doc:
        await self.account(conn, account_id)
        return await get_doc(conn, SUBSCRIPTION, check_id(sub_id, SUBSCRIPTION), account_id=account_id)

    async def import_subscription(
        self,
        conn: AsyncConnection,
        account_id: str,
        record: dict,
        device_data: dict | None,
        carrier: str,
        cluster_id: str,
        mvno: str | None,
    ) -> Doc:
        await self.account(conn, account_id)
        existing = await self.subscription_in_db(conn, record)
        if existing is not None:
            raise Conflict(
                "mdn", f"the subscription is already imported as {existing.id} (account {existing.account_id})"
            )
        sub = await self._insert_subscription(conn, account_id, record, carrier, cluster_id, mvno)
        if record.get("esn"):  # tied to a device: the device comes along
            body = {k: v for k, v in (device_data or {}).items() if k != "id" and not k.startswith("pvt_")}
            body["subscription"] = self.subscription_of(record)
            body["model"] = record.get("model") or body.get("model") or {}
            body.setdefault("data", copy.deepcopy(DEFAULT_CAPS))
            body["carrier"] = carrier
            body.setdefault("name", (record.get("model") or {}).get("name") or record.get("mdn"))
            body = self._device_body(body, None)
            keys = lookup_keys(DEVICE, body)
            await ensure_unique(conn, DEVICE, mdn=keys["mdn"], esn=keys["esn"], sip_username=keys["sip_username"])
            device_id = new_id()
            body["pvt_subscription_id"] = sub.id
            await insert_doc(conn, DEVICE, device_id, body, account_id)
            sub.body["pvt_device_id"] = device_id
            await save_doc(conn, sub)
        return sub

    async def _device_of(self, conn: AsyncConnection, sub: Doc) -> Doc | None:
        dev_id = sub.body.get("pvt_device_id")
        if dev_id:
            try:
                return await get_doc(conn, DEVICE, dev_id)
            except NotFound:
                return None
        return None

    async def delete_subscription(self, conn: AsyncConnection, account_id: str, sub_id: str, *, cascade: bool) -> Doc:
        sub = await self.subscription(conn, account_id, sub_id)
        device = await self._device_of(conn, sub)
        if device is not None:
            if cascade:
                await delete_doc(conn, device)
            else:
                device.body.pop("pvt_subscription_id", None)
                await save_doc(conn, device)
        await delete_doc(conn, sub)
        return sub

    async def patch_subscription(
        self, conn: AsyncConnection, account_id: str, sub_id: str, data: dict, *, recursive: bool
    ) -> Doc:
        sub = await self.subscription(conn, account_id, sub_id)
        patch = {k: v for k, v in data.items() if k != "id" and not k.startswith(("pvt_", "_"))}
        body = merge(sub.body, patch, deep=recursive)
        p = Problems()
        for k in ("esn", "sim", "imsi", "plan"):
            if body.get(k) is not None and not isinstance(body[k], str):
                p.add(k, "type", "Value is not of type 'string'")
        if "features" in body and not (
            isinstance(body["features"], list) and all(isinstance(f, str) for f in body["features"])
        ):
            p.add("features", "type", "Value is not an array of strings")
        p.boolean(body, "suspended", "suspended")
        p.obj(body, "carrier_data", "carrier_data")
        p.obj(body, "additional_properties", "additional_properties")
        p.raise_any()
        if body.get("mdn") is not None:
            body["mdn"] = normalize_mdn(body["mdn"])
        props = body.get("additional_properties") if isinstance(body.get("additional_properties"), dict) else {}
        body["additional_properties"] = {**props, "last_manual_update": gregorian()}
        keys = lookup_keys(SUBSCRIPTION, body)
        await ensure_unique(conn, SUBSCRIPTION, mdn=keys["mdn"], esn=keys["esn"], sim=keys["sim"], exclude=sub.id)
        sub.body = body
        return await save_doc(conn, sub)

    async def move_subscription(
        self, conn: AsyncConnection, account_id: str, sub_id: str, target_account_id: Any, target_cluster_id: Any
    ) -> Doc:
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
            await save_doc(conn, device)
        return await save_doc(conn, sub)

    # ---- usage ---------------------------------------------------------------------------------------------
    async def owners_of(self, conn: AsyncConnection, mdns: list[str]) -> dict[str, str]:
        """mdn -> account id for the numbers the database knows (devices, then subscriptions)."""
        out: dict[str, str] = {}
        for i in range(0, len(mdns), 500):
            chunk = mdns[i : i + 500]
            for kind in (DEVICE, SUBSCRIPTION):
                q = select(D.mdn, D.account_id).where(D.kind == kind, D.mdn.in_(chunk))
                for r in (await conn.execute(q)).all():
                    if r.account_id:
                        out.setdefault(r.mdn, r.account_id)
        return out
