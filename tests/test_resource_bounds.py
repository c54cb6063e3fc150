"""Resource bounds are part of the contract: hostile lengths, counts and depths.

A file that claims a 4 GiB string, 2^40 list elements or a million-deep list
is refused before anything is allocated for the claim (R42, §11); nesting is
bounded at MAX_DEPTH (R41) without a RecursionError on either side (writer or
reader); memory while opening is bounded by a multiple of the file size; and
the frame walk (§10) does not take time quadratic in the file size.

Memory is measured with tracemalloc (Python allocations; the mmap of the file
itself is page cache and not counted).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from myosotis import CorruptFileError, InvalidValueError, Memory
from myosotis.format import helper
from myosotis.format.constants import KIND_COMMIT, MAX_DEPTH, MAX_PAYLOAD, ZERO_HASH
from myosotis.format.header import encode_file_header, encode_frame
from myosotis.format.image import StateImage
from myosotis.format.mutations import Create, Delete, get_mutation, put_mutation
from myosotis.format.records import commit_id, decode_mutations, encode_commit
from myosotis.format.values import DecodeError, decode_value, encode_value, put_uvarint
from myosotis.testing import open_memory, store_of

SMALL = 1 << 20  # "nothing allocated for the claim": far below every claim made here


def uvarint(n: int) -> bytes:
    out = bytearray()
    put_uvarint(out, n)
    return bytes(out)


def peak_of(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn``; return its result (or the exception it raised) and the peak traced bytes."""
    tracemalloc.start()
    try:
        try:
            result: Any = fn()
        except Exception as e:  # noqa: BLE001 - returned to the caller to check its type
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def file_of(commits: list[tuple[list[Any], int]], raw_tail: bytes = b"") -> bytes:
    """A file of commit frames built from (mutations, next_node_id); ``raw_tail`` is
    appended to the last commit's mutation bytes as is (one more raw mutation)."""
    out = bytearray(encode_file_header())
    parent = ZERO_HASH
    for i, (muts, next_id) in enumerate(commits):
        body = bytearray()
        for m in muts:
            put_mutation(body, m)
        count = len(muts)
        if raw_tail and i == len(commits) - 1:
            body += raw_tail
            count += 1
        payload = encode_commit(i + 1, 1_700_000_000_000_000, parent, next_id, "", count, body)
        parent = commit_id(payload)
        out += encode_frame(KIND_COMMIT, payload)
    return bytes(out)


def open_and_read(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Memory.open(path, readonly=True) as mem:
            for n in mem.nodes(deleted=True):
                n.fields()
            return store_of(mem).head_seq


# ---------------------------------------------------------------------- claims


@pytest.mark.parametrize(("what", "data"), [
    ("string of 4 GiB", b"\x05" + uvarint(4 << 30) + b"abc"),
    ("string of 2^63 bytes", b"\x05" + uvarint(1 << 63) + b"abc"),
    ("list of 2^40 elements", b"\x07" + uvarint(1 << 40) + b"\x00\x00"),
    ("list of 2^24+1 elements", b"\x07" + uvarint((1 << 24) + 1) + b"\x00" * 64),
    ("map of 2^40 entries", b"\x08" + uvarint(1 << 40) + b"\x01a\x00"),
    ("list counting more elements than bytes (R42)", b"\x07" + uvarint(1000) + b"\x00" * 999),
])
def test_value_claiming_more_than_it_holds_is_refused_before_allocating(
        what: str, data: bytes) -> None:
    result, peak = peak_of(lambda: decode_value(data))
    assert isinstance(result, DecodeError), (what, result)
    assert peak < SMALL, f"{what}: {peak} bytes allocated"


@pytest.mark.parametrize(("what", "data"), [
    ("field name of 2^40 bytes", b"\x02\x01" + uvarint(1 << 40) + b"x"),
    ("type name of 4 GiB", b"\x01\x01" + uvarint(4 << 30) + b"T\x00"),
    ("path of 2^40 steps", b"\x05\x01\x01f" + uvarint(1 << 40) + b"\x00\x00"),
    ("map key of 4 GiB", b"\x08\x01\x01f\x00" + uvarint(4 << 30) + b"k\x00"),
])
def test_mutation_claiming_more_than_it_holds_is_refused_before_allocating(
        what: str, data: bytes) -> None:
    result, peak = peak_of(lambda: get_mutation(data, 0, len(data)))
    assert isinstance(result, DecodeError), (what, result)
    assert peak < SMALL, f"{what}: {peak} bytes allocated"


def test_commit_claiming_2_to_the_60_mutations_is_refused_before_allocating() -> None:
    payload = encode_commit(1, 0, ZERO_HASH, 1, "", 0, b"")[:-1] + uvarint(1 << 60) + b"\x04\x01"
    result, peak = peak_of(lambda: decode_mutations(payload, 57))
    assert isinstance(result, DecodeError), result
    assert peak < SMALL


def test_state_image_claiming_2_to_the_60_nodes_is_refused_before_allocating() -> None:
    image = struct.pack("<QQ", (1 << 60) + 1, 1 << 60) + bytes(64)
    result, peak = peak_of(lambda: StateImage(image))
    assert isinstance(result, DecodeError), result
    assert peak < SMALL


@pytest.mark.parametrize("claim", [MAX_PAYLOAD, MAX_PAYLOAD + 1, 0xFFFFFFFF])
def test_frame_claiming_a_huge_payload_in_a_small_file_is_a_torn_tail_or_refused(
        tmp_path: Path, claim: int) -> None:
    """R24, R25: the claim is checked against the file length before any read.
    Within MAX_PAYLOAD, the frame runs past the end of the file: a torn tail (§10
    step 3). Past it, the header CRC matches a length no writer writes: damage no
    torn write leaves (R28), refused at its offset. Either way, nothing is allocated
    for the claim."""
    good = file_of([([Create(1, "T", {"a": 1})], 2)])
    head = struct.pack("<IB3sI", claim, KIND_COMMIT, b"\0\0\0", 0)
    bogus = head + struct.pack("<I", helper.crc32c(head)) + b"\x00" * 64
    path = tmp_path / "claim.myo"
    path.write_bytes(good + bogus)

    def attempt() -> int:
        try:
            return open_and_read(path)
        except CorruptFileError as e:
            assert e.offset == len(good) and "R28" in str(e)
            return -1

    result, peak = peak_of(attempt)
    assert result == (1 if claim <= MAX_PAYLOAD else -1)
    assert peak < SMALL


# ---------------------------------------------------------------------- depth


def nested_list(depth: int) -> bytes:
    """The encoding of ``depth`` lists nested in one another around a null."""
    return b"\x07\x01" * depth + b"\x00"


def test_million_deep_list_is_refused_without_recursion_error() -> None:
    """R41: the decoder stops at MAX_DEPTH, long before Python's recursion limit."""
    data = nested_list(1_000_000)
    result, peak = peak_of(lambda: decode_value(data))
    assert isinstance(result, DecodeError), result
    assert "R41" in str(result)
    assert peak < SMALL


def test_value_at_max_depth_decodes_and_one_deeper_is_refused() -> None:
    v = decode_value(nested_list(MAX_DEPTH))
    assert encode_value(v) == nested_list(MAX_DEPTH)
    with pytest.raises(DecodeError, match="R41"):
        decode_value(nested_list(MAX_DEPTH + 1))


def test_file_with_a_million_deep_value_is_refused_as_corrupt(tmp_path: Path) -> None:
    """The same claim inside a commit of a file: a clean CorruptFileError at open."""
    deep_set = b"\x02\x01\x01v" + nested_list(1_000_000)  # SET node 1 field "v"
    path = tmp_path / "deep.myo"
    path.write_bytes(file_of([([Create(1, "T", {})], 2)], raw_tail=deep_set))
    with pytest.raises(CorruptFileError, match="R41"):
        open_and_read(path)


def test_writer_refuses_nesting_past_max_depth_and_reads_back_max_depth(
        tmp_path: Path) -> None:
    """R41 on the writer's side: depth 64 is stored and read back, 65 is refused."""
    ok: Any = None
    for _ in range(MAX_DEPTH):
        ok = [ok]
    with Memory.open(tmp_path / "d.myo", durability="none") as mem:
        n = mem.create("Deep", v=ok)
        mem.commit()
        with pytest.raises(InvalidValueError):
            n.too = [ok]
        inner = n.v
        for _ in range(MAX_DEPTH - 1):
            inner = inner[0]
        with pytest.raises(InvalidValueError):
            inner.append([])  # a path edit at depth 64 that would make it 65 (R53)
        assert mem.pending == 0
    assert open_and_read(tmp_path / "d.myo") == 1


def test_self_containing_python_list_is_refused_without_recursion_error(
        tmp_path: Path) -> None:
    loop: list[Any] = []
    loop.append(loop)
    cyclic: dict[str, Any] = {}
    cyclic["me"] = cyclic
    with Memory.open(tmp_path / "c.myo", durability="none") as mem:
        n = mem.create("Loop")
        for v in (loop, cyclic):
            with pytest.raises(InvalidValueError):
                n.v = v
        assert mem.pending == 1


# ---------------------------------------------------------------------- memory


def _dense_creates() -> bytes:
    return file_of([([Create(i, "T", {}) for i in range(1, 20_001)], 20_001)])


def _creates_then_deletes() -> bytes:
    return file_of([([Create(i, "T", {}) for i in range(1, 10_001)], 10_001),
                    ([Delete(i) for i in range(1, 10_001)], 10_001)])


def _long_list() -> bytes:
    return file_of([([Create(1, "T", {"l": [1000] * 100_000})], 2)])


def _big_map() -> bytes:
    return file_of([([Create(1, "T", {"m": {f"{i:05d}": None for i in range(30_000)}})], 2)])


def _typical(tmp_path: Path) -> bytes:
    path = tmp_path / "typical.myo"
    with open_memory(path, durability="none", checkpoint_floor=1 << 15) as mem:
        nodes = [mem.create("N", i=i, s="x" * 40, l=[1, 2.5, "three"]) for i in range(1000)]
        mem.commit()
        for r in range(150):
            nodes[r].i = -r
            nodes[r].l.append(r)
            mem.commit()
    return path.read_bytes()


MEMORY_FACTOR = 48  # measured worst case: about 30x for a file of empty CREATEs
MEMORY_SLACK = 4 << 20


@pytest.mark.parametrize("build", [_dense_creates, _creates_then_deletes, _long_list, _big_map,
                                   _typical])
def test_memory_while_opening_is_bounded_by_a_multiple_of_the_file_size(
        tmp_path: Path, build: Callable[..., bytes]) -> None:
    """Open, then read every node of the head: the peak stays under
    MEMORY_FACTOR x the file size (+ a constant). Guards against anything
    worse than linear; the test below holds the worst shape found to 32x."""
    data = build(tmp_path) if build is _typical else build()
    path = tmp_path / "m.myo"
    path.write_bytes(data)
    result, peak = peak_of(lambda: open_and_read(path))
    assert isinstance(result, int), result
    assert peak <= MEMORY_FACTOR * len(data) + MEMORY_SLACK, (peak, len(data))
    if build is _typical:
        assert peak <= 8 * len(data) + MEMORY_SLACK, (peak, len(data))


def test_memory_while_opening_a_file_of_tiny_creates_is_a_small_multiple(
        tmp_path: Path) -> None:
    path = tmp_path / "dense.myo"
    path.write_bytes(_dense_creates())
    result, peak = peak_of(lambda: open_and_read(path))
    assert isinstance(result, int), result
    assert peak <= 32 * path.stat().st_size + MEMORY_SLACK, peak


# ---------------------------------------------------------------------- time


def _header_valid_frames_everywhere(size: int) -> bytes:
    """A damaged first frame, then a header-valid frame every 16 bytes, each claiming a
    payload to the end of the file with a wrong CRC: every candidate of the search for a
    valid frame after the damage (§10 step 3) costs a CRC of the rest of the file."""
    out = bytearray(encode_file_header()) + bytes(16)
    while len(out) + 16 <= size:
        n = size - len(out) - 16
        n -= n % 8
        head = struct.pack("<IB3sI", n, KIND_COMMIT, b"\0\0\0", 0xDEADBEEF)
        out += head + struct.pack("<I", helper.crc32c(head))
    return bytes(out)


def test_opening_a_file_crafted_for_the_corruption_search_takes_linear_time(
        tmp_path: Path) -> None:
    size = (4 << 20) if helper.IMPLEMENTATION == "c" else (128 << 10)
    path = tmp_path / "quadratic.myo"
    path.write_bytes(_header_valid_frames_everywhere(size))
    code = ("import sys, warnings\nfrom myosotis import Memory, MyosotisError\n"
            "warnings.simplefilter('ignore')\ntry:\n    Memory.open(sys.argv[1], readonly=True)"
            ".close()\nexcept MyosotisError:\n    pass\n")
    try:
        subprocess.run([sys.executable, "-c", code, str(path)], timeout=5, check=True,
                       capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening a {size}-byte file took more than 5 s")
