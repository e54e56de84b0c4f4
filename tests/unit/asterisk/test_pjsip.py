"""PJSIP object model: loading resolved pjsip.conf sections, Asterisk defaults, jade API view shapes."""

from __future__ import annotations

import hashlib
import re

import pytest

from switchboard.asterisk.pjsip import (
    ALL_CODECS,
    Account,
    AorPolicy,
    PjsipConfig,
    PjsipError,
    aor_view,
    auth_view,
    contact_id,
    contact_view,
    endpoint_view,
    load,
    registration_view,
)

TM = "2017-12-19T20:45:42.632334496Z"


def sec(name: str, *pairs: tuple[str, str]) -> tuple[str, dict[str, str], dict[str, list[str]]]:
    """A resolved section as the parser hands it over: last value wins, every value kept in `multi`."""
    opts: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        opts[key] = value
        multi.setdefault(key, []).append(value)
    return name, opts, multi


# [endpoint-basic](!) type=endpoint context=demo disallow=all allow=ulaw,alaw -- applied by the parser.
BASIC = (("type", "endpoint"), ("context", "demo"), ("disallow", "all"), ("allow", "ulaw,alaw"))


def sections() -> list:
    return [
        sec("transport-udp", ("type", "transport"), ("protocol", "udp"), ("bind", "0.0.0.0")),
        sec(
            "pjagent-01",
            *BASIC,
            ("auth", "pjagent-01"),
            ("aors", "pjagent-01"),
            ("mailboxes", "pjagent-01@vm-demo"),
            ("transport", "transport-udp"),
        ),
        sec(
            "pjagent-01",
            ("type", "auth"),
            ("auth_type", "userpass"),
            ("username", "pjagent-01"),
            ("password", "pjagent-01"),
        ),
        sec("pjagent-01", ("type", "aor"), ("max_contacts", "1"), ("remove_existing", "yes")),
        sec("199", *BASIC, ("auth", "199"), ("aors", "199")),
        sec("199", ("type", "auth"), ("password", "s3cret")),
        sec(
            "199",
            ("type", "aor"),
            ("max_contacts", "1"),
            ("remove_existing", "yes"),
            ("contact", "sip:199@10.0.0.9:5060"),
        ),
        sec("trunk-auth", ("type", "auth"), ("username", "1234"), ("password", "trunkpw")),
        sec(
            "trunk",
            ("type", "registration"),
            ("server_uri", "sip:sip.example.com"),
            ("client_uri", "sip:1234@sip.example.com"),
            ("outbound_auth", "trunk-auth"),
        ),
        sec("global", ("type", "global"), ("user_agent", "switchboard")),
        sec("no-type", ("foo", "bar")),
    ]


@pytest.fixture
def cfg() -> PjsipConfig:
    return load(sections())


# The spec's endpoint example (/admin/pjsip/endpoints/pjagent-01): field -> value.
SPEC_ENDPOINT = {
    "account_code": "", "acl": "", "active_channels": "", "aggregate_mwi": "true",
    "allow": "(" + "|".join(ALL_CODECS) + ")",
    "allow_overlap": "true", "allow_subscribe": "true", "allow_transfer": "true", "aors": "pjagent-01",
    "asymmetric_rtp_codec": "false", "auth": "pjagent-01", "bind_rtp_to_media_address": "false", "bundle": "false",
    "call_group": "", "caller_id": "<unknown>", "caller_id_privacy": "allowed_not_screened", "caller_id_tag": "",
    "connected_line_method": "invite", "contact_acl": "", "context": "demo", "cos_audio": 0, "cos_video": 0,
    "device_state": "Not in use", "device_state_busy_at": 0, "direct_media": "true",
    "direct_media_glare_mitigation": "none", "direct_media_method": "invite", "disable_direct_media_on_nat": "false",
    "disallow": "", "dtls_ca_file": "", "dtls_ca_path": "", "dtls_cert_file": "", "dtls_cipher": "",
    "dtls_fingerprint": "SHA-256", "dtls_private_key": "", "dtls_rekey": 0, "dtls_setup": "active",
    "dtls_verify": "No", "dtmf_mode": "rfc4733", "fax_detect": "false", "fax_detect_time": 0, "force_avp": "false",
    "force_rport": "true", "from_domain": "", "from_user": "", "g_726_non_standard": "false", "ice_support": "false",
    "identify_by": "username,ip", "inband_progress": "false", "incoming_mwi_mailbox": "pjagent-01@vm-demo",
    "language": "", "mailboxes": "pjagent-01@vm-demo", "max_audio_streams": 1, "max_video_streams": 1,
    "media_address": "", "media_encryption": "no", "media_encryption_optimistic": "false",
    "media_use_received_transport": "false", "message_context": "", "moh_passthrough": "false",
    "moh_suggest": "default", "mwi_from_user": "", "mwi_subscribe_replaces_unsolicited": "false",
    "named_call_group": "", "named_pickup_group": "", "notify_early_inuse_ringing": "false",
    "object_name": "pjagent-01", "object_type": "endpoint", "one_touch_recording": "false", "outbound_auth": "",
    "outbound_proxy": "", "pickup_group": "", "preferred_codec_only": "false", "record_off_feature": "automixmon",
    "record_on_feature": "automixmon", "redirect_method": "", "refer_blind_progress": "true", "rel_100": "yes",
    "rewrite_contact": "false", "rpid_immediate": "false", "rtcp_mux": "false", "rtp_engine": "asterisk",
    "rtp_ipv6": "false", "rtp_keepalive": 0, "rtp_symmetric": "false", "rtp_timeout": 0, "rtp_timeout_hold": 0,
    "sdp_owner": "-", "sdp_session": "Asterisk", "send_diversion": "true", "send_pai": "false", "send_rpid": "false",
    "set_var": "", "srtp_tag32": "false", "sub_min_expiry": "0", "subscribe_context": "", "t38_udptl": "false",
    "t38_udptl_ec": "none", "t38_udptl_ipv6": "false", "t38_udptl_maxdatagram": 0, "t38_udptl_nat": "false",
    "timers": "yes", "timers_min_se": "90", "timers_sess_expires": 1800, "tm_update": TM, "tone_zone": "",
    "tos_audio": 0, "tos_video": 0, "transport": "transport-udp", "trust_id_inbound": "false",
    "trust_id_outbound": "false", "use_avpf": "false", "use_ptime": "false", "user_eq_phone": "false",
    "voicemail_extension": "", "webrtc": "no",
}  # fmt: skip


def test_load_keys_objects_by_type_and_name(cfg):
    assert list(cfg.endpoints) == ["pjagent-01", "199"]
    assert list(cfg.auths) == ["pjagent-01", "199", "trunk-auth"]
    assert list(cfg.aors) == ["pjagent-01", "199"]
    assert list(cfg.registrations) == ["trunk"] and list(cfg.transports) == ["transport-udp"]
    assert cfg.identifies == {}
    assert [s[0] for s in cfg.others] == ["global", "no-type"]
    assert cfg.auths["pjagent-01"]["password"] == "pjagent-01"
    assert cfg.values("aor", "199", "contact") == ["sip:199@10.0.0.9:5060"]


def test_endpoint_view_has_exactly_the_spec_fields_and_types(cfg):
    view = endpoint_view(cfg, "pjagent-01", device_state="Not in use", tm_update=TM)
    assert set(view) == set(SPEC_ENDPOINT)
    assert len(view) == len(SPEC_ENDPOINT) == 116
    for key, value in SPEC_ENDPOINT.items():
        assert type(view[key]) is type(value), key
    # Asterisk's incoming_mwi_mailbox defaults to "" (the spec's Asterisk had it configured) and our
    # config allows only ulaw,alaw where the spec's had every codec: everything else is equal.
    differing = {k for k in SPEC_ENDPOINT if view[k] != SPEC_ENDPOINT[k]}
    assert differing == {"incoming_mwi_mailbox", "allow"}
    assert view["allow"] == "(ulaw|alaw)" and view["incoming_mwi_mailbox"] == ""
    assert list(view) == sorted(view)


def test_endpoint_view_defaults_and_overrides(cfg):
    view = endpoint_view(cfg, "199", tm_update=TM)
    assert view["device_state"] == "Unavailable" and view["active_channels"] == ""
    assert view["context"] == "demo" and view["transport"] == "" and view["mailboxes"] == ""

    bare = load([sec("e", ("type", "endpoint"))])
    v = endpoint_view(bare, "e", tm_update=TM)
    assert v["allow"] == "()" and v["context"] == "default" and v["aors"] == "" and v["auth"] == ""

    custom = load(
        [
            sec(
                "e",
                ("type", "endpoint"),
                ("allow", "all"),
                ("disallow", "g729"),
                ("direct_media", "no"),
                ("rtp_symmetric", "YES"),
                ("webrtc", "true"),
                ("100rel", "required"),
                ("timers", "forced"),
                ("dtls_verify", "fingerprint"),
                ("dtls_fingerprint", "sha-1"),
                ("callerid", "Alice <100>"),
                ("tos_audio", "ef"),
                ("tos_video", "0x88"),
                ("timers_min_se", "120"),
                ("max_audio_streams", "2"),
                ("srtp_tag_32", "on"),
                ("g726_non_standard", "1"),
                ("accountcode", "acct"),
                ("connected_line_method", "reinvite"),
                ("set_var", "A=1"),
                ("set_var", "B=2"),
                ("aors", "a1"),
                ("aors", "a2"),
            ),
            sec("a1", ("type", "aor")),
            sec("a2", ("type", "aor")),
        ]
    )
    v = endpoint_view(custom, "e", device_state="In use", active_channels="PJSIP/e-0001", tm_update=TM)
    assert v["allow"] == "(" + "|".join(c for c in ALL_CODECS if c != "g729") + ")"
    assert v["disallow"] == ""
    assert v["direct_media"] == "false" and v["rtp_symmetric"] == "true" and v["webrtc"] == "yes"
    assert v["rel_100"] == "required" and v["timers"] == "always" and v["dtls_verify"] == "Yes"
    assert v["dtls_fingerprint"] == "SHA-1" and v["caller_id"] == '"Alice" <100>'
    assert v["tos_audio"] == 184 and v["tos_video"] == 0x88
    assert v["timers_min_se"] == "120" and v["max_audio_streams"] == 2
    assert v["srtp_tag32"] == "true" and v["g_726_non_standard"] == "true" and v["account_code"] == "acct"
    assert v["connected_line_method"] == "invite" and v["set_var"] == "A=1,B=2" and v["aors"] == "a1,a2"
    assert v["device_state"] == "In use" and v["active_channels"] == "PJSIP/e-0001"
    assert endpoint_view(custom, "e", tm_update=TM)["device_state"] == "Unavailable"


@pytest.mark.parametrize(
    ("allow", "disallow", "expected"),
    [
        (["ulaw,alaw"], ["all"], "(ulaw|alaw)"),
        (["ulaw", "alaw", "ulaw"], [], "(ulaw|alaw)"),
        ([], ["all"], "()"),
        (["g722", "all"], ["g722"], None),
    ],
)
def test_allow_rendering(allow, disallow, expected):
    pairs = [("type", "endpoint"), *(("allow", a) for a in allow), *(("disallow", d) for d in disallow)]
    v = endpoint_view(load([sec("e", *pairs)]), "e", tm_update=TM)["allow"]
    if expected is None:  # explicitly allowed codec survives a named disallow; listed once, first
        assert v.startswith("(g722|codec2|") and v.count("g722") == 1
    else:
        assert v == expected


def test_caller_id_forms():
    def cid(value):
        return endpoint_view(load([sec("e", ("type", "endpoint"), ("callerid", value))]), "e", tm_update=TM)[
            "caller_id"
        ]

    assert cid('"Bob Smith" <200>') == '"Bob Smith" <200>'
    assert cid("<300>") == "300"
    assert cid("300") == "300"
    assert cid("Reception") == "Reception"
    assert cid("") == "<unknown>"


def test_aor_view_matches_spec_example(cfg):
    uri = "sip:35740219@10.12.118.159:49027"
    view = aor_view(cfg, "pjagent-01", contacts=[uri], tm_update=TM)
    assert view == {
        "authenticate_qualify": "false",
        "contacts": "pjagent-01/sip:35740219@10.12.118.159:49027",
        "contacts_registered": 1,
        "default_expiration": 3600,
        "endpoint_name": "pjagent-01",
        "mailboxes": "",
        "max_contacts": 1,
        "maximum_expiration": 7200,
        "minimum_expiration": 60,
        "object_name": "pjagent-01",
        "object_type": "aor",
        "outbound_proxy": "",
        "qualify_frequency": 0,
        "qualify_timeout": 3,
        "remove_existing": "true",
        "support_path": "false",
        "tm_update": TM,
        "total_contacts": 1,
        "voicemail_extension": "",
    }
    assert type(view["qualify_timeout"]) is int
    empty = aor_view(cfg, "pjagent-01", contacts=[], tm_update=TM)
    assert empty["contacts"] == "" and empty["contacts_registered"] == 0 and empty["total_contacts"] == 0


def test_aor_view_static_contacts_and_orphan_aor(cfg):
    view = aor_view(cfg, "199", contacts=["sip:199@10.0.0.7:5062"], tm_update=TM)
    assert view["contacts"] == "199/sip:199@10.0.0.9:5060,199/sip:199@10.0.0.7:5062"
    assert view["contacts_registered"] == 1 and view["total_contacts"] == 2 and view["endpoint_name"] == "199"
    orphan = load([sec("lonely", ("type", "aor"), ("qualify_timeout", "2.5"), ("contact", "sip:a@h,sip:b@h"))])
    v = aor_view(orphan, "lonely", contacts=[], tm_update=TM)
    assert v["endpoint_name"] == "lonely" and v["max_contacts"] == 0 and v["remove_existing"] == "false"
    assert v["qualify_timeout"] == 2.5 and v["total_contacts"] == 2 and v["contacts_registered"] == 0


def test_aor_policy(cfg):
    assert cfg.aor_policy("pjagent-01") == AorPolicy(name="pjagent-01", max_contacts=1, remove_existing=True)
    p = cfg.aor_policy("199")
    assert p.contacts == ("sip:199@10.0.0.9:5060",)
    assert (p.default_expiration, p.minimum_expiration, p.maximum_expiration) == (3600, 60, 7200)
    assert (p.qualify_frequency, p.qualify_timeout, p.authenticate_qualify) == (0, 3.0, False)
    with pytest.raises(KeyError):
        cfg.aor_policy("nope")


def test_auth_view_masks_secrets(cfg):
    view = auth_view(cfg, "pjagent-01", tm_update=TM)
    assert view == {
        "auth_type": "userpass",
        "endpoint_name": "pjagent-01",
        "md5_cred": "",
        "nonce_lifetime": 32,
        "object_name": "pjagent-01",
        "object_type": "auth",
        "password": "********",
        "realm": "",
        "tm_update": TM,
        "username": "pjagent-01",
    }
    trunk = auth_view(cfg, "trunk-auth", tm_update=TM)
    assert trunk["endpoint_name"] == "" and trunk["password"] == "********"
    md5 = load([sec("m", ("type", "auth"), ("auth_type", "md5"), ("md5_cred", "0" * 32))])
    v = auth_view(md5, "m", tm_update=TM)
    assert v["md5_cred"] == "********" and v["password"] == "" and v["auth_type"] == "md5"
    assert "trunkpw" not in repr(auth_view(cfg, "trunk-auth", tm_update=TM))


def test_accounts(cfg):
    accounts = cfg.accounts()
    assert [a.endpoint for a in accounts] == ["pjagent-01", "199"]
    a = accounts[0]
    assert a == Account(
        endpoint="pjagent-01",
        auth="pjagent-01",
        username="pjagent-01",
        password="pjagent-01",
        realm="",
        md5_cred="",
        aors=("pjagent-01",),
        context="demo",
        transport="transport-udp",
    )
    assert "pjagent-01'" in repr(a) and "password" not in repr(a)
    assert accounts[1].username == "199" and accounts[1].password == "s3cret"  # username defaults to the auth name


def test_contact_id_and_view():
    uri = "sip:35740219@10.12.118.159:49027"
    cid = contact_id("pjagent-01", uri)
    assert re.fullmatch(r"pjagent-01;@[0-9a-f]{32}", cid)
    assert (
        cid == "pjagent-01;@" + hashlib.md5(uri.encode()).hexdigest() == "pjagent-01;@116e48d167ff94856cbc9009cdc735b2"
    )
    view = contact_view(
        aor="pjagent-01",
        endpoint_name="pjagent-01",
        uri=uri,
        call_id="c67ef58c-3b65-44cd-a9a8-784e2af542d3",
        user_agent="Blink 3.0.3 (Linux)",
        via_address="10.12.118.159:49027",
        reg_expire=1513714265,
        status="Unknown",
        round_trip_usec=0,
        qualify_frequency=0,
        qualify_timeout=3.0,
        authentication_qualify=False,
        tm_update=TM,
    )
    assert view == {
        "aor": "pjagent-01",
        "authentication_qualify": 0,
        "call_id": "c67ef58c-3b65-44cd-a9a8-784e2af542d3",
        "endpoint_name": "pjagent-01",
        "id": "pjagent-01;@116e48d167ff94856cbc9009cdc735b2",
        "outbound_proxy": "",
        "path": "",
        "qualify_frequency": 0,
        "qualify_timeout": 3,
        "qualify_timout": 3,
        "reg_expire": 1513714265,
        "round_trip_usec": "0",
        "status": "Unknown",
        "tm_update": TM,
        "uri": "sip:35740219@10.12.118.159:49027",
        "user_agent": "Blink 3.0.3 (Linux)",
        "via_address": "10.12.118.159:49027",
    }
    assert type(view["qualify_timout"]) is int


def test_registration_view(cfg):
    view = registration_view(cfg, "trunk", tm_update=TM)
    assert view == {
        "auth_rejection_permanent": "true",
        "client_uri": "sip:1234@sip.example.com",
        "contact_user": "",
        "endpoint": "",
        "expiration": 3600,
        "fatal_retry_interval": 0,
        "forbidden_retry_interval": 0,
        "line": "false",
        "max_retries": 10,
        "next_reg": 0,
        "object_name": "trunk",
        "object_type": "registration",
        "outbound_auth": "trunk-auth",
        "outbound_proxy": "",
        "retry_interval": 60,
        "server_uri": "sip:sip.example.com",
        "status": "Unregistered",
        "support_path": "false",
        "tm_update": TM,
        "transport": "",
    }
    v = registration_view(cfg, "trunk", status="Registered", next_reg=1513714265, tm_update=TM)
    assert v["status"] == "Registered" and v["next_reg"] == 1513714265


def test_unknown_names_raise_key_error(cfg):
    for fn in (endpoint_view, auth_view, registration_view):
        with pytest.raises(KeyError):
            fn(cfg, "nope", tm_update=TM)
    with pytest.raises(KeyError):
        aor_view(cfg, "nope", contacts=[], tm_update=TM)


def test_lenient_cases_load():
    load([sec("a", ("type", "auth"))])  # userpass without password: Asterisk accepts it
    load([sec("a", ("type", "auth"), ("auth_type", "userpass"), ("password", ""))])
    load([sec("x", ("type", "phoneprov")), sec("y", ("type", "bogus")), sec("z", ("type", "acl"))])
    load([sec("e", ("type", "endpoint"), ("auth", ""), ("aors", ""))])


EP = ("type", "endpoint")
AOR = ("type", "aor")
AUTH = ("type", "auth")
REG = ("type", "registration")
URIS = (("server_uri", "sip:s"), ("client_uri", "sip:c@s"))


@pytest.mark.parametrize(
    ("secs", "section", "fragment"),
    [
        ([sec("e", EP, ("auth", "missing"))], "e", "auth 'missing'"),
        ([sec("e", EP, ("outbound_auth", "missing"))], "e", "outbound_auth"),
        ([sec("e", EP, ("aors", "ok,missing")), sec("ok", AOR)], "e", "aor 'missing'"),
        ([sec("e", EP, ("auth", "e")), sec("e", AOR)], "e", "auth 'e'"),  # same name, wrong type
        ([sec("a", AUTH, ("auth_type", "plain"))], "a", "auth_type"),
        ([sec("a", AUTH, ("auth_type", "md5"))], "a", "md5_cred"),
        ([sec("a", AUTH, ("nonce_lifetime", "soon"))], "a", "nonce_lifetime"),
        ([sec("r", AOR, ("max_contacts", "one"))], "r", "max_contacts"),
        ([sec("r", AOR, ("max_contacts", "1.5"))], "r", "not an integer"),
        ([sec("r", AOR, ("default_expiration", "x"))], "r", "default_expiration"),
        ([sec("r", AOR, ("minimum_expiration", ""))], "r", "minimum_expiration"),
        ([sec("r", AOR, ("maximum_expiration", "7200s"))], "r", "maximum_expiration"),
        ([sec("r", AOR, ("qualify_frequency", "often"))], "r", "qualify_frequency"),
        ([sec("r", AOR, ("max_contacts", "-1"))], "r", "negative"),
        ([sec("r", AOR, ("qualify_frequency", "-30"))], "r", "negative"),
        ([sec("r", AOR, ("qualify_timeout", "-1"))], "r", "negative"),
        ([sec("r", AOR, ("qualify_timeout", "abc"))], "r", "qualify_timeout"),
        ([sec("r", AOR, ("minimum_expiration", "300"), ("maximum_expiration", "200"))], "r", "exceeds"),
        ([sec("r", AOR, ("minimum_expiration", "8000"))], "r", "exceeds"),
        ([sec("r", AOR, ("remove_existing", "sure"))], "r", "remove_existing"),
        ([sec("r", AOR, ("authenticate_qualify", "2"))], "r", "not a boolean"),
        ([sec("r", AOR, ("support_path", "maybe"))], "r", "support_path"),
        ([sec("g", REG, ("client_uri", "sip:c@s"))], "g", "server_uri"),
        ([sec("g", REG, ("server_uri", "sip:s"))], "g", "client_uri"),
        ([sec("g", REG, ("server_uri", ""), ("client_uri", "sip:c@s"))], "g", "server_uri"),
        ([sec("g", REG, *URIS, ("line", "y"))], "g", "line"),
        ([sec("g", REG, *URIS, ("max_retries", "-1"))], "g", "negative"),
        ([sec("e", EP, ("direct_media", "maybe"))], "e", "direct_media"),
        ([sec("e", EP, ("webrtc", "enabled"))], "e", "webrtc"),
        ([sec("e", EP, ("rtp_symmetric", ""))], "e", "rtp_symmetric"),
        ([sec("e", EP, ("100rel", "sometimes"))], "e", "100rel"),
        ([sec("e", EP, ("timers", "never"))], "e", "timers"),
        ([sec("e", EP, ("dtls_verify", "both"))], "e", "dtls_verify"),
        ([sec("e", EP, ("rtp_timeout", "ten"))], "e", "rtp_timeout"),
        ([sec("e", EP, ("tos_audio", "fast"))], "e", "tos_audio"),
        ([sec("t", ("type", "transport"), ("allow_reload", "perhaps"))], "t", "allow_reload"),
    ],
)
def test_pjsip_errors(secs, section, fragment):
    with pytest.raises(PjsipError) as exc:
        load(secs)
    assert isinstance(exc.value, ValueError)
    assert exc.value.section == section
    assert fragment in exc.value.reason or fragment in str(exc.value)


def test_bool_spellings_are_case_insensitive():
    for value in ("yes", "No", "TRUE", "false", "On", "OFF", "1", "0"):
        cfg = load([sec("r", AOR, ("remove_existing", value))])
        assert cfg.aor_policy("r").remove_existing is (value.lower() in ("yes", "true", "on", "1"))


def test_duplicate_section_later_wins():
    cfg = load([sec("r", AOR, ("max_contacts", "1")), sec("r", AOR, ("max_contacts", "5"))])
    assert cfg.aor_policy("r").max_contacts == 5
