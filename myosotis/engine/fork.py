"""Forking: a new file whose history starts at a past commit of this one (FORMAT.md §8.6).

The new file is the file header of version 3, a GENESIS frame exactly as
compaction at that commit writes it (same ``base_seq``, ``base_commit_id`` and
image, so the fork's next commit continues the hash chain from it) and an
ORIGIN frame naming the source's commit, state hash and genesis base. The
source file is only read. The output depends only on the source's bytes and
the commit: forking is deterministic.

Writing is atomic and never overwrites: temp file, fsync, then a hard link to
the new name (which fails if the name exists, with no window where another
file could be replaced), unlink of the temp name, directory fsync. A crash
leaves no file at the new name, or the whole fork (plus, at worst, a temp file
named ``<new>.fork-<pid>``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from myosotis.engine.store import Store
from myosotis.errors import MyosotisError, TargetExistsError, warn_caller
from myosotis.format.constants import KIND_GENESIS, KIND_ORIGIN, VERSION_REWIND
from myosotis.format.header import encode_file_header, encode_frame
from myosotis.format.image import state_hash
from myosotis.format.records import OriginRecord, encode_origin, encode_snapshot
from myosotis.storage.fileops import REAL, FileOps


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
    image = store.state_at(seq).whole().image()
    sh = state_hash(image)
    cid = hist.commit_id(seq)
    genesis = encode_snapshot(seq, cid, sh, image)
    origin = OriginRecord(seq, cid, sh, hist.base_seq, hist.base_commit_id)
    data = b"".join((encode_file_header(VERSION_REWIND), encode_frame(KIND_GENESIS, genesis),
                     encode_frame(KIND_ORIGIN, encode_origin(origin))))
    return data, origin


def write_new_file(path: str, data: bytes, fileops: FileOps = REAL) -> None:
    """Create ``path`` holding ``data``, atomically and durably, never replacing a file
    (see the module docstring). Raises TargetExistsError, MyosotisError."""
    if os.path.lexists(path):
        raise TargetExistsError(f"{path} already exists; a fork never overwrites a file: "
                                "choose a new path or remove it first")
    tmp = f"{path}.fork-{os.getpid()}"
    fd = -1
    try:
        fd = fileops.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        fileops.pwrite(fd, data, 0)
        fileops.sync(fd)
        fileops.link(tmp, path)  # the point of no return; fails if path exists
    except FileExistsError:
        raise TargetExistsError(f"{path} already exists; a fork never overwrites a file: "
                                "choose a new path or remove it first") from None
    except OSError as e:
        raise MyosotisError(f"could not write {path} ({e.strerror or e}); no file was "
                            "created") from None
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                fileops.close(fd)
        with contextlib.suppress(OSError):
            fileops.unlink(tmp)
    try:
        fileops.sync_dir(path)
    except OSError as e:
        warn_caller(f"{path} was written, but its directory could not be synced "
                    f"({e.strerror or e}): a power cut now could lose the new file")
