"""The services of one node (the domain, the database, the PBX state) and the SIP worker process
(engine/workers.py): what `serve` and a `sip-worker` both build. Kept apart from app.py so that a
worker does not import the HTTP side (FastAPI and the five dialects): it starts in about a third of
the time."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from switchboard import events
from switchboard.carrier.clients import CarrierClients
from switchboard.config import Settings
from switchboard.domain import cluster
from switchboard.domain.calls import Originator
from switchboard.domain.cdrs import CdrService, CdrWriter
from switchboard.domain.identity import IdentityService
from switchboard.domain.kazoo import KazooService
from switchboard.domain.monitoring import MonitoringService
from switchboard.domain.pbxconf import ConfigService
from switchboard.domain.results import ResultService
from switchboard.domain.security import SecretBox
from switchboard.domain.social import BuddyService, ChatService, ContactService
from switchboard.domain.throttle import FailureThrottle, Limits
from switchboard.domain.trunks import TrunkService
from switchboard.engine import bindings
from switchboard.engine.registrar import DEFAULT_ALGORITHMS, Registrar, parse_algorithms
from switchboard.engine.runtime import Pbx
from switchboard.engine.sipapp import SipApp
from switchboard.engine.workers import WorkerLink
from switchboard.sip.engine import SipEngine
from switchboard.store.db import Database

log = logging.getLogger("switchboard")


@dataclass
class Services:
    settings: Settings
    db: Database
    box: SecretBox
    identity: IdentityService
    monitoring: MonitoringService
    sip: SipEngine | None = None
    started_at: float = field(default_factory=time.time)
    configs: ConfigService = field(default_factory=ConfigService)
    contacts: ContactService = field(default_factory=ContactService)
    buddies: BuddyService = field(default_factory=BuddyService)
    chats: ChatService = field(default_factory=ChatService)
    pbx: Pbx = field(default_factory=Pbx)
    trunks: TrunkService = field(default_factory=TrunkService)
    results: ResultService = field(default_factory=ResultService)
    kazoo: KazooService | None = None
    carrier_clients: CarrierClients | None = None  # a CarrierClient per kazoo cluster (carrier/clients.py)
    sip_throttle: FailureThrottle = field(default_factory=FailureThrottle)  # the registrar's digest failures
    cdrs: CdrService = field(default_factory=CdrService)
    # the call engine's CDR sink (channel_ended(ch)); started by serve, flushed at stop
    cdr_writer: CdrWriter | None = None
    # the call engine's originate (domain.calls.Originator); None until it runs: originate is 503
    calls: Originator | None = None
    # the process's event bus (switchboard.events; the /events routes read it)
    events: events.EventBus = field(default_factory=lambda: events.bus)


async def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
    db = Database(settings.database_url)
    if migrate:
        log.info("database %s: %s", db.engine.url.render_as_string(hide_password=True), await db.migrate())
        try:  # every node of a cluster must hold the key its secrets were encrypted with
            await cluster.check_secret_key(db, box)
        except cluster.KeyMismatch:
            await db.close()
            raise
    s = settings
    identity = IdentityService(
        box,
        cache_seconds=s.basic_auth_cache_seconds,
        limits=Limits(
            per_pair=s.auth_failures_per_minute,
            per_source=s.auth_source_failures_per_minute,
            per_account=s.auth_account_failures_per_minute,
            ban_seconds=s.auth_ban_seconds,
        ),
    )
    sip_throttle = FailureThrottle(
        Limits(
            per_pair=s.sip_auth_failures_per_minute,
            per_source=s.sip_auth_source_failures_per_minute,
            per_account=s.sip_auth_account_failures_per_minute,
            ban_seconds=s.sip_auth_ban_seconds,
        )
    )
    kazoo_service = KazooService(box)
    identity.on_password_set.append(kazoo_service.set_credentials)
    cdrs = CdrService()
    return Services(
        settings,
        db,
        box,
        identity,
        MonitoringService(),
        configs=ConfigService(box),
        trunks=TrunkService(box),
        kazoo=kazoo_service,
        carrier_clients=CarrierClients(kazoo_service),
        sip_throttle=sip_throttle,
        cdrs=cdrs,
        cdr_writer=CdrWriter(db, cdrs),
    )


def nonce_secret(services: Services, index: int) -> bytes:
    """The digest nonce key of SIP worker `index` (0: the main process, the key it always had)."""
    return services.box.mac("sip digest nonces", *([f"worker {index}"] if index else []))


def sip_registrar(services: Services, index: int) -> Registrar:
    settings = services.settings
    return Registrar(
        services.pbx,
        services.db,
        nonce_secret(services, index),
        realm=settings.sip_realm,
        throttle=services.sip_throttle,
        algorithms=parse_algorithms(settings.sip_auth_algorithms) or DEFAULT_ALGORITHMS,
        worker_secrets=tuple(nonce_secret(services, k) for k in range(settings.sip_workers))
        if settings.sip_workers > 1
        else (),
        index=index,
    )


async def serve_worker(settings: Settings, index: int, workers: int, hub_dir: Path, sip_port: int) -> None:
    """A SIP worker process (engine/workers.py): REGISTERs of the aors it owns and OPTIONS on the
    shared UDP port; configuration from the database, reloaded when the main process says."""
    services = await build_services(settings, migrate=False)
    pbx = services.pbx

    async def reload(kind: str, name: str | None) -> None:
        async with services.db.transaction(write=False) as conn:
            if kind == "family":
                await pbx.load_family(conn, services.configs, name, announce=False)
            elif kind == "module":
                await pbx.load_modules(conn, only=name)
            elif kind == "devices":
                await pbx.load_devices(conn, services.kazoo, announce=False)

    async with services.db.transaction(write=False) as conn:
        await pbx.load_all(conn, services.configs, announce=False)
        await pbx.load_devices(conn, services.kazoo, announce=False)
    registrar = sip_registrar(services, index)
    sip_host, _ = settings.sip_host_port
    sip = SipEngine(
        sip_host,
        sip_port,
        available=lambda: pbx.is_loaded("res_pjsip"),
        handler=SipApp(registrar, calls=True),  # the same Allow as the main process's answers
        rate_limit=settings.sip_requests_per_second,
        reuse_port=True,
        spread=workers,
        tcp=False,
    )
    await bindings.sweep(registrar)  # this process's copy of the bindings (the main one sweeps the database)
    link = WorkerLink(sip, registrar, reload, index, workers, hub_dir)
    registrar.answer_after = link.main_knows
    registrar.report_failure = link.report_failure
    await sip.start()
    await link.start()
    settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # until told to stop, or the main process is gone (its end of the hub closes)
    await asyncio.wait([asyncio.ensure_future(stop.wait()), link.closed], return_when=asyncio.FIRST_COMPLETED)
    link.close()
    await sip.stop()
    await services.db.close()


def settle_heap() -> None:
    """Once a process has started: what it made so far (modules, the configuration, the route
    table, caches filled at load) lives as long as the process, so it is moved out of the cyclic
    collector's reach (gc.freeze). A full collection then walks only what came later: measured
    under REGISTER load, the main process's full collections took ~80 ms each (9 in 20 s, with
    every request and datagram waiting meanwhile). Frozen objects freed by reference counting are
    still freed; only a reference cycle among them would stay (a replaced start-up configuration
    at most, once).

    The youngest generation is then collected every 10,000 net allocations instead of 700: a
    request's objects die by reference counting long before, so a collection walks fewer of them
    (measured: ~2 % less CPU per REGISTER, 110.7 -> 108.6 us, 2 SIP workers at 6,000/s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def run_worker(settings: Settings, index: int, workers: int, hub_dir: Path, sip_port: int) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(serve_worker(settings, index, workers, hub_dir, sip_port))
    else:
        uvloop.run(serve_worker(settings, index, workers, hub_dir, sip_port))
