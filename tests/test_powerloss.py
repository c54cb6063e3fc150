"""Simulated power loss at every I/O call of a small workload (FORMAT.md §10).

A :class:`PowerLossFS` is a ``FileOps`` that performs every call for real and
also keeps, per file, what a power cut would leave: the content as of the
file's last ``sync`` (fdatasync makes the data *and* the size durable), plus
the writes and truncations made since; and for the directory, the entries as
of the last ``sync_dir`` plus the creates, links, renames and unlinks made
since. At the crash point chosen by the test (each call of the workload, in
turn) it stops the workload and builds the disk image a power cut could leave,
as SQLite's crash-test VFS and RocksDB's FaultInjectionTestFS do: the durable
content plus a random torn piece of what was not synced (dropped, kept,
cut in the middle of a write, or kept sector by sector with some sectors old
or zero; a write is torn only at the file's 512-byte sector boundaries, as a
disk tears it: FORMAT.md §10 step 5, R28), and a prefix of the unsynced
directory operations (journaled file systems apply metadata in order).

Each image is then opened with the real FileOps and must show:
- every commit that ``commit()`` returned (durability "full") and no commit
  that was never attempted, each with the id and state hash of the crash-free
  run (a prefix of the same history);
- a file that opens, passes ``verify_file`` without errors, and takes a new commit;
- for compaction and file creation: the old file or the new one, whole.

``test_simulator_catches_a_writer_that_acknowledges_before_fsync`` proves the
test has teeth: a writer whose fsync does nothing fails it.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from crashutil import frames_of

from myosotis import CorruptFileError, Memory, RecoveredTailWarning
from myosotis.engine.verify import verify_file
from myosotis.storage.fileops import FileOps
from myosotis.testing import open_memory, store_of

SECTOR = 512
MODES = ("lose", "keep", "torn", "sectors")


class PowerCut(BaseException):
    """The power went out: raised at the crash point, past every ``except Exception``."""


@dataclass
class Inode:
    """One file: what survives a power cut, and what was done to it since its last sync."""

    durable: bytes = b""
    pending: list[tuple[str, int, bytes]] = field(default_factory=list)  # (op, offset/size, data)


class PowerLossFS(FileOps):
    """Real file operations in one directory, recorded for a simulated power cut."""

    def __init__(self, directory: Path, crash_at: int | None = None) -> None:
        self.dir = directory
        self.crash_at = crash_at
        self.calls = 0
        self.dead = False
        self.names: dict[str, Inode] = {}
        for p in directory.iterdir():
            if p.is_file() and not p.name.endswith(".lock"):
                self.names[p.name] = Inode(p.read_bytes())
        self.durable_names = dict(self.names)
        self.dir_pending: list[tuple[str, str, str, Inode | None]] = []  # (op, src, dst, inode)
        self.fds: dict[int, Inode] = {}

    def _tick(self, what: str) -> None:
        if self.dead:
            raise PowerCut(f"after the power cut: {what}")
        if self.crash_at is not None and self.calls == self.crash_at:
            self.dead = True
            raise PowerCut(f"power cut before call {self.calls}: {what}")
        self.calls += 1

    def _name(self, path: str) -> str:
        assert Path(path).parent.resolve() == self.dir.resolve(), path
        return Path(path).name

    # ---------------------------------------------------------------- FileOps

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        self._tick(f"open {Path(path).name}")
        name = self._name(path)
        fd = super().open(path, flags, mode)
        inode = self.names.get(name)
        if inode is None:
            assert flags & os.O_CREAT
            inode = self.names[name] = Inode()
            self.dir_pending.append(("set", "", name, inode))
        if flags & os.O_TRUNC:
            inode.pending.append(("trunc", 0, b""))
        self.fds[fd] = inode
        return fd

    def close(self, fd: int) -> None:
        if not self.dead:
            self._tick("close")
        self.fds.pop(fd, None)
        super().close(fd)

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self._tick(f"pwrite {len(data)}@{offset}")
        super().pwrite(fd, data, offset)
        self.fds[fd].pending.append(("write", offset, bytes(data)))

    def sync(self, fd: int) -> None:
        self._tick("sync")
        inode = self.fds[fd]
        inode.durable = os.pread(fd, os.fstat(fd).st_size, 0)
        inode.pending.clear()

    def truncate(self, fd: int, size: int) -> None:
        self._tick(f"truncate {size}")
        super().truncate(fd, size)
        self.fds[fd].pending.append(("trunc", size, b""))

    def size(self, fd: int) -> int:
        self._tick("size")
        return super().size(fd)

    def sync_dir(self, path: str) -> None:
        self._tick("sync_dir")
        self.durable_names = dict(self.names)
        self.dir_pending.clear()

    def link(self, src: str, dst: str) -> None:
        self._tick(f"link {Path(dst).name}")
        super().link(src, dst)
        inode = self.names[self._name(src)]
        self.names[self._name(dst)] = inode
        self.dir_pending.append(("set", "", self._name(dst), inode))

    def replace(self, src: str, dst: str) -> None:
        self._tick(f"replace {Path(dst).name}")
        super().replace(src, dst)
        inode = self.names.pop(self._name(src))
        self.names[self._name(dst)] = inode
        self.dir_pending.append(("rename", self._name(src), self._name(dst), inode))

    def unlink(self, path: str) -> None:
        self._tick(f"unlink {Path(path).name}")
        super().unlink(path)
        del self.names[self._name(path)]
        self.dir_pending.append(("del", "", self._name(path), None))

    # ---------------------------------------------------------------- the crash

    def image(self, out: Path, mode: str, rng: random.Random) -> None:
        """Write into ``out`` what the disk could hold after a power cut now."""
        names = dict(self.durable_names)
        k = {"lose": 0, "keep": len(self.dir_pending)}.get(
            mode, rng.randint(0, len(self.dir_pending)))
        for op, src, dst, inode in self.dir_pending[:k]:
            if op == "set":
                assert inode is not None
                names[dst] = inode
            elif op == "rename":
                assert inode is not None
                names.pop(src, None)
                names[dst] = inode
            else:
                names.pop(dst, None)
        out.mkdir()
        for name, inode in names.items():
            (out / name).write_bytes(torn_content(inode, mode, rng))


def sector_pieces(at: int, data: bytes) -> list[tuple[int, bytes]]:
    """``data`` written at file offset ``at``, split at the file's 512-byte sector
    boundaries: what a power cut leaves written or not, each whole (FORMAT.md §10
    step 5, R28: a disk writes a sector whole or not at all)."""
    out = []
    s = 0
    while s < len(data):
        e = min(len(data), (at + s) // SECTOR * SECTOR + SECTOR - at)
        out.append((s, data[s:e]))
        s = e
    return out


def torn_content(inode: Inode, mode: str, rng: random.Random) -> bytes:
    """The durable content plus a piece of the unsynced operations, chosen by ``mode``."""
    content = bytearray(inode.durable)
    ops = inode.pending
    if mode == "lose" or not ops:
        return bytes(content)
    cut = len(ops) if mode in ("keep", "sectors") else rng.randrange(len(ops))
    for i, (op, at, data) in enumerate(ops):
        if i > cut:
            break
        if op == "trunc":
            if i == cut and mode == "torn":
                break  # the truncation had not reached the disk
            del content[at:]
            content.extend(bytes(at - len(content)))
            continue
        pieces = list(sector_pieces(at, data))
        if i == cut and mode == "torn":  # a write cut short, at a sector boundary
            pieces = pieces[:rng.randrange(len(pieces) + 1)]
        for s, piece in pieces:
            if mode == "sectors":
                fate = rng.randrange(3)
                if fate == 1:
                    continue  # this sector never made it (old content, or a hole)
                if fate == 2:
                    # The size made durable before the data: zeros, past the old end
                    # only (an overwrite leaves the sector old or new, never zero).
                    old_end = max(0, len(inode.durable) - (at + s))
                    piece = piece[:old_end] + bytes(max(0, len(piece) - old_end))
                    if old_end:
                        piece = bytes(content[at + s:at + s + old_end]) + piece[old_end:]
            start = at + s
            if start > len(content):
                content.extend(bytes(start - len(content)))
            content[start:start + len(piece)] = piece
    return bytes(content)


# ---------------------------------------------------------------------- workloads


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000

    def __call__(self) -> int:
        self.now += 1000
        return self.now


@dataclass
class Progress:
    """What the workload got done before the power went out."""

    created: bool = False  # Memory.open returned: the file exists durably
    acked: int = 0  # highest seq whose commit() returned
    attempted: int = 0  # highest seq whose commit() was called
    compacted_at: int | None = None  # base of a compaction that returned


Workload = Callable[[str, FileOps, Progress], None]


def _commit(mem: Memory, progress: Progress, label: str) -> None:
    progress.attempted = store_of(mem).head_seq + 1
    c = mem.commit(label)
    assert c is not None
    progress.acked = c.seq


def full_workload(path: str, fs: FileOps, progress: Progress) -> None:
    """Create, commit, checkpoint, compact, reopen: every durable step of the engine."""
    mem = open_memory(path, fileops=fs, clock=Clock(), checkpoint_floor=200)
    progress.created = True
    try:
        a = mem.create("Agent", name="Iris", items=[1, 2])
        _commit(mem, progress, "one")
        a.items.append("x" * 300)  # a payload that spans sectors
        mem.create("Tool", owner=a)
        _commit(mem, progress, "two")  # crosses the floor: an automatic checkpoint
        a.goal = "remember"
        _commit(mem, progress, "three")
        mem.compact(at=2)
        progress.compacted_at = 2
        del a.goal
        _commit(mem, progress, "four")
    finally:
        mem.close()
    mem = open_memory(path, fileops=fs, clock=Clock())
    try:
        mem.get(1).name = "Iris II"
        _commit(mem, progress, "five")
    finally:
        mem.close()


def recovery_workload(path: str, fs: FileOps, progress: Progress) -> None:
    """A writer that finds a torn tail: it cuts it (truncate, sync) and appends."""
    progress.created = True
    progress.acked = progress.attempted = 2
    mem = open_memory(path, fileops=fs, clock=Clock())
    try:
        mem.create("After", n=3)
        _commit(mem, progress, "after the cut")
    finally:
        mem.close()


def _run(workload: Workload, directory: Path, fs: FileOps, progress: Progress) -> bool:
    """Run ``workload`` until it ends or the power is cut; True if it was cut."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a failed automatic checkpoint warns
        try:
            workload(str(directory / "data.myo"), fs, progress)
        except PowerCut:
            return True
    return False


@dataclass
class Expected:
    """The crash-free run: commit id and state hash after each seq, and I/O call count."""

    ids: dict[int, str]
    hashes: dict[int, str]
    calls: int
    final_seq: int


def expected_run(workload: Workload, directory: Path,
                 prepare: Callable[[Path], None] | None = None) -> Expected:
    directory.mkdir()
    if prepare is not None:
        prepare(directory)
    fs = PowerLossFS(directory)
    progress = Progress()
    assert not _run(workload, directory, fs, progress)
    ids, hashes = {}, {}
    with Memory.open(directory / "data.myo", readonly=True) as mem:
        base = store_of(mem).commits.base_seq
        for c in mem.history():
            ids[c.seq] = c.id
            hashes[c.seq] = mem.at(c.seq).state_hash()
        final = store_of(mem).head_seq
    if base:  # the compaction folded the first commits: take them from an uncompacted run
        assert prepare is None
        early = directory.parent / (directory.name + "-early")
        early.mkdir()
        with open_memory(early / "data.myo", clock=Clock(), checkpoint_floor=200) as mem:
            a = mem.create("Agent", name="Iris", items=[1, 2])
            mem.commit("one")
            a.items.append("x" * 300)
            mem.create("Tool", owner=a)
            mem.commit("two")
            for c in mem.history():
                ids[c.seq] = c.id
                hashes[c.seq] = mem.at(c.seq).state_hash()
    return Expected(ids, hashes, fs.calls, final)


def check_image(image: Path, progress: Progress, expected: Expected, what: str) -> None:
    """The promises of the module docstring for one crash image."""
    path = image / "data.myo"
    if not path.exists():
        assert not progress.created, f"{what}: the file vanished after its creation returned"
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Memory.open(path, readonly=True) as mem:
            head = store_of(mem).head_seq
            base = store_of(mem).commits.base_seq
            assert progress.acked <= head <= max(progress.attempted, progress.acked), \
                f"{what}: head {head}, acknowledged {progress.acked}, attempted " \
                f"{progress.attempted}"
            assert base in (0, 2), f"{what}: base {base}: neither the old file nor the new"
            for c in mem.history():
                assert c.id == expected.ids[c.seq], f"{what}: commit {c.seq} differs"
            if head:
                assert mem.state_hash() == expected.hashes[head], f"{what}: state at {head}"
            else:
                assert len(mem) == 0
        report = verify_file(str(path))
        assert not report.errors, f"{what}: {[str(f) for f in report.errors]}"
        with Memory.open(path, clock=Clock()) as mem:
            mem.create("Survivor")
            mem.commit()
            assert store_of(mem).head_seq == head + 1


def crash_everywhere(tmp_path: Path, workload: Workload, seed: int,
                     prepare: Callable[[Path], None] | None = None) -> int:
    """Cut the power before each I/O call of ``workload`` in turn; check every image.

    Returns the number of images checked.
    """
    expected = expected_run(workload, tmp_path / "expected", prepare)
    assert expected.calls >= 6, expected.calls
    rng = random.Random(seed)
    checked = 0
    for k in range(expected.calls):
        run_dir = tmp_path / f"run{k}"
        run_dir.mkdir()
        if prepare is not None:
            prepare(run_dir)
        fs = PowerLossFS(run_dir, crash_at=k)
        progress = Progress()
        assert _run(workload, run_dir, fs, progress), f"call {k} was never reached"
        for mode in MODES:
            image = tmp_path / f"img{k}-{mode}"
            fs.image(image, mode, rng)
            check_image(image, progress, expected, f"crash before call {k} ({mode})")
            checked += 1
    return checked


# ---------------------------------------------------------------------- tests


def test_every_acknowledged_commit_survives_a_power_cut_at_any_call(tmp_path: Path) -> None:
    """Creation, commits, an automatic checkpoint, compaction and a reopen, cut at each call.

    Compaction cut at any step leaves the old file (base 0) or the new one
    (genesis at commit 2), whole: ``check_image`` accepts only those two bases
    and requires ``verify_file`` to find no error in either.
    """
    checked = crash_everywhere(tmp_path, full_workload, seed=1)
    assert checked >= 4 * 30


def _file_with_torn_tail(directory: Path) -> None:
    with Memory.open(directory / "data.myo", clock=Clock()) as mem:
        mem.create("Agent", name="Iris")
        mem.commit("one")
        mem.create("Agent", name="Ada")
        mem.commit("two")
    with open(directory / "data.myo", "ab") as f:
        f.write(b"\x40\x00\x00\x00\x01\x00\x00\x00" + bytes(20))  # a frame cut short (§10)


def test_power_cut_while_cutting_a_torn_tail_loses_nothing(tmp_path: Path) -> None:
    """§10 step 3: the writer truncates the torn tail and syncs before appending;
    a cut at any point of that, or of the commit after it, keeps commits 1 and 2."""
    checked = crash_everywhere(tmp_path, recovery_workload, seed=2, prepare=_file_with_torn_tail)
    assert checked >= 4 * 5


def none_workload(commits: int, pad: int, synced_after: int | None) -> Workload:
    """``commits`` commits with durability "none" (node i padded to ``pad``·i bytes),
    with one ``sync()`` after commit ``synced_after``, which makes it and those before
    it acknowledged."""

    def workload(path: str, fs: FileOps, progress: Progress) -> None:
        mem = open_memory(path, fileops=fs, clock=Clock(), durability="none")
        progress.created = True
        try:
            for i in range(commits):
                mem.create("N", i=i, pad="p" * pad * i)
                progress.attempted = i + 1
                mem.commit()
                if i + 1 == synced_after:
                    mem.sync()
                    progress.acked = synced_after
        finally:
            mem.close()

    return workload


def cut_everywhere_in_every_mode(tmp_path: Path, workload: Workload, seed: int,
                                 what: str) -> None:
    """A power cut before each I/O call of ``workload``, each image built with writeback
    in order ("lose", "keep", "torn") and out of order ("sectors", R29)."""
    expected = expected_run(workload, tmp_path / "expected")
    rng = random.Random(seed)
    for k in range(expected.calls):
        run_dir = tmp_path / f"run{k}"
        run_dir.mkdir()
        fs = PowerLossFS(run_dir, crash_at=k)
        progress = Progress()
        assert _run(workload, run_dir, fs, progress)
        for mode in MODES:
            image = tmp_path / f"img{k}-{mode}"
            fs.image(image, mode, rng)
            check_image(image, progress, expected, f"{what}, call {k} ({mode})")


def test_power_cut_with_durability_none_leaves_a_prefix_of_the_history(tmp_path: Path) -> None:
    """Without fsync, a cut may lose the newest commits but never corrupts older ones:
    the file opens to some commit of the crash-free history (nothing is promised)."""
    cut_everywhere_in_every_mode(tmp_path, none_workload(4, 200, None), 3, "durability none")


def _none_then_reordered(path: Path, sync_after_third: bool) -> tuple[list[str], int]:
    """Commits 1-2, ``sync()``, commit 3 (600 bytes), [``sync()``], commit 4; then commit
    3's bytes zeroed as if its sectors never reached the disk while commit 4's did.
    Returns the state hashes after commits 1-4 and commit 3's offset."""
    hashes = []
    with Memory.open(path, clock=Clock(), durability="none") as mem:
        for i in range(2):
            mem.create("N", i=i)
            mem.commit()
            hashes.append(mem.state_hash())
        mem.sync()
        synced = path.stat().st_size
        mem.create("N", i=2, pad="p" * 600)
        mem.commit()
        hashes.append(mem.state_hash())
        third_end = path.stat().st_size
        if sync_after_third:
            mem.sync()
        mem.create("N", i=3)
        mem.commit()
        hashes.append(mem.state_hash())
    data = bytearray(path.read_bytes())
    assert data[8] == 2  # frames after unsynced ones are flagged: format version 2 (§12)
    data[synced:third_end] = bytes(third_end - synced)
    path.write_bytes(bytes(data))
    return hashes, synced


def test_power_cut_with_durability_none_and_reordered_writeback_keeps_synced_commits(
        tmp_path: Path) -> None:
    """Commits 1-2 synced with ``sync()``; 3 and 4 unsynced; the sectors of commit 3
    never reach the disk but commit 4's do. Commit 4 carries FRAME_FLAG_UNSYNCED, so
    the hole and everything after it are a torn tail (§10 step 4, R29): the file
    opens at commit 2, fsck warns, and a writer cuts the tail (keeping its bytes)."""
    path = tmp_path / "data.myo"
    hashes, synced = _none_then_reordered(path, sync_after_third=False)
    with Memory.open(path, readonly=True) as mem:
        assert store_of(mem).head_seq == 2 and mem.state_hash() == hashes[1]
    assert [f.code for f in verify_file(str(path)).findings] == ["torn-tail"]
    with pytest.warns(RecoveredTailWarning):
        writer = Memory.open(path, clock=Clock())
    with writer as mem:
        assert store_of(mem).head_seq == 2 and path.stat().st_size == synced
        mem.create("N", i=9)
        mem.commit()
    assert verify_file(str(path)).ok


def test_reordered_writeback_before_a_sync_is_corruption_not_a_torn_tail(
        tmp_path: Path) -> None:
    """The same hole, but ``sync()`` ran after commit 3: commit 4 has no
    FRAME_FLAG_UNSYNCED, it proves commit 3 was durable, so its hole is damage
    (§10 step 4): refused, never dropped."""
    path = tmp_path / "data.myo"
    _, synced = _none_then_reordered(path, sync_after_third=True)
    with pytest.raises(CorruptFileError) as ei:
        Memory.open(path, readonly=True)
    assert ei.value.offset == synced


def test_power_cut_at_any_call_with_durability_none_keeps_every_synced_commit(
        tmp_path: Path) -> None:
    """Commits 1-2 made durable by ``sync()``, then commits 3-5 without: a power cut at
    any call, with writeback in order or not (sector by sector), keeps commits 1-2
    (and opens to some commit of the crash-free history)."""
    cut_everywhere_in_every_mode(tmp_path, none_workload(5, 300, 2), 5,
                                 "synced then none")


class LyingFS(PowerLossFS):
    """A disk (or a writer) whose fsync returns without making anything durable."""

    def sync(self, fd: int) -> None:
        self._tick("sync (ignored)")


def test_simulator_catches_a_writer_that_acknowledges_before_fsync(tmp_path: Path) -> None:
    """The check has teeth: with fsync doing nothing, some power cut loses an
    acknowledged commit (or the file itself), and check_image says so."""
    expected = expected_run(full_workload, tmp_path / "expected")
    caught = 0
    for k in range(0, expected.calls, 3):
        run_dir = tmp_path / f"run{k}"
        run_dir.mkdir()
        fs = LyingFS(run_dir, crash_at=k)
        progress = Progress()
        _run(full_workload, run_dir, fs, progress)
        image = tmp_path / f"img{k}"
        fs.image(image, "lose", random.Random(k))
        try:
            check_image(image, progress, expected, f"lying fsync, call {k}")
        except AssertionError:
            caught += 1
        except Exception:  # an unreadable image is caught too
            caught += 1
    assert caught >= expected.calls // 6


@pytest.mark.parametrize("mode", MODES)
def test_torn_content_model(mode: str) -> None:
    """The image builder itself: durable bytes always survive; nothing unsynced is invented."""
    rng = random.Random(4)
    inode = Inode(b"A" * 1000, [("write", 1000, b"B" * 1500), ("trunc", 1200, b""),
                                ("write", 1200, b"C" * 10)])
    for _ in range(50):
        got = torn_content(inode, mode, rng)
        assert got[:1000] == b"A" * 1000
        assert set(got[1000:]) <= {ord("B"), ord("C"), 0}
        if mode == "lose":
            assert got == b"A" * 1000
        if mode == "keep":
            assert got == b"A" * 1000 + b"B" * 200 + b"C" * 10


def test_damage_before_an_unflagged_frame_whose_payload_fails_is_still_corruption(
        tmp_path: Path) -> None:
    """R29 looks at every frame header after the damage, not only at the frames a walk
    accepts: commit A synced, then B (no UNSYNCED flag: it proves A durable) and C
    (flagged). A's header zero and one byte of B's payload flipped: the search after
    A skips B (its payload fails) and finds C, flagged. A was durable: corruption,
    never a torn tail (found by review)."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "formatspec"))
    import reference_reader

    path = tmp_path / "data.myo"
    with Memory.open(path, clock=Clock()) as mem:
        mem.create("N", i=0)
        mem.commit()
    with Memory.open(path, clock=Clock(), durability="none") as mem:
        for i in (1, 2, 3):  # A, B, C
            mem.create("N", i=i)
            mem.commit()
            if i == 1:
                mem.sync()
    data = bytearray(path.read_bytes())
    a, b, c = [f.offset for f in frames_of(bytes(data))][1:4]
    assert [data[o + 5] for o in (a, b, c)] == [0, 0, 1]
    data[a:a + 16] = bytes(16)
    data[b + 20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(reference_reader.SpecError) as spec:
        reference_reader.read_file(bytes(data))
    assert spec.value.offset == a
    for readonly in (True, False):
        with pytest.raises(CorruptFileError) as ei:
            Memory.open(path, readonly=readonly)
        assert ei.value.offset == a
