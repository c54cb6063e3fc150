"""Graph state and the rules of applying mutations (FORMAT.md §6, R50–R53).

Ids are dense: a node is created only with ``id == next_node_id`` and never
removed (deletion sets a tombstone), so the nodes of a state are exactly the
ids ``1 .. next_node_id - 1``. :class:`GraphState` is a committed state: a
base image read in place (a checkpoint or genesis, possibly none) plus the
nodes decoded or changed since. :class:`Overlay` stages uncommitted changes on
top of a GraphState by copying a node the first time it is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Union

from myosotis.errors import DeletedNodeError, InvalidOperationError, NodeNotFoundError
from myosotis.format.image import StateImage, encode_image, encode_node_record
from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Path,
    Set,
    Unset,
)
from myosotis.format.values import Ref, clone


class NodeState:
    """One node: type, fields (name -> stored value) and tombstone."""

    __slots__ = ("type", "fields", "deleted")

    def __init__(self, type_name: str, fields: dict[str, Any], deleted: bool = False) -> None:
        self.type = type_name
        self.fields = fields
        self.deleted = deleted

    def shallow_copy(self) -> NodeState:
        """A copy sharing the field values (copy-on-write: see Overlay.writable_field)."""
        return NodeState(self.type, dict(self.fields), self.deleted)

    def record(self) -> bytes:
        """The node record of §8.1."""
        return encode_node_record(self.type, self.fields, self.deleted)


class GraphState:
    """A committed state: base image + decoded/changed nodes.

    ``base`` must stay mapped while this state is used. ``nodes`` caches
    decoded base nodes and holds every node changed since the base; its
    NodeState objects are owned by this state (mutated in place by replay).
    ``dirty`` names the nodes that differ from ``base``: the others are
    written into a new image by copying their base record's bytes.
    """

    def __init__(self, base: StateImage | None = None,
                 cache: dict[int, NodeState] | None = None) -> None:
        """``cache``: decoded nodes known to equal their records in ``base``."""
        self.base = base
        self.nodes: dict[int, NodeState] = cache if cache is not None else {}
        self.dirty: set[int] = set()
        self.next_node_id: int = base.next_node_id if base is not None else 1

    def rebased(self, image: StateImage) -> GraphState:
        """This state on top of ``image`` (a checkpoint of it), keeping decoded nodes."""
        assert image.next_node_id == self.next_node_id
        return GraphState(image, self.nodes)

    def get(self, node_id: int) -> NodeState | None:
        n = self.nodes.get(node_id)
        if n is None and 1 <= node_id < self.next_node_id and self.base is not None:
            rec = self.base.get(node_id)
            if rec is not None:
                n = NodeState(rec.type, rec.fields, rec.deleted)
                self.nodes[node_id] = n
        return n

    def writable(self, node_id: int) -> NodeState | None:
        """The node, to be changed in place (replay)."""
        if self.base is not None:  # without a base every node is written anyway
            self.dirty.add(node_id)
        return self.get(node_id)

    def writable_field(self, node_id: int, field: str) -> NodeState | None:
        return self.writable(node_id)

    def replace_field(self, node_id: int, field: str, value: Any) -> None:
        node = self.writable(node_id)
        assert node is not None
        node.fields[field] = value

    def merge(self, changed: dict[int, NodeState], next_node_id: int) -> None:
        """Take over ``changed`` nodes (an overlay's, after a durable commit)."""
        self.nodes.update(changed)
        if self.base is not None:  # without a base every node is written anyway
            self.dirty.update(changed)
        self.next_node_id = next_node_id

    def type_of(self, node_id: int) -> str | None:
        """The node's type without decoding its fields when it is still in the base."""
        n = self.nodes.get(node_id)
        if n is not None:
            return n.type
        if self.base is not None and 1 <= node_id < self.next_node_id:
            return self.base.type_at(node_id)
        return None

    def add(self, node_id: int, node: NodeState) -> None:
        self.nodes[node_id] = node
        if self.base is not None:
            self.dirty.add(node_id)
        self.next_node_id = node_id + 1

    def image(self) -> bytes:
        """The canonical state image (§8.1); base records are copied as raw bytes."""
        base, nodes, dirty = self.base, self.nodes, self.dirty

        def records() -> Iterator[tuple[int, bytes | memoryview]]:
            for node_id in range(1, self.next_node_id):
                if node_id in dirty or base is None:
                    yield node_id, nodes[node_id].record()
                else:  # dense ids: a node not changed since the base is in it
                    yield node_id, base.raw_record_of(node_id)

        return encode_image(self.next_node_id, records())


class Overlay:
    """Uncommitted changes staged over a GraphState (copy on first write).

    A node is copied shallowly the first time it is written; a list or map
    field is copied the first time an edit reaches inside it. So the parent's
    values are never changed, and staging an edit costs the edited field, not
    the whole node.
    """

    def __init__(self, parent: GraphState) -> None:
        self.parent = parent
        self.nodes: dict[int, NodeState] = {}
        self.next_node_id = parent.next_node_id
        self._owned: set[tuple[int, str]] = set()  # fields whose value this overlay owns

    def get(self, node_id: int) -> NodeState | None:
        n = self.nodes.get(node_id)
        return n if n is not None else self.parent.get(node_id)

    def writable(self, node_id: int) -> NodeState | None:
        """The node, copied into the overlay (shallowly) on first write.

        Callers may replace or remove field values of the result, never edit
        one in place (use writable_field for that)."""
        n = self.nodes.get(node_id)
        if n is None:
            p = self.parent.get(node_id)
            if p is None:
                return None
            n = self.nodes[node_id] = p.shallow_copy()
        return n

    def writable_field(self, node_id: int, field: str) -> NodeState | None:
        """The node with ``field``'s value owned by the overlay (deep-copied once)."""
        n = self.writable(node_id)
        if n is not None and (node_id, field) not in self._owned:
            if field in n.fields:
                n.fields[field] = clone(n.fields[field])
            self._owned.add((node_id, field))
        return n

    def type_of(self, node_id: int) -> str | None:
        n = self.nodes.get(node_id)
        return n.type if n is not None else self.parent.type_of(node_id)

    def add(self, node_id: int, node: NodeState) -> None:
        self.nodes[node_id] = node
        self.next_node_id = node_id + 1

    @property
    def dirty(self) -> bool:
        return bool(self.nodes) or self.next_node_id != self.parent.next_node_id

    def merge_into_parent(self) -> None:
        """Make the staged changes part of the parent (after a durable commit)."""
        self.parent.merge(self.nodes, self.next_node_id)
        self.nodes = {}
        self._owned = set()

    def reset(self) -> None:
        self.nodes = {}
        self.next_node_id = self.parent.next_node_id
        self._owned = set()


# --------------------------------------------------------------------------
# applying mutations

State = Union[GraphState, Overlay, "SingleNode"]


def _check_refs(v: Any, next_node_id: int) -> None:
    """R51: every reference inside ``v`` names an existing node."""
    t = type(v)
    if t is Ref:
        if not 1 <= v.id < next_node_id:
            raise NodeNotFoundError(f"reference to node {v.id}, which does not exist")
    elif t is list:
        for x in v:
            if type(x) in (Ref, list, dict):
                _check_refs(x, next_node_id)
    elif t is dict:
        for x in v.values():
            if type(x) in (Ref, list, dict):
                _check_refs(x, next_node_id)


def _live_node(state: State, node_id: int) -> NodeState:
    n = state.get(node_id)
    if n is None:
        raise NodeNotFoundError(f"node {node_id} does not exist")
    if n.deleted:
        raise DeletedNodeError(f"node {node_id} is deleted; a deleted node cannot change (R50)")
    return n


def _walk(node: NodeState, node_id: int, field: str, path: Path) -> Any:
    """The container ``path`` names inside ``field`` (R52); raises InvalidOperationError."""
    if field not in node.fields:
        raise InvalidOperationError(f"node {node_id} has no field {field!r}")
    cur = node.fields[field]
    for depth, step in enumerate(path):
        t = type(cur)
        if t is list and type(step) is int:
            if not 0 <= step < len(cur):
                raise InvalidOperationError(
                    f"index {step} out of range at step {depth} of the path into {field!r} "
                    f"(length {len(cur)})")
            cur = cur[step]
        elif t is dict and type(step) is str:
            if step not in cur:
                raise InvalidOperationError(
                    f"key {step!r} missing at step {depth} of the path into {field!r}")
            cur = cur[step]
        else:
            raise InvalidOperationError(
                f"path step {step!r} does not fit a {type(cur).__name__} in field {field!r}")
    return cur


def apply(state: State, m: Mutation) -> None:
    """Apply ``m`` to ``state`` if the rules allow it, else raise and change nothing.

    Raises NodeNotFoundError, DeletedNodeError or InvalidOperationError. The
    value inside ``m`` is stored as is (not copied): callers hand over a value
    nothing else references.
    """
    t = type(m)
    nxt = state.next_node_id
    if t is Set:  # the most frequent mutation: its checks inlined
        node_id = m.node
        v = m.value  # type: ignore[union-attr]
        if type(v) in (Ref, list, dict):
            _check_refs(v, nxt)
        if type(state) is not Overlay:  # replay: change the node in place
            n = state.get(node_id)
            if n is None or n.deleted:
                _live_node(state, node_id)  # raises the right error
            state.replace_field(node_id, m.field, v)  # type: ignore[union-attr]
            return
        # Staging: copy the node into the overlay on first write (shallowly: the
        # new value is the overlay's own, the old one stays shared).
        nodes = state.nodes
        n = nodes.get(node_id)
        if n is None:
            n = state.parent.get(node_id)
            if n is None or n.deleted:
                _live_node(state, node_id)  # raises the right error
            n = nodes[node_id] = n.shallow_copy()  # type: ignore[union-attr]
        elif n.deleted:
            _live_node(state, node_id)
        n.fields[m.field] = v  # type: ignore[union-attr]
        state._owned.add((node_id, m.field))  # type: ignore[union-attr]
        return
    if t is Create:
        if m.node != nxt:
            raise InvalidOperationError(
                f"create of node {m.node} but the next id is {nxt} (§6 CREATE)")
        _check_refs(m.fields, nxt + 1)  # type: ignore[union-attr]
        state.add(m.node, NodeState(m.type, m.fields))  # type: ignore[union-attr]
        return
    if t is Unset:
        n = _live_node(state, m.node)
        if m.field not in n.fields:  # type: ignore[union-attr]
            raise InvalidOperationError(f"node {m.node} has no field {m.field!r} to delete")  # type: ignore[union-attr]
        del state.writable(m.node).fields[m.field]  # type: ignore[union-attr]
        return
    if t is Delete:
        _live_node(state, m.node)
        state.writable(m.node).deleted = True  # type: ignore[union-attr]
        return
    # path edits: validate against the committed view, then edit the copy
    n = _live_node(state, m.node)
    target = _walk(n, m.node, m.field, m.path)  # type: ignore[union-attr]
    if t in (ListInsert, ListRemove, ListReplace):
        if type(target) is not list:
            raise InvalidOperationError(
                f"field {m.field!r} of node {m.node} at path {list(m.path)} is a "  # type: ignore[union-attr]
                f"{type(target).__name__}, not a list")
        size = len(target)
        idx = m.pos  # type: ignore[union-attr]
        if not (0 <= idx <= size if t is ListInsert else 0 <= idx < size):
            raise InvalidOperationError(
                f"list index {idx} out of range for a list of length {size}")
    else:
        if type(target) is not dict:
            raise InvalidOperationError(
                f"field {m.field!r} of node {m.node} at path {list(m.path)} is a "  # type: ignore[union-attr]
                f"{type(target).__name__}, not a map")
        if t is MapDelete and m.key not in target:  # type: ignore[union-attr]
            raise InvalidOperationError(f"map has no key {m.key!r} to delete")  # type: ignore[union-attr]
    if t in (ListInsert, ListReplace, MapSet):
        v = m.value  # type: ignore[union-attr]
        if type(v) in (Ref, list, dict):
            _check_refs(v, nxt)
    target = _walk(state.writable_field(m.node, m.field), m.node, m.field, m.path)  # type: ignore[arg-type, union-attr]
    if t is ListInsert:
        target.insert(m.pos, m.value)  # type: ignore[union-attr]
    elif t is ListRemove:
        del target[m.pos]  # type: ignore[union-attr]
    elif t is ListReplace:
        target[m.pos] = m.value  # type: ignore[union-attr]
    elif t is MapSet:
        target[m.key] = m.value  # type: ignore[union-attr]
    else:
        del target[m.key]  # type: ignore[union-attr]




class SingleNode:
    """A one-node state for replaying the mutations of one node (time travel).

    References are not re-checked here: they were checked when the commit was
    written and again when a whole state is replayed (``apply`` on a
    GraphState).
    """

    _ANY = 1 << 64

    def __init__(self, node_id: int, node: NodeState | None) -> None:
        self.node = node
        self.next_node_id = node_id if node is None else self._ANY

    def get(self, node_id: int) -> NodeState | None:
        return self.node

    writable = get

    def add(self, node_id: int, node: NodeState) -> None:
        self.node = node
        self.next_node_id = self._ANY

    def writable_field(self, node_id: int, field: str) -> NodeState | None:
        return self.node

    def replace_field(self, node_id: int, field: str, value: Any) -> None:
        assert self.node is not None
        self.node.fields[field] = value
