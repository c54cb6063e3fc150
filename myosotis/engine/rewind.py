"""Going back: the mutations that restore a past commit's state, or undo one commit.

Both only *plan* mutations; the caller stages them (all or none) and commits
them like any change, so a restore or a revert is an ordinary, hash-chained
commit and history is never rewritten. Ids are never reused and nodes never
removed, so "going back" past a node's creation tombstones it.

- :func:`restore_plan` makes the live state equal to commit ``c``'s: for every
  node a commit after ``c`` touched, its fields become ``c``'s (SET / UNSET),
  its tombstone ``c``'s (DELETE / UNDELETE), and a node created after ``c``
  is tombstoned with its fields left as they are. Cost: the nodes touched
  between ``c`` and the head, never the whole state.
- :func:`revert_plan` undoes commit ``c``'s own changes, field by field (the
  field's value before ``c``), unless a later commit changed the same
  field or tombstone: that is a :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from myosotis.engine.graph import NodeState
from myosotis.engine.store import Store
from myosotis.errors import (
    CommitNotFoundError,
    InvalidOperationError,
    NodeNotFoundError,
    RevertConflictError,
)
from myosotis.format.mutations import (
    Create,
    Delete,
    Mutation,
    Set,
    Undelete,
    Unset,
)
from myosotis.format.records import decode_commit_header, decode_mutations
from myosotis.format.values import clone, values_equal

TOMBSTONE = "(tombstone)"  # the "path" of a conflict over a node's tombstone


@dataclass(frozen=True)
class Conflict:
    """A later commit ``commit`` changed ``path`` of node ``node`` (a field name, with
    list/map steps as in ``items[0]["k"]``, or ``"(tombstone)"``) after the commit
    being reverted changed it."""

    commit: int
    node: int
    path: str

    def __str__(self) -> str:
        return f"commit {self.commit} changed node {self.node} {self.path}"


@dataclass(frozen=True)
class RevertResult:
    """What :meth:`Memory.revert` staged: ``mutations``, and with ``force=True`` the
    ``skipped`` conflicts whose later values were kept."""

    commit: int
    mutations: tuple[Mutation, ...]
    skipped: tuple[Conflict, ...] = ()


def require_clean(store: Store, what: str) -> None:
    """The writer, with nothing staged: a plan is made against the committed head."""
    store.require_writer()
    if store.pending_count:
        raise InvalidOperationError(f"commit or discard the staged changes before {what}")


def node_to(node_id: int, cur: NodeState, want: NodeState | None) -> list[Mutation]:
    """The mutations that turn node ``node_id`` from ``cur`` into ``want`` (None: it did
    not exist then, so it is tombstoned; its fields stay as they are)."""
    if want is None:
        return [] if cur.deleted else [Delete(node_id)]
    fields: list[Mutation] = [Unset(node_id, f) for f in sorted(cur.fields)
                              if f not in want.fields]
    fields += [Set(node_id, f, clone(v)) for f, v in sorted(want.fields.items())
               if f not in cur.fields or not values_equal(cur.fields[f], v)]
    out: list[Mutation] = []
    # A tombstoned node changes only once undeleted (R50); it is deleted again
    # after its fields are set when the past state had it tombstoned.
    if cur.deleted and (fields or not want.deleted):
        out.append(Undelete(node_id))
    out += fields
    if want.deleted and (out or not cur.deleted):
        out.append(Delete(node_id))
    return out


def restore_plan(store: Store, seq: int, nodes: Iterable[int] | None = None) -> list[Mutation]:
    """The mutations that make the committed state's nodes (all, or ``nodes``) equal
    to those after commit ``seq`` (see the module docstring). Raises
    CommitNotFoundError, NodeNotFoundError (a node of ``nodes`` that does not exist)."""
    head = store.head_seq
    seq = store.resolve(seq)
    touched = store.touched_between(seq, head) if seq < head else set()
    if nodes is not None:
        wanted = set()
        for n in nodes:
            if type(n) is not int or not 1 <= n < store.committed.next_node_id:
                raise NodeNotFoundError(f"node {n!r} does not exist")
            wanted.add(n)
        touched &= wanted
    past = store.state_at(seq)
    now = store.committed
    out: list[Mutation] = []
    for node_id in sorted(touched):
        cur = now.get(node_id)
        assert cur is not None  # touched nodes exist at the head
        out += node_to(node_id, cur, past.get(node_id))
    return out


def decoded_commit(store: Store, seq: int) -> list[Mutation]:
    """The decoded mutations of commit ``seq`` (one after the compacted base)."""
    payload = store.commits.commit_payload(seq)
    return decode_mutations(payload, decode_commit_header(payload).body)


def _place(m: Mutation) -> str:
    """Where ``m`` (a field edit) applies: the field, then each path step and the list
    index or map key it edits, e.g. ``items[0]`` or ``meta['k']``."""
    steps = (*getattr(m, "path", ()), *(getattr(m, a) for a in ("pos", "key") if hasattr(m, a)))
    return getattr(m, "field", "") + "".join(
        f"[{s}]" if type(s) is int else f"[{s!r}]" for s in steps)


def _later_changes(store: Store, seq: int) -> dict[tuple[int, str], tuple[int, str]]:
    """For each ``(node, field or TOMBSTONE)`` a commit after ``seq`` changed, the first
    such commit and the path it changed."""
    out: dict[tuple[int, str], tuple[int, str]] = {}
    for s in range(seq + 1, store.head_seq + 1):
        for m in decoded_commit(store, s):
            if isinstance(m, (Delete, Undelete)):
                out.setdefault((m.node, TOMBSTONE), (s, TOMBSTONE))
            elif not isinstance(m, Create):
                out.setdefault((m.node, m.field), (s, _place(m)))
    return out


def _touched_by(muts: list[Mutation]) -> dict[int, set[str]]:
    """What each node had changed by a commit: field names, TOMBSTONE, or "" for a
    node the commit created."""
    out: dict[int, set[str]] = {}
    for m in muts:
        parts = out.setdefault(m.node, set())
        if isinstance(m, Create):
            parts.add("")
        elif isinstance(m, (Delete, Undelete)):
            parts.add(TOMBSTONE)
        else:
            parts.add(m.field)
    return out


def _node_conflicts(node_id: int, parts: set[str],
                    later: dict[tuple[int, str], tuple[int, str]]) -> dict[str, Conflict]:
    """The later changes to what commit ``c`` changed of one node, by field (or
    TOMBSTONE). A node ``c`` created conflicts with any later change to it (reverting
    it tombstones it); any node with its tombstone changed later conflicts too."""
    keys = {k for k in later if k[0] == node_id} if "" in parts else \
        {(node_id, p) for p in parts} | {(node_id, TOMBSTONE)}
    return {k[1]: Conflict(later[k][0], node_id, later[k][1])
            for k in sorted(keys) if k in later}


def _inverse(node_id: int, parts: set[str], before: NodeState | None,
             cur: NodeState) -> list[Mutation]:
    """Node ``node_id`` with the parts commit ``c`` changed put back as ``before``."""
    if before is None:  # c created it: it is tombstoned
        return node_to(node_id, cur, None)
    fields = {f: v for f, v in cur.fields.items() if f not in parts}
    fields.update((f, v) for f, v in before.fields.items() if f in parts)
    deleted = before.deleted if TOMBSTONE in parts else cur.deleted
    return node_to(node_id, cur, NodeState(cur.type, fields, deleted))


def revert_plan(store: Store, seq: int, force: bool = False) -> RevertResult:
    """The mutations that undo commit ``seq``'s changes (see the module docstring).

    Raises CommitNotFoundError (no such commit, or folded by compaction: its
    mutations are gone) and RevertConflictError naming every conflict, unless
    ``force``: then conflicting parts are left as the later commits made them and
    listed in ``skipped``. Cost: decoding the commits from ``seq`` to the head.
    """
    seq = store.resolve(seq)
    if seq <= store.commits.base_seq:
        raise CommitNotFoundError(
            f"commit {seq} has no mutations left to revert" + (
                " (it was folded into the genesis by compaction)" if seq else ""))
    touched = _touched_by(decoded_commit(store, seq))
    later = _later_changes(store, seq)
    before = store.state_at(seq - 1)
    now = store.committed
    out: list[Mutation] = []
    skipped: list[Conflict] = []
    for node_id in sorted(touched):
        parts = touched[node_id]
        conflicts = _node_conflicts(node_id, parts, later)
        skipped += conflicts.values()
        if conflicts and ("" in parts or TOMBSTONE in conflicts):
            # A node c created and changed since stays live; a node deleted or
            # undeleted since is left as the later commit made it, fields too.
            continue
        parts = parts - set(conflicts)
        cur = now.get(node_id)
        assert cur is not None
        out += _inverse(node_id, parts, _copy(before.get(node_id)), cur)
    if skipped and not force:
        raise RevertConflictError(
            f"cannot revert commit {seq}: later commits changed the same "
            f"{'place' if len(skipped) == 1 else 'places'}: "
            + "; ".join(str(c) for c in skipped)
            + ". Pass force=True (myo revert --force) to keep the later values and revert "
            "the rest", tuple(skipped))
    return RevertResult(seq, tuple(out), tuple(skipped))


def _copy(n: NodeState | None) -> NodeState | None:
    return None if n is None else NodeState(n.type, dict(n.fields), n.deleted)
