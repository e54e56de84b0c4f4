"""The README's tour, typed literally: its shell blocks run in order in one bash (as the README says
to), against a real `serve` started as its first block says, so the tour cannot silently break.

Filled in the way the README says: the ports (8081, 5060 and the tour's 8082, 5070, 8090) become
free ones, and `make run` is this test's own `serve` with the same admin password. The shell runs
in a scratch folder holding `.venv` (a link to this interpreter's environment) and
`tests/carrier_data.json`, as a clone would. Each top-level command is marked in the transcript
(a DEBUG trap), so the checks below look at what each command printed; `set -e -o pipefail` makes
any failing command fail the test, and the background programs the tour starts are killed with the
shell's process group."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_server
from tests.sip_peers import free_port, skip_without

ROOT = Path(__file__).resolve().parents[2]
MARK = "@@CMD "

# (a piece of the command as bash shows it: continuation lines joined, comments gone; which of the
# commands containing it, 0 = the first; what its output must match): what the README says each does
EXPECTED = [
    ("$B/healthz", 0, r'"status":"ok".*"database":"ok".*"sip":"ok"'),
    ("$A $B/users/me", 0, r'"username":"admin"'),
    ('{"user": {"username": "carlos"', 0, r'"username":"carlos"'),
    ("-X POST $B/users/$ME/endpoints", 0, r"HTTP/1.1 201.*[Ll]ocation: \S*/endpoints/\d+"),
    ('endpoints?name=test"', 0, r'"metadata":\{"count":1\}'),
    (r"\"server_id\": $SID", 0, r'"codec":"G.729"'),
    ("endpoints?deleted", 0, r'"count":1'),
    ("<ip-address>10.9.9.9</ip-address>", 0, r"<errors>\s*<error>"),
    ("sipsak -v -s sip:ping@", 0, r"SIP/2.0 200 OK"),
    ("dialplan/sdps?authtoken", 0, r'"statuscode":200'),
    ("configurations/extensions.conf?authtoken", 0, r'"statuscode":400'),
    ("park/parkinglots?authtoken", 0, r'"edvina"'),
    ("sipsak -v -s sip:ping@", 1, r"SIP/2.0 503"),
    ("security/bans?authtoken", 0, r'"list":\[\]'),
    ("core/systems?authtoken", 0, r'"cdr_enabled":"Yes".*"processed_calls":0'),
    ("cdr/cdrs?page=1", 0, r'"list":\[\].*"total":0'),
    ('"endpoint": "PJSIP/nobody"', 0, r'"statuscode":404'),
    ("-U -i -s sip:alice@", 0, r"completed successful"),
    ("pjsip/contacts?authtoken", 0, r'"aor":"alice".*"user_agent":"sipsak'),
    ("peers/alice?authtoken", 0, r'"status":"Registered"'),
    ("api/providers/list", -1, r'"status":"ONLINE"'),
    # the probe reached the endpoint (this server's SIP port): packets came back, a clean line's MOS
    ("voip_tests/$TID/results?limit=10", 0, r'"packets_received":[1-9].*"loss_pct":0\.0.*"mos":4\.'),
    ("voip_tests/$TID/summary", 0, r'"count":\s*[1-9]'),
    ("phone_numbers/+15550001111/device", 0, r'"mdn":"\+15550001111"'),
    ("usage/audit?from=", 0, r'"status":"success"'),
    ("usage/audit/201701/csv", 0, r"\+1555"),
    ("-U -i -s sip:joe@", 0, r"completed successful"),
    ("call_uac_auth.xml -s 700", 0, r"Successful call\s*\|\s*0\s*\|\s*1"),
    ("cdr/cdrs?dst=700", -1, r'"disposition":"ANSWERED".*"lastapp":"MusicOnHold"'),
]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def transcript_sections(out: str) -> list[tuple[str, str]]:
    """[(command, what it printed)] from the DEBUG-trap marks."""
    parts = out.split("\n" + MARK)
    sections = []
    for part in parts[1:]:
        cmd, _, rest = part.partition("\n" + MARK[:-1] + "END\n")
        sections.append((cmd, rest))
    return sections


def test_the_readme_tour_works_typed_literally(tmp_path):
    skip_without("sipsak", "sipp", "sox")
    blocks = shell_blocks((ROOT / "README.md").read_text())
    assert "make run" in blocks[0] and "make test" in blocks[0], blocks[0]  # the opening two commands
    start = blocks[1]
    assert "SWITCHBOARD_ADMIN_PASSWORD=change-me-now make run" in start
    tour = "\n".join(blocks[2:])

    server, _ = make_server(
        "sqlite", tmp_path / "var", SWITCHBOARD_ADMIN_PASSWORD="change-me-now", SWITCHBOARD_LOG_LEVEL="info"
    )
    (tmp_path / "var").mkdir()
    server.start()  # on ports it binds itself (0) and reports
    # the ports of the programs the tour itself starts must be chosen before they start
    ports = {
        "8081": server.http_port,
        "5060": server.sip_port,
        "8082": free_port(),
        "5070": free_port(),
        "8090": free_port(),
    }
    for old, new in ports.items():
        tour = re.sub(rf"\b{old}\b", str(new), tour)  # as host:port and as a JSON "port"
    assert "change-me-now" in tour

    work = tmp_path / "clone"
    (work / "tests").mkdir(parents=True)
    os.symlink(Path(sys.executable).parent.parent, work / ".venv")
    shutil.copy(ROOT / "tests" / "carrier_data.json", work / "tests" / "carrier_data.json")
    shutil.copytree(ROOT / "tests" / "e2e" / "sipp", work / "tests" / "e2e" / "sipp")

    script = f'set -e -o pipefail\ntrap \'printf "\\n{MARK}%s\\n{MARK[:-1]}END\\n" "$BASH_COMMAND"\' DEBUG\n' + tour
    (work / "tour.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"  # no venv on PATH: the README puts it there
    proc = subprocess.Popen(
        ["bash", "tour.sh"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("the tour did not finish in 300 s:\n" + out.decode(errors="replace")[-5000:])
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the upstream serve, the probe, the sandbox
        except ProcessLookupError:
            pass
        code = server.stop()
    text = out.decode(errors="replace")
    if keep := os.environ.get("SWITCHBOARD_TEST_TOUR_TRANSCRIPT"):  # to read what each command printed
        Path(keep).write_text(text)
    assert proc.returncode == 0, f"the tour stopped at a failing command:\n{text[-6000:]}"
    assert code == 0 and "Traceback" not in server.log(), server.log()[-3000:]

    sections = transcript_sections(text)
    commands = [c for c, _ in sections]
    for piece, nth, pattern in EXPECTED:
        hits = [i for i, c in enumerate(commands) if piece in c]
        assert len(hits) > nth if nth >= 0 else hits, f"the tour has no command #{nth} containing {piece!r}"
        i = hits[nth]
        printed = "".join(o for _, o in sections[i : i + 2])  # a pipeline's last part prints
        assert re.search(pattern, printed, re.S), f"{piece!r} printed:\n{printed[:3000]}"
