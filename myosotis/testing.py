"""Hooks for tests of Myosotis and of programs built on it. Public, but not for
production use: nothing here is needed to use a memory.

- :func:`open_memory`: ``Memory.open`` with injected file operations (fault
  injection: a failing ``fsync``, a short write, ENOSPC) and a checkpoint
  floor (how many bytes of commits since the last checkpoint make a writer
  write a new one; 0 checkpoints after every commit), and the bound of the
  time-travel cache (commit payload bytes kept decoded; a tiny one makes every
  read of the past decode again, to test eviction).
- :func:`store_of`: the engine object behind a memory, for white-box tests.
  Its interface is internal and may change in any release.
- :class:`FileOps` and :data:`REAL_FILE_OPS`: the seam the storage layer does
  its system calls through; subclass ``FileOps`` to inject faults.
"""

from __future__ import annotations

import os

from myosotis.api.memory import Memory
from myosotis.engine.store import Clock, Durability, Store
from myosotis.errors import InvalidArgumentError
from myosotis.storage.fileops import REAL as REAL_FILE_OPS
from myosotis.storage.fileops import FileOps

__all__ = ["FileOps", "REAL_FILE_OPS", "open_memory", "store_of"]


def open_memory(path: str | os.PathLike[str], *, readonly: bool = False,
                durability: Durability = "full", clock: Clock | None = None,
                lock_timeout: float = 0.0, node_cache: int | None = None,
                fileops: FileOps | None = None, checkpoint_floor: int | None = None,
                travel_cache: int | None = None) -> Memory:
    """``Memory.open`` with the test hooks ``fileops``, ``checkpoint_floor`` (bytes >= 0;
    None: the engine's policy) and ``travel_cache`` (bytes >= 0 of commit payloads
    time travel keeps decoded, beyond the segments it never drops; None: policy
    TIMETRAVEL_BYTES). Checks every argument as ``Memory.open`` does, and raises
    InvalidArgumentError for a bad ``travel_cache``."""
    if travel_cache is not None and (isinstance(travel_cache, bool) or not isinstance(
            travel_cache, int) or travel_cache < 0):
        raise InvalidArgumentError(f"travel_cache must be an int >= 0 (bytes) or None, "
                                   f"not {travel_cache!r}")
    mem = Memory._open(path, readonly=readonly, durability=durability, clock=clock,
                       lock_timeout=lock_timeout, node_cache=node_cache, fileops=fileops,
                       checkpoint_floor=checkpoint_floor)
    if travel_cache is not None:
        # Only the head's segment is cached yet (nothing over the bound); a
        # reopen builds its TimeTravel from store.travel_cache.
        store = store_of(mem)
        store.travel_cache = store.travel.cache_bytes = travel_cache
    return mem


def store_of(mem: Memory) -> Store:
    """The engine store behind ``mem`` (ClosedError once closed)."""
    return mem._live_store()
