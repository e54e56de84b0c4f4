"""SIP: a sans-I/O core (message parsing and building) and the asyncio transports.

The modules of `COMPILED` may be compiled by mypyc (`make compile`, scripts/compile.py): C extensions next
to their sources, which Python imports before the .py files. The sources stay the reference and a working
fallback: they are imported instead, all of them (mypyc's modules call one another directly, so a mix of
compiled and source modules would not be what was tested), when SWITCHBOARD_PURE_PYTHON is set (to
anything but "" or "0"), or when any source is newer than its build (edited since `make compile`: the
build would run old code), with a warning saying so.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import spec_from_file_location
from pathlib import Path

# the hot path of every SIP transaction: parsing, serialising, digest, steering, transactions, and the
# engine (from the socket to the handler and back)
COMPILED = ("message", "headers", "digest", "steer", "rand", "limits", "transaction", "endpoint", "engine")
_HERE = Path(__file__).resolve().parent


def compiled_files(here: Path = _HERE) -> list[Path]:
    """The built extensions of `COMPILED` in the package directory `here`, and mypyc's shared runtime
    (beside the top-level package)."""
    out = [here / f"{name}{suffix}" for name in COMPILED for suffix in EXTENSION_SUFFIXES]
    return [p for p in out if p.exists()] + sorted(here.parent.parent.glob("*__mypyc.*"))


def stale_modules(here: Path = _HERE) -> list[str]:
    """The modules of `COMPILED` whose source changed after their extension was built (or that have none)."""
    out = []
    for name in COMPILED:
        built = [here / f"{name}{suffix}" for suffix in EXTENSION_SUFFIXES]
        times = [p.stat().st_mtime for p in built if p.exists()]
        if not times or max(times) < (here / f"{name}.py").stat().st_mtime:
            out.append(name)
    return out


class _Sources:
    """A meta path finder that imports the .py source of every module of `COMPILED`."""

    @staticmethod
    def find_spec(fullname: str, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in COMPILED:
            return None
        return spec_from_file_location(fullname, _HERE / f"{name}.py")


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
        warnings.warn(f"switchboard.sip runs its pure-Python sources: {_why}", RuntimeWarning, stacklevel=2)
RUNS_COMPILED = _built and _why is None  # the mypyc build is what runs
