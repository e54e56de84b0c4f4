"""KAZOO devices: validation (SIP credentials, usage policies), the SIP password encrypted at rest
and shown masked, imports of a carrier subscription as a device, PATCH."""

from __future__ import annotations

import copy
import re

from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.domain.errors import Conflict, Invalid, NotFound
from switchboard.domain.kazoo.documents import (
    DEVICE,
    D,
    Doc,
    check_id,
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
from switchboard.domain.kazoo.validation import Problems, check_caps, invalid, normalize_mdn
from switchboard.domain.security import MASK, SecretBox

DEFAULT_CAPS = {"caps": {"blocking": {"cap": 0}, "throttling": {"cap": 0, "rate": "256k"}}}


class Devices:
    """Part of KazooService: devices."""

    box: SecretBox

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
        for doc in await find_docs(conn, DEVICE, D.sip_username.is_not(None)):
            password = self.device_password(doc)
            if password is not None:
                sip = (doc.body.get("voice") or {}).get("sip") or {}
                out.append(
                    {
                        "username": lookup_keys(DEVICE, doc.body)["sip_username"],
                        "password": password,
                        "device_id": doc.id,
                        "account_id": doc.account_id,
                        "realm": sip.get("realm") or None,
                    }
                )
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
        check_caps(p, p.obj(body, "data", "data"), "data")
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

    async def device(self, conn: AsyncConnection, account_id: str, device_id: str) -> Doc:
        await self.account(conn, account_id)
        return await get_doc(conn, DEVICE, check_id(device_id, DEVICE), account_id=account_id)

    async def device_by_mdn(self, conn: AsyncConnection, mdn: str) -> Doc:
        try:
            number = normalize_mdn(mdn)
        except Invalid:
            raise NotFound("phone_number", mdn) from None
        found = await find_docs(conn, DEVICE, D.mdn == number, limit=1)
        if not found:
            raise NotFound("phone_number", mdn)
        return found[0]

    @staticmethod
    def subscription_of(record: dict, *, csa_flat: bool = False) -> dict:
        """The carrier record as a device's `subscription`."""
        out = {
            "esn": record.get("esn"),
            "mdn": record.get("mdn"),
            "sim": record.get("sim"),
            "imsi": record.get("imsi"),
            "plan": record.get("plan"),
            "features": list(record.get("features") or []),
            "carrier_data": dict(record.get("carrier_data") or {}),
        }
        if record.get("activation_date") is not None:
            out["activation_date"] = record["activation_date"]
        if csa_flat and out["carrier_data"].get("csa") is not None:
            out["csa"] = out["carrier_data"]["csa"]  # the spec's import example shows csa here
        return out

    async def import_device(
        self, conn: AsyncConnection, account_id: str, data: dict, record: dict, carrier: str, cluster_id: str
    ) -> Doc:
        """A device (and its subscription document) for an active carrier subscription."""
        await self.account(conn, account_id)
        body = {k: v for k, v in data.items() if k not in ("id", "esn", "mdn", "sim") and not k.startswith("pvt_")}
        body["subscription"] = self.subscription_of(record, csa_flat=True)
        body["model"] = record.get("model") or body.get("model") or {}
        body.setdefault("data", copy.deepcopy(DEFAULT_CAPS))
        body["carrier"] = carrier
        body = self._device_body(body, None)
        keys = lookup_keys(DEVICE, body)
        await ensure_unique(conn, DEVICE, mdn=keys["mdn"], esn=keys["esn"], sip_username=keys["sip_username"])
        sub = await self.subscription_in_db(conn, record)
        if sub is not None and sub.account_id != account_id:
            raise Conflict("mdn", f"{record.get('mdn')} is a subscription of account {sub.account_id}")
        device_id = new_id()
        if sub is None:
            sub = await self._insert_subscription(conn, account_id, record, carrier, cluster_id)
        body["pvt_subscription_id"] = sub.id
        sub.body["pvt_device_id"] = device_id
        await save_doc(conn, sub)
        return await insert_doc(conn, DEVICE, device_id, body, account_id)

    async def patch_device(
        self, conn: AsyncConnection, account_id: str, device_id: str, data: dict, *, recursive: bool
    ) -> Doc:
        doc = await self.device(conn, account_id, device_id)
        patch = {k: v for k, v in data.items() if k != "id" and not k.startswith(("pvt_", "_"))}
        body = self._device_body(merge(doc.body, patch, deep=recursive), doc.body)
        props = body.get("additional_properties") if isinstance(body.get("additional_properties"), dict) else {}
        body["additional_properties"] = {**props, "last_manual_update": gregorian()}
        keys = lookup_keys(DEVICE, body)
        await ensure_unique(
            conn, DEVICE, mdn=keys["mdn"], esn=keys["esn"], sip_username=keys["sip_username"], exclude=doc.id
        )
        doc.body = body
        return await save_doc(conn, doc)
