"""Prefix compaction (FORMAT.md §8.3, §8.5): fold history up to a commit into a genesis snapshot.

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

from myosotis.engine.chain import rewritten_version
from myosotis.engine.store import Store
from myosotis.engine.unsettled import REOPEN, Unsettled
from myosotis.errors import MyosotisError, WriterFailedError
from myosotis.format.constants import (
    FRAME_HEADER_SIZE,
    FRAME_HEADER_STRUCT,
    KIND_CHECKPOINT,
    KIND_GENESIS,
    KIND_LAYER,
    KIND_ORIGIN,
    VERSION_LAYERS,
)
from myosotis.format.header import encode_file_header, encode_frame, padding, without_flags
from myosotis.format.image import state_hash
from myosotis.format.records import encode_snapshot
from myosotis.storage.rewrite import write_atomically


@dataclass(frozen=True)
class CompactResult:
    """What :func:`compact` did (or, with ``dry_run``, would do): sizes in bytes, the new
    base, the (unchanged) state hash, and the commits folded into the genesis,
    ``folded_from .. base_seq`` (none when ``folded_from > base_seq``)."""

    bytes_before: int
    bytes_after: int
    base_seq: int
    state_hash: str
    folded_from: int = 0
    dry_run: bool = False

    @property
    def folded(self) -> range:
        """The seqs of the commits folded (empty when nothing was)."""
        return range(max(self.folded_from, 1), self.base_seq + 1)

    @property
    def bytes_reclaimed(self) -> int:
        return self.bytes_before - self.bytes_after


def compacted_bytes(store: Store, base: int) -> bytes:
    """The bytes of ``store``'s file with history up to commit ``base`` folded."""
    hist, log = store.commits, store.log
    image = store.state_at(base).whole().image()
    genesis = encode_snapshot(base, hist.commit_id(base), state_hash(image), image)
    version = compacted_version(store)
    parts = [encode_file_header(version), encode_frame(KIND_GENESIS, genesis)]
    if hist.origin is not None:  # the provenance stays right after the genesis (R34)
        parts.append(without_flags(_frame_bytes(store, 1)))
    first = hist.frame_of(base + 1) if base < store.head_seq else len(log.frames)
    # Checkpoints right after commit ``base`` (before commit base+1) are
    # redundant with the genesis; from commit base+1 on, frames are copied
    # verbatim, except checkpoints that are not usable (they are a cache), and
    # without FRAME_FLAG_UNSYNCED: the new file is written whole and synced, so
    # no frame needs the flag (§3, §12).
    # Layers are dropped whole: each names its base by its offset, which moves
    # (§8.5); the writer writes new ones as it commits.
    usable = {j for seq, j in hist.checkpoints
              if log.frames.kinds[j] == KIND_CHECKPOINT and
              store.snapshots.image(j, seq) is not None}
    for i in range(first, len(log.frames)):
        kind = log.frames.kinds[i]
        if kind in (KIND_LAYER, KIND_ORIGIN) or kind == KIND_CHECKPOINT and i not in usable:
            continue
        parts.append(without_flags(_frame_bytes(store, i)))
    return b"".join(parts)


def compacted_version(store: Store) -> int:
    """The format_version of ``store``'s file compacted (chain.rewritten_version):
    never 4, as layers are dropped (§8.5, §12)."""
    log, hist = store.log, store.commits
    if log.version >= VERSION_LAYERS:
        hist.ensure_full()
    return rewritten_version(log.version, hist.origin is not None,
                             (hist.commit_payload(seq)
                              for seq in range(hist.base_seq + 1, hist.head_seq + 1)))


def _frame_bytes(store: Store, i: int) -> bytes:
    """The whole frame ``i`` of ``store``'s file (header, payload, padding)."""
    log = store.log
    off = log.frame_offset(i)
    n = FRAME_HEADER_STRUCT.unpack_from(log.map.view(off, off + FRAME_HEADER_SIZE))[0]
    return bytes(log.map.view(off, off + FRAME_HEADER_SIZE + n + padding(n)))


def compact(store: Store, base: int, dry_run: bool = False) -> CompactResult:
    """Compact ``store``'s file at commit ``base`` and reopen it; the store must be
    the writer with nothing staged. ``dry_run``: build the new bytes only, to report
    their size; the file and the store are not touched."""
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
    folded_from = store.commits.base_seq + 1
    if dry_run:
        return CompactResult(before, len(data), base, store.state_hash().hex(), folded_from,
                             True)
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
    return CompactResult(before, len(data), base, store.state_hash().hex(), folded_from)
