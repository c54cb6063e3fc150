"""Micro-benchmark of the format codecs (issue #10, the codec part of W1, W2, W4, W5).

Encodes and decodes W1-shaped node records (``bench/workloads.py``: name, score,
count, tags, friend), the mutations of W1's small commits and a W2-sized batch
(one W2 commit: 10,000 new nodes as CREATE mutations, then their image), with
the format layer only (no file, no engine). Each figure is the median of
``--repeat`` timeit runs, in microseconds per item, so two checkouts can be
compared line by line. To measure another checkout's package with this script,
run it from outside the checkout with ``python -S`` and ``PYTHONPATH`` naming
that checkout and the venv's site-packages (``-S`` skips the editable install's
path hook).

Usage: ``python bench/codec_bench.py [--repeat N] [--nodes N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workloads  # noqa: E402

from myosotis.format.image import StateImage, encode_image, encode_node_record  # noqa: E402
from myosotis.format.mutations import Create, Mutation, Set  # noqa: E402
from myosotis.format.records import (  # noqa: E402
    decode_commit_header,
    encode_commit,
    iter_mutations,
)
from myosotis.format.values import Ref, get_value, put_value  # noqa: E402


def _myo_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A workload node's fields as Myosotis stores them (``friend`` a Ref)."""
    out = dict(fields)
    if out["friend"] is not None:
        out["friend"] = Ref(out["friend"])
    return out


def _commit(muts: list[Mutation]) -> bytes:
    buf = bytearray()
    for m in muts:
        m.put(buf)
    return encode_commit(1, 0, bytes(32), 1 << 20, "", len(muts), buf)


def _decode_commit(payload: bytes) -> int:
    return sum(1 for _ in iter_mutations(payload, decode_commit_header(payload).body))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="timeit runs per figure (median)")
    ap.add_argument("--nodes", type=int, default=10_000, help="nodes per batch (W2 commit)")
    args = ap.parse_args()

    n = args.nodes
    nodes = [_myo_fields(f) for f in workloads.initial_nodes(n)]
    records = [encode_node_record(workloads.NODE_TYPE, f, False) for f in nodes]
    image = encode_image(n + 1, enumerate(records, 1))
    img = StateImage(image)
    changes = workloads.change_commits(n, 2_000)
    w1_commits = [[Set(node, field, Ref(v) if field == "friend" and v is not None else v)
                   for node, field, v in c] for c in changes]
    w1_payloads = [_commit(c) for c in w1_commits]
    w1_muts = sum(len(c) for c in w1_commits)
    creates: list[Mutation] = [Create(i, workloads.NODE_TYPE, f) for i, f in enumerate(nodes, 1)]
    w2_payload = _commit(creates)
    values = [f["tags"] for f in nodes] + [f["name"] for f in nodes]
    value_bytes = bytearray()
    for v in values:
        put_value(value_bytes, v)
    vb = bytes(value_bytes)

    def decode_values() -> None:
        p, end = 0, len(vb)
        while p < end:
            _, p = get_value(vb, p, end)

    def encode_values() -> None:
        out = bytearray()
        for v in values:
            put_value(out, v)

    def scan() -> None:
        rec = img.record
        for i in range(n):
            rec(i)

    cases: list[tuple[str, int, Callable[[], Any]]] = [
        ("node record encode (W1 shape)", n,
         lambda: [encode_node_record(workloads.NODE_TYPE, f, False) for f in nodes]),
        ("node record decode, StateImage.record (W5)", n, scan),
        ("image encode of a W2 batch (records given)", n,
         lambda: encode_image(n + 1, enumerate(records, 1))),
        ("W1 commit encode (SET mutations), per mutation", w1_muts,
         lambda: [_commit(c) for c in w1_commits]),
        ("W1 commit decode (SET mutations), per mutation", w1_muts,
         lambda: [_decode_commit(p) for p in w1_payloads]),
        ("W2 commit encode (CREATE), per node", n, lambda: _commit(creates)),
        ("W2 commit decode (CREATE), per node", n, lambda: _decode_commit(w2_payload)),
        ("values encode (tags lists, names), per value", len(values), encode_values),
        ("values decode (tags lists, names), per value", len(values), decode_values),
    ]
    print(f"codec micro-benchmark: {n:,} W1-shaped nodes, median of {args.repeat} runs "
          f"(python {sys.version.split()[0]})")
    for name, count, fn in cases:
        runs = timeit.repeat(fn, number=1, repeat=args.repeat)
        print(f"  {name:<52} {statistics.median(runs) / count * 1e6:8.3f} us")


if __name__ == "__main__":
    main()
