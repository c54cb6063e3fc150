"""The public API the CLI is built on: info, space, commits, stage, check_file,
repair, writer_lock and the testing entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

import myosotis
from myosotis import (
    Create,
    DeletedNodeError,
    InvalidOperationError,
    InvalidValueError,
    ListInsert,
    LockedError,
    MapSet,
    Memory,
    NodeNotFoundError,
    Ref,
    Set,
    Unset,
)
from myosotis.testing import open_memory, store_of


def build(path: Path, commits: int = 3) -> None:
    with Memory.open(path, clock=iter(range(10**15, 10**16, 10**6)).__next__) as mem:
        n = mem.create("Task", xs=[], m={})
        mem.commit("create")
        for i in range(1, commits):
            n.xs.append(i)
            mem.commit(f"c{i}")


def test_info_reports_the_head_base_sizes_and_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    build(path, 5)
    with Memory.open(path) as mem:
        info = mem.info()
        assert (info.head_seq, info.base_seq, info.commits) == (5, 0, 5)
        assert info.path == str(path) and info.format_version == 1 and not info.readonly
        assert info.next_node_id == 2 and not info.has_genesis
        assert info.file_size == path.stat().st_size
        assert info.data_end + info.free_bytes == info.file_size
        before = info.data_end
        assert mem.checkpoint()
        after = mem.info()
        assert after.checkpoints == info.checkpoints + 1 and after.data_end > before
        mem.compact()
        info = mem.info()
        assert (info.head_seq, info.base_seq, info.commits) == (5, 5, 0) and info.has_genesis


def test_space_adds_up_to_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    build(path, 4)
    with Memory.open(path, readonly=True) as mem:
        sp = mem.space()
    assert sp.kinds["commit"][0] == 4
    assert sp.header + sum(b for _, b in sp.kinds.values()) + sp.torn_tail + sp.free == \
        sp.file_size == path.stat().st_size


def test_commits_streams_after_the_base_in_either_order(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    build(path, 4)
    with Memory.open(path) as mem:
        seqs = [c.seq for c in mem.commits()]
        assert seqs == [1, 2, 3, 4] == [c.seq for c in mem.history()]
        assert [c.seq for c in mem.commits(reverse=True)] == [4, 3, 2, 1]
        mem.compact("HEAD~1")
        assert [c.seq for c in mem.commits()] == [4]


def test_stage_checks_and_copies_raw_mutations(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    build(path, 1)
    with Memory.open(path) as mem:
        value = [1, 2]
        mem.stage(Create(2, "Note", {"to": Ref(1)}), Set(1, "items", value),
                  ListInsert(1, "xs", (), 0, "x"), MapSet(1, "m", (), "k", 3.5))
        value.append(3)  # a copy was staged
        assert mem.pending == 4
        c = mem.commit("raw")
        assert c is not None and mem[1].fields() == {
            "xs": ["x"], "m": {"k": 3.5}, "items": [1, 2]}
        assert mem[2].to.id == 1


@pytest.mark.parametrize("batch, error", [
    ((Set(9, "x", 1),), NodeNotFoundError),
    ((Set(1, "ok", 1), Set(9, "x", 1)), NodeNotFoundError),
    ((Set(1, "ok", 1), Unset(1, "nope")), InvalidOperationError),
    ((ListInsert(1, "xs", (), 5, 1),), InvalidOperationError),
    ((Create(2, "A", {}), Create(2, "A", {})), InvalidOperationError),
    ((Set(1, "bad", object()),), InvalidValueError),
    ((Set(1, "ref", Ref(7)),), NodeNotFoundError),
])
def test_a_refused_batch_stages_nothing_and_leaves_the_memory_usable(
        tmp_path: Path, batch: tuple[myosotis.Mutation, ...], error: type[Exception]) -> None:
    path = tmp_path / "a.myo"
    build(path, 1)
    with Memory.open(path) as mem:
        mem[1].kept = True
        with pytest.raises(error):
            mem.stage(*batch)
        assert mem.pending == 1 and mem[1].fields() == {"xs": [], "m": {}, "kept": True}
        assert mem.next_node_id == 2
        mem.stage(Set(1, "after", 1))  # still usable
        assert mem.pending == 2


def test_stage_refuses_a_deleted_node_and_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    build(path, 1)
    with Memory.open(path) as mem:
        mem[1].delete()
        mem.commit()
        with pytest.raises(DeletedNodeError):
            mem.stage(Set(1, "x", 1))
    with Memory.open(path, readonly=True) as ro, pytest.raises(myosotis.ReadOnlyError):
        ro.stage(Set(1, "x", 1))


def test_check_file_and_repair_without_opening(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    build(path, 3)
    report = Memory.check_file(path)
    assert report.ok and report.commits == 3
    with path.open("ab") as f:
        f.write(b"\x01" * 100)  # a torn tail (past EOF of any frame)
    assert not Memory.check_file(path).ok
    with Memory.writer_lock(path), pytest.raises(LockedError):
        Memory.repair(path)
    result = Memory.repair(path)
    assert result.report.ok and result.actions
    assert list(tmp_path.glob("a.myo.recovered-*"))  # the tail's bytes were kept


def test_writer_lock_excludes_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    build(path, 1)
    with Memory.writer_lock(path), pytest.raises(LockedError):
        Memory.open(path)
    Memory.open(path).close()


def test_the_testing_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "a.myo"
    with open_memory(path, checkpoint_floor=0) as mem:
        mem.create("A")
        mem.commit()
        assert mem.info().checkpoints == 1  # a floor of 0: a checkpoint after each commit
        assert store_of(mem).head_seq == 1
    assert not hasattr(Memory, "store")


def test_edits_deep_inside_a_field_never_reach_the_committed_state(tmp_path: Path) -> None:
    """The overlay copies only the containers on an edit's path (Overlay.
    writable_container): the committed values, shared below those copies,
    must not change until the commit, and not at all after a discard."""
    path = tmp_path / "a.myo"
    with Memory.open(path) as mem:
        n = mem.create("T", tree={"a": [[1, 2], {"k": [3]}], "b": [4]}, flat=[0] * 5)
        mem.commit()
        committed = store_of(mem).state_hash(staged=False)
        before = n.fields()
        n.tree["a"][0].append(9)
        n.tree["a"][1]["k"][0] = 7
        del n.tree["b"][0]
        n.tree["a"][1]["new"] = [1]
        n.tree["a"][1]["new"].append(2)  # inside a value this commit made
        n.flat.insert(0, -1)
        assert store_of(mem).state_hash(staged=False) == committed
        mem.discard()
        assert n.fields() == before and mem.state_hash() == committed.hex()
        n.tree["a"][0].append(9)
        n.tree["a"][0].append(10)  # the overlay's own copy, edited again
        mem.commit()
        assert n.tree["a"][0] == [1, 2, 9, 10] and n.tree["b"] == [4]
    with Memory.open(path, readonly=True) as ro:
        assert ro[1].tree == {"a": [[1, 2, 9, 10], {"k": [3]}], "b": [4]}
        assert ro.at(1)[1].tree == before["tree"]


def test_reading_a_large_state_keeps_a_bounded_number_of_nodes_decoded(tmp_path: Path) -> None:
    """Nodes read from the checkpoint image are cached up to node_cache (the most
    recent ones); changed nodes are the state and always kept."""
    path = tmp_path / "a.myo"
    with Memory.open(path) as mem:
        for i in range(300):
            mem.create("N", i=i, tags=[i, "x"])
        mem.commit()
        mem.checkpoint()
    with Memory.open(path, node_cache=16) as mem:
        committed = store_of(mem).committed
        assert [n.fields()["i"] for n in mem.nodes()] == list(range(300))
        assert committed._decoded == {}  # a scan's fields() are decoded, not cached
        assert [n.i for n in mem.nodes()] == list(range(300))  # field reads are cached
        assert len(committed._decoded) == 16 and committed.changed == {}
        for node_id in (1, 150, 300):  # evicted nodes are decoded again, the same
            assert mem[node_id].tags == [node_id - 1, "x"]
        mem[5].tags.append("y")
        mem[7].i = -7
        mem.commit()
        assert set(committed.changed) == {5, 7} and len(committed._decoded) <= 16
        h = mem.state_hash()
        assert [n.fields()["i"] for n in mem.nodes()][:8] == [0, 1, 2, 3, 4, 5, -7, 7]
        assert mem[5].tags == [4, "x", "y"]
    with Memory.open(path, readonly=True) as ro:  # the default cache: the same state
        assert ro.state_hash() == h and ro[5].tags == [4, "x", "y"] and ro[7].i == -7


def test_a_batch_is_encoded_as_staged_mutation_by_mutation(tmp_path: Path) -> None:
    """Trying a batch first (Store.stage_all) must not change its mutations: a
    CREATE followed by edits of the new node is recorded as given, byte for byte
    what staging them one by one records."""
    batch = (Create(1, "A", {"a": 1}), Set(1, "x", 2), Unset(1, "a"), ListInsert(1, "x2", (), 0, 3))
    one_by_one, together = tmp_path / "one.myo", tmp_path / "batch.myo"
    for path in (one_by_one, together):
        with Memory.open(path, clock=lambda: 1_700_000_000_000_000) as mem:
            if path == together:
                with pytest.raises(InvalidOperationError):  # x2 does not exist
                    mem.stage(*batch)
                assert mem.pending == 0
                mem.stage(*batch[:3])
            else:
                for m in batch[:3]:
                    mem.stage(m)
            mem.commit("c")
            assert mem[1].fields() == {"x": 2}
    assert one_by_one.read_bytes() == together.read_bytes()
