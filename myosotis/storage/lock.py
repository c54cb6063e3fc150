"""Locks: the writer lock (a sidecar file) and the truncation guard.

Writer lock: a writer holds ``flock(LOCK_EX)`` on ``<file>.lock`` for its
whole life. The lock lives on a sidecar rather than on the data file because
compaction replaces the data file's inode by a rename; a lock on the old inode
would no longer exclude a writer that opens the new one. The sidecar is never
deleted (deleting it would let two writers lock two different inodes).

Truncation guard: the only time the file ever shrinks is when a writer cuts a
torn tail (FORMAT.md §10 step 3). Readers touch mapped bytes past their last
verified frame only while scanning, and they scan under ``flock(LOCK_SH)`` on
the data file; the writer cuts under ``flock(LOCK_EX)``. So no reader can be
reading a page when it is cut off, and no reader dies of SIGBUS.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from myosotis.errors import LockedError, MyosotisError


class WriterLock:
    """The exclusive writer lock of one data file."""

    def __init__(self, data_path: str) -> None:
        self.path = data_path + ".lock"
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock; wait up to ``timeout`` seconds, then raise LockedError."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:
            if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
                raise MyosotisError(f"cannot open {self.path[:-5]}: its directory does not "
                                    "exist") from None
            raise MyosotisError(
                f"cannot create the lock file {self.path} ({e.strerror}); a writer needs a "
                "writable directory — open the file with readonly=True to only read it") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockedError(
                        f"{self.path[:-5]} is open for writing by another process or handle; "
                        "open it with readonly=True, or pass lock_timeout= to wait"
                    ) from None
                time.sleep(0.01)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


@contextlib.contextmanager
def truncation_guard(fd: int, exclusive: bool) -> Iterator[None]:
    """Hold the truncation guard on the data file descriptor ``fd``."""
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
