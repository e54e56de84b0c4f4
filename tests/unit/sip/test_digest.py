"""SIP Digest authentication (RFC 2617 / 7616 / 8760): vectors, client/server round trips, replay rules, fuzzing."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.sip.digest import (
    ALGORITHMS,
    MAX_HEADER,
    DigestClient,
    DigestError,
    DigestServer,
    Verdict,
    digest_response,
    ha1,
    parse_params,
    session_ha1,
)

SECRET = b"0123456789abcdef-shared-secret"
REALM = "pbx.example.com"
URI = "sip:pbx.example.com"
USERS = {"alice": "s3cret", "bob": "hunter2"}


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def lookup(username: str, realm: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return None if password is None else ha1(algorithm, username, realm, password)


def make_server(**kwargs) -> tuple[DigestServer, Clock]:
    clock = kwargs.pop("clock", None) or Clock()
    return DigestServer(SECRET, REALM, clock=clock, **kwargs), clock


def authorization(params: dict[str, str], unquoted: tuple[str, ...] = ("algorithm", "qop", "nc")) -> str:
    parts = []
    for key, value in params.items():
        if key in unquoted:
            parts.append(f"{key}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{key}="{escaped}"')
    return "Digest " + ", ".join(parts)


def signed(
    server: DigestServer,
    nonce: str,
    *,
    username="alice",
    password="s3cret",
    algorithm="SHA-256",
    method="REGISTER",
    uri=URI,
    qop: str | None = "auth",
    nc="00000001",
    cnonce="c0ffee",
) -> str:
    """An Authorization value computed by hand (not via DigestClient), so nc/qop can be chosen freely."""
    secret = ha1(algorithm, username, server.realm, password)
    params = {
        "username": username,
        "realm": server.realm,
        "nonce": nonce,
        "uri": uri,
        "algorithm": algorithm,
        "opaque": server.opaque,
    }
    if qop is None:
        params["response"] = digest_response(algorithm, secret, method, uri, nonce)
    else:
        params["response"] = digest_response(algorithm, secret, method, uri, nonce, qop=qop, nc=nc, cnonce=cnonce)
        params.update(qop=qop, nc=nc, cnonce=cnonce)
    return authorization(params)


def fresh_nonce(server: DigestServer) -> str:
    return parse_params(server.challenge()[0])[1]["nonce"]


# --- RFC vectors -------------------------------------------------------------------------------------------


def test_rfc2617_example():
    header = (
        'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", '
        'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    scheme, p = parse_params(header)
    assert scheme == "Digest"
    secret = ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    got = digest_response("MD5", secret, "GET", p["uri"], p["nonce"], qop=p["qop"], nc=p["nc"], cnonce=p["cnonce"])
    assert got == "6629fae49393a05397450978507c4ef1" == p["response"]


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_examples(algorithm, expected):
    secret = ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    got = digest_response(
        algorithm,
        secret,
        "GET",
        "/dir/index.html",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        qop="auth",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert got == expected


def test_hash_helpers():
    assert set(ALGORITHMS) == {"MD5", "SHA-256"}
    assert len(ha1("SHA-256", "u", "r", "p")) == 64 and len(ha1("md5", "u", "r", "p")) == 32
    assert ha1("SHA-256-sess", "u", "r", "p") == ha1("sha-256", "u", "r", "p")
    base = ha1("MD5", "u", "r", "p")
    assert session_ha1("MD5", base, "n", "c") == base
    assert session_ha1("MD5-sess", base, "n", "c") != base
    with pytest.raises(DigestError):
        ha1("SHA-512-256", "u", "r", "p")
    with pytest.raises(DigestError):
        digest_response("MD5", base, "GET", "/", "n", qop="auth-int", nc="00000001", cnonce="c")


# --- parse_params ------------------------------------------------------------------------------------------


def test_parse_params_quoting_and_case():
    scheme, p = parse_params('  digest Realm="a, \\"b\\" \\\\ c",NONCE=abc ,, qop="auth,auth-int"  , stale=TRUE ')
    assert scheme == "digest"
    assert p == {"realm": 'a, "b" \\ c', "nonce": "abc", "qop": "auth,auth-int", "stale": "TRUE"}
    assert parse_params("Digest") == ("Digest", {})
    assert parse_params('Digest realm=""') == ("Digest", {"realm": ""})


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "Digest,realm=x",
        'Digest realm="unterminated',
        "Digest realm=x nonce=y",
        "Digest realm",
        "Digest =x",
        'Digest realm="a"b=c',
        "Digest realm=x, realm=y",
        'Digest realm="a\r\nInjected: 1"',
        "Digest realm=\x00",
        "Digest realm=\ud800",
        "Digest a=" + "x" * 9000,
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    ],
)
def test_parse_params_rejects_garbage(value):
    with pytest.raises(DigestError):
        parse_params(value)


def test_parse_params_rejects_non_str():
    with pytest.raises(DigestError):
        parse_params(None)  # type: ignore[arg-type]


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_parse_params_raises_only_digest_error(value):
    try:
        scheme, params = parse_params(value)
    except DigestError:
        return
    assert isinstance(scheme, str) and all(k == k.lower() for k in params)


_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+.^_`|~-"


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.text(_TOKEN_ALPHABET, min_size=1, max_size=12).map(str.lower),
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
        max_size=8,
    )
)
def test_parse_params_round_trip(params):
    assert parse_params(authorization(params, unquoted=())) == ("Digest", params)


@settings(max_examples=300)
@given(st.text(alphabet='Digest usernamerealmnoncuriqopa=,"\\ \t01-/:@', max_size=200))
def test_parse_params_near_miss_inputs(value):
    try:
        parse_params(value)
    except DigestError:
        pass


# --- challenges --------------------------------------------------------------------------------------------


def test_challenge_format_sha256_first():
    server, _ = make_server()
    values = server.challenge()
    assert len(values) == 2
    parsed = [parse_params(v) for v in values]
    assert [p["algorithm"] for _, p in parsed] == ["SHA-256", "MD5"]
    for scheme, p in parsed:
        assert scheme == "Digest"
        assert p["realm"] == REALM and p["qop"] == "auth" and p["opaque"] == server.opaque
        assert "stale" not in p
        raw = base64.urlsafe_b64decode(p["nonce"] + "=")
        assert len(p["nonce"]) == 43 and len(raw) == 32
    assert parsed[0][1]["nonce"] == parsed[1][1]["nonce"]
    assert all(parse_params(v)[1]["stale"] == "true" for v in server.challenge(stale=True))
    assert fresh_nonce(server) != fresh_nonce(server)


def test_constructor_validation():
    with pytest.raises(ValueError):
        DigestServer(b"short", REALM)
    with pytest.raises(ValueError):
        DigestServer(SECRET, "")
    with pytest.raises(ValueError):
        DigestServer(SECRET, "a\r\nb")
    with pytest.raises(ValueError):
        DigestServer(SECRET, REALM, algorithms=("SHA-512",))
    with pytest.raises(ValueError):
        DigestServer(SECRET, REALM, algorithms=())
    with pytest.raises(ValueError):
        DigestServer(SECRET, REALM, nonce_ttl=0)
    with pytest.raises(ValueError):
        DigestServer(SECRET, REALM, max_tracked_nonces=0)


# --- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5", "SHA-256-sess", "MD5-sess"])
def test_round_trip(algorithm):
    server, _ = make_server(algorithms=(algorithm,))
    client = DigestClient("alice", "s3cret")
    header = client.authorize("REGISTER", URI, server.challenge())
    _, p = parse_params(header)
    assert p["algorithm"] == algorithm and p["qop"] == "auth" and p["nc"] == "00000001"
    assert p["opaque"] == server.opaque and p["uri"] == URI and p["cnonce"]
    assert server.verify("REGISTER", header, lookup) == Verdict(True, False, "alice", "ok")


def test_round_trip_default_server_prefers_sha256():
    server, _ = make_server()
    header = DigestClient("bob", "hunter2").authorize("REGISTER", URI, server.challenge())
    assert parse_params(header)[1]["algorithm"] == "SHA-256"
    assert server.verify("REGISTER", header, lookup).ok


def test_nodes_sharing_secret_accept_each_others_nonces():
    node_a, _ = make_server()
    node_b, _ = make_server()
    other = DigestServer(b"another-secret-of-16-bytes", REALM)
    header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, node_a.challenge())
    assert node_b.verify("REGISTER", header, lookup).ok
    assert other.verify("REGISTER", header, lookup).reason == "bad nonce"


def test_wrong_password():
    server, _ = make_server()
    header = DigestClient("alice", "nope").authorize("REGISTER", URI, server.challenge())
    assert server.verify("REGISTER", header, lookup) == Verdict(False, False, "alice", "wrong response")


def test_wrong_method_or_uri():
    server, _ = make_server()
    header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, server.challenge())
    assert server.verify("INVITE", header, lookup).reason == "wrong response"
    tampered = header.replace(f'uri="{URI}"', 'uri="sip:evil.example.com"')
    assert server.verify("REGISTER", tampered, lookup).reason == "wrong response"


def test_unknown_user():
    server, _ = make_server()
    header = DigestClient("mallory", "x").authorize("REGISTER", URI, server.challenge())
    assert server.verify("REGISTER", header, lookup) == Verdict(False, False, "mallory", "unknown user")


def test_realm_mismatch():
    server, _ = make_server()
    other = DigestServer(SECRET, "other.example.com")
    header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, other.challenge())
    assert server.verify("REGISTER", header, lookup).reason == "realm mismatch"


def test_tampered_nonce():
    server, _ = make_server()
    nonce = fresh_nonce(server)
    for bad in (
        nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BA"),
        nonce[:10] + nonce[11:],
        "x" * 43,
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nonce + "A",
    ):
        v = server.verify("REGISTER", signed(server, bad), lookup)
        assert (v.ok, v.stale, v.reason) == (False, False, "bad nonce")
    # a nonce issued for another realm under the same secret is not ours either
    foreign = fresh_nonce(DigestServer(SECRET, "other.example.com"))
    assert server.verify("REGISTER", signed(server, foreign), lookup).reason == "bad nonce"


def test_non_canonical_nonce_spelling_refused():
    server, _ = make_server()
    nonce = fresh_nonce(server)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # the last character carries 2 padding bits: flip them to get the same bytes spelled differently
    twin = nonce[:-1] + alphabet[alphabet.index(nonce[-1]) ^ 1]
    assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(nonce + "=")
    assert server.verify("REGISTER", signed(server, twin), lookup).reason == "bad nonce"


def test_expired_nonce_is_stale():
    server, clock = make_server(nonce_ttl=60)
    nonce = fresh_nonce(server)
    clock.t += 59
    assert server.verify("REGISTER", signed(server, nonce, nc="00000001"), lookup).ok
    clock.t += 2
    v = server.verify("REGISTER", signed(server, nonce, nc="00000002"), lookup)
    assert (v.ok, v.stale, v.reason) == (False, True, "nonce expired")
    # expired with a wrong password is a plain failure: the client must not retry silently
    v = server.verify("REGISTER", signed(server, nonce, nc="00000003", password="bad"), lookup)
    assert (v.ok, v.stale, v.reason) == (False, False, "wrong response")


def test_nonce_from_far_future_is_stale():
    server, clock = make_server(nonce_ttl=60)
    clock.t += 1000
    nonce = fresh_nonce(server)
    clock.t -= 1000
    v = server.verify("REGISTER", signed(server, nonce), lookup)
    assert (v.ok, v.stale) == (False, True)


def test_client_retries_after_stale():
    server, clock = make_server(nonce_ttl=10)
    client = DigestClient("alice", "s3cret")
    header = client.authorize("REGISTER", URI, server.challenge())
    clock.t += 30
    verdict = server.verify("REGISTER", header, lookup)
    assert verdict.stale
    retry = client.authorize("REGISTER", URI, server.challenge(stale=verdict.stale))
    assert server.verify("REGISTER", retry, lookup).ok


# --- nonce counts ------------------------------------------------------------------------------------------


def test_nc_must_increase():
    server, _ = make_server()
    nonce = fresh_nonce(server)
    assert server.verify("REGISTER", signed(server, nonce, nc="00000001"), lookup).ok
    replay = server.verify("REGISTER", signed(server, nonce, nc="00000001"), lookup)
    assert (replay.ok, replay.reason) == (False, "nc replay")
    assert server.verify("REGISTER", signed(server, nonce, nc="00000005", cnonce="other"), lookup).ok
    backwards = server.verify("REGISTER", signed(server, nonce, nc="00000003"), lookup)
    assert (backwards.ok, backwards.reason) == (False, "nc replay")
    assert server.verify("REGISTER", signed(server, nonce, nc="0000000A"), lookup).ok
    assert server.verify("REGISTER", signed(server, nonce, nc="0000000b"), lookup).ok


def test_exact_replay_of_client_header_refused():
    server, _ = make_server()
    client = DigestClient("alice", "s3cret")
    challenge = server.challenge()
    first = client.authorize("REGISTER", URI, challenge)
    assert server.verify("REGISTER", first, lookup).ok
    assert server.verify("REGISTER", first, lookup).reason == "nc replay"
    second = client.authorize("REGISTER", URI, challenge)  # same nonce reused: nc 2
    assert parse_params(second)[1]["nc"] == "00000002"
    assert server.verify("REGISTER", second, lookup).ok


@pytest.mark.parametrize("nc", ["00000000", "1", "000000001", "0000000g", ""])
def test_bad_nc_is_malformed(nc):
    server, _ = make_server()
    v = server.verify("REGISTER", signed(server, fresh_nonce(server), nc=nc), lookup)
    assert (v.ok, v.reason) == (False, "malformed")


def test_qop_without_cnonce_is_malformed():
    server, _ = make_server()
    assert server.verify("REGISTER", signed(server, fresh_nonce(server), cnonce=""), lookup).reason == "malformed"


def test_no_qop_single_use():
    server, _ = make_server()
    nonce = fresh_nonce(server)
    assert server.verify("REGISTER", signed(server, nonce, qop=None), lookup).ok
    again = server.verify("REGISTER", signed(server, nonce, qop=None), lookup)
    assert (again.ok, again.reason) == (False, "nc replay")
    # counted as nc=1: qop=auth may continue from nc=2 only
    assert not server.verify("REGISTER", signed(server, nonce, nc="00000001"), lookup).ok
    assert server.verify("REGISTER", signed(server, nonce, nc="00000002"), lookup).ok
    # and a nonce already used with qop cannot be used without
    assert not server.verify("REGISTER", signed(server, nonce, qop=None), lookup).ok


def test_client_without_qop_challenge():
    server, _ = make_server()
    nonce = fresh_nonce(server)
    old_style = f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5'
    header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, [old_style])
    p = parse_params(header)[1]
    assert "qop" not in p and "nc" not in p and "cnonce" not in p and "opaque" not in p
    assert server.verify("REGISTER", header, lookup).ok
    assert server.verify("REGISTER", header, lookup).reason == "nc replay"


def test_auth_int_refused():
    server, _ = make_server()
    nonce = fresh_nonce(server)
    secret = ha1("SHA-256", "alice", REALM, "s3cret")
    params = {
        "username": "alice",
        "realm": REALM,
        "nonce": nonce,
        "uri": URI,
        "algorithm": "SHA-256",
        "qop": "auth-int",
        "nc": "00000001",
        "cnonce": "c",
        "response": digest_response("SHA-256", secret, "REGISTER", URI, nonce, qop="auth", nc="00000001", cnonce="c"),
    }
    v = server.verify("REGISTER", authorization(params), lookup)
    assert (v.ok, v.reason) == (False, "unsupported qop")


def test_unsupported_algorithm():
    server, _ = make_server(algorithms=("SHA-256",))
    v = server.verify("REGISTER", signed(server, fresh_nonce(server), algorithm="MD5"), lookup)
    assert (v.ok, v.reason) == (False, "unsupported algorithm")
    header = signed(server, fresh_nonce(server)).replace("algorithm=SHA-256", "algorithm=SHA-512-256")
    assert server.verify("REGISTER", header, lookup).reason == "unsupported algorithm"
    # absent algorithm means MD5
    header = signed(server, fresh_nonce(server), algorithm="MD5").replace("algorithm=MD5, ", "")
    assert server.verify("REGISTER", header, lookup).reason == "unsupported algorithm"


def test_missing_fields():
    server, _ = make_server()
    header = signed(server, fresh_nonce(server))
    params = parse_params(header)[1]
    assert (
        server.verify("REGISTER", authorization({k: v for k, v in params.items() if k != "uri"}), lookup).reason
        == "uri missing"
    )
    for key in ("username", "realm", "nonce", "response"):
        v = server.verify("REGISTER", authorization({k: v for k, v in params.items() if k != key}), lookup)
        assert (v.ok, v.reason) == (False, "malformed")
    assert server.verify("REGISTER", header.replace("Digest", "Basic", 1), lookup).reason == "malformed"
    assert server.verify("REG ISTER", header, lookup).reason == "malformed"


def test_opaque_mismatch_and_absent():
    server, _ = make_server()
    header = signed(server, fresh_nonce(server))
    assert server.verify("REGISTER", header.replace(server.opaque, "forged"), lookup).reason == "opaque mismatch"
    params = parse_params(signed(server, fresh_nonce(server)))[1]
    del params["opaque"]
    assert server.verify("REGISTER", authorization(params), lookup).ok


def test_userhash_refused():
    server, _ = make_server()
    header = signed(server, fresh_nonce(server)) + ", userhash=true"
    assert server.verify("REGISTER", header, lookup).reason == "unsupported userhash"


def test_lookup_returning_garbage_is_a_store_bug():
    server, _ = make_server()
    with pytest.raises(ValueError):
        server.verify("REGISTER", signed(server, fresh_nonce(server)), lambda u, r, a: "not-hex")


# --- bounded tracking --------------------------------------------------------------------------------------


def test_bounded_nc_tracking_forgets_safely():
    server, clock = make_server(max_tracked_nonces=3)
    nonces = []
    for _ in range(5):
        nonce = fresh_nonce(server)
        clock.t += 1
        nonces.append(nonce)
        assert server.verify("REGISTER", signed(server, nonce), lookup).ok
        assert server.tracked_nonces <= 3
    assert server.tracked_nonces == 3
    # the two oldest were forgotten: their next use must not be trusted, but the client may retry at once
    for nonce in nonces[:2]:
        v = server.verify("REGISTER", signed(server, nonce, nc="00000002"), lookup)
        assert (v.ok, v.stale, v.reason) == (False, True, "nonce forgotten")
        v = server.verify("REGISTER", signed(server, nonce, nc="00000001"), lookup)
        assert (v.ok, v.stale) == (False, True)
    # remembered ones keep their counts
    assert server.verify("REGISTER", signed(server, nonces[-1], nc="00000001"), lookup).reason == "nc replay"
    assert server.verify("REGISTER", signed(server, nonces[-1], nc="00000002"), lookup).ok
    # nonces issued after the forgotten ones still work on first use
    assert server.verify("REGISTER", signed(server, fresh_nonce(server)), lookup).ok


def test_nonces_issued_before_the_state_was_kept_are_answered_stale_once():
    """A restart keeps the key and loses the nonce-counts: the new run (tracked_since_ms: its start) answers a
    nonce issued before it stale on first use, so an Authorization accepted before cannot be replayed after;
    the same for a gone SIP worker's nonces where its aors are served meanwhile (forget_before)."""
    before, clock = make_server()
    nonce = fresh_nonce(before)
    header = signed(before, nonce)
    assert before.verify("REGISTER", header, lookup).ok
    assert before.verify("REGISTER", header, lookup).reason == "nc replay"
    clock.t += 2
    restarted = DigestServer(SECRET, REALM, clock=clock, tracked_since_ms=int(clock.t * 1000) - 1000)
    v = restarted.verify("REGISTER", header, lookup)  # the replay, after the restart
    assert (v.ok, v.stale, v.reason) == (False, True, "nonce forgotten")
    v = restarted.verify("REGISTER", signed(restarted, nonce, nc="00000002"), lookup)
    assert (v.ok, v.stale, v.reason) == (False, True, "nonce forgotten")
    assert restarted.verify("REGISTER", signed(restarted, fresh_nonce(restarted)), lookup).ok  # authenticates again
    # nonces issued after the start (by a sibling with the key, before its first use here) are good
    early = fresh_nonce(before)
    assert restarted.verify("REGISTER", signed(restarted, early), lookup).ok
    # standing in for a gone worker: its nonces issued so far are forgotten here too, later ones are not
    clock.t += 1
    late = fresh_nonce(before)
    restarted.forget_before(int(clock.t * 1000) + 1)
    assert restarted.verify("REGISTER", signed(restarted, late), lookup).reason == "nonce forgotten"
    assert restarted.verify("REGISTER", signed(restarted, early, nc="00000002"), lookup).ok  # tracked: counted
    clock.t += 1
    assert restarted.verify("REGISTER", signed(restarted, fresh_nonce(before)), lookup).ok
    assert DigestServer(SECRET, REALM, clock=clock).verify("REGISTER", header, lookup).ok  # (the default: none)


def test_expired_entries_are_dropped_first():
    server, clock = make_server(nonce_ttl=10)
    for _ in range(3):
        assert server.verify("REGISTER", signed(server, fresh_nonce(server)), lookup).ok
    assert server.tracked_nonces == 3
    clock.t += 11
    assert server.verify("REGISTER", signed(server, fresh_nonce(server)), lookup).ok
    assert server.tracked_nonces == 1


def test_failed_attempts_are_not_tracked():
    server, _ = make_server()
    for _ in range(10):
        server.verify("REGISTER", signed(server, fresh_nonce(server), password="bad"), lookup)
        server.verify("REGISTER", signed(server, fresh_nonce(server), username="nobody"), lookup)
    assert server.tracked_nonces == 0


# --- client ------------------------------------------------------------------------------------------------


def test_client_picks_sha256_and_ignores_unknown():
    server, _ = make_server()
    for order in ("ms", "sm", "ums"):
        sha, md5 = server.challenge()
        unknown = sha.replace("SHA-256", "SHA-512-256")
        offered = [{"m": md5, "s": sha, "u": unknown}[c] for c in order] + ['Basic realm="x"', 'garbage"']
        header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, offered)
        assert parse_params(header)[1]["algorithm"] == "SHA-256"
        assert server.verify("REGISTER", header, lookup).ok
    sha, md5 = server.challenge()
    header = DigestClient("alice", "s3cret").authorize("REGISTER", URI, [sha.replace("SHA-256", "SHA-512-256"), md5])
    assert parse_params(header)[1]["algorithm"] == "MD5"
    assert server.verify("REGISTER", header, lookup).ok


def test_client_qop_options():
    server, _ = make_server()
    challenge = server.challenge()[0]
    both = challenge.replace('qop="auth"', 'qop="auth-int, auth"')
    assert parse_params(DigestClient("alice", "s3cret").authorize("REGISTER", URI, [both]))[1]["qop"] == "auth"
    with pytest.raises(DigestError):
        DigestClient("alice", "s3cret").authorize("REGISTER", URI, [challenge.replace('qop="auth"', 'qop="auth-int"')])


@pytest.mark.parametrize(
    "challenges",
    [
        [],
        ['Digest realm="x", nonce="y", algorithm=SHA-512-256'],
        ['Basic realm="x"'],
        ['Digest nonce="y"'],
        ['Digest realm="x"'],
        ['"garbage'],
    ],
)
def test_client_nothing_usable(challenges):
    with pytest.raises(DigestError):
        DigestClient("alice", "s3cret").authorize("REGISTER", URI, challenges)


def test_client_nc_per_nonce():
    client = DigestClient("alice", "s3cret")
    a = 'Digest realm="r", nonce="n1", qop="auth"'
    b = 'Digest realm="r", nonce="n2", qop="auth"'
    ncs = [parse_params(client.authorize("REGISTER", URI, [c]))[1]["nc"] for c in (a, a, b, a, b)]
    assert ncs == ["00000001", "00000002", "00000001", "00000003", "00000002"]
    cnonces = {parse_params(client.authorize("REGISTER", URI, [a]))[1]["cnonce"] for _ in range(5)}
    assert len(cnonces) == 5


def test_client_escapes_and_refuses_injection():
    server = DigestServer(SECRET, 'odd "realm" \\ here')
    users = {'we"ird\\name': "pw"}

    def odd_lookup(username, realm, algorithm):
        return ha1(algorithm, username, realm, users[username]) if username in users else None

    header = DigestClient('we"ird\\name', "pw").authorize("REGISTER", URI, server.challenge())
    assert server.verify("REGISTER", header, odd_lookup).ok
    with pytest.raises(DigestError):
        DigestClient("alice\r\nX-Evil: 1", "pw").authorize("REGISTER", URI, server.challenge())
    with pytest.raises(DigestError):
        DigestClient("alice", "pw").authorize("REGISTER", "sip:x\r\nX-Evil: 1", server.challenge())


# --- fuzzing verify ----------------------------------------------------------------------------------------


_FUZZ_SERVER = DigestServer(SECRET, REALM, clock=Clock())


@settings(max_examples=500)
@given(st.text(max_size=300), st.text(max_size=12))
def test_verify_never_raises_on_garbage(value, method):
    v = _FUZZ_SERVER.verify(method, value, lookup)
    assert isinstance(v, Verdict) and not v.ok


@settings(max_examples=500)
@given(st.data())
def test_verify_never_raises_on_mutated_headers(data):
    header = signed(_FUZZ_SERVER, fresh_nonce(_FUZZ_SERVER))
    start = data.draw(st.integers(0, len(header)))
    stop = data.draw(st.integers(start, min(len(header), start + 20)))
    insert = data.draw(st.text(max_size=10))
    v = _FUZZ_SERVER.verify("REGISTER", header[:start] + insert + header[stop:], lookup)
    assert isinstance(v, Verdict)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(
            ["username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce", "opaque", "userhash"]
        ),
        st.one_of(st.text(max_size=70), st.sampled_from(["auth", "MD5", "SHA-256", REALM, "00000001"])),
        max_size=11,
    )
)
def test_verify_never_raises_on_random_fields(params):
    v = _FUZZ_SERVER.verify("REGISTER", authorization({k: v for k, v in params.items()}, unquoted=()), lookup)
    assert isinstance(v, Verdict) and not v.ok


# --- parse_params against the plain element-by-element parser it replaced ------------------------------

_REF_PARAM_RE = re.compile(
    r"([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t\r\n]*=[ \t\r\n]*"
    r'(?:"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*)"'
    r'|([^\x00-\x20\x7f",=\\]+))'
)


def _reference_parse_params(value: str):
    """The former parse_params: one element at a time, separators checked between elements."""
    if len(value) > MAX_HEADER:
        raise DigestError("too long")
    value.encode("utf-8")  # UnicodeEncodeError: refused below
    head = re.compile(r"[ \t\r\n]*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?=[ \t\r\n]|$)").match(value)
    if head is None:
        raise DigestError("missing auth scheme")
    params: dict[str, str] = {}
    pos, end = head.end(), len(value)
    while True:
        sep = re.compile(r"[ \t\r\n,]*").match(value, pos)
        pos = sep.end()
        if pos == end:
            return head.group(1), params
        if params and "," not in sep.group():
            raise DigestError("expected ','")
        m = _REF_PARAM_RE.match(value, pos)
        if m is None:
            raise DigestError("bad auth-param")
        key = m.group(1).lower()
        if key in params:
            raise DigestError("duplicate")
        quoted = m.group(2)
        params[key] = (
            re.sub(r"\\(.)", lambda e: e.group(1), quoted, flags=re.DOTALL) if quoted is not None else m.group(3)
        )
        pos = m.end()


def _outcome(fn, value):
    try:
        return fn(value)
    except (DigestError, UnicodeEncodeError):
        return "error"


@settings(max_examples=1500)
@given(st.text(alphabet='Digest usernamerealmnoncuriqopa=,"\\ \t\r\n01-/:@', max_size=120))
def test_parse_params_agrees_with_the_element_by_element_parser(value):
    assert _outcome(parse_params, value) == _outcome(_reference_parse_params, value)


@pytest.mark.parametrize(
    "value",
    [
        'Digest username="bench00001",realm="switchboard",cnonce="6b8b4567",nc=00000001,qop=auth,'
        'uri="sip:127.0.0.1:5060",nonce="AAABmrK2b8IKg7sZGOB7kJkLDZ0HrsjJh-3p6oBd6Ys",'
        'response="1b6f0c7a2e0d2f5fd0f2e7b9a8d7c6b5",algorithm=MD5,opaque="xYz12345abcdEFGH"',
        'Digest realm="a\\"b", nonce=x',
        "Digest a=1 ,, b=2,",
        "Digest a=1 b=2",
        'Digest a="1"b=2',
        "Digest a=1, @=2",
        "Digest a=1, b",
    ],
)
def test_parse_params_agrees_on_typical_and_broken_headers(value):
    assert _outcome(parse_params, value) == _outcome(_reference_parse_params, value)


def test_random_pool_gives_fresh_bytes():
    from switchboard.sip import rand

    draws = [rand.token_bytes(8) for _ in range(2000)]  # crosses several 4 KiB pools
    assert all(len(d) == 8 for d in draws) and len(set(draws)) == len(draws)
    assert len(rand.token_hex(6)) == 12 and len(rand.token_bytes(5000)) == 5000
