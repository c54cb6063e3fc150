"""``Memory.log``, ``Memory.blame`` and ``Memory.referrers``: argument checks, then
the engine's queries through the history index (engine/node_history.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from myosotis.api.handles import Node
from myosotis.engine.history import Commit
from myosotis.engine.node_history import (
    LogEntry,
    Referrer,
    node_blame,
    node_log,
    node_referrers,
)
from myosotis.engine.store import Store
from myosotis.errors import InvalidArgumentError

if TYPE_CHECKING:
    from myosotis.api.memory import Memory
    from myosotis.api.names import CommitRef


def _target(mem: Memory, node: int | Node, at: CommitRef | None) -> tuple[Store, int, int]:
    nid = node.id if isinstance(node, Node) else node
    if type(nid) is not int:
        raise InvalidArgumentError(f"a node is named by its id or its handle, not {node!r}")
    store = mem._live_store()
    return store, nid, store.head_seq if at is None else mem.resolve(at)


def log(mem: Memory, node: int | Node, field: str | None,
        at: CommitRef | None) -> Iterator[LogEntry]:
    if field is not None and not isinstance(field, str):
        raise InvalidArgumentError(f"a field is named by a string, not {field!r}")
    store, nid, upto = _target(mem, node, at)
    return node_log(store, nid, field, upto)


def blame(mem: Memory, node: int | Node, at: CommitRef | None) -> dict[str, Commit]:
    store, nid, upto = _target(mem, node, at)
    return node_blame(store, nid, upto)


def referrers(mem: Memory, node: int | Node, at: CommitRef | None) -> list[Referrer]:
    store, nid, upto = _target(mem, node, at)
    return node_referrers(store, nid, upto)
