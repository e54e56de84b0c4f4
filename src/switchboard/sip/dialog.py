"""SIP dialogs and the INVITE user-agent core, sans I/O (RFC 3261 §12-§15, §13.3.1.4 and RFC 6026).

* `Dialog` (§12): id (Call-ID, local tag, remote tag), local/remote URI, remote target, route set,
  local CSeq (incremented for each new request but ACK/CANCEL) and the remote CSeq rule (a request
  with a lower CSeq than the last one -> 500), early (1xx with a To tag) -> confirmed (2xx) ->
  terminated (non-2xx final to the INVITE that created it, BYE, 481/408 to an in-dialog request).
  Created by `Dialog.uac(invite, response)` or `Dialog.uas(invite, response)`; `request(method)`
  builds an in-dialog request (§12.2.1.1: Request-URI and Route from the route set, loose or strict
  routing); `ack(invite)` the ACK for a 2xx (§13.2.2.4: same CSeq number, route set, a new branch);
  target refresh from the Contact of re-INVITE/UPDATE requests and of their 2xx.
* `UacInvite`: the UAC TU of one INVITE: dialogs from its responses (several early dialogs when it
  forks), an ACK for each 2xx and each retransmission of it, CANCEL only once a provisional arrived
  (§9.1: asked earlier, it is sent with the first provisional; after a final response it is moot).
* `UasInvite`: the UAS TU of one INVITE: provisional responses with a To tag (early dialog), the
  final answer (2xx: the dialog is confirmed and `Retransmit2xx` runs; non-2xx: the early dialog is
  terminated), CANCEL (487; the dialog terminated), and the ACK that stops 2xx retransmissions.
* `Retransmit2xx` (RFC 6026 §8.1, RFC 3261 §13.3.1.4): the INVITE server transaction ends when the
  2xx is sent; the TU resends it at T1, doubling to T2, until the ACK arrives or 64*T1 passed, after
  which the TU sends BYE (`Terminated("timeout")`).
* `DialogTable`: dialogs by id for the endpoint: in-dialog requests (To tag) that match no dialog get
  481, backwards CSeq 500; ACKs for 2xx stop the matching retransmission.

Actions are those of transaction.py (`Send`, `StartTimer`, `CancelTimer`, `Terminated`); nothing
here touches a socket or a clock. Messages built here carry no Via: the transport adds it.
"""

from __future__ import annotations

from switchboard.sip.headers import name_addr, tag, uri_of, uri_params
from switchboard.sip.message import Message, new_tag, response_to
from switchboard.sip.transaction import T1, T2, CancelTimer, Send, StartTimer, Terminated

EARLY = "early"
CONFIRMED = "confirmed"
TERMINATED = "terminated"
UAC = "uac"
UAS = "uas"
TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})  # (and SUBSCRIBE/NOTIFY, RFC 6665: not ours yet)
MAX_CSEQ = 2**31 - 1  # §8.1.1.5: the first CSeq must be below 2**31


class DialogError(RuntimeError):
    pass


def _contact_uri(msg: Message) -> str | None:
    value = msg.get("Contact")
    return uri_of(value) if value else None


class Dialog:
    __slots__ = (
        "call_id",
        "local_tag",
        "remote_tag",
        "local_uri",
        "remote_uri",
        "local_contact",
        "remote_target",
        "route_set",
        "local_cseq",
        "remote_cseq",
        "role",
        "state",
        "secure",
        "pending_ack",
        "last_ack",
    )

    def __init__(
        self,
        *,
        role: str,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        local_uri: str,
        remote_uri: str,
        remote_target: str,
        route_set: list[str],
        local_cseq: int,
        remote_cseq: int | None,
        state: str,
        local_contact: str | None = None,
        secure: bool = False,
    ):
        self.role, self.call_id, self.local_tag, self.remote_tag = role, call_id, local_tag, remote_tag
        self.local_uri, self.remote_uri = local_uri, remote_uri  # the From/To values without tags
        self.local_contact = local_contact
        self.remote_target, self.route_set = remote_target, route_set
        self.local_cseq, self.remote_cseq = local_cseq, remote_cseq
        self.state, self.secure = state, secure
        self.pending_ack: int | None = None  # UAS: CSeq number of a 2xx not yet ACKed
        self.last_ack: Message | None = None  # UAC: the ACK sent for the last 2xx (resent for retransmissions)

    @property
    def id(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    def __repr__(self) -> str:
        return f"<Dialog {self.role} {self.id} {self.state} local={self.local_cseq} remote={self.remote_cseq}>"

    # ---- creation (§12.1) ------------------------------------------------------------------------------
    @classmethod
    def uac(cls, invite: Message, response: Message) -> Dialog:
        """§12.1.2: from a 1xx (with a To tag: early) or a 2xx (confirmed) to our `invite`."""
        remote_tag = tag(response.get("To"))
        if not remote_tag or response.status is None or not 101 <= response.status < 300:
            raise DialogError("only a 101-299 response with a To tag creates a dialog")
        return cls(
            role=UAC,
            call_id=str(invite.get("Call-ID")).strip(),
            local_tag=tag(invite.get("From")),
            remote_tag=remote_tag,
            local_uri=_without_tag(invite.get("From")),
            remote_uri=_without_tag(invite.get("To")),
            remote_target=_contact_uri(response) or str(invite.uri),
            route_set=list(reversed(response.get_all("Record-Route"))),
            local_cseq=invite.cseq[0],
            remote_cseq=None,
            state=EARLY if response.status < 200 else CONFIRMED,
            local_contact=invite.get("Contact"),
            secure=str(invite.uri).lower().startswith("sips:"),
        )

    @classmethod
    def uas(cls, invite: Message, response: Message) -> Dialog:
        """§12.1.1: from the 1xx (early) or 2xx (confirmed) we answer `invite` with (it carries our To tag)."""
        local_tag = tag(response.get("To"))
        if not local_tag or response.status is None or not 101 <= response.status < 300:
            raise DialogError("only a 101-299 response with a To tag creates a dialog")
        return cls(
            role=UAS,
            call_id=str(invite.get("Call-ID")).strip(),
            local_tag=local_tag,
            remote_tag=tag(invite.get("From")),
            local_uri=_without_tag(invite.get("To")),
            remote_uri=_without_tag(invite.get("From")),
            remote_target=_contact_uri(invite) or str(invite.uri),
            route_set=list(invite.get_all("Record-Route")),
            local_cseq=0,
            remote_cseq=invite.cseq[0],
            state=EARLY if response.status < 200 else CONFIRMED,
            local_contact=response.get("Contact"),
            secure=str(invite.uri).lower().startswith("sips:"),
        )

    # ---- requests we send (§12.2.1) ----------------------------------------------------------------------
    def request(self, method: str, *, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Message:
        """A new in-dialog request (not ACK, not CANCEL): the local CSeq goes up by one."""
        if method in ("ACK", "CANCEL"):
            raise DialogError(f"{method} is not a new in-dialog request (use ack() / build_cancel())")
        if self.state == TERMINATED:
            raise DialogError("the dialog is terminated")
        if self.local_cseq >= 2**32 - 1:
            raise DialogError("CSeq space exhausted")
        self.local_cseq += 1
        return self._build(method, self.local_cseq, headers, body)

    def ack(self, invite_cseq: int, *, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Message:
        """The ACK for a 2xx to the INVITE with CSeq `invite_cseq` (§13.2.2.4): its own transaction-less
        request; the transport gives it a new branch."""
        ack = self._build("ACK", invite_cseq, headers, body)
        self.last_ack = ack
        return ack

    def _build(self, method: str, cseq: int, headers, body: bytes) -> Message:
        uri, routes = self.remote_target, list(self.route_set)
        if routes and "lr" not in uri_params(uri_of(routes[0])):  # strict router (§12.2.1.1)
            uri = uri_of(routes[0])
            routes = routes[1:] + [f"<{self.remote_target}>"]
        out = [("Route", r) for r in routes]
        out += [
            ("Max-Forwards", "70"),
            ("From", f"{self.local_uri};tag={self.local_tag}"),
            ("To", f"{self.remote_uri};tag={self.remote_tag}"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if self.local_contact and method in TARGET_REFRESH:
            out.append(("Contact", self.local_contact))
        out += headers or []
        return Message(method=method, uri=uri, headers=out, body=body)

    # ---- requests we receive (§12.2.2) ---------------------------------------------------------------------
    def check_request(self, req: Message) -> int:
        """0 if `req` may go on in this dialog, else the status to answer it with (481 terminated, 500
        CSeq lower than the last). Updates the remote CSeq and, for a target refresh, the remote target;
        BYE terminates the dialog."""
        if self.state == TERMINATED:
            return 481
        number = req.cseq[0]
        method = req.method
        if method == "ACK":
            return 0
        if self.remote_cseq is not None and number <= self.remote_cseq:
            # equal: a retransmission is absorbed by its transaction before it gets here, so a new request
            # with the same number is out of order as well
            return 500
        self.remote_cseq = number
        if method in TARGET_REFRESH:
            target = _contact_uri(req)
            if target:
                self.remote_target = target
        elif method == "BYE":
            self.state = TERMINATED
        return 0

    # ---- responses to our in-dialog requests (§12.2.1.2) ------------------------------------------------
    def on_response(self, req: Message, resp: Message) -> None:
        status = resp.status or 0
        if self.state == TERMINATED:
            return
        if status in (481, 408):
            self.state = TERMINATED
        elif 200 <= status < 300:
            if req.method in TARGET_REFRESH:
                target = _contact_uri(resp)
                if target:
                    self.remote_target = target
            if req.method == "BYE":
                self.state = TERMINATED
        if req.method == "BYE" and status >= 200:
            self.state = TERMINATED  # whatever the answer, the dialog is over (§15.1.1)

    def terminate(self) -> None:
        self.state = TERMINATED


def _without_tag(value: str | None) -> str:
    value = (value or "").strip()
    if not tag(value):
        return value
    na = name_addr(value)
    keep = "".join(f";{k}={v}" if v else f";{k}" for k, v in na.params.items() if k != "tag")
    display = f'"{na.display}" ' if na.display else ""
    return f"{display}<{na.uri}>{keep}"


def build_cancel(invite: Message) -> Message:
    """§9.1: CANCEL with the INVITE's Request-URI, Call-ID, To, From, CSeq number, top Via and Route."""
    headers: list[tuple[str, str]] = []
    via = invite.get("Via")
    if via:
        headers.append(("Via", via))
    headers += [("Route", r) for r in invite.get_all("Route")]
    headers += [
        ("Max-Forwards", "70"),
        ("From", str(invite.get("From"))),
        ("To", str(invite.get("To"))),
        ("Call-ID", str(invite.get("Call-ID"))),
        ("CSeq", f"{invite.cseq[0]} CANCEL"),
    ]
    return Message(method="CANCEL", uri=invite.uri, headers=headers)


# --- the UAC side of an INVITE ----------------------------------------------------------------------------


class UacInvite:
    """The UAC TU for one INVITE (initial, or a re-INVITE in `dialog`)."""

    def __init__(self, invite: Message, dialog: Dialog | None = None):
        self.invite = invite
        self.dialog = dialog  # the dialog once there is one (for a re-INVITE, the existing one)
        self.early: dict[str, Dialog] = {}  # remote tag -> early/confirmed dialog (forking)
        self.provisional = False
        self.final: int | None = None
        self.cancel_wanted = False
        self.cancel_sent = False

    def on_response(self, resp: Message) -> list:
        """A response to the INVITE (from its client transaction, or a 2xx retransmission after it ended)."""
        status = resp.status or 0
        to_tag = tag(resp.get("To"))
        actions: list = []
        if status < 200:
            if self.final is None:
                if not self.provisional:
                    self.provisional = True
                    if self.cancel_wanted and not self.cancel_sent:
                        self.cancel_sent = True
                        actions.append(Send(build_cancel(self.invite)))
                if (
                    to_tag
                    and status > 100
                    and to_tag not in self.early
                    and (self.dialog is None or self.dialog.state == EARLY)
                ):  # a (new) early dialog, §13.2.2.1
                    early = self.early[to_tag] = Dialog.uac(self.invite, resp)
                    if self.dialog is None:
                        self.dialog = early
            return actions
        if status < 300:
            if self.dialog is not None and self.dialog.remote_tag == to_tag and self.dialog.state != EARLY:
                dialog = self.dialog  # re-INVITE, or a retransmitted 2xx
                if self.final is None:
                    dialog.on_response(self.invite, resp)
            elif to_tag in self.early:
                dialog = self.early[to_tag]
                if dialog.state == EARLY:
                    dialog.state = CONFIRMED
                    target = _contact_uri(resp)
                    if target:
                        dialog.remote_target = target
                    dialog.route_set = list(reversed(resp.get_all("Record-Route")))
            else:
                dialog = self.early[to_tag] = Dialog.uac(self.invite, resp)
            if self.dialog is None or self.dialog.state == EARLY:
                self.dialog = dialog
            self.final = self.final or status
            return [Send(dialog.ack(self.invite.cseq[0]))]  # every 2xx (and retransmission) is ACKed
        if self.final is None:
            self.final = status
            for d in self.early.values():
                if d.state == EARLY:
                    d.terminate()  # §13.2.2.3: a non-2xx final ends the early dialogs
            if self.dialog is not None and self.dialog.state != EARLY and status in (481, 408):
                self.dialog.terminate()
        return actions

    def cancel(self) -> list:
        """Ask to cancel: CANCEL now if a provisional came, with the first provisional otherwise; nothing
        once a final response came (§9.1)."""
        if self.final is not None or self.cancel_sent:
            return []
        self.cancel_wanted = True
        if self.provisional:
            self.cancel_sent = True
            return [Send(build_cancel(self.invite))]
        return []


# --- the UAS side -----------------------------------------------------------------------------------------


class Retransmit2xx:
    """RFC 6026 §8.1 / RFC 3261 §13.3.1.4: the UAS TU resends its 2xx (T1 doubling up to T2) until the
    ACK or 64*T1; then `Terminated("timeout")`: the TU sends BYE."""

    __slots__ = ("response", "cseq", "t1", "t2", "interval", "done", "acked")

    def __init__(self, response: Message, *, t1: float = T1, t2: float = T2):
        self.response, self.cseq, self.t1, self.t2 = response, response.cseq[0], t1, t2
        self.interval, self.done, self.acked = t1, False, False

    def start(self, reliable: bool = False) -> list:
        actions: list = [Send(self.response)]
        if not reliable:
            actions.append(StartTimer("2xx", self.t1))
        actions.append(StartTimer("2xx-timeout", 64 * self.t1))
        return actions

    def on_timer(self, name: str) -> list:
        if self.done:
            return []
        if name == "2xx":
            self.interval = min(2 * self.interval, self.t2)
            return [Send(self.response), StartTimer("2xx", self.interval)]
        if name == "2xx-timeout":
            self.done = True
            return [CancelTimer("2xx"), Terminated("timeout")]
        return []

    def on_ack(self, ack: Message) -> list:
        if self.done or ack.cseq[0] != self.cseq:
            return []
        self.done = self.acked = True
        return [CancelTimer("2xx"), CancelTimer("2xx-timeout"), Terminated("completed")]


class UasInvite:
    """The UAS TU for one INVITE (initial: `dialog` None, or a re-INVITE in `dialog`)."""

    def __init__(
        self,
        invite: Message,
        *,
        contact: str,
        dialog: Dialog | None = None,
        to_tag: str | None = None,
        t1: float = T1,
        t2: float = T2,
    ):
        self.invite, self.contact, self.dialog = invite, contact, dialog
        self.to_tag = (dialog.local_tag if dialog else None) or to_tag or new_tag()
        self.final: int | None = None
        self.retransmit: Retransmit2xx | None = None
        self.t1, self.t2 = t1, t2

    def _response(self, status: int, headers, body: bytes) -> Message:
        extra = [("Contact", self.contact)] if status < 300 and status > 100 else []
        extra += [("Record-Route", r) for r in self.invite.get_all("Record-Route")] if status < 300 else []
        return response_to(self.invite, status, headers=extra + list(headers or []), body=body, to_tag=self.to_tag)

    def provisional(self, status: int = 180, headers=None, body: bytes = b"") -> Message:
        if self.final is not None or not 100 <= status < 200:
            raise DialogError("a provisional response goes before the final one")
        resp = self._response(status, headers, body)
        if status > 100 and self.dialog is None:
            self.dialog = Dialog.uas(self.invite, resp)  # early
        return resp

    def answer(self, status: int, headers=None, body: bytes = b"", *, reliable: bool = False) -> tuple[Message, list]:
        """The final response; for a 2xx also the actions of its retransmission (Send + timers)."""
        if self.final is not None:
            raise DialogError("already answered")
        if not 200 <= status < 700:
            raise DialogError("a final response is 200-699")
        self.final = status
        resp = self._response(status, headers, body)
        if status < 300:
            if self.dialog is None:
                self.dialog = Dialog.uas(self.invite, resp)
            elif self.dialog.state == EARLY:
                self.dialog.state = CONFIRMED
            self.dialog.pending_ack = self.invite.cseq[0]
            self.retransmit = Retransmit2xx(resp, t1=self.t1, t2=self.t2)
            return resp, self.retransmit.start(reliable)
        if self.dialog is not None and self.dialog.state == EARLY:
            self.dialog.terminate()
        return resp, [Send(resp)]

    def cancelled(self) -> Message | None:
        """A CANCEL matched the INVITE: the 487 to send, or None if it was answered already."""
        if self.final is not None:
            return None
        resp, _ = self.answer(487)
        return resp

    def on_ack(self, ack: Message) -> list:
        if self.retransmit is None:
            return []
        actions = self.retransmit.on_ack(ack)
        if actions and self.dialog is not None and self.dialog.pending_ack == ack.cseq[0]:
            self.dialog.pending_ack = None
        return actions

    def on_timer(self, name: str) -> list:
        if self.retransmit is None:
            return []
        actions = self.retransmit.on_timer(name)
        if any(isinstance(a, Terminated) for a in actions) and self.dialog is not None:
            self.dialog.pending_ack = None  # the TU now sends BYE (dialog.request("BYE"))
        return actions


# --- the table --------------------------------------------------------------------------------------------


class DialogTable:
    """Dialogs by id (Call-ID, local tag, remote tag), for the endpoint: 481 for an in-dialog request
    that matches none, 500 for a CSeq gone backwards, and the ACKs of 2xx responses."""

    def __init__(self) -> None:
        self._dialogs: dict[tuple[str, str, str], Dialog] = {}
        self._uas: dict[tuple[str, str, str, int], UasInvite] = {}  # (dialog id, CSeq) -> UAS INVITE awaiting ACK
        self.stats: dict[str, int] = {"stray_acks": 0}

    def add(self, dialog: Dialog) -> None:
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.id) is dialog:
            del self._dialogs[dialog.id]

    def get(self, dialog_id: tuple[str, str, str]) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def expect_ack(self, uas: UasInvite) -> None:
        """`uas` sent a 2xx: route the ACK to it."""
        if uas.dialog is not None:
            self._uas[(*uas.dialog.id, uas.invite.cseq[0])] = uas

    @staticmethod
    def request_id(req: Message) -> tuple[str, str, str]:
        return (str(req.get("Call-ID") or "").strip(), tag(req.get("To")), tag(req.get("From")))

    def match_request(self, req: Message) -> tuple[Dialog | None, int]:
        """(dialog, 0) for a request that may go on; (dialog or None, status) for one to answer with `status`."""
        dialog = self._dialogs.get(self.request_id(req))
        if dialog is None:
            return None, 481
        status = dialog.check_request(req)
        return dialog, status

    def on_ack(self, ack: Message) -> tuple[UasInvite | None, list]:
        """An ACK no transaction matched (for a 2xx): the UasInvite waiting for it and the actions that
        stop its 2xx retransmission, or (None, []) when nothing waits (a stray ACK)."""
        key = (*self.request_id(ack), ack.cseq[0])
        uas = self._uas.pop(key, None)
        if uas is None:
            self.stats["stray_acks"] += 1
            return None, []
        return uas, uas.on_ack(ack)

    def __len__(self) -> int:
        return len(self._dialogs)
