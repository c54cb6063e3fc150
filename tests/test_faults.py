"""Failing disks: injected EIO/ENOSPC through ``FileOps`` and a real EFBIG from
``RLIMIT_FSIZE``.

The contract under test (storage/log.py ``append``, engine/store.py ``commit``):
a write or fsync that fails raises WriterFailedError and the handle fails stop,
refusing every later write, because after a failed fsync the kernel may have
dropped dirty pages while later fsyncs succeed ("fsyncgate"). The in-memory
state is left as it was: the committed state plus the staged changes, still
staged. Only a reopen, which re-reads and re-verifies the file, tells what is
durable; it finds every commit acknowledged before the failure.

What the engine does when an *automatic* checkpoint after a commit fails
(``Store.commit``): the commit itself was already appended and synced, so it is
returned as a success; the checkpoint's WriterFailedError is swallowed, recorded
in ``store_of(mem).problems`` and emitted as a ``UserWarning``; the handle is now
failed and refuses the next commit.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from crashutil import (
    FixedClock,
    checkpoint_fields,
    dump_state,
    frame_offsets,
    read_bytes,
    run_python,
)

from myosotis import Memory, WriterFailedError
from myosotis.storage.fileops import FileOps
from myosotis.testing import open_memory, store_of

HUGE_FLOOR = 1 << 40


class FailingSync(FileOps):
    """``sync`` raises OSError(EIO) on its ``fail_at``-th call (counting from 1) only."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.syncs = 0
        self.pwrites = 0

    def sync(self, fd: int) -> None:
        self.syncs += 1
        if self.syncs == self.fail_at:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        super().sync(fd)

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self.pwrites += 1
        super().pwrite(fd, data, offset)


class NoSpace(FileOps):
    """``pwrite`` raises OSError(ENOSPC) on its ``fail_at``-th call (of frames of
    ``kind`` if given), after writing the first ``written`` bytes of the data, as a
    short write on a full disk does."""

    def __init__(self, fail_at: int, written: int = 0, kind: int | None = None) -> None:
        self.fail_at = fail_at
        self.written = written
        self.kind = kind
        self.calls = 0
        self.pwrites = 0
        self.syncs = 0

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self.pwrites += 1
        if self.kind is None or data[4] == self.kind:
            self.calls += 1
            if self.calls == self.fail_at:
                if self.written:
                    super().pwrite(fd, data[: self.written], offset)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().pwrite(fd, data, offset)

    def sync(self, fd: int) -> None:
        self.syncs += 1
        super().sync(fd)


class FailingTruncate(FileOps):
    def truncate(self, fd: int, size: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def base_file(path: Path) -> list[str]:
    """Three commits written with the real FileOps; returns their state hashes."""
    hashes = []
    with open_memory(path, clock=FixedClock(), checkpoint_floor=HUGE_FLOOR) as mem:
        a = mem.create("Agent", name="Iris", items=[])
        mem.commit(label="one")
        hashes.append(mem.state_hash())
        a.goal = "Explore ideas"
        mem.commit(label="two")
        hashes.append(mem.state_hash())
        a["items"].append(1)
        mem.commit(label="three")
        hashes.append(mem.state_hash())
    return hashes


def stage_changes(mem: Memory) -> tuple[int, dict[int, Any], str]:
    """Stage a few edits; return (pending count, node dump, state hash) with them."""
    a = mem.get(1)
    a.goal = "staged goal"
    a["items"].append("staged")
    mem.create("Note", text="staged note", about=a)
    return mem.pending, dump_state(mem), mem.state_hash()


def assert_staged_intact(mem: Memory, staged: tuple[int, dict[int, Any], str]) -> None:
    pending, nodes, h = staged
    assert mem.pending == pending
    assert dump_state(mem) == nodes
    assert mem.get(1).goal == "staged goal"
    assert mem.get(2).text == "staged note"  # the staged node got the next id
    assert mem.state_hash() == h


def assert_fail_stop(mem: Memory, ops: Any) -> None:
    """Every later write through this handle is refused, and nothing reaches the file."""
    writes = ops.pwrites
    with pytest.raises(WriterFailedError, match="reopen"):
        mem.commit(label="refused")
    with pytest.raises(WriterFailedError):
        mem.commit(label="refused again", allow_empty=True)
    with pytest.raises(WriterFailedError):
        mem.checkpoint()
    assert ops.pwrites == writes


def reopen_and_check(path: Path, hashes: list[str], head: int) -> None:
    """Reopen with the real FileOps: commits 1..len(hashes) are there, the head is
    ``head``, and a new commit works and survives another reopen."""
    with Memory.open(path) as mem:
        assert mem.head is not None and mem.head.seq == head
        for seq, h in enumerate(hashes, 1):
            assert mem.at(seq).state_hash() == h, seq
        log = store_of(mem).log  # a torn tail was cut; free space (§3) is kept
        assert log.torn_bytes == 0 and os.path.getsize(path) == log.valid_end + log.free_bytes
        mem.get(1).after = "reopened"
        c = mem.commit(label="after reopen")
        assert c is not None and c.seq == head + 1
        final = mem.state_hash()
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == head + 1
        assert mem.state_hash() == final


# ---------------------------------------------------------------------- commit


def test_eio_on_commit_sync_raises_writer_failed_and_keeps_staged_changes(
        tmp_path: Path) -> None:
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    # Opening a clean file syncs nothing. The first durable commit of a session first
    # syncs what was there (so its frame needs no FRAME_FLAG_UNSYNCED, FORMAT.md §3):
    # commit 4 is syncs 1 and 2, commit 5 is sync 3.
    ops = FailingSync(fail_at=3)
    mem = open_memory(path, fileops=ops, checkpoint_floor=HUGE_FLOOR)
    try:
        mem.get(1).goal = "four"
        assert mem.commit(label="four") is not None
        hashes.append(mem.state_hash())
        staged = stage_changes(mem)
        with pytest.raises(WriterFailedError) as ei:
            mem.commit(label="five")
        msg = str(ei.value)
        assert str(path) in msg and os.strerror(errno.EIO) in msg and "reopen" in msg
        assert isinstance(ei.value.__cause__, OSError)
        assert mem.head is not None and mem.head.seq == 4
        assert mem.at(4).state_hash() == hashes[3]
        assert_staged_intact(mem, staged)
        assert_fail_stop(mem, ops)
        assert_staged_intact(mem, staged)  # refused commits drop nothing either
    finally:
        mem.close()
    # The frame of commit 5 was written before its fsync failed, so a reopen that
    # reads the page cache finds it whole (see the "maybe durable" test below).
    reopen_and_check(path, hashes, head=5)


@pytest.mark.parametrize("written", [0, 20, 100], ids=["nothing", "part-header", "part-payload"])
def test_enospc_on_commit_write_raises_writer_failed_and_keeps_staged_changes(
        tmp_path: Path, written: int) -> None:
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    ops = NoSpace(fail_at=2, written=written)
    mem = open_memory(path, fileops=ops, checkpoint_floor=HUGE_FLOOR)
    try:
        mem.get(1).goal = "four"
        mem.commit(label="four")
        hashes.append(mem.state_hash())
        staged = stage_changes(mem)
        with pytest.raises(WriterFailedError, match="disk full") as ei:
            mem.commit(label="five")
        assert os.strerror(errno.ENOSPC) in str(ei.value)
        assert mem.head is not None and mem.head.seq == 4
        assert_staged_intact(mem, staged)
        assert_fail_stop(mem, ops)
        end = store_of(mem).log.valid_end
    finally:
        mem.close()
    # the short write went into the free space (§3), and the writer took its bytes
    # back: free space again (a partial frame need not look torn, R28)
    data = read_bytes(path)
    assert len(data) > end and not any(data[end:])
    with Memory.open(path, readonly=True) as ro:
        assert ro.head is not None and ro.head.seq == 4
        log = store_of(ro).log
        assert (log.torn_bytes, log.free_bytes) == (0, len(data) - end)
    reopen_and_check(path, hashes, head=4)


@pytest.mark.parametrize("written", [0, 40], ids=["nothing-written", "half-written"])
def test_commit_whose_write_failed_is_absent_after_reopen(tmp_path: Path, written: int) -> None:
    """A failed pwrite says "The change was not committed": a partial frame is a torn
    tail that the next writer cuts, so a reopen must not show the change (else a
    caller that retries it would apply it twice)."""
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    with open_memory(path, fileops=NoSpace(fail_at=1, written=written)) as mem:
        mem.get(1).goal = "four"
        with pytest.raises(WriterFailedError, match="not committed"):
            mem.commit(label="four")
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == 3
        assert mem.state_hash() == hashes[2]
    reopen_and_check(path, hashes, head=3)


def test_commit_whose_fsync_failed_is_reported_as_maybe_durable(tmp_path: Path) -> None:
    """When only the fsync fails the frame is already whole in the file (the engine
    does not cut it: a reader may have it mapped). The error must not claim the
    change was not committed; it says it may or may not be durable and to check
    mem.head after a reopen. The reopen then shows either the old head or the new
    commit with exactly the staged state, nothing else."""
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    # sync 1 makes the bytes before commit 4 durable (§3 flags); sync 2 is its own
    with open_memory(path, fileops=FailingSync(fail_at=2)) as mem:
        mem.get(1).goal = "four"
        staged_hash = mem.state_hash()
        with pytest.raises(WriterFailedError) as ei:
            mem.commit(label="four")
        msg = str(ei.value)
        assert "not committed" not in msg
        assert "may or may not be durable" in msg and "mem.head" in msg
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq in (3, 4)
        assert mem.state_hash() == (hashes[2] if mem.head.seq == 3 else staged_hash)
        # what this engine does on Linux: the page cache still holds the frame
        assert mem.head.seq == 4 and mem.head.label == "four"


@pytest.mark.parametrize("written", [0, 1000], ids=["nothing", "some-zeros"])
def test_enospc_while_reserving_free_space_still_commits(tmp_path: Path, written: int) -> None:
    """A durable commit that does not fit in the free space writes its frame, then new
    free space (LogFile.append). When only the second write fails, the frame is whole
    and the commit goes on: durable, acknowledged, and the handle keeps working."""
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    size = os.path.getsize(path)
    ops = NoSpace(fail_at=2, written=written)
    with open_memory(path, fileops=ops, checkpoint_floor=HUGE_FLOOR) as mem:
        end = store_of(mem).log.valid_end
        mem.get(1).blob = "x" * (size - end)  # cannot fit in the free space
        c = mem.commit(label="four")
        # syncs: what was there before the session's first durable frame, then the frame
        assert c is not None and c.seq == 4 and ops.pwrites == 2 and ops.syncs == 2
        hashes.append(mem.state_hash())
        log = store_of(mem).log
        assert log.valid_end > size and log.free_bytes == 0 and not log.failed
        mem.get(1).goal = "five"
        assert mem.commit(label="five") is not None
        hashes.append(mem.state_hash())
    data = read_bytes(path)
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == 5
        assert store_of(mem).log.torn_bytes == 0
        assert not any(data[store_of(mem).log.valid_end:])
    reopen_and_check(path, hashes, head=5)


class ShortOfTrailingZeros(FileOps):
    """The first frame write stores all of the frame but its trailing zero bytes (its
    padding), then fails with ENOSPC, as a short write on a full disk does."""

    def __init__(self) -> None:
        self.armed = True

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        if self.armed and data[4] == 1:
            self.armed = False
            kept = bytes(data).rstrip(b"\0")
            assert len(kept) < len(data), "the frame must end with padding"
            super().pwrite(fd, kept, offset)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().pwrite(fd, data, offset)


def test_short_write_over_free_space_that_completes_the_frame_is_maybe_committed(
        tmp_path: Path) -> None:
    """Over free space (FORMAT.md §3) a short write can leave the frame whole: the bytes
    it did not write were zeros already. The error must not say "not committed" (a
    retry would apply the change twice); it says "may or may not", like a failed
    fsync, and the reopen shows the commit."""
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    with open_memory(path, fileops=ShortOfTrailingZeros(), checkpoint_floor=HUGE_FLOOR) as mem:
        assert store_of(mem).log.free_bytes > 200
        mem.get(1).goal = "four"  # a payload whose length is not a multiple of 8
        staged_hash = mem.state_hash()
        with pytest.raises(WriterFailedError) as ei:
            mem.commit(label="four")
        msg = str(ei.value)
        assert "not committed" not in msg and "may or may not be durable" in msg
        assert mem.head is not None and mem.head.seq == 3
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == 4 and mem.head.label == "four"
        assert mem.state_hash() == staged_hash
    reopen_and_check(path, [*hashes, staged_hash], head=4)


# ---------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("fault", ["sync-eio", "enospc"])
def test_failed_explicit_checkpoint_raises_writer_failed_and_keeps_the_state(
        tmp_path: Path, fault: str) -> None:
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    ops: FailingSync | NoSpace = FailingSync(fail_at=1) if fault == "sync-eio" else \
        NoSpace(fail_at=1, written=64)
    mem = open_memory(path, fileops=ops, checkpoint_floor=HUGE_FLOOR)
    try:
        before = dump_state(mem)
        with pytest.raises(WriterFailedError):
            mem.checkpoint()
        assert mem.head is not None and mem.head.seq == 3
        assert mem.state_hash() == hashes[2]
        assert dump_state(mem) == before
        assert mem.at(2).state_hash() == hashes[1]
        staged = stage_changes(mem)
        assert_fail_stop(mem, ops)
        assert_staged_intact(mem, staged)
    finally:
        mem.close()
    reopen_and_check(path, hashes, head=3)


@pytest.mark.parametrize("fault", ["sync-eio", "enospc"])
def test_failed_automatic_checkpoint_keeps_the_commit_and_fails_stop(
        tmp_path: Path, fault: str) -> None:
    """Store.commit: the commit is durable before the automatic checkpoint starts, so
    it is returned (and stays); the checkpoint failure is a warning plus an entry in
    ``store.problems``, and the handle refuses the next commit."""
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    # commit 4 is big enough to cross the floor: its syncs are 1 (what was there
    # before, §3 flags) and 2, the checkpoint's frame is the next pwrite and its sync
    # is sync 3
    ops: FailingSync | NoSpace = FailingSync(fail_at=3) if fault == "sync-eio" else \
        NoSpace(fail_at=1, written=100, kind=2)
    mem = open_memory(path, fileops=ops, checkpoint_floor=1000)
    try:
        mem.get(1).blob = "b" * 2000
        with pytest.warns(UserWarning, match="automatic checkpoint after commit 4 failed"):
            c = mem.commit(label="four")
        assert c is not None and c.seq == 4
        hashes.append(mem.state_hash())
        assert mem.pending == 0
        assert any("automatic checkpoint failed" in p for p in store_of(mem).problems)
        assert mem.get(1).blob == "b" * 2000
        staged = stage_changes(mem)
        assert_fail_stop(mem, ops)
        assert_staged_intact(mem, staged)
    finally:
        mem.close()
    reopen_and_check(path, hashes, head=4)
    kinds = [f.kind for f in frame_offsets(path)]
    # with EIO the checkpoint frame was written whole and is usable; with ENOSPC it
    # was a torn tail and the reopen cut it
    assert kinds.count(2) == (1 if fault == "sync-eio" else 0)


def test_explicit_checkpoint_keeps_staged_changes(tmp_path: Path) -> None:
    """Regression: mem.checkpoint() writes the committed state and used to drop the
    staged changes with it. They stay staged and commit normally afterwards."""
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    with open_memory(path, checkpoint_floor=HUGE_FLOOR) as mem:
        staged = stage_changes(mem)
        assert mem.checkpoint()
        assert_staged_intact(mem, staged)
        assert mem.at(3).state_hash() == hashes[2]
        c = mem.commit(label="after checkpoint")
        assert c is not None and c.seq == 4 and mem.pending == 0
        assert mem.state_hash() == staged[2]
        assert dump_state(mem) == staged[1]
    data = read_bytes(path)
    frames = frame_offsets(path)
    assert [f.kind for f in frames] == [1, 1, 1, 2, 1]
    assert checkpoint_fields(data, frames[3])[2].hex() == hashes[2]  # the committed state
    with Memory.open(path, readonly=True) as mem:
        assert mem.state_hash() == staged[2]
        assert dump_state(mem) == staged[1]


# ---------------------------------------------------------------------- other paths


def test_eio_on_explicit_sync_with_durability_none_fails_stop(tmp_path: Path) -> None:
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    ops = FailingSync(fail_at=2)
    mem = open_memory(path, fileops=ops, durability="none")
    try:
        mem.get(1).goal = "four"
        # No fsync of the commit with durability "none"; the one sync moves the file
        # to format version 2 before its first FRAME_FLAG_UNSYNCED frame (§3, §12).
        mem.commit(label="four")
        assert ops.syncs == 1 and read_bytes(path)[8] == 2
        hashes.append(mem.state_hash())
        with pytest.raises(WriterFailedError, match="fsync failed"):
            mem.sync()
        staged = stage_changes(mem)
        assert_fail_stop(mem, ops)
        assert_staged_intact(mem, staged)
    finally:
        mem.close()
    reopen_and_check(path, hashes, head=4)


def test_sync_after_a_failed_write_raises_instead_of_reporting_success(tmp_path: Path) -> None:
    """Regression: mem.sync() on a failed handle used to return silently, claiming the
    commits written with durability "none" were durable without any fsync."""
    path = tmp_path / "f.myo"
    base_file(path)
    ops = NoSpace(fail_at=3)  # pwrites: the version-2 header (§12), commit 4, commit 5
    with open_memory(path, fileops=ops, durability="none") as mem:
        mem.get(1).goal = "four"
        mem.commit(label="four")  # written, not yet synced
        mem.get(1).goal = "five"
        with pytest.raises(WriterFailedError):
            mem.commit(label="five")
        syncs = ops.syncs
        with pytest.raises(WriterFailedError):
            mem.sync()  # must not claim commit 4 is durable without an fsync
        assert ops.syncs == syncs


def test_failure_to_cut_a_torn_tail_refuses_the_open_and_changes_nothing(
        tmp_path: Path) -> None:
    path = tmp_path / "f.myo"
    hashes = base_file(path)
    with open(path, "ab") as f:
        f.write(b"\x07" * 13)  # a torn tail
    before = read_bytes(path)
    with pytest.raises(WriterFailedError, match="torn tail"):
        open_memory(path, fileops=FailingTruncate())
    assert read_bytes(path) == before
    with open_memory(path, fileops=FailingTruncate(), readonly=True) as mem:  # readers don't cut
        assert mem.state_hash() == hashes[2]
    reopen_and_check(path, hashes, head=3)


# ---------------------------------------------------------------------- RLIMIT_FSIZE

FSIZE_CHILD = r'''
import json, resource, signal, sys
from myosotis import Memory, WriterFailedError
from myosotis.testing import open_memory
path, limit, floor = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the write fails with EFBIG instead
mem = open_memory(path, checkpoint_floor=floor)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
node = mem.create("Log", n=0)
for i in range(1, 100000):
    node["n"] = i
    node[f"e{i % 7}"] = "e" * 200
    try:
        c = mem.commit(label=f"c{i}")
    except WriterFailedError as e:
        print("FAILED", json.dumps({"msg": str(e), "pending": mem.pending}), flush=True)
        break
    print(f"ACK {c.seq} {mem.state_hash()}", flush=True)
try:
    mem.commit(label="after failure", allow_empty=True)
    print("NO-FAIL-STOP", flush=True)
except WriterFailedError:
    print("FAIL-STOP", flush=True)
mem.close()
print("EXIT", flush=True)
'''


@pytest.mark.parametrize("floor", [HUGE_FLOOR, 2048], ids=["no-checkpoints", "checkpoints"])
def test_file_size_limit_fails_the_commit_cleanly_and_loses_nothing_acknowledged(
        tmp_path: Path, floor: int) -> None:
    """A real EFBIG from RLIMIT_FSIZE (a short write, then the error): the failing
    commit raises WriterFailedError, the child exits normally, and every commit it
    acknowledged is in the file."""
    path = tmp_path / "limited.myo"
    limit = 20_003  # not a multiple of 8: the last frame attempt is a short write
    out = run_python(FSIZE_CHILD, str(path), str(limit), str(floor)).stdout.splitlines()
    assert out[-3].startswith("FAILED "), out[-5:]
    assert out[-2:] == ["FAIL-STOP", "EXIT"]
    failed = json.loads(out[-3][len("FAILED "):])
    assert os.strerror(errno.EFBIG) in failed["msg"]
    acked = {int(s): h for _, s, h in (line.split() for line in out[:-3])}
    assert sorted(acked) == list(range(1, len(acked) + 1)) and len(acked) > 10
    if floor == HUGE_FLOOR:
        assert failed["pending"] == 2  # the failing commit's changes stayed staged
    assert os.path.getsize(path) <= limit
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == max(acked)
        for seq, h in acked.items():
            assert mem.at(seq).state_hash() == h, seq
    reopen_and_check(path, [acked[s] for s in sorted(acked)], head=max(acked))
