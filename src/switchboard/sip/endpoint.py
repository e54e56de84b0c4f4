"""The SIP endpoint, sans I/O (in the style of h11's `Connection`): bytes and clock readings in, actions out.

One `Endpoint` owns what sits between the transports and the transaction user (TU, the application):
both transaction tables (live transactions in a `TransactionTable`; completed non-INVITE server
transactions over UDP in a `CompletedTable`), matching of requests and responses to them, CANCEL
(200 + 487 to the INVITE it cancels, or 481), ACKs that match nothing (for a 2xx: handed to the
dialog layer when one is attached, else dropped), answers to malformed requests (400/505/513 via
`message.salvage`; unsalvageable input is dropped and counted), the Via `received`/`rport` rewrite
(RFC 3261 §18.2.1, RFC 3581), timer J, and, when a `dialogs` table is attached (sip/dialog.py),
481 for an in-dialog request that matches no dialog and 500 for one whose CSeq went backwards.

Inputs (each returns a list of actions, to be carried out in order):

* `receive(data, source, now)`: a datagram or one framed TCP message from `source`.
* `respond(incoming, response, now)`: the TU answers a request it was given (`DeliverRequest`).
* `pending(incoming)`: the TU will answer later (a Deferred, a task, a provisional first).
* `timer(tx, name, now)`: a timer started by `SetTimer` fired.
* `transport_error(tx, now)`: a `Transmit` for `tx` failed.
* `send_request(msg, dest, now)`: start a client transaction (returns it, and the actions).
* `abandon(tx)`: the TU no longer waits for a client transaction.
* `malformed(data, source, error)`: input the transport could not frame (a TCP message too large).
* `expire(now)`: let completed transactions whose timer J fired go (call it every second or so).
* `answer_options(data, source, tail)`: a stateless 200 to an OPTIONS outside a dialog (the bytes), or None
  (not such an OPTIONS: give it to `receive`).
* `stateless_request(data, source)`: a request parsed for a stateless answer (a REGISTER's challenge) and
  the To tag the answer takes, or None (give it to `receive`).
* `stateless_head(data, source)`: the plain case of that without a Message: the request's header values and
  the echoed lines its answer starts with, or None (use `stateless_request`).

Actions (plain slotted classes; dispatch on `type(action) is ...`):

* `Transmit(data, dest, tx)`: send `data` (bytes) to `dest` (a `Source`: UDP address, or TCP
  connection in `dest.writer`); if that fails, feed `transport_error(tx, now)` (tx may be None).
* `DeliverRequest(message, source, key, tx)`: a new request for the TU; it is also the handle to
  answer with (`respond`). `dialog` is the dialog the request belongs to, when dialogs are attached.
* `DeliverResponse(message, tx)`: a response for the client transaction `tx`.
* `Cancelled(tx, request)`: a CANCEL ended the INVITE server transaction `tx` (487 already sent).
* `SetTimer(tx, name, delay)` / `ClearTimer(tx, name)`: (re)start or cancel a transaction timer.
* `TransactionEnded(tx, reason)`: `tx` is over ("completed", "timeout", "transport error", "dropped",
  "abandoned"): cancel its timers; a client transaction ended without a final response timed out.

Figure 8 fast path: a new non-INVITE request is delivered without a transaction object; if the TU
answers it with a final response before the endpoint is fed anything else (`respond` right after
the `DeliverRequest`), trying and completed follow each other in that one step, so no transaction is
made: the response bytes go out and, over UDP, the completed state is an entry in `completed` (key,
bytes, source ip, port) that answers retransmissions until timer J (over TCP timer J is 0: nothing is kept).
An entry holds only strings, bytes and numbers, not the Source object: the garbage collector then stops
tracking its tuples at its first pass, instead of carrying tens of thousands of them (32 s of a few
thousand requests/s) into its older generations and scanning them at every full collection.
A request the TU answers later or provisionally gets a `ServerTransaction` in trying (`pending`, or
automatically when the endpoint is fed the next input) to absorb retransmissions meanwhile. Expiry
of `completed` is lazy (on add and on `expire`): no timer per transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from hashlib import blake2s
from typing import Any

from switchboard.sip import message as message_mod
from switchboard.sip import transaction as tx_mod
from switchboard.sip.dialog import UasInvite
from switchboard.sip.headers import MAGIC_COOKIE, parse_via, received, tag, with_received
from switchboard.sip.message import Message, ParseError, parse, response_to
from switchboard.sip.transaction import (
    COMPLETED,
    PROCEEDING,
    TERMINATED,
    CancelTimer,
    ClientTransaction,
    CompletedTable,
    Deliver,
    Send,
    ServerTransaction,
    StartTimer,
    Terminated,
    TransactionError,
    TransactionTable,
    server_key,
)

SERVER = "Switchboard"  # Server header of the endpoint's own answers; the engine sets its USER_AGENT


def stateless_tag(via: str, from_: str, call_id: str, cseq: str) -> str:
    """The To tag a stateless UAS gives its answer to a request (RFC 3261 §8.2.7: the same tag for the
    same request): a hash of the request's top Via (as received), From, Call-ID and CSeq; 48 bits, as
    message.new_tag's. The same in every SIP worker process, so a retransmission that reaches another
    process gets the same tag."""
    return blake2s(f"{via}\n{from_}\n{call_id}\n{cseq}".encode(), digest_size=6).hexdigest()


@dataclass(frozen=True)
class Source:
    """Where a message came from, and how to answer it (`writer`: the TCP connection, if any)."""

    ip: str
    port: int
    transport: str  # "UDP" | "TCP"
    writer: object | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


# --- actions --------------------------------------------------------------------------------------------


class Transmit:
    __slots__ = ("data", "dest", "tx")

    def __init__(self, data: bytes, dest: Source, tx: object = None):
        self.data, self.dest, self.tx = data, dest, tx

    def __repr__(self) -> str:
        return f"Transmit({self.data[:40]!r}..., {self.dest.address}/{self.dest.transport})"


class DeliverRequest:
    __slots__ = ("message", "source", "key", "tx", "dialog")

    def __init__(self, message: Message, source: Source, key, tx: ServerTransaction | None = None, dialog=None):
        self.message, self.source, self.key, self.tx, self.dialog = message, source, key, tx, dialog

    def __repr__(self) -> str:
        return f"DeliverRequest({self.message.method} from {self.source.address})"


class DeliverResponse:
    __slots__ = ("message", "tx")

    def __init__(self, message: Message, tx: ClientTransaction | None):
        self.message, self.tx = message, tx

    def __repr__(self) -> str:
        return f"DeliverResponse({self.message.status})"


class Cancelled:
    __slots__ = ("tx", "request")

    def __init__(self, tx: ServerTransaction, request: Message):
        self.tx, self.request = tx, request


class SetTimer:
    __slots__ = ("tx", "name", "delay")

    def __init__(self, tx, name: str, delay: float):
        self.tx, self.name, self.delay = tx, name, delay

    def __repr__(self) -> str:
        return f"SetTimer({self.name}, {self.delay})"


class ClearTimer:
    __slots__ = ("tx", "name")

    def __init__(self, tx, name: str):
        self.tx, self.name = tx, name


class TransactionEnded:
    __slots__ = ("tx", "reason")

    def __init__(self, tx, reason: str):
        self.tx, self.reason = tx, reason

    def __repr__(self) -> str:
        return f"TransactionEnded({self.reason})"


Action = Transmit | DeliverRequest | DeliverResponse | Cancelled | SetTimer | ClearTimer | TransactionEnded


class Endpoint:
    def __init__(
        self,
        *,
        server: str = SERVER,
        max_transactions: int = 50_000,
        max_completed: int = 100_000,
        t1: float = tx_mod.T1,
        dialogs=None,
    ):
        self.server = server
        self.t1 = t1
        self.stats: Counter[str] = Counter()
        self.table = TransactionTable(max_size=max_transactions)
        self.completed = CompletedTable(64 * t1, max_size=max_completed)
        self._live: dict[Any, Any] = self.table._items  # the tables' dicts, read directly on the per-request path
        self._done: dict[Any, Any] = self.completed._items
        self.dialogs = dialogs  # a dialog.DialogTable, or None (no dialog layer: in-dialog requests go to the TU)
        self._peers: dict[int, Source] = {}  # transaction id -> where its messages go
        self._fresh: DeliverRequest | None = None  # delivered, not yet answered nor pending (fast path)
        self._spill: list = []  # TransactionEnded for transactions dropped while making one for a request

    # ---- network input ---------------------------------------------------------------------------------
    def receive(self, data: bytes, source: Source, now: float) -> list:
        if self._fresh is not None:
            self._hold(self._fresh)
            if self._spill:
                spill, self._spill = self._spill, []
                return spill + self.receive(data, source, now)
        try:
            msg = parse(data)
        except ParseError as e:
            return self.malformed(data, source, e)
        method = msg.method
        if method is None:
            return self._on_response(msg, now)
        top = with_received(msg, source.ip, source.port)  # the top Via, as rewritten
        # a request: this runs for every one, so what follows is written out here rather than called
        try:  # server_key(msg), its usual case inlined
            via = parse_via(top or "")
            if via.branch.startswith(MAGIC_COOKIE):
                key: tuple[str, ...] = (via.branch, via.sent_by, "INVITE" if method == "ACK" else method)
            else:
                key = server_key(msg)
        except (ParseError, ValueError) as e:
            return self._on_request(msg, source, now, None, e)
        existing = self._live.get(("server", key))  # TransactionTable.get_server without the call
        if existing is not None:
            self.stats["retransmissions"] += 1
            return self._run(existing, existing.on_request(msg), now)
        done = self._done.get(key)  # figure 8, completed: answer with the final response again
        if done is not None and done[0] > now:  # (CompletedTable.get: timer J not yet fired)
            data, ip, port = done[1]
            self.stats["retransmissions"] += 1
            return [Transmit(data, Source(ip, port, "UDP"), key)]
        if self.dialogs is None and method != "INVITE" and method != "ACK" and method != "CANCEL":
            d = self._fresh = DeliverRequest(msg, source, key)  # a new non-INVITE request: figure 8
            return [d]
        return self._on_request(msg, source, now, key, None)

    def answer_options(self, data: bytes, source: Source, tail: bytes) -> bytes | None:
        """A stateless UAS's 200 to an OPTIONS outside a dialog (RFC 3261 §8.2.7): the echoed Via (with
        received/rport), From, To (with a tag), Call-ID and CSeq, then `tail` (the serialised headers that
        follow, `Content-Length: 0` and the empty line). No transaction, nothing kept, as Kamailio's
        `sl_send_reply`. A retransmission is answered again with the same bytes: the To tag is a hash of what
        identifies the request (its top Via as received, From, Call-ID, CSeq), so §8.2.7's "the same tag for
        the same request" holds whichever SIP worker process a retransmission reaches.

        The request passes every check `parse` makes (message.checked); the answer is what `response_to`
        and `to_bytes` would make of it, without the Message. None when `data` is not such an OPTIONS, or
        not the plain kind this answers (a header twice, several Vias, a body, a tag-like To): `receive`
        then takes it, so a malformed one gets its 400 and an in-dialog one the dialog layer."""
        if data[:8] != b"OPTIONS ":
            return None
        plain = self.stateless_head(data, source)  # (the grammar then holds the CSeq's method to OPTIONS)
        if plain is None or "TAG" in plain[0]["To"].upper():  # a To tag, in any letter case: in a dialog, or odd
            return None
        self.stats["stateless"] += 1
        return b"SIP/2.0 200 OK\r\n" + plain[1].encode() + tail

    def stateless_request(self, data: bytes, source: Source) -> tuple[Message, str] | None:
        """A new request from `data` for a stateless UAS (RFC 3261 §8.2.7) to answer, as `receive` would
        hand it on (its top Via with received/rport), and the To tag its answer takes: a hash of the
        request's top Via as received, From, Call-ID and CSeq, so a retransmission gets the same tag.
        Nothing is kept. None when `data` is no such request (malformed, a response, an ACK, CANCEL or
        INVITE): `receive` it."""
        try:
            msg = parse(data)
        except ParseError:
            return None
        method = msg.method
        if method is None or method == "ACK" or method == "CANCEL" or method == "INVITE":
            return None
        get = msg.get
        to_tag = stateless_tag(get("Via") or "", get("From") or "", get("Call-ID") or "", get("CSeq") or "")
        with_received(msg, source.ip, source.port)
        return msg, to_tag

    def stateless_head(self, data: bytes, source: Source) -> tuple[dict[str, str], str] | None:
        """`stateless_request` for the plain request (one Via, each header once, no body, no To tag), without
        a Message: its header values by name, and the lines every stateless answer to it takes after its
        status line: Via (with received/rport, as `receive` rewrites it), From, To with the tag
        `stateless_request` gives, Call-ID and CSeq, CRLF-terminated, exactly what `response_to` and
        `to_bytes` make of them (`answer_options`; the challenge of a REGISTER, SipEngine.challenge: the Message, its
        Via rewrite, `response_to` and `to_bytes` were ~15 % of a stateless challenge). None for any other
        request (and a malformed one, a response, an ACK, CANCEL or INVITE): use `stateless_request`."""
        if data[:1] in (b"\r", b"\n"):
            data = data.lstrip(b"\r\n")
        try:
            headers, first, _, body, joined = message_mod.checked(data)
        except ParseError:
            return None
        method = data[: data.find(b" ")]  # (the grammar held: a Request-Line's method, or a Status-Line's version)
        if data[:4].upper() == b"SIP/" or method in (b"ACK", b"CANCEL", b"INVITE"):
            return None
        if joined or body or len(first) != len(headers):
            return None
        to, via = first["To"], first["Via"]
        if ";tag=" in to or ";tag=" in to.replace(" ", ""):  # (response_to keeps a To tag as it is)
            return None
        from_, call_id, cseq = first["From"], first["Call-ID"], first["CSeq"]
        to_tag = stateless_tag(via, from_, call_id, cseq)
        return first, (
            f"Via: {received(via, source.ip, source.port)}\r\nFrom: {from_}\r\nTo: {to};tag={to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\n"
        )

    def malformed(self, data: bytes, source: Source, err: Exception | None) -> list:
        msg = message_mod.salvage(data)
        if msg is not None and msg.is_request and msg.method != "ACK":
            self.stats["bad_request"] += 1
            with_received(msg, source.ip, source.port)
            status = getattr(err, "status", 400)  # 505 wrong SIP version, 513 too large, else 400
            reason = f"Bad Request ({err})"[:120] if status == 400 else None
            resp = response_to(msg, status, reason, headers=[("Server", self.server)])
            return [Transmit(resp.to_bytes(), source)]
        self.stats["dropped"] += 1
        return []

    def _on_request(self, msg: Message, source: Source, now: float, key, bad: Exception | None) -> list:
        """A request that is neither a retransmission nor (without dialogs) a new non-INVITE one."""
        method = msg.method
        if method == "ACK":  # for a 2xx (the TU core's: the dialog layer), or a transaction already gone
            if self.dialogs is not None:
                owner, actions = self.dialogs.on_ack(msg)
                if owner is not None:
                    return self.drive(owner, actions)
            self.stats["stray_acks"] += 1
            return []
        if key is None:
            return self.malformed(msg.to_bytes(), source, bad)
        if method == "CANCEL":
            return self._cancel(msg, key, source, now)
        dialog = None
        if self.dialogs is not None and tag(msg.get("To")):
            dialog, status = self.dialogs.match_request(msg)
            if status:  # 481: no such dialog; 500: CSeq lower than the last
                self.stats[f"in_dialog_{status}"] += 1
                return self._answer_now(
                    msg, key, source, response_to(msg, status, headers=[("Server", self.server)]), now
                )
        if method != "INVITE":
            d = self._fresh = DeliverRequest(msg, source, key, None, dialog)
            return [d]
        tx = ServerTransaction(msg, reliable=source.transport != "UDP", key=key, t1=self.t1)
        self._peers[id(tx)] = source
        out = self._add(tx)
        for action in tx.start():
            if action.__class__ is Send:
                out.append(Transmit(action.message.to_bytes(), source, tx))
            else:  # Deliver
                out.append(DeliverRequest(msg, source, key, tx, dialog))
        return out

    def _cancel(self, msg: Message, key, source: Source, now: float) -> list:
        """§9.2: 200 to a CANCEL that matches an INVITE server transaction (and 487 to that INVITE if it
        has no final response yet), 481 to one that does not. The CANCEL is a non-INVITE transaction of
        its own: over UDP its answer is kept in `completed` for its retransmissions."""
        target = self.table.cancel_target(msg)
        status = 200 if target is not None else 481
        out = self._answer_now(msg, key, source, response_to(msg, status, headers=[("Server", self.server)]), now)
        if target is not None and target.state == PROCEEDING:
            terminated = response_to(target.request, 487, headers=[("Server", self.server)])
            out += self._run(target, target.respond(terminated), now)
            out.append(Cancelled(target, msg))
        return out

    def _on_response(self, msg: Message, now: float) -> list:
        tx = self.table.match_response(msg)
        if tx is None:
            if self.dialogs is not None and msg.status is not None and 200 <= msg.status < 300:
                return [DeliverResponse(msg, None)]  # a retransmitted 2xx to an INVITE: the TU core ACKs it
            self.stats["stray_responses"] += 1
            return []
        return self._run(tx, tx.on_response(msg), now)

    # ---- the TU's answers ------------------------------------------------------------------------------
    def respond(self, incoming: DeliverRequest, resp: Message, now: float) -> list:
        """The TU's response to a delivered request; [] if its transaction is already over."""
        tx = incoming.tx
        if tx is None:
            if self._fresh is incoming and resp.status is not None and resp.status >= 200:
                self._fresh = None  # figure 8 in one step: trying -> completed, no transaction object
                return self._answer_now(incoming.message, incoming.key, incoming.source, resp, now)
            tx = self._hold(incoming)
        spill, self._spill = self._spill, []
        if tx not in self.table:
            return spill
        try:
            return spill + self._run(tx, tx.respond(resp), now)
        except TransactionError:
            return spill

    def respond_at_once(self, incoming: DeliverRequest, resp: Message, now: float) -> bytes | None:
        """`respond` for the figure-8 fast path without action objects: when `resp` is final and
        `incoming` (a non-INVITE request) was delivered by the last input, record the completed state
        and return the bytes to send to `incoming.source` (a failure to send is `transport_error(
        incoming.key, now)`); otherwise None and nothing done (use `respond`)."""
        status = resp.status
        if self._fresh is not incoming or status is None or status < 200 or incoming.tx is not None:
            return None
        self._fresh = None
        data = resp.to_bytes()
        source = incoming.source
        if source.transport == "UDP":
            self.completed.add(incoming.key, (data, source.ip, source.port), now)
        return data

    def pending(self, incoming: DeliverRequest) -> list:
        """The TU answers `incoming` later: give it a transaction (trying) to absorb retransmissions. The
        actions returned end the transactions dropped to make room (the table is bounded)."""
        if incoming.tx is None:
            self._hold(incoming)
        spill, self._spill = self._spill, []
        return spill

    def _hold(self, incoming: DeliverRequest) -> ServerTransaction:
        if self._fresh is incoming:
            self._fresh = None
        if incoming.tx is not None:
            return incoming.tx
        source = incoming.source
        tx = ServerTransaction(incoming.message, reliable=source.transport != "UDP", key=incoming.key, t1=self.t1)
        tx.start()  # trying; its one action, Deliver(req), is what already happened
        incoming.tx = tx
        self._peers[id(tx)] = source
        for dropped in self.table.add(tx):
            self._peers.pop(id(dropped), None)
            self._spill.append(TransactionEnded(dropped, "dropped"))
        return tx

    def _answer_now(self, req: Message, key, source: Source, resp: Message, now: float) -> list:
        data = resp.to_bytes()
        if source.transport == "UDP" and (resp.status or 0) >= 200:
            self.completed.add(key, (data, source.ip, source.port), now)
        return [Transmit(data, source, key)]

    # ---- timers, failures, client transactions --------------------------------------------------------
    def timer(self, tx, name: str, now: float) -> list:
        if isinstance(tx, UasInvite):  # a 2xx retransmission timer of the TU
            return self.drive(tx, tx.on_timer(name))
        if tx not in self.table:
            return []
        return self._run(tx, tx.on_timer(name), now)

    def transport_error(self, tx, now: float) -> list:
        """A Transmit for `tx` failed: the transaction ends (figures 5-8)."""
        if tx is None:
            return []
        if isinstance(tx, tuple):  # a completed entry's retransmission or the fast path's answer
            self.completed.discard(tx)
            return []
        if tx in self.table:
            return self._run(tx, tx.on_transport_error(), now)
        if isinstance(tx, ServerTransaction):
            self.completed.discard(tx.key)
        return []

    def send_request(
        self, msg: Message, dest: Source, now: float, *, t1: float | None = None
    ) -> tuple[ClientTransaction, list]:
        """Start a client transaction for `msg` (its top Via, with a fresh branch, already in place)."""
        tx = ClientTransaction(msg, reliable=dest.transport != "UDP", t1=t1 or self.t1)
        self._peers[id(tx)] = dest
        out = self._add(tx)
        out += self._run(tx, tx.start(), now)
        return tx, out

    def send_stateless(self, msg: Message, dest: Source) -> list:
        """A message sent outside any transaction (the ACK for a 2xx, a 2xx retransmitted by the TU)."""
        return [Transmit(msg.to_bytes(), dest)]

    def answer_invite(
        self, incoming: DeliverRequest, uas: UasInvite, status: int, now: float, *, headers=None, body: bytes = b""
    ) -> list:
        """The TU's final answer to the INVITE `incoming`, which it handles as `uas` (sip/dialog.py).

        The response goes through the INVITE server transaction: a 3xx-6xx stays there (timers G/H,
        the ACK absorbed); a 2xx ends it (RFC 6026 §7.1) and the TU takes over: `uas` retransmits the
        2xx (timers "2xx" and "2xx-timeout" on `uas`) until the ACK arrives (matched through `dialogs`)
        or 64*T1 passed (`TransactionEnded(uas, "timeout")`: the TU sends BYE). Over UDP the INVITE's
        key is kept in `completed` meanwhile with the 2xx, so a retransmitted INVITE is answered with
        the 2xx again instead of being a new request (the "Accepted" state of RFC 6026)."""
        source = incoming.source
        tx = self._hold(incoming) if incoming.tx is None else incoming.tx
        spill, self._spill = self._spill, []
        if tx not in self.table:
            return spill
        resp, actions = uas.answer(status, headers, body, reliable=source.transport != "UDP")
        try:
            out = self._run(tx, tx.respond(resp), now)
        except TransactionError:
            return []
        out = spill + out
        if status >= 300:
            return out
        if source.transport == "UDP":
            sent = next((a.data for a in out if a.__class__ is Transmit), None)
            if sent is not None:
                self.completed.add(tx.key, (sent, source.ip, source.port), now)
        if self.dialogs is not None and uas.dialog is not None:
            self.dialogs.add(uas.dialog)
            self.dialogs.expect_ack(uas)
        out += self.drive(uas, [a for a in actions if a.__class__ is not Send], source)  # sent once above
        return out

    def drive(self, owner, actions: list, dest: Source | None = None) -> list:
        """Actions of a dialog-layer object (`Send`, `StartTimer`, `CancelTimer`, `Terminated`, as in
        transaction.py) as endpoint actions with `owner` as their transaction; `dest` is remembered as
        where `owner`'s messages go."""
        if dest is not None:
            self._peers[id(owner)] = dest
        else:
            dest = self._peers.get(id(owner))
        out: list = []
        for action in actions:
            kind = action.__class__
            if kind is Send:
                if dest is not None:
                    out.append(Transmit(action.message.to_bytes(), dest, None))
            elif kind is StartTimer:
                out.append(SetTimer(owner, action.name, action.delay))
            elif kind is CancelTimer:
                out.append(ClearTimer(owner, action.name))
            elif kind is Terminated:
                self._peers.pop(id(owner), None)
                out.append(TransactionEnded(owner, action.reason))
        return out

    def abandon(self, tx) -> list:
        """The TU gives up on `tx` (e.g. stopped waiting): it goes, with its timers."""
        if self.table.remove(tx):
            self._peers.pop(id(tx), None)
            return [TransactionEnded(tx, "abandoned")]
        return []

    def expire(self, now: float) -> int:
        return self.completed.expire(now)

    def peer(self, tx) -> Source | None:
        return self._peers.get(id(tx))

    # ---- running transaction actions ------------------------------------------------------------------
    def _add(self, tx) -> list:
        out: list = []
        for dropped in self.table.add(tx):
            self._peers.pop(id(dropped), None)
            out.append(TransactionEnded(dropped, "dropped"))
        return out

    def _run(self, tx, actions, now: float) -> list:
        out: list = []
        sent = None  # the bytes of this batch's last Send
        peer = self._peers.get(id(tx))
        for action in actions:
            kind = action.__class__
            if kind is Send:
                if peer is not None:
                    sent = action.message.to_bytes()
                    out.append(Transmit(sent, peer, tx))
            elif kind is StartTimer:
                if action.name == "J" and action.delay == self.completed.lifetime and sent is not None:
                    self._retire(tx, sent, peer, now)  # completed over UDP: an entry until timer J
                    out.append(TransactionEnded(tx, "completed"))
                    continue
                out.append(SetTimer(tx, action.name, action.delay))
            elif kind is CancelTimer:
                out.append(ClearTimer(tx, action.name))
            elif kind is Deliver:
                if isinstance(tx, ServerTransaction):
                    out.append(DeliverRequest(action.message, peer, tx.key, tx))  # type: ignore[arg-type]
                else:
                    out.append(DeliverResponse(action.message, tx))
            elif kind is Terminated:
                self.table.remove(tx)
                self._peers.pop(id(tx), None)
                out.append(TransactionEnded(tx, action.reason))
        return out

    def _retire(self, tx: ServerTransaction, data: bytes, peer: Source | None, now: float) -> None:
        self.table.remove(tx)
        self._peers.pop(id(tx), None)
        if peer is not None:
            self.completed.add(tx.key, (data, peer.ip, peer.port), now)


__all__ = [
    "Action",
    "Cancelled",
    "ClearTimer",
    "DeliverRequest",
    "DeliverResponse",
    "Endpoint",
    "SetTimer",
    "Source",
    "TransactionEnded",
    "Transmit",
    "COMPLETED",
    "TERMINATED",
]
