"""Replacing a data file whole, atomically: compaction and repair write the new
bytes this way (FORMAT.md §8.5).

A crash at any point leaves either the old file or the new one, whole; the
rename is the point of no return.
"""

from __future__ import annotations

import contextlib
import os

from myosotis.errors import MyosotisError, warn_caller
from myosotis.storage.fileops import REAL, FileOps, copy_mode, same_file
from myosotis.storage.lock import WriterLock


def write_atomically(path: str, data: bytes, fileops: FileOps = REAL,
                     lock: WriterLock | None = None) -> None:
    """Replace the data file ``path`` by a file holding ``data``: temp file, fsync,
    rename, directory fsync.

    A crash at any point leaves either the old file or the new one, whole.
    The new file takes the old one's mode, owner and group (``copy_mode``).
    Through a symlink, the file it names is replaced, not the link. With
    ``lock`` (the writer's), the new file's inode is locked before the rename,
    so that no writer through another name (a hard link, a bind mount) finds it
    unlocked; other hard links of the old file keep the old file. Raises
    MyosotisError (the old file unchanged) if the new one cannot be written,
    e.g. on a full disk.
    """
    target = os.path.realpath(path)
    tmp = f"{target}.rewrite-{os.getpid()}"
    fd = -1
    try:
        # 0600 until copy_mode: the data must never be readable wider than the old file's.
        fd = fileops.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        copy_mode(target, fd)
        fileops.pwrite(fd, data, 0)
        fileops.sync(fd)
        if lock is not None:
            lock.lock_file(fd)
        fileops.replace(tmp, target)  # the point of no return
    except BaseException as e:
        # Whether the rename happened is read from the file system, not from a
        # variable an interrupt could keep from being set: past it, the name
        # holds the new file, which must stay locked, and nothing is "unchanged".
        renamed = fd >= 0 and same_file(target, fd)
        if fd >= 0:
            if lock is not None and not renamed:
                lock.unlock_file(fd)
            with contextlib.suppress(OSError):
                fileops.close(fd)
        if renamed:
            raise
        with contextlib.suppress(OSError):
            fileops.unlink(tmp)
        if isinstance(e, OSError):
            raise MyosotisError(f"could not rewrite {path} ({e.strerror or e}); the file is "
                                "unchanged") from None
        raise
    with contextlib.suppress(OSError):  # the new file is in place: a close error changes nothing
        fileops.close(fd)
    # Past the rename the new file is in place, and callers must go on with it
    # (raising here would leave a writer appending to the replaced inode). A
    # failed directory sync only means the rename may not survive a power cut:
    # the old file, whole, would come back; say so and go on.
    try:
        fileops.sync_dir(target)
    except OSError as e:
        warn_caller(f"{path} was rewritten, but its directory could not be synced "
                    f"({e.strerror or e}): a power cut now could bring back the old file, "
                    "whole")
