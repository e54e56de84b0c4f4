"""Cryptographically random bytes for tags, branches and nonces, without a system call each.

`os.urandom` is one getrandom(2) system call per use, and the engine draws random bytes several
times per transaction (To tag, nonce, branch). This draws 4 KiB at a time from `os.urandom` and
hands out consecutive slices: the same kernel CSPRNG output, each byte used once.

The slices of a draw are cut at once, per size asked for (bytes, or already in hex for `token_hex`),
and handed out by a list iterator: taking the next one is a single C call, which the GIL makes atomic,
so two threads never get the same slice without a lock on every call (the lock only serialises refills;
two threads refilling at once each draw their own bytes). A forked child starts with no slices
(`os.register_at_fork`), so parent and child never hand out the same bytes. Sizes above `_SLICED_MAX`
(rare) come from `os.urandom` directly."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

_POOL_SIZE = 4096
_SLICED_MAX = 32  # bytes
_lock = threading.Lock()
_next_bytes: dict[int, Callable[[], bytes]] = {}  # n -> next() of the unused n-byte slices of one draw
_next_hex: dict[int, Callable[[], str]] = {}  # n -> the same for n bytes in hex


def _refill(n: int, hexed: bool) -> bytes | str:
    """A fresh draw cut into n-byte slices: returns the first, keeps the rest for the next calls."""
    with _lock:
        pool = os.urandom(_POOL_SIZE)
        if hexed:
            text, step = pool.hex(), 2 * n
            chunks: list = [text[i : i + step] for i in range(0, len(text) - step + 1, step)]
            table: dict = _next_hex
        else:
            chunks = [pool[i : i + n] for i in range(0, _POOL_SIZE - n + 1, n)]
            table = _next_bytes
        take = table[n] = iter(chunks).__next__
        return take()


def token_bytes(n: int) -> bytes:
    """`n` random bytes (what `secrets.token_bytes(n)` returns)."""
    try:
        return _next_bytes[n]()
    except KeyError:
        if not 0 < n <= _SLICED_MAX:
            return os.urandom(n)
    except StopIteration:
        pass
    return _refill(n, False)  # type: ignore[return-value]


def token_hex(n: int) -> str:
    """`n` random bytes in hex (what `secrets.token_hex(n)` returns)."""
    try:
        return _next_hex[n]()
    except KeyError:
        if not 0 < n <= _SLICED_MAX:
            return os.urandom(n).hex()
    except StopIteration:
        pass
    return _refill(n, True)  # type: ignore[return-value]


def _forget_pool() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork
    _next_bytes.clear()
    _next_hex.clear()


os.register_at_fork(after_in_child=_forget_pool)
