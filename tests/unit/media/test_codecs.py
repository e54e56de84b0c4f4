from switchboard.media.codecs import (
    ALAW_TO_ULAW,
    PCMA,
    PCMU,
    ULAW_TO_ALAW,
    alaw_to_linear,
    audioop,
    transcode_table,
    ulaw_to_linear,
)

ALL = bytes(range(256))


def test_reference_decoders_match_audioop():
    assert [ulaw_to_linear(b) for b in ALL] == list(memoryview(audioop.ulaw2lin(ALL, 2)).cast("h"))
    assert [alaw_to_linear(b) for b in ALL] == list(memoryview(audioop.alaw2lin(ALL, 2)).cast("h"))


def test_transcoding_tables_match_decode_then_encode():
    assert ALL.translate(ULAW_TO_ALAW) == audioop.lin2alaw(audioop.ulaw2lin(ALL, 2), 2)
    assert ALL.translate(ALAW_TO_ULAW) == audioop.lin2ulaw(audioop.alaw2lin(ALL, 2), 2)
    # a round trip changes a sample by at most one quantization step of the coarser law
    for b in ALL:
        back = bytes([b]).translate(ULAW_TO_ALAW).translate(ALAW_TO_ULAW)[0]
        a, c = ulaw_to_linear(b), ulaw_to_linear(back)
        assert abs(a - c) <= max(16, abs(a) // 8), (b, a, c)


def test_codec_objects():
    assert transcode_table(PCMU, PCMU) is None and transcode_table(PCMU, PCMA) is ULAW_TO_ALAW
    assert PCMU.encode(b"\0\0") == bytes([PCMU.silence]) and PCMA.encode(b"\0\0") == bytes([PCMA.silence])
    assert PCMA.decode(PCMA.encode(b"\x00\x10" * 80)) == audioop.alaw2lin(audioop.lin2alaw(b"\x00\x10" * 80, 2), 2)
