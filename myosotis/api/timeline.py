"""``Memory.commits``: the commit records, filtered by commit range, time and label,
streamed one at a time."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Iterator
from itertools import dropwhile, takewhile

from myosotis.api.names import CommitRef, parse_time, resolve_commit, to_microseconds
from myosotis.engine.history import Commit
from myosotis.engine.store import Store
from myosotis.errors import InvalidArgumentError

LabelFilter = str | re.Pattern[str] | None
"""A regular expression searched (``re.search``) in each label; an unlabelled commit's
label is ``""``."""


def _bound(s: Store, b: CommitRef | None) -> tuple[int | None, int | None]:
    """``(seq, microseconds)``: a bound by commit, or by time (a datetime or an ISO
    8601 string), or neither."""
    if b is None:
        return None, None
    if isinstance(b, _dt.datetime):
        return None, to_microseconds(b)
    if isinstance(b, str):
        t = parse_time(b.strip())
        if t is not None:
            return None, to_microseconds(t)
    return resolve_commit(s, b), None


def _pattern(label: LabelFilter) -> re.Pattern[str] | None:
    if label is None or isinstance(label, re.Pattern):
        return label
    if not isinstance(label, str):
        raise InvalidArgumentError(f"label= takes a regular expression (str or compiled), "
                                   f"not {type(label).__name__}")
    try:
        return re.compile(label)
    except re.error as e:
        raise InvalidArgumentError(f"label= is not a valid regular expression: {e}") from None


def commits(s: Store, since: CommitRef | None, until: CommitRef | None, label: LabelFilter,
            reverse: bool) -> Iterator[Commit]:
    """See ``Memory.commits``. Every argument is checked (and every commit name
    resolved) before this returns, so errors come at the call, not at the first
    ``next``."""
    since_seq, since_us = _bound(s, since)
    until_seq, until_us = _bound(s, until)
    pattern = _pattern(label)
    lo = 0 if since_seq is None else since_seq
    last = s.head_seq if until_seq is None else min(s.head_seq, until_seq)
    hist = s.commits
    seqs: Iterable[int]
    if hist.partial and lo <= hist.base_seq:
        # Opened from the newest layer (FORMAT.md §10.1): the commits before it are
        # not indexed yet. Newest first stays lazy (they are indexed when reached);
        # oldest first needs them all now.
        if reverse:
            seqs = takewhile(lambda q: q >= lo,
                             dropwhile(lambda q: q > last, s.commit_seqs(True)))
            return _stream(s, seqs, since_us, until_us, pattern)
        hist.ensure_full()
    first = max(hist.base_seq + 1, lo)
    seqs = range(last, first - 1, -1) if reverse else range(first, last + 1)
    return _stream(s, seqs, since_us, until_us, pattern)


def _stream(s: Store, seqs: Iterable[int], since_us: int | None, until_us: int | None,
            pattern: re.Pattern[str] | None) -> Iterator[Commit]:
    # one header at a time: constant memory however long the history; timestamps
    # are not monotone (the writer's clock), so a time bound filters, never stops
    for q in seqs:
        c = s.commit_info(q)
        ts = c.timestamp_us
        if since_us is not None and (ts is None or ts < since_us):
            continue
        if until_us is not None and (ts is None or ts > until_us):
            continue
        if pattern is not None and pattern.search(c.label or "") is None:
            continue
        yield c
