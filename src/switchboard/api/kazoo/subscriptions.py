"""kazoo support routes over subscription documents.

- `POST /v2/support/subscriptions/lookup`: the carrier's record (`data.carrier_data`) and, when the
  database holds the subscription, its full document (`data.document`, private fields included)
  and `data.account_id`; both null otherwise.
- `PUT /v2/support/accounts/{ACCOUNT_ID}/subscriptions/import`: 201 with the new subscription; a
  subscription tied to a device (the carrier knows its ESN) also creates the device, from
  `data.device_data`.
- `DELETE .../subscriptions/{SUBSCRIPTION_ID}` (`?cascade=true` also deletes the device; without
  it the device stays, unlinked); `PATCH` (any field, `recursive`, `last_manual_update`);
  `POST .../move` (`target_account_id` and optional `target_cluster_id`, read from `data` as the
  schema says or from the envelope as the example sends them; the device moves along)."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx
from switchboard.api.kazoo import envelope
from switchboard.api.kazoo.routing import (
    BODIES,
    SuperCarrierRoute,
    body,
    carrier_name,
    carrier_record,
    devices_changed,
    flag,
    lookup_keys,
    router,
)
from switchboard.domain.kazoo import invalid

api = router("subscriptions")
carrier_api = router("subscriptions", SuperCarrierRoute)


def _view(request: Request, doc):
    services = request.app.state.services
    return envelope.respond(request, services.kazoo.subscription_view(doc), carrier=doc.body.get("pvt_carrier_name"))


@carrier_api.post("/subscriptions/lookup", summary="Lookup a carrier subscription", openapi_extra=BODIES["lookup"])
async def lookup(request: Request):
    services, _, _ = ctx(request)
    env = await body(request)
    keys = lookup_keys(envelope.data_of(env), ("esn", "sim", "mdn"))
    _, record = await carrier_record(request, keys, carrier_name(env, request))
    async with services.db.transaction(write=False) as conn:
        doc = await services.kazoo.subscription_in_db(conn, record)
    carrier_data = {
        k: record.get(k)
        for k in (
            "esn",
            "mdn",
            "sim",
            "imsi",
            "plan",
            "features",
            "carrier",
            "carrier_data",
            "activation_date",
            "suspended",
        )
    }
    data = {
        "carrier_data": carrier_data,
        "account_id": doc.account_id if doc else None,
        "document": services.kazoo.subscription_document(doc) if doc else None,
    }
    return envelope.respond(request, data)


@carrier_api.put(
    "/accounts/{account_id}/subscriptions/import",
    status_code=201,
    openapi_extra=BODIES["sub_import"],
    summary="Import an active subscription",
)
async def import_subscription(request: Request, account_id: str):
    services, _, _ = ctx(request)
    env = await body(request)
    data = envelope.data_of(env)
    keys = lookup_keys(data, ("esn", "sim", "mdn"))
    device_data = data.get("device_data")
    if device_data is not None and not isinstance(device_data, dict):
        raise invalid("device_data", "type", "Value is not of type 'object'")
    if device_data:
        services.kazoo.check_device_input(device_data)
    async with services.db.transaction(write=False) as conn:
        await services.kazoo.account(conn, account_id)
    carrier = carrier_name(env, request)
    cluster, record = await carrier_record(request, keys, carrier)
    async with services.db.transaction() as conn:
        doc = await services.kazoo.import_subscription(
            conn,
            account_id,
            record,
            device_data,
            record.get("carrier") or carrier or "",
            cluster.id,
            cluster.body.get("mvno_id"),
        )
    devices_changed(request)
    return envelope.respond(
        request, services.kazoo.subscription_view(doc), 201, carrier=doc.body.get("pvt_carrier_name")
    )


@api.delete("/accounts/{account_id}/subscriptions/{sub_id}", summary="Delete a subscription document")
async def delete_subscription(request: Request, account_id: str, sub_id: str):
    services, conn, _ = ctx(request)
    env = await body(request, required=False)
    cascade = flag(env, dict(request.query_params), "cascade")
    doc = await services.kazoo.delete_subscription(conn, account_id, sub_id, cascade=cascade)
    devices_changed(request)
    return _view(request, doc)


@api.patch(
    "/accounts/{account_id}/subscriptions/{sub_id}",
    summary="Patch a subscription document",
    openapi_extra=BODIES["sub_patch"],
)
async def patch_subscription(request: Request, account_id: str, sub_id: str):
    services, conn, _ = ctx(request)
    env = await body(request)
    recursive = flag(env, dict(request.query_params), "recursive")
    doc = await services.kazoo.patch_subscription(conn, account_id, sub_id, envelope.data_of(env), recursive=recursive)
    return _view(request, doc)


@api.post(
    "/accounts/{account_id}/subscriptions/{sub_id}/move",
    openapi_extra=BODIES["move"],
    summary="Move a subscription to a different account and/or cluster",
)
async def move_subscription(request: Request, account_id: str, sub_id: str):
    services, conn, _ = ctx(request)
    env = await body(request)
    data = env.get("data") if isinstance(env.get("data"), dict) else {}
    target_account = data.get("target_account_id", env.get("target_account_id"))
    target_cluster = data.get("target_cluster_id", env.get("target_cluster_id"))
    doc = await services.kazoo.move_subscription(conn, account_id, sub_id, target_account, target_cluster)
    devices_changed(request)
    return _view(request, doc)
