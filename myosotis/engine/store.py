"""The engine: one data file's committed state, staged changes, commits,
checkpoints, replay and historical states.

A :class:`Store` is used by one thread at a time. It is the writer when
opened writable (holding the writer lock), else a reader that sees the
committed prefix at open time and moves forward on :meth:`refresh`.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from myosotis.engine.chain import (
    check_next_node_id,
    commit_header,
    commit_mutations,
)
from myosotis.engine.graph import GraphState, Overlay
from myosotis.engine.history import Commit, History, make_commit
from myosotis.engine.segments import HistoricalState, Segment
from myosotis.engine.unsettled import (
    DISCARD,
    REFRESH,
    REOPEN,
    Unsettled,
    check_settled,
    is_unsettled,
    remedy_of,
)
from myosotis.errors import (
    CommitNotFoundError,
    CorruptFileError,
    MyosotisError,
    ReadOnlyError,
    RecoveredTailWarning,
    WriterFailedError,
)
from myosotis.format.constants import (
    CHECKPOINT_FLOOR,
    FRAME_HEADER_SIZE,
    KIND_CHECKPOINT,
    KIND_COMMIT,
    SNAPSHOT_PREFIX_SIZE,
)
from myosotis.format.image import StateImage, state_hash
from myosotis.format.mutations import Create, Mutation
from myosotis.format.records import (
    CommitHeader,
    commit_id,
    decode_commit_header,
    decode_mutations,
    encode_commit,
    encode_snapshot,
    iter_mutations,
)
from myosotis.format.values import DecodeError
from myosotis.storage.fileops import REAL, FileOps
from myosotis.storage.log import LogFile

Durability = Literal["full", "none"]
Clock = Callable[[], int]


def system_clock() -> int:
    """Microseconds since the Unix epoch, UTC."""
    return time.time_ns() // 1000


_SEGMENT_CACHE = 4

# The stand-ins of the operations that run on every commit or edit (they hold no
# state, so one of each serves every store; see unsettled.py).
_COMMITTING = Unsettled("commit()", REOPEN)
_STAGING = Unsettled("staging a change", DISCARD)
_REFRESHING = Unsettled("refresh()", REFRESH)


class Store:
    """See the module docstring. Create with :meth:`open`."""

    def __init__(self, log: LogFile, durability: Durability, clock: Clock,
                 checkpoint_floor: int) -> None:
        if durability not in ("full", "none"):
            raise MyosotisError(f"durability must be 'full' or 'none', not {durability!r}")
        self.log = log
        self.durable = durability == "full"
        self.clock = clock
        self.checkpoint_floor = checkpoint_floor
        self.problems: list[str] = []  # non-fatal findings (skipped checkpoints, ...)
        self._images: dict[int, StateImage | None] = {}  # checkpoint frame -> usable image
        self._segments: OrderedDict[int, Segment] = OrderedDict()
        for off, n, kept in log.recovered:
            msg = (f"cut a torn tail of {n} bytes at offset {off} (a crash mid-commit); "
                   f"its bytes are kept in {kept}")
            self.problems.append(msg)
            warnings.warn(f"{log.path}: {msg}", RecoveredTailWarning, stacklevel=4)
        # The staged state, or an Unsettled stand-in while an operation runs
        # (unsettled.py); _load() settles it.
        self.work: Overlay = Unsettled("opening the file", REOPEN)
        self._load()

    @classmethod
    def open(cls, path: str, *, readonly: bool = False, durability: Durability = "full",
             clock: Clock = system_clock, fileops: FileOps = REAL, lock_timeout: float = 0.0,
             checkpoint_floor: int = CHECKPOINT_FLOOR, create: bool = True) -> Store:
        log = LogFile.open(path, readonly=readonly, create=create, fileops=fileops,
                           lock_timeout=lock_timeout)
        try:
            return cls(log, durability, clock, checkpoint_floor)
        except BaseException:
            log.close()
            raise

    @property
    def readonly(self) -> bool:
        return self.log.readonly

    # ------------------------------------------------------------------ loading

    def reopen(self, synced: bool = False) -> None:
        """Read the file at this path again from scratch (after compaction or repair,
        which wrote it whole and synced it: ``synced``), keeping the writer lock.
        Staged changes are dropped.

        Interrupted, it leaves the store unsettled (a reader's next refresh
        reopens again; a writer must be closed and reopened).
        """
        self.work = Unsettled("reopening the file", REFRESH if self.readonly else REOPEN)
        self.log.reopen(synced)
        self._images.clear()
        self._segments.clear()
        self.problems.clear()
        self._load()

    def _load(self) -> None:
        """Find the newest usable checkpoint and replay the commits after it (§10 step 7)."""
        self.history = hist = History(self.log)
        base_img: StateImage | None = None
        base_seq = hist.base_seq
        if hist.has_genesis:
            base_img = self.snapshot_image(0)
            if base_img is None:
                raise CorruptFileError("the genesis snapshot fails its state hash (R85)",
                                       self.log.frame_offset(0))
        for seq, j in reversed(hist.checkpoints):
            img = self.snapshot_image(j, seq)
            if img is not None:
                base_img, base_seq = img, seq
                break
        self.committed = GraphState(base_img)
        self.head_seq = base_seq
        self.head_id = hist.commit_id(base_seq)
        # The head segment (time travel after the base) is decoded lazily, on
        # the first read of a past commit: replay does not keep its mutations,
        # so opening costs memory for the state only.
        self.segment = Segment(base_seq, self.committed.next_node_id)
        self._segments[base_seq] = self.segment
        self.bytes_since_checkpoint = 0
        self.last_image_size = base_img.size if base_img is not None else 0
        self._replay_to(hist.head_seq)
        self._settle()

    def snapshot_image(self, j: int, seq: int | None = None) -> StateImage | None:
        """The image of checkpoint/genesis frame ``j`` if usable (R80, R85), else None.

        A checkpoint that fails is reported in ``problems`` and skipped: it is
        a cache, the commits are the truth. The result is cached per frame.
        """
        if j in self._images:
            return self._images[j]
        img: StateImage | None = None
        off = self.log.frame_offset(j)
        try:
            payload = self.log.payload(j)
            h = self.history.snapshot_header(j)
            if seq is not None:  # a checkpoint: R33
                if seq == 0:
                    raise CorruptFileError("a checkpoint before the first commit (R33)", off)
                if h.seq != seq or h.commit_id != self.history.commit_id(seq):
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
            warnings.warn(f"{self.log.path}: {msg}", stacklevel=3)
            img = None
        self._images[j] = img
        return img

    def _commit_record(self, seq: int, parent: bytes) -> tuple[memoryview, CommitHeader, int]:
        """Commit ``seq``'s payload and header, checked for R26, R31 and R32.

        Returns ``(payload, header, frame offset)``.
        """
        j = self.history.frame_of(seq)
        off = self.log.frame_offset(j)
        payload = self.log.payload(j)
        return payload, commit_header(payload, seq, parent, off), off

    def _decode_commit(self, seq: int,
                       parent: bytes) -> tuple[bytes, list[Mutation], CommitHeader, int]:
        """Commit ``seq`` decoded whole (R26, R31, R32, R61).

        Returns ``(id, mutations, header, frame offset)``.
        """
        payload, h, off = self._commit_record(seq, parent)
        muts = commit_mutations(payload, h, seq, off)
        cid = commit_id(payload)
        self.history.remember_id(seq, cid)
        return cid, muts, h, off

    def _replay_to(self, target: int) -> None:
        """Apply commits ``head_seq+1 .. target`` to the committed state, checking every rule."""
        state = self.committed
        for seq in range(self.head_seq + 1, target + 1):
            payload, h, off = self._commit_record(seq, self.head_id)
            # Mutations are applied as they are decoded and kept nowhere else
            # (the state owns their values), so replay holds no decoded copy
            # of the history. A failure leaves the state half-applied: the
            # caller must drop this Store (open fails; refresh closes it).
            try:
                for m in iter_mutations(payload, h.body):
                    try:
                        m.apply(state)
                    except DecodeError as e:
                        # Not this commit's bytes: a node record of the checkpoint
                        # the state is based on, whose hash was right (§8.4). Its
                        # offset is the record's own, in the file.
                        raise CorruptFileError(f"a node record of the checkpoint that commit "
                                               f"{seq} applies to: {e.reason} (§8.4)",
                                               e.offset) from None
            except DecodeError as e:
                raise CorruptFileError(f"commit {seq}: {e.reason}",
                                       off + FRAME_HEADER_SIZE + (e.offset or 0)) from None
            except CorruptFileError:
                raise
            except MyosotisError as e:
                raise CorruptFileError(f"commit {seq} breaks a rule of §6: {e}", off) from None
            check_next_node_id(h, seq, state.next_node_id, off)
            cid = commit_id(payload)
            self.history.remember_id(seq, cid)
            self.head_seq, self.head_id = seq, cid
            self.bytes_since_checkpoint += len(payload)

    # ------------------------------------------------------------------ staging

    def _settle(self) -> None:
        """Nothing staged over the committed state; the last step of every operation
        that replaced ``committed`` (see unsettled.py)."""
        self._pending = bytearray()
        self.pending_count = 0  # mutations encoded in _pending
        self.work = Overlay(self.committed)

    def _require_writer(self) -> None:
        if self.log.readonly:
            raise ReadOnlyError(f"{self.log.path} is open read-only; open it without "
                                "readonly=True to change it")
        check_settled(self.work)

    def stage(self, m: Mutation) -> None:
        """Validate ``m`` and add it to the uncommitted changes, or raise and change nothing.

        ``m``'s value is handed over to the staged state: the caller must not
        keep or change it.
        """
        if self.log.readonly:
            self._require_writer()  # raises
        work = self.work
        # Refused here, not only by the stand-in's attributes: an interrupt inside
        # _stage_into would otherwise replace a stronger stand-in (an interrupted
        # commit's) by the one discard() settles. (Inline: the hot path.)
        if type(work) is Unsettled:
            work.fail()
        self._stage_into(work, m)

    def stage_all(self, ms: list[Mutation]) -> None:
        """Stage every mutation of ``ms`` as one edit.

        The caller has checked the batch against the same rules (the API does
        it on a scratch copy), so each stages. Were one refused part way, or an
        interrupt to arrive between two, the earlier ones could not be taken
        back: the store is unsettled for the whole batch and stays so until
        ``discard()`` (unsettled.py), never half-edited in silence.
        """
        if self.log.readonly:
            self._require_writer()  # raises
        work = self.work
        check_settled(work)
        self.work = _STAGING
        for m in ms:
            self._stage_into(work, m)
        self.work = work

    def _stage_into(self, work: Overlay, m: Mutation) -> None:
        buf = self._pending
        mark = len(buf)
        try:
            m.put(buf)  # limits and types (InvalidValueError)
            m.apply(work)  # graph rules (R50–R53)
            # Inside the try: the count must move with the buffer, or the
            # commit record's count would disagree with its mutations (R61).
            self.pending_count += 1
        except MyosotisError:
            # apply() checks every rule before it changes anything, so a
            # rejected mutation leaves the overlay as it was; drop its bytes.
            del buf[mark:]
            raise
        except BaseException:
            # An interrupt may have left the overlay, the buffer and the count
            # out of step: refuse to use them until discard() (unsettled.py).
            if not is_unsettled(self.work):  # never weaken another operation's stand-in
                self.work = _STAGING
            raise

    @property
    def state(self) -> GraphState | Overlay:
        """The state reads should see: committed plus staged changes."""
        return self.work

    def discard(self) -> int:
        """Drop staged changes; return how many mutations were dropped.

        Also settles a store whose staging was interrupted; raises
        InterruptedOperationError when a commit or refresh was (discarding
        cannot tell what those left in the file).
        """
        work = self.work
        if remedy_of(work) not in (None, DISCARD):
            check_settled(work)
        n = self.pending_count
        self._settle()
        return n

    # ------------------------------------------------------------------ committing

    def commit(self, label: str | None = None, allow_empty: bool = False) -> Commit | None:
        """Write staged changes as one commit; return it.

        With nothing staged, writes nothing and returns ``None`` unless
        ``allow_empty``. Returns only once the commit is durable (durability
        "full"). On failure raises (WriterFailedError, InvalidValueError for a
        bad label) and the staged changes stay staged.
        """
        self._require_writer()
        if not self.pending_count and not allow_empty:
            return None
        work = self.work
        seq, parent = self.head_seq + 1, self.head_id
        ts = int(self.clock())
        payload = encode_commit(seq, ts, parent, work.next_node_id, label or "",
                                self.pending_count, self._pending)
        cid = commit_id(payload)
        # From here until ``self.work = work`` below, an exception of any kind
        # leaves the handle failed-stop (unsettled.py): after the append the
        # commit is in the file, and a retry must not append it a second time.
        self.work = _COMMITTING
        try:
            self.log.append(KIND_COMMIT, payload, self.durable)  # the point of no return
        except WriterFailedError:
            # The log refuses every later append itself; the staged changes stay
            # readable (and are not committed by this handle).
            self.work = work
            raise
        self.history.index_new_frames()
        self.history.remember_id(seq, cid)
        work.merge_into_parent()
        # The time-travel segment is not fed here: it decodes new commits from
        # the file when a past state is read (Store.segment_for).
        self.head_seq, self.head_id = seq, cid
        self._pending = bytearray()  # the overlay was emptied by merge_into_parent
        self.pending_count = 0
        self.bytes_since_checkpoint += len(payload)
        self.work = work  # settled: the commit is the committed state
        if self.bytes_since_checkpoint >= max(self.checkpoint_floor, self.last_image_size):
            try:
                self.checkpoint()
            except WriterFailedError as e:
                # The commit is durable and stays acknowledged; the handle is
                # now failed-stop and refuses the next commit.
                self.problems.append(f"automatic checkpoint failed: {e}")
                warnings.warn(f"automatic checkpoint after commit {seq} failed: {e}",
                              stacklevel=2)
        return make_commit(seq, cid, ts, label or "", parent, self.committed.next_node_id)

    def checkpoint(self) -> bool:
        """Append a checkpoint of the committed state; False if one already covers it."""
        self._require_writer()
        if self.head_seq == 0 or self.head_seq == self.segment.base_seq:
            return False
        image = self.committed.image()
        payload = encode_snapshot(self.head_seq, self.head_id, state_hash(image), image)
        if not self.durable:
            # The commits a checkpoint covers are made durable before it: it then
            # needs no FRAME_FLAG_UNSYNCED (§3), and a power cut never leaves a
            # checkpoint of commits that were lost.
            self.log.sync()
        work = self.work
        self.work = Unsettled("checkpoint()", REOPEN)  # until the rebase is done (unsettled.py)
        try:
            j = self.log.append(KIND_CHECKPOINT, payload, self.durable)
        except WriterFailedError:
            self.work = work  # the log is failed-stop; the state is unchanged
            raise
        self.history.index_new_frames()
        img = StateImage(self.log.payload(j)[SNAPSHOT_PREFIX_SIZE:],
                         self.log.frame_offset(j) + FRAME_HEADER_SIZE + SNAPSHOT_PREFIX_SIZE)
        self._images[j] = img
        # Rebase on the new checkpoint, keeping decoded nodes as a cache.
        # Staged changes stay staged: the overlay's nodes are its own copies.
        self.committed = self.committed.rebased(img)
        work.parent = self.committed
        self.segment = Segment(self.head_seq, self.committed.next_node_id)
        self._remember_segment(self.segment)
        self.bytes_since_checkpoint = 0
        self.last_image_size = len(image)
        self.work = work
        return True

    def state_hash(self, staged: bool = True) -> bytes:
        """State hash (§9.2) of the committed state, plus the staged changes if ``staged``."""
        state = self.committed
        if staged and self.work.dirty:
            state = GraphState(self.committed.base, dict(self.committed.nodes))
            state.dirty = set(self.committed.dirty)
            state.merge(self.work.nodes, self.work.next_node_id)
        return state_hash(state.image())

    def sync(self) -> None:
        """Make every commit so far durable (useful with durability "none")."""
        self.log.sync()

    # ------------------------------------------------------------------ readers

    def refresh(self) -> int:
        """Reader: move to the newest commit in the file; return how many commits were added.

        If the file was replaced (compaction), it is reopened. A writer is
        always current, so this returns 0 for it.
        """
        if not self.log.readonly:
            return 0
        try:
            same = os.stat(self.log.path).st_ino == self.log.inode
        except FileNotFoundError:
            same = True
        before = self.head_seq
        if not same or is_unsettled(self.work):
            # Replaced by compaction, or an earlier refresh was interrupted
            # half-way (its log, history and state may be out of step): read
            # the file again from scratch.
            self.reopen()
            return max(0, self.head_seq - before)
        # Replay changes the committed state in place, one mutation at a time:
        # until it is done, the state is one that never existed (unsettled.py).
        self.work = _REFRESHING
        if self.log.refresh():
            self.history.index_new_frames()
            self._replay_to(self.history.head_seq)
        self._settle()
        return self.head_seq - before

    # ------------------------------------------------------------------ history

    def resolve(self, seq: int) -> int:
        # seq 0 names the empty state before the first commit (while not compacted)
        if not self.history.base_seq <= seq <= self.head_seq:
            if 0 <= seq < self.history.base_seq:
                raise CommitNotFoundError(
                    f"commit {seq} was folded into the genesis snapshot by compaction; the "
                    f"oldest commit left is {self.history.base_seq}")
            raise CommitNotFoundError(
                f"no commit {seq}; commits run from {max(1, self.history.base_seq)} to "
                f"{self.head_seq}")
        return seq

    def _remember_segment(self, seg: Segment) -> None:
        self._segments[seg.base_seq] = seg
        self._segments.move_to_end(seg.base_seq)
        while len(self._segments) > _SEGMENT_CACHE:
            oldest = next(iter(self._segments))
            if self._segments[oldest] is self.segment:
                self._segments.move_to_end(oldest)
                continue
            del self._segments[oldest]

    def segment_for(self, seq: int) -> tuple[Segment, StateImage | None]:
        """The segment whose base is the newest usable snapshot at or before ``seq``,
        decoded at least up to ``seq``, and that base's image."""
        hist = self.history
        base_seq, img = hist.base_seq, None
        if hist.has_genesis:
            img = self.snapshot_image(0)
        for cp_seq, j in hist.checkpoint_at_or_before(seq):
            cand = self.snapshot_image(j, cp_seq)
            if cand is not None:
                base_seq, img = cp_seq, cand
                break
        seg = self._segments.get(base_seq)
        if seg is None:
            seg = Segment(base_seq, img.next_node_id if img is not None else 1)
        self._remember_segment(seg)
        if seg.upto < seq:
            self._extend(seg, seq)
            if seq < self.head_seq:
                self._check_link(seq)
        return seg, img

    def _check_link(self, seq: int) -> None:
        """R32 between commit ``seq`` and the next one, if that frame is intact.

        The parent link of commit seq+1 is what vouches for commit ``seq`` when
        it is read for time travel (FORMAT.md §10 step 8). A damaged next frame
        is not an error here: it raises when it is read itself.
        """
        try:
            h = self.history.header(seq + 1)
        except CorruptFileError:
            return
        if h.parent != self.history.commit_id(seq):
            raise CorruptFileError(f"commit {seq + 1} does not name commit {seq} as its parent "
                                   "(R32)", self.log.frame_offset(self.history.frame_of(seq + 1)))

    def _extend(self, seg: Segment, stop: int) -> None:
        """Decode commits ``seg.upto+1 .. stop`` into ``seg``, checking R31, R32, R60
        and the CREATE id rule of §6 (the rest of §6 is checked when a whole state
        is replayed)."""
        parent = self.history.commit_id(seg.upto)
        for s in range(seg.upto + 1, stop + 1):
            cid, muts, h, off = self._decode_commit(s, parent)
            expect = seg.next_node_id
            for m in muts:
                if type(m) is Create:
                    if m.node != expect:
                        raise CorruptFileError(f"commit {s} creates node {m.node} where "
                                               f"{expect} is next (§6 CREATE)", off)
                    expect += 1
            check_next_node_id(h, s, expect, off)
            seg.add(s, muts, expect)
            parent = cid

    def commit_info(self, seq: int) -> Commit:
        """The commit ``seq`` (which must resolve); the genesis base is marked compacted."""
        base_next = 1
        if seq == self.history.base_seq and self.history.has_genesis:
            img = self.snapshot_image(0)
            assert img is not None  # a bad genesis fails at open (R85)
            base_next = img.next_node_id
        return self.history.info(seq, base_next)

    def state_at(self, seq: int) -> HistoricalState:
        """The state after commit ``seq`` (read lazily); raises CommitNotFoundError."""
        seq = self.resolve(seq)
        segment, base = self.segment_for(seq)
        if seq == segment.base_seq:
            next_node_id = base.next_node_id if base is not None else 1
        else:
            next_node_id = self.history.header(seq).next_node_id
        return HistoricalState(seq, segment, base, next_node_id)

    def touched_between(self, a: int, b: int) -> set[int]:
        """Ids of nodes changed by commits ``(a, b]``."""
        seg, _ = self.segment_for(b)
        if seg.base_seq <= a:
            return seg.touched(a, b)
        out: set[int] = set()
        for s in range(a + 1, b + 1):
            payload = self.history.commit_payload(s)
            out.update(m.node for m in decode_mutations(payload,
                                                        decode_commit_header(payload).body))
        return out

    def close(self) -> None:
        self._segments.clear()
        self._images.clear()
        self.log.close()
