"""RFC 4475 (SIP Torture Test Messages) §3.1, run through `switchboard.sip.message`.

The messages live in tests/unit/sip/data/rfc4475/<name>.sip, binary-exact: CRLF line ends, the RFC's
<allOneLine> lines joined, <hex> octets and <repeat> runs expanded. Each message with a body was
checked against its own Content-Length (the 553-octet multipart of mpart01 included).

§3.1.1 Valid messages: all 13 are included and parse.

    wsinv       3.1.1.1  short tortuous INVITE: folding, LWS everywhere, compact and long forms mixed,
                         odd name case, leading zeros (Max-Forwards 0068, CSeq 0009), three Vias
    intmeth     3.1.1.2  wide range of valid characters: the method is a token of punctuation; quoted
                         NUL/BEL/DEL; UTF-8 in a parameter and in an extension header
    esc01       3.1.1.3  % HEX HEX escapes in URIs: kept as received (the parser does not unescape)
    escnull     3.1.1.4  escaped NULs in URIs; two Contacts; "L:0"
    esc02       3.1.1.5  % that is not an escape: RE%47IST%45R is an unknown method, not REGISTER;
                         C%6Fntact is an extension header, not Contact (two Contacts, not three)
    lwsdisp     3.1.1.6  no LWS between display name and <
    longreq     3.1.1.7  very long values; 34 Via values over 34 lines, in every spelling of Via/v
    dblreq      3.1.1.8  extra octets after the body in a datagram: the first message only
    semiuri     3.1.1.9  ; inside the Request-URI user part
    transports  3.1.1.10 Vias with UDP, SCTP, TLS, UNKNOWN and TCP
    mpart01     3.1.1.11 multipart body with binary octets (0x00 among them): framed by Content-Length
    unreason    3.1.1.12 reason phrase with UTF-8
    noreason    3.1.1.13 empty reason phrase ("SIP/2.0 100 ")

§3.1.2 Invalid messages: all 19 are included. Our rule is "malformed: 400 Bad Request where a
response is possible, otherwise dropped". `parse` raises ParseError, whose `status` is the answer a
request deserves; `salvage` recovers the request line and Via/From/To/Call-ID/CSeq for that
answer, or returns None for a response (never answered). Where the RFC lets an element choose:

    badinv01    3.1.2.1  empty Via/Contact parameters (;;,;,,): ParseError "bad Via" -> 400
    clerr       3.1.2.2  Content-Length 9999 over a short body: ParseError -> 400 (datagram);
                         over TCP `frame` waits for the rest (None)
    ncl         3.1.2.3  Content-Length -999: ParseError -> 400; `frame` raises (close the stream)
    scalar02    3.1.2.4  CSeq > 2**32-1: ParseError "bad CSeq" -> 400. Our choice for the rest: a
                         Max-Forwards > 255 alone is also refused (400); Expires/expires overflows
                         are not the parser's business (the registrar applies its default)
    scalarlg    3.1.2.5  response with CSeq > 2**32-1: ParseError, dropped (salvage None)
    quotbal     3.1.2.6  unterminated quote in To: ParseError "bad To" -> 400 (no inference)
    ltgtruri    3.1.2.7  Request-URI in <>: ParseError "bad Request-URI" -> 400
    lwsruri     3.1.2.8  LWS inside the Request-URI: ParseError "bad start line" -> 400
    lwsstart    3.1.2.9  several SP between request-line elements: ParseError -> 400 (not liberal)
    trws        3.1.2.10 SP after SIP/2.0: ParseError -> 400 (not liberal)
    escruri     3.1.2.11 escaped headers in a SIP Request-URI: ParseError -> 400
    baddate     3.1.2.12 non-GMT Date: ACCEPTED. The RFC says not to reject unless the Date matters
                         to the element; nothing here reads Date, so the value is kept as is
    regbadct    3.1.2.13 Contact with ?headers outside <>: ParseError "bad Contact" -> 400
    badaspec    3.1.2.14 spaces inside <> in To: ParseError "bad To" -> 400
    baddn       3.1.2.15 unquoted display names with commas: ParseError "bad From" -> 400
    badvers     3.1.2.16 SIP/7.0: ParseError with status 505 (Version Not Supported); salvageable
    mismatch01  3.1.2.17 CSeq method != request method: ParseError -> 400
    mismatch02  3.1.2.18 unknown method, CSeq INVITE: ParseError -> 400 (the RFC prefers 501 but
                         allows 400; the parser cannot know which methods the element implements)
    bigcode     3.1.2.19 response code 4294967301: ParseError, dropped (salvage None)

Not included: §3.2 (transaction layer) and §3.3 (application layer) messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.sip.message import ParseError, frame, parse, response_to, salvage

DATA = Path(__file__).parent / "data" / "rfc4475"

VALID = ["wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq", "semiuri",
         "transports", "mpart01", "unreason", "noreason"]  # fmt: skip

# name -> (what the ParseError says, its status, whether salvage finds a request to answer)
INVALID = {
    "badinv01": ("bad Via", 400, True),
    "clerr": ("body shorter than Content-Length", 400, True),
    "ncl": ("bad Content-Length", 400, True),
    "scalar02": ("bad CSeq", 400, True),
    "scalarlg": ("bad CSeq", 400, False),
    "quotbal": ("bad To", 400, True),
    "ltgtruri": ("bad Request-URI", 400, True),
    "lwsruri": ("bad start line", 400, True),
    "lwsstart": ("bad start line", 400, True),
    "trws": ("bad start line", 400, True),
    "escruri": ("headers in the Request-URI", 400, True),
    "regbadct": ("bad Contact", 400, True),
    "badaspec": ("bad To", 400, True),
    "baddn": ("bad From", 400, True),
    "badvers": ("unsupported version", 505, True),
    "mismatch01": ("CSeq method differs", 400, True),
    "mismatch02": ("CSeq method differs", 400, True),
    "bigcode": ("bad start line", 400, False),
}
ACCEPTED_INVALID = ["baddate"]


def load(name: str) -> bytes:
    return (DATA / f"{name}.sip").read_bytes()


def test_the_corpus_is_complete_and_binary_exact():
    assert {p.stem for p in DATA.glob("*.sip")} == set(VALID) | set(INVALID) | set(ACCEPTED_INVALID)
    for name in [*VALID, *INVALID, *ACCEPTED_INVALID]:
        data = load(name)
        head = data.split(b"\r\n\r\n", 1)[0]
        assert b"\n" not in head.replace(b"\r\n", b""), name  # CRLF line ends only
        assert b"<hex>" not in data and b"<allOneLine>" not in data and b"<repeat" not in data, name


@pytest.mark.parametrize("name", VALID)
def test_valid_message_parses_and_round_trips(name):
    msg = parse(load(name))
    again = parse(msg.to_bytes())
    assert (again.method, again.uri, again.status) == (msg.method, msg.uri, msg.status)

    def without_length(m):  # to_bytes writes Content-Length last, from the body
        return [h for h in m.headers if h[0] != "Content-Length"]

    assert without_length(again) == without_length(msg) and again.body == msg.body


@pytest.mark.parametrize("name", VALID)
def test_valid_message_is_also_salvageable_when_a_request(name):
    msg = parse(load(name))
    rescued = salvage(load(name))
    if not msg.is_request:
        assert rescued is None
        return
    assert rescued is not None and rescued.method == msg.method
    assert rescued.get("Call-ID") == msg.get("Call-ID") and rescued.get("CSeq") == msg.get("CSeq")


def test_wsinv_short_tortuous_invite():
    m = parse(load("wsinv"))
    assert m.method == "INVITE" and m.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.get("Call-ID") == "wsinv.ndaksdj@192.0.2.1"
    assert m.cseq == (9, "INVITE") and m.get("Max-Forwards") == "0068"
    vias = m.get_all("Via")  # one long-form Via folded over three lines, then "v:" with two values
    assert len(vias) == 3
    assert vias[0] == "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw"
    assert vias[1].endswith("branch  =   z9hG4bK9ikj8") and vias[2].endswith("branch= z9hG4bK30239")
    assert m.get("To") == "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
    assert m.get("From") == '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com> ; tag = 98asjd8'
    assert m.get("Subject") == ""  # "s :" with nothing after it
    assert m.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"  # unknown: not split, not checked
    assert (
        m.get("Contact")
        == '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33'
    )
    assert m.get("Route") == "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    assert m.get("Content-Type") == "application/sdp"
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n") and m.body.endswith(b"a=rtpmap:31 LPC\r\n")
    assert len(m.headers) == 15


def test_intmeth_wide_range_of_valid_characters():
    m = parse(load("intmeth"))
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method  # a token, case and all: method names are case-sensitive
    assert m.uri == ("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
                     "(doesn't-it)@example.com")  # fmt: skip
    assert m.cseq == (139122385, method)
    assert m.get("Via") == "SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~"
    assert m.get("To").startswith('"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~')
    assert "fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-." in m.get("From")
    assert m.get("Call-ID") == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.get("Max-Forwards") == "255" and m.body == b""


def test_esc01_escapes_are_kept_verbatim():
    m = parse(load("esc01"))
    assert m.method == "INVITE" and m.uri == "sip:sips%3Auser%40example.com@example.net"
    assert m.get("To") == "sip:%75se%72@example.com"
    assert m.get("From") == "<sip:I%20have%20spaces@example.net>;tag=938"
    assert m.get("Call-ID") == "esc01.239409asdfakjkn23onasd0-3234"  # "i:"
    assert m.get("Content-Type") == "application/sdp"  # "C:"
    assert m.get("Contact") == "<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>"
    assert len(m.body) == 150


def test_escnull_two_distinct_contacts():
    m = parse(load("escnull"))
    assert m.method == "REGISTER" and m.uri == "sip:example.com"
    assert m.get_all("Contact") == ["<sip:%00@host5.example.com>", "<sip:%00%00@host5.example.com>"]
    assert m.get("Content-Length") == "0" and m.body == b""  # "L:0"


def test_esc02_percent_is_not_an_escape_in_methods_or_header_names():
    m = parse(load("esc02"))
    assert m.method == "RE%47IST%45R" != "REGISTER"
    assert m.cseq == (29344, "RE%47IST%45R")
    assert m.get_all("Contact") == ["<sip:alias1@host1.example.com>", "<sip:alias3@host3.example.com>"]
    assert m.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.get("To") == '"%Z%45" <sip:resource@example.com>'


def test_lwsdisp_no_space_before_angle_bracket():
    m = parse(load("lwsdisp"))
    assert m.method == "OPTIONS" and m.get("From") == "caller<sip:caller@example.com>;tag=323"


def test_longreq_many_vias_and_long_values():
    m = parse(load("longreq"))
    assert m.method == "INVITE" and m.uri == "sip:user@example.com"
    vias = m.get_all("Via")
    assert len(vias) == 34
    assert vias[:3] == [f"SIP/2.0/TCP sip{n}.example.com" for n in (33, 32, 31)]
    assert vias[-1] == "SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very" + "long" * 50 + "branchvalue"
    assert m.get("Call-ID") == "longreq.one" + "really" * 20 + "longcallid"
    assert m.get("To").startswith(
        '"I have a user name of ' + "extreme" * 10 + ' proportion"<sip:user@example.com:6000;'
    )
    assert m.get("From").startswith("sip:" + "amazinglylongcallername" * 5 + "@example.net;tag=12" + "982" * 50)
    assert m.get("Unknown-" + "Long" * 20 + "-Name").startswith("unknown-" + "long" * 20 + "-value;")
    assert m.cseq == (3882340, "INVITE") and len(m.body) == 150


def test_dblreq_only_the_first_message_of_the_datagram():
    data = load("dblreq")
    m = parse(data)
    assert m.method == "REGISTER" and m.uri == "sip:example.com"
    assert m.get("Call-ID") == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"  # "I:"
    assert m.body == b"" and b"INVITE" not in m.to_bytes()
    assert b"INVITE sip:joe@example.com" in data  # the noise was there


def test_semiuri_semicolon_in_user_part():
    m = parse(load("semiuri"))
    assert m.method == "OPTIONS" and m.uri == "sip:user;par=u%40example.net@example.com"
    assert m.get("Call-ID") == "semiuri.0ha0isndaksdj"
    assert m.get("Accept") == (
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
    )


def test_transports_every_via_transport():
    m = parse(load("transports"))
    assert [v.split()[0] for v in m.get_all("Via")] == [
        "SIP/2.0/UDP", "SIP/2.0/SCTP", "SIP/2.0/TLS", "SIP/2.0/UNKNOWN", "SIP/2.0/TCP"]  # fmt: skip
    assert m.get("Call-ID") == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_binary_multipart_body():
    m = parse(load("mpart01"))
    assert m.method == "MESSAGE" and m.uri == "sip:kumiko@example.org"
    assert len(m.body) == 553 and int(m.get("Content-Length")) == 553
    assert m.body.startswith(b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\n")
    assert m.body.endswith(b"\r\n--7a9cbec02ceef655--\r\n")
    assert b"\x00" in m.body and b"\x30\x82\x01\x52" in m.body  # the binary part: a 342-octet DER blob
    assert parse(m.to_bytes()).body == m.body


def test_unreason_utf8_reason_phrase():
    m = parse(load("unreason"))
    assert m.status == 200 and not m.is_request
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert m.cseq == (35, "INVITE") and len(m.body) == 154
    assert parse(m.to_bytes()).reason == m.reason


def test_noreason_empty_reason_phrase():
    m = parse(load("noreason"))
    assert m.status == 100 and m.reason == ""
    assert m.get("Call-ID") == "noreason.asndj203insdf99223ndf"


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_message_is_refused_and_answered_or_dropped(name):
    why, status, answerable = INVALID[name]
    data = load(name)
    with pytest.raises(ParseError, match=why) as err:
        parse(data)
    assert err.value.status == status
    rescued = salvage(data)
    if not answerable:
        assert rescued is None  # a response: dropped
        return
    assert rescued is not None and rescued.is_request
    answer = response_to(rescued, err.value.status)
    assert answer.status == status
    assert answer.get_all("Via") == rescued.get_all("Via") and answer.get("CSeq") == rescued.get("CSeq")
    wire = answer.to_bytes()
    assert wire.startswith(f"SIP/2.0 {status} ".encode()) and b"Call-ID: " + rescued.get("Call-ID").encode() in wire


def test_salvage_keeps_what_was_received():
    rescued = salvage(load("badinv01"))
    assert rescued.method == "INVITE" and rescued.uri == "sip:user@example.com"
    assert rescued.get_all("Via") == ["SIP/2.0/UDP 192.0.2.15;;,;,,"]  # echoed as received
    assert rescued.get("From") == "sip:caller@example.net;tag=134161461246"
    assert rescued.get("Call-ID") == "badinv01.0ha0isndaksdjasdf3234nas" and rescued.get("CSeq") == "8 INVITE"
    assert salvage(load("ltgtruri")).uri == "<sip:user@example.com>"
    assert salvage(load("lwsruri")).uri == "sip:user@example.com;lr"


def test_stream_framing_of_bad_content_lengths():
    assert frame(load("clerr")) is None  # TCP: wait for the 9999 octets (or time out and close)
    with pytest.raises(ParseError):
        frame(load("ncl"))  # TCP: no way to find the next message; close the connection


def test_scalar02_choices():
    data = load("scalar02")
    fixed_cseq = data.replace(b"CSeq: 36893488147419103232 REGISTER", b"CSeq: 1 REGISTER")
    with pytest.raises(ParseError, match="bad Max-Forwards"):  # 300: refused too
        parse(fixed_cseq)
    m = parse(fixed_cseq.replace(b"Max-Forwards: 300", b"Max-Forwards: 70"))
    assert m.get("Expires") == "1" + "0" * 100  # kept for the registrar to judge
    assert m.get("Contact") == "<sip:user@host129.example.com> ;expires=280297596632815"


def test_baddate_is_accepted_with_its_date_as_received():
    m = parse(load("baddate"))
    assert m.method == "INVITE" and m.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
