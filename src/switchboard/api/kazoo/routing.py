"""kazoo route classes, request helpers and the carrier glue (which cluster's carrier a request
talks to, carrier failures as 502/504)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Security
from fastapi.security import APIKeyHeader

from switchboard.api.common import DialectRoute, DialectSpec, after_commit, json_body
from switchboard.api.kazoo import auth, envelope
from switchboard.carrier.adapter import CarrierClient, CarrierError
from switchboard.domain.errors import Invalid, Upstream
from switchboard.domain.kazoo import CarrierMissing, Doc, KazooInvalid, normalize_mdn

CLUSTER_HEADER = "X-Kazoo-Cluster-ID"


class SuperRoute(DialectRoute):
    dialect = DialectSpec("kazoo", envelope.error_response, auth.authenticate_super)


class MasterRoute(DialectRoute):
    dialect = DialectSpec("kazoo", envelope.error_response, auth.authenticate_master)


class SuperCarrierRoute(SuperRoute):
    """Routes that call the carrier: no database transaction is held across the call."""

    own_transaction = True


class MasterCarrierRoute(MasterRoute):
    own_transaction = True


TOKEN = Security(
    APIKeyHeader(
        name=auth.HEADER,
        auto_error=False,
        scheme_name="kazoo_auth_token",
        description="auth_token from PUT /v2/user_auth",
    )
)


def router(tag: str, route_class=SuperRoute, *, token: bool = True) -> APIRouter:
    return APIRouter(route_class=route_class, tags=[f"kazoo: {tag}"], dependencies=[TOKEN] if token else [])


async def body(request: Request, *, required: bool = True) -> dict:
    """The request's envelope (`{"data": ..., flags}`) as a JSON object."""
    return await json_body(request, required=required, missing='a JSON body is required: {"data": {...}}')


def flag(env: dict, query: dict, name: str, default: bool = False) -> bool:
    """A boolean flag from the envelope or the query string (`recursive`, `cascade`)."""
    value: Any = env.get(name, query.get(name))
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", ""):
        return False
    raise Invalid(name, "must be true or false")


def carrier_name(env: dict, request: Request) -> str | None:
    value = env.get("carrier", request.query_params.get("carrier"))
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid("carrier", "must be a carrier name")
    return value


async def cluster_of(request: Request) -> Doc:
    """The cluster named by X-Kazoo-Cluster-ID (the master cluster without one); unknown → 404."""
    services = request.app.state.services
    async with services.db.transaction(write=False) as conn:
        return await services.kazoo.cluster(conn, request.headers.get(CLUSTER_HEADER) or None)


def carrier_client(request: Request, cluster: Doc) -> CarrierClient:
    """The cluster's CarrierClient (carrier.clients keeps one per cluster)."""
    return request.app.state.services.carrier_clients.client_for(cluster)


async def carrier_pages(pages):
    """Iterate the carrier's pages (an async iterator); failures become 502/504."""
    it = pages.__aiter__()
    while True:
        try:
            page = await it.__anext__()
        except StopAsyncIteration:
            return
        except CarrierError as e:
            raise Upstream(e.status, f"carrier: {e}") from None
        yield page


def devices_changed(request: Request):
    """After a write that touches devices: the registrar's kazoo accounts are reloaded."""
    services = request.app.state.services

    async def reload() -> None:
        async with services.db.transaction(write=False) as conn:
            await services.pbx.load_devices(conn, services.kazoo)

    after_commit(request, reload)


async def carrier_call(coro):
    """Await a carrier call; its failures become 502/504 in the kazoo envelope."""
    try:
        return await coro
    except CarrierError as e:
        raise Upstream(e.status, f"carrier: {e}") from None
    except ValueError as e:  # the adapter refuses a lookup key it cannot send
        raise Invalid(None, str(e)) from None


def lookup_keys(data: dict, allowed: tuple[str, ...]) -> dict:
    """The one key a carrier lookup uses (mdn over esn over sim), validated."""
    problems = []
    for k in allowed:
        v = data.get(k)
        if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > 64):
            problems.append((f"{k}", "type", "Value is not a non-empty string"))
    if problems:
        raise KazooInvalid(problems)
    for k in allowed:
        if data.get(k):
            return {k: normalize_mdn(data[k]) if k == "mdn" else data[k].strip()}
    names = " or ".join(allowed)
    raise KazooInvalid(
        [(k, "required", f"Field is required when neither of the others is given ({names})") for k in allowed]
    )


# ---- OpenAPI: request bodies (documentation; handlers read the raw body) ---------------------------
_S, _B, _O = {"type": "string"}, {"type": "boolean"}, {"type": "object"}
_SIP = {"type": "object", "properties": {"realm": _S, "username": _S, "password": _S}}
_DEVICE = {
    "type": "object",
    "properties": {
        "name": _S,
        "voice": {"type": "object", "properties": {"protocol": _S, "sip": _SIP}},
        "data": _O,
        "model": _O,
    },
}


def doc(data: dict | None = None, **flags: dict) -> dict:
    """openapi_extra for a route taking KAZOO's envelope `{"data": {...}, flags...}`."""
    schema = {"type": "object", "properties": {"data": data or _O, **flags}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


LOOKUP = {"type": "object", "properties": {"esn": _S, "sim": _S, "mdn": _S}}
BODIES = {
    "account": doc({"type": "object", "required": ["name"], "properties": {"name": _S, "realm": _S}}),
    "cluster": doc(
        {
            "type": "object",
            "required": ["mvno_id", "api_url", "api_key"],
            "properties": {
                "mvno_id": _S,
                "api_url": {**_S, "format": "uri"},
                "api_key": _S,
                "hosted_billing_account_id": _S,
            },
        }
    ),
    "device_import": doc({"type": "object", "properties": {"esn": _S, "mdn": _S, **_DEVICE["properties"]}}, carrier=_S),
    "device_patch": doc(_DEVICE, recursive=_B),
    "lookup": doc(LOOKUP, carrier=_S),
    "sub_import": doc({"type": "object", "properties": {**LOOKUP["properties"], "device_data": _DEVICE}}, carrier=_S),
    "sub_patch": doc(_O, recursive=_B),
    "move": doc(
        {
            "type": "object",
            "required": ["target_account_id"],
            "properties": {"target_account_id": _S, "target_cluster_id": _S},
        },
        target_account_id=_S,
        target_cluster_id=_S,
    ),
    "port_status": doc(
        {
            "type": "object",
            "required": ["code"],
            "properties": {
                "code": {
                    "type": "string",
                    "enum": ["unconfirmed", "submitted", "pending", "scheduled", "completed", "rejected", "canceled"],
                },
                "source": _S,
                "message": _S,
            },
        }
    ),
    "empty": doc(_O),
    "routing": doc({"type": "object", "required": ["name"], "properties": {"name": _S}}),
}


async def carrier_record(request: Request, keys: dict, carrier: str | None) -> tuple[Doc, dict]:
    """(cluster, the carrier's subscription record) for one lookup key; none at the carrier → 404."""
    cluster = await cluster_of(request)
    record = await carrier_call(carrier_client(request, cluster).subscription(**keys, carrier=carrier))
    if record is None:
        raise CarrierMissing(next(iter(keys.values())))
    return cluster, record
