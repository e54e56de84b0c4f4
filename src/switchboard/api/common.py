"""What every dialect shares: the route class that gives each request its transaction, its
authentication and its dialect's error rendering (`DialectRoute`, bound to a dialect with
`DialectSpec`); the request context (`ctx`); body reading and parsing (`read_body`,
`json_body`, `parse_json_object`); the secret mask (`MASK`); and the authentication helpers
(`token_authenticator`, `basic_credentials`, `password_login`)."""

from __future__ import annotations

import base64
import binascii
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Protocol

import orjson
from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, APIKeyQuery
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from switchboard.domain.entities import User
from switchboard.domain.errors import DomainError, Forbidden, Invalid, Malformed, TooLarge, Unauthenticated, Unsupported
from switchboard.domain.security import MASK  # what every dialect shows instead of a stored secret

log = logging.getLogger("switchboard.api")

MAX_BODY = 1 << 20  # 1 MiB: far above any document these APIs take

# The media types (Content-Type, parameters aside) a route reads its body as; `*` stands for any
# run of characters within the subtype. JSON_BODY is the default of every dialect: JSON, plus the
# form type `curl -d` sends unless told otherwise (the specs' curl examples rely on it; the body
# is still read as JSON). A body sent without a Content-Type is read as the route's default.
JSON_BODY = ("application/json", "application/*+json", "application/x-www-form-urlencoded")
XML_BODY = ("application/xml", "text/xml", "application/*+xml")


class InternalError(DomainError):
    """An unexpected failure: logged with its traceback, shown to the client only as 500."""


class HttpStatus(DomainError):
    """A routing-level refusal (404 no such route, 405 method) carried into a dialect's format."""

    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail
        super().__init__(detail)


class Dialect(Protocol):
    name: str

    async def authenticate(self, request: Request, conn, services) -> User: ...

    def error_response(self, request: Request, exc: DomainError) -> Response: ...


class DialectSpec:
    """A Dialect: its name, how it renders errors, and how a route class of it authenticates."""

    def __init__(
        self,
        name: str,
        error_response: Callable[[Request, DomainError], Response],
        authenticate: Callable[[Request, Any, Any], Awaitable[Any]],
    ):
        self.name, self.error_response, self.authenticate = name, error_response, authenticate


class _Rollback(Exception):
    def __init__(self, response: Response):
        self.response = response


def validation_to_invalid(exc: RequestValidationError) -> Invalid:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        problems.append((loc[-1] if loc else None, "is invalid"))
    return Invalid(problems=problems)


class DialectRoute(APIRoute):
    """Per request: authenticate (unless public), run the handler in one database transaction
    (committed only when it succeeds), and render any error in the dialect's own body. A
    handler that returns an error status also rolls back, so a refusal never writes."""

    dialect: ClassVar[Dialect]
    public: ClassVar[bool] = False
    # The handler opens its own transactions (services.db.transaction()): for routes that call
    # another service (the carrier) before writing, so no database write lock is held across the
    # call. Authentication still runs first, in a read transaction.
    own_transaction: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any):
        self._lean: Callable[[Request], Any] | None = None
        super().__init__(*args, **kwargs)  # calls get_route_handler
        if self._lean is not None:
            self.app = _lean_app(self._lean)

    def get_route_handler(self) -> Callable[[Request], Any]:
        direct = _direct_handler(self)
        handler = direct or super().get_route_handler()
        dialect, public, own = self.dialect, self.public, self.own_transaction

        async def route(request: Request) -> Response:
            services = request.app.state.services
            write = request.method not in ("GET", "HEAD", "OPTIONS")
            try:
                reject_nul_query(request)
                cl = request.headers.get("content-length")
                if cl is not None and cl.isascii() and cl.isdigit() and int(cl) > MAX_BODY:
                    raise TooLarge("request body too large")
                if (write or own) and not public:
                    async with services.db.transaction(write=False) as conn:
                        request.state.user = await dialect.authenticate(request, conn, services)
                if own:
                    response = await handler(request)
                    await _run_after_commit(request)
                    return response
                try:
                    async with services.db.transaction(write=write) as conn:
                        request.state.conn = conn
                        if not write and not public:
                            request.state.user = await dialect.authenticate(request, conn, services)
                        response = await handler(request)
                        if response.status_code >= 400:
                            raise _Rollback(response)
                except _Rollback as rb:
                    return rb.response
                await _run_after_commit(request)
                return response
            except DomainError as e:
                return dialect.error_response(request, e)
            except RequestValidationError as e:
                return dialect.error_response(request, validation_to_invalid(e))
            except StarletteHTTPException as e:
                return dialect.error_response(request, HttpStatus(e.status_code, str(e.detail)))
            except ClientDisconnect:  # the client hung up mid-body: nothing was written, nobody to tell
                log.debug("client went away during %s %s", request.method, request.url.path)
                return Response(status_code=400)
            except Exception:  # never a traceback to the client
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                return dialect.error_response(request, InternalError("internal server error"))

        if direct is not None:
            self._lean = route
        return route


def _lean_app(route: Callable[[Request], Any]):
    """The ASGI app of a route whose handler is direct (_direct_handler): FastAPI's
    request_response without its two dependency exit stacks (the route has no dependency that
    could use them) and without its exception wrapper (`route` turns every exception into the
    dialect's error response; one raised while the response is sent still reaches the app's
    exception middleware). ~10 µs less per request, measured."""

    async def app(scope, receive, send) -> None:
        response = await route(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


_STR = (str, str | None)


def _direct_handler(route: APIRoute) -> Callable[[Request], Any] | None:
    """FastAPI's request handler, for the routes every dialect has: the endpoint takes the request,
    path parameters (`str`) and optional query parameters (`str | None`), and the route's own
    dependencies are documentation only (an API key read from the query or a header with
    auto_error off: it never refuses, and its value is not used). There, solving the dependencies
    validates nothing (a path segment or a query value is already a str; a repeated query
    parameter gives its last value, as FastAPI reads it) yet cost ~10 % of a small request
    (measured), so this passes the same arguments directly. Any other route (a body model, a
    required or typed parameter, a dependency that may refuse or give a value, a response model or
    class) returns None: FastAPI's own handler."""
    d = route.dependant
    if (
        d.call is None
        or not inspect.iscoroutinefunction(d.call)
        or d.request_param_name is None
        or d.body_params
        or d.header_params
        or d.cookie_params
        or route.body_field is not None
        or route.response_field is not None
        or not isinstance(route.response_class, DefaultPlaceholder)
        or route.response_class.value is not JSONResponse
        or any(
            getattr(d, name) is not None
            for name in (
                "websocket_param_name",
                "http_connection_param_name",
                "response_param_name",
                "background_tasks_param_name",
                "security_scopes_param_name",
            )
        )
    ):
        return None
    for dep in d.dependencies:
        if not (isinstance(dep.call, APIKeyQuery | APIKeyHeader) and not dep.call.auto_error and not dep.dependencies):
            return None
    params = d.path_params + d.query_params
    for f in params:
        info = f.field_info
        if info.annotation not in _STR or info.metadata:
            return None
    if any(
        f.field_info.is_required() or f.field_info.annotation != str | None or f.default is not None
        for f in d.query_params
    ):
        return None
    call, request_name = d.call, d.request_param_name
    path = [(f.name, f.alias) for f in d.path_params]
    query = [(f.name, f.alias) for f in d.query_params]
    status_code = route.status_code

    async def handle(request: Request) -> Response:
        values: dict[str, Any] = {request_name: request}
        if path:
            path_params = request.path_params
            for name, alias in path:
                values[name] = path_params[alias]
        if query:
            query_params = request.query_params
            for name, alias in query:
                values[name] = query_params.get(alias)
        raw = await call(**values)
        if isinstance(raw, Response):
            return raw
        # as FastAPI answers a value (no response model, the default response class)
        response = JSONResponse(jsonable_encoder(raw), **({"status_code": status_code} if status_code else {}))
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response

    return handle


def ctx(request: Request) -> tuple[Any, Any, Any]:
    """(services, connection, acting user) of this request; the connection is None in a handler
    that opens its own transactions (own_transaction), the user None on a public route."""
    state = request.state
    return request.app.state.services, getattr(state, "conn", None), getattr(state, "user", None)


def after_commit(request: Request, fn) -> None:
    """Run fn() (sync or async) once this request's transaction has committed (e.g. reload the
    engine's configuration)."""
    request.scope.setdefault(_AFTER_COMMIT, []).append(fn)


_AFTER_COMMIT = "switchboard.after_commit"  # the request's after_commit steps, in its ASGI scope


async def _run_after_commit(request: Request) -> None:
    for fn in request.scope.get(_AFTER_COMMIT, ()):  # (a scope key: no AttributeError raised per request)
        try:
            res = fn()
            if hasattr(res, "__await__"):
                await res
        except Exception:  # the write is committed; a failed follow-up is logged, not fatal
            log.exception("after-commit step failed for %s %s", request.method, request.url.path)


async def read_body(request: Request, accept: Sequence[str] = JSON_BODY) -> bytes:
    """The request body: 413 over MAX_BODY; 415 when it is not empty and its Content-Type is none
    of `accept` (see JSON_BODY). Every dialect reads its bodies here, so the rule is one."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise TooLarge("request body too large")
    if body:
        check_media_type(request.headers.get("content-type"), accept)
    return body


def media_type(content_type: str | None) -> str:
    """The `type/subtype` of a Content-Type value, lowercased, parameters dropped ("" for none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def media_matches(media: str, patterns: Sequence[str]) -> bool:
    """Is `media` (from media_type) one of `patterns` (`application/json`, `application/*+json`)?"""
    for pattern in patterns:
        if "*" in pattern:
            head, _, tail = pattern.partition("*")
            if len(media) > len(head) + len(tail) and media.startswith(head) and media.endswith(tail):
                return True
        elif media == pattern:
            return True
    return False


def check_media_type(content_type: str | None, accept: Sequence[str]) -> None:
    """415 (Unsupported) unless the Content-Type is absent or one of `accept`."""
    media = media_type(content_type)
    if media and not media_matches(media, accept):
        shown = media if len(media) <= 100 and media.isprintable() else "this"
        raise Unsupported(f"Content-Type {shown} is not accepted here; send {', '.join(accept)}")


def reject_nul_query(request: Request) -> None:
    """No text we store or compare may hold U+0000 (see reject_nul): a query parameter name or
    value that does (`?name=%00`) is malformed, 400, on every route, before authentication."""
    raw = request.scope.get("query_string", b"")
    if (b"%00" in raw or b"\x00" in raw) and any(
        "\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()
    ):
        raise Malformed("a query parameter contains a U+0000 (NUL) character")


async def json_body(
    request: Request, *, required: bool = True, missing: str = "a JSON object body is required"
) -> dict:
    """The request body (read_body) as a JSON object (parse_json_object)."""
    return parse_json_object(await read_body(request), required=required, missing=missing)


# ---- authentication helpers ------------------------------------------------------------------
def token_authenticator(token_of: Callable[[Request], str], *, admin_only: str | None = None):
    """An `authenticate` for a DialectSpec: the user of the identity service's token that
    `token_of(request)` reads (401 when it is unknown, expired or revoked); with `admin_only`, a
    user who is not an admin (admin, master, super_master) is refused 403 with that message."""

    async def authenticate(request: Request, conn, services) -> User:
        user = await services.identity.authenticate_token(conn, token_of(request))
        if admin_only is not None and not user.is_admin:
            raise Forbidden(admin_only)
        return user

    return authenticate


def basic_credentials(request: Request) -> tuple[str, str]:
    """(username, password) of the request's HTTP Basic Authorization header; 401 without one or
    when it cannot be read."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthenticated("HTTP Basic credentials required")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise Unauthenticated("malformed HTTP Basic credentials")
    return username, password


async def password_login(request: Request, conn, services, username: str, password: str) -> User:
    """Check a username and password (throttled per client address by the identity service)."""
    source = request.client.host if request.client else ""
    return await services.identity.authenticate_password(conn, username, password, source)


def parse_bool(value: str | None, field: str, default: bool) -> bool:
    """Query flags: absent -> default; bare (`?deleted`) or true/1/yes/on -> True."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("", "true", "1", "yes", "on", "t", "y"):
        return True
    if v in ("false", "0", "no", "off", "f", "n"):
        return False
    raise Invalid(field, "must be true or false")


def parse_id(value: str, kind: str) -> int:
    """Path ids: anything but a positive integer names no record (404, as an unknown id)."""
    from switchboard.domain.errors import NotFound

    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise NotFound(kind, value)
    return int(value)


__all__ = [
    "MASK",
    "DialectRoute",
    "DialectSpec",
    "HttpStatus",
    "InternalError",
    "Malformed",
    "basic_credentials",
    "ctx",
    "json_body",
    "parse_bool",
    "parse_id",
    "parse_json_object",
    "password_login",
    "read_body",
    "token_authenticator",
]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul(data: Any, raw: bytes) -> Any:
    """JSON may spell U+0000 (`\\u0000`); no text we store may hold it (PostgreSQL cannot, and on
    SQLite it would differ from PostgreSQL), so such a body is malformed: 400 in every dialect."""
    if b"\\u0000" in raw and _has_nul(data):
        raise Malformed("the body contains a U+0000 (NUL) character")
    return data


def parse_json_object(raw: bytes, *, required: bool = True, missing: str = "a JSON object body is required") -> dict:
    """A request body as a JSON object (providers, probe, kazoo): empty → {} (or 400 `missing` when
    required); not JSON, not an object, or holding U+0000 → 400."""
    if not raw.strip():
        if required:
            raise Malformed(missing)
        return {}
    try:
        data = reject_nul(orjson.loads(raw), raw)
    except orjson.JSONDecodeError:
        raise Malformed("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Malformed("the body must be a JSON object")
    return data


def error_status(exc: DomainError) -> tuple[int, str, dict[str, str]]:
    """(HTTP status, message, extra headers) of a domain error, as the JSON dialects (jade,
    providers, probe) render it; each dialect handles its own exceptions first and calls this."""
    from switchboard.domain.errors import (
        Conflict,
        Forbidden,
        NotFound,
        RateLimited,
        Unauthenticated,
        Upstream,
    )

    match exc:
        case Conflict():
            return 409, f"{exc.field}: {exc.reason}" if exc.field else exc.reason, {}
        case Invalid() | Malformed():
            return 400, str(exc), {}
        case Unauthenticated():
            return 401, str(exc), {}
        case Forbidden():
            return 403, str(exc), {}
        case NotFound():
            return 404, str(exc), {}
        case TooLarge():
            return 413, str(exc), {}
        case Unsupported():
            return 415, str(exc), {}
        case RateLimited():
            return 429, str(exc), {"Retry-After": str(exc.retry_after)}
        case HttpStatus():
            return exc.status, exc.detail, {}
        case Upstream():
            return exc.status, str(exc), {}
    return 500, "internal server error", {}
