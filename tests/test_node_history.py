"""``Memory.log``, ``blame`` and ``referrers`` against a brute-force computation over
the plain model (tests/model.py) at random commits of random histories.

A history is drawn as commits of raw mutations (creates, sets, unsets,
tombstones, list and map edits, values holding references inside lists and
maps), staged on a ``Memory`` and mirrored on the model; the test also writes
down which (node, field) each mutation touched, which is what ``log`` and
``blame`` answer. ``referrers`` is computed from the model's snapshot alone:
every path of every node (tombstoned ones too) that holds ``Ref(node)``.
The same histories are then asked again through a reader, after the index
sidecar is deleted, and through a file without a usable index.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model import FixedClock, Model, ModelNode, clone

from myosotis import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Memory,
    Mutation,
    NodeNotFoundError,
    Ref,
    Set,
    Unset,
)

FIELDS = ("a", "b", "l", "m")
# node, field (None: the node), mutation name, the fields a CREATE set
Touch = tuple[int, "str | None", str, frozenset[str]]


# ---------------------------------------------------------------------- histories


def values(next_id: int, depth: int = 0) -> st.SearchStrategy[Any]:
    leaves: list[st.SearchStrategy[Any]] = [st.none(), st.integers(-5, 5), st.sampled_from("xyz")]
    if next_id > 1:
        leaves.append(st.integers(1, next_id - 1).map(Ref))
        leaves.append(st.integers(1, next_id - 1).map(Ref))  # references are frequent
    leaf = st.one_of(leaves)
    if depth >= 2:
        return leaf
    inner = values(next_id, depth + 1)
    return st.one_of(leaf, st.lists(inner, max_size=3),
                     st.dictionaries(st.sampled_from("pqr"), inner, max_size=3))


def draw_mutation(data: st.DataObject, model: Model) -> Mutation:
    """One mutation that the rules allow on the model's staged state."""
    nodes = model.staged
    live = [i for i, n in nodes.items() if not n.deleted]
    kinds = ["create"]
    if live:
        kinds += ["set", "set", "edit", "edit", "unset", "delete"]
    kind = data.draw(st.sampled_from(kinds))
    nxt = model.next_node_id
    if kind == "create":
        fields = data.draw(st.dictionaries(st.sampled_from(FIELDS), values(nxt), max_size=3))
        return Create(nxt, "T", fields)
    nid = data.draw(st.sampled_from(live))
    fields = nodes[nid].fields
    if kind == "delete":
        return Delete(nid)
    if kind == "unset" and fields:
        return Unset(nid, data.draw(st.sampled_from(sorted(fields))))
    if kind == "edit":
        lists = [f for f in sorted(fields) if type(fields[f]) is list]
        maps = [f for f in sorted(fields) if type(fields[f]) is dict]
        if lists or maps:
            return _edit(data, nid, fields, lists, maps, nxt)
    return Set(nid, data.draw(st.sampled_from(FIELDS)), data.draw(values(nxt)))


def _edit(data: st.DataObject, nid: int, fields: dict[str, Any], lists: list[str],
          maps: list[str], nxt: int) -> Mutation:
    f = data.draw(st.sampled_from(lists + maps))
    v = fields[f]
    if type(v) is list:
        op = data.draw(st.sampled_from(["insert", "remove", "replace"] if v else ["insert"]))
        if op == "insert":
            return ListInsert(nid, f, (), data.draw(st.integers(0, len(v))),
                              data.draw(values(nxt)))
        pos = data.draw(st.integers(0, len(v) - 1))
        if op == "remove":
            return ListRemove(nid, f, (), pos)
        return ListReplace(nid, f, (), pos, data.draw(values(nxt)))
    if v and data.draw(st.booleans()):
        return MapDelete(nid, f, (), data.draw(st.sampled_from(sorted(v))))
    return MapSet(nid, f, (), data.draw(st.sampled_from("pqrs")), data.draw(values(nxt)))


def mirror(model: Model, m: Mutation) -> Touch:
    """Apply ``m`` to the model's staged state; what it touched."""
    if isinstance(m, Create):
        model.create(m.type, m.fields)
        return (m.node, None, m.NAME, frozenset(m.fields))
    if isinstance(m, Delete):
        model.delete(m.node)
        return (m.node, None, m.NAME, frozenset())
    if isinstance(m, Set):
        model.set_field(m.node, m.field, m.value)
    elif isinstance(m, Unset):
        model.unset_field(m.node, m.field)
    else:
        c = model.container(m.node, m.field, m.path)
        if isinstance(m, ListInsert):
            c.insert(m.pos, clone(m.value))
        elif isinstance(m, ListRemove):
            del c[m.pos]
        elif isinstance(m, (ListReplace, MapSet)):
            c[m.pos if isinstance(m, ListReplace) else m.key] = clone(m.value)
        else:
            del c[m.key]
        model.edited()
    return (m.node, m.field, m.NAME, frozenset())


def build(data: st.DataObject, path: str) -> tuple[Model, list[list[Touch]]]:
    """A random history written to ``path``; the model and, per commit (1-based:
    ``touches[s]``), what each mutation touched."""
    model, touches = Model(), [[]]  # touches[0]: the empty state before commit 1
    clock = FixedClock()
    with Memory.open(path, clock=clock, durability="none") as mem:
        for _ in range(data.draw(st.integers(1, 8))):
            done: list[Touch] = []
            for _ in range(data.draw(st.integers(1, 4))):
                m = draw_mutation(data, model)
                mem.stage(m)
                done.append(mirror(model, m))
            mem.commit()
            model.commit(None, clock.now)
            touches.append(done)
            if data.draw(st.integers(0, 5)) == 0:
                mem.checkpoint()  # past states read across a checkpoint base too
    return model, touches


# ---------------------------------------------------------------------- brute force


def brute_log(touches: list[list[Touch]], node: int, field: str | None,
              at: int) -> list[tuple[int, list[str]]]:
    out = []
    for s in range(at, 0, -1):
        names = [name for n, f, name, made in touches[s]
                 if n == node and (field is None or f == field or field in made)]
        if names:
            out.append((s, names))
    return out


def brute_blame(touches: list[list[Touch]], model: Model, node: int, at: int) -> dict[str, int]:
    out = {}
    for name in model.snapshots[at].nodes[node].fields:
        out[name] = next(s for s in range(at, 0, -1)
                         if any(n == node and (f == name or name in made)
                                for n, f, _, made in touches[s]))
    return out


def ref_paths(v: Any, dst: int, path: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if type(v) is Ref:
        return [path] if v.id == dst else []
    if type(v) is list:
        return [p for i, x in enumerate(v) for p in ref_paths(x, dst, (*path, i))]
    if type(v) is dict:
        return [p for k in sorted(v) for p in ref_paths(v[k], dst, (*path, k))]
    return []


def brute_referrers(nodes: dict[int, ModelNode], dst: int) -> list[tuple[int, tuple[Any, ...]]]:
    return sorted((src, p) for src in sorted(nodes) for name in sorted(nodes[src].fields)
                  for p in ref_paths(nodes[src].fields[name], dst, (name,)))


# ---------------------------------------------------------------------- answers


def answers(mem: Memory, model: Model, at: int) -> dict[str, Any]:
    """Every query for every node existing at ``at``, in plain values."""
    out: dict[str, Any] = {}
    for node in sorted(model.snapshots[at].nodes):
        out[f"log {node}"] = [(e.commit.seq, [m.NAME for m in e.mutations])
                              for e in mem.log(node, at=at)]
        for f in FIELDS:
            out[f"log {node} {f}"] = [(e.commit.seq, [m.NAME for m in e.mutations])
                                      for e in mem.log(node, f, at=at)]
        out[f"blame {node}"] = {k: c.seq for k, c in mem.blame(node, at=at).items()}
        out[f"refs {node}"] = [(r.node, r.path) for r in mem.referrers(node, at=at)]
    return out


def expected(model: Model, touches: list[list[Touch]], at: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    nodes = model.snapshots[at].nodes
    for node in sorted(nodes):
        out[f"log {node}"] = brute_log(touches, node, None, at)
        for f in FIELDS:
            out[f"log {node} {f}"] = brute_log(touches, node, f, at)
        out[f"blame {node}"] = brute_blame(touches, model, node, at)
        out[f"refs {node}"] = brute_referrers(nodes, node)
    return out


HISTORY = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])


@HISTORY
@given(st.data())
def test_log_blame_referrers_equal_brute_force(tmp_path_factory: Any, data: st.DataObject) -> None:
    path = str(tmp_path_factory.mktemp("h") / "h.myo")
    model, touches = build(data, path)
    with Memory.open(path) as mem:
        for at in sorted({model.head, data.draw(st.integers(0, model.head))}):
            assert answers(mem, model, at) == expected(model, touches, at)


@HISTORY
@given(st.data())
def test_answers_same_from_reader_rebuilt_and_fresh_index(tmp_path_factory: Any,
                                                          data: st.DataObject) -> None:
    path = str(tmp_path_factory.mktemp("h") / "h.myo")
    model, _ = build(data, path)
    at = data.draw(st.integers(0, model.head))
    with Memory.open(path) as mem:
        want = answers(mem, model, at), answers(mem, model, model.head)
    with Memory.open(path, readonly=True) as mem:  # the sidecar the writer left
        assert (answers(mem, model, at), answers(mem, model, model.head)) == want
    os.unlink(path + ".idx")
    with Memory.open(path, readonly=True) as mem:  # rebuilt by a reader
        assert (answers(mem, model, at), answers(mem, model, model.head)) == want
    assert os.path.exists(path + ".idx")  # no writer was running: the reader wrote it
    os.unlink(path + ".idx")
    with Memory.open(path) as mem:  # rebuilt by a writer
        assert (answers(mem, model, at), answers(mem, model, model.head)) == want


def test_unknown_node_and_commit_are_refused(tmp_path: Any) -> None:
    with Memory.open(str(tmp_path / "a.myo")) as mem:
        a = mem.create("A")
        mem.commit()
        with pytest.raises(NodeNotFoundError):
            list(mem.log(2))
        with pytest.raises(NodeNotFoundError):
            mem.blame(a, at=0)
        with pytest.raises(KeyError):
            mem.referrers(a, at=5)


def test_an_undelete_is_in_the_log_and_its_node_refers_again(tmp_path: Any) -> None:
    # UNDELETE (format version 3) touches the node, not a field: the log lists it, and
    # the fields it brings back (a reference among them) are still indexed
    with Memory.open(tmp_path / "u.myo") as mem:
        a = mem.create("A")
        b = mem.create("B", to=a)
        mem.commit("make")
        b.delete()
        mem.commit("delete")
        mem.restore(1)
        mem.commit("restore")
        assert [e.commit.label for e in mem.log(b.id)] == ["restore", "delete", "make"]
        assert [type(m).__name__ for m in next(iter(mem.log(b.id))).mutations] == ["Undelete"]
        assert [(r.node, r.path) for r in mem.referrers(a.id)] == [(b.id, ("to",))]
        assert not b.deleted
