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
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from myosotis.errors import CorruptFileError, InvalidValueError
from myosotis.format.constants import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MAX_FIELD_NAME,
    MAX_ITEMS,
    MAX_NODE_ID,
    MAX_STRING,
    MAX_TYPE_NAME,
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
_pack_tag_f64 = struct.Struct("<Bd").pack  # a float value: its tag and its 8 bytes in one call
_U64_MASK = 0xFFFFFFFFFFFFFFFF

# Encoded heads the encoder appends whole instead of byte by byte: a string or list
# of n < 0x80 bytes/elements (tag, one-byte length) and the integers -64..63 (tag,
# one-byte zig-zag varint), indexed by n and by v + 64.
_STR_HEAD = tuple(bytes((TAG_STR, n)) for n in range(0x80))
_LIST_HEAD = tuple(bytes((TAG_LIST, n)) for n in range(0x80))
_SMALL_INT = tuple(bytes((TAG_INT, ((v << 1) ^ (v >> 63)) & 0xFF)) for v in range(-64, 64))


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


# Decoders make a Ref without calling __init__ (about half the cost): a new
# instance, its one slot set through the slot's descriptor.
_new_ref = object.__new__
_set_ref_id = Ref.__dict__["id"].__set__


def decoded_ref(node_id: int) -> Ref:
    """A Ref made as the decoders make one (``node_id`` already checked)."""
    r = _new_ref(Ref)
    _set_ref_id(r, node_id)
    return r


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
    put_uvarint(out, ((n << 1) ^ (n >> 63)) & _U64_MASK)


def get_uvarint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """Decode a canonical uvarint at ``pos``; return ``(value, next_pos)``."""
    # Fast paths: one to three bytes whose last is not 0 are canonical and in range
    # (ids, counts, lengths, most integers); anything else takes the checked loop.
    if pos < end:
        b = buf[pos]
        if b < 0x80:
            return b, pos + 1
        if pos + 1 < end:
            c = buf[pos + 1]
            if 0 < c < 0x80:
                return (b & 0x7F) | (c << 7), pos + 2
            if c >= 0x80 and pos + 2 < end:
                d = buf[pos + 2]
                if 0 < d < 0x80:
                    return (b & 0x7F) | ((c & 0x7F) << 7) | (d << 14), pos + 3
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

_bytes_utf8: Callable[[Any], str] = bytes.decode  # UTF-8, strict
_buffer_utf8: Callable[[Any], str] = partial(str, encoding="utf-8")


def _utf8(buf: Any) -> Callable[[Any], str]:
    """The strict UTF-8 decoder of slices of ``buf``: ``bytes.decode`` for bytes (the
    decoders' hot callers copy what they decode into bytes: it is about half the
    cost of ``str(slice, "utf-8")``), ``str`` for any other buffer."""
    return _bytes_utf8 if type(buf) is bytes else _buffer_utf8


def _not_text(what: str, e: UnicodeEncodeError) -> InvalidValueError:
    return InvalidValueError(f"{what} is not valid Unicode text ({e.reason} at index "
                             f"{e.start}); lone surrogates cannot be stored")


def _too_long(what: str, n: int, limit: int) -> InvalidValueError:
    return InvalidValueError(f"{what} is {n} bytes of UTF-8; the limit is {limit}")


def encode_str(s: str, what: str = "string", limit: int = MAX_STRING) -> bytes:
    """UTF-8 bytes of ``s``, checked against ``limit``; raises InvalidValueError."""
    try:
        data = s.encode()
    except UnicodeEncodeError as e:
        raise _not_text(what, e) from None
    if len(data) > limit:
        raise _too_long(what, len(data), limit)
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
        return _utf8(buf)(buf[p:q]), q
    except UnicodeDecodeError:
        raise DecodeError("string is not well-formed UTF-8 (R3)", pos) from None


# --------------------------------------------------------------------------
# values (§5)
#
# The encoder and decoder are on every hot path (commits, checkpoints, scans,
# replay), so they dispatch on exact types and tags with the frequent cases
# first and handle short strings and small integers without calling the general
# string and varint functions; anything else (long, invalid, out of range) takes
# those general functions, which raise the errors.


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
        try:
            data = v.encode()
        except UnicodeEncodeError as e:
            raise _not_text("string", e) from None
        n = len(data)
        if n < 0x80:
            out += _STR_HEAD[n]
        else:
            if n > MAX_STRING:
                raise _too_long("string", n, MAX_STRING)
            out.append(TAG_STR)
            put_uvarint(out, n)
        out += data
    elif t is int:
        if -64 <= v < 64:
            out += _SMALL_INT[v + 64]
        else:
            if v < INT_MIN or v > INT_MAX:
                raise InvalidValueError(
                    f"integer {short_repr(v)} is out of the signed 64-bit range "
                    f"[{INT_MIN}, {INT_MAX}]; store it as a string if you need more"
                )
            out.append(TAG_INT)
            put_uvarint(out, ((v << 1) ^ (v >> 63)) & _U64_MASK)
    elif t is float:
        out += _pack_tag_f64(TAG_FLOAT, v)
    elif t is Ref:
        if not 1 <= v.id <= MAX_NODE_ID:
            raise InvalidValueError(f"reference to node id {short_repr(v.id)} is out of range")
        out.append(TAG_REF)
        put_uvarint(out, v.id)
    elif t is list or t is tuple:
        _put_list(out, v, depth)
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise InvalidValueError(f"value nests deeper than {MAX_DEPTH} lists/maps")
        put_map_body(out, v, depth + 1, TAG_MAP)
    elif v is None:
        out.append(TAG_NULL)
    elif t is bool:
        out.append(TAG_TRUE if v else TAG_FALSE)
    else:
        _put_handle(out, v)


def _put_list(out: bytearray, v: list[Any] | tuple[Any, ...], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise InvalidValueError(f"value nests deeper than {MAX_DEPTH} lists/maps")
    n = len(v)
    if n < 0x80:
        out += _LIST_HEAD[n]
    else:
        if n > MAX_ITEMS:
            raise InvalidValueError(f"list has {n} elements; the limit is {MAX_ITEMS}")
        out.append(TAG_LIST)
        put_uvarint(out, n)
    depth += 1
    for item in v:
        if type(item) is str and len(item) < 0x80 and item.isascii():  # as in put_map_body
            out += _STR_HEAD[len(item)]
            out += item.encode()
        else:
            put_value(out, item, depth)


def _put_handle(out: bytearray, v: object) -> None:
    """A value of no stored type: a reference if it stands for one, else refused."""
    rid = _ref_of(v)
    if rid is None:
        raise InvalidValueError(
            f"cannot store a value of type {type(v).__name__}; allowed: None, bool, int, "
            "float, str, list, dict with str keys, and node handles (references)"
        )
    if rid < 1 or rid > MAX_NODE_ID:
        raise InvalidValueError(f"reference to node id {short_repr(rid)} is out of range")
    out.append(TAG_REF)
    put_uvarint(out, rid)


# Encoded map keys and field names (and node types), which repeat endlessly. Bounded:
# at most KEY_CACHE_SIZE entries of at most KEY_CACHE_BYTES bytes each (about 0.5 MiB
# with the dict), filled first come first kept; no entry is ever wrong, since a
# key's encoding depends only on the key. An entry is at most 64 bytes, below
# every name limit (§11), so a cached key never skips a length check.
KEY_CACHE_SIZE = 4096
KEY_CACHE_BYTES = 64
assert min(MAX_TYPE_NAME, MAX_FIELD_NAME, MAX_STRING) > KEY_CACHE_BYTES
_KEY_CACHE: dict[str, bytes] = {}
cached_key = _KEY_CACHE.get
"""``cached_key(key)``: what :func:`put_key` appends for ``key`` if it memoised it, else
None. Callers that check names themselves use it to skip the call."""


def put_key(out: bytearray, key: str, what: str = "map key", limit: int = MAX_STRING) -> None:
    """Append a map key, field name or node type as a ``string`` (§1), memoising short
    ones."""
    enc = _KEY_CACHE.get(key)
    if enc is None:
        buf = bytearray()
        put_str(buf, key, what, limit)
        enc = bytes(buf)
        if len(enc) <= KEY_CACHE_BYTES and len(_KEY_CACHE) < KEY_CACHE_SIZE:
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
    n = len(m)
    if n > MAX_ITEMS:
        raise InvalidValueError(f"map has {n} entries; the limit is {MAX_ITEMS}")
    keys = sorted_keys(m)
    if tag is not None:
        out.append(tag)
    if n < 0x80:
        out.append(n)
    else:
        put_uvarint(out, n)
    cache = _KEY_CACHE
    for k in keys:
        enc = cache.get(k)  # put_key, inlined for the keys it has seen
        if enc is None:
            put_key(out, k)
        else:
            out += enc
        # the value: an ASCII string shorter than 0x80 or a float inline, as put_value
        # writes them; anything else by put_value
        v = m[k]
        t = type(v)
        if t is str and len(v) < 0x80 and v.isascii():
            out += _STR_HEAD[len(v)]
            out += v.encode()
        elif t is float:
            out += _pack_tag_f64(TAG_FLOAT, v)
        else:
            put_value(out, v, depth)


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
        n = buf[p] if p < end else 0x80
        q = p + 1 + n
        if n < 0x80 and q <= end:  # a short string (the general path raises the errors)
            try:
                return _utf8(buf)(buf[p + 1:q]), q
            except UnicodeDecodeError:
                pass
        return get_str(buf, p, end)
    if tag == TAG_INT:
        z, q = get_uvarint(buf, p, end)
        return (z >> 1) ^ -(z & 1), q
    if tag == TAG_FLOAT:
        if p + 8 > end:
            raise DecodeError("float runs past the end of the record", pos)
        return _unpack_f64(buf, p)[0], p + 8
    if tag == TAG_LIST:
        return _get_list(buf, pos, end, depth)
    if tag == TAG_REF:
        rid, q = get_uvarint(buf, p, end)
        if rid < 1 or rid > MAX_NODE_ID:
            raise DecodeError(f"reference to invalid node id {rid}", pos)
        ref = _new_ref(Ref)
        _set_ref_id(ref, rid)
        return ref, q
    if tag == TAG_NULL:
        return None, p
    if tag == TAG_TRUE:
        return True, p
    if tag == TAG_FALSE:
        return False, p
    if tag == TAG_MAP:
        if depth >= MAX_DEPTH:
            raise DecodeError(f"value nests deeper than {MAX_DEPTH} (R41)", pos)
        return get_map_body(buf, p, end, depth + 1)
    raise DecodeError(f"invalid value tag 0x{tag:02x} (§5)", pos)


def _get_list(buf: Any, pos: int, end: int, depth: int) -> tuple[list[Any], int]:
    """The list whose tag is at ``pos``."""
    if depth >= MAX_DEPTH:
        raise DecodeError(f"value nests deeper than {MAX_DEPTH} (R41)", pos)
    n, p = get_uvarint(buf, pos + 1, end)
    if n > end - p or n > MAX_ITEMS:  # R42: refuse before allocating
        raise DecodeError(f"list claims {n} elements, more than the record holds", pos)
    items: list[Any] = []
    append = items.append
    utf8 = _utf8(buf)
    depth += 1
    for _ in range(n):
        # a short string inline (most lists hold them), as in get_value; the rest by a call
        if p < end and buf[p] == TAG_STR:
            k = buf[p + 1] if p + 1 < end else 0x80
            q = p + 2 + k
            if k < 0x80 and q <= end:
                try:
                    append(utf8(buf[p + 2:q]))
                    p = q
                    continue
                except UnicodeDecodeError:
                    pass
        item, p = get_value(buf, p, end, depth)
        append(item)
    return items, p


def get_map_body(
    buf: Any, pos: int, end: int, depth: int, key_limit: int = MAX_STRING
) -> tuple[dict[str, Any], int]:
    """Decode ``uvarint count, entries``; keys must be strictly ascending (R40).
    ``key_limit`` is at least 127 (every limit of §11 is).

    Keys are compared as decoded strings: for well-formed UTF-8, code point
    order is byte order, so this is the order R40 defines.
    """
    n, p = get_uvarint(buf, pos, end)
    if n > end - p or n > MAX_ITEMS:
        raise DecodeError(f"map claims {n} entries, more than the record holds", pos)
    result: dict[str, Any] = {}
    utf8 = _utf8(buf)
    prev = ""  # below every key but "", which only a first key may be
    for i in range(n):
        # the key: a short one inline (as get_value's strings), else get_str
        kn = buf[p] if p < end else 0x80
        q = p + 1 + kn
        if kn < 0x80 and q <= end:
            try:
                key = utf8(buf[p + 1:q])
            except UnicodeDecodeError:
                key, q = get_str(buf, p, end, key_limit)  # raises R3's error
        else:
            key, q = get_str(buf, p, end, key_limit)
        if key <= prev and i:
            raise DecodeError("map keys are not strictly ascending (R40)", p)
        prev = key
        # the value: a short string, a float or an int inline, the rest by a call
        tag = buf[q] if q < end else -1
        if tag == TAG_STR:
            kn = buf[q + 1] if q + 1 < end else 0x80
            p = q + 2 + kn
            if kn < 0x80 and p <= end:
                try:
                    result[key] = utf8(buf[q + 2:p])
                    continue
                except UnicodeDecodeError:
                    pass
        elif tag == TAG_FLOAT:
            p = q + 9
            if p <= end:
                result[key] = _unpack_f64(buf, q + 1)[0]
                continue
        elif tag == TAG_INT:
            z, p = get_uvarint(buf, q + 1, end)
            result[key] = (z >> 1) ^ -(z & 1)
            continue
        result[key], p = get_value(buf, q, end, depth)
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


_HOLDS_REFS = frozenset((Ref, list, dict))  # the types of the values that may hold a Ref


def first_bad_ref(v: Any, limit: int) -> int | None:
    """The first node id referenced inside ``v`` (in :func:`iter_refs` order) that is not
    in ``1 .. limit - 1``; None if there is none. A loop, not a generator: readers
    check every value they decode."""
    t = type(v)
    if t is Ref:
        return None if 1 <= v.id < limit else int(v.id)
    if t is list:
        items = v
    elif t is dict:
        items = v.values()
    else:
        return None
    for x in items:
        if type(x) in _HOLDS_REFS:
            bad = first_bad_ref(x, limit)
            if bad is not None:
                return bad
    return None


def replace_refs(v: list[Any] | dict[str, Any], ref: Callable[[int], Any]) -> None:
    """Replace, in place, every Ref inside the list or map ``v`` (at any depth) by
    ``ref(id)``. For decoded values nothing else holds (they are changed)."""
    items: Iterable[tuple[Any, Any]] = enumerate(v) if isinstance(v, list) else v.items()
    for k, x in items:
        t = type(x)
        if t is Ref:
            v[k] = ref(x.id)
        elif t is list or t is dict:
            replace_refs(x, ref)


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
