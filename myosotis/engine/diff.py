"""The diff engine: what changed between two commits, node by node and field by field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from myosotis.engine.graph import NodeState
from myosotis.engine.segments import HistoricalState
from myosotis.engine.store import Store
from myosotis.format.values import values_equal


class _Missing:
    """Marks a field that does not exist on one side of a diff."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


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
class Diff:
    """Every difference between the states after commits ``a`` and ``b``, by node id."""

    a: int
    b: int
    nodes: tuple[NodeChange, ...] = field(default_factory=tuple)

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

    def __bool__(self) -> bool:
        return bool(self.nodes)


def _field_changes(na: NodeState | None, nb: NodeState | None) -> tuple[FieldChange, ...]:
    fa = na.fields if na is not None else {}
    fb = nb.fields if nb is not None else {}
    out = []
    for name in sorted(fa.keys() | fb.keys()):
        old, new = fa.get(name, MISSING), fb.get(name, MISSING)
        if old is MISSING or new is MISSING or not values_equal(old, new):
            out.append(FieldChange(name, old, new))
    return tuple(out)


def diff_states(store: Store, a: int, b: int) -> Diff:
    """Compare the states after commits ``a`` and ``b`` (either order).

    Only nodes touched by the commits between the two are compared, so the
    cost follows the changes, not the size of the state.
    """
    lo, hi = min(a, b), max(a, b)
    touched = store.touched_between(lo, hi) if lo != hi else set()
    sa: HistoricalState = store.state_at(a)
    sb: HistoricalState = store.state_at(b)
    nodes = []
    for node_id in sorted(touched):
        na, nb = sa.get(node_id), sb.get(node_id)
        fields = _field_changes(na, nb)
        if na is None and nb is not None:
            status = "created"
        elif nb is None and na is not None:
            status = "uncreated"
        elif na is not None and nb is not None and nb.deleted and not na.deleted:
            status = "deleted"
        elif na is not None and nb is not None and na.deleted and not nb.deleted:
            status = "undeleted"
        elif fields:
            status = "changed"
        else:
            continue  # touched, then changed back
        some = nb if nb is not None else na
        assert some is not None
        nodes.append(NodeChange(node_id, some.type, status, fields))
    return Diff(a, b, tuple(nodes))
