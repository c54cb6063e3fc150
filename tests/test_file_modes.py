"""Files written in place of or beside the data file take the data file's mode.

Compaction and repair replace the data file by a new one, and a writer creates
the ``.lock`` sidecar beside it: each takes the data file's permission bits
(``chmod 600`` stays 600 whatever the umask) and its owner and group where
the process may set them. A new data file follows the umask as usual.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from myosotis import Memory
from myosotis.engine.verify import repair_file, verify_file
from myosotis.format.constants import KIND_CHECKPOINT
from myosotis.format.header import encode_frame
from myosotis.storage.fileops import copy_mode
from myosotis.testing import open_memory, store_of


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def make_file(path: Path) -> None:
    with Memory.open(path) as mem:
        for i in range(3):
            mem.create("Blob", i=i, data="w" * 3000)
            mem.commit()
        mem.checkpoint()
        mem.create("Last")
        mem.commit()


def break_checkpoint(path: Path) -> None:
    """Make the only checkpoint fail its state hash (R80), CRCs right: what repair drops."""
    with Memory.open(path, readonly=True) as mem:
        off = [store_of(mem).log.frame_offset(j) for _, j in store_of(mem).commits.checkpoints][0]
    data = bytearray(path.read_bytes())
    n = struct.unpack_from("<I", data, off)[0]
    payload = bytearray(data[off + 16:off + 16 + n])
    payload[100] ^= 0x01
    data[off:off + 16 + n] = encode_frame(KIND_CHECKPOINT, bytes(payload))[:16 + n]
    with open(path, "r+b") as f:  # in place: keep the inode and its mode
        f.write(bytes(data))
    assert verify_file(str(path)).bad_checkpoints == [off]


@pytest.mark.parametrize("perm", [0o600, 0o640, 0o660, 0o664])
def test_compaction_keeps_the_mode_of_the_data_file(
        tmp_path: Path, umask_022: None, perm: int) -> None:
    path = tmp_path / "state.myo"
    make_file(path)
    os.chmod(path, perm)
    inode = os.stat(path).st_ino
    with Memory.open(path) as mem:
        mem.compact()
    assert os.stat(path).st_ino != inode  # a new file
    assert mode(path) == perm


def test_repair_keeps_the_mode_of_the_data_file(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "state.myo"
    make_file(path)
    break_checkpoint(path)
    os.chmod(path, 0o600)
    inode = os.stat(path).st_ino
    _, actions = repair_file(str(path))
    assert actions and os.stat(path).st_ino != inode  # rewritten
    assert mode(path) == 0o600


def test_the_compacted_file_is_never_readable_wider_than_the_data_file(
        tmp_path: Path, umask_022: None) -> None:
    """The temporary file holds the whole new data before the rename: it must not be
    created with the umask's 0644 and narrowed later."""
    from myosotis.storage.fileops import FileOps

    seen: list[int] = []

    class Watch(FileOps):
        def pwrite(self, fd: int, data: bytes, offset: int) -> None:
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
            super().pwrite(fd, data, offset)

    path = tmp_path / "state.myo"
    make_file(path)
    os.chmod(path, 0o600)
    with open_memory(path, fileops=Watch()) as mem:
        seen.clear()
        mem.compact()
    assert seen and set(seen) == {0o600}


@pytest.mark.skipif(os.geteuid() != 0, reason="setting another owner needs root")
def test_compaction_keeps_the_owner_and_group_of_the_data_file(tmp_path: Path) -> None:
    path = tmp_path / "state.myo"
    make_file(path)
    os.chown(path, 12345, 23456)
    with Memory.open(path) as mem:
        mem.compact()
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (12345, 23456)


def test_the_lock_sidecar_takes_the_mode_of_the_data_file(
        tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "state.myo"
    make_file(path)
    os.unlink(tmp_path / "state.myo.lock")
    os.chmod(path, 0o660)
    Memory.open(path).close()
    assert mode(tmp_path / "state.myo.lock") == 0o660


def test_a_new_data_file_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        Memory.open(tmp_path / "new.myo").close()
    finally:
        os.umask(old)
    assert mode(tmp_path / "new.myo") == 0o640


def test_copy_mode_copies_the_permission_bits_from_a_path_or_a_descriptor(
        tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"")
    os.chmod(src, 0o640)
    for source in (str(src), "fd"):
        dst = tmp_path / f"dst-{source == 'fd'}"
        fd = os.open(dst, os.O_RDWR | os.O_CREAT, 0o600)
        sfd = os.open(src, os.O_RDONLY)
        try:
            copy_mode(sfd if source == "fd" else str(src), fd)
        finally:
            os.close(fd)
            os.close(sfd)
        assert mode(dst) == 0o640
