"""A plain-Python reference model of a Myosotis graph, for differential tests.

The model knows nothing of files, frames or encodings: a state is a dict
``id -> ModelNode`` plus ``next_node_id``; a history is a list of committed
snapshots. Stored values use the engine's value vocabulary (``None``, ``bool``,
``int``, ``float``, ``str``, :class:`myosotis.Ref`, ``list``, ``dict``) so the
two can be compared with :func:`same_value` (bool is not int, floats compare
by their bits). The one piece borrowed from the engine is the state image
encoder, used only to predict ``state_hash()`` of a model state.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from blake3 import blake3

from myosotis import Node, Ref
from myosotis.format.image import encode_image, encode_node_record

EPOCH_US = 1_700_000_000_000_000


class FixedClock:
    """A deterministic clock: each call returns one microsecond more than the last."""

    def __init__(self, start: int = EPOCH_US) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now


# --------------------------------------------------------------------------
# values


def float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def same_value(a: Any, b: Any) -> bool:
    """Equality as the format sees it: types must match exactly (True is not 1),
    floats compare by bit pattern (-0.0 != 0.0, NaN == the same NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return float_bits(a) == float_bits(b)
    if type(a) is list:
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def plain(v: Any) -> Any:
    """A value read through the public API, with node handles turned into Refs."""
    if type(v) is Node:
        return Ref(v.id)
    if type(v) is list:
        return [plain(x) for x in v]
    if type(v) is dict:
        return {k: plain(x) for k, x in v.items()}
    return v


def clone(v: Any) -> Any:
    """Deep copy of a stored value (Refs are immutable and shared)."""
    if type(v) is list:
        return [clone(x) for x in v]
    if type(v) is dict:
        return {k: clone(x) for k, x in v.items()}
    return v


def clone_nodes(nodes: dict[int, ModelNode]) -> dict[int, ModelNode]:
    return {i: ModelNode(n.type, clone(n.fields), n.deleted) for i, n in nodes.items()}


def in_int64(v: int) -> bool:
    return -(1 << 63) <= v < (1 << 63)


def describe(v: Any) -> str:
    """repr with float bits spelled out, for assertion messages."""
    if type(v) is float and (math.isnan(v) or v == 0.0):
        return f"float({float_bits(v).hex()})"
    return repr(v)


# --------------------------------------------------------------------------
# graph


@dataclass
class ModelNode:
    type: str
    fields: dict[str, Any]
    deleted: bool = False


@dataclass
class Snapshot:
    """The committed state after one commit, and that commit's metadata."""

    nodes: dict[int, ModelNode]
    next_node_id: int
    label: str | None
    timestamp_us: int


@dataclass
class Model:
    """Committed state, staged state and the history of committed snapshots.

    ``snapshots[0]`` is the empty state before any commit; ``snapshots[s]`` is
    the state after commit ``s``.
    """

    committed: dict[int, ModelNode] = field(default_factory=dict)
    committed_next: int = 1
    staged: dict[int, ModelNode] = field(default_factory=dict)
    next_node_id: int = 1
    pending: int = 0
    snapshots: list[Snapshot] = field(
        default_factory=lambda: [Snapshot({}, 1, None, 0)])

    # ------------------------------------------------------------ queries

    @property
    def head(self) -> int:
        return len(self.snapshots) - 1

    def live_ids(self) -> list[int]:
        return sorted(i for i, n in self.staged.items() if not n.deleted)

    def deleted_ids(self) -> list[int]:
        return sorted(i for i, n in self.staged.items() if n.deleted)

    # ------------------------------------------------------------ staging

    def create(self, type_name: str, fields: dict[str, Any]) -> int:
        node_id = self.next_node_id
        self.staged[node_id] = ModelNode(type_name, clone(fields))
        self.next_node_id += 1
        self.pending += 1
        return node_id

    def set_field(self, node_id: int, name: str, value: Any) -> None:
        node = self.staged[node_id]
        assert not node.deleted
        node.fields[name] = clone(value)
        self.pending += 1

    def unset_field(self, node_id: int, name: str) -> None:
        node = self.staged[node_id]
        assert not node.deleted
        del node.fields[name]
        self.pending += 1

    def delete(self, node_id: int) -> None:
        node = self.staged[node_id]
        assert not node.deleted
        node.deleted = True
        self.pending += 1

    def container(self, node_id: int, name: str, path: tuple[Any, ...]) -> Any:
        cur = self.staged[node_id].fields[name]
        for step in path:
            cur = cur[step]
        return cur

    def edited(self) -> None:
        """Count one staged path mutation (the caller edited a container in place)."""
        self.pending += 1

    def container_paths(self, node_id: int, kind: type, max_depth: int = 4
                        ) -> list[tuple[str, tuple[Any, ...]]]:
        """(field, path) of every list (kind=list) or map (kind=dict) inside the node."""
        out: list[tuple[str, tuple[Any, ...]]] = []

        def walk(name: str, v: Any, path: tuple[Any, ...]) -> None:
            if type(v) is kind:
                out.append((name, path))
            if len(path) >= max_depth:
                return
            if type(v) is list:
                for i, x in enumerate(v):
                    walk(name, x, (*path, i))
            elif type(v) is dict:
                for k in sorted(v):
                    walk(name, v[k], (*path, k))

        for name in sorted(self.staged[node_id].fields):
            walk(name, self.staged[node_id].fields[name], ())
        return out

    # ------------------------------------------------------------ commits

    def commit(self, label: str | None, timestamp_us: int) -> None:
        self.committed = clone_nodes(self.staged)
        self.committed_next = self.next_node_id
        self.pending = 0
        self.snapshots.append(Snapshot(clone_nodes(self.staged), self.next_node_id,
                                       label or None, timestamp_us))

    def discard(self) -> int:
        n = self.pending
        self.staged = clone_nodes(self.committed)
        self.next_node_id = self.committed_next
        self.pending = 0
        return n


# --------------------------------------------------------------------------
# predictions


def state_hash(nodes: dict[int, ModelNode], next_node_id: int) -> str:
    """The state hash (FORMAT.md §9.2) the engine must report for this state."""
    records = [(i, encode_node_record(nodes[i].type, nodes[i].fields, nodes[i].deleted))
               for i in range(1, next_node_id)]
    return blake3(encode_image(next_node_id, records)).hexdigest()


def node_diff(a: dict[int, ModelNode], b: dict[int, ModelNode]
              ) -> list[tuple[int, str, str, list[tuple[str, Any, Any]]]]:
    """Every node that differs between two states: (id, type, status, field changes);
    a field absent on one side is :data:`MISSING_MARK` there. Statuses as in
    ``myosotis.NodeChange``."""
    out = []
    for node_id in sorted(a.keys() | b.keys()):
        na, nb = a.get(node_id), b.get(node_id)
        fa = na.fields if na is not None else {}
        fb = nb.fields if nb is not None else {}
        changes = []
        for name in sorted(fa.keys() | fb.keys()):
            old = fa.get(name, MISSING_MARK)
            new = fb.get(name, MISSING_MARK)
            if old is MISSING_MARK or new is MISSING_MARK or not same_value(old, new):
                changes.append((name, old, new))
        if na is None and nb is not None:
            status = "created"
        elif nb is None and na is not None:
            status = "uncreated"
        elif na is not None and nb is not None and nb.deleted and not na.deleted:
            status = "deleted"
        elif na is not None and nb is not None and na.deleted and not nb.deleted:
            status = "undeleted"
        elif changes:
            status = "changed"
        else:
            continue
        some = nb if nb is not None else na
        assert some is not None
        out.append((node_id, some.type, status, changes))
    return out


class _MissingMark:
    def __repr__(self) -> str:
        return "MISSING"


MISSING_MARK: Any = _MissingMark()
