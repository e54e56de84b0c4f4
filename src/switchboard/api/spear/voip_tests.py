"""Spear VoIP tests: /users/{uid}/endpoints/{eid}/voip_tests[/{id}[/activate]].

A test joins an endpoint to a probe server the endpoint's owner may use (active; community or
their own private server). Defaults: codec G.711, alert_threshold 3.5 (MOS), num_tests 25,
interpacket_ms 100, interval_seconds 60 (minimum 5). The probe servers write the results; a test
shows the newest one's `mos` and `last_tested_at` (null until the first result), and
results.py serves the series, its summary and the alerts."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx, parse_id
from switchboard.api.spear import schemas as sc
from switchboard.api.spear.envelope import render, render_list
from switchboard.api.spear.routing import body_of, each, location, router, status_of, user_id_of
from switchboard.domain.entities import VoipTest

api = router("voip tests")
BASE = "/users/{user_id}/endpoints/{endpoint_id}/voip_tests"


def fields(v: VoipTest):
    return (
        ("id", v.id),
        ("endpoint_id", v.endpoint_id),
        ("server_id", v.server_id),
        ("codec", v.codec),
        ("alert_threshold", v.alert_threshold),
        ("num_tests", v.num_tests),
        ("interpacket_ms", v.interpacket_ms),
        ("interval_seconds", v.interval_seconds),
        ("mos", v.last_mos),
        ("last_tested_at", v.last_tested_at),
        ("alerting_since", v.alerting_since),
        ("created_at", v.created_at),
        ("updated_at", v.updated_at),
        ("deleted_at", v.deleted_at),
    )


def _ids(request: Request, user_id: str, endpoint_id: str, test_id: str | None = None):
    ids = [user_id_of(request, user_id), parse_id(endpoint_id, "endpoint")]
    if test_id is not None:
        ids.append(parse_id(test_id, "voip test"))
    return ids


@api.get(BASE, responses=sc.responses(sc.collection(sc.VoipTestOut), 403, 404, 422))
async def list_tests(
    request: Request, user_id: str, endpoint_id: str, deleted: str | None = None, status: str | None = None
):
    svc, conn, actor = ctx(request)
    tests = await svc.monitoring.list_tests(
        conn, actor, *_ids(request, user_id, endpoint_id), status=status_of(status, deleted)
    )
    return render_list(request, "voip_tests", "voip_test", [fields(v) for v in tests])


@api.get(BASE + "/{test_id}", responses=sc.responses(sc.VoipTestOut, 403, 404))
async def show_test(request: Request, user_id: str, endpoint_id: str, test_id: str):
    svc, conn, actor = ctx(request)
    return render(
        request,
        "voip_test",
        fields(await svc.monitoring.get_test(conn, actor, *_ids(request, user_id, endpoint_id, test_id))),
    )


@api.post(
    BASE,
    status_code=201,
    responses=sc.responses(sc.VoipTestOut, 400, 403, 404, 422),
    openapi_extra=sc.body("voip_test", sc.VOIP_TEST_IN, required=["server_id"]),
)
async def create_test(request: Request, user_id: str, endpoint_id: str):
    svc, conn, actor = ctx(request)
    uid, eid = _ids(request, user_id, endpoint_id)
    test = await svc.monitoring.create_test(conn, actor, uid, eid, await body_of(request, "voip_test"))
    return render(
        request, "voip_test", fields(test), 201, location(request, f"/users/{uid}/endpoints/{eid}/voip_tests/{test.id}")
    )


@each(
    api,
    ("PUT", "PATCH"),
    BASE + "/{test_id}",
    responses=sc.responses(sc.VoipTestOut, 400, 403, 404, 422),
    openapi_extra=sc.body("voip_test", sc.VOIP_TEST_IN),
)
async def update_test(request: Request, user_id: str, endpoint_id: str, test_id: str):
    svc, conn, actor = ctx(request)
    test = await svc.monitoring.update_test(
        conn, actor, *_ids(request, user_id, endpoint_id, test_id), await body_of(request, "voip_test")
    )
    return render(request, "voip_test", fields(test))


@api.delete(BASE + "/{test_id}", responses=sc.responses(sc.VoipTestOut, 403, 404))
async def cancel_test(request: Request, user_id: str, endpoint_id: str, test_id: str):
    svc, conn, actor = ctx(request)
    return render(
        request,
        "voip_test",
        fields(await svc.monitoring.cancel_test(conn, actor, *_ids(request, user_id, endpoint_id, test_id))),
    )


@each(api, ("PUT", "PATCH"), BASE + "/{test_id}/activate", responses=sc.responses(sc.VoipTestOut, 403, 404))
async def activate_test(request: Request, user_id: str, endpoint_id: str, test_id: str):
    svc, conn, actor = ctx(request)
    test = await svc.monitoring.activate_test(conn, actor, *_ids(request, user_id, endpoint_id, test_id))
    return render(request, "voip_test", fields(test))
