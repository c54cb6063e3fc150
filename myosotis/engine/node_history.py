"""Per-node history, blame and referrers, answered through the history index
(engine/history_index.py), never by scanning the history.

Each query costs the index rows of the one node (its changes, or the places
values referencing it were written to) plus, per row, the commit header and
the one mutation it names, decoded in place. A node at a past commit (for
blame's field names, and for each place a referrer may be) is rebuilt from
its own mutations, found through the index, not by time travel: that would
decode every commit between the checkpoint before the commit and it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from myosotis.engine.graph import NodeState, SingleNode
from myosotis.engine.history import Commit
from myosotis.engine.history_index import HistoryIndex, with_index
from myosotis.errors import CorruptFileError, InvalidOperationError, NodeNotFoundError
from myosotis.format.mutations import Create, Delete, Mutation, get_mutation
from myosotis.format.values import Ref

if TYPE_CHECKING:
    from myosotis.engine.store import Store

# A path from a node: the field name, then list indexes and map keys.
RefPath = tuple[str | int, ...]


class LogEntry(NamedTuple):
    """One commit of a node's history: ``commit`` and the ``mutations`` of it that
    changed the node (in commit order; only those of one field when the log was
    asked for a field: a CREATE counts for each field it sets)."""

    commit: Commit
    mutations: tuple[Mutation, ...]


class Referrer(NamedTuple):
    """A place that references a node: field path ``path`` (the field name, then
    list indexes and map keys) of node ``node``."""

    node: int
    path: RefPath


def _check_node(store: Store, node: int, upto: int) -> None:
    nxt = (store.committed.next_node_id if upto == store.head_seq
           else store.commit_info(upto).next_node_id)
    if type(node) is not int or not 0 < node < nxt:
        raise NodeNotFoundError(f"no node {node} at commit {upto}" if upto != store.head_seq
                                else f"no node {node}")


def _mutation(payload: Any, off: int) -> Mutation:
    return get_mutation(payload, off, len(payload))[0]


def _concerns(m: Mutation, field: str | None) -> bool:
    if field is None:
        return True
    if type(m) is Create:
        return field in m.fields
    return type(m) is not Delete and getattr(m, "field", None) == field


def node_log(store: Store, node: int, field: str | None, upto: int) -> Iterator[LogEntry]:
    """The commits ``<= upto`` that changed ``node`` (or its ``field``), newest first.

    Raises NodeNotFoundError when the node does not exist at ``upto``. The
    index is read when the iterator starts; entries are decoded as it goes.
    """
    _check_node(store, node, upto)
    rows = with_index(store, lambda ix: ix.touches(node, upto))
    by_seq: dict[int, list[int]] = {}
    for seq, off, f in rows:
        if field is None or f is None or f == field:
            by_seq.setdefault(seq, []).append(off)
    return _entries(store, by_seq, field)


def _entries(store: Store, by_seq: dict[int, list[int]],
             field: str | None) -> Iterator[LogEntry]:
    for seq in sorted(by_seq, reverse=True):
        payload = store.commits.commit_payload(seq)
        muts = tuple(m for m in (_mutation(payload, off) for off in sorted(by_seq[seq]))
                     if _concerns(m, field))
        if muts:
            yield LogEntry(store.commit_info(seq), muts)


def _node_at(store: Store, node: int, upto: int,
             rows: list[tuple[int, int, str | None]] | None = None) -> NodeState | None:
    """The node after commit ``upto``: at the head, from the committed state; at a
    past commit, rebuilt from its own mutations through the index (its ``rows``
    if given), on the compacted base's record when it has one. O(changes of the
    node), where a time-travel read would decode the commits around ``upto``."""
    if upto == store.head_seq:
        return store.committed.get(node)
    if rows is None:
        rows = with_index(store, lambda ix: ix.touches(node, upto))
    base = None
    if store.commits.has_genesis:
        img = store.snapshots.image(0)
        rec = img.get(node) if img is not None else None
        if rec is not None:
            base = NodeState(rec.type, rec.fields, rec.deleted)
    one = SingleNode(node, base)
    try:
        for seq, off, _ in rows:
            # decoded afresh: the values are this replay's own to change
            _mutation(store.commits.commit_payload(seq), off).apply(one)
    except InvalidOperationError as e:
        raise CorruptFileError(f"replaying node {node} to commit {upto}: {e}") from None
    return one.node


def node_blame(store: Store, node: int, upto: int) -> dict[str, Commit]:
    """Each field of ``node`` after commit ``upto`` -> the commit that last set it (the
    compacted base for a field set before it). Raises NodeNotFoundError."""
    _check_node(store, node, upto)
    rows = with_index(store, lambda ix: ix.touches(node, upto))
    n = _node_at(store, node, upto, rows)
    base = store.commits.base_seq
    # A node's first mutation is its CREATE, unless it was already in the
    # compacted base: then the base set the fields no later commit touched.
    in_base = store.commits.has_genesis and node < store.commit_info(base).next_node_id
    created = base if in_base or not rows else rows[0][0]
    last: dict[str | None, int] = {}
    for seq, _, f in rows:
        last[f] = seq
    fields = [] if n is None else sorted(n.fields)
    out: dict[str, Commit] = {}
    cache: dict[int, Commit] = {}
    for name in fields:
        seq = last.get(name, created)
        if seq not in cache:
            cache[seq] = store.commit_info(seq)
        out[name] = cache[seq]
    return out


def ref_paths(value: Any, dst: int, prefix: RefPath) -> Iterator[RefPath]:
    """Every path inside ``value`` (starting with ``prefix``) that holds ``Ref(dst)``."""
    t = type(value)
    if t is Ref:
        if value.id == dst:
            yield prefix
    elif t is list:
        for i, x in enumerate(value):
            yield from ref_paths(x, dst, (*prefix, i))
    elif t is dict:
        for k in sorted(value):
            yield from ref_paths(value[k], dst, (*prefix, k))


def node_referrers(store: Store, node: int, upto: int) -> list[Referrer]:
    """The places that reference ``node`` after commit ``upto``, sorted by node then
    path (tombstoned nodes included: their fields are kept). Raises NodeNotFoundError."""
    _check_node(store, node, upto)
    # the places a value referencing the node was ever written to, each read at
    # ``upto``: those that still reference it are the answer
    fields = with_index(store, lambda ix: ix.places(node, upto))
    out: list[Referrer] = []
    for src, name in sorted(fields):
        n = _node_at(store, src, upto)
        if n is not None and name in n.fields:
            out.extend(Referrer(src, p) for p in ref_paths(n.fields[name], node, (name,)))
    return out


__all__ = ["HistoryIndex", "LogEntry", "Referrer", "node_blame", "node_log", "node_referrers"]
