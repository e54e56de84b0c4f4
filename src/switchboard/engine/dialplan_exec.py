"""The dialplan executor: runs extensions.conf on a channel as Asterisk's __ast_pbx_run does.

``await run(channel, dialplan, context, exten, priority=1, *, globals_=None)`` runs one call. `dialplan` is the
`Dialplan` snapshot taken when the call started (a reload applies to the next call). `globals_` is the shared
``[globals]`` dict (``Set(GLOBAL(x)=y)`` writes it); None gives this call a copy of ``dialplan.globals``.

The loop (pbx.c):

* The step is looked up afresh for (context, exten, priority) before each step (`Dialplan.find`: a matching
  extension without that priority does not stop the search). The channel position is set, the arguments are
  substituted (`asterisk.substitute`), `Channel.set_app` is called, and the application runs. Then priority + 1,
  unless the application jumped (Goto, GotoIf, Gosub, Return, WaitExten's ``t``, Background's one-digit match).
  Each step is logged at debug as Asterisk's verbose line ``Executing [exten@context:prio] App("chan", "data")``.
* Applications are looked up case-insensitively in `APPLICATIONS`. An unknown one ends the call with the warning
  ``No application 'X' for extension (ctx, exten, prio)`` (Asterisk logs it and the PBX stops).
* An application "returns -1" by raising `Stop` (Hangup, Busy, Congestion, Dial after an answered call, Return
  without Gosub, a Goto to a label that does not exist...); `ChannelGone` (the caller hung up) ends it as well.
* No step at (context, exten, priority):
  - when (context, exten, 1) does not exist either, the channel goes to ``i`` (``INVALID_EXTEN`` set) when the
    context has it, else the call ends with cause 1 (Unallocated number: chan_pjsip answers 404 for an unknown
    extension; we use the same cause whenever no ``i`` catches an invalid extension);
  - else, with ``autofallthrough=yes`` (the default), the call ends: DIALSTATUS BUSY indicates busy, CONGESTION
    or CHANUNAVAIL congestion, for 10 s (`FALLTHROUGH_INDICATION`) on an answered channel; on one not answered
    the indication ends it at once with cause 17 / 34 (chan_pjsip answers 486 / 503); other statuses hang up;
  - with ``autofallthrough=no`` the PBX waits TIMEOUT(response) for digits: an extension that exists is entered,
    other digits go to ``i``, none to ``t`` (no ``i``/``t``: the call ends).
* Digits: Background and WaitExten leave the first digit pressed in `Runner.digit`; the PBX then collects more
  while `Dialplan.can_match_more` says more could match, waiting TIMEOUT(digit) (default 5 s) for each
  (collect_digits). The collected digits that exist are entered at priority 1; others go to ``i`` with
  ``${INVALID_EXTEN}``. WaitExten without a digit within its time (default TIMEOUT(response), 10 s) continues at
  the next priority when it exists, else goes to ``t``, else ends the call.
* ``TIMEOUT(absolute)=N``: after N seconds the running application is interrupted and the channel goes to
  ``T`` when the context has it, else the call ends.
* The end: the channel is hung up (cause: the one set, else 16), then, when (context, ``h``, 1) exists, the ``h``
  extension runs (priority 1 on, until a step is missing or an application stops); the channel is gone by then,
  so applications that need media fail at once (ChannelGone) and end ``h``; Set, NoOp, GotoIf... work.
  (Asterisk runs ``h`` after a soft hangup, before the final hangup; the difference is not observable on SIP.)
* Loop cut-off: every step adds one to a counter that an application waiting on the channel (playing, reading
  digits, dialling, recording, echo, music, sleeping a positive time) resets; past `LOOP_LIMIT` (10,000) steps
  without a wait the call ends with the reason logged. Each step also yields to the event loop.

Variables (pbx_retrieve_variable order): the built-ins EXTEN, CONTEXT, PRIORITY, CHANNEL, UNIQUEID, LINKEDID,
HANGUPCAUSE, EPOCH, CALLERIDNUM, CALLERIDNAME; then channel variables; then globals. Names are case-sensitive.
``Set(_X=1)`` / ``Set(__X=1)`` store X (the inheritance level is kept in `Runner.inherit` for the call engine).
Functions (names case-insensitive here): CALLERID(num|number|name|all) (read/write), LEN, IF(c?a:b), ISNULL,
EXISTS, GLOBAL(x) (read/write), LOCAL(x) (read/write, restored on Return), TIMEOUT(digit|response|absolute)
(read/write, seconds, read as ``%.3f``), CHANNEL(name|uniqueid|linkedid|state|language|context|exten|priority),
DIALPLAN_EXISTS(context[,exten[,priority]]). Unknown functions read as "" with a warning.

Other modules add functions with ``@function("AGENT")`` (`FUNCTIONS`; read only, after the built-ins).

Applications: see each function's docstring. Adding one::

    @application("Park")
    async def park(runner: Runner, channel: Channel, data: str) -> None: ...

or ``APPLICATIONS["park"] = park``. `data` is the substituted argument text; split it with `split_args`. Use
`Runner.goto` to jump, raise `Stop` to end the call, call `Runner.waited` (or use `Runner.sleep`) after waiting
on the channel, and `Runner.set_var` / `Runner.get_var` for variables.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from switchboard.asterisk.dialplan import Dialplan, Found
from switchboard.asterisk.expr import is_true
from switchboard.asterisk.substitute import split_args, substitute
from switchboard.engine.channel import (
    BUSY,
    NORMAL_CLEARING,
    STATE_DESC,
    UP,
    Channel,
    ChannelGone,
)

__all__ = ["APPLICATIONS", "FUNCTIONS", "LOOP_LIMIT", "Runner", "Stop", "application", "function", "run"]

log = logging.getLogger("switchboard.dialplan")

LOOP_LIMIT = 10_000
FALLTHROUGH_INDICATION = 10.0  # seconds of busy/congestion on an answered channel (indicate_busy(chan, "10"))
UNALLOCATED, USER_BUSY, CONGESTION = 1, 17, 34
ANY_DIGIT = "0123456789*#ABCD"

App = Callable[["Runner", Channel, str], Awaitable[None]]
APPLICATIONS: dict[str, App] = {}
# dialplan functions other modules add (read side), by upper-case name: fn(runner, args) -> value (None: "")
Func = Callable[["Runner", str], "str | None"]
FUNCTIONS: dict[str, Func] = {}

# ast_str2cause names (the ones Hangup() takes besides numbers)
CAUSE_NAMES = {
    "UNALLOCATED": 1,
    "NO_ROUTE_DESTINATION": 3,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22,
    "DESTINATION_OUT_OF_ORDER": 27,
    "INVALID_NUMBER_FORMAT": 28,
    "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "REQUESTED_CHAN_UNAVAIL": 44,
    "BEARERCAPABILITY_NOTAVAIL": 58,
    "BEARERCAPABILITY_NOTIMPL": 65,
    "INCOMPATIBLE_DESTINATION": 88,
    "RECOVERY_ON_TIMER_EXPIRE": 102,
    "PROTOCOL_ERROR": 111,
    "INTERWORKING": 127,
}


class Stop(Exception):
    """An application ends the dialplan (Asterisk: it returned -1). `cause` is set on the channel when given;
    `error` (default) logs the reason as a warning, else at info (Hangup, Busy, an answered Dial...)."""

    def __init__(self, reason: str = "", cause: int | None = None, *, error: bool = True):
        super().__init__(reason)
        self.cause, self.error = cause, error


def function(name: str) -> Callable[[Func], Func]:
    """Register a dialplan function (read) under `name` (case-insensitive), e.g. ``AGENT`` (engine/apps/agents.py).
    The built-in functions come first."""

    def register(fn: Func) -> Func:
        FUNCTIONS[name.upper()] = fn
        return fn

    return register


def application(name: str) -> Callable[[App], App]:
    """Register an application under `name` (case-insensitive)."""

    def register(fn: App) -> App:
        APPLICATIONS[name.lower()] = fn
        return fn

    return register


def _int(text: str, default: int = 0) -> int:
    m = re.match(r"\s*([+-]?\d+)", text or "")
    return int(m.group(1)) if m else default


def _float(text: str, default: float = 0.0) -> float:
    m = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))", text or "")
    return float(m.group(1)) if m else default


def _args(data: str, n: int) -> list[str]:
    """`n` standard application arguments, missing ones as ""."""
    out = split_args(data, ",", n)
    return out + [""] * (n - len(out))


def parse_options(text: str) -> dict[str, str]:
    """Application option letters, each with an optional ``(argument)`` (ast_app_parse_options)."""
    opts: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        i += 1
        arg = ""
        if i < n and text[i] == "(":
            depth, j = 0, i
            while j < n:
                if text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            arg = text[i + 1 : j]
            i = j + 1
        opts[c] = arg
    return opts


@dataclass
class Frame:
    """A Gosub frame: where Return goes (priority + 1 of the Gosub step) and the variables it shadows."""

    context: str
    exten: str
    priority: int
    saved: dict[str, str | None] = field(default_factory=dict)
    argc: int = 0


class Runner:
    """One call's dialplan execution (state that applications read and change)."""

    def __init__(
        self,
        channel: Channel,
        dialplan: Dialplan,
        context: str,
        exten: str,
        priority: int = 1,
        *,
        globals_: dict[str, str] | None = None,
        loop_limit: int = LOOP_LIMIT,
    ):
        self.channel, self.dialplan = channel, dialplan
        self.context, self.exten, self.priority = context, exten, priority
        self.globals = globals_ if globals_ is not None else dict(dialplan.globals)
        self.loop_limit = loop_limit
        self.digit = ""  # first digit pressed during Background / WaitExten
        self.jumped = False
        self.stack: list[Frame] = []
        self.inherit: dict[str, int] = {}
        self.digit_timeout, self.response_timeout = 5.0, 10.0
        self.deadline: float | None = None  # TIMEOUT(absolute), loop time
        self.steps_since_wait = 0
        self.in_h = False

    # ---- position ------------------------------------------------------------------------------
    @property
    def callerid(self) -> str | None:
        return self.channel.caller_num or None

    def goto(self, context: str | None, exten: str | None, priority: int) -> None:
        """Continue at (context, exten, priority) after this application (ast_explicit_goto)."""
        if context:
            self.context = context
        if exten:
            self.exten = exten
        self.priority = priority
        self.jumped = True

    def resolve(self, target: str) -> tuple[str, str, int]:
        """``[[context,]exten,]priority`` (priority: number, ``+n``/``-n`` relative, or label) as
        pbx_parseable_goto; Stop when the label does not exist."""
        parts = target.split(",")
        if len(parts) > 3:
            parts = [parts[0], parts[1], ",".join(parts[2:])]
        context = exten = None
        if len(parts) == 1:
            pri = parts[0]
        elif len(parts) == 2:
            exten, pri = parts
        else:
            context, exten, pri = parts
        if exten is not None and exten.lower() == "byextension":
            exten = None
        ctx, ext = context or self.context, exten or self.exten
        mode = 0
        if pri.startswith("+"):
            mode, pri = 1, pri[1:]
        elif pri.startswith("-"):
            mode, pri = -1, pri[1:]
        m = re.match(r"\s*(\d+)", pri)
        if m:
            number = int(m.group(1))
            if mode:
                number = self.priority + mode * number
        else:
            found = self.dialplan.find_label(ctx, ext, pri, self.callerid)
            if found is None:
                raise Stop(f"Priority '{pri}' must be a number > 0, or valid label")
            number = found.step.priority
        return ctx, ext, number

    # ---- variables -----------------------------------------------------------------------------
    def get_var(self, name: str) -> str | None:
        ch = self.channel
        builtin = {
            "EXTEN": lambda: ch.exten,
            "CONTEXT": lambda: ch.context,
            "PRIORITY": lambda: str(ch.priority),
            "CHANNEL": lambda: ch.name,
            "UNIQUEID": lambda: ch.uniqueid,
            "LINKEDID": lambda: ch.linkedid,
            "HANGUPCAUSE": lambda: str(ch.hangup_cause or 0),
            "EPOCH": lambda: str(int(time.time())),
            "CALLERIDNUM": lambda: ch.caller_num,
            "CALLERIDNAME": lambda: ch.caller_name,
        }.get(name)
        if builtin is not None:
            return builtin()
        if name in ch.variables:
            return ch.variables[name]
        return self.globals.get(name)

    def set_var(self, name: str, value: str) -> None:
        """pbx_builtin_setvar_helper: ``NAME(args)`` writes a function; ``_``/``__`` prefixes are stripped."""
        if name.endswith(")") and "(" in name:
            fname, _, args = name.partition("(")
            self.func_write(fname, args[:-1], value)
            return
        level = 0
        while name.startswith("_") and level < 2:
            name, level = name[1:], level + 1
        if level:
            self.inherit[name] = level
        self.channel.variables[name] = value

    def substitute(self, text: str) -> str:
        return substitute(text, self.get_var, self.func_read)

    def func_read(self, name: str, args: str) -> str | None:
        n, ch = name.strip().upper(), self.channel
        if n == "CALLERID":
            what = args.strip().lower()
            if what in ("num", "number"):
                return ch.caller_num
            if what == "name":
                return ch.caller_name
            if what == "all":
                return f'"{ch.caller_name}" <{ch.caller_num}>'
            log.warning("CALLERID(%s): unknown field", args)
            return ""
        if n == "LEN":
            return str(len(args))
        if n == "ISNULL":
            return "0" if args else "1"
        if n == "EXISTS":
            return "1" if args else "0"
        if n == "IF":
            cond, _, rest = args.partition("?")
            parts = split_args(rest, ":", 2)
            iftrue = parts[0] if parts else ""
            iffalse = parts[1] if len(parts) > 1 else ""
            return (iftrue if is_true(cond.strip()) else iffalse).strip()
        if n == "GLOBAL":
            return self.globals.get(args.strip(), "")
        if n == "LOCAL":
            return self.channel.variables.get(args.strip(), "")
        if n == "TIMEOUT":
            kind = args.strip().lower()[:1]
            if kind == "d":
                return f"{self.digit_timeout:.3f}"
            if kind == "r":
                return f"{self.response_timeout:.3f}"
            if kind == "a":
                if self.deadline is None:
                    return "0"
                return f"{max(self.deadline - asyncio.get_running_loop().time(), 0):.3f}"
            return ""
        if n == "CHANNEL":
            item = args.strip().lower()
            return {
                "name": ch.name,
                "uniqueid": ch.uniqueid,
                "linkedid": ch.linkedid,
                "state": STATE_DESC.get(ch.state, "Unknown"),
                "language": ch.language,
                "context": ch.context,
                "exten": ch.exten,
                "priority": str(ch.priority),
                "accountcode": ch.account_code,
            }.get(item, "")
        if n == "DEVICE_STATE":
            return ch.device_state(args.strip())
        if n == "EXTENSION_STATE":
            exten, _, context = args.strip().partition("@")
            return ch.extension_state(context or self.context, exten) or "UNKNOWN"
        if n == "DIALPLAN_EXISTS":
            parts = split_args(args)
            ctx = parts[0] if parts else ""
            ext = parts[1] if len(parts) > 1 and parts[1] else "s"
            pri = _int(parts[2], 1) if len(parts) > 2 and parts[2] else 1
            if len(parts) < 2:
                return "1" if ctx in self.dialplan.contexts else "0"
            return "1" if self.dialplan.exists(ctx, ext, pri, self.callerid) else "0"
        if (fn := FUNCTIONS.get(n)) is not None:
            return fn(self, args)
        log.warning("Function %s not registered", name)
        return None

    def func_write(self, name: str, args: str, value: str) -> None:
        n, ch = name.strip().upper(), self.channel
        if n == "CALLERID":
            what = args.strip().lower()
            if what in ("num", "number"):
                ch.caller_num = value
            elif what == "name":
                ch.caller_name = value
            elif what == "all":
                ch.caller_name, ch.caller_num = split_callerid(value)
            else:
                log.warning("CALLERID(%s): unknown field", args)
        elif n == "GLOBAL":
            self.globals[args.strip()] = value
        elif n == "LOCAL":
            var = args.strip()
            if self.stack and var not in self.stack[-1].saved:
                self.stack[-1].saved[var] = ch.variables.get(var)
            ch.variables[var] = value
        elif n == "TIMEOUT":
            kind, secs = args.strip().lower()[:1], _float(value)
            if kind == "d":
                self.digit_timeout = max(secs, 0.0)
            elif kind == "r":
                self.response_timeout = max(secs, 0.0)
            elif kind == "a":
                self.deadline = asyncio.get_running_loop().time() + secs if secs > 0 else None
            else:
                log.warning("TIMEOUT(%s): unknown timeout", args)
        else:
            log.warning("Function %s not registered (write)", name)

    # ---- waiting -------------------------------------------------------------------------------
    def waited(self) -> None:
        """An application waited on the channel: the loop cut-off counter starts again."""
        self.steps_since_wait = 0

    async def sleep(self, seconds: float | None) -> None:
        """Wait `seconds` (None: until hangup); ChannelGone when the channel goes meanwhile."""
        self.channel.check()
        if seconds is not None and seconds <= 0:
            return
        self.waited()
        try:
            await asyncio.wait_for(self.channel.gone.wait(), seconds)
        except TimeoutError:
            return
        raise ChannelGone(self.channel.name)

    async def indicate(self, cause: int, seconds: float | None) -> None:
        """Busy/Congestion (indicate_busy / indicate_congestion): a channel not answered gets the cause and state
        Busy and is hung up at once (chan_pjsip answers 486 / 503); an answered one waits `seconds` (None: until
        hangup). The caller then raises Stop."""
        ch = self.channel
        ch.check()
        if ch.state != UP:
            ch.hangup_cause = cause
            ch.set_state(BUSY)
            await ch.hangup(cause)
            return
        await self.sleep(seconds)

    # ---- the PBX loop --------------------------------------------------------------------------
    async def run(self) -> None:
        ch = self.channel
        try:
            await self._pbx()
        except ChannelGone:
            pass
        except Stop as e:
            log.log(
                logging.WARNING if e.error else logging.INFO,
                "Spawn extension (%s, %s, %d) exited non-zero on '%s': %s", self.context, self.exten,
                self.priority, ch.name, e,
            )  # fmt: skip
            if e.cause is not None:
                ch.hangup_cause = ch.hangup_cause or e.cause
        if not ch.hung_up:
            cause = ch.hangup_cause or NORMAL_CLEARING
            ch.hangup_cause = cause
            try:
                await ch.hangup(cause)
            except ChannelGone:
                pass
        await self._run_h()

    def _set(self, context: str, exten: str, priority: int) -> None:
        self.context, self.exten, self.priority = context, exten, priority

    def _deadline_passed(self) -> bool:
        return self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline

    def _absolute_timeout(self) -> None:
        """TIMEOUT(absolute) expired: to T,1 when it exists, else the call ends."""
        self.deadline = None
        if self.dialplan.exists(self.context, "T", 1, self.callerid):
            log.info("Channel '%s' absolute timeout: going to 'T'", self.channel.name)
            self._set(self.context, "T", 1)
            return
        raise Stop("absolute timeout", error=False)

    async def _step(self, found: Found) -> None:
        ch, step = self.channel, found.step
        self.jumped = False
        ch.set_position(self.context, self.exten, self.priority)
        data = self.substitute(step.args)
        ch.set_app(step.app, data)
        log.debug(
            'Executing [%s@%s:%d] %s("%s", "%s") in new stack', self.exten, self.context, self.priority, step.app,
            ch.name, data,
        )  # fmt: skip
        self.steps_since_wait += 1
        if self.steps_since_wait > self.loop_limit:
            log.warning(
                "Channel '%s': %d dialplan steps without waiting on the channel at (%s, %s, %d): dialplan loop, "
                "hanging up", ch.name, self.loop_limit, self.context, self.exten, self.priority,
            )  # fmt: skip
            raise Stop("dialplan loop")
        fn = APPLICATIONS.get(step.app.lower())
        if fn is None:
            log.warning("No application '%s' for extension (%s, %s, %d)", step.app, self.context, self.exten,
                        self.priority)  # fmt: skip
            raise Stop(f"no application {step.app}")
        await asyncio.sleep(0)
        if self.deadline is None:
            await fn(self, ch, data)
            return
        try:
            async with asyncio.timeout_at(self.deadline) as cm:
                await fn(self, ch, data)
        except TimeoutError:
            if not cm.expired():
                raise
            self.digit = ""
            self._absolute_timeout()
            self.jumped = True

    async def _pbx(self) -> None:
        ch, dp = self.channel, self.dialplan
        while True:
            self.digit = ""
            while True:
                ch.check()
                if self._deadline_passed():
                    self._absolute_timeout()
                found = dp.find(self.context, self.exten, self.priority, self.callerid)
                if found is None:
                    break
                await self._step(found)
                if self.digit:
                    break
                if not self.jumped:
                    self.priority += 1
            if self.digit:
                await self._collect(self.digit, self.digit_timeout)
                continue
            if not dp.exists(self.context, self.exten, 1, self.callerid):
                self._invalid(self.exten, start=True)
                continue
            if dp.autofallthrough:
                status = ch.variables.get("DIALSTATUS") or "UNKNOWN"
                log.info("Auto fallthrough, channel '%s' status is '%s'", ch.name, status)
                if status.upper() in ("CONGESTION", "CHANUNAVAIL"):
                    await self.indicate(CONGESTION, FALLTHROUGH_INDICATION)
                elif status.upper() == "BUSY":
                    await self.indicate(USER_BUSY, FALLTHROUGH_INDICATION)
                return
            await self._collect("", self.response_timeout)

    async def _collect(self, digits: str, wait: float) -> None:
        """collect_digits, then the choice of the next extension (exists / ``i`` / ``t``)."""
        ch, dp = self.channel, self.dialplan
        while dp.can_match_more(self.context, digits, self.callerid):
            d = await ch.get_digit(wait)
            self.waited()
            if not d:
                break
            digits += d
            wait = self.digit_timeout
        if digits and dp.exists(self.context, digits, 1, self.callerid):
            self._set(self.context, digits, 1)
        elif digits:
            self._invalid(digits)
        elif dp.exists(self.context, "t", 1, self.callerid):
            log.info("Timeout on %s", ch.name)
            self._set(self.context, "t", 1)
        else:
            log.warning("Timeout, but no rule 't' in context '%s'", self.context)
            raise Stop("response timeout")

    def _invalid(self, exten: str, *, start: bool = False) -> None:
        if self.dialplan.exists(self.context, "i", 1, self.callerid):
            log.info("Invalid extension '%s' in context '%s' on %s", exten, self.context, self.channel.name)
            self.channel.variables["INVALID_EXTEN"] = exten
            self._set(self.context, "i", 1)
            return
        if start:
            log.warning(
                "Channel '%s' sent to invalid extension but no invalid handler: context,exten,priority=%s,%s,%d",
                self.channel.name, self.context, exten, self.priority,
            )  # fmt: skip
        else:
            log.warning("Invalid extension '%s', but no rule 'i' in context '%s'", exten, self.context)
        raise Stop("invalid extension", UNALLOCATED)

    async def _run_h(self) -> None:
        dp = self.dialplan
        if not dp.exists(self.context, "h", 1, self.callerid):
            return
        self.in_h = True
        self._set(self.context, "h", 1)
        self.deadline = None
        while True:
            found = dp.find(self.context, self.exten, self.priority, self.callerid)
            if found is None:
                return
            try:
                await self._step(found)
            except (Stop, ChannelGone):
                return
            self.digit = ""
            if not self.jumped:
                self.priority += 1


def split_callerid(value: str) -> tuple[str, str]:
    """ast_callerid_split: ``"Name" <num>`` / ``Name <num>`` / ``<num>`` / a number / a name."""
    m = re.fullmatch(r'\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*', value)
    if m:
        return (m.group(1) if m.group(1) is not None else m.group(2) or "").strip(), m.group(3).strip()
    v = value.strip().strip('"')
    if re.fullmatch(r"[0-9*#+\-() ]+", v):
        return "", v
    return v, ""


async def run(
    channel: Channel,
    dialplan: Dialplan,
    context: str,
    exten: str,
    priority: int = 1,
    *,
    globals_: dict[str, str] | None = None,
    loop_limit: int = LOOP_LIMIT,
) -> Runner:
    """Run the dialplan for one call until it ends (module docstring); returns the Runner (for inspection)."""
    runner = Runner(channel, dialplan, context, exten, priority, globals_=globals_, loop_limit=loop_limit)
    await runner.run()
    return runner


# ==== applications ===============================================================================


@application("NoOp")
async def app_noop(runner: Runner, channel: Channel, data: str) -> None:
    """NoOp(text): nothing (the text was substituted, which is its use)."""


@application("Verbose")
async def app_verbose(runner: Runner, channel: Channel, data: str) -> None:
    """Verbose([level,]message): logged at info."""
    parts = split_args(data, ",", 2)
    message = parts[-1] if parts else ""
    log.info("%s", message)


@application("Log")
async def app_log(runner: Runner, channel: Channel, data: str) -> None:
    """Log(level,message)."""
    level, message = _args(data, 2)
    log.log(getattr(logging, level.strip().upper(), logging.INFO) if level.strip() else logging.INFO, "%s", message)


@application("Answer")
async def app_answer(runner: Runner, channel: Channel, data: str) -> None:
    """Answer([delay ms]): 200 OK, then wait `delay` milliseconds."""
    channel.check()
    if channel.state != UP:
        await channel.answer()
    delay = _int(_args(data, 1)[0])
    if delay > 0:
        await runner.sleep(delay / 1000)


@application("Progress")
async def app_progress(runner: Runner, channel: Channel, data: str) -> None:
    """Progress(): 183 with SDP (early media)."""
    channel.check()
    await channel.progress()


@application("Ringing")
async def app_ringing(runner: Runner, channel: Channel, data: str) -> None:
    """Ringing(): 180."""
    channel.check()
    await channel.ringing()


@application("Hangup")
async def app_hangup(runner: Runner, channel: Channel, data: str) -> None:
    """Hangup([cause]): a number or an ast_str2cause name; none or invalid: the channel's cause, else 16."""
    cause = 0
    text = data.strip()
    if text:
        cause = CAUSE_NAMES.get(text.upper(), 0) or _int(text)
        if cause <= 0:
            log.warning('Invalid cause given to Hangup(): "%s"', text)
            cause = 0
    if cause <= 0:
        cause = channel.hangup_cause or NORMAL_CLEARING
    channel.hangup_cause = cause
    raise Stop("Hangup", cause, error=False)


async def _busy_like(runner: Runner, channel: Channel, data: str, cause: int) -> None:
    arg = _args(data, 1)[0].strip()
    seconds = _float(arg, -1.0) if arg else -1.0
    await runner.indicate(cause, seconds if seconds >= 0 else None)
    raise Stop("busy" if cause == USER_BUSY else "congestion", error=False)


@application("Busy")
async def app_busy(runner: Runner, channel: Channel, data: str) -> None:
    """Busy([timeout]): busy (cause 17, state Busy) when not answered; then wait timeout (none: until hangup)
    and end the call."""
    await _busy_like(runner, channel, data, USER_BUSY)


@application("Congestion")
async def app_congestion(runner: Runner, channel: Channel, data: str) -> None:
    """Congestion([timeout]): as Busy with cause 34."""
    await _busy_like(runner, channel, data, CONGESTION)


@application("Wait")
async def app_wait(runner: Runner, channel: Channel, data: str) -> None:
    """Wait(seconds): fractions allowed."""
    await runner.sleep(_float(data))


@application("Set")
async def app_set(runner: Runner, channel: Channel, data: str) -> None:
    """Set(name=value): the value is everything after the first '=' (not split on commas)."""
    if not data:
        log.warning("Set requires one variable name/value pair.")
        return
    name, eq, value = data.partition("=")
    if not eq:
        log.warning("Set requires an '=' to be a valid assignment.")
        return
    runner.set_var(name, value)


@application("Goto")
async def app_goto(runner: Runner, channel: Channel, data: str) -> None:
    """Goto([[context,]exten,]priority|label)."""
    if not data:
        raise Stop("Goto requires an argument ([[context,]extension,]priority)")
    runner.goto(*runner.resolve(data))


@application("GotoIf")
async def app_gotoif(runner: Runner, channel: Channel, data: str) -> None:
    """GotoIf(condition?[label1][:label2]): pbx_checkcondition; an empty branch continues."""
    if not data:
        log.warning("GotoIf requires an argument (condition ? label1 : label2)")
        return
    cond, _, rest = data.partition("?")
    branch1, _, branch2 = rest.partition(":")
    branch = branch1 if is_true(cond) else branch2
    if branch:
        runner.goto(*runner.resolve(branch))


@application("Gosub")
async def app_gosub(runner: Runner, channel: Channel, data: str) -> None:
    """Gosub([[context,]exten,]priority[(arg1[,...])]): ARG1..n and ARGC are frame-local (the caller's come back
    on Return; ARGs of the caller beyond n read as ""); the destination must exist."""
    if not data:
        raise Stop("Gosub requires an argument: Gosub([[context,]exten,]priority[(arg1[,...][,argN])])")
    label, paren, rest = data.partition("(")
    args: list[str] = []
    if paren:
        close = rest.rfind(")")
        args = split_args(rest[:close] if close != -1 else rest, raw=True)
    ret = Frame(runner.context, runner.exten, runner.priority + 1, argc=len(args))
    context, exten, priority = runner.resolve(label)
    if not runner.dialplan.exists(context, exten, priority, runner.callerid):
        raise Stop(
            f"Attempt to reach a non-existent destination for Gosub: (Context:{context}, Extension:{exten}, "
            f"Priority:{priority})"
        )
    previous = runner.stack[-1].argc if runner.stack else 0
    variables = channel.variables
    names = ["ARGC"] + [f"ARG{i}" for i in range(1, max(len(args), previous) + 1)]
    for name in names:
        ret.saved[name] = variables.get(name)
    variables["ARGC"] = str(len(args))
    for i in range(1, max(len(args), previous) + 1):
        variables[f"ARG{i}"] = args[i - 1] if i <= len(args) else ""
    runner.stack.append(ret)
    runner.goto(context, exten, priority)


@application("Return")
async def app_return(runner: Runner, channel: Channel, data: str) -> None:
    """Return([value]): GOSUB_RETVAL=value, frame variables restored, back after the Gosub."""
    if not runner.stack:
        raise Stop("Return without Gosub: stack is empty")
    frame = runner.stack.pop()
    for name, old in frame.saved.items():
        if old is None:
            channel.variables.pop(name, None)
        else:
            channel.variables[name] = old
    channel.variables["GOSUB_RETVAL"] = data
    runner.goto(frame.context, frame.exten, frame.priority)


@application("Playback")
async def app_playback(runner: Runner, channel: Channel, data: str) -> None:
    """Playback(file[&file...][,options]): options (substrings) ``skip`` (not answered: play nothing, SUCCESS),
    ``noanswer`` (play without answering); otherwise a channel not answered is answered. Not interruptible. A
    missing file is skipped and makes PLAYBACKSTATUS=FAILED, else SUCCESS (set also when the caller hangs up)."""
    files, options = _args(data, 2)
    if not files:
        log.warning("Playback requires an argument (filename)")
        raise Stop("Playback without a file")
    opts = options.lower()
    channel.check()
    failed = False
    try:
        if channel.state != UP:
            if "skip" in opts:
                return
            if "noanswer" not in opts:
                await channel.answer()
        for name in files.split("&"):
            if not name:
                continue
            if not channel.sound_exists(name):
                log.warning("Playback failed on %s for %s", channel.name, name)
                failed = True
                continue
            runner.waited()
            await channel.play([name])
    finally:
        channel.variables["PLAYBACKSTATUS"] = "FAILED" if failed else "SUCCESS"


@application("Background")
async def app_background(runner: Runner, channel: Channel, data: str) -> None:
    """Background(file[&file...][,options[,langoverride[,context]]]): plays, interruptible by any digit, then
    continues (no wait). Options: ``s`` skip when not answered, ``n`` no answer, ``m`` only a digit that is a
    one-digit extension of the context interrupts (simplified from ast_waitstream_exten). A digit that is an
    extension of `context` (default the current one) that cannot match more goes there at once (Asterisk's
    single-digit workaround); any other digit starts digit collection in the current context."""
    files, options, _lang, context = _args(data, 4)
    opts = parse_options(options)
    channel.check()
    if channel.state != UP:
        if "s" in opts:
            return
        if "n" not in opts:
            await channel.answer()
    target = context or runner.context
    allowed = ANY_DIGIT
    if "m" in opts:
        allowed = "".join(d for d in ANY_DIGIT if runner.dialplan.exists(target, d, 1, runner.callerid))
    names = [f for f in files.split("&") if f]
    runner.waited()
    digit = await channel.play(names, digits=allowed) if names else ""
    if not digit:
        return
    dp = runner.dialplan
    if dp.can_match(target, digit, runner.callerid) and not dp.can_match_more(target, digit, runner.callerid):
        runner.goto(target, digit, 1)
        return
    runner.digit = digit


@application("WaitExten")
async def app_waitexten(runner: Runner, channel: Channel, data: str) -> None:
    """WaitExten([seconds[,options]]): wait for the first digit (default TIMEOUT(response)); option
    ``m([class])`` plays hold music meanwhile. No digit: next priority if it exists, else ``t``, else end."""
    seconds, options = _args(data, 2)
    wait = _float(seconds)
    if wait <= 0:
        wait = runner.response_timeout
    opts = parse_options(options)
    channel.check()
    runner.waited()
    moh = None
    if "m" in opts:
        moh = asyncio.ensure_future(channel.music_on_hold(opts["m"] or "default"))
    try:
        digit = await channel.get_digit(wait)
    finally:
        if moh is not None:
            moh.cancel()
            await asyncio.gather(moh, return_exceptions=True)
    runner.waited()
    if digit:
        runner.digit = digit
        return
    channel.check()
    dp = runner.dialplan
    if dp.exists(runner.context, runner.exten, runner.priority + 1, runner.callerid):
        log.info("Timeout on %s, continuing...", channel.name)
    elif dp.exists(runner.context, "t", 1, runner.callerid):
        log.info("Timeout on %s, going to 't'", channel.name)
        runner.goto(runner.context, "t", 1)
    else:
        log.warning("Timeout but no rule 't' in context '%s'", runner.context)
        raise Stop("WaitExten timeout without 't'")


async def _getdata(runner: Runner, channel: Channel, files: list[str], maxlen: int, timeout: float) -> tuple[str, str]:
    """ast_app_getdata + ast_readstring: prompt (interruptible), first digit within TIMEOUT(response), the next
    ones within TIMEOUT(digit) (both `timeout` when > 0); '#' ends. Returns (digits, READSTATUS)."""
    first_wait = timeout if timeout > 0 else runner.response_timeout
    next_wait = timeout if timeout > 0 else runner.digit_timeout
    runner.waited()
    d = await channel.play(files, digits=ANY_DIGIT) if files else ""
    buf = ""
    while True:
        if not d:
            d = await channel.get_digit(first_wait if not buf else next_wait)
            runner.waited()
        if not d:
            return buf, "TIMEOUT"
        if d == "#":
            return buf, "OK"
        buf += d
        if len(buf) >= maxlen:
            return buf, "OK"
        d = ""


@application("Read")
async def app_read(runner: Runner, channel: Channel, data: str) -> None:
    """Read(var[,file[&file...][,maxdigits[,options[,attempts[,timeout]]]]]): maxdigits 1..255 (else 255, '#'
    ends); options ``s`` (not answered: var "", READSTATUS SKIPPED), ``n`` (read without answering), ``i``
    (accepted; the prompt is played as a file); attempts (default 1) repeat while nothing was entered; READSTATUS
    OK, TIMEOUT (also with some digits: they are kept), HANGUP, ERROR."""
    var, filename, maxdigits, options, attempts, timeout = _args(data, 6)
    if not var:
        log.warning("Read requires an argument (variable)")
        channel.variables["READSTATUS"] = "ERROR"
        return
    maxlen = _int(maxdigits)
    if not 0 < maxlen <= 255:
        maxlen = 255
    tries = _int(attempts, 1)
    if tries <= 0:
        tries = 1
    to = _float(timeout)
    opts = parse_options(options)
    channel.check()
    if channel.state != UP:
        if "s" in opts:
            runner.set_var(var, "")
            channel.variables["READSTATUS"] = "SKIPPED"
            return
        if "n" not in opts:
            await channel.answer()
    files = [f for f in filename.split("&") if f]
    status = "ERROR"
    try:
        while tries:
            value, status = await _getdata(runner, channel, files, maxlen, to)
            runner.set_var(var, value)
            if value:
                break
            tries -= 1
    except ChannelGone:
        channel.variables["READSTATUS"] = "HANGUP"
        raise
    channel.variables["READSTATUS"] = status


_SAY = {"*": "digits/star", "#": "digits/pound", "-": "letters/dash"}


@application("SayDigits")
async def app_saydigits(runner: Runner, channel: Channel, data: str) -> None:
    """SayDigits(digits): ``digits/N`` per digit (``digits/star``, ``digits/pound``, ``letters/dash``,
    ``letters/x`` for letters); other characters are skipped. Not interruptible."""
    names = []
    for c in data:
        if c.isdigit():
            names.append(f"digits/{c}")
        elif c in _SAY:
            names.append(_SAY[c])
        elif c.isalpha():
            names.append(f"letters/{c.lower()}")
    channel.check()
    runner.waited()
    if names:
        await channel.play(names)


@application("Echo")
async def app_echo(runner: Runner, channel: Channel, data: str) -> None:
    """Echo(): the caller hears itself until '#'; then the dialplan continues."""
    channel.check()
    runner.waited()
    await channel.echo()
    runner.waited()


@application("MusicOnHold")
async def app_moh(runner: Runner, channel: Channel, data: str) -> None:
    """MusicOnHold([class[,duration]]): duration in seconds, none or 0: until hangup."""
    klass, duration = _args(data, 2)
    secs = _float(duration)
    channel.check()
    runner.waited()
    await channel.music_on_hold(klass or "default", secs if secs > 0 else None)
    runner.waited()
    channel.check()


@application("Dial")
async def app_dial(runner: Runner, channel: Channel, data: str) -> None:
    """Dial(Tech/res[&Tech/res...][,timeout[,options[,URL]]]) -> `Channel.dial` (options passed as written, e.g.
    ``tTr``, ``m(class)``; timeout in seconds, none / invalid / <= 0: no limit). DIALSTATUS is set. Continuation
    (app_dial): a status other than ANSWER continues at the next priority; after an answered call the caller's
    dialplan ends unless option ``g`` (and the caller is still there)."""
    peers, timeout, options, _url = _args(data, 4)
    if not peers:
        raise Stop("Dial requires an argument (technology/resource)")
    targets = [p for p in peers.split("&") if p]
    secs = _float(timeout) if timeout.strip() else 0.0
    if timeout.strip() and secs <= 0:
        log.warning("Invalid timeout specified: '%s'. Setting timeout to infinite", timeout)
    opts = parse_options(options)
    channel.check()
    runner.waited()
    status = await channel.dial(targets, secs if secs > 0 else None, options)
    runner.waited()
    channel.variables["DIALSTATUS"] = status
    channel.check()
    if status.upper() == "ANSWER" and "g" not in opts:
        raise Stop("Dial: answered call ended", error=False)


_RECORD_STATUS = {"dtmf": "DTMF", "silence": "SILENCE", "timeout": "TIMEOUT", "hangup": "HANGUP"}


@application("Record")
async def app_record(runner: Runner, channel: Channel, data: str) -> None:
    """Record(file.format[,silence[,maxduration[,options]]]): options ``s`` (skip when not answered: SKIP),
    ``n`` (no answer), ``q`` (no beep), ``t`` ('*' ends), ``x`` (no terminator), ``y`` (any digit ends), ``a`` and
    ``k`` accepted. Sets RECORDED_FILE (name without format) and RECORD_STATUS (DTMF, SILENCE, TIMEOUT, HANGUP,
    SKIP, ERROR); a hangup ends the call after the status is set."""
    filename, silence, maxduration, options = _args(data, 4)
    base, dot, fmt = filename.rpartition(".")
    if not dot or not base or not fmt:
        log.warning("No extension specified to filename!")
        channel.variables["RECORD_STATUS"] = "ERROR"
        raise Stop("Record without a format")
    opts = parse_options(options)
    channel.check()
    if channel.state != UP:
        if "s" in opts:
            channel.variables["RECORD_STATUS"] = "SKIP"
            return
        if "n" not in opts:
            await channel.answer()
    terminator = "#"
    if "t" in opts:
        terminator = "*"
    if "y" in opts:
        terminator = ANY_DIGIT
    if "x" in opts:
        terminator = ""
    runner.waited()
    if "q" not in opts:
        await channel.play(["beep"])
    channel.variables["RECORDED_FILE"] = base
    try:
        reason = await channel.record(
            filename, silence=max(_int(silence), 0), max_seconds=max(_int(maxduration), 0), terminator=terminator
        )
    except ChannelGone:
        reason = "hangup"
    runner.waited()
    channel.variables["RECORD_STATUS"] = _RECORD_STATUS.get(reason, "ERROR")
    if reason == "hangup":
        raise ChannelGone(channel.name)
