"""The structural diff on a big state (issue #11): ``mem.diff(HEAD~1, HEAD)`` after
one field set among 200k nodes, and after one append to a 20k-element list, cold
(the first read of a past commit in a fresh process decodes the commits since
the newest checkpoint) and warm; and the size of ``myo diff HEAD~1``.

Usage: ``python bench/diff_bench.py [DIR]`` (default: a temporary directory;
the 200k-node file is built once there and reused).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from myosotis import Memory

NODES, BATCH, LIST = 200_000, 10_000, 20_000


def build(path: str) -> None:
    with Memory.open(path, durability="none") as mem:
        for c in range(NODES // BATCH):
            for i in range(BATCH):
                mem.create("Item", n=i, name=f"item-{c}-{i}", tags=["a", "b"])
            mem.commit(f"batch {c}")
        mem.create("Log", items=list(range(LIST)))
        mem.commit("log")
        mem.sync()


def best(f: Callable[[], Any], n: int = 5) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(path: str, what: str) -> None:
    with Memory.open(path, readonly=True) as mem:
        start = time.perf_counter()
        ops = list(mem.diff("HEAD~1", "HEAD"))
        cold = time.perf_counter() - start
        warm = best(lambda: list(mem.diff("HEAD~1", "HEAD")))
    myo = os.path.join(os.path.dirname(sys.executable), "myo")
    shown = subprocess.run([myo, "-f", path, "diff", "HEAD~1"], capture_output=True,
                           check=True).stdout
    print(f"{what}: {len(ops)} op(s); diff cold {cold * 1e3:.1f} ms, warm {warm * 1e3:.2f} ms; "
          f"`myo diff HEAD~1` prints {len(shown)} bytes")


def main() -> None:
    where = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="myo-diff-bench-")
    path = os.path.join(where, "big.myo")
    if not os.path.exists(path):
        build(path)
    with Memory.open(path, durability="none") as mem:
        mem.get(5).name = f"renamed at {mem.head.seq if mem.head else 0}"
        mem.commit("one field")
    measure(path, f"one field set among {NODES:,} nodes")
    with Memory.open(path, durability="none") as mem:
        mem.get(NODES + 1).items.append(-1)
        mem.commit("append")
    measure(path, f"one append to a {LIST:,}-element list")


if __name__ == "__main__":
    main()
