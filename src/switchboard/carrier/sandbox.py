"""The carrier sandbox: a stand-alone mobile carrier (MVNO) API for the kazoo dialect.

    switchboard carrier-sandbox --listen 127.0.0.1:8090 --data carrier.json [--persist]

A kazoo cluster whose `api_url` is `http://127.0.0.1:8090` and `api_key` the data file's `api_key`
then looks subscriptions, data usage and port messages up here (through
`switchboard.carrier.adapter.CarrierClient`). The OpenAPI document is served at `/openapi.json`
and rendered at `/docs` (these two need no key; they hold no data).

Data file
---------
One JSON object (unknown keys are refused, so typos show at start):

- `api_key` (string, required): the bearer key every API request must carry.
- `carrier` (string, default "sprint"): the carrier name of subscriptions that name none.
- `subscriptions`: list of `{"mdn", "esn", "sim", "imsi", "msid", "csa", "plan", "features": [...],
  "model": {"name", "number", "manufacturer"}, "activation_date", "suspended", "carrier"}`; only `mdn`
  is required (E.164, or any formatting of it; ten digits are a US number), the other strings may
  be null, `activation_date` is KAZOO Gregorian seconds (e.g. 63746871056), `suspended` a boolean
  (default false). MDN, ESN and SIM are each unique.
- `usage`: `{"YYYYMM": {"<mdn>": bytes, ...}, ...}`, monthly data usage per MDN.
- `port_messages`: list of `{"port_id", "mdn", "esn", "code", "message", "timestamp"}` in arrival
  order; `code` is one of unconfirmed, submitted, pending, scheduled, completed, canceled, rejected;
  `timestamp` Gregorian seconds; `esn` and `message` optional.

Changes made through the admin API live in memory; with `--persist` each one is also written back
to the data file (atomically: a temporary file renamed over it).

HTTP API
--------
Every `/v1` request carries `Authorization: Bearer <api_key>`; without it, or with another key:
401. Every answer is JSON. Errors are `{"error": {"code", "message"}}` (400 adds `"details"`):

| status | code | when |
|---|---|---|
| 400 | `invalid` | a malformed query, path or body (unknown fields, wrong types, bad MDN, bad cursor) |
| 401 | `unauthorized` | no or wrong bearer key |
| 404 | `not_found` | no such subscription; also any unknown path |
| 405 | `method_not_allowed` | a known path with another method |
| 409 | `conflict` | a new subscription's MDN, ESN or SIM is already taken |
| any | `injected_fault` | an injected fault (below) |

Carrier API:

- `GET /v1/subscriptions?mdn=M | esn=E | sim=S [&carrier=C]` -> 200
  `{"subscription": {"esn", "mdn", "sim", "imsi", "msid", "csa", "plan", "features", "model",
  "activation_date", "suspended", "carrier"}}`; exactly one of mdn/esn/sim (else 400). `mdn`
  matches whatever its formatting (`+15550001111`, `5550001111`, `(555) 000-1111`); `esn` matches
  case-insensitively. With `carrier`, a subscription of another carrier is not found. 404 when
  there is no such subscription.
- `GET /v1/usage` -> 200 `{"months": ["YYYYMM", ...]}` (the months that have usage, ascending).
- `GET /v1/usage/{YYYYMM}?cursor=&limit=` -> 200 `{"month", "items": [{"mdn", "bytes"}],
  "next_cursor": string|null}`: the month's usage in ascending MDN order, `limit` rows (default
  1000, 1 to 10000) after `cursor` (the previous page's `next_cursor`; opaque); `next_cursor` is
  null on the last page. A month with no usage is 200 with no items. The cursor is the last MDN
  served, so rows added or changed while paging neither shift nor repeat the others.
- `GET /v1/port_messages?after=&limit=` -> 200 `{"messages": [{"sequence", "port_id", "mdn", "esn",
  "code", "message", "timestamp"}], "next_cursor": string, "has_more": bool}`: the port-in messages
  after cursor `after` (absent: from the beginning of the log), at most `limit` (default 100, 1 to
  1000). `next_cursor` (always given) is where the next poll starts: polling with each answer's
  `next_cursor` sees every message exactly once. The cursor is the position in the append-only
  message log (`sequence` is the 1-based position); one beyond the log's end is 400.

Developer and test control (same key), under `/v1/admin`:

- `GET /v1/admin/subscriptions` -> 200 `{"subscriptions": [...]}`, all of them.
- `POST /v1/admin/subscriptions` (a subscription as in the data file) -> 201 `{"subscription"}`;
  409 when its MDN, ESN or SIM is taken.
- `DELETE /v1/admin/subscriptions?mdn=|esn=|sim=` -> 200 `{"subscription"}` (the removed one); 404.
- `PUT /v1/admin/usage/{YYYYMM}` `{"<mdn>": bytes, ...}` replaces the month's usage;
  `PATCH` the same merges into it (`null` removes an MDN) -> 200 `{"month", "mdns", "total_bytes"}`.
- `POST /v1/admin/port_messages` `[{"port_id", "mdn", "esn"?, "code", "message"?, "timestamp"}, ...]`
  appends to the log in order -> 201 `{"appended", "total"}`.
- `GET /v1/admin/faults` -> 200 `{"fault": {...}|null}`.
- `POST /v1/admin/faults` `{"status": 503|null, "delay_seconds": 0, "count": N|null,
  "malformed": false}` -> 200 `{"fault"}`: the next `count` carrier API requests (every one until
  cleared when `count` is null) that pass authentication first wait `delay_seconds` (at most
  300; the wait ends early when the faults are cleared or replaced), then answer `status` with an
  `injected_fault` error, or with `malformed` a body that is not JSON (status 200 unless given),
  or, with neither, are served normally. Admin requests are never faulted.
- `DELETE /v1/admin/faults` -> 200 `{"cleared": bool, "served": N}` (how many requests the cleared
  fault touched).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import hmac
import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import uvicorn
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    field_validator,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard import __version__
from switchboard.domain.validation import e164

log = logging.getLogger("switchboard.carrier.sandbox")

DEFAULT_CARRIER = "sprint"
PORT_CODES = ("unconfirmed", "submitted", "pending", "scheduled", "completed", "canceled", "rejected")
MONTH_PATTERN = r"^\d{4}(0[1-9]|1[0-2])$"
USAGE_LIMIT_DEFAULT, USAGE_LIMIT_MAX = 1000, 10_000
PORT_LIMIT_DEFAULT, PORT_LIMIT_MAX = 100, 1000
MAX_BYTES = 2**63 - 1
MAX_DELAY = 300.0
_ERROR_CODES = {400: "invalid", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 409: "conflict"}


def normalize_mdn(value: str) -> str:
    """The E.164 form of a phone number (`+` and 7 to 15 digits); formatting characters are
    dropped and ten digits without `+` are a US number. ValueError when it is not a number."""
    number = e164(value)
    if number is None:
        raise ValueError("not a phone number: 7 to 15 digits, optionally with a leading +")
    return number


# ---- the data model (data file, admin bodies, answers) ------------------------------------------------
Text = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Month = Annotated[str, StringConstraints(pattern=MONTH_PATTERN)]
Bytes = Annotated[StrictInt, Field(ge=0, le=MAX_BYTES)]
Gregorian = Annotated[StrictInt, Field(ge=0, le=10**12, description="KAZOO Gregorian seconds")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceModel(_In):
    """The handset a subscription is tied to."""

    name: Annotated[StrictStr, StringConstraints(max_length=128)] | None = None
    number: Annotated[StrictStr, StringConstraints(max_length=64)] | None = None
    manufacturer: Annotated[StrictStr, StringConstraints(max_length=64)] | None = None


class SubscriptionIn(_In):
    """A subscription as the data file and `POST /v1/admin/subscriptions` give it."""

    mdn: Text = Field(description="the phone number; stored in E.164")
    esn: Text | None = Field(None, description="ESN/MEID/IMEI of the device")
    sim: Text | None = None
    imsi: Text | None = None
    msid: Text | None = None
    csa: Text | None = None
    plan: Text | None = None
    features: Annotated[list[Text], Field(max_length=64)] = []
    model: DeviceModel | None = None
    activation_date: Gregorian | None = None
    suspended: StrictBool = False
    carrier: Text | None = Field(None, description="default: the sandbox's carrier")

    @field_validator("mdn")
    @classmethod
    def _mdn(cls, value: str) -> str:
        return normalize_mdn(value)


class PortMessageIn(_In):
    """A port-in message as the data file and `POST /v1/admin/port_messages` give it."""

    port_id: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    mdn: Text
    esn: Text | None = None
    code: Literal[PORT_CODES]
    message: Annotated[StrictStr, StringConstraints(max_length=1024)] | None = None
    timestamp: Gregorian

    @field_validator("mdn")
    @classmethod
    def _mdn(cls, value: str) -> str:
        return normalize_mdn(value)


class DataFile(_In):
    """The `--data` file."""

    api_key: Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
    carrier: Text = DEFAULT_CARRIER
    subscriptions: list[SubscriptionIn] = []
    usage: dict[Month, dict[str, Bytes]] = {}
    port_messages: list[PortMessageIn] = []


class FaultIn(_In):
    """What the next carrier API requests suffer."""

    status: Annotated[StrictInt, Field(ge=200, le=599)] | None = Field(
        None, description="answer this status (4xx/5xx; any 2xx-5xx with malformed)"
    )
    delay_seconds: Annotated[float, Field(ge=0, le=MAX_DELAY, allow_inf_nan=False)] = 0.0
    count: Annotated[StrictInt, Field(ge=1)] | None = Field(None, description="how many requests; null: until cleared")
    malformed: StrictBool = Field(False, description="answer a body that is not JSON")


class Subscription(BaseModel):
    esn: str | None
    mdn: str
    sim: str | None
    imsi: str | None
    msid: str | None
    csa: str | None
    plan: str | None
    features: list[str]
    model: DeviceModel | None
    activation_date: int | None
    suspended: bool
    carrier: str


class SubscriptionAnswer(BaseModel):
    subscription: Subscription


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


class UsageItem(BaseModel):
    mdn: str
    bytes: int


class UsagePage(BaseModel):
    month: str
    items: list[UsageItem]
    next_cursor: str | None


class UsageMonths(BaseModel):
    months: list[str]


class UsageSummary(BaseModel):
    month: str
    mdns: int
    total_bytes: int


class PortMessage(BaseModel):
    sequence: int = Field(description="1-based position in the message log")
    port_id: str
    mdn: str
    esn: str | None
    code: str
    message: str | None
    timestamp: int


class PortMessagePage(BaseModel):
    messages: list[PortMessage]
    next_cursor: str
    has_more: bool


class Appended(BaseModel):
    appended: int
    total: int


class FaultState(BaseModel):
    status: int | None
    delay_seconds: float
    count: int | None = Field(description="requests still to fault; null: until cleared")
    malformed: bool
    served: int = Field(description="requests faulted so far")


class FaultAnswer(BaseModel):
    fault: FaultState | None


class FaultsCleared(BaseModel):
    cleared: bool
    served: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# ---- state -------------------------------------------------------------------------------------------
class SandboxError(Exception):
    """An error answer: `{"error": {"code", "message"}}` with `status`."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or _ERROR_CODES.get(status, "error")
        self.message = message
        self.headers = headers


class ConfigError(ValueError):
    """The sandbox cannot start as asked (bad --listen or data file); the message says why."""


class DataFileError(ConfigError):
    """The data file cannot be read or is not valid; the message says where."""


class _Malformed(Exception):
    def __init__(self, status: int):
        self.status = status


def _validation_text(errors: Iterable[dict]) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in errors)


@dataclass
class Fault:
    """An injected fault; `released` ends the delays of the requests it holds."""

    status: int | None
    delay_seconds: float
    count: int | None
    malformed: bool
    served: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def state(self) -> dict:
        return {
            "status": self.status,
            "delay_seconds": self.delay_seconds,
            "count": self.count,
            "malformed": self.malformed,
            "served": self.served,
        }


class CarrierData:
    """The sandbox's carrier: subscriptions (indexed by MDN, ESN and SIM), monthly usage and the
    append-only port message log, plus the fault to inject. Single event loop, no locking."""

    def __init__(self, api_key: str, carrier: str = DEFAULT_CARRIER) -> None:
        self.api_key = api_key
        self.carrier = carrier
        self._subscriptions: list[dict] = []
        self._by_mdn: dict[str, dict] = {}
        self._by_esn: dict[str, dict] = {}
        self._by_sim: dict[str, dict] = {}
        self._usage: dict[str, dict[str, int]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._ports: list[dict] = []
        self.fault: Fault | None = None

    # -- loading and saving --
    @classmethod
    def from_dict(cls, raw: Any) -> CarrierData:
        """Build from a parsed data file; DataFileError when it is invalid."""
        try:
            spec = DataFile.model_validate(raw)
        except ValidationError as e:
            raise DataFileError(_validation_text(e.errors(include_url=False, include_input=False))) from None
        data = cls(spec.api_key, spec.carrier)
        for i, sub in enumerate(spec.subscriptions):
            try:
                data.add_subscription(sub)
            except SandboxError as e:
                raise DataFileError(f"subscriptions.{i}: {e.message}") from None
        for month, rows in spec.usage.items():
            try:
                data.set_usage(month, rows, replace=True)
            except SandboxError as e:
                raise DataFileError(f"usage.{month}: {e.message}") from None
        data.append_port_messages(spec.port_messages)
        return data

    @classmethod
    def from_file(cls, path: Path) -> CarrierData:
        try:
            raw = orjson.loads(Path(path).read_bytes())
        except OSError as e:
            raise DataFileError(f"{path}: {e.strerror or e}") from None
        except orjson.JSONDecodeError as e:
            raise DataFileError(f"{path}: not JSON: {e}") from None
        try:
            return cls.from_dict(raw)
        except DataFileError as e:
            raise DataFileError(f"{path}: {e}") from None

    def to_dict(self) -> dict:
        """The data file form of the current state (faults are not part of it)."""
        return {
            "api_key": self.api_key,
            "carrier": self.carrier,
            "subscriptions": [dict(s) for s in self._subscriptions],
            "usage": {m: dict(sorted(rows.items())) for m, rows in sorted(self._usage.items())},
            "port_messages": [dict(m) for m in self._ports],
        }

    def save(self, path: Path) -> None:
        """Write the data file atomically (a temporary file next to it, renamed over it)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(tmp, path)

    # -- subscriptions --
    @staticmethod
    def _esn_key(esn: str) -> str:
        return esn.strip().upper()

    def find(self, *, mdn: str | None = None, esn: str | None = None, sim: str | None = None) -> dict | None:
        """The subscription with that MDN (any formatting), ESN (any case) or SIM; exactly one key."""
        if mdn is not None:
            try:
                return self._by_mdn.get(normalize_mdn(mdn))
            except ValueError as e:
                raise SandboxError(400, f"mdn: {e}") from None
        if esn is not None:
            return self._by_esn.get(self._esn_key(esn))
        if sim is not None:
            return self._by_sim.get(sim.strip())
        raise SandboxError(400, "one of mdn, esn or sim is required")

    def subscriptions(self) -> list[dict]:
        return list(self._subscriptions)

    def add_subscription(self, sub: SubscriptionIn) -> dict:
        record = {
            "esn": sub.esn,
            "mdn": sub.mdn,
            "sim": sub.sim,
            "imsi": sub.imsi,
            "msid": sub.msid,
            "csa": sub.csa,
            "plan": sub.plan,
            "features": list(sub.features),
            "model": sub.model.model_dump() if sub.model is not None else None,
            "activation_date": sub.activation_date,
            "suspended": sub.suspended,
            "carrier": sub.carrier or self.carrier,
        }
        taken = []
        if record["mdn"] in self._by_mdn:
            taken.append(f"mdn {record['mdn']}")
        if record["esn"] is not None and self._esn_key(record["esn"]) in self._by_esn:
            taken.append(f"esn {record['esn']}")
        if record["sim"] is not None and record["sim"] in self._by_sim:
            taken.append(f"sim {record['sim']}")
        if taken:
            raise SandboxError(409, "already taken by another subscription: " + ", ".join(taken))
        self._subscriptions.append(record)
        self._by_mdn[record["mdn"]] = record
        if record["esn"] is not None:
            self._by_esn[self._esn_key(record["esn"])] = record
        if record["sim"] is not None:
            self._by_sim[record["sim"]] = record
        return record

    def remove_subscription(self, record: dict) -> None:
        self._subscriptions.remove(record)
        del self._by_mdn[record["mdn"]]
        if record["esn"] is not None:
            del self._by_esn[self._esn_key(record["esn"])]
        if record["sim"] is not None:
            del self._by_sim[record["sim"]]

    # -- usage --
    def months(self) -> list[str]:
        return sorted(m for m, rows in self._usage.items() if rows)

    def set_usage(self, month: str, rows: dict[str, int | None], *, replace: bool) -> dict:
        """Replace (or merge into, where None removes an MDN) the month's usage; MDNs in any
        formatting, two spellings of one number are refused."""
        normal: dict[str, int | None] = {}
        for raw, used in rows.items():
            try:
                mdn = normalize_mdn(raw)
            except ValueError as e:
                raise SandboxError(400, f"{raw!r}: {e}") from None
            if mdn in normal:
                raise SandboxError(400, f"{raw!r}: {mdn} is given twice")
            normal[mdn] = used
        current = {} if replace else dict(self._usage.get(month, {}))
        for mdn, used in normal.items():
            if used is None:
                current.pop(mdn, None)
            else:
                current[mdn] = used
        self._usage[month] = current
        self._sorted.pop(month, None)
        return {"month": month, "mdns": len(current), "total_bytes": sum(current.values())}

    def usage_page(self, month: str, cursor: str | None, limit: int) -> dict:
        rows = self._usage.get(month, {})
        keys = self._sorted.get(month)
        if keys is None:
            keys = self._sorted[month] = sorted(rows)
        start = bisect.bisect_right(keys, _decode_usage_cursor(cursor)) if cursor is not None else 0
        chunk = keys[start : start + limit]
        more = start + len(chunk) < len(keys)
        return {
            "month": month,
            "items": [{"mdn": k, "bytes": rows[k]} for k in chunk],
            "next_cursor": _encode_usage_cursor(chunk[-1]) if more and chunk else None,
        }

    # -- port messages --
    def append_port_messages(self, messages: Iterable[PortMessageIn]) -> int:
        for m in messages:
            self._ports.append(m.model_dump())
        return len(self._ports)

    def port_count(self) -> int:
        return len(self._ports)

    def port_page(self, after: str | None, limit: int) -> dict:
        start = 0
        if after is not None:
            if not (after.isascii() and after.isdigit() and len(after) <= 18):
                raise SandboxError(400, "after: not a cursor of this message log")
            start = int(after)
            if start > len(self._ports):
                raise SandboxError(
                    400, f"after: cursor {start} is beyond the end of the message log ({len(self._ports)})"
                )
        chunk = self._ports[start : start + limit]
        end = start + len(chunk)
        return {
            "messages": [{"sequence": start + i + 1, **m} for i, m in enumerate(chunk)],
            "next_cursor": str(end),
            "has_more": end < len(self._ports),
        }

    # -- faults --
    def set_fault(self, fault: Fault | None) -> Fault | None:
        """Install (or clear, None) the fault; the requests the previous one delays are released."""
        previous, self.fault = self.fault, fault
        if previous is not None:
            previous.released.set()
        return previous

    def take_fault(self) -> Fault | None:
        """The fault the current carrier API request suffers, counted."""
        fault = self.fault
        if fault is None:
            return None
        fault.served += 1
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                self.fault = None
        return fault


def _encode_usage_cursor(mdn: str) -> str:
    return base64.urlsafe_b64encode(mdn.encode()).decode().rstrip("=")


def _decode_usage_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if normalize_mdn(text) == text and len(cursor) <= 32:
            return text
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise SandboxError(400, "cursor: not a cursor of this API")


# ---- the HTTP app ------------------------------------------------------------------------------------------
bearer = HTTPBearer(auto_error=False, description="the `api_key` of the sandbox's data file")

ERRORS = {
    400: {"model": ErrorBody, "description": "invalid query, path or body"},
    401: {"model": ErrorBody, "description": "no or wrong bearer key"},
}


def _data(request: Request) -> CarrierData:
    return request.app.state.carrier


async def require_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> CarrierData:
    """Every API request carries `Authorization: Bearer <api_key>`."""
    data = _data(request)
    given = credentials.credentials.encode() if credentials is not None else b""
    if not given or not hmac.compare_digest(given, data.api_key.encode()):
        raise SandboxError(
            401, "missing or wrong API key (Authorization: Bearer <api_key>)", headers={"WWW-Authenticate": "Bearer"}
        )
    return data


async def inject_fault(data: CarrierData = Depends(require_key)) -> CarrierData:
    """Apply the injected fault, if any, to an authenticated carrier API request."""
    fault = data.take_fault()
    if fault is None:
        return data
    if fault.delay_seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fault.released.wait(), fault.delay_seconds)
    if fault.malformed:
        raise _Malformed(fault.status or 200)
    if fault.status is not None:
        raise SandboxError(fault.status, f"injected fault: HTTP {fault.status}", code="injected_fault")
    return data


def _one_key(mdn: str | None, esn: str | None, sim: str | None) -> dict[str, str]:
    given = {k: v for k, v in (("mdn", mdn), ("esn", esn), ("sim", sim)) if v is not None}
    if len(given) != 1:
        raise SandboxError(400, "exactly one of mdn, esn or sim is required")
    return given


KeyQuery = Annotated[str | None, Query(min_length=1, max_length=64)]
MonthPath = Annotated[str, PathParam(pattern=MONTH_PATTERN, description="YYYYMM")]

api = APIRouter(prefix="/v1", tags=["carrier"], dependencies=[Depends(inject_fault)], responses=ERRORS)
admin = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_key)], responses=ERRORS)


@api.get(
    "/subscriptions",
    response_model=SubscriptionAnswer,
    summary="Look a subscription up by MDN, ESN or SIM",
    responses={404: {"model": ErrorBody, "description": "no such subscription"}},
)
async def get_subscription(
    request: Request,
    mdn: KeyQuery = None,
    esn: KeyQuery = None,
    sim: KeyQuery = None,
    carrier: KeyQuery = None,
):
    """Exactly one of `mdn` (any formatting), `esn` (any case) or `sim`. With `carrier`, only that
    carrier's subscription is found."""
    data = _data(request)
    record = data.find(**_one_key(mdn, esn, sim))
    if record is None or (carrier is not None and record["carrier"].casefold() != carrier.strip().casefold()):
        raise SandboxError(404, "no such subscription")
    return {"subscription": record}


@api.get("/usage", response_model=UsageMonths, summary="Months that have data usage")
async def usage_months(request: Request):
    return {"months": _data(request).months()}


@api.get("/usage/{month}", response_model=UsagePage, summary="A month's data usage per MDN, paged")
async def usage_month(
    request: Request,
    month: MonthPath,
    cursor: Annotated[str | None, Query(min_length=1, max_length=64, description="the previous next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=USAGE_LIMIT_MAX)] = USAGE_LIMIT_DEFAULT,
):
    """Ascending MDN order; `next_cursor` null on the last page; an unknown month has no items."""
    return _data(request).usage_page(month, cursor, limit)


@api.get("/port_messages", response_model=PortMessagePage, summary="Port-in messages after a cursor")
async def port_messages(
    request: Request,
    after: Annotated[str | None, Query(min_length=1, max_length=32, description="the previous next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=PORT_LIMIT_MAX)] = PORT_LIMIT_DEFAULT,
):
    """Poll with each answer's `next_cursor`: every message is seen exactly once, in order."""
    return _data(request).port_page(after, limit)


def _persist(request: Request) -> None:
    path: Path | None = request.app.state.persist_path
    if path is None:
        return
    try:
        _data(request).save(path)
    except OSError as e:
        log.error("could not write the data file %s: %s", path, e)
        raise SandboxError(
            500, f"the change is kept in memory but the data file could not be written: {e}", code="persist_failed"
        ) from None


@admin.get("/subscriptions", response_model=SubscriptionList, summary="All subscriptions")
async def list_subscriptions(request: Request):
    return {"subscriptions": _data(request).subscriptions()}


@admin.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionAnswer,
    summary="Add a subscription",
    responses={409: {"model": ErrorBody, "description": "MDN, ESN or SIM already taken"}},
)
async def add_subscription(request: Request, body: SubscriptionIn):
    record = _data(request).add_subscription(body)
    _persist(request)
    return {"subscription": record}


@admin.delete(
    "/subscriptions",
    response_model=SubscriptionAnswer,
    summary="Remove a subscription",
    responses={404: {"model": ErrorBody, "description": "no such subscription"}},
)
async def remove_subscription(request: Request, mdn: KeyQuery = None, esn: KeyQuery = None, sim: KeyQuery = None):
    data = _data(request)
    record = data.find(**_one_key(mdn, esn, sim))
    if record is None:
        raise SandboxError(404, "no such subscription")
    data.remove_subscription(record)
    _persist(request)
    return {"subscription": record}


@admin.put("/usage/{month}", response_model=UsageSummary, summary="Replace a month's usage")
async def put_usage(request: Request, month: MonthPath, body: Annotated[dict[str, Bytes], Body()]):
    summary = _data(request).set_usage(month, body, replace=True)
    _persist(request)
    return summary


@admin.patch("/usage/{month}", response_model=UsageSummary, summary="Merge into a month's usage (null removes)")
async def patch_usage(request: Request, month: MonthPath, body: Annotated[dict[str, Bytes | None], Body()]):
    summary = _data(request).set_usage(month, body, replace=False)
    _persist(request)
    return summary


@admin.post("/port_messages", status_code=201, response_model=Appended, summary="Append port-in messages")
async def append_port_messages(request: Request, body: Annotated[list[PortMessageIn], Body()]):
    total = _data(request).append_port_messages(body)
    _persist(request)
    return {"appended": len(body), "total": total}


@admin.get("/faults", response_model=FaultAnswer, summary="The injected fault")
async def get_fault(request: Request):
    fault = _data(request).fault
    return {"fault": fault.state() if fault is not None else None}


@admin.post("/faults", response_model=FaultAnswer, summary="Inject a fault into the next carrier API requests")
async def set_fault(request: Request, body: FaultIn):
    if body.status is not None and body.status < 400 and not body.malformed:
        raise SandboxError(400, "status: a fault's status is 4xx or 5xx (2xx and 3xx only with malformed)")
    if body.status is None and body.delay_seconds == 0 and not body.malformed:
        raise SandboxError(400, "a fault needs a status, a delay_seconds or malformed")
    fault = Fault(body.status, body.delay_seconds, body.count, body.malformed)
    _data(request).set_fault(fault)
    log.info("fault injected: %s", fault.state())
    return {"fault": fault.state()}


@admin.delete("/faults", response_model=FaultsCleared, summary="Clear the injected fault")
async def clear_fault(request: Request):
    previous = _data(request).set_fault(None)
    return {"cleared": previous is not None, "served": previous.served if previous is not None else 0}


def _error(status: int, code: str, message: str, headers: dict | None = None, details: list | None = None):
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def create_app(data: CarrierData, *, persist_path: Path | None = None) -> FastAPI:
    """The sandbox's ASGI app over `data`; with `persist_path` every admin change is saved there."""
    app = FastAPI(
        title="Switchboard carrier sandbox",
        version=__version__,
        description=(__doc__ or "").split("HTTP API\n--------\n", 1)[-1],
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.carrier = data
    app.state.persist_path = persist_path
    app.include_router(api)
    app.include_router(admin)

    @app.exception_handler(SandboxError)
    async def sandbox_error(request: Request, exc: SandboxError):
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(_Malformed)
    async def malformed(request: Request, exc: _Malformed):
        return Response(b'{"injected": "malformed', status_code=exc.status, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg"))} for e in exc.errors()]
        message = _validation_text(details) or "invalid request"
        content_type = request.headers.get("content-type", "")
        if any(d["loc"][:1] == ["body"] for d in details) and "json" not in content_type.lower():
            message += " (send the body as JSON with Content-Type: application/json)"
        return _error(400, "invalid", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = _ERROR_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return _error(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "internal error")

    return app


# ---- running it -------------------------------------------------------------------------------------------
def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[v6]:PORT` for IPv6) -> (host, port); port 0 asks for any free port (the
    sandbox then prints `carrier-sandbox: listening http=HOST:PORT`); ConfigError when malformed."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {text!r}: expected HOST:PORT")
    return host, int(port)


class _Server(uvicorn.Server):
    """SIGTERM/SIGINT start a graceful shutdown that first releases the requests an injected delay
    holds; the process then exits normally (status 0) instead of re-raising the signal."""

    def __init__(self, config: uvicorn.Config, data: CarrierData):
        super().__init__(config)
        self._data = data

    @contextlib.contextmanager
    def capture_signals(self):
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        self._data.set_fault(None)
        self.handle_exit(sig, None)


async def serve(
    data: CarrierData, host: str, port: int, *, persist_path: Path | None = None, log_level: str = "info"
) -> None:
    """Serve the sandbox until SIGTERM/SIGINT."""
    config = uvicorn.Config(
        create_app(data, persist_path=persist_path),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        loop="none",
        lifespan="off",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    log.info(
        "carrier sandbox (carrier %r): %d subscriptions, %d months of usage, %d port messages; "
        "API on http://%s:%d/v1, docs at /docs%s",
        data.carrier,
        len(data.subscriptions()),
        len(data.months()),
        data.port_count(),
        host,
        port,
        f"; changes saved to {persist_path}" if persist_path else "",
    )
    server = _Server(config, data)

    async def announce() -> None:
        """Say which port HTTP got (`--listen host:0` asks for any free one)."""
        while not server.started:
            await asyncio.sleep(0.02)
        got = next((s.getsockname()[1] for srv in server.servers for s in srv.sockets), port)
        print(f"carrier-sandbox: listening http={host}:{got}", flush=True)

    task = asyncio.ensure_future(announce())
    try:
        await server.serve()
    finally:
        task.cancel()


def run(listen: str, data_file: Path, *, persist: bool = False, log_level: str = "info") -> None:
    """The `switchboard carrier-sandbox` command: load the data file, serve until a signal.
    ConfigError (before serving) for a bad --listen or data file."""
    host, port = parse_listen(listen)
    data = CarrierData.from_file(data_file)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - platforms without uvloop
        runner = asyncio.run
    runner(serve(data, host, port, persist_path=Path(data_file) if persist else None, log_level=log_level))
