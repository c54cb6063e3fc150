"""Creating a data file from a stream of bytes, whole or not at all (import), and
keeping a file's old bytes aside before it is replaced (legacy migration).

A new file is written under a temporary name in its directory, synced, then
given its name with ``link(2)``, which fails if the name exists (so an import
never replaces a file that appeared meanwhile), and the directory is synced.
Until the link nothing has the name; after it, the name holds the whole file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from myosotis.errors import MyosotisError, TargetExistsError, warn_caller
from myosotis.storage.fileops import REAL, FileOps


def create_new_file(path: str,
                    produce: Callable[[Callable[[bytes], None], Callable[[int, bytes], None]],
                                      None],
                    fileops: FileOps = REAL, what: str = "new") -> None:
    """Create the file ``path`` holding the bytes ``produce(write, patch)`` writes, or
    create nothing; never replace a file.

    ``produce`` is called with a ``write(bytes)`` that appends to the new file and
    a ``patch(offset, bytes)`` that overwrites bytes it wrote already; whatever it
    raises propagates, and then no file is left behind (the temporary one is
    removed). The file is written under a temporary name ``<path>.<what>-<pid>``,
    synced, then hard-linked to ``path`` — the point of no return, which fails
    if ``path`` exists, so no window lets another file be replaced — and the
    directory synced. A crash leaves no file at ``path`` or the whole file (and
    at worst the temporary one beside it). Raises TargetExistsError when
    ``path`` exists, MyosotisError when the file cannot be written; a failed
    directory sync after the link only warns (the file is whole under its name).
    """
    target = os.path.abspath(path)
    exists = TargetExistsError(f"{path} already exists; a new file never replaces one: "
                               "choose another path or remove it first (nothing was "
                               "written)")
    if os.path.lexists(target):
        raise exists
    tmp = f"{target}.{what}-{os.getpid()}"
    fd = -1
    try:
        fd = fileops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        pos = 0

        def write(data: bytes) -> None:
            nonlocal pos
            fileops.pwrite(fd, data, pos)
            pos += len(data)

        def patch(offset: int, data: bytes) -> None:
            if offset + len(data) > pos:
                raise ValueError("patch past what was written")
            fileops.pwrite(fd, data, offset)

        produce(write, patch)
        fileops.sync(fd)
        fileops.close(fd)
        fd = -1
        fileops.link(tmp, target)  # the point of no return: the name holds the whole file
    except BaseException as e:
        if fd >= 0:
            with contextlib.suppress(OSError):
                fileops.close(fd)
        with contextlib.suppress(OSError):
            fileops.unlink(tmp)
        if isinstance(e, FileExistsError):
            raise exists from None
        if isinstance(e, OSError):
            raise MyosotisError(f"could not write {path} ({e.strerror or e}); nothing was "
                                "created") from None
        raise
    with contextlib.suppress(OSError):  # the file is whole under its name already
        fileops.unlink(tmp)
    try:
        fileops.sync_dir(target)
    except OSError as e:
        warn_caller(f"{path} was written, but its directory could not be synced "
                    f"({e.strerror or e}): a power cut now could lose the new file")


def keep_copy(path: str, copy: str, fileops: FileOps = REAL) -> None:
    """Make ``copy`` a name of the file ``path`` names now (a hard link, so no byte
    is copied), replacing any older ``copy`` atomically, and make it durable.

    After this, replacing ``path`` (a rename over it) leaves its old bytes under
    ``copy``. Raises MyosotisError if the link cannot be made.
    """
    tmp = f"{copy}.tmp-{os.getpid()}"
    try:
        with contextlib.suppress(FileNotFoundError):
            fileops.unlink(tmp)
        fileops.link(os.path.realpath(path), tmp)
        fileops.replace(tmp, copy)
        fileops.sync_dir(copy)
    except OSError as e:
        with contextlib.suppress(OSError):
            fileops.unlink(tmp)
        raise MyosotisError(f"could not keep a copy of {path} as {copy} "
                            f"({e.strerror or e}); nothing was changed") from None
