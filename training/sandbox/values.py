"""Decoding the values a sandboxed process returns: tagged JSON, never pickle (which would run code here).

The harness (``harness.py``, ``_encode``) writes each call's output with plain JSON for ``None``, bools,
small ints, strings and lists, and a one-key object for everything JSON would blur::

    {"int": "-0x1f"}  ints beyond 2**53      {"float": "0x1.8p+1"}  floats, exact (nan, inf and -0.0 too)
    {"complex": [re, im]}  (float.hex each)  {"bytes": "00ff"}
    {"tuple": [...]}  {"set": [...]}  {"frozenset": [...]}  {"dict": [[key, value], ...]}  (keys of any type)

Any other type (a class of the program's, with its own ``__eq__``) is not encoded at all: the call's output is
then "unencodable" and its checks fail. Decoding is strict: anything else in the data is ``BadValue``.
"""

from __future__ import annotations

MAX_DEPTH = 100


class BadValue(ValueError):
    """Data that the harness's encoder does not write: a broken or forged output."""


def decode(data: object, depth: int = 0) -> object:
    """The Python value of one tagged JSON value (already parsed by ``json.loads``)."""
    if depth > MAX_DEPTH:
        raise BadValue("nested too deep")
    if data is None or isinstance(data, bool | str):
        return data
    if isinstance(data, int):
        if abs(data) >= 1 << 53:
            raise BadValue("a large int outside its tag")
        return data
    if isinstance(data, list):
        return [decode(item, depth + 1) for item in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise BadValue(f"unexpected {type(data).__name__}")
    ((tag, body),) = data.items()
    try:
        return _TAGS[tag](body, depth + 1)
    except KeyError:
        raise BadValue(f"unknown tag {tag!r}") from None
    except (TypeError, ValueError, OverflowError) as exc:  # unhashable set items, bad hex, wrong shapes
        raise BadValue(f"bad {tag}: {exc}") from None


def _items(body: object, depth: int) -> list:
    if not isinstance(body, list):
        raise BadValue("a tag's body must be a list")
    return [decode(item, depth) for item in body]


def _hex_float(body: object) -> float:
    if not isinstance(body, str):
        raise BadValue("a float must be its hex string")
    return float.fromhex(body)


def _int(body: object, depth: int) -> int:
    if not isinstance(body, str) or len(body) > 1 << 20:
        raise BadValue("an int must be a hex string")
    return int(body, 16)


def _complex(body: object, depth: int) -> complex:
    if not isinstance(body, list) or len(body) != 2:
        raise BadValue("a complex is [re, im]")
    return complex(_hex_float(body[0]), _hex_float(body[1]))


def _bytes(body: object, depth: int) -> bytes:
    if not isinstance(body, str):
        raise BadValue("bytes must be a hex string")
    return bytes.fromhex(body)


def _dict(body: object, depth: int) -> dict:
    pairs = _items(body, depth)
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
        raise BadValue("a dict is a list of [key, value]")
    out = {}
    for key, value in pairs:
        out[_hashable(key)] = value
    return out


def _hashable(value: object) -> object:
    hash(value)  # TypeError for a list: keys and set items were hashable when encoded
    return value


_TAGS = {
    "int": _int,
    "float": lambda body, depth: _hex_float(body),
    "complex": _complex,
    "bytes": _bytes,
    "tuple": lambda body, depth: tuple(_items(body, depth)),
    "set": lambda body, depth: {_hashable(v) for v in _items(body, depth)},
    "frozenset": lambda body, depth: frozenset(_hashable(v) for v in _items(body, depth)),
    "dict": _dict,
}
