"""Following references through a state: breadth-first walks, reachability, orphans.

A reference (FORMAT.md §5, a ``Ref``) may sit directly in a field or anywhere
inside its lists and maps; an *edge* is one such reference, named by its
source node and its path ``(field, step, ...)`` (list indexes and map keys).
Edges of a node are listed in a fixed order, fields by name, list elements
by index, map entries by key, so a walk of the same state always visits the
same nodes in the same order (determinism).

Tombstoned nodes are walked like any other: a tombstone keeps its fields,
and the references in them, readable (FORMAT.md R50). A caller that wants
tombstones to stop a walk says so through its edge filter.

Cost: a walk reads each node it reaches once and each edge of those nodes
once, O(reached nodes + their edges); it keeps the set of ids seen and the
frontier of one level, never a copy of a node.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from myosotis.engine.graph import NodeState
from myosotis.format.mutation_parts import Path
from myosotis.format.values import Ref

EdgePath = tuple[str | int, ...]
"""Where a reference sits in its node: the field name, then list indexes and map keys."""

EdgeFilter = Callable[[int, EdgePath, int], bool]
"""``follow(source id, edge path, target id)``: True to follow the edge."""


class ReadableState(Protocol):
    """What a walk needs of a state: a node by id (None when missing)."""

    next_node_id: int

    def get(self, node_id: int) -> NodeState | None: ...


def _value_edges(value: Any, path: Path) -> Iterator[tuple[Path, int]]:
    """``(path inside the field, target)`` for each reference in ``value``, in order."""
    t = type(value)
    if t is Ref:
        yield path, value.id
    elif t is list:
        for i, x in enumerate(value):
            if type(x) in (Ref, list, dict):
                yield from _value_edges(x, (*path, i))
    elif t is dict:
        for k in sorted(value):
            x = value[k]
            if type(x) in (Ref, list, dict):
                yield from _value_edges(x, (*path, k))


def edges(node: NodeState) -> Iterator[tuple[EdgePath, int]]:
    """``(path, target id)`` of every reference in ``node``, fields by name, lists by
    index, maps by key."""
    fields = node.fields
    for name in sorted(fields):
        for path, target in _value_edges(fields[name], ()):
            yield (name, *path), target


def bfs(state: ReadableState, starts: Iterable[int], depth: int | None,
        follow: EdgeFilter | None) -> Iterator[tuple[int, int, int | None, EdgePath]]:
    """Breadth-first ``(node id, depth, parent id, edge path)`` from ``starts``.

    Each reachable node is yielded once, with the first edge that reached it
    in breadth-first order (``parent`` None and path ``()`` for a start, at
    depth 0); nodes at ``depth`` are yielded but not expanded (``None``: no
    bound). Every start must exist (the caller checks). A target outside the
    state's ids (impossible in a valid file, R53) is skipped; each node is read
    once, when it is expanded.
    """
    seen: set[int] = set()
    queue: deque[tuple[int, int]] = deque()
    end = state.next_node_id  # ids are dense (R73): a target exists iff 1 <= id < end
    for s in starts:
        if s not in seen:
            seen.add(s)
            queue.append((s, 0))
            yield s, 0, None, ()
    while queue:
        node_id, d = queue.popleft()
        if depth is not None and d >= depth:
            continue
        node = state.get(node_id)
        if node is None:
            continue
        for path, target in edges(node):
            if target in seen or not 1 <= target < end:
                continue
            if follow is not None and not follow(node_id, path, target):
                continue
            seen.add(target)
            queue.append((target, d + 1))
            yield target, d + 1, node_id, path


def reachable(state: ReadableState, roots: Iterable[int],
              follow: EdgeFilter | None = None) -> set[int]:
    """Ids of every node reachable from ``roots`` (the roots included)."""
    return {step[0] for step in bfs(state, roots, None, follow)}


def orphans(state: ReadableState, roots: Iterable[int],
            follow: EdgeFilter | None = None) -> list[int]:
    """Live (not tombstoned) nodes that no root reaches, in id order. O(all nodes)."""
    seen = reachable(state, roots, follow)
    out = []
    for node_id in range(1, state.next_node_id):
        if node_id in seen:
            continue
        n = state.get(node_id)
        if n is not None and not n.deleted:
            out.append(node_id)
    return out
