"""Traversal for the read API: ``walk``, ``reachable`` and ``orphans`` (engine/traverse.py
does the work on ids; this module turns handles and field names into its terms)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple, cast

from myosotis.api.handles import Node
from myosotis.engine import traverse
from myosotis.engine.segments import HistoricalState
from myosotis.errors import InvalidArgumentError
from myosotis.format.display import short_repr

if TYPE_CHECKING:
    from myosotis.api.view import Reader, StateLike

EdgePath = tuple[str | int, ...]

Follow = Callable[[Node, EdgePath, Node], bool] | Iterable[str] | None
"""Which references a walk follows: ``None`` (all of them); field names (a ``str`` or
an iterable of them: only references inside those fields, at any depth within
them); or a callable ``follow(source, path, target) -> bool`` given the two node
handles and the reference's path ``(field, step, ...)``."""

Starts = int | Node | Iterable[int | Node]
"""One node (an id or a handle) or several."""


class WalkStep(NamedTuple):
    """One node reached by :meth:`Memory.walk`.

    ``depth`` is the number of references followed from a start (0 for a
    start); ``parent`` is the id of the node whose reference reached this one
    first in breadth-first order and ``via`` that reference's path in
    ``parent``, ``(field, index or key, ...)`` (``None`` and ``()`` for a
    start). Following ``parent`` back gives a shortest path from a start.
    """

    node: Node
    depth: int
    parent: int | None
    via: EdgePath

    def __repr__(self) -> str:
        return (f"WalkStep(node={self.node.id}, depth={self.depth}, parent={self.parent}, "
                f"via={self.via!r})")


def start_ids(reader: Reader, starts: Starts) -> list[int]:
    """Node ids of ``starts``, each checked to exist; raises NodeNotFoundError,
    InvalidArgumentError."""
    items: Iterable[int | Node]
    if type(starts) is int or isinstance(starts, Node):
        items = [starts]
    elif isinstance(starts, (str, bytes)):
        raise InvalidArgumentError(f"a start is a node id or handle, not {type(starts).__name__}")
    else:
        items = cast(Iterable[int | Node], starts)
    out = []
    for s in items:
        node_id = s.id if isinstance(s, Node) else s
        if type(node_id) is not int:
            raise InvalidArgumentError(
                f"a start is a node id or handle, not {type(node_id).__name__}")
        reader._node_state(node_id)  # NodeNotFoundError names the commit
        out.append(node_id)
    return out


def edge_filter(reader: Reader, follow: Follow) -> traverse.EdgeFilter | None:
    """``follow`` as the engine's ``(source id, path, target id) -> bool``."""
    if follow is None:
        return None
    if callable(follow):
        fn = follow
        return lambda a, path, b: bool(fn(Node(reader, a), path, Node(reader, b)))
    names = frozenset([follow] if isinstance(follow, str) else follow)
    if not all(isinstance(n, str) for n in names):
        raise InvalidArgumentError("follow= takes a callable or field names (strings)")
    return lambda a, path, b: path[0] in names


def check_depth(depth: int | None) -> int | None:
    """``depth`` if it is None or an int >= 0; else InvalidArgumentError."""
    if depth is not None and (type(depth) is not int or depth < 0):
        raise InvalidArgumentError(
            f"depth must be None or an int >= 0, not {short_repr(depth, 40)}")
    return depth


def walk(reader: Reader, starts: Starts, depth: int | None, follow: Follow) -> Iterator[WalkStep]:
    """See :meth:`Reader.walk`. Arguments are checked before the first step."""
    ids, d, f = start_ids(reader, starts), check_depth(depth), edge_filter(reader, follow)
    return _steps(reader, ids, d, f)


def _steps(reader: Reader, ids: list[int], depth: int | None,
           f: traverse.EdgeFilter | None) -> Iterator[WalkStep]:
    for node_id, d, parent, via in traverse.bfs(reader._read_state(), ids, depth, f):
        yield WalkStep(Node(reader, node_id), d, parent, via)


def reachable(reader: Reader, roots: Starts, follow: Follow) -> set[int]:
    """See :meth:`Reader.reachable`."""
    ids, f = start_ids(reader, roots), edge_filter(reader, follow)
    return traverse.reachable(reader._read_state(), ids, f)


def _whole(state: StateLike) -> traverse.ReadableState:
    # every node is read: materialising a past state once beats replaying node by node
    return state.whole() if isinstance(state, HistoricalState) else state


def orphans(reader: Reader, roots: Starts, follow: Follow) -> list[int]:
    """See :meth:`Reader.orphans`."""
    ids, f = start_ids(reader, roots), edge_filter(reader, follow)
    return traverse.orphans(_whole(reader._read_state()), ids, f)
