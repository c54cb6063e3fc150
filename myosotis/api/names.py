"""Naming commits: sequence numbers, ids, id prefixes, ``HEAD`` and ``HEAD~N``."""

from __future__ import annotations

from myosotis.engine.history import Commit
from myosotis.engine.store import Store
from myosotis.errors import CommitNotFoundError

CommitRef = int | str | Commit


def resolve_commit(s: Store, commit: CommitRef) -> int:
    """The sequence number of ``commit`` in ``s`` (see ``Memory.resolve``); raises
    CommitNotFoundError."""
    if isinstance(commit, Commit):
        if s.commits.partial and commit.seq <= s.commits.base_seq:
            s.commits.ensure_full()  # older than the newest layer (FORMAT.md §10.1)
        if s.commits.base_seq < commit.seq <= s.head_seq and \
                s.commits.commit_id(commit.seq).hex() == commit.id:
            return commit.seq
        raise CommitNotFoundError(f"commit {commit.id[:12]} is not in this history")
    if type(commit) is int:
        return s.resolve(commit)
    if isinstance(commit, str):
        return _resolve_name(s, commit)
    raise CommitNotFoundError(f"cannot name a commit with {type(commit).__name__}")


def _resolve_name(s: Store, commit: str) -> int:
    name = commit.strip()
    if name.upper() == "HEAD" or name.upper().startswith("HEAD~"):
        back = name[5:] or "0"
        if not back.isdigit():
            raise CommitNotFoundError(f"bad commit name {commit!r}; use HEAD~N")
        return s.resolve(s.head_seq - int(back))
    low = name.lower()
    if name.isdigit() and len(name) < 12:
        return s.resolve(int(name))
    if len(low) >= 4 and all(c in "0123456789abcdef" for c in low):
        s.commits.ensure_full()  # every commit is a candidate (FORMAT.md §10.1)
        hits = [q for q in range(s.commits.base_seq, s.head_seq + 1)
                if q > 0 and s.commits.commit_id(q).hex().startswith(low)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise CommitNotFoundError(f"commit id prefix {name!r} is ambiguous; "
                                      "give more digits")
    if name.isdigit():
        return s.resolve(int(name))
    raise CommitNotFoundError(f"no commit named {commit!r}")
