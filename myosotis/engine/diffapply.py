"""Turning a diff into the mutations (FORMAT.md §6) that redo it on another state.

Every op is checked against the current state first, on scratch copies of
the fields it touches, in the order the ops apply (list positions move as
earlier ops of the same list apply: engine/structdiff.py): the value it
replaces or removes must equal the op's ``old``, a key or field it adds must
be absent, a node it changes must exist, be live and have the op's type.
Any mismatch is a :class:`DiffConflictError` naming the node and the path,
raised before anything is staged.

Order of the mutations: the creates (ids ascending, each with the fields
whose references exist by then), the fields of created nodes that refer to
nodes created after them, the edits, and the deletes last (a tombstoned node
can no longer change).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from myosotis.engine.diff import state_a
from myosotis.engine.diff_render import path_text, short_value
from myosotis.engine.graph import NodeState
from myosotis.engine.structdiff import MISSING
from myosotis.errors import DiffConflictError
from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Set,
    Unset,
)
from myosotis.format.values import clone, iter_refs, values_equal

if TYPE_CHECKING:
    from myosotis.engine.diff import Diff, DiffOp


class _State(Protocol):
    next_node_id: int

    def get(self, node_id: int) -> NodeState | None: ...


class _Conflict(Exception):
    """Internal: what was found instead of what the op expects (a sentence)."""


def mutations_for(d: Diff, state: _State) -> list[Mutation]:
    """The mutations that turn ``state``, where it agrees with the diff's ``a``, into
    ``b`` there. Raises DiffConflictError (nothing staged: this only reads).

    Cost: the ops, plus a copy of each field an op inside a list or map touches.
    """
    plan = _Plan(d, state)
    for op in d.ops():
        try:
            plan.add(op)
        except _Conflict as e:
            where = f"node {op.node}" + (f" {path_text(op.path)}" if op.path else "")
            raise DiffConflictError(
                f"cannot apply the diff #{d.a} -> #{d.b}: at {where}, {e}; the memory is not "
                f"in the state of commit {d.a} there, so nothing was staged") from None
    return plan.mutations()


class _Plan:
    """The mutations found so far, and scratch copies of the fields they change."""

    def __init__(self, d: Diff, state: _State) -> None:
        self.d, self.state = d, state
        self.next_id = state.next_node_id
        self.creates: list[Mutation] = []
        self.later: list[Mutation] = []
        self.edits: list[Mutation] = []
        self.deletes: list[Mutation] = []
        self.scratch: dict[tuple[int, str], Any] = {}  # (node, field) -> current value
        self.at_a: dict[tuple[int, str], Any] = {}  # the same at commit a
        # the scratch lists compared with a's, by id (held, so no id is reused)
        self.checked: dict[int, list[Any]] = {}

    def mutations(self) -> list[Mutation]:
        return [*self.creates, *self.later, *self.edits, *self.deletes]

    def add(self, op: DiffOp) -> None:
        if op.op in ("uncreate", "undelete"):
            raise DiffConflictError(
                f"cannot apply the diff #{self.d.a} -> #{self.d.b}: it {op.op}s node {op.node}, "
                "which no mutation can do (ids are never reused and a tombstone is final); "
                "apply a diff forward in time only. Nothing was staged")
        if op.op == "create":
            self._create(op)
            return
        if op.op == "delete":
            if op.node < self.state.next_node_id:  # else created by this diff just before
                self._live(op)
            self.deletes.append(Delete(op.node))
            return
        self._live(op)
        if len(op.path) == 1:
            self._field(op)
        else:
            self._inner(op)

    def _create(self, op: DiffOp) -> None:
        a_next = self.d.next_node_ids[0]
        if op.node != self.next_id:
            raise _Conflict(f"the diff creates node {op.node} but the next node id here is "
                            f"{self.next_id} (at commit {self.d.a} it was {a_next}); ids are "
                            "never reused, so a diff that creates nodes applies only where "
                            "the next node id is the one of its first commit")
        self.next_id += 1
        now, after = {}, {}
        for name, v in op.new.items():
            # R51: a created node may refer to itself and older nodes only
            if any(r > op.node for r in iter_refs(v)):
                after[name] = v
            else:
                now[name] = v
        self.creates.append(Create(op.node, op.type, now))
        self.later.extend(Set(op.node, k, v) for k, v in sorted(after.items()))

    def _live(self, op: DiffOp) -> NodeState:
        n = self.state.get(op.node) if op.node < self.state.next_node_id else None
        if n is None:
            raise _Conflict("the node does not exist here")
        if n.type != op.type:
            raise _Conflict(f"the node is of type {op.type!r} in the diff but "
                            f"{n.type!r} here")
        if n.deleted:
            raise _Conflict("the node is deleted here")
        return n

    def _current(self, op: DiffOp) -> Any:
        """The field's value as the ops so far leave it (MISSING when absent)."""
        key = (op.node, str(op.path[0]))
        if key not in self.scratch:
            n = self._live(op)
            self.scratch[key] = clone(n.fields[key[1]]) if key[1] in n.fields else MISSING
        return self.scratch[key]

    def _field(self, op: DiffOp) -> None:
        name = str(op.path[0])
        cur = self._current(op)
        if op.op == "add":
            if cur is not MISSING:
                raise _Conflict(f"the field is already set here, to {_short(cur)}")
            self.edits.append(Set(op.node, name, op.new))
        else:
            _expect(cur, op.old)
            self.edits.append(Unset(op.node, name) if op.op == "remove"
                              else Set(op.node, name, op.new))
        self.scratch[(op.node, name)] = MISSING if op.op == "remove" else clone(op.new)
        self.at_a[(op.node, name)] = self.scratch[(op.node, name)]  # never edited again

    def _expected(self, op: DiffOp) -> Any:
        """The field as it was at ``a``, with the ops so far applied (the same paths
        lead to the same places in it as in the current value)."""
        key = (op.node, str(op.path[0]))
        if key not in self.at_a:
            n = state_a(self.d).get(op.node)
            self.at_a[key] = clone(n.fields[key[1]]) if n is not None and \
                key[1] in n.fields else MISSING
        return self.at_a[key]

    def _inner(self, op: DiffOp) -> None:
        name, inner, last = str(op.path[0]), op.path[1:-1], op.path[-1]
        box, was = self._current(op), self._expected(op)
        for step in inner:
            box, was = _step(box, step), _step(was, step)
        if type(last) is int:
            self._list_op(op, box, was, last)
        else:
            self._map_op(op, box, last)
        _edit(box, op, last)
        _edit(was, op, last)
        self.edits.append(_mutation(op, name, inner, last))

    def _list_op(self, op: DiffOp, box: Any, was: Any, pos: int) -> None:
        """Checks: positions carry no context of their own, so the whole list must
        be as it was at ``a`` (checked at the first op on it)."""
        if type(box) is not list:
            raise _Conflict(f"the value there is not a list but {_short(box)}")
        if id(box) not in self.checked:
            if not values_equal(box, was):
                raise _Conflict(f"the list there is not as at commit {self.d.a} ({len(box)} "
                                f"elements here, {len(was)} there: {_short(box)})")
            self.checked[id(box)] = box
        if op.op != "insert":
            _expect(box[pos], op.old)

    def _map_op(self, op: DiffOp, box: Any, key: int | str) -> None:
        if type(box) is not dict:
            raise _Conflict(f"the value there is not a map but {_short(box)}")
        k = str(key)
        if op.op == "add":
            if k in box:
                raise _Conflict(f"the key is already set here, to {_short(box[k])}")
        elif k not in box:
            raise _Conflict("the key is absent here")
        else:
            _expect(box[k], op.old)


def _edit(box: Any, op: DiffOp, last: int | str) -> None:
    """Apply ``op`` to the container it edits (checked before)."""
    if op.op == "insert":
        box.insert(last, clone(op.new))
    elif op.op == "remove":
        del box[last]
    else:
        box[last] = clone(op.new)


def _mutation(op: DiffOp, name: str, inner: tuple[int | str, ...],
              last: int | str) -> Mutation:
    """The §6 mutation of an op inside a container."""
    if type(last) is int:
        if op.op == "insert":
            return ListInsert(op.node, name, inner, last, op.new)
        if op.op == "remove":
            return ListRemove(op.node, name, inner, last)
        return ListReplace(op.node, name, inner, last, op.new)
    if op.op == "remove":
        return MapDelete(op.node, name, inner, str(last))
    return MapSet(op.node, name, inner, str(last), op.new)


def _short(v: Any) -> str:
    return "nothing" if v is MISSING else short_value(v, 60)


def _expect(cur: Any, old: Any) -> None:
    if cur is MISSING or not values_equal(cur, old):
        raise _Conflict(f"expected {_short(old)} but found {_short(cur)}")


def _step(box: Any, step: int | str) -> Any:
    """The container one step inside ``box``, as the op's path says it is."""
    if type(step) is int:
        if type(box) is not list or step >= len(box):
            raise _Conflict(f"no list element {step} here")
        return box[step]
    if type(box) is not dict or step not in box:
        raise _Conflict(f"no map key {step!r} here")
    return box[step]
