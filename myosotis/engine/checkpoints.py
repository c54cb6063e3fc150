"""Checkpoints and the genesis snapshot (FORMAT.md §8.2–§8.4): reading their images,
choosing the base a state is built on, and writing a checkpoint.

A checkpoint is a cache: one that fails its checks (R33, R80) is reported in
the store's ``problems`` and skipped, and the commits are the truth. The
genesis of a compacted file is the truth for the history it folded: one that
fails (R85) makes the file corrupt. When a checkpoint is written after a
commit is the policy's (engine/policy.py, staging.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from myosotis.engine.history import CommitIndex
from myosotis.engine.unsettled import REOPEN, Unsettled
from myosotis.errors import CorruptFileError, WriterFailedError, warn_caller
from myosotis.format.constants import FRAME_HEADER_SIZE, KIND_CHECKPOINT, SNAPSHOT_PREFIX_SIZE
from myosotis.format.image import StateImage, state_hash
from myosotis.format.records import encode_snapshot
from myosotis.storage.log import LogFile

if TYPE_CHECKING:
    from myosotis.engine.store import Store


class Snapshots:
    """The images of one log's checkpoint and genesis frames, checked once and cached."""

    def __init__(self, log: LogFile, commits: CommitIndex, problems: list[str]) -> None:
        """``problems``: where a skipped checkpoint is reported (the store's list)."""
        self.log = log
        self.commits = commits
        self.problems = problems
        self._images: dict[int, StateImage | None] = {}  # frame index -> usable image

    def image(self, j: int, seq: int | None = None) -> StateImage | None:
        """The image of checkpoint/genesis frame ``j`` if usable (R80, R85), else None;
        ``seq``: the commit a checkpoint follows (None for the genesis).

        A checkpoint that fails is reported in ``problems`` and skipped: it is
        a cache, the commits are the truth. A genesis that fails raises
        CorruptFileError. The result is cached per frame.
        """
        if j in self._images:
            return self._images[j]
        img: StateImage | None = None
        off = self.log.frame_offset(j)
        try:
            payload = self.log.payload(j)
            h = self.commits.snapshot_header(j)
            if seq is not None:  # a checkpoint: R33
                if seq == 0:
                    raise CorruptFileError("a checkpoint before the first commit (R33)", off)
                if h.seq != seq or h.commit_id != self.commits.commit_id(seq):
                    raise CorruptFileError(
                        f"checkpoint claims commit {h.seq} but follows commit {seq} (R33)", off)
            body = payload[SNAPSHOT_PREFIX_SIZE:]
            if state_hash(body) != h.state_hash:
                raise CorruptFileError("snapshot state hash does not match its image (R80)", off)
            img = StateImage(body, off + FRAME_HEADER_SIZE + SNAPSHOT_PREFIX_SIZE)
            img.check_tables()
        except CorruptFileError as e:
            if seq is None:
                raise
            msg = f"checkpoint at offset {off} skipped: {e.reason}"
            self.problems.append(msg)
            warn_caller(f"{self.log.path}: {msg}")
            img = None
        self._images[j] = img
        return img

    def base_at(self, seq: int) -> tuple[int, StateImage | None]:
        """The base of the state after commit ``seq``: the newest usable checkpoint at or
        before it, else the genesis, else the empty state (image None), as
        ``(its seq, its image)`` (FORMAT.md §8.4). Raises CorruptFileError when the
        genesis fails (R85)."""
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
        return base_seq, img

    def adopt(self, j: int) -> StateImage:
        """The image of checkpoint frame ``j``, which this writer has just appended
        (right by construction, so not checked again), cached."""
        img = StateImage(self.log.payload(j)[SNAPSHOT_PREFIX_SIZE:],
                         self.log.frame_offset(j) + FRAME_HEADER_SIZE + SNAPSHOT_PREFIX_SIZE)
        self._images[j] = img
        return img

    def clear(self) -> None:
        self._images.clear()


def write_checkpoint(store: Store) -> bool:
    """Append a checkpoint of the writer ``store``'s committed state and rebase that
    state on it; False if one already covers it. Raises WriterFailedError."""
    if store.head_seq == 0 or store.head_seq == store.travel.head.base_seq:
        return False
    image = store.committed.image()
    payload = encode_snapshot(store.head_seq, store.head_id, state_hash(image), image)
    if not store.durable:
        # The commits a checkpoint covers are made durable before it: it then
        # needs no FRAME_FLAG_UNSYNCED (§3), and a power cut never leaves a
        # checkpoint of commits that were lost.
        store.log.sync()
    work = store.work
    store.work = Unsettled("checkpoint()", REOPEN)  # until the rebase is done (unsettled.py)
    try:
        j = store.log.append(KIND_CHECKPOINT, payload, store.durable)
    except WriterFailedError:
        store.work = work  # the log is failed-stop; the state is unchanged
        raise
    store.commits.index_new_frames()
    img = store.snapshots.adopt(j)
    # Rebase on the new checkpoint, keeping decoded nodes as a cache.
    # Staged changes stay staged: the overlay's nodes are its own copies.
    store.committed = store.committed.rebased(img)
    work.parent = store.committed
    store.travel.new_head(store.head_seq, store.committed.next_node_id)
    store.bytes_since_checkpoint = 0
    store.last_image_size = len(image)
    store.work = work
    return True


def auto_checkpoint(store: Store) -> None:
    """The checkpoint the policy asks for after commit ``store.head_seq`` (which is
    durable and acknowledged whatever happens here).

    A failed checkpoint is reported in ``problems`` and as a warning, not
    raised: the handle is failed-stop and refuses the next commit.
    """
    try:
        store.checkpoint()
    except WriterFailedError as e:
        store.problems.append(f"automatic checkpoint failed: {e}")
        warn_caller(f"automatic checkpoint after commit {store.head_seq} failed: {e}")
