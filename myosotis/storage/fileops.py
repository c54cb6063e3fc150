"""The system calls the storage layer makes, behind one replaceable object.

Production code uses :data:`REAL`. Fault-injection tests pass their own
:class:`FileOps` subclass (failing ``sync`` with EIO, simulating power loss)
to ``Memory.open(..., fileops=...)``; nothing else in the package calls
``os.write``/``os.fsync`` on the data file directly.
"""

from __future__ import annotations

import os
import sys


class FileOps:
    """Thin wrappers over ``os``; each raises ``OSError`` as the call does."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        """Write all of ``data`` at ``offset`` (loops over short writes)."""
        n = os.pwrite(fd, data, offset)
        if n == len(data):  # the usual case: one call
            return
        offset += n
        view = memoryview(data)[n:]
        while view:
            n = os.pwrite(fd, view, offset)
            if n <= 0:  # pragma: no cover - the kernel raises instead
                raise OSError("short write")
            view = view[n:]
            offset += n

    def sync(self, fd: int) -> None:
        """Make the file's data and size durable (fdatasync where it exists)."""
        if sys.platform == "darwin":  # pragma: no cover - fsync does not reach the disk there
            import fcntl

            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
        elif hasattr(os, "fdatasync"):
            os.fdatasync(fd)
        else:  # pragma: no cover
            os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def sync_dir(self, path: str) -> None:
        """fsync the directory holding ``path`` so a create or rename is durable."""
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def link(self, src: str, dst: str) -> None:
        os.link(src, dst)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)


REAL = FileOps()
