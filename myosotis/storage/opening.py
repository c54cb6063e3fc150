"""Finding, creating and opening a data file, before a :class:`LogFile` reads it
(FORMAT.md §2; the writer lock: lock.py).

A new file is created whole (its 32-byte header, synced) before it gets its
name, so a crash leaves no file or a valid empty one; a writer deletes what a
dead writer left behind; and a writer locks the very file it opened, even when
the name was created or renamed over meanwhile.
"""

from __future__ import annotations

import contextlib
import glob
import os
import time

from myosotis.errors import FileMissingError, MyosotisError
from myosotis.format.header import encode_file_header
from myosotis.storage.fileops import FileOps, check_regular, open_regular, same_file
from myosotis.storage.lock import WriterLock


def exists(path: str) -> bool:
    """Whether ``path`` names a file; NotARegularFileError if it names something else."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise MyosotisError(f"cannot open {path}: {e.strerror}") from None
    check_regular(path, st)
    return True


def missing(path: str) -> FileMissingError:
    """The error for a file that does not exist and may not be created."""
    return FileMissingError(f"{path} does not exist; open it for writing to create it")


def open_fd(path: str, readonly: bool, fileops: FileOps) -> int:
    """Open the data file without ever blocking on a FIFO (see ``open_regular``)."""
    try:
        return open_regular(path, os.O_RDONLY if readonly else os.O_RDWR, fileops)
    except FileNotFoundError:
        raise FileMissingError(f"{path} was removed while being opened; try again") \
            from None
    except OSError as e:
        raise MyosotisError(f"cannot open {path}: {e.strerror}") from None


def prepare_for_writer(path: str, create: bool, fileops: FileOps) -> bool:
    """For a writer holding the writer lock: delete a dead writer's temporary files,
    then create the file if it is missing (FileMissingError if it may not be).
    Return whether it was created (durably: :func:`create_file` syncs it)."""
    remove_leftovers(path)
    if exists(path):
        return False
    # removed meanwhile, or not created yet
    if not create:
        raise missing(path)
    try:
        create_file(path, fileops)
    except OSError as e:
        raise MyosotisError(f"cannot create {path}: {e.strerror}") from None
    return True


def lock_opened(lock: WriterLock, path: str, fd: int, readonly: bool, fileops: FileOps,
                deadline: float) -> int:
    """Make sure the writer lock holds the file open at ``fd``, the one ``path`` names;
    return the descriptor of that file (``fd``, or the file opened again).

    The lock was taken on the file ``path`` named at acquire(): a file created
    just now, or renamed over since, is another inode. It is locked in turn,
    then the name is checked to still hold it. Closes what it gives up.
    """
    while not lock.holds(fd):
        try:
            lock.lock_file(fd, deadline - time.monotonic())
            if same_file(path, fd):
                break
            lock.unlock_file(fd)
        except BaseException:
            fileops.close(fd)
            raise
        fileops.close(fd)
        fd = open_fd(path, readonly, fileops)
    lock.keep_only(fd)
    return fd


def write_header(fd: int, fileops: FileOps) -> None:
    """Make a 0-byte file (``tempfile.mkstemp`` makes them) a new, empty file, in place.

    The header is one 32-byte write at offset 0, within one disk sector and
    one page, synced at once: a crash leaves 0 bytes (which is a new file
    again) or the whole header. The file keeps its inode and its mode.
    """
    fileops.pwrite(fd, encode_file_header(), 0)
    fileops.sync(fd)


def remove_leftovers(path: str) -> None:
    """Delete temporary files of a writer that died creating or rewriting ``path``.

    Files are created and rewritten only under the writer lock, which the
    caller now holds, so any such temporary file is a dead writer's. They
    sit beside the real path (a rewrite through a symlink replaces the file
    it names); older versions put them beside ``path`` itself.
    """
    for base in {path, os.path.realpath(path)}:
        for tmp in glob.glob(glob.escape(base) + ".create-*") + \
                glob.glob(glob.escape(base) + ".rewrite-*"):
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def create_file(path: str, fileops: FileOps) -> None:
    """Create a file holding only the header, durably and atomically.

    The header goes to a temporary file that is synced and then linked to
    ``path``, so a crash leaves either no file or a whole header, never a
    half-written one that would read as "not a Myosotis file". A dangling
    symlink at ``path`` gets the file it names, as ``open(O_CREAT)`` would.
    """
    path = os.path.realpath(path)
    tmp = f"{path}.create-{os.getpid()}"
    try:
        fd = fileops.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        try:
            fileops.pwrite(fd, encode_file_header(), 0)
            fileops.sync(fd)
        finally:
            fileops.close(fd)
        with contextlib.suppress(FileExistsError):  # created meanwhile: read that one
            fileops.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            fileops.unlink(tmp)
    fileops.sync_dir(path)
