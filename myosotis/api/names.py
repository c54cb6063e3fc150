"""Naming commits: sequence numbers, ids, id prefixes, ``HEAD`` and ``HEAD~N``, times.

The rule (README "Naming commits", docs/CLI.md), for a name given as a string:

1. ``HEAD``, ``HEAD~N``: the head, N commits before it.
2. ``seq:N`` is always sequence number N; ``id:HEX`` is always the commit whose
   id starts with HEX (4 to 64 hex digits).
3. A string of decimal digits may be read two ways: as a sequence number (it
   names a commit of the history: ``base <= N <= head``) and, with 4 digits or
   more, as an id prefix (ids are hex, and a shown 12-digit id may have no
   letter). When exactly one reading names a commit, that commit; when both
   do, CommitNotFoundError listing both and how to say each (``seq:N``,
   ``id:...``); when neither does, CommitNotFoundError.
4. Other strings of hex digits (4 or more) are id prefixes; a prefix shared by
   several ids is an error asking for more digits.
5. An ISO 8601 date or time (``2026-11-29``, ``2026-11-29T10:00:00Z``; UTC unless
   it gives an offset) names a commit by time, as a ``datetime`` does.

A Python ``int`` is always a sequence number and a :class:`Commit` names
itself. A ``datetime`` names the newest commit (the highest seq) whose
timestamp is at or before it; a naive one is local time, as
``datetime.timestamp()`` takes it. Timestamps come from the writer's clock and
are not monotone (a clock may be set back), so this reads commit headers from
the head backwards until one qualifies: O(commits after it), constant memory.
"""

from __future__ import annotations

import datetime as _dt
import re

from myosotis.engine.history import Commit
from myosotis.engine.store import Store
from myosotis.errors import CommitNotFoundError, CorruptFileError, InvalidArgumentError
from myosotis.format.display import short_repr

CommitRef = int | str | Commit | _dt.datetime

_HEX = frozenset("0123456789abcdef")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
                  r"(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def resolve_commit(s: Store, commit: CommitRef) -> int:
    """The sequence number of ``commit`` in ``s`` (the rule above); raises
    CommitNotFoundError (InvalidArgumentError for an unparsable time)."""
    if isinstance(commit, Commit):
        if s.commits.partial and commit.seq <= s.commits.base_seq:
            s.commits.ensure_full()  # older than the newest layer (FORMAT.md §10.1)
        if s.commits.base_seq < commit.seq <= s.head_seq and \
                s.commits.commit_id(commit.seq).hex() == commit.id:
            return commit.seq
        raise CommitNotFoundError(f"commit {commit.id[:12]} is not in this history")
    if type(commit) is int:
        return s.resolve(commit)
    if isinstance(commit, _dt.datetime):
        return seq_at_time(s, commit)
    if isinstance(commit, str):
        return _resolve_name(s, commit)
    raise CommitNotFoundError(f"cannot name a commit with {type(commit).__name__}")


def to_microseconds(t: _dt.datetime) -> int:
    """``t`` as microseconds since the Unix epoch (naive: local time)."""
    if t.tzinfo is None:
        t = t.astimezone()  # naive is local time, as datetime.timestamp() has it
    return (t - _EPOCH) // _dt.timedelta(microseconds=1)


def parse_time(text: str) -> _dt.datetime | None:
    """The datetime an ISO 8601 name gives (UTC unless it has an offset), or None
    when ``text`` is not one; InvalidArgumentError for an impossible date."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    try:
        tz = _dt.timezone.utc
        if zone is not None and zone.upper() != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]),
                                                   minutes=int(digits[2:])))
        return _dt.datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0),
                            int(ss or 0), int((frac or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError:
        raise InvalidArgumentError(f"{short_repr(text)} is not a valid date or time") from None


def seq_at_time(s: Store, t: _dt.datetime) -> int:
    """The highest seq whose commit timestamp is at or before ``t``."""
    limit = to_microseconds(t)
    for q in range(s.head_seq, s.commits.base_seq, -1):
        if s.commits.header(q).timestamp_us <= limit:
            return q
    # Older than the newest layer (FORMAT.md §10.1): index the frames before it.
    s.commits.ensure_full()
    base = s.commits.base_seq
    for q in range(s.head_seq, base, -1):
        if s.commits.header(q).timestamp_us <= limit:
            return q
    when = t.isoformat()
    if base:
        raise CommitNotFoundError(f"no commit after the compacted base #{base} is at or "
                                  f"before {when} (the times of folded commits are gone)")
    raise CommitNotFoundError(f"no commit at or before {when}; seq 0 names the empty "
                              "state before the first commit")


def _prefix_hits(s: Store, low: str) -> list[int]:
    """Seqs of the commits whose id starts with ``low`` (hex digits), in order.

    Through the history index's ids (a scan in SQLite, about 50 ns a commit,
    once the index is caught up), not an id hashed per commit (about 6 µs).
    The index is derived data: each hit is checked against its commit's id in
    the log, so a damaged row never names the wrong commit.
    """
    from myosotis.engine.history_index import with_index
    c = s.commits
    try:
        hits = with_index(s, lambda ix: ix.seqs_with_id_prefix(low, s.head_seq))
    except CorruptFileError:
        # Catching the index up reads more than commits (a genesis's references):
        # damage there, which the state may not need, must not keep a commit from
        # being named. Every commit is hashed instead.
        c.ensure_full()  # every commit is a candidate (FORMAT.md §10.1)
        hits = list(range(c.base_seq + 1, s.head_seq + 1))
    if c.base_seq > 0:  # a compacted base is not a row of the index
        hits.insert(0, c.base_seq)
    return [q for q in hits if c.commit_id(q).hex().startswith(low)]


def _by_prefix(s: Store, name: str, low: str) -> int:
    if not (4 <= len(low) <= 64 and set(low) <= _HEX):
        raise CommitNotFoundError(f"{short_repr(name)} is not a commit id prefix "
                                  "(4 to 64 hex digits)")
    hits = _prefix_hits(s, low)
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise CommitNotFoundError(f"commit id prefix {short_repr(name)} is ambiguous "
                                  f"({len(hits)} commits); give more digits")
    raise CommitNotFoundError(f"no commit id starts with {short_repr(low)}")


def _resolve_digits(s: Store, name: str) -> int:
    """Rule 3: a decimal name, as a seq and as an id prefix."""
    n = int(name)
    hits = _prefix_hits(s, name) if len(name) >= 4 else []  # indexes every commit
    if s.commits.partial and n < s.commits.base_seq:
        s.commits.ensure_full()  # older than the newest layer (FORMAT.md §10.1)
    is_seq = s.commits.base_seq <= n <= s.head_seq
    if is_seq and hits == [n]:
        return n  # both readings name the same commit
    if is_seq and hits:
        ids = ", ".join(f"#{q} (id:{s.commits.commit_id(q).hex()[:12]})" for q in hits[:3])
        raise CommitNotFoundError(
            f"commit name {name} is ambiguous: it is the sequence number of commit #{n} and a "
            f"prefix of the id of {ids}; say seq:{n} for the first, or the id with id: for "
            f"the other")
    if is_seq:
        return n
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise CommitNotFoundError(f"commit id prefix {name} is ambiguous ({len(hits)} "
                                  "commits) and no commit has that sequence number; give "
                                  "more digits")
    return s.resolve(n)  # its error says which sequence numbers exist


def _resolve_name(s: Store, commit: str) -> int:
    name = commit.strip()
    upper = name.upper()
    if upper == "HEAD" or upper.startswith("HEAD~"):
        back = name[5:] or "0"
        if not back.isdigit():
            raise CommitNotFoundError(f"bad commit name {short_repr(commit)}; use HEAD~N")
        return s.resolve(s.head_seq - int(back))
    low = name.lower()
    if low.startswith("seq:"):
        if not name[4:].isdigit():
            raise CommitNotFoundError(f"bad commit name {short_repr(commit)}; use seq:N")
        return s.resolve(int(name[4:]))
    if low.startswith("id:"):
        return _by_prefix(s, name, low[3:])
    if name.isascii() and name.isdigit():
        return _resolve_digits(s, name)
    t = parse_time(name)
    if t is not None:
        return seq_at_time(s, t)
    if len(low) >= 4 and set(low) <= _HEX:
        return _by_prefix(s, name, low)
    raise CommitNotFoundError(
        f"no commit named {short_repr(commit)}; name one by seq (seq:N), id or id prefix of "
        "4+ hex digits (id:HEX), HEAD, HEAD~N, or a time (2026-11-29T10:00:00Z)")
