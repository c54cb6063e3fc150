"""Fuzz harness: decode single values, mutations, records, images and headers.

Property: for any bytes, each decoder of ``myosotis.format`` either raises
``MyosotisError`` (a ``DecodeError`` naming the payload offset, which must lie
inside the input) or returns a result that re-encodes to exactly the bytes it
consumed. The format has one encoding per value (FORMAT.md §1 R1, §5 R40, §9.2),
so any accepted input that re-encodes differently is a second encoding of the
same thing: a bug that would make two files with the same state hash differ, or
let a hostile file smuggle bytes past the hash. Never a RecursionError, never
an allocation the input's length does not pay for (R42).

The first input byte picks the decoder (see ``TARGETS``); the rest is the input.
"""

from __future__ import annotations

import fuzzlib

with fuzzlib.instrumented():

    from myosotis.errors import MyosotisError
    from myosotis.format.header import check_file_header, encode_file_header
    from myosotis.format.image import StateImage, encode_image, encode_node_record
    from myosotis.format.mutations import get_mutation, put_mutation
    from myosotis.format.records import (
        decode_commit_header,
        decode_mutations,
        decode_snapshot_header,
        encode_commit,
        encode_snapshot,
    )
    from myosotis.format.values import get_value, put_value


def _value(data: bytes) -> None:
    v, p = get_value(data, 0, len(data))
    assert 0 < p <= len(data)
    out = bytearray()
    put_value(out, v)
    assert bytes(out) == data[:p], "value re-encodes differently (R1/R40)"


def _mutation(data: bytes) -> None:
    m, p = get_mutation(data, 0, len(data))
    assert 0 < p <= len(data)
    out = bytearray()
    try:
        put_mutation(out, m)
    except MyosotisError as e:
        raise AssertionError(f"decoded mutation {m!r} cannot be encoded: {e}") from e
    assert bytes(out) == data[:p], "mutation re-encodes differently"


def _commit(data: bytes) -> None:
    h = decode_commit_header(data)
    muts = decode_mutations(data, h.body)
    body = bytearray()
    for m in muts:
        put_mutation(body, m)
    again = encode_commit(h.seq, h.timestamp_us, h.parent, h.next_node_id, h.label, len(muts),
                          body)
    assert again == data, "commit record re-encodes differently (R61)"


def _image(data: bytes) -> None:
    img = StateImage(data)
    try:  # the full check of R70-R73 (the engine skips the offset order on open for speed)
        img.check_tables(offsets=True)
    except TypeError:  # an engine whose check_tables always checks the offsets
        img.check_tables()
    records = [(i, encode_node_record(r.type, r.fields, r.deleted)) for i, r in img]
    assert [i for i, _ in records] == list(range(1, img.next_node_id)), "ids not dense (R73)"
    assert encode_image(img.next_node_id, records) == data, "image re-encodes differently"
    for i, rec in records:
        r = img.get(i)
        assert r is not None and encode_node_record(r.type, r.fields, r.deleted) == rec
        assert img.type_at(i) == r.type
    assert img.get(img.next_node_id) is None and img.get(0) is None


def _snapshot(data: bytes) -> None:
    h = decode_snapshot_header(data)
    assert encode_snapshot(h.seq, h.commit_id, h.state_hash, bytes(data[72:])) == data
    _image(data[72:])


def _file_header(data: bytes) -> None:
    version = check_file_header(data, len(data))
    assert data[:32] == encode_file_header(version), "a second valid file header (R12)"


TARGETS = (_value, _mutation, _commit, _image, _snapshot, _file_header)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    body = data[1:]
    try:
        target(body)
    except MyosotisError as e:
        offset = getattr(e, "offset", None)
        assert offset is None or 0 <= offset <= len(body) + 1, (e, len(body))


if __name__ == "__main__":
    fuzzlib.main(test_one_input)
