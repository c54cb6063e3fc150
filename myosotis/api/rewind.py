"""The bodies of ``Memory.restore``, ``revert``, ``fork`` and ``compact`` with a retention
policy; ``Memory`` delegates to these (api/memory.py), the engine does the work
(engine/rewind.py, fork.py, retention.py, compact.py)."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from myosotis.api.args import check_path
from myosotis.engine.compact import CompactResult, compact
from myosotis.engine.fork import Origin, fork_bytes
from myosotis.engine.retention import retention_base
from myosotis.engine.rewind import RevertResult, require_clean, restore_plan, revert_plan
from myosotis.errors import InvalidArgumentError
from myosotis.format.mutations import Mutation
from myosotis.storage.newfile import create_new_file

if TYPE_CHECKING:
    from myosotis.api.memory import Memory
    from myosotis.api.names import CommitRef


def restore(mem: Memory, commit: CommitRef, nodes: Iterable[int] | None) -> list[Mutation]:
    """See Memory.restore."""
    store = mem._live_store()
    require_clean(store, "restoring")
    ms = restore_plan(store, mem.resolve(commit), None if nodes is None else list(nodes))
    if ms:
        # through the memory, not the store: a legacy memory migrates its file first
        mem._stage_all(ms)
    return ms


def revert(mem: Memory, commit: CommitRef, force: bool) -> RevertResult:
    """See Memory.revert."""
    store = mem._live_store()
    require_clean(store, "reverting")
    result = revert_plan(store, mem.resolve(commit), force)
    if result.mutations:
        mem._stage_all(list(result.mutations))
    return result


def fork(mem: Memory, commit: CommitRef, new_path: str | os.PathLike[str]) -> Origin:
    """See Memory.fork."""
    store = mem._live_store()
    path = check_path(new_path)
    data, origin = fork_bytes(store, mem.resolve(commit))
    create_new_file(path, lambda write, _patch: write(data), store.log.fileops, "fork")
    return Origin.of(origin)


def compact_with(mem: Memory, at: CommitRef | None, keep_last: int | None,
                 keep_since: _dt.datetime | None, dry_run: bool) -> CompactResult:
    """See Memory.compact."""
    store = mem._live_store()
    if not dry_run:
        require_clean(store, "compacting")
    if at is not None and (keep_last is not None or keep_since is not None):
        raise InvalidArgumentError("give either at= or a retention policy (keep_last, "
                                   "keep_since), not both")
    if keep_last is not None or keep_since is not None:
        base = retention_base(store, keep_last, keep_since)
    else:
        base = store.head_seq if at is None else mem.resolve(at)
    if base == store.commits.base_seq and (keep_last is not None or keep_since is not None):
        # The policy keeps every commit: nothing to fold, nothing is rewritten.
        size = store.log.valid_end
        return CompactResult(size, size, base, store.state_hash(staged=False).hex(), base + 1,
                             dry_run)
    return compact(store, base, dry_run)
