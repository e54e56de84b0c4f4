"""Command line: `switchboard serve | probe | migrate | user ...`."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from switchboard import __version__
from switchboard.config import Settings


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # one line per HTTP request of the probe agents, and alembic's step-by-step chatter, only when debugging
    # (start-up says what the migration did in one line)
    if level.lower() != "debug":
        for name in ("httpx", "alembic.runtime.migration"):
            logging.getLogger(name).setLevel(logging.WARNING)


@click.group()
@click.version_option(__version__, prog_name="switchboard")
def main() -> None:
    """Switchboard: VoIP operations platform."""


@main.command()
@click.option("--database-url", help="sqlite:///path or postgresql://user@host:port/db")
@click.option("--http-listen", help="host:port of the HTTP service")
@click.option("--sip-listen", help="host:port for SIP (UDP and TCP)")
@click.option("--admin-username")
@click.option("--admin-password")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--secret-key", help="Fernet key for secrets at rest (default: DATA_DIR/secret.key)")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--sip-realm", help="digest realm of the registrar")
@click.option("--auth-failures-per-minute", type=int, help="failed HTTP logins per source and account before 429")
@click.option("--auth-source-failures-per-minute", type=int, help="failed HTTP logins per source (0: no limit)")
@click.option("--auth-account-failures-per-minute", type=int, help="failed HTTP logins per account (0: no limit)")
@click.option("--auth-ban-seconds", type=float, help="how long an HTTP login ban lasts")
@click.option("--trusted-proxies", help="proxies whose X-Forwarded-For/Forwarded are believed (IPs/networks)")
@click.option("--sip-auth-algorithms", help="digest algorithms offered by default (md5, sha-256), preferred first")
@click.option("--sip-auth-failures-per-minute", type=int, help="failed SIP digests per source and user before 403")
@click.option("--sip-auth-source-failures-per-minute", type=int, help="failed SIP digests per source (0: no limit)")
@click.option("--sip-auth-account-failures-per-minute", type=int, help="failed SIP digests per user (0: no limit)")
@click.option("--sip-auth-ban-seconds", type=float, help="how long a SIP authentication ban lasts")
@click.option("--sip-requests-per-second", type=float, help="SIP requests per second per source (0: no limit)")
@click.option("--sip-tcp-idle-seconds", type=float, help="close SIP TCP connections idle this long")
@click.option("--sip-tcp-max-connections-per-source", type=int, help="inbound SIP TCP connections per source")
@click.option("--sip-tcp-max-connections", type=int, help="inbound SIP TCP connections in total")
@click.option("--trunk-retry-min", type=float, help="first trunk registration retry, seconds")
@click.option("--trunk-retry-max", type=float, help="longest trunk registration retry, seconds")
@click.option("--trunk-qualify-interval", type=float, help="trunk OPTIONS keep-alive/qualify interval, seconds")
@click.option("--kazoo-master-cluster-id", help="id of the kazoo master cluster document (first start)")
@click.option("--carrier-api-url", help="the master cluster's carrier API URL (applied at start)")
@click.option("--carrier-api-key", help="the master cluster's carrier API key (stored encrypted)")
@click.option("--kazoo-port-poll-seconds", type=float, help="carrier port message poll interval (0: on request)")
@click.option("--lease-seconds", type=float, help="lease time of once-per-cluster background work, seconds")
@click.option("--sip-workers", type=int, help="processes sharing the SIP UDP port (default 1)")
def serve(**opts) -> None:
    """Run the management service, the SIP engine and background work in one process."""
    from switchboard.app import run

    settings = _settings(**opts)
    _logging(settings.log_level)
    run(settings)


@main.command("sip-worker", hidden=True)
@click.option("--index", type=int, required=True)
@click.option("--workers", type=int, required=True)
@click.option("--hub-dir", type=click.Path(file_okay=False), required=True)
@click.option("--sip-port", type=int, required=True)
def sip_worker(index: int, workers: int, hub_dir: str, sip_port: int) -> None:
    """One more process on the SIP UDP port, started by `serve` (SWITCHBOARD_SIP_WORKERS > 1; see
    engine/workers.py); its settings are serve's, passed in SWITCHBOARD_WORKER_SETTINGS."""
    import os
    from pathlib import Path

    from switchboard.config import Settings
    from switchboard.services import run_worker

    settings = Settings.model_validate_json(os.environ["SWITCHBOARD_WORKER_SETTINGS"])
    _logging(settings.log_level)
    run_worker(settings, index, workers, Path(hub_dir), sip_port)


@main.command()
@click.option("--url", required=True, envvar="SWITCHBOARD_PROBE_URL", help="the Switchboard's HTTP URL")
@click.option("--server-id", required=True, type=int, envvar="SWITCHBOARD_PROBE_SERVER_ID", help="this server's id")
@click.option("--key", required=True, envvar="SWITCHBOARD_PROBE_KEY", help="the agent key from server creation")
@click.option(
    "--spool",
    type=click.Path(file_okay=False),
    default="./probe-spool",
    show_default=True,
    help="directory that keeps results until the Switchboard acknowledged them",
)
@click.option(
    "--poll-seconds",
    type=float,
    default=2.0,
    show_default=True,
    help="how often to ask for the tests (an unchanged list costs a bodiless 304)",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def probe(url, server_id, key, spool, poll_seconds, log_level) -> None:
    """Run the probe-server software: run this server's VoIP tests and report their results."""
    from switchboard.probe.agent import ProbeAgent

    _logging(log_level)
    agent = ProbeAgent(url, server_id, key, spool_dir=spool, version=__version__, poll_seconds=poll_seconds)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - platforms without uvloop
        runner = asyncio.run
    try:
        runner(agent.run())
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--database-url")
def migrate(database_url: str | None) -> None:
    """Bring the database schema up to date (serve also does this on start)."""
    from switchboard.store.db import Database

    async def go() -> str:
        db = Database(_settings(database_url=database_url).database_url)
        try:
            return await db.migrate()
        finally:
            await db.close()

    click.echo(f"database: {asyncio.run(go())}")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(["super_master", "master", "admin", "user"]), default="user")
@click.option("--name")
@click.option("--email")
@click.option("--database-url")
def user_create(username, password, role, name, email, database_url) -> None:
    """Create a user."""
    from switchboard.app import build_services
    from switchboard.domain.errors import DomainError

    async def go():
        services = await build_services(_settings(database_url=database_url))
        try:
            async with services.db.transaction() as conn:
                u = await services.identity.create_user(
                    conn, None, {"username": username, "password": password, "role": role, "name": name, "email": email}
                )
            click.echo(f"created user {u.username} (id {u.id}, role {u.role})")
        except DomainError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        finally:
            await services.db.close()

    asyncio.run(go())


@user.command("list")
@click.option("--database-url")
def user_list(database_url) -> None:
    """List users."""
    from switchboard.app import build_services
    from switchboard.domain import repos

    async def go():
        services = await build_services(_settings(database_url=database_url))
        try:
            async with services.db.transaction(write=False) as conn:
                for u in await repos.users.find(conn):
                    state = "cancelled" if u.deleted_at else "active"
                    click.echo(f"{u.id}\t{u.username}\t{u.role}\t{state}")
        finally:
            await services.db.close()

    asyncio.run(go())


@user.command("passwd")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--database-url")
def user_passwd(username, password, database_url) -> None:
    """Set a user's password (their tokens are revoked)."""
    from switchboard.app import build_services
    from switchboard.domain import repos
    from switchboard.domain.errors import DomainError

    async def go():
        services = await build_services(_settings(database_url=database_url))
        try:
            async with services.db.transaction() as conn:
                u = await repos.user_by_username(conn, username)
                if u is None:
                    raise click.ClickException(f"no user {username!r}")
                system = await repos.users.first(conn, repos.t.users.c.role == "super_master") or u
                await services.identity.update_user(
                    conn, system if system.is_super else u, u.id, {"password": password}
                )
            click.echo(f"password changed for {username}")
        except DomainError as e:
            raise click.ClickException(str(e)) from None
        finally:
            await services.db.close()

    asyncio.run(go())


@main.group()
def account() -> None:
    """Manage kazoo accounts (the 32-hex ACCOUNT_IDs of /v2/support/accounts/...)."""


@account.command("create")
@click.argument("name")
@click.option("--realm", help="the account's SIP realm")
@click.option("--database-url")
def account_create(name, realm, database_url) -> None:
    """Create a kazoo account; prints its id."""
    from switchboard.app import build_services
    from switchboard.domain.errors import DomainError

    async def go():
        services = await build_services(_settings(database_url=database_url))
        try:
            async with services.db.transaction() as conn:
                acct = await services.kazoo.create_account(conn, {"name": name, "realm": realm})
            click.echo(f"{acct['id']}\t{acct['name']}")
        except DomainError as e:
            raise click.ClickException(str(e)) from None
        finally:
            await services.db.close()

    asyncio.run(go())


@account.command("list")
@click.option("--database-url")
def account_list(database_url) -> None:
    """List kazoo accounts."""
    from switchboard.app import build_services

    async def go():
        services = await build_services(_settings(database_url=database_url))
        try:
            async with services.db.transaction(write=False) as conn:
                for acct in await services.kazoo.accounts(conn):
                    click.echo(f"{acct['id']}\t{acct['name']}\t{acct['realm'] or ''}")
        finally:
            await services.db.close()

    asyncio.run(go())


@main.command("carrier-sandbox")
@click.option("--listen", default="127.0.0.1:8090", show_default=True, help="HOST:PORT of the carrier API")
@click.option(
    "--data",
    "data_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="JSON data file: api_key, carrier, subscriptions, usage, port_messages",
)
@click.option("--persist", is_flag=True, help="write admin API changes back to the data file")
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def carrier_sandbox(listen, data_file, persist, log_level) -> None:
    """Run a stand-alone carrier (MVNO) API for the kazoo dialect, seeded from a JSON file.
    Its HTTP API is documented at /docs and in switchboard.carrier.sandbox."""
    from pathlib import Path

    from switchboard.carrier.sandbox import ConfigError
    from switchboard.carrier.sandbox import run as run_sandbox

    _logging(log_level)
    try:
        run_sandbox(listen, Path(data_file), persist=persist, log_level=log_level)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option(
    "--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT of the UDP control socket (port 0: any)"
)
@click.option(
    "--rtp-ports", default="10000-20000", show_default=True, help="LOW-HIGH: RTP on even ports, RTCP on port+1"
)
@click.option("--rtp-host", help="address RTP sockets bind to and that replies advertise (default: the --listen host)")
@click.option(
    "--sounds", multiple=True, type=click.Path(file_okay=False), help="prompt directory, searched first (repeatable)"
)
@click.option("--moh", type=click.Path(file_okay=False), help="hold music base directory: class X plays DIR/X")
@click.option("--timeout", type=float, default=0.0, help="seconds without RTP before a timeout event (0: never)")
@click.option("--log-level", default="warning", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--with-parent", is_flag=True, help="stop when the process that started this one is gone (serve's own)")
def media(listen, rtp_ports, rtp_host, sounds, moh, timeout, log_level, with_parent) -> None:
    """Run the media engine (RTP relay, playback, DTMF, hold music, recording) controlled over UDP."""
    from switchboard.media.server import parse_hostport, parse_range, run

    try:
        parse_hostport(listen)
        parse_range(rtp_ports)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(
        listen=listen,
        rtp_ports=rtp_ports,
        sounds=tuple(sounds),
        moh=moh,
        rtp_host=rtp_host,
        timeout=timeout,
        with_parent=with_parent,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
