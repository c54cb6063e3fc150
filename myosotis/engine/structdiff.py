"""Structural differences between two stored values, down to the path inside them.

Maps are compared key by key (sorted, so the result is deterministic), lists
by a minimal edit script over their elements (Myers' O((N+M)D) algorithm on
the part left after trimming the common prefix and suffix), and two
containers of the same kind at the same place are compared recursively, so a
change deep inside a field is one op at its path, not the whole field twice.

Ops of one list are produced in ascending position, and each op's index is the
position *at the moment it applies*, when the ops of that list are applied in
the order given: the elements before it already equal ``new``'s. So an
``insert`` or ``change`` at ``i`` makes element ``i`` equal ``new[i]``, and a
``remove`` at ``i`` removes the element found there then. This is what makes
a diff directly applicable (engine/diffapply.py) and readable at once.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from myosotis.format.mutation_parts import Path
from myosotis.format.values import encode_value, values_equal


class _Missing:
    """Marks a field that does not exist on one side of a diff."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


ADD, REMOVE, CHANGE, INSERT = "add", "remove", "change", "insert"
"""Kinds of value ops: a map key (or field) that appears or disappears, a value
replaced at a path (a list element, a map key, a field; references too), a
list element inserted. ``remove`` also removes a list element."""

MAX_EDIT_DISTANCE = 2000
"""Above this many inserted plus removed elements in one list (after trimming
the common ends), the edit script is not searched for: the differing middle is
replaced element by element (pairs, then the excess inserted or removed; the
whole list as one change when nothing at either end is common). The
search costs about D² steps in Python; beyond this a minimal script would cost
seconds, and a list changed that much is better read as rewritten anyway."""

ValueOp = tuple[Path, str, Any, Any]
"""``(path, kind, old, new)``; ``old`` is unused for add/insert, ``new`` for remove."""

_F64 = struct.Struct("<d")


def _key(v: Any) -> Hashable:
    """A hashable key equal for two stored values iff :func:`values_equal` holds."""
    t = type(v)
    if t is float:
        return (t, _F64.pack(v))  # by bits: -0.0 != 0.0, NaN payloads kept apart
    if t is list or t is dict:
        return (t, encode_value(v))  # the canonical encoding (map keys sorted, §5)
    return (t, v)  # bool and int stay apart through their types


def value_ops(path: Path, old: Any, new: Any) -> Iterator[ValueOp]:
    """The ops that turn ``old`` into ``new`` at ``path`` (none when they are equal).

    Two maps are compared key by key, two lists element by element, unless both
    are non-empty and have nothing in common (no key, no element): that is one
    ``change`` of the whole, which reads better than a line per element.

    Cost: the sizes of the two values where they are containers of the same
    kind (each map key and list element is looked at once, plus the edit
    script of the differing middle of each list), else one comparison.
    """
    to, tn = type(old), type(new)
    if to is dict and tn is dict:
        yield from _map_ops(path, old, new)
    elif to is list and tn is list:
        yield from _list_ops(path, old, new)
    elif not values_equal(old, new):
        yield (path, CHANGE, old, new)


def _map_ops(path: Path, old: dict[str, Any], new: dict[str, Any]) -> Iterator[ValueOp]:
    if old and new and old.keys().isdisjoint(new.keys()):
        yield (path, CHANGE, old, new)  # nothing in common: one map replaced another
        return
    for k in sorted(old.keys() | new.keys()):
        if k not in new:
            yield ((*path, k), REMOVE, old[k], None)
        elif k not in old:
            yield ((*path, k), ADD, None, new[k])
        else:
            yield from value_ops((*path, k), old[k], new[k])


def _list_ops(path: Path, old: list[Any], new: list[Any]) -> Iterator[ValueOp]:
    n, m = len(old), len(new)
    lo = 0
    while lo < n and lo < m and values_equal(old[lo], new[lo]):
        lo += 1
    hi_a, hi_b = n, m
    while hi_a > lo and hi_b > lo and values_equal(old[hi_a - 1], new[hi_b - 1]):
        hi_a, hi_b = hi_a - 1, hi_b - 1
    if lo == hi_a and lo == hi_b:
        return
    mid_a, mid_b = old[lo:hi_a], new[lo:hi_b]
    runs = hunks(mid_a, mid_b)
    if lo == 0 and runs == [(0, n, 0, m)] and n and m:
        yield (path, CHANGE, old, new)  # no element in common: one list replaced another
        return
    for a0, a1, b0, b1 in runs:
        yield from _hunk_ops(path, mid_a, mid_b, lo, (a0, a1, b0, b1))


def _hunk_ops(path: Path, a: list[Any], b: list[Any], offset: int,
              hunk: tuple[int, int, int, int]) -> Iterator[ValueOp]:
    """Ops for ``a[a0:a1]`` becoming ``b[b0:b1]``: pairs of a removed and an inserted
    element are one change (recursing into same-kind containers), the rest are
    removes or inserts. The elements before the hunk already equal ``b``'s, so
    the current position of ``b[j]`` is ``offset + j``."""
    a0, a1, b0, b1 = hunk
    paired = min(a1 - a0, b1 - b0)
    for k in range(paired):
        yield from value_ops((*path, offset + b0 + k), a[a0 + k], b[b0 + k])
    at = offset + b0 + paired
    for k in range(a0 + paired, a1):
        yield ((*path, at), REMOVE, a[k], None)  # each removal brings the next one here
    for k in range(b0 + paired, b1):
        yield ((*path, offset + k), INSERT, None, b[k])


def moves(ops: Sequence[ValueOp], old: Any) -> dict[int, Path]:
    """Which ``remove`` and ``insert`` ops of ``ops`` (the ops of one field, whose
    value was ``old``) move one list element: index in ``ops`` -> the path of that
    element at the other end (for an insert, where it was in ``a``; for a remove,
    where it is in ``b``). A removed and an inserted element of the same list with
    equal values pair up, in order. Cost: for each list with both removes and
    inserts, and each list holding one, its length times its ops (the positions
    are replayed)."""
    by_list: dict[Path, list[int]] = {}
    for i, (path, kind, _, _) in enumerate(ops):
        if kind == INSERT or (kind == REMOVE and type(path[-1]) is int):
            by_list.setdefault(path[:-1], []).append(i)
    pairing = {lpath for lpath, idx in by_list.items()
               if {ops[i][1] for i in idx} == {INSERT, REMOVE}}
    # An op's path holds positions at the time it applies: inside a list whose
    # elements shifted before, a nested list's position is not its index at
    # ``a``. So the positions of every list that pairs, and of every list
    # holding one, are replayed in op order (slots: index at a; -1 - i: inserted
    # by op i), and a nested list is found at ``a`` through its holders' slots.
    replayed = {lpath[:k] for lpath in pairing for k in range(1, len(lpath) + 1)
                if lpath[:k] in by_list}
    slots: dict[Path, list[int]] = {}
    at_a: dict[Path, Path] = {}  # a replayed list's path at a
    removed: dict[Path, list[tuple[int, int]]] = {lpath: [] for lpath in pairing}
    for i, (path, kind, _, _) in enumerate(ops):
        lpath = path[:-1]
        if lpath not in replayed or kind not in (INSERT, REMOVE):
            continue
        at = path[-1]
        assert type(at) is int  # a list position: only lists are replayed
        s = slots.get(lpath)
        if s is None:
            at_a[lpath], now = _path_at_a(old, lpath, slots)
            s = slots[lpath] = list(range(len(now)))
        if kind == REMOVE:
            was = s.pop(at)
            if was >= 0 and lpath in pairing:
                removed[lpath].append((i, was))
        else:
            s.insert(at, -1 - i)
    found: dict[int, Path] = {}
    for lpath in pairing:
        where_b = {-1 - v: j for j, v in enumerate(slots[lpath]) if v < 0}
        free: dict[Hashable, list[int]] = {}
        for i in by_list[lpath]:
            if ops[i][1] == INSERT:
                free.setdefault(_key(ops[i][3]), []).append(i)
        for i, was in removed[lpath]:
            waiting = free.get(_key(ops[i][2]))
            if waiting:
                j = waiting.pop(0)
                found[j] = (*at_a[lpath], was)
                found[i] = (*lpath, where_b[j])
    return found


def _path_at_a(old: Any, lpath: Path, slots: dict[Path, list[int]]) -> tuple[Path, Any]:
    """The path at ``a`` of the container at ``lpath`` now (a path whose first step is
    the field), and that container at ``a``: each list position of a list whose
    positions are replayed is read through its slots (never an inserted element:
    ops inside a container are only produced for one that was there at ``a``)."""
    steps: list[Any] = [lpath[0]]
    value = old
    for k in range(1, len(lpath)):
        step = lpath[k]
        s = slots.get(lpath[:k])
        if s is not None:
            assert type(step) is int  # a position in a replayed list
            step = s[step]
        steps.append(step)
        value = value[step]
    return tuple(steps), value


def hunks(a: Sequence[Any], b: Sequence[Any],
          limit: int = MAX_EDIT_DISTANCE) -> list[tuple[int, int, int, int]]:
    """The differing runs ``(a0, a1, b0, b1)`` between the matched elements of a
    minimal edit script (fewest inserted plus removed elements), in order.

    Beyond ``limit`` inserted plus removed elements the whole of both is one run
    (see MAX_EDIT_DISTANCE).
    """
    keys: dict[Hashable, int] = {}
    ka = [keys.setdefault(_key(x), len(keys)) for x in a]
    kb = [keys.setdefault(_key(x), len(keys)) for x in b]
    matches = matched_pairs(ka, kb, limit)
    if matches is None:
        return [(0, len(a), 0, len(b))] if a or b else []
    out = []
    x = y = 0
    for mx, my in [*matches, (len(a), len(b))]:
        if mx > x or my > y:
            out.append((x, mx, y, my))
        x, y = mx + 1, my + 1
    return out


def matched_pairs(a: Sequence[int], b: Sequence[int],
                  limit: int) -> list[tuple[int, int]] | None:
    """Index pairs ``(i, j)`` with ``a[i] == b[j]`` of a longest common subsequence,
    ascending (Myers' greedy forward search, then a walk back over the saved
    frontiers); None when more than ``limit`` edits are needed.

    Time O((N+M)·D), memory O(D²) for D edits.
    """
    n, m = len(a), len(b)
    off = n + m + 1  # frontier index of diagonal k is k + off
    v = [0] * (2 * off + 1)
    trace: list[list[int]] = []
    for d in range(min(n + m, limit) + 1):
        trace.append(v[off - d - 1: off + d + 2])  # the frontier step d starts from
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[off + k - 1] < v[off + k + 1]):
                x = v[off + k + 1]  # down: an element of b inserted
            else:
                x = v[off + k - 1] + 1  # right: an element of a removed
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x, y = x + 1, y + 1
            v[off + k] = x
            if x >= n and y >= m:
                return _walk_back(trace, n, m)
    return None


def _walk_back(trace: list[list[int]], n: int, m: int) -> list[tuple[int, int]]:
    """The diagonal moves of the path found, from the frontiers saved per step."""
    pairs: list[tuple[int, int]] = []
    x, y = n, m
    for d in range(len(trace) - 1, -1, -1):
        saved = trace[d]  # saved[k + d + 1] is diagonal k, for k in [-d-1, d+1]
        k = x - y
        if k == -d or (k != d and saved[k - 1 + d + 1] < saved[k + 1 + d + 1]):
            prev_k = k + 1
        else:
            prev_k = k - 1
        prev_x = saved[prev_k + d + 1] if d > 0 else 0
        prev_y = prev_x - prev_k if d > 0 else 0
        while x > prev_x and y > prev_y:
            x, y = x - 1, y - 1
            pairs.append((x, y))
        x, y = prev_x, prev_y
    pairs.reverse()
    return pairs
