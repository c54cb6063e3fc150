"""The contract of the helper: CRC32C and the frame scan (FORMAT.md §1, §3, §10).

Two implementations keep it: the C helper (``csrc/myo_helper.c``, reached only
through :mod:`myosotis.format.helper`, the one module that uses cffi) and its
pure-Python twin :mod:`myosotis.format._helper_py`. Callers import
:mod:`myosotis.format.helper`, which picks one (``MYOSOTIS_PURE=1`` forces the
twin). This module imports neither. It holds what the two share:

- :class:`Crc32c` and :class:`ScanFrames`: the signatures of ``crc32c`` and
  ``scan_frames`` and the one description of what they return and raise, how
  long the buffer is used, and the cost; both implementations are typed as
  these protocols;
- :class:`ScanStatus` and :class:`ScanResult`, what ``scan_frames`` returns;
- :data:`SEARCH_BUDGET_FACTOR` and :data:`CRC_MAX`; the format constants
  themselves are in :mod:`myosotis.format.constants`, the single source that
  the C helper's built-in constants are checked against when it is loaded;
- :func:`header_payload_length`: R21–R24 on a frame header, the one Python
  definition (the twin's scan and :mod:`myosotis.format.walk` call it; the
  C helper's ``frame_ok`` is kept equal to the twin by tests/test_helper.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

from myosotis.format.constants import (
    FRAME_HEADER_CRC_OFFSET,
    FRAME_HEADER_STRUCT,
    KIND_MAX,
    KIND_MIN,
    MAX_PAYLOAD,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "CRC_MAX",
    "SEARCH_BUDGET_FACTOR",
    "Crc32c",
    "ScanFrames",
    "ScanResult",
    "ScanStatus",
    "header_payload_length",
]

CRC_MAX: Final = 0xFFFFFFFF
"""The largest CRC32C value, and the largest ``value`` ``crc32c`` continues from."""

SEARCH_BUDGET_FACTOR: Final = 2
"""FORMAT.md §10 step 3: the search after a bad frame at ``p`` checks payloads
within a budget of this times ``len(buf) - p`` bytes (C: MYO_SCAN_BUDGET_FACTOR)."""

_RESERVED_ZERO: Final = bytes(2)


class ScanStatus(enum.IntEnum):
    """How a scan ended (FORMAT.md §10). Values equal the C ``MYO_SCAN_*`` codes.

    ``end`` is the offset where the walk stopped; for every status but CLEAN
    the frame there is *bad*: not valid (R20–R27) when the walk checks
    payloads, not header-valid (R20–R25) when it does not.
    """

    CLEAN = 0
    """The frames end exactly at the end of the buffer (§10 step 2); ``end == len(buf)``."""
    FULL = 1
    """Internal to the C wrapper (the C call's output array filled up); never returned."""
    TORN = 2
    """A bad frame at ``end``, a non-zero byte from ``end`` on, and no frame after it
    that the search counts as valid (§10 step 3). A torn tail only if a torn write
    can leave the frame at ``end`` (R28), which the scan does not decide:
    :func:`myosotis.format.walk.walk` does."""
    CORRUPT = 3
    """A bad frame at ``end`` and the search counts the frame at ``next_valid`` as
    valid: corruption at ``end`` (§10 step 4), unless R29 makes it a torn tail of a
    version-2 file (decided by :func:`myosotis.format.walk.walk` too)."""
    FREE = 4
    """A bad frame at ``end`` and only zero bytes from there on: free space (§3,
    §10 step 3), not damage."""


class ScanResult(NamedTuple):
    """What :class:`ScanFrames` returns. It holds no reference to the buffer scanned.

    ``offsets[i]`` and ``kinds[i]`` are the offset and kind byte of the i-th
    accepted frame, in file order (``offsets`` is an ``array('Q')``). ``end`` is
    the end of the accepted prefix: the buffer length when ``status`` is CLEAN,
    else the offset of the first bad frame. ``next_valid`` is the offset of the
    frame the search counts as valid when ``status`` is CORRUPT, else ``None``.
    """

    status: ScanStatus
    offsets: Sequence[int]
    kinds: bytes
    end: int
    next_valid: int | None


class Crc32c(Protocol):
    """The signature and contract of ``crc32c``."""

    def __call__(self, data: ReadableBuffer, value: int = 0) -> int:
        """Return the CRC32C (FORMAT.md §1) of ``data``, continuing from ``value``.

        ``data`` is any C-contiguous bytes-like object (bytes, bytearray, mmap,
        a memoryview of any item format, read as its bytes). ``value`` is a
        previous result, 0 to start, as with :func:`zlib.crc32`:
        ``crc32c(a + b) == crc32c(b, crc32c(a))`` and ``crc32c(b"", v) == v``.

        Raises ``ValueError`` if ``value`` is not in ``[0, CRC_MAX]``, and
        ``TypeError`` if it is not an integer or ``data`` is not a C-contiguous
        buffer. ``data`` is read during the call only and no reference to it is
        kept; bytes that change during the call give the CRC of some mix of old
        and new bytes. Cost: linear (C: the SSE4.2 ``crc32`` instruction where
        the CPU has it, else slicing-by-8 tables; the twin: a few MB/s).
        """


class ScanFrames(Protocol):
    """The signature and contract of ``scan_frames``."""

    def __call__(self, buf: ReadableBuffer, start: int, verify_payload: bool,
                 allowed_flags: int = 0) -> ScanResult:
        """Walk the frames of ``buf`` from ``start`` (FORMAT.md §10 steps 2–4).

        ``buf`` is any C-contiguous bytes-like object (bytes, bytearray, mmap,
        memoryview), usually a whole file's bytes; offsets are relative to its
        first byte. ``start`` is a frame boundary: a multiple of FRAME_ALIGN in
        ``[0, len(buf)]``. Each frame of the walk must be valid (R20–R27) when
        ``verify_payload`` is true, else header-valid (R20–R25).
        ``allowed_flags`` holds the bits the flags byte of a frame header may
        have (R23): ``FRAME_FLAGS_ALLOWED[format_version]``, 0 in a version-1
        file, FRAME_FLAG_UNSYNCED in a version-2 one; bits above 7 are ignored.

        Returns a :class:`ScanResult` whose status says how the walk ended
        (:class:`ScanStatus`: CLEAN, FREE, TORN or CORRUPT). When a bad frame at
        ``p`` is followed by a non-zero byte, the search of §10 step 3 looks for
        a valid frame after it, whatever ``verify_payload`` says: with a budget
        ``B = SEARCH_BUDGET_FACTOR * (len(buf) - p)``, for each ``q = p + 8,
        p + 16, …`` while ``q + 16 <= len(buf)``, a candidate that is not
        header-valid is skipped; one whose ``payload_length`` n exceeds B counts
        as valid unread; else it counts as valid if it is valid (R26, R27), and
        if not, B decreases by n and the search goes on. So the cost is linear
        in ``len(buf) - start`` for any input, and a file built to exhaust the
        budget is reported CORRUPT, which is safe.

        Raises ``ValueError`` if ``start`` is negative, past the end or not a
        multiple of FRAME_ALIGN, and ``TypeError`` if it is not an integer or
        ``buf`` is not a C-contiguous buffer. ``buf`` is read during the call
        only (the C helper reads it without the GIL). Its length must not
        change meanwhile: an mmap of a file that shrinks under the call faults
        (SIGBUS), which is why storage/log.py walks under its truncation
        guard. Its bytes may change (a writer appending over free space): each
        frame header is read from one copy of its 16 bytes, so a half-written
        header fails R21 or R22 instead of sending the walk off the frame
        boundaries (§10 step 4); telling that from damage is the caller's job.
        """


def header_payload_length(head: bytes, allowed_flags: int,
                          crc32c: Callable[[bytes], int]) -> int:
    """The ``payload_length`` of the frame header ``head`` if it passes R21–R24 of
    FORMAT.md §3, else -1.

    ``head`` is one copy of the header's 16 bytes, so every rule reads the same
    bytes (§10 step 4). R20 and R25 depend on where the frame is and are the
    caller's. ``allowed_flags`` as for :class:`ScanFrames` (R23). ``crc32c``
    computes the header CRC (R21): the caller's implementation, so the C one
    outside the twin. The rules are a conjunction, checked cheapest first.
    """
    fields: tuple[int, int, bytes, int, int] = FRAME_HEADER_STRUCT.unpack(head)
    n, kind, reserved, _, header_crc = fields  # reserved: the flags byte, 2 reserved bytes
    if not KIND_MIN <= kind <= KIND_MAX:  # R22
        return -1
    if reserved[0] & ~allowed_flags or reserved[1:] != _RESERVED_ZERO:  # R23
        return -1
    if n > MAX_PAYLOAD:  # R24
        return -1
    if crc32c(head[:FRAME_HEADER_CRC_OFFSET]) != header_crc:  # R21
        return -1
    return n
