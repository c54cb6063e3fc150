"""Forking: a new file whose history starts at a past commit of this one (FORMAT.md §8.6).

The new file is the file header of version 3, a GENESIS frame exactly as
compaction at that commit writes it (same ``base_seq``, ``base_commit_id`` and
image, so the fork's next commit continues the hash chain from it) and an
ORIGIN frame naming the source's commit, state hash and genesis base. The
source file is only read. The output depends only on the source's bytes and
the commit: forking is deterministic.

Writing is atomic and never overwrites (storage/newfile.py): a crash leaves no
file at the new name, or the whole fork (plus, at worst, a temp file named
``<new>.fork-<pid>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from myosotis.engine.store import Store
from myosotis.format.constants import KIND_GENESIS, KIND_ORIGIN, VERSION_REWIND
from myosotis.format.header import encode_file_header, encode_frame
from myosotis.format.image import state_hash
from myosotis.format.records import OriginRecord, encode_origin, encode_snapshot


@dataclass(frozen=True)
class Origin:
    """Where a forked memory's history came from (FORMAT.md §8.6), in hex.

    ``seq``/``commit_id``: the source's commit the fork starts at;
    ``state_hash``: the source's state hash there (equal to the fork's at its
    genesis); ``base_seq``/``base_commit_id``: the source's own genesis base when
    it was forked (0 and ``None``: its history went back to the empty state).
    """

    seq: int
    commit_id: str | None
    state_hash: str
    base_seq: int
    base_commit_id: str | None

    @classmethod
    def of(cls, o: OriginRecord) -> Origin:
        return cls(o.seq, o.commit_id.hex() if o.seq else None, o.state_hash.hex(),
                   o.base_seq, o.base_commit_id.hex() if o.base_seq else None)


def fork_bytes(store: Store, seq: int) -> tuple[bytes, OriginRecord]:
    """The bytes of the fork of ``store``'s file at commit ``seq`` (which resolves),
    and its origin record."""
    hist = store.commits
    hist.ensure_full()  # the source's true base, not its newest layer (FORMAT.md §10.1)
    image = store.state_at(seq).whole().image()
    sh = state_hash(image)
    cid = hist.commit_id(seq)
    genesis = encode_snapshot(seq, cid, sh, image)
    origin = OriginRecord(seq, cid, sh, hist.base_seq, hist.base_commit_id)
    data = b"".join((encode_file_header(VERSION_REWIND), encode_frame(KIND_GENESIS, genesis),
                     encode_frame(KIND_ORIGIN, encode_origin(origin))))
    return data, origin
