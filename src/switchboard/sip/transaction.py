"""SIP transaction layer, sans I/O (RFC 3261 §17).

Four state machines, one per figure of RFC 3261 §17, plus a table to find them again:

* `ClientTransaction` for an INVITE (figure 5): calling -> proceeding -> completed -> terminated.
  Timer A retransmits the INVITE over unreliable transports (T1, doubling, no cap), timer B (64*T1) gives
  up while calling.  A 1xx stops both (in proceeding the INVITE waits for a final response; Timer C and
  CANCEL are the TU's business).  A 2xx is delivered and ends the transaction at once (the TU core ACKs
  2xx itself, §13.2.2.4).  A 3xx-6xx is ACKed by the transaction (§17.1.1.3), delivered, and absorbed
  while completed (each retransmission re-sends the ACK) until timer D (32 s; 0 on reliable transports).
* `ClientTransaction` for any other method (figure 6): trying -> proceeding -> completed -> terminated.
  Timer E retransmits (T1 doubling up to T2 while trying, every T2 once proceeding; unreliable only), timer
  F (64*T1) gives up, a final response is delivered and retransmissions absorbed until timer K (T4; 0 on
  reliable transports).
* `ServerTransaction` for an INVITE (figure 7): proceeding -> completed -> confirmed -> terminated.
  Optionally sends 100 Trying at once (`auto_trying`).  A 2xx from the TU is sent and ends the
  transaction (the TU core retransmits 2xx itself, §13.3.1.4).  A 3xx-6xx is retransmitted by timer G
  (T1 doubling up to T2; unreliable only) until the ACK arrives (-> confirmed, timer I = T4 / 0 reliable)
  or timer H (64*T1) gives up.
* `ServerTransaction` for any other method (figure 8): trying -> proceeding -> completed -> terminated.
  Request retransmissions are answered with the last response sent, if any; timer J (64*T1 / 0 reliable)
  ends the completed state.

Nothing here touches a socket or a clock.  Each input method (`start`, `on_response`, `respond`,
`on_request`, `on_timer`, `on_transport_error`) returns a list of actions, which the driver executes in
order:

* `Send(message)`: serialise with `message.to_bytes()` and transmit to the transaction's peer (the
  next hop for a client transaction, the address the request came from / its Via for a server one).
  If the transport reports a failure, feed `tx.on_transport_error()`.
* `StartTimer(name, delay)`: schedule ``loop.call_later(delay, lambda: feed(tx.on_timer(name)))``.  A
  timer of the same name for this transaction that is still pending is replaced.  A delay of 0 means
  "as soon as possible" (the zero-length timers of reliable transports) but still goes through the loop.
* `CancelTimer(name)`: cancel that pending timer, if any.  A timer that fires anyway (a race with the
  cancellation) is harmless: the machine ignores timers it has not got running.
* `Deliver(message)`: hand a response to the transaction user (client side) or the new request to the
  TU (server side).
* `Terminated(reason)`: the transaction is over ("completed", "timeout" or "transport error"); drop
  it from the `TransactionTable` and cancel whatever timers remain.  For a client transaction this is
  also how the TU learns of a timeout (there is no synthesised 408) or of a transport error.

Matching (RFC 3261 §17.1.3, §17.2.3): a response belongs to the client transaction whose request had
the same top-Via branch and whose method equals the response's CSeq method (`client_key`).  A request
belongs to the server transaction with the same top-Via branch, sent-by and method, where an ACK counts
as an INVITE and a CANCEL is its own transaction (`server_key`).  Requests from RFC 2543 peers (no
"z9hG4bK" magic cookie in the branch) fall back to a key of Call-ID, From tag, CSeq number,
Request-URI, the top Via's transport/sent-by/branch and the method (ACK again counted as INVITE).  The
To tag is left out of that key on purpose: the ACK for a non-2xx carries the tag of our response, the
INVITE did not, so the key is a little looser than §17.2.3 spells out, never stricter.

2xx handling: an INVITE transaction ends on a 2xx, on both sides; what RFC 6026 adds is done above
this module: the endpoint (endpoint.py) keeps the answered INVITE's key with its 2xx for 64*T1 (the
"Accepted" state: a retransmitted INVITE gets the 2xx, not a new transaction) and passes 2xx responses
and ACKs that no transaction matches to the TU core (dialog.py: 2xx retransmission until the ACK, the
ACK for a 2xx).

`CompletedTable` keeps non-INVITE server transactions in their completed state compactly (key,
response, deadline), for a driver that has many of them: see its docstring.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from switchboard.sip.headers import MAGIC_COOKIE, Via, params, parse_via, tag, top_via
from switchboard.sip.message import Message, ParseError, response_to
from switchboard.sip.rand import token_hex

_COMPILED = not __file__.endswith(".py")  # compiled by mypyc (scripts/compile.py)

T1 = 0.5  # RTT estimate (s)
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses (s)
T4 = 5.0  # maximum time a message stays in the network (s)
TIMER_D = 32.0  # wait for response retransmissions after a non-2xx to an INVITE, unreliable transports (s)

CALLING = "calling"
TRYING = "trying"
PROCEEDING = "proceeding"
COMPLETED = "completed"
CONFIRMED = "confirmed"
TERMINATED = "terminated"


def new_branch() -> str:
    """A fresh RFC 3261 branch parameter: the magic cookie followed by 64 random bits in hex."""
    return MAGIC_COOKIE + token_hex(8)


# --- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Transmit `message` to the transaction's peer."""

    message: Message


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)start the transaction's timer `name` to fire after `delay` seconds."""

    name: str
    delay: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Cancel the transaction's timer `name` if it is pending."""

    name: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """Pass `message` up to the transaction user."""

    message: Message


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction is over: "completed", "timeout" or "transport error"."""

    reason: str


Action = Send | StartTimer | CancelTimer | Deliver | Terminated


# A frozen dataclass's __init__ sets each field with object.__setattr__(self, "name", value), a call and a
# lookup by name per field; a few actions are made per transaction, so theirs set the slots through the
# slot descriptors instead: the same objects (still frozen, equal, hashable), made with less work.
# (Compiled by mypyc, the dataclasses are native classes, already as fast, whose __init__ cannot be replaced.)
if not _COMPILED:
    _set_send, _set_deliver = vars(Send)["message"].__set__, vars(Deliver)["message"].__set__
    _set_cancel, _set_terminated = vars(CancelTimer)["name"].__set__, vars(Terminated)["reason"].__set__
    _set_timer_name, _set_timer_delay = vars(StartTimer)["name"].__set__, vars(StartTimer)["delay"].__set__

    def _send_init(self: Send, message: Message) -> None:
        _set_send(self, message)

    def _deliver_init(self: Deliver, message: Message) -> None:
        _set_deliver(self, message)

    def _cancel_init(self: CancelTimer, name: str) -> None:
        _set_cancel(self, name)

    def _terminated_init(self: Terminated, reason: str) -> None:
        _set_terminated(self, reason)

    def _start_timer_init(self: StartTimer, name: str, delay: float) -> None:
        _set_timer_name(self, name)
        _set_timer_delay(self, delay)

    for _cls, _init in (
        (Send, _send_init),
        (Deliver, _deliver_init),
        (CancelTimer, _cancel_init),
        (Terminated, _terminated_init),
        (StartTimer, _start_timer_init),
    ):
        _init.__qualname__ = f"{_cls.__qualname__}.__init__"
        _cls.__init__ = _init  # type: ignore[misc, method-assign]


class TransactionError(Exception):
    """The transaction user asked for something the state machine does not allow."""


# --- header helpers ----------------------------------------------------------------------------

# the header helpers live in headers.py; these names stay for callers of this module
_Via = Via
_params = params
_parse_via = parse_via
_top_via = top_via
_tag = tag


ClientKey = tuple[str, str]
ServerKey = tuple[str, ...]


def client_key(msg: Message) -> ClientKey:
    """(top-Via branch, method) for a request, or (branch, CSeq method) for a response (§17.1.3)."""
    method = msg.method if msg.is_request else msg.cseq[1]
    return _top_via(msg).branch, str(method).upper()


def server_key(msg: Message) -> ServerKey:
    """Key of the server transaction a request belongs to (§17.2.3); ACK maps to INVITE.

    With the magic cookie: (branch, sent-by, method).  Without it (RFC 2543 peers):
    ("rfc2543", Call-ID, From tag, CSeq number, Request-URI, transport, sent-by, branch, method)."""
    if not msg.is_request:
        raise ValueError("server_key needs a request")
    method = "INVITE" if msg.method == "ACK" else str(msg.method)
    via = _top_via(msg)
    if via.branch.startswith(MAGIC_COOKIE):
        return via.branch, via.sent_by, method
    number, _ = msg.cseq
    return (
        "rfc2543",
        (msg.get("Call-ID") or "").strip(),
        _tag(msg.get("From")),
        str(number),
        (msg.uri or "").strip(),
        via.transport,
        via.sent_by,
        via.branch,
        method,
    )


def _check_times(t1: float, t2: float, t4: float) -> None:
    if not (t1 > 0 and t2 > 0 and t4 > 0):
        raise ValueError("T1, T2 and T4 must be positive")


def _status(resp: Message) -> int:
    status = resp.status
    if resp.method is not None or status is None or not 100 <= status <= 699:  # method: Message.is_request
        raise ValueError("expected a SIP response with a status from 100 to 699")
    return status


# --- common machinery --------------------------------------------------------------------------


class _Transaction:
    """Timer bookkeeping shared by both sides: which timers run, and how to end."""

    __slots__ = (
        "request",
        "reliable",
        "t1",
        "t2",
        "t4",
        "method",
        "is_invite",
        "last_response",
        "termination_reason",
        "_state",
        "_started",
        "_timers",
        "_key",
        "_table_slot",
        "_interval",
    )

    def __init__(self, request: Message, reliable: bool, t1: float, t2: float, t4: float) -> None:
        method = request.method
        if method is None:  # (Message.is_request, without the property call: this runs per request)
            raise ValueError("a transaction is created from a request")
        if not (t1 > 0 and t2 > 0 and t4 > 0):  # _check_times
            raise ValueError("T1, T2 and T4 must be positive")
        self.request = request
        self.reliable = reliable
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.method = method = method.upper() if method.__class__ is str else str(method).upper()
        self.is_invite = method == "INVITE"
        self.last_response: Message | None = None
        self.termination_reason: str | None = None
        self._state = ""
        self._started = False
        self._timers: set[str] = set()

    @property
    def state(self) -> str:
        return self._state

    @property
    def branch(self) -> str:
        return _top_via(self.request).branch

    @property
    def active_timers(self) -> frozenset[str]:
        return frozenset(self._timers)

    def _begin(self) -> None:
        if self._started:
            raise TransactionError("transaction already started")
        self._started = True

    def _start_timer(self, name: str, delay: float) -> StartTimer:
        self._timers.add(name)
        return StartTimer(name, delay)

    def _cancel_timers(self, *names: str) -> list[Action]:
        out: list[Action] = []
        for name in names:
            if name in self._timers:
                self._timers.discard(name)
                out.append(CancelTimer(name))
        return out

    def _terminate(self, reason: str) -> list[Action]:
        actions = self._cancel_timers(*sorted(self._timers))
        self._state = TERMINATED
        self.termination_reason = reason
        actions.append(Terminated(reason))
        return actions

    def _fire(self, name: str) -> bool:
        """True if `name` is a running timer (and mark it as no longer running)."""
        if self._state == TERMINATED or name not in self._timers:
            return False
        self._timers.discard(name)
        return True

    def on_transport_error(self) -> list[Action]:
        """The transport failed to send one of our messages: inform the TU and end (figures 5-8)."""
        if self._state == TERMINATED:
            return []
        return self._terminate("transport error")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch!r} {self._state}>"


# --- client side -------------------------------------------------------------------------------


class ClientTransaction(_Transaction):
    """RFC 3261 §17.1.1 (INVITE) and §17.1.2 (non-INVITE) client transaction.

    `request` must carry a top Via with a branch (see `new_branch`); ACK is not sent in a client
    transaction of its own."""

    __slots__ = ("timer_d", "ack")

    def __init__(
        self,
        request: Message,
        *,
        reliable: bool,
        t1: float = T1,
        t2: float = T2,
        t4: float = T4,
        timer_d: float = TIMER_D,
    ) -> None:
        super().__init__(request, reliable, t1, t2, t4)
        if self.method == "ACK":
            raise ValueError("ACK does not create a client transaction")
        if not _top_via(request).branch:
            raise ValueError("the request's top Via has no branch parameter (use new_branch())")
        request.cseq  # noqa: B018 - validates the CSeq header early
        self._key = client_key(request)
        self._table_slot = ("client", self._key)  # its place in a TransactionTable
        self.timer_d = timer_d
        self.ack: Message | None = None
        self._interval = t1
        self._state = CALLING if self.is_invite else TRYING

    @property
    def key(self) -> ClientKey:
        return self._key

    def start(self) -> list[Action]:
        """Send the request and start the retransmit (A/E, unreliable only) and timeout (B/F) timers."""
        self._begin()
        retransmit, timeout = ("A", "B") if self.is_invite else ("E", "F")
        actions: list[Action] = [Send(self.request)]
        if not self.reliable:
            actions.append(self._start_timer(retransmit, self.t1))
        actions.append(self._start_timer(timeout, 64 * self.t1))
        return actions

    def on_response(self, resp: Message) -> list[Action]:
        """A response matched to this transaction arrived from the network."""
        status = _status(resp)
        try:
            if client_key(resp) != self.key:
                return []
        except ParseError:
            return []
        if self.is_invite:
            return self._invite_response(resp, status)
        return self._non_invite_response(resp, status)

    def _invite_response(self, resp: Message, status: int) -> list[Action]:
        if self._state in (CALLING, PROCEEDING):
            if status < 200:
                self._state = PROCEEDING
                return [*self._cancel_timers("A", "B"), Deliver(resp)]
            self.last_response = resp
            if status < 300:
                return [Deliver(resp), *self._terminate("completed")]
            self.ack = build_ack(self.request, resp)
            self._state = COMPLETED
            actions = self._cancel_timers("A", "B")
            actions += [Send(self.ack), Deliver(resp), self._start_timer("D", 0.0 if self.reliable else self.timer_d)]
            return actions
        if self._state == COMPLETED and status >= 300 and self.ack is not None:
            return [Send(self.ack)]  # the ACK was lost: the server retransmitted its final response
        return []

    def _non_invite_response(self, resp: Message, status: int) -> list[Action]:
        if self._state not in (TRYING, PROCEEDING):
            return []  # completed: absorb retransmissions of the final response
        if status < 200:
            self._state = PROCEEDING
            return [Deliver(resp)]
        self.last_response = resp
        self._state = COMPLETED
        actions = self._cancel_timers("E", "F")
        actions += [Deliver(resp), self._start_timer("K", 0.0 if self.reliable else self.t4)]
        return actions

    def on_timer(self, name: str) -> list[Action]:
        """Timer `name` (previously started by a StartTimer action) fired."""
        if not self._fire(name):
            return []
        if name == "A" and self._state == CALLING:
            self._interval *= 2
            return [Send(self.request), self._start_timer("A", self._interval)]
        if name == "E" and self._state in (TRYING, PROCEEDING):
            self._interval = min(2 * self._interval, self.t2) if self._state == TRYING else self.t2
            return [Send(self.request), self._start_timer("E", self._interval)]
        if name in ("B", "F"):
            return self._terminate("timeout")
        if name in ("D", "K"):
            return self._terminate("completed")
        return []


def build_ack(invite: Message, resp: Message) -> Message:
    """The ACK for a 3xx-6xx to `invite` (RFC 3261 §17.1.1.3): same Request-URI, Call-ID, From, CSeq
    number and top Via as the INVITE, To from the response (with its tag), the INVITE's Route set."""
    number, _ = invite.cseq
    headers: list[tuple[str, str]] = [("Via", str(invite.get("Via")))]
    headers += [("Route", r) for r in invite.get_all("Route")]
    headers.append(("Max-Forwards", invite.get("Max-Forwards") or "70"))
    headers += [("From", str(invite.get("From"))), ("To", str(resp.get("To")))]
    headers += [("Call-ID", str(invite.get("Call-ID"))), ("CSeq", f"{number} ACK")]
    return Message(method="ACK", uri=invite.uri, headers=headers)


# --- server side -------------------------------------------------------------------------------


class ServerTransaction(_Transaction):
    """RFC 3261 §17.2.1 (INVITE) and §17.2.2 (non-INVITE) server transaction, created for a request
    that matched no existing transaction."""

    __slots__ = ("auto_trying",)

    def __init__(
        self,
        request: Message,
        *,
        reliable: bool,
        t1: float = T1,
        t2: float = T2,
        t4: float = T4,
        auto_trying: bool = True,
        key: ServerKey | None = None,
    ) -> None:
        super().__init__(request, reliable, t1, t2, t4)
        if self.method == "ACK":
            raise ValueError("ACK does not create a server transaction")
        self._key = server_key(request) if key is None else key  # `key`: the caller's server_key(request)
        self._table_slot = ("server", self._key)  # its place in a TransactionTable
        self.auto_trying = auto_trying
        self._interval = t1
        self._state = PROCEEDING if self.is_invite else TRYING

    @property
    def key(self) -> ServerKey:
        return self._key

    def start(self) -> list[Action]:
        """Send 100 Trying for an INVITE (if `auto_trying`), then deliver the request to the TU.

        The 100 goes first so that a TU answering synchronously cannot have it overtake its response.
        Sending it at once is the simple reading of §17.2.1 (a 100 is required unless the TU answers
        within 200 ms)."""
        self._begin()
        actions: list[Action] = []
        if self.is_invite and self.auto_trying:
            trying = response_to(self.request, 100)
            for stamp in self.request.get_all("Timestamp"):  # §8.2.6.1
                trying.headers.append(("Timestamp", stamp))
            self.last_response = trying
            actions.append(Send(trying))
        actions.append(Deliver(self.request))
        return actions

    def respond(self, resp: Message) -> list[Action]:
        """The TU sends `resp` through this transaction."""
        status = _status(resp)
        if self._state not in (TRYING, PROCEEDING):
            raise TransactionError(f"cannot send a {status} response in state {self._state!r}")
        self.last_response = resp
        actions: list[Action] = [Send(resp)]
        if status < 200:
            self._state = PROCEEDING
            return actions
        if self.is_invite:
            if status < 300:
                return actions + self._terminate("completed")
            self._state = COMPLETED
            if not self.reliable:
                actions.append(self._start_timer("G", self.t1))
            actions.append(self._start_timer("H", 64 * self.t1))
            return actions
        self._state = COMPLETED
        actions.append(self._start_timer("J", 0.0 if self.reliable else 64 * self.t1))
        return actions

    def on_request(self, request: Message) -> list[Action]:
        """A request matched to this transaction arrived: a retransmission, or the ACK for our non-2xx."""
        if not request.is_request or self._state == TERMINATED:
            return []
        if request.method == "ACK":
            if self.is_invite and self._state == COMPLETED:
                self._state = CONFIRMED
                actions = self._cancel_timers("G", "H")
                actions.append(self._start_timer("I", 0.0 if self.reliable else self.t4))
                return actions
            return []
        if self._state in (PROCEEDING, COMPLETED) and self.last_response is not None:
            return [Send(self.last_response)]
        return []  # trying (nothing sent yet) or confirmed: absorb

    def on_timer(self, name: str) -> list[Action]:
        """Timer `name` (previously started by a StartTimer action) fired."""
        if not self._fire(name):
            return []
        if name == "G" and self._state == COMPLETED and self.last_response is not None:
            self._interval = min(2 * self._interval, self.t2)
            return [Send(self.last_response), self._start_timer("G", self._interval)]
        if name == "H":
            return self._terminate("timeout")
        if name in ("I", "J"):
            return self._terminate("completed")
        return []


# --- the table ---------------------------------------------------------------------------------

Transaction = ClientTransaction | ServerTransaction


class TransactionTable:
    """Live transactions by key: client ones by `client_key`, server ones by `server_key`.

    Bounded: adding beyond `max_size` drops the oldest transactions (insertion order) and returns
    them, so the driver can cancel their timers; a flood of new requests costs memory only up to the
    bound.  Iterating yields the transactions, oldest first."""

    def __init__(self, max_size: int = 10_000) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        # a dict keeps insertion order (a key removed and added again goes last): the oldest come first
        self._items: dict[tuple[str, tuple[str, ...]], Transaction] = {}

    @staticmethod
    def _slot(tx: Transaction) -> tuple[str, tuple[str, ...]]:
        return tx._table_slot

    def add(self, tx: Transaction) -> list[Transaction]:
        """Store `tx`; return the transactions dropped to make room (or replaced under the same key)."""
        slot = tx._table_slot
        items = self._items
        old = items.pop(slot, None)
        items[slot] = tx
        if old is None and len(items) <= self.max_size:
            return []  # the usual case
        dropped: list[Transaction] = [old] if old is not None and old is not tx else []
        while len(items) > self.max_size:
            oldest = next(iter(items))
            dropped.append(items.pop(oldest))
        return dropped

    def remove(self, tx: Transaction) -> bool:
        """Forget `tx` if it is stored (not some newer transaction under the same key)."""
        slot = tx._table_slot
        items = self._items
        if items.get(slot) is tx:
            del items[slot]
            return True
        return False

    def get_client(self, key: ClientKey) -> ClientTransaction | None:
        tx = self._items.get(("client", key))
        return tx if isinstance(tx, ClientTransaction) else None

    def get_server(self, key: ServerKey) -> ServerTransaction | None:
        tx = self._items.get(("server", key))
        return tx if isinstance(tx, ServerTransaction) else None

    def match_response(self, msg: Message) -> ClientTransaction | None:
        """The client transaction a response belongs to (§17.1.3), or None (e.g. a stray 2xx)."""
        if msg.is_request:
            return None
        try:
            return self.get_client(client_key(msg))
        except ParseError:
            return None

    def match_request(self, msg: Message) -> ServerTransaction | None:
        """The server transaction a request belongs to (§17.2.3), or None for a new transaction.

        An ACK matches the INVITE transaction it acknowledges (a non-2xx ACK; the ACK for a 2xx has a
        new branch and matches nothing).  A CANCEL only matches an earlier CANCEL transaction; use
        `cancel_target` to find the INVITE it cancels."""
        if not msg.is_request:
            return None
        try:
            return self.get_server(server_key(msg))
        except (ParseError, ValueError):
            return None

    def cancel_target(self, cancel: Message) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (§9.2), or None."""
        if cancel.method != "CANCEL":
            return None
        try:
            key = server_key(cancel)
        except (ParseError, ValueError):
            return None
        return self.get_server((*key[:-1], "INVITE"))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, tx: object) -> bool:
        slot = getattr(tx, "_table_slot", None)
        return slot is not None and self._items.get(slot) is tx

    def __iter__(self) -> Iterator[Transaction]:
        return iter(list(self._items.values()))


class CompletedTable:
    """Non-INVITE server transactions in the completed state (§17.2.2, figure 8), kept compactly.

    From its final response until timer J fires (64*T1 over unreliable transports), all a completed
    non-INVITE server transaction does is answer each retransmission of its request with that same
    final response (`ServerTransaction.on_request`); no ACK matches it and nothing else changes it.
    So a driver may, once the final response is sent, record the transaction's key and what it needs
    to resend the response (`payload`, opaque here: e.g. the bytes sent and the address), and drop the
    transaction object. An entry is then a few immutable values that the garbage collector does not
    scan (tuples of strings, bytes and numbers) instead of a transaction with its request, response and
    timers, and timer J costs no event-loop timer: every entry lives `lifetime` (timer J's duration,
    the same for all), so entries expire in the order they were added, lazily, whenever one is added
    (`get` never returns an expired one).

    Times are whatever monotonic clock the driver passes as `now`. Bounded like `TransactionTable`:
    beyond `max_size` the oldest entries go, as if their timer J had fired."""

    def __init__(self, lifetime: float = 64 * T1, max_size: int = 200_000) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if not lifetime > 0:
            raise ValueError("lifetime must be positive")
        self.lifetime = lifetime
        self.max_size = max_size
        self._items: dict[ServerKey, tuple[float, object]] = {}  # key -> (timer J due, payload)
        self._due: deque[tuple[float, ServerKey]] = deque()  # (due, key) in the order added

    def add(self, key: ServerKey, payload: object, now: float) -> None:
        """Record a transaction that sends its final response at `now`; timer J fires at now + lifetime."""
        due = now + self.lifetime
        self._items[key] = (due, payload)
        self._due.append((due, key))
        if self._due[0][0] <= now or len(self._items) > self.max_size:
            self.expire(now)

    def get(self, key: ServerKey, now: float) -> object | None:
        """The payload of the completed transaction `key` (timer J not yet fired), or None."""
        item = self._items.get(key)
        if item is None or item[0] <= now:
            return None
        return item[1]

    def discard(self, key: ServerKey) -> None:
        """End the transaction before timer J (e.g. the transport failed resending the response)."""
        self._items.pop(key, None)

    def expire(self, now: float) -> int:
        """Drop the entries whose timer J has fired, and the oldest beyond `max_size`; how many went."""
        due, items, n = self._due, self._items, 0
        while due and (due[0][0] <= now or len(items) > self.max_size):
            fires_at, key = due.popleft()
            item = items.get(key)
            if item is not None and item[0] == fires_at:  # not replaced by a later entry under the same key
                del items[key]
                n += 1
        return n

    def clear(self) -> None:
        self._items.clear()
        self._due.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
