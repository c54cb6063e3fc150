"""The writer lock follows the file, not the name it was opened by.

A second writer of the same file is refused however it names the file: a
symlink to it, a hard link, a relative path, a directory reached through a
symlink or a bind mount, the file itself bind-mounted elsewhere, or another
process (storage/lock.py: a sidecar named from the real path, and an
open-file-description lock on the data file's inode). Compaction replaces the
file by a rename; the writer locks the new inode before the rename, so a
second writer is refused after it too, and readers still open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from crashutil import finish, read_line, send_line, spawn_python

from myosotis import LockedError, Memory
from myosotis.engine.verify import repair_file
from myosotis.storage.fileops import FileOps
from myosotis.testing import open_memory, store_of


def make_file(path: Path) -> str:
    """A data file at ``path`` with two commits; returns its state hash."""
    with Memory.open(path) as mem:
        mem.create("Agent", name="Iris")
        mem.commit(label="one")
        mem[1].goal = "Explore"
        mem.commit(label="two")
        return mem.state_hash()


def assert_second_writer_refused(first: Path | str, second: Path | str) -> None:
    """A writer through ``first`` refuses a writer through ``second``, and then a
    reader through ``second`` still opens and sees the same state."""
    with Memory.open(first) as mem:
        with pytest.raises(LockedError, match="readonly=True"):
            Memory.open(second)
        with Memory.open(second, readonly=True) as reader:
            assert reader.state_hash() == mem.state_hash()
    Memory.open(second).close()  # released with the first writer


def test_second_writer_through_a_symlink_to_the_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.myo"
    make_file(real)
    (tmp_path / "alias.myo").symlink_to("real.myo")
    assert_second_writer_refused(real, tmp_path / "alias.myo")
    assert_second_writer_refused(tmp_path / "alias.myo", real)


def test_second_writer_through_a_symlink_in_another_directory_is_refused(
        tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    real = tmp_path / "a" / "data.myo"
    make_file(real)
    (tmp_path / "b" / "data.myo").symlink_to(real)
    assert_second_writer_refused(tmp_path / "b" / "data.myo", real)


def test_second_writer_through_a_hard_link_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.myo"
    make_file(real)
    os.link(real, tmp_path / "hard.myo")
    assert_second_writer_refused(real, tmp_path / "hard.myo")
    assert_second_writer_refused(tmp_path / "hard.myo", real)


def test_second_writer_through_a_relative_path_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "data.myo"
    make_file(real)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert_second_writer_refused(real, "../data.myo")
    assert_second_writer_refused("../sub/../data.myo", real)


def test_second_writer_through_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real", target_is_directory=True)
    make_file(tmp_path / "real" / "data.myo")
    assert_second_writer_refused(tmp_path / "link" / "data.myo",
                                 tmp_path / "real" / "data.myo")


@contextlib.contextmanager
def bind_mount(src: Path, dst: Path) -> Iterator[None]:
    """``mount --bind src dst`` for the block; skips the test where that is not allowed."""
    try:
        r = subprocess.run(["mount", "--bind", str(src), str(dst)],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"mount --bind is not available: {e}")
    if r.returncode != 0:
        pytest.skip(f"mount --bind failed: {r.stderr.strip()}")
    try:
        yield
    finally:
        # lazy: a failed test may leave a descriptor open on the mount
        subprocess.run(["umount", "-l", str(dst)], check=True, timeout=20)


def test_second_writer_through_a_bind_mounted_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_file(tmp_path / "a" / "data.myo")
    with bind_mount(tmp_path / "a", tmp_path / "b"):
        assert_second_writer_refused(tmp_path / "a" / "data.myo", tmp_path / "b" / "data.myo")
        with Memory.open(tmp_path / "b" / "data.myo") as mem:
            mem.compact()
            with pytest.raises(LockedError):
                Memory.open(tmp_path / "a" / "data.myo")


def test_second_writer_through_a_bind_mount_of_the_file_is_refused(tmp_path: Path) -> None:
    """The two names are in different directories and are not links: only the data
    file's inode relates them."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_file(tmp_path / "a" / "data.myo")
    (tmp_path / "b" / "mnt.myo").write_bytes(b"")
    with bind_mount(tmp_path / "a" / "data.myo", tmp_path / "b" / "mnt.myo"):
        assert_second_writer_refused(tmp_path / "a" / "data.myo", tmp_path / "b" / "mnt.myo")
        assert_second_writer_refused(tmp_path / "b" / "mnt.myo", tmp_path / "a" / "data.myo")


HOLDER_SRC = r'''
import sys
from myosotis import Memory
mem = Memory.open(sys.argv[1])
print("HOLDING", flush=True)
sys.stdin.readline()
mem.close()
'''


@pytest.mark.parametrize("alias", ["symlink", "hardlink"])
def test_second_writer_in_another_process_through_another_name_is_refused(
        tmp_path: Path, alias: str) -> None:
    real = tmp_path / "real.myo"
    h = make_file(real)
    other = tmp_path / "other.myo"
    if alias == "symlink":
        other.symlink_to(real)
    else:
        os.link(real, other)
    for holder_name, second in ((real, other), (other, real)):
        proc = spawn_python(HOLDER_SRC, str(holder_name))
        try:
            assert read_line(proc) == "HOLDING"
            with pytest.raises(LockedError):
                Memory.open(second)
            with Memory.open(second, readonly=True) as reader:
                assert reader.state_hash() == h
            send_line(proc, "")
            finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=20)
        Memory.open(second).close()


@pytest.mark.parametrize("alias", ["same", "symlink", "relative"])
def test_after_compaction_a_second_writer_is_refused_and_a_reader_opens(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alias: str) -> None:
    real = tmp_path / "real.myo"
    make_file(real)
    monkeypatch.chdir(tmp_path)
    names: dict[str, Path | str] = {"same": real, "symlink": tmp_path / "alias.myo",
                                    "relative": "real.myo"}
    other = names[alias]
    if alias == "symlink":
        (tmp_path / "alias.myo").symlink_to("real.myo")
    with Memory.open(real) as mem:
        inode = os.stat(real).st_ino
        mem.compact()
        assert os.stat(real).st_ino != inode  # compaction did replace the file
        with pytest.raises(LockedError):
            Memory.open(other)
        with Memory.open(other, readonly=True) as reader:
            assert reader.state_hash() == mem.state_hash()
        mem[1].goal = "after compaction"
        mem.commit()
    with Memory.open(other) as again:
        assert again[1].goal == "after compaction"


def test_after_compaction_a_new_hard_link_to_the_file_is_refused_a_writer(
        tmp_path: Path) -> None:
    """The writer holds the inode lock of the file compaction put in place, not only
    of the one it opened."""
    real = tmp_path / "real.myo"
    make_file(real)
    with Memory.open(real) as mem:
        mem.compact()
        os.link(real, tmp_path / "hard.myo")
        with pytest.raises(LockedError):
            Memory.open(tmp_path / "hard.myo")


def ofd_locked_by_someone(path: str) -> bool:
    """Whether an open-file-description write lock on the byte at 2**62 of ``path``
    is held by another descriptor (as the writer lock's inode lock is)."""
    fd = os.open(path, os.O_RDWR)
    try:
        arg = struct.pack("@hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 1 << 62, 1, 0)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, arg)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


class RecordsLockAtRename(FileOps):
    """Notes, at each rename, whether the file renamed into place is already locked."""

    def __init__(self) -> None:
        self.locked_at_rename: list[bool] = []

    def replace(self, src: str, dst: str) -> None:
        self.locked_at_rename.append(ofd_locked_by_someone(src))
        super().replace(src, dst)


def test_compaction_locks_the_new_file_before_renaming_it_into_place(tmp_path: Path) -> None:
    """Between the rename and the reopen, a writer through another name (a hard
    link made in that moment, a bind mount) must already find the new inode locked."""
    real = tmp_path / "real.myo"
    make_file(real)
    ops = RecordsLockAtRename()
    with open_memory(real, fileops=ops) as mem:
        mem.compact()
    assert ops.locked_at_rename == [True]


def test_repair_through_a_hard_link_is_refused_while_a_writer_holds_the_file(
        tmp_path: Path) -> None:
    real = tmp_path / "real.myo"
    make_file(real)
    os.link(real, tmp_path / "hard.myo")
    with Memory.open(real), pytest.raises(LockedError):
        repair_file(str(tmp_path / "hard.myo"))


def test_a_failed_writer_open_waiting_on_a_removed_sidecar_retakes_the_new_one(
        tmp_path: Path) -> None:
    """A sidecar is removed only by the open that created it, when that open fails;
    the next writer must not end up holding the removed one while another writer
    holds a new one."""
    from myosotis.storage.lock import WriterLock

    path = str(tmp_path / "data.myo")
    make_file(Path(path))
    os.unlink(path + ".lock")
    first = WriterLock(path)
    first.acquire()
    stale = os.open(path + ".lock", os.O_RDWR)  # what a second writer opened meanwhile
    try:
        first.abandon()  # removes the sidecar it created, while holding it
        second = WriterLock(path)
        second.acquire()  # a new sidecar
        try:
            fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the removed one is free...
            third = WriterLock(path)
            with pytest.raises(LockedError):  # ...but the name holds the new one
                third.acquire()
        finally:
            second.release()
    finally:
        os.close(stale)


def test_compaction_after_a_chdir_rewrites_the_file_that_was_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer opened through a relative path keeps meaning the file it opened, as its
    lock does, when the process changes directory."""
    (tmp_path / "elsewhere").mkdir()
    make_file(tmp_path / "data.myo")
    monkeypatch.chdir(tmp_path)
    with Memory.open("data.myo") as mem:
        h = mem.state_hash()
        os.chdir(tmp_path / "elsewhere")
        mem.compact()
        assert mem.state_hash() == h
    assert os.listdir(tmp_path / "elsewhere") == []
    with Memory.open(tmp_path / "data.myo", readonly=True) as reader:
        assert store_of(reader).commits.has_genesis and reader.state_hash() == h


def test_where_flock_is_emulated_with_byte_range_locks_the_sidecar_is_the_only_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On NFS ``flock`` is a byte-range lock in disguise: an inode lock there would block
    the truncation guard (readers', and the writer's own when it cuts a torn tail), so
    the writer does without it and relies on the sidecar."""
    import myosotis.storage.lock as lockmod

    monkeypatch.setattr(lockmod, "_flock_independent", lambda fd: False)
    real = tmp_path / "real.myo"
    make_file(real)
    with Memory.open(real) as mem:
        assert not ofd_locked_by_someone(str(real))
        with pytest.raises(LockedError):
            Memory.open(real)
        mem.compact()
        assert not ofd_locked_by_someone(str(real))
        with Memory.open(real, readonly=True) as reader:
            assert reader.state_hash() == mem.state_hash()


def test_on_a_local_file_system_flock_ignores_the_inode_lock(tmp_path: Path) -> None:
    """What the design rests on (Linux): while a writer holds the inode lock, readers
    still take the shared truncation guard, and the writer the exclusive one."""
    from myosotis.storage.lock import _flock_independent

    real = tmp_path / "real.myo"
    make_file(real)
    with Memory.open(real) as mem:
        assert ofd_locked_by_someone(str(real))
        fd = os.open(real, os.O_RDONLY)
        try:
            assert _flock_independent(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        mem[1].goal = "still writable"
        mem.commit()
