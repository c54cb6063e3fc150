"""Myosotis benchmark: each figure beside the same work done, in the same run,
by stdlib ``sqlite3`` and by a raw ``os.write`` (+ ``os.fsync``) floor.

Usage::

    python bench/run.py [--quick] [--only W1,W3] [--json out.json] [--profile]

Workloads (see bench/README.md): W1 small commits, W2 bulk ingest, W3 cold
open with short and 10x history, W4 time travel, W5 full scan, W6 bytes
written by one list append. ``--quick`` shrinks every workload about 10x (a
smoke run for CI). ``--profile`` adds cProfile hotspots (myosotis/ code only)
for the Myosotis phases. The exit status is 0 unless something crashed:
targets are reported (PASS/MISS), never asserted.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # so `import workloads` works however run.py is started
    sys.path.insert(0, HERE)

import sqlite_engine as sq  # noqa: E402
import workloads as wl  # noqa: E402

from myosotis import ListProxy, MapProxy, Memory, Node, Ref  # noqa: E402
from myosotis.format.helper import IMPLEMENTATION  # noqa: E402

CHILD = os.path.join(HERE, "child.py")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")
ROUNDS = 5  # W1: engines alternate in this many rounds of commits
# Estimated seconds for all durable W1 runs together (full, quick); over it the
# durable variant uses fewer commits (full: 1,000, quick: 100) for every engine.
DURABLE_BUDGET_S = (120.0, 10.0)

# ---------------------------------------------------------------------------
# formatting


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}/s"


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x >= 1 else f"{x * 1e3:.1f} ms"


def fmt_ms(x: float) -> str:
    return f"{x * 1e3:.2f} ms"


def fmt_us(x: float) -> str:
    return f"{x * 1e6:,.1f} µs"


def fmt_bytes(n: float) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n:,.0f} B"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def fmt_ratio(r: float | None, what: str) -> str:
    if r is None:
        return ""
    return f"{r:.2f}x {what}" if r >= 0.01 else f"{r:.2g}x {what}"


def join_ratios(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def p99(xs: Sequence[float]) -> float:
    s = sorted(xs)
    return s[max(0, -(-99 * len(s) // 100) - 1)]  # nearest rank


Row = tuple[str, str, str, str, str]


def print_table(title: str, rows: list[Row], notes: Sequence[str] = ()) -> None:
    header: Row = ("", "myosotis", "sqlite", "raw floor", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n== {title}")
    print("  ".join(h.ljust(w) if i in (0, 4) else h.rjust(w)
                    for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    for n in notes:
        print(f"  * {n}")
    sys.stdout.flush()


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# shared state


@dataclass
class W1Files:
    nodes: list[dict[str, Any]]
    changes: list[list[wl.Change]]
    myo_path: str
    sqlite_path: str
    myo: dict[str, Any]
    sqlite: dict[str, Any]


@dataclass
class Bench:
    sizes: wl.Sizes
    tmp: str
    profile: bool
    results: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, cProfile.Profile] = field(default_factory=dict)
    _w1: W1Files | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    @contextmanager
    def profiled(self, label: str) -> Iterator[None]:
        """cProfile the block when ``--profile`` is on (blocks with one label add up)."""
        if not self.profile:
            yield
            return
        prof = self.profiles.get(label)
        if prof is None:
            prof = self.profiles[label] = cProfile.Profile()
        prof.enable()
        try:
            yield
        finally:
            prof.disable()

    def profile_reports(self) -> list[tuple[str, str]]:
        """The myosotis/ hotspots of each profiled label, by own time."""
        out = []
        for label, prof in self.profiles.items():
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(
                r"myosotis[/\\]", 15)
            out.append((label, buf.getvalue()))
        return out

    def target(self, name: str, measured: float | None, op: str, limit: float, unit: str,
               detail: str = "") -> None:
        """Record a target: ``measured op limit`` (op one of >=, <=, <) passes."""
        checks = {">=": float.__ge__, "<=": float.__le__, "<": float.__lt__}
        ok = None if measured is None else bool(checks[op](float(measured), limit))
        self.targets.append({"target": name, "measured": measured, "op": op, "limit": limit,
                             "unit": unit, "pass": ok, "detail": detail})


# ---------------------------------------------------------------------------
# engines


def myo_value(field_name: str, value: Any) -> Any:
    """Engine-neutral value -> what Myosotis stores (a friend id becomes a Ref)."""
    if field_name == "friend" and value is not None:
        return Ref(value)
    return value


def myo_kwargs(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: myo_value(k, v) for k, v in f.items()} for f in nodes]


def myo_changes(changes: list[list[wl.Change]]) -> list[list[wl.Change]]:
    return [[(n, f, myo_value(f, v)) for n, f, v in c] for c in changes]


def plain(v: Any) -> Any:
    """A value read from Myosotis, in the engine-neutral form (references as ids)."""
    if isinstance(v, Node):
        return v.id
    if isinstance(v, ListProxy | list):
        return [plain(x) for x in v]
    if isinstance(v, MapProxy | dict):
        return {k: plain(x) for k, x in v.items()}
    return v


class MyoRun:
    """One Myosotis file being built: a timed creation commit, untimed scratch
    commits (W3), then timed change commits, possibly in several chunks."""

    def __init__(self, b: Bench, path: str, durability: str, label: str) -> None:
        self.b, self.path, self.label = b, path, label
        self.mem = Memory.open(path, durability=durability)  # type: ignore[arg-type]
        self.create_s = self.commits_s = 0.0
        self.commits = 0
        self.size_created = self.size_before = self.cps_before = -1

    def create(self, nodes: list[dict[str, Any]]) -> None:
        kwargs = myo_kwargs(nodes)
        create, mem = self.mem.create, self.mem
        with self.b.profiled(f"{self.label}: create {len(nodes):,} nodes + commit"):
            t0 = time.perf_counter()
            for kw in kwargs:
                create(wl.NODE_TYPE, **kw)
            mem.commit()
            self.create_s += time.perf_counter() - t0
        self.size_created = os.path.getsize(self.path)

    def scratch(self, pairs: Sequence[tuple[int, int]]) -> None:
        get, mem = self.mem.get, self.mem
        for node_id, value in pairs:
            n = get(node_id)
            n.scratch = value
            mem.commit()
            del n.scratch
            mem.commit()

    def run(self, cmts: list[list[wl.Change]]) -> None:
        """Apply and commit ``cmts`` (values already in Myosotis form), timed."""
        if self.size_before < 0:
            info = self.mem.info()
            self.size_before = info.data_end  # frames, not free space
            self.cps_before = info.checkpoints
        get, mem = self.mem.get, self.mem
        with self.b.profiled(f"{self.label}: change commits"):
            t0 = time.perf_counter()
            for c in cmts:
                for node_id, fname, value in c:
                    get(node_id)[fname] = value
                mem.commit()
            self.commits_s += time.perf_counter() - t0
        self.commits += len(cmts)

    def finish(self) -> dict[str, Any]:
        mem = self.mem
        try:
            size_end = os.path.getsize(self.path)  # free space (FORMAT.md §3) included
            info = mem.info()
            log_end = info.data_end
            head = mem.head
            cps = info.checkpoints
            return {"create_s": self.create_s, "commits_s": self.commits_s,
                    "commits": self.commits, "size_created": self.size_created,
                    "size_end": size_end, "free_space": size_end - log_end,
                    "bytes_per_commit": (log_end - self.size_before) / max(1, self.commits),
                    "checkpoints_during_commits": cps - self.cps_before, "checkpoints": cps,
                    "head_seq": head.seq if head else 0, "state_hash": mem.state_hash()}
        finally:
            mem.close()


class SqliteRun:
    """The same work on SQLite (see sqlite_engine.py)."""

    def __init__(self, path: str, synchronous: str) -> None:
        self.path = path
        self.con = sq.connect(path, synchronous)
        self.create_s = self.commits_s = 0.0
        self.commits = 0

    def create(self, nodes: list[dict[str, Any]]) -> None:
        t0 = time.perf_counter()
        sq.create_nodes(self.con, nodes)
        self.create_s += time.perf_counter() - t0

    def scratch(self, pairs: Sequence[tuple[int, int]]) -> None:
        for node_id, value in pairs:
            sq.apply_commit(self.con, [(node_id, "scratch", value)])
            sq.unset_field(self.con, node_id, "scratch")

    def run(self, changes: list[list[wl.Change]]) -> None:
        apply, con = sq.apply_commit, self.con
        t0 = time.perf_counter()
        for c in changes:
            apply(con, c)
        self.commits_s += time.perf_counter() - t0
        self.commits += len(changes)

    def finish(self) -> dict[str, Any]:
        state = sq.dump_state(self.con)
        size = sq.file_bytes(self.con, self.path)
        return {"create_s": self.create_s, "commits_s": self.commits_s,
                "commits": self.commits, "size_end": size,
                "content_sha256": hashlib.sha256(wl.canonical(state).encode()).hexdigest()}


class RawRun:
    """The floor: ``os.write`` of ``nbytes`` per commit to an O_APPEND file (+ ``sync``)."""

    def __init__(self, path: str, nbytes: int, sync: Callable[[int], None] | None) -> None:
        self.path, self.sync = path, sync
        self.buf = b"\x5a" * max(1, nbytes)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        self.seconds = 0.0
        self.commits = 0

    def run(self, commits: int) -> None:
        fd, buf, sync = self.fd, self.buf, self.sync
        t0 = time.perf_counter()
        for _ in range(commits):
            view = memoryview(buf)
            while view:
                view = view[os.write(fd, view):]
            if sync is not None:
                sync(fd)
        self.seconds += time.perf_counter() - t0
        self.commits += commits

    def finish(self) -> float:
        """Commits per second."""
        os.close(self.fd)
        os.unlink(self.path)
        return self.commits / self.seconds if self.seconds else float("inf")


def chunks(n: int, rounds: int) -> list[tuple[int, int]]:
    """``rounds`` contiguous ``[lo, hi)`` slices covering ``range(n)``."""
    bounds = [n * i // rounds for i in range(rounds + 1)]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


def myo_dump(path: str) -> dict[int, dict[str, Any]]:
    with Memory.open(path, readonly=True) as mem:
        return {n.id: plain(n.fields()) for n in mem.nodes()}


def run_child(req: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Run bench/child.py in a fresh interpreter; return its JSON and the wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, CHILD, json.dumps(req)], capture_output=True,
                          text=True, cwd=HERE)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {req} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


# ---------------------------------------------------------------------------
# W1


def w1_files(b: Bench) -> W1Files:
    """The W1 data and non-durable files (W3-W5 read them); built once.

    Myosotis and SQLite run in interleaved rounds, so load from other
    processes on the machine hits both alike.
    """
    if b._w1 is None:
        s = b.sizes
        progress(f"W1: generating {s.nodes:,} nodes and {s.commits:,} change commits")
        nodes = wl.initial_nodes(s.nodes)
        changes = wl.change_commits(s.nodes, s.commits)
        mchanges = myo_changes(changes)
        mp, sp = b.path("w1.myo"), b.path("w1.sqlite")
        progress("W1: myosotis durability=none and sqlite synchronous=OFF, interleaved")
        myo, sql = MyoRun(b, mp, "none", "W1 myosotis durability=none"), SqliteRun(sp, "OFF")
        myo.create(nodes)
        sql.create(nodes)
        for lo, hi in chunks(len(changes), ROUNDS):
            myo.run(mchanges[lo:hi])
            sql.run(changes[lo:hi])
        b._w1 = W1Files(nodes, changes, mp, sp, myo.finish(), sql.finish())
    return b._w1


def durable_commit_count(b: Bench, bytes_per_commit: int) -> tuple[int, float]:
    """How many durable commits to run: the brief's count unless fsync is too slow here."""
    probe = RawRun(b.path("probe.raw"), bytes_per_commit, os.fsync)
    probe.run(100)
    rate = probe.finish()
    n = b.sizes.durable_commits
    # three engines (+ the fdatasync floor); Myosotis and SQLite add CPU work per commit
    estimate = n * (4 / rate + 2 * 0.0005)
    if estimate > DURABLE_BUDGET_S[b.sizes is not wl.FULL]:
        n = min(n, 1_000 if b.sizes is wl.FULL else 100)
    return n, rate


def run_w1(b: Bench) -> None:
    s = b.sizes
    f = w1_files(b)
    myo, sql = f.myo, f.sqlite
    n = s.commits
    bpc = round(myo["bytes_per_commit"])
    raw = RawRun(b.path("w1.raw"), bpc, None)
    raw.run(n)
    rate_myo, rate_sql, rate_raw = n / myo["commits_s"], n / sql["commits_s"], raw.finish()

    # durable variant: all four in interleaved rounds (fsync speed drifts on shared disks)
    n_d, probe_rate = durable_commit_count(b, bpc)
    reduced = n_d < s.durable_commits
    changes_d = f.changes[:n_d]
    mchanges_d = myo_changes(changes_d)
    progress(f"W1: durable variant, {n_d:,} commits per engine, interleaved")
    fdatasync = getattr(os, "fdatasync", os.fsync)
    myo_r = MyoRun(b, b.path("w1d.myo"), "full", "W1 myosotis durability=full")
    sql_r = SqliteRun(b.path("w1d.sqlite"), "FULL")
    raw_f = RawRun(b.path("w1d.raw"), bpc, os.fsync)
    raw_d = RawRun(b.path("w1dd.raw"), bpc, fdatasync)
    myo_r.create(f.nodes)
    sql_r.create(f.nodes)
    for lo, hi in chunks(n_d, ROUNDS):
        myo_r.run(mchanges_d[lo:hi])
        sql_r.run(changes_d[lo:hi])
        raw_f.run(hi - lo)
        raw_d.run(hi - lo)
    myo_d, sql_d = myo_r.finish(), sql_r.finish()
    drate_myo, drate_sql = n_d / myo_d["commits_s"], n_d / sql_d["commits_s"]
    drate_raw, drate_rawd = raw_f.finish(), raw_d.finish()

    # the engines did the same work: compare with the reference model
    progress("W1: checking final states")
    ref = wl.canonical(wl.final_state(f.nodes, f.changes))
    same_myo = wl.canonical(myo_dump(f.myo_path)) == ref
    same_sql = hashlib.sha256(ref.encode()).hexdigest() == sql["content_sha256"]

    size_ratio = ratio(myo["size_end"], sql["size_end"])
    rows: list[Row] = [
        (f"create {s.nodes:,} nodes in 1 commit (s)", fmt_s(myo["create_s"]),
         fmt_s(sql["create_s"]), "-", fmt_ratio(ratio(myo["create_s"], sql["create_s"]),
                                                 "sqlite time")),
        (f"commits/s, no fsync ({n:,} commits)", fmt_rate(rate_myo), fmt_rate(rate_sql),
         fmt_rate(rate_raw), join_ratios(fmt_ratio(ratio(rate_myo, rate_sql), "sqlite"),
                                         fmt_ratio(ratio(rate_myo, rate_raw), "raw"))),
        (f"commits/s, durable ({n_d:,} commits)", fmt_rate(drate_myo), fmt_rate(drate_sql),
         fmt_rate(drate_raw), join_ratios(fmt_ratio(ratio(drate_myo, drate_sql), "sqlite"),
                                          fmt_ratio(ratio(drate_myo, drate_raw), "raw"))),
        ("  durable floor with fdatasync instead", "", "", fmt_rate(drate_rawd),
         fmt_ratio(ratio(drate_myo, drate_rawd), "raw fdatasync")),
        ("mean bytes appended per commit", fmt_int(myo["bytes_per_commit"]), "-",
         fmt_int(bpc), ""),
        ("  same, durable run", fmt_int(myo_d["bytes_per_commit"]), "-", fmt_int(bpc), ""),
        ("  checkpoints written meanwhile", str(myo["checkpoints_during_commits"]), "-", "-",
         ""),
        ("file size after W1", fmt_bytes(myo["size_end"]), fmt_bytes(sql["size_end"]), "-",
         fmt_ratio(size_ratio, "sqlite")),
    ]
    notes = [
        "myosotis: durability='none' / 'full'; sqlite: WAL, synchronous=OFF / FULL; "
        "raw: os.write of the mean Myosotis bytes per commit of the non-durable run "
        "(checkpoints included) to an O_APPEND file (+ os.fsync; Myosotis itself syncs "
        "with fdatasync, hence the extra floor row).",
        f"engines alternate in {ROUNDS} rounds of commits (durable: the raw floors too); "
        "rates are total commits / total time of each engine.",
        "rates: higher is better; ratio = myosotis / other.",
        f"sqlite size: db + wal after wal_checkpoint(TRUNCATE) and close "
        f"({fmt_int(sql['size_end'])} B); myosotis: {fmt_int(myo['size_end'])} B, "
        f"{myo['checkpoints']} checkpoint(s) in the file.",
        f"final state = reference model: myosotis {'yes' if same_myo else 'NO'}, "
        f"sqlite {'yes' if same_sql else 'NO'}.",
        f"fsync probe before the durable run: {probe_rate:,.0f} append+fsync/s.",
        f"durable myosotis file: {fmt_bytes(myo_d['size_end'])}, of which "
        f"{fmt_int(myo_d['free_space'])} B free space after the last frame (FORMAT.md §3: "
        "durable appends land in preallocated zeros, so their fdatasync changes no file "
        "size; the raw floor appends to a growing file).",
    ]
    if reduced:
        notes.append(f"durable variant REDUCED to {n_d:,} commits (of {s.durable_commits:,}) "
                     "for all three engines: fsync is slow on this machine.")
    print_table("W1 small commits", rows, notes)

    b.results["W1"] = {
        "commits": n, "durable_commits": n_d, "durable_reduced": reduced,
        "myosotis": {**myo, "commits_per_s": rate_myo},
        "sqlite": {**sql, "commits_per_s": rate_sql},
        "raw": {"commits_per_s": rate_raw, "bytes_per_commit": bpc},
        "durable": {"myosotis": {**myo_d, "commits_per_s": drate_myo},
                    "sqlite": {**sql_d, "commits_per_s": drate_sql},
                    "raw_fsync": {"commits_per_s": drate_raw, "bytes_per_commit": bpc},
                    "raw_fdatasync": {"commits_per_s": drate_rawd}},
        "state_matches_reference": {"myosotis": same_myo, "sqlite": same_sql},
        "size_ratio": size_ratio,
    }
    b.target("durable commit rate vs raw append+fsync floor", ratio(drate_myo, drate_raw), ">=",
             0.7, "x", f"{drate_myo:,.0f}/s vs {drate_raw:,.0f}/s ({n_d:,} commits)")
    b.target("non-durable commit rate vs SQLite synchronous=OFF", ratio(rate_myo, rate_sql),
             ">=", 2.0, "x", f"{rate_myo:,.0f}/s vs {rate_sql:,.0f}/s")
    b.target("W1 file size vs SQLite", size_ratio, "<=", 1.5, "x",
             f"{fmt_bytes(myo['size_end'])} vs {fmt_bytes(sql['size_end'])}")


# ---------------------------------------------------------------------------
# W2


def run_w2(b: Bench) -> None:
    s = b.sizes
    total, commits = s.bulk_nodes, s.bulk_commits
    res: dict[str, dict[str, Any]] = {}
    for engine in ("myosotis", "sqlite", "raw"):
        progress(f"W2: {engine} ingest of {total:,} nodes in {commits} commits (fresh process)")
        req: dict[str, Any] = {"mode": "ingest", "engine": engine, "total": total,
                               "commits": commits, "path": b.path(f"w2.{engine}")}
        if engine == "raw":
            req["bytes_per_commit"] = round(res["myosotis"]["file_bytes"] / commits)
        out, wall = run_child(req)
        out["process_wall_s"] = wall
        res[engine] = out
    m, q, r = res["myosotis"], res["sqlite"], res["raw"]

    def three(key: str, fmt: Callable[[float], str]) -> Row:
        return ("", fmt(m[key]), fmt(q[key]), fmt(r[key]),
                join_ratios(fmt_ratio(ratio(m[key], q[key]), "sqlite"),
                            fmt_ratio(ratio(m[key], r[key]), "raw")))

    rows: list[Row] = [
        ("ingest time (s)", *three("seconds", fmt_s)[1:]),
        ("nodes/s", fmt_rate(total / m["seconds"]), fmt_rate(total / q["seconds"]),
         "-", fmt_ratio(ratio(q["seconds"], m["seconds"]), "sqlite")),
        ("file bytes", *three("file_bytes", fmt_bytes)[1:]),
        ("peak RSS of the process", *three("maxrss_bytes", fmt_bytes)[1:]),
        ("process wall time", *three("process_wall_s", fmt_s)[1:]),
    ]
    notes = [
        "each engine in a fresh process; RSS = ru_maxrss at the end; the raw-floor process "
        "generates the same data (untimed) and appends+fsyncs the mean Myosotis bytes per "
        "commit, so its RSS is the interpreter + data baseline.",
        "myosotis durability='full' (with its automatic checkpoints: "
        f"{m['checkpoints']} written); sqlite WAL synchronous=FULL, executemany per commit, "
        "size after wal_checkpoint(TRUNCATE).",
        "time and bytes: lower is better; ratio = myosotis / other; data generation untimed.",
    ]
    print_table(f"W2 bulk ingest: {total:,} nodes in {commits} commits", rows, notes)
    b.results["W2"] = res


# ---------------------------------------------------------------------------
# W3


def run_w3(b: Bench) -> None:
    s = b.sizes
    f = w1_files(b)
    pairs = (s.history_factor - 1) * s.commits // 2
    lm, ls = b.path("w3long.myo"), b.path("w3long.sqlite")
    progress(f"W3: building the long-history files ({2 * pairs:,} scratch commits + "
             f"{s.commits:,})")
    scratch = wl.scratch_nodes(s.nodes, pairs)
    long_runs = (MyoRun(b, lm, "none", "W3 long build"), SqliteRun(ls, "OFF"))
    for run, chg in zip(long_runs, (myo_changes(f.changes), f.changes), strict=True):
        run.create(f.nodes)
        run.scratch(scratch)
        run.run(chg)
    myo_long, sql_long = long_runs[0].finish(), long_runs[1].finish()
    hash_short, hash_long = f.myo["state_hash"], myo_long["state_hash"]
    sha_short, sha_long = f.sqlite["content_sha256"], sql_long["content_sha256"]

    node_id = random.Random(wl.QUERY_SEED).randint(1, s.nodes)
    fname = "name"
    configs = [("myosotis", "short", f.myo_path), ("myosotis", "long", lm),
               ("sqlite", "short", f.sqlite_path), ("sqlite", "long", ls),
               ("noop", "-", "")]
    inproc: dict[tuple[str, str], list[float]] = {(e, h): [] for e, h, _ in configs}
    wall: dict[tuple[str, str], list[float]] = {(e, h): [] for e, h, _ in configs}
    values: dict[tuple[str, str], set[str]] = {(e, h): set() for e, h, _ in configs}
    progress(f"W3: {s.open_runs} fresh processes per configuration")
    for _ in range(s.open_runs):
        for engine, hist, path in configs:  # interleaved, so drift hits all alike
            out, w = run_child({"mode": "open_read", "engine": engine, "path": path,
                                "node": node_id, "field": fname})
            inproc[(engine, hist)].append(out["seconds"])
            wall[(engine, hist)].append(w)
            values[(engine, hist)].add(out["value"])
    med = {k: median(v) for k, v in inproc.items()}
    medw = {k: median(v) for k, v in wall.items()}
    long_short = ratio(med[("myosotis", "long")], med[("myosotis", "short")])
    sql_long_short = ratio(med[("sqlite", "long")], med[("sqlite", "short")])
    read_values = {v for k, vs in values.items() if k[0] != "noop" for v in vs}

    # in-process profile of the long open, for --profile
    if b.profile:
        with b.profiled("W3 open long-history file + read one field (in-process)"), \
                Memory.open(lm) as mem:
            mem[node_id][fname]

    def pair(hist: str, d: dict[tuple[str, str], float], fmt: Callable[[float], str],
             floor: str) -> Row:
        mv, sv = d[("myosotis", hist)], d[("sqlite", hist)]
        return ("", fmt(mv), fmt(sv), floor, fmt_ratio(ratio(mv, sv), "sqlite"))

    noop_wall = fmt_ms(medw[("noop", "-")])
    rows: list[Row] = [
        ("open + read 1 field, W1 history", *pair("short", med, fmt_ms, "-")[1:]),
        (f"open + read 1 field, {s.history_factor}x history",
         *pair("long", med, fmt_ms, "-")[1:]),
        ("  long / short", f"{long_short:.2f}x", f"{sql_long_short:.2f}x", "-", ""),
        ("whole process wall, W1 history", *pair("short", medw, fmt_ms, noop_wall)[1:]),
        (f"whole process wall, {s.history_factor}x history",
         *pair("long", medw, fmt_ms, noop_wall)[1:]),
        ("file size, W1 history", fmt_bytes(os.path.getsize(f.myo_path)),
         fmt_bytes(f.sqlite["size_end"]), "-", ""),
        (f"file size, {s.history_factor}x history", fmt_bytes(myo_long["size_end"]),
         fmt_bytes(sql_long["size_end"]), "-", ""),
        ("commits in the file (short / long)",
         f"{f.myo['head_seq']:,} / {myo_long['head_seq']:,}", "-", "-", ""),
        ("checkpoints in the file (short / long)",
         f"{f.myo['checkpoints']} / {myo_long['checkpoints']}", "-", "-", ""),
    ]
    notes = [
        f"median of {s.open_runs} fresh processes each, interleaved; in-process time runs "
        "from just before Memory.open / sqlite3.connect to after reading one field (node "
        f"{node_id}, {fname!r}); myosotis opens as the writer (Memory.open(path)).",
        "whole process wall includes interpreter start-up and imports; raw floor column = "
        "a child that only starts and exits. OS page cache is warm (files just written).",
        f"myosotis state hash short: {hash_short}",
        f"myosotis state hash long:  {hash_long}  "
        f"({'EQUAL' if hash_short == hash_long else 'DIFFERENT'})",
        f"sqlite content sha256 short/long: {sha_short[:16]}... / {sha_long[:16]}... "
        f"({'EQUAL' if sha_short == sha_long else 'DIFFERENT'})",
        f"value read: {', '.join(sorted(read_values))} "
        f"({'same in all' if len(read_values) == 1 else 'DIFFERENT'})",
    ]
    if myo_long["checkpoints"] == 0:
        notes.append(f"the long file has no checkpoint (it is smaller than the default "
                     f"checkpoint_floor of 1 MiB), so opening it replays all "
                     f"{myo_long['head_seq']:,} commits; --quick is not representative here.")
    print_table("W3 cold open in a fresh process + one field read", rows, notes)
    b.results["W3"] = {
        "node": node_id, "field": fname, "runs": s.open_runs,
        "inprocess_s": {f"{e}/{h}": v for (e, h), v in inproc.items()},
        "wall_s": {f"{e}/{h}": v for (e, h), v in wall.items()},
        "median_inprocess_s": {f"{e}/{h}": v for (e, h), v in med.items()},
        "median_wall_s": {f"{e}/{h}": v for (e, h), v in medw.items()},
        "long_over_short": long_short, "sqlite_long_over_short": sql_long_short,
        "state_hash_short": hash_short, "state_hash_long": hash_long,
        "myosotis_long": myo_long, "sqlite_long": sql_long,
    }
    b.target("W3 long-history open vs short", long_short, "<=", 1.3, "x",
             f"{fmt_ms(med[('myosotis', 'long')])} vs {fmt_ms(med[('myosotis', 'short')])}")


# ---------------------------------------------------------------------------
# W4


def run_w4(b: Bench) -> None:
    s = b.sizes
    f = w1_files(b)
    head = f.myo["head_seq"]
    rng = random.Random(wl.QUERY_SEED + 1)
    queries = [(rng.randint(1, head), rng.randint(1, s.nodes), rng.choice(wl.FIELDS))
               for _ in range(s.tt_queries)]
    # reference answers: (node, field) -> seqs and values; seq 1 creates, change i is seq i+2
    timeline: dict[tuple[int, str], tuple[list[int], list[Any]]] = {}
    for i, fields in enumerate(f.nodes, 1):
        for k, v in fields.items():
            timeline[(i, k)] = ([1], [v])
    for i, c in enumerate(f.changes):
        for node_id, k, v in c:
            seqs, vals = timeline[(node_id, k)]
            seqs.append(i + 2)
            vals.append(v)

    progress(f"W4: {s.tt_queries:,} time-travel reads")
    t0 = time.perf_counter()
    mem = Memory.open(f.myo_path)
    open_s = time.perf_counter() - t0
    times: list[float] = []
    got: list[Any] = []
    clock = time.perf_counter
    try:
        with b.profiled(f"W4 {s.tt_queries:,} x mem.at(seq)[node][field]"):
            for seq, node_id, k in queries:
                t0 = clock()
                v = mem.at(seq)[node_id][k]
                times.append(clock() - t0)
                got.append(v)
        answers = [plain(v) for v in got]
    finally:
        mem.close()
    wrong = 0
    for (seq, node_id, k), a in zip(queries, answers, strict=True):
        seqs, vals = timeline[(node_id, k)]
        if vals[bisect.bisect_right(seqs, seq) - 1] != a:
            wrong += 1
    rest = times[1:]
    rows: list[Row] = [
        ("first call (may build an index)", fmt_us(times[0]), "n/a", "-", ""),
        (f"median of the other {len(rest):,}", fmt_us(median(rest)), "n/a", "-", ""),
        ("p99", fmt_us(p99(rest)), "n/a", "-", ""),
        ("mean", fmt_us(statistics.fmean(rest)), "n/a", "-", ""),
        ("max", fmt_us(max(rest)), "n/a", "-", ""),
        ("calls over 1 ms", fmt_int(sum(t > 1e-3 for t in rest)), "n/a", "-", ""),
        ("Memory.open before the first call", fmt_ms(open_s), "n/a", "-", ""),
    ]
    notes = [
        f"mem.at(seq)[node][field] at a random past commit (1..{head:,}), random node and "
        "field, one fresh Memory on the W1 file.",
        "sqlite: no history to read, skipped.",
        f"answers checked against the reference model: {len(queries) - wrong:,}/"
        f"{len(queries):,} correct.",
    ]
    print_table("W4 time travel", rows, notes)
    b.results["W4"] = {"first_s": times[0], "median_s": median(rest), "p99_s": p99(rest),
                       "mean_s": statistics.fmean(rest), "max_s": max(rest), "open_s": open_s,
                       "wrong": wrong, "queries": len(queries)}
    b.target("W4 time-travel read median", median(rest) * 1e6, "<", 100.0, "µs",
             f"p99 {fmt_us(p99(rest))}, first {fmt_us(times[0])}")


# ---------------------------------------------------------------------------
# W5


def run_w5(b: Bench) -> None:
    s = b.sizes
    f = w1_files(b)
    progress(f"W5: {s.scan_runs} full scans per engine")
    myo_t: list[float] = []
    sql_t: list[float] = []
    counts: set[int] = set()
    for r in range(s.scan_runs):
        with Memory.open(f.myo_path, readonly=True) as mem:
            ctx = b.profiled("W5 full scan, first run") if r == 0 else _null()
            with ctx:
                t0 = time.perf_counter()
                n = 0
                for node in mem.nodes():
                    node.fields()
                    n += 1
                myo_t.append(time.perf_counter() - t0)
            counts.add(n)
        con = sqlite3.connect(f.sqlite_path)
        try:
            t0 = time.perf_counter()
            n = 0
            loads = json.loads
            for _id, _type, fields in con.execute(
                    "SELECT id, type, fields FROM nodes WHERE deleted = 0 ORDER BY id"):
                loads(fields)
                n += 1
            sql_t.append(time.perf_counter() - t0)
            counts.add(n)
        finally:
            con.close()
    mt, st = median(myo_t), median(sql_t)
    nodes = s.nodes
    rows: list[Row] = [
        ("nodes/s (median)", fmt_rate(nodes / mt), fmt_rate(nodes / st), "-",
         fmt_ratio(ratio(st, mt), "sqlite")),
        ("scan time (median)", fmt_ms(mt), fmt_ms(st), "-", fmt_ratio(ratio(mt, st), "sqlite")),
        ("scan time (first run)", fmt_ms(myo_t[0]), fmt_ms(sql_t[0]), "-", ""),
    ]
    notes = [
        "myosotis: for n in mem.nodes(): n.fields() on a freshly opened W1 file (open "
        "untimed); sqlite: SELECT all rows + json.loads each, fresh connection.",
        f"median of {s.scan_runs} runs; nodes/s higher is better; rows seen per run: "
        f"{sorted(counts)}.",
    ]
    print_table(f"W5 read all fields of all {nodes:,} nodes", rows, notes)
    b.results["W5"] = {"myosotis_s": myo_t, "sqlite_s": sql_t,
                       "myosotis_nodes_per_s": nodes / mt, "sqlite_nodes_per_s": nodes / st}


@contextmanager
def _null() -> Iterator[None]:
    yield


# ---------------------------------------------------------------------------
# W6


def run_w6(b: Bench) -> None:
    s = b.sizes
    length, k = s.list_len, s.list_appends
    progress(f"W6: {k} appends to a {length:,}-element list")
    mp, sp = b.path("w6.myo"), b.path("w6.sqlite")
    myo_growth: list[int] = []
    with Memory.open(mp, durability="none") as mem:
        node = mem.create(wl.NODE_TYPE, items=list(range(length)))
        mem.commit()
        myo_first = os.path.getsize(mp)
        size = myo_first
        for i in range(k):
            node.items.append(length + i)
            mem.commit()
            new = os.path.getsize(mp)
            myo_growth.append(new - size)
            size = new
        myo_ok = len(node.items) == length + k and node.items[-1] == length + k - 1

    def sql_size() -> int:
        return sum(os.path.getsize(p) for p in (sp, sp + "-wal") if os.path.exists(p))

    sql_growth: list[int] = []
    con = sq.connect(sp, "OFF")
    try:
        sq.create_nodes(con, [{"items": list(range(length))}])
        size = sql_size()
        for i in range(k):
            con.execute("BEGIN")
            fields = json.loads(con.execute("SELECT fields FROM nodes WHERE id = 1")
                                .fetchone()[0])
            fields["items"].append(length + i)
            con.execute("UPDATE nodes SET fields = ? WHERE id = 1",
                        (json.dumps(fields, separators=sq.JSON_SEP),))
            con.execute("COMMIT")
            new = sql_size()
            sql_growth.append(new - size)
            size = new
    finally:
        con.close()
    mm, sm = median(myo_growth), median(sql_growth)
    rows: list[Row] = [
        ("bytes written per append commit (median)", fmt_int(mm), fmt_int(sm), "-",
         fmt_ratio(ratio(mm, sm), "sqlite")),
        ("  min / max", f"{min(myo_growth)} / {max(myo_growth)}",
         f"{min(sql_growth)} / {max(sql_growth)}", "-", ""),
        ("file size after creating the list", fmt_bytes(myo_first), "-", "-", ""),
    ]
    notes = [
        f"{k} commits, each appending one int to a {length:,}-element list (node.items."
        "append(x); commit), growth of the file per commit; sqlite: read JSON, append, "
        "write back, growth of db + wal (WAL frames are whole pages).",
        f"myosotis list content after the appends correct: {'yes' if myo_ok else 'NO'}.",
    ]
    print_table("W6 one append to a 10,000-element list", rows, notes)
    b.results["W6"] = {"myosotis_growth": myo_growth, "sqlite_growth": sql_growth,
                       "myosotis_median": mm, "sqlite_median": sm}
    b.target("bytes written by one list append", mm, "<", 100.0, "B",
             f"min {min(myo_growth)}, max {max(myo_growth)}")


# ---------------------------------------------------------------------------
# main


def print_summary(b: Bench) -> None:
    print("\n== Targets")
    for t in b.targets:
        m = t["measured"]
        status = "n/a " if t["pass"] is None else ("PASS" if t["pass"] else "MISS")
        op = t["op"]
        shown = "-" if m is None else (f"{m:.2f}{t['unit']}" if t["unit"] == "x"
                                       else f"{m:,.1f} {t['unit']}")
        limit = f"{t['limit']:g}{t['unit']}" if t["unit"] == "x" else \
            f"{t['limit']:g} {t['unit']}"
        print(f"  {status}  {t['target']}: {shown} (target {op} {limit}; {t['detail']})")


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover
        return "load average unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def environment() -> dict[str, Any]:
    return {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version,
            "myosotis_helper": IMPLEMENTATION, "platform": platform.platform(),
            "cpus": os.cpu_count(), "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shrink every workload ~10x")
    ap.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3")
    ap.add_argument("--json", dest="json_out", default="", help="also write results here")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the Myosotis phases; print myosotis/ hotspots")
    ap.add_argument("--tmpdir", default="/tmp", help="where the temporary directory goes")
    args = ap.parse_args(argv)
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    sizes = wl.QUICK if args.quick else wl.FULL
    tmp = tempfile.mkdtemp(prefix="myosotis-bench-", dir=args.tmpdir)
    b = Bench(sizes, tmp, args.profile)
    env = environment()
    started = time.perf_counter()
    print(f"Myosotis benchmark ({'quick' if args.quick else 'full'}), seed {wl.SEED}")
    print("  " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"  {load_average()} (other processes share the CPUs and the disk)")
    print(f"  temp dir {tmp}; workloads {','.join(only)}")
    if args.profile:
        print("  PROFILING ON: Myosotis timings below include cProfile overhead; "
              "do not compare them")
    runners = {"W1": run_w1, "W2": run_w2, "W3": run_w3, "W4": run_w4, "W5": run_w5,
               "W6": run_w6}
    try:
        for w in WORKLOADS:
            if w in only:
                runners[w](b)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print_summary(b)
    for label, text in b.profile_reports():
        print(f"\n== Profile: {label} (top myosotis/ functions by own time)")
        print("\n".join(line for line in text.splitlines()
                        if line.strip() and not line.startswith(("   Ordered", "   List"))))
    print(f"\nTotal benchmark time {elapsed:.1f} s; {load_average()}")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"environment": env, "quick": args.quick, "sizes": sizes.as_dict(),
                       "workloads": only, "elapsed_s": elapsed, "results": b.results,
                       "targets": b.targets}, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
