"""The agent pool (Asterisk's app_agent_pool): AgentLogin, AgentRequest, the AGENT function, `Agent:<id>` device
states, and `request_agent` for other modules (a queue ringing `Local/<id>@agents`).

Agents are the sections of agents.conf (asterisk/agents.py); `Pbx.agents` holds one `Agent` per configured id,
kept in step by `sync` whenever the file is (re)loaded: a new agent appears logged out, an agent not logged in
takes the new options at once, a logged-in one at its next call (as Asterisk: "option changes take effect on
agent login or after an agent disconnects from a call"), and a removed agent that is logged in is logged off.

AgentLogin(AgentId[,s]) on the agent's own phone: the channel is answered, ``agent-loginok`` is played (not with
``s``), and the agent waits with hold music of its ``musiconhold`` class. The channel survives its peer
(`SipChannel.survives_peer`): when a caller it was bridged with hangs up, it goes back to waiting. The agent logs
out by hanging up (then AgentLogin ends the dialplan, as Asterisk's returns -1). Failures continue in the dialplan
with AGENT_STATUS: INVALID (no such agent), ALREADY_LOGGED_IN. Channel variables AGENTACKCALL, AGENTACCEPTDTMF,
AGENTAUTOLOGOFF and AGENTWRAPUPTIME, when set, override the file's options for this login.

A call for the agent (AgentRequest(AgentId) or `request_agent`): the agent's music stops and it hears
``custom_beep``; without ``ackcall`` (or with an empty ``acceptdtmf``) any digit cuts the beep short and the caller
is connected at once; with ``ackcall`` the agent must key ``acceptdtmf`` (its first digit also cuts the beep): within
``autologoff`` seconds when that is not 0, else the call waits for the agent as long as the caller does. No ack in
time: the agent is logged off (its channel hung up) and the caller gets NOT_CONNECTED. Meanwhile the caller hears
ringing (180 while not answered). Once connected the caller is answered and bridged with the agent
(`CallEngine.bridge_channels`); when the caller hangs up the agent is in wrapup for ``wrapuptime`` milliseconds (a
request then is BUSY), then waits for the next call; when the agent hangs up the caller's call ends too.

AgentRequest(AgentId) sets AGENT_STATUS as Asterisk: INVALID, NOT_LOGGED_IN, BUSY (alerted, on a call, in wrapup),
NOT_CONNECTED (the caller was not connected: no ack, the agent went away, or the request timed out), ERROR. After
a connected call AGENT_STATUS is cleared and the caller's dialplan ends; otherwise it continues.

Device state ``Agent:<id>``: UNAVAILABLE logged out, NOT_INUSE waiting, INUSE alerted / on a call / in wrapup.

AGENT(AgentId[:item]): ``status`` (default; LOGGEDIN or LOGGEDOUT), ``name`` (fullname; ``fullname`` is accepted as
the same item), ``mohclass``, ``channel`` (the logged-in channel's name without its ``-xxxxxxxx`` suffix),
``fullchannel``. An unknown agent reads "" with a warning.

Not done (differences from Asterisk): the 5-second login probation (it lets Local channels optimise away; there
are none here) — the agent is ready at once; ``recordagentcalls`` is validated and shown but does not record;
the CALLER_SAFETY_TIMEOUT (2 min for the beep) is not needed (our beep always ends); a multi-digit
``acceptdtmf`` matches when the digits keyed end with it; AgentLogoff / CLI commands are not there (jade has
no such route).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from switchboard import events
from switchboard.asterisk.agents import AgentConfig, is_true
from switchboard.asterisk.substitute import split_args
from switchboard.engine.apps import queue as app_queue
from switchboard.engine.channel import UP, Channel, ChannelGone
from switchboard.engine.dialplan_exec import ANY_DIGIT, Runner, Stop, application, function, parse_options

__all__ = ["Agent", "request_agent", "sync"]

log = logging.getLogger("switchboard.agents")

# agent states (app_agent_pool's enum agent_state, without the login probation)
LOGGED_OUT, READY, CALL_PRESENT, WAIT_ACK, ON_CALL, WRAPUP, LOGGING_OUT = (
    "LOGGED_OUT",
    "READY",
    "CALL_PRESENT",
    "WAIT_ACK",
    "ON_CALL",
    "WRAPUP",
    "LOGGING_OUT",
)
CONNECTED = "CONNECTED"

_tasks: set[asyncio.Task] = set()


def _spawn(coro) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _pbx(channel: Channel) -> Any:
    calls = getattr(channel, "calls", None)
    return getattr(calls, "pbx", None)


def _ts(t: float) -> str:
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1e9) % 1_000_000_000:09d}Z"


class AgentCall:
    """One caller presented to an agent. The agent's loop resolves `outcome` (CONNECTED once bridged, else
    NOT_CONNECTED) and sets `finished` when the bridge is over; the requester sets `aborted` when it gives up."""

    def __init__(self, caller: Channel, claim: Callable[[], bool] | None):
        self.caller, self.claim = caller, claim
        self.outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.finished = asyncio.Event()
        self.aborted = asyncio.Event()

    def resolve(self, status: str) -> None:
        if not self.outcome.done():
            self.outcome.set_result(status)


class Agent:
    """One configured agent and its live state."""

    def __init__(self, cfg: AgentConfig):
        self.id = cfg.id
        self.cfg = cfg
        self.state = LOGGED_OUT
        self.channel: Channel | None = None  # the logged-in channel
        self.login_start = 0.0
        self.call_start = 0.0
        self.last_disconnect = 0.0  # monotonic
        self.overrides: dict[str, Any] = {}
        self.pending: AgentCall | None = None
        self.wake = asyncio.Event()
        self.dead = False
        self.updated = time.time()

    # ---- state -------------------------------------------------------------------------------------
    def set_state(self, state: str) -> None:
        changed = state != self.state
        self.state = state
        self.updated = time.time()
        if changed:
            events.publish(
                "agent.status",
                {
                    "id": self.id,
                    "name": self.cfg.fullname,
                    "state": state,
                    "status": self.status(),
                    "logged_in": self.logged_in,
                },
            )

    def setting(self, name: str) -> Any:
        """An option as this login sees it (a login-time channel variable override first)."""
        if name in self.overrides:
            return self.overrides[name]
        return getattr(self.cfg, name)

    def refresh(self) -> None:
        """Wrapup ends `wrapuptime` ms after the call (checked when read, as Asterisk's 1 s heartbeat does)."""
        if self.state == WRAPUP and (time.monotonic() - self.last_disconnect) * 1000 >= self.setting("wrapuptime"):
            self.set_state(READY)

    @property
    def logged_in(self) -> bool:
        return self.channel is not None and not self.channel.hung_up

    def devstate(self) -> str:
        self.refresh()
        if not self.logged_in or self.state == LOGGED_OUT:
            return "UNAVAILABLE"
        return "NOT_INUSE" if self.state == READY else "INUSE"

    def status(self) -> str:
        """The Agents AMI action's status: on a call while bridged with a caller."""
        if not self.logged_in:
            return "AGENT_LOGGEDOFF"
        return "AGENT_ONCALL" if self.channel is not None and self.channel.peer is not None else "AGENT_IDLE"

    def view(self) -> dict:
        """jade's agent object (GET /agents/{id}): the channel fields are the logged-in channel's (null when
        logged out)."""
        self.refresh()
        ch = self.channel if self.logged_in else None
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.cfg.fullname,
            "status": self.status(),
            "logged_in_time": int(self.login_start) if ch is not None else 0,
        }
        keys = (
            "channel_name",
            "channel_state",
            "channel_state_desc",
            "caller_id_name",
            "caller_id_num",
            "connected_line_name",
            "connected_line_num",
            "context",
            "exten",
            "priority",
            "account_code",
            "language",
            "unique_id",
            "linked_id",
        )
        if ch is None:
            out.update(dict.fromkeys(keys))
            out["tm_update"] = _ts(self.updated)
            return out
        cv = ch.view()
        cv["channel_name"] = cv.pop("channel")
        out.update({k: cv[k] for k in keys})
        out["tm_update"] = _ts(max(self.updated, ch.updated))
        return out

    # ---- login / logout ----------------------------------------------------------------------------
    def login(self, channel: Channel, overrides: dict[str, Any]) -> None:
        self.channel = channel
        self.overrides = overrides
        self.login_start = time.time()
        self.last_disconnect = time.monotonic()
        self.set_state(LOGGED_OUT)  # ready once it waits (AgentRequest meanwhile: NOT_LOGGED_IN)

    def logout(self) -> None:
        if self.pending is not None:
            self.pending.resolve("NOT_CONNECTED")
            self.pending = None
        if self.channel is not None:
            log.info("Agent '%s' logged out.  Logged in for %d seconds.", self.id, time.time() - self.login_start)
        self.channel = None
        self.overrides = {}
        self.set_state(LOGGED_OUT)

    def present(self, call: AgentCall) -> None:
        self.pending = call
        self.set_state(CALL_PRESENT)
        self.wake.set()


# ---- the pool ------------------------------------------------------------------------------------------
def sync(pbx: Any) -> None:
    """Bring `pbx.agents` in step with the loaded agents.conf (`Pbx.agent_configs`)."""
    _POOL[:] = [pbx]
    try:
        configs = pbx.agent_configs()
    except Exception:  # noqa: BLE001 - a file that no longer loads keeps the pool as it is
        log.exception("agents.conf: keeping the current agents")
        return
    for agent_id, cfg in configs.items():
        agent = pbx.agents.get(agent_id)
        if agent is None:
            pbx.agents[agent_id] = Agent(cfg)
        elif agent.channel is None:
            agent.cfg = cfg
    for agent_id in [a for a in pbx.agents if a not in configs]:
        agent = pbx.agents.pop(agent_id)
        agent.dead = True
        if agent.logged_in:
            log.info("Forced logoff of agent %s(%s).  Agent no longer configured.", agent_id, agent.channel.name)
            agent.wake.set()
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to hang up
                _spawn(agent.channel.hangup())


def _current_cfg(pbx: Any, agent: Agent) -> AgentConfig | None:
    """After a call the agent takes the options loaded now (None: no longer configured)."""
    if pbx is None or pbx.agents.get(agent.id) is not agent:
        return None
    return pbx.agent_configs().get(agent.id)


async def request_agent(
    caller_channel: Channel,
    agent_id: str,
    timeout: float | None = None,
    *,
    claim: Callable[[], bool] | None = None,
) -> str:
    """Connect `caller_channel` with agent `agent_id` (AgentRequest's work, callable by any module, e.g. a queue
    ringing the member ``Local/<id>@agents``).

    Returns the status: CONNECTED (the caller was bridged with the agent and that call is now over; the caller's
    channel may still be up: what happens to it next is the requester's choice — AgentRequest ends the dialplan),
    or AgentRequest's AGENT_STATUS values INVALID, NOT_LOGGED_IN, BUSY, NOT_CONNECTED, ERROR. `timeout` (seconds,
    None: no limit) bounds the wait for the agent to accept (NOT_CONNECTED after it; the agent goes back to
    waiting). `claim`, when given, is called once the agent accepts, just before the bridge: returning False gives
    the call up (NOT_CONNECTED; the agent goes back to waiting) — a queue ringing several agents lets the first
    one win this way. The caller hears ringing meanwhile (180 while not answered) and is answered when connected.
    Raises ChannelGone when the caller hangs up first. Sets no channel variable."""
    pbx = _pbx(caller_channel)
    agent = pbx.agents.get(agent_id) if pbx is not None else None
    if agent is None:
        log.info("Agent '%s' does not exist.", agent_id)
        return "INVALID"
    agent.refresh()
    if not agent.logged_in or agent.state in (LOGGED_OUT, LOGGING_OUT):
        log.info("Agent '%s' not logged in.", agent_id)
        return "NOT_LOGGED_IN"
    if agent.state != READY:
        log.info("Agent '%s' is busy.", agent_id)
        return "BUSY"
    caller_channel.check()
    call = AgentCall(caller_channel, claim)
    agent.present(call)
    try:
        if caller_channel.state != UP:
            with contextlib.suppress(NotImplementedError):
                await caller_channel.ringing()
        gone = asyncio.ensure_future(caller_channel.gone.wait())
        try:
            await asyncio.wait({call.outcome, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not call.outcome.done():
            if caller_channel.hung_up:
                raise ChannelGone(caller_channel.name)
            return "NOT_CONNECTED"
        status = call.outcome.result()
        if status == CONNECTED:
            await call.finished.wait()
        return status
    finally:
        if not call.outcome.done():
            call.aborted.set()
            call.resolve("NOT_CONNECTED")
            if agent.pending is call:  # the agent's loop never took it
                agent.pending = None
                if agent.state == CALL_PRESENT:
                    agent.set_state(READY)


# ---- the agent's side ----------------------------------------------------------------------------------
async def _wait_for_call(runner: Runner, agent: Agent, channel: Channel) -> AgentCall | None:
    """Hold music until a call is presented (None: the agent was removed from agents.conf)."""
    moh = asyncio.ensure_future(channel.music_on_hold(agent.cfg.musiconhold or "default"))
    try:
        while agent.pending is None and not agent.dead:
            channel.check()
            agent.wake.clear()
            waiter = asyncio.ensure_future(agent.wake.wait())
            gone = asyncio.ensure_future(channel.gone.wait())
            try:
                await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                gone.cancel()
            runner.waited()
        channel.check()
        if agent.dead:
            return None
        call, agent.pending = agent.pending, None
        return call
    finally:
        moh.cancel()
        await asyncio.gather(moh, return_exceptions=True)


def _drain(channel: Channel) -> None:
    while not channel.digits.empty():
        channel.digits.get_nowait()


async def _await_ack(agent: Agent, channel: Channel, call: AgentCall, first: str) -> bool | None:
    """WAIT_ACK: True once the digits keyed end with acceptdtmf; False when autologoff passed; None when the
    caller gave up."""
    accept = agent.setting("acceptdtmf")
    autologoff = agent.setting("autologoff")
    deadline = time.monotonic() + autologoff if autologoff else None
    keyed = first
    while not keyed.endswith(accept):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        digit = asyncio.ensure_future(channel.get_digit(left))
        aborted = asyncio.ensure_future(call.aborted.wait())
        try:
            await asyncio.wait({digit, aborted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborted.cancel()
            if not digit.done():
                digit.cancel()
        if call.aborted.is_set():
            return None
        d = digit.result()  # ChannelGone when the agent hung up
        if not d:
            return False
        keyed += d
    return True


async def _serve(runner: Runner, agent: Agent, channel: Channel, call: AgentCall) -> bool:
    """Alert the agent, wait for the ack when needed, bridge. False: the agent is to be logged off."""
    _drain(channel)
    accept = agent.setting("acceptdtmf")
    ack = bool(agent.setting("ackcall")) and bool(accept)
    runner.waited()
    first = ""
    if not call.aborted.is_set():
        beep = agent.cfg.custom_beep
        first = await channel.play([beep], digits=accept[:1] if ack else ANY_DIGIT) if beep else ""
    if call.aborted.is_set():
        agent.set_state(READY)
        return True
    if ack:
        agent.set_state(WAIT_ACK)
        acked = await _await_ack(agent, channel, call, first)
        runner.waited()
        if acked is None:
            log.info("Agent %s: caller gave up before the ack.", agent.id)
            agent.set_state(READY)
            return True
        if not acked:
            log.info("Agent %s: ack call timeout: logging off.", agent.id)
            call.resolve("NOT_CONNECTED")
            agent.set_state(LOGGING_OUT)
            return False
    if call.aborted.is_set() or (call.claim is not None and not call.claim()):
        call.resolve("NOT_CONNECTED")
        agent.set_state(READY)
        return True
    caller = call.caller
    try:
        if caller.state != UP:
            await caller.answer()
        caller.check()
    except ChannelGone:
        call.resolve("NOT_CONNECTED")
        agent.set_state(READY)
        return True
    agent.set_state(ON_CALL)
    agent.call_start = time.time()
    call.resolve(CONNECTED)
    try:
        await caller.calls.bridge_channels(caller, channel)  # type: ignore[attr-defined]
    except ChannelGone:
        pass
    finally:
        call.finished.set()
        agent.last_disconnect = time.monotonic()
        runner.waited()
    channel.check()  # the agent hung up: logged out
    cfg = _current_cfg(_pbx(channel), agent)
    if cfg is None:
        return False
    agent.cfg = cfg
    agent.set_state(WRAPUP if agent.setting("wrapuptime") else READY)
    return True


def _overrides(runner: Runner) -> dict[str, Any]:
    """AGENTACKCALL, AGENTACCEPTDTMF, AGENTAUTOLOGOFF, AGENTWRAPUPTIME read at login (agent_login_channel_config)."""
    out: dict[str, Any] = {}
    if v := runner.get_var("AGENTACKCALL"):
        out["ackcall"] = is_true(v)
    if v := runner.get_var("AGENTACCEPTDTMF"):
        out["acceptdtmf"] = v
    for var, key in (("AGENTAUTOLOGOFF", "autologoff"), ("AGENTWRAPUPTIME", "wrapuptime")):
        v = (runner.get_var(var) or "").strip()
        if v.isdigit():
            out[key] = int(v)
    return out


@application("AgentLogin")
async def app_agent_login(runner: Runner, channel: Channel, data: str) -> None:
    """AgentLogin(AgentId[,options]): option ``s`` silent (no agent-loginok). See the module docstring."""
    args = split_args(data) if data else []
    agent_id = args[0].strip() if args else ""
    opts = parse_options(args[1] if len(args) > 1 else "")
    channel.check()
    if channel.state != UP:
        await channel.answer()
    if not agent_id:
        raise Stop("AgentLogin requires an AgentId")
    pbx = _pbx(channel)
    agent = pbx.agents.get(agent_id) if pbx is not None else None
    if agent is None:
        log.info("Agent '%s' does not exist.", agent_id)
        channel.variables["AGENT_STATUS"] = "INVALID"
        return
    if agent.channel is not None:
        log.info("Agent '%s' already logged in.", agent_id)
        channel.variables["AGENT_STATUS"] = "ALREADY_LOGGED_IN"
        return
    agent.login(channel, _overrides(runner))
    channel.survives_peer = True  # type: ignore[attr-defined]
    try:
        if "s" not in opts:
            runner.waited()
            await channel.play(["agent-loginok"])
        log.info("Agent '%s' logged in on %s", agent_id, channel.name)
        agent.set_state(READY)
        while True:
            call = await _wait_for_call(runner, agent, channel)
            if call is None:
                break
            if not await _serve(runner, agent, channel, call):
                break
    except ChannelGone:
        pass
    finally:
        agent.logout()
        channel.survives_peer = False  # type: ignore[attr-defined]
    raise Stop(f"Agent {agent_id} logged out", error=False)


@application("AgentRequest")
async def app_agent_request(runner: Runner, channel: Channel, data: str) -> None:
    """AgentRequest(AgentId): see the module docstring (and `request_agent`)."""
    args = split_args(data) if data else []
    agent_id = args[0].strip() if args else ""
    if not agent_id:
        raise Stop("AgentRequest requires an AgentId")
    channel.check()
    runner.waited()
    try:
        status = await request_agent(channel, agent_id)
    except ChannelGone:
        channel.variables["AGENT_STATUS"] = "NOT_CONNECTED"
        raise
    runner.waited()
    if status == CONNECTED:
        channel.variables.pop("AGENT_STATUS", None)
        raise Stop("AgentRequest: the agent call ended", error=False)
    channel.variables["AGENT_STATUS"] = status


@function("AGENT")
def func_agent(runner: Runner, args: str) -> str | None:
    """AGENT(AgentId[:item]): see the module docstring."""
    agent_id, _, item = args.strip().partition(":")
    if not agent_id:
        log.warning("The AGENT function requires an argument - agentid!")
        return ""
    pbx = _pbx(runner.channel)
    agent = pbx.agents.get(agent_id) if pbx is not None else None
    if agent is None:
        log.warning("Agent '%s' not found!", agent_id)
        return ""
    item = (item or "status").strip().lower()
    ch = agent.channel if agent.logged_in else None
    if item == "status":
        return "LOGGEDIN" if ch is not None else "LOGGEDOUT"
    if item in ("name", "fullname"):
        return agent.cfg.fullname
    if item == "mohclass":
        return agent.cfg.musiconhold
    if item == "channel":
        return ch.name.rpartition("-")[0] or ch.name if ch is not None else ""
    if item == "fullchannel":
        return ch.name if ch is not None else ""
    log.warning("AGENT: unknown item %r", item)
    return ""


# ---- agents as queue members (app_queue's hook) -----------------------------------------------------
_STATUS_TO_DIAL = {
    CONNECTED: "ANSWER",
    "INVALID": "CHANUNAVAIL",
    "NOT_LOGGED_IN": "CHANUNAVAIL",
    "BUSY": "BUSY",
    "NOT_CONNECTED": "NOANSWER",
}


def agent_of(interface: str) -> str | None:
    """`Local/<id>@agents` (how Asterisk's sample puts agents in queues) -> the agent id."""
    tech, _, rest = interface.partition("/")
    if tech.lower() != "local":
        return None
    agent_id, _, context = rest.partition("@")
    return agent_id if agent_id and context == "agents" else None


async def ring_agent(caller: Channel, interface: str, timeout: float | None, options: str, on_answer) -> str:
    """app_queue's member dialer for `Local/<id>@agents`: AgentRequest's work (request_agent); the
    queue learns the agent's channel when it accepts (`on_answer`); the DIALSTATUS the queue expects
    (ANSWER once the bridged call is over; ChannelGone when the caller hung up)."""
    agent_id = agent_of(interface)
    if agent_id is None:
        return "CHANUNAVAIL"

    def claim() -> bool:
        pbx = _pbx(caller)
        agent = pbx.agents.get(agent_id) if pbx is not None else None
        if agent is not None and agent.channel is not None:
            on_answer(agent.channel)
        return True

    status = await request_agent(caller, agent_id, timeout, claim=claim)
    if caller.hung_up:
        raise ChannelGone(caller.name)
    return _STATUS_TO_DIAL.get(status, "CONGESTION")


def _agent_member_state(interface: str) -> str:
    """A `Local/<id>@agents` member without a state_interface: its agent's device state."""
    agent_id = agent_of(interface)
    pbx = _POOL[0] if _POOL else None
    agent = pbx.agents.get(agent_id) if pbx is not None and agent_id else None
    return agent.devstate() if agent is not None else "INVALID"


_POOL: list = []  # the Pbx the pool was last synced with (member states get only the interface)

app_queue.MEMBER_DIALERS["Local/"] = ring_agent
app_queue.MEMBER_STATES["Local/"] = _agent_member_state
