"""Engine-neutral workload data for the benchmark: sizes, seeds, nodes, changes.

Everything here is plain Python (no myosotis, no sqlite3 import), so a fresh
child process can generate the same data without loading either engine. A
reference to another node is an ``int`` id here; each engine converts it
(``myosotis.Ref`` for Myosotis, a plain id inside the JSON for SQLite).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

SEED = 20_240_601
FIELDS: tuple[str, ...] = ("name", "score", "count", "tags", "friend")
NODE_TYPE = "Item"

# One seed per random stream, so adding a stream never shifts another.
NODES_SEED = SEED
CHANGES_SEED = SEED + 1
SCRATCH_SEED = SEED + 2
QUERY_SEED = SEED + 3

Change = tuple[int, str, Any]  # (node id, field, new value); "friend" values are ids


@dataclass(frozen=True)
class Sizes:
    """How big each workload is; :data:`FULL` is the real run, :data:`QUICK` a smoke run."""

    nodes: int  # W1 nodes created in the first commit
    commits: int  # W1 small commits after it
    durable_commits: int  # W1 durable variant (may be lowered when fsync is slow)
    bulk_nodes: int  # W2 nodes
    bulk_commits: int  # W2 commits
    history_factor: int  # W3: the long file has this many times W1's commits
    open_runs: int  # W3 fresh processes per configuration (median)
    tt_queries: int  # W4 time-travel reads
    scan_runs: int  # W5 full scans (median)
    list_len: int  # W6 list length
    list_appends: int  # W6 appends, one commit each (median growth)
    time_list_len: int  # W6 timing: append+commit on a list this long vs on an empty list
    time_appends: int  # W6 timing: commits per list (median time)
    w7_nodes: int  # W7 nodes, built in w7_build_commits commits
    w7_build_commits: int
    w7_commits: int  # W7 small commits after the build
    w7_open_runs: int  # W7 fresh processes per open + read configuration (median)
    w7_tt_runs: int  # W7 fresh processes timing the first at(c) read (median)
    cli_runs: int  # W7 runs of each myo command (median)
    import_runs: int  # W8 fresh processes timing `import myosotis` (median)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


FULL = Sizes(nodes=10_000, commits=5_000, durable_commits=5_000, bulk_nodes=200_000,
             bulk_commits=20, history_factor=10, open_runs=7, tt_queries=1_000, scan_runs=5,
             list_len=10_000, list_appends=50, time_list_len=20_000, time_appends=200,
             w7_nodes=1_000_000, w7_build_commits=100, w7_commits=20_000, w7_open_runs=3,
             w7_tt_runs=5, cli_runs=3, import_runs=7)
QUICK = Sizes(nodes=1_000, commits=500, durable_commits=500, bulk_nodes=20_000,
              bulk_commits=20, history_factor=10, open_runs=5, tt_queries=100, scan_runs=3,
              list_len=10_000, list_appends=20, time_list_len=20_000, time_appends=50,
              w7_nodes=100_000, w7_build_commits=100, w7_commits=2_000, w7_open_runs=3,
              w7_tt_runs=5, cli_runs=3, import_runs=5)


def _tags(rng: random.Random) -> list[str]:
    return [f"tag{rng.randrange(100)}" for _ in range(3)]


def node_fields(rng: random.Random, node_id: int) -> dict[str, Any]:
    """The fields of node ``node_id`` at creation; ``friend`` is an earlier node's id."""
    return {
        "name": f"node-{node_id}-{rng.randrange(1_000_000)}",
        "score": rng.random() * 1000.0,
        "count": rng.randrange(1_000_000),
        "tags": _tags(rng),
        "friend": rng.randrange(1, node_id) if node_id > 1 else None,
    }


def initial_nodes(n: int, start_id: int = 1,
                  rng: random.Random | None = None) -> list[dict[str, Any]]:
    """Fields of nodes ``start_id .. start_id+n-1`` (ids are assigned in creation order)."""
    rng = rng or random.Random(NODES_SEED)
    return [node_fields(rng, start_id + i) for i in range(n)]


def node_batches(total: int, commits: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """W2: ``(first id, fields)`` for each of ``commits`` equal batches of ``total`` nodes."""
    rng = random.Random(NODES_SEED)
    per = total // commits
    first = 1
    for i in range(commits):
        n = per if i < commits - 1 else total - per * (commits - 1)
        yield first, initial_nodes(n, first, rng)
        first += n


def new_value(rng: random.Random, field: str, node_id: int) -> Any:
    """A fresh random value of the right kind for ``field`` of node ``node_id``."""
    if field == "name":
        return f"renamed-{rng.randrange(1_000_000)}"
    if field == "score":
        return rng.random() * 1000.0
    if field == "count":
        return rng.randrange(1_000_000)
    if field == "tags":
        return _tags(rng)
    return rng.randrange(1, node_id) if node_id > 1 else None


def change_commits(n_nodes: int, n_commits: int) -> list[list[Change]]:
    """W1: ``n_commits`` commits of 1-5 field changes on random nodes (fixed seed)."""
    rng = random.Random(CHANGES_SEED)
    out: list[list[Change]] = []
    for _ in range(n_commits):
        changes: list[Change] = []
        for _ in range(rng.randint(1, 5)):
            node_id = rng.randint(1, n_nodes)
            field = rng.choice(FIELDS)
            changes.append((node_id, field, new_value(rng, field, node_id)))
        out.append(changes)
    return out


def scratch_nodes(n_nodes: int, n_pairs: int) -> list[tuple[int, int]]:
    """W3 long history: ``(node id, value)`` pairs; each becomes two commits, one
    setting field ``scratch`` and one removing it, so the final state is unchanged."""
    rng = random.Random(SCRATCH_SEED)
    return [(rng.randint(1, n_nodes), rng.randrange(1_000_000)) for _ in range(n_pairs)]


def final_state(nodes: list[dict[str, Any]],
                commits: list[list[Change]]) -> dict[int, dict[str, Any]]:
    """The fields of every node after the creation commit and ``commits`` (reference model)."""
    state = {i + 1: dict(f) for i, f in enumerate(nodes)}
    for changes in commits:
        for node_id, field, value in changes:
            state[node_id][field] = value
    return state


def canonical(state: dict[int, dict[str, Any]]) -> str:
    """A canonical JSON text of a whole state, for comparing engines."""
    return json.dumps({str(k): state[k] for k in sorted(state)}, sort_keys=True,
                      separators=(",", ":"))
