"""``Memory``: the public entry point, and ``View``, a read-only past state."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

from myosotis.api.args import check_open_args
from myosotis.api.handles import Node, to_stored
from myosotis.engine.compact import CompactResult, compact
from myosotis.engine.diff import Diff, diff_states
from myosotis.engine.graph import GraphState, NodeState, Overlay
from myosotis.engine.history import Commit
from myosotis.engine.segments import HistoricalState
from myosotis.engine.store import Clock, Durability, Store, system_clock
from myosotis.engine.unsettled import DISCARD, check_settled, is_unsettled, remedy_of
from myosotis.engine.verify import VerifyReport, verify_file
from myosotis.errors import (
    ClosedError,
    CommitNotFoundError,
    CorruptFileError,
    InvalidOperationError,
    InvalidValueError,
    NodeNotFoundError,
    ReadOnlyError,
    UncommittedChangesWarning,
)
from myosotis.format.constants import CHECKPOINT_FLOOR, MAX_TYPE_NAME
from myosotis.format.image import state_hash
from myosotis.format.mutations import Create, Mutation
from myosotis.storage.fileops import REAL, FileOps

CommitRef = int | str | Commit

_StateLike = GraphState | Overlay | HistoricalState


def _dropped_message(path: str, n: int, how: str) -> str:
    return (f"{path} was {how} with {n} staged change{'s' if n != 1 else ''} not committed; "
            f"they were dropped (commit() them first, or discard() to drop them without "
            f"this warning)")


def _close(mem: Memory, stacklevel: int) -> None:
    """Close ``mem``'s store; warn (UncommittedChangesWarning) when that dropped staged
    changes. The warning comes last: turned into an error, it finds ``mem`` closed."""
    store = mem._store
    if store is None:
        return
    dropped = store.pending_count
    store.close()
    mem._store = None
    if dropped:
        warnings.warn(_dropped_message(mem.path, dropped, "closed"), UncommittedChangesWarning,
                      stacklevel=stacklevel)


class _Reader:
    """The read API shared by :class:`Memory` and :class:`View`."""

    def _read_state(self) -> _StateLike:
        raise NotImplementedError

    def _node_state(self, node_id: int) -> NodeState:
        n = self._read_state().get(node_id) if type(node_id) is int else None
        if n is None:
            raise NodeNotFoundError(f"no node {node_id!r}" + self._where())
        return n

    def _where(self) -> str:
        return ""

    def _stage(self, m: Mutation) -> None:
        raise NotImplementedError

    def _stage_all(self, ms: list[Mutation]) -> None:
        for m in ms:
            self._stage(m)

    def _owns(self, handle: Node) -> bool:
        return handle._src is self

    def get(self, node_id: int) -> Node:
        """The node with this id (deleted nodes too); raises NodeNotFoundError."""
        self._node_state(node_id)
        return Node(self, node_id)

    def __getitem__(self, node_id: int) -> Node:
        return self.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return type(node_id) is int and 1 <= node_id < self._read_state().next_node_id

    def nodes(self, type: str | None = None, *, deleted: bool = False) -> Iterator[Node]:
        """Nodes in id order, optionally of one ``type``; tombstoned ones only with
        ``deleted=True``."""
        state = self._read_state()
        if isinstance(state, HistoricalState):
            state = state.whole()
        for node_id in range(1, state.next_node_id):
            if type is not None and state.type_of(node_id) != type:
                continue
            if not deleted:
                n = state.get(node_id)
                if n is None or n.deleted:
                    continue
            yield Node(self, node_id)

    def __iter__(self) -> Iterator[Node]:
        return self.nodes()

    def __len__(self) -> int:
        """Number of live (not deleted) nodes."""
        return sum(1 for _ in self.nodes())

    @property
    def next_node_id(self) -> int:
        return self._read_state().next_node_id

    def state_hash(self) -> str:
        """BLAKE3-256 of the state image (FORMAT.md §9.2), as hex; staged changes count."""
        raise NotImplementedError


class Memory(_Reader):
    """A versioned object graph backed by one file.

    Open with :meth:`open`. Changes (``create``, field assignment, list/map
    edits, ``delete``) are staged until :meth:`commit`. One writer per file
    (``LockedError`` for a second one); any number of ``readonly=True``
    readers, each seeing the commits present when it opened or last
    refreshed.
    """

    def __init__(self, store: Store, path: str) -> None:
        self._store: Store | None = store
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False,
             durability: Durability = "full", clock: Clock | None = None,
             lock_timeout: float = 0.0, fileops: FileOps | None = None,
             checkpoint_floor: int = CHECKPOINT_FLOOR) -> Memory:
        """Open (or create) the file at ``path``.

        ``durability="full"`` (default): ``commit`` returns only after the commit
        is on stable storage; the file keeps some zeroed free space at its end,
        so most commits do not grow it (FORMAT.md §3). ``"none"``: no fsync; a
        crash of the machine may lose the commits since the last ``sync()``, and
        if the disk wrote their pages out of order, open then reports the damaged
        tail as corruption (``myo fsck`` shows it; commits made durable by
        ``sync()`` are intact). ``clock`` returns
        microseconds since the epoch (inject one for byte-identical files).
        ``lock_timeout`` waits that many seconds for the writer lock. A 0-byte
        file is a new, empty memory (a writer writes the header into it).

        Every argument is checked before any file is touched
        (InvalidArgumentError), and a failed open leaves nothing it created (no
        data file, no lock sidecar). Raises NotARegularFileError (a directory,
        a FIFO: never waits on one), LockedError, NotAMyosotisFileError,
        UnsupportedVersionError, CorruptFileError.
        """
        p = check_open_args(path, readonly=readonly, durability=durability, clock=clock,
                            lock_timeout=lock_timeout, fileops=fileops,
                            checkpoint_floor=checkpoint_floor)
        store = Store.open(p, readonly=readonly, durability=durability,
                           clock=clock or system_clock, fileops=fileops or REAL,
                           lock_timeout=lock_timeout, checkpoint_floor=checkpoint_floor)
        return cls(store, p)

    # ------------------------------------------------------------------ plumbing

    @property
    def store(self) -> Store:
        """The open store; raises ClosedError, and InterruptedOperationError while an
        interrupted operation left it unsettled (see engine/unsettled.py)."""
        store = self._open_store()
        check_settled(store.work)
        return store

    def _open_store(self) -> Store:
        """The store even when unsettled (for the calls that settle it)."""
        if self._store is None:
            raise ClosedError(f"{self.path} was closed; open it again to use it")
        return self._store

    def _read_state(self) -> _StateLike:
        return self.store.state

    def _stage(self, m: Mutation) -> None:
        store = self._store
        if store is None:
            raise ClosedError(f"{self.path} was closed; open it again to use it")
        store.stage(m)

    def _stage_all(self, ms: list[Mutation]) -> None:
        store = self._store
        if store is None:
            raise ClosedError(f"{self.path} was closed; open it again to use it")
        store.stage_all(ms)

    def get(self, node_id: int) -> Node:
        """The node with this id (deleted nodes too); raises NodeNotFoundError."""
        store = self._store  # the hot path of every field access: no property calls
        # Ids are dense (FORMAT.md R73): the node exists iff 0 < id < next_node_id,
        # so nothing is decoded here; the handle reads the node when it is used.
        if store is None or type(node_id) is not int or \
                not 0 < node_id < store.work.next_node_id:
            self._node_state(node_id)  # raises the right error
        return Node(self, node_id)

    @property
    def readonly(self) -> bool:
        return self.store.readonly

    @property
    def closed(self) -> bool:
        return self._store is None

    def close(self) -> None:
        """Close the file. Idempotent.

        Uncommitted changes are dropped, with an :class:`UncommittedChangesWarning`
        saying how many; ``discard()`` first to drop them on purpose, silently.
        """
        _close(self, stacklevel=3)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        """Close; staged changes are dropped with a warning, also when an exception
        leaves the block (the warning never replaces that exception, even under
        ``-W error``)."""
        if exc_type is None:
            _close(self, stacklevel=3)
            return
        # warnings turned into errors: the block's own exception goes on
        with contextlib.suppress(Warning):
            _close(self, stacklevel=3)

    def __del__(self) -> None:
        # Like an unclosed file: a memory collected with staged changes says that
        # they were lost. It does not close the store (a caller may hold
        # ``mem.store``); the warning must never raise out of a finalizer.
        store = getattr(self, "_store", None)
        dropped = getattr(store, "pending_count", 0) if store is not None else 0
        if dropped:
            with contextlib.suppress(Exception):
                warnings.warn(_dropped_message(self.path, dropped, "garbage collected"),
                              UncommittedChangesWarning, stacklevel=2)

    def __repr__(self) -> str:
        if self._store is None:
            return f"<Memory {self.path!r} closed>"
        return f"<Memory {self.path!r} head={self._store.head_seq}>"

    # ------------------------------------------------------------------ changes

    def create(self, type: str, /, **fields: Any) -> Node:
        """Stage a new node of ``type`` with ``fields``; return its handle."""
        if not isinstance(type, str) or not type:
            raise InvalidValueError("a node type must be a non-empty string")
        if len(type.encode("utf-8", "surrogatepass")) > MAX_TYPE_NAME:
            raise InvalidValueError(f"node type is longer than {MAX_TYPE_NAME} bytes")
        store = self.store
        node_id = store.state.next_node_id
        store.stage(Create(node_id, type, {k: to_stored(v, self) for k, v in fields.items()}))
        return Node(self, node_id)

    @property
    def pending(self) -> int:
        """Number of staged (uncommitted) mutations."""
        return self.store.pending_count

    def commit(self, label: str | None = None, *, allow_empty: bool = False) -> Commit | None:
        """Commit staged changes atomically; return the new :class:`Commit`.

        With nothing staged, nothing is written and ``None`` is returned, unless
        ``allow_empty=True`` (an empty commit, e.g. as a marker). Raises
        WriterFailedError if the write fails (changes stay staged).
        """
        return self.store.commit(label, allow_empty)

    def discard(self) -> int:
        """Drop staged changes; return how many mutations were dropped."""
        return self._open_store().discard()

    @contextlib.contextmanager
    def transaction(self, label: str | None = None) -> Iterator[Memory]:
        """Commit on success, discard on exception. Refuses to start with staged changes.

        Either the block's changes are committed, or, on any exception (the
        commit's own included), none of them stays staged; after an
        interrupted commit the handle refuses further use (InterruptedOperationError).
        """
        if self.store.pending_count:
            raise InvalidOperationError(
                "commit or discard the staged changes before starting a transaction")
        try:
            yield self
            self.commit(label)
        except BaseException:
            store = self._store
            # Not after an interrupted commit: whether it reached the file is
            # for a reopen to tell, and discard() would raise over the exception.
            if store is not None and remedy_of(store.work) in (None, DISCARD):
                store.discard()
            raise

    def state_hash(self) -> str:
        return self.store.state_hash().hex()

    def verify(self) -> VerifyReport:
        """Check the whole file against every rule of FORMAT.md (see ``myo fsck``)."""
        return verify_file(self.path)

    def compact(self, at: CommitRef | None = None) -> CompactResult:
        """Fold the history up to commit ``at`` (default: the head) into a genesis
        snapshot; the latest state and every later commit stay exactly as they are.

        Requires the writer and nothing staged. Atomic: a crash leaves the old file
        or the new one. Commits before ``at`` can no longer be viewed afterwards.
        """
        store = self.store
        store._require_writer()
        if store.pending_count:
            raise InvalidOperationError("commit or discard the staged changes before compacting")
        base = store.head_seq if at is None else self.resolve(at)
        return compact(store, base)

    def checkpoint(self) -> bool:
        """Write a checkpoint of the committed state now; False if one already covers it."""
        return self.store.checkpoint()

    def sync(self) -> None:
        """Make all commits durable now (for ``durability="none"``)."""
        self.store.sync()

    def refresh(self) -> int:
        """Reader: move to the newest commit in the file; return how many commits arrived."""
        store = self._open_store()  # an interrupted refresh is settled by the next one
        if not is_unsettled(store.work) and store.pending_count:
            raise InvalidOperationError("refresh with staged changes")
        try:
            return store.refresh()
        except CorruptFileError:
            # the new commits could not be applied whole: this memory's state
            # is no longer a committed state, so it is closed
            self.close()
            raise

    # ------------------------------------------------------------------ history

    @property
    def head(self) -> Commit | None:
        """The newest commit, or None when nothing was ever committed."""
        s = self.store
        return None if s.head_seq == 0 else s.commit_info(s.head_seq)

    def history(self) -> list[Commit]:
        """Every commit record in the file, oldest first.

        After compaction these are the commits after the genesis base; the
        base itself (``mem.commit_info(base)``, ``compacted=True``) can still be
        viewed and diffed, and is ``mem.head`` until the next commit.
        """
        s = self.store
        return [s.commit_info(q) for q in range(s.history.base_seq + 1, s.head_seq + 1)]

    def commit_info(self, commit: CommitRef) -> Commit:
        """The :class:`Commit` named by ``commit`` (see :meth:`resolve`), read from its
        header only."""
        return self.store.commit_info(self.resolve(commit))

    def resolve(self, commit: CommitRef) -> int:
        """The sequence number of a commit named by seq, Commit, full or unique
        prefix id, ``HEAD`` or ``HEAD~N``.

        A string of decimal digits is a sequence number when it is shorter than
        12 characters; otherwise, and for any string with a letter a–f, it is
        an id prefix (at least 4 hex digits).
        """
        s = self.store
        if isinstance(commit, Commit):
            if s.history.base_seq < commit.seq <= s.head_seq and \
                    s.history.commit_id(commit.seq).hex() == commit.id:
                return commit.seq
            raise CommitNotFoundError(f"commit {commit.id[:12]} is not in this history")
        if type(commit) is int:
            return s.resolve(commit)
        if isinstance(commit, str):
            name = commit.strip()
            if name.upper() == "HEAD" or name.upper().startswith("HEAD~"):
                back = name[5:] or "0"
                if not back.isdigit():
                    raise CommitNotFoundError(f"bad commit name {commit!r}; use HEAD~N")
                return s.resolve(s.head_seq - int(back))
            low = name.lower()
            if name.isdigit() and len(name) < 12:
                return s.resolve(int(name))
            if len(low) >= 4 and all(c in "0123456789abcdef" for c in low):
                hits = [q for q in range(s.history.base_seq, s.head_seq + 1)
                        if q > 0 and s.history.commit_id(q).hex().startswith(low)]
                if len(hits) == 1:
                    return hits[0]
                if len(hits) > 1:
                    raise CommitNotFoundError(f"commit id prefix {name!r} is ambiguous; "
                                              "give more digits")
            if name.isdigit():
                return s.resolve(int(name))
            raise CommitNotFoundError(f"no commit named {commit!r}")
        raise CommitNotFoundError(f"cannot name a commit with {type(commit).__name__}")

    def at(self, commit: CommitRef) -> View:
        """A read-only view of the state after ``commit``."""
        return View(self, self.resolve(commit))

    def diff(self, a: CommitRef, b: CommitRef) -> Diff:
        """What changed from commit ``a`` to commit ``b``."""
        return diff_states(self.store, self.resolve(a), self.resolve(b))


class View(_Reader):
    """The read-only state after one commit: the read API of Memory, no changes."""

    def __init__(self, memory: Memory, seq: int) -> None:
        self._memory = memory
        self.seq = seq
        self._hist = memory.store.state_at(seq)

    def _read_state(self) -> HistoricalState:
        if self._memory.closed:
            raise ClosedError(f"{self._memory.path} was closed; open it again to use it")
        return self._hist

    def _where(self) -> str:
        return f" at commit {self.seq}"

    def state_hash(self) -> str:
        return state_hash(self._read_state().whole().image()).hex()

    def _stage(self, m: Mutation) -> None:
        raise ReadOnlyError(f"a view of commit {self.seq} is read-only; change the Memory")

    @property
    def commit(self) -> Commit:
        return self._memory.store.commit_info(self.seq)

    def __repr__(self) -> str:
        return f"<View of commit {self.seq}>"
