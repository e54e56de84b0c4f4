"""SQLAlchemy table definitions: the schema that the Alembic migrations create.

Timestamps are stored as naive UTC datetimes (the same on SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("username", String(150), nullable=False),
    # lower(username): one spelling per login name whatever the case
    Column("username_key", String(150), nullable=False, unique=True),
    Column("name", String(255), nullable=False, default=""),
    Column("email", String(255), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(20), nullable=False),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("deleted_at", DateTime, nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("issued_by", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)

servers = Table(
    "servers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("ip_address", String(255), nullable=False),
    Column("region", String(255), nullable=True),
    Column("description", Text, nullable=True),
    Column("private", Boolean, nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=True, index=True),
    Column("version", String(32), nullable=True),
    Column("agent_key_hash", String(64), nullable=True, unique=True),
    Column("last_login_date", DateTime, nullable=True),
    Column("last_login_ip", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("deleted_at", DateTime, nullable=True),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("ip_address", String(255), nullable=False),
    Column("is_server", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("deleted_at", DateTime, nullable=True),
    Index("ix_endpoints_user_id_id", "user_id", "id"),
)

voip_tests = Table(
    "voip_tests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("endpoints.id"), nullable=False, index=True),
    Column("server_id", Integer, ForeignKey("servers.id"), nullable=False, index=True),
    Column("codec", String(32), nullable=False),
    Column("alert_threshold", Float, nullable=False),
    Column("num_tests", Integer, nullable=False),
    Column("interpacket_ms", Integer, nullable=False),
    Column("alerting_since", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("deleted_at", DateTime, nullable=True),
)

# One row per run of a VoIP test by a probe server: the time series behind charts and alerts.
voip_test_results = Table(
    "voip_test_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("voip_test_id", Integer, ForeignKey("voip_tests.id"), nullable=False),
    Column("server_id", Integer, ForeignKey("servers.id"), nullable=False),
    Column("measured_at", DateTime, nullable=False),
    Column("packets_sent", Integer, nullable=False),
    Column("packets_received", Integer, nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("jitter_ms", Float, nullable=True),
    Column("packet_loss_pct", Float, nullable=False),
    Column("mos", Float, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_voip_test_results_test_time", "voip_test_id", "measured_at"),
)
