"""The history index of one store: which commits changed a node, and which fields
referenced it when, kept current as commits are written (derived data, like
checkpoints; the log is the truth).

Rows live in the sidecar (engine/index_file.py, which also says why a
sidecar) for commits ``(base, main_upto]`` and in memory (a
:class:`~myosotis.engine.index_delta.Delta`) for ``(main_upto, upto]``.

- A writer indexes each commit as it writes it, from the mutations it
  staged (not decoded again from the payload), and flushes the rows
  every ``policy.INDEX_FLUSH_ROWS`` rows, at ``sync()``, ``checkpoint()``
  and ``close()``. While the index is behind the file (rows a killed writer
  never flushed, a file written without it), the writer's commits cannot be
  indexed one by one: each of them first decodes a few of the missing
  commits (``policy.INDEX_BEHIND_STEP_ROWS``), so the writer catches up
  without one commit paying for the whole gap; a query catches up at once.
- A reader uses the sidecar as it finds it and catches up in memory; it
  writes its rows to the sidecar only while it can take the writer lock
  (no writer is running) and the file at the path is still its own.
- Before use the sidecar's base (seq and id) must be the file's compacted
  base and its newest commit id the file's commit at that seq (index_file.py):
  a compacted, replaced or rolled-back file is detected. A sidecar SQLite
  cannot read, or of another history, is discarded and rebuilt with an
  :class:`~myosotis.errors.IndexRebuiltWarning`; nothing here ever makes a
  commit or a query fail because of the index.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from myosotis.engine.index_delta import Delta, add_commit, add_staged, refs_of
from myosotis.engine.index_file import IndexFile, IndexUnusable, Meta, sidecar_path
from myosotis.engine.policy import INDEX_BEHIND_STEP_ROWS, INDEX_CATCHUP_ROWS, INDEX_FLUSH_ROWS
from myosotis.errors import IndexRebuiltWarning, MyosotisError, warn_caller
from myosotis.format.constants import HASH_SIZE
from myosotis.format.mutations import Mutation
from myosotis.format.records import commit_id
from myosotis.storage.lock import WriterLock

if TYPE_CHECKING:
    from myosotis.engine.store import Store


class HistoryIndex:
    """See the module docstring. ``Store.history_index()`` makes one per store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = sidecar_path(store.log.path)
        self.file: IndexFile | None = None
        self.failed = False  # indexing a commit failed: wait for the next catch-up
        self._attach()

    # ------------------------------------------------------------------ attaching

    def _attach(self) -> None:
        """Start from the sidecar if it is usable for this file, else from the base."""
        s = self.store
        # Rows start at the file's true base: a file opened from its newest layer
        # (FORMAT.md §10.1) indexes the frames before it first, once.
        s.commits.ensure_full()
        self.base = (s.commits.base_seq, s.commits.base_commit_id)
        self._reset(self.base[0], self.base[1])
        try:
            f = self._open(writable=not s.readonly)
        except IndexUnusable as e:
            self._discard(str(e))
            return
        if f is None:
            return
        self.file = f
        try:
            meta = f.meta()
            if meta is None and f.writable:
                f.create(*self.base)
                meta = f.meta()
            covered = None if meta is None else self._covered(f, meta)
        except IndexUnusable as e:
            self._discard(str(e))
            return
        if covered is None:
            if meta is not None:  # of another history: a compacted or replaced file
                self._discard("it indexes another history of the file", warn=False)
            return
        seq, cid = covered
        # The file ends before the index does: commits a crash lost after their
        # rows were flushed. The writer's file is the truth.
        if meta is not None and meta.head_seq > seq and f.writable and \
                not self._guard(lambda: f.truncate_after(seq, cid)):
            return
        self._reset(seq, cid)

    def _reset(self, seq: int, cid: bytes) -> None:
        self.main_upto = seq
        self.delta = Delta(seq, cid)
        # An index that starts at a compacted base starts with the references of
        # the genesis state: added before the first query or flush (not here,
        # where a commit may be waiting: they cost a walk of the whole image).
        self.genesis_due = self.store.commits.has_genesis and seq == self.base[0]

    def _open(self, writable: bool) -> IndexFile | None:
        if not writable and not os.path.exists(self.path):
            return None
        return IndexFile(self.path, writable)

    def _covered(self, f: IndexFile, meta: Meta) -> tuple[int, bytes] | None:
        """``(seq, id)`` of the newest commit of this file the sidecar covers; None
        when the sidecar indexes another history."""
        s = self.store
        if (meta.base_seq, meta.base_id) != self.base:
            return None
        seq = min(meta.head_seq, s.head_seq)
        cid = meta.head_id if seq == meta.head_seq else f.chain_id(seq)
        if seq != self.base[0] and cid != s.commits.commit_id(seq):
            return None
        return seq, s.commits.commit_id(seq)

    def _discard(self, reason: str, warn: bool = True) -> None:
        """Drop the sidecar (a writer recreates it empty) and index from the base."""
        if warn:
            warn_caller(f"{self.path}: the history index is unusable ({reason}); it is "
                        "rebuilt from the log", IndexRebuiltWarning)
        if self.file is not None:
            self.file.close()
            self.file = None
        self._reset(*self.base)
        if self.store.readonly:
            return  # a reader never removes it: a writer may be using it
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(IndexUnusable):
            f = IndexFile(self.path, True)
            f.create(*self.base)
            self.file = f

    def _guard(self, op: Any) -> bool:
        try:
            op()
            return True
        except IndexUnusable as e:
            self._discard(str(e))
            return False

    def _genesis_rows(self) -> None:
        """Add the genesis state's references (seq: the base), once, if due."""
        if not self.genesis_due:
            return
        img = self.store.snapshots.image(0)
        seq, d = self.base[0], self.delta
        rows: list[tuple[int, int, int, str]] = []
        # the genesis is one full image (its stack's only entry)
        for nid, rec in img.top.image if img is not None else ():
            for name, v in rec.fields.items():
                rows.extend((dst, seq, nid, name) for dst in sorted(refs_of(v)))
        # between two commits' rows, in one step: the tip covers them or not
        d.events[d.tip[3]:] = rows
        d.tip = (d.tip[0], d.tip[1], d.tip[2], len(d.events))
        self.genesis_due = False

    def check(self) -> None:
        """Re-attach when the store's file changed under this index (compaction)."""
        s = self.store
        s.commits.ensure_full()  # a reopen may have opened from the newest layer again
        if (s.commits.base_seq, s.commits.base_commit_id) != self.base or \
                self.delta.upto > s.head_seq:
            self.close()
            self._attach()

    # ------------------------------------------------------------------ indexing

    def note_commit(self, seq: int, cid: bytes, first: int, staged: list[Mutation],
                    staged_at: list[int]) -> None:
        """The writer wrote commit ``seq`` from ``staged`` (see index_delta.add_staged)."""
        d = self.delta
        if d.upto != seq - 1:  # behind the file (module docstring)
            step = d.rows + INDEX_BEHIND_STEP_ROWS
            # at least two commits a step: the gap shrinks though this commit adds one
            for n, _ in enumerate(self._decode(seq - 1), 1):
                if n >= 2 and self.delta.rows >= step:
                    break
            d = self.delta
        if d.upto == seq - 1:  # else still behind: the next commit takes another step
            add_staged(d, seq, cid, first, staged, staged_at)
        if d.rows >= INDEX_FLUSH_ROWS:
            self.flush()

    def catch_up(self) -> None:
        """Index the commits the index lacks, up to the store's head."""
        if self.failed:  # its rows may be half-added: start again from the sidecar
            self.close()
            self._attach()
            self.failed = False
        self.check()
        self._genesis_rows()
        if self.delta.upto >= self.store.head_seq:
            return
        limit = INDEX_CATCHUP_ROWS
        for _ in self._decode(self.store.head_seq):
            d = self.delta
            if d.rows >= limit and not self.flush():  # bounded memory if it can write
                limit = d.rows * 2  # a reader that cannot write: try again later
        self.flush()

    def _decode(self, last: int) -> Iterator[int]:
        """Index the commits after the delta's tip up to ``last``, decoded from the
        file, one per step (yielded, its rows added); the caller may flush between
        steps (the delta is then a new one) or stop."""
        parent = self.delta.tip[1]
        for seq in range(self.delta.upto + 1, last + 1):
            payload, h, _ = self.store.commits.record(seq, parent)  # R26, R31, R32
            cid = commit_id(payload)
            add_commit(self.delta, seq, cid, payload, h.body)
            parent = cid
            yield seq

    def flush(self) -> bool:
        """Move the rows held in memory to the sidecar, when this handle may write it;
        True when nothing is left in memory."""
        self._genesis_rows()
        d = self.delta
        if d.upto == d.start:
            return True
        if not self.store.readonly:
            if self.file is not None and self.file.writable:
                self._append(self.file)
            return self.delta is not d
        with self._reader_lock() as ok:
            f = self._writable_for_reader() if ok else None
            if f is not None:
                try:
                    self._append(f)
                finally:
                    f.close()
        if self.delta is d:
            return False
        # read what was just written (a sidecar this reader had not opened, or one
        # it recreated) through a fresh connection
        if self.file is not None:
            self.file.close()
        self.file = None
        with contextlib.suppress(IndexUnusable):
            self.file = IndexFile(self.path, False)
        return True

    def _writable_for_reader(self) -> IndexFile | None:
        """The sidecar opened for writing by a reader holding the writer lock, ready to
        take the reader's rows: a new one when they start at the base and the
        sidecar holds anything else (a new file, so that other readers' open
        connections keep reading the old one, whole)."""
        d = self.delta
        f: IndexFile | None = None
        try:
            f = IndexFile(self.path, True)
            meta = f.meta()
            if meta is None:
                f.create(*self.base)
            if meta is None or d.start != self.base[0] or \
                    (meta.base_seq, meta.base_id, meta.head_seq) == (*self.base, d.start):
                return f
        except IndexUnusable:
            pass  # damaged: replaced below
        if f is not None:
            f.close()
        if d.start != self.base[0]:
            return None
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # no writer is running: nobody else writes it
        try:
            f = IndexFile(self.path, True)
            f.create(*self.base)
            return f
        except IndexUnusable:
            return None

    def _append(self, f: IndexFile) -> None:
        d = self.delta
        touches, events = d.sidecar_rows()
        try:
            done = f.append(d.start, (d.tip[0], d.tip[1]), d.chain, touches, events)
        except IndexUnusable:
            return  # kept in memory; the next attach discards the sidecar
        if done:
            self.main_upto, self.delta = d.upto, Delta(d.tip[0], d.tip[1])

    @contextlib.contextmanager
    def _reader_lock(self) -> Iterator[bool]:
        """The writer lock, if no writer holds it and the path still names this file."""
        lock = WriterLock(self.store.log.path)
        try:
            lock.acquire(0.0)
        except MyosotisError:
            yield False
            return
        try:
            same = os.stat(self.store.log.path).st_ino == self.store.log.inode
            yield same
        finally:
            lock.release()

    def close(self) -> None:
        """Flush what a writer may write, then close the sidecar. Never raises for the
        index: it is derived data."""
        with contextlib.suppress(MyosotisError, OSError):
            self.flush()
        if self.file is not None:
            self.file.close()
            self.file = None

    # ------------------------------------------------------------------ queries

    def touches(self, node: int, upto: int) -> list[tuple[int, int, str | None]]:
        """``(seq, off, field)`` of every mutation of ``node`` in commits ``<= upto``."""
        rows = self._main(lambda f: f.touches(node, min(upto, self.main_upto)))
        return rows + self.delta.touches_of(node, upto)

    def places(self, dst: int, upto: int) -> set[tuple[int, str]]:
        """``(src, field)`` of every field into which commits ``<= upto`` wrote a value
        referencing ``dst``: its referrers after ``upto`` are among them."""
        rows = self._main(lambda f: f.ref_events(dst, min(upto, self.main_upto)))
        return {(src, name) for _, src, name in rows + self.delta.events_of(dst, upto)}

    def seqs_with_id_prefix(self, prefix: str, upto: int) -> list[int]:
        """Seqs of the indexed commits ``<= upto`` whose id, in hex, starts with
        ``prefix`` (1 to 64 lowercase hex digits), in order: a scan of the
        sidecar's ids in SQLite (index_file.py says why), then of the rows still
        in memory."""
        pad = HASH_SIZE * 2 - len(prefix)  # a commit id is a 32-byte hash (§9.1)
        low, high = bytes.fromhex(prefix + "0" * pad), bytes.fromhex(prefix + "f" * pad)
        rows = self._main(lambda f: f.seqs_with_ids(low, high, min(upto, self.main_upto)))
        return rows + [seq for seq, cid in self.delta.chain if seq <= upto and low <= cid <= high]

    def _main(self, query: Any) -> list[Any]:
        f = self.file
        if f is None or self.main_upto == self.base[0] and not self.store.commits.has_genesis:
            return []
        try:
            return list(query(f))
        except IndexUnusable as e:
            self._discard(str(e))
            raise _Restart() from None


class _Restart(Exception):  # noqa: N818 - internal control flow
    """The sidecar was discarded mid-operation: catch up again from the base."""


def with_index(store: Store, job: Any) -> Any:
    """Run ``job(index)`` on the store's index caught up to its head, restarting once
    from a rebuilt index if the sidecar turns out to be damaged on the way."""
    for _ in range(3):
        index = store.history_index()
        try:
            index.catch_up()
            return job(index)
        except _Restart:
            continue
    raise AssertionError("the history index could not be rebuilt")  # not reached


def index_commit(store: Store, seq: int, cid: bytes, first: int, staged: list[Mutation],
                 staged_at: list[int]) -> None:
    """Index commit ``seq``, just written by the store's writer from the ``staged``
    mutations, the i-th at payload offset ``first + staged_at[i]``. Raises nothing but
    an interrupt: the commit stands whatever happens to its derived index."""
    index = store.index
    if index is not None and index.failed:
        return  # the next query catches up (and warns no more per commit)
    try:
        index = store.history_index()
        index.check()
        index.note_commit(seq, cid, first, staged, staged_at)
    except (MyosotisError, OSError, ValueError, IndexUnusable, _Restart) as e:
        # Derived data never fails a commit: what a damaged sidecar, a full disk or
        # a bad row can raise is reported, and the index waits for a query to catch
        # up. An interrupt (KeyboardInterrupt, MemoryError) still reaches the caller,
        # with the commit made and the delta's tip where it was.
        if store.index is not None:
            store.index.failed = True
        warn_caller(f"{sidecar_path(store.log.path)}: indexing commit {seq} failed ({e}); "
                    "commits are no longer indexed as they are written: the next query "
                    "catches the index up", IndexRebuiltWarning)


__all__ = ["HistoryIndex", "index_commit", "with_index"]
