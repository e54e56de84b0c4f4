"""The SIP port answers real peers: sipsak and sipp OPTIONS over UDP, and a TCP client."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest


def test_healthz_reports_each_part(server):
    import httpx

    body = httpx.get(server.url + "/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["sip"] == "ok"


@pytest.mark.skipif(shutil.which("sipsak") is None, reason="sipsak (Debian package sipsak) not installed")
def test_sipsak_options_udp(server):
    out = subprocess.run(
        ["sipsak", "-vv", "-s", f"sip:probe@127.0.0.1:{server.sip_port}"], capture_output=True, text=True, timeout=20
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SIP/2.0 200 OK" in out.stdout and "Allow: OPTIONS" in out.stdout


def test_options_over_tcp_and_unknown_method(server):
    def request(method: str, branch: str) -> bytes:
        return (
            f"{method} sip:x@127.0.0.1:{server.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK{branch}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=abc\r\nTo: <sip:x@127.0.0.1>\r\n"
            f"Call-ID: {branch}@test\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    with socket.create_connection(("127.0.0.1", server.sip_port), timeout=5) as s:
        s.sendall(request("OPTIONS", "1") + request("MESSAGE", "2"))  # two in one segment
        data = b""
        while data.count(b"Content-Length: 0\r\n\r\n") < 2:
            chunk = s.recv(65536)
            assert chunk
            data += chunk
    first, second = data.split(b"\r\n\r\n")[:2]
    assert first.startswith(b"SIP/2.0 200 OK") and b"CSeq: 1 OPTIONS" in first
    assert second.startswith(b"SIP/2.0 501 Not Implemented")


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian package sip-tester) not installed")
def test_sipp_options(server, tmp_path):
    scenario = tmp_path / "options.xml"
    scenario.write_text("""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="options">
  <send><![CDATA[
OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
""")
    out = subprocess.run(
        [
            "sipp",
            f"127.0.0.1:{server.sip_port}",
            "-sf",
            str(scenario),
            "-m",
            "20",
            "-r",
            "50",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-nostdin",
            "-timeout",
            "15s",
            "-trace_err",
            "-error_file",
            str(tmp_path / "err.log"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
