"""The commit index and the checkpoint index (FORMAT.md §4 R30–R33, §8.4).

Derived from the frame walk, never stored: commit ``seq`` is the
``seq - base_seq``-th commit frame, and a checkpoint's seq is that of the last
commit before it. Building and extending the index costs one C-speed search
of the kinds array per checkpoint, not a Python loop over every frame.
"""

from __future__ import annotations

import bisect
import datetime as _dt
from collections.abc import Iterator
from typing import NamedTuple, cast

from myosotis.engine.chain import commit_header
from myosotis.engine.policy import COMMIT_ID_CACHE
from myosotis.engine.unsettled import REOPEN_READER, Unsettled
from myosotis.errors import CorruptFileError
from myosotis.format.constants import (
    FRAME_HEADER_SIZE,
    HEADER_SIZE,
    KIND_CHECKPOINT,
    KIND_COMMIT,
    KIND_GENESIS,
    KIND_LAYER,
    KIND_ORIGIN,
    VERSION_REWIND,
    ZERO_HASH,
)
from myosotis.format.display import HTML_CELL, clip, html_table, short_repr
from myosotis.format.layer import decode_layer_header
from myosotis.format.records import (
    CommitHeader,
    OriginRecord,
    SnapshotHeader,
    commit_id,
    decode_origin,
    decode_snapshot_header,
)
from myosotis.format.values import DecodeError
from myosotis.storage.log import LogFile

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class Commit(NamedTuple):
    """One commit of the history.

    ``seq`` counts from 1; ``id`` is the 64-hex-digit commit id (§9.1);
    ``timestamp_us`` is microseconds since the Unix epoch and ``timestamp``
    the same as a timezone-aware UTC datetime; ``label`` is ``None`` when
    empty; ``parent`` is the previous commit's id (``None`` for the first).
    """

    seq: int
    id: str
    timestamp_us: int | None
    label: str | None
    parent: str | None
    next_node_id: int
    compacted: bool = False  # folded into the genesis: only seq, id and next_node_id are known

    @property
    def timestamp(self) -> _dt.datetime | None:
        if self.timestamp_us is None:
            return None
        return _EPOCH + _dt.timedelta(microseconds=self.timestamp_us)

    def __str__(self) -> str:
        label = f" {short_repr(self.label, 80)}" if self.label else ""
        return f"#{self.seq} {self.id[:12]}{label}"

    def __repr__(self) -> str:
        # bounded: a label may be 16 MiB (FORMAT.md §11)
        return (f"Commit(seq={self.seq}, id={self.id!r}, timestamp_us={self.timestamp_us}, "
                f"label={short_repr(self.label)}, parent={self.parent!r}, "
                f"next_node_id={self.next_node_id}, compacted={self.compacted})")

    def _repr_html_(self) -> str:
        """A notebook table of the commit's fields (bounded, HTML-escaped)."""
        ts = self.timestamp
        rows = [["seq", str(self.seq)], ["id", self.id],
                ["time", "(compacted)" if ts is None else ts.isoformat()],
                ["label", clip(self.label or "", HTML_CELL)], ["parent", self.parent or ""],
                ["next_node_id", str(self.next_node_id)]]
        return html_table(["", ""], rows, caption=f"commit #{self.seq} {self.id[:12]}")


def make_commit(seq: int, cid: bytes, timestamp_us: int, label: str, parent: bytes,
                next_node_id: int) -> Commit:
    """A :class:`Commit` from the fields of a commit record."""
    return Commit(seq, cid.hex(), timestamp_us, label or None,
                  None if parent == ZERO_HASH else parent.hex(), next_node_id)


def _corrupt(e: DecodeError, frame_offset: int) -> CorruptFileError:
    return CorruptFileError(e.reason, frame_offset + FRAME_HEADER_SIZE + (e.offset or 0))


class CommitIndex:
    """Which frame holds which commit, and where the checkpoints are."""

    def __init__(self, log: LogFile) -> None:
        self.log = log
        self._reset()

    def _reset(self) -> None:
        self.base_seq = 0
        self.base_commit_id = ZERO_HASH
        self.has_genesis = False
        # Opened from the newest layer (§10.1): the index starts at that layer, whose
        # seq and commit id stand in for the history before it until ensure_full().
        self.partial = False
        self.genesis_state_hash = ZERO_HASH
        self._origin: OriginRecord | None = None  # fork provenance (§8.6), if any
        self.checkpoints: list[tuple[int, int]] = []  # (seq, frame index), ascending
        self._cp_frames: list[int] = []  # the frame indices of ``checkpoints``
        self._noncommit: list[int] = []  # frame indices of non-commit frames
        self._nc_key: list[int] = []  # commits before each non-commit frame
        self._indexed = 0
        self._ids: dict[int, bytes] = {}
        self.index_new_frames()

    def ensure_full(self) -> None:
        """Index the whole history (a file opened from its newest layer, §10.1): walks
        the frames before it once. Raises CorruptFileError for damage there."""
        if not self.partial:
            return
        log = self.log
        # log.ensure_full renumbers the frames, so from then until the last line
        # the partial index names the wrong ones. Meanwhile the log is an
        # Unsettled stand-in: an interrupt anywhere leaves an index whose every
        # use raises InterruptedOperationError (the handle fails stop), never one
        # that reads the wrong frame. The full index is built aside, within
        # log.ensure_full (damage it finds puts the frames back as they were),
        # and replaces this one in one step.
        self.log = cast(LogFile, Unsettled("indexing the history before the newest layer",
                                           REOPEN_READER))
        built: list[CommitIndex] = []
        try:
            log.ensure_full(lambda: built.append(CommitIndex(log)))
        except CorruptFileError:
            self.log = log  # nothing moved: the partial index still names the right frames
            raise
        full = built[0]
        full._ids = self._ids  # ids by seq stay right
        self.__dict__.update(full.__dict__)  # one C call: one step

    def check_whole(self) -> None:
        """Raise InterruptedOperationError if an interrupted :meth:`ensure_full` left this
        index failed-stop. A writer checks it before appending (Store.require_writer):
        the append indexes its frame after its point of no return, too late to refuse."""
        log: object = self.log
        if isinstance(log, Unsettled):
            log.fail()

    # ------------------------------------------------------------------ index

    def index_new_frames(self) -> None:
        """Index the frames the log gained since the last call."""
        kinds = self.log.frames.kinds
        start, stop = self._indexed, len(kinds)
        if start == 0 and stop and self.log.index_from != HEADER_SIZE:
            self._start_at_layer()
        if stop == start + 1 and kinds[start] == KIND_COMMIT:  # the common case: one commit
            self._indexed = stop
            return
        found: list[int] = []
        for kind in (KIND_CHECKPOINT, KIND_GENESIS, KIND_ORIGIN, KIND_LAYER):
            j = kinds.find(kind, start, stop)
            while j >= 0:
                found.append(j)
                j = kinds.find(kind, j + 1, stop)
        for j in sorted(found):
            if kinds[j] == KIND_GENESIS:
                if j != 0:
                    raise CorruptFileError("a genesis frame that is not the first frame (R30)",
                                           self.log.frame_offset(j))
                self._read_genesis_header()
            elif kinds[j] == KIND_ORIGIN:
                self._read_origin(j)
            commits_before = j - len(self._noncommit)
            self._noncommit.append(j)
            self._nc_key.append(commits_before)
            if kinds[j] in (KIND_CHECKPOINT, KIND_LAYER):  # §8.4, §8.7
                self.checkpoints.append((self.base_seq + commits_before, j))
                self._cp_frames.append(j)
        self._indexed = stop

    def _start_at_layer(self) -> None:
        """Frame 0 is the newest layer (§10.1): the history before it is its seq."""
        try:
            h = decode_layer_header(self.log.payload_unchecked(0))
        except DecodeError as e:
            raise _corrupt(e, self.log.frame_offset(0)) from None
        self.partial = True
        self.base_seq, self.base_commit_id = h.seq, h.commit_id

    def _read_genesis_header(self) -> None:
        h = self.snapshot_header(0)
        self.has_genesis = True
        self.base_seq = h.seq
        self.base_commit_id = h.commit_id
        self.genesis_state_hash = h.state_hash
        if (h.seq == 0) != (h.commit_id == ZERO_HASH):
            raise CorruptFileError("genesis base_seq and base_commit_id disagree (§8.3, R86)",
                                   self.log.frame_offset(0) + FRAME_HEADER_SIZE)

    def _read_origin(self, j: int) -> None:
        """Check R34 and R87 for the origin frame at index ``j`` and keep its record."""
        off = self.log.frame_offset(j)
        if self.log.version < VERSION_REWIND:
            raise CorruptFileError(f"an origin frame in a version-{self.log.version} file "
                                   "(R34: version 3 only)", off)
        if j != 1 or self.log.frames.kinds[0] != KIND_GENESIS:
            raise CorruptFileError("an origin frame that does not follow the genesis frame "
                                   "(R34)", off)
        try:
            o = decode_origin(self.log.payload(j))
        except DecodeError as e:
            raise _corrupt(e, off) from None
        if o.seq > self.base_seq or (o.seq == self.base_seq and (
                o.commit_id != self.base_commit_id or o.state_hash != self.genesis_state_hash)):
            raise CorruptFileError("the origin record disagrees with the genesis it follows "
                                   "(R87)", off + FRAME_HEADER_SIZE)
        self._origin = o

    @property
    def origin(self) -> OriginRecord | None:
        """The fork provenance (§8.6) of the file, or None. Its frame follows the
        genesis (R34), before the frames a file opened from its newest layer indexed
        (§10.1): a version-3 or later file indexes its whole history first, once."""
        if self.partial and self.log.version >= VERSION_REWIND:
            self.ensure_full()
        return self._origin

    @property
    def commit_count(self) -> int:
        return len(self.log.frames) - len(self._noncommit)

    @property
    def head_seq(self) -> int:
        return self.base_seq + self.commit_count

    def frame_of(self, seq: int) -> int:
        """Frame index of commit ``seq`` (base_seq < seq <= head_seq)."""
        k = seq - self.base_seq - 1
        if not 0 <= k < self.commit_count:  # a caller's bug; checked under python -O too
            raise AssertionError(f"no frame for commit {seq} (base {self.base_seq}, "
                                 f"{self.commit_count} commits)")
        return k + bisect.bisect_right(self._nc_key, k)

    # ------------------------------------------------------------------ records

    def commit_payload(self, seq: int) -> memoryview:
        """CRC-checked payload of commit ``seq``; a view into the map."""
        return self.log.payload(self.frame_of(seq))

    def header(self, seq: int) -> CommitHeader:
        """Decoded header of commit ``seq``, checked against its place (R31)."""
        j = self.frame_of(seq)
        return commit_header(self.log.payload(j), seq, None, self.log.frame_offset(j))

    def record(self, seq: int, parent: bytes) -> tuple[memoryview, CommitHeader, int]:
        """Commit ``seq``'s payload and header, checked for R26, R31 and R32 (it names
        ``parent``). Returns ``(payload, header, frame offset)``; raises CorruptFileError."""
        j = self.frame_of(seq)
        off = self.log.frame_offset(j)
        payload = self.log.payload(j)
        return payload, commit_header(payload, seq, parent, off), off

    def commit_id(self, seq: int) -> bytes:
        """The id of commit ``seq`` (§9.1); the base's id for ``seq == base_seq``."""
        if seq == self.base_seq:
            return self.base_commit_id
        cid = self._ids.get(seq)
        if cid is None:
            cid = commit_id(self.commit_payload(seq))
            self.remember_id(seq, cid)
        return cid

    def remember_id(self, seq: int, cid: bytes) -> None:
        """Remember commit ``seq``'s id, in a window of policy.COMMIT_ID_CACHE (the
        oldest remembered goes first): per-handle memory does not grow per commit."""
        ids = self._ids
        ids[seq] = cid
        if len(ids) > COMMIT_ID_CACHE:
            del ids[next(iter(ids))]

    def snapshot_header(self, j: int) -> SnapshotHeader:
        try:
            return decode_snapshot_header(self.log.payload(j))
        except DecodeError as e:
            raise _corrupt(e, self.log.frame_offset(j)) from None

    def info(self, seq: int, base_next_node_id: int = 1) -> Commit:
        """The commit ``seq``; for the genesis base (compaction), what is left of it."""
        if seq == self.base_seq:
            return Commit(seq, self.base_commit_id.hex(), None, None, None, base_next_node_id,
                          compacted=True)
        h = self.header(seq)
        return make_commit(seq, self.commit_id(seq), h.timestamp_us, h.label, h.parent,
                           h.next_node_id)

    def snapshot_seq(self, j: int) -> int | None:
        """The seq of snapshot frame ``j`` (a checkpoint, a layer or the genesis), or None
        when frame ``j`` is no snapshot."""
        if j == 0 and self.has_genesis:
            return self.base_seq
        k = bisect.bisect_left(self._cp_frames, j)
        if k < len(self._cp_frames) and self._cp_frames[k] == j:
            return self.checkpoints[k][0]
        return None

    def checkpoint_at_or_before(self, seq: int) -> Iterator[tuple[int, int]]:
        """Checkpoints with seq <= ``seq``, newest first, lazily: every read of the
        past asks, and usually takes the first (the index is not copied)."""
        cps = self.checkpoints
        for k in range(bisect.bisect_right(cps, (seq, len(self.log.frames))) - 1, -1, -1):
            yield cps[k]
