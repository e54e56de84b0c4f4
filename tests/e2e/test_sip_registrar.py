"""The registrar against real peers on loopback: sipp and baresip register with digest (right and
wrong password), a raw UDP client drives the binding rules (expiry clamping, 423, Expires: 0,
`Contact: *`, max_contacts, unknown names answered as known ones, SHA-256 and nonce-count
replay), sipp answers qualify OPTIONS, sipsak asks OPTIONS, and malformed input gets 400 or silence. The jade live views
(/admin/pjsip/contacts, /admin/pjsip/aors, /peers, /device_states) show what the registrar did.

Runs against a server of its own (the rules need a pjsip.conf of their own, and failed
authentications count against 127.0.0.1); the throttle and restart tests start their own too."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time

import pytest

from switchboard.sip.digest import DigestClient
from tests.conftest import ADMIN_PASSWORD, make_server
from tests.sip_peers import (
    Baresip,
    Jade,
    SipMessage,
    SippUas,
    SipUdpClient,
    free_port,
    pjsip_account,
    run_sipp,
    skip_without,
    wait_for,
    write_users_csv,
)

SIPP_USERS = [(f"sipp{i}", f"sipp-pass-{i}") for i in range(1, 4)]

PJSIP = "".join(
    [
        # as written for Asterisk: no supported_algorithms_uas, so MD5 alone is offered and stock sipp registers
        *(pjsip_account(u, p, algorithms=None) for u, p in SIPP_USERS),
        pjsip_account("wrongpw", "right-pass"),
        pjsip_account("clamp", "clamp-pass", minimum_expiration=30, maximum_expiration=120),
        pjsip_account("unreg", "unreg-pass"),
        pjsip_account("wild", "wild-pass", max_contacts=3),
        pjsip_account("replace", "replace-pass", remove_existing="yes"),
        pjsip_account("strict", "strict-pass", remove_existing="no"),
        pjsip_account("sha", "sha-pass", algorithms="sha-256,md5"),
        pjsip_account("bare", "bare-pass"),
        pjsip_account("barebad", "barebad-pass"),
        pjsip_account("qual", "qual-pass", qualify_frequency=1, qualify_timeout=1),
        pjsip_account("open", None),
    ]
)


@pytest.fixture(scope="module")
def reg(backend, tmp_path_factory):
    """(server, jade) with the accounts above loaded."""
    tmp = tmp_path_factory.mktemp(f"sip-registrar-{backend}")
    srv, pg = make_server(backend, tmp, SWITCHBOARD_SIP_AUTH_FAILURES_PER_MINUTE="100000")
    srv.start()
    jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
    jade.put_pjsip(PJSIP)
    yield srv, jade
    jade.close()
    code = srv.stop()
    log = srv.log()
    if pg:
        pg.drop()
    assert code == 0, f"serve did not stop cleanly ({code})"
    assert "Traceback" not in log, log


@pytest.fixture
def client(reg):
    srv, _ = reg
    with SipUdpClient(srv.sip_port) as c:
        yield c


def contact_uris(jade: Jade, aor: str) -> list[str]:
    return sorted(c["uri"] for c in jade.contacts(aor))


def response_contacts(resp) -> dict[str, int]:
    """The 200's Contact list: uri -> expires."""
    out = {}
    for value in resp.get_all("Contact"):
        for part in value.split(","):
            m = re.match(r"\s*<([^>]+)>.*;expires=(\d+)", part)
            assert m, value
            out[m.group(1)] = int(m.group(2))
    return out


# ---- sipp -------------------------------------------------------------------------------------------
def test_sipp_registers_with_digest_and_the_views_show_it(reg, tmp_path):
    skip_without("sipp")
    srv, jade = reg
    csv = write_users_csv(tmp_path / "users.csv", SIPP_USERS)
    local = free_port()
    before = int(time.time())
    out = run_sipp(
        srv.sip_port,
        "register_auth.xml",
        tmp_path,
        calls=len(SIPP_USERS),
        rate=10,
        inf=csv,
        keys={"expires": "300"},
        local_port=local,
        extra=["-cid_str", "regtest-%u-%p@%s"],
    )
    assert out.returncode == 0 and out.successful == len(SIPP_USERS) and out.failed == 0, out.text
    for user, _ in SIPP_USERS:
        contacts = jade.contacts(user)
        assert len(contacts) == 1, contacts
        c = contacts[0]
        assert c["uri"] == f"sip:{user}@127.0.0.1:{local};transport=UDP", c
        assert c["via_address"] == f"127.0.0.1:{local}"
        assert c["user_agent"] == "SIPp register_auth"
        assert c["call_id"].startswith("regtest-") and c["call_id"].endswith("@127.0.0.1"), c
        assert before + 300 - 2 <= c["reg_expire"] <= int(time.time()) + 300 + 2, c
        assert c["endpoint_name"] == user and c["status"] == "Unknown"
        aor = jade.get(f"/admin/pjsip/aors/{user}")
        assert aor["contacts_registered"] == 1 and aor["total_contacts"] == 1, aor
        assert aor["contacts"] == f"{user}/{c['uri']}"
        peer = jade.get(f"/peers/PJSIP/{user}")
        assert peer["status"] == "Registered" and peer["address"] == f"127.0.0.1:{local}", peer
        assert peer["monitor_status"] == "Unmonitored"
        assert jade.get(f"/device_states/PJSIP/{user}")["state"] == "NOT_INUSE"


def test_sipp_wrong_password_gets_401_then_403_and_no_binding(reg, tmp_path):
    skip_without("sipp")
    srv, jade = reg
    csv = write_users_csv(tmp_path / "wrong.csv", [("wrongpw", "not-the-password")])
    out = run_sipp(srv.sip_port, "register_forbidden.xml", tmp_path, calls=1, inf=csv, keys={"expires": "300"})
    assert out.returncode == 0 and out.successful == 1, out.text
    assert jade.contacts("wrongpw") == []
    assert jade.get("/peers/PJSIP/wrongpw")["status"] == "Unregistered"
    assert jade.get("/device_states/PJSIP/wrongpw")["state"] == "UNAVAILABLE"
    assert "REGISTER authentication failed" in srv.log()


# ---- binding rules (raw client) -----------------------------------------------------------------------
def test_expires_above_maximum_is_lowered(reg, client):
    _, jade = reg
    resp = client.register("clamp", "clamp-pass", expires=3600)
    assert resp is not None and resp.status == 200, resp
    assert set(response_contacts(resp).values()) == {120}, str(resp)
    assert resp.get("Date"), str(resp)
    (c,) = jade.contacts("clamp")
    assert abs(c["reg_expire"] - (time.time() + 120)) <= 3, c
    # the Contact's own expires parameter wins over the header, and is clamped too
    uri = f"sip:clamp@127.0.0.1:{client.port}"
    resp = client.register("clamp", "clamp-pass", contacts=[f"<{uri}>;expires=90"], expires=3600)
    assert resp.status == 200 and response_contacts(resp) == {uri: 90}, str(resp)


def test_expires_below_minimum_is_423_with_min_expires(reg, client):
    _, jade = reg
    uri = f"sip:clamp@127.0.0.1:{client.port};brief"
    resp = client.register("clamp", "clamp-pass", contacts=[f"<{uri}>"], expires=10)
    assert resp is not None and resp.status == 423, str(resp)
    assert resp.get("Min-Expires") == "30", str(resp)
    assert uri not in contact_uris(jade, "clamp")


def test_expires_zero_unregisters(reg, client):
    _, jade = reg
    assert client.register("unreg", "unreg-pass", expires=60).status == 200
    assert len(jade.contacts("unreg")) == 1
    assert jade.get("/peers/PJSIP/unreg")["status"] == "Registered"
    resp = client.register("unreg", "unreg-pass", expires=0)
    assert resp.status == 200 and not resp.get_all("Contact"), str(resp)
    assert jade.contacts("unreg") == []
    assert jade.get("/admin/pjsip/aors/unreg")["contacts_registered"] == 0
    assert jade.get("/peers/PJSIP/unreg")["status"] == "Unregistered"
    assert jade.get("/device_states/PJSIP/unreg")["state"] == "UNAVAILABLE"


def test_wildcard_contact_with_expires_zero_removes_all(reg, client):
    _, jade = reg
    uris = [f"sip:wild@127.0.0.1:{client.port};n={i}" for i in range(3)]
    resp = client.register("wild", "wild-pass", contacts=[f"<{u}>" for u in uris], expires=60)
    assert resp.status == 200 and set(response_contacts(resp)) == set(uris), str(resp)
    assert contact_uris(jade, "wild") == sorted(uris)
    assert jade.get("/admin/pjsip/aors/wild")["contacts_registered"] == 3
    bad = client.register("wild", "wild-pass", contacts=["*"], expires=60)  # `*` needs Expires: 0
    assert bad.status == 400, str(bad)
    assert contact_uris(jade, "wild") == sorted(uris)
    resp = client.register("wild", "wild-pass", contacts=["*"], expires=0)
    assert resp.status == 200 and not resp.get_all("Contact"), str(resp)
    assert jade.contacts("wild") == []


def test_max_contacts_with_remove_existing_replaces_the_oldest(reg, client):
    _, jade = reg
    first, second = (f"sip:replace@127.0.0.1:{client.port};n={i}" for i in (1, 2))
    assert client.register("replace", "replace-pass", contacts=[f"<{first}>"]).status == 200
    assert contact_uris(jade, "replace") == [first]
    with SipUdpClient(client.server[1]) as other:  # another phone, another Call-ID
        resp = other.register("replace", "replace-pass", contacts=[f"<{second}>"])
    assert resp.status == 200 and set(response_contacts(resp)) == {second}, str(resp)
    assert contact_uris(jade, "replace") == [second]
    aor = jade.get("/admin/pjsip/aors/replace")
    assert aor["contacts_registered"] == 1 and aor["max_contacts"] == 1 and aor["remove_existing"] == "true"


def test_max_contacts_without_remove_existing_is_403(reg, client):
    _, jade = reg
    first, second = (f"sip:strict@127.0.0.1:{client.port};n={i}" for i in (1, 2))
    assert client.register("strict", "strict-pass", contacts=[f"<{first}>"]).status == 200
    with SipUdpClient(client.server[1]) as other:
        resp = other.register("strict", "strict-pass", contacts=[f"<{second}>"])
    assert resp.status == 403, str(resp)
    assert contact_uris(jade, "strict") == [first]
    # refreshing the binding it has is still fine
    assert client.register("strict", "strict-pass", contacts=[f"<{first}>"]).status == 200


def test_out_of_order_cseq_is_500_and_a_query_lists_the_bindings(reg, client):
    _, jade = reg
    assert client.register("unreg", "unreg-pass", expires=60).status == 200  # CSeq 1 (401), 2 (200)
    client.cseq = 0  # the same Call-ID again from CSeq 1: not higher than the stored 2
    resp = client.register("unreg", "unreg-pass", expires=60)
    assert resp.status == 500, str(resp)
    resp = client.register("unreg", "unreg-pass", contacts=[], expires=None)  # no Contact: a query
    assert resp.status == 200, str(resp)
    assert response_contacts(resp) == {f"sip:unreg@127.0.0.1:{client.port}": pytest.approx(60, abs=2)}
    assert client.register("unreg", "unreg-pass", expires=0).status == 200
    assert jade.contacts("unreg") == []


def test_register_over_tcp(reg):
    srv, jade = reg
    with socket.create_connection(("127.0.0.1", srv.sip_port), timeout=5) as s:
        local = s.getsockname()[1]

        def register(cseq: int, expires: int) -> SipMessage:
            s.sendall(
                (
                    f"REGISTER sip:127.0.0.1:{srv.sip_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/TCP 127.0.0.1:{local};branch=z9hG4bKtcp{cseq}\r\n"
                    "Max-Forwards: 70\r\nFrom: <sip:open@127.0.0.1>;tag=tcp\r\nTo: <sip:open@127.0.0.1>\r\n"
                    f"Call-ID: tcp-{local}@test\r\nCSeq: {cseq} REGISTER\r\n"
                    f"Contact: <sip:open@127.0.0.1:{local};transport=tcp>\r\nExpires: {expires}\r\n"
                    "Content-Length: 0\r\n\r\n"
                ).encode()
            )
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65535)
                assert chunk, data
                data += chunk
            return SipMessage.parse(data)

        assert register(1, 60).status == 200
        (c,) = [x for x in jade.contacts("open") if x["via_address"] == f"127.0.0.1:{local}"]
        assert c["uri"] == f"sip:open@127.0.0.1:{local};transport=tcp"
        assert register(2, 0).status == 200
        assert not [x for x in jade.contacts("open") if x["via_address"] == f"127.0.0.1:{local}"]


def _shape(resp) -> tuple:
    """What a REGISTER's answer tells apart: status, reason, header names, challenge parameters."""
    challenges = [re.sub(r'(nonce|opaque)="[^"]*"', r'\1=""', c) for c in resp.get_all("WWW-Authenticate")]
    names = sorted({n.lower() for n, _ in resp.headers} - {"date"})
    return resp.status, resp.reason, names, challenges


def test_unknown_names_are_answered_as_known_ones(reg, client):
    """Asterisk's artificial endpoint: a name that is no account is challenged like an account in the
    default realm and refused only after the digest, with the same status and reason as a wrong password."""
    for known, unknown in (("bare", "nobody-here"), ("sipp1", "no-such-user-2")):
        first_known, first_unknown = client.register(known, None), client.register(unknown, None)
        assert first_known.status == 401 and _shape(first_known) == _shape(first_unknown), (
            str(first_known),
            str(first_unknown),
        )
        assert "algorithm=MD5" in first_unknown.get("WWW-Authenticate")
        wrong_known, wrong_unknown = client.register(known, "guess"), client.register(unknown, "guess")
        assert wrong_known.status == 403 and _shape(wrong_known) == _shape(wrong_unknown), (
            str(wrong_known),
            str(wrong_unknown),
        )


def test_endpoint_without_auth_registers_unauthenticated(reg, client):
    _, jade = reg
    resp = client.register("open", None)
    assert resp.status == 200, str(resp)
    assert len(jade.contacts("open")) == 1


def test_sha256_digest_and_nonce_count_replay(reg, client):
    _, jade = reg
    first = client.register("sha", None)  # no password: just look at the challenge
    assert first.status == 401, str(first)
    challenges = first.get_all("WWW-Authenticate")
    assert len(challenges) == 2, challenges  # as configured: SHA-256 first, then MD5
    assert "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1], challenges
    assert all('qop="auth"' in c for c in challenges), challenges

    digest = DigestClient("sha", "sha-pass")
    resp = client.register("sha", "sha-pass", digest=digest)
    assert resp.status == 200, str(resp)
    replayed = client.last_authorization
    assert "algorithm=SHA-256" in replayed and "nc=00000001" in replayed
    assert len(jade.contacts("sha")) == 1
    # the very same Authorization again (nc not higher): refused; the answer is a fresh challenge, stale
    again = client.register("sha", authorization=replayed)
    assert again.status == 401, str(again)
    assert all("stale=true" in c for c in again.get_all("WWW-Authenticate")), str(again)
    # the same nonce with the next nonce count is fine
    nonce = re.search(r'nonce="([^"]+)"', replayed).group(1)
    challenge = f'Digest realm="switchboard", nonce="{nonce}", algorithm=SHA-256, qop="auth"'
    opaque = re.search(r'opaque="([^"]+)"', replayed)
    if opaque:
        challenge += f', opaque="{opaque.group(1)}"'
    uri = f"sip:127.0.0.1:{client.server[1]}"
    nc2 = digest.authorize("REGISTER", uri, [challenge])
    assert "nc=00000002" in nc2
    assert client.register("sha", authorization=nc2).status == 200


def test_wrong_password_raw_is_403(reg, client):
    _, jade = reg
    resp = client.register("wrongpw", "still-wrong")
    assert resp.status == 403, str(resp)
    assert not resp.get_all("WWW-Authenticate")
    assert jade.contacts("wrongpw") == []


# ---- baresip ------------------------------------------------------------------------------------------
def baresip_account(user: str, password: str, port: int) -> str:
    return f"<sip:{user}@127.0.0.1:{port};transport=udp>;auth_pass={password};regint=60"


def test_baresip_registers_and_unregisters(reg, tmp_path):
    skip_without("baresip")
    srv, jade = reg
    phone = Baresip(tmp_path / "baresip", baresip_account("bare", "bare-pass", srv.sip_port)).start()
    try:
        try:
            (c,) = wait_for(lambda: jade.contacts("bare"), 15, what="baresip's binding")
        except AssertionError as e:
            raise AssertionError(f"{e}\nbaresip:\n{phone.log()}\nserve:\n{srv.log()[-3000:]}") from None
        assert "baresip" in c["user_agent"], c
        assert c["via_address"] == f"127.0.0.1:{phone.listen_port}"
        assert f"@127.0.0.1:{phone.listen_port}" in c["uri"]
        assert jade.get("/peers/PJSIP/bare")["status"] == "Registered"
        assert "200 OK" in phone.log()
    finally:
        phone.stop()
    wait_for(lambda: jade.contacts("bare") == [], 5, what="baresip's unregistration on SIGTERM")


def test_baresip_wrong_password_is_refused(reg, tmp_path):
    skip_without("baresip")
    srv, jade = reg
    phone = Baresip(tmp_path / "baresip", baresip_account("barebad", "not-it", srv.sip_port)).start()
    try:
        wait_for(lambda: "403" in phone.log(), 10, what="baresip's 403")
    finally:
        phone.stop()
    assert jade.contacts("barebad") == []


# ---- qualify ------------------------------------------------------------------------------------------
def test_qualify_reachable_then_unreachable(reg, tmp_path):
    """The contact's REGISTER comes from port P (qualify pings the source address); then a sipp UAS
    takes port P and answers the OPTIONS; once it stops, the contact turns Unreachable."""
    skip_without("sipp")
    srv, jade = reg
    port = free_port()
    with SipUdpClient(srv.sip_port, local_port=port) as c:
        assert c.register("qual", "qual-pass", expires=300).status == 200
    with SippUas(tmp_path, "options_uas.xml", port=port):
        contact = wait_for(
            lambda: [x for x in jade.contacts("qual") if x["status"] == "Reachable"], 10, what="Reachable"
        )[0]
        assert contact["round_trip_usec"].isdigit() and int(contact["round_trip_usec"]) > 0, contact
        assert contact["qualify_frequency"] == 1
        peer = wait_for(
            lambda: (p := jade.get("/peers/PJSIP/qual"))["monitor_status"].startswith("OK") and p,
            5,
            what="monitor_status OK",
        )
        assert re.fullmatch(r"OK \(\d+ ms\)", peer["monitor_status"]), peer
        assert peer["status"] == "Registered"
        assert jade.get("/device_states/PJSIP/qual")["state"] == "NOT_INUSE"
    wait_for(lambda: [x for x in jade.contacts("qual") if x["status"] == "Unreachable"], 10, what="Unreachable")
    assert jade.get("/peers/PJSIP/qual")["monitor_status"] == "UNREACHABLE"
    assert jade.get("/device_states/PJSIP/qual")["state"] == "UNAVAILABLE"
    assert jade.contacts("qual")[0]["round_trip_usec"] == "N/A"


# ---- OPTIONS and malformed input -------------------------------------------------------------------------
def test_sipsak_options_allows_register(reg):
    skip_without("sipsak")
    srv, _ = reg
    out = subprocess.run(
        ["sipsak", "-vv", "-s", f"sip:probe@127.0.0.1:{srv.sip_port}"], capture_output=True, text=True, timeout=20
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SIP/2.0 200 OK" in out.stdout
    allow = re.search(r"^Allow:(.*)$", out.stdout, re.MULTILINE | re.IGNORECASE)
    assert allow and "REGISTER" in allow.group(1) and "OPTIONS" in allow.group(1), out.stdout


def _request(port: int, local: int, branch: str, extra: str) -> bytes:
    return (
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:open@127.0.0.1>;tag=bad\r\nTo: <sip:open@127.0.0.1>\r\n"
        f"Call-ID: {branch}@test\r\nCSeq: 1 REGISTER\r\n{extra}\r\n"
    ).encode()


@pytest.mark.parametrize("extra", ["Content-Length: banana\r\n", "This line has no colon\r\nContent-Length: 0\r\n"])
def test_malformed_request_with_salvageable_headers_gets_400(client, extra):
    client.send(_request(client.server[1], client.port, "z9hG4bKmalformed1", extra))
    resp = client.recv(3)
    assert resp is not None and resp.status == 400, resp
    assert "branch=z9hG4bKmalformed1" in resp.get("Via") and resp.get("CSeq") == "1 REGISTER", str(resp)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff\xfe garbage \x01",
        b"NOT SIP AT ALL\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
        b"INVITE\r\n\r\n" * 50,
    ],
)
def test_garbage_gets_no_answer_and_the_engine_lives(client, garbage):
    client.send(garbage)
    assert client.recv(0.7) is None
    resp = client.options()
    assert resp is not None and resp.status == 200, resp


# ---- throttle -------------------------------------------------------------------------------------------
def test_repeated_wrong_passwords_are_throttled(backend, tmp_path):
    srv, pg = make_server(backend, tmp_path, SWITCHBOARD_SIP_AUTH_FAILURES_PER_MINUTE="3")
    srv.start()
    try:
        jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
        jade.put_pjsip(pjsip_account("victim", "victim-pass"))
        with SipUdpClient(srv.sip_port) as c:
            for _ in range(3):
                resp = c.register("victim", "guess")
                assert resp.status == 403 and resp.reason == "Forbidden", str(resp)
            resp = c.register("victim", None)  # past the limit: no challenge at all
            assert resp.status == 403, str(resp)
            assert not resp.get_all("WWW-Authenticate"), str(resp)
            assert c.register("victim", "victim-pass").status == 403  # even the right one, this minute
            assert c.options().status == 200  # OPTIONS are not throttled
        assert jade.contacts("victim") == []
        assert srv.log().count("REGISTER authentication failed") >= 3
        assert "too many failed authentications" in srv.log()
        jade.close()
    finally:
        srv.stop()
        if pg:
            pg.drop()


# ---- restart ---------------------------------------------------------------------------------------------
def test_bindings_survive_a_restart(fresh_server):
    srv = fresh_server.start()
    jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
    jade.put_pjsip(pjsip_account("persist", "persist-pass", max_contacts=2))
    with SipUdpClient(srv.sip_port) as c:
        assert c.register("persist", "persist-pass", expires=600).status == 200
        call_id = c.call_id
    (before,) = jade.contacts("persist")
    jade.close()
    srv.stop(signal.SIGKILL)
    srv.start()
    jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
    (after,) = jade.contacts("persist")
    assert after["uri"] == before["uri"] and after["call_id"] == call_id
    assert after["reg_expire"] == before["reg_expire"] and after["via_address"] == before["via_address"]
    assert jade.get("/peers/PJSIP/persist")["status"] == "Registered"
    jade.close()
