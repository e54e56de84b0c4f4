"""PJSIP object model: a parsed pjsip.conf turned into the objects Asterisk's res_pjsip would load.

Input is decoupled from the file parser: `load(sections)` takes an iterable of
`(section name, options, multi)` tuples where `options` are the resolved options (templates already
applied, last value wins) and `multi` holds every value of a key (`contact` of an aor, repeated
`aors`/`allow`...). Template sections (`[name](!)`) must not be passed: they are not objects.
The object type is the section's `type` option; the same name may be used by an endpoint, an auth and
an aor, so objects are keyed by (type, name). Types outside endpoint/aor/auth/registration/transport/
identify (and sections without `type`) are kept in `PjsipConfig.others` and otherwise ignored. When the
same (type, name) appears twice the later section wins.

`load` raises `PjsipError` for what would stop Asterisk from loading an object: an endpoint whose
`auth`/`outbound_auth`/`aors` names a missing auth/aor, an unknown `auth_type` (or `md5` without a
32-hex `md5_cred`, which Asterisk also rejects), malformed or negative numbers, an aor whose
`minimum_expiration` exceeds `maximum_expiration`, a registration without `server_uri`/`client_uri`,
and bool options whose value is not one of yes/no/true/false/on/off/1/0. Unknown option names and
unknown enum values (dtmf_mode...) are not checked.

The views render the "jade" REST API shapes with Asterisk's defaults (see each function). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Section = tuple[str, Mapping[str, str], Mapping[str, list[str]]]

KNOWN_TYPES = ("endpoint", "aor", "auth", "registration", "transport", "identify")
AUTH_TYPES = ("userpass", "md5", "google_oauth")

_TRUE = frozenset({"yes", "true", "on", "1"})
_FALSE = frozenset({"no", "false", "off", "0"})
_UINT_RE = re.compile(r"\+?[0-9]+")
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")

# Codecs Asterisk lists for `allow=all` (order and repeats as Asterisk renders them, from the spec example).
ALL_CODECS: tuple[str, ...] = (
    "codec2", "g723", "ulaw", "alaw", "gsm", "g726", "g726aal2", "adpcm",
    *(("slin",) * 9),
    "lpc10", "g729", "speex", "speex", "speex", "ilbc", "g722", "siren7", "siren14", "testlaw", "g719", "opus",
    "jpeg", "png", "h261", "h263", "h263p", "h264", "mpeg4", "vp8", "vp9", "red", "t140", "t38",
    *(("silk",) * 4),
)  # fmt: skip

# DSCP names accepted by Asterisk's ast_str2tos (value before the << 2 shift).
_DSCP = {
    **{f"cs{i}": i * 8 for i in range(8)},
    "af11": 0x0A, "af12": 0x0C, "af13": 0x0E, "af21": 0x12, "af22": 0x14, "af23": 0x16,
    "af31": 0x1A, "af32": 0x1C, "af33": 0x1E, "af41": 0x22, "af42": 0x24, "af43": 0x26, "ef": 0x2E,
}  # fmt: skip


class PjsipError(ValueError):
    """A section Asterisk would refuse to load. `.section` is the section name, `.reason` the cause."""

    def __init__(self, section: str, reason: str, object_type: str = "") -> None:
        self.section = section
        self.reason = reason
        self.object_type = object_type
        where = f"{object_type} '{section}'" if object_type else f"section '{section}'"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class AorPolicy:
    """What the registrar needs of an aor. NB: Asterisk's max_contacts default 0 means no registration."""

    name: str
    max_contacts: int = 0
    remove_existing: bool = False
    default_expiration: int = 3600
    minimum_expiration: int = 60
    maximum_expiration: int = 7200
    qualify_frequency: int = 0
    qualify_timeout: float = 3.0
    authenticate_qualify: bool = False
    contacts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Account:
    """One (endpoint, inbound auth) pair the registrar authenticates against. Secrets are kept out of repr."""

    endpoint: str
    auth: str
    username: str
    password: str = field(repr=False)
    realm: str
    md5_cred: str = field(repr=False)
    aors: tuple[str, ...]
    context: str
    transport: str
    auth_type: str = "userpass"


class _Reader:
    """Typed access to one section's options, raising PjsipError on bad values."""

    __slots__ = ("name", "otype", "opts", "multi")

    def __init__(self, name: str, otype: str, opts: Mapping[str, str], multi: Mapping[str, list[str]]) -> None:
        self.name, self.otype, self.opts, self.multi = name, otype, opts, multi

    def fail(self, reason: str) -> PjsipError:
        return PjsipError(self.name, reason, self.otype)

    def key(self, keys: str | tuple[str, ...]) -> str | None:
        for k in (keys,) if isinstance(keys, str) else keys:
            if k in self.opts or self.multi.get(k):
                return k
        return None

    def raw(self, keys: str | tuple[str, ...]) -> str | None:
        k = self.key(keys)
        if k is None:
            return None
        if k in self.opts:
            return str(self.opts[k]).strip()
        return str(self.multi[k][-1]).strip()

    def text(self, keys: str | tuple[str, ...], default: str = "") -> str:
        v = self.raw(keys)
        return default if v is None else v

    def values(self, keys: str | tuple[str, ...]) -> list[str]:
        """Every value of the key, comma-split, stripped, empties dropped."""
        k = self.key(keys)
        if k is None:
            return []
        raw = self.multi.get(k) or [self.opts[k]]
        return [p.strip() for v in raw for p in str(v).split(",") if p.strip()]

    def boolean(self, keys: str | tuple[str, ...], default: bool) -> bool:
        v = self.raw(keys)
        if v is None:
            return default
        low = v.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise self.fail(f"{self.key(keys)}: '{v}' is not a boolean (yes/no/true/false/on/off/1/0)")

    def uint(self, keys: str | tuple[str, ...], default: int) -> int:
        v = self.raw(keys)
        if v is None:
            return default
        if v.startswith("-") and _UINT_RE.fullmatch(v[1:]):
            raise self.fail(f"{self.key(keys)}: '{v}' must not be negative")
        if not _UINT_RE.fullmatch(v):
            raise self.fail(f"{self.key(keys)}: '{v}' is not an integer")
        return int(v)

    def number(self, keys: str | tuple[str, ...], default: float) -> float:
        v = self.raw(keys)
        if v is None:
            return default
        try:
            f = float(v)
        except ValueError:
            raise self.fail(f"{self.key(keys)}: '{v}' is not a number") from None
        if f != f or f in (float("inf"), float("-inf")):
            raise self.fail(f"{self.key(keys)}: '{v}' is not a number")
        if f < 0:
            raise self.fail(f"{self.key(keys)}: '{v}' must not be negative")
        return f

    def tos(self, keys: str | tuple[str, ...]) -> int:
        """ast_str2tos: a C integer (decimal, 0x hex, 0 octal) masked to a byte, or a DSCP name << 2."""
        v = self.raw(keys)
        if v is None:
            return 0
        low = v.lower()
        if low in _DSCP:
            return _DSCP[low] << 2
        for pattern, base in ((r"0x[0-9a-f]+", 16), (r"0[0-7]+", 8), (r"[0-9]+", 10)):
            if re.fullmatch(pattern, low):
                return int(low, base) & 0xFF
        raise self.fail(f"{self.key(keys)}: '{v}' is not a TOS value (number or DSCP name)")


@dataclass(frozen=True)
class PjsipConfig:
    """The loaded objects, name -> resolved options, per type; `multi` keeps every value per key."""

    endpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    aors: dict[str, dict[str, str]] = field(default_factory=dict)
    auths: dict[str, dict[str, str]] = field(default_factory=dict)
    registrations: dict[str, dict[str, str]] = field(default_factory=dict)
    transports: dict[str, dict[str, str]] = field(default_factory=dict)
    identifies: dict[str, dict[str, str]] = field(default_factory=dict)
    multi: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)
    others: list[Section] = field(default_factory=list)

    def table(self, otype: str) -> dict[str, dict[str, str]]:
        return {
            "endpoint": self.endpoints,
            "aor": self.aors,
            "auth": self.auths,
            "registration": self.registrations,
            "transport": self.transports,
            "identify": self.identifies,
        }[otype]

    def _reader(self, otype: str, name: str) -> _Reader:
        opts = self.table(otype).get(name)
        if opts is None:
            raise KeyError(f"{otype} '{name}' not found")
        return _Reader(name, otype, opts, self.multi.get(otype, {}).get(name, {}))

    def values(self, otype: str, name: str, key: str) -> list[str]:
        """All values of an option (repeats and comma lists flattened)."""
        return self._reader(otype, name).values(key)

    def _index(self, key: str) -> dict[str, str]:
        """value -> the first endpoint (in config order) listing it under `key`; built once per
        load (the registrar asks on every REGISTER)."""
        cache = self.__dict__.setdefault("_indexes", {})
        index = cache.get(key)
        if index is None:
            index = {}
            for e in self.endpoints:
                for v in self.values("endpoint", e, key):
                    index.setdefault(v, e)
            cache[key] = index
        return index

    def endpoint_for_aor(self, aor: str) -> str | None:
        """The first endpoint (in config order) whose `aors` lists this aor."""
        return self._index("aors").get(aor)

    def endpoint_for_auth(self, auth: str) -> str | None:
        """The first endpoint (in config order) whose inbound `auth` lists this auth."""
        return self._index("auth").get(auth)

    def aor_policy(self, name: str) -> AorPolicy:
        """Typed aor options; KeyError if there is no such aor. Computed once per load."""
        cache = self.__dict__.setdefault("_policies", {})
        policy = cache.get(name)
        if policy is None:
            policy = cache[name] = self._aor_policy(name)
        return policy

    def _aor_policy(self, name: str) -> AorPolicy:
        r = self._reader("aor", name)
        return AorPolicy(
            name=name,
            max_contacts=r.uint("max_contacts", 0),
            remove_existing=r.boolean("remove_existing", False),
            default_expiration=r.uint("default_expiration", 3600),
            minimum_expiration=r.uint("minimum_expiration", 60),
            maximum_expiration=r.uint("maximum_expiration", 7200),
            qualify_frequency=r.uint("qualify_frequency", 0),
            qualify_timeout=r.number("qualify_timeout", 3.0),
            authenticate_qualify=r.boolean("authenticate_qualify", False),
            contacts=tuple(r.values("contact")),
        )

    def accounts(self) -> list[Account]:
        """One Account per (endpoint, inbound auth), in config order. Endpoints without `auth` have none."""
        out: list[Account] = []
        for ep in self.endpoints:
            r = self._reader("endpoint", ep)
            aors = tuple(r.values("aors"))
            for auth_name in r.values("auth"):
                a = self._reader("auth", auth_name)
                out.append(
                    Account(
                        endpoint=ep,
                        auth=auth_name,
                        username=a.text("username") or auth_name,
                        password=a.opts.get("password", ""),
                        realm=a.text("realm"),
                        md5_cred=a.text("md5_cred"),
                        aors=aors,
                        context=r.text("context", "default"),
                        transport=r.text("transport"),
                        auth_type=a.text("auth_type", "userpass").lower() or "userpass",
                    )
                )
        return out


def load(sections: Iterable[Section]) -> PjsipConfig:
    """Build the PjsipConfig; raises PjsipError for what Asterisk would reject (see the module docstring)."""
    cfg = PjsipConfig()
    for name, opts, multi in sections:
        otype = str(opts.get("type", "")).strip().lower()
        if otype not in KNOWN_TYPES:
            cfg.others.append((name, opts, multi))
            continue
        table = cfg.table(otype)
        table.pop(name, None)  # a later duplicate wins, and moves to the end of the order
        table[name] = dict(opts)
        cfg.multi.setdefault(otype, {})[name] = {k: list(v) for k, v in multi.items()}
    for name in cfg.auths:
        _check_auth(cfg._reader("auth", name))
    for name in cfg.aors:
        _check_aor(cfg, name)
    for name in cfg.endpoints:
        r = cfg._reader("endpoint", name)
        for key, otype in (("auth", "auth"), ("outbound_auth", "auth"), ("aors", "aor")):
            for ref in r.values(key):
                if ref not in cfg.table(otype):
                    raise r.fail(f"{key}: {otype} '{ref}' does not exist")
        _render_endpoint(r)
    for name in cfg.registrations:
        r = cfg._reader("registration", name)
        for key in ("server_uri", "client_uri"):
            if not r.text(key):
                raise r.fail(f"{key} is required")
        _render_registration(r)
    for name in cfg.transports:
        r = cfg._reader("transport", name)
        for key in _TRANSPORT_BOOLS:
            r.boolean(key, False)
    return cfg


def _check_auth(r: _Reader) -> None:
    auth_type = r.text("auth_type", "userpass").lower()
    if auth_type not in AUTH_TYPES:
        raise r.fail(f"auth_type: '{auth_type}' is not one of {', '.join(AUTH_TYPES)}")
    if auth_type == "md5" and not _MD5_RE.fullmatch(r.text("md5_cred")):
        raise r.fail("auth_type md5 needs md5_cred, 32 hex digits")
    r.uint("nonce_lifetime", 32)


def _check_aor(cfg: PjsipConfig, name: str) -> None:
    policy = cfg.aor_policy(name)
    r = cfg._reader("aor", name)
    r.boolean("support_path", False)
    if policy.minimum_expiration > policy.maximum_expiration:
        raise r.fail(
            f"minimum_expiration {policy.minimum_expiration} exceeds maximum_expiration {policy.maximum_expiration}"
        )


_TRANSPORT_BOOLS = ("allow_reload", "symmetric_transport", "require_client_cert", "verify_client", "verify_server")

# Endpoint fields: (jade field, kind, default, config keys). Kinds: str (as configured), enum (lowercased),
# bool ("true"/"false"), yesno ("yes"/"no"), int (JSON integer), intstr (integer rendered as a string),
# tos (ast_str2tos number), list (comma-joined values). Special fields are rendered in _render_endpoint.
_ENDPOINT_FIELDS: tuple[tuple[str, str, str | int | bool, tuple[str, ...]], ...] = (
    ("account_code", "str", "", ("accountcode", "account_code")),
    ("acl", "str", "", ("acl",)),
    ("aggregate_mwi", "bool", True, ("aggregate_mwi",)),
    ("allow_overlap", "bool", True, ("allow_overlap",)),
    ("allow_subscribe", "bool", True, ("allow_subscribe",)),
    ("allow_transfer", "bool", True, ("allow_transfer",)),
    ("aors", "list", "", ("aors",)),
    ("asymmetric_rtp_codec", "bool", False, ("asymmetric_rtp_codec",)),
    ("auth", "list", "", ("auth",)),
    ("bind_rtp_to_media_address", "bool", False, ("bind_rtp_to_media_address",)),
    ("bundle", "bool", False, ("bundle",)),
    ("call_group", "str", "", ("call_group", "callgroup")),
    ("caller_id_privacy", "enum", "allowed_not_screened", ("callerid_privacy", "caller_id_privacy")),
    ("caller_id_tag", "str", "", ("callerid_tag", "caller_id_tag")),
    ("connected_line_method", "enum", "invite", ("connected_line_method",)),
    ("contact_acl", "str", "", ("contact_acl",)),
    ("context", "str", "default", ("context",)),
    ("cos_audio", "int", 0, ("cos_audio",)),
    ("cos_video", "int", 0, ("cos_video",)),
    ("device_state_busy_at", "int", 0, ("device_state_busy_at",)),
    ("direct_media", "bool", True, ("direct_media",)),
    ("direct_media_glare_mitigation", "enum", "none", ("direct_media_glare_mitigation",)),
    ("direct_media_method", "enum", "invite", ("direct_media_method",)),
    ("disable_direct_media_on_nat", "bool", False, ("disable_direct_media_on_nat",)),
    ("dtls_ca_file", "str", "", ("dtls_ca_file",)),
    ("dtls_ca_path", "str", "", ("dtls_ca_path",)),
    ("dtls_cert_file", "str", "", ("dtls_cert_file",)),
    ("dtls_cipher", "str", "", ("dtls_cipher",)),
    ("dtls_private_key", "str", "", ("dtls_private_key",)),
    ("dtls_rekey", "int", 0, ("dtls_rekey",)),
    ("dtls_setup", "enum", "active", ("dtls_setup",)),
    ("dtmf_mode", "enum", "rfc4733", ("dtmf_mode",)),
    ("fax_detect", "bool", False, ("fax_detect",)),
    ("fax_detect_time", "int", 0, ("fax_detect_timeout", "fax_detect_time")),
    ("force_avp", "bool", False, ("force_avp",)),
    ("force_rport", "bool", True, ("force_rport",)),
    ("from_domain", "str", "", ("from_domain",)),
    ("from_user", "str", "", ("from_user",)),
    ("g_726_non_standard", "bool", False, ("g726_non_standard", "g_726_non_standard")),
    ("ice_support", "bool", False, ("ice_support",)),
    ("inband_progress", "bool", False, ("inband_progress",)),
    ("incoming_mwi_mailbox", "str", "", ("incoming_mwi_mailbox",)),
    ("language", "str", "", ("language",)),
    ("mailboxes", "str", "", ("mailboxes",)),
    ("max_audio_streams", "int", 1, ("max_audio_streams",)),
    ("max_video_streams", "int", 1, ("max_video_streams",)),
    ("media_address", "str", "", ("media_address",)),
    ("media_encryption", "enum", "no", ("media_encryption",)),
    ("media_encryption_optimistic", "bool", False, ("media_encryption_optimistic",)),
    ("media_use_received_transport", "bool", False, ("media_use_received_transport",)),
    ("message_context", "str", "", ("message_context",)),
    ("moh_passthrough", "bool", False, ("moh_passthrough",)),
    ("moh_suggest", "str", "default", ("moh_suggest",)),
    ("mwi_from_user", "str", "", ("mwi_from_user",)),
    ("mwi_subscribe_replaces_unsolicited", "bool", False, ("mwi_subscribe_replaces_unsolicited",)),
    ("named_call_group", "str", "", ("named_call_group",)),
    ("named_pickup_group", "str", "", ("named_pickup_group",)),
    ("notify_early_inuse_ringing", "bool", False, ("notify_early_inuse_ringing",)),
    ("one_touch_recording", "bool", False, ("one_touch_recording",)),
    ("outbound_auth", "list", "", ("outbound_auth",)),
    ("outbound_proxy", "str", "", ("outbound_proxy",)),
    ("pickup_group", "str", "", ("pickup_group", "pickupgroup")),
    ("preferred_codec_only", "bool", False, ("preferred_codec_only",)),
    ("record_off_feature", "str", "automixmon", ("record_off_feature",)),
    ("record_on_feature", "str", "automixmon", ("record_on_feature",)),
    ("redirect_method", "enum", "", ("redirect_method",)),
    ("refer_blind_progress", "bool", True, ("refer_blind_progress",)),
    ("rewrite_contact", "bool", False, ("rewrite_contact",)),
    ("rpid_immediate", "bool", False, ("rpid_immediate",)),
    ("rtcp_mux", "bool", False, ("rtcp_mux",)),
    ("rtp_engine", "str", "asterisk", ("rtp_engine",)),
    ("rtp_ipv6", "bool", False, ("rtp_ipv6",)),
    ("rtp_keepalive", "int", 0, ("rtp_keepalive",)),
    ("rtp_symmetric", "bool", False, ("rtp_symmetric",)),
    ("rtp_timeout", "int", 0, ("rtp_timeout",)),
    ("rtp_timeout_hold", "int", 0, ("rtp_timeout_hold",)),
    ("sdp_owner", "str", "-", ("sdp_owner",)),
    ("sdp_session", "str", "Asterisk", ("sdp_session",)),
    ("send_diversion", "bool", True, ("send_diversion",)),
    ("send_pai", "bool", False, ("send_pai",)),
    ("send_rpid", "bool", False, ("send_rpid",)),
    ("set_var", "list", "", ("set_var",)),
    ("srtp_tag32", "bool", False, ("srtp_tag_32", "srtp_tag32")),
    ("sub_min_expiry", "intstr", 0, ("sub_min_expiry",)),
    ("subscribe_context", "str", "", ("subscribe_context",)),
    ("t38_udptl", "bool", False, ("t38_udptl",)),
    ("t38_udptl_ec", "enum", "none", ("t38_udptl_ec",)),
    ("t38_udptl_ipv6", "bool", False, ("t38_udptl_ipv6",)),
    ("t38_udptl_maxdatagram", "int", 0, ("t38_udptl_maxdatagram",)),
    ("t38_udptl_nat", "bool", False, ("t38_udptl_nat",)),
    ("timers_min_se", "intstr", 90, ("timers_min_se",)),
    ("timers_sess_expires", "int", 1800, ("timers_sess_expires",)),
    ("tone_zone", "str", "", ("tone_zone",)),
    ("tos_audio", "tos", 0, ("tos_audio",)),
    ("tos_video", "tos", 0, ("tos_video",)),
    ("transport", "str", "", ("transport",)),
    ("trust_id_inbound", "bool", False, ("trust_id_inbound",)),
    ("trust_id_outbound", "bool", False, ("trust_id_outbound",)),
    ("use_avpf", "bool", False, ("use_avpf",)),
    ("use_ptime", "bool", False, ("use_ptime",)),
    ("user_eq_phone", "bool", False, ("user_eq_phone",)),
    ("voicemail_extension", "str", "", ("voicemail_extension",)),
    ("webrtc", "yesno", False, ("webrtc",)),
)

_CID_RE = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>\s*')
_PHONE_RE = re.compile(r"[0-9*#+\-().\s]+")


def _tf(value: bool) -> str:
    return "true" if value else "false"


def _caller_id(value: str | None) -> str:
    """Asterisk's caller_id_to_str (ast_callerid_merge): '"name" <num>', name, num, or '<unknown>'."""
    v = (value or "").strip()
    m = _CID_RE.fullmatch(v)
    if m:
        name = re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
        name, num = name.strip(), m.group(3).strip()
    elif _PHONE_RE.fullmatch(v):
        name, num = "", v
    else:
        name, num = v, ""
    if name and num:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{num}>'
    return name or num or "<unknown>"


def _codecs(allow: list[str], disallow: list[str]) -> str:
    """'(c1|c2)'. Option order between allow and disallow is not known, so: allow builds the list ('all'
    expands to ALL_CODECS), `disallow=all` is taken as the usual leading reset, and a named disallow removes
    a codec that only came from `allow=all`."""
    out: list[str] = []
    seen: set[str] = set()
    explicit: set[str] = set()
    for codec in (c.lower() for c in allow):
        names = ALL_CODECS if codec == "all" else (codec,)
        if codec != "all":
            explicit.add(codec)
        out.extend(n for n in names if n not in seen)
        seen.update(names)
    removed = {c.lower() for c in disallow} - {"all"} - explicit
    return "(" + "|".join(c for c in out if c not in removed) + ")"


def _keyword_bool(r: _Reader, key: str, default: str, keywords: Mapping[str, str]) -> str:
    """Options taking a boolean or a keyword (100rel, timers, dtls_verify)."""
    v = r.raw(key)
    if v is None:
        return default
    low = v.lower()
    if low in keywords:
        return keywords[low]
    if low in _TRUE:
        return keywords["yes"]
    if low in _FALSE:
        return keywords["no"]
    raise r.fail(f"{key}: '{v}' is not one of yes/no/{'/'.join(k for k in keywords if k not in ('yes', 'no'))}")


def _render_endpoint(r: _Reader) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, kind, default, keys in _ENDPOINT_FIELDS:
        if kind == "str":
            out[name] = r.text(keys, str(default))
        elif kind == "enum":
            value = r.text(keys, str(default)).lower()
            out[name] = "invite" if name.endswith("_method") and value == "reinvite" else value
        elif kind == "bool":
            out[name] = _tf(r.boolean(keys, bool(default)))
        elif kind == "yesno":
            out[name] = "yes" if r.boolean(keys, bool(default)) else "no"
        elif kind == "int":
            out[name] = r.uint(keys, int(default))
        elif kind == "intstr":
            out[name] = str(r.uint(keys, int(default)))
        elif kind == "tos":
            out[name] = r.tos(keys)
        else:
            out[name] = ",".join(r.values(keys))
    out["allow"] = _codecs(r.values("allow"), r.values("disallow"))
    out["disallow"] = ""  # Asterisk has no to_str for disallow: always rendered empty
    out["caller_id"] = _caller_id(r.raw(("callerid", "caller_id")))
    out["dtls_fingerprint"] = r.text("dtls_fingerprint", "SHA-256").upper()
    identify_by = [p.strip().lower() for p in r.text("identify_by", "username,ip").split(",") if p.strip()]
    out["identify_by"] = ",".join(identify_by)
    yes_no = {"yes": "yes", "no": "no"}
    out["rel_100"] = _keyword_bool(
        r, "100rel" if r.key("100rel") else "rel_100", "yes", {**yes_no, "required": "required"}
    )
    out["timers"] = _keyword_bool(
        r, "timers", "yes", {**yes_no, "required": "required", "always": "always", "forced": "always"}
    )
    verify = {"yes": "Yes", "no": "No", "fingerprint": "Yes", "certificate": "Yes"}
    out["dtls_verify"] = _keyword_bool(r, "dtls_verify", "No", verify)
    return out


def _render_registration(r: _Reader) -> dict[str, object]:
    return {
        "auth_rejection_permanent": _tf(r.boolean("auth_rejection_permanent", True)),
        "client_uri": r.text("client_uri"),
        "contact_user": r.text("contact_user"),
        "endpoint": r.text("endpoint"),
        "expiration": r.uint("expiration", 3600),
        "fatal_retry_interval": r.uint("fatal_retry_interval", 0),
        "forbidden_retry_interval": r.uint("forbidden_retry_interval", 0),
        "line": _tf(r.boolean("line", False)),
        "max_retries": r.uint("max_retries", 10),
        "outbound_auth": ",".join(r.values("outbound_auth")),
        "outbound_proxy": r.text("outbound_proxy"),
        "retry_interval": r.uint("retry_interval", 60),
        "server_uri": r.text("server_uri"),
        "support_path": _tf(r.boolean("support_path", False)),
        "transport": r.text("transport"),
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def endpoint_view(
    cfg: PjsipConfig, name: str, *, device_state: str = "Unavailable", active_channels: str = "", tm_update: str
) -> dict[str, object]:
    """The jade `/admin/pjsip/endpoints/<name>` object: every field of the spec example, Asterisk defaults for
    what is not configured. Booleans render "true"/"false" (webrtc, rel_100, timers keep yes/no; dtls_verify
    Yes/No as Asterisk does); `allow` is "(c1|c2)"; `disallow` is always "" (Asterisk never renders it);
    `caller_id` is Asterisk's merged form; `tos_*` are numbers (DSCP names converted). KeyError if unknown."""
    out = _render_endpoint(cfg._reader("endpoint", name))
    out.update(
        object_name=name,
        object_type="endpoint",
        device_state=device_state,
        active_channels=active_channels,
        tm_update=tm_update,
    )
    return dict(sorted(out.items()))


def aor_view(cfg: PjsipConfig, name: str, *, contacts: list[str], tm_update: str) -> dict[str, object]:
    """The jade `/admin/pjsip/aors/<name>` object. `contacts` are the registered (dynamic) contact uris;
    the aor's static `contact=` uris come first in the "aor/uri,aor/uri" string. endpoint_name is the first
    endpoint whose `aors` lists this aor, else the aor's own name. KeyError if unknown."""
    r = cfg._reader("aor", name)
    policy = cfg.aor_policy(name)
    uris = [*policy.contacts, *contacts]
    return {
        "authenticate_qualify": _tf(policy.authenticate_qualify),
        "contacts": ",".join(f"{name}/{uri}" for uri in uris),
        "contacts_registered": len(contacts),
        "default_expiration": policy.default_expiration,
        "endpoint_name": cfg.endpoint_for_aor(name) or name,
        "mailboxes": r.text("mailboxes"),
        "max_contacts": policy.max_contacts,
        "maximum_expiration": policy.maximum_expiration,
        "minimum_expiration": policy.minimum_expiration,
        "object_name": name,
        "object_type": "aor",
        "outbound_proxy": r.text("outbound_proxy"),
        "qualify_frequency": policy.qualify_frequency,
        "qualify_timeout": _number(policy.qualify_timeout),
        "remove_existing": _tf(policy.remove_existing),
        "support_path": _tf(r.boolean("support_path", False)),
        "tm_update": tm_update,
        "total_contacts": len(uris),
        "voicemail_extension": r.text("voicemail_extension"),
    }


SECRET_MASK = "********"


def auth_view(cfg: PjsipConfig, name: str, *, tm_update: str) -> dict[str, object]:
    """The jade `/admin/pjsip/auths/<name>` object. Deviation from the spec example: secrets are never
    echoed -- `password` and `md5_cred` render "********" when set and "" when not. `username` is the
    configured one ("" when unset, as Asterisk shows it; the registrar's Account falls back to the section
    name). endpoint_name is the first endpoint whose inbound `auth` lists it, else "". KeyError if unknown."""
    r = cfg._reader("auth", name)
    return {
        "auth_type": r.text("auth_type", "userpass").lower() or "userpass",
        "endpoint_name": cfg.endpoint_for_auth(name) or "",
        "md5_cred": SECRET_MASK if r.text("md5_cred") else "",
        "nonce_lifetime": r.uint("nonce_lifetime", 32),
        "object_name": name,
        "object_type": "auth",
        "password": SECRET_MASK if r.opts.get("password") else "",
        "realm": r.text("realm"),
        "tm_update": tm_update,
        "username": r.text("username"),
    }


def contact_id(aor: str, uri: str) -> str:
    """Asterisk's contact object id: "<aor>;@<md5 hex of the uri>"."""
    return f"{aor};@{hashlib.md5(uri.encode('utf-8'), usedforsecurity=False).hexdigest()}"


def contact_view(
    *,
    aor: str,
    endpoint_name: str,
    uri: str,
    call_id: str,
    user_agent: str,
    via_address: str,
    reg_expire: int,
    status: str,
    round_trip_usec: int | str,
    qualify_frequency: int,
    qualify_timeout: float,
    authentication_qualify: bool | int,
    outbound_proxy: str = "",
    path: str = "",
    tm_update: str,
) -> dict[str, object]:
    """The jade `/admin/pjsip/contacts/<id>` object. Carries both the spec's misspelt `qualify_timout` and
    the corrected `qualify_timeout`; `authentication_qualify` is 0/1 as in the spec; `round_trip_usec` a
    string ("N/A" may be passed as is)."""
    timeout = _number(qualify_timeout)
    return {
        "aor": aor,
        "authentication_qualify": int(bool(authentication_qualify)),
        "call_id": call_id,
        "endpoint_name": endpoint_name,
        "id": contact_id(aor, uri),
        "outbound_proxy": outbound_proxy,
        "path": path,
        "qualify_frequency": int(qualify_frequency),
        "qualify_timeout": timeout,
        "qualify_timout": timeout,
        "reg_expire": int(reg_expire),
        "round_trip_usec": str(round_trip_usec),
        "status": status,
        "tm_update": tm_update,
        "uri": uri,
        "user_agent": user_agent,
        "via_address": via_address,
    }


def registration_view(
    cfg: PjsipConfig, name: str, *, status: str = "Unregistered", next_reg: int = 0, tm_update: str
) -> dict[str, object]:
    """The jade `/admin/pjsip/registration_outbounds/<name>` object. The spec gives no example, so this is
    Asterisk's outbound `registration` object (its option names and defaults) plus object_name/object_type,
    the runtime `status` and `next_reg` (epoch seconds of the next attempt, 0 when none) and tm_update."""
    out = _render_registration(cfg._reader("registration", name))
    out.update(object_name=name, object_type="registration", status=status, next_reg=int(next_reg), tm_update=tm_update)
    return dict(sorted(out.items()))
