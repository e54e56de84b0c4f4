"""Cryptographically random bytes for tags, branches and nonces, without a system call each.

`os.urandom` is one getrandom(2) system call per use, and the engine draws random bytes several
times per transaction (To tag, nonce, branch). This draws 4 KiB at a time from `os.urandom` and
hands out consecutive slices: the same kernel CSPRNG output, each byte used once. A forked child
starts with an empty pool (`os.register_at_fork`), so parent and child never hand out the same
bytes; a lock keeps two threads from taking the same slice."""

from __future__ import annotations

import os
import threading

_POOL_SIZE = 4096
_lock = threading.Lock()
_pool = b""
_pos = 0


def token_bytes(n: int) -> bytes:
    """`n` random bytes (what `secrets.token_bytes(n)` returns)."""
    global _pool, _pos
    with _lock:
        end = _pos + n
        if end > len(_pool):
            _pool, _pos, end = os.urandom(max(_POOL_SIZE, n)), 0, n
        out = _pool[_pos:end]
        _pos = end
    return out


def token_hex(n: int) -> str:
    """`n` random bytes in hex (what `secrets.token_hex(n)` returns)."""
    return token_bytes(n).hex()


def _forget_pool() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_forget_pool)
