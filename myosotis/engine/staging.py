"""Staging changes and committing them: the writer's side of a store.

A staged mutation is encoded into the store's pending bytes and applied to its
overlay (``work``) at once, so a commit only frames the bytes already encoded.
Each operation follows the pattern of engine/unsettled.py: an exception of any
kind, anywhere, leaves either the state as it was or a stand-in in ``work``
that says what to do; the durable append is the commit's point of no return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from myosotis.engine.checkpoints import auto_checkpoint
from myosotis.engine.graph import Overlay
from myosotis.engine.history import Commit, make_commit
from myosotis.engine.history_index import index_commit
from myosotis.engine.layers import NewRecords
from myosotis.engine.policy import checkpoint_due, layer_due
from myosotis.engine.unsettled import (
    DISCARD,
    REOPEN,
    Unsettled,
    check_settled,
    remedy_of,
)
from myosotis.errors import MyosotisError, WriterFailedError
from myosotis.format.constants import KIND_COMMIT, VERSION_REWIND
from myosotis.format.mutations import Mutation, Undelete
from myosotis.format.records import commit_id, encode_commit

if TYPE_CHECKING:
    from myosotis.engine.store import Store

# The stand-ins of the operations that run on every commit or edit (they hold no
# state, so one of each serves every store; see unsettled.py).
_COMMITTING = Unsettled("commit()", REOPEN)
_STAGING = Unsettled("staging a change", DISCARD)
_DISCARDING = Unsettled("discard()", DISCARD)


def settle(store: Store) -> None:
    """Nothing staged over the committed state; the last step of every operation
    that replaced ``committed`` (see unsettled.py)."""
    store.pending_bytes = bytearray()
    # The staged mutations and where each starts in pending_bytes: the commit
    # indexes them as they are, without decoding its own payload again.
    store.staged = []
    store.staged_at = []
    store.pending_version = 1  # the format_version the pending mutations need (§12)
    # (a cache of the committed state, which may have been replaced: layers.NewRecords)
    store.new_records = NewRecords()
    store.work = Overlay(store.committed)


def stage(store: Store, m: Mutation) -> None:
    """Store.stage: validate ``m`` and add it to the uncommitted changes, or raise and
    change nothing. ``m``'s value is handed over to the staged state."""
    if store.log.readonly:
        store.require_writer()  # raises
    work = store.work
    # Refused here, not only by the stand-in's attributes: the stand-in set
    # below would otherwise replace a stronger one (an interrupted commit's) by
    # the one discard() settles. (Inline: the hot path.)
    if type(work) is Unsettled:
        work.fail()
    # Until the last line, an interrupt may leave the overlay, the pending
    # bytes and their count out of step: refuse them until discard()
    # (unsettled.py). A shared stand-in: the hot path allocates nothing.
    store.work = _STAGING
    try:
        stage_into(store, work, m)
    except MyosotisError:
        store.work = work  # refused, and rolled back by stage_into: nothing changed
        raise
    store.work = work


def stage_all(store: Store, ms: list[Mutation]) -> None:
    """See Store.stage_all."""
    if len(ms) == 1:
        stage(store, ms[0])  # rolls a refused one back by itself
        return
    if store.log.readonly:
        store.require_writer()  # raises
    work = store.work
    check_settled(work)
    # The batch is tried first, in order, on a scratch overlay over the staged
    # state, encoded and applied as staging does it: the scratch copies what it
    # edits, so ``work`` does not change, and whatever refuses one mutation
    # refuses the batch here, before anything is staged.
    scratch, scratch_bytes = Overlay(work), bytearray()
    for m in ms:
        m.put(scratch_bytes)
        m.apply(scratch)
    store.work = _STAGING
    for m in ms:
        stage_into(store, work, m)
    store.work = work


def stage_into(store: Store, work: Overlay, m: Mutation) -> None:
    """Encode ``m`` into the pending bytes and apply it to ``work``, or raise a
    MyosotisError with both as they were. The caller holds the _STAGING stand-in:
    any other exception leaves them out of step."""
    buf = store.pending_bytes
    mark = len(buf)
    try:
        m.put(buf)  # limits and types (InvalidValueError)
        m.apply(work)  # graph rules (R50–R53)
    except MyosotisError:
        # apply() checks every rule before it changes anything, so a
        # rejected mutation leaves the overlay as it was; drop its bytes.
        del buf[mark:]
        raise
    # The list moves with the buffer, or the commit record's count would
    # disagree with its mutations (R61).
    store.staged.append(m)
    store.staged_at.append(mark)
    if type(m) is Undelete:
        store.pending_version = VERSION_REWIND  # the commit moves the file to 3 (§12)


def discard(store: Store) -> int:
    """See Store.discard."""
    work = store.work
    if remedy_of(work) not in (None, DISCARD):
        check_settled(work)
    n = len(store.staged)
    # settle() replaces the pending bytes, their count and the overlay one after
    # the other: until its last line, a stand-in asks for discard() again.
    store.work = _DISCARDING
    settle(store)
    return n


def commit(store: Store, label: str | None = None, allow_empty: bool = False) -> Commit | None:
    """Store.commit: write the staged changes as one commit and return it (None when
    nothing is staged, unless ``allow_empty``). Raises WriterFailedError (the
    changes stay staged)."""
    store.require_writer()
    staged, staged_at, mutation_bytes = store.staged, store.staged_at, store.pending_bytes
    if not staged and not allow_empty:
        return None
    work = store.work
    seq, parent = store.head_seq + 1, store.head_id
    ts = int(store.clock())
    payload = encode_commit(seq, ts, parent, work.next_node_id, label or "",
                            len(staged), mutation_bytes)
    cid = commit_id(payload)
    # From here until ``store.work = work`` below, an exception of any kind
    # leaves the handle failed-stop (unsettled.py): after the append the
    # commit is in the file, and a retry must not append it a second time.
    store.work = _COMMITTING
    try:
        # the point of no return
        store.log.append(KIND_COMMIT, payload, store.durable, store.pending_version)
    except WriterFailedError:
        # The log refuses every later append itself; the staged changes stay
        # readable (and are not committed by this handle).
        store.work = work
        raise
    store.commits.index_new_frames()
    store.commits.remember_id(seq, cid)
    work.keep_spares(staged)
    work.merge_into_parent()
    if store.layered:
        store.new_records.note(staged, staged_at, mutation_bytes)
    # The time-travel segment is not fed here: it decodes new commits from
    # the file when a past state is read (TimeTravel.segment_for).
    store.head_seq, store.head_id = seq, cid
    store.pending_bytes = bytearray()  # the overlay was emptied by merge_into_parent
    store.staged, store.staged_at = [], []
    store.pending_version = 1
    store.bytes_since_checkpoint += len(payload)
    store.commits_since_checkpoint += 1
    store.work = work  # settled: the commit is the committed state
    # derived data: never fails the commit; the mutations start where their
    # encoded bytes do, at the end of the payload
    index_commit(store, seq, cid, len(payload) - len(mutation_bytes), staged, staged_at)
    if layer_due(store.commits_since_checkpoint, store.bytes_since_checkpoint,
                 store.layer_commits, store.layer_bytes) if store.layered else \
            checkpoint_due(store.bytes_since_checkpoint, store.last_image_size,
                           store.checkpoint_floor):
        auto_checkpoint(store)
    return make_commit(seq, cid, ts, label or "", parent, store.committed.next_node_id)
