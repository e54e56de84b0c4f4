"""Which SIP worker process handles a datagram (sans-I/O; see engine/workers.py for the processes).

With `SWITCHBOARD_SIP_WORKERS=N` (N > 1) N processes share the SIP UDP port (SO_REUSEPORT): the
kernel hands each datagram to one of them by a hash of its addresses, which knows nothing of SIP. The
process that receives a datagram asks `owner()` which process must handle it and passes it there:

- a REGISTER belongs to the worker that owns its address-of-record (the To URI's user): a CRC-32 of
  it modulo N. So every binding decision of one aor is taken in one process, one after the other
  (the registrar's per-aor queue), and the digest nonces signed with that process's key for that aor
  come back to it (their nonce-count replay state is that process's). A REGISTER without credentials
  over UDP is normally challenged where it arrives, statelessly, with the owner's key
  (sip/engine.SipEngine.challenge), and only what that declines comes here;
- an OPTIONS outside a dialog (a keep-alive or a qualify of us) is answered where it arrived: it
  changes nothing and needs no state;
- everything else goes to worker 0, the main process: INVITEs and every in-dialog request (the call
  engine), and every response (only the main process sends requests: qualify, trunk registration,
  calls), so a response reaches the process whose client transaction waits for it.

A datagram too broken to say (no method, no To) is handled where it arrived: its 400 needs no state.
"""

from __future__ import annotations

import re
import zlib

LOCAL = -1  # handle it here

# the To header (or its compact form t), and the user part of its URI
_TO_USER = re.compile(rb"\n(?:to|t)[ \t]*:[^\n]*?sips?:([^@;>\s]+)@", re.IGNORECASE)
_TO_LINE = re.compile(rb"\n(?:to|t)[ \t]*:([^\n]*)", re.IGNORECASE)
_TAG = re.compile(rb";[ \t]*tag[ \t]*=", re.IGNORECASE)


def aor_owner(aor: str | bytes, workers: int) -> int:
    """The worker that decides this aor's bindings."""
    if isinstance(aor, str):
        aor = aor.encode("utf-8", "surrogateescape")
    return zlib.crc32(aor) % workers if workers > 1 else 0


def owner(data: bytes, workers: int) -> int:
    """The index of the worker that must handle `data`, or LOCAL."""
    if workers <= 1:
        return LOCAL
    if data[:8] == b"SIP/2.0 ":
        return 0
    space = data.find(b" ", 0, 32)
    if space <= 0:
        return LOCAL
    method = data[:space]
    end = data.find(b"\r\n\r\n")  # the header section: searched in place, not copied
    if end < 0:
        end = len(data)
    if method == b"REGISTER":
        m = _TO_USER.search(data, 0, end)
        return aor_owner(m[1], workers) if m else LOCAL
    if method == b"OPTIONS":
        line = _TO_LINE.search(data, 0, end)
        if line is None:
            return LOCAL
        return 0 if _TAG.search(line[1]) else LOCAL
    return 0
