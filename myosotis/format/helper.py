"""CRC32C and the frame scan, in C when the compiled helper is available.

This is the one module that touches the compiled ``myosotis._helper`` (built by
cffi from ``csrc/``); ``ffi`` never leaves it. When ``MYOSOTIS_PURE=1`` is set
in the environment, or the compiled module cannot be imported, the same
functions come from the pure-Python twin :mod:`myosotis.format._helper_py`,
which gives exactly the same results, only slower. :data:`IMPLEMENTATION` says
which one is active: ``"c"`` or ``"python"``.

What :func:`crc32c` and :func:`scan_frames` do, return and raise is written
once, in :mod:`myosotis.format.helper_contract` (which also defines
:class:`ScanStatus` and :class:`ScanResult`, re-exported here). A compiled
helper whose built-in format constants differ from
:mod:`myosotis.format.constants` (a stale build) is refused at import.
"""

from __future__ import annotations

import importlib
import operator
import os
from array import array
from typing import TYPE_CHECKING, Any, Final

from myosotis.format import _helper_py
from myosotis.format.constants import (
    FRAME_ALIGN,
    FRAME_FLAG_UNSYNCED,
    FRAME_FLAGS_OFFSET,
    FRAME_HEADER_CRC_OFFSET,
    FRAME_HEADER_SIZE,
    FRAME_KIND_OFFSET,
    FRAME_PAYLOAD_CRC_OFFSET,
    KIND_MAX,
    KIND_MIN,
    MAX_PAYLOAD,
)
from myosotis.format.helper_contract import (
    CRC_MAX,
    SEARCH_BUDGET_FACTOR,
    Crc32c,
    ScanFrames,
    ScanResult,
    ScanStatus,
)

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

_BUILT_CONSTANTS: Final[dict[str, int]] = {
    "MYO_FRAME_HEADER_SIZE": FRAME_HEADER_SIZE,
    "MYO_FRAME_ALIGN": FRAME_ALIGN,
    "MYO_MAX_PAYLOAD": MAX_PAYLOAD,
    "MYO_FH_KIND": FRAME_KIND_OFFSET,
    "MYO_FH_FLAGS": FRAME_FLAGS_OFFSET,
    "MYO_FH_PAYLOAD_CRC": FRAME_PAYLOAD_CRC_OFFSET,
    "MYO_FH_HEADER_CRC": FRAME_HEADER_CRC_OFFSET,
    "MYO_FRAME_FLAG_UNSYNCED": FRAME_FLAG_UNSYNCED,
    "MYO_KIND_MIN": KIND_MIN,
    "MYO_KIND_MAX": KIND_MAX,
    "MYO_SCAN_BUDGET_FACTOR": SEARCH_BUDGET_FACTOR,
    **{f"MYO_SCAN_{status.name}": status.value for status in ScanStatus},
}
"""Every format constant built into the C helper (the ``MYO_*`` ``#define``s of
``csrc/myo_helper.h`` but its error codes) and the value it must have: the one of
:mod:`myosotis.format.constants` or :mod:`myosotis.format.helper_contract`."""


def _check_built(lib: Any) -> None:
    """Raise ImportError unless every constant built into ``lib`` (the compiled
    helper's ``lib``) has its :data:`_BUILT_CONSTANTS` value.

    A helper built from other sources than these (a stale build, or a C
    constant edited alone) must not be used quietly: it would scan by other rules.
    """
    wrong = [
        f"{name} = {getattr(lib, name, 'missing')} (expected {want})"
        for name, want in _BUILT_CONSTANTS.items()
        if getattr(lib, name, None) != want
    ]
    if wrong:
        raise ImportError(
            f"myosotis._helper does not match myosotis/format/constants.py and "
            f"helper_contract.py: {', '.join(wrong)}; a stale build? rebuild it with "
            "`pip install -e .`"
        )


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
        _check_built(_compiled.lib)
        _ffi, _lib = _compiled.ffi, _compiled.lib

_new_uncleared: Any = None if _ffi is None else _ffi.new_allocator(should_clear_after_alloc=False)

IMPLEMENTATION: Final[str] = "python" if _lib is None else "c"
"""``"c"`` when the compiled helper is in use, ``"python"`` for the pure twin."""


def _c_crc32c(data: ReadableBuffer, value: int = 0) -> int:
    """CRC32C of ``data`` from ``value``: see :class:`~myosotis.format.helper_contract.Crc32c`."""
    value = operator.index(value)
    if not 0 <= value <= CRC_MAX:
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
    """The §10 walk of ``buf`` from ``start``: see
    :class:`~myosotis.format.helper_contract.ScanFrames`."""
    start = operator.index(start)
    batch = operator.index(BATCH_FRAMES)
    if not 1 <= batch < 1 << 32:  # the C call's max_frames is a u32
        raise ValueError(f"BATCH_FRAMES must be in [1, 2**32), got {batch}")
    offsets: array[int] = array("Q")
    kinds = bytearray()
    # freed by refcount, not a with-block (see crc32c)
    mv = memoryview(buf).cast("B")
    length = len(mv)
    if start < 0 or start > length:
        raise ValueError(f"scan start {start} is outside the buffer (length {length})")
    # Every frame takes at least FRAME_HEADER_SIZE bytes: a small region needs only a
    # small array.
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


crc32c: Crc32c
scan_frames: ScanFrames
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
