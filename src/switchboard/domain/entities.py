"""Entities of the one model. Plain immutable records; services create and change them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard.events.bus import utc_second_text

ROLES = ("super_master", "master", "admin", "user")
ADMIN_ROLES = frozenset({"super_master", "master", "admin"})


def rfc3339_ns(ns: int) -> str:
    """ns since the epoch as RFC 3339 UTC with nanoseconds: 2018-05-22T13:24:14.979704248Z. The
    seconds' text is kept (a jade response writes "now" and a configuration's load time, request
    after request: strftime was ~5 % of a small one)."""
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{utc_second_text(sec)}.{frac:09d}Z"


def utcnow() -> datetime:
    """Now, as the naive UTC datetime we store (microseconds kept: jade shows them, and an update
    in the same second as the creation must still read as an update; spear shows seconds)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    uuid: str
    username: str
    username_key: str
    name: str
    email: str | None
    password_hash: str
    role: str
    time_zone: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    context: str = ""
    webhook_url: str | None = None  # spear: alert events are POSTed here (JSON) when set

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def is_super(self) -> bool:
        return self.role == "super_master"

    @property
    def active(self) -> bool:
        return self.deleted_at is None


@dataclass(frozen=True, slots=True)
class Server:
    """A probe server (VoIP Spear "server"): community (owner None) or private to one user."""

    id: int
    name: str
    ip_address: str
    region: str | None
    description: str | None
    private: bool
    owner_id: int | None
    version: str | None
    agent_key_hash: str | None
    last_login_date: datetime | None
    last_login_ip: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    def visible_to(self, user: User) -> bool:
        return user.is_admin or not self.private or self.owner_id == user.id

    def usable_by(self, user: User) -> bool:
        return self.deleted_at is None and self.visible_to(user)


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    user_id: int
    name: str
    description: str | None
    ip_address: str
    is_server: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class VoipTest:
    id: int
    endpoint_id: int
    server_id: int
    codec: str
    alert_threshold: float
    num_tests: int
    interpacket_ms: int
    alerting_since: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    interval_seconds: int = 60  # how often the probe runs the test
    last_mos: float | None = None  # the newest result's MOS
    last_tested_at: datetime | None = None
    bad_streak: int = 0  # consecutive results below alert_threshold
    good_streak: int = 0  # consecutive results at or above it
