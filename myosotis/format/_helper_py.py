"""Pure-Python twin of the C helper (``csrc/myo_helper.c``): CRC32C and the frame scan.

:mod:`myosotis.format.helper` uses this module when the compiled
``myosotis._helper`` cannot be imported or when ``MYOSOTIS_PURE=1`` is set. Both
keep the contract of :mod:`myosotis.format.helper_contract` and must give
exactly the same result for every input, garbage included;
``tests/test_helper.py`` checks that differentially. This one is slow (CRC32C
runs at a few MB/s) and meant for portability and as a reference. Its format
constants come from :mod:`myosotis.format.constants`; the frame header rules
R21–R24 are :func:`~myosotis.format.helper_contract.header_payload_length`.
"""

from __future__ import annotations

import operator
import struct
from array import array
from typing import TYPE_CHECKING, Final

from myosotis.format.constants import (
    CRC32C_POLY,
    FRAME_ALIGN,
    FRAME_HEADER_SIZE,
    FRAME_KIND_OFFSET,
    FRAME_PAYLOAD_CRC_OFFSET,
)
from myosotis.format.helper_contract import (
    CRC_MAX,
    SEARCH_BUDGET_FACTOR,
    ScanResult,
    ScanStatus,
    header_payload_length,
)

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

_PAIRS: Final = struct.Struct("<II")
_U32: Final = struct.Struct("<I")


def _make_tables() -> tuple[tuple[int, ...], ...]:
    """Slicing-by-8 tables of the reflected polynomial (table 0 is the byte table),
    the same as the C helper's (tests/test_crc_tables.py)."""
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ CRC32C_POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tuple(tuple(t) for t in tables)


_TABLES: Final = _make_tables()


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
    """CRC32C of ``data`` from ``value``: see :class:`~myosotis.format.helper_contract.Crc32c`."""
    value = operator.index(value)
    if not 0 <= value <= CRC_MAX:
        raise ValueError(f"crc32c value must be in [0, 2**32), got {value}")
    return _crc_update(value ^ CRC_MAX, data) ^ CRC_MAX


def _crc_of(data: ReadableBuffer) -> int:
    """:func:`crc32c` from 0, without the check of ``value`` (the header CRC, R21)."""
    return _crc_update(CRC_MAX, data) ^ CRC_MAX


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
    n = header_payload_length(head, allowed_flags, _crc_of)  # R21-R24
    if n < 0:
        return 0
    pad = (FRAME_ALIGN - n % FRAME_ALIGN) % FRAME_ALIGN
    size = FRAME_HEADER_SIZE + n + pad
    if length - o < size:  # R25
        return 0
    if full:
        body = o + FRAME_HEADER_SIZE
        if any(mv[body + n : body + n + pad]):  # R27
            return 0
        if _crc_of(mv[body : body + n]) != _U32.unpack_from(head, FRAME_PAYLOAD_CRC_OFFSET)[0]:
            return 0  # R26
    return size


def scan_frames(buf: ReadableBuffer, start: int, verify_payload: bool,
                allowed_flags: int = 0) -> ScanResult:
    """The §10 walk of ``buf`` from ``start``: see
    :class:`~myosotis.format.helper_contract.ScanFrames`."""
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
        kinds.append(mv[p + FRAME_KIND_OFFSET])
        p += size
    else:
        return ScanResult(ScanStatus.CLEAN, offsets, bytes(kinds), length, None)
    if not any(mv[p:]):  # §10 step 3: free space a writer reserved
        return ScanResult(ScanStatus.FREE, offsets, bytes(kinds), p, None)
    # FORMAT.md §10 step 3, the budgeted search (linear time, fail safe)
    budget = SEARCH_BUDGET_FACTOR * (length - p)
    q = p + FRAME_ALIGN
    while length - q >= FRAME_HEADER_SIZE:
        if _frame_size(mv, q, False, flags):
            n = _U32.unpack_from(mv, q)[0]  # payload_length
            if n > budget or _frame_size(mv, q, True, flags):
                return ScanResult(ScanStatus.CORRUPT, offsets, bytes(kinds), p, q)
            budget -= n
        q += FRAME_ALIGN
    return ScanResult(ScanStatus.TORN, offsets, bytes(kinds), p, None)
