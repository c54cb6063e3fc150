"""Locks: the writer lock (a sidecar file and the data file's inode) and the
truncation guard.

Writer lock. A lock that goes by the path's spelling is no lock: a symlink, a
hard link, a relative path or a bind mount would give a second writer its own.
A writer holds two locks for its whole life, taken in this order:

1. ``flock(LOCK_EX)`` on the sidecar ``<real path>.lock``, named from
   ``os.path.realpath`` of the data file, so that every spelling of the path
   (relative, through symlinked directories, a symlink to the file) finds one
   sidecar. It is what survives compaction, which replaces the data file's
   inode by a rename: the sidecar stays where it is. It also covers creation,
   when there is no data file to lock yet.
2. An open-file-description write lock (``F_OFD_SETLK``) on one byte, at
   ``INODE_LOCK_OFFSET``, of the data file's inode itself. It relates the
   names that realpath cannot: hard links, the file bind-mounted elsewhere.
   The byte is far past any end of file, so the lock covers no data. On Linux
   OFD locks are independent of ``flock`` (the truncation guard below) and,
   unlike POSIX ``lockf`` locks, conflict between two descriptors of one
   process. Where the system has no OFD locks (macOS), the file system
   refuses them, or ``flock`` is emulated with byte-range locks (NFS: the
   inode lock would then block the truncation guard, readers' and this
   writer's own), the sidecar is the only lock: :func:`_flock_independent`
   finds that out on the file itself.

Each lock is checked after it is taken: the path must still name the file
that was locked. Otherwise it was replaced meanwhile (a sidecar removed by a
failed open, a data file renamed over by compaction) and the lock is taken
again on what the name holds now. When compaction or repair renames a new
data file into place, the writer locks the new inode first
(:meth:`WriterLock.lock_file`), so the name never holds an unlocked inode.

The sidecar is otherwise left in place; it is removed only by an open that
created it and then failed (so a failed open leaves nothing behind), while
that open still holds it: anyone who opened the removed sidecar and waits for
it finds, by the check above, that the name no longer holds it, and retries.

Truncation guard: the only time the file ever shrinks is when a writer cuts a
torn tail (FORMAT.md §10 step 3). Readers touch mapped bytes past their last
verified frame only while scanning, and they scan under ``flock(LOCK_SH)`` on
the data file; the writer cuts under ``flock(LOCK_EX)``. So no reader can be
reading a page when it is cut off, and no reader dies of SIGBUS.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import io
import os
import struct
import time
from collections.abc import Callable, Iterator

from myosotis.errors import LockedError, MyosotisError
from myosotis.storage.fileops import copy_mode, open_regular, same_file

INODE_LOCK_OFFSET = 1 << 62  # past any real end of file: the locked byte holds no data

_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
# struct flock (l_type, l_whence, l_start, l_len, l_pid) with native alignment;
# l_pid must be 0 for OFD locks.
_FLOCK = struct.Struct("@hhqqi4x")
assert _FLOCK.size == 32
# The file system cannot lock (some FUSE and network file systems): sidecar only.
_NO_OFD = (errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)

_POLL = 0.01  # seconds between attempts while waiting for a lock

Key = tuple[int, int]  # (st_dev, st_ino) of a locked data file


def _owned(fd: int) -> io.FileIO:
    """``fd``, owned by a file object (interrupt safety, STYLE.md 11).

    Closing it is one C call, which no exception can split, and closing it
    twice is harmless; a lock whose owner was dropped half way (an exception
    unwinding past the local that held it) is released when the object is
    collected, not leaked for the life of the process.
    """
    return io.FileIO(fd, "r", closefd=True)


def _reopen(fd: int) -> int:
    """A new open file description of the file open at ``fd``, for writing.

    The inode lock lives on a description of its own, not on a ``dup`` of the
    caller's: a lock shared with the data file's descriptor would outlive
    :meth:`WriterLock.release` for as long as that descriptor stays open (one
    leaked by an interrupted close, say). Falls back to ``dup`` without /proc.
    """
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return os.dup(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _ofd(fd: int, kind: int) -> bool:
    """Set (``F_WRLCK``) or clear (``F_UNLCK``) the inode lock byte on ``fd``'s open file
    description; False if another description holds it."""
    assert _OFD_SETLK is not None
    try:
        fcntl.fcntl(fd, _OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, INODE_LOCK_OFFSET, 1, 0))
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if e.errno in _NO_OFD:
            return True
        raise
    return True


def _flock_independent(fd: int) -> bool:
    """Whether ``flock`` on the file open at ``fd`` ignores the OFD lock ``fd`` holds.

    True on Linux's local file systems. NFS emulates ``flock`` with byte-range
    locks, so there a shared ``flock`` from another description conflicts.
    Nobody else can hold an exclusive ``flock`` (the truncation guard) now:
    that needs the writer lock, which the caller holds.
    """
    try:
        probe = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return True  # no /proc to reopen through: assume the Linux semantics
    try:
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(probe, fcntl.LOCK_UN)
        return True
    finally:
        os.close(probe)


class WriterLock:
    """The exclusive writer lock of one data file (see the module docstring)."""

    def __init__(self, data_path: str) -> None:
        self.data_path = data_path
        self.path = os.path.realpath(data_path) + ".lock"
        self._sidecar: io.FileIO | None = None  # flocked
        self._created = False  # this lock created the sidecar (abandon() removes it)
        # Each locked data file: the open file description that holds its OFD
        # lock (None: a file that takes none, see _flock_independent). Two
        # while compaction renames a new file into place.
        self._inodes: dict[Key, io.FileIO | None] = {}

    def _locked_error(self, other_name: bool) -> LockedError:
        maybe = (", maybe under another name (a hard link or another mount of it)"
                 if other_name else "")
        return LockedError(
            f"{self.data_path} is open for writing by another process or handle{maybe}; "
            "open it with readonly=True, or pass lock_timeout= to wait")

    @staticmethod
    def _wait(try_lock: Callable[[], bool], deadline: float, error: LockedError) -> None:
        while not try_lock():
            if time.monotonic() >= deadline:
                raise error
            time.sleep(_POLL)

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the sidecar lock, then the inode lock of the file ``data_path`` names
        (if it exists), waiting up to ``timeout`` seconds in all.

        Raises LockedError, NotARegularFileError, or MyosotisError (the sidecar
        cannot be created, the data file cannot be opened for writing). On any
        error nothing is held and a sidecar this call created is removed.
        """
        deadline = time.monotonic() + timeout
        self._lock_sidecar(deadline)
        try:
            self.follow(deadline - time.monotonic())
        except BaseException:
            self.abandon()
            raise

    def _lock_sidecar(self, deadline: float) -> None:
        while True:
            f, created = self._open_sidecar()
            try:
                self._wait(functools.partial(_try_flock, f.fileno()), deadline,
                           self._locked_error(False))
                held = same_file(self.path, f.fileno())
            except BaseException:
                f.close()
                raise
            if held:
                self._sidecar, self._created = f, created
                return
            f.close()  # removed by a failed open meanwhile: lock the one there now

    def _open_sidecar(self) -> tuple[io.FileIO, bool]:
        """Open the sidecar, creating it with the data file's mode; ``(file, created)``."""
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
        while True:
            try:
                f = _owned(os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                try:
                    return _owned(os.open(self.path, flags)), False
                except FileNotFoundError:
                    continue  # removed in between: create it
                except OSError as e:
                    raise self._sidecar_error(e) from None
            except OSError as e:
                raise self._sidecar_error(e) from None
            try:
                with contextlib.suppress(FileNotFoundError):
                    copy_mode(self.data_path, f.fileno())
            except BaseException:
                f.close()
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                raise
            return f, True

    def _sidecar_error(self, e: OSError) -> MyosotisError:
        if not os.path.isdir(os.path.dirname(self.path)):
            return MyosotisError(f"cannot open {self.data_path}: its directory does not exist")
        return MyosotisError(
            f"cannot create the lock file {self.path} ({e.strerror}); a writer needs a "
            "writable directory — open the file with readonly=True to only read it")

    def follow(self, timeout: float = 0.0) -> None:
        """Hold the inode lock of the file ``data_path`` names now (nothing if there is
        none), waiting up to ``timeout`` seconds; drop no other.

        Raises LockedError, NotARegularFileError, MyosotisError.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = _owned(open_regular(self.data_path, os.O_RDWR))
            except FileNotFoundError:
                return  # created later, under the sidecar lock
            except OSError as e:
                raise MyosotisError(
                    f"cannot open {self.data_path} for writing ({e.strerror}); open it with "
                    "readonly=True to only read it") from None
            try:
                self.lock_file(f.fileno(), deadline - time.monotonic())
                if same_file(self.data_path, f.fileno()):
                    return
                self.unlock_file(f.fileno())  # renamed over meanwhile: lock the new one
            finally:
                f.close()

    def lock_file(self, fd: int, timeout: float = 0.0) -> None:
        """Hold the inode lock of the file open at ``fd`` until :meth:`release` (through a
        description of its own: closing ``fd`` keeps it). Nothing to do if it is held.

        Does not check which name the file has: see :meth:`follow`. Raises
        LockedError if another writer holds it after ``timeout`` seconds.
        """
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if _OFD_SETLK is None or key in self._inodes:
            return
        held = _owned(_reopen(fd))
        try:
            self._wait(lambda: _ofd(held.fileno(), fcntl.F_WRLCK), time.monotonic() + timeout,
                       self._locked_error(True))
            independent = _flock_independent(held.fileno())
        except BaseException:
            held.close()
            raise
        if not independent:
            with contextlib.suppress(OSError):
                _ofd(held.fileno(), fcntl.F_UNLCK)
            held.close()
        self._inodes[key] = held if independent else None

    def holds(self, fd: int) -> bool:
        """Whether this lock holds the inode lock of the file open at ``fd``."""
        st = os.fstat(fd)
        return _OFD_SETLK is None or (st.st_dev, st.st_ino) in self._inodes

    def unlock_file(self, fd: int) -> None:
        """Drop the inode lock of the file open at ``fd`` (if held)."""
        st = os.fstat(fd)
        self._drop((st.st_dev, st.st_ino))

    def keep_only(self, fd: int) -> None:
        """Drop every inode lock but that of the file open at ``fd`` (after a rename
        replaced the old file by it)."""
        st = os.fstat(fd)
        for key in [k for k in self._inodes if k != (st.st_dev, st.st_ino)]:
            self._drop(key)

    def _drop(self, key: Key) -> None:
        held = self._inodes.pop(key, None)
        if held is not None:
            # Unlocked explicitly: another descriptor may share the description.
            with contextlib.suppress(OSError, ValueError):  # ValueError: closed already
                _ofd(held.fileno(), fcntl.F_UNLCK)
            held.close()

    def release(self) -> None:
        """Drop every lock this object holds. Idempotent."""
        for key in list(self._inodes):
            self._drop(key)
        sidecar, self._sidecar = self._sidecar, None
        if sidecar is not None:
            sidecar.close()  # closing the descriptor drops the flock

    def abandon(self) -> None:
        """Release, after removing the sidecar if this lock created it (for an open that
        failed: it leaves nothing behind)."""
        sidecar = self._sidecar
        if sidecar is not None and self._created and same_file(self.path, sidecar.fileno()):
            # Removed while held: a waiter on it sees that the name changed.
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.release()


@contextlib.contextmanager
def truncation_guard(fd: int, exclusive: bool) -> Iterator[None]:
    """Hold the truncation guard on the data file descriptor ``fd``."""
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
