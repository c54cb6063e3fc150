"""Stateful differential test: the engine against a plain-Python model.

A hypothesis ``RuleBasedStateMachine`` drives one ``Memory`` through creates,
field sets and deletes, tombstones, list/map edits through proxies (nested
ones too), operations that must be refused, commits, discards, transactions,
checkpoints, close-and-reopen, time travel (``at``) and ``diff``; after every
step the staged state, the counters, the history and the state hash must equal
the model's (tests/model.py).

FORMAT.md rules exercised: R50 (a tombstoned node cannot change), R51
(references name existing nodes), R52 (paths), §5 (bool is not int, float bits
preserved), §9.2 (state hash), §8.4 (checkpoints are a cache: time travel and
reopen give the same states across them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import shutil
import struct
import tempfile
from typing import Any

import pytest
from crashutil import read_bytes
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from model import (
    MISSING_MARK,
    FixedClock,
    Model,
    ModelNode,
    clone,
    describe,
    plain,
    same_value,
    state_hash,
)
from model import (
    node_diff as model_node_diff,
)

from myosotis import (
    MISSING,
    ClosedError,
    Commit,
    DeletedNodeError,
    FieldNotFoundError,
    InvalidOperationError,
    InvalidValueError,
    ListProxy,
    MapProxy,
    Memory,
    NodeNotFoundError,
    ReadOnlyError,
    Ref,
    View,
)
from myosotis.format.header import encode_file_header
from myosotis.testing import open_memory, store_of

# --------------------------------------------------------------------------
# strategies

TYPES = ("Agent", "Task", "Note")
FIELD_NAMES = ("a", "b", "goal", "items", "m", "type", "ünï", "日本")
_ATTR_OK = {"a", "b", "goal", "items", "m"}  # not shadowed by a Node property

TEXT = st.text(st.characters(codec="utf-8"), max_size=10)
KEYS = st.text(st.characters(codec="utf-8"), max_size=4)


def _f64(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


SPECIAL_FLOATS = (
    -0.0, 0.0, float("inf"), float("-inf"),
    _f64(0x7FF8000000000000),  # the usual quiet NaN
    _f64(0x7FF8000000000123),  # quiet NaN with a payload
    _f64(0xFFF800000000BEEF),  # negative NaN with a payload
    _f64(0x0000000000000001),  # smallest subnormal
)
INTS = st.integers(-(1 << 63), (1 << 63) - 1) | st.sampled_from(
    [0, 1, -1, (1 << 63) - 1, -(1 << 63), 1 << 62, -(1 << 32)])
FLOATS = st.floats() | st.sampled_from(SPECIAL_FLOATS)


@functools.cache
def values(max_ref: int) -> st.SearchStrategy[Any]:
    """Stored values; references to ids 1..max_ref (none when max_ref == 0)."""
    scalars = st.none() | st.booleans() | INTS | FLOATS | TEXT
    if max_ref >= 1:
        scalars = scalars | st.integers(1, max_ref).map(Ref)
    return st.recursive(
        scalars,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(KEYS, c, max_size=4),
        max_leaves=8,
    )


@functools.cache
def containers(max_ref: int) -> st.SearchStrategy[Any]:
    """Lists and maps, often with a list or map inside (targets for nested edits)."""
    inner = values(max_ref)
    nested = st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3)
    return (st.lists(inner | nested, max_size=4)
            | st.dictionaries(KEYS, inner | nested, max_size=4))


def with_handles(v: Any, mem: Memory) -> Any:
    """``v`` with every Ref replaced by a node handle of ``mem`` (the API accepts both)."""
    if type(v) is Ref:
        return mem.get(v.id)
    if type(v) is list:
        return [with_handles(x, mem) for x in v]
    if type(v) is dict:
        return {k: with_handles(x, mem) for k, x in v.items()}
    return v


def deep_list(depth: int) -> list[Any]:
    v: list[Any] = []
    for _ in range(depth - 1):
        v = [v]
    return v


class Boom(Exception):
    """Raised inside a transaction to make it discard."""


# --------------------------------------------------------------------------
# helpers


def check_node(src: Memory | View, node_id: int, expected: ModelNode, where: str) -> None:
    n = src.get(node_id)
    assert n.id == node_id
    assert n.type == expected.type, f"{where}: node {node_id} type"
    assert n.deleted == expected.deleted, f"{where}: node {node_id} deleted flag"
    got = plain(n.fields())
    assert list(got) == sorted(expected.fields), f"{where}: node {node_id} field names"
    assert list(n) == sorted(expected.fields)
    for name, want in expected.fields.items():
        assert same_value(got[name], want), (
            f"{where}: node {node_id} field {name!r}: got {describe(got[name])}, "
            f"expected {describe(want)}")


def check_state(src: Memory | View, nodes: dict[int, ModelNode], next_node_id: int,
                where: str) -> None:
    assert src.next_node_id == next_node_id, where
    live = sorted(i for i, n in nodes.items() if not n.deleted)
    assert len(src) == len(live), where
    assert [n.id for n in src.nodes()] == live, where
    assert [n.id for n in src.nodes(deleted=True)] == list(range(1, next_node_id)), where
    for t in TYPES:
        assert [n.id for n in src.nodes(type=t, deleted=True)] == sorted(
            i for i, n in nodes.items() if n.type == t), where
    assert 0 not in src and next_node_id not in src
    for node_id in sorted(nodes):
        check_node(src, node_id, nodes[node_id], where)
    with pytest.raises(NodeNotFoundError):
        src.get(next_node_id)


# --------------------------------------------------------------------------
# the machine


class GraphMachine(RuleBasedStateMachine):
    """One Memory and the model it must agree with."""

    checkpoint_floor: int | None = None  # None: the engine's default (1 MiB)

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="myo-stateful-")
        self.path = os.path.join(self.dir, "graph.myo")
        self.clock = FixedClock()
        self.model = Model()
        self.last_checkpoint = 0  # seq covered by the newest checkpoint (0: none)
        self.mem = self._open("none")

    def _open(self, durability: str) -> Memory:
        kw: dict[str, Any] = {}
        if self.checkpoint_floor is not None:
            kw["checkpoint_floor"] = self.checkpoint_floor
        return open_memory(self.path, clock=self.clock, durability=durability,  # type: ignore[arg-type]
                           **kw)

    def teardown(self) -> None:
        self.mem.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ drawing

    def _live(self) -> list[int]:
        return self.model.live_ids()

    def _value(self, data: st.DataObject, container: bool = False) -> Any:
        strat = containers if container else values
        return data.draw(strat(self.model.next_node_id - 1), label="value")

    def _api(self, data: st.DataObject, v: Any) -> Any:
        """What to pass to the API for the model value ``v``: itself, or with handles."""
        if data.draw(st.booleans(), label="handles"):
            return with_handles(v, self.mem)
        return v

    def _proxy(self, node_id: int, name: str, path: tuple[Any, ...]) -> Any:
        p = self.mem.get(node_id)[name]
        for step in path:
            p = p[step]
        return p

    def _do_create(self, data: st.DataObject) -> None:
        # a node may reference itself at creation (R51: the id exists once CREATE applies)
        strat = values(self.model.next_node_id)
        fields = data.draw(st.dictionaries(st.sampled_from(FIELD_NAMES), strat, max_size=4),
                           label="fields")
        type_name = data.draw(st.sampled_from(TYPES), label="type")
        n = self.mem.create(type_name, **fields)
        node_id = self.model.create(type_name, fields)
        assert n.id == node_id
        assert n.type == type_name

    def _do_set(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(self._live()), label="node")
        name = data.draw(st.sampled_from(FIELD_NAMES), label="field")
        v = self._value(data, container=data.draw(st.booleans(), label="container"))
        arg = self._api(data, v)
        n = self.mem.get(node_id)
        if name in _ATTR_OK and data.draw(st.booleans(), label="attr syntax"):
            setattr(n, name, arg)
        else:
            n[name] = arg
        self.model.set_field(node_id, name, v)

    # ------------------------------------------------------------ graph rules

    @rule(data=st.data())
    def create_node(self, data: st.DataObject) -> None:
        self._do_create(data)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def set_field(self, data: st.DataObject) -> None:
        self._do_set(data)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def set_list_field(self, data: st.DataObject) -> None:
        """A field holding a list of a few elements, bare or inside a map or a list, as a
        target for the proxy edits below."""
        node_id = data.draw(st.sampled_from(self._live()), label="node")
        name = data.draw(st.sampled_from(FIELD_NAMES), label="field")
        lst = data.draw(st.lists(values(self.model.next_node_id - 1), min_size=2, max_size=6),
                        label="list")
        v = data.draw(st.sampled_from([lst, {"inner": lst, "x": 1}, [0, lst], {"m": {"l": lst}}]),
                      label="shape")
        self.mem.get(node_id)[name] = self._api(data, v)
        self.model.set_field(node_id, name, v)

    @precondition(lambda self: any(self.model.staged[i].fields for i in self._live()))
    @rule(data=st.data())
    def delete_field(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(
            [i for i in self._live() if self.model.staged[i].fields]), label="node")
        name = data.draw(st.sampled_from(sorted(self.model.staged[node_id].fields)))
        n = self.mem.get(node_id)
        if name in _ATTR_OK and data.draw(st.booleans(), label="attr syntax"):
            delattr(n, name)
        else:
            del n[name]
        self.model.unset_field(node_id, name)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def delete_missing_field_is_refused(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(self._live()), label="node")
        n = self.mem.get(node_id)
        with pytest.raises(FieldNotFoundError):
            del n["no such field"]

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def delete_node(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(self._live()), label="node")
        self.mem.get(node_id).delete()
        self.model.delete(node_id)

    @precondition(lambda self: self.model.deleted_ids())
    @rule(data=st.data())
    def deleted_node_cannot_change(self, data: st.DataObject) -> None:
        """R50: every mutation of a tombstoned node raises DeletedNodeError, changes nothing."""
        node_id = data.draw(st.sampled_from(self.model.deleted_ids()), label="node")
        node = self.model.staged[node_id]
        n = self.mem.get(node_id)
        assert n.deleted
        actions = ["set", "delete"]
        if node.fields:
            actions.append("unset")
        if self.model.container_paths(node_id, list):
            actions.append("list")
        if self.model.container_paths(node_id, dict):
            actions.append("map")
        action = data.draw(st.sampled_from(actions), label="action")
        with pytest.raises(DeletedNodeError):
            if action == "set":
                n["a"] = 1
            elif action == "delete":
                n.delete()
            elif action == "unset":
                del n[sorted(node.fields)[0]]
            elif action == "list":
                name, path = self.model.container_paths(node_id, list)[0]
                self._proxy(node_id, name, path).append(1)
            else:
                name, path = self.model.container_paths(node_id, dict)[0]
                self._proxy(node_id, name, path)["k"] = 1

    # ------------------------------------------------------------ proxies

    def _paths(self, kind: type) -> list[tuple[int, str, tuple[Any, ...]]]:
        return [(i, name, path) for i in self._live()
                for name, path in self.model.container_paths(i, kind)]

    @precondition(lambda self: self._paths(list))
    @rule(data=st.data())
    def list_edit(self, data: st.DataObject) -> None:
        for _ in range(data.draw(st.integers(1, 5), label="edits")):
            paths = self._paths(list)
            if not paths:
                return
            node_id, name, path = data.draw(st.sampled_from(paths), label="list")
            self._list_edit_once(data, node_id, name, path)

    def _list_edit_once(self, data: st.DataObject, node_id: int, name: str,
                        path: tuple[Any, ...]) -> None:
        lst = self.model.container(node_id, name, path)
        proxy = self._proxy(node_id, name, path)
        assert type(proxy) is ListProxy
        assert len(proxy) == len(lst)
        size = len(lst)
        op = data.draw(st.sampled_from(["append", "insert", "del", "replace"]), label="op")
        if op in ("append", "insert", "replace"):
            v = self._value(data)
            arg = self._api(data, v)
        if op == "append":
            proxy.append(arg)
            lst.append(clone(v))
        elif op == "insert":
            i = data.draw(st.sampled_from(range(-size - 2, size + 3)), label="index")
            proxy.insert(i, arg)
            lst.insert(i, clone(v))  # same clamping as list.insert
        else:
            i = data.draw(st.sampled_from(range(-size - 1, size + 1)), label="index")
            if not -size <= i < size:
                with pytest.raises(IndexError):
                    if op == "del":
                        del proxy[i]
                    else:
                        proxy[i] = arg
                return
            if op == "del":
                del proxy[i]
                del lst[i]
            else:
                proxy[i] = arg
                lst[i] = clone(v)
        self.model.edited()

    @precondition(lambda self: self._paths(dict))
    @rule(data=st.data())
    def map_edit(self, data: st.DataObject) -> None:
        for _ in range(data.draw(st.integers(1, 3), label="edits")):
            paths = self._paths(dict)
            if not paths:
                return
            node_id, name, path = data.draw(st.sampled_from(paths), label="map")
            self._map_edit_once(data, node_id, name, path)

    def _map_edit_once(self, data: st.DataObject, node_id: int, name: str,
                       path: tuple[Any, ...]) -> None:
        m = self.model.container(node_id, name, path)
        proxy = self._proxy(node_id, name, path)
        assert type(proxy) is MapProxy
        assert sorted(proxy) == sorted(m)
        ops = ["set", "del_missing"] + (["del"] if m else [])
        op = data.draw(st.sampled_from(ops), label="op")
        if op == "set":
            key = data.draw(KEYS | st.sampled_from(sorted(m) or [""]), label="key")
            v = self._value(data)
            proxy[key] = self._api(data, v)
            m[key] = clone(v)
        elif op == "del":
            key = data.draw(st.sampled_from(sorted(m)), label="key")
            del proxy[key]
            del m[key]
        else:
            key = data.draw(KEYS.filter(lambda k: k not in m), label="key")
            with pytest.raises(KeyError):
                del proxy[key]
            return
        self.model.edited()

    # ------------------------------------------------------------ refused operations

    @rule(data=st.data())
    def invalid_operation_is_refused(self, data: st.DataObject) -> None:
        """Bad values and dangling references (R51, §11 integer range) change nothing;
        a refused create does not use up an id."""
        kind = data.draw(st.sampled_from(
            ["dangling ref", "nested dangling ref", "int too big", "int too small",
             "non-str key", "set", "bytes", "object", "surrogate", "too deep"]), label="kind")
        bad: Any = {
            "dangling ref": Ref(10**6),
            "nested dangling ref": {"x": [1, Ref(10**6)]},
            "int too big": 1 << 63,
            "int too small": -(1 << 63) - 1,
            "non-str key": {"ok": 1, 2: "x"},
            "set": {1, 2},
            "bytes": b"bytes",
            "object": object(),
            "surrogate": "bad \ud800 text",
            "too deep": deep_list(65),
        }[kind]
        expected: tuple[type[Exception], ...] = (InvalidValueError,)
        if "dangling" in kind:
            expected = (NodeNotFoundError, InvalidValueError)
        live = self._live()
        where = data.draw(st.sampled_from(
            ["create", "set"] + (["list", "map"] if live else [])), label="where")
        if where == "set" and not live:
            where = "create"
        with pytest.raises(expected):
            if where == "create":
                self.mem.create("Agent", name="x", bad=bad)
            elif where == "set":
                self.mem.get(live[0])["bad"] = bad
            elif where == "list":
                self.mem.get(live[0])["a"] = []
                self.model.set_field(live[0], "a", [])
                self.mem.get(live[0])["a"].append(bad)
            else:
                self.mem.get(live[0])["a"] = {}
                self.model.set_field(live[0], "a", {})
                self.mem.get(live[0])["a"]["k"] = bad

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def field_named_like_a_property_needs_item_syntax(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(self._live()), label="node")
        with pytest.raises(InvalidOperationError):
            self.mem.get(node_id).type = "Other"  # type: ignore[misc]

    # ------------------------------------------------------------ commits

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        label = data.draw(st.none() | TEXT, label="label")
        allow_empty = data.draw(st.booleans(), label="allow_empty")
        before = read_bytes(self.path)
        end = store_of(self.mem).log.valid_end
        head = self.mem.head
        c = self.mem.commit(label=label, allow_empty=allow_empty)
        if self.model.pending == 0 and not allow_empty:
            assert c is None
            assert read_bytes(self.path) == before, "an empty commit() wrote bytes"
            return
        assert isinstance(c, Commit)
        self.model.commit(label, self.clock.now)
        assert c.seq == self.model.head
        assert c.label == (label or None)
        assert c.parent == (head.id if head is not None else None)
        assert c.next_node_id == self.model.next_node_id
        assert c.timestamp == _timestamp(self.clock.now)
        assert self.mem.head == c
        assert store_of(self.mem).log.valid_end > end  # a frame was added
        after = read_bytes(self.path)
        assert after[32:end] == before[32:end]  # and nothing before it changed, but the
        # header's move to version 2 with the first FRAME_FLAG_UNSYNCED frame, to 3 with
        # the first UNDELETE (test_stateful_rewind.py), or to 4 with the first layer the
        # writer appends after a commit (§3, §8.7, §12)
        assert after[:32] in (before[:32], *(encode_file_header(v) for v in (2, 3, 4)))

    @rule()
    def discard(self) -> None:
        assert self.mem.discard() == self.model.discard()

    @rule(data=st.data())
    def transaction(self, data: st.DataObject) -> None:
        fail = data.draw(st.booleans(), label="raise")
        label = data.draw(st.none() | TEXT, label="label")
        if self.model.pending:
            with pytest.raises(InvalidOperationError), self.mem.transaction(label=label):
                pass
            return
        before = self.mem.head
        outcome = pytest.raises(Boom) if fail else contextlib.nullcontext()
        with outcome, self.mem.transaction(label=label):
            self._do_create(data)
            if data.draw(st.booleans(), label="also set"):
                self._do_set(data)
            if fail:
                raise Boom
        if fail:
            self.model.discard()
            assert self.mem.head == before
        else:
            self.model.commit(label, self.clock.now)
            assert self.mem.head is not None and self.mem.head.seq == self.model.head

    @rule()
    def checkpoint(self) -> None:
        """Checkpoints are a cache (§8.4): staged changes stay staged, the state is
        unchanged (the invariants check both)."""
        first = self.mem.checkpoint()
        if self.checkpoint_floor is None:  # no automatic checkpoints: exact prediction
            assert first == (self.model.head > 0 and self.last_checkpoint != self.model.head)
        elif self.model.head == 0:
            assert first is False
        assert self.mem.checkpoint() is False, "a second checkpoint() had something new"
        if self.model.head > 0:
            self.last_checkpoint = self.model.head

    @rule(data=st.data())
    def close_and_reopen(self, data: st.DataObject) -> None:
        """Closing drops staged changes, like discard; the committed state, its hash and
        the ids in use survive."""
        committed_hash = state_hash(self.model.committed, self.model.committed_next)
        before = self.mem.state_hash() if self.model.pending == 0 else committed_hash
        handle = self.mem.get(1) if self.model.committed_next > 1 else None
        self.mem.close()
        self.mem.close()  # idempotent
        if handle is not None:
            with pytest.raises(ClosedError):
                _ = handle.type
        self.model.discard()
        self.mem = self._open(data.draw(st.sampled_from(["none", "full"]), label="durability"))
        assert self.mem.pending == 0
        assert self.mem.state_hash() == committed_hash == before
        if handle is not None:
            assert self.mem.get(1).id == handle.id
            assert self.mem.get(1).type == self.model.committed[1].type

    # ------------------------------------------------------------ history

    def _name_of(self, data: st.DataObject, seq: int) -> Any:
        head = self.model.head
        forms = ["seq", f"HEAD~{head - seq}"]
        if seq >= 1:
            forms += ["commit", "id", "prefix", "upper prefix"]
        if seq == head:
            forms.append("HEAD")
        form = data.draw(st.sampled_from(forms), label="commit name")
        if form == "seq":
            return seq
        if form.startswith("HEAD"):
            return form
        c = self.mem.history()[seq - 1]
        if form == "commit":
            return c
        if form == "id":
            return c.id
        n = data.draw(st.integers(12, 20), label="prefix length")
        return c.id[:n].upper() if form == "upper prefix" else c.id[:n]

    @rule(data=st.data())
    def time_travel(self, data: st.DataObject) -> None:
        seq = data.draw(st.integers(0, self.model.head), label="seq")
        name = self._name_of(data, seq)
        assert self.mem.resolve(name) == seq
        view = self.mem.at(name)
        snap = self.model.snapshots[seq]
        check_state(view, snap.nodes, snap.next_node_id, f"at({seq})")
        assert view.state_hash() == state_hash(snap.nodes, snap.next_node_id)
        if seq >= 1:
            assert view.commit.seq == seq
            assert view.commit.label == snap.label
        live = [i for i, n in snap.nodes.items() if not n.deleted]
        if live:
            with pytest.raises(ReadOnlyError):
                view.get(live[0])["a"] = 1

    @rule(data=st.data())
    def diff(self, data: st.DataObject) -> None:
        a = data.draw(st.integers(0, self.model.head), label="a")
        b = data.draw(st.integers(0, self.model.head), label="b")
        d = self.mem.diff(self._name_of(data, a), self._name_of(data, b))
        assert (d.a, d.b) == (a, b)
        want = model_node_diff(self.model.snapshots[a].nodes, self.model.snapshots[b].nodes)
        got = [(n.id, n.type, n.status,
                [(f.field, MISSING_MARK if f.old is MISSING else f.old,
                  MISSING_MARK if f.new is MISSING else f.new) for f in n.fields])
               for n in d.nodes]
        assert [g[:3] for g in got] == [w[:3] for w in want], f"diff({a}, {b}) nodes"
        for g, w in zip(got, want, strict=True):
            assert [f[0] for f in g[3]] == [f[0] for f in w[3]], f"diff({a}, {b}) fields"
            for (_, go, gn), (_, wo, wn) in zip(g[3], w[3], strict=True):
                assert same_value(go, wo) and same_value(gn, wn), f"diff({a}, {b})"
        assert d.created == [w[0] for w in want if w[2] == "created"]
        assert d.deleted == [w[0] for w in want if w[2] == "deleted"]
        assert bool(d) == bool(want)

    # ------------------------------------------------------------ invariants

    @invariant()
    def staged_state_matches_model(self) -> None:
        m = self.model
        assert self.mem.pending == m.pending
        check_state(self.mem, m.staged, m.next_node_id, "staged")
        assert self.mem.state_hash() == state_hash(m.staged, m.next_node_id)

    @invariant()
    def history_matches_model(self) -> None:
        hist = self.mem.history()
        snaps = self.model.snapshots[1:]
        assert [c.seq for c in hist] == list(range(1, len(snaps) + 1))
        assert [c.label for c in hist] == [s.label for s in snaps]
        assert [c.timestamp for c in hist] == [_timestamp(s.timestamp_us) for s in snaps]
        assert [c.next_node_id for c in hist] == [s.next_node_id for s in snaps]
        parents = [None, *[c.id for c in hist[:-1]]][:len(hist)]
        assert [c.parent for c in hist] == parents
        assert len({c.id for c in hist}) == len(hist)
        assert self.mem.head == (hist[-1] if hist else None)


def _timestamp(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)


class SmallFloorMachine(GraphMachine):
    """The same rules with automatic checkpoints every few hundred bytes (§8.4), so time
    travel, diff and reopen cross many checkpoints."""

    checkpoint_floor = 256


FAST = settings(max_examples=60, stateful_step_count=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=250, stateful_step_count=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_engine_agrees_with_model() -> None:
    run_state_machine_as_test(GraphMachine, settings=FAST)


def test_engine_agrees_with_model_across_automatic_checkpoints() -> None:
    run_state_machine_as_test(SmallFloorMachine, settings=settings(FAST, max_examples=30))


@pytest.mark.slow
def test_engine_agrees_with_model_long_run() -> None:
    run_state_machine_as_test(GraphMachine, settings=SLOW)


@pytest.mark.slow
def test_engine_agrees_with_model_across_automatic_checkpoints_long_run() -> None:
    run_state_machine_as_test(SmallFloorMachine, settings=SLOW)
