"""Cutting a torn tail (FORMAT.md §10 step 3): what a writer does before it appends
to a file whose last append a crash cut short, and what ``fsck --repair`` does.

Recovery never destroys bytes it cannot prove were never acknowledged: R28
tells a torn write from damage, but a damaged frame can still look torn, so
the bytes cut are kept aside first. The file shrinks only here (and when an
append takes back its own failed write), under the exclusive truncation
guard (lock.py): a reader walking the tail through its map would otherwise
die of SIGBUS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from myosotis.errors import WriterFailedError
from myosotis.storage.fileops import FileOps, keep_aside
from myosotis.storage.lock import truncation_guard

if TYPE_CHECKING:
    from myosotis.storage.log import LogFile


def cut_tail(fd: int, path: str, end: int, tail: Any, fileops: FileOps) -> str | None:
    """Cut the file open at ``fd`` (named ``path``) to ``end``, durably (FORMAT.md §10
    step 3), after copying ``tail``, its bytes from ``end`` on, to
    ``<file>.recovered-<end>`` when any is non-zero; return that file's name or None.

    The cut is made under the exclusive truncation guard (lock.py). Raises OSError.
    """
    kept = keep_aside(path, tail, end, fileops)
    with truncation_guard(fd, exclusive=True):
        fileops.truncate(fd, end)
    fileops.sync(fd)
    return kept


def cut_torn_tail(log: LogFile) -> None:
    """Cut the writer ``log``'s torn tail before any append, keeping its bytes aside
    (:func:`cut_tail`; the kept files are listed in ``log.recovered``). Raises
    WriterFailedError (the log fails stop) if the file cannot be cut."""
    try:
        kept = cut_tail(log.fd, log.path, log.valid_end,
                        log.map.view(log.valid_end, log.size), log.fileops)
        log.size = log.synced_to = log.valid_end
    except OSError as e:
        log.failed = f"cutting the torn tail failed: {e}"
        raise WriterFailedError(
            f"{log.path}: could not cut the torn tail at offset {log.valid_end} "
            f"({e.strerror}); the file is unchanged, fix the disk and reopen") from None
    if kept is not None:
        log.recovered.append((log.valid_end, log.torn_bytes, kept))
    log.torn_bytes = 0
