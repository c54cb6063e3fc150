"""What a W1 small commit costs, part by part (issue #10: the W1 commit-rate target).

Builds the W1 state (``bench/workloads.py``: 10,000 nodes in one commit), then
times its 5,000 small commits (3 field sets each, durability "none") four
times in fresh files, each with other parts of the writer switched off:

* ``all``: the writer as it is;
* ``no index``: the history index is not fed (``staging.index_commit`` replaced
  by a no-op for the run; the file is the same);
* ``no layers``: version-2 checkpoints at a floor no run reaches, so no layer is
  written (``testing.open_memory(checkpoint_floor=...)``);
* ``neither``: both.

The differences are what the index and the layers add to a commit. Each mode
runs ``--rounds`` times, alternating, and the median is printed in µs per
commit. Figures are for comparison within one run only (a shared machine).

Usage: ``python bench/commit_parts.py [--rounds N] [--commits N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workloads as wl  # noqa: E402

import myosotis.engine.staging as staging  # noqa: E402
from myosotis import Ref  # noqa: E402
from myosotis.testing import open_memory  # noqa: E402

MODES = ("all", "no index", "no layers", "neither")


def _value(field: str, v: Any) -> Any:
    return Ref(v) if field == "friend" and v is not None else v


def run_mode(mode: str, nodes: list[dict[str, Any]], changes: list[list[wl.Change]],
             tmp: str) -> float:
    """µs per commit of ``changes`` on a fresh file holding ``nodes``, in ``mode``."""
    index_commit = staging.index_commit
    if mode in ("no index", "neither"):
        staging.index_commit = lambda *args: None  # type: ignore[assignment]
    try:
        floor = {"checkpoint_floor": 1 << 40} if mode in ("no layers", "neither") else {}
        path = os.path.join(tmp, f"{mode.replace(' ', '-')}-{time.monotonic_ns()}.myo")
        with open_memory(path, durability="none", **floor) as mem:
            for fields in nodes:
                mem.create(wl.NODE_TYPE, **{k: _value(k, v) for k, v in fields.items()})
            mem.commit()
            get, commit = mem.get, mem.commit
            t0 = time.perf_counter()
            for c in changes:
                for node_id, field, v in c:
                    get(node_id)[field] = v
                commit()
            took = time.perf_counter() - t0
        os.unlink(path)
        return took / len(changes) * 1e6
    finally:
        staging.index_commit = index_commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=wl.FULL.nodes)
    ap.add_argument("--commits", type=int, default=wl.FULL.commits)
    args = ap.parse_args()
    nodes = wl.initial_nodes(args.nodes)
    changes = [[(n, f, _value(f, v)) for n, f, v in c]
               for c in wl.change_commits(args.nodes, args.commits)]
    times: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="myosotis-commit-parts-") as tmp:
        for _ in range(args.rounds):
            for m in MODES:
                times[m].append(run_mode(m, nodes, changes, tmp))
    med = {m: statistics.median(ts) for m, ts in times.items()}
    print(f"W1 small commits ({args.commits:,} on {args.nodes:,} nodes), µs per commit, "
          f"median of {args.rounds}:")
    for m in MODES:
        spread = f"{min(times[m]):.1f} - {max(times[m]):.1f}"
        print(f"  {m:<10} {med[m]:7.1f}  ({spread})")
    print(f"  the history index adds {med['all'] - med['no index']:.1f} µs, the layers "
          f"{med['all'] - med['no layers']:.1f} µs")


if __name__ == "__main__":
    main()
