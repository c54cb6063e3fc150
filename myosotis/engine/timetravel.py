"""Time travel: the states after past commits, and what changed between two commits
(FORMAT.md §10 step 8).

A past state is its base snapshot plus the commits after it, decoded into a
:class:`Segment` (engine/segments.py) and read lazily. Decoding checks R26,
R31, R32, R60 and the CREATE id rule of §6; the rest of §6 is checked when a
whole state is replayed. Segments stay decoded, the least recently used
dropped first, while they hold at most policy.TIMETRAVEL_BYTES of commit
payloads; the head's (the one after the base of the committed state) and the
one in use are never dropped. A commit is decoded once while its segment
stays cached, and a read decodes only the commits up to the one it reads.
"""

from __future__ import annotations

from collections import OrderedDict

from myosotis.engine.chain import check_next_node_id, commit_mutations
from myosotis.engine.checkpoints import Snapshots
from myosotis.engine.history import Commit, CommitIndex
from myosotis.engine.layers import LayerStack
from myosotis.engine.policy import TIMETRAVEL_BYTES, TIMETRAVEL_NODES
from myosotis.engine.segments import BaseNodes, HistoricalState, Segment
from myosotis.errors import CommitNotFoundError, CorruptFileError
from myosotis.format.mutations import Create
from myosotis.format.records import (
    commit_id,
    decode_commit_header,
    decode_mutations,
)
from myosotis.storage.log import LogFile


class TimeTravel:
    """The decoded past of one log. ``head_seq`` arguments are the store's head."""

    def __init__(self, log: LogFile, commits: CommitIndex, snapshots: Snapshots, base_seq: int,
                 next_node_id: int, cache_bytes: int = TIMETRAVEL_BYTES) -> None:
        """``base_seq``, ``next_node_id``: the base of the committed state; ``cache_bytes``:
        the commit payload bytes the decoded segments may hold (policy.TIMETRAVEL_BYTES)."""
        self.log = log
        self.commits = commits
        self.snapshots = snapshots
        self.cache_bytes = cache_bytes
        # base seq -> segment, the least recently used first
        self._segments: OrderedDict[int, Segment] = OrderedDict()
        self.base_nodes = BaseNodes(TIMETRAVEL_NODES)
        # The head segment is decoded lazily, on the first read of a past
        # commit: replay does not keep its mutations, so opening costs memory
        # for the state only.
        self.head = Segment(base_seq, next_node_id)
        self._segments[base_seq] = self.head
        # What the cached segments hold, as last summed plus what was decoded
        # since, and how many extends ago that sum was taken (see _evict).
        self._held = 0
        self._extends = 0

    def new_head(self, base_seq: int, next_node_id: int) -> None:
        """The committed state has a new base (a checkpoint after ``base_seq``)."""
        old, segments = self.head, self._segments
        self.head = Segment(base_seq, next_node_id)
        segments[base_seq] = self.head
        segments.move_to_end(base_seq)
        if old.upto == old.base_seq and segments.get(old.base_seq) is old:
            # Nothing was read from it: a writer that never reads the past keeps
            # one segment, not one per layer it writes.
            del segments[old.base_seq]

    def clear(self) -> None:
        self._segments.clear()
        self.base_nodes.clear()
        self._held = 0

    # ------------------------------------------------------------------ commits

    def resolve(self, seq: int, head_seq: int) -> int:
        """``seq`` if it names a commit whose state can be read; else CommitNotFoundError."""
        # seq 0 names the empty state before the first commit (while not compacted)
        if self.commits.partial and seq <= self.commits.base_seq:
            self.commits.ensure_full()  # history older than the newest layer (§10.1)
        base_seq = self.commits.base_seq
        if not base_seq <= seq <= head_seq:
            if 0 <= seq < base_seq:
                raise CommitNotFoundError(
                    f"commit {seq} was folded into the genesis snapshot by compaction; the "
                    f"oldest commit left is {base_seq}")
            raise CommitNotFoundError(
                f"no commit {seq}; commits run from {max(1, base_seq)} to {head_seq}")
        return seq

    def commit_info(self, seq: int) -> Commit:
        """The commit ``seq`` (which must resolve); the genesis base is marked compacted."""
        base_next = 1
        if self.commits.partial and seq <= self.commits.base_seq:
            self.commits.ensure_full()
        if seq == self.commits.base_seq and self.commits.has_genesis:
            img = self.snapshots.image(0)
            assert img is not None  # a bad genesis fails at open (R85)
            base_next = img.next_node_id
        return self.commits.info(seq, base_next)

    # ------------------------------------------------------------------ states

    def state_at(self, seq: int, head_seq: int) -> HistoricalState:
        """The state after commit ``seq`` (read lazily); raises CommitNotFoundError."""
        seq = self.resolve(seq, head_seq)
        segment, base = self.segment_for(seq, head_seq)
        if seq == segment.base_seq:
            next_node_id = base.next_node_id if base is not None else 1
        else:
            next_node_id = segment.next_node_id_at(seq)
        return HistoricalState(seq, segment, base, next_node_id, self.base_nodes)

    def touched_between(self, a: int, b: int, head_seq: int) -> set[int]:
        """Ids of nodes changed by commits ``(a, b]``."""
        seg, _ = self.segment_for(b, head_seq)
        if seg.base_seq <= a:
            return seg.touched(a, b)
        out: set[int] = set()
        for s in range(a + 1, b + 1):
            payload = self.commits.commit_payload(s)
            out.update(m.node for m in decode_mutations(payload,
                                                        decode_commit_header(payload).body))
        return out

    # ------------------------------------------------------------------ segments

    def segment_for(self, seq: int, head_seq: int) -> tuple[Segment, LayerStack | None]:
        """The segment whose base is the newest usable snapshot at or before ``seq``,
        decoded at least up to ``seq``, and that base's image."""
        base_seq, img = self.snapshots.base_at(seq)
        segments = self._segments
        seg = segments.get(base_seq)
        if seg is None:
            seg = segments[base_seq] = Segment(base_seq,
                                               img.next_node_id if img is not None else 1)
        else:
            segments.move_to_end(base_seq)
        if seg.upto < seq:
            # An interrupt in here leaves ``seg`` decoded up to some commit before
            # ``seq`` (Segment.add is atomic), which the next read extends.
            before = seg.size
            self._extend(seg, seq)
            if seq < head_seq:
                self._check_link(seq)
            self._evict(seg, seg.size - before)
        return seg, img

    def _evict(self, keep: Segment, grown: int) -> None:
        """Drop the least recently used segments while the cached ones hold more than
        ``cache_bytes`` of commit payloads; never ``keep`` (in use, just ``grown`` by
        that many bytes) nor the head's.

        Amortised O(1) a read: the bytes held are a running figure, summed
        afresh once every len(segments) extends. An interrupt can put the
        figure out (a segment grown but not counted, or dropped but still
        counted); the periodic sum puts it right, so the cache exceeds its
        bound by at most what interrupted reads decoded since the last sum.
        """
        segments = self._segments
        self._held += grown
        self._extends += 1
        if self._extends >= len(segments):
            self._held, self._extends = sum(s.size for s in segments.values()), 0
        excess = self._held - self.cache_bytes
        if excess <= 0:
            return
        victims = []
        for base_seq, seg in segments.items():  # the least recently used first
            if excess <= 0:
                break
            if seg is not keep and seg is not self.head:
                victims.append(base_seq)
                excess -= seg.size
        for base_seq in victims:
            self._held -= segments.pop(base_seq).size

    def _check_link(self, seq: int) -> None:
        """R32 between commit ``seq`` and the next one, if that frame is intact.

        The parent link of commit seq+1 is what vouches for commit ``seq`` when
        it is read for time travel (FORMAT.md §10 step 8). A damaged next frame
        is not an error here: it raises when it is read itself.
        """
        try:
            h = self.commits.header(seq + 1)
        except CorruptFileError:
            return
        if h.parent != self.commits.commit_id(seq):
            raise CorruptFileError(f"commit {seq + 1} does not name commit {seq} as its parent "
                                   "(R32)", self.log.frame_offset(self.commits.frame_of(seq + 1)))

    def _extend(self, seg: Segment, stop: int) -> None:
        """Decode commits ``seg.upto+1 .. stop`` into ``seg``, checking R31, R32, R60
        and the CREATE id rule of §6 (the rest of §6 is checked when a whole state
        is replayed)."""
        commits, version = self.commits, self.log.version
        parent = commits.commit_id(seg.upto)
        for s in range(seg.upto + 1, stop + 1):
            payload, h, off = commits.record(s, parent)  # R26, R31, R32
            muts = commit_mutations(payload, h, s, off, version)  # R61
            cid = commit_id(payload)
            commits.remember_id(s, cid)
            expect = seg.next_node_id
            for m in muts:
                if type(m) is Create:
                    if m.node != expect:
                        raise CorruptFileError(f"commit {s} creates node {m.node} where "
                                               f"{expect} is next (§6 CREATE)", off)
                    expect += 1
            check_next_node_id(h, s, expect, off)
            seg.add(s, muts, expect, len(payload))
            parent = cid
