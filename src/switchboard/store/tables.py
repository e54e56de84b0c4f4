"""SQLAlchemy table definitions: the schema that the Alembic migrations create.

Timestamps are stored as naive UTC datetimes (the same on SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    # jade: the dialplan context a user's calls start in
    Column("context", String(80), nullable=False, default="", server_default=""),
    # spear: where alert events are POSTed (JSON), if set
    Column("webhook_url", String(2048), nullable=True),
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
    # how often the probe runs the test (seconds, minimum 5), and what the last run gave
    Column("interval_seconds", Integer, nullable=False, default=60, server_default="60"),
    Column("last_mos", Float, nullable=True),
    Column("last_tested_at", DateTime, nullable=True),
    # consecutive results below / at-or-above alert_threshold (alerting: 3 bad raise, 3 good clear)
    Column("bad_streak", Integer, nullable=False, default=0, server_default="0"),
    Column("good_streak", Integer, nullable=False, default=0, server_default="0"),
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
    # the probe's own id for the result: a resent batch is stored once (no result doubled)
    Column("uuid", String(36), nullable=True, unique=True),
    Column("rtt_min_ms", Float, nullable=True),
    Column("rtt_max_ms", Float, nullable=True),
    Index("ix_voip_test_results_test_time", "voip_test_id", "measured_at"),
)

# Alert transitions of a VoIP test (MOS below alert_threshold 3 times in a row → "alerting";
# 3 good results → "cleared"), and their webhook delivery.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("voip_test_id", Integer, ForeignKey("voip_tests.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # alerting | cleared
    Column("mos", Float, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("webhook_status", String(16), nullable=False),  # none | pending | delivered | failed
    Column("webhook_attempts", Integer, nullable=False, default=0),
    Column("webhook_error", Text, nullable=True),
    Column("delivered_at", DateTime, nullable=True),
)


# ---- jade: a user's address book, buddies and chat ------------------------------------------
user_contacts = Table(
    "user_contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("target", String(255), nullable=False),
    Column("name", String(255), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
)

buddies = Table(
    "buddies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("buddy_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
    UniqueConstraint("user_id", "buddy_id", name="uq_buddies_user_buddy"),
)

chat_rooms = Table(
    "chat_rooms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("type", Integer, nullable=False),
    Column("creator_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
)

chat_room_members = Table(
    "chat_room_members",
    metadata,
    Column("room_id", Integer, ForeignKey("chat_rooms.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    PrimaryKeyConstraint("room_id", "user_id", name="pk_chat_room_members"),
)

# A member's own entry for a room (its own name and detail), as jade shows under /me/chats.
chats = Table(
    "chats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("room_id", Integer, ForeignKey("chat_rooms.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
    UniqueConstraint("room_id", "user_id", name="uq_chats_room_user"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("room_id", Integer, ForeignKey("chat_rooms.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("message", Text, nullable=False),  # JSON object
    Column("created_ns", BigInteger, nullable=False),  # ns since the epoch: jade's timestamps
    Index("ix_chat_messages_room_time", "room_id", "created_ns"),
)

# ---- PBX configuration: Asterisk-syntax files with timestamped backups, and the adp dialplan ----
config_files = Table(
    "config_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("family", String(16), nullable=False),  # dialplan | pjsip | queue | park
    Column("name", String(128), nullable=False, unique=True),  # extensions.conf or extensions.conf.<RFC 3339>
    Column("data", Text, nullable=False),
    Column("live", Boolean, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Index("ix_config_files_family", "family", "live"),
)

adpmas = Table(
    "adpmas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("name", String(255), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=True),
)

adps = Table(
    "adps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("adpma_id", Integer, ForeignKey("adpmas.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("sequence", Integer, nullable=False),
    Column("name", String(255), nullable=True),
    Column("detail", Text, nullable=True),
    Column("command", Text, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=True),
)

# Which engine modules an operator unloaded (absent row = the module's default state).
modules = Table(
    "modules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("loaded", Boolean, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)

# ---- SIP: trunks (PortSIP providers, jade manager trunks, pjsip registration_outbounds) and the
# registrar's contacts ------------------------------------------------------------------------------
trunks = Table(
    "trunks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("auth_mode", String(16), nullable=False),  # IP_AUTH | REGISTER_AUTH
    Column("protocol", String(8), nullable=False),  # UDP | TCP
    Column("require_register", Boolean, nullable=False),
    Column("auth_id", String(255), nullable=False),
    Column("password_enc", Text, nullable=False),  # Fernet (SecretBox)
    Column("hostname", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("outbound_server", String(255), nullable=False, default=""),
    Column("outbound_server_port", Integer, nullable=False, default=0),
    Column("reregister_interval", Integer, nullable=False),
    Column("ips", Text, nullable=False, default="[]"),  # JSON
    Column("in_parameters", Text, nullable=False, default="[]"),  # JSON
    Column("out_parameters", Text, nullable=False, default="[]"),  # JSON
    Column("provider_in_lan", Boolean, nullable=False, default=False),
    Column("single_via_header", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# One row per registered contact (aor + contact URI): durable, so any node (and a restart) finds it.
sip_contacts = Table(
    "sip_contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("aor", String(255), nullable=False),
    Column("uri", String(1024), nullable=False),
    Column("endpoint", String(255), nullable=False),
    Column("call_id", String(255), nullable=False),
    Column("cseq", Integer, nullable=False),
    Column("user_agent", String(255), nullable=False, default=""),
    Column("via_address", String(255), nullable=False, default=""),  # source ip:port
    Column("transport", String(8), nullable=False, default="UDP"),
    Column("path", Text, nullable=False, default=""),
    Column("expires_at", BigInteger, nullable=False),  # epoch seconds
    Column("registered_at", BigInteger, nullable=False),
    UniqueConstraint("aor", "uri", name="uq_sip_contacts_aor_uri"),
    Index("ix_sip_contacts_expires", "expires_at"),
)

# ---- kazoo: accounts and their documents (KAZOO keeps JSON documents; so do we) ----------------
kazoo_accounts = Table(
    "kazoo_accounts",
    metadata,
    Column("id", String(32), primary_key=True),  # 32 hex, as KAZOO shows account ids
    Column("name", String(128), nullable=False),
    Column("name_key", String(128), nullable=False, unique=True),  # lower(name)
    Column("realm", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# One row per document: `kind` is device | subscription | cluster | customer_cluster | carrier_sbc
# | media_server | port_in. The JSON body is the document as the API shows it, minus the columns
# kept beside it for lookups (mdn, esn, sim) and secrets (encrypted inside the body).
kazoo_documents = Table(
    "kazoo_documents",
    metadata,
    Column("kind", String(32), nullable=False),
    Column("id", String(64), nullable=False),
    Column("account_id", String(32), ForeignKey("kazoo_accounts.id"), nullable=True),
    Column("mdn", String(32), nullable=True),
    Column("esn", String(64), nullable=True),
    Column("sim", String(64), nullable=True),
    Column("sip_username", String(255), nullable=True),  # devices: the registrar account's name
    Column("body", Text, nullable=False),  # JSON
    Column("created_at", DateTime, nullable=False),
    Column("modified_at", DateTime, nullable=False),
    PrimaryKeyConstraint("kind", "id", name="pk_kazoo_documents"),
    Index("ix_kazoo_documents_kind_mdn", "kind", "mdn"),
    Index("ix_kazoo_documents_kind_esn", "kind", "esn"),
    Index("ix_kazoo_documents_kind_sim", "kind", "sim"),
    Index("ix_kazoo_documents_kind_account", "kind", "account_id"),
    Index("ix_kazoo_documents_sip_username", "sip_username", unique=True),
)

# KAZOO's `PUT /v2/user_auth` `credentials` = md5("username:password"): kept only as an HMAC of it
# (SecretBox.mac), set whenever a password is set (see domain/kazoo/accounts.py).
kazoo_credentials = Table(
    "kazoo_credentials",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(64), nullable=False, index=True),
)

# Carrier state per cluster: where the port-message poll resumes.
kazoo_port_cursors = Table(
    "kazoo_port_cursors",
    metadata,
    Column("cluster_id", String(64), primary_key=True),
    Column("cursor", String(255), nullable=True),
    Column("polled_at", DateTime, nullable=False),
)

# ---- call detail records: Asterisk's CDR fields, one row per call (the caller's leg) -------------
# Written once by the call engine (domain/cdrs.py CdrWriter) when a call ends; `uniqueid` is the
# caller channel's, so a retried write never stores a call twice. Instants are naive UTC.
cdrs = Table(
    "cdrs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("accountcode", String(80), nullable=False, default=""),
    Column("src", String(255), nullable=False, default=""),
    Column("dst", String(255), nullable=False, default=""),
    Column("dcontext", String(255), nullable=False, default=""),
    Column("clid", String(255), nullable=False, default=""),
    Column("channel", String(255), nullable=False, default=""),
    Column("dstchannel", String(255), nullable=False, default=""),
    Column("lastapp", String(80), nullable=False, default=""),
    Column("lastdata", Text, nullable=False, default=""),
    Column("start", DateTime, nullable=False),
    Column("answer", DateTime, nullable=True),
    Column("end", DateTime, nullable=False),
    Column("duration", Integer, nullable=False),
    Column("billsec", Integer, nullable=False),
    Column("disposition", String(16), nullable=False),  # ANSWERED | NO ANSWER | BUSY | FAILED | CONGESTION
    Column("amaflags", String(16), nullable=False, default="DOCUMENTATION"),  # OMIT | BILLING | DOCUMENTATION
    Column("uniqueid", String(150), nullable=False, unique=True),
    Column("linkedid", String(150), nullable=False),
    Column("userfield", String(255), nullable=False, default=""),
    Column("peeraccount", String(80), nullable=False, default=""),
    Column("sequence", Integer, nullable=False, default=0),
    Index("ix_cdrs_start", "start"),
    Index("ix_cdrs_linkedid", "linkedid"),
)

# ---- the cluster (several nodes on one PostgreSQL; store/cluster.py) --------------------------------
# name -> value: `key_check` is a SecretBox encryption of a known text (the key every node must have)
cluster_meta = Table(
    "cluster_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# once-per-cluster background work: who runs job `name`, until when (the database's epoch seconds)
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)
