"""The route index (api/routeindex.py) picks, for every request, the route Starlette's linear scan
picks: for a concrete path of every route of the real app, under every method (a wrong one is
the scan's first PARTIAL match, 405), near misses and paths no route has (404, redirect)."""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import httpx
import pytest
from starlette.routing import Match, Route, Router, WebSocketRoute

from switchboard.api import routeindex
from switchboard.app import create_app

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
VALUES = {"str": "x1", "int": "7", "float": "1.5", "uuid": str(uuid.UUID(int=5)), "path": "a/b"}


def linear_scan(routes, scope):
    """Starlette's Router.app choice: the first FULL match, else the first PARTIAL one."""
    partial = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return route, child_scope
        if match is Match.PARTIAL and partial is None:
            partial = route, child_scope
    return partial


def concrete(path: str, **values: str) -> str:
    def fill(m: re.Match) -> str:
        return values.get("value") or VALUES[(m.group(2) or ":str")[1:]]

    return re.sub(r"{([a-zA-Z_][a-zA-Z0-9_]*)(:[a-zA-Z_][a-zA-Z0-9_]*)?}", fill, path)


def scope(path: str, method: str = "GET", kind: str = "http") -> dict:
    s = {"type": kind, "path": path, "root_path": "", "query_string": b"", "headers": []}
    if kind == "http":
        s["method"] = method
    return s


@pytest.fixture(scope="module")
def app():
    return create_app(SimpleNamespace())


def request_paths(app) -> list[str]:
    paths = set()
    for route in app.router.routes:
        p = getattr(route, "path", None)
        if not p:
            continue
        for variant in (concrete(p), concrete(p, value="me"), concrete(p, value="0")):
            paths |= {variant, variant + "/", variant.rstrip("/") or "/", variant + "/extra", variant + "x"}
        if p.count("/") > 1:
            paths.add(p.rsplit("/", 1)[0] + "/")  # a parent with a trailing slash
    # no route has these
    paths |= {"/", "//", "/nope", "/nope/", "/v1", "/v1/", "/v1/nope", "/v2/support/nope/1", "/users/1/nope", ""}
    return sorted(paths)


def test_the_app_is_indexed(app):
    assert isinstance(app.router.middleware_stack, routeindex.IndexedRouter)
    assert len(app.router.routes) > 300  # what the index is for: every dialect's routes in one router


def test_index_picks_the_route_the_linear_scan_picks(app):
    index = app.router.middleware_stack
    routes = app.router.routes
    paths = request_paths(app)
    checked = full = partial = none = 0
    for path in paths:
        for method in METHODS:
            s = scope(path, method)
            want = linear_scan(routes, s)
            got = index.match(s)
            assert (got and got[0]) is (want and want[0]), (method, path)
            assert (got and got[1]) == (want and want[1]), (method, path)
            checked += 1
            if want is None:
                none += 1
            elif want[0].matches(s)[0] is Match.FULL:
                full += 1
            else:
                partial += 1
        ws = scope(path, kind="websocket")
        assert index.match(ws) == linear_scan(routes, ws), path
    # every kind of outcome was exercised, every route was chosen at least once
    assert full and partial and none, (full, partial, none)
    chosen = {id(index.match(scope(concrete(r.path), m))[0]) for r in routes if isinstance(r, Route) for m in r.methods}
    assert chosen == {id(r) for r in routes if isinstance(r, Route)}
    ws_routes = [r for r in routes if isinstance(r, WebSocketRoute)]
    assert ws_routes and all(index.match(scope(r.path, kind="websocket"))[0] is r for r in ws_routes)
    assert checked > 5000


def test_first_match_wins_in_route_order():
    """Overlapping routes: the earliest listed that matches, whatever the tree's shape."""

    def ep(request):  # pragma: no cover - never called
        raise AssertionError

    routes = [
        Route("/a/{x}/c", ep, methods=["POST"]),
        Route("/a/{rest:path}", ep, methods=["GET"]),
        Route("/a/b/c", ep, methods=["GET"]),
        Route("/a/b/{y}", ep, methods=["GET", "PUT"]),
        Route("/{z}/b/c", ep, methods=["DELETE"]),
        Route("/p{n:int}.json", ep, methods=["GET"]),
        Route("/", ep, methods=["GET"]),
    ]
    router = Router(routes)
    index = routeindex.install(router)
    for path in ("/a/b/c", "/a/b/d", "/a/b", "/a/", "/q/b/c", "/p12.json", "/pxx.json", "/", "/a/b/c/d", "/zz"):
        for method in METHODS:
            s = scope(path, method)
            assert index.match(s) == linear_scan(routes, s), (method, path)
    assert index.match(scope("/a/b/c", "PUT"))[0] is routes[3]  # a later FULL match beats earlier PARTIAL ones
    assert index.match(scope("/a/b/c", "PATCH"))[0] is routes[0]  # no FULL: the first PARTIAL
    router.routes.append(Route("/late", ep))  # the index follows a route list that grows
    assert index.match(scope("/late"))[0] is router.routes[-1]


def test_install_refuses_a_router_with_middleware():
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware

    with pytest.raises(ValueError):
        routeindex.install(Router([], middleware=[Middleware(GZipMiddleware)]))


async def test_unmatched_requests_get_starlettes_404_405_and_redirect(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/no/such/route")
        assert r.status_code == 404 and r.json() == {"errors": ["Not Found"]}  # spear's error body
        r = await client.get("/v1/admin/nope")
        assert r.status_code == 404 and r.json()["error"] == {"code": 404, "message": "Not Found"}  # jade's
        r = await client.request("PATCH", "/healthz")
        assert r.status_code == 405
        r = await client.get("/healthz/")  # redirect_slashes: the full scan still runs for unmatched paths
        assert r.status_code == 307 and r.headers["location"] == "http://t/healthz"
