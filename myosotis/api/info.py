"""What ``Memory.info()`` and ``Memory.space()`` report about a file.

``info()`` answers from what the open memory knows (O(1) once the whole history is
indexed: a file opened from its newest layer walks the older frames once, FORMAT.md
§10.1); ``space()``
walks every frame header of the file (O(frames), no payload is read), the
way open does (FORMAT.md §10 steps 2–5).
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

from myosotis.engine.fork import Origin
from myosotis.engine.store import Store
from myosotis.format.constants import HEADER_SIZE, KIND_NAMES
from myosotis.format.helper import ScanStatus
from myosotis.format.walk import walk_file


@dataclass(frozen=True)
class MemoryInfo:
    """The shape of an open memory's file and history.

    ``base_seq`` is the compacted base: commits up to it were folded into the
    genesis snapshot (0: never compacted); ``commits`` counts the commit
    records after it. ``data_end`` is where the last frame ends; ``free_bytes``
    the zeroed free space a durable writer keeps after it (FORMAT.md §3).
    ``origin``: for a memory made by ``Memory.fork``, the commit of the source it
    was forked from (FORMAT.md §8.6); None otherwise.
    """

    path: str
    format_version: int
    file_size: int
    data_end: int
    free_bytes: int
    head_seq: int
    base_seq: int
    commits: int
    checkpoints: int
    has_genesis: bool
    next_node_id: int
    readonly: bool
    origin: Origin | None = None


def memory_info(store: Store, path: str) -> MemoryInfo:
    log, hist = store.log, store.commits
    hist.ensure_full()  # the counts cover the whole history (FORMAT.md §10.1)
    return MemoryInfo(
        path=path, format_version=log.version, file_size=log.size, data_end=log.valid_end,
        free_bytes=log.free_bytes,
        head_seq=store.head_seq, base_seq=hist.base_seq,
        commits=store.head_seq - hist.base_seq, checkpoints=len(hist.checkpoints),
        has_genesis=hist.has_genesis, next_node_id=store.state.next_node_id,
        readonly=store.readonly, origin=None if hist.origin is None else Origin.of(hist.origin))


@dataclass(frozen=True)
class SpaceUsage:
    """Where the bytes of a file go (FORMAT.md §2, §3, §10).

    ``kinds`` maps each record kind's name to ``(frames, bytes)``, frame
    headers and padding included, kinds never seen included with zeros.
    ``torn_tail`` is the length of a torn tail a writer would cut, and
    ``free`` the length of the zeroed free space after the last frame.
    """

    file_size: int
    header: int
    kinds: dict[str, tuple[int, int]]
    torn_tail: int
    free: int


def space_usage(path: str) -> SpaceUsage:
    """Walk the frame headers of the file at ``path`` (see :class:`SpaceUsage`)."""
    kinds: dict[str, tuple[int, int]] = {name: (0, 0) for name in KIND_NAMES.values()}
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= HEADER_SIZE:
            return SpaceUsage(size, min(size, HEADER_SIZE), kinds, 0, 0)
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
            found = walk_file(mm)  # §10 steps 2-5, as open does it
            offsets, kinds_seen, valid_end = list(found.offsets), found.kinds, found.end
    ends = [*offsets[1:], valid_end]
    for off, kind, end in zip(offsets, kinds_seen, ends, strict=True):
        name = KIND_NAMES.get(kind, str(kind))
        n, b = kinds.get(name, (0, 0))
        kinds[name] = (n + 1, b + end - off)
    tail = size - valid_end
    if found.status == ScanStatus.FREE:
        return SpaceUsage(size, HEADER_SIZE, kinds, 0, tail)
    return SpaceUsage(size, HEADER_SIZE, kinds, tail, 0)
