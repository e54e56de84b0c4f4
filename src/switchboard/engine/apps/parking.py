"""res_parking's applications: Park and ParkedCall, the parked calls' timeouts, and jade's parked-call object.

Lots come from res_parking.conf (`asterisk.parking.lots`, read through `Pbx.parking_lots`; the `default`
lot always exists). Their extensions (park extension, one per space, hints with ``parkinghints=yes``) are
generated into the dialplan the calls run (`Pbx.dialplan` merges `asterisk.parking.contexts` in), so
``include => parkedcalls`` and a blind transfer (REFER) to the park extension work as in Asterisk: the
transferee runs ``Park()`` with ``BLINDTRANSFER`` set, and the transferer is the parker.

``Park([lot[,options]])`` (park_app_exec / bridge_parking_push):
* answers the channel; the lot is the argument, else ``${PARKINGLOT}``, else ``default``;
* the space: ``R`` a random start, else ``${PARKINGEXTEN}`` when it is in the lot, else the lot's first space
  (``findslot=next``: the one after the last space given); the first free space from there, wrapping
  round; none free (or no such lot, or res_parking not loaded): ``pbx-parkingfailed`` is played (not
  with ``s`` nor after a transfer) and the dialplan goes on at the next priority;
* the parker is ``ATTENDEDTRANSFER`` / ``BLINDTRANSFER`` when set (the transferer), else the channel
  itself; its dial string is the channel name without its ``-<sequence>`` suffix (``PJSIP/bob``);
* the space number is said (``digits/N``) to the parkee when it parked itself (Park() in the dialplan),
  unless ``s``; after a blind transfer it is said to the transferer instead, if still there, which is then
  hung up (Asterisk's say_parking_space with hangup_after);
* the parkee hears the lot's ``parkedmusicclass`` (``default`` when unset); ``r``: ringing is indicated
  instead of music (no ringback tone is generated: an answered SIP channel hears silence);
* ``t(seconds)`` replaces the lot's ``parkingtime`` (0: no limit); ``c([[context,]exten,]priority)`` is
  where a timed-out call goes instead of the lot's rule;
* the parked call lasts until picked up, hung up (the caller, or jade's DELETE: a real BYE) or timed out.
  Picked up: when the bridge ends the parkee is hung up (Park returns -1). Timed out (parking_duration_
  callback): ``PARKING_SPACE``, ``PARKINGSLOT``, ``PARKEDLOT``, ``PARKER``, ``PARKER_FLAT`` and
  ``BRIDGE_FEATURES`` (empty) are set; ``park-dial,<PARKER_FLAT>,1`` is added as
  ``Dial(<PARKER>,<comebackdialtime>)`` (unless extensions.conf defines it); then the call goes on at the
  ``c`` option's place, else with ``comebacktoorigin=yes`` at ``park-dial,<PARKER_FLAT>,1``, else at
  ``<comebackcontext>,<PARKER_FLAT>,1``, or ``<comebackcontext>,s,1``, or ``default,s,1`` (comeback_goto).
* A reload of res_parking.conf applies to the next park; a call already parked keeps its lot's settings,
  stays listed and can be picked up by its lot name and space (Asterisk keeps a removed lot until empty).

``ParkedCall([lot[,space]])``: answers; the lot as Park's; no such lot, a space that is not a number, or
nothing parked there (without a space: the lot's lowest occupied space): ``pbx-invalidpark`` and the call
ends. Else the parked call leaves the lot and is bridged with the caller (`CallEngine.bridge_channels`);
when either hangs up the other is hung up too (ParkedCall returns -1).

Not done: ParkAndAnnounce, courtesytone/parkedplay, the parkedcall* DTMF features, dynamic lots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from switchboard import events
from switchboard.asterisk import parking
from switchboard.asterisk.dialplan import Context, Extension, Step
from switchboard.engine.channel import NORMAL_CLEARING, STATE_DESC, UP, Channel, ChannelGone
from switchboard.engine.dialplan_exec import Runner, Stop, _args, application, parse_options

log = logging.getLogger("switchboard.parking")


@dataclass(eq=False)
class ParkedCall:
    """One call in a parking space (Asterisk's parked_user)."""

    channel: Channel
    lot: parking.Lot
    space: int
    parker_dial_string: str
    time_limit: int  # seconds; 0: no limit
    comeback: str = ""  # the `c` option's place
    started: float = field(default_factory=time.time)
    resolution: str = ""  # "", "answered", "timeout", "abandon"
    resolved: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # the pickup's bridge ended
    hold: asyncio.Task | None = None

    @property
    def context(self) -> str:
        return self.lot.context

    def view(self) -> dict[str, Any]:
        """jade's parked call (GET /admin/park/parkedcalls[/{id}]), as of now (`tm_update`)."""
        ch, now = self.channel, time.time()
        duration = int(now - self.started)
        dt = datetime.fromtimestamp(now, UTC)
        return {
            "parkee_account_code": ch.account_code,
            "parkee_caller_id_name": ch.caller_name or "<unknown>",
            "parkee_caller_id_num": ch.caller_num or "<unknown>",
            "parkee_channel": ch.name,
            "parkee_channel_state": str(ch.state),
            "parkee_channel_state_desc": STATE_DESC.get(ch.state, "Unknown"),
            "parkee_connected_line_name": ch.connected_name or "<unknown>",
            "parkee_connected_line_num": ch.connected_num or "<unknown>",
            "parkee_context": ch.context,
            "parkee_exten": ch.exten,
            "parkee_linked_id": ch.linkedid,
            "parkee_priority": str(ch.priority),
            "parkee_unique_id": ch.uniqueid,
            "parker_dial_string": self.parker_dial_string,
            "parking_duration": duration,
            "parking_lot": self.lot.name,
            "parking_space": str(self.space),
            "parking_timeout": max(self.time_limit - duration, 0) if self.time_limit else 0,
            "tm_update": dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(now * 1e9) % 1_000_000_000:09d}Z",
        }

    async def hangup(self) -> None:
        """jade's DELETE: the parked channel is hung up for real (BYE)."""
        with contextlib.suppress(ChannelGone):
            await self.channel.hangup(NORMAL_CLEARING)


# an extension res_parking added (park-dial) carries this line number: extensions.conf's are never replaced
_REGISTRAR_LINE = -1
# findslot=next: the space after the last one given, per lot name (lot->next_space)
_next_space: dict[str, int] = {}


def _pbx(channel: Channel) -> Any:
    calls = getattr(channel, "calls", None)
    if calls is None:
        raise Stop("parking needs the call engine")
    return calls.pbx


def _lot_name(runner: Runner, arg: str) -> str:
    """find_channel_parking_lot_name: the argument, else ${PARKINGLOT}, else the default lot."""
    return arg.strip() or (runner.get_var("PARKINGLOT") or "").strip() or parking.DEFAULT_LOT


def _free_space(pbx: Any, lot: parking.Lot, preferred: int | None) -> int | None:
    """parking_lot_get_space: from the start (or the preferred space) up, the first free space, wrapping."""
    taken = {pc.space for pc in pbx.parked_calls.values() if pc.lot.name == lot.name}
    start = lot.start
    if lot.findslot == "next" and _next_space.get(lot.name) in lot.spaces():
        start = _next_space[lot.name]
    if preferred is not None and preferred in lot.spaces():
        start = preferred
    for space in [*range(start, lot.stop + 1), *range(lot.start, start)]:
        if space not in taken:
            return space
    return None


async def _say(channel: Channel, number: int) -> None:
    with contextlib.suppress(ChannelGone):
        await channel.play([f"digits/{d}" for d in str(number)])


async def _hold(channel: Channel, klass: str, ringing: bool) -> None:
    if ringing:
        await channel.ringing()
        await channel.gone.wait()
        return
    await channel.music_on_hold(klass or "default", None)


def _reap(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


@application("Park")
async def app_park(runner: Runner, channel: Channel, data: str) -> None:
    """Park([lot[,options]]): see the module docstring."""
    lot_arg, options = _args(data, 2)
    opts = parse_options(options)
    pbx = _pbx(channel)
    channel.check()
    if channel.state != UP:
        await channel.answer()
    transferer = channel.variables.get("ATTENDEDTRANSFER") or channel.variables.get("BLINDTRANSFER") or ""
    silence = "s" in opts
    time_limit: int | None = None
    if "t" in opts:
        try:
            time_limit = int(opts["t"].strip())
        except ValueError:
            time_limit = -1
        if time_limit < 0:
            log.error("Duration value provided for timeout ('t') option must be 0 or greater.")
            time_limit = None
    name = _lot_name(runner, lot_arg)
    lot = pbx.parking_lots().get(name)
    space = None
    if lot is not None:
        preferred = None
        if "R" in opts:
            preferred = random.randint(lot.start, lot.stop)
        elif (exten := (runner.get_var("PARKINGEXTEN") or "").strip()).isdigit():
            preferred = int(exten)
        space = _free_space(pbx, lot, preferred)
    if lot is None or space is None:
        log.warning("Cannot park %s: %s", channel.name, "no parking lot " + name if lot is None else f"lot {name} full")
        if not silence and not transferer:
            runner.waited()
            with contextlib.suppress(ChannelGone):
                await channel.play(["pbx-parkingfailed"])
        channel.check()
        return
    _next_space[lot.name] = lot.start + ((space + 1 - lot.start) % (lot.stop - lot.start + 1))
    parker = parking.dial_string(transferer or channel.name)
    pc = ParkedCall(
        channel,
        lot,
        space,
        parker,
        lot.parkingtime if time_limit is None else time_limit,
        comeback=opts.get("c", "") if "c" in opts else "",
    )
    pbx.parked_calls[channel.uniqueid] = pc
    pbx.view_cache.clear()
    events.publish("parking.parked", pc.view())
    log.info("Parking '%s' in '%s' at space %d", channel.name, lot.name, space)
    runner.waited()
    try:
        if transferer:
            if not silence:
                parker_chan = next((c for c in pbx.channels.values() if c.name == transferer), None)
                if parker_chan is not None and not parker_chan.hung_up:
                    asyncio.get_running_loop().create_task(_say_and_hang_up(parker_chan, space))
        elif not silence:
            await _say(channel, space)
        channel.check()
        if not pc.resolution:
            pc.hold = asyncio.ensure_future(_hold(channel, lot.parkedmusicclass, "r" in opts))
            pc.hold.add_done_callback(_reap)
        await _wait_parked(pc)
    finally:
        if pbx.parked_calls.get(channel.uniqueid) is pc:
            del pbx.parked_calls[channel.uniqueid]
            pbx.view_cache.clear()
        if not pc.resolution:
            pc.resolution = "abandon"
        events.publish("parking.unparked", {**pc.view(), "reason": pc.resolution})
        if pc.resolution != "answered" and pc.hold is not None:
            pc.hold.cancel()
    runner.waited()
    if pc.resolution == "answered":
        gone = asyncio.ensure_future(channel.gone.wait())
        done = asyncio.ensure_future(pc.finished.wait())
        try:
            await asyncio.wait({gone, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            done.cancel()
        raise Stop("parked call picked up: the bridge ended", error=False)
    channel.check()
    await _timed_out(runner, pc)


async def _say_and_hang_up(parker: Channel, space: int) -> None:
    await _say(parker, space)
    with contextlib.suppress(ChannelGone):
        await parker.hangup(NORMAL_CLEARING)


async def _wait_parked(pc: ParkedCall) -> None:
    """Until picked up (resolved), hung up (ChannelGone) or the time limit (resolution "timeout")."""
    left = None
    if pc.time_limit:
        left = max(pc.time_limit - (time.time() - pc.started), 0.001)
    gone = asyncio.ensure_future(pc.channel.gone.wait())
    resolved = asyncio.ensure_future(pc.resolved.wait())
    try:
        await asyncio.wait({gone, resolved}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        resolved.cancel()
    if pc.resolution:
        return
    if pc.channel.hung_up:
        raise ChannelGone(pc.channel.name)
    pc.resolution = "timeout"


async def _timed_out(runner: Runner, pc: ParkedCall) -> None:
    """parking_duration_callback + comeback_goto (module docstring)."""
    ch, lot = pc.channel, pc.lot
    if pc.hold is not None:
        with contextlib.suppress(asyncio.CancelledError, ChannelGone, Exception):
            await pc.hold
    flat = parking.flat(pc.parker_dial_string)
    log.info("Parked call %s timed out in %s at %d: back to %s", ch.name, lot.name, pc.space, pc.parker_dial_string)
    ch.variables.update(
        {
            "PARKING_SPACE": str(pc.space),
            "PARKINGSLOT": str(pc.space),
            "PARKEDLOT": lot.name,
            "PARKER": pc.parker_dial_string,
            "PARKER_FLAT": flat,
            "BRIDGE_FEATURES": "",
        }
    )
    pbx = _pbx(ch)
    plans = [runner.dialplan]
    current = pbx.dialplan()
    if current is not None and current is not runner.dialplan:
        plans.append(current)
    for plan in plans:
        ctx = plan.contexts.setdefault(parking.PARK_DIAL_CONTEXT, Context(parking.PARK_DIAL_CONTEXT))
        existing = next((e for e in ctx.extensions if e.exten == flat and e.callerid is None), None)
        step = Step(1, None, "Dial", f"{pc.parker_dial_string},{lot.comebackdialtime}")
        if existing is None:
            ctx.extensions.append(Extension(flat, None, [step], line=_REGISTRAR_LINE))
        elif existing.line == _REGISTRAR_LINE:  # ours (from an earlier timeout): replaced, as Asterisk
            existing.priorities[:] = [step]
    if pc.comeback:
        runner.goto(*runner.resolve(pc.comeback))
        return
    if lot.comebacktoorigin:
        if runner.dialplan.exists(parking.PARK_DIAL_CONTEXT, flat, 1):
            runner.goto(parking.PARK_DIAL_CONTEXT, flat, 1)
            return
        raise Stop(f"Can not start {ch.name} at {parking.PARK_DIAL_CONTEXT},{flat},1: no such extension")
    for exten in (flat, "s"):
        if runner.dialplan.exists(lot.comebackcontext, exten, 1):
            runner.goto(lot.comebackcontext, exten, 1)
            return
    runner.goto("default", "s", 1)


@application("ParkedCall")
async def app_parkedcall(runner: Runner, channel: Channel, data: str) -> None:
    """ParkedCall([lot[,space]]): see the module docstring."""
    lot_arg, space_arg = _args(data, 2)
    pbx = _pbx(channel)
    channel.check()
    if channel.state != UP:
        await channel.answer()
    runner.waited()
    name = _lot_name(runner, lot_arg)
    parked = sorted((pc for pc in pbx.parked_calls.values() if pc.lot.name == name), key=lambda pc: pc.space)
    if name not in pbx.parking_lots() and not parked:
        log.error("Could not find the requested parking lot %s", name)
        await _invalid(channel)
    if space_arg.strip():
        if not space_arg.strip().isdigit():
            log.error("value '%s' for parking_space argument is invalid. Must be an integer greater than 0.", space_arg)
            await _invalid(channel)
        parked = [pc for pc in parked if pc.space == int(space_arg.strip())]
    pc = next((p for p in parked if not p.resolution and not p.channel.hung_up), None)
    if pc is None:
        await _invalid(channel)
    pc.resolution = "answered"
    pc.resolved.set()
    if pbx.parked_calls.get(pc.channel.uniqueid) is pc:
        del pbx.parked_calls[pc.channel.uniqueid]
        pbx.view_cache.clear()
    log.info("%s picks up %s from %s space %d", channel.name, pc.channel.name, pc.lot.name, pc.space)
    if pc.hold is not None:
        pc.hold.cancel()
        with contextlib.suppress(asyncio.CancelledError, ChannelGone, Exception):
            await pc.hold
    try:
        await channel.calls.bridge_channels(channel, pc.channel)
    finally:
        pc.finished.set()
    raise Stop("ParkedCall: the bridge ended", error=False)


async def _invalid(channel: Channel) -> None:
    with contextlib.suppress(ChannelGone):
        await channel.play(["pbx-invalidpark"])
    raise Stop("no parked call to pick up")
