"""Real SIP peers on loopback for the e2e tests and the SIP bench: Kamailio (an upstream registrar),
sipp (scenarios and UAS), baresip (a softphone), a raw UDP SIP client, and jade helpers to load
pjsip.conf. Nothing here needs a running `switchboard serve` of its own; the callers bring one.

Every peer binds 127.0.0.1 on a port free for both UDP and TCP, writes its files and log into a
directory the caller owns, and is stopped by the process (group) id it was started with.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from switchboard.sip.digest import DigestClient

SIPP_DIR = Path(__file__).parent / "e2e" / "sipp"
KAMAILIO_BIN = "/usr/sbin/kamailio"
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
BARESIP_MODULES = "/usr/lib/baresip/modules"
DEBIAN_PACKAGE = {"sipp": "sip-tester", "sipsak": "sipsak", "baresip": "baresip-core", "kamailio": "kamailio"}


# ---- small utilities ------------------------------------------------------------------------------
def which(tool: str) -> str | None:
    if tool == "kamailio":
        return shutil.which("kamailio") or (KAMAILIO_BIN if os.access(KAMAILIO_BIN, os.X_OK) else None)
    return shutil.which(tool)


def missing(*tools: str) -> str | None:
    """None when every tool is installed; else why not (for a skip reason)."""
    for tool in tools:
        if which(tool) is None:
            return f"{tool} not installed (Debian package {DEBIAN_PACKAGE.get(tool, tool)})"
    return None


def skip_without(*tools: str) -> None:
    """pytest.skip, with the reason, when one of the binaries is missing (a failure in strict mode)."""
    if (reason := missing(*tools)) is not None:
        from tests.conftest import skip_or_fail

        skip_or_fail(reason)


def free_port() -> int:
    """A 127.0.0.1 port free for both UDP and TCP (SIP peers bind the same number on each)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port")


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    """Poll check() until it returns something truthy (returned); AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def stop_process(
    proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10, group: bool = False
) -> int | None:
    """Signal one process we started (or its own process group, `group`), wait, SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None

    def send(s: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, s)
            else:
                proc.send_signal(s)

    send(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        return proc.wait(10)


# ---- SIP messages over a raw UDP socket -------------------------------------------------------------
_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "e": "content-encoding",
    "k": "supported",
    "s": "subject",
}


@dataclass
class SipMessage:
    """A received SIP message, parsed just enough for assertions (header names case-insensitive)."""

    first_line: str
    headers: list[tuple[str, str]]
    body: str
    raw: bytes

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        text = data.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:
                headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers, body, data)

    @property
    def status(self) -> int | None:
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if parts[0].startswith("SIP/") and len(parts) > 1 and parts[1].isdigit() else None

    @property
    def reason(self) -> str:
        parts = self.first_line.split(" ", 2)
        return parts[2] if len(parts) > 2 else ""

    @property
    def method(self) -> str | None:
        return None if self.first_line.startswith("SIP/") else self.first_line.split(" ", 1)[0]

    def get_all(self, name: str) -> list[str]:
        want = name.lower()
        return [v for n, v in self.headers if _COMPACT.get(n.lower(), n.lower()) == want]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    def __str__(self) -> str:
        return self.raw.decode("utf-8", "replace")


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


class SipUdpClient:
    """A bare UDP user agent talking to one SIP server: builds requests, retransmits on loopback
    loss, waits for the final response of its transaction, answers digest challenges with
    switchboard's DigestClient (SHA-256 preferred, MD5 otherwise)."""

    def __init__(
        self, server_port: int, server_host: str = "127.0.0.1", local_port: int = 0, user_agent: str = "sip-peers-test"
    ):
        self.server = (server_host, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", local_port))
        self.port = self.sock.getsockname()[1]
        self.user_agent = user_agent
        self.call_id = f"{secrets.token_hex(8)}@sip-peers"
        self.cseq = 0
        self.tag = secrets.token_hex(4)
        self.last_authorization: str | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SipUdpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def recv(self, timeout: float = 2.0) -> SipMessage | None:
        """The next datagram, or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return SipMessage.parse(data)

    def build(
        self,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        to: str | None = None,
        from_: str | None = None,
        call_id: str | None = None,
        cseq: int | None = None,
        branch: str | None = None,
        body: str = "",
    ) -> tuple[bytes, str]:
        """A request's bytes and its branch."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = branch or new_branch()
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{from_ or 'sip:probe@127.0.0.1'}>;tag={self.tag}",
            f"To: <{to or uri}>",
            f"Call-ID: {call_id or self.call_id}",
            f"CSeq: {cseq} {method}",
            f"User-Agent: {self.user_agent}",
        ]
        lines += [f"{n}: {v}" for n, v in headers]
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode(), branch

    def transaction(self, data: bytes, branch: str, timeout: float = 5.0, retransmit: float = 0.5) -> SipMessage | None:
        """Send a request and return its final response (None on timeout); provisional responses
        and strays (other branches) are skipped; UDP retransmission every `retransmit` seconds."""
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_send:
                self.send(data)
                next_send = now + retransmit
            msg = self.recv(max(0.01, min(next_send, deadline) - time.monotonic()))
            if msg is None or msg.status is None or msg.status < 200:
                continue
            if f"branch={branch}" in (msg.get("Via") or ""):
                return msg
        return None

    def request(
        self, method: str, uri: str, headers: Iterable[tuple[str, str]] = (), timeout: float = 5.0, **kw
    ) -> SipMessage | None:
        data, branch = self.build(method, uri, headers, **kw)
        return self.transaction(data, branch, timeout)

    def options(self, user: str = "ping", timeout: float = 5.0) -> SipMessage | None:
        host, port = self.server
        return self.request("OPTIONS", f"sip:{user}@{host}:{port}", timeout=timeout)

    def register(
        self,
        user: str,
        password: str | None = None,
        *,
        contacts: Iterable[str] | None = None,
        expires: int | None = 60,
        headers: Iterable[tuple[str, str]] = (),
        authorization: str | None = None,
        digest: DigestClient | None = None,
        timeout: float = 5.0,
    ) -> SipMessage | None:
        """REGISTER `user` (the aor) with the given Contact values (default: this socket) and Expires
        (None: no Expires header). A 401 is answered once with digest credentials when a password is
        given; `authorization` sends that Authorization value as is (no challenge round)."""
        host, port = self.server
        uri = f"sip:{host}:{port}"
        aor = f"sip:{user}@{host}"
        contacts = list(contacts) if contacts is not None else [f"<sip:{user}@127.0.0.1:{self.port}>"]
        base = [("Contact", c) for c in contacts] + list(headers)
        if expires is not None:
            base.append(("Expires", str(expires)))
        extra = [("Authorization", authorization)] if authorization else []
        resp = self.request("REGISTER", uri, base + extra, to=aor, from_=aor, timeout=timeout)
        if resp is None or resp.status != 401 or password is None or authorization:
            return resp
        client = digest or DigestClient(user, password)
        self.last_authorization = client.authorize("REGISTER", uri, resp.get_all("WWW-Authenticate"))
        return self.request(
            "REGISTER", uri, base + [("Authorization", self.last_authorization)], to=aor, from_=aor, timeout=timeout
        )


def sip_options_status(port: int, timeout: float = 2.0) -> int | None:
    """One OPTIONS over UDP to 127.0.0.1:port: the response status, None when nothing answers."""
    with SipUdpClient(port) as c:
        resp = c.options(timeout=timeout)
    return resp.status if resp is not None else None


# ---- jade (pjsip.conf and live views) ----------------------------------------------------------------
class Jade:
    """jade as the admin: login once, then `get` a result or `put_pjsip` the whole pjsip.conf."""

    def __init__(self, url: str, username: str, password: str):
        r = httpx.post(url + "/v1/admin/login", auth=(username, password), timeout=20)
        r.raise_for_status()
        self.token = r.json()["result"]["authtoken"]
        self.http = httpx.Client(base_url=url, params={"authtoken": self.token}, timeout=30)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Jade:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, method: str, path: str, **kw) -> httpx.Response:
        return self.http.request(method, "/v1" + path, **kw)

    def get(self, path: str, status: int = 200) -> Any:
        r = self.call("GET", path)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json().get("result") if status == 200 else r.json()

    def put_pjsip(self, text: str) -> None:
        r = self.call("PUT", "/admin/pjsip/configurations/pjsip.conf", json={"data": text})
        assert r.status_code == 200, r.text

    def contacts(self, aor: str | None = None) -> list[dict]:
        items = self.get("/admin/pjsip/contacts")["list"]
        return [c for c in items if aor is None or c["aor"] == aor]


def pjsip_account(name: str, password: str | None, *, algorithms: str | None = "md5", **aor: Any) -> str:
    """pjsip.conf text for one account: endpoint + auth (none when password is None) + aor named
    `name`. `algorithms` is the auth's supported_algorithms_uas (None: not set, so Asterisk's default, md5).
    aor options default to max_contacts = 1; pass e.g. maximum_expiration=120, remove_existing="yes"."""
    aor = {"max_contacts": 1, **aor}
    lines = [f"[{name}]", "type = endpoint", "context = default", "disallow = all", "allow = ulaw", f"aors = {name}"]
    if password is not None:
        lines.append(f"auth = {name}-auth")
        lines += [
            "",
            f"[{name}-auth]",
            "type = auth",
            "auth_type = userpass",
            f"username = {name}",
            f"password = {password}",
        ]
        if algorithms:
            lines.append(f"supported_algorithms_uas = {algorithms}")
    lines += ["", f"[{name}]", "type = aor"] + [f"{k} = {v}" for k, v in aor.items()]
    return "\n".join(lines) + "\n\n"


# ---- Kamailio ---------------------------------------------------------------------------------------
KAMAILIO_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children={children}
tcp_children={children}
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "xlog.so"
modparam("usrloc", "db_mode", 0)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("REGISTER")) {{
{log_register}        if (!pv_auth_check("$fd", "{password}", "0", "1")) {{ auth_challenge("$fd", "1"); exit; }}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    sl_send_reply("404", "Not Here");
}}
"""
# a stateful proxy (tm + rr + sl) that sends every call to one address: the baseline of bench/call_bench.py
KAMAILIO_PROXY_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children={children}
tcp_children={children}
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("OPTIONS") && !has_totag()) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK") && !t_check_trans()) {{ $du = "{target}"; forward(); exit; }}
        $du = "{target}";
        t_relay();
        exit;
    }}
    t_check_trans();
    record_route();
    $du = "{target}";
    t_relay();
}}
"""
_KAM_REGISTER_LOG = (
    '        xlog("L_NOTICE", "REGISTER from $fu expires=$hdr(Expires) proto=$pr '
    'auth=$(hdr(Authorization){s.len})\\n");\n'
)
_KAM_REGISTER_RE = re.compile(r"REGISTER from (\S+) expires=(\S*) proto=(\w+) auth=(\d*)")


@dataclass
class KamRegister:
    from_uri: str
    expires: str
    proto: str
    authorized: bool


@dataclass
class Kamailio:
    """Kamailio 5.6 from Debian as an upstream registrar on 127.0.0.1:port (UDP and TCP):
    REGISTER with digest against one password for every user (pv_auth_check, realm = From domain),
    usrloc in memory, OPTIONS → 200. With `log_registers`, each REGISTER is logged (`registers()`).
    With `proxy_to` ("sip:HOST:PORT"), a stateful proxy instead (tm + rr + sl): every request
    is record-routed and relayed there with t_relay (in-dialog requests without a Route too)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    password: str = "trunkpass"
    children: int = 2
    log_registers: bool = True
    proxy_to: str | None = None
    shm_mb: int | None = None  # its shared memory pool (-m); None: Kamailio's default (64 MB)
    proc: subprocess.Popen | None = None

    @property
    def cfg_path(self) -> Path:
        return self.workdir / f"kamailio-{self.port}.cfg"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"kamailio-{self.port}.log"

    def config(self) -> str:
        if self.proxy_to is not None:
            return KAMAILIO_PROXY_CFG.format(
                children=self.children, port=self.port, modules=KAMAILIO_MODULES, target=self.proxy_to
            )
        return KAMAILIO_CFG.format(
            children=self.children,
            port=self.port,
            modules=KAMAILIO_MODULES,
            password=self.password,
            log_register=_KAM_REGISTER_LOG if self.log_registers else "",
        )

    def start(self, timeout: float = 15) -> Kamailio:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cfg_path.write_text(self.config())
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        # own session: stop() signals the whole group (the main process and the children it forks)
        self.proc = subprocess.Popen(
            [which("kamailio") or KAMAILIO_BIN, "-f", str(self.cfg_path), "-DD", "-E"]
            + (["-m", str(self.shm_mb)] if self.shm_mb else []),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if sip_options_status(self.port, timeout=0.5) == 200 and self._tcp_open():
                return self
        self.stop()
        raise RuntimeError(f"kamailio did not answer OPTIONS on {self.port}:\n{self.log()[-4000:]}")

    def _tcp_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        code = stop_process(self.proc, sig, group=True)
        if self.proc is not None:  # children forked by kamailio share its process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        return code

    def kill(self) -> int | None:
        return self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 15) -> Kamailio:
        self.stop()
        return self.start(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def registers(self) -> list[KamRegister]:
        """The REGISTERs it received (with log_registers), oldest first."""
        return [
            KamRegister(m[1], m[2], m[3], bool(m[4] and m[4] != "0")) for m in _KAM_REGISTER_RE.finditer(self.log())
        ]


# ---- sipp -------------------------------------------------------------------------------------------
@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    successful: int
    failed: int
    elapsed: float  # wall-clock seconds of the sipp run

    @property
    def text(self) -> str:
        return (
            f"rc={self.returncode} successful={self.successful} failed={self.failed}\n"
            f"{self.stdout[-3000:]}\n{self.stderr[-2000:]}"
        )


def _screen_counter(text: str, name: str) -> int:
    """The cumulative value of a counter on sipp's last statistics screen."""
    found = re.findall(rf"{name}\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return int(found[-1]) if found else 0


def sipp_args(
    port: int,
    scenario: str | Path,
    *,
    local_port: int | None = None,
    inf: Path | None = None,
    keys: dict[str, str] | None = None,
    transport: str = "u1",
    extra: Iterable[str] = (),
) -> list[str]:
    scenario = Path(scenario)
    if not scenario.is_absolute():
        scenario = SIPP_DIR / scenario
    args = [
        "sipp",
        f"127.0.0.1:{port}",
        "-sf",
        str(scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port or free_port()),
        "-mp",
        str(free_port()),
        "-t",
        transport,
        "-nostdin",
    ]
    if inf is not None:
        args += ["-inf", str(inf)]
    for k, v in (keys or {}).items():
        args += ["-key", k, str(v)]
    return args + list(extra)


def run_sipp(
    port: int,
    scenario: str | Path,
    workdir: Path,
    *,
    calls: int = 1,
    rate: float | None = None,
    limit: int | None = None,
    timeout: float = 30,
    extra: Iterable[str] = (),
    **kw,
) -> SippResult:
    """Run a sipp UAC scenario against 127.0.0.1:port to completion (`calls` calls; `rate` calls/s
    and `limit` simultaneous calls when given); counts come from its final statistics screen."""
    mine = [
        "-m",
        str(calls),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(workdir / "sipp-errors.log"),
    ]
    if rate is not None:
        mine += ["-r", str(rate)]
    if limit is not None:
        mine += ["-l", str(limit)]
    args = sipp_args(port, scenario, extra=[*mine, *extra], **kw)
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 15, cwd=workdir)
    elapsed = time.monotonic() - started
    return SippResult(
        out.returncode,
        out.stdout,
        out.stderr,
        _screen_counter(out.stdout, "Successful call"),
        _screen_counter(out.stdout, "Failed call"),
        elapsed,
    )


def write_users_csv(path: Path, users: Iterable[tuple[str, str]]) -> Path:
    """An -inf file for the register scenarios: `user;[authentication username=user password=pass]`."""
    lines = ["SEQUENTIAL"] + [f"{u};[authentication username={u} password={p}]" for u, p in users]
    path.write_text("\n".join(lines) + "\n")
    return path


class SippUas:
    """sipp as a user agent server in the background (e.g. options_uas.xml) on 127.0.0.1:port."""

    def __init__(self, workdir: Path, scenario: str | Path = "options_uas.xml", port: int | None = None):
        self.workdir, self.port = workdir, port or free_port()
        self.scenario = scenario
        self.proc: subprocess.Popen | None = None

    def start(self) -> SippUas:
        args = sipp_args(0, self.scenario, local_port=self.port)
        args[1:2] = []  # a UAS has no remote host
        self.log_path = self.workdir / f"sipp-uas-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            args + ["-trace_err", "-error_file", str(self.workdir / "sipp-uas-errors.log")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        log.close()
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError(f"sipp UAS exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
        return self

    def stop(self) -> int | None:
        return stop_process(self.proc, signal.SIGTERM, timeout=5)

    def __enter__(self) -> SippUas:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- baresip ----------------------------------------------------------------------------------------
class Baresip:
    """baresip 1.0 headless: no audio driver, no UI module; one account from `accounts`, SIP on
    127.0.0.1:listen_port. It registers at start and unregisters on SIGTERM."""

    def __init__(self, workdir: Path, account: str, listen_port: int | None = None):
        self.workdir, self.account = workdir, account
        self.fixed_port = listen_port is not None
        self.listen_port = listen_port or free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, attempts: int = 5) -> Baresip:
        """Start it; baresip cannot bind port 0 and say which it got, and it binds TCP and TLS too
        (TLS on the next port), so a port another process took meanwhile shows as "init failed
        (Address already in use)": then it starts again on another port."""
        for _ in range(attempts):
            self._start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                text = self.log()
                if "baresip is ready" in text or self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if "Address already in use" not in self.log() or self.fixed_port:
                return self
            stop_process(self.proc, signal.SIGKILL)
            self.listen_port = free_port()
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config").write_text(
            "poll_method\tepoll\n"
            f"sip_listen\t127.0.0.1:{self.listen_port}\n"
            f"module_path\t{BARESIP_MODULES}\n"
            "module\tg711.so\n"
            "module_app\taccount.so\n"
        )
        (self.workdir / "accounts").write_text(self.account + "\n")
        self.log_path = self.workdir / "baresip.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - a fresh log per start (see start's retry)
        self.proc = subprocess.Popen(
            [which("baresip") or "baresip", "-f", str(self.workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        log.close()

    def stop(self) -> int | None:
        return stop_process(self.proc, signal.SIGTERM, timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


EXTENSIONS_PATH = "/admin/dialplan/configurations/extensions.conf"


@contextlib.contextmanager
def running_pbx(backend: str, tmp: Path, pjsip: str, files: dict[str, str], **env: str):
    """A real `serve` (SQLite or a fresh PostgreSQL database) with pjsip.conf and the other
    configuration files loaded through jade (`files`: the jade configurations path, e.g.
    "/admin/dialplan/configurations/extensions.conf" -> its text); yields (server, jade). On the way
    out it must stop cleanly (exit 0) and have logged no traceback."""
    from tests.conftest import ADMIN_PASSWORD, make_server

    srv, pg = make_server(backend, tmp, **env)
    srv.start()
    jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
    try:
        jade.put_pjsip(pjsip)
        for path, text in files.items():
            r = jade.call("PUT", path, json={"data": text})
            assert r.status_code == 200, (path, r.text)
        yield srv, jade
    finally:
        jade.close()
        code = srv.stop()
        log = srv.log()
        if pg:
            pg.drop()
    assert code == 0, f"serve did not stop cleanly ({code})"
    assert "Traceback" not in log, log


def cdrs(jade: Jade, **params) -> list[dict]:
    """jade's CDR list with filters (passed as params: the client's own token param would replace a
    query string written into the path)."""
    r = jade.call("GET", "/admin/cdr/cdrs", params={**params, "authtoken": jade.token})
    assert r.status_code == 200, r.text
    return r.json()["result"]["list"]
