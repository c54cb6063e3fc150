"""Appending frames to a :class:`LogFile`: the writer's side of the log (FORMAT.md §3).

A writer appends only at ``valid_end`` and only while the log is not
``failed``. Any OSError fails the log stop: after a failed write or fsync the
kernel may have dropped dirty pages while reporting later syncs as successful
("fsyncgate"), so only a reopen, which re-reads and re-verifies the file, can
tell what is durable. The steps of :func:`append` are in the order they run.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, Protocol

from myosotis.errors import ReadOnlyError, WriterFailedError
from myosotis.format.constants import (
    FRAME_ALIGN,
    FRAME_FLAG_UNSYNCED,
    FRAME_HEADER_SIZE,
    KINDS_BY_VERSION,
    VERSION_UNSYNCED,
)
from myosotis.format.header import encode_file_header, encode_frame, frame_head
from myosotis.storage.lock import truncation_guard

if TYPE_CHECKING:
    from myosotis.storage.log import LogFile


class StreamedPayload(Protocol):
    """A payload too large to hold whole (a layer's, format/layer.py), written in
    pieces: ``length`` bytes, a multiple of FRAME_ALIGN (its frame has no padding)."""

    length: int

    def write(self, put: Callable[[int, bytes | bytearray], None]) -> int:
        """Write every byte of the payload once through ``put(payload offset, bytes)``;
        return the payload's CRC32C."""


def append(log: LogFile, kind: int, payload: bytes | StreamedPayload, durable: bool,
           version: int = 1) -> int:
    """LogFile.append: append one frame at ``valid_end`` (durably if ``durable``);
    return its frame index. ``version``: the format_version the frame needs (3 for a
    commit with an UNDELETE); a file older than that, or than the first version with
    frames of ``kind`` (4 for a layer), is moved to the higher of them first (§12).
    A :class:`StreamedPayload` is written in pieces, its frame header last
    (:func:`_write_streamed`). Raises ReadOnlyError, WriterFailedError (fail-stop)."""
    if log.readonly:
        raise ReadOnlyError(f"{log.path} is open read-only")
    if log.failed:
        raise WriterFailedError(
            f"{log.path}: an earlier write failed ({log.failed}); nothing more is written "
            "through this handle. Close and reopen the file to recover")
    start = log.valid_end
    need = max(version, _version_for(kind, log.version))
    if need > log.version:
        # Before the frame that needs it, durably: an older reader must never
        # find a frame it cannot read in a file it accepts (R11). The move syncs,
        # so the frame itself needs no UNSYNCED flag. Never down: a version-3
        # frame (an UNDELETE, an ORIGIN) in a version-4 file needs nothing.
        _move_to_version(log, need)
    flags = _flags_for(log, start, durable)
    if isinstance(payload, bytes):
        frame = encode_frame(kind, payload, flags)
        end = start + len(frame)
    else:
        assert not payload.length % FRAME_ALIGN, "a streamed payload needs no padding"
        end = start + FRAME_HEADER_SIZE + payload.length
    # Until the bookkeeping at the end is done, the handle is failed: an
    # interrupt past the write leaves it refusing appends, never appending
    # the same change twice (the Store above is unsettled too: unsettled.py).
    log.failed = "an append was interrupted before it finished"
    if isinstance(payload, bytes):
        _write_frame(log, start, frame)
    else:
        _write_streamed(log, start, end, kind, flags, payload)
    size = max(log.size, end)
    if durable:
        size = _reserve_free_space(log, start, end, size)
        _sync_frame(log, end)
    # The bookkeeping: the frame joins the index.
    index = len(log.frames)
    log.frames.offsets.append(start)
    log.frames.kinds.append(kind)
    if log.appended_from is None:
        log.appended_from = index
    log.valid_end, log.size, log.free_bytes = end, size, size - end
    log.failed = None  # the last step: the append is whole
    return index


def sync(log: LogFile) -> None:
    """See LogFile.sync."""
    if log.readonly:
        return
    if log.failed:
        raise WriterFailedError(
            f"{log.path}: an earlier write failed ({log.failed}); nothing written through "
            "this handle can be made durable. Close and reopen the file")
    try:
        log.fileops.sync(log.fd)
    except OSError as e:
        log.failed = f"sync failed: {e}"
        raise WriterFailedError(f"{log.path}: fsync failed ({e.strerror}); reopen") from e
    log.synced_to = log.valid_end


def _flags_for(log: LogFile, start: int, durable: bool) -> int:
    """The flags of a frame written at ``start``: FRAME_FLAG_UNSYNCED unless every byte
    before it is known durable (§3, R29). A durable append makes them so first."""
    if durable and log.synced_to != start:
        sync(log)  # once a session: then no frame it writes needs the flag
    if log.synced_to != start and log.version < VERSION_UNSYNCED:
        _move_to_version(log, VERSION_UNSYNCED)  # syncs: this frame needs no flag, the next will
    return 0 if log.synced_to == start else FRAME_FLAG_UNSYNCED


def _write_frame(log: LogFile, start: int, frame: bytes) -> None:
    """Write ``frame`` at ``start``; on failure, fail stop and raise WriterFailedError
    saying whether the change may have been committed."""
    try:
        log.fileops.pwrite(log.fd, frame, start)
    except OSError as e:
        _failed_write(log, start, start + len(frame), e, frame)


def _write_streamed(log: LogFile, start: int, end: int, kind: int, flags: int,
                    payload: StreamedPayload) -> None:
    """Write the frame ``[start, end)`` of a streamed ``payload``: the payload in
    pieces, then its header. Until the header is written the frame is no frame:
    a crash leaves zeros where its header goes (free space, or past the old end
    of the file), so the bytes after them are a torn tail (§10 step 3, R28 (c));
    the header is 16 bytes in one sector, so a crash while it is written leaves
    it zero or whole. Fails stop as :func:`_write_frame`; an interrupt takes the
    pieces back too."""
    at = start + FRAME_HEADER_SIZE
    pwrite, fd = log.fileops.pwrite, log.fd

    def put(off: int, data: bytes | bytearray) -> None:
        pwrite(fd, data, at + off)

    head: list[bytes] = []  # the header, once known: the proof the frame is whole
    try:
        crc = payload.write(put)
        head.append(frame_head(kind, flags, payload.length, crc))
        pwrite(fd, head[0], start)
    except BaseException as e:  # noqa: BLE001 - re-raised by _failed_write
        _failed_write(log, start, end, e, head[0] if head else None)


def _failed_write(log: LogFile, start: int, end: int, e: BaseException,
                  proof: bytes | None) -> NoReturn:
    """After ``e`` stopped the write of the frame ``[start, end)``: the frame is whole if
    the file holds ``proof`` at ``start`` (the frame itself, or a streamed frame's
    header, written last; None: not written). An OSError fails stop, raised as
    WriterFailedError saying whether the change may have been committed; any other
    exception (an interrupt: the handle is failed already) is raised again. A
    partial frame is taken back first."""
    io = e if isinstance(e, OSError) else None
    if io is not None:
        log.failed = f"write failed: {os.strerror(io.errno) if io.errno else io}"
    if proof is not None and _frame_in_file(log, start, proof):
        if io is None:
            raise e
        # Written over free space, the bytes the write did not reach
        # can be zeros that were already there (padding, say): the
        # frame is whole, and a reopen would show the commit.
        raise WriterFailedError(
            f"{log.path}: {log.failed}, yet the frame reached the file whole, so it "
            "may or may not be durable. This handle refuses further commits: close, "
            "reopen and check mem.head before retrying the change") from e
    # A partial frame: the change is certainly not committed. Its bytes
    # are taken back so the file ends as it did (a partial frame need
    # not look torn, R28; an interrupt is no crash, and leaves no torn
    # tail); if that fails too, the next open reports them.
    _take_back(log, start, end - start)
    if io is None:
        raise e
    hint = " (disk full?)" if io.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else ""
    raise WriterFailedError(
        f"{log.path}: writing a {end - start}-byte frame failed: {log.failed}{hint}. "
        "The change was not committed; close and reopen the file once the disk is fixed"
    ) from e


def _reserve_free_space(log: LogFile, start: int, end: int, size: int) -> int:
    """After a durable frame ``[start, end)``, if it grew the file (to ``size``), write
    zeros as far as the log's free-space policy says; return the file size."""
    reserved = end
    if end > log.size and log.free_space is not None:
        reserved = log.free_space(start, end)
    if reserved > end:
        # Reserve free space (§3): appends that land in it change neither
        # the file size nor the block map, so their fdatasync need not
        # commit the file system's journal. Written after the frame, so
        # the file never has a hole (on tmpfs, reading a hole through a map
        # allocates a page, and a full tmpfs answers with SIGBUS). Failing
        # here (a full disk) loses nothing: the frame is whole, the commit
        # goes on without free space, and zeros that reached the file are
        # free space.
        with contextlib.suppress(OSError):
            log.fileops.pwrite(log.fd, bytes(reserved - end), end)
            size = reserved
    return size


def _sync_frame(log: LogFile, end: int) -> None:
    """Make the frame that ends at ``end`` durable; on failure, fail stop."""
    try:
        log.fileops.sync(log.fd)
    except OSError as e:
        # The frame is whole in the page cache but maybe not on disk.
        # It is not cut off: a reader may already have read it through
        # its map, and cutting mapped bytes could kill it with SIGBUS.
        log.failed = f"fsync failed: {os.strerror(e.errno) if e.errno else e}"
        raise WriterFailedError(
            f"{log.path}: {log.failed} after the frame was written, so it may or may "
            "not be durable. This handle refuses further commits: close, reopen and "
            "check mem.head before retrying the change") from e
    log.synced_to = end


def _version_for(kind: int, version: int) -> int:
    """The oldest format version from ``version`` on that has frames of ``kind`` (§12)."""
    return min(v for v, kinds in KINDS_BY_VERSION.items() if v >= version and kind in kinds)


def _move_to_version(log: LogFile, version: int) -> None:
    """Write the header of ``version`` (§12) and sync it, before the first frame that
    needs it: version 2 before the first frame written after an unsynced one
    (from the frame after it on, frames carry FRAME_FLAG_UNSYNCED, which version
    1 does not allow, R23); version 3 before the first frame that holds an
    UNDELETE; version 4 before the first layer (§8.7). The sync makes every byte
    so far durable, so the frame that follows needs no flag.

    The header is 32 bytes in one sector, written in one call: a crash leaves
    the old one or the new one. Raises WriterFailedError (fail-stop).
    """
    try:
        log.fileops.pwrite(log.fd, encode_file_header(version), 0)
        log.fileops.sync(log.fd)
    except OSError as e:
        log.failed = f"writing the version-{version} header failed: {e}"
        raise WriterFailedError(
            f"{log.path}: could not move the file to format version {version} ({e.strerror}); "
            "the change was not committed. Close and reopen the file once the disk is "
            "fixed") from e
    log.version = version
    log.synced_to = log.valid_end  # the sync made everything before it durable


def _take_back(log: LogFile, start: int, length: int) -> None:
    """Undo a failed write of ``length`` bytes at ``start``: zeros again over the
    free space it reached, and the file cut back to its size before it (under
    the exclusive guard: a reader may be walking those bytes). Best effort."""
    with contextlib.suppress(OSError):
        if log.fileops.size(log.fd) > log.size:
            with truncation_guard(log.fd, exclusive=True):
                log.fileops.truncate(log.fd, log.size)
        if log.size > start:
            log.fileops.pwrite(log.fd, bytes(min(length, log.size - start)), start)


def _frame_in_file(log: LogFile, start: int, frame: bytes) -> bool:
    """Whether the file now holds ``frame`` at ``start`` (True when it cannot tell)."""
    try:
        return os.pread(log.fd, len(frame), start) == frame
    except OSError:
        return True
