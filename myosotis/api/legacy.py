"""Opening, checking and migrating legacy v0.5 files (formatspec/LEGACY.md).

A legacy file opens as it is (api/legacy_memory.py): its binary form
(engine/legacy.py) is written to a private temporary file, read through a
read-only store, and the legacy file is not touched. A memory opened for
writing holds the file's writer lock from the start, and its first change
(staging, a commit, a checkpoint, compaction) first migrates the file
(LEGACY.md §5): the old file is kept as ``<file>.v0.bak`` (a hard link, made
durable), then the binary form replaces it atomically (temp file, fsync,
rename, directory fsync). A crash at any step leaves the legacy file or the
binary one at the name, whole; the backup is whole whenever it exists.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from typing import Any

from myosotis.engine.importing import ImportSummary
from myosotis.engine.legacy import BACKUP_SUFFIX, legacy_document, migrated_bytes, read_file
from myosotis.engine.store import Store
from myosotis.engine.verify import Finding, VerifyReport, verify_file
from myosotis.errors import CorruptFileError
from myosotis.storage.lock import WriterLock
from myosotis.storage.newfile import keep_copy
from myosotis.storage.rewrite import write_atomically


@dataclass(frozen=True)
class MigrateResult:
    """What :meth:`Memory.migrate` did. ``backup`` is the legacy file kept
    (``<file>.v0.bak``), or None when the file was already binary and nothing
    was done; ``dropped`` names legacy checkpoints that did not match the
    replay and were left out (a cache)."""

    path: str
    backup: str | None
    head_seq: int
    head_id: str | None
    state_hash: str
    dropped: tuple[str, ...] = ()


class LegacySource:
    """A legacy file opened as its binary form: the bytes, the temporary copy the
    store reads, and (for a writer) the lock held until migration."""

    def __init__(self, path: str, data: bytes, opts: dict[str, Any], lock_timeout: float,
                 readonly: bool) -> None:
        self.path = path
        self.data = data
        self.binary, self.summary = migrated_bytes(legacy_document(data, path))
        self.opts = opts
        self.readonly = readonly
        self.lock: WriterLock | None = None
        self.tmpdir = tempfile.mkdtemp(prefix="myosotis-legacy-")
        self.cleanup = weakref.finalize(self, shutil.rmtree, self.tmpdir, True)
        try:
            if not readonly:
                self.lock = WriterLock(path)
                self.lock.acquire(lock_timeout)
            self.copy = f"{self.tmpdir}/migrated.myo"
            with open(self.copy, "wb") as f:
                f.write(self.binary)
        except BaseException:
            self.close()
            raise

    def open_store(self) -> Store:
        return Store.open(self.copy, readonly=True, node_cache=self.opts["node_cache"],
                          checkpoint_floor=self.opts["checkpoint_floor"])

    def migrate(self) -> None:
        """Replace the legacy file by its binary form, keeping it as ``<file>.v0.bak``.
        Under the writer lock; refuses a file that changed since it was read."""
        assert self.lock is not None
        if read_file(self.path) != self.data:
            raise CorruptFileError(f"{self.path} changed since it was opened; reopen it before "
                                   "migrating it")
        keep_copy(self.path, self.path + BACKUP_SUFFIX)  # durable before the file is replaced
        write_atomically(self.path, self.binary, lock=self.lock)  # the point of no return

    def release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def close(self) -> None:
        self.release_lock()
        self.cleanup()


def summary_result(path: str, summary: ImportSummary, backup: str | None) -> MigrateResult:
    return MigrateResult(path, backup, summary.head_seq, summary.head_id, summary.state_hash,
                         summary.problems)


def check_legacy(path: str, data: bytes) -> VerifyReport:
    """``myo fsck`` of a legacy file: every rule of LEGACY.md §3, then the binary file
    it migrates to checked like any other. Never raises for damage."""
    rep = VerifyReport(path, file_size=len(data))
    try:
        binary, summary = migrated_bytes(legacy_document(data, path))
    except CorruptFileError as e:
        rep.findings.append(Finding("error", "legacy", e.reason))
        return rep
    for p in summary.problems:
        rep.findings.append(Finding("warning", "legacy-checkpoint", p))
    with tempfile.TemporaryDirectory(prefix="myosotis-legacy-") as d:
        copy = f"{d}/migrated.myo"
        with open(copy, "wb") as f:
            f.write(binary)
        inner = verify_file(copy)
    rep.commits, rep.checkpoints = inner.commits, inner.checkpoints
    rep.findings.extend(inner.findings)
    rep.bytes_by_kind = {"legacy": len(data)}
    return rep
