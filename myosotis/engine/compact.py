"""Prefix compaction (FORMAT.md §8.3): fold history up to a commit into a genesis snapshot.

The new file is: the file header, one GENESIS frame holding the state after
commit ``base`` (with that commit's seq and id), then every later frame of
the old file copied byte for byte, except checkpoints that the genesis makes
redundant (seq <= base). Commit ids are unchanged, so the hash chain goes on
from the genesis (R32) and the latest state is identical. The output depends
only on the old file's bytes and ``base``: compaction is deterministic.

The rewrite is atomic (temp file, fsync, rename, directory fsync): a crash
leaves the old file or the new one, whole. Readers that have the old file
open keep reading the old inode. The new file takes the old one's mode, and
the writer locks its inode before the rename (storage/lock.py). Other hard
links of the old file keep the old file: they are a separate file from then on.
"""

from __future__ import annotations

from dataclasses import dataclass

from myosotis.engine.store import Store
from myosotis.engine.unsettled import REOPEN, Unsettled
from myosotis.errors import MyosotisError, WriterFailedError
from myosotis.format.constants import (
    FRAME_HEADER_SIZE,
    FRAME_HEADER_STRUCT,
    KIND_CHECKPOINT,
    KIND_GENESIS,
    KIND_LAYER,
)
from myosotis.format.header import encode_file_header, encode_frame, padding, without_flags
from myosotis.format.image import state_hash
from myosotis.format.records import encode_snapshot
from myosotis.storage.rewrite import write_atomically


@dataclass(frozen=True)
class CompactResult:
    """What :func:`compact` did: sizes in bytes, the new base, the (unchanged) state hash."""

    bytes_before: int
    bytes_after: int
    base_seq: int
    state_hash: str


def compacted_bytes(store: Store, base: int) -> bytes:
    """The bytes of ``store``'s file with history up to commit ``base`` folded."""
    hist, log = store.commits, store.log
    image = store.state_at(base).whole().image()
    genesis = encode_snapshot(base, hist.commit_id(base), state_hash(image), image)
    parts = [encode_file_header(), encode_frame(KIND_GENESIS, genesis)]
    first = hist.frame_of(base + 1) if base < store.head_seq else len(log.frames)
    # Checkpoints right after commit ``base`` (before commit base+1) are
    # redundant with the genesis; from commit base+1 on, frames are copied
    # verbatim, except checkpoints that are not usable (they are a cache), and
    # without FRAME_FLAG_UNSYNCED: the new file is written whole and synced, so
    # it is a version-1 file (§3, §12).
    # Layers are dropped whole: each names its base by its offset, which moves
    # (§8.5); the writer writes new ones as it commits.
    usable = {j for seq, j in hist.checkpoints
              if log.frames.kinds[j] == KIND_CHECKPOINT and
              store.snapshots.image(j, seq) is not None}
    for i in range(first, len(log.frames)):
        kind = log.frames.kinds[i]
        if kind == KIND_LAYER or kind == KIND_CHECKPOINT and i not in usable:
            continue
        off = log.frame_offset(i)
        n = FRAME_HEADER_STRUCT.unpack_from(log.map.view(off, off + FRAME_HEADER_SIZE))[0]
        end = off + FRAME_HEADER_SIZE + n + padding(n)
        parts.append(without_flags(bytes(log.map.view(off, end))))
    return b"".join(parts)


def compact(store: Store, base: int) -> CompactResult:
    """Compact ``store``'s file at commit ``base`` and reopen it; the store must be
    the writer with nothing staged."""
    if store.log.failed:
        # A frame may be whole in the file but not indexed (a failed fsync):
        # compacting from the index would drop it. Only a reopen can tell.
        raise WriterFailedError(
            f"{store.log.path}: an earlier write failed ({store.log.failed}); close and reopen "
            "the file before compacting it")
    store.commits.ensure_full()  # every frame is read below (FORMAT.md §10.1)
    before = store.log.valid_end
    # Every commit frame is checked (R26) before its history is folded or
    # copied: damage must be reported, not compacted away or carried over.
    for i in range(len(store.log.frames)):
        if store.log.frames.kinds[i] not in (KIND_CHECKPOINT, KIND_LAYER):
            store.log.payload(i)
    data = compacted_bytes(store, base)
    # The rename inside write_atomically is the point of no return: from here
    # until reopen() settles, an interrupted compaction leaves the handle
    # refusing further use (engine/unsettled.py).
    work = store.work
    store.work = Unsettled("compact()", REOPEN)
    try:
        write_atomically(store.log.path, data, store.log.fileops, store.log.writer_lock)
    except MyosotisError:
        store.work = work  # the file is unchanged (write_atomically says so)
        raise
    store.reopen(synced=True)
    return CompactResult(before, len(data), base, store.state_hash().hex())
