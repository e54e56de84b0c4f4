"""The live state of app_queue (engine/apps/queue.py): who waits in which queue, the members (static
from queues.conf, dynamic from AddQueueMember) with their counters, and each queue's statistics.
`Pbx.queue_live` holds one `QueueLive`; the jade views (`Pbx.queues`, `Pbx.queue_members`,
`Pbx.queue_entry_views`) read it. No I/O: the Queue application changes it, the views render it.

Configuration (queues.conf) is read afresh by each new caller (`queue_conf`): a reload applies to
the next caller; a caller already waiting keeps the settings it joined with (its `QueueConf`), while
the member list (static + dynamic) is looked up again at each ring attempt, as app_queue does.

Member status is Asterisk's device state of the member's state_interface (`Pbx.device_state`); an
interface whose prefix is in `MEMBER_STATES` (e.g. `Local/<id>@agents`, agents as queue members)
takes its state from that function instead (the agents module registers it, see apps/queue.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from switchboard.asterisk.conf import option_value

# interface prefix -> fn(interface) -> device state name ("NOT_INUSE", "INUSE", ...)
MEMBER_STATES: dict[str, Callable[[str], str]] = {}

EMPTY_CONDITIONS = ("penalty", "paused", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup")


def _yes(v: str | None, default: bool = False) -> bool:
    if v is None or v == "":
        return default
    return v.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _no(v: str) -> bool:
    return v.strip().lower() in ("no", "false", "n", "f", "0", "off")


def _num(v: str | None, default: int = 0) -> int:
    try:
        return int(str(v).strip()) if v not in (None, "") else default
    except ValueError:
        return default


def parse_empty(value: str, *, joinempty: bool) -> frozenset[str]:
    """app_queue's parse_empty_options: a list of conditions; yes/no/loose/strict as Asterisk
    (joinempty=no and leavewhenempty=yes both mean penalty,invalid,paused)."""
    out: set[str] = set()
    for opt in (o.strip().lower() for o in (value or "").split(",") if o.strip()):
        if opt in EMPTY_CONDITIONS:
            out.add(opt)
        elif opt == "loose":
            out = {"penalty", "invalid"}
        elif opt == "strict":
            out = {"penalty", "invalid", "paused", "unavailable"}
        elif (_no(opt) and joinempty) or (_yes(opt) and not joinempty):
            out = {"penalty", "invalid", "paused"}
        elif (_no(opt) and not joinempty) or (_yes(opt) and joinempty):
            out = set()
    return frozenset(out)


@dataclass
class MemberSpec:
    """A member as configured: `member => interface[,penalty[,name[,state_interface[,ringinuse[,wrapuptime]]]]]`
    or added by AddQueueMember (membership "dynamic")."""

    interface: str
    penalty: int = 0
    name: str = ""
    state_interface: str = ""
    ringinuse: bool | None = None  # None: the queue's
    wrapuptime: int = 0  # 0: the queue's
    membership: str = "static"

    @property
    def display(self) -> str:
        return self.name or self.interface

    @property
    def state_if(self) -> str:
        return self.state_interface or self.interface

    @classmethod
    def parse(cls, raw: str) -> MemberSpec:
        parts = [p.strip() for p in raw.split(",")] + [""] * 6
        iface, penalty, name, state_if, ringinuse, wrapup = parts[:6]
        return cls(
            iface,
            _num(penalty),
            name,
            state_if,
            (_yes(ringinuse) if ringinuse else None),
            _num(wrapup),
        )


@dataclass
class QueueConf:
    """One queue's settings from queues.conf (defaults as app_queue's init_queue)."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15  # seconds each member rings
    retry: int = 5  # pause between attempts
    wrapuptime: int = 0
    maxlen: int = 0
    weight: int = 0
    servicelevel: int = 0
    joinempty: frozenset[str] = frozenset()
    leavewhenempty: frozenset[str] = frozenset()
    musicclass: str = ""
    announce_frequency: int = 0
    min_announce_frequency: int = 15
    announce_position: str = "yes"
    announce_position_limit: int = 5
    periodic_announce: list[str] = field(default_factory=lambda: ["queue-periodic-announce"])
    periodic_announce_frequency: int = 0
    ringinuse: bool = True
    autopause: str = "no"
    autofill: bool = True
    penaltymemberslimit: int = 0
    timeoutpriority: str = "app"
    members: list[MemberSpec] = field(default_factory=list)

    @classmethod
    def from_options(cls, name: str, opts: dict[str, str], members: list[str]) -> QueueConf:
        g = opts.get
        return cls(
            name=name,
            strategy=(g("strategy") or "ringall").lower().replace("roundrobin", "rrmemory"),
            timeout=_num(g("timeout"), 15),
            retry=_num(g("retry"), 5) if _num(g("retry"), 5) > 0 else 5,
            wrapuptime=_num(g("wrapuptime")),
            maxlen=_num(g("maxlen")),
            weight=_num(g("weight")),
            servicelevel=_num(g("servicelevel")),
            joinempty=parse_empty(g("joinempty") or "", joinempty=True),
            leavewhenempty=parse_empty(g("leavewhenempty") or "", joinempty=False),
            musicclass=g("musicclass") or g("music") or "",
            announce_frequency=_num(g("announce-frequency")),
            min_announce_frequency=_num(g("min-announce-frequency"), 15),
            announce_position=(g("announce-position") or "yes").lower(),
            announce_position_limit=_num(g("announce-position-limit"), 5),
            periodic_announce=[
                p.strip() for p in (g("periodic-announce") or "queue-periodic-announce").split(",") if p.strip()
            ],
            periodic_announce_frequency=_num(g("periodic-announce-frequency")),
            ringinuse=_yes(g("ringinuse"), True),
            autopause=(g("autopause") or "no").lower(),
            autofill=_yes(g("autofill"), True),
            penaltymemberslimit=_num(g("penaltymemberslimit")),
            timeoutpriority=(g("timeoutpriority") or "app").lower(),
            members=[MemberSpec.parse(m) for m in members],
        )


def queue_conf(cf: Any, name: str) -> QueueConf | None:
    """The QueueConf of `name` in a loaded queues.conf (None: no such queue)."""
    if cf is None or name == "general" or name not in cf.names():
        return None
    sec = cf.get(name)
    if sec is not None and getattr(sec, "template", False):
        return None
    opts = {k.lower(): option_value(v) for k, v in cf.resolved(name).items()}
    return QueueConf.from_options(name, opts, [option_value(m) for m in cf.multi(name, "member")])


@dataclass
class MemberLive:
    """A member's counters in one queue."""

    paused: bool = False
    paused_reason: str = ""
    last_pause: int = 0
    calls: int = 0
    lastcall: float = 0.0
    in_call: bool = False
    updated: float = field(default_factory=time.time)


@dataclass
class Entry:
    """A caller waiting in a queue."""

    queue: str
    channel: Any  # engine.channel.Channel
    prio: int = 0
    joined: float = field(default_factory=time.time)
    pending: bool = False  # members are being rung for it
    updated: float = field(default_factory=time.time)


@dataclass
class QueueStats:
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    holdtime: int = 0
    talktime: int = 0
    rrpos: int = 0
    updated: float = field(default_factory=time.time)


class QueueLive:
    """Entries, dynamic members, member counters and statistics of every queue."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Entry]] = {}  # queue -> callers in order
        self.dynamic: dict[str, dict[str, MemberSpec]] = {}  # queue -> interface -> spec
        self.members: dict[tuple[str, str], MemberLive] = {}  # (queue, interface) -> counters
        self.stats: dict[str, QueueStats] = {}
        self.reserved: dict[str, int] = {}  # interface -> ring attempts in progress (any queue)

    # ---- entries -----------------------------------------------------------------------------
    def join(self, entry: Entry) -> int:
        """Add a caller (after callers of the same or a higher QUEUE_PRIO); returns its position."""
        lst = self.entries.setdefault(entry.queue, [])
        i = len(lst)
        while i > 0 and lst[i - 1].prio < entry.prio:
            i -= 1
        lst.insert(i, entry)
        return i + 1

    def leave(self, entry: Entry) -> None:
        lst = self.entries.get(entry.queue, [])
        if entry in lst:
            lst.remove(entry)

    def position(self, entry: Entry) -> int:
        lst = self.entries.get(entry.queue, [])
        return lst.index(entry) + 1 if entry in lst else 0

    def waiting(self, queue: str) -> list[Entry]:
        return list(self.entries.get(queue, []))

    def find_entry(self, uniqueid: str) -> Entry | None:
        for lst in self.entries.values():
            for e in lst:
                if e.channel.uniqueid == uniqueid:
                    return e
        return None

    # ---- members -------------------------------------------------------------------------------
    def member(self, queue: str, interface: str) -> MemberLive:
        key = (queue, interface)
        m = self.members.get(key)
        if m is None:
            m = self.members[key] = MemberLive()
        return m

    def stat(self, queue: str) -> QueueStats:
        s = self.stats.get(queue)
        if s is None:
            s = self.stats[queue] = QueueStats()
        return s

    def member_specs(self, conf: QueueConf) -> list[MemberSpec]:
        """Static members then dynamic ones (a dynamic member of an interface configured statically is ignored)."""
        out = list(conf.members)
        seen = {m.interface.lower() for m in out}
        out += [m for m in self.dynamic.get(conf.name, {}).values() if m.interface.lower() not in seen]
        return out

    # ---- statistics (app_queue's recalc_holdtime / update_queue) ----------------------------------
    def connected(self, conf: QueueConf, holdtime: float) -> None:
        s = self.stat(conf.name)
        s.holdtime = int(((s.holdtime << 2) - s.holdtime + int(holdtime)) >> 2)
        if holdtime <= conf.servicelevel:
            s.completed_in_sl += 1
        s.updated = time.time()

    def completed(self, conf: QueueConf, interface: str, talktime: float) -> None:
        s = self.stat(conf.name)
        s.completed += 1
        s.talktime = int(((s.talktime << 2) - s.talktime + int(talktime)) >> 2)
        s.updated = time.time()
        m = self.member(conf.name, interface)
        m.calls += 1
        m.lastcall = time.time()
        m.in_call = False
        m.updated = m.lastcall

    def abandoned(self, queue: str) -> None:
        s = self.stat(queue)
        s.abandoned += 1
        s.updated = time.time()
