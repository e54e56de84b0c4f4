"""Which modules mypyc compiles, and whether their build or their sources run.

The modules of `COMPILED` (the per-datagram path of SIP: parsing, serialising, digest, steering, the
transaction layer, the engine from the socket to the handler and back, the registrar's REGISTER path, and with
SIP workers the hub that passes datagrams, events and barriers between the processes, and the event bus every
binding change is published on)
may be compiled by mypyc (`make compile`, scripts/compile.py): C extensions next to their sources, which
Python imports before the .py files. The sources stay the reference and a working fallback: they are
imported instead, all of them (mypyc's modules call one another directly, so a mix of compiled and source
modules would not be what was tested), when SWITCHBOARD_PURE_PYTHON is set (to anything but "" or "0"),
or when any source is newer than its build (edited since `make compile`: the build would run old code),
with a warning saying so.

This module is imported by the package's __init__, so the choice is made before any of them is imported.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import spec_from_file_location
from pathlib import Path

# dotted names under `switchboard`
COMPILED = (
    "sip.message",
    "sip.headers",
    "sip.digest",
    "sip.steer",
    "sip.rand",
    "sip.limits",
    "sip.transaction",
    "sip.endpoint",
    "sip.engine",
    "engine.registrar",
    "engine.workers",
    "events.bus",
)
PACKAGE = __name__.rpartition(".")[0]  # "switchboard"
_ROOT = Path(__file__).resolve().parent  # the package directory


def source(name: str, root: Path = _ROOT) -> Path:
    """The .py of module `name` (an entry of COMPILED)."""
    return root.joinpath(*name.split(".")).with_suffix(".py")


def compiled_files(root: Path = _ROOT) -> list[Path]:
    """The built extensions of `COMPILED` under the package directory `root`, and mypyc's shared runtime
    (beside the package)."""
    out = [source(name, root).with_suffix(suffix) for name in COMPILED for suffix in EXTENSION_SUFFIXES]
    return [p for p in out if p.exists()] + sorted(root.parent.glob("*__mypyc.*"))


def stale_modules(root: Path = _ROOT) -> list[str]:
    """The modules of `COMPILED` whose source changed after their extension was built (or that have none)."""
    out = []
    for name in COMPILED:
        py = source(name, root)
        times = [p.stat().st_mtime for p in (py.with_suffix(s) for s in EXTENSION_SUFFIXES) if p.exists()]
        if not times or max(times) < py.stat().st_mtime:
            out.append(name)
    return out


class _Sources:
    """A meta path finder that imports the .py source of every module of `COMPILED`."""

    _names = frozenset(f"{PACKAGE}.{name}" for name in COMPILED)

    @classmethod
    def find_spec(cls, fullname: str, path=None, target=None):
        if fullname not in cls._names:
            return None
        return spec_from_file_location(fullname, source(fullname.split(".", 1)[1]))


def _why_sources() -> str | None:
    """Why the sources run although a build is there; None when the build runs (or there is none)."""
    if os.environ.get("SWITCHBOARD_PURE_PYTHON", "") not in ("", "0"):
        return "SWITCHBOARD_PURE_PYTHON is set"
    stale = stale_modules()
    if stale:
        return f"sources newer than their mypyc build ({', '.join(stale)}): run `make compile`"
    return None


_built = bool(compiled_files())
_why = _why_sources() if _built else None
if _why is not None:
    sys.meta_path.insert(0, _Sources())
    if "PURE" not in _why:
        warnings.warn(
            f"switchboard's compiled modules run their pure-Python sources: {_why}", RuntimeWarning, stacklevel=2
        )
RUNS_COMPILED = _built and _why is None  # the mypyc build is what runs
