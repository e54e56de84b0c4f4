"""HTTP Digest authentication for SIP, sans I/O (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

Implemented:

* `parse_params` reads a ``WWW-Authenticate`` / ``Authorization`` (or ``Proxy-*``) value such as
  ``Digest realm="x", nonce="y", qop="auth"`` into ``("Digest", {"realm": "x", ...})``; keys are
  lower-cased, quoted strings unescaped. Anything it cannot read raises `DigestError` (a `ValueError`),
  never another exception.
* Algorithms ``MD5`` and ``SHA-256`` (RFC 8760 brings SHA-256 to SIP) and their ``-sess`` variants,
  names matched case-insensitively; an absent ``algorithm`` means MD5. ``qop=auth`` and the RFC 2069
  form without qop. ``qop=auth-int``, ``userhash`` and ``username*`` are not supported.
* `DigestServer` (our registrar) issues challenges, one per algorithm, SHA-256 first (RFC 8760 §2.4), and
  checks ``Authorization`` values against a credential lookup returning the stored HA1
  (``H(username:realm:password)``), so passwords need not be stored in clear.
* `DigestClient` (our trunk registrations) answers the best challenge it supports.

Nonce format (43 characters of unpadded base64url over 32 bytes)::

    issue time (8 bytes, big-endian milliseconds since the epoch)
    || random (8 bytes)
    || HMAC-SHA256(secret, time || random || realm)[:16]

A nonce therefore validates itself: no server memory is needed to know that it is ours, unaltered and
how old it is, and nodes sharing the secret accept each other's nonces. A genuine nonce older than
``nonce_ttl`` is answered with ``stale=true`` (when the response itself was right), so the client
retries with a fresh nonce without asking its user for the password again; so is one dated more than
``nonce_ttl`` in the future (clock skew between nodes). ``opaque`` is a per-realm constant derived from the
secret; a client may omit it, but a different value is refused. The ``uri`` parameter enters the response
but is not compared with the Request-URI here (SIP URI comparison belongs to the caller).

Replay rule: with ``qop=auth`` the nonce count ``nc`` of an accepted request must be strictly greater
than the highest accepted so far for that nonce (so nc starts at 1); a request without qop is accepted
only with a nonce never used before, and then counts as nc=1, so it works once. The highest nc is kept
for at most ``max_tracked_nonces`` nonces; beyond that the oldest entries are dropped (expired ones
first), and any untracked nonce issued no later than the newest dropped one is answered stale instead
of being trusted, so forgetting can only cost a client one extra round trip, never allow a replay.
Only correctly answered requests are tracked, so memory cannot be filled without valid credentials.
The tracking is per `DigestServer` instance: nodes sharing a secret do not share nc state.
Refusals caused by replay or eviction also say ``stale`` because the response proved knowledge of the
password; a fresh challenge gives a replaying attacker nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from switchboard.sip.rand import token_bytes

__all__ = [
    "ALGORITHMS",
    "MAX_HEADER",
    "DigestClient",
    "DigestError",
    "DigestServer",
    "Lookup",
    "Verdict",
    "digest_response",
    "ha1",
    "parse_params",
    "session_ha1",
]

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
try:  # CPython's own MD5 and SHA-256: for the few dozen bytes hashed here, several times cheaper per call than
    # OpenSSL's (an EVP context set up and torn down per hash); the same digests, hashlib's when missing
    from _md5 import md5 as _md5
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - a Python built without them
    _md5, _sha256 = hashlib.md5, hashlib.sha256
_FAST = {"MD5": _md5, "SHA-256": _sha256}
# Canonical spelling of every supported algorithm name, keyed by its lower-case form.
_CANONICAL = {name.lower(): name for base in ALGORITHMS for name in (base, base + "-sess")}
_PREFERENCE = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")
MAX_HEADER = 8192

_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_WS = r"[ \t\r\n]"
_SCHEME_RE = re.compile(rf"{_WS}*({_TOKEN})(?={_WS}|$)")
# quoted-string contents, unrolled (runs of plain characters between escapes) so that the regex engine
# consumes a run in one step instead of trying an alternation at every character
_QCHARS = r'[^"\\\x00-\x08\x0a-\x1f\x7f]*+'
_QUOTED_BODY = rf"{_QCHARS}(?:\\[^\x00-\x08\x0a-\x1f\x7f]{_QCHARS})*+"
# one list element: the separators before it (group 1: a comma must be among them after the first), name (2),
# quoted value (3) or bare value (4); or (5) a character that is neither a separator nor the start of an element.
# findall never skips such a character (it matches as group 5), only separators: so a list is well formed when no
# group 5 is found, and nothing else needs counting (separators at the end are allowed)
_PARAM_RE = re.compile(
    rf"([ \t\r\n,]*+)({_TOKEN}){_WS}*={_WS}*"
    rf'(?:"({_QUOTED_BODY})"'
    r'|([^\x00-\x20\x7f",=\\]+))'
    r"|([^ \t\r\n,])"
)
_ESCAPED_RE = re.compile(r"\\(.)", re.DOTALL)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_METHOD_RE = re.compile(_TOKEN)
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_MS = 2**64 - 1
_METHODS_SEEN: set[str] = set()  # methods that passed _METHOD_RE (a few; bounded)


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64url(raw: bytes) -> str:
    """Unpadded base64url (what base64.urlsafe_b64encode(raw).rstrip(b"=") spells), in two C calls."""
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


class DigestError(ValueError):
    """A Digest header that cannot be read, or a challenge set with nothing usable in it."""


# --- parsing and rendering ---------------------------------------------------------------------------


def parse_params(value: object) -> tuple[str, dict[str, str]]:
    """Split ``Scheme k=v, k="quoted \\"value\\"", ...`` into the scheme (as written) and its parameters.

    Keys are lower-cased; quoted values are unescaped. Empty list elements (``a=1,,b=2``) are allowed;
    duplicate keys, control characters, unterminated quotes, text that is not valid UTF-8 and values
    longer than `MAX_HEADER` raise `DigestError`."""
    if not isinstance(value, str):
        raise DigestError("header value must be a str")
    if len(value) > MAX_HEADER:
        raise DigestError("header value too long")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DigestError("header value is not valid UTF-8") from None
    head = _SCHEME_RE.match(value)
    if head is None:
        raise DigestError("missing auth scheme")
    scheme = head.group(1)
    params: dict[str, str] = {}
    for sep, key, quoted, bare, junk in _PARAM_RE.findall(value, head.end()):  # the elements in one C call
        if junk:
            raise DigestError("bad auth-param")
        if not bare:
            bare = _ESCAPED_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        if params and "," not in sep:
            raise DigestError(f"expected ',' before {key!r}")
        key = key.lower()
        if key in params:
            raise DigestError(f"duplicate parameter {key!r}")
        params[key] = bare
    return scheme, params


def _quote(text: str) -> str:
    if _CONTROL_RE.search(text):
        raise DigestError("control character in a quoted value")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- hashing -------------------------------------------------------------------------------------------


def _canonical(algorithm: str | None) -> str:
    """The canonical name of a supported algorithm; None (parameter absent) means MD5."""
    if algorithm is None:
        return "MD5"
    name = _CANONICAL.get(algorithm.lower())
    if name is None:
        raise DigestError(f"unsupported algorithm {algorithm!r}")
    return name


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise DigestError("text is not valid UTF-8") from None


def _h(algorithm: str, text: str) -> str:
    return _FAST[_canonical(algorithm).removesuffix("-sess")](_encode(text)).hexdigest()


_DIGEST_LEN = {name: ALGORITHMS[name.removesuffix("-sess")]().digest_size * 2 for name in _CANONICAL.values()}


def _digest_len(algorithm: str) -> int:
    return _DIGEST_LEN[_canonical(algorithm)]


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """The stored secret ``H(username:realm:password)`` in hex, for ``algorithm``'s hash function.

    For a ``-sess`` algorithm this is the base value the credential store keeps; `session_ha1` derives
    the per-session value from it."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def session_ha1(algorithm: str, ha1_hex: str, nonce: str, cnonce: str) -> str:
    """``H(HA1:nonce:cnonce)`` for ``-sess`` algorithms (RFC 2617 §3.2.2.2); HA1 unchanged otherwise."""
    if _canonical(algorithm).endswith("-sess"):
        return _h(algorithm, f"{ha1_hex}:{nonce}:{cnonce}")
    return ha1_hex


def digest_response(
    algorithm: str,
    ha1_hex: str,
    method: str,
    uri: str,
    nonce: str,
    *,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``response`` value (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1) for ``qop=auth`` or no qop.

    ``ha1_hex`` is the stored ``H(username:realm:password)``; ``-sess`` derivation happens here."""
    if qop is not None and qop != "auth":
        raise DigestError(f"unsupported qop {qop!r}")
    if (qop is not None or _canonical(algorithm).endswith("-sess")) and cnonce is None:
        raise DigestError("cnonce required")
    key = session_ha1(algorithm, ha1_hex, nonce, cnonce) if cnonce is not None else ha1_hex
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{key}:{nonce}:{ha2}")
    if nc is None:
        raise DigestError("nc required with qop")
    return _h(algorithm, f"{key}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


_HASHES = {name: _FAST[name.removesuffix("-sess")] for name in _CANONICAL.values()}
_HA2: dict[tuple[str, str, str], str] = {}  # (algorithm, method, uri) -> H(method:uri): a registrar sees few URIs
_HA2_MAX = 1024


def _expected(
    algorithm: str, key: str, method: str, uri: str, nonce: str, qop: str | None, nc: str | None, cnonce: str | None
) -> str:
    """`digest_response` for `DigestServer.verify`, which has already checked its inputs: a canonical
    algorithm, a cnonce where needed, and text that encodes as UTF-8 (parse_params made sure)."""
    h = _HASHES[algorithm]
    if algorithm.endswith("-sess"):
        key = h(f"{key}:{nonce}:{cnonce}".encode()).hexdigest()
    ha2 = _HA2.get((algorithm, method, uri))
    if ha2 is None:
        ha2 = h(f"{method}:{uri}".encode()).hexdigest()
        if len(_HA2) >= _HA2_MAX:
            _HA2.clear()
        _HA2[(algorithm, method, uri)] = ha2
    if qop is None:
        return h(f"{key}:{nonce}:{ha2}".encode()).hexdigest()
    return h(f"{key}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode()).hexdigest()


# --- server --------------------------------------------------------------------------------------------

Lookup = Callable[[str, str, str], str | None]
"""``lookup(username, realm, algorithm) -> HA1 hex or None``; ``algorithm`` is ``"MD5"`` or ``"SHA-256"``
(``-sess`` variants use the same stored HA1)."""


class Verdict(NamedTuple):
    """Outcome of `DigestServer.verify`. ``username`` is the claimed name, for logs: it is authenticated
    only when ``ok``. ``stale`` asks for a new challenge with ``stale=true``; ``reason`` is for logs.
    (Immutable; a named tuple because one is made per verification, and a tuple is the cheapest to make.)"""

    ok: bool
    stale: bool
    username: str | None
    reason: str


_verdict = tuple.__new__  # _verdict(Verdict, (ok, stale, username, reason)): Verdict(...) without its Python __new__
_MALFORMED = Verdict(False, False, None, "malformed")
# the last character of a canonical 43-character base64url spelling of 32 bytes: its 2 low bits are 0
_CANONICAL_LAST = frozenset("AEIMQUYcgkosw048")
_HA1_OK_MAX = 4096
_ISSUED_MAX = 8192


class DigestServer:
    """Registrar side: `challenge` for 401/407 responses, `verify` for the ``Authorization`` that follows.

    Not thread-safe (nc tracking mutates state); meant for one event loop."""

    def __init__(
        self,
        secret: bytes,
        realm: str,
        *,
        nonce_ttl: float = 300.0,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        clock: Callable[[], float] = time.time,
        max_tracked_nonces: int = 100_000,
        tracked_since_ms: int = 0,
    ) -> None:
        if not isinstance(secret, bytes | bytearray) or len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        if not isinstance(realm, str) or not realm or _CONTROL_RE.search(realm):
            raise ValueError("realm must be a non-empty string without control characters")
        if not nonce_ttl > 0:
            raise ValueError("nonce_ttl must be positive")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be at least 1")
        algs = tuple(_canonical(a) for a in algorithms)
        if not algs or len(set(algs)) != len(algs):
            raise ValueError("algorithms must be a non-empty list without duplicates")
        self.realm = realm
        self.algorithms = algs
        self._secret = bytes(secret)
        self._realm_bytes = _encode(realm)
        self._ttl_ms = int(nonce_ttl * 1000)
        self._clock = clock
        self._max_tracked = max_tracked_nonces
        # nonce -> (issue time ms, highest accepted nc), in order of first accepted use.
        self._seen: dict[str, tuple[int, int]] = {}
        # (nonce, issue time) in order of first accepted use: what _prune drops from the front (a dict's
        # own first item is found by skipping every slot deleted since its last resize: at the bound,
        # one prune per REGISTER made that scan a measurable share of the registrar's CPU)
        self._order: deque[tuple[str, int]] = deque()
        # Untracked nonces issued at or before this time (ms) may have been forgotten: answered stale.
        self._forgotten_upto = -1
        if tracked_since_ms > 0:
            self.forget_before(tracked_since_ms)
        self._ha1_ok: dict[str, str] = {}  # HA1 values from `lookup` that passed the check -> lower case
        # nonces this server issued lately -> issue time (ms): their answers need no MAC check (bounded:
        # when full it starts again, and older nonces are checked by their MAC as those of other nodes are)
        self._issued: dict[str, int] = {}
        mac = hmac.new(self._secret, b"opaque\x00" + self._realm_bytes, hashlib.sha256).digest()
        block = (hashlib.sha256(self._secret).digest() if len(self._secret) > 64 else self._secret).ljust(64, b"\0")
        self._inner = _sha256(bytes(b ^ 0x36 for b in block))  # RFC 2104 ipad
        self._outer = _sha256(bytes(b ^ 0x5C for b in block))  # opad
        self.opaque = base64.urlsafe_b64encode(mac[:12]).decode("ascii")
        self._challenge_head = f'Digest realm={_quote(realm)}, nonce="'

    @property
    def tracked_nonces(self) -> int:
        """How many nonces currently have their nc remembered (at most ``max_tracked_nonces``)."""
        return len(self._seen)

    # nonces

    def _now_ms(self) -> int:
        return min(max(0, int(self._clock() * 1000)), _MAX_MS)

    def _mac(self, head: bytes) -> bytes:
        """HMAC-SHA256(secret, head || realm)[:16] (RFC 2104; head = issue time || random), from the keyed
        inner and outer hash states computed once: two copies of a hash state instead of a fresh HMAC
        (whose set-up, a digest fetch by name in OpenSSL 3, costs more than the hashing of these few bytes)."""
        inner = self._inner.copy()
        inner.update(head + self._realm_bytes)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:16]

    def new_nonce(self) -> str:
        """A fresh self-validating nonce (see the module docstring for the format)."""
        now = self._now_ms()
        head = now.to_bytes(8, "big") + token_bytes(8)
        nonce = _b64url(head + self._mac(head))
        issued = self._issued
        if len(issued) >= _ISSUED_MAX:
            issued.clear()
        issued[nonce] = now
        return nonce

    def _nonce_issued(self, nonce: str) -> int | None:
        """Issue time (ms) of a nonce we made for this realm, or None if it is not ours or was altered."""
        seen = self._seen.get(nonce)
        if seen is not None:  # accepted before, so its MAC was checked then: the same string is as genuine now
            return seen[0]
        issued = self._issued.get(nonce)
        if issued is not None:  # issued here lately (the usual case: a challenge, then its answer): ours
            return issued
        # 43 base64url characters, the last with its 2 padding bits 0 (the one canonical spelling of 32 bytes)
        if nonce[-1:] not in _CANONICAL_LAST or not _NONCE_RE.fullmatch(nonce):
            return None
        raw = binascii.a2b_base64(nonce.encode("ascii").translate(_FROM_URLSAFE) + b"=")
        if not hmac.compare_digest(raw[16:], self._mac(raw[:16])):
            return None
        return int.from_bytes(raw[:8], "big")

    def forget_before(self, ms: int) -> None:
        """The nonce-counts of this key's nonces issued before `ms` (ms since the epoch) were seen elsewhere
        and are not known here: an earlier run of this process (the key outlives a restart, its state does
        not), or a SIP worker that is gone and whose aors this process now serves. Each such nonce not
        tracked here is answered stale on first use (reason "nonce forgotten", as one pruned; the client
        authenticates again at once) instead of being accepted, which would let an Authorization accepted
        there be replayed once here within the nonce's lifetime."""
        self._forgotten_upto = max(self._forgotten_upto, ms - 1)

    def knows_nonce(self, nonce: str) -> bool:
        """Whether `nonce` was made by this server's secret for this realm (whatever its age)."""
        return self._nonce_issued(nonce) is not None

    # challenge

    def challenge(self, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` / ``Proxy-Authenticate`` values, one per algorithm in preference order,
        sharing one fresh nonce."""
        nonce = self.new_nonce()
        tail = ", stale=true" if stale else ""
        head, opaque = self._challenge_head, self.opaque
        return [f'{head}{nonce}", opaque="{opaque}", algorithm={alg}, qop="auth"{tail}' for alg in self.algorithms]

    # verification

    def verify(self, method: str, header_value: str, lookup: Lookup) -> Verdict:
        """Check an ``Authorization`` / ``Proxy-Authorization`` value for a request with ``method``.

        Never raises for a malformed header (``reason="malformed"``); exceptions from ``lookup`` propagate,
        and so does a ``lookup`` result that is not a hex digest of the right length (a store bug)."""
        try:
            if type(method) is not str or method not in _METHODS_SEEN:
                if not isinstance(method, str) or not _METHOD_RE.fullmatch(method):
                    raise DigestError("bad method")
                if len(_METHODS_SEEN) < 64:
                    _METHODS_SEEN.add(method)
            scheme, params = parse_params(header_value)
        except DigestError:
            return _MALFORMED
        if scheme.lower() != "digest":
            return _MALFORMED
        get = params.get
        username = get("username")
        if username is None:
            return _MALFORMED
        realm, nonce, response = get("realm"), get("nonce"), get("response")
        userhash = get("userhash")
        if userhash is not None and userhash.lower() != "false":
            return _verdict(Verdict, (False, False, username, "unsupported userhash"))
        if realm is None or nonce is None or response is None:
            return _verdict(Verdict, (False, False, username, "malformed"))
        uri = get("uri")
        if not uri:
            return _verdict(Verdict, (False, False, username, "uri missing"))
        if realm != self.realm:
            return _verdict(Verdict, (False, False, username, "realm mismatch"))
        algorithm = get("algorithm")
        algorithm = "MD5" if algorithm is None else _CANONICAL.get(algorithm.lower())
        if algorithm not in self.algorithms:
            return _verdict(Verdict, (False, False, username, "unsupported algorithm"))
        qop = get("qop")
        nc = cnonce = None
        if qop is not None:
            qop = qop.lower()
            if qop != "auth":
                reason = "unsupported qop" if qop == "auth-int" else "malformed"
                return _verdict(Verdict, (False, False, username, reason))
            nc, cnonce = get("nc"), get("cnonce")
            if nc is None or not cnonce or not _NC_RE.fullmatch(nc) or nc == "00000000":
                return _verdict(Verdict, (False, False, username, "malformed"))
        elif algorithm.endswith("-sess"):
            cnonce = get("cnonce")
            if not cnonce:
                return _verdict(Verdict, (False, False, username, "malformed"))
        size = _DIGEST_LEN[algorithm]
        if len(response) != size or not _HEX_RE.fullmatch(response):
            return _verdict(Verdict, (False, False, username, "malformed"))
        issued = self._nonce_issued(nonce)
        if issued is None:
            return _verdict(Verdict, (False, False, username, "bad nonce"))
        opaque = get("opaque")
        if opaque is not None and opaque != self.opaque:
            return _verdict(Verdict, (False, False, username, "opaque mismatch"))

        base = algorithm.removesuffix("-sess")
        stored = lookup(username, self.realm, base)
        known = stored is not None
        if stored is None:
            key = "0" * size  # same work as for a known user
        else:
            # an HA1 this server checked before (the lookup's cached string: its hash is cached too)
            cached = self._ha1_ok.get(stored) if type(stored) is str and len(stored) == size else None
            if cached is not None:
                key = cached
            else:
                if not isinstance(stored, str) or len(stored) != size or not _HEX_RE.fullmatch(stored):
                    raise ValueError(f"lookup returned an invalid {base} HA1 for {username!r}")
                key = stored.lower()
                if len(self._ha1_ok) >= _HA1_OK_MAX:
                    self._ha1_ok.clear()
                self._ha1_ok[stored] = key
        expected = _expected(algorithm, key, method, uri, nonce, qop, nc, cnonce)
        matches = hmac.compare_digest(expected, response.lower())  # both ASCII (hex)
        if not known:
            return _verdict(Verdict, (False, False, username, "unknown user"))
        if not matches:
            return _verdict(Verdict, (False, False, username, "wrong response"))

        now = self._now_ms()
        if abs(now - issued) > self._ttl_ms:
            return _verdict(Verdict, (False, True, username, "nonce expired"))
        problem = self._admit(nonce, issued, int(nc, 16) if nc is not None else 1, now)
        if problem is not None:
            return _verdict(Verdict, (False, True, username, problem))
        return _verdict(Verdict, (True, False, username, "ok"))

    def _admit(self, nonce: str, issued: int, nc: int, now: int) -> str | None:
        """Record ``nc`` for ``nonce`` if it is above the highest seen; the refusal reason otherwise."""
        seen = self._seen.get(nonce)
        if seen is None:
            if issued <= self._forgotten_upto:
                return "nonce forgotten"
            self._seen[nonce] = (issued, nc)
            self._order.append((nonce, issued))
            self._prune(now)
            return None
        if nc <= seen[1]:
            return "nc replay"
        self._seen[nonce] = (issued, nc)  # keeps its place in the order
        return None

    def _prune(self, now: int) -> None:
        """Drop expired entries from the front, then the oldest ones beyond the bound."""
        seen, order = self._seen, self._order
        while order:
            nonce, issued = order[0]
            if len(seen) <= self._max_tracked and now - issued <= self._ttl_ms:
                break
            order.popleft()
            seen.pop(nonce, None)
            self._forgotten_upto = max(self._forgotten_upto, issued)


# --- client --------------------------------------------------------------------------------------------


class DigestClient:
    """Trunk side: answer a 401/407 with the best Digest challenge we support (SHA-256 over MD5)."""

    def __init__(self, username: str, password: str, *, max_nonces: int = 64) -> None:
        self.username = username
        self.password = password
        self._max_nonces = max(1, max_nonces)
        self._nc: dict[str, int] = {}  # nonce -> last nc sent, most recently used last

    def _pick(self, challenges: Iterable[str]) -> tuple[str, dict[str, str], str | None]:
        best: tuple[int, str, dict[str, str], str | None] | None = None
        for raw in challenges:
            try:
                scheme, params = parse_params(raw)
            except DigestError:
                continue
            algorithm = _CANONICAL.get(params.get("algorithm", "MD5").lower())
            if scheme.lower() != "digest" or algorithm is None or "realm" not in params or not params.get("nonce"):
                continue
            qop = None
            if "qop" in params:
                if "auth" not in {option.strip().lower() for option in params["qop"].split(",")}:
                    continue
                qop = "auth"
            rank = _PREFERENCE.index(algorithm)
            if best is None or rank < best[0]:
                best = (rank, algorithm, params, qop)
        if best is None:
            raise DigestError("no usable Digest challenge")
        return best[1], best[2], best[3]

    def authorize(self, method: str, uri: str, challenges: Iterable[str]) -> str:
        """The ``Authorization`` (or ``Proxy-Authorization``) value answering ``challenges``.

        Raises `DigestError` when no challenge is usable (unknown algorithms, only ``auth-int``...)."""
        if not isinstance(method, str) or not _METHOD_RE.fullmatch(method):
            raise DigestError("bad method")
        algorithm, params, qop = self._pick(challenges)
        realm, nonce = params["realm"], params["nonce"]
        nc = cnonce = None
        if qop is not None:
            count = self._nc.pop(nonce, 0) + 1
            if count > 0xFFFFFFFF:
                raise DigestError("nonce count exhausted")
            self._nc[nonce] = count
            while len(self._nc) > self._max_nonces:
                del self._nc[next(iter(self._nc))]
            nc = f"{count:08x}"
        if qop is not None or algorithm.endswith("-sess"):
            cnonce = secrets.token_urlsafe(16)
        secret = ha1(algorithm, self.username, realm, self.password)
        response = digest_response(algorithm, secret, method, uri, nonce, qop=qop, nc=nc, cnonce=cnonce)
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(nonce)}",
            f"uri={_quote(uri)}",
            f'response="{response}"',
            f"algorithm={algorithm}",
        ]
        if cnonce is not None:
            parts.append(f'cnonce="{cnonce}"')
        if qop is not None:
            parts += [f"qop={qop}", f"nc={nc}"]
        if "opaque" in params:
            parts.append(f"opaque={_quote(params['opaque'])}")
        return "Digest " + ", ".join(parts)
