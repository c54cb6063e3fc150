"""The append-only log file: open, recover, read frames, append frames.

Layout and rules: FORMAT.md §2, §3 and §10. A :class:`LogFile` knows frames,
not records: it hands out payload memoryviews and appends encoded frames.
This module holds the log's state and its reader's side (the §10 walk, its
repetition by a reader racing the writer, reading payloads); the other roles
are in opening.py (finding, creating, locking the file), append.py (the
writer's appends and syncs) and recovery.py (cutting a torn tail).

Invariants:
- ``frames`` lists every frame of ``[index_from, valid_end)`` of the valid prefix
  (``index_from`` is 32, or the newest layer of a file opened from its end,
  FORMAT.md §10.1, until ``ensure_full``); every frame in it is header-valid
  and the last one is valid in full.
- A writer appends only at ``valid_end`` and only while ``failed`` is false.
- Bytes ``[valid_end, size)`` are either all zero (``free_bytes``: space a
  durable writer reserved, FORMAT.md §3) or a torn tail (``torn_bytes``).
- The file shrinks only in recovery.py, under the truncation guard (and when
  an append takes back its own failed write, append.py).
"""

from __future__ import annotations

import array
import bisect
import contextlib
import os
import time
from collections.abc import Callable, Iterable

from myosotis.errors import CorruptFileError, MyosotisError
from myosotis.format.constants import (
    FRAME_FLAGS_ALLOWED,
    FRAME_HEADER_SIZE,
    FRAME_HEADER_STRUCT,
    HEADER_SIZE,
    KINDS_BY_VERSION,
)
from myosotis.format.header import check_file_header, frame_payload_ok, padding
from myosotis.format.helper import ScanStatus
from myosotis.format.walk import Walk, walk
from myosotis.storage import append as _append
from myosotis.storage import tail as _tail
from myosotis.storage.fileops import REAL, FileOps
from myosotis.storage.lock import WriterLock, truncation_guard
from myosotis.storage.mapping import FileMap
from myosotis.storage.opening import (
    exists,
    lock_opened,
    missing,
    open_fd,
    prepare_for_writer,
    write_header,
)
from myosotis.storage.recovery import cut_torn_tail


class FrameIndex:
    """Offsets and kinds of the frames of the valid prefix, in file order."""

    __slots__ = ("offsets", "kinds")

    def __init__(self) -> None:
        self.offsets: array.array[int] = array.array("Q")
        self.kinds = bytearray()

    def __len__(self) -> int:
        return len(self.kinds)

    def extend(self, offsets: Iterable[int], kinds: bytes | bytearray) -> None:
        self.offsets.extend(offsets)
        self.kinds += kinds

    def truncate(self, n: int) -> None:
        del self.offsets[n:]
        del self.kinds[n:]


# Frames a handle remembers as CRC-checked (then it forgets them all and checks again)
_VERIFIED_CACHE = 1 << 14

# Pauses (s) before the walks a reader repeats to tell a racing writer from damage
_RESCAN_PAUSES = (0.0, 0.001, 0.01) * 3


FreeSpacePolicy = Callable[[int, int], int]
"""``(frame_start, frame_end) -> file size``: how far a durable writer fills the
file with zeros after a frame that did not fit in the free space (FORMAT.md §3;
the engine's is ``policy.free_space_end``). ``frame_end`` reserves nothing."""


class LogFile:
    """One open data file, for reading (``readonly``) or as its single writer."""

    def __init__(self, path: str, fd: int, readonly: bool, fileops: FileOps,
                 lock: WriterLock | None, free_space: FreeSpacePolicy | None = None) -> None:
        self.path = path
        self.readonly = readonly
        self.fileops = fileops
        self.free_space = free_space  # None: durable appends reserve no free space
        self.fd = fd  # the open data file; -1 once closed
        self._lock = lock
        self.map = FileMap(fd)
        self.frames = FrameIndex()
        # Offset of frames[0]: HEADER_SIZE, or the newest layer when the file was
        # opened from its end (§10.1) and the frames before it are not indexed
        # yet (ensure_full indexes them).
        self.index_from = HEADER_SIZE
        self.valid_end = HEADER_SIZE
        self.size = HEADER_SIZE  # file length at the last scan or append
        self.torn_bytes = 0  # bytes past valid_end ignored as a torn tail at the last scan
        self.free_bytes = 0  # zero bytes past valid_end (§3 free space)
        self.failed: str | None = None  # set once a write or sync failed (fail-stop)
        self.version = 1  # format_version in the header (§2); a writer may move it to 2 or 3
        # Offset up to which this handle knows the file durable (a sync it made or
        # saw): a frame written there gets no FRAME_FLAG_UNSYNCED (§3, R29).
        self.synced_to = -1
        # (offset, length, file) of each torn tail cut after keeping its bytes
        self.recovered: list[tuple[int, int, str]] = []
        self.inode = os.fstat(fd).st_ino
        self._verified: set[int] = set()  # frame indices whose payload CRC was checked
        # Frames from this index on were appended by this handle, so they are
        # right by construction (a writer never rescans after appending).
        self.appended_from: int | None = None

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
        if not exists(path) and (readonly or not create):
            raise missing(path)
        deadline = time.monotonic() + lock_timeout
        lock = None
        created = False
        if not readonly:
            lock = WriterLock(path)
            lock.acquire(lock_timeout)
        try:
            if lock is not None:
                created = prepare_for_writer(path, create, fileops)
            fd = open_fd(path, readonly, fileops)
            if lock is not None:
                fd = lock_opened(lock, path, fd, readonly, fileops, deadline)
            log = cls(path, fd, readonly, fileops, lock, free_space)
        except BaseException:
            if lock is not None:
                lock.abandon()
            raise
        log._read_first(created)
        return log

    def _read_first(self, created: bool) -> None:
        """Read the file just opened (a writer: writing the header into a 0-byte file,
        cutting a torn tail). ``created``: the file was created durably by this open.

        On any failure the handle is closed and a writer lock it took is
        abandoned (with a lock sidecar it created), then the error is raised.
        """
        try:
            size = self.fileops.size(self.fd)
            if size == 0 and not self.readonly:
                write_header(self.fd, self.fileops)
                size = HEADER_SIZE
                created = True
            if size == 0:
                # A reader of a 0-byte file (as a new file is before its writer
                # writes the header): no frames yet; refresh() reads the header.
                self.size = 0
            else:
                self.map.ensure(size)
                check_file_header(self.map.whole(), size, self.path)
                self._scan(size)  # reads format_version too
                if created:
                    self.synced_to = self.valid_end
        except BaseException as e:
            lock, self._lock = self._lock, None
            try:
                self.close()
            finally:
                if lock is not None:
                    lock.abandon()
            if isinstance(e, OSError):
                raise MyosotisError(f"cannot read {self.path} ({e.strerror or e})") from None
            raise

    def reopen(self, synced: bool = False) -> None:
        """Open the file at ``path`` again (it may be a new inode after a rename),
        keeping the writer lock, and scan it from the start. ``synced``: the caller
        wrote the file whole and synced it (compaction, repair)."""
        fd = open_fd(self.path, self.readonly, self.fileops)
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
        # interrupt may leak the old ones, but never leaves ``fd`` naming a
        # descriptor that was closed (closing it again could close a file that
        # reused its number).
        old_fd, old_map = self.fd, self.map
        self.fd, self.map = fd, FileMap(fd)
        old_map.release()
        with contextlib.suppress(OSError):  # the old descriptor is done with either way
            self.fileops.close(old_fd)
        self.frames = FrameIndex()
        self.valid_end = self.size = self.index_from = HEADER_SIZE
        self.torn_bytes = self.free_bytes = 0
        self.failed = None
        self.inode = os.fstat(fd).st_ino
        self._verified = set()
        self.appended_from = None
        try:
            size = self.fileops.size(fd)
            self.map.ensure(size)
            check_file_header(self.map.whole(), size, self.path)
            self.synced_to = -1
            self._scan(size)
        except OSError as e:
            raise MyosotisError(f"cannot read {self.path} again ({e.strerror or e}); close "
                                "this handle and open the file again") from None
        if synced:
            self.synced_to = self.valid_end

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
        # Scanned frames are unverified; appended_from marks frames as verified
        # only because nothing is scanned after this handle appends.
        assert self.appended_from is None, "a writer scans only before it appends"
        found = None
        if not self.frames and self.valid_end == HEADER_SIZE:
            found, size = self._walk_from_newest_layer(size)
        if found is None:
            found, size = self._walk_any(size)
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
            cut_torn_tail(self)
        return len(found.offsets)

    def _walk_any(self, size: int) -> tuple[Walk, int]:
        """The §10 walk from ``valid_end``, a reader's or a writer's."""
        if self.readonly:
            with truncation_guard(self.fd, exclusive=False):
                return self._reader_walk()
        return self._walk(size), size

    # Opening from the newest layer (FORMAT.md §10.1) is its own module's job,
    # bound here as methods.
    _walk_from_newest_layer = _tail.walk_from_newest_layer
    ensure_full = _tail.ensure_full
    frame_header_at = _tail.frame_header_at
    payload_at = _tail.payload_at

    def _walk(self, size: int) -> Walk:
        self.map.ensure(size)
        view = self.map.view(0, size)
        # Read again at every walk: a writer may have moved the file to version 2
        # (§12) since; it writes the header, syncs, and only then flagged frames.
        self.version = int.from_bytes(view[8:10], "little")
        found = walk(view, self.valid_end, FRAME_FLAGS_ALLOWED.get(self.version, 0),
                     KINDS_BY_VERSION.get(self.version))
        # And once more after it: a frame the walk found may have been written
        # after the read above, behind a move to version 3 (an UNDELETE, R54) or
        # 4 (a layer), whose header was written before it. A frame of a kind the
        # old version lacks looked like corruption: walk again with the new one.
        now = int.from_bytes(view[8:10], "little")
        if now > self.version:
            self.version = now
            if found.status == ScanStatus.CORRUPT:
                found = walk(view, self.valid_end, FRAME_FLAGS_ALLOWED.get(now, 0),
                             KINDS_BY_VERSION.get(now))
        return found

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
        size = self.fileops.size(self.fd)
        if size < self.valid_end:
            raise CorruptFileError(
                f"{self.path} shrank to {size} bytes below its verified end {self.valid_end}; "
                "another program truncated it", size)
        return size

    def refresh(self) -> int:
        """Pick up frames appended since the last scan; return how many.

        Raises CorruptFileError if the file shrank below what was read.
        """
        if not self.readonly:
            return 0  # a writer knows every frame it wrote
        if self.size == 0:  # opened on a 0-byte file (see open): the header comes first
            size = self.fileops.size(self.fd)
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
            if len(self._verified) >= _VERIFIED_CACHE:
                # Bounded per handle: a frame forgotten is CRC-checked again
                # when read again, which is cheap and never wrong.
                self._verified.clear()
            self._verified.add(i)
        return ok

    def frame_index_at(self, offset: int) -> int | None:
        """The index of the frame that starts at ``offset``, or None. O(log frames)."""
        offs = self.frames.offsets
        i = bisect.bisect_left(offs, offset)
        return i if i < len(offs) and offs[i] == offset else None

    def payload_unchecked(self, i: int) -> memoryview:
        """The payload of header-valid frame ``i`` without its CRC checked (R26): for a
        layer, whose blocks carry their own CRCs, checked as they are read (§8.7)."""
        _, start, stop = self._frame_bounds(i)
        return self.map.view(start, stop)

    def payload(self, i: int) -> memoryview:
        """The payload of frame ``i``, CRC-checked on first use (R26, R27).

        Zero-copy: the view points into the map and stays valid while
        referenced. Raises CorruptFileError when the frame fails its check.
        """
        if (self.appended_from is None or i < self.appended_from) and \
                i not in self._verified and not self._payload_ok(i):
            raise CorruptFileError("frame payload checksum does not match (R26)",
                                   self.frame_offset(i))
        _, start, stop = self._frame_bounds(i)
        return self.map.view(start, stop)

    # ------------------------------------------------------------------ writing

    # The writer's hot path is the function that does it (append.py), bound as a
    # method: a call less per commit than a delegating method.
    append = _append.append
    """``append(kind, payload, durable, version=1)``: append one frame at ``valid_end``;
    return its frame index. A file older than ``version`` (the format_version the
    frame needs) is moved to it first, durably (§12). ``payload``: bytes, or a
    ``StreamedPayload`` (a layer's) written in pieces, its frame header last.

    A durable append that does not fit in the free space writes new free
    space after the frame, as far as the ``free_space`` policy says (§3).

    With ``durable`` the call returns only after the data and the new file
    size are on stable storage. On any OSError the log fails stop: the
    error is raised as WriterFailedError and every later append is refused,
    because after a failed write or fsync the kernel may have dropped
    dirty pages while reporting later syncs as successful ("fsyncgate");
    only a reopen, which re-reads and re-verifies the file, can tell what
    is durable. Raises ReadOnlyError for a reader."""

    def sync(self) -> None:
        """Make everything appended so far durable (for durability="none" users).

        Raises WriterFailedError on a failed handle: nothing can be promised there.
        """
        _append.sync(self)

    def close(self) -> None:
        """Close the file and release the writer lock. Idempotent.

        Each resource is taken from the handle in one statement before it is
        released, so a close interrupted anywhere and called again never
        releases one twice (a descriptor closed twice may by then be another
        file's); the price is that an interrupt in that window leaks it.
        """
        self.map.release()
        fd, self.fd = self.fd, -1
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
