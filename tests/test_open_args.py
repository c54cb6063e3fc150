"""``Memory.open`` checks everything before it touches the file system.

A bad argument, a path that is not a regular file or a file that is not a
Myosotis file is refused with a MyosotisError saying what to do, never a raw
TypeError or OSError, never a hang (a FIFO, a NaN timeout), and the failed
open leaves nothing behind: no data file, no ``.lock`` sidecar it created.
A 0-byte file (``tempfile.mkstemp``) is a new, empty memory, as in SQLite.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from myosotis import (
    InvalidArgumentError,
    LockedError,
    Memory,
    MyosotisError,
    NotAMyosotisFileError,
    NotARegularFileError,
)
from myosotis.format.header import encode_file_header
from myosotis.storage.fileops import FileOps
from myosotis.testing import open_memory


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""
    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("kw, words", [
    ({"durability": "FULL"}, "durability must be 'full' or 'none'"),
    ({"durability": None}, "durability must be 'full' or 'none'"),
    ({"lock_timeout": "2"}, "lock_timeout must be a finite number"),
    ({"lock_timeout": None}, "lock_timeout must be a finite number"),
    ({"lock_timeout": True}, "lock_timeout must be a finite number"),
    ({"lock_timeout": -1}, "lock_timeout must be a finite number"),
    ({"lock_timeout": math.inf}, "lock_timeout must be a finite number"),
    ({"readonly": "yes"}, "readonly must be True or False"),
    ({"readonly": 1}, "readonly must be True or False"),
    ({"clock": 5}, "clock must be a callable"),
    ({"fileops": "os"}, "fileops must be a FileOps"),
    ({"checkpoint_floor": -1}, "checkpoint_floor must be an int"),
    ({"checkpoint_floor": 2.5}, "checkpoint_floor must be an int"),
    ({"node_cache": 0}, "node_cache must be an int >= 1"),
    ({"node_cache": True}, "node_cache must be an int >= 1"),
    ({"node_cache": "8"}, "node_cache must be an int >= 1"),
])
def test_a_bad_argument_is_refused_before_anything_is_created(
        tmp_path: Path, kw: dict[str, Any], words: str) -> None:
    # the test hooks are arguments of myosotis.testing.open_memory only
    opener = open_memory if {"fileops", "checkpoint_floor"} & kw.keys() else Memory.open
    with pytest.raises(InvalidArgumentError, match=words) as e:
        opener(tmp_path / "new.myo", **kw)
    assert repr(next(iter(kw.values())))[:20] in str(e.value)  # names the value it got
    assert isinstance(e.value, ValueError)
    assert names(tmp_path) == []


@pytest.mark.parametrize("path", [b"new.myo", 42, "", "a\0b.myo", None])
def test_a_bad_path_is_refused_before_anything_is_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidArgumentError, match="path must be"):
        Memory.open(path)
    assert names(tmp_path) == []


def test_a_nan_lock_timeout_is_refused_instead_of_waiting_forever(tmp_path: Path) -> None:
    path = tmp_path / "data.myo"
    finite = "lock_timeout must be a finite number"
    with Memory.open(path), within(5), pytest.raises(InvalidArgumentError, match=finite):
        Memory.open(path, lock_timeout=math.nan)
    assert names(tmp_path) == ["data.myo", "data.myo.lock"]


def test_a_bad_lock_timeout_for_a_locked_file_is_refused_not_reported_as_locked(
        tmp_path: Path) -> None:
    path = tmp_path / "data.myo"
    with Memory.open(path):
        with pytest.raises(InvalidArgumentError):
            Memory.open(path, lock_timeout="2")  # type: ignore[arg-type]
        with pytest.raises(LockedError):
            Memory.open(path, lock_timeout=0)


@pytest.mark.parametrize("readonly", [True, False])
def test_a_directory_is_refused_as_not_a_regular_file(tmp_path: Path, readonly: bool) -> None:
    (tmp_path / "dir.myo").mkdir()
    with pytest.raises(NotARegularFileError, match="is a directory") as e:
        Memory.open(tmp_path / "dir.myo", readonly=readonly)
    assert "regular file" in str(e.value)
    assert names(tmp_path) == ["dir.myo"]


@pytest.mark.parametrize("readonly", [True, False])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, readonly: bool) -> None:
    fifo = tmp_path / "pipe.myo"
    os.mkfifo(fifo)
    with within(5), pytest.raises(NotARegularFileError, match="is a FIFO"):
        Memory.open(fifo, readonly=readonly)
    assert names(tmp_path) == ["pipe.myo"]


def test_a_fifo_behind_a_symlink_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link.myo").symlink_to("pipe")
    with within(5), pytest.raises(NotARegularFileError):
        Memory.open(tmp_path / "link.myo", readonly=True)


@pytest.mark.parametrize("readonly", [True, False])
def test_a_text_file_is_refused_and_left_as_it_was_with_no_lock_file(
        tmp_path: Path, readonly: bool) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, world\n")
    with pytest.raises(NotAMyosotisFileError, match="not a Myosotis file"):
        Memory.open(text, readonly=readonly)
    assert names(tmp_path) == ["notes.txt"]
    assert text.read_text() == "hello, world\n"


def test_a_failed_open_keeps_a_lock_file_that_was_there_before(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, world\n")
    (tmp_path / "notes.txt.lock").write_bytes(b"")
    with pytest.raises(NotAMyosotisFileError):
        Memory.open(text)
    assert names(tmp_path) == ["notes.txt", "notes.txt.lock"]


def test_a_writer_in_a_missing_directory_is_refused_and_creates_nothing(
        tmp_path: Path) -> None:
    with pytest.raises(MyosotisError, match="directory does not exist"):
        Memory.open(tmp_path / "missing" / "data.myo")
    assert names(tmp_path) == []


def test_a_zero_byte_file_opens_as_a_new_memory_for_a_writer(tmp_path: Path) -> None:
    fd, name = tempfile.mkstemp(dir=tmp_path, suffix=".myo")
    os.close(fd)
    inode = os.stat(name).st_ino
    with Memory.open(name) as mem:
        assert mem.head is None and len(mem) == 0
        mem.create("Agent", name="Iris")
        mem.commit(label="first")
    st = os.stat(name)
    assert st.st_ino == inode  # written in place: the file mkstemp made, not a new one
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert Path(name).read_bytes()[:32] == encode_file_header()
    with Memory.open(name, readonly=True) as reader:
        assert reader[1].name == "Iris"


def test_a_zero_byte_file_reads_as_an_empty_memory_and_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.myo"
    path.write_bytes(b"")
    with Memory.open(path, readonly=True) as reader:
        assert reader.head is None and len(reader) == 0 and reader.history() == []
        assert reader.refresh() == 0
    assert path.read_bytes() == b""
    assert names(tmp_path) == ["empty.myo"]


def test_a_reader_of_a_zero_byte_file_sees_what_a_writer_then_commits(tmp_path: Path) -> None:
    path = tmp_path / "empty.myo"
    path.write_bytes(b"")
    with Memory.open(path, readonly=True) as reader:
        with Memory.open(path) as mem:
            mem.create("Agent", name="Iris")
            mem.commit()
        assert reader.refresh() == 1
        assert reader[1].name == "Iris"


class Recording(FileOps):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self.calls.append(("pwrite", (len(data), offset)))
        super().pwrite(fd, data, offset)

    def sync(self, fd: int) -> None:
        self.calls.append(("sync", None))
        super().sync(fd)


def test_the_header_of_a_zero_byte_file_is_one_write_synced_before_use(tmp_path: Path) -> None:
    """One 32-byte write at offset 0 (inside one disk sector), synced at once: a
    crash leaves 0 bytes (a new memory again) or a whole header."""
    path = tmp_path / "empty.myo"
    path.write_bytes(b"")
    ops = Recording()
    open_memory(path, fileops=ops).close()
    assert ops.calls[:2] == [("pwrite", (32, 0)), ("sync", None)]
    assert path.read_bytes() == encode_file_header()


def test_memory_open_has_no_test_hooks(tmp_path: Path) -> None:
    """The public ``Memory.open`` takes no fault-injection hook: they live in
    ``myosotis.testing`` (a typo there must not silently inject nothing)."""
    for hook in ({"fileops": FileOps()}, {"checkpoint_floor": 0}):
        with pytest.raises(TypeError):
            Memory.open(tmp_path / "new.myo", **hook)  # type: ignore[arg-type]
    assert names(tmp_path) == []
