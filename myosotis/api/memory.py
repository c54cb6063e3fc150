"""``Memory``: the public entry point (open, change, commit, history, maintenance)."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from myosotis.api.args import check_open_args, check_path
from myosotis.api.handles import Node, to_stored
from myosotis.api.names import resolve_commit
from myosotis.api.view import Reader, StateLike, View
from myosotis.engine.graph import Overlay
from myosotis.engine.history import Commit
from myosotis.engine.policy import NODE_CACHE
from myosotis.engine.store import Clock, Durability, Store, system_clock
from myosotis.engine.unsettled import DISCARD, check_settled, is_unsettled, remedy_of
from myosotis.errors import (
    ClosedError,
    CorruptFileError,
    InvalidOperationError,
    InvalidValueError,
    NotAMyosotisFileError,
    UncommittedChangesWarning,
)
from myosotis.format.constants import MAX_TYPE_NAME
from myosotis.format.display import short_repr
from myosotis.format.mutations import Create, Mutation, get_mutation, put_mutation
from myosotis.storage.fileops import REAL, FileOps
from myosotis.storage.lock import WriterLock

# What a program that opens a memory, reads, changes and commits does not use
# (history queries, diff, rewind, fork, compaction, verify, interchange, legacy
# files, notebooks) is imported inside the method that needs it, so that
# `import myosotis` stays cheap (tests/test_import_cost.py).
if TYPE_CHECKING:
    import datetime as _dt

    from myosotis.api.info import MemoryInfo, SpaceUsage
    from myosotis.api.legacy import MigrateResult
    from myosotis.api.names import CommitRef
    from myosotis.api.timeline import LabelFilter
    from myosotis.engine.compact import CompactResult
    from myosotis.engine.diff import Diff
    from myosotis.engine.fork import Origin
    from myosotis.engine.node_history import LogEntry, Referrer
    from myosotis.engine.rewind import RevertResult
    from myosotis.engine.verify import VerifyReport


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
        opts: dict[str, Any] = dict(
            readonly=readonly, durability=durability, clock=clock or system_clock,
            fileops=fileops or REAL, lock_timeout=lock_timeout,
            checkpoint_floor=checkpoint_floor,
            node_cache=NODE_CACHE if node_cache is None else node_cache)
        try:
            store = Store.open(p, **opts)
        except NotAMyosotisFileError:
            # Perhaps a legacy v0.5 file (formatspec/LEGACY.md): read as it is
            from myosotis.api.legacy_memory import open_legacy
            return open_legacy(p, readonly, lock_timeout, opts)
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

    def _owner(self) -> Memory:
        return self

    def _stage(self, m: Mutation) -> None:
        store = self._store
        if store is None:
            raise ClosedError(f"{self.path} was closed; open it again to use it")
        store.stage(m)

    def _stage_all(self, ms: list[Mutation]) -> None:
        self._open_store().stage_all(ms)

    def _node_fields(self, node_id: int) -> dict[str, Any]:
        # A node only in the base is decoded straight into the plain values returned,
        # not cached (the caller owns them): one pass, no stored form to copy. One
        # held decoded (staged, changed, cached) is copied; anything else (closed,
        # unsettled, no such node) takes that path too, and its errors.
        store = self._store
        if store is not None and type(node_id) is int:
            work = store.work
            if type(work) is Overlay:
                f = work.plain_fields(node_id, partial(Node, self))
                if f is not None:
                    return f
        return super()._node_fields(node_id)

    def nodes(self, type: str | None = None, *, deleted: bool = False) -> Iterator[Node]:
        """Nodes in id order, optionally of one ``type``; tombstoned ones only with
        ``deleted=True``."""
        if type is not None or deleted:
            yield from super().nodes(type, deleted=deleted)
            return
        # The live nodes: a merge of the layers' ids reading each node's flags
        # byte only (Overlay.live_ids); the reads that follow find it at once.
        state = self._read_state()
        assert isinstance(state, Overlay)  # a Memory reads its store's work
        for node_id in state.live_ids():
            yield Node(self, node_id)

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
            return f"<Memory {short_repr(self.path)} closed>"
        return f"<Memory {short_repr(self.path)} head={self._store.head_seq}>"

    def _repr_html_(self) -> str:
        """A notebook table of the nodes, staged changes included (bounded, escaped)."""
        from myosotis.api.notebook import nodes_html
        store = self._live_store()
        staged = f" + {store.pending_count} staged changes" if store.pending_count else ""
        return nodes_html(self, f"{self.path} at commit {store.head_seq}{staged}")

    # ------------------------------------------------------------------ changes

    def create(self, type: str, /, **fields: Any) -> Node:
        """Stage a new node of ``type`` with ``fields``; return its handle."""
        if not isinstance(type, str) or not type:
            raise InvalidValueError("a node type must be a non-empty string")
        if len(type.encode("utf-8", "surrogatepass")) > MAX_TYPE_NAME:
            raise InvalidValueError(f"node type is longer than {MAX_TYPE_NAME} bytes")
        store = self._live_store()
        node_id = store.work.next_node_id
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
        from myosotis.engine.verify import verify_file
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
        from myosotis.api.legacy import check_legacy
        from myosotis.engine.legacy import is_legacy, read_file
        from myosotis.engine.verify import verify_file
        p = check_path(path)
        if is_legacy(p):
            return check_legacy(p, read_file(p))
        return verify_file(p, progress)

    @staticmethod
    def repair(path: str | os.PathLike[str], *, lock_timeout: float = 0.0) -> RepairResult:
        """Repair what loses nothing committed (``myo fsck --repair``).

        Takes the writer lock (LockedError while a writer has the file). Cuts a
        torn tail or a damaged last frame after copying its bytes to
        ``<file>.recovered-<offset>``; rewrites the file without checkpoints that
        fail (they are a cache). Other findings are only reported. Returns the
        report after repair and what was done.
        """
        from myosotis.api.legacy import check_legacy
        from myosotis.engine.legacy import is_legacy, read_file
        from myosotis.engine.verify import repair_file
        p = check_path(path)
        if is_legacy(p):  # LEGACY.md: nothing to cut or drop; migration rewrites it whole
            return RepairResult(check_legacy(p, read_file(p)), [])
        report, actions = repair_file(p, lock_timeout=lock_timeout)
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
        from myosotis.api.info import memory_info
        return memory_info(self._live_store(), self.path)

    def space(self) -> SpaceUsage:
        """Bytes by record kind, torn tail and free space: walks every frame header."""
        from myosotis.api.info import space_usage
        self._live_store()
        return space_usage(self.path)

    def compact(self, at: CommitRef | None = None, *, keep_last: int | None = None,
                keep_since: _dt.datetime | None = None, dry_run: bool = False) -> CompactResult:
        """Fold the history up to commit ``at`` (default: the head) into a genesis
        snapshot; the latest state and every later commit stay exactly as they are.

        Or by a retention policy (instead of ``at``): ``keep_last=N`` keeps the
        newest N commits, ``keep_since=datetime`` (timezone-aware) every commit
        from the first one at or after it; both: what either keeps. A policy that
        keeps every commit rewrites nothing. ``dry_run=True`` changes nothing and
        returns what would be done (``folded``, ``bytes_reclaimed``); it builds
        the new bytes in memory to measure them.

        Requires the writer and nothing staged (but for a dry run). Atomic: a
        crash leaves the old file or the new one. Commits before the base can no
        longer be viewed afterwards. Raises InvalidArgumentError (``at`` with a
        policy, a bad policy value), CommitNotFoundError.
        """
        from myosotis.api import rewind as _rewind
        return _rewind.compact_with(self, at, keep_last, keep_since, dry_run)

    # ------------------------------------------------------------------ going back

    def restore(self, commit: CommitRef, nodes: Iterable[int] | None = None) -> list[Mutation]:
        """Stage the changes that make the live state equal to commit ``commit``'s;
        ``commit()`` them like any change. Returns the mutations staged.

        Exactly: every node a later commit touched gets ``commit``'s fields and
        tombstone (UNSET/SET, DELETE/UNDELETE); a node created after it is
        tombstoned (ids are never reused), its fields left as they are. Then
        ``diff(commit, "HEAD")`` lists only those tombstones. ``nodes``: restore
        just these ids. An UNDELETE moves the file to format version 3 when
        committed. Requires the writer and nothing staged. Cost: the nodes
        touched between ``commit`` and the head. Raises CommitNotFoundError,
        NodeNotFoundError, InvalidOperationError (changes staged), ReadOnlyError.
        """
        from myosotis.api import rewind as _rewind
        return _rewind.restore(self, commit, nodes)

    def revert(self, commit: CommitRef, *, force: bool = False) -> RevertResult:
        """Stage the inverse of commit ``commit``'s changes: each field it changed goes
        back to its value before it, a node it created is tombstoned, a node it
        deleted is undeleted. ``commit()`` them like any change.

        If a later commit changed the same field (any path in it) or tombstone of
        a node (or, for a node ``commit`` created, anything of it), raises
        RevertConflictError listing each conflict (commit, node, path) and stages
        nothing; ``force=True`` keeps the later values and reports them in
        ``RevertResult.skipped``. Requires the writer and nothing staged. Cost:
        decoding the commits from ``commit`` to the head. Raises
        CommitNotFoundError (also for a commit folded by compaction).
        """
        from myosotis.api import rewind as _rewind
        return _rewind.revert(self, commit, force)

    def fork(self, commit: CommitRef, new_path: str | os.PathLike[str]) -> Origin:
        """Write a new memory at ``new_path`` whose history starts at ``commit``: its
        genesis is this state there, as compaction writes it (commits made on the
        fork continue the hash chain), followed by an origin record (FORMAT.md
        §8.6) naming this commit, its state hash and this file's genesis base.
        This file is only read. Returns the :class:`Origin` (also
        ``Memory.open(new_path).info().origin``).

        Atomic (temp file, fsync, link, directory fsync) and never overwrites:
        raises TargetExistsError if ``new_path`` exists, CommitNotFoundError,
        MyosotisError if the file cannot be written (nothing is left at
        ``new_path``). Cost: one image of the state at ``commit``.
        """
        from myosotis.api import rewind as _rewind
        return _rewind.fork(self, commit, new_path)

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

    def commits(self, *, since: CommitRef | None = None, until: CommitRef | None = None,
                label: LabelFilter = None, reverse: bool = False) -> Iterator[Commit]:
        """The commit records after the compacted base (``info().base_seq``), oldest
        first (newest first with ``reverse=True``), read one at a time: constant
        memory, O(commits in the range) header reads.

        ``since``/``until`` bound the list, both inclusive: a commit name (see
        :meth:`resolve`) bounds the sequence numbers; a ``datetime`` (or an ISO
        8601 string) keeps the commits whose timestamp is at or after ``since``
        / at or before ``until``, each commit on its own (timestamps come from the
        writer's clock and may go backwards, so this filters, it never stops
        early). ``label``: a regular expression that must be found
        (``re.search``) in the label (``""`` when there is none). Arguments are
        checked at the call: CommitNotFoundError, InvalidArgumentError.
        """
        from myosotis.api import timeline
        return timeline.commits(self._live_store(), since, until, label, reverse)

    def history(self) -> list[Commit]:
        """Every commit record in the file, oldest first: ``list(mem.commits())``.

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
        """The sequence number of a commit named by seq (an ``int``, or ``"seq:N"``),
        ``Commit``, full or unique prefix id (``"id:HEX"``, 4+ hex digits),
        ``HEAD`` or ``HEAD~N``, or a time (a ``datetime`` or an ISO 8601 string:
        the newest commit at or before it).

        A string of decimal digits is read as a sequence number and, with 4
        digits or more, as an id prefix: the one reading that names a commit
        wins; when both do, CommitNotFoundError lists both and says how to
        write each (api/names.py states the whole rule). Raises
        CommitNotFoundError.
        """
        return resolve_commit(self._live_store(), commit)

    def at(self, commit: CommitRef) -> View:
        """A read-only view of the state after ``commit`` (any name :meth:`resolve`
        takes). Given a ``datetime``, the newest commit (highest seq) whose
        timestamp is at or before it: timestamps come from the writer's clock,
        which may go backwards, so this scans headers back from the head,
        O(commits after it). Raises CommitNotFoundError."""
        return View(self, self.resolve(commit))

    def diff(self, a: CommitRef, b: CommitRef) -> Diff:
        """What changed from commit ``a`` to commit ``b`` (either order), down to the
        path inside each field (see :class:`Diff`, docs/DIFF.md).

        Costs the commits between the two (the touched node ids) now, and the
        touched nodes as the ops are read; never the whole state.
        """
        from myosotis.engine.diff import diff_states
        return diff_states(self._live_store(), self.resolve(a), self.resolve(b),
                           self._live_store)

    def apply(self, diff: Diff) -> int:
        """Stage the mutations that turn the state where ``diff`` touches it from its
        commit ``a`` into its commit ``b``, as one edit; return how many.

        Raises DiffConflictError, staging nothing, when this memory's state (staged
        changes included) differs from ``a`` at a node or path an op touches, when
        the diff creates nodes and ``next_node_id`` is not ``a``'s (ids are never
        reused), or when it goes back in time over a create or a delete. Other
        refusals are those of :meth:`stage`. Cost: the ops of the diff.
        """
        from myosotis.engine.diffapply import mutations_for
        store = self._live_store()
        store.require_writer()
        ms = mutations_for(diff, store.state)
        self.stage(*ms)
        return len(ms)

    # ------------------------------------------------------------------ per node

    def log(self, node: int | Node, field: str | None = None, *,
            at: CommitRef | None = None) -> Iterator[LogEntry]:
        """The commits that changed ``node`` (an id or a handle), newest first, each a
        :class:`LogEntry` ``(commit, mutations)`` with that commit's mutations of the
        node, decoded; with ``field``, only the commits (and mutations) that changed
        that field (a CREATE counts for the fields it sets). ``at``: only commits up
        to that one (default: the head). Committed history only, after the
        compacted base.

        Raises NodeNotFoundError (no such node at ``at``), CommitNotFoundError.
        Cost: through the history index (``<file>.idx``, caught up first with the
        commits it lacks), O(changes of the node), not a scan of the history.
        """
        from myosotis.api import node_queries
        return node_queries.log(self, node, field, at)

    def blame(self, node: int | Node, *, at: CommitRef | None = None) -> dict[str, Commit]:
        """Each field of ``node`` after commit ``at`` (default: the head), by name, ->
        the :class:`Commit` that last set it (``compacted=True`` for the compacted
        base). Raises NodeNotFoundError, CommitNotFoundError. Cost: O(changes of
        the node) through the history index (plus a time-travel read of the node
        when ``at`` is not the head)."""
        from myosotis.api import node_queries
        return node_queries.blame(self, node, at)

    def referrers(self, node: int | Node, *, at: CommitRef | None = None) -> list[Referrer]:
        """The places that reference ``node`` after commit ``at`` (default: the head):
        :class:`Referrer` ``(node, path)`` pairs, the path being the field name then
        list indexes and map keys, sorted; tombstoned referrers included (their
        fields are kept). Raises NodeNotFoundError, CommitNotFoundError. Cost:
        through the history index, O(reference changes of fields that ever pointed
        at the node), plus one read of each referring field."""
        from myosotis.api import node_queries
        return node_queries.referrers(self, node, at)

    # ------------------------------------------------------------------ interchange

    def export(self, fp: IO[Any], at: CommitRef | None = None, history: bool = False) -> None:
        """Write the canonical JSON export (formatspec/EXPORT.md) of the state after
        commit ``at`` (default: the head; staged changes are not exported) to ``fp``,
        a file object open for writing, text or binary (UTF-8).

        With ``history=True`` every commit up to ``at`` is written too, from the
        genesis state of a compacted file. Deterministic: the same state (and
        history) gives the same bytes. Streams in constant memory: beside what opening
        holds, one node or mutation at a time and a block of the state hash's tables;
        time is linear in the state (and history). Raises
        CommitNotFoundError, CorruptFileError (damage found on the way: ``fp`` then
        holds a partial document), and whatever ``fp.write`` raises.
        """
        from myosotis.api.interchange import export_to
        store = self._live_store()
        export_to(store, fp, store.head_seq if at is None else self.resolve(at), history)

    @classmethod
    def import_(cls, fp: IO[Any], path: str | os.PathLike[str], **open_args: Any) -> Memory:
        """Create the file ``path`` from an export read from ``fp`` (formatspec/EXPORT.md
        §8) and return it opened (``Memory.open(path, **open_args)``).

        A state export gives a file whose state hash and head commit equal the
        source's (a genesis snapshot, FORMAT.md §8.3); a history export gives
        every commit again, with the same ids. Every rule is checked first; bad
        input raises InvalidDocumentError naming its JSON location (a JSON
        pointer, or line and column), and no file is created; ``path`` must not
        exist (MyosotisError). The file appears whole (temp file, fsync, link,
        directory fsync). Reads the document as a stream, one node or commit at a
        time in the export's key order (another order reads ahead); holds the new
        file's state image and the nodes changed since its last checkpoint.
        """
        from myosotis.api.interchange import import_from
        p = check_path(path)
        import_from(fp, p)
        return cls.open(p, **open_args)

    @staticmethod
    def migrate(path: str | os.PathLike[str], *, lock_timeout: float = 0.0) -> MigrateResult:
        """Migrate a legacy v0.5 file (formatspec/LEGACY.md) to the binary format now, as
        its first write would (``myo migrate``).

        The legacy file is kept as ``<file>.v0.bak``; the binary file replaces it
        atomically, with the same commit ids and state hash. A file that is
        already binary is left as it is (``backup`` is None). Raises
        NotAMyosotisFileError, UnsupportedVersionError, CorruptFileError (naming the
        JSON location), LockedError.
        """
        from myosotis.api.legacy_memory import migrate_file
        return migrate_file(path, lock_timeout)
