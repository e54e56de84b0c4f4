import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.media.bencode import BencodeError, decode, encode


def test_known_encodings():
    assert encode({"command": "ping"}) == b"d7:command4:pinge"
    assert encode({"b": 1, "a": [1, "x"], "n": None}) == b"d1:ali1e1:xe1:bi1ee"
    assert encode(-3) == b"i-3e" and encode(True) == b"i1e" and encode(1.5) == b"3:1.5"
    assert decode(b"d3:bar4:spam3:fooi42ee") == {"bar": "spam", "foo": 42}


@pytest.mark.parametrize(
    "bad",
    [b"", b"i", b"i01e", b"i-0e", b"ie", b"5:abc", b"l", b"d3:fooe", b"di1ei2ee", b"x", b"i1ei2e", b"10:", b"d" * 100],
)
def test_malformed(bad):
    with pytest.raises(BencodeError):
        decode(bad)


values = st.recursive(
    st.integers(-(2**63), 2**63) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(values)
def test_roundtrip(v):
    assert decode(encode(v)) == v


@given(st.binary(max_size=64))
def test_decode_never_crashes(data):
    try:
        decode(data)
    except BencodeError:
        pass
