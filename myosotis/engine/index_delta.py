"""The history index's rows for one commit, and the rows not yet in the sidecar.

:func:`add_commit` turns one commit into index rows (:func:`add_staged` the
same from the mutations its writer staged) (engine/index_file.py
describes them): a ``touch`` per mutation, and a ``refev`` for each node a
value written by the commit references (a SET's or CREATE's value, an
inserted or replaced list element, a map entry). Rows say where a
reference may have appeared, never where it went: a query reads each such
place at the commit it asks about and keeps it if it still holds the
reference. So a commit needs no lookup of what a field held before, and the
rows of a commit are a function of its mutations alone.

A :class:`Delta` holds the rows of commits ``(start, upto]`` in memory until
they are flushed to the sidecar (a writer), or for the life of the handle (a
reader that cannot write it).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from typing import Any

from myosotis.format.mutations import (
    Create,
    Delete,
    ListRemove,
    MapDelete,
    Mutation,
    Undelete,
    Unset,
    get_mutation,
)
from myosotis.format.values import Ref, get_uvarint, iter_refs

_FIELD = operator.itemgetter(3)  # of an event row: the field

Refs = frozenset[int]
NONE: Refs = frozenset()


def refs_of(v: Any) -> Refs:
    """The ids ``v`` references (a value of any shape)."""
    t = type(v)
    if t is Ref:
        return frozenset((v.id,))
    if t is list or t is dict:
        return frozenset(iter_refs(v))
    return NONE


class Delta:
    """Index rows of commits ``(start, upto]`` held in memory.

    Rows are appended to flat lists, in the sidecar's row shapes, as commits
    are indexed (the writer's hot path: a few list appends per commit); the
    per-key lookups queries need are built from them lazily, on the first
    query after new rows. ``tip`` (the newest commit and the list lengths after
    it) moves last in :meth:`add`: an interrupted add leaves rows past it
    that every read ignores and the next add drops first.
    """

    def __init__(self, start: int, start_id: bytes) -> None:
        self.start = start
        self.tip: tuple[int, bytes, int, int] = (start, start_id, 0, 0)
        self.chain: list[tuple[int, bytes]] = []
        self.touches: list[tuple[int, int, int, str | None]] = []  # node, seq, off, field
        self.events: list[tuple[int, int, int, str]] = []  # dst, seq, src, field
        # what queries look up, built from the rows up to ``_seen``
        self._seen = (0, 0)
        self._touches_of: dict[int, list[tuple[int, int, str | None]]] = {}
        self._events_of: dict[int, list[tuple[int, int, str]]] = {}

    @property
    def upto(self) -> int:
        return self.tip[0]

    @property
    def rows(self) -> int:
        return self.tip[2] + self.tip[3]

    def begin(self, seq: int) -> None:
        """Start adding commit ``seq == upto + 1``: drop what an interrupted add left."""
        upto, _, nt, ne = self.tip
        if seq != upto + 1:
            raise ValueError(f"commit {seq} added to an index delta that ends at {upto}")
        del self.chain[upto - self.start:], self.touches[nt:], self.events[ne:]

    def end(self, seq: int, cid: bytes) -> None:
        """Commit ``seq`` (id ``cid``) is added: its rows become visible."""
        self.chain.append((seq, cid))
        self.tip = (seq, cid, len(self.touches), len(self.events))

    def _index(self) -> None:
        """Extend the per-key lookups with the rows added since the last query."""
        _, _, nt, ne = self.tip
        st, se = self._seen
        if (st, se) == (nt, ne):
            return
        if st > nt or se > ne:  # rows of an interrupted add were indexed
            st, se = 0, 0
            self._touches_of, self._events_of = {}, {}
        for node, seq, off, field in self.touches[st:nt]:
            self._touches_of.setdefault(node, []).append((seq, off, field))
        for dst, seq, src, field in self.events[se:ne]:
            self._events_of.setdefault(dst, []).append((seq, src, field))
        self._seen = (nt, ne)

    def touches_of(self, node: int, upto: int) -> list[tuple[int, int, str | None]]:
        self._index()
        return [r for r in self._touches_of.get(node, ()) if r[0] <= upto]

    def events_of(self, dst: int, upto: int) -> list[tuple[int, int, str]]:
        self._index()
        return [r for r in self._events_of.get(dst, ()) if r[0] <= upto]

    def sidecar_rows(self) -> tuple[list[tuple[int, int, int, str | None]],
                                    list[tuple[int, int, int, str]]]:
        """The rows of commits ``(start, upto]`` as the sidecar's tables hold them."""
        _, _, nt, ne = self.tip
        return self.touches[:nt], self.events[:ne]


def _refs(events: list[tuple[int, int, int, str]], v: Any, seq: int, src: int,
          field: str) -> None:
    """Add the events of value ``v`` written into ``field`` of ``src`` by commit ``seq``."""
    t = type(v)
    if t is Ref:
        events.append((v.id, seq, src, field))
    elif t is list or t is dict:
        if t is list:
            for x in v:
                tx = type(x)
                if tx is Ref or tx is list or tx is dict:
                    break
            else:
                return  # scalars only (the common list): no reference
        events.extend((d, seq, src, field) for d in sorted(frozenset(iter_refs(v))))


def _add(delta: Delta, seq: int, cid: bytes, mutations: Iterable[tuple[int, Mutation]]) -> None:
    """Add the rows of commit ``seq`` (id ``cid``), whose ``mutations`` are ``(payload
    offset, mutation)`` pairs in order, to ``delta``."""
    delta.begin(seq)
    touches, events = delta.touches, delta.events
    m: Any  # each branch reads its own type's operands
    for off, m in mutations:
        t = type(m)
        if t is Create:
            node = m.node
            touches.append((node, seq, off, None))
            first = len(events)
            for name, v in m.fields.items():
                _refs(events, v, seq, node, name)
            if len(events) - first > 1:
                # by field, in canonical (encoded) order, as a decoded CREATE holds
                # them (a stable sort: each field's ids stay in order)
                events[first:] = sorted(events[first:], key=_FIELD)
        elif t is Delete or t is Undelete:
            # a tombstone keeps the fields, and an undelete brings them back as they were
            touches.append((m.node, seq, off, None))
        else:
            touches.append((m.node, seq, off, m.field))
            if t is not Unset and t is not ListRemove and t is not MapDelete:
                # SET, LIST_INSERT, LIST_REPLACE, MAP_SET: a value that may hold references
                _refs(events, m.value, seq, m.node, m.field)
    delta.end(seq, cid)


def _decoded(payload: Any, body: int) -> Iterator[tuple[int, Mutation]]:
    end = len(payload)
    count, p = get_uvarint(payload, body, end)
    for _ in range(count):
        off = p
        m, p = get_mutation(payload, p, end)
        yield off, m


def add_commit(delta: Delta, seq: int, cid: bytes, payload: Any, body: int) -> None:
    """Add the rows of commit ``seq`` (id ``cid``) to ``delta``, decoding its payload;
    its mutation list starts at payload offset ``body`` (a payload already checked)."""
    _add(delta, seq, cid, _decoded(payload, body))


def add_staged(delta: Delta, seq: int, cid: bytes, first: int, staged: list[Mutation],
               staged_at: list[int]) -> None:
    """Add the rows of commit ``seq`` (id ``cid``), just written from the ``staged``
    mutations, the i-th encoded at offset ``first + staged_at[i]`` of its payload: the
    same rows as :func:`add_commit` reads from that payload, without decoding it."""
    _add(delta, seq, cid, zip([first + at for at in staged_at], staged, strict=True))
