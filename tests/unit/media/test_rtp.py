import pytest

from switchboard.media import rtp


def test_header_roundtrip_and_extensions():
    pkt = rtp.parse(rtp.build_header(8, 65535, 2**32 - 1, 0xDEADBEEF, marker=True) + b"abc")
    assert (pkt.pt, pkt.marker, pkt.seq, pkt.ts, pkt.ssrc, pkt.payload) == (
        8,
        True,
        65535,
        2**32 - 1,
        0xDEADBEEF,
        b"abc",
    )
    # one CSRC, a one-word extension and 2 bytes of padding
    raw = bytes([0x80 | 0x20 | 0x10 | 1, 0]) + b"\0\1" + b"\0" * 8 + b"CSRC" + b"\xbe\xde\0\1" + b"EXT!" + b"pay\0\2"
    assert rtp.parse(raw).payload == b"pay"
    for bad in (b"", b"\x40" + b"\0" * 11, bytes([0x8F]) + b"\0" * 11):
        with pytest.raises(ValueError):
            rtp.parse(bad)


def test_event_build_parse():
    payload = rtp.build_event(11, True, 10, 800)
    assert payload == bytes([11, 0x8A, 0x03, 0x20])
    assert rtp.parse_event(payload) == (11, True, 10, 800)
    with pytest.raises(ValueError):
        rtp.parse_event(b"\1\2")


def test_event_packets_for_one_press():
    pkts = rtp.event_packets(5, 100, volume=7)
    assert [m for m, _ in pkts] == [True] + [False] * 7
    events = [rtp.parse_event(p) for _, p in pkts]
    assert [e[3] for e in events] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert [e[1] for e in events] == [False] * 5 + [True] * 3
    assert {e[0] for e in events} == {5} and {e[2] for e in events} == {7}


def test_loss_and_wraparound():
    s = rtp.ReceiveStats()
    seqs = [65530 + i for i in range(12) if i != 8]  # crosses 65535 -> 0, one lost
    for i, q in enumerate(seqs):
        s.update(q & 0xFFFF, i * 160, i * 0.02, 172)
    assert s.expected == 12 and s.packets == 11 and s.lost == 1 and s.extended_max == 65536 + 5
    s.update(65533, 0, 1.0, 172)  # a late duplicate does not move the highest sequence
    assert s.extended_max == 65536 + 5
    fraction, cumulative = s.report_interval()
    assert cumulative == 0 and fraction == 0  # the duplicate made up for the loss in the count


def test_jitter_rfc3550_a8():
    s = rtp.ReceiveStats()
    # constant transit: no jitter
    for i in range(50):
        s.update(i, i * 160, 1.0 + i * 0.02, 172)
    assert s.jitter < 1e-9
    # every other packet 10 ms late: |D| alternates 80 samples; J converges towards 80
    s = rtp.ReceiveStats()
    for i in range(400):
        s.update(i, i * 160, 1.0 + i * 0.02 + (0.01 if i % 2 else 0), 172)
    assert 79 < s.jitter <= 80 and 9.9 < s.jitter_ms <= 10
    # the first step of the estimator, by hand: J = 0 + (|D| - 0) / 16
    s = rtp.ReceiveStats()
    s.update(0, 0, 0.0, 172)
    s.update(1, 160, 0.03, 172)  # 10 ms (80 samples) late
    assert s.jitter == pytest.approx(80 / 16)


def test_rtcp_report_roundtrip():
    block = rtp.ReportBlock(0x1234, 25, 7, 70000, 42, lsr=5, dlsr=6)
    sr = rtp.parse_rtcp(rtp.build_report(0xAA, block, (100, 16000)))
    assert sr[0]["type"] == "SR" and sr[0]["ssrc"] == 0xAA and sr[0]["packets"] == 100
    assert sr[0]["blocks"] == [
        {
            "ssrc": 0x1234,
            "fraction-lost": 25,
            "packets-lost": 7,
            "highest-seq": 70000,
            "jitter": 42,
            "lsr": 5,
            "dlsr": 6,
        }
    ]
    rr = rtp.parse_rtcp(rtp.build_report(0xBB, None, None) + rtp.build_report(0xCC, block, None))
    assert [r["type"] for r in rr] == ["RR", "RR"] and rr[0]["blocks"] == []
    with pytest.raises(ValueError):
        rtp.parse_rtcp(b"\x81\xc9\x00\x07" + b"\0" * 4)
