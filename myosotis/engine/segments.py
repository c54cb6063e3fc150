"""Time travel: decoded commits after one base snapshot, indexed by node, and
the lazily read historical states built on them.

A :class:`Segment` holds the mutations of commits ``(base_seq, upto]``, both
in commit order and per node. Reading one node at a past commit then costs
the node's base record plus the few mutations that touched it, not a replay
of the whole segment. Mutations held here are never mutated: whoever applies
one to a state applies a copy of its value (:func:`owned`). A node that no
commit after the base changed is its base record, decoded once and shared by
every state on that base (:class:`BaseNodes`).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict

from myosotis.engine.graph import GraphState, NodeState, SingleNode
from myosotis.engine.layers import LayerStack
from myosotis.errors import CorruptFileError, InvalidOperationError, MyosotisError
from myosotis.format.mutations import Create, ListInsert, ListReplace, MapSet, Mutation, Set
from myosotis.format.values import clone


def owned(m: Mutation) -> Mutation:
    """``m`` with its value deep-copied where it is a container, so a state can own it."""
    if isinstance(m, Create):
        return m._replace(fields={k: clone(v) for k, v in m.fields.items()})
    if isinstance(m, (Set, ListInsert, ListReplace, MapSet)):
        v = m.value
        if type(v) is list or type(v) is dict:
            return m._replace(value=clone(v))
    return m


class Segment:
    """Mutations of the commits after ``base_seq`` (read-only once added)."""

    def __init__(self, base_seq: int, next_node_id: int) -> None:
        self.base_seq = base_seq
        # (upto, next_node_id after commit upto, payload bytes decoded): one
        # tuple, so that an interrupted add() can never leave them out of step.
        self.tip = (base_seq, next_node_id, 0)
        self.commits: list[list[Mutation]] = []  # commits[k] is commit base_seq + 1 + k
        self._next_ids: list[int] = []  # _next_ids[k]: next_node_id after that commit
        self._by_node: dict[int, tuple[list[int], list[Mutation]]] = {}

    @property
    def upto(self) -> int:
        """The newest commit decoded into this segment."""
        return self.tip[0]

    @property
    def next_node_id(self) -> int:
        """The state's ``next_node_id`` after commit :attr:`upto`."""
        return self.tip[1]

    @property
    def size(self) -> int:
        """Payload bytes of the commits decoded into this segment (what the time-travel
        cache is bounded by, policy.TIMETRAVEL_BYTES)."""
        return self.tip[2]

    def next_node_id_at(self, seq: int) -> int:
        """The state's ``next_node_id`` after commit ``seq`` (``base_seq < seq <= upto``),
        as its header holds it (R60 was checked when it was added)."""
        return self._next_ids[seq - self.base_seq - 1]

    def add(self, seq: int, mutations: list[Mutation], next_node_id: int, size: int) -> None:
        """Add commit ``seq = upto + 1`` of ``size`` payload bytes, after which
        ``next_node_id`` is as given.

        Exception safe: an add interrupted half-way is not visible (``tip``
        moves last) and the next add of the same commit first drops what the
        interrupted one left behind.
        """
        upto, _, decoded = self.tip
        if seq != upto + 1:
            raise ValueError(f"commit {seq} added to a segment decoded up to {upto}")
        k = upto - self.base_seq
        if len(self.commits) > k:
            # An interrupted add got as far as appending its commit: drop the
            # per-node entries it may have added (those past ``upto``; the two
            # lists may differ in length by the one it was appending), then it,
            # the commit last: it is what marks the cleanup as still to do.
            for m in self.commits[k]:
                entry = self._by_node.get(m.node)
                if entry is not None:
                    keep = min(bisect.bisect_right(entry[0], upto), len(entry[1]))
                    del entry[0][keep:], entry[1][keep:]
            del self._next_ids[k:], self.commits[k:]
        by_node = self._by_node
        self.commits.append(mutations)
        self._next_ids.append(next_node_id)
        for m in mutations:
            entry = by_node.get(m.node)
            if entry is None:
                entry = by_node[m.node] = ([], [])
            entry[0].append(seq)
            entry[1].append(m)
        self.tip = (seq, next_node_id, decoded + size)

    def node_mutations(self, node_id: int, seq: int) -> list[Mutation]:
        """Mutations of ``node_id`` in commits ``(base_seq, seq]``, in order."""
        entry = self._by_node.get(node_id)
        if entry is None:
            return []
        return entry[1][: bisect.bisect_right(entry[0], seq)]

    def mutations_between(self, a: int, b: int) -> list[Mutation]:
        """All mutations of commits ``(a, b]`` (``base_seq <= a <= b <= upto``)."""
        out: list[Mutation] = []
        for muts in self.commits[a - self.base_seq: b - self.base_seq]:
            out.extend(muts)
        return out

    def touched(self, a: int, b: int) -> set[int]:
        return {m.node for m in self.mutations_between(a, b)}


class BaseNodes:
    """Nodes of past states as their base snapshot holds them, keyed by (the frame
    offset of the snapshot's top, node id): at most ``size``, the least recently
    used dropped first (policy.TIMETRAVEL_NODES). Only nodes that no commit after
    the base changed come from here, so every state on that base shares them;
    they are never changed (a state that changes a node decodes its own copy)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._nodes: OrderedDict[tuple[int, int], NodeState | None] = OrderedDict()

    def get(self, base: LayerStack, node_id: int) -> NodeState | None:
        """Node ``node_id`` of ``base`` (None if out of its range); raises DecodeError."""
        key = (base.top.offset, node_id)
        nodes = self._nodes
        if key in nodes:
            nodes.move_to_end(key)
            return nodes[key]
        rec = base.get(node_id)
        node = None if rec is None else NodeState(rec.type, rec.fields, rec.deleted)
        nodes[key] = node
        while len(nodes) > self.size:  # while: an interrupt here cannot grow it
            nodes.popitem(last=False)
        return node

    def clear(self) -> None:
        self._nodes.clear()


class HistoricalState:
    """The state after commit ``seq``, read lazily and never changed.

    Reading a node costs its base record (shared through ``base_nodes``) plus the
    mutations that touched it in the segment; enumerating the whole state
    materialises it once.
    """

    def __init__(self, seq: int, segment: Segment, base: LayerStack | None,
                 next_node_id: int, base_nodes: BaseNodes) -> None:
        """``segment`` must be decoded at least up to ``seq``; ``base`` is its base image
        (which must stay mapped while this state is used)."""
        if not segment.base_seq <= seq <= segment.upto:  # a wrong base would give a wrong state
            raise AssertionError(f"commit {seq} outside the segment ({segment.base_seq}, "
                                 f"{segment.upto}]")
        self.seq = seq
        self._segment, self._base = segment, base
        self._base_nodes = base_nodes
        self.next_node_id = next_node_id
        self._nodes: dict[int, NodeState | None] = {}
        self._whole: GraphState | None = None

    def get(self, node_id: int) -> NodeState | None:
        if not 1 <= node_id < self.next_node_id:
            return None
        if self._whole is not None:
            return self._whole.get(node_id)
        if node_id in self._nodes:
            return self._nodes[node_id]
        muts = self._segment.node_mutations(node_id, self.seq)
        base = self._base
        if not muts:
            node = self._base_nodes.get(base, node_id) if base is not None else None
        else:
            node = None
            if base is not None:
                rec = base.get(node_id)
                if rec is not None:
                    node = NodeState(rec.type, rec.fields, rec.deleted)
            one = SingleNode(node_id, node)
            try:
                for m in muts:
                    owned(m).apply(one)
            except InvalidOperationError as e:
                raise CorruptFileError(f"replaying node {node_id} to commit {self.seq}: "
                                       f"{e}") from None
            node = one.node
        self._nodes[node_id] = node
        return node

    def type_of(self, node_id: int) -> str | None:
        n = self.get(node_id)
        return None if n is None else n.type

    def whole(self) -> GraphState:
        """The whole state, materialised (and checked against §6) once."""
        if self._whole is None:
            g = GraphState(self._base)
            try:
                for m in self._segment.mutations_between(self._segment.base_seq, self.seq):
                    owned(m).apply(g)
            except MyosotisError as e:
                raise CorruptFileError(f"replaying to commit {self.seq}: {e}") from None
            self._whole = g
        return self._whole
