"""The read API shared by ``Memory`` and ``View``, and ``View``, a read-only past state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from myosotis.api.handles import Node
from myosotis.engine.graph import GraphState, NodeState, Overlay
from myosotis.engine.history import Commit
from myosotis.engine.segments import HistoricalState
from myosotis.errors import ClosedError, NodeNotFoundError, ReadOnlyError
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

    def state_hash(self) -> str:
        return state_hash(self._read_state().whole().image()).hex()

    def _stage(self, m: Mutation) -> None:
        raise ReadOnlyError(f"a view of commit {self.seq} is read-only; change the Memory")

    @property
    def commit(self) -> Commit:
        return self._memory._live_store().commit_info(self.seq)

    def __repr__(self) -> str:
        return f"<View of commit {self.seq}>"
