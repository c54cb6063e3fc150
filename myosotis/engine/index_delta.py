"""The history index's rows for one commit, and the rows not yet in the sidecar.

:func:`commit_rows` turns one commit into index rows (engine/index_file.py
describes them): a ``touch`` per mutation, and for each field whose set of
referenced nodes changed, its new set and the events of the nodes that
entered or left it. Which nodes a field references after an edit is known
from the mutation alone in the common cases (a SET replaces the whole value;
an insert into a field that referenced nothing references exactly what was
inserted); only an edit that may remove a reference from a field that holds
some needs the field's value after the commit (``value_after``).

A :class:`Delta` holds the rows of commits ``(start, upto]`` in memory, by
the key each query asks for, until they are flushed to the sidecar (a
writer) or for the life of the handle (a reader that cannot write it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    MapDelete,
    Mutation,
    Set,
    Unset,
    get_mutation,
)
from myosotis.format.values import get_uvarint, iter_refs

Refs = frozenset[int]
NONE: Refs = frozenset()
# (src, field) -> what that field references after the commit
FieldKey = tuple[int, str]


def mutations_at(payload: Any, body: int) -> Iterator[tuple[int, Mutation]]:
    """``(payload offset, mutation)`` of each mutation of a commit whose mutation list
    starts at ``body`` (the payload was checked when the commit was read)."""
    end = len(payload)
    count, p = get_uvarint(payload, body, end)
    for _ in range(count):
        start = p
        m, p = get_mutation(payload, p, end)
        yield start, m


class CommitRows:
    """The index rows of one commit."""

    def __init__(self) -> None:
        self.touches: list[tuple[int, int, str | None]] = []  # node, off, field
        self.fieldrefs: dict[FieldKey, Refs] = {}  # changed sets only
        self.events: list[tuple[int, int, str, int]] = []  # dst, src, field, live


_NEED = None  # the set after the commit must be read from the field's value


def _edit(refs: Refs | None, m: Any) -> Refs | None:
    """The set after edit ``m`` of a field that referenced ``refs`` (None: unknown)."""
    if refs is None:
        return None
    if type(m) in (ListRemove, MapDelete):
        return NONE if not refs else _NEED  # removing from a field without references
    added = frozenset(iter_refs(m.value))  # the edits left are inserts and replaces
    if not refs:
        return added  # every reference the field now holds came with this edit
    return refs | added if type(m) is ListInsert else _NEED  # a replace may drop one


def commit_rows(payload: Any, body: int, old_refs: Callable[[int, str], Refs],
                value_after: Callable[[int, str], Any]) -> CommitRows:
    """The rows of the commit whose mutation list starts at payload offset ``body``.

    ``old_refs(src, field)``: what the field referenced before the commit;
    ``value_after(src, field)``: its value after the commit (None if absent),
    read only for an edit that may have dropped a reference.
    """
    out = CommitRows()
    before: dict[FieldKey, Refs] = {}
    after: dict[FieldKey, Refs | None] = {}

    def current(key: FieldKey) -> Refs | None:
        if key in after:
            return after[key]
        if key not in before:
            before[key] = old_refs(*key)
        return before[key]

    for off, mut in mutations_at(payload, body):
        m: Any = mut  # each branch below reads the operands of its own type
        t = type(m)
        if t is Create:
            out.touches.append((m.node, off, None))
            for name, v in m.fields.items():
                after[(m.node, name)] = frozenset(iter_refs(v))
                before.setdefault((m.node, name), NONE)
            continue
        if t is Delete:
            out.touches.append((m.node, off, None))  # a tombstone keeps the fields
            continue
        field: str = m.field
        out.touches.append((m.node, off, field))
        key = (m.node, field)
        if t is Set:
            current(key)
            after[key] = frozenset(iter_refs(m.value))
        elif t is Unset:
            current(key)
            after[key] = NONE
        else:  # a list or map edit at a path inside the field
            after[key] = _edit(current(key), m)
    for key, refs in after.items():
        if refs is None:
            refs = frozenset(iter_refs(value_after(*key)))
        old = before.get(key, NONE)
        if refs == old:
            continue
        out.fieldrefs[key] = refs
        src, field = key
        out.events.extend((d, src, field, 0) for d in sorted(old - refs))
        out.events.extend((d, src, field, 1) for d in sorted(refs - old))
    return out


class Delta:
    """Index rows of commits ``(start, upto]`` held in memory, by query key.

    Rows are appended in commit order; :meth:`add` moves ``tip`` last, so an
    interrupted add leaves rows past ``upto`` that every read ignores and
    the next add of that commit drops first.
    """

    def __init__(self, start: int, start_id: bytes) -> None:
        self.start = start
        self.tip = (start, start_id)  # (upto, its commit id)
        self.chain: list[tuple[int, bytes]] = []
        self.touches: dict[int, list[tuple[int, int, str | None]]] = {}
        self.fieldrefs: dict[FieldKey, list[tuple[int, Refs]]] = {}
        self.events: dict[int, list[tuple[int, int, str, int]]] = {}
        self.rows = 0

    @property
    def upto(self) -> int:
        return self.tip[0]

    def add(self, seq: int, cid: bytes, rows: CommitRows) -> None:
        """Add commit ``seq == upto + 1`` with id ``cid``."""
        if seq != self.tip[0] + 1:
            raise ValueError(f"commit {seq} added to an index delta that ends at {self.tip[0]}")
        del self.chain[seq - self.start - 1:]
        # rows an interrupted add of this commit left behind go first
        for node, _, _ in rows.touches:
            _drop_from(self.touches.get(node), seq)
        for key in rows.fieldrefs:
            _drop_from(self.fieldrefs.get(key), seq)
        for dst, _, _, _ in rows.events:
            _drop_from(self.events.get(dst), seq)
        for node, off, field in rows.touches:
            self.touches.setdefault(node, []).append((seq, off, field))
        for key, refs in rows.fieldrefs.items():
            self.fieldrefs.setdefault(key, []).append((seq, refs))
        for dst, src, field, live in rows.events:
            self.events.setdefault(dst, []).append((seq, src, field, live))
        self.chain.append((seq, cid))
        self.rows += len(rows.touches) + len(rows.events) + 1
        self.tip = (seq, cid)

    def touches_of(self, node: int, upto: int) -> list[tuple[int, int, str | None]]:
        return [r for r in self.touches.get(node, ()) if r[0] <= min(upto, self.upto)]

    def events_of(self, dst: int, upto: int) -> list[tuple[int, int, str, int]]:
        return [r for r in self.events.get(dst, ()) if r[0] <= min(upto, self.upto)]

    def field_refs(self, src: int, field: str) -> Refs | None:
        """The newest set of the field in the delta, None if the delta has none."""
        for seq, refs in reversed(self.fieldrefs.get((src, field), ())):
            if seq <= self.upto:
                return refs
        return None

    def sidecar_rows(self) -> tuple[list[tuple[int, int, int, str | None]],
                                    list[tuple[int, str, int, str]],
                                    list[tuple[int, int, int, str, int]]]:
        """The rows of commits ``(start, upto]`` as the sidecar's tables hold them."""
        u = self.upto
        touches = [(n, s, o, f) for n, rs in self.touches.items() for s, o, f in rs if s <= u]
        fieldrefs = [(src, f, s, ",".join(map(str, sorted(refs))))
                     for (src, f), rs in self.fieldrefs.items() for s, refs in rs if s <= u]
        events = [(d, s, src, f, live) for d, rs in self.events.items()
                  for s, src, f, live in rs if s <= u]
        return touches, fieldrefs, events


def _drop_from(rows: list[Any] | None, seq: int) -> None:
    while rows and rows[-1][0] >= seq:
        rows.pop()
