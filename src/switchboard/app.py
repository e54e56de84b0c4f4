"""Wiring: storage, domain services, the HTTP app and the SIP engine; start and stop order.

Start: data dir and secret key -> database + migrations -> event bridge (PostgreSQL: LISTEN/NOTIFY)
-> bootstrap admin -> CDR writer -> SIP
engine -> HTTP -> background work (registrar sweeps, qualify, webhooks, the built-in local
probe). Stop (SIGTERM/SIGINT): HTTP stops accepting and finishes in-flight requests -> background
work cancelled -> SIP stops -> CDR writer flushed -> event bridge flushed -> database closed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard import __version__
from switchboard.api import jade, kazoo, probe, providers, routeindex, spear
from switchboard.api.common import HttpStatus, validation_to_invalid
from switchboard.api.forwarded import TrustedProxies
from switchboard.api.jade import envelope as jade_envelope
from switchboard.api.kazoo import envelope as kazoo_envelope
from switchboard.api.oneshot import HttpProtocol
from switchboard.api.probe import envelope as probe_envelope
from switchboard.api.providers import envelope as providers_envelope
from switchboard.api.spear import envelope as spear_envelope
from switchboard.api.ui import dashboard as ui_dashboard
from switchboard.api.ui import docs as ui_docs
from switchboard.api.ui import events as ui_events
from switchboard.carrier.poller import run_port_poller
from switchboard.config import Settings, parse_networks
from switchboard.domain import cluster, repos, security
from switchboard.domain.entities import Server, utcnow
from switchboard.engine import bindings, dialplan_exec
from switchboard.engine.calls import CallEngine
from switchboard.engine.mediactl import MediaControl
from switchboard.engine.qualify import Qualifier
from switchboard.engine.sipapp import SipApp
from switchboard.engine.trunkreg import TrunkRegistrar
from switchboard.engine.workers import WorkerHub, worker_argv
from switchboard.events.pgbridge import PgBridge
from switchboard.media.process import spawn_media
from switchboard.media.process import stop as stop_media
from switchboard.services import Services, build_services, run_worker, settle_heap, sip_registrar
from switchboard.sip.engine import SipEngine
from switchboard.store import tables as t

log = logging.getLogger("switchboard")

# the pieces a SIP worker process shares with serve live in services.py (lighter to import)
__all__ = ["Services", "build_services", "run", "run_worker", "serve"]


async def bootstrap_admin(services: Services) -> None:
    """First-start records (the super user, the default configuration files), then the PBX
    loads its modules' state and configuration from the database."""
    s = services.settings
    async with services.db.transaction() as conn:
        created, generated = await services.identity.ensure_bootstrap_admin(conn, s.admin_username, s.admin_password)
        await services.configs.ensure_defaults(conn)
        await services.kazoo.ensure_master_cluster(
            conn, s.kazoo_master_cluster_id, s.carrier_api_url, s.carrier_api_key
        )
    async with services.db.transaction(write=False) as conn:
        await services.pbx.load_all(conn, services.configs, announce=False)
        await services.pbx.load_devices(conn, services.kazoo, announce=False)
    if generated:
        # printed once, on the start that created the account; only its argon2 hash is kept
        print(f"switchboard: created super user {s.admin_username!r} with password {generated}", flush=True)
    elif created:
        print(
            f"switchboard: created super user {s.admin_username!r} with the password of SWITCHBOARD_ADMIN_PASSWORD",
            flush=True,
        )


LOCAL_PROBE_NAME = "local"
PROBE_KEY_FILE = "probe.key"
PROBE_SPOOL_DIR = "probe-spool"


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


async def ensure_local_probe(services: Services) -> tuple[Server, str]:
    """The built-in probe server: one community server named "local" whose ip is the HTTP listen
    host, created on the first start. The database keeps only its agent key's hash, so the key is
    kept encrypted (SecretBox) with the server id in DATA_DIR/probe.key (0600). When that file is
    lost or does not match the database, the key is rotated (a new key, the server's hash updated);
    a server an administrator cancelled stays cancelled (its agent then runs nothing)."""
    s = services.settings
    path = s.data_dir / PROBE_KEY_FILE
    saved: dict = {}
    if path.exists():
        try:
            saved = orjson.loads(services.box.decrypt(path.read_text().strip()))
        except (ValueError, OSError):
            log.warning("%s cannot be read with this secret key: rotating the local probe's key", path)
    host, _ = s.http_host_port
    c = t.servers.c
    async with services.db.transaction() as conn:
        server = None
        if isinstance(saved.get("server_id"), int):
            server = await repos.servers.get(conn, saved["server_id"])
        if server is None:
            server = await repos.servers.first(
                conn, c.name == LOCAL_PROBE_NAME, c.private.is_(False), c.owner_id.is_(None)
            )
        key = saved.get("key") if server is not None and saved.get("server_id") == server.id else None
        if isinstance(key, str) and server is not None and server.agent_key_hash == security.token_digest(key):
            return server, key
        key = security.new_token()
        now = utcnow()
        if server is None:
            server = await repos.servers.insert(
                conn,
                {
                    "name": LOCAL_PROBE_NAME,
                    "ip_address": host,
                    "region": None,
                    "description": "built-in probe server of this Switchboard",
                    "private": False,
                    "owner_id": None,
                    "version": None,
                    "agent_key_hash": security.token_digest(key),
                    "last_login_date": None,
                    "last_login_ip": None,
                    "created_at": now,
                    "updated_at": now,
                    "deleted_at": None,
                },
            )
            log.info("created the built-in probe server %r (id %d)", LOCAL_PROBE_NAME, server.id)
        else:
            server = await repos.servers.update(
                conn, server.id, {"agent_key_hash": security.token_digest(key), "updated_at": now}
            )
            log.info("rotated the agent key of the built-in probe server (id %d)", server.id)
        # written before the commit: if writing fails nothing changes; if the commit fails, the next
        # start finds a key that does not match and rotates again
        _write_private(path, services.box.encrypt(orjson.dumps({"server_id": server.id, "key": key}).decode()))
    return server, key


def tcp_connection_cap(configured: int) -> int:
    """The SIP TCP connection cap, kept under half the process's descriptor limit (the rest is for
    HTTP, the database and outbound connections), said in the log when it is lowered."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - platforms without getrlimit
        return configured
    if soft != resource.RLIM_INFINITY and configured > soft // 2:
        log.warning(
            "SIP TCP connection cap lowered from %d to %d (half of the %d file descriptors allowed)",
            configured,
            soft // 2,
            soft,
        )
        return max(1, soft // 2)
    return configured


def local_probe_url(settings: Settings, port: int) -> str:
    """Our own HTTP listener's URL, for the built-in probe (`port`: the one actually bound)."""
    host, _ = settings.http_host_port
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Switchboard",
        version=__version__,
        docs_url=None,  # served by api/ui/docs.py, with Swagger UI's files from this process (no CDN)
        redoc_url=None,
        openapi_url="/openapi.json",
        description="Switchboard management service. Dialects: VoIP Spear monitoring (HTTP Basic; "
        "JSON, or Rails-style XML with Accept/Content-Type application/xml); jade PBX "
        "gateway (`?authtoken=` from POST /v1/admin/login; every /v1 route is also served "
        "bare); PortSIP providers (`access_token` header); KAZOO support API under /v2 "
        "(`X-Auth-Token` from PUT /v2/user_auth).",
    )
    app.state.services = services
    app.include_router(spear.router)
    app.include_router(jade.router)
    app.include_router(jade.bare, include_in_schema=False)
    app.include_router(providers.router)
    app.include_router(probe.router)
    app.include_router(kazoo.router)
    app.include_router(ui_events.router)
    app.include_router(ui_dashboard.pages)
    app.include_router(ui_dashboard.api)
    ui_docs.add_docs(app, app.openapi_url or "/openapi.json", app.title)

    @app.get("/healthz", tags=["operations"])
    async def healthz():
        """200 once HTTP, the database and the SIP engine are all up; 503 otherwise."""
        db_ok = await services.db.ping()
        sip_ok = services.sip is not None and services.sip.running
        body = {
            "status": "ok" if db_ok and sip_ok else "unavailable",
            "version": __version__,
            "database": "ok" if db_ok else "down",
            "sip": "ok" if sip_ok else "down",
            "uptime_seconds": round(time.time() - services.started_at, 1),
            "node": cluster.NODE_ID,  # this process's id in the cluster (lease holder, events' `node`)
        }
        return Response(orjson.dumps(body), 200 if body["status"] == "ok" else 503, media_type="application/json")

    # Requests that match no route (404) or no method (405) get the error body of the dialect
    # that owns the path: jade owns its prefixes, providers /api, probe /probe, spear the rest.
    def envelope_for(request: Request):
        path = request.url.path
        if any(path == p or path.startswith(p + "/") for p in jade.PREFIXES):
            return jade_envelope
        if providers.owns(path):
            return providers_envelope
        if probe.owns(path):
            return probe_envelope
        if kazoo.owns(path):
            return kazoo_envelope
        return spear_envelope

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        resp = envelope_for(request).error_response(request, HttpStatus(exc.status_code, str(exc.detail)))
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return envelope_for(request).error_response(request, validation_to_invalid(exc))

    # requests are matched against the routes their path can reach, not all ~400 (api/routeindex.py)
    routeindex.install(app.router)
    return app


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its own shutdown, which would kill the process
    before the SIP engine and the database are closed; here a signal only starts the graceful
    shutdown (stop accepting, finish in-flight requests), and serve() returns normally. The
    clients' event streams end then too (`on_exit`): they would otherwise hold the shutdown for
    the whole grace period and be cancelled (a traceback in the log)."""

    def __init__(self, config: uvicorn.Config, on_exit=None):
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        if self._on_exit is not None:
            self._on_exit()

    @contextlib.contextmanager
    def capture_signals(self):
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)


async def serve(settings: Settings) -> None:
    services = await build_services(settings)
    services.events.max_events, services.events.max_age = settings.event_history, settings.event_history_seconds
    # on PostgreSQL the bus numbers and shares its events through LISTEN/NOTIFY (events/pgbridge.py)
    event_bridge = None if services.db.is_sqlite else PgBridge(services.events, settings.database_url)
    if event_bridge is not None:
        await event_bridge.start()
    await bootstrap_admin(services)
    sip_host, sip_port = settings.sip_host_port
    registrar = sip_registrar(services, 0)
    media_proc, media_servers = await start_media(settings, sip_host)
    services.sip = SipEngine(
        sip_host,
        sip_port,
        available=lambda: services.pbx.is_loaded("res_pjsip"),
        handler=SipApp(registrar, calls=True),
        dialogs=True,
        tcp_idle=settings.sip_tcp_idle_seconds,
        tcp_max_per_source=settings.sip_tcp_max_connections_per_source,
        tcp_max=tcp_connection_cap(settings.sip_tcp_max_connections),
        rate_limit=settings.sip_requests_per_second,
        tcp_bound=registrar.tcp_addresses,
        reuse_port=settings.sip_workers > 1,
        spread=settings.sip_workers,
    )
    await bindings.sweep(registrar)
    # CDRs: the call engine calls services.cdr_writer.channel_ended(ch) for each caller's channel
    # that ends; the writer stores them in the background
    services.cdr_writer.start()
    try:
        await services.sip.start()
    except OSError as e:  # the SIP address is taken or not ours: one line, not a traceback
        if media_proc is not None:
            await stop_media(media_proc)
        await services.db.close()
        raise CannotListen(f"SIP on {sip_host}:{sip_port}: {e.strerror or e}") from None
    hub = None
    if settings.sip_workers > 1:  # engine/workers.py: more processes on the SIP UDP port
        hub = WorkerHub(
            services.sip,
            registrar,
            settings.sip_workers,
            Path(tempfile.mkdtemp(prefix="switchboard-sip-")),
        )
        env = os.environ | {"SWITCHBOARD_WORKER_SETTINGS": settings.model_dump_json()}
        try:
            await hub.start(worker_argv(), env)
        except RuntimeError as e:
            await hub.stop()
            await services.sip.stop()
            if media_proc is not None:
                await stop_media(media_proc)
            await services.db.close()
            raise CannotListen(f"SIP workers: {e}") from None
    media = MediaControl(media_servers)
    await media.start()
    services.calls = CallEngine(
        services.pbx,
        services.sip,
        registrar,
        media,
        dialplan_exec.run,
        trunk_service=services.trunks,
        cdrs=services.cdr_writer,
        host=services.sip.local_host_for("127.0.0.1"),
        sounds_dir=settings.data_dir / "sounds",
    )
    # background work once per cluster (domain/cluster.py: a lease per job; on SQLite always held)
    leases = cluster.Leases(services.db, ttl=settings.lease_seconds)
    background = [asyncio.ensure_future(bindings.run_sweeper(registrar))]
    leases.run("qualify", Qualifier(services.pbx, services.sip).run)
    trunk_reg = TrunkRegistrar(
        services.pbx,
        services.sip,
        services.db,
        services.trunks,
        retry_min=settings.trunk_retry_min,
        retry_max=settings.trunk_retry_max,
        qualify_interval=settings.trunk_qualify_interval,
    )
    services.pbx.on_trunks_changed.append(trunk_reg.reload)
    trunk_reg.active = False  # Pbx.trunks now; the sessions run where the `trunks` lease is held
    await trunk_reg.reload()
    leases.run("trunks", trunk_reg.run_leased)
    from switchboard.domain.webhooks import run_webhook_worker
    from switchboard.probe.agent import ProbeAgent

    leases.run("webhooks", lambda: run_webhook_worker(services.db, every=2.0))
    if settings.kazoo_port_poll_seconds > 0:
        leases.run(
            "kazoo-port-poll",
            lambda: run_port_poller(
                services.db, services.kazoo, services.carrier_clients.client_for, settings.kazoo_port_poll_seconds
            ),
        )
    if event_bridge is not None:  # follow the other nodes' changes (engine/cluster.py)
        from switchboard.engine.cluster import ClusterSync

        sync = ClusterSync(
            services.pbx,
            services.db,
            services.configs,
            services.kazoo,
            registrar,
            trunk_reg.reload,
            announce_trunks=trunk_reg.announce,
        )
        if hub is not None:
            sync.local_nodes = hub.nodes
        background.append(asyncio.ensure_future(sync.run()))
    host, port = settings.http_host_port
    app = create_app(services)
    trusted = parse_networks(settings.trusted_proxies)
    # uvicorn's proxy_headers trusts 127.0.0.1 by default: off, only the operator's list is believed
    config = uvicorn.Config(
        TrustedProxies(app, trusted) if trusted else app,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        loop="none",
        http=HttpProtocol,  # uvicorn's httptools protocol, a response's head and body in one write
        lifespan="off",
        timeout_graceful_shutdown=15,
        server_header=False,
        proxy_headers=False,
    )
    server = _Server(config, on_exit=services.events.end_streams)

    async def once_listening() -> None:
        """When HTTP listens: say where (port 0 in the settings means "any free port": the line below
        tells which one each listener got, for whoever started us), then run the built-in probe,
        which talks to our own HTTP listener."""
        while not server.started:
            await asyncio.sleep(0.02)
        http_port = next((s.getsockname()[1] for srv in server.servers for s in srv.sockets), port)
        log.info(
            "switchboard %s: HTTP on %s:%d, SIP on %s:%d (udp+tcp), database %s, event loop %s",
            __version__,
            host,
            http_port,
            sip_host,
            services.sip.port,
            services.db.engine.url.render_as_string(hide_password=True),
            type(asyncio.get_running_loop()).__module__.split(".")[0],
        )
        settle_heap()
        print(f"switchboard: listening http={host}:{http_port} sip={sip_host}:{services.sip.port}", flush=True)

        async def local_probe() -> None:
            # one built-in probe per cluster: the node holding its lease runs it (rotating its key
            # when this node's DATA_DIR/probe.key is not the current one)
            local, local_key = await ensure_local_probe(services)
            agent = ProbeAgent(
                local_probe_url(settings, http_port),
                local.id,
                local_key,
                spool_dir=settings.data_dir / PROBE_SPOOL_DIR,
                version=__version__,
            )
            await agent.run()

        leases.run("local-probe", local_probe)

    background.append(asyncio.ensure_future(once_listening()))
    try:
        await server.serve()
    finally:
        with contextlib.suppress(Exception):  # jobs stopped (trunks unregistered), leases given back
            await asyncio.wait_for(leases.stop(), 15)
        for task in background:
            task.cancel()
        await asyncio.wait(background, timeout=5)
        with contextlib.suppress(Exception):  # calls in progress end cleanly (BYE / CANCEL) and are recorded
            await asyncio.wait_for(services.calls.stop(), 5)
        with contextlib.suppress(Exception):  # unregister trunks, but never hang the shutdown on it
            await asyncio.wait_for(trunk_reg.stop(), 5)
        if hub is not None:
            await hub.stop()
            shutil.rmtree(hub.run_dir, ignore_errors=True)
        await services.sip.stop()
        media.close()
        if media_proc is not None:
            await stop_media(media_proc)
        # the calls ended with the SIP engine: their records are written before the database closes
        if not await services.cdr_writer.stop(timeout=10):
            log.error("%d CDRs could not be written at shutdown (logged above)", services.cdr_writer.pending)
        await services.carrier_clients.aclose()
        if event_bridge is not None:
            await event_bridge.stop()
        await services.db.close()
        log.info("switchboard stopped")


async def start_media(settings: Settings, sip_host: str):
    """The media engines: those listed in SWITCHBOARD_MEDIA_ENGINES, else one started here (the
    embedded default) on a free control port, its RTP on SWITCHBOARD_RTP_ADDRESS (default: the SIP
    address, or 127.0.0.1 when SIP listens on every address)."""
    if settings.media_engines.strip():
        servers = []
        for item in settings.media_engines.split(","):
            host, _, port = item.strip().rpartition(":")
            servers.append((host, int(port)))
        return None, servers
    rtp_address = settings.rtp_address or (sip_host if sip_host not in ("0.0.0.0", "", "::") else "127.0.0.1")
    sounds = settings.data_dir / "sounds"  # Record() of a relative name lands here; Playback finds it first
    sounds.mkdir(parents=True, exist_ok=True)
    args = ["--rtp-host", rtp_address, "--sounds", str(sounds), "--with-parent"]
    for d in filter(None, (x.strip() for x in settings.sounds_dirs.split(","))):
        args += ["--sounds", d]
    moh = next(filter(None, (x.strip() for x in settings.moh_dirs.split(","))), None)
    if moh:  # the base folder of the hold-music classes (class X plays <moh>/X)
        args += ["--moh", moh]
    proc, host, port = await spawn_media(listen="127.0.0.1:0", rtp_ports=settings.rtp_ports, extra_args=args)
    return proc, [(host, port)]


def run(settings: Settings) -> None:
    """Run `serve`; a node whose secret key is not the cluster's exits 2, one whose SIP address is
    taken exits 1, each with one line on stderr."""
    try:
        if settings.event_loop == "asyncio":
            asyncio.run(serve(settings))
            return
        try:
            import uvloop
        except ImportError:  # pragma: no cover - platforms without uvloop
            asyncio.run(serve(settings))
        else:
            uvloop.run(serve(settings))
    except cluster.KeyMismatch as e:
        print(f"switchboard: refusing to start: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except CannotListen as e:
        print(f"switchboard: cannot listen: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


class CannotListen(RuntimeError):
    """A listening address of `serve` cannot be bound (taken, or not this host's)."""
