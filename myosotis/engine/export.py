"""The canonical JSON export (formatspec/EXPORT.md), written as a stream.

A state export is written node by node and a history export mutation by
mutation, each piece made and handed to ``out`` before the next is read, so
memory stays bounded by one node or mutation (and a block of the state hash's
offsets table, below), whatever the size of the state; nodes of the base image
are decoded from it in place, not kept. The bytes depend only on the state (and history): the
layout, key order and number forms are fixed by EXPORT.md §2.

The state hash at the end of a document (§9.2) is computed without building
the state image: a first pass over the node records hashes the offsets table
as it takes their lengths, a second feeds the records to BLAKE3 in order.
"""

from __future__ import annotations

import array
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from blake3 import blake3

from myosotis.engine.graph import GraphState
from myosotis.engine.loading import apply_commit
from myosotis.engine.store import Store
from myosotis.errors import CorruptFileError
from myosotis.format.constants import FRAME_HEADER_SIZE, IMAGE_PREFIX_STRUCT
from myosotis.format.jsonform import mutation_to_json, value_to_json
from myosotis.format.records import commit_id, iter_mutations
from myosotis.format.values import DecodeError

EXPORT_FORMAT = "myosotis-export"
EXPORT_VERSION = 1
Out = Callable[[str], None]
_CHUNK = 1 << 16  # ids per block hashed at a time


def dumps(x: Any) -> str:
    """One JSON value in the canonical layout (EXPORT.md §2): no spaces, UTF-8 text."""
    return json.dumps(x, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def state_at(store: Store, seq: int) -> GraphState:
    """The committed state after commit ``seq`` (which must resolve), holding decoded
    only the nodes changed since the checkpoint it starts from: the head's own
    state, or a replay from the newest usable checkpoint (or genesis) at or before
    ``seq``. Raises CorruptFileError."""
    if seq == store.head_seq:
        return store.committed
    base_seq, img = store.snapshots.base_at(seq)
    g = GraphState(img, cache_size=store.node_cache)
    parent = store.commits.commit_id(base_seq)
    for s in range(base_seq + 1, seq + 1):
        payload, h, off = store.commits.record(s, parent)
        apply_commit(g, s, payload, h, off, store.log.version)
        parent = commit_id(payload)
    return g


def _records(g: GraphState) -> Iterator[bytes | memoryview]:
    """The node records of ``g``'s image in id order; unchanged ones as raw bytes."""
    base, changed = g.base, g.changed
    for node_id in range(1, g.next_node_id):
        n = changed.get(node_id)
        if n is not None or base is None:
            assert n is not None  # dense ids: without a base every node is changed
            yield n.record()
        else:
            yield base.raw_record_of(node_id)


def hash_state(g: GraphState) -> bytes:
    """``state_hash`` (FORMAT.md §9.2) of ``g``, equal to BLAKE3 of ``g.image()``,
    in constant memory instead of the whole image: the image's tables come before
    its records, and the ids are 1..n (R73), so the offsets table is hashed as a
    first pass over the records takes their lengths (a block of _CHUNK at a time),
    and a second pass feeds the records themselves."""
    n = g.next_node_id - 1
    h = blake3()
    h.update(IMAGE_PREFIX_STRUCT.pack(g.next_node_id, n))
    for a in range(1, n + 1, _CHUNK):  # ids: 1..n (R73)
        h.update(_le(array.array("Q", range(a, min(a + _CHUNK, n + 1)))))
    ends = array.array("Q", [0])  # offsets[0] = 0
    total = 0
    for rec in _records(g):
        total += len(rec)
        ends.append(total)
        if len(ends) >= _CHUNK:
            h.update(_le(ends))
            ends = array.array("Q")
    h.update(_le(ends))
    for rec in _records(g):
        h.update(rec)
    return h.digest()


def _le(a: array.array[int]) -> bytes:
    if sys.byteorder != "little":
        a = array.array("Q", a)
        a.byteswap()
    return a.tobytes()


def _node_line(node_id: int, type_name: str, deleted: bool, f: dict[str, Any]) -> str:
    return dumps({"id": node_id, "type": type_name, "deleted": deleted,
                  "fields": {k: value_to_json(f[k]) for k in sorted(f)}})


def _write_nodes(g: GraphState, out: Out) -> None:
    """``[`` the nodes one per line ``]`` (EXPORT.md §2).

    Nodes not changed since the base image are decoded from it directly, by
    index (dense ids, R73) when it is one full image, else from the newest
    layer of its stack that holds them (FORMAT.md §8.7), without going through
    the state's cache: a scan would only churn it."""
    out("[")
    base, changed = g.base, g.changed
    # One full image: by index; a stack of layers: from the newest layer holding it.
    full = base.top.image if base is not None and len(base.entries) == 1 else None
    for node_id in range(1, g.next_node_id):
        n = changed.get(node_id)
        if n is not None or base is None:
            assert n is not None  # without a base every node is changed
            line = _node_line(node_id, n.type, n.deleted, n.fields)
        else:
            r = full.record(node_id - 1) if full is not None else base.get(node_id)
            assert r is not None  # 1 <= node_id < next_node_id
            line = _node_line(node_id, r.type, r.deleted, r.fields)
        out(("\n" if node_id == 1 else ",\n") + line)
    out("\n]")


def _head(store: Store, seq: int) -> str:
    cid = store.commits.commit_id(seq)
    return dumps({"seq": seq, "id": cid.hex() if seq else None})


def write_state(store: Store, seq: int, out: Out) -> None:
    """A state export (EXPORT.md §6) of the state after commit ``seq``."""
    g = state_at(store, seq)
    out(f'{{"format":"{EXPORT_FORMAT}","version":{EXPORT_VERSION},"kind":"state",'
        f'"at":{_head(store, seq)},"next_node_id":{g.next_node_id},"nodes":')
    _write_nodes(g, out)
    out(f',"state_hash":"{hash_state(g).hex()}"}}\n')


def _write_commit(store: Store, seq: int, parent: bytes, out: Out) -> bytes:
    """One commit's line (EXPORT.md §7); return its id. The mutations are decoded and
    written one at a time, so a commit of any size takes no more memory than its
    largest mutation."""
    payload, h, off = store.commits.record(seq, parent)
    cid = commit_id(payload)
    head = dumps({"seq": seq, "id": cid.hex(), "parent": parent.hex() if any(parent) else None,
                  "timestamp_us": h.timestamp_us, "label": h.label,
                  "next_node_id": h.next_node_id, "mutations": []})
    out(head[:-2])  # all but the closing "]}": the mutations go in between
    try:
        for i, m in enumerate(iter_mutations(payload, h.body)):
            out(("," if i else "") + dumps(mutation_to_json(m)))
    except DecodeError as e:
        raise CorruptFileError(f"commit {seq}: {e.reason}",
                               off + FRAME_HEADER_SIZE + (e.offset or 0)) from None
    out("]}")
    return cid


def write_history(store: Store, seq: int, out: Out) -> None:
    """A history export (EXPORT.md §7) of every commit up to ``seq``, from the
    file's genesis state when it has one (a compacted file)."""
    hist = store.commits
    hist.ensure_full()  # every commit, not only those after the newest layer (§10.1)
    base = hist.base_seq
    out(f'{{"format":"{EXPORT_FORMAT}","version":{EXPORT_VERSION},"kind":"history",'
        f'"genesis":')
    if hist.has_genesis:
        g = GraphState(store.snapshots.base_at(base)[1], cache_size=store.node_cache)
        out(f'{{"seq":{base},"id":{dumps(hist.commit_id(base).hex() if base else None)},'
            f'"next_node_id":{g.next_node_id},"nodes":')
        _write_nodes(g, out)
        out(f',"state_hash":"{hash_state(g).hex()}"}}')
    else:
        out("null")
    out(',"commits":[')
    parent = hist.commit_id(base)
    for s in range(base + 1, seq + 1):
        out("\n" if s == base + 1 else ",\n")
        parent = _write_commit(store, s, parent, out)
    out("\n]")
    g = state_at(store, seq)
    out(f',"head":{_head(store, seq)},"next_node_id":{g.next_node_id},'
        f'"state_hash":"{hash_state(g).hex()}"}}\n')


class BufferedOut:
    """Collects text and hands it to ``write`` in blocks of about 64 KiB."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self._write = write
        self._parts: list[str] = []
        self._size = 0

    def __call__(self, s: str) -> None:
        self._parts.append(s)
        self._size += len(s)
        if self._size >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            self._write("".join(self._parts))
            self._parts, self._size = [], 0
