"""The hot modules' mypyc build (scripts/compile.py) and their pure-Python fallback (switchboard/compiled.py).

`make test` runs the whole suite on the build, then tests/unit/sip and the registrar's tests again with
SWITCHBOARD_PURE_PYTHON=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import switchboard.compiled as sip
from switchboard.engine import registrar
from switchboard.sip import endpoint, message
from tests.conftest import skip_or_fail

PURE = os.environ.get("SWITCHBOARD_PURE_PYTHON", "") not in ("", "0")
SAMPLE = (
    b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\n"
    b"Contact: <sip:alice@10.0.0.1:5060>;expires=60\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)
PROBE = """
import json, sys
import switchboard.compiled as sip
from switchboard.engine import registrar
from switchboard.sip import endpoint, message
msg = message.parse(bytes.fromhex(sys.argv[1]))
resp = message.response_to(msg, 200, headers=[("Server", "x")])
resp.headers = [h for h in resp.headers if h[0] != "To"]  # its tag is random
print(json.dumps({"files": [message.__file__, endpoint.__file__, registrar.__file__], "compiled": sip.RUNS_COMPILED,
                  "runtime": any(m.endswith("__mypyc") for m in sys.modules), "answer": resp.to_bytes().hex(),
                  "cseq": msg.cseq}))
"""


def _probe(pure: bool) -> dict:
    env = os.environ | {"SWITCHBOARD_PURE_PYTHON": "1" if pure else "0"}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE, SAMPLE.hex()], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_the_build_is_what_runs():
    """Where the build exists (CI builds it: `make test` compiles first), the extensions are imported;
    with SWITCHBOARD_PURE_PYTHON the sources are."""
    if PURE:
        assert not sip.RUNS_COMPILED
        assert all(m.__file__.endswith(".py") for m in (message, endpoint, registrar))
        return
    if not sip.compiled_files():
        skip_or_fail("the SIP core is not compiled here (make compile)")
    assert sip.RUNS_COMPILED
    for module in (message, endpoint, registrar):
        assert module.__file__.endswith(tuple(EXTENSION_SUFFIXES)), module.__file__


def test_pure_python_fallback_answers_the_same():
    """SWITCHBOARD_PURE_PYTHON=1 imports every compiled module's source and none of mypyc's runtime; both
    builds parse a REGISTER and render its answer to the same bytes."""
    pure = _probe(pure=True)
    assert all(f.endswith(".py") for f in pure["files"]) and not pure["compiled"] and not pure["runtime"]
    if not sip.compiled_files():
        skip_or_fail("the SIP core is not compiled here (make compile)")
    built = _probe(pure=False)
    assert built["compiled"] and built["runtime"]
    assert not any(f.endswith(".py") for f in built["files"])
    assert built["answer"] == pure["answer"] and built["cseq"] == pure["cseq"] == [2, "REGISTER"]


def _package(tmp_path: Path) -> Path:
    here = tmp_path / "switchboard"
    for name in sip.COMPILED:
        sip.source(name, here).parent.mkdir(parents=True, exist_ok=True)
        sip.source(name, here).write_text("")
    return here


def test_a_module_edited_after_its_build_is_stale(tmp_path):
    """A source newer than its extension (edited after `make compile`), or one never built, makes the
    sources run (all of them: a mix is not what was tested)."""
    here = _package(tmp_path)
    assert sorted(sip.stale_modules(here)) == sorted(sip.COMPILED)  # nothing built
    past = time.time() - 60
    for name in sip.COMPILED:
        os.utime(sip.source(name, here), (past, past))
        sip.source(name, here).with_suffix(EXTENSION_SUFFIXES[0]).write_bytes(b"")
    (tmp_path / f"abc__mypyc{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    assert sip.stale_modules(here) == []
    assert len(sip.compiled_files(here)) == len(sip.COMPILED) + 1  # and mypyc's shared runtime
    (here / "sip" / "digest.py").write_text("# edited\n")
    assert sip.stale_modules(here) == ["sip.digest"]
    (here / "engine" / "registrar.py").write_text("# edited\n")
    assert sip.stale_modules(here) == ["sip.digest", "engine.registrar"]
