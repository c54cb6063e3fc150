"""Version 4 (layers, FORMAT.md §8.7) meets version 3 (UNDELETE, ORIGIN, §6, §8.6):
the moves of §12 (to the highest version a frame needs, never down), fork,
compaction and repair of layered files, and what reads the history (the
history index, names, the timeline) on a file opened from its newest layer
(§10.1)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from crashutil import frames_of, read_bytes
from model import FixedClock

from myosotis import CorruptFileError, IndexRebuiltWarning, Memory, Undelete
from myosotis.format.constants import KIND_CHECKPOINT, KIND_LAYER, KIND_ORIGIN
from myosotis.format.helper import crc32c
from myosotis.testing import open_memory, store_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "formatspec"))
import reference_reader  # noqa: E402


def _version(path: Path) -> int:
    return int.from_bytes(read_bytes(path)[8:10], "little")


def _kinds(path: Path) -> list[int]:
    return [f.kind for f in frames_of(read_bytes(path))]


def _layered(path: Path, commits: int = 12, every: int = 3) -> str:
    """A file of ``commits`` commits with a layer every ``every``; its state hash."""
    with open_memory(path, clock=FixedClock(), durability="none") as mem:
        store_of(mem).layer_commits = every
        for c in range(commits):
            if c % 4 == 0:
                mem.create("T", x=c)
            mem[1 + c % (mem.next_node_id - 1)]["x"] = c
            mem.commit(f"c{c}")
        return mem.state_hash()


def _reopened(path: Path) -> tuple[str, bool]:
    """The state hash of a fresh reader, and whether fsck and the reference reader
    agree the file is whole (the reader replays and checks every layer's stack)."""
    with Memory.open(path, readonly=True) as mem:
        h = mem.state_hash()
        ok = mem.verify().ok
    dump = reference_reader.read_file(read_bytes(path))
    return h, ok and dump.data["format_version"] == _version(path)


def test_an_undelete_in_a_layered_file_keeps_it_at_version_4(tmp_path: Path) -> None:
    """§12: a version-3 feature in a version-4 file needs no move, and never a move down."""
    path = tmp_path / "m.myo"
    _layered(path)
    assert _version(path) == 4
    with open_memory(path, clock=FixedClock(), durability="none") as mem:
        store_of(mem).layer_commits = 3
        mem[1].delete()
        mem.commit("delete")
        mem.stage(Undelete(1))
        mem.commit("undelete")
        for c in range(4):  # a layer after the UNDELETE too
            mem[1]["x"] = 100 + c
            mem.commit()
        assert not mem[1].deleted and mem[1]["x"] == 103
        want = mem.state_hash()
    assert _version(path) == 4
    assert _kinds(path).count(KIND_LAYER) >= 5
    assert _reopened(path) == (want, True)


def test_a_version_3_file_moves_to_4_at_its_first_layer(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with open_memory(path, clock=FixedClock()) as mem:
        store_of(mem).layer_commits = 1 << 30  # no layer yet
        mem.create("T", x=1)
        mem.commit()
        mem[1].delete()
        mem.commit()
        mem.stage(Undelete(1))
        mem.commit()
        assert _version(path) == 3 and KIND_LAYER not in _kinds(path)
        store_of(mem).layer_commits = 2
        for c in range(3):
            mem.create("T", x=c)
            mem.commit()
        want = mem.state_hash()
    assert _version(path) == 4 and KIND_LAYER in _kinds(path)
    assert _reopened(path) == (want, True)
    with Memory.open(path, readonly=True) as mem:
        assert mem.at(3).state_hash() == mem.at(1).state_hash()  # the undelete restored 1


def test_a_fork_of_a_layered_file_is_version_3_without_layers(tmp_path: Path) -> None:
    path, fork = tmp_path / "m.myo", tmp_path / "f.myo"
    _layered(path, commits=15)
    with Memory.open(path) as mem:
        assert store_of(mem).commits.partial  # opened from its newest layer (§10.1)
        want = mem.at(10).state_hash()
        origin = mem.fork(10, fork)
    assert _version(fork) == 3
    kinds = _kinds(fork)
    assert KIND_LAYER not in kinds and kinds[1] == KIND_ORIGIN
    assert _reopened(fork) == (want, True)
    with Memory.open(fork, readonly=True) as mem:
        assert mem.info().origin == origin and mem.info().format_version == 3


def test_compaction_of_a_layered_file_with_an_undelete_writes_version_3(
        tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    _layered(path)
    with open_memory(path, clock=FixedClock(), durability="none") as mem:
        store_of(mem).layer_commits = 3
        mem[2].delete()
        mem.commit()
        mem.stage(Undelete(2))
        mem.commit()
        for c in range(3):
            mem[2]["x"] = c
            mem.commit()
        want = mem.state_hash()
        assert _version(path) == 4
        mem.compact()  # the UNDELETE commit is folded: the file is still version 3
        assert mem.state_hash() == want
    assert _version(path) == 3 and KIND_LAYER not in _kinds(path)
    assert _reopened(path) == (want, True)


def test_compaction_of_a_layered_file_without_undelete_or_origin_writes_version_1(
        tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    want = _layered(path)
    with open_memory(path, clock=FixedClock()) as mem:
        mem.compact(at=6)
    assert _version(path) == 1 and KIND_LAYER not in _kinds(path)
    assert _reopened(path) == (want, True)


def test_compacting_a_layered_fork_keeps_its_origin_at_version_3(tmp_path: Path) -> None:
    path, fork = tmp_path / "m.myo", tmp_path / "f.myo"
    _layered(path, commits=6)
    with Memory.open(path) as mem:
        origin = mem.fork(6, fork)
    with open_memory(fork, clock=FixedClock(), durability="none") as mem:
        store_of(mem).layer_commits = 2
        for c in range(5):
            mem[1]["x"] = c
            mem.commit()
        assert _version(fork) == 4  # its first layer moved the fork to 4
        want = mem.state_hash()
    with Memory.open(fork) as mem:
        assert mem.info().origin == origin  # read from before the newest layer
        mem.compact(at=8)
    assert _version(fork) == 3 and KIND_LAYER not in _kinds(fork)
    kinds = _kinds(fork)
    assert kinds[1] == KIND_ORIGIN
    assert _reopened(fork) == (want, True)


def test_a_damaged_origin_before_the_newest_layer_fails_its_reads_not_the_writer(
        tmp_path: Path) -> None:
    """An origin record that disagrees with its genesis (R87) in a fork opened from
    its newest layer is found when the older history is first indexed; each read
    of that history raises CorruptFileError for it, and the handle stays usable:
    its commits go on (the frames after the layer are whole)."""
    path, fork = tmp_path / "m.myo", tmp_path / "f.myo"
    _layered(path, commits=6)
    with Memory.open(path) as mem:
        mem.fork(6, fork)
    with open_memory(fork, clock=FixedClock(), durability="none") as mem:
        store_of(mem).layer_commits = 2
        for c in range(5):
            mem[1]["x"] = c
            mem.commit()
    (origin,) = [f for f in frames_of(read_bytes(fork)) if f.kind == KIND_ORIGIN]
    data = bytearray(read_bytes(fork))
    data[origin.payload_end - 1] ^= 1  # its state hash: decodes, disagrees (R87)
    payload = bytes(data[origin.payload_start:origin.payload_end])
    data[origin.offset + 8:origin.offset + 12] = crc32c(payload).to_bytes(4, "little")
    data[origin.offset + 12:origin.offset + 16] = \
        crc32c(bytes(data[origin.offset:origin.offset + 12])).to_bytes(4, "little")
    fork.write_bytes(bytes(data))
    with Memory.open(fork) as mem:
        assert store_of(mem).commits.partial  # opened from its newest layer
        for _ in range(2):
            with pytest.raises(CorruptFileError, match="R87"):
                mem.history()
        mem[1]["x"] = "after"
        with pytest.warns(IndexRebuiltWarning, match="R87"):  # it cannot index either
            head = mem.commit()
        assert head is not None and mem.head == head
    with Memory.open(fork, readonly=True) as mem:
        assert mem.head == head and mem[1]["x"] == "after"


def test_repair_of_a_layered_file_with_an_undelete_writes_version_3(tmp_path: Path) -> None:
    """A failing version-2 checkpoint makes repair rewrite the file: layers go, and the
    UNDELETE commit keeps it at 3."""
    path = tmp_path / "m.myo"
    _layered(path)
    with open_memory(path, clock=FixedClock(), durability="none") as mem:
        store_of(mem).layer_commits = 1 << 30
        mem[1].delete()
        mem.commit()
        mem.stage(Undelete(1))
        mem.commit()
        store_of(mem).layered = False  # one version-2 checkpoint (§8.2) to damage
        assert mem.checkpoint()
        mem[1]["x"] = 7
        mem.commit()
        want = mem.state_hash()
    data = bytearray(read_bytes(path))
    ckpt = [f for f in frames_of(bytes(data)) if f.kind == KIND_CHECKPOINT][-1]
    data[ckpt.payload_start + 100] ^= 1  # fails R26: a cache to drop
    path.write_bytes(bytes(data))
    result = Memory.repair(path)
    assert result.actions and result.report.ok
    assert _version(path) == 3
    assert KIND_LAYER not in _kinds(path) and KIND_CHECKPOINT not in _kinds(path)
    assert _reopened(path) == (want, True)


def test_history_index_log_after_a_partial_open_equals_a_full_rebuild(
        tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    _layered(path, commits=30)
    idx = Path(f"{path}.idx")
    idx.unlink(missing_ok=True)
    with Memory.open(path, readonly=True) as mem:
        assert store_of(mem).commits.partial
        partial = {n: [(e.commit.seq, e.commit.id, e.mutations) for e in mem.log(n)]
                   for n in range(1, mem.next_node_id)}
    idx.unlink(missing_ok=True)
    with Memory.open(path, readonly=True) as mem:
        store_of(mem).commits.ensure_full()  # the whole history indexed before the index
        full = {n: [(e.commit.seq, e.commit.id, e.mutations) for e in mem.log(n)]
                for n in range(1, mem.next_node_id)}
        oldest = [c.seq for c in mem.history()]
    assert partial == full
    assert [seq for seq, _, _ in full[1]][-1] == 1  # down to the CREATE in commit 1
    assert oldest == list(range(1, 31))


def test_names_and_timeline_reach_before_the_newest_layer(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    _layered(path, commits=20)
    with Memory.open(path, readonly=True) as mem:
        every = [(c.seq, c.id) for c in mem.history()]
    with Memory.open(path, readonly=True) as mem:
        assert store_of(mem).commits.partial
        newest_first = [(c.seq, c.id) for c in mem.commits(reverse=True)]
        assert newest_first == every[::-1]
    with Memory.open(path, readonly=True) as mem:
        assert [c.seq for c in mem.commits(since=2, until=4)] == [2, 3, 4]
    with Memory.open(path, readonly=True) as mem:
        assert mem.resolve(f"id:{every[1][1][:10]}") == 2
    with Memory.open(path, readonly=True) as mem:
        assert mem.resolve("seq:3") == 3 and mem.resolve(every[2][1][:12]) == 3
    with Memory.open(path, readonly=True) as mem:
        first = mem.commit_info(1)
        assert mem.resolve(first.timestamp) == 1


def test_a_reader_refreshes_across_the_moves_to_3_and_to_4(tmp_path: Path) -> None:
    """storage/log.py reads the version again after each walk: frames written behind
    a move to 3 (an UNDELETE) and then to 4 (a layer) are read, not taken for
    frames of a kind the old version lacks (R22)."""
    path = tmp_path / "m.myo"
    with open_memory(path, clock=FixedClock()) as mem:
        store_of(mem).layer_commits = 1 << 30
        mem.create("T", x=1)
        mem.commit()
        mem[1].delete()
        mem.commit()
        with Memory.open(path, readonly=True) as reader:
            assert reader.info().format_version == 1
            mem.stage(Undelete(1))
            mem.commit()
            assert reader.refresh() == 1 and not reader[1].deleted
            assert reader.info().format_version == 3
            store_of(mem).layer_commits = 2
            for c in range(4):
                mem[1]["x"] = c
                mem.commit()
            assert _version(path) == 4 and KIND_LAYER in _kinds(path)
            assert reader.refresh() == 4
            assert reader.info().format_version == 4
            assert reader.state_hash() == mem.state_hash()
