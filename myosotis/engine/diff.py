"""The diff engine: what changed between two commits, down to the path inside a field.

:func:`diff_states` finds the nodes the commits between the two touched
(``touched_between``: the cost follows the changes, not the size of the
state) and returns a lazy :class:`Diff`. Its ops are computed node by node
as they are read (engine/structdiff.py for the values), so a huge diff
streams: the ops are never all held (the two historical states do keep the
nodes they decoded, as every read of a past commit does). How a diff is shown (``str``,
HTML, JSON) is in engine/diff_render.py, how it is applied in
engine/diffapply.py.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from myosotis.engine.diff_render import diff_html, diff_json, diff_text
from myosotis.engine.graph import NodeState
from myosotis.engine.segments import HistoricalState
from myosotis.engine.store import Store
from myosotis.engine.structdiff import MISSING, moves, value_ops
from myosotis.format.mutation_parts import Path
from myosotis.format.values import clone, values_equal


class DiffOp(NamedTuple):
    """One change: at ``path`` of node ``node`` (of type ``type``), ``op`` turned ``old``
    into ``new`` (stored values; ``MISSING`` where a side has none).

    ``path`` is ``()`` for the node ops ``create`` (``new``: the node's fields at
    ``b``), ``delete`` (tombstone set), and for a diff back in time ``uncreate``
    (``old``: the fields at ``a``) and ``undelete``. Otherwise it starts with the
    field name, then list indices (``int``) and map keys (``str``): ``add`` (a
    field or map key appears), ``remove`` (a field, map key or list element
    goes), ``change`` (the value there is replaced: scalars, references, a value
    of another type), ``insert`` (a list element). List indices are positions
    when the ops of that list are applied in order (engine/structdiff.py).

    ``moved`` marks a list element that moved: on an ``insert``, the path of the
    same value in the list at ``a`` (where it came from); on a ``remove``, its
    path in the list at ``b`` (where it went); None otherwise. It only describes:
    the op still inserts or removes (engine/structdiff.py ``moves``).
    """

    node: int
    type: str
    path: Path
    op: str
    old: Any
    new: Any
    moved: Path | None = None


@dataclass(frozen=True)
class FieldChange:
    """One field of one node: ``old`` and ``new`` stored values (MISSING when absent)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class NodeChange:
    """How one node differs between the two commits.

    ``status`` is ``"created"`` (absent at ``a``), ``"deleted"`` (tombstoned
    at ``b`` only), ``"changed"`` (fields differ), ``"undeleted"`` (tombstoned at
    ``a`` only: an UNDELETE, or a diff that goes backwards in time) and, backwards
    only, ``"uncreated"`` (absent at ``b``).
    """

    id: int
    type: str
    status: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class DiffStat:
    """Counts of a diff: nodes with a change, ops by kind, and ops by field name."""

    nodes: int
    ops: int
    by_op: dict[str, int]
    by_field: dict[str, int]


class _Source:
    """What a Diff reads: the two states, the touched ids, and a liveness check."""

    def __init__(self, a: HistoricalState, b: HistoricalState, ids: list[int],
                 ids_of: tuple[str | None, str | None], alive: Callable[[], object]) -> None:
        self.a, self.b, self.ids, self.commit_ids, self.alive = a, b, ids, ids_of, alive


@dataclass(frozen=True)
class _Where:
    nodes: frozenset[int] | None = None
    types: frozenset[str] | None = None
    fields: frozenset[str] | None = None


def _as_set(v: Any, kind: type) -> frozenset[Any] | None:
    if v is None:
        return None
    if isinstance(v, kind):
        return frozenset([v])
    return frozenset(v)


class Diff:
    """Every difference between the states after commits ``a`` and ``b``.

    Iterate it (``for op in diff`` or ``diff.ops()``) for :class:`DiffOp` s in node
    id order; ``len(diff)`` counts them, ``diff.filter(...)`` narrows them, and
    ``str(diff)``, ``_repr_html_()`` and ``to_json()`` show them (bounded;
    ``to_json`` whole, schema in docs/DIFF.md). ``nodes`` gives the same changes
    per node and whole field (:class:`NodeChange`). The ops are computed each
    time they are read, from the two states, at a cost that follows the
    changed nodes; read them while the memory is open (else ClosedError).
    """

    def __init__(self, a: int, b: int, source: _Source, where: _Where | None = None) -> None:
        self.a, self.b = a, b
        self._src = source
        self._where = where or _Where()
        self._len: int | None = None
        self._nodes: tuple[NodeChange, ...] | None = None

    # ------------------------------------------------------------------ ops

    def _node_ids(self) -> Iterator[int]:
        self._src.alive()
        want = self._where.nodes
        for node_id in self._src.ids:
            if want is None or node_id in want:
                yield node_id

    def _pair(self, node_id: int) -> tuple[NodeState | None, NodeState | None, str] | None:
        na, nb = self._src.a.get(node_id), self._src.b.get(node_id)
        some = nb if nb is not None else na
        if some is None:
            return None
        if self._where.types is not None and some.type not in self._where.types:
            return None
        return na, nb, some.type

    def ops(self) -> Iterator[DiffOp]:
        """The ops, node by node in id order, computed as they are read (a huge diff
        streams). Within a node: ``create``/``undelete`` first, then fields by
        name, then ``delete``."""
        fields = self._where.fields
        for node_id in self._node_ids():
            pair = self._pair(node_id)
            if pair is None:
                continue
            for op in node_ops(node_id, *pair):
                if fields is None or (op.path and op.path[0] in fields):
                    yield op

    def __iter__(self) -> Iterator[DiffOp]:
        return self.ops()

    def __len__(self) -> int:
        """Number of ops (counted once by reading them all, then remembered)."""
        if self._len is None:
            self._len = sum(1 for _ in self.ops())
        return self._len

    def __bool__(self) -> bool:
        return next(self.ops(), None) is not None

    def filter(self, node: int | Collection[int] | None = None,
               type: str | Collection[str] | None = None,
               field: str | Collection[str] | None = None) -> Diff:
        """The ops of these nodes, node types and fields only (each one value or a
        collection; None: any). A field filter leaves out the node ops (create,
        delete, ...), whose path has no field. Costs nothing until read."""
        w = self._where
        nodes, types, fields = _as_set(node, int), _as_set(type, str), _as_set(field, str)
        return Diff(self.a, self.b, self._src, _Where(
            w.nodes if nodes is None else nodes if w.nodes is None else w.nodes & nodes,
            w.types if types is None else types if w.types is None else w.types & types,
            w.fields if fields is None else fields if w.fields is None else w.fields & fields))

    def stat(self) -> DiffStat:
        """Counts by op kind and by field (one pass over the ops)."""
        by_op: dict[str, int] = {}
        by_field: dict[str, int] = {}
        nodes: set[int] = set()
        total = 0
        for op in self.ops():
            total += 1
            nodes.add(op.node)
            by_op[op.op] = by_op.get(op.op, 0) + 1
            if op.path:
                name = str(op.path[0])
                by_field[name] = by_field.get(name, 0) + 1
        return DiffStat(len(nodes), total, by_op, dict(sorted(by_field.items())))

    # ------------------------------------------------------------------ per node

    @property
    def nodes(self) -> tuple[NodeChange, ...]:
        """Each changed node with its whole-field changes (computed once)."""
        if self._nodes is None:
            out = []
            for node_id in self._node_ids():
                pair = self._pair(node_id)
                if pair is not None:
                    nc = node_change(node_id, *pair, self._where.fields)
                    if nc is not None:
                        out.append(nc)
            self._nodes = tuple(out)
        return self._nodes

    def _ids(self, status: str) -> list[int]:
        return [n.id for n in self.nodes if n.status == status]

    @property
    def created(self) -> list[int]:
        return self._ids("created")

    @property
    def deleted(self) -> list[int]:
        return self._ids("deleted")

    @property
    def changed(self) -> list[NodeChange]:
        return [n for n in self.nodes if n.fields]

    # ------------------------------------------------------------------ showing

    @property
    def next_node_ids(self) -> tuple[int, int]:
        """``next_node_id`` of the states after ``a`` and ``b``: the nodes the diff
        creates are the ids between them."""
        return self._src.a.next_node_id, self._src.b.next_node_id

    @property
    def commit_ids(self) -> tuple[str | None, str | None]:
        """The ids (hex) of commits ``a`` and ``b``; None for the empty state 0."""
        return self._src.commit_ids

    def __str__(self) -> str:
        """A git-like text: one header per node, one line per op, values cut to 60
        characters, at most 200 lines."""
        return diff_text(self, max_lines=200, width=60)

    def __repr__(self) -> str:
        return f"<Diff {self.a} -> {self.b}: {len(self._src.ids)} nodes touched>"

    def _repr_html_(self) -> str:
        """An HTML table (node, type, path, op, old, new) of the first 200 ops,
        values cut to 80 characters, escaped."""
        return diff_html(self, max_rows=200, width=80)

    def to_json(self) -> dict[str, Any]:
        """The whole diff as a JSON-ready dict, schema ``myosotis.diff`` version 1
        (docs/DIFF.md): ``{"schema", "version", "from", "to", "stat", "ops"}``."""
        return diff_json(self)


# ---------------------------------------------------------------------- node level


def node_ops(node_id: int, na: NodeState | None, nb: NodeState | None,
             type_name: str) -> Iterator[DiffOp]:
    """The ops of one node between its states at ``a`` and ``b`` (None: absent)."""
    if na is None:
        assert nb is not None
        yield DiffOp(node_id, type_name, (), "create", MISSING, clone(nb.fields))
        if nb.deleted:
            yield DiffOp(node_id, type_name, (), "delete", MISSING, MISSING)
        return
    if nb is None:
        yield DiffOp(node_id, type_name, (), "uncreate", clone(na.fields), MISSING)
        return
    if na.deleted and not nb.deleted:
        yield DiffOp(node_id, type_name, (), "undelete", MISSING, MISSING)
    fa, fb = na.fields, nb.fields
    for name in sorted(fa.keys() | fb.keys()):
        if name not in fb:
            yield DiffOp(node_id, type_name, (name,), "remove", clone(fa[name]), MISSING)
        elif name not in fa:
            yield DiffOp(node_id, type_name, (name,), "add", MISSING, clone(fb[name]))
        else:
            ops = list(value_ops((name,), fa[name], fb[name]))
            moved = moves(ops, fa[name])
            for i, (path, kind, old, new) in enumerate(ops):
                yield DiffOp(node_id, type_name, path, kind,
                             MISSING if kind in ("add", "insert") else clone(old),
                             MISSING if kind == "remove" else clone(new), moved.get(i))
    if nb.deleted and not na.deleted:
        yield DiffOp(node_id, type_name, (), "delete", MISSING, MISSING)


def node_change(node_id: int, na: NodeState | None, nb: NodeState | None, type_name: str,
                only: frozenset[str] | None = None) -> NodeChange | None:
    """One node's change per whole field; None when it is the same at both ends."""
    fa = na.fields if na is not None else {}
    fb = nb.fields if nb is not None else {}
    changes = []
    for name in sorted(fa.keys() | fb.keys()):
        if only is not None and name not in only:
            continue
        old, new = fa.get(name, MISSING), fb.get(name, MISSING)
        if old is MISSING or new is MISSING or not values_equal(old, new):
            changes.append(FieldChange(name, old, new))
    if na is None:
        status = "created"
    elif nb is None:
        status = "uncreated"
    elif nb.deleted and not na.deleted:
        status = "deleted"
    elif na.deleted and not nb.deleted:
        status = "undeleted"
    elif changes:
        status = "changed"
    else:
        return None  # touched, then changed back
    if only is not None and not changes:
        return None
    return NodeChange(node_id, type_name, status, tuple(changes))


def state_a(d: Diff) -> HistoricalState:
    """The state after the diff's commit ``a`` (for engine/diffapply.py)."""
    return d._src.a


def diff_states(store: Store, a: int, b: int, alive: Callable[[], object] = lambda: None,
                ) -> Diff:
    """Compare the states after commits ``a`` and ``b`` (either order), lazily.

    Only nodes touched by the commits between the two are compared, so the
    cost follows the changes, not the size of the state. ``alive`` is called
    before the ops are read (the memory's closed check).
    """
    lo, hi = min(a, b), max(a, b)
    touched = store.touched_between(lo, hi) if lo != hi else set()
    sa: HistoricalState = store.state_at(a)
    sb: HistoricalState = store.state_at(b)
    ids = (None if a == 0 else store.commit_info(a).id, None if b == 0 else store.commit_info(b).id)
    return Diff(a, b, _Source(sa, sb, sorted(touched), ids, alive))
