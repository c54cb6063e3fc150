"""Crash safety: torn writes, SIGKILLed writers, damaged bytes (FORMAT.md §2, §3, §8, §10).

Every test here checks the same promise from a different side: after any
crash or any damage, a file either opens to exactly the state of a commit
that was whole on disk, or refuses to open with an error that names the
damage; it never shows a state that was not committed.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import struct
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from crashutil import (
    KIND_CHECKPOINT,
    KIND_COMMIT,
    FixedClock,
    Frame,
    checkpoint_fields,
    dump_state,
    flip_bit,
    flip_byte,
    frame_offsets,
    frames_of,
    read_bytes,
    set_bytes,
    spawn_python,
    truncate_to,
)

from myosotis import (
    CorruptFileError,
    Memory,
    MyosotisError,
    NotAMyosotisFileError,
    RecoveredTailWarning,
    UnsupportedVersionError,
)
from myosotis.engine.verify import verify_file
from myosotis.format.constants import FORMAT_VERSION, KIND_LAYER
from myosotis.format.header import encode_frame
from myosotis.format.helper import crc32c
from myosotis.storage.fileops import REAL, FileOps
from myosotis.testing import open_memory, store_of

# ---------------------------------------------------------------------- a small history


@dataclass
class Snapshot:
    """What a reader must see once the file holds commits 1..seq and nothing after."""

    seq: int
    state_hash: str
    nodes: dict[int, Any]
    size: int  # end of the frames right after the commit (and any checkpoint it triggered)


@dataclass
class Built:
    path: Path
    snaps: list[Snapshot]  # index = seq
    frames: list[Frame] = field(default_factory=list)

    def commit_frame(self, seq: int) -> Frame:
        return [f for f in self.frames if f.kind == KIND_COMMIT][seq - 1]

    def checkpoint_frames(self) -> list[Frame]:
        return [f for f in self.frames if f.kind == KIND_CHECKPOINT]


def snapshot(mem: Memory, path: Path) -> Snapshot:
    seq = mem.head.seq if mem.head is not None else 0
    return Snapshot(seq, mem.state_hash(), dump_state(mem), store_of(mem).log.valid_end)


def build_small(path: Path, *, checkpoint_floor: int = 1000) -> Built:
    """Ten commits of mixed edits, ~3-4 KB, with automatic and explicit checkpoints."""
    mem = open_memory(path, clock=FixedClock(), checkpoint_floor=checkpoint_floor)
    snaps = [snapshot(mem, path)]
    agent = mem.create("Agent", name="Iris", goal="Explore ideas")
    mem.commit(label="initial goal")
    snaps.append(snapshot(mem, path))
    note = mem.create("Note", text="first", about=agent, tags=["a"])
    agent.scores = {"x": 1}
    mem.commit(label="note")
    snaps.append(snapshot(mem, path))
    for i in range(3, 11):
        if i == 4:
            # explicit checkpoint of commit 3 (nothing staged: checkpoint() works on the
            # committed state)
            assert mem.checkpoint()
            snaps[-1] = snapshot(mem, path)
        agent.goal = f"goal {i} " + "~" * (20 * i)
        note.tags.append(f"t{i}")
        agent.scores[f"k{i}"] = i * 1.5
        if i == 5:
            mem.create("Agent", name="Echo", friend=agent)
        if i == 7:
            mem.get(3).delete()
            del agent.scores["x"]
        if i == 8:
            note.tags[0] = None
            del note.tags[1]
        mem.commit(label=f"step {i}")
        snaps.append(snapshot(mem, path))
    mem.close()
    built = Built(path, snaps, frame_offsets(path))
    end = built.frames[-1].end
    # The durable writer left free space (FORMAT.md §3); the byte surgery of these
    # tests wants a file that ends with its last frame, which is a valid file too.
    assert end == snaps[-1].size and not any(read_bytes(path)[end:])
    truncate_to(path, end)
    return built


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Built:
    built = build_small(tmp_path_factory.mktemp("small") / "small.myo")
    kinds = [f.kind for f in built.frames]
    assert kinds.count(KIND_COMMIT) == 10
    assert kinds.count(KIND_CHECKPOINT) >= 2, kinds  # automatic ones and the explicit one
    assert 2000 <= os.path.getsize(built.path) <= 6000
    return built


def expected_at_cut(built: Built, cut: int) -> tuple[int, int]:
    """(seq of the last whole commit, end of the last whole frame) for a file cut at ``cut``."""
    end, seq = 32, 0
    for f in built.frames:
        if f.end > cut:
            break
        end = f.end
        if f.kind == KIND_COMMIT:
            seq += 1
    return seq, end


# ---------------------------------------------------------------------- (1) truncation


def expected_header_error(cut: int) -> type[MyosotisError]:
    """A file cut inside its 32-byte header (FORMAT.md §2): 1..7 bytes lack the magic,
    R10 "not a Myosotis file" (0 bytes is a new file); 8..31 bytes have the magic
    but not the whole header, R12 "at least 32 bytes long": corrupt."""
    return NotAMyosotisFileError if cut < 8 else CorruptFileError


def head_seq(mem: Memory) -> int:
    return mem.head.seq if mem.head is not None else 0


def test_truncation_at_every_offset_reader_sees_the_last_whole_commit(
        small_file: Built, tmp_path: Path) -> None:
    """FORMAT.md §2 R10/R12, §10 steps 3 and 5: cut the file at every byte offset
    (from the end down to 0) and open it read-only. A cut inside the header is
    refused with the exact class of expected_header_error; any other cut opens to
    the state of the last whole commit before it, and the reader leaves the torn
    tail in place."""
    data = read_bytes(small_file.path)
    target = tmp_path / "cut.myo"
    target.write_bytes(data)
    seen_seqs = set()
    for cut in range(len(data), -1, -1):
        truncate_to(target, cut)
        if cut == 0:  # a 0-byte file is a new file, with no commits (FORMAT.md §2)
            with Memory.open(target, readonly=True) as mem:
                assert head_seq(mem) == 0 and len(mem) == 0
            continue
        if cut < 32:
            with pytest.raises(MyosotisError) as ei:
                Memory.open(target, readonly=True)
            assert type(ei.value) is expected_header_error(cut), (cut, ei.value)
            continue
        seq, end = expected_at_cut(small_file, cut)
        snap = small_file.snaps[seq]
        with Memory.open(target, readonly=True) as mem:
            assert head_seq(mem) == seq, cut
            assert mem.state_hash() == snap.state_hash, cut
            assert store_of(mem).log.valid_end == end, cut
            assert store_of(mem).log.torn_bytes == cut - end, cut
            if cut % 5 == 0 or cut == end:  # the full dump is slower; sample it
                assert dump_state(mem) == snap.nodes, cut
        assert os.path.getsize(target) == cut  # a reader never changes the file
        seen_seqs.add(seq)
    assert seen_seqs == set(range(11))


class RecordingOps(FileOps):
    """Real file operations, except that ``sync`` is only recorded (the sweep below
    opens thousands of files; the fsyncs would dominate its time). Records the calls
    that change or sync the data file."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def truncate(self, fd: int, size: int) -> None:
        self.calls.append(("truncate", size))
        super().truncate(fd, size)

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self.calls.append(("pwrite", offset))
        super().pwrite(fd, data, offset)

    def sync(self, fd: int) -> None:
        self.calls.append(("sync", 0))


def test_truncation_at_every_offset_writer_cuts_the_torn_tail(
        small_file: Built, tmp_path: Path) -> None:
    """The same cuts opened for writing: inside the header the open is refused and the
    file is left as it was (a writer never "repairs" a header by rewriting it);
    otherwise the state is that of the last whole commit, and the file is cut to the
    end of the last whole frame and synced before anything could be appended (§10
    step 3), after its non-zero bytes were kept in <file>.recovered-<offset>, while a
    file without a torn tail is not written at all. Every 50th cut goes through the
    real FileOps (real fsync) as well."""
    data = read_bytes(small_file.path)
    target = tmp_path / "cut.myo"
    for cut in range(len(data) + 1):
        target.unlink(missing_ok=True)  # a new file each time (cheaper to sync than reuse)
        target.write_bytes(data[:cut])
        ops = RecordingOps() if cut % 50 else REAL
        if cut == 0:  # a 0-byte file is a new file: the writer writes the header
            with open_memory(target, fileops=ops) as mem:
                assert head_seq(mem) == 0
            assert read_bytes(target) == data[:32]
            continue
        if cut < 32:
            with pytest.raises(MyosotisError) as ei:
                open_memory(target, fileops=ops)
            assert type(ei.value) is expected_header_error(cut), (cut, ei.value)
            assert read_bytes(target) == data[:cut], cut
            continue
        seq, end = expected_at_cut(small_file, cut)
        with open_memory(target, fileops=ops) as mem:
            assert head_seq(mem) == seq, cut
            assert mem.state_hash() == small_file.snaps[seq].state_hash, cut
            assert os.path.getsize(target) == end, cut
        # The cut bytes are kept aside first when any is non-zero (§10 step 3).
        kept = data[end:cut]
        recovered = tmp_path / f"cut.myo.recovered-{end}"
        if kept.strip(b"\0"):
            assert recovered.read_bytes() == kept, cut
            recovered.unlink()
        assert not recovered.exists(), cut
        if isinstance(ops, RecordingOps):
            save = [("pwrite", 0), ("sync", 0)] if kept.strip(b"\0") else []
            assert ops.calls == (save + [("truncate", end), ("sync", 0)] if end < cut else []), \
                cut


def test_truncated_file_opens_to_the_recorded_size_after_each_commit(small_file: Built,
                                                                     tmp_path: Path) -> None:
    """The file size recorded after each commit is a whole-frame boundary: a file cut
    there has no torn tail and reads back exactly that commit."""
    data = read_bytes(small_file.path)
    target = tmp_path / "cut.myo"
    for snap in small_file.snaps:
        target.write_bytes(data[:snap.size])
        with Memory.open(target, readonly=True) as mem:
            assert store_of(mem).log.torn_bytes == 0
            assert (mem.head.seq if mem.head else 0) == snap.seq
            assert mem.state_hash() == snap.state_hash
            assert dump_state(mem) == snap.nodes


# ---------------------------------------------------------------------- (4) torn tails


def next_frame_bytes(built: Built, tmp_path: Path, goal: str = "after the tail") -> bytes:
    """The frame commit 11 would add to the file (written to a scratch copy)."""
    scratch = tmp_path / "scratch.myo"
    scratch.write_bytes(read_bytes(built.path))
    with open_memory(scratch, clock=FixedClock(start=1_800_000_000_000_000),
                     checkpoint_floor=1 << 30) as mem:
        mem.get(1).goal = goal
        mem.commit(label="eleven")
        end = store_of(mem).log.valid_end  # the frame, without the free space after it
    return read_bytes(scratch)[os.path.getsize(built.path):end]


def torn_tails(frame: bytes) -> dict[str, bytes]:
    bad_payload = bytearray(frame)
    bad_payload[20] ^= 0x40  # payload CRC fails on the last frame (§10 step 5)
    bad_padding = bytearray(frame)
    n = struct.unpack_from("<I", frame)[0]
    assert n % 8, "this frame needs padding for the padding case"
    bad_padding[16 + n] = 1  # R27 on the last frame
    return {
        "half_frame": frame[: len(frame) // 2],
        "header_only": frame[:16],  # header-valid start, payload missing (R25)
        "seven_bytes": frame[:7],  # header cut (R20)
        "one_short": frame[:-1],
        "bad_payload_crc": bytes(bad_payload),
        "bad_padding": bytes(bad_padding),
        "half_frame_then_zeros": frame[: len(frame) // 2] + bytes(4096),
        "zeros_then_half_frame": bytes(16) + frame[16: len(frame) // 2],
        "bad_payload_crc_then_zeros": bytes(bad_payload) + bytes(64),
    }


TORN_CASES = ["half_frame", "header_only", "seven_bytes", "one_short", "zeros_then_half_frame"]
# Whole in the file, within one sector that is not all zero: no torn write leaves these
# (R28), so they are damage, never dropped as a torn tail.
DAMAGED_CASES = ["bad_payload_crc", "bad_padding", "half_frame_then_zeros",
                 "bad_payload_crc_then_zeros"]


@pytest.mark.parametrize("case", TORN_CASES)
def test_torn_tail_is_ignored_by_reader_and_cut_by_writer(small_file: Built, tmp_path: Path,
                                                          case: str) -> None:
    """FORMAT.md §10 steps 3 and 5: a partial last frame is a torn tail."""
    good = read_bytes(small_file.path)
    tail = torn_tails(next_frame_bytes(small_file, tmp_path))[case]
    path = tmp_path / "torn.myo"
    path.write_bytes(good + tail)
    last = small_file.snaps[-1]

    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == 10
        assert mem.state_hash() == last.state_hash
        assert store_of(mem).log.valid_end == len(good)
        assert store_of(mem).log.torn_bytes == len(tail)
    assert read_bytes(path) == good + tail  # the reader left it alone

    with pytest.warns(RecoveredTailWarning, match=f"recovered-{len(good)}"):
        writer = Memory.open(path, clock=FixedClock(start=1_900_000_000_000_000))
    # Cut before anything is appended, its bytes kept aside first (§10 step 3).
    assert (tmp_path / f"torn.myo.recovered-{len(good)}").read_bytes() == tail
    with writer as mem:
        assert os.path.getsize(path) == len(good)
        assert mem.state_hash() == last.state_hash
        mem.get(1).goal = "written after the cut"
        c = mem.commit(label="after torn tail")
        assert c is not None and c.seq == 11
        after = mem.state_hash()
    with Memory.open(path, readonly=True) as mem:
        assert store_of(mem).log.torn_bytes == 0
        assert mem.head is not None and mem.head.seq == 11 and mem.head.label == "after torn tail"
        assert mem.get(1).goal == "written after the cut"
        assert mem.state_hash() == after
        assert mem.at(10).state_hash() == last.state_hash


@pytest.mark.parametrize("case", DAMAGED_CASES)
def test_damaged_last_frame_that_no_torn_write_leaves_is_refused_not_dropped(
        small_file: Built, tmp_path: Path, case: str) -> None:
    """FORMAT.md §10 step 5, R28: a last frame that fails its checks although no
    sector of it is still zero was written whole, maybe acknowledged, then damaged.
    Readers and writers refuse the file (nothing is cut), fsck reports an error, and
    `fsck --repair` cuts it only after keeping its bytes in <file>.recovered-<offset>."""
    from myosotis.engine.verify import repair_file

    good = read_bytes(small_file.path)
    tail = torn_tails(next_frame_bytes(small_file, tmp_path))[case]
    path = tmp_path / "damaged.myo"
    path.write_bytes(good + tail)
    for readonly in (True, False):
        with pytest.raises(CorruptFileError) as ei:
            Memory.open(path, readonly=readonly)
        assert ei.value.offset == len(good) and "R28" in str(ei.value)
        assert read_bytes(path) == good + tail  # nothing was cut
    rep = verify_file(str(path))
    assert [(f.severity, f.code, f.offset) for f in rep.findings] == \
        [("error", "damaged-tail", len(good))]
    rep, actions = repair_file(str(path))
    assert rep.ok and read_bytes(path) == good
    kept = tmp_path / f"damaged.myo.recovered-{len(good)}"
    assert kept.read_bytes() == tail and str(kept) in " ".join(actions)
    with Memory.open(path, readonly=True) as mem:
        assert mem.state_hash() == small_file.snaps[-1].state_hash


@pytest.mark.parametrize("zeros", [8, 40, 4096 - 8])
def test_zeros_after_the_last_frame_are_free_space_kept_and_reused_by_the_writer(
        small_file: Built, tmp_path: Path, zeros: int) -> None:
    """FORMAT.md §3 and §10 step 3: zero bytes after the last frame are free space:
    nothing is torn, readers ignore them, a writer keeps them and writes over them."""
    good = read_bytes(small_file.path)
    path = tmp_path / "free.myo"
    path.write_bytes(good + bytes(zeros))
    last = small_file.snaps[-1]
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == 10
        assert mem.state_hash() == last.state_hash
        log = store_of(mem).log
        assert (log.valid_end, log.free_bytes, log.torn_bytes) == (len(good), zeros, 0)
        assert mem.verify().ok
    frame = next_frame_bytes(small_file, tmp_path)
    with open_memory(path, clock=FixedClock(start=1_800_000_000_000_000),
                     checkpoint_floor=1 << 30) as mem:
        assert os.path.getsize(path) == len(good) + zeros  # not cut
        mem.get(1).goal = "after the tail"
        mem.commit(label="eleven")
    data = read_bytes(path)
    # the same frame a writer appends to a file without free space, at the same offset
    assert data[len(good):len(good) + len(frame)] == frame
    if len(frame) <= zeros:
        assert len(data) == len(good) + zeros  # written over the free space
    assert not any(data[len(good) + len(frame):])
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == 11 and mem.head.label == "eleven"
        assert mem.at(10).state_hash() == last.state_hash


def test_damaged_tail_followed_by_a_valid_frame_is_corruption_not_a_torn_tail(
        small_file: Built, tmp_path: Path) -> None:
    """FORMAT.md §10 step 4: bad bytes with a valid frame after them are not cut."""
    good = read_bytes(small_file.path)
    frame = next_frame_bytes(small_file, tmp_path)
    path = tmp_path / "corrupt.myo"
    damaged = good + bytes(16) + frame  # a bad 16-byte "frame", then a valid one
    path.write_bytes(damaged)
    for readonly in (True, False):
        with pytest.raises(CorruptFileError) as ei:
            Memory.open(path, readonly=readonly)
        assert ei.value.offset == len(good)
        assert read_bytes(path) == damaged  # nothing silently dropped


def test_reader_refresh_sees_commit_written_over_a_torn_tail(small_file: Built,
                                                             tmp_path: Path) -> None:
    """A reader open on a file with a torn tail sees commits appended after a new writer
    cut the tail (§10 step 3), whatever their size."""
    good = read_bytes(small_file.path)
    frame = next_frame_bytes(small_file, tmp_path)
    path = tmp_path / "torn.myo"
    path.write_bytes(good + frame[: len(frame) // 2])
    reader = Memory.open(path, readonly=True)
    try:
        assert reader.head is not None and reader.head.seq == 10
        with open_memory(path, clock=FixedClock(start=1_800_000_000_000_000),
                         checkpoint_floor=1 << 30) as w:
            w.get(1).goal = "after the tail"
            w.commit(label="eleven")
        assert reader.refresh() == 1
        assert reader.head is not None and reader.head.seq == 11
    finally:
        reader.close()


def test_reader_refresh_sees_commit_that_replaced_a_torn_tail_of_equal_size(
        small_file: Built, tmp_path: Path) -> None:
    """Regression (LogFile.refresh once skipped the rescan at an unchanged size).
    The writer crashed mid-append leaving a whole-size but bad frame (one sector
    never written: R28); a reader opens and ignores it as torn; the application
    retries the same commit through a new writer, which cuts the tail and appends a
    frame of the same size. The reader's refresh must see the new commit."""
    good = read_bytes(small_file.path)
    goal = "after the tail " * 200  # a frame of several sectors
    frame = next_frame_bytes(small_file, tmp_path, goal)
    torn = bytearray(frame)
    first_whole_sector = -len(good) % 512 + 512
    torn[first_whole_sector:first_whole_sector + 512] = bytes(512)
    path = tmp_path / "torn.myo"
    path.write_bytes(good + bytes(torn))
    reader = Memory.open(path, readonly=True)
    try:
        assert reader.head is not None and reader.head.seq == 10
        # durability "none" reserves no free space (§3): the file keeps its size
        with open_memory(path, clock=FixedClock(start=1_800_000_000_000_000),
                         checkpoint_floor=1 << 30, durability="none") as w:
            w.get(1).goal = goal
            w.commit(label="eleven")
        assert os.path.getsize(path) == len(good) + len(frame)
        reader.refresh()
        assert reader.head is not None and reader.head.seq == 11
    finally:
        reader.close()


# ---------------------------------------------------------------------- (3) damaged bytes


def rewrite_payload(path: Path, frame: Frame, payload: bytes) -> None:
    """Replace a frame's payload by one of the same length and fix both CRCs, so only
    the record-level rules (R33, R80, ...) can notice the change."""
    assert len(payload) == frame.payload_length
    data = read_bytes(path)
    kind = data[frame.offset + 4]
    set_bytes(path, frame.offset, encode_frame(kind, payload)[: 16 + len(payload)])
    assert frames_of(read_bytes(path)) == frames_of(data)


def usable_base(built: Built, seq: int, damaged_commit: int) -> int:
    """The seq of the snapshot a reader replays ``seq`` from when commit
    ``damaged_commit`` fails its CRC: the newest checkpoint at or before ``seq``
    whose own commit is intact (R33 needs that commit's id), else 0."""
    data = read_bytes(built.path)
    base = 0
    for f in built.checkpoint_frames():
        cp_seq = checkpoint_fields(data, f)[0]
        if cp_seq <= seq and cp_seq != damaged_commit:
            base = max(base, cp_seq)
    return base


def uses_commit(built: Built, seq: int, damaged_commit: int) -> bool:
    return usable_base(built, seq, damaged_commit) < damaged_commit <= seq


@pytest.fixture
def small_copy(small_file: Built, tmp_path: Path) -> Built:
    path = tmp_path / "copy.myo"
    path.write_bytes(read_bytes(small_file.path))
    return Built(path, small_file.snaps, small_file.frames)


def open_quietly(path: Path, **kw: Any) -> Memory:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Memory.open(path, **kw)


def state_or_corrupt(mem: Memory, seq: int) -> str | None:
    """The state hash at ``seq``, or None when reading it raises CorruptFileError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mem.at(seq).state_hash()
    except CorruptFileError:
        return None


@pytest.mark.parametrize("damaged", range(1, 10))
def test_flipped_payload_byte_in_an_older_commit_is_reported_wherever_it_is_read(
        small_copy: Built, damaged: int) -> None:
    """R26: a commit frame that is not the last one and fails its payload CRC is
    corruption. Open replays the commits after the newest usable checkpoint, so it
    raises if the damaged commit is among them; otherwise it opens and every
    historical state that needs the commit raises, and every other one is right."""
    built = small_copy
    f = built.commit_frame(damaged)
    rng = random.Random(damaged)
    for pos in sorted({f.payload_start, f.payload_end - 1,
                       rng.randrange(f.payload_start, f.payload_end)}):
        flip_byte(built.path, pos, 0x10)
        before = read_bytes(built.path)
        if uses_commit(built, 10, damaged):
            for readonly in (True, False):
                with pytest.raises(CorruptFileError) as ei:
                    open_quietly(built.path, readonly=readonly)
                assert ei.value.offset == f.offset
                assert read_bytes(built.path) == before  # the writer cut nothing
        else:
            with open_quietly(built.path, readonly=True) as mem:
                assert mem.head is not None and mem.head.seq == 10
                assert mem.state_hash() == built.snaps[10].state_hash
                for seq in range(1, 11):
                    got = state_or_corrupt(mem, seq)
                    if uses_commit(built, seq, damaged):
                        assert got is None, (pos, seq)
                    else:
                        assert got == built.snaps[seq].state_hash, (pos, seq)
                with pytest.raises(CorruptFileError):
                    mem.history()  # listing the history reads the damaged commit too
        flip_byte(built.path, pos, 0x10)  # undo for the next position


@pytest.mark.parametrize("frame_index", [1, 3, 5, 9])
def test_flipped_byte_in_a_middle_frame_header_is_corruption_at_that_offset(
        small_copy: Built, frame_index: int) -> None:
    """FORMAT.md §10 step 4: a frame header that fails R21 with valid frames after it
    makes the file corrupt at that frame's offset; it is never cut as a torn tail."""
    built = small_copy
    f = built.frames[frame_index]
    assert frame_index < len(built.frames) - 1
    for pos in range(f.offset, f.offset + 16):
        flip_byte(built.path, pos, 0x01 << (pos % 8))
        before = read_bytes(built.path)
        for readonly in (True, False):
            with pytest.raises(CorruptFileError) as ei:
                Memory.open(built.path, readonly=readonly)
            assert ei.value.offset == f.offset, (pos, readonly)
            assert str(f.offset) in str(ei.value)
            assert read_bytes(built.path) == before
        flip_byte(built.path, pos, 0x01 << (pos % 8))


def newest_checkpoint(built: Built) -> Frame:
    return built.checkpoint_frames()[-1]


def test_flipped_byte_in_newest_checkpoint_is_skipped_and_state_is_replayed(
        small_copy: Built) -> None:
    """R80: a checkpoint that fails its checks is reported and skipped; the commits are
    the truth, so open still gives the right state (replayed from the older one)."""
    built = small_copy
    k = newest_checkpoint(built)
    cp_seq = checkpoint_fields(read_bytes(built.path), k)[0]
    rng = random.Random(7)
    positions = sorted({k.payload_start, k.payload_start + 8, k.payload_start + 40,
                        k.payload_start + 72, k.payload_end - 1, k.end - 1,
                        *(rng.randrange(k.payload_start, k.end) for _ in range(12))})
    for pos in positions:
        flip_byte(built.path, pos, 0x80)
        for readonly in (True, False):
            with pytest.warns(UserWarning, match="checkpoint at offset"):
                mem = Memory.open(built.path, readonly=readonly)
            with mem:
                assert mem.head is not None and mem.head.seq == 10
                assert mem.state_hash() == built.snaps[10].state_hash
                assert dump_state(mem) == built.snaps[10].nodes
                assert len(store_of(mem).problems) == 1
                assert f"checkpoint at offset {k.offset} skipped" in store_of(mem).problems[0]
                assert mem.at(cp_seq).state_hash() == built.snaps[cp_seq].state_hash
                if not readonly:  # the writer carries on; the next open is clean again
                    mem.get(1).goal = "after a bad checkpoint"
                    assert mem.commit() is not None
        # undo the commit written above, then the flip
        truncate_to(built.path, built.snaps[10].size)
        flip_byte(built.path, pos, 0x80)
    with Memory.open(built.path, readonly=True) as mem:
        assert store_of(mem).problems == []


@pytest.mark.parametrize("edit", ["seq", "commit_id", "state_hash", "image"])
def test_checkpoint_with_good_crc_but_wrong_fields_is_skipped(small_copy: Built,
                                                               edit: str) -> None:
    """R33 (seq and commit id of the commit before it) and R80 (state hash of the image)
    are checked even when the frame's CRCs are fine."""
    built = small_copy
    k = newest_checkpoint(built)
    payload = bytearray(read_bytes(built.path)[k.payload_start:k.payload_end])
    where = {"seq": 0, "commit_id": 8, "state_hash": 40, "image": len(payload) - 1}[edit]
    payload[where] ^= 0x01
    rewrite_payload(built.path, k, bytes(payload))
    with pytest.warns(UserWarning, match="skipped"):
        mem = Memory.open(built.path, readonly=True)
    with mem:
        assert mem.state_hash() == built.snaps[10].state_hash
        assert len(store_of(mem).problems) == 1
        reason = store_of(mem).problems[0]
        assert ("R33" if edit in ("seq", "commit_id") else "R80") in reason


@pytest.mark.parametrize("bit", range(32 * 8))
def test_flipped_bit_in_file_header_is_refused(small_copy: Built, bit: int) -> None:
    """R10 (magic: not a Myosotis file), R11 (a version above 3 reads as newer, 0 is
    invalid; version is checked before the CRC, in the order §2 gives), R12 (CRC,
    size, flags and reserved bytes: corrupt)."""
    built = small_copy
    offset, b = divmod(bit, 8)
    flip_bit(built.path, offset, b)
    expected: type[MyosotisError]
    if offset < 8:
        expected = NotAMyosotisFileError
    elif offset < 10:
        version = struct.unpack_from("<H", read_bytes(built.path), 8)[0]
        # 0 is invalid; a known version (1 to 3) fails the header CRC; newer is refused
        expected = UnsupportedVersionError if version > FORMAT_VERSION else CorruptFileError
    else:
        expected = CorruptFileError
    before = read_bytes(built.path)
    for readonly in (True, False):
        with pytest.raises(MyosotisError) as ei:
            Memory.open(built.path, readonly=readonly)
        assert type(ei.value) is expected, (offset, b, readonly)
        assert read_bytes(built.path) == before


def set_header_field(path: Path, offset: int, data: bytes) -> None:
    """Change header bytes and fix the header CRC (bytes 28..31, §2)."""
    set_bytes(path, offset, data)
    head = read_bytes(path)[:28]
    set_bytes(path, 28, crc32c(head).to_bytes(4, "little"))


def test_a_newer_format_version_with_valid_crc_is_unsupported(small_copy: Built) -> None:
    """R11, §12: a newer format version is refused with a message that says so."""
    newer = FORMAT_VERSION + 1
    set_header_field(small_copy.path, 8, newer.to_bytes(2, "little"))
    for readonly in (True, False):
        with pytest.raises(UnsupportedVersionError, match=f"format_version {newer}, newer"):
            Memory.open(small_copy.path, readonly=readonly)


@pytest.mark.parametrize(("offset", "data", "rule"), [
    (8, (0).to_bytes(2, "little"), "R11"),  # version 0 is invalid
    (10, (64).to_bytes(2, "little"), "R12"),  # header_size
    (12, (1).to_bytes(4, "little"), "R12"),  # flags
    (20, b"\x01", "R12"),  # reserved
])
def test_header_field_with_valid_crc_but_bad_value_is_corrupt(
        small_copy: Built, offset: int, data: bytes, rule: str) -> None:
    set_header_field(small_copy.path, offset, data)
    for readonly in (True, False):
        with pytest.raises(CorruptFileError, match=rule):
            Memory.open(small_copy.path, readonly=readonly)


def test_no_single_byte_flip_anywhere_gives_a_wrong_state(small_copy: Built) -> None:
    """Flip one byte at every offset of the file: open either refuses with a Myosotis
    error, or every state it shows (head and each historical one) is the true one,
    or reading that state raises CorruptFileError. The exact outcome per region:
    header -> refused; a middle frame's header -> CorruptFileError at its offset;
    the last frame -> CorruptFileError at its offset (a torn write cannot leave a
    flipped byte in a sector it wrote: §10 step 5, R28, so it is never dropped); a
    commit payload -> exactly the states that replay it raise; a checkpoint ->
    skipped, every state right."""
    built = small_copy
    truth = [s.state_hash for s in built.snaps]
    last = built.frames[-1]
    rng = random.Random(2024)
    size = os.path.getsize(built.path)
    frame_at = {}
    for f in built.frames:
        for pos in range(f.offset, f.end):
            frame_at[pos] = f
    for pos in range(size):
        mask = rng.randrange(1, 256)
        flip_byte(built.path, pos, mask)
        f = frame_at.get(pos)
        try:
            if pos < 32:
                with pytest.raises((NotAMyosotisFileError, UnsupportedVersionError,
                                    CorruptFileError)):
                    Memory.open(built.path, readonly=True)
                continue
            assert f is not None
            if f is last:  # whole in one sector that is not all zero: not torn (R28)
                with pytest.raises(CorruptFileError) as ei:
                    Memory.open(built.path, readonly=True)
                assert ei.value.offset == f.offset and "R28" in str(ei.value), pos
                continue
            if pos < f.payload_start:  # a middle frame's header
                with pytest.raises(CorruptFileError) as ei:
                    Memory.open(built.path, readonly=True)
                assert ei.value.offset == f.offset
                continue
            if f.kind == KIND_COMMIT:
                d = [g for g in built.frames if g.kind == KIND_COMMIT].index(f) + 1
                if uses_commit(built, 10, d):
                    with pytest.raises(CorruptFileError) as ei:
                        open_quietly(built.path, readonly=True)
                    assert ei.value.offset == f.offset
                    continue
            else:
                d = 0  # a checkpoint: a cache, never needed
            with open_quietly(built.path, readonly=True) as mem:
                assert mem.head is not None and mem.head.seq == 10
                assert mem.state_hash() == truth[10]
                for seq in range(1, 11):
                    expect = None if d and uses_commit(built, seq, d) else truth[seq]
                    assert state_or_corrupt(mem, seq) == expect, (pos, seq)
        finally:
            flip_byte(built.path, pos, mask)


# ---------------------------------------------------------------------- (2) SIGKILL

# The writer a child process runs until it is killed. It prints "ACK <seq> <hash>"
# with one write(2) (atomic on a pipe) after each commit() returned, so every ACK
# the parent reads is a commit the engine promised was durable.
WRITER_SRC = r'''
import os, random, sys
from myosotis import Memory
from myosotis.testing import open_memory, store_of

def say(line):
    os.write(1, (line + "\n").encode())

def writer(path, seed, floor, max_commits=5000):
    rng = random.Random(seed)
    say(f"PID {os.getpid()}")
    # floor < 0: the layer policy (FORMAT.md §8.7) with a layer every -floor commits
    mem = open_memory(path, checkpoint_floor=floor if floor >= 0 else None, durability="full")
    if floor < 0:
        store_of(mem).layer_commits = -floor
    say(f"OPEN {mem.head.seq if mem.head else 0}")
    if mem.head is None:
        mem.create("Root", n=0, blob="", items=[], m={})
        c = mem.commit(label="root")
        say(f"ACK {c.seq} {mem.state_hash()}")
    for _ in range(max_commits):
        live = [n for n in mem.nodes()]
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
            r = rng.random()
            node = rng.choice(live)
            if r < 0.35:
                node["n"] = rng.randrange(-10**9, 10**9)
            elif r < 0.50 and len(live) < 40:
                live.append(mem.create(rng.choice(("Note", "Task")), n=0, items=[], m={},
                                       parent=rng.choice(live)))
            elif r < 0.65:
                # big values on the first few nodes only: commits large enough to
                # trigger automatic checkpoints, while the image stays small
                mem.get(rng.randint(1, min(3, len(live))))["blob"] = "x" * rng.randint(300, 3000)
            elif r < 0.78:
                if "items" not in node:
                    node["items"] = []
                items = node["items"]
                if len(items) > 8 and rng.random() < 0.5:
                    del items[rng.randrange(len(items))]
                else:
                    items.append(rng.choice((1, "s", None, 2.5, [1, 2], {"k": True})))
            elif r < 0.90:
                if "m" not in node:
                    node["m"] = {}
                m = node["m"]
                key = f"k{rng.randrange(10)}"
                if key in m and rng.random() < 0.3:
                    del m[key]
                else:
                    m[key] = rng.randrange(100)
            elif r < 0.95 and node.id > 3:
                node.delete()
                live.remove(node)
        c = mem.commit(label=f"c{rng.randrange(1000)}", allow_empty=True)
        say(f"ACK {c.seq} {mem.state_hash()}")
    say("DONE")
'''

# A fork server: one interpreter imports myosotis once, then forks a fresh writer
# process per request, so each kill costs a fork instead of an interpreter start.
ZYGOTE_SRC = WRITER_SRC + r'''
import traceback
for line in sys.stdin:
    path, seed, floor = line.split()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            writer(path, int(seed), int(floor))
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    say(f"EXIT {status}")
'''

STANDALONE_SRC = WRITER_SRC + r'''
writer(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
'''

KILLS_PER_CHAIN = 8
CHAINS = 25  # 200 kills in all
CHECKPOINT_FLOOR = 4096


@dataclass
class KillStats:
    kills: int = 0
    torn: int = 0
    unacked_survivor: int = 0
    acks: int = 0
    uncreated: int = 0
    free: int = 0  # reopened with free space after the last frame (FORMAT.md §3)


@pytest.fixture(scope="module")
def zygote() -> Iterator[Any]:
    proc = spawn_python(ZYGOTE_SRC)
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=20)
    assert proc.returncode == 0


def read_child_line(proc: Any) -> str:
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"the writer server died: {proc.stderr.read()}")
    return str(line.rstrip("\n"))


def verify_after_kill(path: Path, acked: dict[int, str], last_ack: int, rng: random.Random,
                      stats: KillStats) -> None:
    """Reopen after a kill: every ACKed commit is there with its state hash, the reader
    leaves a torn tail alone, the writer cuts it, and a new commit works."""
    if not path.exists():
        # killed while creating the file: the header is written to a temporary file
        # and linked into place, so there is either no file or a whole header
        assert not acked
        stats.uncreated += 1
        with open_memory(path, checkpoint_floor=CHECKPOINT_FLOOR) as mem:
            assert mem.head is None and os.path.getsize(path) == 32
        return
    size = os.path.getsize(path)
    assert size >= 32  # never a half-written header
    with Memory.open(path, readonly=True) as mem:
        head = mem.head.seq if mem.head is not None else 0
        # Only the commit in flight at the kill may be there without an ACK.
        assert last_ack <= head <= last_ack + 1, (last_ack, head)
        stats.unacked_survivor += head == last_ack + 1
        stats.torn += store_of(mem).log.torn_bytes > 0
        assert store_of(mem).problems == []
        if head == last_ack and last_ack:
            assert mem.state_hash() == acked[last_ack]
        checks = {last_ack} | set(rng.sample(sorted(acked), min(2, len(acked))))
        for seq in sorted(checks - {0}):
            assert mem.at(seq).state_hash() == acked[seq], seq
    assert os.path.getsize(path) == size
    with open_memory(path, checkpoint_floor=CHECKPOINT_FLOOR) as mem:
        # a torn tail is cut; free space (§3) is kept
        log = store_of(mem).log
        assert log.torn_bytes == 0 and os.path.getsize(path) == log.valid_end + log.free_bytes
        stats.free += log.free_bytes > 0
        if mem.head is None:  # killed before its first commit
            mem.create("Root", n=0, blob="", items=[], m={})
        else:
            mem.get(1)["n"] = rng.randrange(1000)
        c = mem.commit(label="after kill")
        assert c is not None and c.seq == head + 1
        acked[c.seq] = mem.state_hash()


def kill_chain(path: Path, rng: random.Random, start_writer: Any, stats: KillStats,
               acked_before: dict[int, str] | None = None) -> None:
    """KILLS_PER_CHAIN rounds on one file: start a writer, SIGKILL it, verify.
    ``acked_before``: the commits the file holds already (seq -> state hash)."""
    acked: dict[int, str] = dict(acked_before or {})

    def note(line: str) -> bool:
        if line.startswith("ACK "):
            _, s, h = line.split()
            acked[int(s)] = h
            return True
        assert line.startswith("OPEN "), line  # never "DONE": killed long before
        return False

    for _ in range(KILLS_PER_CHAIN):
        last_before = max(acked, default=0)
        _, lines = start_writer(path, rng.randrange(1 << 30))
        first = lines()
        assert first.startswith("PID "), first
        pid = int(first.split()[1])
        status = None
        try:
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 0.05))  # anywhere: open, recovery, commit, checkpoint
            else:
                want = rng.randint(0, 12)  # right after the k-th ACK: inside the next commit
                got = 0
                while got < want:
                    got += note(lines())
        finally:
            # always kill and drain to the end of this writer, so a failure here
            # cannot leave a writer running into the next round
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while status is None:
                line = lines()
                if line.startswith("EXIT ") or line == "STANDALONE-EXIT":
                    status = line
                else:
                    note(line)
        if status.startswith("EXIT "):
            st = int(status.split()[1])
            assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL, st
        assert max(acked, default=0) >= last_before
        stats.kills += 1
        verify_after_kill(path, acked, max(acked, default=0), rng, stats)
    stats.acks += len(acked)
    # finally every ACKed commit, not just a sample
    with Memory.open(path, readonly=True) as mem:
        for seq, h in sorted(acked.items()):
            assert mem.at(seq).state_hash() == h, seq


@pytest.mark.slow
@pytest.mark.parametrize("chain", range(CHAINS))
def test_sigkilled_writer_loses_no_acknowledged_commit(zygote: Any, tmp_path: Path,
                                                       chain: int) -> None:
    """SIGKILL a writer (durability "full", checkpoint_floor 4096) at random moments,
    8 times per file and 200 times over the parametrization. After each kill every
    acknowledged commit is in the file with its state hash, and the file takes a
    new commit."""
    path = tmp_path / "killed.myo"

    def start(p: Path, seed: int) -> tuple[Any, Any]:
        zygote.stdin.write(f"{p} {seed} {CHECKPOINT_FLOOR}\n")
        zygote.stdin.flush()
        return zygote, lambda: read_child_line(zygote)

    stats = KillStats()
    kill_chain(path, random.Random(1000 + chain), start, stats)
    assert stats.kills == KILLS_PER_CHAIN
    assert stats.acks > KILLS_PER_CHAIN  # the writers got work done between kills
    kinds = [f.kind for f in frame_offsets(path)]
    assert KIND_CHECKPOINT in kinds  # automatic checkpoints happened on the way
    assert stats.free > 0  # and kills that left commits written over free space
    print(f"chain {chain}: {stats}")


@pytest.mark.parametrize("chain", range(2))
def test_sigkilled_layer_writer_moving_a_version_2_file_to_4_loses_nothing(
        zygote: Any, tmp_path: Path, chain: int) -> None:
    """A version-2 file taken over by writers that append a layer every 3 commits
    (FORMAT.md §8.7), SIGKILLed at random moments (the move of the header to
    version 4 among them, §12): every acknowledged commit is there with its state
    hash after each kill, and the file ends at version 4 with layers in it."""
    path = tmp_path / "killed.myo"
    with open_memory(path, checkpoint_floor=CHECKPOINT_FLOOR, durability="none") as mem:
        mem.create("Root", n=0, blob="", items=[], m={})
        mem.commit(label="root")
        for i in range(2):
            mem.get(1)["n"] = i
            mem.commit()
        mem.sync()
        before = {c.seq: mem.at(c.seq).state_hash() for c in mem.history()}
    assert read_bytes(path)[8] == 2  # frame 2 followed an unsynced frame (§3)

    def start(p: Path, seed: int) -> tuple[Any, Any]:
        zygote.stdin.write(f"{p} {seed} -3\n")
        zygote.stdin.flush()
        return zygote, lambda: read_child_line(zygote)

    stats = KillStats()
    kill_chain(path, random.Random(2000 + chain), start, stats, before)
    assert stats.acks > KILLS_PER_CHAIN
    with Memory.open(path, readonly=True) as mem:
        for seq, h in before.items():  # the commits of version 2, unchanged
            assert mem.at(seq).state_hash() == h
    assert read_bytes(path)[8] == 4
    assert KIND_LAYER in {f.kind for f in frame_offsets(path)}
    assert verify_file(str(path)).ok


def test_sigkilled_standalone_interpreter_writer_loses_no_acknowledged_commit(
        tmp_path: Path) -> None:
    """The same as above with a fresh interpreter per writer (no fork server)."""
    path = tmp_path / "killed.myo"
    procs: list[Any] = []

    def start(p: Path, seed: int) -> tuple[Any, Any]:
        proc = spawn_python(STANDALONE_SRC, str(p), str(seed), str(CHECKPOINT_FLOOR))
        procs.append(proc)

        def lines() -> str:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                proc.wait(timeout=20)
                assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # type: ignore
                return "STANDALONE-EXIT"
            return str(line.rstrip("\n"))
        return proc, lines

    stats = KillStats()
    try:
        kill_chain(path, random.Random(99), start, stats)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=20)
    assert stats.kills == KILLS_PER_CHAIN
