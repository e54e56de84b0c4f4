"""Channels as Asterisk shows them: names, ids, states, caller ID, the dialplan position, hangup
causes; and the operations dialplan applications use (the channel API).

A `Channel` is one leg of a call (one SIP dialog, once the call engine made it). Applications
(engine/dialplan_exec.py) are small async functions over this API: they never touch SIP or RTP.
The call engine's SIP channel (engine/calls.py) implements the media and signalling operations;
this base class holds the state every channel has, and raises `ChannelGone` from every operation
once the channel is hung up, so an application unwinds when its caller goes away.

Ids as Asterisk's: `uniqueid` and `linkedid` are "<epoch seconds>.<sequence>" (the sequence counts
channels made by this process); the name is "<tech>/<resource>-<8 hex digits>".
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from switchboard import events

# ast_state2str
DOWN, RSRVD, OFFHOOK, DIALING, RING, RINGING, UP, BUSY, DIALING_OFFHOOK, PRERING = range(10)
STATE_DESC = {
    DOWN: "Down",
    RSRVD: "Rsrvd",
    OFFHOOK: "OffHook",
    DIALING: "Dialing",
    RING: "Ring",
    RINGING: "Ringing",
    UP: "Up",
    BUSY: "Busy",
    DIALING_OFFHOOK: "Dialing Offhook",
    PRERING: "Pre-ring",
}

# Q.850 causes (the ones a PBX gives), with Asterisk's descriptions (ast_cause2str)
CAUSES = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    22: "Number changed",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    44: "Requested channel not available",
    58: "Bearer capability not available",
    65: "Bearer capability not implemented",
    88: "Incompatible destination",
    102: "Recovery on timer expiry",
    111: "Protocol error, unspecified",
    127: "Interworking, unspecified",
}
NORMAL_CLEARING, USER_BUSY, NO_USER_RESPONSE, NO_ANSWER = 16, 17, 18, 19

_seq = itertools.count()


class ChannelGone(Exception):
    """The channel was hung up: whatever waited on it stops."""


def new_uniqueid() -> tuple[str, int]:
    n = next(_seq)
    return f"{int(time.time())}.{n}", n


def cause_text(cause: int | None) -> str | None:
    if cause is None:
        return None
    return CAUSES.get(cause, "Unknown")


class Channel:
    """One leg of a call. Attributes are read by the jade views and the CDR writer."""

    tech = "PJSIP"

    def __init__(
        self,
        resource: str,
        *,
        context: str = "default",
        exten: str = "s",
        caller_num: str = "",
        caller_name: str = "",
        linkedid: str | None = None,
        language: str = "en",
        account_code: str = "",
    ):
        self.uniqueid, seq = new_uniqueid()
        self.linkedid = linkedid or self.uniqueid
        self.resource = resource  # the endpoint (or trunk) name
        self.name = f"{self.tech}/{resource}-{seq:08x}"
        self.state = DOWN
        self.context, self.exten, self.priority = context, exten, 1
        self.caller_num, self.caller_name = caller_num, caller_name
        self.connected_num, self.connected_name = "", ""
        self.language, self.account_code = language, account_code
        self.application, self.appdata = "", ""
        self.variables: dict[str, str] = {}
        self.hangup_cause: int | None = None
        self.created = time.time()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.updated = self.created
        self.peer: Channel | None = None  # the channel bridged with this one
        self.bridge_id: str | None = None
        self.on_hold = False  # the far end put this leg on hold (device state ONHOLD)
        self.gone = asyncio.Event()  # set once hung up
        self.live = False  # in the PBX's live channels (Pbx.add_channel): its changes are published
        self.digits: asyncio.Queue[str] = asyncio.Queue()  # DTMF received (RFC 4733 or SIP INFO)
        # CDR: the destination as the dialplan saw it, the last application run, the dialled channel
        self.cdr: dict[str, Any] = {"dst": exten, "dcontext": context, "lastapp": "", "lastdata": "", "dstchannel": ""}

    # ---- state ---------------------------------------------------------------------------------
    @property
    def hung_up(self) -> bool:
        return self.gone.is_set()

    def set_state(self, state: int) -> None:
        changed = state != self.state
        self.state = state
        self.updated = time.time()
        if state == UP and self.answered_at is None:
            self.answered_at = self.updated
        if changed and self.live:
            events.publish("channel.state", self.view())

    def check(self) -> None:
        """Raise ChannelGone once the channel is hung up (applications call it between steps)."""
        if self.gone.is_set():
            raise ChannelGone(self.name)

    def mark_gone(self, cause: int) -> None:
        """The leg ended (either side): record the cause and wake whatever waits on it."""
        if self.gone.is_set():
            return
        if self.hangup_cause is None:
            self.hangup_cause = cause
        self.ended_at = time.time()
        self.updated = self.ended_at
        self.gone.set()

    def set_position(self, context: str, exten: str, priority: int) -> None:
        self.context, self.exten, self.priority = context, exten, priority
        self.updated = time.time()

    def set_app(self, app: str, data: str) -> None:
        self.application, self.appdata = app, data
        self.cdr["lastapp"], self.cdr["lastdata"] = app, data
        self.updated = time.time()

    def duration(self) -> int:
        return int((self.ended_at or time.time()) - self.created)

    def view(self) -> dict:
        """jade's channel object (GET /admin/core/channels[/{id}])."""
        from datetime import UTC, datetime

        dt = datetime.fromtimestamp(self.updated, UTC)
        return {
            "account_code": self.account_code,
            "application": self.application,
            "application_data": self.appdata,
            "bridge_id": self.bridge_id,
            "caller_id_name": self.caller_name or "<unknown>",
            "caller_id_num": self.caller_num or "<unknown>",
            "channel": self.name,
            "channel_state": self.state,
            "channel_state_desc": STATE_DESC.get(self.state, "Unknown"),
            "connected_line_name": self.connected_name or "<unknown>",
            "connected_line_num": self.connected_num or "<unknown>",
            "context": self.context,
            "duration": self.duration(),
            "exten": self.exten,
            "hangup_cause": self.hangup_cause,
            "hangup_cause_desc": cause_text(self.hangup_cause),
            "language": self.language,
            "linked_id": self.linkedid,
            "priority": str(self.priority),
            "tm_update": dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(self.updated * 1e9) % 1_000_000_000:09d}Z",
            "unique_id": self.uniqueid,
            "variables": dict(self.variables),
        }

    def sound_exists(self, name: str) -> bool:
        """Whether a sound file (Asterisk name) exists in the channel's language. Playback uses it to set
        PLAYBACKSTATUS=FAILED for a missing file, as Asterisk does; the SIP channel overrides it."""
        return True

    def device_state(self, device: str) -> str:
        """DEVICE_STATE(device) of the dialplan (the SIP channel asks the engine)."""
        return "UNKNOWN"

    def extension_state(self, context: str, exten: str) -> str:
        """EXTENSION_STATE(exten@context): the state of the extension's hint ("" without one)."""
        return ""

    # ---- the channel API (implemented by the SIP channel) ------------------------------------
    # Every operation raises ChannelGone when the channel is (or becomes) hung up.
    async def answer(self) -> None:
        """200 OK with SDP (no-op when already up)."""
        raise NotImplementedError

    async def ringing(self) -> None:
        """180 Ringing (state Ringing)."""
        raise NotImplementedError

    async def progress(self) -> None:
        """183 Session Progress with SDP (early media)."""
        raise NotImplementedError

    async def hangup(self, cause: int = NORMAL_CLEARING) -> None:
        """End this leg: BYE when answered, a final error response (from the cause) before."""
        raise NotImplementedError

    async def play(self, names: list[str], *, digits: str = "") -> str:
        """Play sound files (Asterisk names, e.g. "hello-world", "digits/1") one after the other;
        returns "" when played out, or the digit (one of `digits`) that interrupted playback (that
        digit is consumed). A file that does not exist is skipped with a warning (as Asterisk)."""
        raise NotImplementedError

    async def get_digit(self, timeout: float | None) -> str:
        """The next DTMF digit received (buffered ones first), or "" after `timeout` seconds."""
        raise NotImplementedError

    async def music_on_hold(self, klass: str = "default", seconds: float | None = None) -> None:
        """Hold music of `klass` until `seconds` passed (None: until hung up)."""
        raise NotImplementedError

    async def echo(self) -> None:
        """Send back what the caller sends until '#' or hangup."""
        raise NotImplementedError

    async def record(self, path: str, *, silence: float = 0, max_seconds: float = 0, terminator: str = "#") -> str:
        """Record what the caller sends into `path` (format by its extension: wav, ulaw, alaw, sln)
        until `terminator`, `silence` seconds of silence, `max_seconds` or hangup. Returns the
        reason ("dtmf", "silence", "timeout", "hangup")."""
        raise NotImplementedError

    async def send_digits(self, digits: str) -> None:
        """Send DTMF (RFC 4733) to the peer of this leg."""
        raise NotImplementedError

    async def dial(self, targets: list[str], timeout: float | None, options: str) -> str:
        """Asterisk's Dial: call `targets` ("PJSIP/ep", "PJSIP/number@trunk") in parallel, the first
        to answer wins and is bridged with this channel until one side hangs up. Returns
        DIALSTATUS (ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL) and sets DIALSTATUS,
        DIALEDPEERNAME, DIALEDPEERNUMBER, ANSWEREDTIME, DIALEDTIME in `variables`."""
        raise NotImplementedError
