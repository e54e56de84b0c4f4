"""KAZOO port-in requests: the carrier's port messages applied once each (behind a per-cluster
cursor), a support user's forced status, and what a completed or canceled port does to the device.
Polling the carrier is switchboard.carrier.poller's work; this module only records what it read."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.entities import utcnow
from switchboard.domain.errors import Invalid, NotFound
from switchboard.domain.kazoo.documents import (
    DEVICE,
    ID_PATTERN,
    PORT,
    PORT_STATES,
    SUBSCRIPTION,
    D,
    Doc,
    check_id,
    ensure_unique,
    find_docs,
    get_doc,
    gregorian,
    insert_doc,
    public,
    save_doc,
)
from switchboard.domain.kazoo.validation import Problems, normalize_mdn
from switchboard.store import tables as t


class Ports:
    """Part of KazooService: port-in requests."""

    # ---- ports -------------------------------------------------------------------------------------------
    @staticmethod
    def port_view(doc: Doc) -> dict:
        return {"id": doc.id, **public({k: v for k, v in doc.body.items() if k != "id"})}

    async def port_cursor(self, conn: AsyncConnection, cluster_id: str) -> str | None:
        c = t.kazoo_port_cursors.c
        r = (await conn.execute(select(c.cursor).where(c.cluster_id == cluster_id))).first()
        return r.cursor if r else None

    async def apply_port_messages(
        self, conn: AsyncConnection, cluster_id: str, before: str | None, messages: list[dict], cursor: str | None
    ) -> list[Doc]:
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
        await conn.execute(
            insert(t.kazoo_port_cursors).values(cluster_id=cluster_id, cursor=cursor, polled_at=utcnow())
        )
        return list(touched.values())

    async def _apply_port(self, conn: AsyncConnection, m: dict, *, source: str, forced: bool) -> Doc | None:
        port_id = m.get("port_id")
        code = m.get("code")
        if not isinstance(port_id, str) or not ID_PATTERN.match(port_id) or code not in PORT_STATES:
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
            doc = await insert_doc(
                conn, PORT, port_id, {"mdn": mdn, "esn": m.get("esn"), "status": None, "history": []}, None
            )
        history = doc.body.setdefault("history", [])
        if not forced and any(
            h.get("code") == code and h.get("timestamp") == stamp and h.get("source") == source for h in history
        ):
            return None
        history.append(entry)
        doc.body["status"] = {"code": code, "source": source, "timestamp": stamp}
        if forced:
            doc.body["status"]["forced_update"] = True
        await self._port_to_device(conn, doc, code)
        return await save_doc(conn, doc)

    async def _port_to_device(self, conn: AsyncConnection, port: Doc, code: str) -> None:
        """completed: the ported number becomes the device's MDN (and its subscription's);
        canceled: the device keeps its number. Either way the device records the port's outcome."""
        if code not in ("completed", "canceled"):
            return
        device = None
        if port.body.get("esn"):
            found = await find_docs(conn, DEVICE, D.esn == port.body["esn"], limit=1)
            device = found[0] if found else None
        if device is None and port.body.get("mdn"):
            found = await find_docs(conn, DEVICE, D.mdn == port.body["mdn"], limit=1)
            device = found[0] if found else None
        if device is None:
            port.body["device_id"] = None
            return
        port.body["device_id"] = device.id
        port.body["account_id"] = device.account_id
        number = port.body.get("mdn")
        device.body["port_in"] = {"id": port.id, "status": code, "number": number, "updated": gregorian()}
        if code == "completed" and number:
            await ensure_unique(conn, DEVICE, mdn=number, exclude=device.id)
            sub = device.body.setdefault("subscription", {})
            sub["mdn"] = number
            sub_id = device.body.get("pvt_subscription_id")
            if sub_id:
                try:
                    sdoc = await get_doc(conn, SUBSCRIPTION, sub_id)
                except NotFound:
                    sdoc = None
                if sdoc is not None:
                    await ensure_unique(conn, SUBSCRIPTION, mdn=number, exclude=sdoc.id)
                    sdoc.body["mdn"] = number
                    await save_doc(conn, sdoc)
        await save_doc(conn, device)

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
        out = await self._apply_port(
            conn,
            {"port_id": doc.id, "code": code, "message": data.get("message")},
            source=data.get("source") or "support",
            forced=True,
        )
        return out if out is not None else doc
