"""The SQLite baseline: stdlib ``sqlite3``, WAL journal, one JSON object per node.

Schema (from the benchmark brief)::

    nodes(id INTEGER PRIMARY KEY, type TEXT NOT NULL,
          deleted INTEGER NOT NULL DEFAULT 0, fields TEXT NOT NULL)

Changing a field reads the row's JSON, changes the key and writes it back; one
transaction per commit. References are stored as the target's integer id.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from workloads import NODE_TYPE, Change

SCHEMA = ("CREATE TABLE IF NOT EXISTS nodes(id INTEGER PRIMARY KEY, type TEXT NOT NULL, "
          "deleted INTEGER NOT NULL DEFAULT 0, fields TEXT NOT NULL)")
JSON_SEP = (",", ":")


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT), WAL, given synchronous."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL").fetchall()
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute(SCHEMA)
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


def create_nodes(con: sqlite3.Connection, nodes: list[dict[str, Any]], first: int = 1) -> None:
    """Insert ``nodes`` (ids ``first``...) in one transaction."""
    con.execute("BEGIN")
    con.executemany("INSERT INTO nodes(id, type, fields) VALUES (?, ?, ?)",
                    [(first + i, NODE_TYPE, json.dumps(f, separators=JSON_SEP))
                     for i, f in enumerate(nodes)])
    con.execute("COMMIT")


def apply_commit(con: sqlite3.Connection, changes: list[Change]) -> None:
    """One transaction: for each change read the JSON, set the key, write it back."""
    ex = con.execute
    ex("BEGIN")
    for node_id, field, value in changes:
        fields = json.loads(ex("SELECT fields FROM nodes WHERE id = ?", (node_id,)).fetchone()[0])
        fields[field] = value
        ex("UPDATE nodes SET fields = ? WHERE id = ?",
           (json.dumps(fields, separators=JSON_SEP), node_id))
    ex("COMMIT")


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
