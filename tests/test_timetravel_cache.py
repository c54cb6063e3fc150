"""Time travel through its caches (engine/timetravel.py, segments.py, checkpoints.py):
every read of a past state equals the state that was committed then.

The caches under test: decoded segments bounded by commit payload bytes
(policy.TIMETRAVEL_BYTES, the ``travel_cache`` hook), base records shared by
the states on one snapshot (TIMETRAVEL_NODES) and checked layer stacks
(SNAPSHOT_CACHE). Each is run at sizes that evict on every read, and at the
policy's. The reference is what the writer's handle showed right after each
commit (its committed state, which opening the file replays).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_interrupts import Interrupter, count_lines

from myosotis import InterruptedOperationError, Memory, NodeNotFoundError
from myosotis.engine.segments import Segment
from myosotis.testing import open_memory, store_of

NodeView = tuple[str, bool, dict[str, Any]]
State = dict[int, NodeView]


def snapshot(reader: Any) -> State:
    """Every node of ``reader`` (a Memory or a View), tombstones too, as plain values."""
    return {n.id: (n.type, n.deleted, n.fields()) for n in reader.nodes(deleted=True)}


def check_node(mem: Memory, states: dict[int, State], seq: int, node_id: int) -> None:
    """``mem.at(seq)[node_id]`` is the node as committed at ``seq``, or absent."""
    want = states[seq].get(node_id)
    view = mem.at(seq)
    if want is None:
        with pytest.raises(NodeNotFoundError):
            view[node_id]
        return
    n = view[node_id]
    assert (n.type, n.deleted, n.fields()) == want, (seq, node_id)
    for k, v in want[2].items():  # the point read of one field, as W4 does it
        assert mem.at(seq)[node_id][k] == v


def random_commit(mem: Memory, data: st.DataObject, next_id: int) -> None:
    """Stage one commit's worth of random changes (creates, sets, list and map edits,
    deletes) and commit it."""
    live = [n for n in range(1, next_id) if not mem[n].deleted]
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        op = data.draw(st.sampled_from(["create", "set", "append", "map", "delete"])
                       if live else st.just("create"), label="op")
        if op == "create":
            mem.create("T", a=data.draw(st.integers(-5, 5)), tags=["x"], m={"k": 1})
            continue
        n = mem[data.draw(st.sampled_from(live), label="node")]
        if op == "set":
            n.a = data.draw(st.integers(-5, 5) | st.text(max_size=3), label="value")
        elif op == "append" and "tags" in n.fields():
            n.tags.append(data.draw(st.integers(0, 9), label="elem"))
        elif op == "map" and "m" in n.fields():
            key = data.draw(st.sampled_from("kpq"), label="key")
            n.m[key] = data.draw(st.integers(-1000, 1000), label="map value")
        elif op == "delete":
            n.delete()
            live.remove(n.id)
    mem.commit()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), travel_cache=st.sampled_from([0, 1, 400, None]),
       base_nodes=st.sampled_from([1, 3, 4096]), snapshots=st.sampled_from([1, 2, 1024]),
       layer_commits=st.sampled_from([2, 3, 32]))
def test_reads_of_the_past_equal_the_committed_states(
        tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, travel_cache: int | None,
        base_nodes: int, snapshots: int, layer_commits: int) -> None:
    """Random ``at(c)`` reads, between rounds of commits by the same handle, under cache
    sizes from evicting everything at each read to keeping everything: each read
    equals the state committed at ``c`` (node absent, type, tombstone, fields)."""
    path = tmp_path_factory.mktemp("tt") / "m.myo"
    with pytest.MonkeyPatch.context() as mp, \
            open_memory(path, durability="none", travel_cache=travel_cache) as mem:
        mp.setattr("myosotis.engine.checkpoints.SNAPSHOT_CACHE", snapshots)
        store = store_of(mem)
        store.layer_commits = layer_commits
        store.travel.base_nodes.size = base_nodes
        states: dict[int, State] = {0: {}}
        for _ in range(data.draw(st.integers(1, 3), label="rounds")):
            for _ in range(data.draw(st.integers(1, 10), label="commits")):
                random_commit(mem, data, mem.next_node_id)
                states[store.head_seq] = snapshot(mem)
            for _ in range(data.draw(st.integers(1, 12), label="reads")):
                seq = data.draw(st.sampled_from(sorted(states)), label="seq")
                node_id = data.draw(st.integers(1, mem.next_node_id), label="read node")
                check_node(mem, states, seq, node_id)
        # and the whole state of a few commits, through the same caches
        for seq in data.draw(st.lists(st.sampled_from(sorted(states)), max_size=3)):
            assert snapshot(mem.at(seq)) == states[seq]


def build(path: Path, commits: int, layer_commits: int = 4) -> dict[int, State]:
    """A file of ``commits`` commits over 12 nodes, a layer every ``layer_commits``;
    the state committed at each seq."""
    states: dict[int, State] = {0: {}}
    with Memory.open(path, durability="none") as mem:
        store_of(mem).layer_commits = layer_commits
        for i in range(commits):
            if i < 12:
                mem.create("T", a=i, tags=[i])
            else:
                n = mem[1 + i % 12]
                n.a = i
                n.tags.append(i)
            mem.commit()
            states[i + 1] = snapshot(mem)
    return states


def test_a_tiny_cache_evicts_all_but_the_head_and_the_segment_in_use(tmp_path: Path) -> None:
    """With ``travel_cache=0`` each read of another segment drops the one before
    (memory stays bounded), and reading it again decodes it again, rightly."""
    path = tmp_path / "m.myo"
    states = build(path, 40)
    with open_memory(path, readonly=True, travel_cache=0) as mem:
        travel = store_of(mem).travel
        for seq in (5, 30, 5, 13, 39, 6):
            for node_id in (1, 2, 12):
                check_node(mem, states, seq, node_id)
            kept = list(travel._segments.values())
            assert len(kept) <= 2 and travel.head in kept
    with open_memory(path, readonly=True) as mem:  # the policy's bound keeps them all
        for seq in range(41):
            check_node(mem, states, seq, 1 + seq % 12)
        assert sum(s.size for s in store_of(mem).travel._segments.values()) > 0
        assert len(store_of(mem).travel._segments) == 11  # bases 0, 4, ..., 40


def test_a_segment_is_decoded_once_while_cached(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Random reads of the past decode each commit at most once while the cache holds
    its segment: the reads after the first pass decode nothing."""
    path = tmp_path / "m.myo"
    states = build(path, 60)
    decoded: list[int] = []
    with open_memory(path, readonly=True) as mem:
        store = store_of(mem)
        record = store.commits.record

        def counting(seq: int, parent: bytes) -> Any:
            decoded.append(seq)
            return record(seq, parent)

        monkeypatch.setattr(store.commits, "record", counting)
        order = [(s * 37) % 61 for s in range(61)]
        for seq in order:
            check_node(mem, states, seq, 1 + seq % 12)
        assert len(decoded) == len(set(decoded))
        first = len(decoded)
        for seq in order:
            check_node(mem, states, seq, 1 + (seq + 5) % 12)
        assert len(decoded) == first


def test_the_cache_bound_holds_at_amortised_constant_cost_a_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads spread over many segments keep the decoded ones within the bound (or
    only the head's and the one in use hold commits), and the bookkeeping reads the segments'
    sizes O(1) times a read, amortised: summing every cached segment at each
    read made a read's cost grow with the number of segments cached."""
    path = tmp_path / "m.myo"
    states = build(path, 200, layer_commits=2)  # 100 segments
    size_reads = 0

    def counted(self: Segment) -> int:
        nonlocal size_reads
        size_reads += 1
        return self.tip[2]

    monkeypatch.setattr(Segment, "size", property(counted))
    for cache in (None, 0, 700):
        with open_memory(path, readonly=True, travel_cache=cache) as mem:
            travel = store_of(mem).travel
            size_reads = 0
            order = [(s * 73) % 201 for s in range(201)]
            for seq in order:
                check_node(mem, states, seq, 1 + seq % 12)
                sizes = [s.tip[2] for s in travel._segments.values()]
                assert sum(sizes) <= travel.cache_bytes or sum(map(bool, sizes)) <= 2, \
                    (cache, seq)
            assert size_reads <= 4 * len(order), (cache, size_reads)
            if cache is None:  # the policy's bound keeps them all
                assert len(travel._segments) == 101


def test_a_read_of_the_past_interrupted_at_every_line_is_right_when_retried(
        tmp_path: Path) -> None:
    """A read interrupted anywhere (decoding a segment, checking a layer, filling a
    cache) leaves no half-filled cache in use: the same handle, asked again, reads
    every commit of the segment right."""
    path = tmp_path / "m.myo"
    states = build(path, 24, layer_commits=8)
    mem = Memory.open(path, readonly=True)
    try:
        def read() -> None:
            check_node(mem, states, 14, 3)

        # The file opens from its newest layer (FORMAT.md §10.1); indexing the
        # history before it (CommitIndex.ensure_full) is not swept here.
        store_of(mem).commits.ensure_full()
        lines = count_lines(read)
        mem.close()
        for at in range(1, lines + 1):
            with Memory.open(path, readonly=True) as mem:
                store_of(mem).commits.ensure_full()
                _, err = Interrupter(at, KeyboardInterrupt).run(read)
                assert isinstance(err, KeyboardInterrupt), (at, err)
                for seq in (14, 9, 15, 8, 13):
                    for node_id in (2, 3, 7):
                        check_node(mem, states, seq, node_id)
                assert snapshot(mem.at(14)) == states[14]
    finally:
        mem.close()


def ensure_full_lines(path: Path, readonly: bool) -> int:
    """How many lines indexing the history before the newest layer runs
    (CommitIndex.ensure_full) on ``path``, which opens from its newest layer."""
    with Memory.open(path, readonly=readonly) as mem:
        commits = store_of(mem).commits
        assert commits.partial  # opened from its newest layer
        return count_lines(commits.ensure_full)


def test_indexing_the_history_before_the_newest_layer_interrupted_at_every_line(
        tmp_path: Path) -> None:
    """A file opened from its newest layer indexes the older history when a read
    first needs it (CommitIndex.ensure_full, FORMAT.md §10.1). An interrupt at any
    line of that leaves a handle that reads every commit right, or one whose every
    read raises InterruptedOperationError (fails stop); never one that reads the
    wrong frame."""
    path = tmp_path / "m.myo"
    states = build(path, 24, layer_commits=8)

    def read_all(mem: Memory) -> None:
        for seq in (0, 3, 9, 16, 24):
            assert snapshot(mem.at(seq)) == states[seq]

    lines = ensure_full_lines(path, readonly=True)
    stopped = 0
    for at in range(1, lines + 1):
        with Memory.open(path, readonly=True) as mem:
            commits = store_of(mem).commits
            _, err = Interrupter(at, KeyboardInterrupt).run(commits.ensure_full)
            assert isinstance(err, KeyboardInterrupt), (at, err)
            try:
                read_all(mem)
            except InterruptedOperationError as e:
                assert "close this handle" in str(e)
                with pytest.raises(InterruptedOperationError):
                    mem.at(20)
                stopped += 1
    assert 0 < stopped < lines  # both outcomes occur: the sweep reached the window


def test_a_writer_whose_history_indexing_was_interrupted_commits_or_refuses_whole(
        tmp_path: Path) -> None:
    """A writer opened from its newest layer whose indexing of the older history
    (CommitIndex.ensure_full) was interrupted either commits as usual or refuses
    the commit before its point of no return: never a commit that reaches the
    file while the handle reports it interrupted (and drops it as uncommitted)."""
    path = tmp_path / "m.myo"
    build(path, 24, layer_commits=8)
    lines = ensure_full_lines(path, readonly=False)
    refused = 0
    for at in range(1, lines + 1):
        with Memory.open(path, readonly=True) as reader:
            head = reader.head
        with Memory.open(path) as mem:
            _, err = Interrupter(at, KeyboardInterrupt).run(store_of(mem).commits.ensure_full)
            assert isinstance(err, KeyboardInterrupt), (at, err)
            mem[1]["after"] = at
            try:
                mem.commit()
            except InterruptedOperationError:
                refused += 1
                mem.discard()
        with Memory.open(path, readonly=True) as reader:
            if reader.head == head:
                continue  # refused: nothing reached the file
            assert reader[1]["after"] == at, at
        with Memory.open(path) as mem:
            assert mem.head.seq > head.seq and mem[1]["after"] == at, at
    assert 0 < refused < lines  # both outcomes occur: the sweep reached the window


def test_a_long_running_writer_keeps_a_bounded_number_of_segments(tmp_path: Path) -> None:
    """A writer appends a layer every few commits: one that never reads the past keeps
    only the head's segment, and one that reads it keeps what the bound allows, not
    a segment per layer written."""
    path = tmp_path / "m.myo"
    with open_memory(path, durability="none", travel_cache=0) as mem:
        travel = store_of(mem).travel
        store_of(mem).layer_commits = 2
        for i in range(60):
            mem.create("T", a=i)
            mem.commit()
        assert list(travel._segments.values()) == [travel.head]
        for i in range(60):
            mem[1 + i].a = -i
            mem.commit()
            assert mem.at(1 + i)[1 + i].a == i  # created at commit 1 + i
            assert len(travel._segments) <= 3  # the head's, the one read, the last head
