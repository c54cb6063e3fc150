"""Build the golden legacy v0.5 vectors of formatspec/vectors/legacy/ (LEGACY.md §7).

Each vector ``NAME`` is two files:

- ``NAME.myo``: a legacy file (LEGACY.md §3), a JSON document written here
  from the Python literal below, in the layout a v0.5 writer used (sorted
  keys, two-space indent);
- ``NAME.expect.json``: what reading it must give: the commits' seq and id
  (FORMAT.md §9.1), the final state hash, ``next_node_id``, the legacy
  checkpoints dropped, and the BLAKE3 of the binary file it migrates to
  (LEGACY.md §4), all computed by myosotis when the vector was made.

Vectors are never edited once committed: this script writes only vectors that
do not exist yet, and ``--check`` proves the current code still reads each one
to its expectation.

    python formatspec/make_legacy_vectors.py           # write the missing vectors
    python formatspec/make_legacy_vectors.py --check   # exit 1 on any difference
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Any

from blake3 import blake3

HERE = Path(__file__).resolve().parent / "vectors" / "legacy"
T0 = 1_600_000_000_000_000  # v0.5 stamped commits in microseconds too


def _f(x: float) -> dict[str, str]:
    return {"float": struct.pack(">d", x).hex()}


def _commit(seq: int, mutations: list[dict[str, Any]], label: str | None = None) -> dict[str, Any]:
    return {"seq": seq, "timestamp_us": T0 + seq * 1_000_000, "label": label,
            "mutations": mutations}


ALL_VALUES = {
    "null": {"null": None}, "t": {"bool": True}, "f": {"bool": False},
    "imin": {"int": -(1 << 63)}, "imax": {"int": (1 << 63) - 1}, "zero": {"int": 0},
    "neg0": _f(-0.0), "inf": _f(float("inf")), "ninf": _f(float("-inf")),
    "nan": {"float": "7ff8000000000001"}, "half": _f(0.5),
    "s": {"str": "héllo ✓ \u0000 end"}, "empty": {"str": ""},
    "l": {"list": [{"int": 1}, {"list": []}, {"map": {}}]},
    "m": {"map": {"a": {"int": 1}, "b": {"map": {"c": {"ref": 1}}}}}, "self": {"ref": 1},
}

VECTORS: dict[str, dict[str, Any]] = {
    # no commit at all: the empty history
    "empty": {"commits": [], "checkpoints": [], "next_node_id": 1},
    # two commits, no genesis state, labels and no label
    "minimal": {"commits": [
        _commit(1, [{"op": "create", "node": 1, "type": "Agent",
                     "fields": {"name": {"str": "Iris"}}}], "first"),
        _commit(2, [{"op": "set", "node": 1, "field": "goal", "value": {"str": "Explore"}}]),
    ], "checkpoints": [], "next_node_id": 2},
    # every value kind in one node, then every mutation kind
    "all_values": {"commits": [
        _commit(1, [{"op": "create", "node": 1, "type": "V", "fields": ALL_VALUES}], "values"),
        _commit(2, [
            {"op": "list-insert", "node": 1, "field": "l", "path": [], "index": 3,
             "value": {"int": 4}},
            {"op": "list-set", "node": 1, "field": "l", "path": [], "index": 0,
             "value": {"str": "x"}},
            {"op": "list-remove", "node": 1, "field": "l", "path": [], "index": 1},
            {"op": "map-set", "node": 1, "field": "m", "path": ["b"], "key": "d",
             "value": {"bool": False}},
            {"op": "map-delete", "node": 1, "field": "m", "path": [], "key": "a"},
            {"op": "unset", "node": 1, "field": "empty"},
            {"op": "create", "node": 2, "type": "Gone", "fields": {}},
            {"op": "delete", "node": 2},
        ], "edits"),
    ], "checkpoints": [], "next_node_id": 3},
    # a genesis state (the state before commit 1) with its hash, and checkpoints:
    # one that matches the replay and one that does not (dropped: a cache)
    "genesis_checkpoints": {
        "genesis_state": {"next_node_id": 3, "nodes": [
            {"id": 1, "type": "Root", "deleted": False, "fields": {"child": {"ref": 2}}},
            {"id": 2, "type": "Leaf", "deleted": True, "fields": {"n": {"int": 7}}},
        ]},
        "genesis_state_hash": "",  # filled in below
        "commits": [
            _commit(1, [{"op": "set", "node": 1, "field": "n", "value": {"int": 1}}], "one"),
            _commit(2, [{"op": "set", "node": 1, "field": "n", "value": {"int": 2}}], "two"),
            _commit(3, [{"op": "create", "node": 3, "type": "Leaf",
                         "fields": {"up": {"ref": 1}}}], "three"),
        ],
        "checkpoints": [{"seq": 2, "state_hash": ""}, {"seq": 3, "state_hash": "0" * 64}],
        "next_node_id": 4,
    },
}


def _read(doc: dict[str, Any]) -> tuple[bytes, Any]:
    from myosotis.engine.legacy import migrated_bytes  # the code under test
    return migrated_bytes(doc)


def _fill(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Hashes and ids a v0.5 writer wrote, computed by the reader: the genesis state
    hash, the matching checkpoint's hash, commit 1's id and commit 2's parent (all
    optional in LEGACY.md, and checked when present)."""
    if name != "genesis_checkpoints":
        return doc
    import tempfile

    from myosotis import Memory
    probe = dict(doc, checkpoints=[])
    probe.pop("genesis_state_hash")
    with tempfile.TemporaryDirectory() as d:
        p = f"{d}/v.myo"
        Path(p).write_text(json.dumps(probe))
        with Memory.open(p, readonly=True) as mem:
            doc["genesis_state_hash"] = mem.at(0).state_hash()
            doc["checkpoints"][0]["state_hash"] = mem.at(2).state_hash()
            ids = [c.id for c in mem.history()]
    doc["commits"][0]["id"] = ids[0]
    doc["commits"][1]["parent"] = ids[0]
    return doc


def expectation(text: str) -> dict[str, Any]:
    import tempfile

    from myosotis import Memory
    binary, summary = _read(json.loads(text))
    with tempfile.TemporaryDirectory() as d:
        p = f"{d}/v.myo"
        Path(p).write_text(text)
        with Memory.open(p, readonly=True) as mem:
            commits = [{"seq": c.seq, "id": c.id} for c in mem.history()]
            state = mem.state_hash()
            nxt = mem.info().next_node_id
    return {"commits": commits, "state_hash": state, "next_node_id": nxt,
            "dropped_checkpoints": list(summary.problems),
            "migrated_blake3": blake3(binary).hexdigest()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, write nothing")
    args = ap.parse_args(argv)
    HERE.mkdir(parents=True, exist_ok=True)
    bad = 0
    for name, doc in VECTORS.items():
        src, exp = HERE / f"{name}.myo", HERE / f"{name}.expect.json"
        if src.exists():
            want = json.loads(exp.read_text())
            got = expectation(src.read_text())
            if got != want:
                print(f"{name}: reads differently now:\n  want {want}\n  got  {got}")
                bad += 1
            continue
        if args.check:
            print(f"{name}: missing")
            bad += 1
            continue
        text = json.dumps(_fill(name, json.loads(json.dumps(doc))), indent=2,
                          sort_keys=True, ensure_ascii=False) + "\n"
        src.write_text(text)
        exp.write_text(json.dumps(expectation(text), indent=2, sort_keys=True) + "\n")
        print(f"wrote {src} and {exp.name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
