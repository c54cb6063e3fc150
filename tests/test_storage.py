"""Unit tests of the storage layer (myosotis/storage): LogFile, FileMap, locks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from myosotis.engine.policy import free_space_end
from myosotis.errors import FileMissingError, LockedError, ReadOnlyError
from myosotis.format.constants import HEADER_SIZE, KIND_COMMIT
from myosotis.format.header import encode_file_header
from myosotis.storage.log import LogFile


def test_new_file_is_exactly_the_header(tmp_path: Path) -> None:
    path = str(tmp_path / "a.myo")
    log = LogFile.open(path)
    log.close()
    assert Path(path).read_bytes() == encode_file_header()
    assert len(encode_file_header()) == HEADER_SIZE


def test_readonly_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.myo")
    with pytest.raises(FileMissingError):
        LogFile.open(path, readonly=True)
    assert not os.path.exists(path)


def test_appended_frames_read_back_zero_copy_across_remaps(tmp_path: Path) -> None:
    """A payload view handed out before the map grows stays valid (no BufferError,
    no stale bytes) after later appends remap the file."""
    path = str(tmp_path / "a.myo")
    log = LogFile.open(path)
    try:
        first = log.append(KIND_COMMIT, b"first payload", durable=False)
        view = log.payload(first)
        for i in range(200):  # grow the file well past the first map
            log.append(KIND_COMMIT, bytes([i % 256]) * 4096, durable=False)
        assert bytes(view) == b"first payload"
        assert isinstance(log.payload(first), memoryview)
        assert bytes(log.payload(200)) == bytes([199]) * 4096
    finally:
        log.close()
    assert bytes(view) == b"first payload"  # the view outlives the log


def test_reader_refresh_sees_frames_appended_by_the_writer(tmp_path: Path) -> None:
    path = str(tmp_path / "a.myo")
    writer = LogFile.open(path)
    reader = LogFile.open(path, readonly=True)
    try:
        assert len(reader.frames) == 0
        writer.append(KIND_COMMIT, b"x" * 10, durable=True)
        assert len(reader.frames) == 0  # a reader sees the prefix of its last scan
        assert reader.refresh() == 1
        assert bytes(reader.payload(0)) == b"x" * 10
        with pytest.raises(ReadOnlyError):
            reader.append(KIND_COMMIT, b"y", durable=False)
    finally:
        reader.close()
        writer.close()


def test_durable_appends_reserve_free_space_and_fill_it(tmp_path: Path) -> None:
    """FORMAT.md §3, the reference writer's policy: a durable frame that does not fit
    is followed by zeros up to free_space_end; frames that fit go over the zeros
    without growing the file; a frame at least as large as that space gets none;
    durability "none" reserves nothing. A reader sees every frame at each step."""
    path = str(tmp_path / "a.myo")
    writer = LogFile.open(path, free_space=free_space_end)  # the engine's policy
    reader = LogFile.open(path, readonly=True)
    try:
        writer.append(KIND_COMMIT, b"a" * 100, durable=True)  # frame [32, 152)
        assert free_space_end(32, 152) == 4096 and os.path.getsize(path) == 4096
        assert (writer.valid_end, writer.free_bytes) == (152, 4096 - 152)
        for i in range(30):  # 30 frames of 120 bytes fit in the 3,944 free bytes
            writer.append(KIND_COMMIT, bytes([i]) * 104, durable=True)
            assert os.path.getsize(path) == 4096
        assert reader.refresh() == 31 and reader.free_bytes == writer.free_bytes
        assert bytes(reader.payload(30)) == bytes([29]) * 104
        end = writer.valid_end
        writer.append(KIND_COMMIT, b"b" * 400, durable=True)  # does not fit: more zeros
        size = free_space_end(end, writer.valid_end)
        assert size > writer.valid_end and os.path.getsize(path) == size
        big = 1 << 20  # larger than a sixteenth of the file: no free space after it
        start = writer.valid_end
        writer.append(KIND_COMMIT, b"c" * big, durable=True)
        assert free_space_end(start, writer.valid_end) == writer.valid_end
        assert os.path.getsize(path) == writer.valid_end and writer.free_bytes == 0
        writer.append(KIND_COMMIT, b"d" * 10, durable=False)  # "none": no reservation
        assert os.path.getsize(path) == writer.valid_end
        assert reader.refresh() == 3 and reader.torn_bytes == reader.free_bytes == 0
        assert Path(path).read_bytes().endswith(b"d" * 10 + bytes(6))  # frame, padding
    finally:
        reader.close()
        writer.close()


def test_second_writer_is_refused_and_the_lock_is_released_on_close(tmp_path: Path) -> None:
    path = str(tmp_path / "a.myo")
    first = LogFile.open(path)
    with pytest.raises(LockedError):
        LogFile.open(path)
    first.close()
    LogFile.open(path).close()


def test_writer_removes_temporary_files_left_by_a_dead_writer(tmp_path: Path) -> None:
    """Temporary files of creation and rewrites are made only under the writer lock,
    so the next writer deletes any it finds."""
    path = str(tmp_path / "a.myo")
    LogFile.open(path).close()
    for name in ("a.myo.create-123", "a.myo.rewrite-456"):
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / "other.myo.create-1").write_bytes(b"not ours")
    LogFile.open(path, readonly=True).close()
    assert (tmp_path / "a.myo.create-123").exists()  # a reader deletes nothing
    LogFile.open(path).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.myo", "a.myo.lock", "other.myo.create-1"]


def test_reader_racing_the_writer_over_free_space_sees_frames_not_corruption(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer appends over free space while a reader walks it (FORMAT.md §3): the
    reader reads zeros at its end, then the writer's two new frames land before it
    reads on. What it read looks like damage followed by a valid frame; a second walk
    settles it (LogFile._reader_walk), so refresh returns the frames, not an error."""
    import myosotis.format.walk as walkmod
    from myosotis.format import _helper_py

    path = str(tmp_path / "a.myo")
    writer = LogFile.open(path, free_space=free_space_end)
    reader = LogFile.open(path, readonly=True)
    try:
        writer.append(KIND_COMMIT, b"a" * 100, durable=True)
        assert reader.refresh() == 1 and reader.free_bytes > 0
        frame_size = _helper_py._frame_size
        armed = [True]

        def racing(mv: memoryview, o: int, full: bool, flags: int = 0) -> int:
            size = frame_size(mv, o, full, flags)
            if armed[0] and o == reader.valid_end:  # the reader just read zeros here
                armed[0] = False
                writer.append(KIND_COMMIT, b"G" * 40, durable=True)
                writer.append(KIND_COMMIT, b"H" * 40, durable=True)
            return size

        monkeypatch.setattr(_helper_py, "_frame_size", racing)
        monkeypatch.setattr(walkmod, "scan_frames", _helper_py.scan_frames)
        assert reader.refresh() == 2
        assert not armed[0]  # the race happened
        assert [bytes(reader.payload(i)) for i in (1, 2)] == [b"G" * 40, b"H" * 40]
        assert reader.torn_bytes == 0 and reader.valid_end == writer.valid_end
    finally:
        reader.close()
        writer.close()


def test_a_writer_handle_refresh_finds_nothing_new(tmp_path: Path) -> None:
    writer = LogFile.open(str(tmp_path / "a.myo"), free_space=free_space_end)
    try:
        writer.append(KIND_COMMIT, b"a", durable=True)  # leaves free space
        assert writer.free_bytes > 0 and writer.refresh() == 0
    finally:
        writer.close()
