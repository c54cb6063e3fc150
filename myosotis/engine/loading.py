"""Building a store's committed state from its file: at open, after a reopen, and when
a reader catches up with the writer (FORMAT.md §10 step 7).

The state is the newest usable checkpoint (or the genesis, or the empty
state) plus the commits after it, replayed with every rule checked: R26, R31,
R32, R60, R61 and R50–R53. Each operation here follows the pattern of
engine/unsettled.py: the store's ``work`` is a stand-in until the state is
whole again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from myosotis.engine.chain import check_next_node_id, check_version
from myosotis.engine.checkpoints import Snapshots
from myosotis.engine.graph import GraphState
from myosotis.engine.history import CommitIndex
from myosotis.engine.staging import settle
from myosotis.engine.timetravel import TimeTravel
from myosotis.engine.unsettled import REFRESH, REOPEN, Unsettled, is_unsettled
from myosotis.errors import CorruptFileError, MyosotisError
from myosotis.format.constants import FRAME_HEADER_SIZE
from myosotis.format.records import CommitHeader, commit_id, iter_mutations
from myosotis.format.values import DecodeError

if TYPE_CHECKING:
    from myosotis.engine.store import Store

# The stand-in of a refresh, which runs often (it holds no state, so one serves
# every store; see unsettled.py).
_REFRESHING = Unsettled("refresh()", REFRESH)


def load(store: Store) -> None:
    """Find the newest usable checkpoint and replay the commits after it (§10 step 7),
    then settle the store with nothing staged."""
    store.commits = commits = CommitIndex(store.log)
    store.snapshots = snapshots = Snapshots(store.log, commits, store.problems)
    base_seq, base_img = snapshots.base_at(commits.head_seq)
    store.committed = GraphState(base_img, cache_size=store.node_cache)
    store.head_seq = base_seq
    store.head_id = commits.commit_id(base_seq)
    store.travel = TimeTravel(store.log, commits, snapshots, base_seq,
                              store.committed.next_node_id, store.travel_cache)
    store.bytes_since_checkpoint = store.commits_since_checkpoint = 0
    store.last_image_size = base_img.size if base_img is not None else 0
    replay_to(store, commits.head_seq)
    settle(store)


def reopen(store: Store, synced: bool) -> None:
    """See Store.reopen."""
    store.work = Unsettled("reopening the file", REFRESH if store.readonly else REOPEN)
    store.log.reopen(synced)
    store.snapshots.clear()
    store.travel.clear()
    store.problems.clear()
    load(store)


def refresh(store: Store) -> int:
    """See Store.refresh."""
    if not store.log.readonly:
        return 0
    try:
        same = os.stat(store.log.path).st_ino == store.log.inode
    except FileNotFoundError:
        same = True
    before = store.head_seq
    if not same or is_unsettled(store.work):
        # Replaced by compaction, or an earlier refresh was interrupted
        # half-way (its log, history and state may be out of step): read
        # the file again from scratch.
        reopen(store, False)
        return max(0, store.head_seq - before)
    # Replay changes the committed state in place, one mutation at a time:
    # until it is done, the state is one that never existed (unsettled.py).
    store.work = _REFRESHING
    if store.log.refresh():
        store.commits.index_new_frames()
        replay_to(store, store.commits.head_seq)
    settle(store)
    return store.head_seq - before


def replay_to(store: Store, target: int) -> None:
    """Apply commits ``head_seq+1 .. target`` to the committed state, checking every
    rule; raises CorruptFileError."""
    state = store.committed
    for seq in range(store.head_seq + 1, target + 1):
        payload, h, off = store.commits.record(seq, store.head_id)
        apply_commit(state, seq, payload, h, off, store.log.version)
        check_next_node_id(h, seq, state.next_node_id, off)
        cid = commit_id(payload)
        store.commits.remember_id(seq, cid)
        store.head_seq, store.head_id = seq, cid
        store.bytes_since_checkpoint += len(payload)
        store.commits_since_checkpoint += 1


def apply_commit(state: GraphState, seq: int, payload: memoryview, h: CommitHeader,
                 off: int, version: int) -> None:
    """Apply the mutations of commit ``seq`` (its checked ``payload`` and header ``h``,
    its frame at file offset ``off``, in a file of format ``version``) to ``state``,
    checking R50–R54; raises CorruptFileError naming the offset in the file of what
    is wrong."""
    # Mutations are applied as they are decoded and kept nowhere else (the state
    # owns their values), so replay holds no decoded copy of the history. A
    # failure leaves the state half-applied: the caller must drop it (open
    # fails; refresh closes the store).
    try:
        for m in iter_mutations(payload, h.body):
            check_version(m, seq, version, off)
            try:
                m.apply(state)
            except DecodeError as e:
                # Not this commit's bytes: a node record of the checkpoint the
                # state is based on, whose hash was right (§8.4). Its offset is
                # the record's own, in the file.
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
