"""Tests of the C helper and its pure-Python twin: CRC32C and the frame scan.

FORMAT.md §1 (CRC32C), §3 (frames, R20-R27), §10 (torn tail vs corruption).
Scenario tests run against every available implementation; differential tests
compare the C helper with the pure twin (and the C hardware CRC path with the
C portable path) and are skipped when the C helper is not in use.
"""

from __future__ import annotations

import ctypes
import importlib.util
import mmap
import re
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import myosotis
from myosotis.format import _helper_py as pure
from myosotis.format import helper
from myosotis.format.constants import FRAME_FLAG_UNSYNCED, MAX_PAYLOAD
from myosotis.format.helper import ScanResult, ScanStatus
from myosotis.format.helper_contract import SEARCH_BUDGET_FACTOR, header_payload_length

C_ACTIVE = helper.IMPLEMENTATION == "c"
needs_c = pytest.mark.skipif(
    not C_ACTIVE,
    reason=f"C helper not in use (IMPLEMENTATION={helper.IMPLEMENTATION!r}): "
    "no C-vs-pure comparison possible",
)

IMPLS = [pytest.param(pure, id="pure"), pytest.param(helper, id="c", marks=needs_c)]

COMMIT, CHECKPOINT, GENESIS = 1, 2, 3


# --------------------------------------------------------------------------
# byte-editing helpers
# --------------------------------------------------------------------------


def raw_frame(
    length: int,
    kind: int,
    payload: bytes,
    *,
    reserved: bytes = b"\0\0\0",
    payload_crc: int | None = None,
    padding: bytes | None = None,
) -> bytes:
    """A frame with a correct header CRC over whatever fields are given."""
    if payload_crc is None:
        payload_crc = pure.crc32c(payload)
    head = struct.pack("<IB3sI", length, kind, reserved, payload_crc)
    if padding is None:
        padding = bytes((8 - len(payload) % 8) % 8)
    return head + struct.pack("<I", pure.crc32c(head)) + payload + padding


def make_frame(kind: int, payload: bytes) -> bytes:
    """A valid frame (FORMAT.md §3)."""
    return raw_frame(len(payload), kind, payload)


def flip_byte(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


def truncate(data: bytes, length: int) -> bytes:
    return data[:length]


def offsets_of(frames: list[bytes], base: int = 0) -> list[int]:
    out, pos = [], base
    for f in frames:
        out.append(pos)
        pos += len(f)
    return out


def scan(impl: ModuleType, buf: Any, start: int = 0, verify: bool = True) -> ScanResult:
    result: ScanResult = impl.scan_frames(buf, start, verify)
    return result


def expect(
    result: ScanResult,
    status: ScanStatus,
    offsets: list[int],
    kinds: bytes,
    end: int,
    next_valid: int | None = None,
) -> None:
    assert result.status is status
    assert list(result.offsets) == offsets
    assert result.kinds == kinds
    assert result.end == end
    assert result.next_valid == next_valid


FRAMES = [
    make_frame(GENESIS, b"genesis payload!"),  # 16 bytes, no padding
    make_frame(COMMIT, b"abc"),  # 5 bytes padding
    make_frame(COMMIT, b""),  # empty payload
    make_frame(CHECKPOINT, bytes(range(100))),
]
FILE = b"".join(FRAMES)
OFFS = offsets_of(FRAMES)
KINDS = bytes([GENESIS, COMMIT, COMMIT, CHECKPOINT])


# --------------------------------------------------------------------------
# CRC32C
# --------------------------------------------------------------------------

VECTORS = [
    (b"123456789", 0xE3069283),  # FORMAT.md §1 check value
    (b"", 0x00000000),
    (bytes(32), 0x8A9136AA),  # RFC 3720 B.4
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (
        bytes.fromhex(
            "01c00000000000000000000000000000"
            "14000000000004000000001400000018"
            "28000000000000000200000000000000"
        ),
        0xD9963A56,
    ),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("data", "want"), VECTORS)
def test_crc32c_known_vectors(impl: ModuleType, data: bytes, want: int) -> None:
    assert impl.crc32c(data) == want


@pytest.mark.parametrize("impl", IMPLS)
def test_crc32c_accepts_every_bytes_like(impl: ModuleType) -> None:
    data = b"123456789"
    for buf in (data, bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert impl.crc32c(buf) == 0xE3069283
    # a memoryview of another item format is read as its bytes
    words = memoryview(bytearray(b"12345678")).cast("I")
    assert impl.crc32c(words) == impl.crc32c(b"12345678")


@pytest.mark.parametrize("impl", IMPLS)
def test_crc32c_continuation_equals_one_pass(impl: ModuleType) -> None:
    data = bytes(range(256)) * 3
    for cut in (0, 1, 7, 8, 9, 255, len(data)):
        assert impl.crc32c(data[cut:], impl.crc32c(data[:cut])) == impl.crc32c(data)
    assert impl.crc32c(b"", 0x12345678) == 0x12345678


@pytest.mark.parametrize("impl", IMPLS)
def test_crc32c_rejects_bad_value_and_strided_buffer(impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        impl.crc32c(b"x", -1)
    with pytest.raises(ValueError):
        impl.crc32c(b"x", 1 << 32)
    with pytest.raises(TypeError):
        impl.crc32c(memoryview(b"abcdef")[::2])


@pytest.fixture
def portable_crc() -> Iterator[Callable[[bool], None]]:
    """Switch the C helper between its hardware and portable CRC paths; restore after."""
    yield helper.crc32c_force_portable
    helper.crc32c_force_portable(False)


@needs_c
def test_force_portable_switches_path(portable_crc: Callable[[bool], None]) -> None:
    hw = helper.crc32c_hw()
    portable_crc(True)
    assert helper.crc32c_hw() is False
    assert helper.crc32c(b"123456789") == 0xE3069283
    portable_crc(False)
    assert helper.crc32c_hw() is hw


@needs_c
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), cut=st.integers(0, 7), value=st.integers(0, 2**32 - 1))
def test_crc32c_c_equals_pure(data: bytes, cut: int, value: int) -> None:
    view = memoryview(data)[cut:]
    assert helper.crc32c(view, value) == pure.crc32c(view, value)


@needs_c
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=5000), cut=st.integers(0, 15), value=st.integers(0, 2**32 - 1))
def test_crc32c_hardware_equals_portable(data: bytes, cut: int, value: int) -> None:
    view = memoryview(data)[cut:]  # odd start addresses exercise the alignment prologue
    try:
        helper.crc32c_force_portable(False)
        hw = helper.crc32c(view, value)
        helper.crc32c_force_portable(True)
        portable = helper.crc32c(view, value)
    finally:
        helper.crc32c_force_portable(False)
    assert hw == portable


@needs_c
@pytest.mark.parametrize("size", [3 * 8192 - 1, 3 * 8192, 3 * 8192 + 13, 6 * 8192 + 8, 200_003])
def test_crc32c_hardware_three_streams_on_large_buffers(
    size: int, portable_crc: Callable[[bool], None]
) -> None:
    """Buffers of three 8 KiB streams and more take the interleaved hardware path."""
    data = bytes((i * 131 + (i >> 9)) & 0xFF for i in range(size + 7))
    for cut in range(8):
        view = memoryview(data)[cut : cut + size]
        portable_crc(False)
        hw = helper.crc32c(view, 0xDEADBEEF)
        portable_crc(True)
        assert helper.crc32c(view, 0xDEADBEEF) == hw
    portable_crc(True)
    assert helper.crc32c(data) == pure.crc32c(data)


@needs_c
@pytest.mark.slow
def test_crc32c_c_equals_pure_on_a_megabyte() -> None:
    data = bytes((i * 7919) & 0xFF for i in range(1 << 20))
    assert helper.crc32c(data) == pure.crc32c(data)


# --------------------------------------------------------------------------
# scan scenarios (FORMAT.md §3, §10)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("verify", [True, False])
def test_clean_file_lists_every_frame(impl: ModuleType, verify: bool) -> None:
    expect(scan(impl, FILE, 0, verify), ScanStatus.CLEAN, OFFS, KINDS, len(FILE))


@pytest.mark.parametrize("impl", IMPLS)
def test_scan_from_a_later_frame_and_with_a_prefix(impl: ModuleType) -> None:
    expect(scan(impl, FILE, OFFS[2]), ScanStatus.CLEAN, OFFS[2:], KINDS[2:], len(FILE))
    prefixed = bytes(32) + FILE  # the file header region is skipped by start
    shifted = [o + 32 for o in OFFS]
    expect(scan(impl, prefixed, 32), ScanStatus.CLEAN, shifted, KINDS, len(prefixed))


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_region_is_clean(impl: ModuleType) -> None:
    expect(scan(impl, b""), ScanStatus.CLEAN, [], b"", 0)
    expect(scan(impl, FILE, len(FILE)), ScanStatus.CLEAN, [], b"", len(FILE))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("verify", [True, False])
def test_truncated_trailing_frame_is_torn(impl: ModuleType, verify: bool) -> None:
    last = OFFS[-1]
    for cut in (last + 1, last + 15, last + 16, last + 17, len(FILE) - 1):
        expect(
            scan(impl, truncate(FILE, cut), 0, verify), ScanStatus.TORN, OFFS[:-1], KINDS[:-1], last
        )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("zeros", [1, 7, 8, 16, 17, 4096, 1 << 20])
def test_zeros_after_the_last_frame_are_free_space(
    impl: ModuleType, verify: bool, zeros: int
) -> None:
    """§10 step 3: only zero bytes after the walk's stop are free space, not a torn tail."""
    expect(scan(impl, FILE + bytes(zeros), 0, verify), ScanStatus.FREE, OFFS, KINDS, len(FILE))
    expect(scan(impl, bytes(zeros), 0, verify), ScanStatus.FREE, [], b"", 0)
    # scanning from the free space itself, as a reader's refresh does
    expect(scan(impl, FILE + bytes(zeros), len(FILE), verify), ScanStatus.FREE, [], b"",
           len(FILE))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("where", [0, 1, 15, 16, 100, 4095])
def test_one_non_zero_byte_in_free_space_makes_it_a_torn_tail(impl: ModuleType,
                                                              where: int) -> None:
    tail = bytearray(4096)
    tail[where] = 0x20
    expect(scan(impl, FILE + bytes(tail)), ScanStatus.TORN, OFFS, KINDS, len(FILE))


@pytest.mark.parametrize("impl", IMPLS)
def test_a_frame_after_free_space_is_corruption(impl: ModuleType) -> None:
    """Zeros in the middle of the log are not free space: frames after them count."""
    frame = make_frame(COMMIT, b"late")
    data = FILE + bytes(64) + frame
    expect(scan(impl, data), ScanStatus.CORRUPT, OFFS, KINDS, len(FILE), len(FILE) + 64)


@pytest.mark.parametrize("impl", IMPLS)
def test_frame_header_alone_is_torn(impl: ModuleType) -> None:
    head_only = FILE + make_frame(COMMIT, b"x" * 40)[:16]
    expect(scan(impl, head_only), ScanStatus.TORN, OFFS, KINDS, len(FILE))


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_payload_crc_at_the_end_is_torn(impl: ModuleType) -> None:
    data = flip_byte(FILE, OFFS[-1] + 16 + 50)
    expect(scan(impl, data), ScanStatus.TORN, OFFS[:-1], KINDS[:-1], OFFS[-1])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("verify", [True, False])
def test_bad_header_crc_in_the_middle_then_valid_frame_is_corrupt(
    impl: ModuleType, verify: bool
) -> None:
    data = flip_byte(FILE, OFFS[1] + 12)  # header_crc of frame 1
    expect(scan(impl, data, 0, verify), ScanStatus.CORRUPT, OFFS[:1], KINDS[:1], OFFS[1], OFFS[2])


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_payload_crc_in_the_middle_is_corrupt(impl: ModuleType) -> None:
    data = flip_byte(FILE, OFFS[1] + 16)  # payload of frame 1
    expect(scan(impl, data), ScanStatus.CORRUPT, OFFS[:1], KINDS[:1], OFFS[1], OFFS[2])


@pytest.mark.parametrize("impl", IMPLS)
def test_header_only_mode_accepts_bad_payload_crc_but_full_mode_does_not(
    impl: ModuleType,
) -> None:
    data = flip_byte(FILE, OFFS[1] + 16)
    expect(scan(impl, data, 0, False), ScanStatus.CLEAN, OFFS, KINDS, len(FILE))
    expect(scan(impl, data, 0, True), ScanStatus.CORRUPT, OFFS[:1], KINDS[:1], OFFS[1], OFFS[2])


@pytest.mark.parametrize("impl", IMPLS)
def test_torn_tail_search_needs_full_validity_even_in_header_only_mode(
    impl: ModuleType,
) -> None:
    """A header-valid frame with a bad payload after the break is no proof of corruption."""
    bad_payload = flip_byte(make_frame(COMMIT, b"payload!"), 16)
    data = FILE + bytes(16) + bad_payload  # 16 zero bytes: kind 0, not header-valid
    expect(scan(impl, data, 0, False), ScanStatus.TORN, OFFS, KINDS, len(FILE))
    data = FILE + bytes(16) + make_frame(COMMIT, b"payload!")
    expect(scan(impl, data, 0, False), ScanStatus.CORRUPT, OFFS, KINDS, len(FILE), len(FILE) + 16)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("reserved byte 5", raw_frame(3, COMMIT, b"abc", reserved=b"\1\0\0")),
        ("reserved byte 7", raw_frame(3, COMMIT, b"abc", reserved=b"\0\0\x80")),
        ("kind 0", raw_frame(3, 0, b"abc")),
        ("kind 6", raw_frame(3, 6, b"abc")),  # past every version's kinds (R22)
        ("kind 255", raw_frame(3, 255, b"abc")),
        ("length over MAX_PAYLOAD", raw_frame(MAX_PAYLOAD + 1, COMMIT, b"abc")),
        ("length runs past the end", raw_frame(4000, COMMIT, b"abc")),
    ],
)
def test_header_rule_violation_is_not_header_valid(
    impl: ModuleType, verify: bool, name: str, bad: bytes
) -> None:
    """Each frame has a correct header CRC and breaks exactly one other rule (R22-R25)."""
    expect(scan(impl, FILE + bad, 0, verify), ScanStatus.TORN, OFFS, KINDS, len(FILE))
    data = FILE[: OFFS[1]] + bad + FILE[OFFS[1] :]
    expect(
        scan(impl, data, 0, verify),
        ScanStatus.CORRUPT,
        OFFS[:1],
        KINDS[:1],
        OFFS[1],
        OFFS[1] + len(bad),
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("where", range(5))
def test_nonzero_padding_byte_is_invalid_in_full_mode_only(impl: ModuleType, where: int) -> None:
    padding = bytearray(5)
    padding[where] = 0x40
    bad = raw_frame(3, COMMIT, b"abc", padding=bytes(padding))
    data = FILE[: OFFS[1]] + bad + FILE[OFFS[1] :]
    n = len(bad)
    expect(scan(impl, data, 0, True), ScanStatus.CORRUPT, OFFS[:1], KINDS[:1], OFFS[1], OFFS[1] + n)
    shifted = OFFS[:1] + [OFFS[1]] + [o + n for o in OFFS[1:]]
    kinds = KINDS[:1] + bytes([COMMIT]) + KINDS[1:]
    expect(scan(impl, data, 0, False), ScanStatus.CLEAN, shifted, kinds, len(data))


@pytest.mark.parametrize("impl", IMPLS)
def test_payload_length_limit_is_exactly_max_payload(impl: ModuleType) -> None:
    """R24 at its boundary, in buffers big enough that R25 alone would pass.

    Anonymous mmaps are zero-filled lazily, so the GiB costs no time or memory
    as long as only the headers are read (header-only mode, or a search that
    finds a valid frame right away).
    """
    at_max = mmap.mmap(-1, 16 + MAX_PAYLOAD)
    at_max[:16] = raw_frame(MAX_PAYLOAD, COMMIT, b"", payload_crc=0)[:16]
    expect(scan(impl, at_max, 0, False), ScanStatus.CLEAN, [0], bytes([COMMIT]), len(at_max))
    at_max.close()
    over = mmap.mmap(-1, 16 + MAX_PAYLOAD + 8)
    over[:16] = raw_frame(MAX_PAYLOAD + 1, COMMIT, b"", payload_crc=0)[:16]
    survivor = make_frame(COMMIT, b"survivor")
    over[16 : 16 + len(survivor)] = survivor
    expect(scan(impl, over, 0, False), ScanStatus.CORRUPT, [], b"", 0, 16)
    over.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_corruption_search_finds_first_valid_frame_at_any_aligned_offset(
    impl: ModuleType,
) -> None:
    garbage = bytes((i * 37 + 11) & 0xFF for i in range(40))  # 40: stays 8-aligned
    tail = make_frame(COMMIT, b"survivor")
    data = FILE[: OFFS[1]] + garbage + tail
    expect(scan(impl, data), ScanStatus.CORRUPT, OFFS[:1], KINDS[:1], OFFS[1], OFFS[1] + 40)


@pytest.mark.parametrize("impl", IMPLS)
def test_valid_frame_at_unaligned_offset_does_not_count(impl: ModuleType) -> None:
    data = FILE + b"\xee" * 4 + make_frame(COMMIT, b"payload!")
    expect(scan(impl, data), ScanStatus.TORN, OFFS, KINDS, len(FILE))


@pytest.mark.parametrize("impl", IMPLS)
def test_buffer_at_unaligned_address_scans_the_same(impl: ModuleType) -> None:
    for lead in range(1, 8):
        view = memoryview(b"\x99" * lead + FILE)[lead:]
        expect(scan(impl, view), ScanStatus.CLEAN, OFFS, KINDS, len(FILE))


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_start_raises_value_error(impl: ModuleType) -> None:
    for start in (-8, 4, len(FILE) + 8, 1):
        with pytest.raises(ValueError):
            impl.scan_frames(FILE, start, True)
    with pytest.raises(TypeError):
        impl.scan_frames(memoryview(FILE)[::2], 0, True)


@pytest.mark.parametrize("impl", IMPLS)
def test_scan_accepts_readonly_mmap_and_keeps_no_reference(impl: ModuleType) -> None:
    with tempfile.TemporaryFile() as f:
        f.write(FILE)
        f.flush()
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        expect(scan(impl, m), ScanStatus.CLEAN, OFFS, KINDS, len(FILE))
        assert impl.crc32c(m) == pure.crc32c(FILE)
        m.close()  # BufferError here would mean a leaked buffer export
    ba = bytearray(FILE)
    expect(scan(impl, memoryview(ba).toreadonly()), ScanStatus.CLEAN, OFFS, KINDS, len(FILE))
    ba += b"x"  # resizing fails while any export of ba is alive
    ba.clear()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("frames", "suffix", "status"),
    [
        (10, b"", ScanStatus.CLEAN),
        (9, b"", ScanStatus.CLEAN),
        (7, b"\1" * 5, ScanStatus.TORN),
        (3, make_frame(COMMIT, b"")[:15], ScanStatus.TORN),
    ],
)
def test_full_batches_are_looped_over(
    impl: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    frames: int,
    suffix: bytes,
    status: ScanStatus,
) -> None:
    """More frames than one C call's output array (3 here) still come back in one result."""
    monkeypatch.setattr(helper, "BATCH_FRAMES", 3)
    fs = [make_frame(1 + i % 3, bytes([i]) * i) for i in range(frames)]
    fs.append(make_frame(GENESIS, b""))  # a 16-byte frame right at the end of a batch
    data = b"".join(fs) + suffix
    kinds = bytes(1 + i % 3 for i in range(frames)) + bytes([GENESIS])
    want_end = len(data) - len(suffix)
    expect(scan(impl, data), status, offsets_of(fs), kinds, want_end)


@pytest.mark.parametrize("impl", IMPLS)
def test_full_batches_then_corruption(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helper, "BATCH_FRAMES", 2)
    fs = [make_frame(COMMIT, bytes([i]) * 9) for i in range(7)]
    offs = offsets_of(fs)
    data = flip_byte(b"".join(fs), offs[5] + 16)
    expect(scan(impl, data), ScanStatus.CORRUPT, offs[:5], bytes([COMMIT]) * 5, offs[5], offs[6])


def _claims_to_the_end(headers: int) -> tuple[bytes, list[int]]:
    """8 bad bytes, then ``headers`` header-valid frame headers in a row, each claiming
    a payload up to the end of the buffer with a wrong payload CRC; and their offsets.
    (An offset in the middle of a header reads payload_crc 0xDEADBEEF as its length:
    over MAX_PAYLOAD, never a candidate.)"""
    size = 8 + 16 * headers
    out, offsets = bytearray(b"\xee" * 8), []
    while len(out) < size:
        offsets.append(len(out))
        out += raw_frame(size - len(out) - 16, COMMIT, b"", payload_crc=0xDEADBEEF)
    return bytes(out), offsets


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("headers", "valid_at"), [(7, 3), (8, 2), (20, 2)])
def test_search_budget_counts_a_candidate_past_it_as_valid(
    impl: ModuleType, headers: int, valid_at: int
) -> None:
    """§10 step 3: B = 2 * (L - p) payload bytes; each failing payload uses up its length;
    a candidate whose length exceeds what is left counts as valid, its payload unread.
    With L = 8 + 16h: the candidates at 8 and 24 fail and leave B = 64; the one at 40
    claims L - 56 bytes: exactly 64 when h = 7 (still checked, so the one at 56 is past
    the budget), more when h >= 8."""
    data, offsets = _claims_to_the_end(headers)
    assert SEARCH_BUDGET_FACTOR == 2  # the arithmetic above
    for verify in (True, False):
        expect(scan(impl, data, 0, verify), ScanStatus.CORRUPT, [], b"", 0, offsets[valid_at])


@pytest.mark.parametrize("impl", IMPLS)
def test_search_without_a_candidate_past_the_budget_is_torn(impl: ModuleType) -> None:
    """Two failing candidates spend less than the budget: nothing counts as valid."""
    data, _ = _claims_to_the_end(2)
    expect(scan(impl, data, 0, True), ScanStatus.TORN, [], b"", 0)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=300, deadline=None)
@given(
    length=st.one_of(st.integers(0, 300), st.integers(MAX_PAYLOAD + 1, 2**32 - 1)),
    kind=st.one_of(st.integers(1, 4), st.integers(0, 255)),
    reserved=st.one_of(st.sampled_from([b"\0\0\0", b"\1\0\0"]), st.binary(min_size=3,
                                                                            max_size=3)),
    good_crc=st.booleans(),
    allowed_flags=st.sampled_from([0, FRAME_FLAG_UNSYNCED]),
)
def test_header_rules_of_the_contract_module_are_the_scans(
    impl: ModuleType, length: int, kind: int, reserved: bytes, good_crc: bool,
    allowed_flags: int,
) -> None:
    """header_payload_length (R21-R24, used by the twin and by walk.py) accepts exactly
    the headers the scan of each implementation accepts, given room for the payload."""
    frame = raw_frame(length, kind, b"", reserved=reserved, payload_crc=0)[:16]
    if not good_crc:
        frame = flip_byte(frame, 12)
    n = header_payload_length(frame, allowed_flags, helper.crc32c)
    room = bytes(length + -length % 8) if length <= 300 else b""
    result = impl.scan_frames(frame + room, 0, False, allowed_flags)
    assert (result.status is ScanStatus.CLEAN and list(result.offsets) == [0]) == (n >= 0)
    assert n in (-1, length)


# --------------------------------------------------------------------------
# the compiled helper's format constants (a stale build is refused)
# --------------------------------------------------------------------------

HEADER = Path(__file__).resolve().parents[1] / "csrc" / "myo_helper.h"


def test_every_constant_of_the_c_header_is_checked_at_import() -> None:
    """A #define added to csrc/myo_helper.h must be added to the stale-build check."""
    text = HEADER.read_text(encoding="utf-8")
    cdef = text[text.index("BEGIN CDEF") : text.index("END CDEF")]
    defined = set(re.findall(r"^#define (MYO_\w+) ", cdef, re.MULTILINE))
    assert {n for n in defined if not n.startswith("MYO_SCAN_ERR_")} == set(helper._BUILT_CONSTANTS)
    if C_ACTIVE:
        assert {n for n in dir(helper._lib) if n.startswith("MYO_")} == defined
        helper._check_built(helper._lib)


def _import_helper_with(lib: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Run myosotis/format/helper.py afresh with ``lib`` as the compiled helper's lib."""
    fake = SimpleNamespace(ffi=SimpleNamespace(new_allocator=lambda **_: None), lib=lib)
    monkeypatch.delenv("MYOSOTIS_PURE", raising=False)
    monkeypatch.setitem(sys.modules, "myosotis._helper", fake)
    monkeypatch.setattr(myosotis, "_helper", fake, raising=False)
    spec = importlib.util.spec_from_file_location("myosotis.format._helper_probe",
                                                  helper.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_helper_built_with_the_constants_of_constants_py_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = _import_helper_with(SimpleNamespace(**helper._BUILT_CONSTANTS), monkeypatch)
    assert module.IMPLEMENTATION == "c"


@pytest.mark.parametrize(
    "name", ["MYO_KIND_MAX", "MYO_KIND_MIN", "MYO_FRAME_FLAG_UNSYNCED", "MYO_MAX_PAYLOAD",
             "MYO_FH_HEADER_CRC", "MYO_SCAN_BUDGET_FACTOR", "MYO_SCAN_TORN"]
)
@pytest.mark.parametrize("change", ["other value", "missing"])
def test_a_stale_helper_build_fails_loudly_at_import(
    monkeypatch: pytest.MonkeyPatch, name: str, change: str
) -> None:
    """A compiled helper whose built-in constant differs from constants.py (a build of
    older sources, or a #define edited alone: here e.g. one that accepts kind 4) is
    refused with an ImportError naming the constant, never used quietly."""
    values = dict(helper._BUILT_CONSTANTS)
    if change == "missing":  # built before the constant existed
        del values[name]
    else:
        values[name] += 1
    with pytest.raises(ImportError, match=f"{name} = .*rebuild"):
        _import_helper_with(SimpleNamespace(**values), monkeypatch)


# --------------------------------------------------------------------------
# differential: C helper == pure twin for every input
# --------------------------------------------------------------------------


class GuardPage:
    """Places data so that it ends right before a PROT_NONE page (Linux).

    A read past the end of a buffer handed to the C helper then faults at
    once instead of quietly reading a neighbour's bytes.
    """

    def __init__(self, pages: int = 4) -> None:
        page = mmap.PAGESIZE
        self.size = pages * page
        self.map = mmap.mmap(-1, self.size + page)
        holder = ctypes.c_char.from_buffer(self.map)
        address = ctypes.addressof(holder)
        del holder
        libc = ctypes.CDLL(None, use_errno=True)
        prot_none = 0
        if libc.mprotect(ctypes.c_void_p(address + self.size), ctypes.c_size_t(page), prot_none):
            raise OSError(ctypes.get_errno(), "mprotect failed")

    def place(self, data: bytes) -> memoryview:
        """A view of ``data`` copied to end exactly at the guard page; release it after use."""
        assert len(data) <= self.size
        self.map[self.size - len(data) : self.size] = data
        return memoryview(self.map)[self.size - len(data) : self.size]


@pytest.fixture(scope="module")
def guard() -> Iterator[GuardPage]:
    if not sys.platform.startswith("linux"):
        pytest.skip("guard pages are set up with Linux mprotect")
    g = GuardPage()
    yield g
    g.map.close()


def assert_same_scan(data: bytes, start: int, guard: GuardPage) -> None:
    """The C helper, reading ``data`` right before a guard page, agrees with the pure twin."""
    for verify in (True, False):
        try:
            want: ScanResult | type[Exception] = pure.scan_frames(data, start, verify)
        except (ValueError, TypeError) as exc:
            want = type(exc)
        with guard.place(data) as view:
            try:
                got: ScanResult | type[Exception] = helper.scan_frames(view, start, verify)
            except (ValueError, TypeError) as exc:
                got = type(exc)
            assert helper.crc32c(view) == pure.crc32c(data)
        assert got == want, (verify, start)


@needs_c
def test_scan_reads_nothing_past_the_end(guard: GuardPage) -> None:
    """Every short tail and every truncation of a file, ending at a guard page."""
    for n in range(0, 40):
        for fill in (b"\0", b"\1", b"\xff"):
            assert_same_scan(fill * n, 0, guard)
    for cut in range(len(FILE) + 1):
        assert_same_scan(FILE[:cut], 0, guard)
    header = make_frame(COMMIT, b"")  # a 16-byte frame, and its prefixes
    for cut in range(17):
        assert_same_scan(FILE + header[:cut], 0, guard)


@needs_c
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), start=st.integers(0, 80))
def test_scan_c_equals_pure_on_random_bytes(data: bytes, start: int, guard: GuardPage) -> None:
    assert_same_scan(data, start, guard)


@st.composite
def damaged_files(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """Random valid frames, then a few random edits; returns (file, start, batch)."""
    frames = draw(
        st.lists(
            st.tuples(st.integers(1, 4), st.binary(max_size=40)).map(lambda t: make_frame(*t)),
            max_size=8,
        )
    )
    data = bytearray(b"".join(frames))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "zero", "append", "frame"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=24))
        elif op == "zero":
            data[pos : pos + draw(st.integers(1, 24))] = bytes(draw(st.integers(0, 24)))
        elif op == "append":
            data += draw(st.binary(max_size=24))
        else:  # a valid frame dropped in at an aligned offset
            frame = make_frame(draw(st.integers(1, 4)), draw(st.binary(max_size=16)))
            data[pos & ~7 : pos & ~7] = frame
    start = draw(st.sampled_from([0, 0, 0, 8, 16, 24, 3]))
    batch = draw(st.sampled_from([1, 2, 65536]))
    return bytes(data), start, batch


@needs_c
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=damaged_files())
def test_scan_c_equals_pure_on_damaged_files(
    case: tuple[bytes, int, int], guard: GuardPage
) -> None:
    data, start, batch = case
    saved = helper.BATCH_FRAMES
    helper.BATCH_FRAMES = batch
    try:
        assert_same_scan(data, start, guard)
    finally:
        helper.BATCH_FRAMES = saved
