"""The fast paths of the format codecs against a straightforward reference (issue #10).

myosotis/format/values.py, image.py, mutations.py and records.py dispatch on
exact types with short strings, small integers and short varints handled
inline. This file keeps a plain reference codec — one function per rule of
FORMAT.md §1 and §5, as the codec was written before those fast paths — and
checks, on generated values and on valid encodings with random edits, that the
package gives:

- the same bytes, or the same InvalidValueError (type and message), when encoding;
- the same value and end position, or the same DecodeError (reason and
  offset), when decoding, from ``bytes`` and from a ``memoryview`` alike;
- for node records (§8.1) and commits (§7), the same records and mutations, or
  the same errors, as the reference decoder gives.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from model import same_value

from myosotis.errors import InvalidValueError
from myosotis.format.constants import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MAX_FIELD_NAME,
    MAX_ITEMS,
    MAX_NODE_ID,
    MAX_STRING,
    MAX_TYPE_NAME,
    NODE_FLAG_DELETED,
)
from myosotis.format.image import StateImage, encode_image, encode_node_record
from myosotis.format.mutations import Create, Mutation, Set, put_mutation
from myosotis.format.records import decode_commit_header, decode_mutations, encode_commit
from myosotis.format.values import (
    DecodeError,
    Ref,
    encode_value,
    get_map_body,
    get_uvarint,
    get_value,
    iter_refs,
    put_map_body,
)

DIFF = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------
# the reference codec (§1, §5): one plain function per rule, no fast paths


def ref_put_uvarint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def ref_put_str(out: bytearray, s: str, what: str = "string", limit: int = MAX_STRING) -> None:
    try:
        data = s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidValueError(
            f"{what} is not valid Unicode text ({e.reason} at index {e.start}); "
            "lone surrogates cannot be stored") from None
    if len(data) > limit:
        raise InvalidValueError(f"{what} is {len(data)} bytes of UTF-8; the limit is {limit}")
    ref_put_uvarint(out, len(data))
    out += data


def ref_put_value(out: bytearray, v: Any, depth: int = 0) -> None:
    t = type(v)
    if t is str:
        out.append(0x05)
        ref_put_str(out, v)
    elif t is int:
        if v < INT_MIN or v > INT_MAX:
            raise InvalidValueError(
                f"integer {v!r} is out of the signed 64-bit range "
                f"[{INT_MIN}, {INT_MAX}]; store it as a string if you need more")
        out.append(0x03)
        ref_put_uvarint(out, ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)
    elif t is float:
        out.append(0x04)
        out += struct.pack("<d", v)
    elif t is Ref:
        if not 1 <= v.id <= MAX_NODE_ID:
            raise InvalidValueError(f"reference to node id {v.id!r} is out of range")
        out.append(0x06)
        ref_put_uvarint(out, v.id)
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise InvalidValueError(f"value nests deeper than {MAX_DEPTH} lists/maps")
        if len(v) > MAX_ITEMS:
            raise InvalidValueError(f"list has {len(v)} elements; the limit is {MAX_ITEMS}")
        out.append(0x07)
        ref_put_uvarint(out, len(v))
        for item in v:
            ref_put_value(out, item, depth + 1)
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise InvalidValueError(f"value nests deeper than {MAX_DEPTH} lists/maps")
        ref_put_map_body(out, v, depth + 1, 0x08)
    elif v is None:
        out.append(0x00)
    elif t is bool:
        out.append(0x02 if v else 0x01)
    else:
        raise InvalidValueError(
            f"cannot store a value of type {t.__name__}; allowed: None, bool, int, float, "
            "str, list, dict with str keys, and node handles (references)")


def ref_put_map_body(out: bytearray, m: dict[str, Any], depth: int, tag: int | None) -> None:
    if len(m) > MAX_ITEMS:
        raise InvalidValueError(f"map has {len(m)} entries; the limit is {MAX_ITEMS}")
    for k in m:
        if type(k) is not str:
            raise InvalidValueError(f"map key {k!r} is not a str; map keys must be strings")
    if tag is not None:
        out.append(tag)
    ref_put_uvarint(out, len(m))
    for k in sorted(m):
        ref_put_str(out, k, "map key")
        ref_put_value(out, m[k], depth)


def ref_get_uvarint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result, shift, start = 0, 0, pos
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


def ref_get_str(buf: Any, pos: int, end: int, limit: int = MAX_STRING) -> tuple[str, int]:
    if pos >= end:
        raise DecodeError("string runs past the end of the record", pos)
    n, p = ref_get_uvarint(buf, pos, end)
    if n > limit and buf[pos] >= 0x80:
        raise DecodeError(f"string of {n} bytes exceeds the limit of {limit} (§11)", pos)
    if p + n > end or n > limit:
        raise DecodeError("string runs past the end of the record or over its limit", pos)
    try:
        return str(bytes(buf[p:p + n]), "utf-8"), p + n
    except UnicodeDecodeError:
        raise DecodeError("string is not well-formed UTF-8 (R3)", pos) from None


def ref_get_value(buf: Any, pos: int, end: int, depth: int = 0) -> tuple[Any, int]:
    if pos >= end:
        raise DecodeError("value runs past the end of the record", pos)
    tag, p = buf[pos], pos + 1
    if tag == 0x05:
        return ref_get_str(buf, p, end)
    if tag == 0x03:
        z, q = ref_get_uvarint(buf, p, end)
        return (z >> 1) ^ -(z & 1), q
    if tag == 0x04:
        if p + 8 > end:
            raise DecodeError("float runs past the end of the record", pos)
        return struct.unpack_from("<d", buf, p)[0], p + 8
    if tag == 0x06:
        rid, q = ref_get_uvarint(buf, p, end)
        if rid < 1 or rid > MAX_NODE_ID:
            raise DecodeError(f"reference to invalid node id {rid}", pos)
        return Ref(rid), q
    if tag in (0x00, 0x01, 0x02):
        return (None, False, True)[tag], p
    if tag in (0x07, 0x08):
        if depth >= MAX_DEPTH:
            raise DecodeError(f"value nests deeper than {MAX_DEPTH} (R41)", pos)
        if tag == 0x08:
            return ref_get_map_body(buf, p, end, depth + 1)
        n, p = ref_get_uvarint(buf, p, end)
        if n > end - p or n > MAX_ITEMS:
            raise DecodeError(f"list claims {n} elements, more than the record holds", pos)
        items = []
        for _ in range(n):
            item, p = ref_get_value(buf, p, end, depth + 1)
            items.append(item)
        return items, p
    raise DecodeError(f"invalid value tag 0x{tag:02x} (§5)", pos)


def ref_get_map_body(buf: Any, pos: int, end: int, depth: int,
                     key_limit: int = MAX_STRING) -> tuple[dict[str, Any], int]:
    n, p = ref_get_uvarint(buf, pos, end)
    if n > end - p or n > MAX_ITEMS:
        raise DecodeError(f"map claims {n} entries, more than the record holds", pos)
    result: dict[str, Any] = {}
    prev = None
    for _ in range(n):
        kpos = p
        key, p = ref_get_str(buf, p, end, key_limit)
        if prev is not None and key <= prev:
            raise DecodeError("map keys are not strictly ascending (R40)", kpos)
        prev = key
        result[key], p = ref_get_value(buf, p, end, depth)
    return result, p


def ref_record(rec: bytes, next_node_id: int) -> tuple[str, dict[str, Any], bool]:
    """Decode a node record (§8.1, R71, R72); offsets relative to the record."""
    end = len(rec)
    if end < 1:
        raise DecodeError("empty node record (§8.1)", 0)
    if rec[0] & ~NODE_FLAG_DELETED:
        raise DecodeError("reserved node flag bits set (§8.1)", 0)
    type_name, p = ref_get_str(rec, 1, end, MAX_TYPE_NAME)
    if not type_name:
        raise DecodeError("empty node type (§8.1)", 1)
    fields, p = ref_get_map_body(rec, p, end, 0, MAX_FIELD_NAME)
    if p != end:
        raise DecodeError("node record has trailing bytes (R71)", p)
    if "" in fields:
        raise DecodeError("empty field name (§5)", 1)
    for v in fields.values():
        for r in iter_refs(v):
            if not 1 <= r < next_node_id:
                raise DecodeError(f"reference to node {r}, not in the image (R72)", 1)
    return type_name, fields, bool(rec[0] & NODE_FLAG_DELETED)


# --------------------------------------------------------------------------
# helpers and strategies


def outcome(fn: Any, *args: Any) -> Any:
    """What ``fn(*args)`` gives: ``("ok", result)``, ``(DecodeError, reason, offset)`` or
    ``(exception type, message)`` (the encoders' InvalidValueError, or what a caller's
    wrong type raises, which should not change either)."""
    try:
        return ("ok", fn(*args))
    except DecodeError as e:
        return (DecodeError, e.reason, e.offset)
    except Exception as e:
        return (type(e), str(e))


def same_outcome(a: Any, b: Any) -> bool:
    """Equal outcomes; results (tuples) compared item by item as the format sees values."""
    if a[0] == "ok" and b[0] == "ok":
        return same_value(list(a[1]), list(b[1]))
    return bool(a == b)


class Text(str):
    """A str subclass: the encoder refuses it (exact types only)."""


TEXT = st.text(max_size=12) | st.text(st.characters(codec="utf-8"), min_size=120, max_size=140)
KEYS = st.text(max_size=5)  # may hold lone surrogates: the encoder refuses those
SCALARS = (st.none() | st.booleans() | st.integers(INT_MIN - 2, INT_MAX + 2)
           | st.integers(-200, 200) | st.floats() | TEXT
           | st.integers(-1, MAX_NODE_ID + 1).map(Ref)
           | st.sampled_from([Text("x"), b"bytes", 1j, object]))
MAP_KEYS = KEYS | st.sampled_from([1, b"k", Text("a"), None])
ANY_VALUES = st.recursive(
    SCALARS,
    lambda c: (st.lists(c, max_size=140).filter(lambda x: len(x) < 5 or len(x) > 126)
               | st.lists(c, max_size=4).map(tuple)
               | st.dictionaries(MAP_KEYS, c, max_size=5)),
    max_leaves=25)
VALID_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX) | st.floats()
    | st.text(st.characters(codec="utf-8"), max_size=140) | st.integers(1, 1 << 20).map(Ref),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(
        st.text(st.characters(codec="utf-8"), max_size=5), c, max_size=5),
    max_leaves=20)


@st.composite
def edited(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random byte edits (flip, set, insert, delete, cut)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        at = draw(st.integers(0, len(out)))
        if kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif not out:
            continue
        elif kind == "cut":
            del out[min(at, len(out) - 1):]
        else:
            at = min(at, len(out) - 1)
            if kind == "flip":
                out[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set":
                out[at] = draw(st.sampled_from([0x00, 0x01, 0x05, 0x07, 0x08, 0x7F, 0x80, 0xFF,
                                                0xC3, 0xED]))
            else:
                del out[at]
    return bytes(out)


def encodings(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return values.map(encode_value).flatmap(edited) | st.binary(max_size=40)


# --------------------------------------------------------------------------
# encoding


@DIFF
@given(ANY_VALUES)
@example([Text("a")])
@example({"a": object(), Text("b"): 1})
@example({"b": 1, 2: 3})
@example("\ud800")
@example(["x" * 127, "y" * 128, -64, 63, -65, 64, INT_MIN, INT_MAX])
def test_value_encoder_gives_the_reference_bytes_or_error(v: Any) -> None:
    def new(x: Any) -> bytes:
        out = bytearray()
        put_map_body(out, x, 0) if type(x) is dict else None
        out += encode_value(x)
        return bytes(out)

    def ref(x: Any) -> bytes:
        out = bytearray()
        ref_put_map_body(out, x, 0, None) if type(x) is dict else None
        ref_put_value(out, x)
        return bytes(out)

    assert outcome(new, v) == outcome(ref, v)


@DIFF
@given(st.dictionaries(st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
                       VALID_VALUES, max_size=6),
       st.text(st.characters(codec="utf-8"), min_size=1, max_size=8), st.booleans())
def test_node_record_encoder_gives_the_reference_bytes(fields: dict[str, Any], type_name: str,
                                                       deleted: bool) -> None:
    out = bytearray((NODE_FLAG_DELETED if deleted else 0,))
    ref_put_str(out, type_name, "node type", MAX_TYPE_NAME)
    ref_put_map_body(out, fields, 0, None)
    assert encode_node_record(type_name, fields, deleted) == bytes(out)


# --------------------------------------------------------------------------
# decoding


@DIFF
@given(encodings(VALID_VALUES), st.integers(0, 3))
@example(b"\x05\x03a\xffb", 0)  # a short string, not UTF-8
@example(b"\x07\x02\x05\x01\xff\x05\x00", 0)  # the same inside a list
@example(b"\x08\x01\x01\xffa\x00", 0)  # and as a map key
@example(b"\x08\x02\x01b\x00\x01a\x00", 0)  # keys out of order
@example(b"\x03\x80\x00", 0)  # a two-byte varint ending in 0 (R1)
@example(b"\x03\x80\x80\x00", 0)  # three bytes
@example(b"\x06\x00", 0)  # a reference to node 0
def test_value_decoder_gives_the_reference_value_or_error(data: bytes, cut: int) -> None:
    end = max(0, len(data) - cut)  # decode inside a larger buffer: never read past end
    for buf in (data, memoryview(data)):
        assert same_outcome(outcome(get_value, buf, 0, end), outcome(ref_get_value, buf, 0, end))
        assert same_outcome(outcome(get_map_body, buf, 0, end, 0, MAX_FIELD_NAME),
                            outcome(ref_get_map_body, buf, 0, end, 0, MAX_FIELD_NAME))


@DIFF
@given(st.binary(max_size=12), st.integers(0, 12))
@example(b"\x80\x00", 0)
@example(b"\xff\xff\x01", 0)
@example(b"\xff" * 9 + b"\x01", 0)
@example(b"\xff" * 9 + b"\x02", 0)
def test_uvarint_decoder_gives_the_reference_value_or_error(data: bytes, pos: int) -> None:
    for end in range(len(data) + 1):
        assert outcome(get_uvarint, data, pos, end) == outcome(ref_get_uvarint, data, pos, end)


def _records(fields: dict[str, Any], type_name: str) -> st.SearchStrategy[bytes]:
    return edited(encode_node_record(type_name, fields, False))


@DIFF
@given(st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=6), VALID_VALUES,
                       max_size=5).flatmap(lambda f: _records(f, "Item")),
       st.integers(2, 1 << 21))
@example(b"\x00\x04Item\x01\x01a\x06\x05", 3)  # a reference outside the image (R72)
@example(b"\x02\x04Item\x00", 3)  # a reserved flag
@example(b"\x00\x00\x00", 3)  # an empty type
@example(b"\x00\x04Item\x00\x00", 3)  # trailing bytes
def test_node_record_decoder_gives_the_reference_record_or_error(rec: bytes,
                                                                  next_node_id: int) -> None:
    image = StateImage(encode_image(next_node_id, [(1, rec)]), base=1000, sparse=True)
    at = 1000 + 16 + 8 + 16  # where the record starts, counted from ``base``
    new = outcome(lambda: tuple(image.record(0)))
    ref = outcome(ref_record, rec, next_node_id)
    if ref[0] is DecodeError:
        ref = (DecodeError, ref[1], at + (ref[2] or 0))
    assert same_outcome(new, ref)


# --------------------------------------------------------------------------
# mutations and commits


@DIFF
@given(st.lists(st.builds(Set, st.integers(1, 1 << 30),
                          st.text(st.characters(codec="utf-8"), min_size=1, max_size=6),
                          VALID_VALUES)
                | st.builds(Create, st.integers(1, 1 << 30),
                            st.text(st.characters(codec="utf-8"), min_size=1, max_size=6),
                            st.dictionaries(st.text(st.characters(codec="utf-8"), min_size=1,
                                                    max_size=6), VALID_VALUES, max_size=4)),
                max_size=6))
def test_commits_decode_the_same_from_bytes_and_from_a_map(muts: list[Mutation]) -> None:
    body = bytearray()
    for m in muts:
        put_mutation(body, m)
    payload = encode_commit(1, 0, bytes(32), 1, "", len(muts), body)
    h = decode_commit_header(payload)
    a, b = decode_mutations(payload, h.body), decode_mutations(memoryview(payload), h.body)
    assert [type(m) for m in a] == [type(m) for m in b] == [type(m) for m in muts]
    for x, y, z in zip(a, b, muts, strict=True):
        assert same_value(list(x), list(y)) and same_value(list(x), list(z))


NAMES = st.text(max_size=6) | st.sampled_from(["", "name", "tags", 5])  # some refused


def ref_put_set_or_create(out: bytearray, m: Set | Create) -> None:
    """§6 SET and CREATE as plainly as they are specified."""
    if not 0 < m.node <= MAX_NODE_ID:
        raise InvalidValueError(f"node id {m.node!r} is out of range (§11)")
    out.append(0x02 if type(m) is Set else 0x01)
    ref_put_uvarint(out, m.node)
    if type(m) is Set:
        if not m.field:
            raise InvalidValueError("field names must be non-empty")
        ref_put_str(out, m.field, "field name", MAX_FIELD_NAME)
        ref_put_value(out, m.value)
        return
    if not m.type:
        raise InvalidValueError("node type must be a non-empty string")
    ref_put_str(out, m.type, "node type", MAX_TYPE_NAME)
    if len(m.fields) > MAX_ITEMS:
        raise InvalidValueError(f"a node of {len(m.fields)} fields; the limit is {MAX_ITEMS}")
    for k in m.fields:
        if type(k) is not str:
            raise InvalidValueError(f"field name {k!r} is not a str; map keys must be strings")
    ref_put_uvarint(out, len(m.fields))
    for k in sorted(m.fields):
        if not k:
            raise InvalidValueError("field names must be non-empty")
        ref_put_str(out, k, "field name", MAX_FIELD_NAME)
        ref_put_value(out, m.fields[k])


@DIFF
@given(st.builds(Set, st.integers(1, 1 << 40), NAMES, ANY_VALUES)
       | st.builds(Create, st.integers(1, 1 << 40), st.text(max_size=4),
                   st.dictionaries(NAMES.filter(lambda k: type(k) is str), ANY_VALUES,
                                   max_size=4)))
@example(Set(1, "name", "x"))
@example(Set(1, "", "x"))
@example(Create(1, "Item", {"": 1}))
@example(Create(1, "Item", {"a": 1.5, "b": "x" * 127, "c": ["y" * 128, "\ud800"]}))
def test_set_and_create_encode_to_the_reference_bytes_or_error(m: Set | Create) -> None:
    def new(x: Mutation) -> bytes:
        out = bytearray()
        put_mutation(out, x)
        return bytes(out)

    def ref(x: Set | Create) -> bytes:
        out = bytearray()
        ref_put_set_or_create(out, x)
        return bytes(out)

    assert outcome(new, m) == outcome(ref, m)
