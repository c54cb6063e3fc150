"""Checkpoints, layers and the genesis snapshot (FORMAT.md §8.2–§8.7): reading their images,
choosing the base a state is built on, and writing a checkpoint.

A checkpoint is a cache: one that fails its checks (R33, R80) is reported in
the store's ``problems`` and skipped, and the commits are the truth. The
genesis of a compacted file is the truth for the history it folded: one that
fails (R85) makes the file corrupt. When a checkpoint is written after a
commit is the policy's (engine/policy.py, staging.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from myosotis.engine.history import CommitIndex
from myosotis.engine.layers import LayerStack, NewRecords, StackEntry, single, write_layer
from myosotis.engine.policy import SNAPSHOT_CACHE
from myosotis.engine.unsettled import REOPEN, Unsettled
from myosotis.errors import CorruptFileError, WriterFailedError, warn_caller
from myosotis.format.constants import (
    FRAME_HEADER_SIZE,
    KIND_CHECKPOINT,
    KIND_COMMIT,
    KIND_GENESIS,
    KIND_LAYER,
    SNAPSHOT_PREFIX_SIZE,
)
from myosotis.format.image import StateImage, state_hash
from myosotis.format.layer import decode_layer_header, layer_image
from myosotis.format.records import decode_snapshot_header, encode_snapshot
from myosotis.format.values import DecodeError
from myosotis.storage.log import LogFile

if TYPE_CHECKING:
    from myosotis.engine.graph import Overlay
    from myosotis.engine.store import Store
    from myosotis.storage.append import StreamedPayload


class Snapshots:
    """The images of one log's checkpoint, genesis and layer frames, checked once and
    cached by frame offset, each as the :class:`LayerStack` a state is read from."""

    def __init__(self, log: LogFile, commits: CommitIndex, problems: list[str]) -> None:
        """``problems``: where a skipped checkpoint is reported (the store's list)."""
        self.log = log
        self.commits = commits
        self.problems = problems
        # frame offset -> usable stack (offsets, unlike frame indices, do not move
        # when the frames before a file's newest layer are indexed, §10.1), the
        # least recently used first
        self._images: OrderedDict[int, LayerStack | None] = OrderedDict()

    def image(self, j: int, seq: int | None = None) -> LayerStack | None:
        """The stack of checkpoint/genesis/layer frame ``j`` if usable (R80, R85, R88),
        else None; ``seq``: the commit a checkpoint follows (None for the genesis).

        A checkpoint that fails is reported in ``problems`` and skipped: it is
        a cache, the commits are the truth. A genesis that fails raises
        CorruptFileError. The result is cached per frame.
        """
        off = self.log.frame_offset(j)
        images = self._images
        if off in images:
            images.move_to_end(off)
            return images[off]
        img: LayerStack | None = None
        try:
            if seq == 0:
                raise CorruptFileError("a checkpoint before the first commit (R33)", off)
            if self.log.frames.kinds[j] == KIND_LAYER:
                assert seq is not None
                img = read_layer(self, off, self.log.payload_unchecked(j), seq)
            else:
                img = self._snapshot(self.log.payload(j), seq, off)
        except CorruptFileError as e:
            if seq is None:
                raise
            msg = f"checkpoint at offset {off} skipped: {e.reason}"
            self.problems.append(msg)
            warn_caller(f"{self.log.path}: {msg}")
            img = None
        self._keep(off, img)
        return img

    def _keep(self, off: int, stack: LayerStack | None) -> None:
        """Cache ``stack`` (None: not usable) for frame offset ``off``; the least recently
        used entry goes past policy.SNAPSHOT_CACHE (a stack in use is held by its
        state)."""
        images = self._images
        images[off] = stack
        while len(images) > SNAPSHOT_CACHE:  # while: an interrupt here cannot grow it
            images.popitem(last=False)

    def _snapshot(self, payload: memoryview, seq: int | None, off: int,
                  chained: bool = True) -> LayerStack:
        """A checkpoint's or the genesis' image, hashed whole (R80, R85); ``chained``:
        R33 is checked against the commit index (not for a base outside it, §10.1)."""
        try:
            h = decode_snapshot_header(payload)
        except DecodeError as e:
            raise CorruptFileError(e.reason, off + FRAME_HEADER_SIZE + (e.offset or 0)) from None
        if seq is not None and (h.seq != seq or chained and
                                h.commit_id != self.commits.commit_id(seq)):
            raise CorruptFileError(f"checkpoint claims commit {h.seq} but follows commit {seq} "
                                   "(R33)", off)
        body = payload[SNAPSHOT_PREFIX_SIZE:]
        if state_hash(body) != h.state_hash:
            raise CorruptFileError("snapshot state hash does not match its image (R80)", off)
        try:
            img = StateImage(body, off + FRAME_HEADER_SIZE + SNAPSHOT_PREFIX_SIZE)
            img.check_tables()
        except DecodeError as e:
            raise CorruptFileError(e.reason, e.offset) from None
        return single(off, h.seq, img)

    def base(self, off: int, seq: int, above: int) -> LayerStack:
        """The stack of the snapshot at frame offset ``off``, which a layer at ``above``
        names as its base of commit ``seq`` (R88). A base before the indexed frames
        (a file opened from its newest layer, §10.1) is read by its own header.
        Raises CorruptFileError."""
        log, commits = self.log, self.commits
        j = log.frame_index_at(off)
        if j is not None:
            if log.frames.kinds[j] == KIND_COMMIT or commits.snapshot_seq(j) != seq:
                raise CorruptFileError(f"layer names a base at offset {off} that is no "
                                       f"snapshot of commit {seq} (R88)", above)
            stack = self.image(j, None if j == 0 and commits.has_genesis else seq)
        elif off < log.index_from:
            stack = self._outside(off, seq)
        else:
            stack = None
        if stack is None:
            raise CorruptFileError(f"layer's base at offset {off} is not usable", above)
        return stack

    def _outside(self, off: int, seq: int) -> LayerStack | None:
        if off in self._images:
            self._images.move_to_end(off)
            return self._images[off]
        got = self.log.frame_header_at(off)
        if got is None:
            raise CorruptFileError("a layer's base is no frame (R88)", off)
        kind, payload = got
        if kind == KIND_LAYER:
            stack = read_layer(self, off, payload, seq, chained=False)
        elif kind in (KIND_CHECKPOINT, KIND_GENESIS):
            stack = self._snapshot(self.log.payload_at(off), seq, off, chained=False)
        else:
            raise CorruptFileError("a layer's base is a commit (R88)", off)
        self._keep(off, stack)
        return stack

    def base_at(self, seq: int) -> tuple[int, LayerStack | None]:
        """The base of the state after commit ``seq``: the newest usable checkpoint at or
        before it, else the genesis, else the empty state (None), as ``(its seq, its
        stack)`` (FORMAT.md §8.4). Raises CorruptFileError when the genesis fails (R85)."""
        commits = self.commits
        base_seq, img = commits.base_seq, None
        if commits.has_genesis:
            img = self.image(0)
            if img is None:
                raise CorruptFileError("the genesis snapshot fails its state hash (R85)",
                                       self.log.frame_offset(0))
        for cp_seq, j in commits.checkpoint_at_or_before(seq):
            cand = self.image(j, cp_seq)
            if cand is not None:
                return cp_seq, cand
        if commits.partial:
            # The newest layer, which a partial index starts at, failed: the
            # commits before it are needed (§10.1).
            commits.ensure_full()
            return self.base_at(seq)
        return base_seq, img

    def adopt(self, j: int, seq: int) -> LayerStack:
        """The image of checkpoint frame ``j``, which this writer has just appended
        (right by construction, so not checked again), cached."""
        off = self.log.frame_offset(j)
        img = StateImage(self.log.payload(j)[SNAPSHOT_PREFIX_SIZE:],
                         off + FRAME_HEADER_SIZE + SNAPSHOT_PREFIX_SIZE)
        stack = single(off, seq, img)
        self._keep(off, stack)
        return stack

    def adopt_layer(self, j: int, seq: int, kept: list[StackEntry]) -> LayerStack:
        """The stack of layer frame ``j`` that this writer has just appended over the
        ``kept`` entries, cached."""
        off = self.log.frame_offset(j)
        payload = self.log.payload(j)
        h = decode_layer_header(payload)
        entry = StackEntry(off, seq, h.level, layer_image(payload, h, off + FRAME_HEADER_SIZE))
        stack = LayerStack([entry, *kept])
        self._keep(off, stack)
        return stack

    def clear(self) -> None:
        self._images.clear()


def read_layer(snaps: Snapshots, off: int, payload: memoryview, seq: int,
               chained: bool = True) -> LayerStack:
    """The stack of the layer at frame offset ``off``, which follows commit ``seq``
    (§8.7): its head checked (R88), R33 (``chained``: against the commit index; a
    base outside it, §10.1, by its own head), its base usable and named right; its
    blocks are checked later, as they are read (R89). Raises CorruptFileError."""
    commits = snaps.commits
    try:
        h = decode_layer_header(payload)
    except DecodeError as e:
        raise CorruptFileError(e.reason, off + FRAME_HEADER_SIZE + (e.offset or 0)) from None
    if h.seq != seq or h.self_offset != off or \
            chained and h.commit_id != commits.commit_id(seq):
        raise CorruptFileError(f"layer of commit {h.seq} at offset {h.self_offset} found "
                               f"after commit {seq} at offset {off} (R33, R88)", off)
    try:
        img = layer_image(payload, h, off + FRAME_HEADER_SIZE)
    except DecodeError as e:
        raise CorruptFileError(e.reason, e.offset) from None
    if chained and seq > commits.base_seq and \
            img.next_node_id != commits.header(seq).next_node_id:
        raise CorruptFileError("layer's next_node_id is not its commit's (R88)", off)
    entry = StackEntry(off, seq, h.level, img)
    if h.full:
        return LayerStack([entry])
    return LayerStack([entry, *snaps.base(h.base_offset, h.base_seq, off).entries])


def append_snapshot(store: Store, kind: int,
                    payload: bytes | StreamedPayload) -> tuple[Overlay, int]:
    """The first step of writing a snapshot (a checkpoint or a layer): the commits a
    checkpoint covers made durable (not a layer's), the store unsettled until
    :func:`rebase_on`, the frame appended and indexed. Returns the store's overlay
    and the new frame's index. Raises WriterFailedError, the store then settled
    again on the state it had (the log is failed-stop)."""
    if not store.durable and not store.layered:
        # The commits a checkpoint covers are made durable before it: it then
        # needs no FRAME_FLAG_UNSYNCED (§3), and a power cut never leaves a
        # checkpoint of commits that were lost. A layer is not synced first
        # (one every 32 commits would cost durability "none" its speed): it
        # carries FRAME_FLAG_UNSYNCED, so a power cut that loses a commit
        # before it makes it part of the torn tail too (R29).
        store.log.sync()
    work = store.work
    # From here until rebase_on, an interrupt leaves the handle failed-stop: past
    # the append the snapshot is in the file but the state is not rebased on it.
    store.work = Unsettled("checkpoint()", REOPEN)
    try:
        j = store.log.append(kind, payload, store.durable)
    except WriterFailedError:
        store.work = work  # the log is failed-stop; the state is unchanged
        raise
    store.commits.index_new_frames()
    return work, j


def rebase_on(store: Store, work: Overlay, stack: LayerStack) -> None:
    """The last step of writing a snapshot: the committed state rebased on ``stack``
    (decoded nodes kept as a cache; staged changes stay staged: the overlay's
    nodes are its own copies), and the store settled."""
    store.committed = store.committed.rebased(stack)
    store.new_records = NewRecords()  # the changed nodes are in the snapshot now
    work.parent = store.committed
    store.travel.new_head(store.head_seq, store.committed.next_node_id)
    store.bytes_since_checkpoint = 0
    store.commits_since_checkpoint = 0
    store.last_image_size = stack.size
    store.work = work


def write_checkpoint(store: Store) -> bool:
    """Append a snapshot of the writer ``store``'s committed state and rebase that
    state on it; False if one already covers it. Raises WriterFailedError.

    A layer (§8.7) unless the store writes version-2 checkpoints (``layered``
    false: the image policy of §8.4, which the version-1/2 vectors pin)."""
    if store.layered:
        return write_layer(store)
    if store.head_seq == 0 or store.head_seq == store.travel.head.base_seq:
        return False
    image = store.committed.image()
    payload = encode_snapshot(store.head_seq, store.head_id, state_hash(image), image)
    work, j = append_snapshot(store, KIND_CHECKPOINT, payload)
    rebase_on(store, work, store.snapshots.adopt(j, store.head_seq))
    return True


def auto_checkpoint(store: Store) -> None:
    """The checkpoint the policy asks for after commit ``store.head_seq`` (which is
    durable and acknowledged whatever happens here).

    A failed checkpoint is reported in ``problems`` and as a warning, not
    raised: the handle is failed-stop and refuses the next commit.
    """
    try:
        if store.layered:
            # A layer comes every few commits: it does not flush the history
            # index as an explicit or version-2 checkpoint does (Store.checkpoint),
            # which would cost a commit an SQLite transaction every LAYER_COMMITS.
            write_checkpoint(store)
        else:
            store.checkpoint()
    except WriterFailedError as e:
        store.problems.append(f"automatic checkpoint failed: {e}")
        warn_caller(f"automatic checkpoint after commit {store.head_seq} failed: {e}")
