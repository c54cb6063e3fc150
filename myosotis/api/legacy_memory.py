"""The memory of a legacy v0.5 file until its first change migrates it (see
api/legacy.py and formatspec/LEGACY.md §5)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from myosotis.api.args import check_path
from myosotis.api.legacy import LegacySource, MigrateResult, check_legacy, summary_result
from myosotis.api.memory import Memory
from myosotis.api.names import CommitRef
from myosotis.engine.compact import CompactResult
from myosotis.engine.diff import Diff
from myosotis.engine.history import Commit
from myosotis.engine.legacy import BACKUP_SUFFIX, read_file
from myosotis.engine.policy import CHECKPOINT_FLOOR, NODE_CACHE
from myosotis.engine.rewind import RevertResult
from myosotis.engine.store import Store
from myosotis.engine.verify import VerifyReport
from myosotis.errors import NotAMyosotisFileError, ReadOnlyError
from myosotis.format.mutations import Mutation


class LegacyMemory(Memory):
    """A :class:`Memory` over a legacy file: reads see the migrated file's state,
    history and commit ids; the first change migrates the file, and from then on
    this is a plain memory of the binary file."""

    _legacy: LegacySource | None

    def _writable(self) -> None:
        src = self._legacy
        if src is None:
            return
        if src.readonly:
            raise ReadOnlyError(f"{self.path} is a legacy v0.5 file open read-only; open it "
                                "without readonly=True to change it (the first change "
                                "migrates it)")
        src.migrate()
        # Past the rename the file is binary: this memory must read it, not the copy.
        old = self._store
        self._store, self._legacy = None, None
        if old is not None:
            old.close()
        src.release_lock()  # the binary store takes the lock itself
        try:
            self._store = Store.open(self.path, **src.opts)
        finally:
            src.close()

    def _stage(self, m: Mutation) -> None:
        self._writable()
        super()._stage(m)

    def _stage_all(self, ms: list[Mutation]) -> None:
        self._writable()
        super()._stage_all(ms)

    def create(self, type: str, /, **fields: Any) -> Any:
        self._writable()
        return super().create(type, **fields)

    def stage(self, *mutations: Mutation) -> None:
        self._writable()
        super().stage(*mutations)

    def commit(self, label: str | None = None, *, allow_empty: bool = False) -> Commit | None:
        if self._legacy is not None and not allow_empty:
            return None  # nothing can be staged before migration: nothing to write
        self._writable()
        return super().commit(label, allow_empty=allow_empty)

    def apply(self, diff: Diff) -> int:
        self._writable()
        return super().apply(diff)

    def restore(self, commit: CommitRef, nodes: Iterable[int] | None = None) -> list[Mutation]:
        self._writable()
        return super().restore(commit, nodes)

    def revert(self, commit: CommitRef, *, force: bool = False) -> RevertResult:
        self._writable()
        return super().revert(commit, force=force)

    def checkpoint(self) -> bool:
        self._writable()
        return super().checkpoint()

    def compact(self, at: CommitRef | None = None, *, keep_last: int | None = None,
                keep_since: _dt.datetime | None = None, dry_run: bool = False) -> CompactResult:
        if not dry_run:  # a dry run changes nothing, so it does not migrate either
            self._writable()
        return super().compact(at, keep_last=keep_last, keep_since=keep_since, dry_run=dry_run)

    def verify(self) -> VerifyReport:
        src = self._legacy
        return check_legacy(self.path, src.data) if src is not None else super().verify()

    def close(self) -> None:
        src, self._legacy = self._legacy, None
        super().close()
        if src is not None:
            src.close()


def open_legacy(path: str, readonly: bool, lock_timeout: float,
                opts: dict[str, Any]) -> LegacyMemory:
    """A memory over the legacy file ``path``; ``opts``: Store.open's options for the
    binary file after migration.

    Raises NotAMyosotisFileError when ``path`` is not a legacy file either,
    UnsupportedVersionError, CorruptFileError (with the JSON location) for a
    legacy file that breaks LEGACY.md §3, LockedError.
    """
    src = LegacySource(path, read_file(path, only_legacy=True), opts, lock_timeout, readonly)
    try:
        store = src.open_store()
    except BaseException:
        src.close()
        raise
    mem = LegacyMemory(store, path)
    mem._legacy = src
    return mem


def migrate_file(path: Any, lock_timeout: float) -> MigrateResult:
    """See Memory.migrate."""
    p = check_path(path)
    try:
        read_file(p, only_legacy=True)  # never blocks on a FIFO, reads a binary file's start only
    except NotAMyosotisFileError:
        # a binary file (nothing to do), or not ours at all (open says which)
        with Memory.open(p, readonly=True) as mem:
            head = mem.head
            return MigrateResult(p, None, head.seq if head else 0, head.id if head else None,
                                 mem.state_hash())
    opts = {"readonly": False, "lock_timeout": lock_timeout, "node_cache": NODE_CACHE,
            "checkpoint_floor": CHECKPOINT_FLOOR}
    mem = open_legacy(p, False, lock_timeout, opts)
    try:
        src = mem._legacy
        assert src is not None
        summary = src.summary
        mem._writable()
    finally:
        mem.close()
    return summary_result(p, summary, p + BACKUP_SUFFIX)
