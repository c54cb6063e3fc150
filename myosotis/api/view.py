"""The read API shared by ``Memory`` and ``View``, and ``View``, a read-only past state."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from myosotis.api import explore, picture
from myosotis.api.explore import Follow, Starts, WalkStep
from myosotis.api.handles import Node, fields_of
from myosotis.api.names import CommitRef
from myosotis.api.notebook import nodes_html
from myosotis.api.picture import GraphFormat
from myosotis.engine.graph import GraphState, NodeState, Overlay
from myosotis.engine.history import Commit
from myosotis.engine.segments import HistoricalState
from myosotis.errors import ClosedError, InvalidArgumentError, NodeNotFoundError, ReadOnlyError
from myosotis.format.display import short_repr
from myosotis.format.image import state_hash
from myosotis.format.mutations import Mutation

if TYPE_CHECKING:
    from myosotis.api.memory import Memory

StateLike = GraphState | Overlay | HistoricalState


class Reader:
    """The read API shared by :class:`Memory` and :class:`View`."""

    def _read_state(self) -> StateLike:
        raise NotImplementedError

    def _node_state(self, node_id: int) -> NodeState:
        n = self._read_state().get(node_id) if type(node_id) is int else None
        if n is None:
            raise NodeNotFoundError(f"no node {node_id!r}" + self._where())
        return n

    def _node_fields(self, node_id: int) -> dict[str, Any]:
        """``Node.fields()`` of the node: see handles.fields_of."""
        return fields_of(self._node_state(node_id), self)

    def _where(self) -> str:
        return ""

    def _stage(self, m: Mutation) -> None:
        raise NotImplementedError

    def _stage_all(self, ms: list[Mutation]) -> None:
        for m in ms:
            self._stage(m)

    def _owns(self, handle: Node) -> bool:
        return handle._src is self

    def get(self, node_id: int) -> Node:
        """The node with this id (deleted nodes too); raises NodeNotFoundError."""
        self._node_state(node_id)
        return Node(self, node_id)

    def __getitem__(self, node_id: int) -> Node:
        return self.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return type(node_id) is int and 1 <= node_id < self._read_state().next_node_id

    def nodes(self, type: str | None = None, *, deleted: bool = False) -> Iterator[Node]:
        """Nodes in id order, optionally of one ``type``; tombstoned ones only with
        ``deleted=True``."""
        state = self._read_state()
        if isinstance(state, HistoricalState):
            state = state.whole()
        for node_id in range(1, state.next_node_id):
            if type is not None and state.type_of(node_id) != type:
                continue
            if not deleted:
                n = state.get(node_id)
                if n is None or n.deleted:
                    continue
            yield Node(self, node_id)

    def __iter__(self) -> Iterator[Node]:
        return self.nodes()

    def __len__(self) -> int:
        """Number of live (not deleted) nodes."""
        return sum(1 for _ in self.nodes())

    @property
    def next_node_id(self) -> int:
        return self._read_state().next_node_id

    # ------------------------------------------------------------ traversal (api/explore.py)

    def _owner(self) -> Memory:
        raise NotImplementedError

    def _reader_at(self, at: CommitRef | None) -> Reader:
        """This reader, or a view of commit ``at`` of the same memory."""
        return self if at is None else self._owner().at(at)

    def walk(self, start: Starts, depth: int | None = None, at: CommitRef | None = None,
             follow: Follow = None) -> Iterator[WalkStep]:
        """The nodes reachable from ``start`` (an id or handle, or several) through
        references, breadth-first, each once, as :class:`WalkStep`\\ s.

        References are found in fields and anywhere inside their lists and maps;
        a node's references are followed in a fixed order (fields by name, list
        elements by index, map keys sorted), so the order is deterministic.
        Starts come first (depth 0). ``depth`` bounds how many references are
        followed (``None``: no bound). ``at`` reads commit ``at`` instead (any
        name :meth:`Memory.resolve` takes, or a datetime). ``follow`` picks the
        references followed (see ``Follow``: field names, or a callable given
        source, path and target). Tombstoned nodes are reached and walked
        through like others (their references are still there); pass a
        ``follow`` that checks ``source.deleted`` to stop at them.

        Raises NodeNotFoundError (a start), CommitNotFoundError,
        InvalidArgumentError (a bad ``depth`` or ``follow``) before the first
        step. Cost: O(nodes reached + their references), lazily as iterated.
        """
        return explore.walk(self._reader_at(at), start, depth, follow)

    def reachable(self, roots: Starts, at: CommitRef | None = None,
                  follow: Follow = None) -> set[int]:
        """Ids of every node reachable from ``roots`` through references, the roots
        included (see :meth:`walk` for ``at``, ``follow``, errors and cost)."""
        return explore.reachable(self._reader_at(at), roots, follow)

    def orphans(self, roots: Starts, at: CommitRef | None = None,
                follow: Follow = None) -> list[int]:
        """Ids of the live (not tombstoned) nodes that no root reaches, in id order
        (see :meth:`walk`). Cost: O(all nodes): every node is read once."""
        return explore.orphans(self._reader_at(at), roots, follow)

    def graph(self, nodes: Starts | None = None, depth: int | None = 1,
              at: CommitRef | None = None, fields: Iterable[str] | None = None,
              format: GraphFormat = "dot", max_nodes: int = picture.MAX_NODES) -> str:
        """A picture of part of the graph: Graphviz DOT text, or SVG.

        ``nodes`` (an id or handle, or several) and everything within ``depth``
        references of them (``None``: all reachable), or, with ``nodes=None``,
        every node (tombstones too; ``depth`` unused). At most ``max_nodes`` are
        drawn, the first ones in breadth-first (or id) order; a note counts the
        rest. Each node is a
        box labelled ``#id Type`` and, one per line, the fields named in
        ``fields`` (default: up to 8 fields that hold no reference), values cut
        to 40 characters; tombstones are dashed and grey. Each reference
        between two drawn nodes is an edge labelled with its path
        (``items[2]["k"]``). The text is deterministic and every user string
        is escaped (api/picture.py). ``at``: as in :meth:`walk`.

        ``format="svg"`` runs Graphviz ``dot -Tsvg`` from PATH and returns the
        SVG; MissingProgramError when it is not installed, RenderError when it
        fails. Also raises NodeNotFoundError, CommitNotFoundError,
        InvalidArgumentError. Cost: O(drawn nodes + their references), plus
        one pass over the rest to count them.
        """
        if format not in ("dot", "svg"):
            raise InvalidArgumentError(
                f"format must be 'dot' or 'svg', not {short_repr(format, 40)}")
        text = picture.to_dot(self._reader_at(at), nodes, depth, fields, max_nodes)
        return text if format == "dot" else picture.render_svg(text)

    def state_hash(self) -> str:
        """BLAKE3-256 of the state image (FORMAT.md §9.2), as hex; staged changes count."""
        raise NotImplementedError


class View(Reader):
    """The read-only state after one commit: the read API of Memory, no changes."""

    def __init__(self, memory: Memory, seq: int) -> None:
        self._memory = memory
        self.seq = seq
        self._hist = memory._live_store().state_at(seq)

    def _read_state(self) -> HistoricalState:
        if self._memory.closed:
            raise ClosedError(f"{self._memory.path} was closed; open it again to use it")
        return self._hist

    def _where(self) -> str:
        return f" at commit {self.seq}"

    def _owner(self) -> Memory:
        return self._memory

    def state_hash(self) -> str:
        return state_hash(self._read_state().whole().image()).hex()

    def _stage(self, m: Mutation) -> None:
        raise ReadOnlyError(f"a view of commit {self.seq} is read-only; change the Memory")

    @property
    def commit(self) -> Commit:
        return self._memory._live_store().commit_info(self.seq)

    def __repr__(self) -> str:
        return f"<View of commit {self.seq}>"

    def _repr_html_(self) -> str:
        """A notebook table of the view's nodes (bounded rows, HTML-escaped)."""
        return nodes_html(self, f"view of commit {self.seq}")
