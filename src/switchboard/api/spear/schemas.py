"""OpenAPI documentation models for the spear dialect (the handlers render by hand: these
describe the JSON form; XML carries the same fields with dashed names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class UserOut(BaseModel):
    id: int
    username: str
    name: str
    master: bool
    email: str | None
    category: str = Field(description="'Admin' or 'Normal'")
    time_zone: str
    webhook_url: str | None = Field(description="alert events are POSTed here as JSON when set")
    created_at: str = Field(description="YYYY-MM-DD HH:MM:SS (UTC)")
    deleted_at: str | None


class ServerOut(BaseModel):
    id: int
    name: str
    ip_address: str
    description: str | None
    private: bool
    region: str | None
    version: str | None
    last_login_date: str | None
    last_login_ip: str | None
    created_at: str
    deleted_at: str | None


class ServerCreatedOut(ServerOut):
    agent_key: str = Field(description="shown once: the probe software's key; only its hash is kept")


class EndpointOut(BaseModel):
    id: int
    name: str
    description: str | None
    ip_address: str
    is_server: bool
    created_at: str
    deleted_at: str | None


class VoipTestOut(BaseModel):
    id: int
    endpoint_id: int
    server_id: int
    codec: str
    alert_threshold: float
    num_tests: int
    interpacket_ms: int
    interval_seconds: int = Field(description="how often the probe runs the test (seconds, minimum 5)")
    mos: float | None = Field(description="MOS of the newest result; null before the first")
    last_tested_at: str | None = Field(description="time of the newest result")
    alerting_since: str | None
    created_at: str
    updated_at: str
    deleted_at: str | None


class ResultOut(BaseModel):
    id: int
    server_id: int
    tested_at: str
    packets_sent: int
    packets_received: int
    loss_pct: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    jitter_ms: float | None
    mos: float | None
    error: str | None


class SummaryOut(BaseModel):
    period_start: str = Field(description="start of the UTC hour or day")
    count: int
    packets_sent: int
    packets_received: int
    loss_pct: float | None = Field(description="share of all the period's packets lost")
    rtt_avg_ms: float | None = Field(description="mean of the results' average RTT")
    rtt_min_ms: float | None
    rtt_max_ms: float | None
    jitter_ms: float | None = Field(description="mean jitter")
    mos_avg: float | None
    mos_min: float | None


class AlertOut(BaseModel):
    id: int
    voip_test_id: int
    kind: str = Field(description="alerting | cleared")
    mos: float | None
    created_at: str
    webhook_status: str = Field(description="none | pending | delivered | failed")
    webhook_attempts: int
    webhook_error: str | None
    delivered_at: str | None


class Metadata(BaseModel):
    count: int


def collection(model: type[BaseModel]) -> type[BaseModel]:
    return type(
        f"{model.__name__}Collection",
        (BaseModel,),
        {"__annotations__": {"collection": list[model], "metadata": Metadata}},
    )


class Errors(BaseModel):
    errors: list[str]


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        s["required"] = required
    return s


S, N, INT, B = {"type": "string"}, {"type": "number"}, {"type": "integer"}, {"type": "boolean"}
NS = {"type": ["string", "null"]}

USER_IN = _obj(
    {
        "username": S,
        "password": S,
        "name": S,
        "email": NS,
        "category": {"enum": ["Admin", "Normal"]},
        "time_zone": S,
        "webhook_url": NS,
    }
)
SERVER_IN = _obj({"name": S, "ip_address": S, "region": NS, "description": NS, "private": B})
ENDPOINT_IN = _obj({"name": S, "ip_address": S, "description": NS})
VOIP_TEST_IN = _obj(
    {
        "server_id": INT,
        "codec": S,
        "alert_threshold": N,
        "num_tests": INT,
        "interpacket_ms": INT,
        "interval_seconds": {"type": "integer", "minimum": 5, "default": 60},
    }
)


def body(item: str, schema: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    """openapi_extra for a request body `{"<item>": {...}}` in JSON, `<item>...</item>` in XML."""
    inner = dict(schema, required=required) if required else schema
    return {
        "requestBody": {
            "required": bool(required),
            "content": {
                "application/json": {"schema": _obj({item: inner}, [item])},
                "application/xml": {"schema": dict(inner, xml={"name": item.replace("_", "-")})},
            },
        }
    }


def responses(model: type[BaseModel] | None = None, *codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    if model is not None:
        out[200] = {"model": model, "content": {"application/xml": {}}}
    for c in (401, *codes):
        out[c] = {
            "model": Errors,
            "description": {
                400: "malformed body",
                401: "no or wrong credentials",
                403: "not yours",
                404: "unknown id",
                422: "validation failed",
            }.get(c, ""),
        }
    return out
