"""Round trips, canonical form and hostile input for the format codecs (no I/O).

Covers ``myosotis.format.values`` (§1, §5), ``mutations`` (§6), ``records``
(§7, §8.2) and ``image`` (§8.1) of formatspec/FORMAT.md:

- decode(encode(x)) == x, with bool distinct from int and floats compared by bits;
- encoding is canonical: deterministic, independent of dict insertion order,
  and re-encoding anything that decodes gives the same bytes (R1, R40);
- hostile bytes (random, or valid encodings with edits) make the decoders raise
  ``DecodeError`` (a ``CorruptFileError``) or succeed, never anything else;
- limits are enforced before allocating (R41, R42).
"""

from __future__ import annotations

import functools
import random
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from model import same_value

from myosotis.errors import CorruptFileError, InvalidValueError
from myosotis.format.image import (
    NodeRecord,
    StateImage,
    encode_image,
    encode_node_record,
    state_hash,
)
from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Set,
    Undelete,
    Unset,
    get_mutation,
    put_mutation,
)
from myosotis.format.records import (
    commit_id,
    decode_commit_header,
    decode_mutations,
    decode_snapshot_header,
    encode_commit,
    encode_snapshot,
)
from myosotis.format.values import (
    DecodeError,
    Ref,
    decode_value,
    encode_value,
    get_svarint,
    get_uvarint,
    get_value,
    put_svarint,
    put_uvarint,
)

U64_MAX = (1 << 64) - 1
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
MAX_NODE_ID = INT_MAX

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROUND = settings(max_examples=100, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
IMAGES = settings(ROUND, max_examples=60)

# --------------------------------------------------------------------------
# helpers and strategies


def f64(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


def uvarint(n: int) -> bytes:
    out = bytearray()
    put_uvarint(out, n)
    return bytes(out)


def nested_list_bytes(depth: int) -> bytes:
    """Encoding of a list of nesting ``depth`` (an empty list at the bottom), built by hand
    so that it can exceed what the encoder allows."""
    return b"\x07\x01" * (depth - 1) + b"\x07\x00"


def nested_list(depth: int) -> list[Any]:
    v: list[Any] = []
    for _ in range(depth - 1):
        v = [v]
    return v


TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
KEYS = st.text(st.characters(codec="utf-8"), max_size=6)
NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=10)  # field names, types
ANY_FLOAT = st.integers(0, U64_MAX).map(f64) | st.floats() | st.sampled_from(
    [-0.0, f64(0x7FF8000000000123), f64(0x7FF0000000000001), f64(0xFFF8000000000000)])
SCALARS = (st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX) | ANY_FLOAT | TEXT
           | st.integers(1, MAX_NODE_ID).map(Ref))


def values_strategy(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda c: st.lists(c, max_size=5) | st.dictionaries(KEYS, c, max_size=5),
        max_leaves=max_leaves,
    )


VALUES = values_strategy()
SMALL_VALUES = values_strategy(6)
NODE_IDS = st.integers(1, MAX_NODE_ID)
PATHS = st.lists(st.integers(0, U64_MAX) | KEYS, max_size=4).map(tuple)
POS = st.integers(0, U64_MAX)

MUTATIONS: st.SearchStrategy[Mutation] = st.one_of(
    st.builds(Create, NODE_IDS, NAMES, st.dictionaries(NAMES, SMALL_VALUES, max_size=4)),
    st.builds(Set, NODE_IDS, NAMES, SMALL_VALUES),
    st.builds(Unset, NODE_IDS, NAMES),
    st.builds(Delete, NODE_IDS),
    st.builds(ListInsert, NODE_IDS, NAMES, PATHS, POS, SMALL_VALUES),
    st.builds(ListRemove, NODE_IDS, NAMES, PATHS, POS),
    st.builds(ListReplace, NODE_IDS, NAMES, PATHS, POS, SMALL_VALUES),
    st.builds(MapSet, NODE_IDS, NAMES, PATHS, KEYS, SMALL_VALUES),
    st.builds(MapDelete, NODE_IDS, NAMES, PATHS, KEYS),
    st.builds(Undelete, NODE_IDS),
)


def encode_mutation(m: Mutation) -> bytes:
    out = bytearray()
    put_mutation(out, m)
    return bytes(out)


def same_mutation(a: Mutation, b: Mutation) -> bool:
    """Mutations equal field by field, values compared as the format sees them."""
    if type(a) is not type(b):
        return False
    for x, y in zip(a, b, strict=True):
        if type(x) is tuple:  # a path
            if type(y) is not tuple or not same_value(list(x), list(y)):
                return False
        elif not same_value(x, y):
            return False
    return True


def shuffled(v: Any, rnd: random.Random) -> Any:
    """``v`` with every dict rebuilt in a random insertion order."""
    if type(v) is list:
        return [shuffled(x, rnd) for x in v]
    if type(v) is dict:
        keys = list(v)
        rnd.shuffle(keys)
        return {k: shuffled(v[k], rnd) for k in keys}
    return v


@st.composite
def edited(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with a few random byte edits (flip, set, insert, delete, cut)."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(0, len(data))))
        if kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=9))
        elif not data:
            continue
        elif kind == "cut":
            del data[min(at, len(data) - 1):]
        else:
            at = min(at, len(data) - 1)
            if kind == "flip":
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set":
                data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x07, 0x08, 0x05]))
            else:
                del data[at]
    return bytes(data)


def hostile(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=300) | edited(valid)


def only_decode_errors(fn: Callable[[bytes], Any], data: bytes) -> Any:
    """Run ``fn``; a DecodeError is an accepted outcome, any other exception fails."""
    try:
        return fn(data)
    except DecodeError as e:
        assert isinstance(e, CorruptFileError)
        assert isinstance(e.reason, str) and e.reason
        return None


# --------------------------------------------------------------------------
# values (§5)


@ROUND
@given(VALUES)
@example(-0.0)
@example(f64(0x7FF8000000000123))
@example([True, 1, False, 0, 1.0])
@example({"": None, "é": {"": []}})
def test_value_round_trip_keeps_types_and_float_bits(v: Any) -> None:
    data = encode_value(v)
    back = decode_value(data)
    assert same_value(back, v)
    assert encode_value(back) == data
    # the engine decodes from memoryviews of the file map
    mv = memoryview(bytearray(b"\xAA" + data + b"\xBB"))
    got, end = get_value(mv, 1, 1 + len(data))
    assert end == 1 + len(data) and same_value(got, v)


@ROUND
@given(VALUES, st.randoms(use_true_random=False))
def test_value_encoding_is_deterministic_and_ignores_map_insertion_order(
        v: Any, rnd: random.Random) -> None:
    """R40: a map has exactly one encoding."""
    assert encode_value(v) == encode_value(v)
    assert encode_value(shuffled(v, rnd)) == encode_value(v)


@ROUND
@given(st.dictionaries(KEYS, st.integers(0, 3), min_size=2, max_size=8))
def test_map_keys_are_encoded_in_ascending_utf8_byte_order(m: dict[str, int]) -> None:
    """R40: keys strictly ascending by their UTF-8 bytes."""
    back = decode_value(encode_value(m))
    keys = [k.encode() for k in back]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@pytest.mark.parametrize("value, hex_bytes", [
    (None, "00"),
    (False, "01"),
    (True, "02"),
    (0, "0300"),
    (-1, "0301"),
    (1, "0302"),
    (63, "037e"),
    (64, "038001"),
    (INT_MAX, "03feffffffffffffffff01"),
    (INT_MIN, "03ffffffffffffffffff01"),
    (-0.0, "040000000000000080"),
    (1.0, "04000000000000f03f"),
    ("", "0500"),
    ("é", "0502c3a9"),
    (Ref(1), "0601"),
    (Ref(300), "06ac02"),
    ([], "0700"),
    ([None, [True]], "0702000701" "02"),
    ({}, "0800"),
    ({"b": 1, "a": True}, "0802" "016102" "01620302"),
    ({"ab": 0, "a": 0, "b": 0}, "0803" "01610300" "0261620300" "01620300"),
])
def test_value_bytes_match_the_spec_tables(value: Any, hex_bytes: str) -> None:
    """§1 (varints, zig-zag), §5 (tags, R40 key order: shorter prefix first)."""
    assert encode_value(value).hex() == hex_bytes
    assert same_value(decode_value(bytes.fromhex(hex_bytes)), value)


def test_bool_and_int_have_different_encodings() -> None:
    """§5: true and the integer 1 are different values."""
    assert encode_value(True) != encode_value(1)
    assert type(decode_value(encode_value(True))) is bool
    assert type(decode_value(encode_value(1))) is int
    assert encode_value([0.0]) != encode_value([-0.0])


@pytest.mark.parametrize("value, fragment", [
    (1 << 63, "64-bit"),
    (INT_MIN - 1, "64-bit"),
    (Ref(0), "out of range"),
    (Ref(-1), "out of range"),
    (Ref(1 << 63), "out of range"),
    ({1: "x"}, "str"),
    ({"a": {None: 1}}, "str"),
    ("a\ud800", "surrogate"),
    ({"\udc00": 1}, "surrogate"),
    ({1, 2}, "set"),
    (b"x", "bytes"),
    (object(), "object"),
    (nested_list(65), "deeper"),
])
def test_encoder_refuses_unstorable_values(value: Any, fragment: str) -> None:
    with pytest.raises(InvalidValueError, match=fragment):
        encode_value(value)


def test_encoder_refuses_a_cyclic_list_without_recursion_error() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(InvalidValueError):
        encode_value(cyclic)


def test_nesting_64_deep_decodes_and_65_deep_is_refused() -> None:
    """R41: MAX_DEPTH = 64; an empty list has depth 1."""
    assert decode_value(nested_list_bytes(64)) == nested_list(64)
    assert encode_value(nested_list(64)) == nested_list_bytes(64)
    with pytest.raises(DecodeError, match="R41"):
        decode_value(nested_list_bytes(65))
    deep_map = b"\x08\x01\x01k" * 64 + b"\x08\x00"  # 65 maps
    with pytest.raises(DecodeError):
        decode_value(deep_map)
    assert decode_value(b"\x08\x01\x01k" * 63 + b"\x08\x00") is not None
    # far deeper input is refused at the limit, not by Python's recursion limit
    with pytest.raises(DecodeError):
        decode_value(b"\x07\x01" * 200_000 + b"\x00")


@pytest.mark.parametrize("header", [
    b"\x07",            # list count
    b"\x08",            # map count
    b"\x05",            # string length
])
def test_huge_count_is_refused_before_allocating(header: bytes) -> None:
    """R42: a count larger than the bytes left is invalid and refused before allocating."""
    data = header + uvarint(1 << 40) + b"\x00" * 16
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            decode_value(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"decoding a bogus count allocated {peak} bytes"


def test_count_equal_to_the_bytes_left_is_not_refused_early() -> None:
    """R42 refuses only counts larger than the bytes left: 3 one-byte nulls fit."""
    assert decode_value(b"\x07\x03\x00\x00\x00") == [None, None, None]
    with pytest.raises(DecodeError):
        decode_value(b"\x07\x04\x00\x00\x00")


@pytest.mark.parametrize("bad", [
    b"\xc0\x80",          # overlong NUL
    b"\xed\xa0\x80",      # UTF-8 of a surrogate
    b"\xe2\x82",          # truncated sequence
    b"\xff",
    b"\xf8\x88\x80\x80\x80",  # 5-byte form
    b"\xf4\x90\x80\x80",  # above U+10FFFF
])
def test_malformed_utf8_is_refused_in_strings_and_keys(bad: bytes) -> None:
    """R3."""
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_value(b"\x05" + uvarint(len(bad)) + bad)
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_value(b"\x08\x01" + uvarint(len(bad)) + bad + b"\x00")


@pytest.mark.parametrize("data", [
    b"\x08\x02\x01b\x00\x01a\x00",      # descending
    b"\x08\x02\x01a\x00\x01a\x00",      # duplicate
    b"\x08\x02\x02ab\x00\x01a\x00",     # longer before its prefix
])
def test_map_keys_out_of_order_or_duplicate_are_refused(data: bytes) -> None:
    """R40."""
    with pytest.raises(DecodeError, match="R40"):
        decode_value(data)


@pytest.mark.parametrize("tag", [0x09, 0x10, 0x7F, 0x80, 0xFF])
def test_invalid_value_tag_is_refused(tag: int) -> None:
    with pytest.raises(DecodeError, match="tag"):
        decode_value(bytes([tag]))


def test_trailing_bytes_after_a_value_are_refused() -> None:
    with pytest.raises(DecodeError):
        decode_value(b"\x00\x00")


def test_reference_to_node_zero_is_refused() -> None:
    """§5: a reference names node id 1 or more."""
    with pytest.raises(DecodeError):
        decode_value(b"\x06\x00")


# --------------------------------------------------------------------------
# varints (§1)


@ROUND
@given(st.integers(0, U64_MAX))
@example(0)
@example(127)
@example(128)
@example(U64_MAX)
def test_uvarint_round_trip_is_shortest(n: int) -> None:
    data = uvarint(n)
    assert get_uvarint(data, 0, len(data)) == (n, len(data))
    assert len(data) == max(1, -(-n.bit_length() // 7)) <= 10


@ROUND
@given(st.integers(INT_MIN, INT_MAX))
@example(INT_MIN)
@example(INT_MAX)
def test_svarint_round_trip_zigzag(n: int) -> None:
    out = bytearray()
    put_svarint(out, n)
    assert get_svarint(bytes(out), 0, len(out)) == (n, len(out))
    assert get_uvarint(bytes(out), 0, len(out))[0] == ((n << 1) ^ (n >> 63)) & U64_MAX


@ROUND
@given(st.integers(0, (1 << 49) - 1), st.integers(1, 3))
@example(0, 1)
def test_non_canonical_uvarint_is_refused(n: int, extra: int) -> None:
    """R1: a multi-byte encoding whose last byte is 0x00 is not the shortest form."""
    canonical = bytearray(uvarint(n))
    canonical[-1] |= 0x80
    padded = bytes(canonical) + b"\x80" * (extra - 1) + b"\x00"
    assert len(padded) <= 10
    with pytest.raises(DecodeError, match="R1"):
        get_uvarint(padded, 0, len(padded))
    # everywhere a uvarint appears in a value
    for tag in (b"\x03", b"\x06", b"\x07", b"\x08", b"\x05"):
        with pytest.raises(DecodeError):
            decode_value(tag + padded + b"\x00" * 4)


@pytest.mark.parametrize("data", [
    b"\xff" * 9 + b"\x02",
    b"\xff" * 9 + b"\x7f",
    b"\x80" * 9 + b"\x02",
    b"\xff" * 9 + b"\x81\x00",
    b"\x80" * 10 + b"\x01",
    b"\xff" * 12,
])
def test_uvarint_over_64_bits_is_refused(data: bytes) -> None:
    """R2: a 10th byte greater than 0x01 is invalid."""
    with pytest.raises(DecodeError, match="R2"):
        get_uvarint(data, 0, len(data))
    with pytest.raises(DecodeError):
        decode_value(b"\x03" + data)


def test_uvarint_of_exactly_64_bits_is_accepted() -> None:
    data = b"\xff" * 9 + b"\x01"
    assert get_uvarint(data, 0, len(data)) == (U64_MAX, 10)


def test_truncated_uvarint_is_refused() -> None:
    with pytest.raises(DecodeError):
        get_uvarint(b"\x80\x80", 0, 2)
    with pytest.raises(DecodeError):
        get_uvarint(b"\x80\x01", 0, 1)  # ``end`` is honoured, the byte after it unread


# --------------------------------------------------------------------------
# mutations (§6)


@ROUND
@given(MUTATIONS)
def test_mutation_round_trip(m: Mutation) -> None:
    data = encode_mutation(m)
    back, end = get_mutation(data, 0, len(data))
    assert end == len(data)
    assert same_mutation(back, m), (back, m)
    assert encode_mutation(back) == data


@ROUND
@given(st.lists(MUTATIONS, max_size=5))
def test_mutations_decode_back_to_back_from_one_buffer(muts: list[Mutation]) -> None:
    data = b"".join(encode_mutation(m) for m in muts)
    p, got = 0, []
    while p < len(data):
        m, p = get_mutation(data, p, len(data))
        got.append(m)
    assert len(got) == len(muts)
    assert all(same_mutation(a, b) for a, b in zip(got, muts, strict=True))


@pytest.mark.parametrize("op", [0x00, 0x0B, 0x10, 0xFF])
def test_invalid_opcode_is_refused(op: int) -> None:
    with pytest.raises(DecodeError):
        get_mutation(bytes([op, 1]), 0, 2)


def test_invalid_path_step_is_refused() -> None:
    data = bytearray(encode_mutation(ListRemove(1, "f", (0,), 0)))
    # opcode, id, field "f" (2 bytes), path count, step kind at offset 5
    assert data[5] == 0x00
    data[5] = 0x02
    with pytest.raises(DecodeError):
        get_mutation(bytes(data), 0, len(data))


def test_path_longer_than_max_path_is_refused() -> None:
    """§11 MAX_PATH = 64."""
    with pytest.raises(InvalidValueError):
        encode_mutation(ListRemove(1, "f", (0,) * 65, 0))
    ok = encode_mutation(ListRemove(1, "f", (0,) * 64, 0))
    assert get_mutation(ok, 0, len(ok))[1] == len(ok)
    bad = b"\x06\x01\x01f" + uvarint(65) + b"\x00\x00" * 65 + b"\x00"
    with pytest.raises(DecodeError, match="MAX_PATH"):
        get_mutation(bad, 0, len(bad))
    huge = b"\x06\x01\x01f" + uvarint(1 << 40) + b"\x00" * 8
    with pytest.raises(DecodeError):
        get_mutation(huge, 0, len(huge))


def test_value_depth_in_a_path_edit_counts_the_path() -> None:
    """R41/R53: an element sits inside len(path) + 1 containers."""
    ok = ListInsert(1, "f", (0, "k"), 0, nested_list(61))
    data = encode_mutation(ok)
    assert same_mutation(get_mutation(data, 0, len(data))[0], ok)
    with pytest.raises(InvalidValueError):
        encode_mutation(ListInsert(1, "f", (0, "k"), 0, nested_list(62)))
    prefix = data[: len(data) - len(encode_value(nested_list(61)))]
    bad = prefix + nested_list_bytes(62)
    with pytest.raises(DecodeError):
        get_mutation(bad, 0, len(bad))


@pytest.mark.parametrize("m", [
    Set(1, "", 1),
    Unset(1, ""),
    Create(1, "", {}),
    Create(1, "T", {"": 1}),
    ListRemove(1, "", (), 0),
])
def test_empty_field_name_or_type_is_refused_both_ways(m: Mutation) -> None:
    """§5: field names are non-empty; §8.1: types are non-empty."""
    with pytest.raises(InvalidValueError):
        encode_mutation(m)


@pytest.mark.parametrize("data", [
    b"\x02\x01\x00\x00",          # SET with an empty field name
    b"\x03\x01\x00",              # UNSET with an empty field name
    b"\x01\x01\x00\x00",          # CREATE with an empty type
    b"\x01\x01\x01T\x01\x00\x00",  # CREATE with an empty field name
])
def test_empty_field_name_or_type_is_refused_by_the_decoder(data: bytes) -> None:
    with pytest.raises(DecodeError):
        get_mutation(data, 0, len(data))


@pytest.mark.parametrize("m", [
    Create(1, "T", {"x" * 1025: 1}),
    ListRemove(1, "f", (1 << 64,), 0),
    ListRemove(1, "f", (), 1 << 64),
    Delete(1 << 64),
], ids=["create-long-field-name", "path-index-2**64", "pos-2**64", "node-id-2**64"])
def test_encoder_refuses_what_the_decoder_refuses(m: Mutation) -> None:
    """A writer never writes a commit that a reader refuses (§11, R2)."""
    with pytest.raises(InvalidValueError):
        encode_mutation(m)


# --------------------------------------------------------------------------
# commit records (§7, §9.1) and snapshot headers (§8.2)

COMMIT_FIELDS = st.tuples(
    st.integers(1, U64_MAX),                  # seq
    st.integers(INT_MIN, INT_MAX),            # timestamp_us
    st.binary(min_size=32, max_size=32),      # parent
    st.integers(1, 1 << 63),                  # next_node_id
    TEXT,                                     # label
    st.lists(MUTATIONS, max_size=4),
)


def make_commit_payload(fields: tuple[int, int, bytes, int, str, list[Mutation]]) -> bytes:
    seq, ts, parent, next_id, label, muts = fields
    body = b"".join(encode_mutation(m) for m in muts)
    return encode_commit(seq, ts, parent, next_id, label, len(muts), body)


@ROUND
@given(COMMIT_FIELDS)
def test_commit_record_round_trip(fields: tuple[int, int, bytes, int, str, list[Mutation]]
                                  ) -> None:
    seq, ts, parent, next_id, label, muts = fields
    payload = make_commit_payload(fields)
    assert struct.unpack_from("<Qq32sQ", payload) == (seq, ts, parent, next_id)  # §7 layout
    h = decode_commit_header(payload)
    assert (h.seq, h.timestamp_us, h.parent, h.next_node_id, h.label) == (
        seq, ts, parent, next_id, label)
    got = decode_mutations(payload, h.body)
    assert len(got) == len(muts)
    assert all(same_mutation(a, b) for a, b in zip(got, muts, strict=True))
    assert commit_id(payload) == blake3(payload).digest()  # §9.1
    assert make_commit_payload(fields) == payload
    # the engine decodes from memoryviews of the map
    mv = memoryview(bytearray(payload))
    assert decode_commit_header(mv) == h and len(decode_mutations(mv, h.body)) == len(muts)


def test_commit_with_trailing_bytes_is_refused() -> None:
    """R61: the payload ends exactly after the last mutation."""
    payload = make_commit_payload((1, 0, bytes(32), 2, "", [Delete(1)]))
    h = decode_commit_header(payload + b"\x00")
    with pytest.raises(DecodeError, match="R61"):
        decode_mutations(payload + b"\x00", h.body)


def test_commit_claiming_2_to_40_mutations_is_refused_before_allocating() -> None:
    """R42 applied to the mutation count."""
    payload = encode_commit(1, 0, bytes(32), 1, "", 1 << 40, b"\x04\x01" * 4)
    h = decode_commit_header(payload)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            decode_mutations(payload, h.body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_commit_shorter_than_its_prefix_is_refused() -> None:
    for n in (0, 1, 55):
        with pytest.raises(DecodeError):
            decode_commit_header(bytes(n))


@ROUND
@given(st.integers(0, U64_MAX), st.binary(min_size=32, max_size=32),
       st.binary(min_size=32, max_size=32), st.binary(max_size=64))
def test_snapshot_header_round_trip(seq: int, cid: bytes, sh: bytes, image: bytes) -> None:
    payload = encode_snapshot(seq, cid, sh, image)
    assert payload[72:] == image  # §8.2: the image starts at payload offset 72
    h = decode_snapshot_header(payload)
    assert (h.seq, h.commit_id, h.state_hash) == (seq, cid, sh)


# --------------------------------------------------------------------------
# state images (§8.1)


@functools.cache
def _image_values(n: int) -> st.SearchStrategy[Any]:
    """Field values of a state of ``n`` nodes (references to ids 1..n)."""
    scalars = st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX) | ANY_FLOAT | TEXT
    if n:
        scalars = scalars | st.integers(1, n).map(Ref)
    return st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                        | st.dictionaries(KEYS, c, max_size=3), max_leaves=6)


@st.composite
def graph_states(draw: st.DrawFn) -> tuple[int, list[NodeRecord]]:
    n = draw(st.integers(0, 6))
    fields = st.dictionaries(NAMES, _image_values(n), max_size=4)
    nodes = [NodeRecord(draw(NAMES), draw(fields), draw(st.booleans())) for _ in range(n)]
    return n + 1, nodes


def image_of(next_node_id: int, nodes: list[NodeRecord]) -> bytes:
    return encode_image(next_node_id, [
        (i + 1, encode_node_record(r.type, r.fields, r.deleted)) for i, r in enumerate(nodes)])


def same_record(a: NodeRecord | None, b: NodeRecord) -> bool:
    return (a is not None and a.type == b.type and a.deleted == b.deleted
            and same_value(a.fields, b.fields))


@IMAGES
@given(graph_states())
def test_state_image_round_trip_and_lookup(state: tuple[int, list[NodeRecord]]) -> None:
    next_id, nodes = state
    image = image_of(next_id, nodes)
    # read in place from a slice of a bigger buffer, as from a checkpoint in the map
    buf = bytearray(b"\xEE" * 8 + image + b"\xEE" * 8)
    img = StateImage(memoryview(buf)[8:8 + len(image)])
    img.check_tables(offsets=True)
    assert (img.next_node_id, img.node_count, img.size) == (next_id, len(nodes), len(image))
    assert img.ids() == list(range(1, next_id))
    for i, rec in enumerate(nodes, start=1):
        assert img.index_of(i) == i - 1
        assert same_record(img.get(i), rec)
        assert img.type_at(i) == rec.type
        assert bytes(img.raw_record_of(i)) == encode_node_record(rec.type, rec.fields,
                                                                 rec.deleted)
    for missing in (0, next_id, next_id + 5, 1 << 63):
        assert img.index_of(missing) == -1 and img.get(missing) is None
        assert img.type_at(missing) is None
    got = list(img)
    assert [i for i, _ in got] == list(range(1, next_id))
    assert all(same_record(r, w) for (_, r), w in zip(got, nodes, strict=True))
    assert state_hash(image) == blake3(image).digest()  # §9.2


@IMAGES
@given(graph_states(), st.randoms(use_true_random=False))
def test_state_image_is_canonical(state: tuple[int, list[NodeRecord]],
                                  rnd: random.Random) -> None:
    """§9.2: equal states have equal images, whatever order fields were set in."""
    next_id, nodes = state
    reordered = [NodeRecord(r.type, shuffled(r.fields, rnd), r.deleted) for r in nodes]
    assert image_of(next_id, reordered) == image_of(next_id, nodes)


def test_empty_state_image_matches_the_spec() -> None:
    """§8.1: the empty state's image is 24 bytes."""
    image = encode_image(1, [])
    assert image == bytes.fromhex("0100000000000000" "0000000000000000" "0000000000000000")
    img = StateImage(image)
    img.check_tables(offsets=True)
    assert img.node_count == 0 and img.ids() == [] and list(img) == []


def test_state_image_claiming_2_to_40_nodes_is_refused_before_allocating() -> None:
    """R71 checked from the fixed part before any table is read."""
    image = struct.pack("<QQ", (1 << 40) + 1, 1 << 40) + bytes(64)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            StateImage(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_state_image_whose_ids_are_not_dense_is_refused() -> None:
    """R70, R73: ids are exactly 1..N."""
    good = image_of(3, [NodeRecord("A", {}, False), NodeRecord("B", {}, True)])
    bad = bytearray(good)
    struct.pack_into("<Q", bad, 16 + 8, 5)  # second id 2 -> 5
    img = StateImage(bytes(bad))
    with pytest.raises(DecodeError):
        img.check_tables()
    wrong_count = bytearray(good)
    struct.pack_into("<Q", wrong_count, 0, 4)  # next_node_id 3 -> 4 with 2 nodes
    with pytest.raises(DecodeError, match="R73"):
        StateImage(bytes(wrong_count))


def test_node_record_with_reserved_flag_bits_is_refused() -> None:
    """§8.1: flag bits 1-7 are reserved, must be zero."""
    good = image_of(2, [NodeRecord("A", {}, False)])
    data_at = 16 + 8 + 16
    for flags in (0x02, 0x80, 0xFF):
        bad = bytearray(good)
        bad[data_at] = flags
        with pytest.raises(DecodeError, match="flag"):
            StateImage(bytes(bad)).get(1)


@pytest.mark.parametrize("fields", [{"": 1}, {"r": Ref(99)}, {"r": [{"x": Ref(2)}]}],
                         ids=["empty-field-name", "dangling-ref", "nested-dangling-ref"])
def test_node_record_breaking_field_rules_is_refused(fields: dict[str, Any]) -> None:
    """§5 (field names are non-empty) and R72 (references name nodes of the image)."""
    image = encode_image(2, [(1, encode_node_record("A", fields, False))])
    with pytest.raises(DecodeError):
        StateImage(image).get(1)


# --------------------------------------------------------------------------
# hostile input: DecodeError or success, nothing else


VALUE_BYTES = VALUES.map(encode_value)
MUTATION_BYTES = MUTATIONS.map(encode_mutation)
COMMIT_BYTES = COMMIT_FIELDS.map(make_commit_payload)
IMAGE_BYTES = graph_states().map(lambda s: image_of(*s))


@FUZZ
@given(hostile(VALUE_BYTES))
@example(nested_list_bytes(5000))
@example(b"\x07" + b"\xff" * 9 + b"\x01")
@example(b"\x05\x80\x80\x80\x80\x10")
def test_hostile_bytes_make_decode_value_raise_only_decode_error(data: bytes) -> None:
    v = only_decode_errors(decode_value, data)
    if v is not None or data == b"\x00":
        assert encode_value(v) == data  # whatever decodes is canonical (R1, R40)


@FUZZ
@given(hostile(MUTATION_BYTES))
def test_hostile_bytes_make_get_mutation_raise_only_decode_error(data: bytes) -> None:
    def decode(b: bytes) -> Any:
        p, out = 0, []
        while p < len(b):
            m, p = get_mutation(b, p, len(b))
            out.append(m)
        return out

    muts = only_decode_errors(decode, data)
    if muts is not None:  # whatever decodes re-encodes to the same bytes
        assert b"".join(encode_mutation(m) for m in muts) == data


@FUZZ
@given(hostile(COMMIT_BYTES))
def test_hostile_bytes_make_commit_decoding_raise_only_decode_error(data: bytes) -> None:
    def decode(b: bytes) -> Any:
        h = decode_commit_header(b)
        return decode_mutations(b, h.body)

    only_decode_errors(decode, data)
    only_decode_errors(decode_snapshot_header, data)


@FUZZ
@given(hostile(IMAGE_BYTES))
def test_hostile_bytes_make_state_image_raise_only_decode_error(data: bytes) -> None:
    def read(b: bytes) -> None:
        img = StateImage(b)
        ids = img.ids()
        assert len(ids) == img.node_count
        for node_id in [*ids[:8], 0, 1, img.next_node_id, 1 << 63]:
            img.index_of(node_id)
            only_decode_errors(lambda _, k=node_id: img.get(k), b)
            only_decode_errors(lambda _, k=node_id: img.type_at(k), b)
            only_decode_errors(lambda _, k=node_id: img.raw_record_of(k), b)
        for i in range(min(img.node_count, 8)):
            only_decode_errors(lambda _, k=i: img.record(k), b)
        only_decode_errors(lambda _: img.check_tables(offsets=True), b)
        only_decode_errors(lambda _: list(img), b)

    only_decode_errors(read, data)
