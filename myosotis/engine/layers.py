"""Layered checkpoints (FORMAT.md §8.7): the stack of snapshots a state is read from,
and the writer's merge of layers (its policy: engine/policy.py).

A :class:`LayerStack` is a list of images, newest first: sparse layers, each
holding the nodes changed since the one below it, over one full image (a
full layer, a version-1/2 checkpoint or the genesis). A node is read from the
first image that holds it. The writer keeps the stack short by size tiers
(§8.7 "policy", :func:`plan`): a new layer absorbs the layers on top of the
stack when LAYER_FANOUT - 1 of them are in its size tier or below; so a stack
has O(F log_F(state / unit)) layers, and every change is rewritten
O(log_F(state / unit)) times. A full layer is written when the sparse
layers would outweigh the full image under them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from myosotis.engine.policy import (
    FULL_LAYER_SHARE,
    LAYER_FANOUT,
    LAYER_UNIT,
    LAYER_WRITE_CHUNK,
    RESIDENT_DROP_BYTES,
)
from myosotis.format.constants import KIND_LAYER, LAYER_LEVEL_FULL
from myosotis.format.image import (
    NodeRecord,
    StateImage,
    create_record,
    encode_image,
    image_chunks,
    image_layout,
)
from myosotis.format.layer import LayerPayload, encode_layer
from myosotis.format.mutations import Create, Mutation
from myosotis.format.values import DecodeError

if TYPE_CHECKING:
    from myosotis.engine.graph import NodeState
    from myosotis.engine.store import Store


class StackEntry(NamedTuple):
    """One snapshot of a stack: its frame's offset in the file, its seq, its level
    (LAYER_LEVEL_FULL for a full image) and its image read in place."""

    offset: int
    seq: int
    level: int
    image: StateImage


class LayerStack:
    """The images a state is read from, newest first (§8.7). Read-only."""

    __slots__ = ("entries", "next_node_id", "_images", "_last")

    def __init__(self, entries: list[StackEntry]) -> None:
        assert entries and entries[-1].level == LAYER_LEVEL_FULL, "a stack ends in a full image"
        self.entries = entries
        self.next_node_id: int = entries[0].image.next_node_id
        # what _find reads of each entry, newest first: every read goes through it
        self._images = [(e.image.next_node_id, e.image) for e in entries]
        # (id, image, index) of the node found last: a scan locates each node it
        # yields here (flags), and the reads of that node find it without a search;
        # one entry, and the stack never changes, so it is never stale (ids start at
        # 1: the first entry matches none)
        self._last: tuple[int, StateImage, int] = (0, entries[-1].image, -1)

    @property
    def top(self) -> StackEntry:
        return self.entries[0]

    @property
    def size(self) -> int:
        """Bytes of every image in the stack."""
        return sum(e.image.size for e in self.entries)

    def _find(self, node_id: int) -> tuple[StateImage, int]:
        last = self._last
        if last[0] == node_id:
            return last[1], last[2]
        for limit, img in self._images:
            if node_id < limit:
                i = img.index_of(node_id)
                if i >= 0:
                    self._last = (node_id, img, i)
                    return img, i
        raise self._missing(node_id)

    def _missing(self, node_id: int) -> DecodeError:
        return DecodeError(f"node {node_id} is in no layer of the stack (§8.7)",
                           self.entries[0].image.base)

    def get(self, node_id: int) -> NodeRecord | None:
        """The node's record from the newest image that holds it; None if out of range.
        Raises DecodeError (a damaged block, a malformed record, §8.4)."""
        if not 1 <= node_id < self.next_node_id:
            return None
        img, i = self._find(node_id)
        return img.record(i)

    def plain_fields(self, node_id: int, ref: Callable[[int], Any]) -> dict[str, Any] | None:
        """The node's fields as :meth:`StateImage.plain_fields` decodes them (references
        made by ``ref``), from the newest image that holds it; None if out of range.
        Raises DecodeError as :meth:`get` does."""
        if not 1 <= node_id < self.next_node_id:
            return None
        img, i = self._find(node_id)
        return img.plain_fields(i, ref)

    def scan(self) -> Iterator[tuple[int, StateImage, int]]:
        """``(id, image, index)`` of every node in id order: where its record is, in the
        newest image that holds it (the merge of the layers, no search per id). Reads
        no record. Before it yields a node it notes where the node is, so reading
        that node next costs no search. Raises DecodeError when a node is in no
        image (as :meth:`get` does)."""
        over: dict[int, tuple[StateImage, int]] = {}
        for e in reversed(self.entries[:-1]):  # older first: newer layers overwrite
            img = e.image
            over.update(zip(img.ids(), ((img, i) for i in range(img.node_count)), strict=True))
        full = self.entries[-1].image
        dense, limit = full.dense, full.next_node_id
        for node_id in range(1, self.next_node_id):
            hit = over.get(node_id)
            if hit is not None:
                img, i = hit
            elif node_id >= limit:
                raise self._missing(node_id)
            else:
                img, i = full, node_id - 1 if dense else full.index_of(node_id)
                if i < 0:
                    raise self._missing(node_id)
            self._last = (node_id, img, i)
            yield node_id, img, i

    def type_at(self, node_id: int) -> str | None:
        if not 1 <= node_id < self.next_node_id:
            return None
        img, i = self._find(node_id)
        return img.type_at(img.id_at(i))

    def raw_record_of(self, node_id: int) -> memoryview:
        img, i = self._find(node_id)
        return img.raw_record(i)

    def records(self) -> Iterator[tuple[int, bytes | memoryview]]:
        """Every node's record, in id order: the full image's with the sparse layers'
        over them. Streamed: the layers' id-ordered records are merged as they are
        read (a node from the newest layer that holds it), so a full layer's writer
        holds no map of the nodes the sparse layers changed."""
        newer = _newest(heapq.merge(*(_aged(age, e.image) for age, e in
                                      enumerate(self.entries[:-1]))))
        nxt = next(newer, None)
        for node_id, rec in self.entries[-1].image.raw_items():
            if nxt is not None and nxt[0] == node_id:
                rec = nxt[1]
                nxt = next(newer, None)
            yield node_id, rec
        while nxt is not None:  # created after the full image
            yield nxt
            nxt = next(newer, None)


def _aged(age: int, image: StateImage) -> Iterator[tuple[int, int, memoryview]]:
    """``image``'s records tagged with its ``age`` (0: the newest layer), to merge."""
    for node_id, rec in image.raw_items():
        yield node_id, age, rec


def _newest(merged: Iterator[tuple[int, int, memoryview]]) -> Iterator[tuple[int, memoryview]]:
    """Each node of ``merged`` (in (id, age) order) once: from its youngest layer."""
    last = 0  # node ids start at 1
    for node_id, _age, rec in merged:
        if node_id != last:
            last = node_id
            yield node_id, rec


def single(offset: int, seq: int, image: StateImage) -> LayerStack:
    """The stack of one full image (a checkpoint, the genesis, a full layer)."""
    return LayerStack([StackEntry(offset, seq, LAYER_LEVEL_FULL, image)])


def _sparse_records(merged: list[StackEntry],
                    own: dict[int, bytes]) -> list[tuple[int, bytes | memoryview]]:
    """The records of a sparse layer: the nodes of the ``merged`` layers (newest
    first) and its ``own`` (the changed nodes' records), each at its newest, in id
    order."""
    recs: dict[int, bytes | memoryview] = {}
    for e in reversed(merged):
        recs.update(e.image.raw_items())
    recs.update(own)
    return sorted(recs.items())


def _full_records(base: LayerStack | None, own: dict[int, bytes],
                  next_node_id: int) -> Iterator[tuple[int, bytes | memoryview]]:
    """The records of a full layer: ``own`` (the changed nodes') over ``base``'s."""
    if base is None:
        for node_id in range(1, next_node_id):
            yield node_id, own[node_id]  # without a base every node is changed
        return
    get = own.get
    for node_id, rec in base.records():
        yield node_id, get(node_id, rec)
    for node_id in range(base.next_node_id, next_node_id):
        yield node_id, own[node_id]


class NewRecords:
    """The records of the nodes created since the newest snapshot and not changed
    after (``Store.new_records``), copied from their CREATEs as the writer commits
    (:meth:`note`): the next layer takes them instead of encoding those nodes
    again. Every other changed node is encoded. A cache: dropping it costs only
    encoding (``settle`` drops it, on a discard too). Bounded by the layer
    policy, not by a constant of its own: a record is at most its CREATE's
    bytes, so it holds at most the commit bytes since the newest snapshot
    (policy.LAYER_BYTES, or the one commit that went past it), and the next
    layer empties it. (Patching a changed node's record in its encoded form
    instead of encoding it was measured: not faster in Python.)
    """

    __slots__ = ("created",)

    def __init__(self) -> None:
        self.created: dict[int, bytes] = {}

    def note(self, staged: list[Mutation], staged_at: list[int],
             mutation_bytes: bytearray) -> None:
        """Note a commit of ``staged``, the i-th encoded at ``staged_at[i]`` of
        ``mutation_bytes``."""
        if not staged:
            return
        created = self.created
        ends = staged_at[1:]
        ends.append(len(mutation_bytes))
        for m, at, end in zip(staged, staged_at, ends, strict=True):
            if type(m) is Create:
                created[m.node] = create_record(mutation_bytes, at, end)
            elif created:
                created.pop(m.node, None)

    def record(self, node_id: int, n: NodeState) -> bytes:
        """The record of changed node ``n`` (id ``node_id``)."""
        rec = self.created.get(node_id)
        return n.record() if rec is None else rec


def size_level(size: int, unit: int = LAYER_UNIT, fanout: int = LAYER_FANOUT) -> int:
    """The tier of a layer of ``size`` bytes: ``floor(log_fanout(size / unit))``, 0 for a
    layer under ``fanout`` units (§8.7 policy)."""
    level = 0
    while size >= unit * fanout:
        size //= fanout
        level += 1
    return level


def plan(base: LayerStack | None, new_size: int,
         fanout: int = LAYER_FANOUT) -> tuple[list[StackEntry], list[StackEntry], int]:
    """The size-tiered merge (§8.7): ``(merged, kept, level)`` — the layers the new
    one absorbs (newest first), those left under it (the base first), and its tier.

    ``new_size``: the bytes of the new layer's own nodes. While ``fanout - 1`` or
    more sparse layers on top of the stack are in the new layer's tier or below
    (by their sizes, :func:`size_level`), it absorbs them, and its tier is that of
    everything it holds. Layers of one tier are within a factor ``fanout`` in
    size, so each byte is rewritten about log_fanout(state / unit) times, and
    small layers never rewrite a large one until they add up to its size. The
    policy of the reference writer (informative)."""
    entries = list(base.entries) if base is not None else []
    merged: list[StackEntry] = []
    size = new_size
    while True:
        level = size_level(size)
        run = 0
        while run < len(entries) - 1 and size_level(entries[run].image.size) <= level:
            run += 1  # never the full image at the bottom (len - 1)
        if run < fanout - 1:
            return merged, entries, level
        merged += entries[:run]
        size += sum(e.image.size for e in entries[:run])
        del entries[:run]


def write_layer(store: Store) -> bool:
    """Append a layer of the writer ``store``'s committed state and rebase that state
    on it; False if a snapshot already covers it. Raises WriterFailedError.

    Cost: the bytes of the layers it merges plus the changed nodes; a full
    layer (when the sparse ones would outweigh the full image, FULL_LAYER_SHARE)
    costs the whole state, once per as many bytes of sparse layers. Memory: 16
    bytes a node for its tables and LAYER_WRITE_CHUNK: the records are measured
    first; a layer larger than a chunk is then streamed to the file in chunks,
    never held whole, and a smaller one built whole.
    """
    if store.head_seq == 0 or store.head_seq == store.travel.head.base_seq:
        return False
    committed = store.committed
    base = committed.base
    assert base is None or isinstance(base, LayerStack)
    record = store.new_records.record  # each changed node's record, made once
    own = {node_id: record(node_id, n) for node_id, n in committed.changed.items()}
    merged, kept, level = plan(base, sum(len(r) + 16 for r in own.values()) + 24)
    nni = committed.next_node_id
    sparse_records: list[tuple[int, bytes | memoryview]] | None = None
    if kept:
        sparse_records = _sparse_records(merged, own)
        layout = image_layout(nni, sparse_records)
        sparse = layout.length + sum(e.image.size for e in kept[:-1])
        if sparse * FULL_LAYER_SHARE >= kept[-1].image.size:
            sparse_records = None  # the sparse layers would outweigh the full one
    read = sum(e.image.size for e in merged)  # bytes the merge reads through the map
    if sparse_records is None:  # a full layer
        layout, kept, level = image_layout(nni, _full_records(base, own, nni)), [], \
            LAYER_LEVEL_FULL
        read = base.size if base is not None else 0
    under = kept[0] if kept else None
    # the records again, as image_layout measured them: a generator's twice
    records = _full_records(base, own, nni) if sparse_records is None else sparse_records
    # The frame goes at the log's valid end: the layer names its own offset (§8.7)
    head = (store.head_seq, store.head_id, under.offset if under else 0,
            under.seq if under else 0, level, store.log.valid_end)
    payload: bytes | LayerPayload
    if layout.length <= LAYER_WRITE_CHUNK:
        # Most layers: built whole and appended in one write, which costs less
        # than the pieces (no larger than one of them)
        payload = encode_layer(*head, encode_image(nni, records))
    else:
        payload = LayerPayload(*head, layout.length,
                               image_chunks(layout, records, LAYER_WRITE_CHUNK))
    return _append_layer(store, payload, kept, level, read)


def _append_layer(store: Store, payload: bytes | LayerPayload, kept: list[StackEntry],
                  level: int, read: int) -> bool:
    from myosotis.engine.checkpoints import append_snapshot, rebase_on

    work, j = append_snapshot(store, KIND_LAYER, payload)
    stack = store.snapshots.adopt_layer(j, store.head_seq, kept)
    rebase_on(store, work, stack)
    if read >= RESIDENT_DROP_BYTES:
        # The layers merged were read through the map (a full layer's, the
        # whole state); the state is settled, so this changes nothing but
        # the process's resident set.
        store.log.map.drop_resident()
    return True
