"""The append-only log file: open, recover, read frames, append frames.

Layout and rules: FORMAT.md §2, §3 and §10. A :class:`LogFile` knows frames,
not records: it hands out payload memoryviews and appends encoded frames.

Invariants:
- ``frames`` lists every frame of the valid prefix ``[32, valid_end)``; every
  frame in it is header-valid and the last one is valid in full.
- A writer appends only at ``valid_end`` and only while ``failed`` is false.
- Bytes ``[valid_end, size)`` are either all zero (``free_bytes``: space a
  durable writer reserved, FORMAT.md §3) or a torn tail (``torn_bytes``).
- The file shrinks only in :meth:`_cut_tail`, under the truncation guard.
"""

from __future__ import annotations

import array
import contextlib
import errno
import glob
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from myosotis.errors import (
    CorruptFileError,
    FileMissingError,
    MyosotisError,
    ReadOnlyError,
    WriterFailedError,
)
from myosotis.format.constants import (
    FRAME_FLAG_UNSYNCED,
    FRAME_FLAGS_ALLOWED,
    FRAME_HEADER_SIZE,
    FRAME_HEADER_STRUCT,
    HEADER_SIZE,
)
from myosotis.format.header import (
    check_file_header,
    encode_file_header,
    encode_frame,
    frame_payload_ok,
    padding,
)
from myosotis.format.helper import ScanStatus
from myosotis.format.walk import Walk, walk
from myosotis.storage.fileops import (
    REAL,
    FileOps,
    check_regular,
    keep_aside,
    open_regular,
    same_file,
)
from myosotis.storage.lock import WriterLock, truncation_guard
from myosotis.storage.mapping import FileMap


@dataclass
class FrameIndex:
    """Offsets and kinds of the frames of the valid prefix, in file order."""

    offsets: array.array = field(default_factory=lambda: array.array("Q"))  # type: ignore[type-arg]
    kinds: bytearray = field(default_factory=bytearray)

    def __len__(self) -> int:
        return len(self.kinds)

    def extend(self, offsets: Iterable[int], kinds: bytes | bytearray) -> None:
        self.offsets.extend(offsets)
        self.kinds += kinds

    def truncate(self, n: int) -> None:
        del self.offsets[n:]
        del self.kinds[n:]


# Pauses (s) before the walks a reader repeats to tell a racing writer from damage
_RESCAN_PAUSES = (0.0, 0.001, 0.01) * 3

FreeSpacePolicy = Callable[[int, int], int]
"""``(frame_start, frame_end) -> file size``: how far a durable writer fills the
file with zeros after a frame that did not fit in the free space (FORMAT.md §3;
the engine's is ``policy.free_space_end``). ``frame_end`` reserves nothing."""


def cut_tail(fd: int, path: str, end: int, tail: Any, fileops: FileOps) -> str | None:
    """Cut the file open at ``fd`` (named ``path``) to ``end``, durably (FORMAT.md §10
    step 3), after copying ``tail``, its bytes from ``end`` on, to
    ``<file>.recovered-<end>`` when any is non-zero; return that file's name or None.

    Recovery never destroys bytes it cannot prove were never acknowledged: R28
    tells a torn write from damage, but a damaged frame can still look torn.
    The cut is made under the exclusive truncation guard (lock.py). Raises OSError.
    """
    kept = keep_aside(path, tail, end, fileops)
    with truncation_guard(fd, exclusive=True):
        fileops.truncate(fd, end)
    fileops.sync(fd)
    return kept


class LogFile:
    """One open data file, for reading (``readonly``) or as its single writer."""

    def __init__(self, path: str, fd: int, readonly: bool, fileops: FileOps,
                 lock: WriterLock | None, free_space: FreeSpacePolicy | None = None) -> None:
        self.path = path
        self.readonly = readonly
        self.fileops = fileops
        self.free_space = free_space  # None: durable appends reserve no free space
        self._fd = fd
        self._lock = lock
        self.map = FileMap(fd)
        self.frames = FrameIndex()
        self.valid_end = HEADER_SIZE
        self.size = HEADER_SIZE  # file length at the last scan or append
        self.torn_bytes = 0  # bytes past valid_end ignored as a torn tail at the last scan
        self.free_bytes = 0  # zero bytes past valid_end (§3 free space)
        self.failed: str | None = None  # set once a write or sync failed (fail-stop)
        self.version = 1  # format_version in the header (§2); a writer may move it to 2
        # Offset up to which this handle knows the file durable (a sync it made or
        # saw): a frame written there gets no FRAME_FLAG_UNSYNCED (§3, R29).
        self._synced_to = -1
        # (offset, length, file) of each torn tail cut after keeping its bytes
        self.recovered: list[tuple[int, int, str]] = []
        self.inode = os.fstat(fd).st_ino
        self._verified: set[int] = set()  # frame indices whose payload CRC was checked
        # Frames from this index on were appended by this handle, so they are
        # right by construction (a writer never rescans after appending).
        self._appended_from: int | None = None

    # ------------------------------------------------------------------ open

    @classmethod
    def open(cls, path: str, *, readonly: bool = False, create: bool = True,
             fileops: FileOps = REAL, lock_timeout: float = 0.0,
             free_space: FreeSpacePolicy | None = None) -> LogFile:
        """Open (and for a writer, create and recover) the file at ``path``.

        ``free_space`` is the writer's free-space policy (none by default).

        A writer takes the writer lock first (LockedError), creates a missing
        file durably (and writes the header into a 0-byte one), and cuts a torn
        tail. A reader of a 0-byte file sees no frames. Raises
        NotARegularFileError (before anything is created), NotAMyosotisFileError,
        UnsupportedVersionError, CorruptFileError, FileMissingError for a
        missing file that may not be created, or MyosotisError. A failed open
        leaves no file it created: no data file, no lock sidecar.
        """
        # Absolute: the handle keeps naming the file it opened (to reopen it
        # after compaction) when the process changes directory.
        path = os.path.abspath(os.fspath(path))
        if not cls._exists(path) and (readonly or not create):
            raise FileMissingError(f"{path} does not exist; open it for writing to create it")
        deadline = time.monotonic() + lock_timeout
        lock = None
        created = False
        if not readonly:
            lock = WriterLock(path)
            lock.acquire(lock_timeout)
        try:
            if lock is not None:
                cls._remove_leftovers(path)
                if not cls._exists(path):  # removed meanwhile, or not created yet
                    if not create:
                        raise FileMissingError(
                            f"{path} does not exist; open it for writing to create it")
                    try:
                        cls._create(path, fileops)
                        created = True  # durable: _create synced it
                    except OSError as e:
                        raise MyosotisError(f"cannot create {path}: {e.strerror}") from None
            fd = cls._open_fd(path, readonly, fileops)
            while lock is not None and not lock.holds(fd):
                # Created just now, or renamed over since acquire() locked it: lock
                # what was opened, then make sure the name still holds it.
                try:
                    lock.lock_file(fd, deadline - time.monotonic())
                    if same_file(path, fd):
                        break
                    lock.unlock_file(fd)
                except BaseException:
                    fileops.close(fd)
                    raise
                fileops.close(fd)
                fd = cls._open_fd(path, readonly, fileops)
            if lock is not None:
                lock.keep_only(fd)
            log = cls(path, fd, readonly, fileops, lock, free_space)
        except BaseException:
            if lock is not None:
                lock.abandon()
            raise
        try:
            size = fileops.size(fd)
            if size == 0 and not readonly:
                cls._write_header(fd, fileops)
                size = HEADER_SIZE
                created = True
            if size == 0:
                # A reader of a 0-byte file (as a new file is before its writer
                # writes the header): no frames yet; refresh() reads the header.
                log.size = 0
            else:
                log.map.ensure(size)
                check_file_header(log.map.whole(), size, path)
                log._scan(size)  # reads format_version too
                if created:
                    log._synced_to = log.valid_end
        except BaseException as e:
            lock, log._lock = log._lock, None
            try:
                log.close()
            finally:
                if lock is not None:
                    lock.abandon()
            if isinstance(e, OSError):
                raise MyosotisError(f"cannot read {path} ({e.strerror or e})") from None
            raise
        return log

    @staticmethod
    def _exists(path: str) -> bool:
        """Whether ``path`` names a file; NotARegularFileError if it names something else."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise MyosotisError(f"cannot open {path}: {e.strerror}") from None
        check_regular(path, st)
        return True

    @staticmethod
    def _open_fd(path: str, readonly: bool, fileops: FileOps) -> int:
        """Open the data file without ever blocking on a FIFO (see ``open_regular``)."""
        try:
            return open_regular(path, os.O_RDONLY if readonly else os.O_RDWR, fileops)
        except FileNotFoundError:
            raise FileMissingError(f"{path} was removed while being opened; try again") \
                from None
        except OSError as e:
            raise MyosotisError(f"cannot open {path}: {e.strerror}") from None

    @staticmethod
    def _write_header(fd: int, fileops: FileOps) -> None:
        """Make a 0-byte file (``tempfile.mkstemp`` makes them) a new, empty file, in place.

        The header is one 32-byte write at offset 0, within one disk sector and
        one page, synced at once: a crash leaves 0 bytes (which is a new file
        again) or the whole header. The file keeps its inode and its mode.
        """
        fileops.pwrite(fd, encode_file_header(), 0)
        fileops.sync(fd)

    @staticmethod
    def _remove_leftovers(path: str) -> None:
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

    @staticmethod
    def _create(path: str, fileops: FileOps) -> None:
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

    def reopen(self, synced: bool = False) -> None:
        """Open the file at ``path`` again (it may be a new inode after a rename),
        keeping the writer lock, and scan it from the start. ``synced``: the caller
        wrote the file whole and synced it (compaction, repair)."""
        fd = self._open_fd(self.path, self.readonly, self.fileops)
        if self._lock is not None:
            try:
                # Compaction and repair lock the new file before they rename it
                # into place; only a rename by someone else gets here unlocked.
                self._lock.lock_file(fd)
                self._lock.keep_only(fd)  # the replaced file is no longer ours
            except BaseException:
                self.fileops.close(fd)
                raise
        # One assignment hands the handle the new descriptor and map: an
        # interrupt may leak the old ones, but never leaves ``_fd`` naming a
        # descriptor that was closed (closing it again could close a file that
        # reused its number).
        old_fd, old_map = self._fd, self.map
        self._fd, self.map = fd, FileMap(fd)
        old_map.release()
        with contextlib.suppress(OSError):  # the old descriptor is done with either way
            self.fileops.close(old_fd)
        self.frames = FrameIndex()
        self.valid_end = self.size = HEADER_SIZE
        self.torn_bytes = self.free_bytes = 0
        self.failed = None
        self.inode = os.fstat(fd).st_ino
        self._verified = set()
        self._appended_from = None
        try:
            size = self.fileops.size(fd)
            self.map.ensure(size)
            check_file_header(self.map.whole(), size, self.path)
            self._synced_to = -1
            self._scan(size)
        except OSError as e:
            raise MyosotisError(f"cannot read {self.path} again ({e.strerror or e}); close "
                                "this handle and open the file again") from None
        if synced:
            self._synced_to = self.valid_end

    @property
    def writer_lock(self) -> WriterLock | None:
        """The writer lock (None for a reader): compaction and repair lock the file
        they rename into place with it (:meth:`WriterLock.lock_file`)."""
        return self._lock

    # ------------------------------------------------------------------ scanning

    def _scan(self, size: int) -> int:
        """Walk frames from ``valid_end`` to the end of the file (FORMAT.md §10 steps
        2–5, format/walk.py); return how many were added.

        Readers walk under the shared truncation guard (see lock.py), and read
        the file's size only once they hold it: a writer opening meanwhile may
        cut a torn tail, and a walk up to a size read before the cut would
        touch pages past the new end of the file (SIGBUS). A writer cuts a torn
        tail under the exclusive guard, after keeping its bytes aside.
        Raises CorruptFileError for damage that is not a torn tail.
        """
        # Scanned frames are unverified; _appended_from marks frames as verified
        # only because nothing is scanned after this handle appends.
        assert self._appended_from is None, "a writer scans only before it appends"
        if self.readonly:
            with truncation_guard(self._fd, exclusive=False):
                found, size = self._reader_walk()
        else:
            found = self._walk(size)
        if found.status == ScanStatus.CORRUPT:
            # Frames after the damage would be lost silently (§10 step 4), or
            # the damage is not what a crash leaves (R28): refuse either way.
            raise CorruptFileError(found.reason, found.end)
        self.frames.extend(found.offsets, found.kinds)
        if found.offsets and found.last_checked:  # step 5 checked the last frame in full
            self._verified.add(len(self.frames) - 1)
        self.valid_end, self.size = found.end, size
        if found.status == ScanStatus.FREE:
            self.free_bytes, self.torn_bytes = size - found.end, 0
        else:
            self.free_bytes, self.torn_bytes = 0, size - found.end
        if self.torn_bytes and not self.readonly:
            self._cut_tail()
        return len(found.offsets)

    def _walk(self, size: int) -> Walk:
        self.map.ensure(size)
        view = self.map.view(0, size)
        # Read again at every walk: a writer may have moved the file to version 2
        # (§12) since; it writes the header, syncs, and only then flagged frames.
        self.version = int.from_bytes(view[8:10], "little")
        return walk(view, self.valid_end, FRAME_FLAGS_ALLOWED.get(self.version, 0))

    def _reader_walk(self) -> tuple[Walk, int]:
        """The §10 walk for a reader (under the shared guard), and the file size it covers.

        The writer may be writing frames over its free space (§3) while we
        read them: a frame read half-written looks damaged (a small one as if
        no torn write could leave it, R28), and the frame the writer wrote
        after it valid, which is what corruption looks like. The writer
        finishes a frame before it starts the next, so walking again settles
        it: only the same damage found by three walks, the last two after
        short pauses, is reported. Damage that keeps moving (a writer faster
        than us) is left for the next refresh, as a torn tail is.
        """
        size = self._size_at_least_valid_end()
        found = self._walk(size)
        confirmations = 0
        for pause in _RESCAN_PAUSES:
            if found.status != ScanStatus.CORRUPT or confirmations == 2:
                break
            time.sleep(pause)
            size = self._size_at_least_valid_end()
            again = self._walk(size)
            same = again.status == ScanStatus.CORRUPT and again.end == found.end and \
                again.next_valid == found.next_valid
            confirmations = confirmations + 1 if same else 0
            found = again
        if found.status == ScanStatus.CORRUPT and confirmations < 2:
            found = found.as_torn()
        return found, size

    def _size_at_least_valid_end(self) -> int:
        size = self.fileops.size(self._fd)
        if size < self.valid_end:
            raise CorruptFileError(
                f"{self.path} shrank to {size} bytes below its verified end {self.valid_end}; "
                "another program truncated it", size)
        return size

    def _cut_tail(self) -> None:
        """Cut the torn tail before any append, keeping its bytes aside (:func:`cut_tail`;
        the kept files are listed in ``recovered``)."""
        try:
            kept = cut_tail(self._fd, self.path, self.valid_end,
                            self.map.view(self.valid_end, self.size), self.fileops)
            self.size = self._synced_to = self.valid_end
        except OSError as e:
            self.failed = f"cutting the torn tail failed: {e}"
            raise WriterFailedError(
                f"{self.path}: could not cut the torn tail at offset {self.valid_end} "
                f"({e.strerror}); the file is unchanged, fix the disk and reopen") from None
        if kept is not None:
            self.recovered.append((self.valid_end, self.torn_bytes, kept))
        self.torn_bytes = 0

    def refresh(self) -> int:
        """Pick up frames appended since the last scan; return how many.

        Raises CorruptFileError if the file shrank below what was read.
        """
        if not self.readonly:
            return 0  # a writer knows every frame it wrote
        if self.size == 0:  # opened on a 0-byte file (see open): the header comes first
            size = self.fileops.size(self._fd)
            if size == 0:
                return 0
            self.map.ensure(size)
            check_file_header(self.map.whole(), size, self.path)
        size = self._size_at_least_valid_end()
        if size == self.valid_end:
            return 0
        # With free space or a torn tail, rescan even at an unchanged size: the
        # writer appends into its free space without growing the file, and a
        # new writer may have cut a torn tail and appended a frame of that size.
        return self._scan(size)

    # ------------------------------------------------------------------ reading

    def frame_offset(self, i: int) -> int:
        return int(self.frames.offsets[i])

    def _frame_bounds(self, i: int) -> tuple[int, int, int]:
        off = self.frames.offsets[i]
        n = FRAME_HEADER_STRUCT.unpack_from(self.map.view(off, off + FRAME_HEADER_SIZE))[0]
        start = off + FRAME_HEADER_SIZE
        return off, start, start + n

    def _payload_ok(self, i: int) -> bool:
        off, start, stop = self._frame_bounds(i)
        ok = frame_payload_ok(self.map.view(0, stop + padding(stop - start)), off)
        if ok:
            self._verified.add(i)
        return ok

    def payload(self, i: int) -> memoryview:
        """The payload of frame ``i``, CRC-checked on first use (R26, R27).

        Zero-copy: the view points into the map and stays valid while
        referenced. Raises CorruptFileError when the frame fails its check.
        """
        if (self._appended_from is None or i < self._appended_from) and \
                i not in self._verified and not self._payload_ok(i):
            raise CorruptFileError("frame payload checksum does not match (R26)",
                                   self.frame_offset(i))
        _, start, stop = self._frame_bounds(i)
        return self.map.view(start, stop)

    # ------------------------------------------------------------------ writing

    def append(self, kind: int, payload: bytes, durable: bool) -> int:
        """Append one frame at ``valid_end``; return its frame index.

        A durable append that does not fit in the free space writes new free
        space after the frame, as far as the ``free_space`` policy says (§3).

        With ``durable`` the call returns only after the data and the new file
        size are on stable storage. On any OSError the log fails stop: the
        error is raised as WriterFailedError and every later append is refused,
        because after a failed write or fsync the kernel may have dropped
        dirty pages while reporting later syncs as successful ("fsyncgate");
        only a reopen, which re-reads and re-verifies the file, can tell what
        is durable.
        """
        if self.readonly:
            raise ReadOnlyError(f"{self.path} is open read-only")
        if self.failed:
            raise WriterFailedError(
                f"{self.path}: an earlier write failed ({self.failed}); nothing more is written "
                "through this handle. Close and reopen the file to recover")
        start = self.valid_end
        if durable and self._synced_to != start:
            self.sync()  # once a session: then no frame it writes needs the flag
        if self._synced_to != start and self.version < 2:
            self._move_to_version_2()  # syncs: this frame needs no flag, the next will
        flags = 0 if self._synced_to == start else FRAME_FLAG_UNSYNCED
        frame = encode_frame(kind, payload, flags)
        end = start + len(frame)
        # Until the bookkeeping at the end is done, the handle is failed: an
        # interrupt past the write leaves it refusing appends, never appending
        # the same change twice (the Store above is unsettled too: unsettled.py).
        self.failed = "an append was interrupted before it finished"
        try:
            self.fileops.pwrite(self._fd, frame, start)
        except OSError as e:
            self.failed = f"write failed: {os.strerror(e.errno) if e.errno else e}"
            if self._frame_in_file(start, frame):
                # Written over free space, the bytes the write did not reach
                # can be zeros that were already there (padding, say): the
                # frame is whole, and a reopen would show the commit.
                raise WriterFailedError(
                    f"{self.path}: {self.failed}, yet the frame reached the file whole, so it "
                    "may or may not be durable. This handle refuses further commits: close, "
                    "reopen and check mem.head before retrying the change") from e
            # A partial frame: the change is certainly not committed. Its bytes
            # are taken back so the file ends as it did (a partial frame need
            # not look torn, R28); if that fails too, the next open reports them.
            self._take_back(start, len(frame))
            hint = " (disk full?)" if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else ""
            raise WriterFailedError(
                f"{self.path}: writing a {len(frame)}-byte frame failed: {self.failed}{hint}. "
                "The change was not committed; close and reopen the file once the disk is fixed"
            ) from e
        size = max(self.size, end)
        reserved = end
        if durable and end > self.size and self.free_space is not None:
            reserved = self.free_space(start, end)
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
                self.fileops.pwrite(self._fd, bytes(reserved - end), end)
                size = reserved
        if durable:
            try:
                self.fileops.sync(self._fd)
            except OSError as e:
                # The frame is whole in the page cache but maybe not on disk.
                # It is not cut off: a reader may already have read it through
                # its map, and cutting mapped bytes could kill it with SIGBUS.
                self.failed = f"fsync failed: {os.strerror(e.errno) if e.errno else e}"
                raise WriterFailedError(
                    f"{self.path}: {self.failed} after the frame was written, so it may or may "
                    "not be durable. This handle refuses further commits: close, reopen and "
                    "check mem.head before retrying the change") from e
            self._synced_to = end
        index = len(self.frames)
        self.frames.offsets.append(start)
        self.frames.kinds.append(kind)
        if self._appended_from is None:
            self._appended_from = index
        self.valid_end, self.size, self.free_bytes = end, size, size - end
        self.failed = None  # the last step: the append is whole
        return index

    def _move_to_version_2(self) -> None:
        """Write the version-2 header (§12) and sync it, before the first frame written
        after an unsynced one: from the frame after it on, frames carry
        FRAME_FLAG_UNSYNCED, which version 1 does not allow (R23). The sync makes
        every byte so far durable, so that first frame itself needs no flag.

        The header is 32 bytes in one sector, written in one call: a crash leaves
        the old one or the new one. Raises WriterFailedError (fail-stop).
        """
        try:
            self.fileops.pwrite(self._fd, encode_file_header(2), 0)
            self.fileops.sync(self._fd)
        except OSError as e:
            self.failed = f"writing the version-2 header failed: {e}"
            raise WriterFailedError(
                f"{self.path}: could not move the file to format version 2 ({e.strerror}); "
                "the change was not committed. Close and reopen the file once the disk is "
                "fixed") from e
        self.version = 2
        self._synced_to = self.valid_end  # the sync made everything before it durable

    def _take_back(self, start: int, length: int) -> None:
        """Undo a failed write of ``length`` bytes at ``start``: zeros again over the
        free space it reached, and the file cut back to its size before it (under
        the exclusive guard: a reader may be walking those bytes). Best effort."""
        with contextlib.suppress(OSError):
            if self.fileops.size(self._fd) > self.size:
                with truncation_guard(self._fd, exclusive=True):
                    self.fileops.truncate(self._fd, self.size)
            if self.size > start:
                self.fileops.pwrite(self._fd, bytes(min(length, self.size - start)), start)

    def _frame_in_file(self, start: int, frame: bytes) -> bool:
        """Whether the file now holds ``frame`` at ``start`` (True when it cannot tell)."""
        try:
            return os.pread(self._fd, len(frame), start) == frame
        except OSError:
            return True

    def sync(self) -> None:
        """Make everything appended so far durable (for durability="none" users).

        Raises WriterFailedError on a failed handle: nothing can be promised there.
        """
        if self.readonly:
            return
        if self.failed:
            raise WriterFailedError(
                f"{self.path}: an earlier write failed ({self.failed}); nothing written through "
                "this handle can be made durable. Close and reopen the file")
        try:
            self.fileops.sync(self._fd)
        except OSError as e:
            self.failed = f"sync failed: {e}"
            raise WriterFailedError(f"{self.path}: fsync failed ({e.strerror}); reopen") from e
        self._synced_to = self.valid_end

    def close(self) -> None:
        """Close the file and release the writer lock. Idempotent.

        Each resource is taken from the handle in one statement before it is
        released, so a close interrupted anywhere and called again never
        releases one twice (a descriptor closed twice may by then be another
        file's); the price is that an interrupt in that window leaks it.
        """
        self.map.release()
        fd, self._fd = self._fd, -1
        lock, self._lock = self._lock, None
        try:
            if fd >= 0:
                # Nothing depends on close succeeding (durable commits were synced
                # before they were acknowledged): an error here is not the user's.
                with contextlib.suppress(OSError):
                    self.fileops.close(fd)
        finally:
            if lock is not None:
                lock.release()
