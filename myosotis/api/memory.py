"""``Memory``: the public entry point (open, change, commit, history, maintenance)."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from myosotis.api.args import check_open_args, check_path
from myosotis.api.handles import Node, to_stored
from myosotis.api.info import MemoryInfo, SpaceUsage, memory_info, space_usage
from myosotis.api.names import CommitRef, resolve_commit
from myosotis.api.view import Reader, StateLike, View
from myosotis.engine.compact import CompactResult, compact
from myosotis.engine.diff import Diff, diff_states
from myosotis.engine.history import Commit
from myosotis.engine.policy import NODE_CACHE
from myosotis.engine.store import Clock, Durability, Store, system_clock
from myosotis.engine.unsettled import DISCARD, check_settled, is_unsettled, remedy_of
from myosotis.engine.verify import VerifyReport, repair_file, verify_file
from myosotis.errors import (
    ClosedError,
    CorruptFileError,
    InvalidOperationError,
    InvalidValueError,
    UncommittedChangesWarning,
)
from myosotis.format.constants import MAX_TYPE_NAME
from myosotis.format.mutations import Create, Mutation, get_mutation, put_mutation
from myosotis.storage.fileops import REAL, FileOps
from myosotis.storage.lock import WriterLock


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


class RepairResult(NamedTuple):
    """What :meth:`Memory.repair` found and did."""

    report: VerifyReport  # the file as checked after the repair
    actions: list[str]  # what was done, one sentence each


class Memory(Reader):
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
             lock_timeout: float = 0.0, node_cache: int | None = None) -> Memory:
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
        ``node_cache``: how many nodes read from the newest checkpoint stay
        decoded, the most recent ones (default 65,536; changed nodes are not
        counted); memory then stays bounded however much of the state is read.

        Every argument is checked before any file is touched
        (InvalidArgumentError), and a failed open leaves nothing it created (no
        data file, no lock sidecar). Raises NotARegularFileError (a directory,
        a FIFO: never waits on one), LockedError, NotAMyosotisFileError,
        UnsupportedVersionError, CorruptFileError.
        """
        return cls._open(path, readonly=readonly, durability=durability, clock=clock,
                         lock_timeout=lock_timeout, node_cache=node_cache)

    @classmethod
    def _open(cls, path: str | os.PathLike[str], *, readonly: bool = False,
              durability: Durability = "full", clock: Clock | None = None,
              lock_timeout: float = 0.0, node_cache: int | None = None,
              fileops: FileOps | None = None, checkpoint_floor: int | None = None) -> Memory:
        """:meth:`open` with the test hooks of ``myosotis.testing`` (see there)."""
        p = check_open_args(path, readonly=readonly, durability=durability, clock=clock,
                            lock_timeout=lock_timeout, node_cache=node_cache, fileops=fileops,
                            checkpoint_floor=checkpoint_floor)
        store = Store.open(
            p, readonly=readonly, durability=durability, clock=clock or system_clock,
            fileops=fileops or REAL, lock_timeout=lock_timeout,
            checkpoint_floor=checkpoint_floor,
            node_cache=NODE_CACHE if node_cache is None else node_cache)
        return cls(store, p)

    # ------------------------------------------------------------------ plumbing

    def _live_store(self) -> Store:
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

    def _read_state(self) -> StateLike:
        return self._live_store().state

    def _stage(self, m: Mutation) -> None:
        store = self._store
        if store is None:
            raise ClosedError(f"{self.path} was closed; open it again to use it")
        store.stage(m)

    def _stage_all(self, ms: list[Mutation]) -> None:
        self._open_store().stage_all(ms)

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
        return self._live_store().readonly

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
        # they were lost. It does not close the store (a View or handle may
        # still hold it); the warning must never raise out of a finalizer.
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
        store = self._live_store()
        node_id = store.state.next_node_id
        store.stage(Create(node_id, type, {k: to_stored(v, self) for k, v in fields.items()}))
        return Node(self, node_id)

    def stage(self, *mutations: Mutation) -> None:
        """Stage raw mutations (FORMAT.md §6: ``Create``, ``Set``, ``ListInsert``, …)
        as one edit, all or nothing.

        Each is checked as its commit will encode it (InvalidValueError: a value
        that is not a stored value, a limit of §11) and against the graph rules
        (NodeNotFoundError, DeletedNodeError, InvalidOperationError, R50–R53);
        on any error nothing is staged. Values are copied: changing them later
        changes nothing staged. References are ``Ref(id)``, not handles.
        """
        store = self._live_store()
        store.require_writer()
        copies = []
        for m in mutations:
            buf = bytearray()
            put_mutation(buf, m)  # refuses what the file could not hold
            copies.append(get_mutation(buf, 0, len(buf))[0])  # a copy, as it will be read
        self._stage_all(copies)  # checked whole first: a refused one stages none

    @property
    def pending(self) -> int:
        """Number of staged (uncommitted) mutations."""
        return self._live_store().pending_count

    def commit(self, label: str | None = None, *, allow_empty: bool = False) -> Commit | None:
        """Commit staged changes atomically; return the new :class:`Commit`.

        With nothing staged, nothing is written and ``None`` is returned, unless
        ``allow_empty=True`` (an empty commit, e.g. as a marker). Raises
        WriterFailedError if the write fails (changes stay staged).
        """
        return self._live_store().commit(label, allow_empty)

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
        if self._live_store().pending_count:
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
        return self._live_store().state_hash().hex()

    def verify(self) -> VerifyReport:
        """Check the whole file against every rule of FORMAT.md (see ``myo fsck``)."""
        return verify_file(self.path)

    @staticmethod
    def check_file(path: str | os.PathLike[str],
                   progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Check the file at ``path`` against every rule of FORMAT.md without opening it
        (so a file too damaged to open is still checked); ``myo fsck``.

        Never raises for damage: each problem is a :class:`Finding` of the report.
        Raises MyosotisError only when the file cannot be read at all.
        ``progress(done_bytes, total_bytes)`` is called as the check advances.
        """
        return verify_file(check_path(path), progress)

    @staticmethod
    def repair(path: str | os.PathLike[str], *, lock_timeout: float = 0.0) -> RepairResult:
        """Repair what loses nothing committed (``myo fsck --repair``).

        Takes the writer lock (LockedError while a writer has the file). Cuts a
        torn tail or a damaged last frame after copying its bytes to
        ``<file>.recovered-<offset>``; rewrites the file without checkpoints that
        fail (they are a cache). Other findings are only reported. Returns the
        report after repair and what was done.
        """
        report, actions = repair_file(check_path(path), lock_timeout=lock_timeout)
        return RepairResult(report, actions)

    @staticmethod
    @contextlib.contextmanager
    def writer_lock(path: str | os.PathLike[str], *, timeout: float = 0.0) -> Iterator[None]:
        """Hold the writer lock of the file at ``path`` without opening it (e.g. to
        change its stage file); raises LockedError after ``timeout`` seconds."""
        lock = WriterLock(check_path(path))
        lock.acquire(timeout)
        try:
            yield
        finally:
            lock.release()

    def info(self) -> MemoryInfo:
        """Sizes, versions and history bounds of the open file (O(1); see MemoryInfo)."""
        return memory_info(self._live_store(), self.path)

    def space(self) -> SpaceUsage:
        """Bytes by record kind, torn tail and free space: walks every frame header."""
        self._live_store()
        return space_usage(self.path)

    def compact(self, at: CommitRef | None = None) -> CompactResult:
        """Fold the history up to commit ``at`` (default: the head) into a genesis
        snapshot; the latest state and every later commit stay exactly as they are.

        Requires the writer and nothing staged. Atomic: a crash leaves the old file
        or the new one. Commits before ``at`` can no longer be viewed afterwards.
        """
        store = self._live_store()
        store.require_writer()
        if store.pending_count:
            raise InvalidOperationError("commit or discard the staged changes before compacting")
        base = store.head_seq if at is None else self.resolve(at)
        return compact(store, base)

    def checkpoint(self) -> bool:
        """Write a checkpoint of the committed state now; False if one already covers it."""
        return self._live_store().checkpoint()

    def sync(self) -> None:
        """Make all commits durable now (for ``durability="none"``)."""
        self._live_store().sync()

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
        s = self._live_store()
        return None if s.head_seq == 0 else s.commit_info(s.head_seq)

    def commits(self, *, reverse: bool = False) -> Iterator[Commit]:
        """The commit records after the compacted base (``info().base_seq``), oldest
        first (newest first with ``reverse=True``), read one at a time."""
        s = self._live_store()
        for q in s.commit_seqs(reverse):
            yield s.commit_info(q)

    def history(self) -> list[Commit]:
        """Every commit record in the file, oldest first.

        After compaction these are the commits after the genesis base; the
        base itself (``mem.commit_info(base)``, ``compacted=True``) can still be
        viewed and diffed, and is ``mem.head`` until the next commit.
        """
        return list(self.commits())

    def commit_info(self, commit: CommitRef) -> Commit:
        """The :class:`Commit` named by ``commit`` (see :meth:`resolve`), read from its
        header only."""
        return self._live_store().commit_info(self.resolve(commit))

    def resolve(self, commit: CommitRef) -> int:
        """The sequence number of a commit named by seq, Commit, full or unique
        prefix id, ``HEAD`` or ``HEAD~N``.

        A string of decimal digits is a sequence number when it is shorter than
        12 characters; otherwise, and for any string with a letter a–f, it is
        an id prefix (at least 4 hex digits).
        """
        return resolve_commit(self._live_store(), commit)

    def at(self, commit: CommitRef) -> View:
        """A read-only view of the state after ``commit``."""
        return View(self, self.resolve(commit))

    def diff(self, a: CommitRef, b: CommitRef) -> Diff:
        """What changed from commit ``a`` to commit ``b``."""
        return diff_states(self._live_store(), self.resolve(a), self.resolve(b))
