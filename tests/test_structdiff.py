"""The structural diff (docs/DIFF.md): ops down to the path inside a field, the
minimal list edit script, ``Diff`` as a sequence (len, filter, str, HTML, JSON),
and ``Memory.apply`` (staged all or nothing, refused on conflict).

The replay helper below applies ops to a plain model state exactly as
docs/DIFF.md defines them, independently of the engine's own apply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model import ModelNode, clone, clone_nodes, same_value, state_hash
from test_stateful import values

from myosotis import (
    MISSING,
    ClosedError,
    Diff,
    DiffConflictError,
    DiffOp,
    Memory,
    ReadOnlyError,
    Ref,
)
from myosotis.engine.structdiff import hunks, matched_pairs, moves, value_ops
from myosotis.format.values import values_equal

# --------------------------------------------------------------------------
# helpers


def replay(nodes: dict[int, ModelNode], ops: Iterable[DiffOp]) -> dict[int, ModelNode]:
    """``nodes`` with ``ops`` applied one after another as docs/DIFF.md defines them."""
    out = clone_nodes(nodes)
    for op in ops:
        if op.op == "create":
            out[op.node] = ModelNode(op.type, clone(op.new))
        elif op.op == "uncreate":
            del out[op.node]
        elif op.op in ("delete", "undelete"):
            out[op.node].deleted = op.op == "delete"
        else:
            box: Any = out[op.node].fields  # the first step names a field
            for step in op.path[:-1]:
                box = box[step]
            last = op.path[-1]
            if op.op == "insert":
                box.insert(last, clone(op.new))
            elif op.op == "remove":
                del box[last]
            else:  # add, change
                box[last] = clone(op.new)
    return out


def model_of(mem: Memory, seq: int) -> tuple[dict[int, ModelNode], int]:
    """The state after commit ``seq`` as model nodes, read through the public API."""
    from model import plain

    view = mem.at(seq)
    nodes = {n.id: ModelNode(n.type, plain(n.fields()), n.deleted)
             for n in view.nodes(deleted=True)}
    return nodes, view.next_node_id


def one_field(tmp_path: Path, old: Any, new: Any) -> list[DiffOp]:
    """The ops of a diff where one field of one node went from ``old`` to ``new``."""
    with Memory.open(tmp_path / "one.myo") as mem:
        n = mem.create("T", f=old)
        mem.commit()
        n.f = new
        mem.commit(allow_empty=True)
        return list(mem.diff("HEAD~1", "HEAD"))


@pytest.fixture
def mem(tmp_path: Path) -> Iterable[Memory]:
    m = Memory.open(tmp_path / "s.myo")
    yield m
    m.discard()
    m.close()


# --------------------------------------------------------------------------
# one change, one op


def test_one_append_to_a_20k_list_is_one_insert(mem: Memory) -> None:
    n = mem.create("Log", items=list(range(20_000)))
    mem.commit()
    n.items.append("new")
    mem.commit()
    assert list(mem.diff(1, 2)) == [DiffOp(1, "Log", ("items", 20_000), "insert", MISSING, "new")]


def test_one_key_change_in_a_130_entry_map_is_one_change(mem: Memory) -> None:
    n = mem.create("Agent", meta={f"k{i}": i for i in range(130)})
    mem.commit()
    n.meta["k7"] = "seven"
    mem.commit()
    d = mem.diff(1, 2)
    assert len(d) == 1
    assert list(d) == [DiffOp(1, "Agent", ("meta", "k7"), "change", 7, "seven")]


def test_a_nested_edit_is_one_op_at_its_full_path(mem: Memory) -> None:
    n = mem.create("A", cfg={"net": {"hosts": ["a", "b", {"port": 1}]}})
    mem.commit()
    n.cfg["net"]["hosts"][2]["port"] = 2
    mem.commit()
    assert list(mem.diff(1, 2)) == [
        DiffOp(1, "A", ("cfg", "net", "hosts", 2, "port"), "change", 1, 2)]


def test_node_ops_fields_and_references(mem: Memory) -> None:
    a = mem.create("A", x=1, gone="g")
    b = mem.create("B")
    mem.commit()
    a.friend = b
    del a.gone
    a.x = 2
    b.delete()
    c = mem.create("C", back=a)
    mem.commit()
    assert list(mem.diff(1, 2)) == [
        DiffOp(1, "A", ("friend",), "add", MISSING, Ref(2)),
        DiffOp(1, "A", ("gone",), "remove", "g", MISSING),
        DiffOp(1, "A", ("x",), "change", 1, 2),
        DiffOp(2, "B", (), "delete", MISSING, MISSING),
        DiffOp(3, "C", (), "create", MISSING, {"back": Ref(1)})]
    assert c.id == 3
    assert [op.op for op in mem.diff(2, 1)] == ["remove", "add", "change", "undelete",
                                                "uncreate"]
    # whole-field view, kept for callers of the per-node API
    assert mem.diff(1, 2).created == [3] and mem.diff(1, 2).deleted == [2]


@pytest.mark.parametrize(("old", "new", "expect"), [
    ([1, 2, 3], [4, 5, 6], [((), "change")]),  # nothing in common: one replacement
    ({"x": 1}, {"y": 2}, [((), "change")]),
    ([], [1, 2], [((0,), "insert"), ((1,), "insert")]),
    ([1, 2, 3, 4], [0, 2, 4, 5], [((0,), "change"), ((2,), "remove"), ((3,), "insert")]),
    ([1, 2, 3], [1, 3], [((1,), "remove")]),
    ([1, True, 1.0, -0.0], [1, 1, 1.0, 0.0], [((1,), "change"), ((3,), "change")]),
    ({"a": [1, 2]}, {"a": [1, 2], "b": None}, [(("b",), "add")]),
    ("s", ["s"], [((), "change")]),
])
def test_value_ops(old: Any, new: Any, expect: list[tuple[tuple[Any, ...], str]]) -> None:
    got = list(value_ops((), old, new))
    assert [(p, k) for p, k, _, _ in got] == expect


# --------------------------------------------------------------------------
# the edit script


def lcs_length(a: list[int], b: list[int]) -> int:
    """Brute force: the classic dynamic program."""
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            t[i][j] = t[i + 1][j + 1] + 1 if a[i] == b[j] else max(t[i + 1][j], t[i][j + 1])
    return t[0][0]


SMALL_LISTS = st.lists(st.integers(0, 3), max_size=14)


@settings(max_examples=400, deadline=None)
@given(SMALL_LISTS, SMALL_LISTS)
def test_myers_edit_script_is_minimal(a: list[int], b: list[int]) -> None:
    pairs = matched_pairs(a, b, 10_000)
    assert pairs is not None
    assert len(pairs) == lcs_length(a, b)  # fewest inserted + removed elements
    assert all(a[i] == b[j] for i, j in pairs)
    assert all(p < q for (p, _), (q, _) in zip(pairs, pairs[1:], strict=False))
    assert all(p < q for (_, p), (_, q) in zip(pairs, pairs[1:], strict=False))
    removed = sum(a1 - a0 for a0, a1, _, _ in hunks(a, b))
    inserted = sum(b1 - b0 for _, _, b0, b1 in hunks(a, b))
    assert removed + inserted == len(a) + len(b) - 2 * lcs_length(a, b)


def test_over_the_edit_limit_the_middle_is_replaced_element_by_element() -> None:
    a, b = list(range(10)), list(range(5, 15))
    assert matched_pairs(a, b, 3) is None
    assert hunks(a, b, limit=3) == [(0, 10, 0, 10)]
    assert hunks(a, b) == [(0, 5, 0, 0), (10, 10, 5, 10)]


@settings(max_examples=300, deadline=None)
@given(values(3), values(3))
def test_value_ops_replayed_on_old_give_new(old: Any, new: Any) -> None:
    root = {"f": clone(old)}
    for path, kind, _, v in value_ops(("f",), old, new):
        box: Any = root
        for step in path[:-1]:
            box = box[step]
        if kind == "insert":
            box.insert(path[-1], clone(v))
        elif kind == "remove":
            del box[path[-1]]
        else:
            box[path[-1]] = clone(v)
    assert same_value(root["f"], new)


@settings(max_examples=100, deadline=None)
@given(st.lists(values(0), max_size=8), values(0))
def test_one_append_is_one_insert_for_any_list(items: list[Any], x: Any) -> None:
    ops = list(value_ops(("f",), items, [*items, x]))
    assert len(ops) == 1 and ops[0][1] == "insert"
    # the insert may land before an equal run (LCS ties); replaying is what counts
    assert ops[0][0][0] == "f"


SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=3), values(0), max_size=8), st.text(max_size=3),
       SCALARS)
def test_one_key_set_is_one_op_for_any_map(m: dict[str, Any], key: str, v: Any) -> None:
    new = {**m, key: v}
    ops = list(value_ops(("f",), m, new))
    if key in m and same_value(m[key], v):
        assert ops == []
    else:
        assert len(ops) == 1 and ops[0][0] == ("f", key)
        assert ops[0][1] == ("change" if key in m else "add")


# --------------------------------------------------------------------------
# Diff as a sequence, and how it is shown


def test_len_iter_filter_and_stat(mem: Memory) -> None:
    a = mem.create("A", x=1, y=[1])
    b = mem.create("B", x=1)
    mem.commit()
    a.x, a.y, b.x = 2, [1, 2], 3
    mem.commit()
    d = mem.diff(1, 2)
    assert len(d) == 3 and bool(d) and isinstance(d, Diff)
    assert list(d.ops()) == list(iter(d))
    assert [op.node for op in d.filter(node=2)] == [2]
    assert [op.path for op in d.filter(type="A")] == [("x",), ("y", 1)]
    assert [op.node for op in d.filter(field="x")] == [1, 2]
    assert len(d.filter(node=[1, 2], field={"y"})) == 1
    assert not d.filter(node=1, type="B")
    s = d.stat()
    assert (s.nodes, s.ops, s.by_op, s.by_field) == (2, 3, {"change": 2, "insert": 1},
                                                      {"x": 2, "y": 1})
    assert not mem.diff(2, 2) and len(mem.diff(2, 2)) == 0


def test_str_and_html_are_bounded_and_escaped(mem: Memory) -> None:
    big = "x" * 10_000_000
    n = mem.create("A", s="a", m={"<b>": 1})
    mem.commit()
    n.s = big
    n.m["<b>"] = "<script>"
    for i in range(300):
        mem.create("N", i=i)
    mem.commit()
    d = mem.diff(1, 2)
    text = str(d)
    assert len(text) < 30_000 and len(text.splitlines()) <= 201
    assert 's: "a" -> "xxxx' in text and "more changes not shown" in text
    page = d._repr_html_()
    assert len(page) < 100_000 and "<script>" not in page and "&lt;script&gt;" in page
    assert "first 200 ops shown" in page
    assert "no changes" in str(mem.diff(2, 2)) and "no changes" in mem.diff(2, 2)._repr_html_()


def test_to_json_follows_the_documented_schema(mem: Memory) -> None:
    n = mem.create("A", f=1.5, r=None, m={"@k": 1})
    mem.commit()
    n.f = float("nan")
    n.r = n
    n.m["@k"] = 2
    mem.create("B")
    mem.commit()
    doc = json.loads(json.dumps(mem.diff(1, 2).to_json(), allow_nan=False))
    assert doc["schema"] == "myosotis.diff" and doc["version"] == 1
    assert doc["from"] == {"seq": 1, "id": mem.commit_info(1).id}
    assert doc["to"] == {"seq": 2, "id": mem.commit_info(2).id}
    assert doc["stat"] == {"nodes": 2, "ops": 4, "by_op": {"change": 3, "create": 1},
                           "by_field": {"f": 1, "m": 1, "r": 1}}
    assert doc["ops"] == [
        {"node": 1, "type": "A", "op": "change", "path": ["f"], "old": 1.5,
         "new": {"@float": "NaN"}},
        {"node": 1, "type": "A", "op": "change", "path": ["m", "@k"], "old": 1, "new": 2},
        {"node": 1, "type": "A", "op": "change", "path": ["r"], "old": None,
         "new": {"@ref": 1}},
        {"node": 2, "type": "B", "op": "create", "path": [], "new": {}}]
    assert mem.diff(0, 1).to_json()["from"] == {"seq": 0, "id": None}


def test_a_diff_is_read_while_the_memory_is_open(tmp_path: Path) -> None:
    m = Memory.open(tmp_path / "c.myo")
    m.create("A")
    m.commit()
    d = m.diff(0, 1)
    m.close()
    with pytest.raises(ClosedError):
        list(d)


# --------------------------------------------------------------------------
# apply


def test_apply_redoes_a_diff_on_another_memory(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "a.myo") as src, Memory.open(tmp_path / "b.myo") as dst:
        a = src.create("A", items=[1, 2, 3], m={"k": {"x": 1}})
        src.commit()
        late = src.create("B")
        early = src.create("C", me=Ref(late.id + 1))
        early.fwd = src.create("D", back=early)  # created later in the same commit
        a.items.insert(1, 9)
        del a.items[3]
        a.m["k"]["x"] = [1]
        a.m["z"] = a
        late.delete()
        src.commit()
        for seqs in ((0, 1), (1, 2)):
            assert dst.apply(src.diff(*seqs)) > 0
            dst.commit()
            assert dst.state_hash() == src.at(seqs[1]).state_hash()


def test_a_conflict_names_node_and_path_and_stages_nothing(mem: Memory) -> None:
    n = mem.create("A", items=[1, 2], m={"k": 1})
    mem.commit()
    n.items.append(3)
    n.m["k"] = 2
    mem.commit()
    d = mem.diff(1, 2)
    mem.create("X")  # something staged already, kept as it is
    before = (mem.pending, mem.state_hash())
    with pytest.raises(DiffConflictError, match=r"node 1 items\[2\], the list there is not "
                       r"as at commit 1 \(3 elements here, 2 there"):
        mem.apply(d)  # the memory is at state 2, not 1, where the diff changes items
    assert (mem.pending, mem.state_hash()) == before
    with pytest.raises(DiffConflictError, match=r'node 1 m\["k"\], expected 1 but found 2'):
        mem.apply(d.filter(field="m"))
    assert (mem.pending, mem.state_hash()) == before


def test_map_keys_apply_alone_but_a_list_must_be_as_it_was(mem: Memory) -> None:
    n = mem.create("A", m={"k": 1, "j": 1}, items=[1, 2, 3])
    mem.commit()
    n.m["k"] = 2
    n.items.insert(1, 9)
    mem.commit()
    d = mem.diff(1, 2)
    n.m["k"] = 1
    n.m["j"] = "diverged"  # another key: the diff still applies to k
    mem.commit()
    mem.apply(d.filter(field="m"))
    assert n.m == {"k": 2, "j": "diverged"}
    mem.discard()
    n.items = [1, 2, 3]
    n.items[2] = 4  # position 1 still exists, but the list is not the one diffed
    with pytest.raises(DiffConflictError, match=r"items\[1\], the list there is not as at"):
        mem.apply(d.filter(field="items"))
    n.items[2] = 3
    mem.apply(d.filter(field="items"))
    assert n.items == [1, 9, 2, 3]


def test_creates_apply_only_at_the_same_next_node_id(mem: Memory, tmp_path: Path) -> None:
    mem.create("A")
    mem.commit()
    with Memory.open(tmp_path / "other.myo") as other:
        other.create("Z")
        other.create("Z")
        other.commit()
        with pytest.raises(DiffConflictError, match="next node id here is 3"):
            other.apply(mem.diff(0, 1))
        assert other.pending == 0


def test_backward_diffs_over_creates_and_deletes_are_refused(mem: Memory) -> None:
    n = mem.create("A", x=1)
    mem.commit()
    n.x = 2
    mem.commit()
    mem.apply(mem.diff(2, 1))  # a field edit back in time is fine...
    assert n.x == 1
    mem.discard()
    n.delete()
    mem.commit()
    with pytest.raises(DiffConflictError, match="undeletes node 1"):
        mem.apply(mem.diff(3, 1))  # ...not a tombstone removed
    with pytest.raises(DiffConflictError, match="uncreates node 1"):
        mem.apply(mem.diff(1, 0))
    assert mem.pending == 0


def test_conflicts_on_type_deleted_node_and_missing_key(mem: Memory, tmp_path: Path) -> None:
    n = mem.create("A", m={"k": 1}, f=1)
    mem.commit()
    del n.m["k"]
    n.f = 2
    mem.commit()
    d = mem.diff(1, 2)
    with Memory.open(tmp_path / "o.myo") as other:
        other.create("B", m={"k": 1}, f=1)
        with pytest.raises(DiffConflictError, match="of type 'A' in the diff but 'B' here"):
            other.apply(d)
        other.discard()
        other.create("A", m={}, f=1)
        with pytest.raises(DiffConflictError, match=r'm\["k"\], the key is absent'):
            other.apply(d)
        other.discard()
        other.create("A", m={"k": 1}, f=1).delete()
        with pytest.raises(DiffConflictError, match="deleted here"):
            other.apply(d)
        assert other.pending == 2


def test_apply_needs_a_writer(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "w.myo") as w:
        w.create("A")
        w.commit()
    with Memory.open(tmp_path / "w.myo", readonly=True) as r, pytest.raises(ReadOnlyError):
        r.apply(r.diff(0, 1))


def test_apply_over_the_edit_limit(mem: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    from myosotis.engine import structdiff

    monkeypatch.setattr(structdiff, "MAX_EDIT_DISTANCE", 2)
    n = mem.create("A", items=list(range(10)))
    mem.commit()
    n.items = [0, *range(20, 25), 5, 6, 9]
    mem.commit()
    nodes, nxt = model_of(mem, 1)
    assert state_hash(replay(nodes, mem.diff(1, 2)), nxt) == mem.at(2).state_hash()


def test_a_moved_list_element_is_marked_on_its_remove_and_its_insert(tmp_path: Path) -> None:
    # a rotation: one element leaves the front and comes back at the end
    with Memory.open(tmp_path / "m.myo") as mem:
        n = mem.create("A", items=[1, 2, 3, 4, 5], other=["x"])
        mem.commit()
        n.items = [2, 3, 4, 5, 1]
        mem.commit()
        d = mem.diff(1, 2)
        assert list(d) == [
            DiffOp(1, "A", ("items", 0), "remove", 1, MISSING, ("items", 4)),
            DiffOp(1, "A", ("items", 4), "insert", MISSING, 1, ("items", 0))]
        assert "+ items[4]: 1 (moved from items[0])" in str(d)
        ops = d.to_json()["ops"]
        assert ops[0]["moved_to"] == ["items", 4] and ops[1]["moved_from"] == ["items", 0]
        # still a remove and an insert: applying it is unchanged
        back = mem.diff(2, 1)
        assert sorted(op.op for op in back) == ["insert", "remove"]
        assert all(op.moved is not None for op in back)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=10), st.lists(st.integers(0, 6), max_size=10))
def test_moves_name_where_each_element_was_and_went(old: list[int], new: list[int]) -> None:
    # every pairing names an insert's element at its place in `old` and a remove's at
    # its place in `new`, with equal values; a remove and an insert pair at most once
    ops = list(value_ops(("f",), old, new))
    found = moves(ops, old)
    for i, where in found.items():
        path, kind, o, v = ops[i]
        assert where[0] == "f"
        if kind == "insert":
            assert old[where[1]] == v
        else:
            assert kind == "remove" and new[where[1]] == o
    assert sum(ops[i][1] == "insert" for i in found) == sum(ops[i][1] == "remove" for i in found)


nested_lists = st.recursive(st.integers(0, 3), lambda inner: st.lists(inner, max_size=4),
                            max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(nested_lists, max_size=5), st.lists(nested_lists, max_size=5))
def test_moves_inside_nested_lists_name_paths_at_a_and_at_b(old: list[Any],
                                                           new: list[Any]) -> None:
    # a list inside a list whose elements shift: its ops' paths are positions at the
    # time they apply, and a moved element's other end is a path at a (insert) or at
    # b (remove) all the way down, not a mix of the two
    ops = list(value_ops(("f",), old, new))
    found = moves(ops, old)
    for i, where in found.items():
        path, kind, o, v = ops[i]
        assert where[0] == "f"
        at_a, at_b = old, new
        for step in where[1:]:
            at_a = at_a[step] if kind == "insert" else at_a
            at_b = at_b[step] if kind == "remove" else at_b
        if kind == "insert":
            assert values_equal(at_a, v)
        else:
            assert kind == "remove" and values_equal(at_b, o)
