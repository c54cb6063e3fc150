"""The history index's container: a SQLite database beside the data file,
``<realpath of the file>.idx``.

Why a sidecar and not records in the ``.myo`` file: the index is derived
data, like a checkpoint, but unlike a checkpoint it changes with every
commit and is looked up by node, not by commit. Records of a new kind in the
log would be a format version change (FORMAT.md §12) and would have to be
appended, never updated, so a lookup by node would need a second structure
anyway. A sidecar can be deleted at any time (it is rebuilt from the log),
never makes the data file larger, and stdlib ``sqlite3`` gives B-tree lookups
by node with transactions, so this module holds no paging code of its own.

Schema (``SCHEMA_VERSION``), every table keyed by what a query asks for:

- ``meta(key, value)``: ``version``; ``base_seq`` and ``base_id`` (hex) of
  the compacted base the index was started from (0 and zeros for a file that
  was never compacted); ``head_seq`` and ``head_id`` (hex), the newest
  commit it covers. A file whose base differs (compacted, replaced) or
  whose commit at the index's head has another id is not the one indexed.
- ``chain(seq, id)``: the id of every indexed commit, so that a reader that
  sees fewer commits than the index covers can still check its prefix. Ids
  have no index of their own: one costs about 5 µs a commit in random B-tree
  inserts, while the lookup of an id prefix (a name a user types) scans the
  table in about 50 ns a commit.
- ``touch(node, seq, off, field)``: one row per mutation: commit ``seq``
  changed ``node``; the mutation starts at payload offset ``off`` of that
  commit; ``field`` is NULL for CREATE and DELETE (the node as a whole).
- ``refev(dst, seq, src, field)``: commit ``seq`` wrote a value holding a
  reference to ``dst`` into field ``field`` of ``src``. The referrers of
  ``dst`` after commit ``c`` are among the places of its rows up to ``c``;
  the query reads each at ``c`` and keeps those that still reference it.

Only a process holding the data file's writer lock writes rows here, so two
writers never interleave; SQLite's own locking keeps readers consistent.
One write is not a row: a writer killed inside a flush leaves SQLite's
rollback journal (``<sidecar>-journal``), which SQLite calls hot once no
connection holds the lock that guards it, and the first connection that may
write rolls it back before reading. A reader's connection is read-only (it
reports "attempt to write a readonly database"), so a reader that finds the
journal rolls it back through a short read-write connection
(``IndexFile._roll_back_journal``) and reads on. That needs no writer lock:
it restores the database as the killed writer's last finished flush left it,
which is what any other opener would do, and a live writer's journal is
never hot. Without it every reader would discard the sidecar and index the
whole history in memory until a writer happened to open the sidecar.
Contents are a function of the log alone (same file, same rows); the
database's bytes are SQLite's business. ``synchronous=OFF``: a crash of the
machine may lose the last flushes or damage the database; either is
detected (an older head is caught up, a malformed database is rebuilt).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import NamedTuple, cast

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE chain(seq INTEGER PRIMARY KEY, id BLOB NOT NULL)",
    "CREATE TABLE touch(node INTEGER, seq INTEGER, off INTEGER, field TEXT, "
    "PRIMARY KEY(node, seq, off)) WITHOUT ROWID",
    "CREATE TABLE refev(dst INTEGER, seq INTEGER, src INTEGER, field TEXT, "
    "PRIMARY KEY(dst, seq, src, field)) WITHOUT ROWID",
)

TouchRow = tuple[int, int, int, "str | None"]  # node, seq, off, field
RefEventRow = tuple[int, int, int, str]  # dst, seq, src, field


class IndexUnusable(Exception):  # noqa: N818 - internal signal, never reaches a user
    """The sidecar cannot be read as an index (damaged, foreign, newer schema)."""


class Meta(NamedTuple):
    base_seq: int
    base_id: bytes
    head_seq: int
    head_id: bytes


def sidecar_path(data_path: str) -> str:
    """Where the index of the data file at ``data_path`` lives: every name of the
    file (symlink, relative path) meets the same sidecar."""
    return os.path.realpath(data_path) + ".idx"


class IndexFile:
    """One open connection to the sidecar. Every method raises IndexUnusable for a
    database SQLite cannot read; the caller discards and rebuilds it."""

    def __init__(self, path: str, writable: bool) -> None:
        self.path = path
        self.writable = writable
        try:
            if writable:
                self.db = sqlite3.connect(path, isolation_level=None, timeout=2.0)
                self.db.execute("PRAGMA synchronous=OFF")
            else:
                self.db = self._connect("ro")
        except sqlite3.Error as e:
            raise IndexUnusable(str(e)) from None

    def _connect(self, mode: str) -> sqlite3.Connection:
        """A connection to the existing sidecar in URI ``mode`` (``ro``, ``rw``)."""
        uri = "file:" + self.path.replace("?", "%3f").replace("#", "%23") + "?mode=" + mode
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=2.0)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            # A read-only connection cannot roll back a killed writer's journal
            # (module docstring); any other failure is the database's own.
            if self.writable or not os.path.exists(self.path + "-journal"):
                raise IndexUnusable(str(e)) from None
        self._roll_back_journal()
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise IndexUnusable(str(e)) from None

    def _roll_back_journal(self) -> None:
        """Have SQLite roll back the journal a killed writer left, by a first read
        through a connection that may write (a no-op if the journal is not hot:
        a live writer's). Raises IndexUnusable when that fails (this process may
        not write the sidecar, or SQLite is busy past its timeout): the journal
        stays and the database cannot be read."""
        try:
            with contextlib.closing(self._connect("rw")) as db:
                db.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.Error as e:
            raise IndexUnusable(
                "a write to it was left unfinished (by a writer that died, or by one still "
                f"running past SQLite's timeout) and this process could not roll it back: {e}"
            ) from None

    # ------------------------------------------------------------------ meta

    def meta(self) -> Meta | None:
        """The index's bounds, or None for an empty database (a new sidecar)."""
        if not self._rows("SELECT name FROM sqlite_master WHERE type='table'"):
            return None
        kv: dict[object, object] = {r[0]: r[1] for r in self._rows("SELECT key, value FROM meta")}
        try:
            if int(str(kv["version"])) != SCHEMA_VERSION:
                raise IndexUnusable(f"index schema {kv['version']}, not {SCHEMA_VERSION}")
            return Meta(int(str(kv["base_seq"])), bytes.fromhex(str(kv["base_id"])),
                        int(str(kv["head_seq"])), bytes.fromhex(str(kv["head_id"])))
        except (KeyError, ValueError) as e:
            raise IndexUnusable(f"index metadata unreadable: {e}") from None

    def chain_id(self, seq: int) -> bytes | None:
        rows = self._rows("SELECT id FROM chain WHERE seq=?", (seq,))
        return bytes(cast(bytes, rows[0][0])) if rows else None

    def create(self, base_seq: int, base_id: bytes) -> None:
        """Empty the database and start an index at the base (nothing indexed yet)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for (name,) in self.db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                self.db.execute(f'DROP TABLE "{name}"')
            for stmt in _SCHEMA:
                self.db.execute(stmt)
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("version", str(SCHEMA_VERSION)), ("base_seq", str(base_seq)),
                ("base_id", base_id.hex()), ("head_seq", str(base_seq)),
                ("head_id", base_id.hex())])
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise IndexUnusable(str(e)) from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    # ------------------------------------------------------------------ writing

    def append(self, expect_head: int, head: tuple[int, bytes], chain: list[tuple[int, bytes]],
               touches: list[TouchRow], events: list[RefEventRow]) -> bool:
        """Add the rows of commits ``(expect_head, head]`` in one transaction; False
        (nothing written) when the index's head is no longer ``expect_head``."""
        try:
            self._rollback()  # an interrupted earlier flush left its transaction open
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT value FROM meta WHERE key='head_seq'").fetchone()
            if row is None or int(row[0]) != expect_head:
                self.db.execute("ROLLBACK")
                return False
            self.db.executemany("INSERT OR REPLACE INTO chain VALUES (?, ?)", chain)
            self.db.executemany("INSERT OR REPLACE INTO touch VALUES (?, ?, ?, ?)", touches)
            self.db.executemany("INSERT OR REPLACE INTO refev VALUES (?, ?, ?, ?)", events)
            self.db.executemany("UPDATE meta SET value=? WHERE key=?", [
                (str(head[0]), "head_seq"), (head[1].hex(), "head_id")])
            self.db.execute("COMMIT")  # the flush's durable point (as durable as SQLite's OFF)
            return True
        except sqlite3.Error as e:
            self._rollback()
            raise IndexUnusable(str(e)) from None

    def truncate_after(self, seq: int, seq_id: bytes) -> None:
        """Forget every commit after ``seq`` (the file's history ends there: commits a
        crash lost after the index had them)."""
        try:
            self._rollback()
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("chain", "touch", "refev"):
                self.db.execute(f"DELETE FROM {table} WHERE seq > ?", (seq,))
            self.db.executemany("UPDATE meta SET value=? WHERE key=?", [
                (str(seq), "head_seq"), (seq_id.hex(), "head_id")])
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise IndexUnusable(str(e)) from None

    # ------------------------------------------------------------------ queries

    def touches(self, node: int, upto: int) -> list[tuple[int, int, str | None]]:
        """``(seq, off, field)`` of the mutations of ``node`` in commits ``<= upto``, in order."""
        return cast(list[tuple[int, int, "str | None"]], self._rows(
            "SELECT seq, off, field FROM touch WHERE node=? AND seq<=? ORDER BY seq, off",
            (node, upto)))

    def seqs_with_ids(self, low: bytes, high: bytes, upto: int) -> list[int]:
        """Seqs ``<= upto`` of the commits whose id is in ``[low, high]``, in order
        (a scan of ``chain``: see the module docstring)."""
        return [cast(int, r[0]) for r in self._rows(
            "SELECT seq FROM chain WHERE id BETWEEN ? AND ? AND seq<=? ORDER BY seq",
            (low, high, upto))]

    def ref_events(self, dst: int, upto: int) -> list[tuple[int, int, str]]:
        """``(seq, src, field)``: where ``dst`` was referenced by commits ``<= upto``."""
        return cast(list[tuple[int, int, str]], self._rows(
            "SELECT seq, src, field FROM refev WHERE dst=? AND seq<=? ORDER BY seq",
            (dst, upto)))
