"""KAZOO validation: errors with KAZOO's rule names (`data.<field>.<rule>.message`), the
`Problems` collector, MDNs (stored in E.164), usage report months, the routing documents' shape
checks and the device usage policies (`data.caps`)."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

from switchboard.domain.errors import Invalid, NotFound
from switchboard.domain.kazoo.documents import CARRIER_SBC, CUSTOMER_CLUSTER, MEDIA_SERVER
from switchboard.domain.validation import e164

MAX_MONTHS = 36
_MONTH = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")


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


def normalize_mdn(value: Any, field: str = "mdn") -> str:
    """An MDN in E.164 (+ and digits); formatting characters are dropped."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "type", "must be a phone number (string)")
    number = e164(value)
    if number is None:
        raise invalid(field, "pattern", "must be a phone number: 7 to 15 digits, optionally with a leading +")
    return number


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


def check_caps(p: Problems, value: Any, path: str) -> None:
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
            check_caps(p, v, where)


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
