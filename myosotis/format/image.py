"""State images (FORMAT.md §8.1): the canonical bytes of a whole graph state.

:func:`encode_image` writes one; :class:`StateImage` reads one in place,
finding a node by binary search over the sorted id table without decoding the
others. No I/O here.
"""

from __future__ import annotations

import array
import bisect
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from sys import intern
from typing import Any, NamedTuple

from blake3 import blake3

from myosotis.format.constants import (
    IMAGE_PREFIX_STRUCT,
    MAX_FIELD_NAME,
    MAX_NODE_ID,
    MAX_TYPE_NAME,
    NODE_FLAG_DELETED,
)
from myosotis.format.record_fields import one_pass_fields
from myosotis.format.values import (
    DecodeError,
    Ref,
    decoded_ref,
    first_bad_ref,
    get_map_body,
    get_str,
    put_key,
    put_map_body,
    put_str,
    replace_refs,
)

_U64 = struct.Struct("<Q")
_LIVE, _DELETED = bytes((0,)), bytes((NODE_FLAG_DELETED,))  # a record's flags byte
_unpack_span = struct.Struct("<QQ").unpack_from  # two neighbours of the offset table
_utf8 = bytes.decode  # strict UTF-8 (R3)
_new_record = tuple.__new__  # NodeRecord without its Python-level __new__ (hot: scans)
_LITTLE = sys.byteorder == "little"


class NodeRecord(NamedTuple):
    """One decoded node: what the image stores for it."""

    type: str
    fields: dict[str, Any]
    deleted: bool


def encode_node_record(type_name: str, fields: dict[str, Any], deleted: bool) -> bytes:
    out = bytearray(_DELETED if deleted else _LIVE)
    if type(type_name) is str:  # a few types, many nodes: memoised as map keys are
        put_key(out, type_name, "node type", MAX_TYPE_NAME)
    else:
        put_str(out, type_name, "node type", MAX_TYPE_NAME)
    put_map_body(out, fields, 0)
    return bytes(out)


class ImageLayout(NamedTuple):
    """Where every record of an image goes (§8.1), before any byte of it is written:
    its ``ids`` and its offset table ``ends`` (``len(ids) + 1`` entries from 0)."""

    next_node_id: int
    ids: array.array[int]
    ends: array.array[int]

    @property
    def length(self) -> int:
        """The image's length in bytes."""
        return IMAGE_PREFIX_STRUCT.size + 16 * len(self.ids) + 8 + self.ends[-1]


def image_layout(next_node_id: int,
                 records: Iterable[tuple[int, bytes | memoryview]]) -> ImageLayout:
    """The layout of the image of ``records`` ((id, encoded node record) pairs in
    ascending id order), from their lengths alone: the first of two passes over
    them, so that :func:`image_chunks` can stream a large image, tables first,
    without holding it whole."""
    ids = array.array("Q")
    ends = array.array("Q", (0,))
    add_id, add_end = ids.append, ends.append
    total = 0
    for node_id, rec in records:
        add_id(node_id)
        total += len(rec)
        add_end(total)
    return ImageLayout(next_node_id, ids, ends)


def _tables(layout: ImageLayout) -> tuple[bytes, array.array[int], array.array[int]]:
    """The parts of an image before its records: prefix, id table, offset table."""
    ids, ends = layout.ids, layout.ends
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        ids, ends = array.array("Q", ids), array.array("Q", ends)
        ids.byteswap()
        ends.byteswap()
    return IMAGE_PREFIX_STRUCT.pack(layout.next_node_id, len(layout.ids)), ids, ends


def image_chunks(layout: ImageLayout, records: Iterable[tuple[int, bytes | memoryview]],
                 size: int) -> Iterator[bytearray]:
    """The image of ``records`` (the same pairs :func:`image_layout` made ``layout``
    from), in order, in new buffers of at least ``size`` bytes (the last may be
    shorter): each record is copied once, and only a chunk is held at a time.
    Raises ValueError if ``records`` do not match ``layout``."""
    buf = bytearray()
    for part in _tables(layout):
        buf += memoryview(part).cast("B")
    total, count = 0, 0
    for _node_id, rec in records:
        buf += rec
        count += 1
        if len(buf) >= size:
            total += len(buf)
            yield buf
            buf = bytearray()
    total += len(buf)
    if count != len(layout.ids) or total != layout.length:
        raise ValueError("records differ from the layout they were measured for")
    if buf:
        yield buf


def encode_image(next_node_id: int,
                 records: Iterable[tuple[int, bytes | memoryview]]) -> bytes:
    """The image of a state whose nodes are ``records``: (id, encoded node record) pairs
    in ascending id order."""
    # streamed: a record is copied once into ``data`` and not kept (a layer's records
    # are memoryviews of the file, a full one holds every node)
    ids = array.array("Q")
    ends = array.array("Q", (0,))
    data = bytearray()
    add_id, add_end = ids.append, ends.append
    for node_id, rec in records:
        add_id(node_id)
        data += rec
        add_end(len(data))
    return b"".join((*_tables(ImageLayout(next_node_id, ids, ends)), data))


def state_hash(image: Any) -> bytes:
    """BLAKE3-256 of a state image (§9.2)."""
    return blake3(image).digest()


def _u64_list(mv: memoryview) -> list[int]:
    if _LITTLE:
        return mv.cast("Q").tolist()
    return [v for (v,) in struct.iter_unpack("<Q", mv)]


class StateImage:
    """A state image read in place.

    ``buf`` must stay valid (mapped) as long as this object is used; the
    object holds a ``memoryview`` of it. Decoded records are new objects that
    do not reference the buffer. ``base`` is the file offset of the image and
    only used in error messages. Construction checks the table sizes (R71);
    :meth:`check_tables` checks the order of ids and offsets (R70).
    """

    def __init__(self, buf: Any, base: int = 0, *, sparse: bool = False,
                 guard: Guard | None = None) -> None:
        """``sparse``: a layer's image (§8.7): ids strictly ascending but not every id
        (R73 does not apply). ``guard(lo, hi)``: called before bytes ``[lo, hi)`` of
        the image are first read (a layer checks the CRC of their blocks, §8.7;
        it raises DecodeError); a dense layer (``guard`` without ``sparse``) is
        trusted to hold ids 1..N (fsck checks R70), so its id table is never read."""
        mv = memoryview(buf)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        self._mv = mv
        self.base = base
        self.sparse = sparse
        self._guard = guard if guard is not None else _no_guard
        size = len(mv)
        if size < 24:
            raise DecodeError("state image shorter than its fixed part (§8.1)", base)
        self._guard(0, 16)
        self.next_node_id, n = IMAGE_PREFIX_STRUCT.unpack_from(mv, 0)
        if n > (size - 24) // 16:
            raise DecodeError(f"state image claims {n} nodes, more than it holds (R71)", base)
        self.node_count: int = n
        self._ids_at = 16
        self._offs_at = 16 + 8 * n
        self._data_at = self._offs_at + 8 * (n + 1)
        self._guard(self._offs_at, self._offs_at + 8)
        self._guard(self._offs_at + 8 * n, self._data_at)
        if _U64.unpack_from(mv, self._offs_at)[0] != 0:
            raise DecodeError("state image offsets do not start at 0 (R71)", base)
        data_len = _U64.unpack_from(mv, self._offs_at + 8 * n)[0]
        if self._data_at + data_len != size:
            raise DecodeError("state image length does not match its offset table (R71)", base)
        if sparse:
            if n > self.next_node_id - 1:
                raise DecodeError(f"layer image holds {n} nodes but next_node_id is "
                                  f"{self.next_node_id} (§8.7)", base)
        elif n != self.next_node_id - 1:
            raise DecodeError(
                f"state image holds {n} nodes but next_node_id is {self.next_node_id} (R73)", base)
        self._ids_q: memoryview | None = None  # a sparse image's id table, as u64s
        # (i, a, b) of the record located last, checked and guarded: a scan reads a
        # node's flags (deleted_at), then its fields, at one search and one guard
        self._last_span = (-1, 0, 0)
        self._ref_limit = min(self.next_node_id, MAX_NODE_ID + 1)  # R72 and §5's range
        # set once check_tables() proved ids[i] == i + 1 (R73); a full layer's
        # are trusted (its CRCs vouch for its bytes, fsck for R70: §8.7)
        self._dense = guard is not None and not sparse

    @property
    def size(self) -> int:
        """Length of the image in bytes."""
        return len(self._mv)

    def ids(self) -> list[int]:
        """All node ids in ascending order, decoded anew at each call: its callers
        (layer merges, verification) read a table once, and a cached image must stay
        a few objects over the map, whatever its size (policy.SNAPSHOT_CACHE)."""
        self._guard(self._ids_at, self._offs_at)
        return _u64_list(self._mv[self._ids_at:self._offs_at])

    def check_tables(self, offsets: bool = False) -> None:
        """Check R70 and R73 (ids are exactly 1..N) at C speed; with ``offsets`` also that
        the offset table is non-decreasing from 0 (R71). Raises DecodeError.

        Without ``offsets`` a bad offset table is still caught, when the record
        it bounds is read.
        """
        n = self.node_count
        ids = self._mv[self._ids_at:self._offs_at]
        expected = array.array("Q", range(1, n + 1))
        if not _LITTLE:  # pragma: no cover - big-endian hosts
            expected.byteswap()
        if ids != memoryview(expected).cast("B"):
            raise DecodeError("state image ids are not 1..N in order (R70, R73)", self.base)
        self._dense = True
        if offsets:
            offs = _u64_list(self._mv[self._offs_at:self._data_at])
            if offs[0] != 0 or any(a > b for a, b in zip(offs, offs[1:], strict=False)):
                raise DecodeError("state image offsets are not non-decreasing from 0 (R71)",
                                  self.base)

    def index_of(self, node_id: int) -> int:
        """Position of ``node_id`` in the id table, or -1. O(log N), no decoding."""
        q = self._ids_q
        if q is not None:  # a layer's id table, checked once (below): the common case
            i = bisect.bisect_left(q, node_id)
            return i if i < len(q) and q[i] == node_id else -1
        if self._dense:
            return node_id - 1 if 1 <= node_id <= self.node_count else -1
        if self.sparse and _LITTLE:
            # A layer's id table is searched in place at C speed: its blocks are
            # checked once, then bisect runs over the mapped u64s (zero-copy).
            self._guard(self._ids_at, self._offs_at)
            q = self._ids_q = self._mv[self._ids_at:self._offs_at].cast("Q")
            i = bisect.bisect_left(q, node_id)
            return i if i < len(q) and q[i] == node_id else -1
        mv, base, guard = self._mv, self._ids_at, self._guard
        unpack = _U64.unpack_from
        lo, hi = 0, self.node_count
        while lo < hi:
            mid = (lo + hi) // 2
            at = base + 8 * mid
            guard(at, at + 8)
            if unpack(mv, at)[0] < node_id:
                lo = mid + 1
            else:
                hi = mid
        if lo < self.node_count:
            at = base + 8 * lo
            guard(at, at + 8)
            if unpack(mv, at)[0] == node_id:
                return lo
        return -1

    def id_at(self, i: int) -> int:
        """The id of node ``i`` of the table (``0 <= i < node_count``)."""
        if self._dense:
            return i + 1
        at = self._ids_at + 8 * i
        self._guard(at, at + 8)
        return int(_U64.unpack_from(self._mv, at)[0])

    @property
    def dense(self) -> bool:
        """True when node ``i`` of the table is known to be id ``i + 1`` (R73)."""
        return self._dense

    def record(self, i: int) -> NodeRecord:
        """Decode node ``i`` of the table; raises DecodeError."""
        a, b = self._record_span(i)
        rec = self._mv[a:b].tobytes()
        fields = one_pass_fields(rec, self._ref_limit, decoded_ref)
        if fields is None:  # not the common shape, or bad: the full decoder decides
            type_name, fields, flags = self._decode(i)
            return _new_record(NodeRecord, (type_name, fields, flags == NODE_FLAG_DELETED))
        # one_pass_fields checked the flags and the type name (a short one)
        return _new_record(NodeRecord, (intern(_utf8(rec[2:2 + rec[1]])), fields,
                                        rec[0] == NODE_FLAG_DELETED))

    def plain_fields(self, i: int, ref: Callable[[int], Any]) -> dict[str, Any]:
        """The fields of node ``i`` of the table, in name order, with every reference (at
        any depth) made by ``ref(id)``: new objects the caller owns. The record is
        checked as :meth:`record` checks it, and a bad one raises the same
        DecodeError."""
        a, b = self._record_span(i)
        fields = one_pass_fields(self._mv[a:b].tobytes(), self._ref_limit, ref)
        if fields is None:  # not the common shape, or bad: the full decoder decides
            fields = self._decode(i)[1]
            replace_refs(fields, ref)  # the fields are a map: its Refs at any depth
        return fields

    def deleted_at(self, i: int) -> bool:
        """Whether node ``i`` of the table is tombstoned, from its flags byte (§8.1),
        the rest of its record not read; raises DecodeError as :meth:`record` does
        for that byte."""
        a, b = self._record_span(i)
        if a == b:
            raise DecodeError("empty node record (§8.1)", self.base + a)
        flags: int = self._mv[a]
        if flags & ~NODE_FLAG_DELETED:
            raise DecodeError("reserved node flag bits set (§8.1)", self.base + a)
        return flags == NODE_FLAG_DELETED

    def _decode(self, i: int) -> tuple[str, dict[str, Any], int]:
        """Node ``i``'s type, fields (a new dict, in name order) and flags byte, every
        rule of §8.1 and R72 checked; raises DecodeError."""
        a, b = self._record_span(i)
        # one copy of the record: bytes index and slice faster than a memoryview
        rec = self._mv[a:b].tobytes()
        at = self.base + a
        end = len(rec)
        if end < 1:
            raise DecodeError("empty node record (§8.1)", at)
        flags = rec[0]
        if flags & ~NODE_FLAG_DELETED:
            raise DecodeError("reserved node flag bits set (§8.1)", at)
        try:
            type_name, p = get_str(rec, 1, end, MAX_TYPE_NAME)
            if not type_name:
                raise DecodeError("empty node type (§8.1)", 1)
            type_name = intern(type_name)  # a few types, many nodes
            fields, p = get_map_body(rec, p, end, 0, MAX_FIELD_NAME)
            if p != end:
                raise DecodeError("node record has trailing bytes (R71)", p)
            if "" in fields:
                raise DecodeError("empty field name (§5)", 1)
            nxt = self.next_node_id
            for v in fields.values():
                t = type(v)
                if t is Ref:
                    ref = None if 0 < v.id < nxt else v.id
                elif t is list or t is dict:
                    ref = first_bad_ref(v, nxt)
                else:
                    continue
                if ref is not None:
                    raise DecodeError(f"reference to node {ref}, not in the image (R72)", 1)
        except DecodeError as e:
            raise DecodeError(e.reason, at + (e.offset or 0)) from None
        return type_name, fields, flags

    def _record_span(self, i: int) -> tuple[int, int]:
        """Where node ``i``'s record is in the image: ``[a, b)``, guarded."""
        last = self._last_span
        if last[0] == i:
            return last[1], last[2]
        at = self._offs_at + 8 * i
        self._guard(at, at + 16)
        start, stop = _unpack_span(self._mv, at)
        d = self._data_at
        if start > stop or d + stop > len(self._mv):
            raise DecodeError("node record outside the image (R71)", self.base + at)
        self._guard(d + start, d + stop)
        self._last_span = (i, d + start, d + stop)
        return d + start, d + stop

    def _record_view(self, i: int) -> memoryview:
        a, b = self._record_span(i)
        return self._mv[a:b]

    def raw_items(self) -> Iterator[tuple[int, memoryview]]:
        """Every ``(id, encoded record)`` in id order, zero-copy; the whole image is
        checked once first (a layer's blocks), not per record. Raises DecodeError."""
        self._guard(0, len(self._mv))
        n, mv, d = self.node_count, self._mv, self._data_at
        ids = range(1, n + 1) if self._dense else self.ids()
        offs = _u64_list(mv[self._offs_at:d])
        for i, node_id in enumerate(ids):
            start, stop = offs[i], offs[i + 1]
            if start > stop or d + stop > len(mv):
                raise DecodeError("node record outside the image (R71)",
                                  self.base + self._offs_at + 8 * i)
            yield node_id, mv[d + start:d + stop]

    def raw_record(self, i: int) -> memoryview:
        """The encoded record of node ``i`` of the table (zero-copy)."""
        return self._record_view(i)

    def raw_record_of(self, node_id: int) -> memoryview:
        """The encoded record of ``node_id`` (zero-copy), for re-writing an image."""
        i = self.index_of(node_id)
        if i < 0:
            raise DecodeError(f"node {node_id} missing from the state image (R73)", self.base)
        return self._record_view(i)

    def type_at(self, node_id: int) -> str | None:
        """The type of ``node_id`` without decoding its fields."""
        i = self.index_of(node_id)
        if i < 0:
            return None
        rec = self._record_view(i)
        type_name, _ = get_str(rec, 1, len(rec), MAX_TYPE_NAME)
        return type_name

    def get(self, node_id: int) -> NodeRecord | None:
        i = self.index_of(node_id)
        return None if i < 0 else self.record(i)

    def __iter__(self) -> Iterator[tuple[int, NodeRecord]]:
        for i, node_id in enumerate(self.ids()):
            yield node_id, self.record(i)


Guard = Callable[[int, int], None]
"""``guard(lo, hi)``: bytes ``[lo, hi)`` of an image are about to be read (see StateImage)."""


def _no_guard(lo: int, hi: int) -> None:
    """The guard of an image checked whole before use (a checkpoint's hash, R80)."""


def create_record(buf: Any, start: int, end: int) -> bytes:
    """The node record (§8.1) of the node a CREATE makes, from that mutation's encoding
    at ``buf[start:end]`` (§6, as ``Create.put`` writes it): its operands after the
    opcode and node id (type, field count, fields in canonical order) are the
    record's bytes after the flags byte, and a new node has no flag set."""
    p = start + 1  # the opcode
    while buf[p] & 0x80:  # the node id's uvarint
        p += 1
    rec: bytes = b"\x00" + buf[p + 1:end]
    return rec

