"""app_queue: Queue, AddQueueMember, RemoveQueueMember, PauseQueueMember, UnpauseQueueMember.

``Queue(queuename[,options[,URL[,announceoverride[,timeout]]]])`` as Asterisk's app_queue:

* Joining: an unknown queue sets QUEUESTATUS=UNKNOWN; ``maxlen`` reached → FULL; ``joinempty``
  conditions (paused, penalty, inuse, ringing, unavailable, invalid, unknown, wrapup; yes/no/
  loose/strict) with no usable member → JOINEMPTY. The dialplan then continues at the next priority.
  A caller's place follows ``QUEUE_PRIO`` (higher first), then arrival.
* Waiting: the caller hears the queue's ``musicclass`` (else the channel's MUSICCLASS, else
  "default"); a caller not yet answered gets early media (183) first, as Asterisk's MOH does; option
  ``r`` gives ringing instead. ``announce-frequency`` (with ``min-announce-frequency``) plays the
  position (``queue-youarenext`` / ``queue-thereare`` N ``queue-callswaiting``, announce-position
  yes/no/more/limit), ``periodic-announce-frequency`` the ``periodic-announce`` prompts (missing files
  are skipped). ``leavewhenempty`` conditions → LEAVEEMPTY. The app's timeout (5th argument) → TIMEOUT.
* Ringing: with ``autofill`` (default yes) the first N waiting callers ring at once when N members are
  free, else only the head. Members are ranked as app_queue's calc_metric: ringall (every member of
  the best tier), linear (config order, from the first for each caller), rrordered / rrmemory (rotation
  remembered across callers), leastrecent, fewestcalls, random, wrandom (random weighted by penalty).
  ``penalty`` tiers: only the lowest tier with a ringable member rings (penalties ignored while the
  queue has no more than ``penaltymemberslimit`` members). A member is not rung when paused, in
  ``wrapuptime`` (the member's, else the queue's) after its last call, or, unless ``ringinuse`` (queue
  or member; Asterisk's default yes), when its device is not NOT_INUSE/UNKNOWN; one member is never
  rung for two callers at once by us. Each attempt rings for ``timeout`` seconds (capped by what is
  left of the app's timeout unless ``timeoutpriority=conf``); a member that is busy or unreachable is
  skipped at once for the next (strategies that ring one), an attempt without answer is followed by
  ``retry`` seconds of music; ``autopause=yes|all`` pauses a member that did not answer.
  Option ``n``: no retry, the app ends (TIMEOUT) after the first attempt.
* A ring is a real call: `Channel.dial` (the call engine's Dial) with ``m(class)`` so the caller keeps
  its music; the first member to answer is bridged with the caller until one hangs up. Then the
  caller's Queue ends as Asterisk's: the caller is hung up, unless option ``c`` (QUEUESTATUS=CONTINUE,
  the dialplan goes on). A caller hanging up while waiting counts as abandoned.
* Variables: QUEUESTATUS, QUEUEPOSITION (on join), QEHOLDTIME, MEMBERINTERFACE, MEMBERNAME, MEMBERPENALTY (of
  the member that answered), and Dial's (DIALSTATUS, ANSWEREDTIME...).

Members whose interface starts with a prefix registered in `MEMBER_DIALERS` are rung through that
hook instead of Dial — the agents module plugs agents in this way::

    from switchboard.engine.apps import queue as app_queue
    async def ring_agent(caller, interface, timeout, options, on_answer) -> str:
        # ring the agent behind `interface` ("Local/1001@agents") for `timeout` s (None: no limit);
        # when it answers: call on_answer(agent_channel), bridge it with `caller` until one hangs up,
        # then return "ANSWER" (raise ChannelGone when the caller hung up); else return a DIALSTATUS
        # (NOANSWER, BUSY, CHANUNAVAIL, CONGESTION)
        ...
    app_queue.MEMBER_DIALERS["Local/"] = ring_agent        # or a narrower prefix
    app_queue.MEMBER_STATES["Local/"] = lambda iface: "NOT_INUSE"   # the member's device state

A hooked member is rung on its own (one member per attempt), also under ringall.

``AddQueueMember(queuename[,interface[,penalty[,options[,membername[,stateinterface[,wrapuptime]]]]]])``
→ AQMSTATUS ADDED / MEMBERALREADY / NOSUCHQUEUE (interface default: the channel's Tech/resource).
``RemoveQueueMember(queuename[,interface])`` → RQMSTATUS REMOVED / NOTINQUEUE / NOSUCHQUEUE / NOTDYNAMIC.
``PauseQueueMember([queuename],interface[,options[,reason]])`` → PQMSTATUS PAUSED / NOTFOUND;
``UnpauseQueueMember(...)`` → UPQMSTATUS UNPAUSED / NOTFOUND (no queue: every queue holding it).
Dynamic members live in memory (not persisted across restarts, unlike Asterisk's astdb).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from switchboard import events
from switchboard.engine.channel import UP, Channel, ChannelGone
from switchboard.engine.dialplan_exec import Runner, Stop, application, parse_options, split_args
from switchboard.engine.queuelive import (
    MEMBER_STATES,
    Entry,
    MemberSpec,
    QueueConf,
    QueueLive,
    queue_conf,
)

__all__ = ["MEMBER_DIALERS", "MEMBER_STATES"]

log = logging.getLogger("switchboard.queue")

MemberDialer = Callable[[Channel, str, "float | None", str, Callable[[Channel], None]], Awaitable[str]]
MEMBER_DIALERS: dict[str, MemberDialer] = {}  # interface prefix -> how to ring such a member

POLL = 0.2  # seconds between looks at the members while waiting
_AVAILABLE = ("NOT_INUSE", "UNKNOWN")  # member_status_available


def _args(data: str, n: int) -> list[str]:
    out = split_args(data, ",", n)
    return out + [""] * (n - len(out))


def _pbx(channel: Channel) -> Any:
    calls = getattr(channel, "calls", None)
    if calls is None:
        raise Stop("Queue needs a channel of the call engine")
    return calls.pbx


def _cf(pbx: Any):
    cf, _ = pbx._conf("queue")
    return cf


def _hook(table: dict, interface: str):
    for prefix, fn in table.items():
        if interface.startswith(prefix):
            return fn
    return None


# ==== member choice (app_queue's can_ring_entry, calc_metric, get_member_status) ==================
def _wrapup(conf: QueueConf, spec: MemberSpec) -> int:
    return spec.wrapuptime or conf.wrapuptime


def _in_wrapup(live: QueueLive, conf: QueueConf, spec: MemberSpec) -> bool:
    m = live.members.get((conf.name, spec.interface))
    wr = _wrapup(conf, spec)
    return bool(m and wr and (m.in_call or (m.lastcall and time.time() - m.lastcall < wr)))


def can_ring(pbx: Any, conf: QueueConf, spec: MemberSpec) -> bool:
    live: QueueLive = pbx.queue_live
    m = live.members.get((conf.name, spec.interface))
    if m is not None and (m.paused or m.in_call):
        return False
    if _in_wrapup(live, conf, spec):
        return False
    if live.reserved.get(spec.interface):
        return False
    ringinuse = conf.ringinuse if spec.ringinuse is None else spec.ringinuse
    return not (not ringinuse and pbx.queue_member_state(spec) not in _AVAILABLE)


def member_usable(pbx: Any, conf: QueueConf, spec: MemberSpec, conditions: frozenset[str]) -> bool:
    """get_member_status for one member: False when one of `conditions` rules it out."""
    state = pbx.queue_member_state(spec)
    cond_of = {"INVALID": "invalid", "UNAVAILABLE": "unavailable", "INUSE": "inuse", "RINGING": "ringing",
               "UNKNOWN": "unknown"}  # fmt: skip
    if cond_of.get(state) in conditions:
        return False
    m = pbx.queue_live.members.get((conf.name, spec.interface))
    if m is not None and m.paused and "paused" in conditions:
        return False
    return not ("wrapup" in conditions and _in_wrapup(pbx.queue_live, conf, spec))


def queue_empty(pbx: Any, conf: QueueConf, conditions: frozenset[str]) -> bool:
    """True when, under `conditions`, no member could take the call (joinempty / leavewhenempty)."""
    if not conditions:
        return False
    return not any(member_usable(pbx, conf, s, conditions) for s in pbx.queue_live.member_specs(conf))


def metrics(pbx: Any, conf: QueueConf, specs: list[MemberSpec], linpos: int) -> list[tuple[int, int, MemberSpec]]:
    """(metric, position, member) for each member, as calc_metric (lower rings first)."""
    live: QueueLive = pbx.queue_live
    usepenalty = len(specs) > conf.penaltymemberslimit
    rrpos = live.stat(conf.name).rrpos
    now = time.time()
    out = []
    for pos, spec in enumerate(specs):
        m = live.members.get((conf.name, spec.interface))
        s = conf.strategy
        penalty = spec.penalty * 1_000_000 * usepenalty
        if s == "ringall":
            metric = 0
        elif s in ("linear", "rrmemory", "rrordered"):
            start = linpos if s == "linear" else rrpos
            metric = 1000 + pos if pos < start else pos
        elif s == "leastrecent":
            metric = 0 if not (m and m.lastcall) else max(0, 1_000_000 - int(now - m.lastcall))
        elif s == "fewestcalls":
            metric = m.calls if m else 0
        elif s == "random":
            metric = random.randrange(1000)
        elif s == "wrandom":
            metric, penalty = random.randrange((1 + spec.penalty) * 1000), 0
        else:
            metric = 0
        out.append((metric + penalty, pos, spec))
    out.sort(key=lambda t: (t[0], t[1]))
    return out


# ==== the Queue application =====================================================================
class _Caller:
    """One caller's run of Queue()."""

    def __init__(self, runner: Runner, channel: Channel, pbx: Any, conf: QueueConf, opts: dict, timeout: float):
        self.runner, self.ch, self.pbx, self.conf, self.opts = runner, channel, pbx, conf, opts
        self.live: QueueLive = pbx.queue_live
        self.entry = Entry(conf.name, channel, prio=_prio(channel))
        self.started = time.monotonic()
        self.deadline = self.started + timeout if timeout > 0 else None
        self.moh_class = conf.musicclass or channel.variables.get("MUSICCLASS") or "default"
        self.moh: asyncio.Task | None = None
        self.linpos = 0
        self.last_pos_announce = 0.0
        self.last_periodic = time.monotonic()
        self.periodic_index = 0
        self.answered_by: MemberSpec | None = None
        self.bridged_at = 0.0
        self.left_position = 0  # where the caller was when it left the queue (0: not in it)

    def entry_event(self, position: int, **extra) -> dict:
        ch = self.ch
        return {
            "queue": self.conf.name,
            "channel": ch.name,
            "unique_id": ch.uniqueid,
            "position": position,
            "caller_id_num": ch.caller_num,
            "caller_id_name": ch.caller_name,
            **extra,
        }

    def publish_left(self, status: str) -> None:
        """queue.left, once, when the caller leaves other than by an answer (on_answer tells that)."""
        if self.left_position:
            events.publish("queue.left", self.entry_event(self.left_position, reason=status))
            self.left_position = 0

    # ---- hold music -------------------------------------------------------------------------
    def start_moh(self) -> None:
        if "r" in self.opts or (self.moh is not None and not self.moh.done()):
            return
        self.moh = asyncio.ensure_future(self.ch.music_on_hold(self.moh_class, None))
        self.moh.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def stop_moh(self) -> None:
        task, self.moh = self.moh, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ChannelGone, Exception):
                await task

    # ---- waiting ------------------------------------------------------------------------------
    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def timed_out(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    async def announce(self) -> None:
        conf, now = self.conf, time.monotonic()
        play: list[str] = []
        if (
            conf.announce_frequency
            and conf.announce_position != "no"
            and now - self.last_pos_announce >= max(conf.announce_frequency, conf.min_announce_frequency)
        ):
            self.last_pos_announce = now
            pos = self.live.position(self.entry)
            limit = conf.announce_position_limit
            if pos == 1:
                play = ["queue-youarenext"]
            elif conf.announce_position == "more" and pos > limit:
                play = ["queue-thereare", "queue-quantity1", *_number(limit), "queue-quantity2"]
            elif conf.announce_position != "limit" or pos <= limit:
                play = ["queue-thereare", *_number(pos), "queue-callswaiting"]
            play.append("queue-thankyou")
        if conf.periodic_announce_frequency and now - self.last_periodic >= conf.periodic_announce_frequency:
            self.last_periodic = now
            play.append(conf.periodic_announce[self.periodic_index % len(conf.periodic_announce)])
            self.periodic_index += 1
        if play:
            await self.stop_moh()
            await self.ch.play(play)
            self.runner.waited()

    def our_turn(self) -> bool:
        """is_our_turn: with autofill, the first N callers not already ringing, N the free members."""
        waiting = [e for e in self.live.waiting(self.conf.name) if not e.pending]
        if self.entry not in waiting:
            return False
        idx = waiting.index(self.entry)
        if not self.conf.autofill:
            return self.live.position(self.entry) == 1
        specs = self.live.member_specs(self.conf)
        avl = sum(1 for s in specs if can_ring(self.pbx, self.conf, s))
        if self.conf.strategy == "ringall" and avl:
            avl = 1  # ringall: one caller rings every member
        return idx < max(avl, 1) if avl else False

    async def wait(self, seconds: float) -> None:
        self.start_moh()
        left = self.left()
        if left is not None:
            seconds = min(seconds, max(left, 0))
        await self.runner.sleep(seconds)

    # ---- ringing --------------------------------------------------------------------------------
    def choose(self, exclude: set[str]) -> list[MemberSpec]:
        specs = self.live.member_specs(self.conf)
        ranked = [t for t in metrics(self.pbx, self.conf, specs, self.linpos) if t[2].interface not in exclude]
        ranked = [t for t in ranked if can_ring(self.pbx, self.conf, t[2])]
        if not ranked:
            return []
        best = ranked[0][0]
        if self.conf.strategy == "ringall":
            tier = [t[2] for t in ranked if t[0] == best]
            hooked = [s for s in tier if _hook(MEMBER_DIALERS, s.interface)]
            plain = [s for s in tier if not _hook(MEMBER_DIALERS, s.interface)]
            return plain or hooked[:1]
        pos = ranked[0][1]
        nxt = (pos + 1) % len(specs) if specs else 0
        if self.conf.strategy == "linear":
            self.linpos = nxt
        elif self.conf.strategy in ("rrmemory", "rrordered"):
            self.live.stat(self.conf.name).rrpos = nxt
        return [ranked[0][2]]

    def ring_timeout(self) -> float | None:
        t = float(self.conf.timeout) if self.conf.timeout > 0 else None
        left = self.left()
        if left is not None and self.conf.timeoutpriority != "conf":
            t = left if t is None else min(t, left)
        return max(t, 0.5) if t is not None else None

    def on_answer(self, members: list[MemberSpec]) -> Callable[[Channel], None]:
        def answered(callee: Channel) -> None:
            res = getattr(callee, "resource", "")
            spec = next(
                (s for s in members if s.interface.partition("/")[2] == res or s.interface == res),
                members[0],
            )
            self.answered_by = spec
            self.bridged_at = time.monotonic()
            holdtime = self.bridged_at - self.started
            pos = self.live.position(self.entry)
            self.live.leave(self.entry)
            if pos:
                events.publish("queue.left", self.entry_event(pos, reason="ANSWER", member=spec.interface))
            self.live.connected(self.conf, holdtime)
            m = self.live.member(self.conf.name, spec.interface)
            m.in_call, m.updated = True, time.time()
            member_event(self.pbx, self.conf.name, spec, "in_call")
            v = self.ch.variables
            v["MEMBERINTERFACE"], v["MEMBERNAME"], v["MEMBERPENALTY"] = spec.interface, spec.display, str(spec.penalty)
            v["QEHOLDTIME"] = str(int(holdtime))
            log.info("%s: queue %s answered by %s after %.1f s", self.ch.name, self.conf.name, spec.interface, holdtime)

        return answered

    async def ring(self, members: list[MemberSpec]) -> str:
        """Ring `members` (one Dial) for the ring timeout; DIALSTATUS."""
        for s in members:
            self.live.reserved[s.interface] = self.live.reserved.get(s.interface, 0) + 1
        self.entry.pending = True
        callback = self.on_answer(members)
        options = "" if "r" in self.opts else f"m({self.moh_class})"
        try:
            await self.stop_moh()
            self.runner.waited()
            dialer = _hook(MEMBER_DIALERS, members[0].interface)
            if dialer is not None:
                status = await dialer(self.ch, members[0].interface, self.ring_timeout(), options, callback)
            else:
                setattr(self.ch, "on_bridge", callback)  # noqa: B010 - the SIP channel's hook (engine/calls.py)
                survives = getattr(self.ch, "survives_peer", False)
                if "c" in self.opts:  # the caller stays when the member hangs up: its dialplan goes on
                    setattr(self.ch, "survives_peer", True)  # noqa: B010
                try:
                    status = await self.ch.dial([s.interface for s in members], self.ring_timeout(), options)
                finally:
                    if "c" in self.opts:
                        setattr(self.ch, "survives_peer", survives)  # noqa: B010
            self.runner.waited()
            return status
        finally:
            with contextlib.suppress(AttributeError):
                self.ch.on_bridge = None  # type: ignore[attr-defined]
            self.entry.pending = False
            for s in members:
                n = self.live.reserved.get(s.interface, 1) - 1
                if n <= 0:
                    self.live.reserved.pop(s.interface, None)
                else:
                    self.live.reserved[s.interface] = n
            if self.answered_by is not None:
                self.live.completed(self.conf, self.answered_by.interface, time.monotonic() - self.bridged_at)
                member_event(self.pbx, self.conf.name, self.answered_by, "call_completed")

    async def attempt(self) -> str:
        """try_calling: ring until an answer (ANSWER), no answer (NOANSWER) or nobody to ring (NONE)."""
        tried: set[str] = set()
        while True:
            members = self.choose(tried)
            if not members:
                return "NOANSWER" if tried else "NONE"
            status = await self.ring(members)
            if status == "ANSWER" or self.answered_by is not None:
                return "ANSWER"
            tried |= {s.interface for s in members}
            if status == "NOANSWER":
                if self.conf.autopause in ("yes", "all"):
                    for s in members:
                        _pause(self.pbx, None if self.conf.autopause == "all" else self.conf.name, s.interface,
                               True, "Auto-Pause")  # fmt: skip
                return "NOANSWER"
            if self.conf.strategy == "ringall" or self.timed_out():
                return "NOANSWER"  # busy / unreachable members of a ringall tier: the attempt is over

    async def run(self) -> str:
        ch, conf, live = self.ch, self.conf, self.live
        if conf.maxlen and len(live.waiting(conf.name)) >= conf.maxlen:
            return "FULL"
        if queue_empty(self.pbx, conf, conf.joinempty):
            return "JOINEMPTY"
        pos = live.join(self.entry)
        events.publish("queue.joined", self.entry_event(pos))
        ch.variables["QUEUEPOSITION"] = str(pos)
        log.info("%s joined queue %s at position %d", ch.name, conf.name, pos)
        try:
            if "r" in self.opts:
                await ch.ringing()
            elif ch.state != UP:
                await ch.progress()
            while True:
                ch.check()
                if self.timed_out():
                    return "TIMEOUT"
                if queue_empty(self.pbx, conf, conf.leavewhenempty):
                    return "LEAVEEMPTY"
                await self.announce()
                if self.our_turn():
                    result = await self.attempt()
                    if result == "ANSWER":
                        return "ANSWER"
                    if "n" in self.opts:
                        return "TIMEOUT"
                    await self.wait(conf.retry if result == "NOANSWER" else POLL)
                    continue
                await self.wait(POLL)
        except ChannelGone:
            if self.answered_by is None:
                live.abandoned(conf.name)
                log.info("%s abandoned queue %s", ch.name, conf.name)
            raise
        finally:
            self.left_position = live.position(self.entry)
            live.leave(self.entry)
            await self.stop_moh()


def _prio(channel: Channel) -> int:
    try:
        return int(channel.variables.get("QUEUE_PRIO", "0") or 0)
    except ValueError:
        return 0


def _number(n: int) -> list[str]:
    """ast_say_number's files for a small count."""
    if n <= 20:
        return [f"digits/{n}"]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [f"digits/{tens * 10}"] + ([f"digits/{ones}"] if ones else [])
    return [f"digits/{d}" for d in str(n)]


@application("Queue")
async def app_queue(runner: Runner, channel: Channel, data: str) -> None:
    """Queue(queuename[,options[,URL[,announceoverride[,timeout]]]]) (module docstring). Sets QUEUESTATUS
    (TIMEOUT, FULL, JOINEMPTY, LEAVEEMPTY, CONTINUE, UNKNOWN) and continues at the next priority, or
    ends the caller's dialplan after a call a member answered (unless option c)."""
    name, options, _url, _announceoverride, timeout = _args(data, 5)
    name = name.strip()
    if not name:
        raise Stop("Queue requires an argument: queuename[,options[,URL[,announceoverride[,timeout]]]]")
    pbx = _pbx(channel)
    channel.check()
    conf = queue_conf(_cf(pbx), name)
    if conf is None:
        log.warning("Unable to join queue '%s': no such queue", name)
        channel.variables["QUEUESTATUS"] = "UNKNOWN"
        return
    opts = parse_options(options)
    try:
        secs = float(timeout) if timeout.strip() else 0.0
    except ValueError:
        secs = 0.0
    caller = _Caller(runner, channel, pbx, conf, opts, secs)
    status = "ABANDON"  # (the caller hung up: ChannelGone)
    try:
        status = await caller.run()
    finally:
        caller.publish_left(status)
    channel.check()
    if status == "ANSWER":
        if "c" in opts:
            channel.variables["QUEUESTATUS"] = "CONTINUE"
            return
        raise Stop("Queue: answered call ended", error=False)
    channel.variables["QUEUESTATUS"] = status
    log.info("%s leaves queue %s: %s", channel.name, name, status)


# ==== dynamic members and pause ====================================================================
def _queue_names(pbx: Any) -> list[str]:
    cf = _cf(pbx)
    return [n for n in (cf.names() if cf is not None else []) if queue_conf(cf, n) is not None]


def _own_interface(channel: Channel) -> str:
    return f"{channel.tech}/{channel.resource}"


@application("AddQueueMember")
async def app_addqueuemember(runner: Runner, channel: Channel, data: str) -> None:
    """AddQueueMember(queuename[,interface[,penalty[,options[,membername[,stateinterface[,wrapuptime]]]]]])."""
    qname, iface, penalty, _options, mname, state_if, wrapup = (a.strip() for a in _args(data, 7))
    if not qname:
        raise Stop("AddQueueMember requires an argument (queuename[,interface[,penalty...]]])")
    pbx = _pbx(channel)
    conf = queue_conf(_cf(pbx), qname)
    iface = iface or _own_interface(channel)
    if conf is None:
        channel.variables["AQMSTATUS"] = "NOSUCHQUEUE"
        return
    live: QueueLive = pbx.queue_live
    if any(s.interface.lower() == iface.lower() for s in live.member_specs(conf)):
        channel.variables["AQMSTATUS"] = "MEMBERALREADY"
        return
    spec = MemberSpec.parse(f"{iface},{penalty},{mname},{state_if},,{wrapup}")
    spec.membership = "dynamic"
    live.dynamic.setdefault(qname, {})[iface] = spec
    live.member(qname, iface).updated = time.time()
    member_event(pbx, qname, spec, "added")
    channel.variables["AQMSTATUS"] = "ADDED"
    log.info("Added interface '%s' to queue '%s'", iface, qname)


@application("RemoveQueueMember")
async def app_removequeuemember(runner: Runner, channel: Channel, data: str) -> None:
    """RemoveQueueMember(queuename[,interface[,options]])."""
    qname, iface, _options = (a.strip() for a in _args(data, 3))
    if not qname:
        raise Stop("RemoveQueueMember requires an argument (queuename[,interface])")
    pbx = _pbx(channel)
    conf = queue_conf(_cf(pbx), qname)
    iface = iface or _own_interface(channel)
    live: QueueLive = pbx.queue_live
    if conf is None:
        channel.variables["RQMSTATUS"] = "NOSUCHQUEUE"
        return
    dyn = live.dynamic.get(qname, {})
    key = next((k for k in dyn if k.lower() == iface.lower()), None)
    if key is not None:
        spec = dyn.pop(key)
        live.members.pop((qname, key), None)
        member_event(pbx, qname, spec, "removed")
        channel.variables["RQMSTATUS"] = "REMOVED"
    elif any(s.interface.lower() == iface.lower() for s in conf.members):
        channel.variables["RQMSTATUS"] = "NOTDYNAMIC"
    else:
        channel.variables["RQMSTATUS"] = "NOTINQUEUE"


def _pause(pbx: Any, qname: str | None, iface: str, paused: bool, reason: str) -> bool:
    found = False
    live: QueueLive = pbx.queue_live
    cf = _cf(pbx)
    for name in [qname] if qname else _queue_names(pbx):
        conf = queue_conf(cf, name)
        if conf is None:
            continue
        spec = next((s for s in live.member_specs(conf) if s.interface.lower() == iface.lower()), None)
        if spec is None:
            continue
        m = live.member(name, spec.interface)
        m.paused, m.paused_reason = paused, (reason if paused else "")
        if paused:
            m.last_pause = int(time.time())
        m.updated = time.time()
        member_event(pbx, name, spec, "paused" if paused else "unpaused")
        found = True
    return found


def member_event(pbx: Any, queue: str, spec: MemberSpec, change: str) -> None:
    """queue.member: a member's status (its device state), pause and call state after `change`."""
    m = pbx.queue_live.members.get((queue, spec.interface))
    try:
        status = "REMOVED" if change == "removed" else pbx.queue_member_state(spec)
    except Exception:  # noqa: BLE001 - the event goes out without a device state
        status = "UNKNOWN"
    events.publish(
        "queue.member",
        {
            "queue": queue,
            "interface": spec.interface,
            "name": spec.display,
            "membership": spec.membership,
            "status": status,
            "paused": bool(m and m.paused),
            "paused_reason": m.paused_reason if m else "",
            "in_call": bool(m and m.in_call),
            "calls_taken": m.calls if m else 0,
            "change": change,
        },
    )


@application("PauseQueueMember")
async def app_pausequeuemember(runner: Runner, channel: Channel, data: str) -> None:
    """PauseQueueMember([queuename],interface[,options[,reason]]) → PQMSTATUS PAUSED / NOTFOUND."""
    qname, iface, _options, reason = (a.strip() for a in _args(data, 4))
    if not iface:
        raise Stop("PauseQueueMember requires an argument ([queuename],interface[,options[,reason]])")
    ok = _pause(_pbx(channel), qname or None, iface, True, reason)
    channel.variables["PQMSTATUS"] = "PAUSED" if ok else "NOTFOUND"


@application("UnpauseQueueMember")
async def app_unpausequeuemember(runner: Runner, channel: Channel, data: str) -> None:
    """UnpauseQueueMember([queuename],interface[,options[,reason]]) → UPQMSTATUS UNPAUSED / NOTFOUND."""
    qname, iface, _options, reason = (a.strip() for a in _args(data, 4))
    if not iface:
        raise Stop("UnpauseQueueMember requires an argument ([queuename],interface[,options[,reason]])")
    ok = _pause(_pbx(channel), qname or None, iface, False, reason)
    channel.variables["UPQMSTATUS"] = "UNPAUSED" if ok else "NOTFOUND"
