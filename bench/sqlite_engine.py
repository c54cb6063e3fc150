"""The SQLite baseline: stdlib ``sqlite3``, WAL journal, one JSON object per node.

Schema (from the benchmark brief)::

    nodes(id INTEGER PRIMARY KEY, type TEXT NOT NULL,
          deleted INTEGER NOT NULL DEFAULT 0, fields TEXT NOT NULL)

Changing a field reads the row's JSON, changes the key and writes it back; one
transaction per commit. References are stored as the target's integer id.

The history peer (W4, W7) adds, in the same database and the same
transactions, one row per field value ever set::

    history(node INTEGER NOT NULL, field TEXT NOT NULL, seq INTEGER NOT NULL,
            value TEXT NOT NULL)          -- value: compact JSON
    CREATE INDEX history_nfs ON history(node, field, seq)

``seq`` numbers commits as Myosotis does (1 = the first commit). The value of
a field at commit ``c`` is the newest row with ``seq <= c`` (:func:`value_at`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from workloads import NODE_TYPE, Change

SCHEMA = ("CREATE TABLE IF NOT EXISTS nodes(id INTEGER PRIMARY KEY, type TEXT NOT NULL, "
          "deleted INTEGER NOT NULL DEFAULT 0, fields TEXT NOT NULL)")
HISTORY_SCHEMA = ("CREATE TABLE IF NOT EXISTS history(node INTEGER NOT NULL, "
                  "field TEXT NOT NULL, seq INTEGER NOT NULL, value TEXT NOT NULL)")
HISTORY_INDEX = "CREATE INDEX IF NOT EXISTS history_nfs ON history(node, field, seq)"
VALUE_AT = ("SELECT value FROM history WHERE node = ? AND field = ? AND seq <= ? "
            "ORDER BY seq DESC LIMIT 1")
JSON_SEP = (",", ":")


def connect(path: str, synchronous: str, history: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT), WAL, given synchronous;
    ``history`` also creates the history table and its index."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL").fetchall()
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute(SCHEMA)
    if history:
        con.execute(HISTORY_SCHEMA)
        con.execute(HISTORY_INDEX)
    return con


def file_bytes(con: sqlite3.Connection, path: str) -> int:
    """Checkpoint the WAL (TRUNCATE), close, and return db + any -wal bytes left."""
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    con.close()
    total = os.path.getsize(path)
    for extra in (path + "-wal",):
        if os.path.exists(extra):
            total += os.path.getsize(extra)
    return total


def create_nodes(con: sqlite3.Connection, nodes: list[dict[str, Any]], first: int = 1,
                 seq: int | None = None) -> None:
    """Insert ``nodes`` (ids ``first``...) in one transaction; with ``seq``, also one
    history row per field (the history peer)."""
    dumps = json.dumps
    con.execute("BEGIN")
    con.executemany("INSERT INTO nodes(id, type, fields) VALUES (?, ?, ?)",
                    [(first + i, NODE_TYPE, dumps(f, separators=JSON_SEP))
                     for i, f in enumerate(nodes)])
    if seq is not None:
        con.executemany("INSERT INTO history(node, field, seq, value) VALUES (?, ?, ?, ?)",
                        [(first + i, k, seq, dumps(v, separators=JSON_SEP))
                         for i, f in enumerate(nodes) for k, v in f.items()])
    con.execute("COMMIT")


def apply_commit(con: sqlite3.Connection, changes: list[Change], seq: int | None = None) -> None:
    """One transaction: for each change read the JSON, set the key, write it back; with
    ``seq``, also insert the change's history row."""
    ex = con.execute
    ex("BEGIN")
    for node_id, field, value in changes:
        fields = json.loads(ex("SELECT fields FROM nodes WHERE id = ?", (node_id,)).fetchone()[0])
        fields[field] = value
        ex("UPDATE nodes SET fields = ? WHERE id = ?",
           (json.dumps(fields, separators=JSON_SEP), node_id))
        if seq is not None:
            ex("INSERT INTO history(node, field, seq, value) VALUES (?, ?, ?, ?)",
               (node_id, field, seq, json.dumps(value, separators=JSON_SEP)))
    ex("COMMIT")


def value_at(con: sqlite3.Connection, node_id: int, field: str, seq: int) -> Any:
    """The value of ``field`` of node ``node_id`` after commit ``seq`` (history peer)."""
    row = con.execute(VALUE_AT, (node_id, field, seq)).fetchone()
    return None if row is None else json.loads(row[0])


def unset_field(con: sqlite3.Connection, node_id: int, field: str) -> None:
    """One transaction removing ``field`` from node ``node_id``."""
    ex = con.execute
    ex("BEGIN")
    fields = json.loads(ex("SELECT fields FROM nodes WHERE id = ?", (node_id,)).fetchone()[0])
    del fields[field]
    ex("UPDATE nodes SET fields = ? WHERE id = ?",
       (json.dumps(fields, separators=JSON_SEP), node_id))
    ex("COMMIT")


def dump_state(con: sqlite3.Connection) -> dict[int, dict[str, Any]]:
    """Every live node's fields, by id."""
    return {i: json.loads(f) for i, f in
            con.execute("SELECT id, fields FROM nodes WHERE deleted = 0 ORDER BY id")}
