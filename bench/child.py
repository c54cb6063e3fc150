"""Fresh-process measurements for bench/run.py (W2 bulk ingest, W3 cold open).

Usage: ``python bench/child.py '<json request>'``; prints one JSON object on
the last line of stdout. Each engine is imported only when the request needs
it, so peak RSS and start-up of one engine never include the other.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from workloads import NODE_TYPE, node_batches


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def ingest_myosotis(path: str, total: int, commits: int) -> dict[str, Any]:
    from myosotis import Memory, Ref

    seconds = 0.0
    mem = Memory.open(path, durability="full")
    for _first, batch in node_batches(total, commits):
        t0 = time.perf_counter()
        for f in batch:
            friend = f["friend"]
            mem.create(NODE_TYPE, name=f["name"], score=f["score"], count=f["count"],
                       tags=f["tags"], friend=None if friend is None else Ref(friend))
        mem.commit()
        seconds += time.perf_counter() - t0
    checkpoints = mem.info().checkpoints
    t0 = time.perf_counter()
    mem.close()
    seconds += time.perf_counter() - t0
    return {"seconds": seconds, "file_bytes": os.path.getsize(path), "checkpoints": checkpoints}


def ingest_sqlite(path: str, total: int, commits: int) -> dict[str, Any]:
    from sqlite_engine import connect, create_nodes, file_bytes

    seconds = 0.0
    con = connect(path, "FULL")
    for first, batch in node_batches(total, commits):
        t0 = time.perf_counter()
        create_nodes(con, batch, first)  # JSON encoding is inside the timing
        seconds += time.perf_counter() - t0
    return {"seconds": seconds, "file_bytes": file_bytes(con, path), "checkpoints": 0}


def ingest_raw(path: str, total: int, commits: int, bytes_per_commit: int) -> dict[str, Any]:
    """The floor: generate the same data, then append+fsync ``bytes_per_commit`` per commit."""
    seconds = 0.0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
    try:
        for _first, _batch in node_batches(total, commits):
            buf = b"\x5a" * bytes_per_commit
            t0 = time.perf_counter()
            view = memoryview(buf)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            seconds += time.perf_counter() - t0
    finally:
        os.close(fd)
    return {"seconds": seconds, "file_bytes": os.path.getsize(path), "checkpoints": 0}


def open_read(engine: str, path: str, node_id: int, field: str) -> dict[str, Any]:
    """Time from just before opening to just after reading one field of one node."""
    if engine == "myosotis":
        from myosotis import Memory

        t0 = time.perf_counter()
        mem = Memory.open(path)
        value = mem[node_id][field]
        t1 = time.perf_counter()
        mem.close()
    elif engine == "sqlite":
        import sqlite3

        t0 = time.perf_counter()
        con = sqlite3.connect(path)
        row = con.execute("SELECT fields FROM nodes WHERE id = ?", (node_id,)).fetchone()
        value = json.loads(row[0])[field]
        t1 = time.perf_counter()
        con.close()
    else:  # "noop": interpreter start-up and exit only
        t0 = t1 = time.perf_counter()
        value = None
    return {"seconds": t1 - t0, "value": repr(value)}


def main() -> None:
    req = json.loads(sys.argv[1])
    mode = req["mode"]
    if mode == "ingest":
        engine = req["engine"]
        if engine == "myosotis":
            out = ingest_myosotis(req["path"], req["total"], req["commits"])
        elif engine == "sqlite":
            out = ingest_sqlite(req["path"], req["total"], req["commits"])
        else:
            out = ingest_raw(req["path"], req["total"], req["commits"], req["bytes_per_commit"])
        out["maxrss_bytes"] = _maxrss_bytes()
    elif mode == "open_read":
        out = open_read(req["engine"], req["path"], req["node"], req["field"])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
