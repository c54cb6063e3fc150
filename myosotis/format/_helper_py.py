"""Pure-Python twin of the C helper (``csrc/myo_helper.c``): CRC32C and the frame scan.

:mod:`myosotis.format.helper` uses this module when the compiled
``myosotis._helper`` cannot be imported or when ``MYOSOTIS_PURE=1`` is set. It
must give exactly the same result as the C helper for every input, garbage
included; ``tests/test_helper.py`` checks that differentially. It is slow
(CRC32C runs at a few MB/s) and meant for portability and as a reference.

Layouts: FORMAT.md §1 (CRC32C), FORMAT.md §3 (frames, rules R20-R27),
FORMAT.md §10 (the walk, torn tails, corruption).
"""

from __future__ import annotations

import enum
import operator
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from myosotis.format.constants import FRAME_ALIGN, FRAME_HEADER_SIZE, MAX_PAYLOAD

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "ScanResult",
    "ScanStatus",
    "crc32c",
    "crc32c_hw",
    "crc32c_force_portable",
    "scan_frames",
]

_POLY: Final = 0x82F63B78  # FORMAT.md §1: reflected Castagnoli polynomial
_MASK32: Final = 0xFFFFFFFF
_KIND_MIN: Final = 1  # FORMAT.md §4: kinds 1..3 are valid in version 1
_KIND_MAX: Final = 3
# FORMAT.md §3 frame header: payload_length u32 | kind u8 | reserved 3 | payload_crc | header_crc
_FRAME_HEADER: Final = struct.Struct("<IB3sII")
_HEADER_CRC_SPAN: Final = 12  # header_crc covers header bytes 0..11
_ZERO3: Final = bytes(3)
_PAIRS: Final = struct.Struct("<II")


def _make_tables() -> tuple[tuple[int, ...], ...]:
    """Slicing-by-8 tables of the reflected polynomial (table 0 is the byte table)."""
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tuple(tuple(t) for t in tables)


_TABLES: Final = _make_tables()


class ScanStatus(enum.IntEnum):
    """How a scan ended (FORMAT.md §10). Values equal the C ``MYO_SCAN_*`` codes."""

    CLEAN = 0
    """The frames end exactly at the end of the buffer."""
    FULL = 1
    """Internal to the C wrapper (its output array filled up); never returned."""
    TORN = 2
    """A bad frame at ``end`` and no valid frame after it: a torn tail."""
    CORRUPT = 3
    """A bad frame at ``end`` and a valid frame at ``next_valid``: corruption."""
    FREE = 4
    """A bad frame at ``end`` and only zero bytes from there on: free space (§3)."""


@dataclass(frozen=True)
class ScanResult:
    """The outcome of :func:`scan_frames`.

    ``offsets[i]`` and ``kinds[i]`` are the offset and kind byte of the i-th
    accepted frame, in file order. ``end`` is the end of the accepted prefix:
    the buffer length when ``status`` is CLEAN, else the offset of the first
    bad frame. ``next_valid`` is the offset of the first valid frame after
    ``end`` when ``status`` is CORRUPT, else ``None``.
    """

    status: ScanStatus
    offsets: Sequence[int]
    kinds: bytes
    end: int
    next_valid: int | None


def _crc_update(crc: int, data: ReadableBuffer) -> int:
    """Raw CRC register update (no inversions) over ``data``, slicing-by-8."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    # Not a with-block: an exception raised as such a block exits can skip the
    # release of a buffer exported from it, and the with-block then raises
    # BufferError in place of that exception. The views are freed by refcount.
    mv = memoryview(data).cast("B")
    n8 = len(mv) & ~7
    for lo, hi in _PAIRS.iter_unpack(mv[:n8]):
        lo ^= crc
        crc = (
            t7[lo & 0xFF]
            ^ t6[(lo >> 8) & 0xFF]
            ^ t5[(lo >> 16) & 0xFF]
            ^ t4[lo >> 24]
            ^ t3[hi & 0xFF]
            ^ t2[(hi >> 8) & 0xFF]
            ^ t1[(hi >> 16) & 0xFF]
            ^ t0[hi >> 24]
        )
    for b in mv[n8:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def crc32c(data: ReadableBuffer, value: int = 0) -> int:
    """Return the CRC32C (FORMAT.md §1) of ``data``, continuing from ``value``.

    ``data`` is any C-contiguous bytes-like object. ``value`` is a previous
    result (0 to start), as with :func:`zlib.crc32`: ``crc32c(a + b) ==
    crc32c(b, crc32c(a))``. Raises ``ValueError`` if ``value`` is not in
    ``[0, 2**32)`` and ``TypeError`` for a non-contiguous buffer.
    """
    value = _check_crc_value(value)
    return _crc_update(value ^ _MASK32, data) ^ _MASK32


def _check_crc_value(value: int) -> int:
    value = operator.index(value)
    if not 0 <= value <= _MASK32:
        raise ValueError(f"crc32c value must be in [0, 2**32), got {value}")
    return value


def crc32c_hw() -> bool:
    """Whether CRC32C uses a hardware instruction: never, in pure Python."""
    return False


def crc32c_force_portable(on: bool) -> None:
    """For tests: force the portable CRC path. Pure Python has only that one."""


def _check_start(start: int, length: int) -> int:
    start = operator.index(start)
    if start < 0 or start > length:
        raise ValueError(f"scan start {start} is outside the buffer (length {length})")
    if start % FRAME_ALIGN:
        raise ValueError(f"scan start {start} is not a multiple of {FRAME_ALIGN}")
    return start


def _frame_size(mv: memoryview, o: int, full: bool, allowed_flags: int = 0) -> int:
    """Size of the frame at ``o`` if it is header-valid (``full`` false: R20-R25)
    or valid (``full`` true: R20-R27), else 0 (FORMAT.md §3).

    The rules are a conjunction and are checked cheapest first, like the C code.
    """
    length = len(mv)
    if length - o < FRAME_HEADER_SIZE:  # R20
        return 0
    # One copy of the header for every check, as in the C code: a writer may be
    # writing this frame into free space (§3), its bytes visible in any order.
    head = bytes(mv[o : o + FRAME_HEADER_SIZE])
    n, kind, reserved, payload_crc, header_crc = _FRAME_HEADER.unpack_from(head)
    if not _KIND_MIN <= kind <= _KIND_MAX:  # R22
        return 0
    if reserved[0] & ~allowed_flags or reserved[1:] != _ZERO3[1:]:  # R23: flags, reserved
        return 0
    if n > MAX_PAYLOAD:  # R24
        return 0
    if crc32c(head[:_HEADER_CRC_SPAN]) != header_crc:  # R21
        return 0
    pad = (FRAME_ALIGN - n % FRAME_ALIGN) % FRAME_ALIGN
    size: int = FRAME_HEADER_SIZE + n + pad
    if length - o < size:  # R25
        return 0
    if full:
        body = o + FRAME_HEADER_SIZE
        if any(mv[body + n : body + n + pad]):  # R27
            return 0
        if crc32c(mv[body : body + n]) != payload_crc:  # R26
            return 0
    return size


def scan_frames(buf: ReadableBuffer, start: int, verify_payload: bool,
                allowed_flags: int = 0) -> ScanResult:
    """Walk the frames of ``buf`` from offset ``start`` (FORMAT.md §3, §10).

    ``buf`` is any C-contiguous bytes-like object (bytes, bytearray, mmap,
    memoryview); offsets are relative to its first byte. Each frame must be
    valid (R20-R27) when ``verify_payload`` is true, else header-valid
    (R20-R25). The walk ends with status CLEAN (the frames end exactly at
    ``len(buf)``), FREE (a bad frame at ``end`` and every byte from there on
    zero), TORN (a bad frame at ``end``, a non-zero byte after it and no
    valid frame at any 8-aligned offset after it) or CORRUPT (a bad frame at ``end``; the first
    valid frame after it is at ``next_valid``). The search after a bad frame
    always checks frames in full, whatever ``verify_payload`` says.
    ``allowed_flags``: the bits byte 5 of a frame header may have (R23): 0 in
    a version-1 file, FRAME_FLAG_UNSYNCED in a version-2 one.

    Raises ``ValueError`` if ``start`` is negative, past the end or not a
    multiple of 8, and ``TypeError`` for a non-contiguous buffer. The result
    keeps no reference to ``buf``.
    """
    offsets: array[int] = array("Q")
    kinds = bytearray()
    # freed by refcount, not a with-block (see crc32c)
    mv = memoryview(buf).cast("B")
    length = len(mv)
    p = _check_start(start, length)
    full = bool(verify_payload)
    flags = allowed_flags & 0xFF
    while p != length:
        size = _frame_size(mv, p, full, flags)
        if not size:
            break
        offsets.append(p)
        kinds.append(mv[p + 4])
        p += size
    else:
        return ScanResult(ScanStatus.CLEAN, offsets, bytes(kinds), length, None)
    if not any(mv[p:]):  # §10 step 3: free space a writer reserved
        return ScanResult(ScanStatus.FREE, offsets, bytes(kinds), p, None)
    # FORMAT.md §10 step 3, with the same payload budget as the C code:
    # past 2 * (length - p) payload bytes checked, a header-valid
    # candidate counts as valid (linear time, fail safe).
    budget = 2 * (length - p)
    q = p + FRAME_ALIGN
    while length - q >= FRAME_HEADER_SIZE:
        if _frame_size(mv, q, False, flags):
            n = _FRAME_HEADER.unpack_from(mv, q)[0]
            if n > budget or _frame_size(mv, q, True, flags):
                return ScanResult(ScanStatus.CORRUPT, offsets, bytes(kinds), p, q)
            budget -= n
        q += FRAME_ALIGN
    return ScanResult(ScanStatus.TORN, offsets, bytes(kinds), p, None)
