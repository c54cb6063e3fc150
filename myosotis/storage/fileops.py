"""The system calls the storage layer makes, behind one replaceable object.

Production code uses :data:`REAL`. Fault-injection tests pass their own
:class:`FileOps` subclass (failing ``sync`` with EIO, simulating power loss)
to ``Memory.open(..., fileops=...)``; nothing else in the package calls
``os.write``/``os.fsync`` on the data file directly.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from typing import Any

from myosotis.errors import NotARegularFileError


class FileOps:
    """Thin wrappers over ``os``; each raises ``OSError`` as the call does."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def pwrite(self, fd: int, data: bytes | bytearray, offset: int) -> None:
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


def copy_mode(src: int | str, dst_fd: int) -> None:
    """Give the file open at ``dst_fd`` the permission bits of ``src`` (a descriptor
    or a path), and its owner and group as far as this process may set them.

    For every file written in place of or beside a data file (a compaction or
    repair output, the lock sidecar, the CLI's stage file), so that ``chmod 600``
    on the data file holds for them too, whatever the umask. Changing the owner
    needs privileges and changing the group membership of it: a refusal
    (EPERM) keeps the file's own owner or group. Raises OSError otherwise.
    """
    st = os.fstat(src) if isinstance(src, int) else os.stat(src)
    have = os.fstat(dst_fd)
    # Owner and group first: a chown may clear set-id bits that the chmod sets.
    for uid, gid in ((st.st_uid, st.st_gid), (-1, st.st_gid)):
        if (uid in (-1, have.st_uid)) and gid == have.st_gid:
            break
        try:
            os.fchown(dst_fd, uid, gid)
            break
        except PermissionError:
            continue
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EINVAL):  # EINVAL: no such id here
                raise
    os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def check_regular(path: str, st: os.stat_result) -> None:
    """Raise NotARegularFileError unless ``st`` (of ``path``) is a regular file's."""
    if stat.S_ISREG(st.st_mode):
        return
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
    raise NotARegularFileError(
        f"{path} is {kind}: a Myosotis file is a regular file; name a file that is one "
        "(or a missing one, to create it)")


def open_regular(path: str, flags: int, ops: FileOps = REAL) -> int:
    """Open the regular file ``path`` (through ``ops``) and return the descriptor.

    Never blocks and never opens anything else: a FIFO would block the open (or
    the first read) for as long as no writer comes, and opening a device can
    have side effects. So ``path`` is checked with ``stat`` first, opened with
    ``O_NONBLOCK`` (for a FIFO swapped in meanwhile), and checked again with
    ``fstat``; only then is ``O_NONBLOCK`` cleared. Raises NotARegularFileError,
    or OSError as ``open`` does (FileNotFoundError for a missing file).
    """
    check_regular(path, os.stat(path))
    try:
        fd = ops.open(path, flags | os.O_NONBLOCK)
    except IsADirectoryError:  # replaced by a directory since the stat
        check_regular(path, os.stat(path))
        raise
    try:
        check_regular(path, os.fstat(fd))
        os.set_blocking(fd, True)
    except BaseException:
        ops.close(fd)
        raise
    return fd


def same_file(path: str, fd: int) -> bool:
    """Whether ``path`` names the file open at ``fd`` now (False if it names none)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    have = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (have.st_dev, have.st_ino)


def keep_aside(data_path: str, data: Any, offset: int, ops: FileOps = REAL) -> str | None:
    """Copy ``data``, bytes that recovery is about to cut from ``data_path`` at
    ``offset``, durably to ``<real path>.recovered-<offset>``; return that path.

    None, writing nothing, when every byte is zero (free space or a sector
    never written: nothing to keep). A file of that name holding the same
    bytes is reused; one holding others gets ``-2``, ``-3``, … appended. The
    copy takes the data file's mode. Raises OSError (nothing is cut then).
    """
    kept = bytes(data)
    if kept.count(0) == len(kept):
        return None
    base = f"{os.path.realpath(data_path)}.recovered-{offset}"
    name, n = base, 1
    while os.path.exists(name):
        with open(name, "rb") as f:
            if f.read() == kept:
                return name
        n += 1
        name = f"{base}-{n}"
    tmp = f"{name}.tmp-{os.getpid()}"
    fd = ops.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        copy_mode(data_path, fd)
        ops.pwrite(fd, kept, 0)
        ops.sync(fd)
    finally:
        ops.close(fd)
    ops.replace(tmp, name)
    ops.sync_dir(name)
    return name
