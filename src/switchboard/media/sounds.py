"""Finding and loading prompts and hold music; tone synthesis.

A sound name (`hello-world`, `digits/1`) is looked up in, in order: the `--sounds` directories,
`$SWITCHBOARD_SOUNDS` (os.pathsep-separated), /usr/share/asterisk/sounds/en,
/usr/share/asterisk/sounds, then the built-in set in this package (`sounds/`, see its README).
In each directory the extensions are tried in preference order `.ulaw`, `.alaw`, `.sln` (16-bit
8 kHz signed linear, native endianness as Asterisk writes it), `.wav` (PCM; 8-bit/24-bit, stereo
and other rates are converted with audioop). An absolute path is used as given (with or without
extension). Everything is loaded as 16-bit 8 kHz linear PCM and cached; the engine encodes and
cuts it into 20 ms frames per codec (cached too).
"""

from __future__ import annotations

import array
import math
import os
import wave
from pathlib import Path

from switchboard.media.codecs import audioop

EXTENSIONS = (".ulaw", ".alaw", ".sln", ".wav")
SYSTEM_DIRS = (Path("/usr/share/asterisk/sounds/en"), Path("/usr/share/asterisk/sounds"))
BUILTIN_DIR = Path(__file__).parent / "sounds"
RATE = 8000
FRAME_SAMPLES = 160  # 20 ms


class SoundNotFound(LookupError):
    pass


def search_path(extra: list[str] | tuple[str, ...] = ()) -> list[Path]:
    dirs = [Path(d) for d in extra]
    env = os.environ.get("SWITCHBOARD_SOUNDS")
    if env:
        dirs += [Path(d) for d in env.split(os.pathsep) if d]
    return dirs + list(SYSTEM_DIRS) + [BUILTIN_DIR]


def find(name: str, dirs: list[Path]) -> Path:
    """The file for a sound name (or absolute path); SoundNotFound if there is none."""
    p = Path(name)
    if p.is_absolute():
        if p.suffix in EXTENSIONS and p.is_file():
            return p
        for ext in EXTENSIONS:
            if (cand := p.with_name(p.name + ext)).is_file():
                return cand
        raise SoundNotFound(name)
    if ".." in p.parts or not name:
        raise SoundNotFound(name)
    for d in dirs:
        for ext in EXTENSIONS:
            cand = d / (name + ext)
            if cand.is_file():
                return cand
    raise SoundNotFound(name)


def load_linear(path: Path) -> bytes:
    """The file's audio as 16-bit 8 kHz mono linear PCM."""
    ext = path.suffix
    if ext == ".ulaw":
        return audioop.ulaw2lin(path.read_bytes(), 2)
    if ext == ".alaw":
        return audioop.alaw2lin(path.read_bytes(), 2)
    if ext == ".sln":
        data = path.read_bytes()
        return data[: len(data) & ~1]
    if ext == ".wav":
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            data = w.readframes(w.getnframes())
        if width == 1:  # WAV 8-bit is unsigned
            data = audioop.bias(data, 1, -128)
        if width != 2:
            data = audioop.lin2lin(data, width, 2)
        if channels == 2:
            data = audioop.tomono(data, 2, 0.5, 0.5)
        elif channels != 1:
            raise ValueError(f"{path}: {channels} channels")
        if rate != RATE:
            data, _ = audioop.ratecv(data, 2, 1, rate, RATE, None)
        return data
    raise ValueError(f"{path}: unknown sound format")


def frames(linear: bytes, samples: int = FRAME_SAMPLES) -> list[bytes]:
    """Linear PCM cut into frames of `samples` samples, the last padded with silence."""
    size = samples * 2
    if len(linear) % size:
        linear += b"\0" * (size - len(linear) % size)
    return [linear[i : i + size] for i in range(0, len(linear), size)]


def tone(freqs: tuple[float, ...], ms: int, amplitude: float = 0.25, start: int = 0) -> bytes:
    """A sum of sines, 16-bit 8 kHz linear; `start` = sample index (keeps phase across frames)."""
    n = ms * RATE // 1000
    amp = amplitude * 32767 / max(1, len(freqs))
    w = [2 * math.pi * f / RATE for f in freqs]
    samples = [int(amp * sum(math.sin(wi * (start + i)) for wi in w)) for i in range(n)]
    return array.array("h", samples).tobytes()  # native byte order, as audioop expects


DTMF_FREQS = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip


def melody() -> bytes:
    """The built-in hold music when a class has no files: a slow, soft arpeggio (about 6.4 s, loops)."""
    notes = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 293.66, 349.23, 440.0, 587.33, 440.0, 349.23,
             246.94, 311.13, 392.0, 493.88]  # fmt: skip
    out = []
    for f in notes:
        note = tone((f, f * 2), 400, amplitude=0.15)
        # a short fade-out at the end of each note, so the notes do not click
        head, tail = note[:-800], note[-800:]
        out.append(head + audioop.mul(tail, 2, 0.3))
    return b"".join(out)
