"""The commit chain rules, in one place (FORMAT.md §4 R31, R32; §7 R60, R61).

Every reader of commits goes through these functions: replay at open and
refresh and time travel (engine/loading.py, engine/timetravel.py) and the full
verification (engine/verify.py), which turns a :class:`ChainError` into a
finding instead of refusing the file. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from myosotis.errors import CorruptFileError
from myosotis.format.constants import FRAME_HEADER_SIZE, VERSION_LAYERS, VERSION_REWIND
from myosotis.format.mutations import Mutation, Undelete
from myosotis.format.records import (
    CommitHeader,
    decode_commit_header,
    decode_mutations,
    iter_mutations,
)
from myosotis.format.values import DecodeError


class ChainError(CorruptFileError):
    """A commit record breaks R31 (``code`` "sequence"), R32 ("chain") or its
    encoding or R60 ("rule"); ``offset`` is in the file."""

    def __init__(self, code: str, reason: str, offset: int) -> None:
        super().__init__(reason, offset)
        self.code = code


def commit_header(payload: Any, seq: int, parent: bytes | None, frame_offset: int) -> CommitHeader:
    """The header of commit ``seq`` (the payload of the frame at ``frame_offset``),
    checked: it decodes, holds ``seq`` (R31) and, unless ``parent`` is None, names
    ``parent`` (R32). Raises ChainError."""
    try:
        h = decode_commit_header(payload)
    except DecodeError as e:
        raise ChainError("rule", f"commit {seq}: {e.reason}",
                         frame_offset + FRAME_HEADER_SIZE + (e.offset or 0)) from None
    if h.seq != seq:
        raise ChainError("sequence", f"commit frame holds seq {h.seq} where {seq} belongs "
                         "(R31)", frame_offset)
    if parent is not None and h.parent != parent:
        raise ChainError("chain", f"commit {seq} does not name its predecessor as parent "
                         "(R32)", frame_offset)
    return h


def commit_mutations(payload: Any, h: CommitHeader, seq: int, frame_offset: int,
                     version: int) -> list[Mutation]:
    """The mutations of commit ``seq`` whose header is ``h`` (R61: the payload ends
    after the last) in a file of format ``version`` (R54). Raises ChainError."""
    try:
        muts = decode_mutations(payload, h.body)
    except DecodeError as e:
        raise ChainError("rule", f"commit {seq}: {e.reason}",
                         frame_offset + FRAME_HEADER_SIZE + (e.offset or 0)) from None
    for m in muts:
        check_version(m, seq, version, frame_offset)
    return muts


def check_version(m: Mutation, seq: int, version: int, frame_offset: int) -> None:
    """R54: only a file of version 3 or later holds an UNDELETE (mutation ``m`` of
    commit ``seq``). Raises ChainError."""
    if version < VERSION_REWIND and type(m) is Undelete:
        raise ChainError("rule", f"commit {seq} holds an UNDELETE, which a version-{version} "
                         "file cannot (R54)", frame_offset)


def check_next_node_id(h: CommitHeader, seq: int, after: int, frame_offset: int) -> None:
    """R60: ``after``, the state's next_node_id once commit ``seq``'s mutations are
    applied, is the one the record holds. Raises ChainError."""
    if after != h.next_node_id:
        raise ChainError("rule", f"commit {seq} records next_node_id {h.next_node_id} but its "
                         f"mutations give {after} (R60)", frame_offset)


def rewritten_version(version: int, has_origin: bool, commits: Iterable[Any]) -> int:
    """The format_version of a file of ``version`` rewritten whole (compaction,
    repair: every frame synced, no layer kept), FORMAT.md §8.5, §12. 1, unless the
    file may hold what only version 3 has, which a version-1 reader must not be
    handed: a version-3 file stays 3 (even with its UNDELETEs folded away); a
    version-4 file is 3 if it has an ORIGIN (``has_origin``) or any of its commit
    payloads (``commits``, read only for it: it decodes each one's mutations)
    holds an UNDELETE, as it was version 3 before its first layer. Raises
    DecodeError for a commit that does not decode."""
    if version < VERSION_REWIND:
        return 1
    if version < VERSION_LAYERS or has_origin:
        return VERSION_REWIND
    for payload in commits:
        h = decode_commit_header(payload)
        if any(type(m) is Undelete for m in iter_mutations(payload, h.body)):
            return VERSION_REWIND
    return 1
