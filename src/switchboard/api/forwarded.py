"""The client address of an HTTP request, from `X-Forwarded-For` / `Forwarded` only when the peer is a
proxy the operator listed (SWITCHBOARD_TRUSTED_PROXIES: addresses or networks, comma separated;
empty by default, so those headers are ignored and the peer address is the client).

uvicorn's own proxy-header handling is switched off (app.py): by default it trusts 127.0.0.1, so any
local process, or anything behind a local reverse proxy that passes the header on, could name its
own source address and dodge the per-source login throttle with a new value per request.

Where the peer is trusted, the chain is walked from the right (the nearest hop first) past every
trusted proxy: the first address that is not a trusted proxy is the client, since only trusted
proxies' additions can be believed; addresses a client wrote at the left are never reached while a
trusted proxy appended the real one after them. `Forwarded` (RFC 7239, its `for=` values) is read
when present, else `X-Forwarded-For`. A malformed value stops the walk at the last trusted hop (the
proxy itself is then the client). Pure ASGI middleware: `scope["client"]` is rewritten, so
`request.client.host` is right everywhere below it."""

from __future__ import annotations

import ipaddress
import re

from switchboard.config import Network

_FOR = re.compile(r'for\s*=\s*("?)([^";,]*)\1', re.IGNORECASE)


def _address(value: str) -> str | None:
    """One hop of a chain as an IP address string (ports and IPv6 brackets removed); None if not one."""
    v = value.strip().strip('"')
    if v.startswith("["):
        v = v[1:].partition("]")[0]
    elif v.count(":") == 1:  # IPv4 with a port
        v = v.partition(":")[0]
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return None


def _hops(headers: list[tuple[bytes, bytes]]) -> list[str] | None:
    forwarded = [v.decode("latin-1") for k, v in headers if k == b"forwarded"]
    if forwarded:
        return [m.group(2) for value in forwarded for m in _FOR.finditer(value)]
    xff = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
    if xff:
        return [h for value in xff for h in value.split(",")]
    return None


def client_address(peer: str, headers: list[tuple[bytes, bytes]], trusted: tuple[Network, ...]) -> str:
    """The request's client address given its TCP peer, its headers and the trusted proxies."""

    def is_trusted(ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return any(addr in net for net in trusted)

    try:
        if not trusted or not is_trusted(peer):
            return peer
    except ValueError:  # a peer that is not an IP (a unix socket): nothing to rewrite
        return peer
    hops = _hops(headers)
    client = peer
    for hop in reversed(hops or []):
        ip = _address(hop)
        if ip is None:
            break
        client = ip
        if not is_trusted(ip):
            break
    return client


class TrustedProxies:
    """ASGI middleware: rewrite scope["client"] as `client_address` says."""

    def __init__(self, app, trusted: tuple[Network, ...]):
        self.app, self.trusted = app, trusted

    async def __call__(self, scope, receive, send):
        if self.trusted and scope["type"] in ("http", "websocket") and scope.get("client"):
            host, port = scope["client"]
            client = client_address(host, scope.get("headers") or [], self.trusted)
            if client != host:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
