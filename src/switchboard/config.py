"""Settings: the configuration contract of DESIGN.md (environment; each also a `serve` flag)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str | None) -> tuple[Network, ...]:
    """'10.0.0.1, 192.168.0.0/16' -> networks; ValueError naming the bad entry (SWITCHBOARD_TRUSTED_PROXIES)."""
    out = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return tuple(out)


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """'host:port' -> (host, port); '[::1]:5060' for IPv6; a bare host takes the default port."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    return host or "127.0.0.1", int(port) if port else default_port


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    database_url: str = "sqlite:///./var/switchboard.db"
    http_listen: str = "127.0.0.1:8081"
    sip_listen: str = "127.0.0.1:5060"
    admin_username: str = "admin"
    admin_password: str | None = None
    data_dir: Path = Path("./var")
    secret_key: str | None = None
    # The event stream's history (events/bus.py): a resume from before it gets a `gap` event
    event_history: int = Field(default=10_000, ge=1)
    event_history_seconds: float = Field(default=600.0, gt=0)
    # How long a verified HTTP Basic credential is remembered (seconds); 0 disables the cache.
    basic_auth_cache_seconds: float = Field(default=60.0, ge=0)
    # Failed HTTP logins per minute before 429 (domain/throttle.py): per (source address, account);
    # per source across accounts and per account across sources (0 = no limit of that kind; a source
    # that logged in to an account before is exempt from those two); how long a ban lasts.
    auth_failures_per_minute: int = Field(default=20, ge=1)
    auth_source_failures_per_minute: int = Field(default=100, ge=0)
    auth_account_failures_per_minute: int = Field(default=100, ge=0)
    auth_ban_seconds: float = Field(default=60.0, gt=0)
    # HTTP: proxies whose X-Forwarded-For / Forwarded are believed (addresses or networks, comma
    # separated); empty: those headers are ignored (api/forwarded.py)
    trusted_proxies: str = ""
    log_level: str = "info"
    # SIP: digest realm of the registrar (an auth section's own `realm` wins)
    sip_realm: str = "switchboard"
    # SIP: digest algorithms offered where an auth section sets no `supported_algorithms_uas` (and to
    # kazoo devices and unknown users), most preferred first; Asterisk's default is md5 alone
    sip_auth_algorithms: str = "md5"
    # SIP: failed digest authentications per minute before 403 (domain/throttle.py), as for HTTP:
    # per (source, username), per source, per username; how long a ban lasts
    sip_auth_failures_per_minute: int = Field(default=30, ge=1)
    sip_auth_source_failures_per_minute: int = Field(default=100, ge=0)
    sip_auth_account_failures_per_minute: int = Field(default=100, ge=0)
    sip_auth_ban_seconds: float = Field(default=300.0, gt=0)
    # SIP: requests per second from one source address before the excess is dropped (0 = no limit)
    sip_requests_per_second: float = Field(default=0.0, ge=0)
    # SIP over TCP: connections closed after this many seconds without a byte from the peer unless a
    # registration is bound to them; inbound connections at most per source address and in total
    sip_tcp_idle_seconds: float = Field(default=300.0, gt=0)
    sip_tcp_max_connections_per_source: int = Field(default=128, ge=1)
    sip_tcp_max_connections: int = Field(default=4096, ge=1)
    # SIP: trunk registration retry back-off (seconds): first retry, then doubling up to the maximum
    trunk_retry_min: float = Field(default=5.0, gt=0)
    trunk_retry_max: float = Field(default=300.0, gt=0)
    # SIP: how often IP_AUTH trunks are qualified with OPTIONS (seconds)
    trunk_qualify_interval: float = Field(default=30.0, gt=0)

    # calls: media engines (`switchboard media` processes) as host:port of their control sockets,
    # comma separated; empty: `serve` starts one itself (the embedded default) with the settings below
    media_engines: str = ""
    # the embedded media engine: its RTP port range (even ports for RTP, the next odd one for RTCP),
    # the address its RTP sockets bind to and announce in SDP, extra sound and hold-music folders
    rtp_ports: str = "10000-20000"
    rtp_address: str = ""
    sounds_dirs: str = ""
    moh_dirs: str = ""  # the first one is the base folder of the classes (class X plays <dir>/X)

    # kazoo: the master cluster's id on first start (default: generated), and its carrier API
    # (applied at every start when set; the cluster document can also be changed through the API)
    kazoo_master_cluster_id: str | None = None
    carrier_api_url: str | None = None
    carrier_api_key: str | None = None
    # kazoo: how often the carrier's port messages are polled (seconds; 0 = only on POST /ports/poll)
    kazoo_port_poll_seconds: float = Field(default=300.0, ge=0)
    # Several nodes on one PostgreSQL (domain/cluster.py): the lease time of once-per-cluster work
    # (trunk registration, qualify, webhooks, the port poll, the built-in probe); a dead node's
    # work moves to a survivor within about this long
    lease_seconds: float = Field(default=10.0, ge=1.0)
    # SIP UDP served by this many processes sharing the port (engine/workers.py); 1: one process
    sip_workers: int = Field(default=1, ge=1, le=64)
    # the main process's event loop. uvloop: ~40 % less CPU per SIP transaction (measured, 102 vs
    # 179 us per REGISTER transaction), but under HTTP saturation a few % of requests wait ~1 s
    # (wrk p99 ~700 ms at 64 connections where the stdlib loop gives ~45 ms, the server's own
    # queueing being the same ~40 ms in both: bench/README.md). asyncio: the stdlib loop.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        parse_networks(v)
        return v

    @field_validator("sip_auth_algorithms")
    @classmethod
    def _algorithms(cls, v: str) -> str:
        names = [a.strip().lower() for a in v.split(",") if a.strip()]
        if not names or any(a not in ("md5", "sha-256", "sha256") for a in names):
            raise ValueError("a comma separated list of md5, sha-256")
        return v

    @field_validator("http_listen", "sip_listen")
    @classmethod
    def _hostport(cls, v: str) -> str:
        split_hostport(v, 0)
        return v

    @property
    def http_host_port(self) -> tuple[str, int]:
        return split_hostport(self.http_listen, 8081)

    @property
    def sip_host_port(self) -> tuple[str, int]:
        return split_hostport(self.sip_listen, 5060)
