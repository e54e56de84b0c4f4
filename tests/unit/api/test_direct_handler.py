"""DialectRoute's direct handler (api/common.py `_direct_handler`): on the routes it takes, the
endpoint gets the arguments FastAPI's own handler gives it and answers the same response; every
other route keeps FastAPI's handler."""

from __future__ import annotations

from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import orjson
import pytest
from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi.responses import ORJSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPBasic
from pydantic import BaseModel

from switchboard.api import common
from switchboard.api.common import DialectRoute


class _Dialect:
    name = "test"

    async def authenticate(self, request, conn, services):  # pragma: no cover - public routes
        raise AssertionError

    def error_response(self, request, exc):
        return Response(orjson.dumps({"error": type(exc).__name__, "detail": str(exc)}), 400)


class _Route(DialectRoute):
    dialect = _Dialect()
    public = True


DOCS = [
    Security(APIKeyQuery(name="authtoken", auto_error=False)),
    Security(APIKeyHeader(name="X-Key", auto_error=False)),
]


def _app() -> FastAPI:
    @asynccontextmanager
    async def transaction(write: bool):
        yield None

    app = FastAPI()
    app.state.services = SimpleNamespace(db=SimpleNamespace(transaction=transaction))
    app.router.route_class = _Route

    @app.get("/echo/{a}/{b}", dependencies=DOCS)
    async def echo(
        request: Request,
        b: str,
        a: str,
        name: str | None = None,
        from_: str | None = Query(None, alias="from"),
        authtoken: str | None = None,
    ):
        return Response(orjson.dumps({"a": a, "b": b, "name": name, "from": from_, "authtoken": authtoken}))

    @app.post("/value", status_code=201)
    async def value(request: Request, x: str | None = None):
        return {"x": x, "list": [1, 2.5, None]}

    @app.delete("/nothing", status_code=204)
    async def nothing(request: Request):
        return None

    @app.get("/plain")
    async def plain(request: Request):
        return "text"

    return app


@pytest.fixture
def apps(monkeypatch):
    direct = _app()
    monkeypatch.setattr(common, "_direct_handler", lambda route: None)
    fastapi = _app()
    return direct, fastapi


async def _answers(app, method: str, url: str) -> tuple[int, bytes, list]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.request(method, url)
        headers = sorted((k, v) for k, v in r.headers.items())
        return r.status_code, r.content, headers


@pytest.mark.parametrize(
    "method,url",
    [
        ("GET", "/echo/1/2"),
        ("GET", "/echo/%C3%A9t%C3%A9/a%20b?name=x&name=y"),
        ("GET", "/echo/x/y?name=&from=2020-01-01&to=1&authtoken=t"),
        ("GET", "/echo/x/y?from=a&from=b&from_=c&NAME=z&name=%2B+q"),
        ("GET", "/echo/x/y?name=caf%C3%A9&unknown"),
        ("POST", "/value?x=1"),
        ("POST", "/value"),
        ("DELETE", "/nothing"),
        ("GET", "/plain"),
    ],
)
async def test_direct_handler_answers_as_fastapi(apps, method, url):
    direct, fastapi = apps
    assert any(isinstance(r, _Route) and r.app is not None for r in direct.router.routes)
    assert await _answers(direct, method, url) == await _answers(fastapi, method, url)


def test_routes_taken_and_left():
    app = FastAPI()
    app.router.route_class = _Route

    class Body(BaseModel):
        a: int

    async def dep() -> str:
        return "x"

    @app.get("/taken/{a}", dependencies=DOCS)
    async def taken(request: Request, a: str, q: str | None = None):
        return Response()

    @app.get("/basic", dependencies=[Security(HTTPBasic(auto_error=False))])  # may refuse malformed credentials
    async def basic(request: Request):
        return Response()

    @app.get("/erroring", dependencies=[Security(APIKeyQuery(name="k"))])  # auto_error on
    async def erroring(request: Request):
        return Response()

    @app.get("/typed/{a}")
    async def typed(request: Request, a: int):
        return Response()

    @app.get("/required")
    async def required(request: Request, q: str):
        return Response()

    @app.get("/defaulted")
    async def defaulted(request: Request, q: str | None = "x"):
        return Response()

    @app.get("/constrained")
    async def constrained(request: Request, q: str | None = Query(None, max_length=3)):
        return Response()

    @app.post("/body")
    async def body(request: Request, b: Body):
        return Response()

    @app.get("/dependency")
    async def dependency(request: Request, v: str = Depends(dep)):
        return Response()

    @app.get("/model", response_model=Body)
    async def model(request: Request):
        return Response()

    @app.get("/text", response_class=PlainTextResponse)
    async def text(request: Request):
        return "x"

    @app.get("/header")
    async def header(request: Request, x_key: str | None = None, h: str | None = Query(None)):
        return Response()

    @app.get("/no-request")
    async def no_request(q: str | None = None):
        return Response()

    @app.get("/sync")
    def sync(request: Request):
        return Response()

    taken_ = {r.path: common._direct_handler(r) is not None for r in app.router.routes if isinstance(r, _Route)}
    other = FastAPI(default_response_class=ORJSONResponse)  # another default than FastAPI's JSONResponse
    other.router.route_class = _Route

    @other.get("/x")
    async def x(request: Request):
        return Response()

    assert [common._direct_handler(r) for r in other.router.routes if isinstance(r, _Route)] == [None]
    assert taken_ == {
        "/taken/{a}": True,
        "/header": True,  # query parameters only (x_key is a query parameter too)
        "/basic": False,
        "/erroring": False,
        "/typed/{a}": False,
        "/required": False,
        "/defaulted": False,
        "/constrained": False,
        "/body": False,
        "/dependency": False,
        "/model": False,
        "/text": False,
        "/no-request": False,
        "/sync": False,
    }


async def test_a_direct_route_runs_without_fastapis_exit_stacks_and_errors_stay_the_dialects(monkeypatch):
    """A direct route's ASGI app is the lean one (no dependency exit stacks in its scope); a
    handler's exception is still the dialect's error response, as on FastAPI's app."""
    scopes = {}

    def add(app, name: str) -> None:
        @app.get("/scope")
        async def scope(request: Request):
            scopes[name] = set(request.scope)
            return Response()

        @app.get("/boom")
        async def boom(request: Request):
            raise common.Malformed("bad input")

    direct = _app()
    add(direct, "direct")
    monkeypatch.setattr(common, "_direct_handler", lambda route: None)
    fastapi = _app()
    add(fastapi, "fastapi")
    assert (await _answers(direct, "GET", "/scope"))[0] == 200 and (await _answers(fastapi, "GET", "/scope"))[0] == 200
    assert "fastapi_inner_astack" not in scopes["direct"] and "fastapi_inner_astack" in scopes["fastapi"]
    assert await _answers(direct, "GET", "/boom") == await _answers(fastapi, "GET", "/boom")
    assert (await _answers(direct, "GET", "/boom"))[0] == 400
