"""Fresh-process measurements for bench/run.py (W2 bulk ingest, W3 cold open,
W7 build, small commits, cold open and time travel).

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

from workloads import NODE_TYPE, change_commits, node_batches


def _maxrss_bytes() -> int:
    """ru_maxrss; on Linux it starts from the RSS of the process that spawned this
    one (exec keeps the old address space's high-water mark), so run.py reports
    VmHWM where there is one (:func:`_vmhwm_bytes`)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def _vmhwm_bytes() -> int | None:
    """Peak resident set size (VmHWM of /proc/self/status), None where there is none."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # "VmHWM:   12345 kB"
    except OSError:
        pass
    return None


def wchar() -> int | None:
    """Bytes this process has passed to write-family system calls so far
    (``wchar`` of /proc/self/io; pwrite included, mmap stores not), None where
    there is no /proc."""
    try:
        with open("/proc/self/io") as fh:
            for line in fh:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _delta(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else b - a


def _space(mem: Any) -> dict[str, Any]:
    """``mem.space()`` as plain JSON: frames and bytes by record kind."""
    sp = mem.space()
    return {"header": sp.header, "kinds": {k: list(v) for k, v in sp.kinds.items()},
            "free": sp.free, "torn_tail": sp.torn_tail}


def _plain(v: Any) -> Any:
    """A value read from Myosotis in the engine-neutral form (references as ids)."""
    from myosotis import ListProxy, MapProxy, Node

    if isinstance(v, Node):
        return v.id
    if isinstance(v, ListProxy | list):
        return [_plain(x) for x in v]
    if isinstance(v, MapProxy | dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def ingest_myosotis(path: str, total: int, commits: int,
                    durability: str = "full") -> dict[str, Any]:
    from myosotis import Memory, Ref

    seconds = 0.0
    w0 = wchar()
    mem = Memory.open(path, durability=durability)  # type: ignore[arg-type]
    for _first, batch in node_batches(total, commits):
        t0 = time.perf_counter()
        for f in batch:
            friend = f["friend"]
            mem.create(NODE_TYPE, name=f["name"], score=f["score"], count=f["count"],
                       tags=f["tags"], friend=None if friend is None else Ref(friend))
        mem.commit()
        seconds += time.perf_counter() - t0
    info = mem.info()
    space = _space(mem)
    t0 = time.perf_counter()
    mem.close()
    seconds += time.perf_counter() - t0
    return {"seconds": seconds, "file_bytes": os.path.getsize(path),
            "data_end": info.data_end, "checkpoints": info.checkpoints,
            "head_seq": info.head_seq, "space": space, "wchar": _delta(w0, wchar())}


def ingest_sqlite(path: str, total: int, commits: int, synchronous: str = "FULL",
                  history: bool = False) -> dict[str, Any]:
    from sqlite_engine import connect, create_nodes, file_bytes

    seconds = 0.0
    w0 = wchar()
    con = connect(path, synchronous, history)
    for seq, (first, batch) in enumerate(node_batches(total, commits), 1):
        t0 = time.perf_counter()
        create_nodes(con, batch, first, seq if history else None)  # JSON encoding timed
        seconds += time.perf_counter() - t0
    size = file_bytes(con, path)
    return {"seconds": seconds, "file_bytes": size, "checkpoints": 0, "head_seq": commits,
            "wchar": _delta(w0, wchar())}


def commits_myosotis(path: str, n_nodes: int, n_commits: int) -> dict[str, Any]:
    """W7: open the built file and apply the small W1-like change commits."""
    from myosotis import Memory, Ref

    changes = change_commits(n_nodes, n_commits)
    w0 = wchar()
    t0 = time.perf_counter()
    mem = Memory.open(path, durability="none")
    open_s = time.perf_counter() - t0
    info0, space0 = mem.info(), _space(mem)
    get, commit = mem.get, mem.commit
    t0 = time.perf_counter()
    for c in changes:
        for node_id, field, value in c:
            get(node_id)[field] = Ref(value) if field == "friend" and value is not None \
                else value
        commit()
    seconds = time.perf_counter() - t0
    info = mem.info()
    space = _space(mem)
    t0 = time.perf_counter()
    mem.close()
    seconds += time.perf_counter() - t0
    return {"open_s": open_s, "seconds": seconds, "file_bytes": os.path.getsize(path),
            "data_end_before": info0.data_end, "data_end": info.data_end,
            "checkpoints_before": info0.checkpoints, "checkpoints": info.checkpoints,
            "head_seq": info.head_seq, "space_before": space0, "space": space,
            "wchar": _delta(w0, wchar())}


def commits_sqlite(path: str, n_nodes: int, n_commits: int, first_seq: int,
                   history: bool) -> dict[str, Any]:
    """W7: the same change commits on SQLite (``history``: also the history rows)."""
    from sqlite_engine import apply_commit, connect, file_bytes

    changes = change_commits(n_nodes, n_commits)
    w0 = wchar()
    t0 = time.perf_counter()
    con = connect(path, "OFF", history)
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i, c in enumerate(changes):
        apply_commit(con, c, first_seq + i if history else None)
    seconds = time.perf_counter() - t0
    return {"open_s": open_s, "seconds": seconds, "file_bytes": file_bytes(con, path),
            "wchar": _delta(w0, wchar())}


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
    """Time from just before opening to just after reading one field of one node;
    the engine's import is timed separately (``import_s``)."""
    t0 = time.perf_counter()
    if engine == "myosotis":
        from myosotis import Memory

        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        mem = Memory.open(path)
        value = mem[node_id][field]
        t1 = time.perf_counter()
        mem.close()
    elif engine == "sqlite":
        import sqlite3

        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        con = sqlite3.connect(path)
        row = con.execute("SELECT fields FROM nodes WHERE id = ?", (node_id,)).fetchone()
        value = json.loads(row[0])[field]
        t1 = time.perf_counter()
        con.close()
    else:  # "noop": interpreter start-up and exit only
        t_import = 0.0
        t0 = t1 = time.perf_counter()
        value = None
    return {"seconds": t1 - t0, "import_s": t_import, "value": repr(value),
            "vmhwm_bytes": _vmhwm_bytes()}


def at_read(engine: str, path: str, queries: list[list[Any]]) -> dict[str, Any]:
    """Time each ``(seq, node, field)`` read at a past commit, the first call
    included: ``mem.at(seq)[node][field]`` or the history table's newest row with
    seq <= c. Opening (and importing) is timed separately."""
    clock = time.perf_counter
    t0 = clock()
    times: list[float] = []
    values: list[Any] = []
    if engine == "myosotis":
        from myosotis import Memory

        t_import = clock() - t0
        t0 = clock()
        mem = Memory.open(path)
        open_s = clock() - t0
        for seq, node_id, field in queries:
            t0 = clock()
            v = mem.at(seq)[node_id][field]
            times.append(clock() - t0)
            values.append(_plain(v))
        mem.close()
    else:  # "sqlite": the history peer
        import sqlite3

        from sqlite_engine import value_at

        t_import = clock() - t0
        t0 = clock()
        con = sqlite3.connect(path)
        open_s = clock() - t0
        for seq, node_id, field in queries:
            t0 = clock()
            v = value_at(con, node_id, field, seq)
            times.append(clock() - t0)
            values.append(v)
        con.close()
    return {"import_s": t_import, "open_s": open_s, "times": times, "values": values,
            "vmhwm_bytes": _vmhwm_bytes()}


def run_command(argv: list[str], cwd: str) -> dict[str, Any]:
    """Run a command (output discarded): its wall time and peak RSS.

    Launched from this small process on purpose: on Linux a child's
    ``ru_maxrss`` starts from the RSS of the process that spawned it, so the
    figure is ``max(this launcher's VmHWM, the command's own peak)``; the
    launcher's VmHWM is returned beside it.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{argv} failed ({code}):\n{err.read().decode()}")
    rss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return {"wall_s": wall, "maxrss_bytes": rss, "launcher_vmhwm_bytes": _vmhwm_bytes()}


def _profiled(fn: Any, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], str]:
    """Run ``fn`` under cProfile; return its result and the myosotis/ hotspots."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        out = fn(*args, **kwargs)
    finally:
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(r"myosotis[/\\]", 15)
    return out, buf.getvalue()


def run(req: dict[str, Any]) -> dict[str, Any]:
    mode = req["mode"]
    if mode == "ingest":  # W2 (durable) and the W7 build (durability "none"/OFF)
        engine = req["engine"]
        if engine == "myosotis":
            out = ingest_myosotis(req["path"], req["total"], req["commits"],
                                  req.get("durability", "full"))
        elif engine == "sqlite":
            out = ingest_sqlite(req["path"], req["total"], req["commits"],
                                req.get("synchronous", "FULL"), req.get("history", False))
        else:
            out = ingest_raw(req["path"], req["total"], req["commits"], req["bytes_per_commit"])
        out["maxrss_bytes"] = _maxrss_bytes()
        out["vmhwm_bytes"] = _vmhwm_bytes()
        return out
    if mode == "commits":  # W7 small commits
        if req["engine"] == "myosotis":
            out = commits_myosotis(req["path"], req["nodes"], req["commits"])
        else:
            out = commits_sqlite(req["path"], req["nodes"], req["commits"], req["first_seq"],
                                 req.get("history", False))
        out["maxrss_bytes"] = _maxrss_bytes()
        return out
    if mode == "open_read":
        return open_read(req["engine"], req["path"], req["node"], req["field"])
    if mode == "at_read":
        return at_read(req["engine"], req["path"], req["queries"])
    if mode == "command":
        return run_command(req["argv"], req["cwd"])
    raise SystemExit(f"unknown mode {mode!r}")


def main() -> None:
    req = json.loads(sys.argv[1])
    if req.get("profile"):
        out, text = _profiled(run, req)
        out["profile"] = text
    else:
        out = run(req)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
