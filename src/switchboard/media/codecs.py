"""G.711 (PCMU µ-law, PCMA A-law) and 16-bit 8 kHz signed linear PCM.

Bulk conversions go through the standard library's `audioop` (C speed; present in Python 3.11
and 3.12). µ-law⇄A-law transcoding, the relay's hot path, is a 256-entry `bytes.translate`
table built once from audioop. `ulaw_to_linear`/`alaw_to_linear` are the ITU-T G.711 decoding
formulas in plain Python, kept as the reference the unit tests hold audioop and the tables to.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # noqa: F401  (deprecated in 3.11, removed in 3.13: the one place it is imported)

__all__ = ["audioop", "Codec", "CODECS", "PCMU", "PCMA", "ULAW_TO_ALAW", "ALAW_TO_ULAW", "transcode_table"]


def ulaw_to_linear(b: int) -> int:
    """G.711 µ-law byte to a 16-bit sample (the decoder of ITU-T G.711 / Sun's g711.c)."""
    b = ~b & 0xFF
    t = ((b & 0x0F) << 3) + 0x84
    t <<= (b & 0x70) >> 4
    return (0x84 - t) if b & 0x80 else (t - 0x84)


def alaw_to_linear(b: int) -> int:
    """G.711 A-law byte to a 16-bit sample."""
    b ^= 0x55
    t = (b & 0x0F) << 4
    seg = (b & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if b & 0x80 else -t


ULAW_TO_ALAW = bytes(audioop.lin2alaw(audioop.ulaw2lin(bytes([i]), 2), 2)[0] for i in range(256))
ALAW_TO_ULAW = bytes(audioop.lin2ulaw(audioop.alaw2lin(bytes([i]), 2), 2)[0] for i in range(256))


@dataclass(frozen=True)
class Codec:
    name: str
    default_pt: int
    silence: int  # the byte that encodes 0

    def encode(self, linear: bytes) -> bytes:
        return audioop.lin2ulaw(linear, 2) if self.name == "PCMU" else audioop.lin2alaw(linear, 2)

    def decode(self, payload: bytes) -> bytes:
        return audioop.ulaw2lin(payload, 2) if self.name == "PCMU" else audioop.alaw2lin(payload, 2)


PCMU = Codec("PCMU", 0, 0xFF)
PCMA = Codec("PCMA", 8, 0xD5)
CODECS = {"PCMU": PCMU, "PCMA": PCMA}


def transcode_table(src: Codec, dst: Codec) -> bytes | None:
    """The translate table from src to dst, None when they are the same codec."""
    if src is dst:
        return None
    return ULAW_TO_ALAW if src is PCMU else ALAW_TO_ULAW
