import wave

import pytest

from switchboard.media import sounds
from switchboard.media.codecs import audioop


def test_builtin_set_is_complete_and_small():
    names = ["hello-world", "vm-goodbye", "beep", "silence/1"] + [f"digits/{d}" for d in range(10)]
    total = 0
    for name in names:
        path = sounds.find(name, [sounds.BUILTIN_DIR])
        assert path.suffix == ".ulaw"
        total += path.stat().st_size
    assert total < 300_000
    assert len(sounds.load_linear(sounds.find("silence/1", [sounds.BUILTIN_DIR]))) == 16000


def test_lookup_order_and_extensions(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for d in (first, second):
        (d / "digits").mkdir(parents=True)
    (second / "digits" / "1.ulaw").write_bytes(b"\xff" * 160)
    (first / "digits" / "1.wav").write_bytes(b"")
    (first / "digits" / "1.sln").write_bytes(b"\0\0" * 160)
    assert sounds.find("digits/1", [first, second]) == first / "digits" / "1.sln"  # .sln before .wav
    monkeypatch.setenv("SWITCHBOARD_SOUNDS", str(second))
    path = sounds.search_path([str(first)])
    assert path[:2] == [first, second] and path[-1] == sounds.BUILTIN_DIR
    assert sounds.find("digits/1", path[1:]) == second / "digits" / "1.ulaw"
    # the built-in set answers when nothing else has the name
    assert sounds.find("vm-goodbye", [first, sounds.BUILTIN_DIR]).parent == sounds.BUILTIN_DIR
    assert sounds.find(str(second / "digits" / "1"), []) == second / "digits" / "1.ulaw"
    for bad in ("no-such-sound", "../etc/passwd", ""):
        with pytest.raises(sounds.SoundNotFound):
            sounds.find(bad, [first, second])


def test_wav_conversion(tmp_path):
    lin16k = sounds.tone((1000,), 500)  # 4000 samples at "8 kHz" ...
    path = tmp_path / "x.wav"
    with wave.open(str(path), "wb") as w:  # ... written as a 16 kHz stereo file: 0.25 s
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(audioop.tostereo(lin16k, 2, 1, 1))
    out = sounds.load_linear(path)
    assert abs(len(out) // 2 - 2000) <= 2


def test_frames_pad_the_last_one():
    fr = sounds.frames(b"\1\0" * 200)
    assert [len(f) for f in fr] == [320, 320] and fr[1][80:] == b"\0" * 240


def test_melody_is_music():
    m = sounds.melody()
    assert len(m) // 2 == 16 * 3200 and audioop.rms(m, 2) > 1000
