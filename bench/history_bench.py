"""Per-node history through the index (issue #11): ``mem.log``, ``mem.blame`` and
``mem.referrers`` on the W7 scale file, and the index's cost to writers.

The file: W7's build (1,000,000 nodes of the W1 shape in 100 commits, then
20,000 small W1 commits; ``--quick``: 100,000 nodes, 2,000 commits), where in
every 200th small commit node ``HOT`` also gets a new ``count`` and a random
node's ``friend`` is set to node ``TARGET``, so HOT is changed 100 times (101
with its create) and TARGET is referred to from ~100 fields over the history.

Measured, each in a fresh process (the index already written by the builder):
the first call (opening the sidecar and catching up) and the median of warm
calls, for each query; the first call after the sidecar is deleted (a full
rebuild of the index from the log); the sidecar's size. Then the writer's
per-commit overhead on W1 (10,000 nodes, 5,000 small commits, durability
"none"): the commit loop with the index against the same loop with the
index hook replaced by a no-op, interleaved, median of ``--runs``.

Usage: ``python bench/history_bench.py [--quick] [--dir DIR] [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import NODE_TYPE, change_commits, initial_nodes, node_batches  # noqa: E402

HOT, EVERY = 7, 200


def build(path: str, nodes: int, commits: int) -> dict[str, Any]:
    from myosotis import Memory, Ref

    target = nodes // 2
    rng = random.Random(11)
    t0 = time.perf_counter()
    with Memory.open(path, durability="none") as mem:
        for _first, batch in node_batches(nodes, 100):
            for f in batch:
                friend = f["friend"]
                mem.create(NODE_TYPE, name=f["name"], score=f["score"], count=f["count"],
                           tags=f["tags"], friend=None if friend is None else Ref(friend))
            mem.commit()
        t1 = time.perf_counter()
        for i, c in enumerate(change_commits(nodes, commits), 1):
            for node_id, field, value in c:
                mem[node_id][field] = Ref(value) if field == "friend" and value is not None \
                    else value
            if i % EVERY == 0:
                mem[HOT]["count"] = i
                mem[rng.randrange(target + 1, nodes)]["friend"] = Ref(target)
            mem.commit()
        mem.sync()
    t2 = time.perf_counter()
    return {"bulk_s": t1 - t0, "small_s": t2 - t1, "target": target,
            "file_bytes": os.path.getsize(path), "idx_bytes": os.path.getsize(path + ".idx")}


def query(path: str, target: int, warm: int) -> dict[str, Any]:
    from myosotis import Memory

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    mem = Memory.open(path, readonly=True)
    out["open_ms"] = (time.perf_counter() - t0) * 1e3
    jobs = {"log": lambda: list(mem.log(HOT)),
            "log_field": lambda: list(mem.log(HOT, "count")),
            "blame": lambda: mem.blame(HOT),
            "referrers": lambda: mem.referrers(target),
            "referrers_past": lambda: mem.referrers(target, at=mem.head.seq // 2)}  # type: ignore[union-attr]
    for name, job in jobs.items():
        t0 = time.perf_counter()
        res = job()
        first = (time.perf_counter() - t0) * 1e3
        times = []
        for _ in range(warm):
            t0 = time.perf_counter()
            job()
            times.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"first_ms": first, "warm_median_ms": statistics.median(times),
                     "answer_len": len(res)}
    mem.close()
    return out


def commit_loop(path: str, indexed: bool) -> dict[str, Any]:
    from myosotis import Memory, Ref
    from myosotis.engine import staging

    if not indexed:
        staging.index_commit = lambda *a: None  # the baseline: no index at all
    nodes, commits = 10_000, 5_000
    with Memory.open(path, durability="none") as mem:
        for f in initial_nodes(nodes):
            friend = f["friend"]
            mem.create(NODE_TYPE, name=f["name"], score=f["score"], count=f["count"],
                       tags=f["tags"], friend=None if friend is None else Ref(friend))
        mem.commit()
        changes = change_commits(nodes, commits)
        t0 = time.perf_counter()
        for c in changes:
            for node_id, field, value in c:
                mem[node_id][field] = Ref(value) if field == "friend" and value is not None \
                    else value
            mem.commit()
        loop = time.perf_counter() - t0
        t0 = time.perf_counter()
    close = time.perf_counter() - t0
    return {"per_commit_us": loop / commits * 1e6, "close_ms": close * 1e3}


def child(req: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(req)],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 nodes, 2,000 commits")
    ap.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each overhead loop")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        req = json.loads(a.child)
        fn = {"build": build, "query": query, "commit_loop": commit_loop}[req.pop("fn")]
        print(json.dumps(fn(**req)))
        return
    d = a.dir or tempfile.mkdtemp(prefix="myo-hist-")
    os.makedirs(d, exist_ok=True)
    nodes, commits = (100_000, 2_000) if a.quick else (1_000_000, 20_000)
    path = os.path.join(d, "w7h.myo")
    for p in (path, path + ".idx", path + ".lock"):
        if os.path.exists(p):
            os.unlink(p)
    print(f"building {nodes:,} nodes + {commits:,} small commits in {path} ...", flush=True)
    b = child({"fn": "build", "path": path, "nodes": nodes, "commits": commits})
    print(json.dumps(b), flush=True)
    q = child({"fn": "query", "path": path, "target": b["target"], "warm": 20})
    print("with the writer's index:", json.dumps(q, indent=1), flush=True)
    os.unlink(path + ".idx")
    q2 = child({"fn": "query", "path": path, "target": b["target"], "warm": 5})
    print("after deleting the sidecar (first log call rebuilds it):", json.dumps(q2, indent=1))
    print(f"rebuilt sidecar: {os.path.getsize(path + '.idx'):,} bytes", flush=True)
    res: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(a.runs):
        for indexed in (False, True):
            p = os.path.join(d, f"w1-{indexed}.myo")
            for x in (p, p + ".idx", p + ".lock"):
                if os.path.exists(x):
                    os.unlink(x)
            r = child({"fn": "commit_loop", "path": p, "indexed": indexed})
            res[indexed].append(r["per_commit_us"])
    base, idx = statistics.median(res[False]), statistics.median(res[True])
    print(f"W1 non-durable per commit: {base:.1f} us without the index, {idx:.1f} us with it "
          f"(+{(idx / base - 1) * 100:.0f}%); runs: {res}")


if __name__ == "__main__":
    main()
