"""Graph states: the targets mutations are applied to (FORMAT.md §6).

Ids are dense: a node is created only with ``id == next_node_id`` and never
removed (deletion sets a tombstone), so the nodes of a state are exactly the
ids ``1 .. next_node_id - 1``. :class:`GraphState` is a committed state: a
base image read in place (a checkpoint or genesis, possibly none) plus the
nodes decoded or changed since. :class:`Overlay` stages uncommitted changes on
top of a GraphState by copying a node the first time it is written.
:class:`SingleNode` holds one node, to replay that node's history.

The rules of applying a mutation (R50–R53) are the mutation's own
(format/mutations.py, ``Mutation.apply``); the three states implement the
``GraphTarget`` protocol it is written against, each writing the way that is
cheapest for it.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from myosotis.engine.layers import LayerStack
from myosotis.engine.policy import NODE_CACHE, REBASE_KEEP, SPARE_MAX, SPARE_MIN
from myosotis.errors import MyosotisError
from myosotis.format.image import encode_image, encode_node_record
from myosotis.format.mutation_parts import GraphTarget, Path
from myosotis.format.mutations import (
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
)

# The edits of a list's or map's top level, which a spare replays (take_spare).
_TOP_EDITS = (ListInsert, ListRemove, ListReplace, MapDelete, MapSet)


def _at(value: Any, path: Path) -> Any:
    """The container ``path`` names inside ``value`` (checked before: R52)."""
    for step in path:
        value = value[step]
    return value


def _dead(n: NodeState | None) -> bool:
    return n is None or n.deleted


class NodeState:
    """One node: type, fields (name -> stored value) and tombstone."""

    __slots__ = ("type", "fields", "deleted")

    def __init__(self, type_name: str, fields: dict[str, Any], deleted: bool = False) -> None:
        self.type = type_name
        self.fields = fields
        self.deleted = deleted

    def shallow_copy(self) -> NodeState:
        """A copy sharing the field values (copy-on-write: see Overlay.writable_container)."""
        return NodeState(self.type, dict(self.fields), self.deleted)

    def record(self) -> bytes:
        """The node record of §8.1."""
        return encode_node_record(self.type, self.fields, self.deleted)


class GraphState:
    """A committed state: base image + the nodes changed since it + a bounded cache.

    ``base`` must stay mapped while this state is used. ``changed`` holds
    every node that differs from ``base`` (every node, without a base); its
    NodeState objects are owned by this state (changed in place by replay)
    and written into a new image, the others by copying their base record's
    bytes. Nodes decoded from ``base`` only to be read are kept in a cache of
    at most ``cache_size`` (engine/policy.py NODE_CACHE): reading the whole
    of a large state does not keep it decoded.
    """

    def __init__(self, base: LayerStack | None = None,
                 changed: dict[int, NodeState] | None = None,
                 cache_size: int = NODE_CACHE) -> None:
        self.base = base
        self.changed: dict[int, NodeState] = changed if changed is not None else {}
        # Insertion order: the oldest goes first. An OrderedDict, not a dict: a
        # dict's first item after many deletions from its front is found by a
        # scan over the deleted slots, O(cache) per eviction until it resizes.
        self._decoded: OrderedDict[int, NodeState] = OrderedDict()
        self.cache_size = cache_size
        self.next_node_id: int = base.next_node_id if base is not None else 1
        # id(container) -> (that container, a spare, ops): see take_spare
        self.spares: dict[int, tuple[Any, Any, list[Mutation]]] = {}

    def rebased(self, image: LayerStack) -> GraphState:
        """This state on top of ``image`` (a checkpoint of it): the changed nodes
        equal their records there, and become cached reads."""
        assert image.next_node_id == self.next_node_id
        g = GraphState(image, cache_size=self.cache_size)
        # The nodes decoded from the old base equal their records in the new
        # one (the same state): they stay cached, so a layer every few commits
        # does not make every node be decoded again.
        g._decoded = self._decoded
        self._decoded = OrderedDict()
        g.spares = self.spares  # the same node objects, the same containers
        # The nodes just written stay decoded too while the cache stays small
        # (policy.REBASE_KEEP): a bulk load's nodes are not all kept.
        if len(g._decoded) + len(self.changed) <= REBASE_KEEP:
            for node_id, n in self.changed.items():
                g._remember(node_id, n)
        return g

    def get(self, node_id: int) -> NodeState | None:
        n = self.changed.get(node_id)
        if n is None:
            n = self._decoded.get(node_id)
            if n is None and 1 <= node_id < self.next_node_id and self.base is not None:
                rec = self.base.get(node_id)
                if rec is not None:
                    n = NodeState(rec.type, rec.fields, rec.deleted)
                    self._remember(node_id, n)
        return n

    def plain_fields(self, node_id: int, ref: Callable[[int], Any]) -> dict[str, Any] | None:
        """The fields of a node read from the base, decoded as plain values
        (``LayerStack.plain_fields``) and not cached; None when :meth:`get` would not
        read it from the base (changed, cached, no base, out of its range): the
        caller then reads ``get(node_id)``. Raises DecodeError."""
        base = self.base
        if base is None or node_id in self.changed or node_id in self._decoded:
            return None
        return base.plain_fields(node_id, ref)

    def live_ids(self, over: Overlay, top: int) -> Iterator[int]:
        """The ids below ``top`` of the nodes not tombstoned, in id order, each as
        :meth:`get` shows it when it is yielded, with ``over.nodes`` (an overlay's
        staged nodes, read anew for each id) over this state's. A node of the base
        is neither decoded nor cached: only its flags byte is read
        (``StateImage.deleted_at``)."""
        changed, decoded, base = self.changed, self._decoded, self.base
        if base is not None:
            for node_id, img, i in base.scan():
                if node_id >= top:
                    return
                n = over.nodes.get(node_id) or changed.get(node_id) or decoded.get(node_id)
                if not (img.deleted_at(i) if n is None else n.deleted):
                    yield node_id
        for node_id in range(1 if base is None else base.next_node_id, top):
            n = over.nodes.get(node_id) or changed.get(node_id)
            if n is not None and not n.deleted:
                yield node_id

    def _remember(self, node_id: int, n: NodeState) -> None:
        cache = self._decoded
        cache[node_id] = n
        if len(cache) > self.cache_size:
            cache.popitem(last=False)

    def writable(self, node_id: int) -> NodeState | None:
        """The node, to be changed in place (replay)."""
        n = self.changed.get(node_id)
        if n is None:
            n = self.get(node_id)
            if n is not None:
                # changed first: get() looks there first, so the node is never
                # missing nor read from its old cache entry in between
                self.changed[node_id] = n
                self._decoded.pop(node_id, None)
        return n

    def writable_container(self, node_id: int, field: str, path: Path) -> Any:
        """The container, to be changed in place (replay)."""
        n = self.writable(node_id)
        assert n is not None
        return _at(n.fields[field], path)

    def set_field(self, node_id: int, field: str, value: Any) -> bool:
        """Set the field in place (replay); False if the node is missing or deleted."""
        n = self.writable(node_id)
        if n is None or n.deleted:
            return False
        n.fields[field] = value
        return True

    def merge(self, changed: dict[int, NodeState], next_node_id: int) -> None:
        """Take over ``changed`` nodes (an overlay's, after a durable commit)."""
        self.changed.update(changed)
        decoded = self._decoded
        for node_id in changed:
            decoded.pop(node_id, None)
        self.next_node_id = next_node_id

    def take_spare(self, value: Any, field: str) -> Any:
        """A copy of the committed container ``value`` (a list or map, the value of
        ``field``) for an overlay to edit: the spare kept for it when it was made
        (:meth:`Overlay.keep_spares`), brought up to date, if nothing else holds
        that spare; else ``value.copy()``.

        The spare is the container the last commit's overlay copied ``value``
        from, and ops are that commit's edits of it: replaying them (O(edits))
        makes it equal ``value``, where a copy costs O(len(value)). So an append
        to a long list costs the same as to a short one, commit after commit.
        """
        entry = self.spares.pop(id(value), None)
        if entry is not None and entry[0] is value:
            spare, ops = entry[1], entry[2]
            del entry
            # Held by this frame only (the local and the call's argument): nothing
            # else can see it change. Anything else holding it (a view, an alias
            # in another field) keeps it as it is, and a copy is made instead.
            if sys.getrefcount(spare) == 2:  # noqa: PLR2004
                target = SingleNode(ops[0].node, NodeState("", {field: spare}))
                try:
                    for m in ops:
                        m.apply(target)
                    return spare
                except MyosotisError:
                    # They applied to its twin; only a container shared by two
                    # fields (which staging never makes) could refuse: copy then.
                    pass
        return value.copy()

    def type_of(self, node_id: int) -> str | None:
        """The node's type without decoding its fields when it is still in the base."""
        n = self.changed.get(node_id) or self._decoded.get(node_id)
        if n is not None:
            return n.type
        if self.base is not None and 1 <= node_id < self.next_node_id:
            return self.base.type_at(node_id)
        return None

    def add(self, node_id: int, type_name: str, fields: dict[str, Any]) -> None:
        self.changed[node_id] = NodeState(type_name, fields)
        self.next_node_id = node_id + 1

    def image(self) -> bytes:
        """The canonical state image (§8.1); base records are copied as raw bytes."""
        base, changed = self.base, self.changed

        def records() -> Iterator[tuple[int, bytes | memoryview]]:
            # dense ids: a node not changed since the base is in it
            if base is not None:
                for node_id, rec in base.records():
                    n = changed.get(node_id)
                    yield node_id, rec if n is None else n.record()
            for node_id in range(base.next_node_id if base else 1, self.next_node_id):
                yield node_id, changed[node_id].record()  # created since the base

        return encode_image(self.next_node_id, records())


class Overlay:
    """Uncommitted changes staged over a GraphState (copy on first write).

    The parent's values are never changed. A node is copied shallowly the
    first time it is written. An edit inside a list or map copies, shallowly,
    each container on its path the first time an edit reaches through it;
    the copies are the overlay's own (``_own``) and later edits change them
    in place. So staging an edit costs the containers on its path (a copy of
    their slots, not of their contents), never the whole field or node.
    """

    def __init__(self, parent: GraphState | Overlay) -> None:
        """``parent``: the committed state, or an overlay to try changes on without
        changing it (a scratch, see staging.stage_all)."""
        self.parent = parent
        self.nodes: dict[int, NodeState] = {}
        self.next_node_id: int = parent.next_node_id
        # id() -> container for the lists and maps this overlay made: it holds
        # them, so no id is reused by another object while it is listed here.
        self._own: dict[int, Any] = {}
        # Nodes created here whose field dict is still their CREATE's: copied
        # before their first edit (_unshared), so the mutation stays as it was.
        self._shared: set[int] = set()
        # (node, field) -> the committed container (of SPARE_MIN items or more)
        # the field's own copy was made from: see keep_spares.
        self._copied: dict[tuple[int, str], Any] = {}

    def get(self, node_id: int) -> NodeState | None:
        n = self.nodes.get(node_id)
        return n if n is not None else self.parent.get(node_id)

    def plain_fields(self, node_id: int, ref: Callable[[int], Any]) -> dict[str, Any] | None:
        """As ``GraphState.plain_fields``; None for a staged node too."""
        return None if node_id in self.nodes else self.parent.plain_fields(node_id, ref)

    def live_ids(self) -> Iterator[int]:
        """Ids of the nodes not tombstoned, in id order, each as :meth:`get` shows it
        when it is yielded (``GraphState.live_ids``)."""
        parent = self.parent
        if type(parent) is GraphState:
            return parent.live_ids(self, self.next_node_id)
        return (i for i in range(1, self.next_node_id) if not _dead(self.get(i)))

    def writable(self, node_id: int) -> NodeState | None:
        """The node, copied into the overlay (shallowly) on first write.

        Callers may replace or remove field values of the result, never edit
        one in place (writable_container gives a container that may be)."""
        n = self.nodes.get(node_id)
        if n is None:
            p = self.parent.get(node_id)
            if p is None:
                return None
            n = self.nodes[node_id] = p.shallow_copy()
        elif self._shared and node_id in self._shared:
            self._unshared(node_id, n)
        return n

    def _unshared(self, node_id: int, n: NodeState) -> None:
        """Give ``n`` (created here) a field dict of its own, not its CREATE's."""
        n.fields = dict(n.fields)
        self._shared.discard(node_id)

    def _owned(self, holder: Any, key: Any) -> Any:
        """``holder[key]``, replaced by a shallow copy the overlay owns unless it is one."""
        value = holder[key]
        if id(value) not in self._own:
            value = holder[key] = value.copy()
            self._own[id(value)] = value
        return value

    def writable_container(self, node_id: int, field: str, path: Path) -> Any:
        n = self.writable(node_id)
        assert n is not None
        cur = n.fields[field]
        if id(cur) not in self._own:
            parent = self.parent
            if len(cur) < SPARE_MIN or type(parent) is not GraphState:
                cur = n.fields[field] = cur.copy()
            else:
                self._copied[(node_id, field)] = cur
                cur = n.fields[field] = parent.take_spare(cur, field)
            self._own[id(cur)] = cur
        for step in path:
            cur = self._owned(cur, step)
        return cur

    def keep_spares(self, staged: list[Mutation]) -> None:
        """Before :meth:`merge_into_parent` commits ``staged``: for each large field
        container copied from the parent and changed only by edits of its top
        level, keep the parent's (which the commit replaces by the copy) as the
        copy's spare, with those edits (GraphState.take_spare)."""
        copied = self._copied
        if not copied:
            return
        parent = self.parent
        assert isinstance(parent, GraphState), "only the store's own overlay copies so"
        ops: dict[tuple[int, str], list[Mutation] | None] = {}
        m: Any  # a type of _TOP_EDITS has a path
        for m in staged:
            key = (m.node, getattr(m, "field", ""))
            if key in copied:
                edits = ops.setdefault(key, [])
                if edits is not None and type(m) in _TOP_EDITS and not m.path:
                    edits.append(m)
                else:
                    ops[key] = None  # replaced, removed or edited inside: no spare
        spares = parent.spares
        for key, old in copied.items():
            edits = ops.get(key)
            n = self.nodes.get(key[0])
            new = None if n is None else n.fields.get(key[1])
            if edits and id(new) in self._own:
                spares[id(new)] = (new, old, edits)
                if len(spares) > SPARE_MAX:
                    del spares[next(iter(spares))]

    def type_of(self, node_id: int) -> str | None:
        n = self.nodes.get(node_id)
        return n.type if n is not None else self.parent.type_of(node_id)

    def set_field(self, node_id: int, field: str, value: Any) -> bool:
        """Stage a new value of the field: the node is copied into the overlay
        (shallowly) on first write, the new value is the overlay's own and the
        old one stays shared. False if the node is missing or deleted."""
        nodes = self.nodes
        n = nodes.get(node_id)
        if n is None:
            n = self.parent.get(node_id)
            if n is None or n.deleted:
                return False
            n = nodes[node_id] = n.shallow_copy()
        elif n.deleted:
            return False
        elif self._shared and node_id in self._shared:
            self._unshared(node_id, n)
        n.fields[field] = value
        return True

    def add(self, node_id: int, type_name: str, fields: dict[str, Any]) -> None:
        # The node shares the CREATE's field dict until its first edit (writable,
        # set_field): a staged or scratch mutation must stay as it was, and most
        # created nodes are not edited before their commit.
        self.nodes[node_id] = NodeState(type_name, fields)
        self._shared.add(node_id)
        self.next_node_id = node_id + 1

    @property
    def dirty(self) -> bool:
        return bool(self.nodes) or self.next_node_id != self.parent.next_node_id

    def merge_into_parent(self) -> None:
        """Make the staged changes part of the parent (after a durable commit)."""
        parent = self.parent
        assert isinstance(parent, GraphState), "only the store's own overlay is merged"
        parent.merge(self.nodes, self.next_node_id)
        self._empty()

    def reset(self) -> None:
        self._empty()
        self.next_node_id = self.parent.next_node_id

    def _empty(self) -> None:
        """No staged node, and none of the bookkeeping that went with them."""
        self.nodes = {}
        self._own = {}
        self._shared = set()
        self._copied = {}


def apply(state: GraphTarget, m: Mutation) -> None:
    """Apply ``m`` to ``state`` if the rules (R50–R53) allow it, else raise and change
    nothing: ``m.apply(state)``.

    Raises NodeNotFoundError, DeletedNodeError or InvalidOperationError. The
    value inside ``m`` is stored as is (not copied): callers hand over a value
    nothing else references.
    """
    m.apply(state)


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

    def writable(self, node_id: int) -> NodeState | None:
        return self.node

    def writable_container(self, node_id: int, field: str, path: Path) -> Any:
        assert self.node is not None
        return _at(self.node.fields[field], path)

    def set_field(self, node_id: int, field: str, value: Any) -> bool:
        n = self.node
        if n is None or n.deleted:
            return False
        n.fields[field] = value
        return True

    def add(self, node_id: int, type_name: str, fields: dict[str, Any]) -> None:
        self.node = NodeState(type_name, fields)
        self.next_node_id = self._ANY
