"""Record payloads (FORMAT.md §7, §8.2, §8.3, §8.6) and the commit id (§9.1). No I/O.

Decoders take any bytes-like ``payload`` (typically a ``memoryview`` of the
file map) and return Python objects that do not reference it, except where a
docstring says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from blake3 import blake3

from myosotis.format.constants import (
    COMMIT_PREFIX_STRUCT,
    MAX_STRING,
    ORIGIN_STRUCT,
    SNAPSHOT_PREFIX_SIZE,
    SNAPSHOT_PREFIX_STRUCT,
    ZERO_HASH,
)
from myosotis.format.mutations import Mutation, get_mutation
from myosotis.format.values import DecodeError, get_str, get_uvarint, put_str, put_uvarint

_COMMIT_PREFIX = COMMIT_PREFIX_STRUCT.size


class CommitHeader(NamedTuple):
    """The fixed part of a commit record and its label (§7)."""

    seq: int
    timestamp_us: int
    parent: bytes
    next_node_id: int
    label: str
    body: int  # payload offset of the mutation count


def encode_commit(
    seq: int, timestamp_us: int, parent: bytes, next_node_id: int, label: str,
    count: int, mutation_bytes: bytes | bytearray,
) -> bytes:
    """The payload of a commit record; ``mutation_bytes`` holds ``count`` encoded mutations."""
    out = bytearray(COMMIT_PREFIX_STRUCT.pack(seq, timestamp_us, parent, next_node_id))
    put_str(out, label, "commit label")
    put_uvarint(out, count)
    out += mutation_bytes
    return bytes(out)


def decode_commit_header(payload: Any) -> CommitHeader:
    """Decode the fixed part and the label; raises DecodeError."""
    end = len(payload)
    if end < _COMMIT_PREFIX:
        raise DecodeError(f"commit record of {end} bytes is shorter than its 56-byte prefix", 0)
    seq, ts, parent, next_id = COMMIT_PREFIX_STRUCT.unpack_from(payload, 0)
    label, p = get_str(payload, _COMMIT_PREFIX, end, MAX_STRING)
    return CommitHeader(seq, ts, bytes(parent), next_id, label, p)


def iter_mutations(payload: Any, body: int) -> Iterator[Mutation]:
    """Decode, one at a time, the mutations that start at payload offset ``body``.

    The check of R61 (nothing after the last one) comes after the last
    mutation is yielded: a caller applying them must treat a DecodeError
    raised at any point as making the whole commit invalid.
    """
    # One copy of the payload: the decoders index and slice bytes faster than a
    # memoryview of the map, and the mutations they return never reference it.
    buf = payload if type(payload) is bytes else bytes(payload)
    end = len(buf)
    count, p = get_uvarint(buf, body, end)
    if count > end - p:
        raise DecodeError(f"commit claims {count} mutations, more than the record holds", body)
    for _ in range(count):
        m, p = get_mutation(buf, p, end)
        yield m
    if p != end:
        raise DecodeError("bytes left after the last mutation (R61)", p)


def decode_mutations(payload: Any, body: int) -> list[Mutation]:
    """Decode the mutation list that starts at payload offset ``body`` (R61)."""
    return list(iter_mutations(payload, body))


def commit_id(payload: Any) -> bytes:
    """BLAKE3-256 of the commit payload (§9.1)."""
    return blake3(payload).digest()


class SnapshotHeader(NamedTuple):
    """Prefix of a checkpoint (§8.2) or genesis (§8.3) record."""

    seq: int
    commit_id: bytes
    state_hash: bytes


def encode_snapshot(seq: int, cid: bytes, state_hash: bytes, image: bytes) -> bytes:
    """Payload of a checkpoint or genesis record."""
    return SNAPSHOT_PREFIX_STRUCT.pack(seq, cid, state_hash) + image


def decode_snapshot_header(payload: Any) -> SnapshotHeader:
    if len(payload) < SNAPSHOT_PREFIX_SIZE:
        raise DecodeError("snapshot record shorter than its 72-byte prefix (§8.2)", 0)
    seq, cid, sh = SNAPSHOT_PREFIX_STRUCT.unpack_from(payload, 0)
    return SnapshotHeader(seq, bytes(cid), bytes(sh))


class OriginRecord(NamedTuple):
    """An origin record (§8.6): the commit of another file this one was forked from.

    ``seq``, ``commit_id`` and ``state_hash``: the source's commit and the hash of its
    state after it; ``base_seq``, ``base_commit_id``: the source's genesis base when
    it was forked (0 and zeros when its history went back to the empty state).
    """

    seq: int
    commit_id: bytes
    state_hash: bytes
    base_seq: int
    base_commit_id: bytes


def encode_origin(o: OriginRecord) -> bytes:
    """The 112-byte payload of an origin record (§8.6)."""
    return ORIGIN_STRUCT.pack(o.seq, o.commit_id, o.state_hash, o.base_seq, o.base_commit_id)


def decode_origin(payload: Any) -> OriginRecord:
    """Decode an origin record and check R87 on its own fields; raises DecodeError."""
    if len(payload) != ORIGIN_STRUCT.size:
        raise DecodeError(f"origin record of {len(payload)} bytes; it has exactly "
                          f"{ORIGIN_STRUCT.size} (§8.6, R87)", 0)
    seq, cid, sh, base_seq, base_id = ORIGIN_STRUCT.unpack_from(payload, 0)
    o = OriginRecord(seq, bytes(cid), bytes(sh), base_seq, bytes(base_id))
    if (seq == 0) != (o.commit_id == ZERO_HASH):
        raise DecodeError("origin seq and commit_id disagree (R87)", 0)
    if (base_seq == 0) != (o.base_commit_id == ZERO_HASH):
        raise DecodeError("origin base_seq and base_commit_id disagree (R87)", 72)
    if base_seq > seq:
        raise DecodeError(f"origin base_seq {base_seq} is after its seq {seq} (R87)", 72)
    return o
