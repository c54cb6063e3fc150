"""Retention policies: which prefix of the history compaction folds (FORMAT.md §8.5).

A policy names the commits to keep as records; everything before the first
kept one is folded into the genesis snapshot. The head's state, every kept
commit's id and the hash chain are unchanged (compaction copies the kept
frames byte for byte), so a policy only decides the compaction base.

- ``keep_last = N``: the newest N commits stay (N = 0 folds everything).
- ``keep_since = T``: every commit from the first one whose timestamp is at or
  after T stays. Writer clocks may step back, so it is the *prefix* of commits
  all older than T that is folded, never a commit after a kept one.
- both: a commit stays if either policy keeps it (the smaller base).
"""

from __future__ import annotations

import datetime as _dt

from myosotis.engine.store import Store
from myosotis.errors import InvalidArgumentError

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _micros(t: _dt.datetime) -> int:
    if not isinstance(t, _dt.datetime):
        raise InvalidArgumentError(f"keep_since must be a datetime, not {type(t).__name__}")
    if t.tzinfo is None:
        raise InvalidArgumentError("keep_since must be timezone-aware (e.g. "
                                   "datetime(..., tzinfo=timezone.utc)): commit times are UTC")
    return (t - _EPOCH) // _dt.timedelta(microseconds=1)


def retention_base(store: Store, keep_last: int | None,
                   keep_since: _dt.datetime | None) -> int:
    """The compaction base the policies give (at least the current base: nothing is
    unfolded). Raises InvalidArgumentError. Cost: ``keep_since`` reads the header of
    each commit it folds, plus one."""
    store.commits.ensure_full()  # the true base, not the newest layer's (FORMAT.md §10.1)
    base, head = store.commits.base_seq, store.head_seq
    bases: list[int] = []
    if keep_last is not None:
        if type(keep_last) is not int or keep_last < 0:
            raise InvalidArgumentError(f"keep_last must be an int >= 0, not {keep_last!r}")
        bases.append(max(base, head - keep_last))
    if keep_since is not None:
        since = _micros(keep_since)
        s = base
        while s < head and store.commits.header(s + 1).timestamp_us < since:
            s += 1
        bases.append(s)
    if not bases:
        raise InvalidArgumentError("give keep_last, keep_since or both")
    return min(bases)
