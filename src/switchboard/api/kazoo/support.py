"""kazoo support routes over devices, phone numbers, data usage and ports.

- `PUT /v2/support/accounts/{ACCOUNT_ID}/devices/import` (super_master): looks the subscription up at
  the carrier (by `mdn` when given, else `esn`), then creates the device and its subscription
  document in the account: 201 with the device. `data` (the usage policy) defaults to no cap.
  The carrier has no such subscription → 404; the number or the device is already in the
  database → 409.
- `GET /v2/support/phone_numbers/{MDN}/device`: the device with that MDN in any account, with
  `account_id` beside `data`.
- `GET /v2/support/phone_numbers/{MDN}/subscription`, `GET /v2/support/devices/{ESN}/subscription`:
  the carrier's record (`?carrier=` passed to the carrier).
- `PATCH /v2/support/accounts/{ACCOUNT_ID}/devices/{DEVICE_ID}`: any field; `recursive` (envelope or
  query, default false) chooses a deep or a top-level merge; sets
  `additional_properties.last_manual_update` (Gregorian seconds).
- `GET /v2/support/usage/unknown_numbers[/{MONTH}]` and `/usage/audit[/{MONTH}]` (`from`, `to`,
  `month`): the carrier's monthly usage per MDN, for numbers no account holds (unknown_numbers) or
  grouped by the account that holds them (audit; `unknown_account` for the rest). `empty_months`
  lists the requested months that contribute nothing, only when there are some.
  `/usage/audit/{MONTH}/csv`, or `Accept: text/csv` on the audit routes, streams
  `month,account_id,mdn,bytes` rows (header first) page by page as the carrier sends them.
- `POST /v2/support/ports/poll` (master): pulls the carrier's port messages now (the serve
  process also polls every SWITCHBOARD_KAZOO_PORT_POLL_SECONDS); answers the port documents changed.
- `POST /v2/support/ports/in/{PORT_ID}/status` (master): sets a port's status by hand, with
  `forced_update: true`; completed/canceled update the device (see domain/kazoo/ports.py)."""

from __future__ import annotations

import csv
import io
import logging

from fastapi import Request
from fastapi.responses import StreamingResponse

from switchboard.api.common import ctx
from switchboard.api.kazoo import envelope
from switchboard.api.kazoo.routing import (
    BODIES,
    MasterCarrierRoute,
    MasterRoute,
    SuperCarrierRoute,
    body,
    carrier_call,
    carrier_client,
    carrier_name,
    carrier_pages,
    carrier_record,
    cluster_of,
    devices_changed,
    flag,
    lookup_keys,
    router,
)
from switchboard.carrier.poller import poll_ports
from switchboard.domain.errors import Invalid, Upstream
from switchboard.domain.kazoo import (
    PORT,
    KazooInvalid,
    check_id,
    get_doc,
    month_range,
    normalize_mdn,
)

log = logging.getLogger("switchboard.kazoo")

devices_api = router("devices")
carrier_api = router("carrier", SuperCarrierRoute)
ports_api = router("ports", MasterCarrierRoute)
ports_local_api = router("ports", MasterRoute)


@carrier_api.put(
    "/accounts/{account_id}/devices/import",
    status_code=201,
    openapi_extra=BODIES["device_import"],
    summary="Import an already active device",
)
async def import_device(request: Request, account_id: str):
    services, _, _ = ctx(request)
    env = await body(request)
    data = envelope.data_of(env)
    keys = lookup_keys(data, ("mdn", "esn"))
    carrier = carrier_name(env, request)
    services.kazoo.check_device_input(data)
    async with services.db.transaction(write=False) as conn:
        await services.kazoo.account(conn, account_id)
    cluster, record = await carrier_record(request, keys, carrier)
    async with services.db.transaction() as conn:
        doc = await services.kazoo.import_device(
            conn, account_id, data, record, record.get("carrier") or carrier or "", cluster.id
        )
    devices_changed(request)
    return envelope.respond(request, services.kazoo.device_view(doc), 201, carrier=doc.body.get("carrier"))


@devices_api.get("/phone_numbers/{mdn}/device", summary="Lookup a TOP device by its MDN in any account")
async def device_by_mdn(request: Request, mdn: str):
    services, conn, _ = ctx(request)
    doc = await services.kazoo.device_by_mdn(conn, mdn)
    return envelope.respond(
        request, services.kazoo.device_view(doc), carrier=doc.body.get("carrier"), account_id=doc.account_id
    )


@carrier_api.get("/phone_numbers/{mdn}/subscription", summary="A phone number's subscription at the carrier")
async def subscription_by_mdn(request: Request, mdn: str):
    return await _subscription(request, {"mdn": normalize_mdn(mdn)})


@carrier_api.get("/devices/{esn}/subscription", summary="A device's subscription at the carrier")
async def subscription_by_esn(request: Request, esn: str):
    if not esn.strip() or len(esn) > 64:
        raise Invalid("esn", "must be a device ESN/MEID/IMEI")
    return await _subscription(request, {"esn": esn.strip()})


async def _subscription(request: Request, keys: dict):
    services, _, _ = ctx(request)
    _, record = await carrier_record(request, keys, carrier_name({}, request))
    view = services.kazoo.subscription_of(record)
    view.pop("activation_date", None)
    return envelope.respond(request, view, carrier=record.get("carrier"))


@devices_api.patch(
    "/accounts/{account_id}/devices/{device_id}",
    summary="Patch a device document",
    openapi_extra=BODIES["device_patch"],
)
async def patch_device(request: Request, account_id: str, device_id: str):
    services, conn, _ = ctx(request)
    env = await body(request)
    data = envelope.data_of(env)
    recursive = flag(env, dict(request.query_params), "recursive")
    doc = await services.kazoo.patch_device(conn, account_id, device_id, data, recursive=recursive)
    devices_changed(request)
    return envelope.respond(request, services.kazoo.device_view(doc), carrier=doc.body.get("carrier"))


# ---- usage --------------------------------------------------------------------------------------------
def _months(request: Request, month: str | None) -> list[str]:
    q = request.query_params
    for k in ("from", "to", "month"):
        if q.get(k) is not None and not q.get(k):
            raise KazooInvalid([(k, "pattern", "must be a month as YYYYMM")])
    return month_range(q.get("from"), q.get("to"), month or q.get("month"))


async def _owners(services, page: list[tuple[str, int]]) -> dict[str, str]:
    """mdn -> account id for one page of the carrier's usage (the adapter gives E.164 MDNs and
    whole byte counts)."""
    async with services.db.transaction(write=False) as conn:
        return await services.kazoo.owners_of(conn, [m for m, _ in page])


async def _usage(request: Request, months: list[str], *, audit: bool) -> dict:
    services, _, _ = ctx(request)
    client = carrier_client(request, await cluster_of(request))
    total, empty = 0, []
    per_mdn: dict[str, int] = {}
    accounts: dict[str, dict[str, int]] = {}
    for month in months:
        month_total = 0
        async for page in carrier_pages(client.usage(month)):
            owners = await _owners(services, page)
            for mdn, used in page:
                owner = owners.get(mdn)
                if audit:
                    bucket = accounts.setdefault(owner or "unknown_account", {})
                    bucket[mdn] = bucket.get(mdn, 0) + used
                elif owner is None:
                    per_mdn[mdn] = per_mdn.get(mdn, 0) + used
                else:
                    continue
                month_total += used
        total += month_total
        if month_total == 0:
            empty.append(month)
    out: dict = {"from": months[0], "to": months[-1], "total": total}
    if audit:
        out["accounts"] = accounts
    else:
        out["per_mdn"] = per_mdn
    if empty:
        out["empty_months"] = empty
    return out


@carrier_api.get("/usage/unknown_numbers", summary="Data usage of numbers no account holds")
async def unknown_numbers(request: Request):
    return envelope.respond(request, await _usage(request, _months(request, None), audit=False))


@carrier_api.get("/usage/unknown_numbers/{month}", summary="Data usage of unknown numbers for one month")
async def unknown_numbers_month(request: Request, month: str):
    return envelope.respond(request, await _usage(request, _months(request, month), audit=False))


def _wants_csv(request: Request) -> bool:
    return "text/csv" in (request.headers.get("accept") or "").lower()


@carrier_api.get("/usage/audit", summary="Data usage across all accounts")
async def audit(request: Request):
    months = _months(request, None)
    if _wants_csv(request):
        return await _audit_csv(request, months)
    return envelope.respond(request, await _usage(request, months, audit=True))


@carrier_api.get("/usage/audit/{month}", summary="Data usage across all accounts for one month")
async def audit_month(request: Request, month: str):
    months = _months(request, month)
    if _wants_csv(request):
        return await _audit_csv(request, months)
    return envelope.respond(request, await _usage(request, months, audit=True))


@carrier_api.get(
    "/usage/audit/{month}/csv",
    summary="Data usage across all accounts for one month, as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "month,account_id,mdn,bytes"}},
)
async def audit_csv(request: Request, month: str):
    return await _audit_csv(request, month_range(None, None, month))


async def _audit_csv(request: Request, months: list[str]) -> StreamingResponse:
    """Rows stream page by page. The first page is fetched before answering, so a carrier that is
    down is a 502/504 envelope; a failure after the first rows ends the stream early (logged)."""
    services, _, _ = ctx(request)
    client = carrier_client(request, await cluster_of(request))
    first_pages = carrier_pages(client.usage(months[0]))
    try:
        first = await first_pages.__anext__()
    except StopAsyncIteration:
        first = None

    def line(*cells) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(cells)
        return buf.getvalue().encode()

    async def rows(month: str, page):
        owners = await _owners(services, page)
        return b"".join(line(month, owners.get(m, "unknown_account"), m, b) for m, b in page)

    async def stream():
        yield line("month", "account_id", "mdn", "bytes")
        try:
            if first is not None:
                yield await rows(months[0], first)
                async for page in first_pages:
                    yield await rows(months[0], page)
            for month in months[1:]:
                async for page in carrier_pages(client.usage(month)):
                    yield await rows(month, page)
        except Upstream as e:
            log.warning("usage audit CSV cut short: %s", e)

    name = f"audit-{months[0]}" + (f"-{months[-1]}" if len(months) > 1 else "") + ".csv"
    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Request-ID": envelope.request_id(request)},
    )


# ---- ports ----------------------------------------------------------------------------------------------
@ports_api.post("/ports/poll", summary="Poll the port messages from the carrier now")
async def ports_poll(request: Request):
    services, _, _ = ctx(request)
    await body(request, required=False)
    cluster = await cluster_of(request)
    client = carrier_client(request, cluster)
    count, docs = await carrier_call(poll_ports(services.db, services.kazoo, client, cluster.id))
    if any(d.body.get("device_id") for d in docs):
        devices_changed(request)
    return envelope.respond(
        request, {"cluster_id": cluster.id, "messages": count, "ports": [services.kazoo.port_view(d) for d in docs]}
    )


@ports_local_api.post(
    "/ports/in/{port_id}/status", summary="Update a port-in document's status", openapi_extra=BODIES["port_status"]
)
async def port_status(request: Request, port_id: str):
    services, conn, _ = ctx(request)
    data = envelope.data_of(await body(request))
    doc = await services.kazoo.set_port_status(conn, port_id, data)
    devices_changed(request)
    return envelope.respond(request, services.kazoo.port_view(doc))


@ports_local_api.get("/ports/in/{port_id}", summary="A port-in document")
async def port_get(request: Request, port_id: str):
    services, conn, _ = ctx(request)
    return envelope.respond(request, services.kazoo.port_view(await get_doc(conn, PORT, check_id(port_id, PORT))))
