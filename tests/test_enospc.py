"""Disk full, for real: a small size-limited tmpfs mount returns ENOSPC.

tests/test_faults.py injects ENOSPC through FileOps; here the kernel does it,
so short writes, the size a failed write leaves behind and the space a torn
tail or a temporary file takes are the real ones. The tests need root (or the
right to mount) and skip cleanly where the machine does not allow mounting.

The promises: a commit that fails with a full disk raises WriterFailedError,
and the handle refuses every later commit (fail-stop); every commit that
returned before is still there after a reopen; once space is freed, a new
writer cuts whatever the failed append left (FORMAT.md §10 step 3) and goes
on. Creating a file, compacting and repairing on a full disk fail with a
MyosotisError and leave the old file as it was.
"""

from __future__ import annotations

import os
import struct
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from myosotis import Memory, MyosotisError, WriterFailedError
from myosotis.engine.verify import repair_file, verify_file
from myosotis.format.constants import KIND_CHECKPOINT
from myosotis.format.header import encode_frame
from myosotis.testing import open_memory, store_of

MOUNT_SIZE = 256 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000

    def __call__(self) -> int:
        self.now += 1000
        return self.now


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a fresh 256 KiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MOUNT_SIZE},mode=0700",
                        "tmpfs", str(mnt)], check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True, timeout=20)


def fill(directory: Path, leave: int) -> Path:
    """Write a filler file so that about ``leave`` bytes stay free; return its path."""
    filler = directory / "filler"
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        f.write(bytes(max(0, free - leave)))
    return filler


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def commit_until_full(mem: Memory, payload: int) -> tuple[int, list[str]]:
    """Commit nodes of ``payload`` bytes until the disk is full; return the last
    acknowledged seq and the state hash after each acknowledged commit."""
    hashes = []
    for i in range(10_000):
        mem.create("Blob", i=i, data="x" * payload)
        try:
            c = mem.commit(f"c{i}")
        except WriterFailedError as e:
            assert "disk full" in str(e) or "No space" in str(e), e
            return store_of(mem).head_seq, hashes
        assert c is not None
        hashes.append(mem.state_hash())
    raise AssertionError("the disk never filled up")


def test_commit_on_a_full_disk_fails_stop_and_keeps_every_acknowledged_commit(
        small_disk: Path) -> None:
    path = small_disk / "data.myo"
    filler = fill(small_disk, leave=40 * 1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = Memory.open(path, clock=Clock())
        acked, hashes = commit_until_full(mem, payload=3000)
        assert acked >= 5
        staged = mem.pending
        assert staged, "the failed commit's changes stay staged"
        with pytest.raises(WriterFailedError):  # fail-stop: no second try on this handle
            mem.commit("again")
        assert store_of(mem).head_seq == acked
        mem.close()
    with Memory.open(path, readonly=True) as reader:  # reading needs no space
        assert store_of(reader).head_seq == acked
        assert reader.state_hash() == hashes[-1]
        assert [reader.at(s).state_hash() for s in range(1, acked + 1)] == hashes
    filler.unlink()
    with Memory.open(path, clock=Clock()) as mem:  # cuts what the failed append left
        assert store_of(mem).head_seq == acked
        log = store_of(mem).log  # a torn tail is cut, free space (§3) kept
        assert log.torn_bytes == 0 and os.path.getsize(path) == log.valid_end + log.free_bytes
        mem.create("After", ok=True)
        assert mem.commit("space again") is not None
    report = verify_file(str(path))
    assert report.ok, [str(f) for f in report.findings]


def test_automatic_checkpoint_on_a_full_disk_keeps_the_commit_it_follows(
        small_disk: Path) -> None:
    """§8.4: a checkpoint is written after a commit; if the disk fills then, the
    commit stays acknowledged (it was durable) and the handle fails stop."""
    path = small_disk / "data.myo"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = open_memory(path, clock=Clock(), checkpoint_floor=27_000)
        for i in range(4):  # a state of about 24 KB: the checkpoint will need as much
            mem.create("Blob", i=i, data="y" * 6000)
        mem.commit("big state")
        filler = fill(small_disk, leave=8 * 1024)
        acked = []
        for i in range(6):  # the second crosses the floor: its checkpoint finds no space
            mem.get(1).i = "s" * 1500 + str(i)
            try:
                c = mem.commit(f"small {i}")
            except WriterFailedError:
                break
            assert c is not None
            acked.append((c.seq, mem.state_hash()))
        assert store_of(mem).problems, "no checkpoint failed: the test did not fill the disk"
        mem.close()
    assert acked, "the commit before the failed checkpoint must be acknowledged"
    with Memory.open(path, readonly=True) as reader:
        assert store_of(reader).head_seq == acked[-1][0]
        assert reader.state_hash() == acked[-1][1]
    filler.unlink()
    with Memory.open(path) as mem:
        assert store_of(mem).head_seq == acked[-1][0]
        assert mem.checkpoint()


def test_creating_a_file_on_a_full_disk_fails_cleanly_and_leaves_nothing(
        small_disk: Path) -> None:
    path = small_disk / "new.myo"
    fill(small_disk, leave=0)
    with pytest.raises(MyosotisError):
        Memory.open(path)
    assert not path.exists()
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no lock sidecar


def test_compaction_on_a_full_disk_fails_cleanly_and_keeps_the_old_file(
        small_disk: Path) -> None:
    path = small_disk / "data.myo"
    with Memory.open(path, clock=Clock()) as mem:
        for i in range(6):
            mem.create("Blob", i=i, data="z" * 4000)
            mem.commit()
        before = path.read_bytes()
        head_hash = mem.state_hash()
        fill(small_disk, leave=4 * 1024)
        with pytest.raises(MyosotisError):
            mem.compact(at=3)
    assert path.read_bytes() == before
    with Memory.open(path, readonly=True) as reader:
        assert reader.state_hash() == head_hash
    assert not [p for p in small_disk.iterdir() if ".rewrite-" in p.name]


def test_compaction_on_a_full_disk_never_damages_the_old_file(small_disk: Path) -> None:
    """Whatever it raises, a compaction that runs out of space leaves the old file whole."""
    path = small_disk / "data.myo"
    with Memory.open(path, clock=Clock()) as mem:
        for i in range(6):
            mem.create("Blob", i=i, data="z" * 4000)
            mem.commit()
        before = path.read_bytes()
        head_hash = mem.state_hash()
        fill(small_disk, leave=4 * 1024)
        with pytest.raises((MyosotisError, OSError)):
            mem.compact(at=3)
    assert path.read_bytes() == before
    with Memory.open(path, readonly=True) as reader:
        assert reader.state_hash() == head_hash
        assert store_of(reader).commits.base_seq == 0


def _file_with_a_bad_checkpoint(directory: Path) -> tuple[Path, bytes, str]:
    """A file whose only problem is a checkpoint failing its hash (R80): what repair drops."""
    path = directory / "data.myo"
    with Memory.open(path, clock=Clock()) as mem:
        for i in range(5):
            mem.create("Blob", i=i, data="w" * 3000)
            mem.commit()
        mem.checkpoint()
        mem.create("Last")
        mem.commit()
        head_hash = mem.state_hash()
        store = store_of(mem)
        cp_offset = [store.log.frame_offset(j) for _, j in store.commits.checkpoints][0]
    data = bytearray(path.read_bytes())
    n = struct.unpack_from("<I", data, cp_offset)[0]
    payload = bytearray(data[cp_offset + 16:cp_offset + 16 + n])
    payload[100] ^= 0x01  # the image no longer matches its state hash (R80); CRCs made right
    data[cp_offset:cp_offset + 16 + n] = encode_frame(KIND_CHECKPOINT, bytes(payload))[:16 + n]
    path.write_bytes(bytes(data))
    assert verify_file(str(path)).bad_checkpoints == [cp_offset]
    return path, bytes(data), head_hash


def test_repair_on_a_full_disk_leaves_the_file_unchanged_and_readable(
        small_disk: Path) -> None:
    """Dropping a bad checkpoint rewrites the file; without space the old file stays."""
    path, data, head_hash = _file_with_a_bad_checkpoint(small_disk)
    fill(small_disk, leave=4 * 1024)
    with pytest.raises((MyosotisError, OSError)):
        repair_file(str(path))
    assert path.read_bytes() == data, "a failed repair changed the file"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Memory.open(path, readonly=True) as reader:
            assert reader.state_hash() == head_hash


def test_repair_on_a_full_disk_fails_with_a_myosotis_error_and_leaves_no_temporary(
        small_disk: Path) -> None:
    path, _, _ = _file_with_a_bad_checkpoint(small_disk)
    fill(small_disk, leave=4 * 1024)
    with pytest.raises(MyosotisError):
        repair_file(str(path))
    assert not [p for p in small_disk.iterdir() if ".rewrite-" in p.name]
