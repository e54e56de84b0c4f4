"""Route index: a request is matched only against the routes its path can match.

Starlette's Router tries every route in order, a regex per route; with ~400 routes (every dialect,
jade's under /v1 and bare) that scan was most of a trivial request's cost. Here the routes'
paths are kept in a tree of path segments (a literal segment is an edge of its own; a segment
holding only single-segment parameters, `{id}`, is a wildcard edge; a `{x:path}` parameter, or
a route of another kind, makes the route a candidate for everything below that point). A request
walks the tree with its own segments; the routes collected there, in their original order, are
then matched exactly as Starlette does: the first FULL match handles the request, else the first
PARTIAL one (405). The candidates are a superset of the routes whose regex can match, so the
result is the one the full scan gives. A request no candidate matches (404, or a trailing-slash
redirect) goes to Starlette's own Router.app, which scans everything as before.

`install(router)` puts the index in front of a router (its `middleware_stack`, which Starlette's
Router.__call__ runs); the index is rebuilt when the router's route list changes."""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.convertors import FloatConvertor, IntegerConvertor, StringConvertor, UUIDConvertor
from starlette.routing import PARAM_REGEX, BaseRoute, Match, Route, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send

# convertors whose regex never crosses a "/": a segment holding only these is one wildcard segment
_ONE_SEGMENT = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)


class _Node:
    __slots__ = ("literal", "wild", "ends", "below")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.wild: _Node | None = None
        self.ends: list[int] = []  # routes whose path ends at this node
        self.below: list[int] = []  # routes that may match any path continuing from this node


def _segment_kind(segment: str, route: BaseRoute) -> str:
    """'literal', 'wild' (one path segment of parameters) or 'open' (may span segments)."""
    if "{" not in segment:
        return "literal"
    convertors = getattr(route, "param_convertors", {})
    for m in PARAM_REGEX.finditer(segment):
        if not isinstance(convertors.get(m.group(1)), _ONE_SEGMENT):
            return "open"
    return "wild"


def build(routes: list[BaseRoute]) -> _Node:
    root = _Node()
    for i, route in enumerate(routes):
        path = getattr(route, "path", None)
        if not isinstance(route, Route | WebSocketRoute) or not isinstance(path, str) or not path.startswith("/"):
            root.below.append(i)  # Mount, Host, anything else: always a candidate
            continue
        node = root
        for segment in path[1:].split("/"):
            kind = _segment_kind(segment, route)
            if kind == "open":
                node.below.append(i)
                break
            if kind == "literal":
                node = node.literal.setdefault(segment, _Node())
            else:
                if node.wild is None:
                    node.wild = _Node()
                node = node.wild
        else:
            node.ends.append(i)
    return root


def candidates(root: _Node, route_path: str) -> list[int]:
    """Indices (ascending) of the routes that may match `route_path` (starting with "/")."""
    found = list(root.below)
    nodes = [root]
    for segment in route_path[1:].split("/"):
        step = []
        for node in nodes:
            child = node.literal.get(segment)
            if child is not None:
                step.append(child)
                found.extend(child.below)
            if node.wild is not None:
                step.append(node.wild)
                found.extend(node.wild.below)
        nodes = step
        if not nodes:
            break
    for node in nodes:
        found.extend(node.ends)
    found.sort()
    return found


class IndexedRouter:
    """The ASGI app put in front of `router` (see the module's docstring)."""

    def __init__(self, router: Router):
        self.router = router
        self._routes: list[BaseRoute] | None = None
        self._count = -1
        self._root = _Node()

    def _index(self) -> tuple[list[BaseRoute], _Node]:
        routes = self.router.routes
        if routes is not self._routes or len(routes) != self._count:
            self._root, self._routes, self._count = build(routes), routes, len(routes)
        return routes, self._root

    def match(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The route Starlette's scan would hand `scope` to (the first FULL match, else the first
        PARTIAL one) with its child scope; None when no route matches."""
        route_path = get_route_path(scope)
        if not route_path.startswith("/"):
            return _scan(self.router.routes, scope)
        routes, root = self._index()
        partial = None
        for i in candidates(root, route_path):
            route = routes[i]
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
            if match is Match.PARTIAL and partial is None:
                partial = route, child_scope
        return partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.router.app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self.router
        found = self.match(scope)
        if found is None:  # no route: Starlette's own scan, its redirect_slashes and 404
            await self.router.app(scope, receive, send)
            return
        route, child_scope = found
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def _scan(routes: list[BaseRoute], scope: Scope) -> tuple[BaseRoute, Scope] | None:
    """Starlette's Router.app choice, over every route."""
    partial = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return route, child_scope
        if match is Match.PARTIAL and partial is None:
            partial = route, child_scope
    return partial


def install(router: Router) -> IndexedRouter:
    """Match `router`'s requests through the index (its middleware_stack must be its own app:
    a router built with middleware keeps its stack, unindexed)."""
    if router.middleware_stack != router.app:
        raise ValueError("the router has its own middleware; the index would bypass it")
    indexed = IndexedRouter(router)
    router.middleware_stack = indexed
    return indexed
