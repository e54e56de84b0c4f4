"""Compile the hot modules with mypyc, in place: `make compile` (run by `make` before tests, benches and `run`).

The modules of `switchboard.compiled.COMPILED` (parsing, serialising, digest, steering, the transaction layer,
the engine's per-datagram path, the registrar) are built as C extensions next to their sources
(`src/switchboard/sip/*.so`, `src/switchboard/engine/registrar*.so`, plus mypyc's shared runtime
`src/*__mypyc*.so`); Python imports an extension before a .py of the same name. The sources stay the reference
and the fallback: without a C compiler or mypy, with SWITCHBOARD_PURE_PYTHON=1, or when a source is newer than
its build (edited since), the package runs them unchanged (see switchboard/compiled.py).

Measured (bench/README.md): OPTIONS ~28 % less CPU per transaction, REGISTER with digest ~9 % less.

`python scripts/compile.py --clean` removes the built files (the pure-Python package again).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

with warnings.catch_warnings():  # (that a source is newer than its build: it is about to be rebuilt)
    warnings.simplefilter("ignore")
    from switchboard.compiled import COMPILED, compiled_files, source  # noqa: E402 - after the path tweak


def clean() -> None:
    for path in compiled_files(SRC / "switchboard"):
        path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args()
    clean()
    if args.clean:
        return 0
    sources = [str(source(name, SRC / "switchboard").relative_to(SRC)) for name in COMPILED]
    with tempfile.TemporaryDirectory(prefix="switchboard-mypyc-") as work:
        # mypyc builds under the working directory (build/) and copies the extensions into place (--inplace)
        env = os.environ | {"MYPY_CACHE_DIR": str(Path(work) / "mypy-cache")}
        cmd = [sys.executable, "-m", "mypyc", "--config-file", str(ROOT / "pyproject.toml"), *sources]
        out = subprocess.run(cmd, cwd=SRC, env=env, capture_output=True, text=True)
        shutil.rmtree(SRC / "build", ignore_errors=True)
    if out.returncode != 0:
        clean()  # never leave a partial set
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        sys.stderr.write("\nmypyc failed: the hot modules stay pure Python\n")
        return out.returncode
    built = compiled_files(SRC / "switchboard")
    print(f"compiled {len(COMPILED)} modules with mypyc ({len(built)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
