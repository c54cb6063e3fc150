"""CRC32C and the frame scan, in C when the compiled helper is available.

This is the one module that touches the compiled ``myosotis._helper`` (built by
cffi from ``csrc/``); ``ffi`` never leaves it. When ``MYOSOTIS_PURE=1`` is set
in the environment, or the compiled module cannot be imported, the same
functions come from the pure-Python twin :mod:`myosotis.format._helper_py`,
which gives exactly the same results, only slower. :data:`IMPLEMENTATION` says
which one is active: ``"c"`` or ``"python"``.

Layouts: FORMAT.md §1 (CRC32C), FORMAT.md §3 (frames), FORMAT.md §10 (the walk,
torn tails and corruption).
"""

from __future__ import annotations

import importlib
import operator
import os
from array import array
from typing import TYPE_CHECKING, Any, Final

from myosotis.format import _helper_py
from myosotis.format._helper_py import ScanResult, ScanStatus
from myosotis.format.constants import FRAME_ALIGN, FRAME_HEADER_SIZE, MAX_PAYLOAD

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "BATCH_FRAMES",
    "IMPLEMENTATION",
    "ScanResult",
    "ScanStatus",
    "crc32c",
    "crc32c_force_portable",
    "crc32c_hw",
    "scan_frames",
]

BATCH_FRAMES: int = 65536
"""Frames recorded per C call; the wrapper loops while the C scan reports FULL.
A module global (read at each call) so tests can make it small."""

_MASK32: Final = 0xFFFFFFFF

_ffi: Any = None
_lib: Any = None
if os.environ.get("MYOSOTIS_PURE") != "1":
    try:
        # By name: the compiled module has no source, so the import-linter
        # contracts (pyproject.toml) would take it for the root package.
        _compiled = importlib.import_module("myosotis._helper")
    except ImportError:
        pass
    else:
        _ffi, _lib = _compiled.ffi, _compiled.lib

_new_uncleared: Any = None if _ffi is None else _ffi.new_allocator(should_clear_after_alloc=False)

IMPLEMENTATION: Final[str] = "python" if _lib is None else "c"
"""``"c"`` when the compiled helper is in use, ``"python"`` for the pure twin."""

if _lib is not None:
    # A compiled helper built from other sources than these (a stale build) must not
    # be used quietly: its constants must be the ones of FORMAT.md §3 and §10.
    _expected = (FRAME_HEADER_SIZE, FRAME_ALIGN, MAX_PAYLOAD, 0, 1, 2, 3, 4)
    _built = (
        _lib.MYO_FRAME_HEADER_SIZE,
        _lib.MYO_FRAME_ALIGN,
        _lib.MYO_MAX_PAYLOAD,
        _lib.MYO_SCAN_CLEAN,
        _lib.MYO_SCAN_FULL,
        _lib.MYO_SCAN_TORN,
        _lib.MYO_SCAN_CORRUPT,
        _lib.MYO_SCAN_FREE,
    )
    if _built != _expected:
        raise ImportError(
            f"myosotis._helper is stale (constants {_built}, expected {_expected}); "
            "rebuild it with `pip install -e .`"
        )


def _c_crc32c(data: ReadableBuffer, value: int = 0) -> int:
    """Return the CRC32C (FORMAT.md §1) of ``data``, continuing from ``value``.

    ``data`` is any C-contiguous bytes-like object. ``value`` is a previous
    result (0 to start), as with :func:`zlib.crc32`: ``crc32c(a + b) ==
    crc32c(b, crc32c(a))``. Raises ``ValueError`` if ``value`` is not in
    ``[0, 2**32)`` and ``TypeError`` for a non-contiguous buffer.
    """
    value = operator.index(value)
    if not 0 <= value <= _MASK32:
        raise ValueError(f"crc32c value must be in [0, 2**32), got {value}")
    if type(data) is bytes:  # fast path: cffi passes bytes to a const uint8_t * as is
        return int(_lib.myo_crc32c(value, data, len(data)))
    # Not a with-block: an exception raised as such a block exits can skip the
    # release of a buffer exported from it, and the with-block then raises
    # BufferError in place of that exception. The views are freed by refcount.
    mv = memoryview(data).cast("B")
    n = len(mv)
    if n == 0:
        return value
    with _ffi.from_buffer("uint8_t[]", mv) as p:
        return int(_lib.myo_crc32c(value, p, n))


def _c_crc32c_hw() -> bool:
    """Whether CRC32C uses the SSE4.2 ``crc32`` instruction right now."""
    return bool(_lib.myo_crc32c_hw())


def _c_crc32c_force_portable(on: bool) -> None:
    """For tests: force the portable slicing-by-8 CRC path (``False`` undoes it)."""
    _lib.myo_crc32c_force_portable(1 if on else 0)


def _c_scan_frames(buf: ReadableBuffer, start: int, verify_payload: bool,
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
    start = operator.index(start)
    batch = operator.index(BATCH_FRAMES)
    if not 1 <= batch <= _MASK32:
        raise ValueError(f"BATCH_FRAMES must be in [1, 2**32), got {batch}")
    offsets: array[int] = array("Q")
    kinds = bytearray()
    # freed by refcount, not a with-block (see crc32c)
    mv = memoryview(buf).cast("B")
    length = len(mv)
    if start < 0 or start > length:
        raise ValueError(f"scan start {start} is outside the buffer (length {length})")
    # Every frame takes at least 16 bytes: a small region needs only a small array.
    batch = min(batch, (length - start) // FRAME_HEADER_SIZE + 1)
    out_offsets = _new_uncleared("uint64_t[]", batch)
    out_kinds = _new_uncleared("uint8_t[]", batch)
    out_count = _ffi.new("uint32_t *")
    out_end = _ffi.new("uint64_t *")
    out_next = _ffi.new("uint64_t *")
    with _ffi.from_buffer("uint8_t[]", mv) as p:
        pos = start
        while True:
            rc = _lib.myo_scan(
                p,
                length,
                pos,
                1 if verify_payload else 0,
                allowed_flags & 0xFF,
                out_offsets,
                out_kinds,
                batch,
                out_count,
                out_end,
                out_next,
            )
            if rc < 0:
                if rc == _lib.MYO_SCAN_ERR_ALIGN:
                    raise ValueError(f"scan start {start} is not a multiple of {FRAME_ALIGN}")
                raise ValueError(f"myo_scan refused its arguments (code {rc})")
            count = int(out_count[0])
            if count:
                offsets.frombytes(_ffi.buffer(out_offsets, 8 * count))
                kinds += _ffi.buffer(out_kinds, count)
            end = int(out_end[0])
            if rc != ScanStatus.FULL:
                break
            pos = end
    status = ScanStatus(rc)
    next_valid = int(out_next[0]) if status is ScanStatus.CORRUPT else None
    return ScanResult(status, offsets, bytes(kinds), end, next_valid)


if IMPLEMENTATION == "c":
    crc32c = _c_crc32c
    crc32c_hw = _c_crc32c_hw
    crc32c_force_portable = _c_crc32c_force_portable
    scan_frames = _c_scan_frames
else:
    crc32c = _helper_py.crc32c
    crc32c_hw = _helper_py.crc32c_hw
    crc32c_force_portable = _helper_py.crc32c_force_portable
    scan_frames = _helper_py.scan_frames
