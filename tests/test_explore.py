"""Traversal: ``walk``, ``reachable`` and ``orphans`` against a brute-force computation
over the plain model (tests/model.py) at random commits of random histories.

The brute force shares nothing with the engine's breadth-first walk: it computes
shortest distances by relaxing every edge until nothing changes, and finds the
references of a node by its own recursion over the model's values.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model import FixedClock, Model, ModelNode

from myosotis import (
    CommitNotFoundError,
    InvalidArgumentError,
    Memory,
    NodeNotFoundError,
    Ref,
    WalkStep,
)

FIELDS = ["a", "b", "kids"]


# --------------------------------------------------------------------------
# brute force over the model


def model_refs(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], int]]:
    if type(v) is Ref:
        return [(path, v.id)]
    out: list[tuple[tuple[Any, ...], int]] = []
    if type(v) is list:
        for i, x in enumerate(v):
            out += model_refs(x, (*path, i))
    elif type(v) is dict:
        for k, x in v.items():
            out += model_refs(x, (*path, k))
    return out


def model_edges(nodes: dict[int, ModelNode], u: int) -> list[tuple[tuple[Any, ...], int]]:
    return [((name, *p), t) for name, v in nodes[u].fields.items() for p, t in model_refs(v)]


Allow = Callable[[dict[int, ModelNode], int, tuple[Any, ...], int], bool]


def distances(nodes: dict[int, ModelNode], starts: list[int], allow: Allow) -> dict[int, int]:
    """Shortest number of references from ``starts`` to each node (Bellman-Ford style)."""
    dist = {s: 0 for s in starts}
    changed = True
    while changed:
        changed = False
        for u in list(dist):
            for path, v in model_edges(nodes, u):
                if allow(nodes, u, path, v) and (v not in dist or dist[v] > dist[u] + 1):
                    dist[v] = dist[u] + 1
                    changed = True
    return dist


def value_at(v: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        v = v[step]
    return v


# --------------------------------------------------------------------------
# random histories


def ref_values(next_id: int) -> st.SearchStrategy[Any]:
    refs = st.integers(1, next_id - 1).map(Ref) if next_id > 1 else st.nothing()
    leaves = refs | st.integers(-3, 3) | st.text("xy", max_size=2)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["k", "m", "z"]), inner, max_size=3),
                        max_leaves=6)


def build(data: st.DataObject, path: str) -> tuple[Memory, Model]:
    """A random history applied to a Memory and to the model, op by op."""
    mem = Memory.open(path, durability="none", clock=FixedClock())
    model = Model()
    for _ in range(data.draw(st.integers(1, 25), label="ops")):
        live = model.live_ids()
        op = data.draw(st.sampled_from(["create", "create", "set", "delete", "commit"]))
        if op == "create" or not live and op in ("set", "delete"):
            fields = data.draw(st.dictionaries(st.sampled_from(FIELDS),
                                               ref_values(model.next_node_id), max_size=3))
            node_id = mem.create("T", **fields).id
            assert model.create("T", fields) == node_id
        elif op == "set":
            node_id = data.draw(st.sampled_from(live))
            name = data.draw(st.sampled_from(FIELDS))
            value = data.draw(ref_values(model.next_node_id))
            mem[node_id][name] = value
            model.set_field(node_id, name, value)
        elif op == "delete":
            node_id = data.draw(st.sampled_from(live))
            mem[node_id].delete()
            model.delete(node_id)
        else:
            c = mem.commit(allow_empty=True)
            assert c is not None
            model.commit(None, c.timestamp_us or 0)
    c = mem.commit(allow_empty=True)
    assert c is not None
    model.commit(None, c.timestamp_us or 0)
    return mem, model


def check_walk(steps: list[WalkStep], nodes: dict[int, ModelNode], starts: list[int],
               depth: int | None, allow: Allow) -> None:
    dist = distances(nodes, starts, allow)
    expected = {v for v, d in dist.items() if depth is None or d <= depth}
    ids = [s.node.id for s in steps]
    assert len(ids) == len(set(ids)), "a node was yielded twice"
    assert set(ids) == expected
    assert ids[:len(set(starts))] == list(dict.fromkeys(starts))  # starts first, in order
    assert [s.depth for s in steps] == sorted(s.depth for s in steps)  # breadth-first
    for s in steps:
        v = s.node.id
        assert s.depth == dist[v]
        if s.parent is None:
            assert v in starts and s.via == ()
            continue
        assert dist[s.parent] == s.depth - 1
        field, *rest = s.via
        assert value_at(nodes[s.parent].fields[field], tuple(rest)) == Ref(v)
        assert allow(nodes, s.parent, s.via, v)


def _all(nodes: dict[int, ModelNode], u: int, path: tuple[Any, ...], v: int) -> bool:
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_walk_reachable_orphans_equal_brute_force_at_random_commits(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        mem, model = build(data, os.path.join(d, "g.myo"))
        try:
            seq = data.draw(st.integers(1, model.head), label="seq")
            nodes = model.snapshots[seq].nodes
            if not nodes:
                return
            starts = data.draw(st.lists(st.sampled_from(sorted(nodes)), min_size=1,
                                        max_size=3), label="starts")
            depth = data.draw(st.none() | st.integers(0, 3), label="depth")
            names = data.draw(st.none() | st.sets(st.sampled_from(FIELDS)), label="names")
            allow: Allow = _all if names is None else \
                (lambda ns, u, p, v: p[0] in names)
            follow = None if names is None else sorted(names)
            view = mem.at(seq)
            for steps in (list(mem.walk(starts, depth=depth, at=seq, follow=follow)),
                          list(view.walk(starts, depth=depth, follow=follow))):
                check_walk(steps, nodes, starts, depth, allow)
            reach = {v for v in distances(nodes, starts, allow)}
            assert mem.reachable(starts, at=seq, follow=follow) == reach
            assert view.orphans(starts, follow=follow) == sorted(
                v for v, n in nodes.items() if not n.deleted and v not in reach)

            def not_from_tombstones(ns: dict[int, ModelNode], u: int, p: tuple[Any, ...],
                                    v: int) -> bool:
                return not ns[u].deleted

            steps = list(mem.walk(starts, at=seq, follow=lambda s, p, t: not s.deleted))
            check_walk(steps, nodes, starts, None, not_from_tombstones)
        finally:
            mem.close()


# --------------------------------------------------------------------------
# scenarios


@pytest.fixture
def mem(mem_path: str, clock: FixedClock) -> Memory:
    m = Memory.open(mem_path, clock=clock)
    yield m  # type: ignore[misc]
    m.close()


def test_walk_finds_references_inside_lists_and_maps_in_a_fixed_order(mem: Memory) -> None:
    a, b, c = mem.create("A"), mem.create("B"), mem.create("C")
    root = mem.create("Root", z=c, items=[1, {"y": b, "x": a}], b=b)
    mem.commit()
    steps = list(mem.walk(root))
    assert [(s.node.id, s.depth, s.parent, s.via) for s in steps] == [
        (root.id, 0, None, ()),
        (b.id, 1, root.id, ("b",)),  # fields by name: b, items, z
        (a.id, 1, root.id, ("items", 1, "x")),  # map keys sorted: x before y
        (c.id, 1, root.id, ("z",)),
    ]
    assert list(mem.walk(root)) == steps  # deterministic
    assert [s.node.id for s in mem.walk(root, depth=0)] == [root.id]
    assert [s.node.id for s in mem.walk(root, follow="items")] == [root.id, a.id, b.id]


def test_a_cycle_is_walked_once_and_a_self_reference_is_no_step(mem: Memory) -> None:
    a = mem.create("A")
    b = mem.create("B", back=a)
    a.next = b
    a.me = a
    mem.commit()
    assert [s.node.id for s in mem.walk(a)] == [a.id, b.id]
    assert mem.reachable(b) == {a.id, b.id}


def test_orphans_are_live_nodes_no_root_reaches_and_tombstones_are_walked(mem: Memory) -> None:
    root = mem.create("Root")
    kept, lost, gone = mem.create("K"), mem.create("L"), mem.create("G")
    root.child = kept
    gone.child = lost
    mem.commit()
    assert mem.orphans(root) == [lost.id, gone.id]
    root.via = gone
    gone.delete()
    mem.commit()
    assert mem.orphans(root) == []  # the tombstone's reference still counts
    assert mem.orphans(root, follow=lambda s, p, t: not s.deleted) == [lost.id]
    assert mem.orphans(root, at=1) == [lost.id, gone.id]  # the past is unchanged


def test_walk_reads_staged_changes_on_memory_and_past_commits_with_at(mem: Memory) -> None:
    a, b = mem.create("A"), mem.create("B")
    mem.commit()
    a.to = b
    assert mem.reachable(a) == {a.id, b.id}  # staged changes count on the memory
    assert mem.reachable(a, at="HEAD") == {a.id}
    mem.commit()
    assert mem.at(1).reachable(a) == {a.id}
    assert mem.at(1).reachable(a, at=2) == {a.id, b.id}  # at= names a commit of the memory


def test_bad_arguments_are_refused_before_the_first_step(mem: Memory) -> None:
    a = mem.create("A")
    mem.commit()
    with pytest.raises(NodeNotFoundError):
        mem.walk(99)
    with pytest.raises(NodeNotFoundError, match="at commit 0"):
        mem.at(0).walk(a)
    with pytest.raises(InvalidArgumentError):
        mem.walk(a, depth=-1)
    with pytest.raises(InvalidArgumentError):
        mem.walk("1")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        mem.walk(a, follow=[1])  # type: ignore[list-item]
    with pytest.raises(CommitNotFoundError):
        mem.reachable(a, at=7)
    assert repr(next(mem.walk(a))) == "WalkStep(node=1, depth=0, parent=None, via=())"
