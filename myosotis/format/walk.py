"""The frame walk of FORMAT.md §10 (steps 2–5), and its test of a torn write (R28).

One walk for every reader of a file: open and refresh (storage/log.py), fsck
(engine/verify.py) and ``myo stats`` all call :func:`walk`. No I/O.

A write that stops part way (a crash, a power cut) leaves each 512-byte
sector it should have filled either written or as it was before. Before a
frame is written, the bytes where it goes are zeros (free space, or a file
extended past its end) or beyond the end of the file. So a torn frame has a
sector, within its bytes, that is still all zero, or it runs past the end of
the file. A damaged frame with neither cannot be a torn write: it is
corruption, and a reader must not drop it as a torn tail. In a version-2 file,
damage that valid frames follow is a torn tail too when every frame header
after it carries FRAME_FLAG_UNSYNCED (R29): a tail never synced, written back
out of order.
"""

from __future__ import annotations

from array import array
from typing import Any, NamedTuple

from myosotis.format.constants import (
    FRAME_ALIGN,
    FRAME_FLAG_UNSYNCED,
    FRAME_FLAGS_ALLOWED,
    FRAME_FLAGS_OFFSET,
    FRAME_HEADER_SIZE,
    FRAME_KIND_OFFSET,
    HEADER_SIZE,
    KIND_GENESIS,
    KIND_MAX,
    KIND_MIN,
    KIND_ORIGIN,
    KINDS_BY_VERSION,
)
from myosotis.format.header import frame_payload_ok, padding
from myosotis.format.helper import ScanStatus, crc32c, scan_frames
from myosotis.format.helper_contract import header_payload_length

SECTOR = 512  # the unit a torn write leaves whole or unwritten (§10 step 5)
_NEVER_TORN = (KIND_GENESIS, KIND_ORIGIN)  # written whole and synced with the file (R28)


def _has_zero_sector(buf: Any, start: int, stop: int) -> bool:
    """Whether some 512-byte-aligned sector holds only zeros within ``[start, stop)``."""
    pos = start
    while pos < stop:
        end = min(stop, (pos // SECTOR + 1) * SECTOR)
        if not any(bytes(buf[pos:end])):
            return True
        pos = end
    return False


def can_be_torn(buf: Any, off: int, allowed_flags: int = 0) -> bool:
    """Whether the damaged frame at ``off`` of ``buf`` (a whole file's bytes) can be
    what a torn write left (§10 step 5, R28).

    True when the frame runs past the end of the file, or when one of its
    sectors is all zero (the whole frame if its header is header-valid, else
    its 16 header bytes). Never for a genesis or origin frame: they are written
    whole and synced before the file gets its name (R85, R87).
    """
    size = len(buf)
    if off + FRAME_HEADER_SIZE > size:
        return True
    head = bytes(buf[off:off + FRAME_HEADER_SIZE])
    n = header_payload_length(head, allowed_flags, crc32c)  # R21-R24, not R25
    if n < 0:
        return _has_zero_sector(buf, off, off + FRAME_HEADER_SIZE)
    if head[FRAME_KIND_OFFSET] in _NEVER_TORN:
        return False
    end = off + FRAME_HEADER_SIZE + n + padding(n)
    return end > size or _has_zero_sector(buf, off, end)


class Walk(NamedTuple):
    """What the §10 walk found from ``start``.

    ``offsets``/``kinds``: the frames of the valid prefix from ``start`` on, in
    file order; the last one is valid in full (R26, R27). ``end``: the valid
    end. ``status``:

    - CLEAN: the frames end at the end of the file;
    - FREE: only zeros follow ``end`` (free space, §3);
    - TORN: the bytes from ``end`` on are a torn tail (§10 step 3, 5);
    - CORRUPT: damage at ``damage`` (== ``end``) that is not a torn tail:
      a valid frame follows it at ``next_valid`` (§10 step 4), or it cannot
      be a torn write (R28, ``next_valid`` None). ``reason`` says which.

    In a version-2 file (``allowed_flags`` has FRAME_FLAG_UNSYNCED), damage
    that can be torn and is followed only by frames flagged unsynced is a torn
    tail as a whole, those frames included (§10 step 4, R29).
    """

    status: ScanStatus
    offsets: array[int]
    kinds: bytearray
    end: int
    next_valid: int | None = None
    reason: str = ""
    last_checked: bool = True  # step 5 checked the last frame's payload (R26, R27)

    @property
    def damage(self) -> int | None:
        return self.end if self.status == ScanStatus.CORRUPT else None

    def as_torn(self) -> Walk:
        """This walk with its damage taken for a torn tail (a reader that could not
        confirm it, see LogFile._reader_walk)."""
        return self._replace(status=ScanStatus.TORN, next_valid=None, reason="",
                             last_checked=False)


def _only_unsynced_after(buf: Any, p: int, allowed_flags: int) -> bool:
    """Whether every header-valid frame header at an 8-aligned offset after ``p`` has
    FRAME_FLAG_UNSYNCED (R29). Every candidate counts, not only the frames a walk
    would accept: one without the flag proves the bytes at ``p`` were durable.
    Runs only on damage (the search of §10 step 3 found a valid frame after it)."""
    size = len(buf)
    kind_at, flags_at = FRAME_KIND_OFFSET, FRAME_FLAGS_OFFSET
    for o in range(p + FRAME_ALIGN, size - FRAME_HEADER_SIZE + 1, FRAME_ALIGN):
        # The unflagged headers that may pass R22 first (cheap), then R21-R24 on a copy.
        if not buf[o + flags_at] & FRAME_FLAG_UNSYNCED and \
                KIND_MIN <= buf[o + kind_at] <= KIND_MAX:
            head = bytes(buf[o:o + FRAME_HEADER_SIZE])
            if not head[flags_at] & FRAME_FLAG_UNSYNCED and \
                    header_payload_length(head, allowed_flags, crc32c) >= 0:
                return False
    return True


def foreign_kind(kinds: bytearray, allowed: frozenset[int]) -> int:
    """Index of the first kind in ``kinds`` that ``allowed`` (the file's version's
    kinds, KINDS_BY_VERSION) lacks, or -1. C speed: one ``translate``."""
    rest = kinds.translate(None, bytes(sorted(allowed)))
    return -1 if not rest else kinds.index(rest[0])


def walk(buf: Any, start: int, allowed_flags: int = 0,
         allowed_kinds: frozenset[int] | None = None) -> Walk:
    """Walk the frames of ``buf`` (a whole file's bytes, or a map of them) from the
    frame boundary ``start`` (FORMAT.md §10 steps 2–5). ``allowed_flags``: the
    frame flags the file's format_version allows (FRAME_FLAGS_ALLOWED, R23).

    Frames before ``start`` were walked before and are not checked again. Only
    frames found by this walk can be dropped by step 5. ``allowed_kinds``: the
    kinds the file's version has (R22); the scan accepts every version's, so a
    frame of a kind its version lacks is refused here, as corruption at it.
    """
    res = scan_frames(buf, start, False, allowed_flags)
    offsets = array("Q", res.offsets)
    kinds = bytearray(res.kinds)
    if allowed_kinds is not None:
        bad = foreign_kind(kinds, allowed_kinds)
        if bad >= 0:
            # A whole frame (its header CRC matches) of a kind this version
            # lacks is no torn write: a newer writer's frame or damage (R22).
            off = int(offsets[bad])
            del offsets[bad:], kinds[bad:]
            rule = "R22, R34" if res.kinds[bad] == KIND_ORIGIN else "R22"
            return Walk(ScanStatus.CORRUPT, offsets, kinds, off, None,
                        f"a frame of kind {res.kinds[bad]}, which format version "
                        f"{_version_of(buf)} does not have ({rule})")
    status, end = res.status, res.end
    if status == ScanStatus.CORRUPT:
        assert res.next_valid is not None
        if not (allowed_flags & FRAME_FLAG_UNSYNCED and can_be_torn(buf, end, allowed_flags)
                and _only_unsynced_after(buf, end, allowed_flags)):
            return Walk(ScanStatus.CORRUPT, offsets, kinds, end, res.next_valid,
                        f"damaged frame, yet a valid frame follows at offset {res.next_valid} "
                        "(§10 step 4)")
        # Written out of order and never synced: all of it is a torn tail (R29).
        status = ScanStatus.TORN
    elif status == ScanStatus.TORN and not can_be_torn(buf, end, allowed_flags):
        return Walk(ScanStatus.CORRUPT, offsets, kinds, end, None,
                    "damaged frame header that a torn write cannot leave (R28)")
    # Step 5: the walk checked headers only; the last frame must be valid in
    # full. One that is not is a torn tail if a torn write can leave it (R28).
    while offsets:
        off = offsets[-1]
        if frame_payload_ok(buf, off):
            break
        if not can_be_torn(buf, off, allowed_flags):
            del offsets[-1], kinds[-1]
            return Walk(ScanStatus.CORRUPT, offsets, kinds, off, None,
                        "damaged last frame that a torn write cannot leave: no sector of it "
                        "is still zero (R28)")
        del offsets[-1], kinds[-1]
        status, end = ScanStatus.TORN, off  # zeros after a torn frame are torn too
    return Walk(status, offsets, kinds, end)


def walk_file(buf: Any) -> Walk:
    """:func:`walk` of a whole file from its first frame, with the frame flags its
    header's format_version allows (the header itself checked by the caller)."""
    version = _version_of(buf)
    return walk(buf, HEADER_SIZE, FRAME_FLAGS_ALLOWED.get(version, 0),
                KINDS_BY_VERSION.get(version))


def _version_of(buf: Any) -> int:
    return int.from_bytes(bytes(buf[8:10]), "little")
