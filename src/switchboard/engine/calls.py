"""The call engine: a B2BUA that carries calls through the dialplan, as Asterisk's chan_pjsip does.

Every call is made of SIP channels (`SipChannel`, one per dialog): the inbound leg runs the
dialplan (engine/dialplan_exec.py); `Dial` makes outbound legs and bridges the first that answers.
Media never passes through this process: each channel has a leg in the media engine (media/, its
own process), driven by its control protocol (rtpengine's ng framing: `leg`, `bridge`, `play media`,
`music on hold`, `echo`, `play DTMF`, `start recording`, `delete`; DTMF and end-of-playback come
back as events). The media call id is the channel's linkedid and the leg id its uniqueid.

Inbound INVITE (Asterisk's `endpoint_identifier_order=ip,username,anonymous`):
1. source address matching a pjsip `identify` (`match=` address, CIDR or host) → that endpoint, no
   digest;
2. else the From user names an endpoint, or the From user or the digest's username names an auth
   (`identify_by=username,auth_username`; a first INVITE from an unknown From user is challenged
   like any other and its credentials then say who it is): digest (401, the endpoint's auth,
   the registrar's nonce/throttle rules) when the endpoint has `auth=`; its `context=`;
3. else a domain trunk (providers / jade trunks) whose hostname or outbound server at its port, or
   (IP_AUTH trunks) one of whose `ips`, sent the request → the trunk, no digest, entering context
   `from-trunk` (or an in_parameter named `context`). Our choice: a provider's host is a weaker
   sign than an explicit pjsip `identify`, so it comes after the From user (a trunk on 127.0.0.1
   would otherwise take every local phone);
4. else an endpoint named `anonymous` takes the call when one exists; otherwise the caller gets the
   same challenge as a known name and then 403, so nothing tells which names exist.
The Request-URI user is the extension. SDP: malformed → 400, no common codec → 488 (sip/sdp.py).

Outbound (Dial): `PJSIP/<endpoint>` rings every live contact of its aors (registered bindings, then
static `contact=`) in parallel, each INVITE sent where the binding's REGISTER came from (as
`rewrite_contact=yes`); the first 2xx wins and the others are CANCELled. `PJSIP/<number>@<trunk>`
goes to a pjsip endpoint's static aor contact (with `outbound_auth`, `outbound_proxy`, `from_user`,
`from_domain`) or to a domain trunk of that name (hostname/port, outbound server, auth id and
password), answering 401/407 once. Caller ID: the caller's (an endpoint's `callerid=` when set, else
its From); on answer the caller's connected line becomes the callee's.

In-dialog: BYE, re-INVITE/UPDATE (hold: `sendonly`/`inactive` or c=0.0.0.0 → the other party
hears music on hold; unhold resumes the bridge), INFO `application/dtmf-relay` (a digit for the
dialplan; relayed as RFC 4733 to the bridged peer), REFER (blind transfer: the other party is sent to
the Refer-To extension in the transferer's context; NOTIFY with a sipfrag), PRACK/NOTIFY → 200.
A 2xx never ACKed ends the call with BYE (RFC 3261 §13.3.1.4).

Not done (said in the closing note): 100rel (reliable provisionals: PRACK is accepted, ours are not
sent reliably), session timer refreshes by us (a peer's Session-Expires is echoed), late offer
(INVITE without SDP), attended transfer (Replaces), early media from a callee (183 relayed as
ringing).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard import events
from switchboard.engine import channel as chan
from switchboard.engine.channel import Channel, ChannelGone
from switchboard.engine.mediactl import MediaError
from switchboard.sip import digest, sdp
from switchboard.sip.dialog import CONFIRMED, Dialog, UacInvite, UasInvite
from switchboard.sip.endpoint import DeliverRequest, Source
from switchboard.sip.engine import CALL_ALLOW, USER_AGENT
from switchboard.sip.headers import name_addr, split_contacts, tag, uri_of, uri_params, uri_user
from switchboard.sip.message import Message, new_tag, response_to
from switchboard.sip.transaction import Send

log = logging.getLogger("switchboard.calls")

_SERVER = ("Server", USER_AGENT)
_ALLOW = ("Allow", CALL_ALLOW)
SDP_TYPE = ("Content-Type", "application/sdp")

# Q.850 cause → SIP status of a refused call (Asterisk's hangup_cause2sip)
CAUSE_TO_SIP = {
    1: 404,
    3: 404,
    16: 480,
    17: 486,
    18: 408,
    19: 480,
    20: 480,
    21: 603,
    22: 410,
    27: 502,
    28: 484,
    29: 501,
    31: 480,
    34: 503,
    38: 500,
    41: 503,
    42: 503,
    44: 503,
    58: 488,
    65: 488,
    88: 488,
    102: 504,
    127: 500,
}


def sip_to_cause(status: int) -> int:
    """SIP status of a failed outbound INVITE → Q.850 (Asterisk's hangup_sip2cause)."""
    return {
        404: 1,
        410: 22,
        484: 28,
        486: 17,
        600: 17,
        408: 102,
        480: 18,
        487: 127,
        603: 21,
        488: 58,
        606: 58,
        503: 34,
        502: 38,
        500: 41,
        504: 102,
    }.get(status, 21 if 400 <= status < 500 else 41 if status >= 500 else 16)


_DIAL_CAUSE = {"BUSY": 17, "NOANSWER": 19, "CONGESTION": 34, "CHANUNAVAIL": 20}


def dialstatus_for(status: int | None) -> str:
    """Asterisk's DIALSTATUS for how an outbound leg ended without answer."""
    if status is None:
        return "NOANSWER"
    if status in (486, 600):
        return "BUSY"
    if status in (408, 480, 487):
        return "NOANSWER"
    if status >= 500 or status == 488:
        return "CONGESTION"
    if status in (404, 484, 410):
        return "CHANUNAVAIL"
    return "CONGESTION"


@dataclass
class Target:
    """Where one outbound INVITE goes."""

    resource: str  # the endpoint or trunk name (the channel's resource)
    uri: str  # the Request-URI
    dest: Source
    number: str  # what was dialled (the callee's number for the connected line)
    codecs: list[str]
    username: str = ""  # digest credentials for 401/407 (trunks)
    password: str = ""
    from_user: str = ""
    from_domain: str = ""
    context: str = "default"  # the endpoint's context= (where a transfer from this leg goes)
    # Route header values: the Path (RFC 3327) the binding was registered with (a balancer in front)
    route: list[str] = field(default_factory=list)


class SipChannel(Channel):
    """A channel over one SIP dialog; its media is a leg in the media engine."""

    def __init__(self, calls: CallEngine, resource: str, *, dest: Source, codecs: list[str], **kw):
        super().__init__(resource, **kw)
        self.calls = calls
        self.dest = dest  # where this leg's requests go (the peer's source address / connection)
        self.codecs = codecs
        self.inbound = False
        self.incoming: DeliverRequest | None = None
        self.uas: UasInvite | None = None
        self.uac: UacInvite | None = None
        self.dialog: Dialog | None = None
        self.remote: sdp.Media | None = None
        self.offer: sdp.Sdp | None = None  # the peer's last offer (inbound) or ours (outbound)
        self.local_sdp: sdp.Sdp | None = None
        self.sdp_version = 1
        self.local_addr, self.local_port = "", 0
        self.on_hold = False
        self.answered = asyncio.Event()
        self.ringing_seen = asyncio.Event()
        self.final_status: int | None = None  # outbound: the final response's status
        self.failed = asyncio.Event()
        self.auth_tried = False
        self.target: Target | None = None
        self.ran_dialplan = False
        self.playing: asyncio.Future | None = None
        self.referred: tuple[str, str] | None = None  # (context, exten) a REFER sent this channel to
        self.last_refresh = time.monotonic()  # the last re-INVITE/UPDATE (session timers)
        self.survives_peer = False  # stays up when the channel bridged with it hangs up (agents)
        self.on_bridge: Callable[[SipChannel], None] | None = None  # Dial bridged a callee (queues count it)

    def device_state(self, device: str) -> str:
        return self.calls.pbx.device_state(device)

    def extension_state(self, context: str, exten: str) -> str:
        return self.calls.pbx.extension_state(context, exten)

    def set_state(self, state: int) -> None:
        super().set_state(state)
        self.calls.pbx.view_cache.clear()  # endpoint views show device states

    # ---- media -------------------------------------------------------------------------------
    async def media_leg(self) -> None:
        """Create or update this channel's media leg (the peer's address and codec once known)."""
        cmd: dict[str, Any] = {"command": "leg", "call-id": self.linkedid, "from-tag": self.uniqueid}
        r = self.remote
        if r is not None:
            cmd.update(
                {
                    "remote-address": r.address,
                    "remote-port": r.port,
                    "codec": r.codec,
                    "payload-type": r.payload_type,
                    "ptime": r.ptime or 20,
                    "direction": r.direction,  # the phone's own (sendonly: it only sends, we send it nothing)
                }
            )
            if r.telephone_event is not None:
                cmd["dtmf-payload-type"] = r.telephone_event
        else:
            cmd.update({"codec": self.codecs[0] if self.codecs else "PCMU"})
        reply = await self.calls.media.command(cmd)
        self.local_addr, self.local_port = reply["local-address"], int(reply["local-port"])

    async def _media(self, command: str, **fields) -> dict:
        self.check()
        cmd = {"command": command, "call-id": self.linkedid, "from-tag": self.uniqueid, **fields}
        return await self.calls.media.command(cmd)

    # ---- the channel API ---------------------------------------------------------------------
    async def ringing(self) -> None:
        self.check()
        if self.inbound and self.state not in (chan.UP, chan.RINGING):
            self._provisional(180)
        if self.state != chan.UP:
            self.set_state(chan.RINGING)

    async def progress(self) -> None:
        self.check()
        if self.inbound and self.state != chan.UP:
            self._provisional(183, sdp_body=True)

    def _provisional(self, status: int, *, sdp_body: bool = False) -> None:
        if self.uas is None or self.uas.final is not None or self.incoming is None:
            return
        if _requires(self.incoming.message, "100rel"):
            # RFC 3262: a caller that requires 100rel gets only reliable provisionals; we send none
            # (a UAS need not send any: the call goes from 100 Trying to the final response)
            return
        headers: list[tuple[str, str]] = [_SERVER]
        body = b""
        if sdp_body and self.local_sdp is not None:
            headers.append(SDP_TYPE)
            body = self.local_sdp.to_bytes()
        resp = self.uas.provisional(status, headers, body)
        self.calls.sip.respond(self.incoming, resp)

    async def answer(self) -> None:
        self.check()
        if self.state == chan.UP or not self.inbound:
            return
        uas, incoming = self.uas, self.incoming
        if uas is None or incoming is None or uas.final is not None:
            raise ChannelGone(self.name)
        headers = [_SERVER, _ALLOW, SDP_TYPE, ("Supported", "replaces, timer")]
        if self.connected_num:
            headers.append(
                ("P-Asserted-Identity", f'"{self.connected_name}" <sip:{self.connected_num}@{self.calls.host}>')
            )
        req = incoming.message
        se = _delta(req.get("Session-Expires"))
        if se is not None and "timer" in _option_tags(req, "Supported") + _option_tags(req, "Require"):
            # RFC 4028: the caller refreshes (re-INVITE or UPDATE); no refresh within the interval
            # and the call is ended (§10)
            headers += [("Session-Expires", f"{se};refresher=uac"), ("Require", "timer")]
            self.calls._spawn(self._session_watchdog(se))
        body = self.local_sdp.to_bytes() if self.local_sdp is not None else b""
        self.calls.sip.answer_invite(incoming, uas, 200, headers=headers, body=body)
        if uas.dialog is not None:
            self.dialog = uas.dialog
            self.calls.dialogs[uas.dialog.id] = self
        self.set_state(chan.UP)
        self.answered.set()

    async def _session_watchdog(self, interval: int) -> None:
        self.last_refresh = time.monotonic()
        while not self.hung_up:
            try:
                await asyncio.wait_for(self.gone.wait(), interval)
                return
            except TimeoutError:
                pass
            if time.monotonic() - self.last_refresh >= interval:
                log.warning("%s: no session refresh within %d s (RFC 4028): hanging up", self.name, interval)
                await self.hangup(102)
                return

    async def hangup(self, cause: int = chan.NORMAL_CLEARING) -> None:
        if self.hung_up:
            return
        self.hangup_cause = cause
        self._signal_end(cause)
        await self.calls.ended(self, cause)

    def _signal_end(self, cause: int) -> None:
        """BYE (answered), a final error (inbound, unanswered) or CANCEL (outbound, unanswered)."""
        sip = self.calls.sip
        dialog = self.dialog
        if dialog is not None and dialog.state == CONFIRMED:
            bye = dialog.request("BYE", headers=[("User-Agent", USER_AGENT), ("Reason", f"Q.850;cause={cause}")])
            dialog.terminate()
            sip.send_to(bye, self.dest, on_response=lambda r: None)
        elif self.inbound and self.uas is not None and self.uas.final is None and self.incoming is not None:
            status = CAUSE_TO_SIP.get(cause, 480)
            sip.answer_invite(self.incoming, self.uas, status, headers=[_SERVER, ("Reason", f"Q.850;cause={cause}")])
        elif not self.inbound and self.uac is not None:
            for action in self.uac.cancel():
                if action.__class__ is Send:
                    sip.send_to(action.message, self.dest, on_response=lambda r: None, add_via=False)

    async def _wait(self, aw, timeout: float | None = None):
        """Wait for `aw` (a future or coroutine) or the hangup; ChannelGone on hangup."""
        fut = asyncio.ensure_future(aw)
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            done, _ = await asyncio.wait({fut, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if fut in done:
            return fut.result()
        fut.cancel()
        if gone in done or self.hung_up:
            raise ChannelGone(self.name)
        raise TimeoutError

    async def play(self, names: list[str], *, digits: str = "") -> str:
        for name in names:
            self.check()
            done = self.calls.loop.create_future()
            self.playing = done
            try:
                reply = await self._media("play media", file=name)
            except MediaError as e:
                log.warning("%s: playback of %r failed: %s", self.name, name, e)
                continue
            if not reply.get("duration"):
                continue
            try:
                while True:
                    getter = asyncio.ensure_future(self.digits.get())
                    try:
                        waited = await self._wait(asyncio.wait({done, getter}, return_when=asyncio.FIRST_COMPLETED))
                    finally:
                        if not getter.done():
                            getter.cancel()
                    if getter in waited[0]:
                        digit = getter.result()
                        if digit in digits:
                            with contextlib.suppress(MediaError, ChannelGone):
                                await self._media("stop media")
                            return digit
                        continue  # a digit that does not interrupt is dropped
                    break
            finally:
                self.playing = None
        return ""

    async def get_digit(self, timeout: float | None) -> str:
        self.check()
        try:
            return await self._wait(self.digits.get(), timeout)
        except TimeoutError:
            return ""

    async def music_on_hold(self, klass: str = "default", seconds: float | None = None) -> None:
        await self._media("music on hold", **{"class": klass or "default"})
        try:
            await self._wait(asyncio.sleep(seconds if seconds else 1e9))
        finally:
            if not self.hung_up:
                with contextlib.suppress(MediaError):
                    await self._media("stop media")

    async def echo(self) -> None:
        await self._media("echo", enable="yes")
        try:
            while (await self._wait(self.digits.get())) != "#":
                pass
        finally:
            if not self.hung_up:
                with contextlib.suppress(MediaError):
                    await self._media("echo", enable="no")

    async def record(self, path: str, *, silence: float = 0, max_seconds: float = 0, terminator: str = "#") -> str:
        # as Asterisk: a relative name is in the sounds folder, where Playback(name) finds it again
        base = self.calls.sounds_dir
        target = Path(path) if Path(path).is_absolute() or base is None else (base / path)
        if base is not None and not Path(path).is_absolute():
            target = target.resolve()
            if base.resolve() not in target.parents:
                log.warning("%s: Record(%s): outside the sounds folder", self.name, path)
                return "error"
            target.parent.mkdir(parents=True, exist_ok=True)
        await self._media("start recording", file=str(target))
        reason = "dtmf"
        try:
            deadline = time.monotonic() + max_seconds if max_seconds else None
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    reason = "timeout"
                    break
                try:
                    digit = await self._wait(self.digits.get(), left)
                except TimeoutError:
                    reason = "timeout"
                    break
                if digit in terminator:
                    break
        except ChannelGone:
            reason = "hangup"
        finally:
            with contextlib.suppress(MediaError):
                await self.calls.media.command(
                    {"command": "stop recording", "call-id": self.linkedid, "from-tag": self.uniqueid}
                )
        return reason

    async def send_digits(self, digits: str) -> None:
        for d in digits:
            await self._media("play DTMF", code=d, duration=100)
            await asyncio.sleep(0.2)

    async def dial(self, targets: list[str], timeout: float | None, options: str) -> str:
        return await self.calls.dial(self, targets, timeout, options)

    # ---- outbound INVITE responses --------------------------------------------------------------
    def on_invite_response(self, resp: Message | None) -> None:
        self.calls.loop.create_task(self._invite_response(resp))

    async def _invite_response(self, resp: Message | None) -> None:
        calls = self.calls
        if resp is None:  # timeout / transport error
            if self.final_status is None:
                self.final_status = 408
                self.failed.set()
            return
        status = resp.status or 0
        uac = self.uac
        if uac is None:
            return
        for action in uac.on_response(resp):
            if action.__class__ is Send:
                m = action.message
                if m.method == "ACK":
                    calls.sip.send_ack(m, self.dest)
                else:  # the CANCEL asked for before the first provisional
                    calls.sip.send_to(m, self.dest, on_response=lambda r: None, add_via=False)
        if status < 200:
            if status in (180, 183) and not self.ringing_seen.is_set():
                self.set_state(chan.RINGING)
                self.ringing_seen.set()
            return
        if status < 300:
            if self.final_status is not None:  # a retransmitted 2xx, or another fork: ACKed above
                if self.dialog is not None and uac.dialog is not self.dialog and uac.dialog is not None:
                    extra = uac.dialog.request("BYE")
                    calls.sip.send_to(extra, self.dest, on_response=lambda r: None)
                return
            self.final_status = status
            self.dialog = uac.dialog
            if self.dialog is not None:
                calls.dialogs[self.dialog.id] = self
                calls.sip.endpoint.dialogs.add(self.dialog)
            if self.hung_up or self.gone.is_set():  # answered after we gave up: end it
                self._signal_end(chan.NORMAL_CLEARING)
                return
            try:
                self.remote = sdp.accept_answer(self.offer, sdp.parse(resp.body)) if resp.body else None
            except sdp.SdpError as e:
                log.warning("%s: unusable SDP answer (%s): hanging up", self.name, e)
                self.final_status = 488
                self._signal_end(58)
                self.failed.set()
                return
            if self.remote is not None:
                with contextlib.suppress(MediaError):
                    await self.media_leg()
            pai = resp.get("P-Asserted-Identity") or resp.get("Remote-Party-ID")
            if pai:
                na = name_addr(pai)
                self.caller_name, self.caller_num = na.display or "", uri_user(pai) or ""
            self.set_state(chan.UP)
            self.answered.set()
            return
        if status in (401, 407) and self.target is not None and self.target.username and not self.auth_tried:
            self.auth_tried = True
            header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            try:
                creds = digest.DigestClient(self.target.username, self.target.password).authorize(
                    "INVITE", uac.invite.uri or "", resp.get_all(header)
                )
            except digest.DigestError as e:
                log.warning("%s: cannot answer the challenge: %s", self.name, e)
            else:
                retry = calls.reinvite_with(
                    uac.invite, "Authorization" if status == 401 else "Proxy-Authorization", creds
                )
                self.uac = UacInvite(retry)
                calls.sip.send_to(retry, self.dest, on_response=self.on_invite_response)
                return
        self.final_status = status
        self.failed.set()


@dataclass
class CallEngine:
    """Inbound INVITEs, in-dialog requests, Dial and Originate (see the module docstring)."""

    pbx: Any  # engine.runtime.Pbx
    sip: Any  # sip.engine.SipEngine
    registrar: Any  # engine.registrar.Registrar
    media: Any  # media client: `await command(dict) -> dict`
    runner: Callable  # engine.dialplan_exec.run
    trunk_service: Any = None  # domain.trunks.TrunkService (passwords of domain trunks)
    cdrs: Any = None  # a CDR writer: channel_ended(ch)
    dialogs: dict = field(default_factory=dict)  # dialog id -> SipChannel
    _by_tx: dict = field(default_factory=dict)  # id(INVITE server transaction) -> SipChannel (CANCEL)
    _by_uas: dict = field(default_factory=dict)  # id(UasInvite) -> SipChannel (2xx never ACKed)
    _outbound: dict = field(default_factory=dict)  # (Call-ID, local tag) -> SipChannel (2xx retransmissions)
    _tasks: set = field(default_factory=set)
    host: str = "127.0.0.1"
    sounds_dir: Path | None = None  # where Record() puts a relative name (a sounds folder of the media engine)

    def __post_init__(self) -> None:
        from switchboard.engine import apps  # noqa: F401 - queue, parking and agent applications register

        self.loop = asyncio.get_event_loop()
        self.sip.call_handler = self.handle
        self.sip.on_cancelled = self._cancelled
        self.sip.on_stray_response = self._stray_response
        self.sip.on_unacked = self._unacked
        if hasattr(self.media, "on_event"):
            self.media.on_event = self._media_event

    def _spawn(self, coro) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def channel(self, uniqueid: str) -> SipChannel | None:
        return self.pbx.channels.get(uniqueid)

    # ---- requests from the SIP engine -------------------------------------------------------------
    def handle(self, incoming: DeliverRequest):
        req = incoming.message
        method = req.method
        if incoming.dialog is not None:
            ch = self.dialogs.get(incoming.dialog.id)
            if ch is None:
                return response_to(req, 481, headers=[_SERVER])
            return self._in_dialog(ch, incoming)
        if method == "INVITE":
            if tag(req.get("To")):  # a re-INVITE for a dialog we do not have
                return response_to(req, 481, headers=[_SERVER])
            return self._inbound(incoming)
        if method in ("BYE", "INFO", "UPDATE", "PRACK", "REFER"):
            return response_to(req, 481, headers=[_SERVER])
        return response_to(req, 405, headers=[_SERVER, _ALLOW])

    def _cancelled(self, tx) -> None:
        ch = self._by_tx.pop(id(tx), None)
        if ch is not None and not ch.hung_up:
            if ch.uas is not None and ch.uas.final is None:
                ch.uas.final = 487  # the endpoint answered 487 already
            self._spawn(self.ended(ch, chan.NORMAL_CLEARING))

    def _stray_response(self, resp: Message) -> None:
        key = (str(resp.get("Call-ID") or "").strip(), tag(resp.get("From")))
        ch = self._outbound.get(key)
        if ch is not None and ch.uac is not None:
            for action in ch.uac.on_response(resp):
                if action.__class__ is Send and action.message.method == "ACK":
                    self.sip.send_ack(action.message, ch.dest)

    def _unacked(self, uas) -> None:
        ch = self._by_uas.pop(id(uas), None)
        if ch is not None and not ch.hung_up:
            log.warning("%s: the 200 OK was never acknowledged: hanging up", ch.name)
            self._spawn(ch.hangup(102))

    def _media_event(self, event: dict) -> None:
        ch = self.channel(str(event.get("from-tag", "")))
        if ch is None:
            return
        kind = event.get("event")
        if kind == "dtmf":
            ch.digits.put_nowait(str(event.get("digit", "")))
            events.publish("dtmf", dtmf_event(ch, str(event.get("digit", ""))))
        elif (
            kind == "play-done"
            and event.get("reason", "done") in ("done", "deleted")  # not one we stopped or replaced ourselves
            and ch.playing is not None
            and not ch.playing.done()
        ):
            ch.playing.set_result(None)

    # ---- inbound ------------------------------------------------------------------------------
    def _identify(self, req: Message, source: Source) -> tuple[str, str, str, list[str], str] | Message:
        """(kind, resource, context, codecs, callerid) of who calls, or the response that refuses."""
        cfg = self.pbx.pjsip()
        ip = source.ip
        if cfg is not None:
            for ident in cfg.identifies.values():
                ep = ident.get("endpoint", "")
                if ep in cfg.endpoints and any(_matches(m, ip) for m in _split(ident.get("match", ""))):
                    e = cfg.endpoints[ep]
                    return "endpoint", ep, e.get("context", "default"), _codecs(e), e.get("callerid", "")
        user = uri_user(req.get("From")) or ""
        if self.registrar.throttle.check(ip, user) is not None:
            return response_to(req, 403, "Too Many Failed Authentications", headers=[_SERVER])
        endpoint = None
        if cfg is not None:
            if user in cfg.endpoints:
                endpoint = user
            else:  # identify_by=auth_username: the From user, else the digest's username, names an auth
                named = [user]
                header = req.get("Authorization") or req.get("Proxy-Authorization")
                if header:
                    with contextlib.suppress(digest.DigestError):
                        named.append(digest.parse_params(header)[1].get("username", ""))
                for auth_name, auth in cfg.auths.items():
                    if (auth.get("username") or auth_name) in named:
                        endpoint = cfg.endpoint_for_auth(auth_name)
                        user = auth.get("username") or auth_name
                        break
        if endpoint is None:
            for trunk in self.pbx.trunks.values():
                if _trunk_sent(trunk, ip, source.port):
                    ctx = "from-trunk"
                    for p in trunk.in_parameters or ():
                        if isinstance(p, dict) and p.get("name") == "context" and p.get("value"):
                            ctx = str(p["value"])
                    return "trunk", trunk.name, ctx, ["PCMU", "PCMA"], ""
        if endpoint is None and cfg is not None and "anonymous" in cfg.endpoints:
            e = cfg.endpoints["anonymous"]
            return "endpoint", "anonymous", e.get("context", "default"), _codecs(e), ""
        denied = self.registrar.authenticate(req, source, cfg, endpoint, user)
        if denied is not None:
            return denied
        if endpoint is None:
            return response_to(req, 403, "Forbidden", headers=[_SERVER])
        e = cfg.endpoints[endpoint]
        return "endpoint", endpoint, e.get("context", "default"), _codecs(e), e.get("callerid", "")

    def _inbound(self, incoming: DeliverRequest):
        req, source = incoming.message, incoming.source
        who = self._identify(req, source)
        if isinstance(who, Message):
            return who
        _kind, resource, context, codecs, callerid = who
        ctype = (req.get("Content-Type") or "").split(";")[0].strip().lower()
        if not req.body or ctype != "application/sdp":
            return response_to(req, 488, "Not Acceptable Here (an SDP offer is required)", headers=[_SERVER])
        try:
            offer = sdp.parse(req.body)
        except sdp.SdpError as e:
            return response_to(
                req,
                e.status,
                f"{'Bad Request' if e.status == 400 else 'Not Acceptable Here'} ({e})"[:100],
                headers=[_SERVER],
            )
        unknown = [o for o in _option_tags(req, "Require") if o not in _SUPPORTED]
        if unknown:  # RFC 3261 §8.2.2.3
            return response_to(req, 420, headers=[_SERVER, ("Unsupported", ", ".join(unknown))])
        se = _delta(req.get("Session-Expires"))
        if se is not None and se < MIN_SE:  # RFC 4028 §6: too short a session interval
            return response_to(req, 422, headers=[_SERVER, ("Min-SE", str(MIN_SE))])
        return self._start_inbound(incoming, resource, context, codecs, callerid, offer)

    async def _start_inbound(self, incoming, resource, context, codecs, callerid, offer):
        req, source = incoming.message, incoming.source
        frm = name_addr(req.get("From") or "")
        num, name = uri_user(req.get("From")) or "", frm.display or ""
        if callerid:  # the endpoint's callerid= ("Name" <num>) wins, as Asterisk
            name, num = parse_callerid(callerid)
        exten = uri_user(req.uri) or "s"
        ch = SipChannel(
            self, resource, dest=source, codecs=codecs, context=context, exten=exten, caller_num=num, caller_name=name
        )
        ch.inbound, ch.incoming = True, incoming
        ch.uas = UasInvite(req, contact=f"<sip:{exten}@{self._local(source)}>")
        try:
            await ch.media_leg()
            answer, media = sdp.answer(
                offer, codecs, address=ch.local_addr, port=ch.local_port, session_id=int(time.time()), version=1
            )
        except sdp.SdpError as e:
            await self._drop_media(ch)
            return response_to(req, e.status, "Not Acceptable Here", headers=[_SERVER])
        except MediaError as e:
            log.error("media engine: %s", e)
            return response_to(req, 503, "Service Unavailable (media)", headers=[_SERVER])
        ch.offer, ch.local_sdp, ch.remote = offer, answer, media
        ch.on_hold = media.on_hold
        try:
            await ch.media_leg()
        except MediaError as e:  # the media engine is overloaded or gone: refuse the call, log one line
            log.error("media engine: %s", e)
            await self._drop_media(ch)
            return response_to(req, 503, "Service Unavailable (media)", headers=[_SERVER])
        ch.set_state(chan.RING)
        self.pbx.add_channel(ch)
        self._by_tx[id(incoming.tx)] = ch
        self._by_uas[id(ch.uas)] = ch
        dialplan = self.pbx.dialplan()
        self._spawn(self._run_dialplan(ch, dialplan, context, exten, 1))
        return None  # answered by the dialplan (or the hangup)

    async def _run_dialplan(self, ch: SipChannel, dialplan, context: str, exten: str, priority: int) -> None:
        ch.ran_dialplan = True
        try:
            if dialplan is None:
                log.warning("%s: no dialplan loaded", ch.name)
                await ch.hangup(1)
                return
            await self.runner(ch, dialplan, context, exten, priority)
        except ChannelGone:
            pass
        except Exception:
            log.exception("%s: dialplan execution failed", ch.name)
        finally:
            if not ch.hung_up:
                await ch.hangup(ch.hangup_cause or chan.NORMAL_CLEARING)

    async def ended(self, ch: SipChannel, cause: int) -> None:
        """A leg is over (either side): wake its waiters, free its media, record it."""
        if ch.hung_up:
            return
        ch.mark_gone(cause)
        if ch.dialog is not None:
            self.dialogs.pop(ch.dialog.id, None)
            self.sip.endpoint.dialogs.remove(ch.dialog)
        if ch.incoming is not None:
            self._by_tx.pop(id(ch.incoming.tx), None)
        if ch.uas is not None:
            self._by_uas.pop(id(ch.uas), None)
        if ch.uac is not None:
            self._outbound.pop((ch.uac.invite.get("Call-ID"), tag(ch.uac.invite.get("From"))), None)
        self.pbx.end_channel(ch)
        peer = ch.peer
        if peer is not None and not peer.hung_up:
            peer.peer = None
            if not peer.survives_peer:  # (a logged-in agent's channel stays when its caller goes)
                self._spawn(peer.hangup(cause))
        await self._drop_media(ch)
        if ch.ran_dialplan and self.cdrs is not None:
            try:
                self.cdrs.channel_ended(ch)
            except Exception:
                log.exception("%s: CDR not recorded", ch.name)

    async def _drop_media(self, ch: SipChannel) -> None:
        with contextlib.suppress(MediaError, OSError, TimeoutError):
            await self.media.command({"command": "delete", "call-id": ch.linkedid, "from-tag": ch.uniqueid})

    def _local(self, dest: Source) -> str:
        return f"{self.sip.local_host_for(dest.ip)}:{self.sip.port}" + (
            ";transport=tcp" if dest.transport == "TCP" else ""
        )

    # ---- in-dialog ------------------------------------------------------------------------------
    def _in_dialog(self, ch: SipChannel, incoming: DeliverRequest):
        req = incoming.message
        method = req.method
        if method == "BYE":
            if ch.dialog is not None:
                ch.dialog.terminate()
            self._spawn(self.ended(ch, chan.NORMAL_CLEARING))
            return response_to(req, 200, headers=[_SERVER])
        if method in ("INVITE", "UPDATE"):
            return self._reinvite(ch, incoming)
        if method == "INFO":
            ctype = (req.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype in ("application/dtmf-relay", "application/dtmf"):
                got = sdp.dtmf_relay(req.body)
                if got is None:
                    return response_to(req, 400, "Bad Request (dtmf-relay)", headers=[_SERVER])
                digit, duration = got
                ch.digits.put_nowait(digit)
                events.publish("dtmf", dtmf_event(ch, digit))
                if ch.peer is not None and not ch.peer.hung_up:
                    self._spawn(self._relay_digit(ch.peer, digit, duration))
                return response_to(req, 200, headers=[_SERVER])
            return response_to(req, 200, headers=[_SERVER])
        if method == "REFER":
            return self._refer(ch, req)
        if method in ("PRACK", "NOTIFY", "OPTIONS", "MESSAGE"):
            return response_to(req, 200, headers=[_SERVER])
        return response_to(req, 405, headers=[_SERVER, _ALLOW])

    async def _relay_digit(self, peer: SipChannel, digit: str, duration: int) -> None:
        with contextlib.suppress(MediaError, ChannelGone):
            await peer._media("play DTMF", code=digit, duration=max(40, min(duration or 100, 5000)))

    def _reinvite(self, ch: SipChannel, incoming: DeliverRequest):
        req = incoming.message
        ch.last_refresh = time.monotonic()
        if not req.body:
            if req.method == "UPDATE":
                return response_to(req, 200, headers=[_SERVER])
            return self._answer_reinvite(ch, incoming, ch.local_sdp)
        try:
            offer = sdp.parse(req.body)
            version = ch.sdp_version = ch.sdp_version + 1
            answer, media = sdp.answer(
                offer, ch.codecs, address=ch.local_addr, port=ch.local_port, session_id=int(ch.created), version=version
            )
        except sdp.SdpError as e:
            return response_to(req, 488 if e.status == 488 else 400, headers=[_SERVER])
        was_held = ch.on_hold
        ch.offer, ch.local_sdp, ch.remote, ch.on_hold = offer, answer, media, media.on_hold
        self._spawn(self._apply_hold(ch, was_held))
        if req.method == "UPDATE":
            return response_to(req, 200, headers=[_SERVER, SDP_TYPE], body=answer.to_bytes())
        return self._answer_reinvite(ch, incoming, answer)

    def _answer_reinvite(self, ch: SipChannel, incoming: DeliverRequest, answer):
        uas = UasInvite(incoming.message, contact=f"<sip:{ch.exten}@{self._local(ch.dest)}>", dialog=ch.dialog)
        headers = [_SERVER, _ALLOW]
        body = b""
        if answer is not None:
            headers.append(SDP_TYPE)
            body = answer.to_bytes()
        self.sip.answer_invite(incoming, uas, 200, headers=headers, body=body)
        return None

    async def _apply_hold(self, ch: SipChannel, was_held: bool) -> None:
        with contextlib.suppress(MediaError, ChannelGone):
            await ch.media_leg()
            peer = ch.peer
            if peer is None or peer.hung_up:
                return
            if ch.on_hold and not was_held:  # the other party hears hold music
                peer.on_hold_music = True
                await peer._media("music on hold", **{"class": ch.variables.get("MOHCLASS", "default")})
            elif was_held and not ch.on_hold:
                await peer._media("stop media")
                await self.media.command(
                    {"command": "bridge", "call-id": ch.linkedid, "from-tag": ch.uniqueid, "to-tag": peer.uniqueid}
                )

    def _refer(self, ch: SipChannel, req: Message):
        """Blind transfer (RFC 3515): 202, the other party goes to the Refer-To extension in the
        transferer's context, NOTIFY sipfrag 100 then 200; the transferer hangs up (BYE)."""
        refer_to = req.get("Refer-To")
        peer = ch.peer
        if not refer_to or peer is None or peer.hung_up:
            return response_to(req, 400 if not refer_to else 603, headers=[_SERVER])
        if "replaces" in refer_to.lower():
            return response_to(req, 501, "Attended Transfer Not Implemented", headers=[_SERVER])
        exten = uri_user(refer_to) or ""
        context = ch.variables.get("TRANSFER_CONTEXT") or ch.context
        self._spawn(self._transfer(ch, peer, context, exten))
        return response_to(req, 202, headers=[_SERVER])

    async def _transfer(self, transferer: SipChannel, peer: SipChannel, context: str, exten: str) -> None:
        await self._notify_refer(transferer, "SIP/2.0 100 Trying")
        peer.peer, transferer.peer = None, None
        peer.referred = (context, exten)
        peer.variables["BLINDTRANSFER"] = transferer.name
        with contextlib.suppress(MediaError):
            await self.media.command(
                {
                    "command": "unbridge",
                    "call-id": peer.linkedid,
                    "from-tag": peer.uniqueid,
                    "to-tag": transferer.uniqueid,
                }
            )
        if not peer.ran_dialplan:  # a callee leg: it runs the dialplan from the new extension now
            peer.ran_dialplan = True
            self._spawn(self._run_dialplan(peer, self.pbx.dialplan(), context, exten, 1))
        await self._notify_refer(transferer, "SIP/2.0 200 OK")

    async def _notify_refer(self, ch: SipChannel, frag: str) -> None:
        if ch.dialog is None or ch.hung_up:
            return
        state = "terminated;reason=noresource" if " 200 " in frag + " " else "active;expires=60"
        notify = ch.dialog.request(
            "NOTIFY",
            headers=[
                ("Event", "refer"),
                ("Subscription-State", state),
                ("Content-Type", "message/sipfrag;version=2.0"),
            ],
            body=frag.encode() + b"\r\n",
        )
        self.sip.send_to(notify, ch.dest, on_response=lambda r: None)

    # ---- outbound ------------------------------------------------------------------------------
    async def targets(self, spec: str) -> list[Target]:
        """`PJSIP/ep` → a Target per live contact; `PJSIP/num@trunk` → the trunk's. [] when none."""
        tech, _, rest = spec.partition("/")
        if tech.upper() not in ("PJSIP", "SIP") or not rest:
            return []
        cfg = self.pbx.pjsip()
        if "@" in rest:
            number, _, trunk = rest.partition("@")
            return await self._trunk_targets(cfg, number, trunk)
        ep = rest
        if cfg is None or ep not in cfg.endpoints:
            return []
        e = cfg.endpoints[ep]
        out: list[Target] = []
        for aor in _split(e.get("aors", "")):
            for b in self.pbx.contacts_of(aor):
                # RFC 3327: a binding registered with a Path is reached through it (the first Path
                # URI is where the INVITE goes, every Path URI a Route), e.g. the SIP balancer in
                # front of several nodes, whichever node registered it; else the REGISTER's source
                route = split_contacts([b.path]) if b.path else []
                if route:
                    first = uri_of(route[0]) if "<" in route[0] else route[0]
                    hostport = first.split("@")[-1].split(";")[0].removeprefix("sip:")
                    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
                    transport = uri_params(first).get("transport", b.transport or "udp").upper()
                else:
                    host, _, port = (b.via_address or "").rpartition(":")
                    transport = b.transport or "UDP"
                if not host:
                    continue
                dest = await self.sip.destination(host, int(port or 5060), transport)
                if dest is not None:
                    out.append(
                        Target(ep, b.uri, dest, ep, _codecs(e), context=e.get("context", "default"), route=route)
                    )
            if aor in cfg.aors:
                for contact in _split(cfg.aors[aor].get("contact", "")):
                    t = await self._uri_target(ep, contact, ep, _codecs(e))
                    if t is not None:
                        t.context = e.get("context", "default")
                        out.append(t)
        return out

    async def _uri_target(
        self, resource: str, uri: str, number: str, codecs: list[str], proxy: str = ""
    ) -> Target | None:
        uri = uri_of(uri) if "<" in uri else uri.strip()
        hostport = (proxy and uri_of(proxy) or uri).split("@")[-1].split(";")[0]
        hostport = hostport.removeprefix("sip:")
        host, _, port = hostport.partition(":")
        transport = uri_params(uri).get("transport", "udp").upper()
        dest = await self.sip.destination(host, int(port or 5060), transport)
        return Target(resource, uri, dest, number, codecs) if dest is not None else None

    async def _trunk_targets(self, cfg, number: str, trunk: str) -> list[Target]:
        if cfg is not None and trunk in cfg.endpoints:
            e = cfg.endpoints[trunk]
            for aor in _split(e.get("aors", "")):
                contacts = _split(cfg.aors.get(aor, {}).get("contact", "")) if cfg and aor in cfg.aors else []
                contacts += [b.uri for b in self.pbx.contacts_of(aor)]
                for contact in contacts:
                    base = uri_of(contact) if "<" in contact else contact
                    hostpart = base.split("@")[-1].removeprefix("sip:")
                    t = await self._uri_target(
                        trunk, f"sip:{number}@{hostpart}", number, _codecs(e), e.get("outbound_proxy", "")
                    )
                    if t is None:
                        continue
                    auth_name = _split(e.get("outbound_auth", ""))
                    if auth_name and auth_name[0] in cfg.auths:
                        a = cfg.auths[auth_name[0]]
                        t.username, t.password = a.get("username") or auth_name[0], a.get("password", "")
                    t.from_user, t.from_domain = e.get("from_user", ""), e.get("from_domain", "")
                    t.context = e.get("context", "default")
                    return [t]
            return []
        for tr in self.pbx.trunks.values():
            if tr.name == trunk:
                host, port = (
                    (tr.outbound_server, tr.outbound_server_port) if tr.outbound_server else (tr.hostname, tr.port)
                )
                dest = await self.sip.destination(host, int(port or 5060), tr.protocol or "UDP")
                if dest is None:
                    return []
                hp = tr.hostname + (f":{tr.port}" if tr.port and tr.port != 5060 else "")
                t = Target(trunk, f"sip:{number}@{hp}", dest, number, ["PCMU", "PCMA"])
                if tr.auth_id and self.trunk_service is not None:
                    t.username = tr.auth_id
                    try:
                        t.password = self.trunk_service.password(tr)
                    except Exception:  # noqa: BLE001 - a key mismatch: try without credentials
                        log.error("trunk %s: its password cannot be decrypted", tr.name)
                    t.from_user = tr.auth_id
                    t.from_domain = tr.hostname
                return [t]
        return []

    def reinvite_with(self, invite: Message, header: str, value: str) -> Message:
        """The INVITE again with credentials (CSeq + 1, same Call-ID and From tag, a new branch)."""
        number, method = invite.cseq
        headers = [
            (n, v) for n, v in invite.headers if n not in ("Via", "CSeq", "Authorization", "Proxy-Authorization")
        ]
        headers.append(("CSeq", f"{number + 1} {method}"))
        headers.append((header, value))
        return Message(method="INVITE", uri=invite.uri, headers=headers, body=invite.body)

    async def call_out(self, target: Target, *, linkedid: str, caller_num: str, caller_name: str) -> SipChannel:
        """A new outbound leg: media leg, our offer, the INVITE on its way. Returns at once."""
        ch = SipChannel(
            self,
            target.resource,
            dest=target.dest,
            codecs=target.codecs or ["PCMU", "PCMA"],
            linkedid=linkedid,
            caller_num=caller_num,
            caller_name=caller_name,
            exten=target.number,
            context=target.context,
        )
        ch.target = target
        ch.connected_num = target.number
        await ch.media_leg()
        ch.offer = sdp.offer(
            ch.codecs, address=ch.local_addr, port=ch.local_port, session_id=int(time.time()), version=1
        )
        ch.local_sdp = ch.offer
        local = self._local(target.dest)
        from_user = target.from_user or caller_num or "anonymous"
        from_host = target.from_domain or local.split(";")[0]
        display = f'"{caller_name}" ' if caller_name else ""
        call_id = f"{new_tag()}{new_tag()}@{self.sip.local_host_for(target.dest.ip)}"
        invite = Message(
            method="INVITE",
            uri=target.uri,
            headers=[
                ("Max-Forwards", "70"),
                *(("Route", r) for r in target.route),
                ("From", f"{display}<sip:{from_user}@{from_host}>;tag={new_tag()}"),
                ("To", f"<{target.uri}>"),
                ("Call-ID", call_id),
                ("CSeq", "1 INVITE"),
                ("Contact", f"<sip:{from_user}@{local}>"),
                ("User-Agent", USER_AGENT),
                _ALLOW,
                ("Supported", "replaces, timer"),
                SDP_TYPE,
            ],
            body=ch.offer.to_bytes(),
        )
        ch.uac = UacInvite(invite)
        self._outbound[(call_id, tag(invite.get("From")))] = ch
        ch.set_state(chan.DOWN)
        self.pbx.add_channel(ch)
        self.sip.send_to(invite, target.dest, on_response=ch.on_invite_response)
        return ch

    async def dial(self, caller: SipChannel, specs: list[str], timeout: float | None, options: str) -> str:
        """Asterisk's Dial over SIP channels (see Channel.dial)."""
        started = time.monotonic()
        variables = caller.variables
        targets: list[Target] = []
        for spec in specs:
            targets += await self.targets(spec.strip())
        if not targets:
            variables["DIALSTATUS"] = "CHANUNAVAIL"
            caller.hangup_cause = 20
            return "CHANUNAVAIL"
        if "r" in options:
            await caller.ringing()
        moh = _option_arg(options, "m")
        if moh is not None:
            await caller.progress()
            with contextlib.suppress(MediaError):
                await caller._media("music on hold", **{"class": moh or "default"})
        legs: list[SipChannel] = []
        for t in targets:
            try:
                legs.append(
                    await self.call_out(
                        t, linkedid=caller.linkedid, caller_num=caller.caller_num, caller_name=caller.caller_name
                    )
                )
            except (MediaError, OSError) as e:
                log.warning("%s: cannot call %s: %s", caller.name, t.uri, e)
        if not legs:
            variables["DIALSTATUS"] = "CHANUNAVAIL"
            caller.hangup_cause = 20
            return "CHANUNAVAIL"
        variables["DIALEDPEERNAME"] = legs[0].name
        winner: SipChannel | None = None
        status = "NOANSWER"
        deadline = started + timeout if timeout else None
        rang = False
        try:
            while True:
                pending = [leg for leg in legs if not leg.failed.is_set() and not leg.hung_up]
                if not pending:
                    codes = [leg.final_status for leg in legs]
                    statuses = [dialstatus_for(c) for c in codes]
                    status = next(
                        (s for s in ("BUSY", "CONGESTION", "NOANSWER", "CHANUNAVAIL") if s in statuses), "NOANSWER"
                    )
                    break
                waits = {asyncio.ensure_future(leg.answered.wait()) for leg in pending}
                waits |= {asyncio.ensure_future(leg.failed.wait()) for leg in pending}
                if not rang:
                    waits |= {asyncio.ensure_future(leg.ringing_seen.wait()) for leg in pending}
                gone = asyncio.ensure_future(caller.gone.wait())
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    await asyncio.wait(waits | {gone}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits | {gone}:
                        w.cancel()
                if caller.hung_up:
                    status = "CANCEL"
                    break
                answered = [leg for leg in pending if leg.answered.is_set()]
                if answered:
                    winner = answered[0]
                    status = "ANSWER"
                    break
                if not rang and any(leg.ringing_seen.is_set() for leg in pending):
                    rang = True
                    if moh is None:
                        await caller.ringing()
                if deadline is not None and time.monotonic() >= deadline:
                    status = "NOANSWER"
                    break
        finally:
            for leg in legs:
                if leg is not winner and not leg.hung_up:
                    cause = chan.NO_ANSWER if status in ("NOANSWER", "ANSWER") else chan.NORMAL_CLEARING
                    if leg.failed.is_set():
                        cause = sip_to_cause(leg.final_status or 480)
                    leg.hangup_cause = leg.hangup_cause or cause
                    await leg.hangup(leg.hangup_cause)
        variables["DIALSTATUS"] = status
        variables["DIALEDTIME"] = str(int(time.monotonic() - started))
        if winner is None:
            if status == "CANCEL":
                raise ChannelGone(caller.name)
            # as Asterisk: the caller's hangup cause is the failed call's (a Hangup() without a
            # cause then answers the caller 486 after BUSY, 480 after NOANSWER, 503 after CONGESTION)
            codes = [leg.final_status for leg in legs if dialstatus_for(leg.final_status) == status]
            caller.hangup_cause = sip_to_cause(codes[0]) if codes and codes[0] else _DIAL_CAUSE.get(status, 16)
            variables["HANGUPCAUSE"] = str(caller.hangup_cause)
            return status
        return await self._bridge(caller, winner, started, moh is not None)

    async def _bridge(self, caller: SipChannel, callee: SipChannel, started: float, moh: bool) -> str:
        caller.cdr["dstchannel"] = callee.name
        caller.connected_num, caller.connected_name = callee.target.number if callee.target else callee.resource, ""
        callee.connected_num, callee.connected_name = caller.caller_num, caller.caller_name
        caller.variables["DIALEDPEERNUMBER"] = callee.target.number if callee.target else ""
        caller.variables["DIALEDPEERNAME"] = callee.name
        if moh:
            with contextlib.suppress(MediaError):
                await caller._media("stop media")
        await caller.answer()
        caller.peer, callee.peer = callee, caller
        # the caller runs a dialplan: when the callee hangs up, Dial returns and the dialplan decides
        # (Asterisk: it ends, unless Dial's option g); the callee is hung up when the caller goes
        survives, caller.survives_peer = caller.survives_peer, True
        if caller.on_bridge is not None:
            caller.on_bridge(callee)
        bridge_id = f"{caller.uniqueid}-bridge"
        caller.bridge_id = callee.bridge_id = bridge_id
        events.publish("bridge.created", bridge_event(bridge_id, caller, callee))
        answered_at = time.monotonic()
        try:
            await self.media.command(
                {
                    "command": "bridge",
                    "call-id": caller.linkedid,
                    "from-tag": caller.uniqueid,
                    "to-tag": callee.uniqueid,
                }
            )
        except MediaError as e:
            log.error("%s: bridge failed: %s", caller.name, e)
            await callee.hangup(41)
            caller.variables["DIALSTATUS"] = "CONGESTION"
            return "CONGESTION"
        caller.variables["ANSWEREDTIME"] = "0"
        gone = asyncio.ensure_future(caller.gone.wait())
        other = asyncio.ensure_future(callee.gone.wait())
        try:
            await asyncio.wait({gone, other}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            other.cancel()
        caller.variables["ANSWEREDTIME"] = str(int(time.monotonic() - answered_at))
        caller.bridge_id = callee.bridge_id = None
        events.publish("bridge.destroyed", bridge_event(bridge_id, caller, callee))
        caller.survives_peer = survives
        if caller.hung_up:
            raise ChannelGone(caller.name)
        if caller.referred is not None:  # the callee transferred the caller (REFER): on in the dialplan there
            context, exten = caller.referred
            caller.referred, caller.peer = None, None
            await self.runner(caller, self.pbx.dialplan(), context, exten, 1)
            raise ChannelGone(caller.name)
        # the callee hung up: Asterisk ends the caller's dialplan unless Dial had option g
        caller.peer = None
        return "ANSWER"

    async def bridge_channels(self, a: SipChannel, b: SipChannel) -> SipChannel:
        """Bridge two answered channels of different calls (a parked call and who picks it up, a
        caller and a waiting agent): whatever plays to them stops, media flows between them until one
        hangs up; returns the one that hung up first (the other is left up, its dialplan goes on).
        Both calls must be on the same media engine (the embedded one is)."""
        for ch in (a, b):
            ch.check()
            with contextlib.suppress(MediaError):
                await ch._media("stop media")
        await self.media.command(
            {
                "command": "bridge",
                "call-id": a.linkedid,
                "from-tag": a.uniqueid,
                "to-tag": b.uniqueid,
                "to-call-id": b.linkedid,
            }
        )
        a.peer, b.peer = b, a
        a.bridge_id = b.bridge_id = f"{a.uniqueid}-bridge"
        events.publish("bridge.created", bridge_event(a.bridge_id, a, b))
        a.connected_num, a.connected_name = b.caller_num, b.caller_name
        b.connected_num, b.connected_name = a.caller_num, a.caller_name
        gone_a, gone_b = asyncio.ensure_future(a.gone.wait()), asyncio.ensure_future(b.gone.wait())
        try:
            await asyncio.wait({gone_a, gone_b}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone_a.cancel()
            gone_b.cancel()
        first = a if a.hung_up else b
        other = b if first is a else a
        first.peer = other.peer = None
        events.publish("bridge.destroyed", bridge_event(first.bridge_id or f"{a.uniqueid}-bridge", a, b))
        first.bridge_id = other.bridge_id = None
        with contextlib.suppress(MediaError):
            if not other.hung_up:
                await self.media.command({"command": "unbridge", "call-id": other.linkedid, "from-tag": other.uniqueid})
        return first

    async def originate(
        self,
        *,
        endpoint: str,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str = "",
        timeout: float = 30,
        variables: dict | None = None,
    ) -> SipChannel:
        """Call `endpoint` ("PJSIP/ep" or "PJSIP/num@trunk"); once answered, run the dialplan at
        context/exten/priority on that channel. Returns the channel before it is answered. LookupError
        when the endpoint has nothing to call."""
        targets = await self.targets(endpoint)
        if not targets:
            raise LookupError(endpoint)
        name, num = parse_callerid(caller_id)
        first = targets[0]
        ch = await self.call_out(first, linkedid=None, caller_num=num or "switchboard", caller_name=name)
        ch.variables.update({str(k): str(v) for k, v in (variables or {}).items()})
        self._spawn(self._originated(ch, context, exten, priority, timeout))
        return ch

    async def _originated(self, ch: SipChannel, context: str, exten: str, priority: int, timeout: float) -> None:
        ch.ran_dialplan = True
        ch.cdr.update({"dst": exten, "dcontext": context})
        answered = asyncio.ensure_future(ch.answered.wait())
        failed = asyncio.ensure_future(ch.failed.wait())
        gone = asyncio.ensure_future(ch.gone.wait())
        try:
            await asyncio.wait({answered, failed, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (answered, failed, gone):
                f.cancel()
        if not ch.answered.is_set():
            if not ch.hung_up:
                await ch.hangup(sip_to_cause(ch.final_status) if ch.final_status else chan.NO_ANSWER)
            return
        ch.set_position(context, exten, priority)
        await self._run_dialplan(ch, self.pbx.dialplan(), context, exten, priority)

    # ---- lifecycle ------------------------------------------------------------------------------
    async def stop(self) -> None:
        """SIGTERM: every call in progress ends cleanly (BYE / CANCEL / a final response) and is recorded."""
        channels = list(self.pbx.channels.values())
        for ch in channels:
            with contextlib.suppress(Exception):
                await ch.hangup(chan.NORMAL_CLEARING)
        for task in list(self._tasks):
            task.cancel()
        if channels:
            await asyncio.sleep(0.05)  # let the BYEs / CANCELs leave


def bridge_event(bridge_id: str, a: Channel, b: Channel) -> dict:
    """The data of bridge.created / bridge.destroyed."""
    return {"id": bridge_id, "channels": [a.name, b.name], "unique_ids": [a.uniqueid, b.uniqueid]}


def dtmf_event(ch: Channel, digit: str) -> dict:
    return {"channel": ch.name, "unique_id": ch.uniqueid, "linked_id": ch.linkedid, "digit": digit}


def parse_callerid(text: str) -> tuple[str, str]:
    """Asterisk's caller ID syntax (ast_callerid_parse): `"Name" <num>`, `Name <num>`, `<num>` or
    `num` alone -> (name, num); a SIP URI in the brackets gives its user part."""
    text = (text or "").strip()
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].partition("<")
        num = num.strip()
        if ":" in num:
            num = uri_user(f"<{num}>") or ""
        return name.strip().strip('"').strip(), num
    return "", text.strip('"')


def _trunk_sent(trunk, ip: str, port: int) -> bool:
    """Did this request come from the domain trunk? From its host or outbound server at the trunk's
    port (a carrier sends from its signalling port; a trunk on a shared address such as 127.0.0.1
    must not take every local phone), or, for an IP_AUTH trunk, from one of its `ips` (any port:
    that list is what IP authentication admits)."""
    if trunk.auth_mode == "IP_AUTH" and any(h and _matches(str(h), ip) for h in (trunk.ips or ())):
        return True
    for host, hport in ((trunk.hostname, trunk.port), (trunk.outbound_server, trunk.outbound_server_port)):
        if host and _matches(str(host), ip) and (hport or 5060) == port:
            return True
    return False


_SUPPORTED = frozenset({"100rel", "timer", "replaces"})  # 100rel: required ones are met by sending no 18x
MIN_SE = 90  # RFC 4028's minimum session interval (seconds)


def _option_tags(msg: Message, header: str) -> list[str]:
    return [t.strip().lower() for v in msg.get_all(header) for t in v.split(",") if t.strip()]


def _requires(msg: Message, tag_: str) -> bool:
    return tag_ in _option_tags(msg, "Require")


def _delta(value: str | None) -> int | None:
    text = (value or "").split(";")[0].strip()
    return int(text) if text.isdigit() else None


def _split(value: str) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _codecs(endpoint: dict) -> list[str]:
    codecs = sdp.codecs_from_pjsip(endpoint.get("allow", ""), endpoint.get("disallow", ""))
    return codecs


def _option_arg(options: str, letter: str) -> str | None:
    """Dial option `letter`, with its (argument) when present; None when absent."""
    i = 0
    while i < len(options):
        c = options[i]
        arg = ""
        if i + 1 < len(options) and options[i + 1] == "(":
            close = options.find(")", i + 2)
            close = len(options) if close < 0 else close
            arg = options[i + 2 : close]
            i = close + 1
        else:
            i += 1
        if c == letter:
            return arg
    return None


_host_cache: dict[str, tuple[float, set[str]]] = {}


def _matches(match: str, ip: str) -> bool:
    """pjsip identify `match=`: an address, a CIDR network or a host name (resolved, cached a minute)."""
    match = match.strip()
    if not match:
        return False
    host = match.split("/")[0].split(":")[0] if "/" not in match else match
    try:
        if "/" in host:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(host, strict=False)
        return ipaddress.ip_address(host) == ipaddress.ip_address(ip)
    except ValueError:
        pass
    now = time.monotonic()
    cached = _host_cache.get(host)
    if cached is None or cached[0] < now:
        try:
            addrs = {i[4][0] for i in socket.getaddrinfo(host, None, socket.AF_INET)}
        except OSError:
            addrs = set()
        cached = _host_cache[host] = (now + 60, addrs)
    return ip in cached[1]
