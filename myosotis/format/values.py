"""Value encoding (FORMAT.md §1, §5): Python values <-> canonical bytes.

Python representation of a stored value: ``None``, ``bool``, ``int``,
``float``, ``str``, :class:`Ref`, ``list`` and ``dict`` (string keys). Lists
and dicts hold only such values. No I/O here.

Encoders append to a ``bytearray`` and raise :class:`InvalidValueError` for
anything that cannot be stored. Decoders read from any bytes-like object
(``bytes``, ``memoryview`` of a map) between ``pos`` and ``end`` and raise
:class:`DecodeError` (a :class:`CorruptFileError`) with the payload-relative
position of the first bad byte; they never read past ``end`` and refuse a
count or length before allocating for it (R42).
"""

from __future__ import annotations

import struct
from typing import Any

from myosotis.errors import CorruptFileError, InvalidValueError
from myosotis.format.constants import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_NODE_ID,
    MAX_STRING,
    TAG_FALSE,
    TAG_FLOAT,
    TAG_INT,
    TAG_LIST,
    TAG_MAP,
    TAG_NULL,
    TAG_REF,
    TAG_STR,
    TAG_TRUE,
)
from myosotis.format.display import short_repr

_F64 = struct.Struct("<d")
_pack_f64 = _F64.pack
_unpack_f64 = _F64.unpack_from


class Ref:
    """A reference to a node by id (FORMAT.md §5 tag 0x06). Immutable, hashable."""

    __slots__ = ("id",)
    id: int

    def __init__(self, node_id: int) -> None:
        object.__setattr__(self, "id", node_id)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Ref is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is Ref and other.id == self.id

    def __hash__(self) -> int:
        return hash(("Ref", self.id))

    def __repr__(self) -> str:
        return f"Ref({self.id})"

    def __reduce__(self) -> tuple[type[Ref], tuple[int]]:  # copy and pickle by id
        return (Ref, (self.id,))




class DecodeError(CorruptFileError):
    """A payload breaks §5–§8; ``offset`` is relative to the payload start."""


# --------------------------------------------------------------------------
# varints (§1)


def put_uvarint(out: bytearray, n: int) -> None:
    """Append ``n`` (0 <= n < 2**64) as canonical unsigned LEB128."""
    if n < 0x80:
        out.append(n)
        return
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def put_svarint(out: bytearray, n: int) -> None:
    """Append a signed 64-bit integer as zig-zag LEB128."""
    put_uvarint(out, ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


def get_uvarint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """Decode a canonical uvarint at ``pos``; return ``(value, next_pos)``."""
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise DecodeError("varint runs past the end of the record", start)
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            raise DecodeError("varint exceeds 64 bits (R2)", start)
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0 and pos - start > 1:
                raise DecodeError("varint is not in its shortest form (R1)", start)
            return result, pos
        shift += 7


def get_svarint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """Decode a zig-zag varint; return ``(value, next_pos)``."""
    z, pos = get_uvarint(buf, pos, end)
    return (z >> 1) ^ -(z & 1), pos


# --------------------------------------------------------------------------
# strings (§1)


def encode_str(s: str, what: str = "string", limit: int = MAX_STRING) -> bytes:
    """UTF-8 bytes of ``s``, checked against ``limit``; raises InvalidValueError."""
    try:
        data = s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidValueError(
            f"{what} is not valid Unicode text ({e.reason} at index {e.start}); "
            "lone surrogates cannot be stored"
        ) from None
    if len(data) > limit:
        raise InvalidValueError(f"{what} is {len(data)} bytes of UTF-8; the limit is {limit}")
    return data


def put_str(out: bytearray, s: str, what: str = "string", limit: int = MAX_STRING) -> None:
    data = encode_str(s, what, limit)
    put_uvarint(out, len(data))
    out += data


def get_str(buf: Any, pos: int, end: int, limit: int = MAX_STRING) -> tuple[str, int]:
    """Decode a ``string`` (§1); checks the length against ``end`` and ``limit``."""
    if pos >= end:
        raise DecodeError("string runs past the end of the record", pos)
    n = buf[pos]
    if n < 0x80:  # fast path: a one-byte length
        p = pos + 1
    else:
        n, p = get_uvarint(buf, pos, end)
        if n > limit:
            raise DecodeError(f"string of {n} bytes exceeds the limit of {limit} (§11)", pos)
    q = p + n
    if q > end or n > limit:
        raise DecodeError("string runs past the end of the record or over its limit", pos)
    try:
        return str(buf[p:q], "utf-8"), q
    except UnicodeDecodeError:
        raise DecodeError("string is not well-formed UTF-8 (R3)", pos) from None


# --------------------------------------------------------------------------
# values (§5)


def _ref_of(v: object) -> int | None:
    """Node id if ``v`` stands for a reference (a Ref or an object with ``_myo_ref_id``)."""
    if type(v) is Ref:
        return v.id
    get = getattr(type(v), "_myo_ref_id", None)
    if get is not None:
        rid: int = get.__get__(v)
        return rid
    return None


def put_value(out: bytearray, v: Any, depth: int = 0) -> None:
    """Append the canonical encoding of ``v``.

    Raises InvalidValueError for a type that cannot be stored, an integer out
    of the signed 64-bit range, a string over a limit, a map with a non-string
    key, nesting deeper than MAX_DEPTH or a collection over MAX_ITEMS.
    """
    t = type(v)  # exact types: a bool is not an int here, a str subclass is refused
    if t is str:
        out.append(TAG_STR)
        put_str(out, v)
    elif t is int:
        if v < INT_MIN or v > INT_MAX:
            raise InvalidValueError(
                f"integer {short_repr(v)} is out of the signed 64-bit range "
                f"[{INT_MIN}, {INT_MAX}]; store it as a string if you need more"
            )
        out.append(TAG_INT)
        put_svarint(out, v)
    elif t is float:
        out.append(TAG_FLOAT)
        out += _pack_f64(v)
    elif t is Ref:
        if not 1 <= v.id <= MAX_NODE_ID:
            raise InvalidValueError(f"reference to node id {short_repr(v.id)} is out of range")
        out.append(TAG_REF)
        put_uvarint(out, v.id)
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise InvalidValueError(f"value nests deeper than {MAX_DEPTH} lists/maps")
        if len(v) > MAX_ITEMS:
            raise InvalidValueError(f"list has {len(v)} elements; the limit is {MAX_ITEMS}")
        out.append(TAG_LIST)
        put_uvarint(out, len(v))
        for item in v:
            put_value(out, item, depth + 1)
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise InvalidValueError(f"value nests deeper than {MAX_DEPTH} lists/maps")
        put_map_body(out, v, depth + 1, TAG_MAP)
    elif v is None:
        out.append(TAG_NULL)
    elif t is bool:
        out.append(TAG_TRUE if v else TAG_FALSE)
    else:
        rid = _ref_of(v)
        if rid is None:
            raise InvalidValueError(
                f"cannot store a value of type {t.__name__}; allowed: None, bool, int, float, "
                "str, list, dict with str keys, and node handles (references)"
            )
        if rid < 1 or rid > MAX_NODE_ID:
            raise InvalidValueError(f"reference to node id {short_repr(rid)} is out of range")
        out.append(TAG_REF)
        put_uvarint(out, rid)


_KEY_CACHE: dict[str, bytes] = {}  # key -> its encoded ``string``; keys repeat a lot


def put_key(out: bytearray, key: str, what: str = "map key", limit: int = MAX_STRING) -> None:
    """Append a map key or field name as a ``string`` (§1), memoising short ones."""
    enc = _KEY_CACHE.get(key)
    if enc is None:
        buf = bytearray()
        put_str(buf, key, what, limit)
        enc = bytes(buf)
        if len(enc) <= 64 and len(_KEY_CACHE) < 4096:
            _KEY_CACHE[key] = enc
    out += enc


def sorted_keys(m: dict[str, Any], what: str = "map key") -> list[str]:
    """The keys of ``m`` in canonical order (R40).

    Sorting the ``str`` keys is enough: for text that can be encoded (no lone
    surrogates, which the encoder refuses), code point order is UTF-8 byte order.
    """
    for k in m:
        if type(k) is not str:
            raise InvalidValueError(f"{what} {short_repr(k)} is not a str; map keys must be "
                                    f"strings")
    return sorted(m)


def put_map_body(out: bytearray, m: dict[str, Any], depth: int, tag: int | None = None) -> None:
    """Append ``[tag] uvarint count, entries`` in canonical key order (R40)."""
    if len(m) > MAX_ITEMS:
        raise InvalidValueError(f"map has {len(m)} entries; the limit is {MAX_ITEMS}")
    keys = sorted_keys(m)
    if tag is not None:
        out.append(tag)
    put_uvarint(out, len(keys))
    for k in keys:
        put_key(out, k)
        put_value(out, m[k], depth)


def encode_value(v: Any) -> bytes:
    """The canonical bytes of one value (convenience for tests and tools)."""
    out = bytearray()
    put_value(out, v)
    return bytes(out)


def get_value(buf: Any, pos: int, end: int, depth: int = 0) -> tuple[Any, int]:
    """Decode one value at ``pos``; return ``(value, next_pos)``. Raises DecodeError."""
    if pos >= end:
        raise DecodeError("value runs past the end of the record", pos)
    tag = buf[pos]
    p = pos + 1
    if tag == TAG_STR:
        return get_str(buf, p, end)
    if tag == TAG_INT:
        if p < end and buf[p] < 0x80:  # fast path: a one-byte zig-zag varint
            z = buf[p]
            return (z >> 1) ^ -(z & 1), p + 1
        return get_svarint(buf, p, end)
    if tag == TAG_FLOAT:
        if p + 8 > end:
            raise DecodeError("float runs past the end of the record", pos)
        return _unpack_f64(buf, p)[0], p + 8
    if tag == TAG_REF:
        rid, q = get_uvarint(buf, p, end)
        if rid < 1 or rid > MAX_NODE_ID:
            raise DecodeError(f"reference to invalid node id {rid}", pos)
        return Ref(rid), q
    if tag == TAG_NULL:
        return None, p
    if tag == TAG_TRUE:
        return True, p
    if tag == TAG_FALSE:
        return False, p
    if tag in (TAG_LIST, TAG_MAP):
        if depth >= MAX_DEPTH:
            raise DecodeError(f"value nests deeper than {MAX_DEPTH} (R41)", pos)
        if tag == TAG_MAP:
            return get_map_body(buf, p, end, depth + 1)
        n, p = get_uvarint(buf, p, end)
        if n > end - p or n > MAX_ITEMS:  # R42: refuse before allocating
            raise DecodeError(f"list claims {n} elements, more than the record holds", pos)
        items: list[Any] = []
        append = items.append
        for _ in range(n):
            item, p = get_value(buf, p, end, depth + 1)
            append(item)
        return items, p
    raise DecodeError(f"invalid value tag 0x{tag:02x} (§5)", pos)


def get_map_body(
    buf: Any, pos: int, end: int, depth: int, key_limit: int = MAX_STRING
) -> tuple[dict[str, Any], int]:
    """Decode ``uvarint count, entries``; keys must be strictly ascending (R40).

    Keys are compared as decoded strings: for well-formed UTF-8, code point
    order is byte order, so this is the order R40 defines.
    """
    n, p = get_uvarint(buf, pos, end)
    if n > end - p or n > MAX_ITEMS:
        raise DecodeError(f"map claims {n} entries, more than the record holds", pos)
    result: dict[str, Any] = {}
    prev = None
    for _ in range(n):
        kpos = p
        key, p = get_str(buf, p, end, key_limit)
        if prev is not None and key <= prev:
            raise DecodeError("map keys are not strictly ascending (R40)", kpos)
        prev = key
        result[key], p = get_value(buf, p, end, depth)
    return result, p


def decode_value(data: bytes) -> Any:
    """Decode bytes holding exactly one value (convenience for tests and tools)."""
    v, p = get_value(data, 0, len(data))
    if p != len(data):
        raise DecodeError("trailing bytes after the value", p)
    return v


def clone(v: Any) -> Any:
    """A deep copy of a stored value (lists and dicts copied, scalars shared)."""
    t = type(v)
    if t is list:
        return [clone(x) for x in v]
    if t is dict:
        return {k: clone(x) for k, x in v.items()}
    return v


def values_equal(a: Any, b: Any) -> bool:
    """Equality of stored values as the format sees it: bool != int, float by bits."""
    ta, tb = type(a), type(b)
    if ta is not tb:
        return False
    if ta is float:
        return bool(_pack_f64(a) == _pack_f64(b))
    if ta is list:
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def iter_refs(v: Any) -> Any:
    """Yield every node id referenced anywhere inside ``v``."""
    t = type(v)
    if t is Ref:
        yield v.id
    elif t is list:
        for x in v:
            yield from iter_refs(x)
    elif t is dict:
        for x in v.values():
            yield from iter_refs(x)
