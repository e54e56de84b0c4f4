"""Bencode (the ng control protocol's encoding): integers, byte strings, lists, dictionaries.

Written here rather than taken from PyPI: it is forty lines and the well-known packages either
return bytes everywhere or bring their own typing rules. Choices:
- decoded strings are `str` (UTF-8, undecodable bytes kept through `surrogateescape`);
- `encode` takes str/bytes (strings), int (bool as 0/1), float (as its decimal string: bencode
  has no floats, so figures such as jitter in ms travel as e.g. "1.25"), list/tuple, dict
  (keys sorted as bencode requires); `None` values in a dictionary are left out;
- `decode` accepts exactly one value and nothing after it, limits nesting depth, and raises
  `BencodeError` on anything malformed.
"""

from __future__ import annotations

MAX_DEPTH = 32


class BencodeError(ValueError):
    pass


def encode(obj: object) -> bytes:
    out = bytearray()
    _encode(obj, out)
    return bytes(out)


def _string(b: bytes, out: bytearray) -> None:
    out += b"%d:" % len(b)
    out += b


def _encode(obj: object, out: bytearray) -> None:
    if isinstance(obj, bool):
        out += b"i1e" if obj else b"i0e"
    elif isinstance(obj, int):
        out += b"i%de" % obj
    elif isinstance(obj, str):
        _string(obj.encode("utf-8", "surrogateescape"), out)
    elif isinstance(obj, bytes | bytearray | memoryview):
        _string(bytes(obj), out)
    elif isinstance(obj, float):
        _string(repr(round(obj, 6)).encode(), out)
    elif isinstance(obj, list | tuple):
        out += b"l"
        for item in obj:
            _encode(item, out)
        out += b"e"
    elif isinstance(obj, dict):
        out += b"d"
        items = []
        for k, v in obj.items():
            if v is None:
                continue
            key = k.encode("utf-8", "surrogateescape") if isinstance(k, str) else bytes(k)
            items.append((key, v))
        for key, v in sorted(items, key=lambda kv: kv[0]):
            _string(key, out)
            _encode(v, out)
        out += b"e"
    else:
        raise BencodeError(f"cannot bencode {type(obj).__name__}")


def decode(data: bytes) -> object:
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


def _decode(data: bytes, i: int, depth: int) -> tuple[object, int]:
    if depth > MAX_DEPTH:
        raise BencodeError("nested too deeply")
    if i >= len(data):
        raise BencodeError("unexpected end of data")
    c = data[i]
    if c == 0x69:  # i<digits>e
        end = data.find(b"e", i + 1)
        if end < 0:
            raise BencodeError("unterminated integer")
        text = data[i + 1 : end]
        digits = text[1:] if text[:1] == b"-" else text
        if not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0") or text == b"-0":
            raise BencodeError(f"bad integer {text!r}")
        return int(text), end + 1
    if 0x30 <= c <= 0x39:  # <length>:<bytes>
        colon = data.find(b":", i)
        if colon < 0 or not data[i:colon].isdigit() or colon - i > 9:
            raise BencodeError("bad string length")
        n = int(data[i:colon])
        start = colon + 1
        if start + n > len(data):
            raise BencodeError("string runs past the end")
        return data[start : start + n].decode("utf-8", "surrogateescape"), start + n
    if c == 0x6C:  # l...e
        i += 1
        items = []
        while True:
            if i >= len(data):
                raise BencodeError("unterminated list")
            if data[i] == 0x65:
                return items, i + 1
            item, i = _decode(data, i, depth + 1)
            items.append(item)
    if c == 0x64:  # d...e
        i += 1
        d: dict[str, object] = {}
        while True:
            if i >= len(data):
                raise BencodeError("unterminated dictionary")
            if data[i] == 0x65:
                return d, i + 1
            key, i = _decode(data, i, depth + 1)
            if not isinstance(key, str):
                raise BencodeError("dictionary key is not a string")
            d[key], i = _decode(data, i, depth + 1)
    raise BencodeError(f"unexpected byte {c:#x} at offset {i}")
