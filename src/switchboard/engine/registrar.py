"""The registrar (RFC 3261 §10.3) for the accounts of pjsip.conf (endpoint + auth + aor) and
the kazoo devices' `voice.sip` credentials (DEVICE_POLICY; a pjsip aor of the same name wins).

A REGISTER names its address-of-record by the To URI's user part, an aor of pjsip.conf or a kazoo
device's SIP username. A name that is neither is answered exactly as a known one would be (as
Asterisk's artificial endpoint does): a challenge in the registrar's realm with the default
algorithms, then 403 Forbidden after the digest, as for a wrong password; so no answer tells which
names exist (an auth section with its own `realm` or algorithms is, by the operator's choice,
challenged differently). The endpoint that lists the aor in
`aors` authenticates it with its `auth` (digest, RFC 8760: SHA-256 and MD5 challenges, qop=auth,
signed time-limited nonces, `stale=true`, nonce-count replay refused — see sip/digest.py); an
endpoint without `auth` takes registrations unauthenticated, as Asterisk does. The digest
username must be the auth's username. The challenge offers the auth's `supported_algorithms_uas`
in order, else SWITCHBOARD_SIP_AUTH_ALGORITHMS (default `md5`, Asterisk's default: phones and sipp
that answer the first challenge they see know MD5); `auth_type = md5` (an `md5_cred` instead of a
password) offers MD5 only.

Bindings (aor policy from pjsip.conf, Asterisk's defaults):
- expiry from the Contact's `expires` parameter, else the Expires header, else
  `default_expiration`; above `maximum_expiration` it is lowered; below `minimum_expiration`
  (and not 0) → 423 Interval Too Brief with Min-Expires;
- Expires 0 removes a binding; `Contact: *` with Expires: 0 removes them all;
- the same Call-ID with a CSeq not higher than the stored one is out of order → 500 (§10.3 step 7);
- more bindings than `max_contacts`: with `remove_existing` the oldest others go; without it → 403;
  `max_contacts` = 0 (Asterisk's default) takes no registrations at all.
- 200 OK lists every current binding of the aor with its expires, and a Date header.

Bindings are stored in the database (sip_contacts) so they survive a restart and any node finds
them; this node keeps a copy in memory for the views and for qualify, refreshed from the database
by the expiry sweep (every few seconds), which also deletes expired bindings. What reads and writes
the rows is engine/bindings.py: this module may run compiled by mypyc (switchboard/compiled.py),
that one stays pure Python.

A REGISTER that changes bindings is answered only once the change is committed: `handle` returns
an engine `Deferred`, settled after the commit. Commits are grouped (see `_enqueue`): the REGISTERs
decided together share one transaction. REGISTERs of one aor are decided one after the other, each
on the bindings the previous one left. Challenges, refusals and queries are answered at once. A
REGISTER without credentials over UDP is challenged statelessly (`stateless_challenge`, sent by the
SIP engine without a transaction, as Kamailio's `www_challenge`; RFC 3261 §8.2.7).

Failed authentications are logged and counted by `domain.throttle.FailureThrottle` per (source
address, aor), per source and per aor; a banned request (any name, known or not) gets 403 "Too Many
Failed Authentications" without a challenge until the ban ends or an admin lifts it (jade
`/admin/security/bans`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from switchboard import events
from switchboard.asterisk.pjsip import AorPolicy
from switchboard.domain.cluster import NODE_ID
from switchboard.domain.throttle import FailureThrottle
from switchboard.engine import bindings
from switchboard.engine.bindings import Binding
from switchboard.engine.runtime import Pbx
from switchboard.sip import digest
from switchboard.sip.engine import USER_AGENT, Deferred, Source
from switchboard.sip.headers import contact_uri_and_params, split_contacts, uri_user
from switchboard.sip.message import Message, response_to
from switchboard.sip.steer import aor_owner
from switchboard.store.db import Database

log = logging.getLogger("switchboard.registrar")


_ALGORITHMS = {"md5": "MD5", "sha-256": "SHA-256", "sha256": "SHA-256"}


def parse_algorithms(raw: str) -> tuple[str, ...]:
    """'sha-256, md5' -> ("SHA-256", "MD5"): known names in order, duplicates and unknown names dropped."""
    out = []
    for name in raw.split(","):
        alg = _ALGORITHMS.get(name.strip().lower())
        if alg and alg not in out:
            out.append(alg)
    return tuple(out)


DEFAULT_ALGORITHMS = ("MD5",)  # Asterisk's default for supported_algorithms_uas


def algorithms_of(auth: dict, default: tuple[str, ...] = DEFAULT_ALGORITHMS) -> tuple[str, ...]:
    """The challenge's algorithms in preference order (RFC 8760 §2.4: most preferred first): the
    auth's `supported_algorithms_uas` (Asterisk's option), else `default` (Asterisk's: md5)."""
    return parse_algorithms(auth.get("supported_algorithms_uas") or "") or default


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    v = value.strip()
    return int(v) if v.isascii() and v.isdigit() and len(v) <= 10 else None


def _start_eagerly(coro, tasks: set) -> None:
    """Run `coro` now, in this call, up to its first real suspension, as Python 3.12's eager tasks
    do: an uncontended SQLite commit (the write lock free, statements run on this thread) finishes
    here. If it does suspend, on the future it awaits, a task carries it on from there."""
    try:
        awaited = coro.send(None)
    except StopIteration:
        return
    task = asyncio.ensure_future(_carry_on(coro, awaited))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _carry_on(coro, awaited) -> None:
    """Drive a coroutine that `_start_eagerly` began, as its own task would have."""
    while True:
        try:
            if awaited is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:  # the future it awaits; it reads the outcome itself when resumed
                await _settled(awaited)
        except asyncio.CancelledError as e:
            try:
                coro.throw(e)  # unwinds its `async with` blocks (rollback, lock release)
            except (StopIteration, asyncio.CancelledError):
                pass
            raise
        try:
            awaited = coro.send(None)
        except StopIteration:
            return


def _settled(fut) -> asyncio.Future:
    """A future that resolves (to None) when `fut` is done, however it ends: asyncio.wait([fut])
    without the set, the waiter and the callbacks it builds."""
    waiter = asyncio.get_running_loop().create_future()

    def done(_) -> None:
        if not waiter.done():
            waiter.set_result(None)

    fut.add_done_callback(done)
    return waiter


class _Account:
    """What authenticating one endpoint takes, read once per loaded pjsip.conf: the digest server of
    its realm and algorithms, and its HA1 per algorithm (computed on first use)."""

    __slots__ = ("username", "realm", "server", "md5_only", "secret", "_ha1")

    def __init__(self, username: str, realm: str, server: digest.DigestServer, md5_only: bool, secret: str):
        self.username, self.realm, self.server, self.md5_only, self.secret = username, realm, server, md5_only, secret
        self._ha1: dict[str, str] = {}

    def lookup(self, user: str, realm: str, algorithm: str) -> str | None:
        """digest.Lookup: the stored HA1 of this account's username in its realm."""
        if user != self.username or realm != self.realm:
            return None
        if self.md5_only:  # auth_type = md5: the md5_cred is the MD5 HA1
            return self.secret if algorithm == "MD5" else None
        value = self._ha1.get(algorithm)
        if value is None:
            value = self._ha1[algorithm] = digest.ha1(algorithm, self.username, self.realm, self.secret)
        return value


class _Unknown(_Account):
    """A name that is no account: challenged like one, matched by no digest."""

    __slots__ = ()

    def lookup(self, user: str, realm: str, algorithm: str) -> None:
        return None


class _Write:
    """One REGISTER's changes to its aor, from the moment they are decided until they are committed."""

    __slots__ = ("aor", "removes", "upserts", "after", "req", "now", "fut")

    def __init__(
        self,
        aor: str,
        removes: set[str],
        upserts: dict[str, Binding],
        after: dict[str, Binding],
        req: Message,
        now: int,
    ):
        self.aor, self.removes, self.upserts, self.after, self.req, self.now = aor, removes, upserts, after, req, now
        self.fut: Deferred | None = None


_SERVER = ("Server", USER_AGENT)
# kazoo devices (not in pjsip.conf): a few phones per device, the newest replacing the oldest
DEVICE_POLICY = AorPolicy(name="kazoo-device", max_contacts=5, remove_existing=True)
_NO_AUTH = object()  # an endpoint without auth: registers unauthenticated
_date_cache: list = [0, ""]


def _date() -> str:
    """The Date header value (RFC 1123, GMT), formatted once per second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True)]
    return _date_cache[1]


def binding_event(b: Binding, now: int, reason: str | None = None) -> dict:
    """The data of a registration.* event."""
    out = {
        "aor": b.aor,
        "contact": b.uri,
        "endpoint": b.endpoint,
        "user_agent": b.user_agent,
        "expires": 0 if reason else max(0, b.expires_at - now),
        "via_address": b.via_address,
        "transport": b.transport,
        "path": b.path,
    }
    if reason:
        out["reason"] = reason
    out["node"] = NODE_ID  # the other nodes re-read this aor's bindings (engine/cluster.py)
    return out


@dataclass
class Registrar:
    pbx: Pbx
    db: Database
    secret: bytes
    realm: str = "switchboard"
    # failed digests per (source, aor), per source, per aor (shared with the admin routes)
    throttle: FailureThrottle = field(default_factory=FailureThrottle)
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS  # offered where an auth names none
    _servers: dict[tuple[str, tuple[str, ...]], digest.DigestServer] = field(default_factory=dict)
    generation: dict[str, int] = field(default_factory=dict)  # bumped by every bind, per aor
    # aor -> REGISTERs of it that arrived while an earlier one awaited its commit (served in order)
    _busy: dict[str, deque] = field(default_factory=dict)
    _pending: list = field(default_factory=list)  # _Writes awaiting the next commit
    _flusher: asyncio.Task | None = None
    eager_batch: int = 16  # on SQLite, commit a group once it has this many REGISTERs (see _enqueue)
    commit_window: float = 0.003  # seconds a group gathers REGISTERs before its commit (see _enqueue)
    _committing: int = 0  # commits in progress (an eager commit waits for them: no nesting)
    _tasks: set = field(default_factory=set)  # eager commits that had to wait for the write lock
    _accounts: dict = field(default_factory=dict)  # endpoint -> _Account | _NO_AUTH, for _accounts_of
    _accounts_of: Any = None  # the PjsipConfig _accounts was read from
    _device_accounts: dict = field(default_factory=dict)  # kazoo device username -> _Account
    _devices_of: Any = None  # the pbx.sip_devices dict _device_accounts was read from
    # SIP workers (engine/workers.py): every process's nonce key, by worker index (empty: one process;
    # `secret` is this process's, at `index`). A nonce is accepted only by the process whose key signed
    # it, the owner of the aor it was issued for, which holds its nonce-count state; a nonce of a
    # sibling's key is answered stale=true with a nonce of ours, never counted as a failure (the client
    # simply authenticates again). A challenge made here for an aor another process owns
    # (`stateless_challenge`) is signed with that owner's key.
    worker_secrets: tuple[bytes, ...] = ()
    index: int = 0
    # when this registrar's process started (ms since the epoch): its digest servers answer stale, on first
    # use, a nonce of their key issued before (DigestServer.forget_before: the key outlives a restart, the
    # nonce-counts an earlier run saw do not), so an Authorization accepted before a restart is not replayed
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    _tracked_since: dict[int, int] = field(default_factory=dict)  # worker index -> since when (worker_gone)
    # a SIP worker awaits this after a commit, before it answers: the main process has then taken
    # in the bindings (engine/workers.py), so a 200 means the whole node knows them, as in one process
    answer_after: Callable[[], Awaitable[None]] | None = None
    # a SIP worker's failed authentications are counted by the main process (the throttle of the
    # node, which then gives every process the bans): awaited before the refusal is sent
    report_failure: Callable[[str, str], Awaitable[None]] | None = None
    _siblings: dict = field(default_factory=dict)
    # what commits a batch (bindings.write); a test may watch it (an attribute, not the module's global: the
    # module may run compiled, where its functions call one another directly)
    write: Callable[[Database, list], Awaitable[None]] = bindings.write

    # ---- digest ------------------------------------------------------------------------------------
    def _server(self, realm: str, algorithms: tuple[str, ...]) -> digest.DigestServer:
        key = (realm, algorithms)
        srv = self._servers.get(key)
        if srv is None:
            srv = self._servers[key] = digest.DigestServer(
                self.secret, realm, algorithms=algorithms, tracked_since_ms=self.started_ms
            )
        return srv

    def _workers_servers(self, srv: digest.DigestServer) -> list[digest.DigestServer]:
        """`srv`'s realm and algorithms with each SIP worker's key, by index (`srv` itself at ours)."""
        key = (srv.realm, srv.algorithms)
        servers = self._siblings.get(key)
        if servers is None:
            since = self._tracked_since
            servers = self._siblings[key] = [
                srv
                if k == self.index
                else digest.DigestServer(
                    s, srv.realm, algorithms=srv.algorithms, tracked_since_ms=since.get(k, self.started_ms)
                )
                for k, s in enumerate(self.worker_secrets)
            ]
        return servers

    def worker_gone(self, index: int) -> None:
        """SIP worker `index` is gone and this process (the main one) serves its aors until it is back: the
        nonce-counts it saw went with it, so the nonces of its key issued so far are answered stale here on
        first use (DigestServer.forget_before), never accepted as new (which would let an Authorization it
        accepted be replayed once here). Its clients authenticate again, as they do at its replacement."""
        now = int(time.time() * 1000)
        self._tracked_since[index] = now
        for servers in self._siblings.values():
            if 0 <= index < len(servers) and index != self.index:
                servers[index].forget_before(now)

    def _issuer(self, srv: digest.DigestServer, aor: str) -> digest.DigestServer:
        """`srv` with the key of the SIP worker that owns `aor` (sip/steer.py): the challenges for an aor
        are signed with its owner's key wherever they are made, and its REGISTERs are checked with it. The
        owner checks them with its own key; the main process, standing in for an owner that is gone (it
        handles that owner's aors until it is back), with the owner's key too, so the nonces it hands out
        meanwhile are good there; those issued before the owner was gone are answered stale (worker_gone),
        as they are by the restarted owner (`started_ms`): their nonce-counts went with the dead process."""
        workers = len(self.worker_secrets)
        if workers < 2:
            return srv
        return self._workers_servers(srv)[aor_owner(aor, workers)]

    def _sibling_nonce(self, srv: digest.DigestServer, header: str) -> bool:
        """Whether the nonce in `header` is another SIP worker's (see `worker_secrets`)."""
        if len(self.worker_secrets) < 2:
            return False
        try:
            nonce = digest.parse_params(header)[1].get("nonce") or ""
        except digest.DigestError:
            return False
        return any(
            s.knows_nonce(nonce) for s in self._workers_servers(self._server(srv.realm, srv.algorithms)) if s is not srv
        )

    def _account(self, cfg, endpoint: str):
        """The endpoint's _Account, or _NO_AUTH; cached until the configuration is reloaded (a reload
        makes a new PjsipConfig object)."""
        if cfg is not self._accounts_of:
            self._accounts, self._accounts_of = {}, cfg
        acct = self._accounts.get(endpoint)
        if acct is None:
            acct = self._accounts[endpoint] = self._read_account(cfg, endpoint)
        return acct

    def _device_account(self, device) -> _Account:
        """A kazoo device (engine.runtime.DeviceAccount): digest with its voice.sip username and password
        in its voice.sip realm (the registrar's realm when it has none), SHA-256 and MD5 offered; never
        unauthenticated. Cached until the devices are reloaded (a reload makes a new dict)."""
        if self.pbx.sip_devices is not self._devices_of:
            self._device_accounts, self._devices_of = {}, self.pbx.sip_devices
        acct = self._device_accounts.get(device.username)
        if acct is None:
            realm = device.realm or self.realm
            acct = self._device_accounts[device.username] = _Account(
                device.username, realm, self._server(realm, self.algorithms), False, device.password
            )
        return acct

    def _unknown_account(self) -> _Account:
        """What a name that is no account is challenged with: the registrar's realm and default
        algorithms, as an auth without realm or algorithms of its own; no digest ever matches."""
        return _Unknown("", self.realm, self._server(self.realm, self.algorithms), False, "")

    def _read_account(self, cfg, endpoint: str):
        ep = cfg.endpoints.get(endpoint, {})
        auth_name = (ep.get("auth") or "").split(",")[0].strip()
        if not auth_name or auth_name not in cfg.auths:
            return _NO_AUTH  # no auth configured: unauthenticated registration, as Asterisk allows
        auth = cfg.auths[auth_name]
        realm = auth.get("realm") or self.realm
        md5_only = (auth.get("auth_type") or "userpass") == "md5"
        srv = self._server(realm, ("MD5",) if md5_only else algorithms_of(auth, self.algorithms))
        secret = (auth.get("md5_cred") or "").lower() if md5_only else (auth.get("password") or "")
        return _Account(auth.get("username") or auth_name, realm, srv, md5_only, secret)

    def _failed(self, ip: str, aor: str, why: str, who: str | None, method: str = "REGISTER"):
        """Count it; an awaitable when the refusal must wait for the other SIP worker processes
        (engine/workers.py): a worker's failure is counted by the main process, and new bans reach
        every process before the refusal goes out, so the next attempt is refused wherever it lands."""
        log.warning("%s authentication failed from %s for %r: %s", method, ip, who, why)
        if self.report_failure is not None:
            return self.report_failure(ip, aor)
        if self.throttle.failed(ip, aor) and self.throttle.shared is not None:
            return self.throttle.shared()
        return None

    # ---- REGISTER ------------------------------------------------------------------------------------
    def _account_of(self, cfg, aor: str) -> tuple[str | None, Any]:
        """The endpoint that registers `aor` (None: no such name) and its _Account (or _NO_AUTH)."""
        if cfg is not None and aor in cfg.aors:
            endpoint = cfg.endpoint_for_aor(aor) or aor
            return endpoint, self._account(cfg, endpoint)
        if aor and (device := self.pbx.sip_devices.get(aor)) is not None:  # a kazoo device's voice.sip account
            return aor, self._device_account(device)
        return None, self._unknown_account()

    def handle(self, req: Message, source: Source):
        """The response, or a future of it when bindings must be written first: a challenge, a
        refusal or a query is answered at once, without a task or a database round trip."""
        if not self.pbx.is_loaded("res_pjsip_registrar"):
            return response_to(req, 501, "Registrar Not Loaded", headers=[_SERVER])
        cfg = self.pbx.pjsip()
        aor = uri_user(req.get("To")) or ""
        if self.throttle.check(source.ip, aor) is not None:  # the same for every name, known or not
            log.warning("REGISTER from %s for %r refused: too many failed authentications", source.ip, aor)
            return response_to(req, 403, "Too Many Failed Authentications", headers=[_SERVER])
        endpoint, acct = self._account_of(cfg, aor)
        denied = self._authenticate(req, source, acct, aor, issuer=True)
        if denied is not None:
            return denied
        if endpoint is None:  # cannot happen: no digest matches an unknown name
            return response_to(req, 403, "Forbidden", headers=[_SERVER])
        return self._bind_soon(req, source, cfg, aor, endpoint)

    def stateless_challenge(self, req: Message, source: Source, to_tag: str) -> Message | None:
        """The 401 `handle` would answer a REGISTER without credentials, for the SIP engine to send
        statelessly (SipEngine.challenge), with `to_tag`; None for every other case (credentials, an
        endpoint without auth, a banned source, the registrar unloaded), which `handle` answers.

        With SIP workers the process a REGISTER reaches challenges it whichever process owns its aor,
        with a nonce signed by the owner's key (`worker_secrets`): the REGISTER with credentials that
        follows goes to the owner (sip/steer.py), which accepts the nonce as its own and counts its
        nonce-count. So only REGISTERs with credentials travel between processes."""
        if req.method != "REGISTER" or req.get("Authorization") is not None:
            return None
        headers = self.challenge_headers(req.get("To") or "", source)
        return None if headers is None else response_to(req, 401, headers=headers, to_tag=to_tag)

    def challenge_headers(self, to: str, source: Source) -> list[tuple[str, str]] | None:
        """`stateless_challenge` for a REGISTER without credentials to `to` (its To value): the headers of its
        401 after the echoed ones (Server, WWW-Authenticate), for the SIP engine to write the answer to a plain
        request without a Message (SipEngine.challenge); None where `stateless_challenge` declines."""
        if not self.pbx.is_loaded("res_pjsip_registrar"):
            return None
        aor = uri_user(to) or ""
        if self.throttle.check(source.ip, aor) is not None:
            return None
        acct = self._account_of(self.pbx.pjsip(), aor)[1]
        if acct is _NO_AUTH:
            return None
        srv = self._issuer(acct.server, aor)
        return [_SERVER, *[("WWW-Authenticate", c) for c in srv.challenge()]]

    def authenticate(self, req: Message, source: Source, cfg, endpoint: str | None, user: str) -> Message | None:
        """Digest for a request other than REGISTER (an INVITE): None when `endpoint` may go on (it
        has no auth, or the credentials are right), else the challenge or the refusal. A name that is
        no endpoint (`endpoint` None) is challenged exactly as a known one and then refused."""
        acct = self._account(cfg, endpoint) if endpoint is not None and cfg is not None else self._unknown_account()
        return self._authenticate(req, source, acct, user, defer=False)

    def _authenticate(self, req: Message, source: Source, acct, aor: str, defer: bool = True, issuer: bool = False):
        """None when authenticated, else the challenge or the refusal: a Message, or a Deferred one
        (`defer`) when the refusal waits for the other processes (_failed). `issuer`: with the key of
        the aor's owner (`_issuer`: a REGISTER), else with this process's (an INVITE, in the main process)."""
        if acct is _NO_AUTH:
            return None
        srv = self._issuer(acct.server, aor) if issuer else acct.server
        header = req.get("Authorization")
        if header is None:
            return response_to(req, 401, headers=[_SERVER, *[("WWW-Authenticate", c) for c in srv.challenge()]])
        verdict = srv.verify(req.method or "REGISTER", header, acct.lookup)
        if verdict.ok:
            self.throttle.succeeded(source.ip, aor)
            return None
        if verdict.stale or (verdict.reason == "bad nonce" and self._sibling_nonce(srv, header)):
            return response_to(
                req, 401, headers=[_SERVER, *[("WWW-Authenticate", c) for c in srv.challenge(stale=True)]]
            )
        waiting = self._failed(source.ip, aor, verdict.reason, verdict.username, req.method or "REGISTER")
        refusal = response_to(req, 403, "Forbidden", headers=[_SERVER])
        if waiting is None:
            return refusal
        task = asyncio.ensure_future(waiting)
        if not defer:  # (an INVITE's, in the main process: the call engine wants the answer now)
            return refusal
        later = Deferred()
        task.add_done_callback(lambda _: later.resolve(refusal))
        return later

    def _bind_soon(self, req: Message, source: Source, cfg, aor: str, endpoint: str):
        """The REGISTER's response, or a Deferred one that resolves once its changes are committed.
        REGISTERs of one aor are decided one after the other, each on the bindings the previous one
        left: one arriving while another of its aor awaits the commit waits for it (`_busy`)."""
        queue = self._busy.get(aor)
        if queue is not None:
            fut = Deferred()
            queue.append((req, source, cfg, aor, endpoint, fut))
            return fut
        out = self._decide(req, source, cfg, aor, endpoint)
        if isinstance(out, Message):
            return out
        self._busy[aor] = deque()
        out.fut = Deferred()
        self._enqueue(out)
        return out.fut

    def _decide(self, req: Message, source: Source, cfg, aor: str, endpoint: str) -> Message | _Write:
        """A response now (a refusal; or a query, which changes nothing durable) or the changes to write."""
        out = self._bind(req, source, cfg, aor, endpoint)
        if isinstance(out, _Write) and not out.removes and not out.upserts:
            self._apply(out)  # only expired bindings go, which the sweep deletes from the database
            self.pbx.view_cache.clear()
            return self._ok(out)
        return out

    def _release(self, aor: str) -> None:
        """The aor's REGISTER is answered: decide the next one waiting for it, if any."""
        queue = self._busy.get(aor)
        while queue:
            req, source, cfg, aor, endpoint, fut = queue.popleft()
            try:
                out = self._decide(req, source, cfg, aor, endpoint)
            except Exception as e:  # answered 500 by the engine, which logs it
                fut.fail(e)
                continue
            if isinstance(out, Message):
                fut.resolve(out)
                continue
            out.fut = fut
            self._enqueue(out)
            return
        self._busy.pop(aor, None)

    def _bind(self, req: Message, source: Source, cfg, aor: str, endpoint: str) -> Message | _Write:
        policy = cfg.aor_policy(aor) if cfg is not None and aor in cfg.aors else DEVICE_POLICY
        call_id = req.get("Call-ID") or ""
        cseq, _ = req.cseq
        header_expires = _int(req.get("Expires"))
        contacts = split_contacts(req.get_all("Contact"))
        now = int(time.time())
        current = self.pbx.contacts.get(aor) or {}
        removes: set[str] = set()
        upserts: dict[str, Binding] = {}
        if "*" in contacts:  # split_contacts strips each contact
            if len(contacts) != 1 or header_expires != 0:
                return response_to(req, 400, "Wildcard Contact Needs Expires 0 Alone", headers=[_SERVER])
            for uri, b in current.items():
                if b.call_id == call_id and cseq <= b.cseq:
                    return response_to(req, 500, "Out Of Order CSeq", headers=[_SERVER])
                removes.add(uri)
        else:
            for contact in contacts:
                uri, params = contact_uri_and_params(contact)
                if not uri.lower().startswith(("sip:", "sips:")):
                    return response_to(req, 400, "Bad Contact", headers=[_SERVER])
                expires = _int(params.get("expires"))
                if expires is None:
                    expires = header_expires if header_expires is not None else policy.default_expiration
                old = current.get(uri)
                if old is not None and old.call_id == call_id and cseq <= old.cseq:
                    return response_to(req, 500, "Out Of Order CSeq", headers=[_SERVER])
                if expires == 0:
                    removes.add(uri)
                    continue
                if expires < policy.minimum_expiration:
                    return response_to(req, 423, headers=[_SERVER, ("Min-Expires", str(policy.minimum_expiration))])
                expires = min(expires, policy.maximum_expiration)
                b = upserts[uri] = Binding(
                    aor=aor,
                    uri=uri,
                    endpoint=endpoint,
                    call_id=call_id,
                    cseq=cseq,
                    user_agent=(req.get("User-Agent") or "")[:255],
                    via_address=source.address,
                    transport=source.transport,
                    path=",".join(req.get_all("Path"))[:2000],
                    expires_at=now + expires,
                    registered_at=now,
                )
                if old is not None:  # a refresh keeps what qualify knows
                    b.status, b.rtt_usec, b.next_qualify, b.registered_at = (
                        old.status,
                        old.rtt_usec,
                        old.next_qualify,
                        old.registered_at,
                    )
        after = {u: b for u, b in current.items() if u not in removes and b.expires_at > now}
        after.update(upserts)
        if len(after) > policy.max_contacts:
            if not policy.remove_existing or len(upserts) > policy.max_contacts:
                return response_to(req, 403, "Too Many Contacts", headers=[_SERVER])
            others = sorted((b for u, b in after.items() if u not in upserts), key=lambda b: b.registered_at)
            for b in others[: len(after) - policy.max_contacts]:
                removes.add(b.uri)
                after.pop(b.uri)
        return _Write(aor, removes, upserts, after, req, now)

    def _apply(self, w: _Write) -> None:
        """This node's copy of the aor's bindings, once the change is durable."""
        before = self.pbx.contacts.get(w.aor) or {}
        for uri in w.removes:
            if uri in before:
                events.publish("registration.removed", binding_event(before[uri], w.now, "unregistered"))
        for uri, b in w.upserts.items():
            kind = "registration.refreshed" if uri in before else "registration.added"
            events.publish(kind, binding_event(b, w.now))
        if w.after:
            self.pbx.contacts[w.aor] = w.after
        else:
            self.pbx.contacts.pop(w.aor, None)
        self.generation[w.aor] = self.generation.get(w.aor, 0) + 1

    def _ok(self, w: _Write) -> Message:
        now = w.now
        out = [_SERVER, *[("Contact", f"<{b.uri}>;expires={max(0, b.expires_at - now)}") for b in w.after.values()]]
        out.append(("Date", _date()))
        return response_to(w.req, 200, headers=out)

    def _enqueue(self, w: _Write) -> None:
        """Group commit: the REGISTERs decided while a commit is being prepared share it (one
        transaction, one executemany per statement), so under load a commit is paid per group, not
        per REGISTER; a REGISTER is answered only once its changes are committed.

        A group is what is decided within `commit_window` (3 ms) of its first REGISTER, committed by
        the flusher task then, except that on SQLite a group is committed as soon as it has
        `eager_batch` REGISTERs, right here: a burst of datagrams (a load generator's, or many phones')
        would otherwise keep every REGISTER of it waiting until the last one is handled, and the first
        answers out early let their senders go on while we work on the rest.

        Why a window: a commit costs about ten REGISTERs' upserts (BEGIN IMMEDIATE, the WAL frames and
        index of COMMIT, and with SIP workers the main process's acknowledgement of the group's events).
        Measured in process on SQLite: groups of 2, 6 and 16 REGISTERs cost 36.7, 19.1 and 11.7 µs of
        commit per REGISTER. Committing at the end of each turn of the loop made groups of ~3 at
        5,000 REGISTERs/s, because a turn reads only the few datagrams that arrived since the last;
        3 ms gathers ~8 per group at that rate, for 3 ms more before the 200 (a client retransmits after 500)."""
        self._pending.append(w)
        if len(self._pending) >= self.eager_batch and not self._committing and self.db.is_sqlite:
            _start_eagerly(self._commit(), self._tasks)
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        """Commit what is pending once `commit_window` has gathered company for it; what is decided
        meanwhile (REGISTERs that waited for their aor) waits for the next window and commit."""
        while self._pending:
            await asyncio.sleep(self.commit_window)
            await self._commit()

    async def _commit(self) -> None:
        """Commit the pending changes, then answer their REGISTERs."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        self._committing += 1
        try:
            await self.write(self.db, batch)
        except Exception as e:  # every waiting REGISTER learns it (500), none is acknowledged
            self._committing -= 1
            for w in batch:
                w.fut.fail(e)
                self._release(w.aor)
            return
        self._committing -= 1
        self.pbx.view_cache.clear()
        failed: dict[int, Exception] = {}
        for w in batch:
            try:
                self._apply(w)
            except Exception as e:  # noqa: BLE001 - the engine answers 500 and logs it
                failed[id(w)] = e
        if self.answer_after is not None:
            try:
                await self.answer_after()
            except Exception:  # noqa: BLE001 - the bindings are durable: answer anyway
                log.exception("could not wait for the main process to learn the bindings")
        for w in batch:
            error = failed.get(id(w))
            try:
                if error is None:
                    w.fut.resolve(self._ok(w))
                else:
                    w.fut.fail(error)
            except Exception as exc:  # noqa: BLE001
                w.fut.fail(exc)
            self._release(w.aor)

    def tcp_addresses(self) -> set[str]:
        """The "ip:port" of the TCP connections registrations are bound to (kept open by the engine)."""
        return {
            b.via_address for bindings in self.pbx.contacts.values() for b in bindings.values() if b.transport == "TCP"
        }
