"""The engine's facade: one data file's committed state, staged changes, commits,
checkpoints, replay and historical states.

A :class:`Store` is used by one thread at a time. It is the writer when
opened writable (holding the writer lock), else a reader that sees the
committed prefix at open time and moves forward on :meth:`refresh`.

The store holds the state; the work is done, one job per module, by
engine/loading.py (open, reopen, refresh: replaying commits), staging.py
(stage, discard, commit), checkpoints.py (reading and writing snapshots) and
timetravel.py (past states). Every operation that changes the state in
several steps follows engine/unsettled.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Literal

from myosotis.engine import loading, staging
from myosotis.engine.checkpoints import Snapshots, write_checkpoint
from myosotis.engine.graph import GraphState, Overlay
from myosotis.engine.history import Commit, CommitIndex
from myosotis.engine.history_index import HistoryIndex
from myosotis.engine.layers import NewRecords
from myosotis.engine.policy import (
    CHECKPOINT_FLOOR,
    LAYER_BYTES,
    LAYER_COMMITS,
    NODE_CACHE,
    TIMETRAVEL_BYTES,
    free_space_end,
)
from myosotis.engine.segments import HistoricalState
from myosotis.engine.timetravel import TimeTravel
from myosotis.engine.unsettled import REOPEN, Unsettled, check_settled
from myosotis.errors import MyosotisError, ReadOnlyError, RecoveredTailWarning, warn_caller
from myosotis.format.image import state_hash
from myosotis.format.mutations import Mutation
from myosotis.storage.fileops import REAL, FileOps
from myosotis.storage.log import LogFile

Durability = Literal["full", "none"]
Clock = Callable[[], int]


def system_clock() -> int:
    """Microseconds since the Unix epoch, UTC."""
    return time.time_ns() // 1000


class Store:
    """See the module docstring. Create with :meth:`open`.

    State (read by the API and the engine's modules; changed only by the
    operations below):

    - ``log``: the file; ``commits``: its commit and checkpoint index;
      ``snapshots``: its checkpoint images; ``travel``: decoded past states;
    - ``committed``: the state after commit ``head_seq`` (id ``head_id``);
    - ``work``: the committed state plus staged changes (an Overlay), or an
      Unsettled stand-in while an operation runs (unsettled.py);
      ``pending_bytes``: the staged mutations, encoded; ``staged``: those mutations,
      each starting at its offset of ``staged_at`` in ``pending_bytes``;
      ``pending_version``: the format_version their commit needs (3 with an UNDELETE);
    - ``new_records``: what the next layer needs of the nodes changed since the
      newest snapshot without encoding them (layers.NewRecords);
    - ``bytes_since_checkpoint``, ``commits_since_checkpoint``, ``last_image_size``:
      for the checkpoint policy (``layered``: layers, §8.7, else images, §8.4);
    - ``problems``: non-fatal findings (skipped checkpoints, cut torn tails...).
    """

    commits: CommitIndex
    snapshots: Snapshots
    travel: TimeTravel
    committed: GraphState
    head_seq: int
    head_id: bytes
    pending_bytes: bytearray
    staged: list[Mutation]
    staged_at: list[int]
    new_records: NewRecords
    pending_version: int
    bytes_since_checkpoint: int
    last_image_size: int

    def __init__(self, log: LogFile, durability: Durability, clock: Clock,
                 checkpoint_floor: int | None, node_cache: int = NODE_CACHE) -> None:
        """``checkpoint_floor``: None writes layers (§8.7, policy LAYER_COMMITS); an int
        writes version-2 checkpoints by that floor (§8.4)."""
        if durability not in ("full", "none"):
            raise MyosotisError(f"durability must be 'full' or 'none', not {durability!r}")
        self.log = log
        self.durable = durability == "full"
        self.clock = clock
        self.layered = checkpoint_floor is None
        self.checkpoint_floor = CHECKPOINT_FLOOR if checkpoint_floor is None else checkpoint_floor
        self.layer_commits = LAYER_COMMITS  # the layer policy (policy.py); tests lower it
        self.layer_bytes = LAYER_BYTES
        self.commits_since_checkpoint = 0
        self.node_cache = node_cache
        # commit payload bytes time travel keeps decoded (policy.py; a test hook
        # lowers it, myosotis.testing.open_memory)
        self.travel_cache = TIMETRAVEL_BYTES
        self.problems: list[str] = []
        for off, n, kept in log.recovered:
            msg = (f"cut a torn tail of {n} bytes at offset {off} (a crash mid-commit); "
                   f"its bytes are kept in {kept}")
            self.problems.append(msg)
            warn_caller(f"{log.path}: {msg}", RecoveredTailWarning)
        # The staged state, or an Unsettled stand-in while an operation runs
        # (unsettled.py); load() settles it.
        self.work: Overlay = Unsettled("opening the file", REOPEN)
        # The per-node history index (history_index.py), opened on first use:
        # opening a memory does not touch its sidecar.
        self.index: HistoryIndex | None = None
        loading.load(self)

    @classmethod
    def open(cls, path: str, *, readonly: bool = False, durability: Durability = "full",
             clock: Clock = system_clock, fileops: FileOps = REAL, lock_timeout: float = 0.0,
             checkpoint_floor: int | None = None, node_cache: int = NODE_CACHE,
             create: bool = True) -> Store:
        log = LogFile.open(path, readonly=readonly, create=create, fileops=fileops,
                           lock_timeout=lock_timeout, free_space=free_space_end)
        try:
            return cls(log, durability, clock, checkpoint_floor, node_cache)
        except BaseException:
            log.close()
            raise

    @property
    def readonly(self) -> bool:
        return self.log.readonly

    def reopen(self, synced: bool = False) -> None:
        """Read the file at this path again from scratch (after compaction or repair,
        which wrote it whole and synced it: ``synced``), keeping the writer lock.
        Staged changes are dropped.

        Interrupted, it leaves the store unsettled (a reader's next refresh
        reopens again; a writer must be closed and reopened).
        """
        loading.reopen(self, synced)

    def refresh(self) -> int:
        """Reader: move to the newest commit in the file; return how many commits were added.

        If the file was replaced (compaction), it is reopened. A writer is
        always current, so this returns 0 for it.
        """
        return loading.refresh(self)

    def history_index(self) -> HistoryIndex:
        """The history index of this file, opened (not caught up) on first use."""
        if self.index is None:
            self.index = HistoryIndex(self)
        return self.index

    def close(self) -> None:
        index, self.index = self.index, None
        if index is not None:
            index.close()  # flushes what a writer indexed; never raises for the index
        self.travel.clear()
        self.snapshots.clear()
        self.log.close()

    # ------------------------------------------------------------------ staging

    @property
    def pending_count(self) -> int:
        """How many mutations are staged."""
        return len(self.staged)

    def require_writer(self) -> None:
        if self.log.readonly:
            raise ReadOnlyError(f"{self.log.path} is open read-only; open it without "
                                "readonly=True to change it")
        check_settled(self.work)
        self.commits.check_whole()

    # The hot paths are the functions that do them (staging.py), bound as methods:
    # a call less per edit and per commit than a delegating method.
    stage = staging.stage
    """Validate ``m`` and add it to the uncommitted changes, or raise and change nothing.

    ``m``'s value is handed over to the staged state: the caller must not
    keep or change it."""

    def stage_all(self, ms: list[Mutation]) -> None:
        """Stage every mutation of ``ms`` as one edit, or raise and stage none.

        The batch is checked whole on a scratch overlay first (encoding limits
        and R50–R53), so a refused one stages nothing. An interrupt between two
        of its mutations cannot be taken back: the store is then unsettled until
        ``discard()`` (unsettled.py), never half-edited in silence.
        """
        staging.stage_all(self, ms)

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
        return staging.discard(self)

    # ------------------------------------------------------------------ committing

    commit = staging.commit
    """Write staged changes as one commit (``commit(label=None, allow_empty=False)``);
    return it.

    With nothing staged, writes nothing and returns ``None`` unless
    ``allow_empty``. Returns only once the commit is durable (durability
    "full"). On failure raises (WriterFailedError, InvalidValueError for a
    bad label) and the staged changes stay staged. A checkpoint follows
    when the policy says so (policy.py); if it fails, the commit stands and
    the failure is in ``problems`` and a warning."""

    def checkpoint(self) -> bool:
        """Append a checkpoint of the committed state; False if one already covers it."""
        self.require_writer()
        done = write_checkpoint(self)
        if self.index is not None:
            self.index.flush()
        return done

    def state_hash(self, staged: bool = True) -> bytes:
        """State hash (§9.2) of the committed state, plus the staged changes if ``staged``."""
        state = self.committed
        if staged and self.work.dirty:
            state = GraphState(self.committed.base, dict(self.committed.changed))
            state.merge(self.work.nodes, self.work.next_node_id)
        return state_hash(state.image())

    def sync(self) -> None:
        """Make every commit so far durable (useful with durability "none"), and flush
        the history index's rows held in memory."""
        self.log.sync()
        if self.index is not None:
            self.index.flush()

    # ------------------------------------------------------------------ history

    def resolve(self, seq: int) -> int:
        """``seq`` if it names a commit whose state can be read (0 is the empty state
        before the first, while not compacted); else CommitNotFoundError."""
        return self.travel.resolve(seq, self.head_seq)

    def commit_seqs(self, reverse: bool = False) -> Iterator[int]:
        """The seqs of the commit records after the compacted base, oldest first (newest
        first with ``reverse``). Newest first, the frames older than the newest
        layer (FORMAT.md §10.1) are indexed only when the iteration reaches them."""
        hist = self.commits
        if not reverse:
            hist.ensure_full()
            yield from range(hist.base_seq + 1, self.head_seq + 1)
            return
        q = self.head_seq
        while q > hist.base_seq or hist.partial and q > 0:
            if q <= hist.base_seq:
                hist.ensure_full()
                continue
            yield q
            q -= 1

    def commit_info(self, seq: int) -> Commit:
        """The commit ``seq`` (which must resolve); the genesis base is marked compacted."""
        return self.travel.commit_info(seq)

    def state_at(self, seq: int) -> HistoricalState:
        """The state after commit ``seq`` (read lazily); raises CommitNotFoundError."""
        return self.travel.state_at(seq, self.head_seq)

    def touched_between(self, a: int, b: int) -> set[int]:
        """Ids of nodes changed by commits ``(a, b]``."""
        return self.travel.touched_between(a, b, self.head_seq)
