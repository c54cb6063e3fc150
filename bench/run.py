"""Myosotis benchmark: each figure beside the same work done, in the same run,
by stdlib ``sqlite3`` and by a raw ``os.write`` (+ ``os.fsync``) floor.

Usage::

    python bench/run.py [--quick] [--only W1,W3] [--json out.json] [--profile]

Workloads (see bench/README.md): W1 small commits, W2 bulk ingest, W3 cold
open with short and 10x history, W4 time travel (beside a SQLite history
table), W5 full scan, W6 list append (bytes, and time on a long vs an empty
list), W7 scale (1M nodes, 20,000 small commits: build, size, cold open,
memory, time travel, CLI), W8 ``import myosotis``. ``--quick`` shrinks every
workload about 10x (a smoke run for CI). ``--profile`` adds cProfile hotspots
(myosotis/ code only) for the Myosotis phases. The exit status is 0 unless
something crashed: targets are reported (PASS/MISS), never asserted.
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
import re
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
from child import wchar  # noqa: E402

from myosotis import ListProxy, MapProxy, Memory, Node, Ref  # noqa: E402
from myosotis.format.helper import IMPLEMENTATION  # noqa: E402

CHILD = os.path.join(HERE, "child.py")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")
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


def fmt_t(x: float) -> str:
    """Seconds from 1 s up, else milliseconds with two decimals."""
    return f"{x:,.3f} s" if x >= 1 else fmt_ms(x)


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


def fmt_mib(n: float | None) -> str:
    return "-" if n is None else f"{n / (1 << 20):.1f} MiB"


def fmt_wa(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float], fmt: Callable[[float], str]) -> str:
    """``min - max`` of ``xs``, for the notes beside a median."""
    return f"{fmt(min(xs))} - {fmt(max(xs))}"


def pct(xs: Sequence[float], q: int) -> float:
    s = sorted(xs)
    return s[max(0, -(-q * len(s) // 100) - 1)]  # nearest rank


def p99(xs: Sequence[float]) -> float:
    return pct(xs, 99)


Row = tuple[str, str, str, str, str]


def print_table(title: str, rows: list[Row], notes: Sequence[str] = (),
                header: Row = ("", "myosotis", "sqlite", "raw floor", "ratio")) -> None:
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
    sqlite_hist_path: str  # nodes + the history table (W4's peer)
    myo: dict[str, Any]
    sqlite: dict[str, Any]
    sqlite_hist: dict[str, Any]


@dataclass
class Bench:
    sizes: wl.Sizes
    tmp: str
    profile: bool
    results: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, cProfile.Profile] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # of fresh processes (child_env)
    child_profiles: list[tuple[str, str]] = field(default_factory=list)
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
        return out + self.child_profiles

    def target(self, name: str, measured: float | None, op: str, limit: float, unit: str,
               detail: str = "", group: str = "earlier") -> None:
        """Record a target: ``measured op limit`` (op one of >=, <=, <) passes.
        ``group``: "earlier" (the targets of the issues before #10) or "#10"."""
        self.targets.append(make_target(name, measured, op, limit, unit, detail, group))


def make_target(name: str, measured: float | None, op: str, limit: float, unit: str,
                detail: str = "", group: str = "earlier") -> dict[str, Any]:
    checks = {">=": float.__ge__, "<=": float.__le__, "<": float.__lt__}
    ok = None if measured is None else bool(checks[op](float(measured), limit))
    return {"target": name, "measured": measured, "op": op, "limit": limit, "unit": unit,
            "pass": ok, "detail": detail, "group": group}


class WriteMeter:
    """Bytes this process passes to write system calls inside ``with meter:``
    blocks (``wchar`` of /proc/self/io: pwrite included, mmap stores not);
    ``total`` is None where there is no /proc."""

    def __init__(self) -> None:
        self.total: int | None = 0 if wchar() is not None else None
        self._w0: int | None = None

    def __enter__(self) -> WriteMeter:
        self._w0 = wchar()
        return self

    def __exit__(self, *exc: object) -> None:
        w1 = wchar()
        if self.total is not None and self._w0 is not None and w1 is not None:
            self.total += w1 - self._w0


def write_amp(written: int | None, commit_bytes: int | None) -> float | None:
    """Write amplification: bytes written / bytes of commit frames."""
    return None if written is None or not commit_bytes else written / commit_bytes


def space_dict(mem: Memory) -> dict[str, Any]:
    """``mem.space()`` as plain JSON (frames and bytes by record kind), as child.py does."""
    sp = mem.space()
    return {"header": sp.header, "kinds": {k: list(v) for k, v in sp.kinds.items()},
            "free": sp.free, "torn_tail": sp.torn_tail}


def kind_bytes(space: dict[str, Any] | None, kind: str) -> int | None:
    return None if space is None else space["kinds"].get(kind, [0, 0])[1]


def frame_bytes(space: dict[str, Any]) -> int:
    """Header + every frame: the bytes of the file up to its last frame."""
    return space["header"] + sum(b for _n, b in space["kinds"].values())


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
        self.written = WriteMeter()  # around every call into Myosotis
        with self.written:
            self.mem = Memory.open(path, durability=durability)  # type: ignore[arg-type]
        self.create_s = self.commits_s = 0.0
        self.commits = 0
        self.rounds: list[float] = []  # seconds of each run() call
        self.size_created = self.size_before = self.cps_before = -1

    def create(self, nodes: list[dict[str, Any]]) -> None:
        kwargs = myo_kwargs(nodes)
        create, mem = self.mem.create, self.mem
        with self.b.profiled(f"{self.label}: create {len(nodes):,} nodes + commit"), \
                self.written:
            t0 = time.perf_counter()
            for kw in kwargs:
                create(wl.NODE_TYPE, **kw)
            mem.commit()
            self.create_s += time.perf_counter() - t0
        self.size_created = os.path.getsize(self.path)

    def scratch(self, pairs: Sequence[tuple[int, int]]) -> None:
        get, mem = self.mem.get, self.mem
        with self.written:
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
        with self.b.profiled(f"{self.label}: change commits"), self.written:
            t0 = time.perf_counter()
            for c in cmts:
                for node_id, fname, value in c:
                    get(node_id)[fname] = value
                mem.commit()
            took = time.perf_counter() - t0
        self.commits_s += took
        self.rounds.append(took)
        self.commits += len(cmts)

    def finish(self) -> dict[str, Any]:
        """Close the memory; its figures (write amplification: see :func:`write_amp`)."""
        mem = self.mem
        try:
            size_end = os.path.getsize(self.path)  # free space (FORMAT.md §3) included
            info = mem.info()
            log_end = info.data_end
            head = mem.head
            cps = info.checkpoints
            space = space_dict(mem)
            out = {"create_s": self.create_s, "commits_s": self.commits_s,
                   "commits": self.commits, "round_s": self.rounds,
                   "size_created": self.size_created,
                   "size_end": size_end, "free_space": size_end - log_end,
                   "bytes_per_commit": (log_end - self.size_before) / max(1, self.commits),
                   "checkpoints_during_commits": cps - self.cps_before, "checkpoints": cps,
                   "head_seq": head.seq if head else 0, "state_hash": mem.state_hash(),
                   "space": space}
        finally:
            with self.written:
                mem.close()
        commit_bytes = kind_bytes(space, "commit")
        out["wchar"] = self.written.total
        out["write_amp"] = write_amp(self.written.total, commit_bytes)
        out["write_amp_file"] = write_amp(frame_bytes(space), commit_bytes)
        return out


class SqliteRun:
    """The same work on SQLite (see sqlite_engine.py)."""

    def __init__(self, path: str, synchronous: str, history: bool = False) -> None:
        """``history``: also fill the history table (one row per field change, in the
        same transactions), numbering commits as Myosotis does."""
        self.path, self.history = path, history
        self.written = WriteMeter()
        with self.written:
            self.con = sq.connect(path, synchronous, history)
        self.create_s = self.commits_s = 0.0
        self.commits = 0
        self.seq = 0  # commits made so far
        self.rounds: list[float] = []

    def create(self, nodes: list[dict[str, Any]]) -> None:
        self.seq += 1
        with self.written:
            t0 = time.perf_counter()
            sq.create_nodes(self.con, nodes, 1, self.seq if self.history else None)
            self.create_s += time.perf_counter() - t0

    def scratch(self, pairs: Sequence[tuple[int, int]]) -> None:
        for node_id, value in pairs:
            sq.apply_commit(self.con, [(node_id, "scratch", value)])
            sq.unset_field(self.con, node_id, "scratch")

    def run(self, changes: list[list[wl.Change]]) -> None:
        apply, con, seq = sq.apply_commit, self.con, self.seq
        with self.written:
            t0 = time.perf_counter()
            if self.history:
                for i, c in enumerate(changes, seq + 1):
                    apply(con, c, i)
            else:
                for c in changes:
                    apply(con, c)
            took = time.perf_counter() - t0
        self.commits_s += took
        self.rounds.append(took)
        self.commits += len(changes)
        self.seq += len(changes)

    def finish(self) -> dict[str, Any]:
        state = sq.dump_state(self.con)
        with self.written:
            size = sq.file_bytes(self.con, self.path)
        return {"create_s": self.create_s, "commits_s": self.commits_s,
                "commits": self.commits, "round_s": self.rounds, "size_end": size,
                "wchar": self.written.total,
                "content_sha256": hashlib.sha256(wl.canonical(state).encode()).hexdigest()}


class RawRun:
    """The floor: ``os.write`` of ``nbytes`` per commit to an O_APPEND file (+ ``sync``)."""

    def __init__(self, path: str, nbytes: int, sync: Callable[[int], None] | None) -> None:
        self.path, self.sync = path, sync
        self.buf = b"\x5a" * max(1, nbytes)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        self.seconds = 0.0
        self.commits = 0
        self.rounds: list[float] = []  # seconds of each run() call

    def run(self, commits: int) -> None:
        fd, buf, sync = self.fd, self.buf, self.sync
        t0 = time.perf_counter()
        for _ in range(commits):
            view = memoryview(buf)
            while view:
                view = view[os.write(fd, view):]
            if sync is not None:
                sync(fd)
        took = time.perf_counter() - t0
        self.seconds += took
        self.rounds.append(took)
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


def child_env(tmp: str) -> dict[str, str]:
    """The environment of every fresh process: bytecode is cached (a user's normal
    set-up), in a tree under the temporary directory so the checkout is not
    touched; ``PYTHONDONTWRITEBYTECODE`` is dropped."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    return env


def run_child(b: Bench, req: dict[str, Any],
              profile_label: str | None = None) -> tuple[dict[str, Any], float]:
    """Run bench/child.py in a fresh interpreter; return its JSON and the wall time.
    With ``--profile`` and a ``profile_label``, the child profiles its work (its
    figures then include cProfile overhead) and its hotspots are kept."""
    if b.profile and profile_label:
        req = {**req, "profile": True}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, CHILD, json.dumps(req)], capture_output=True,
                          text=True, cwd=HERE, env=b.env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {req} failed ({proc.returncode}):\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "profile" in out and profile_label:
        b.child_profiles.append((f"{profile_label} (fresh process)", out.pop("profile")))
    return out, wall


def run_cmd(b: Bench, argv: list[str]) -> dict[str, Any]:
    """Run a command from a small launcher process (child.py, mode "command"), output
    discarded: its ``wall_s``, ``maxrss_bytes`` and ``launcher_vmhwm_bytes``
    (see child.run_command)."""
    out, _wall = run_child(b, {"mode": "command", "argv": argv, "cwd": b.tmp})
    return out


def peak_rss(out: dict[str, Any]) -> int:
    """A child's peak RSS: VmHWM where there is /proc (ru_maxrss of a child on Linux
    starts from its parent's RSS at spawn), else ru_maxrss."""
    v = out.get("vmhwm_bytes")
    return v if v is not None else out["maxrss_bytes"]


def warm_bytecode(b: Bench) -> None:
    """Fill the bytecode cache of the fresh processes (see :func:`child_env`): compile
    the myosotis package, then run each kind of child once on a tiny file."""
    import myosotis

    progress("warming the bytecode cache of the fresh processes")
    pkg = os.path.dirname(os.path.abspath(myosotis.__file__))
    subprocess.run([sys.executable, "-m", "compileall", "-q", pkg], check=True, env=b.env,
                   stdout=subprocess.DEVNULL)
    path = b.path("warm.myo")
    with Memory.open(path, durability="none") as mem:
        mem.create(wl.NODE_TYPE, name="warm", friend=None)
        mem.commit()
    sql = b.path("warm.sqlite")
    con = sq.connect(sql, "OFF", history=True)
    sq.create_nodes(con, [{"name": "warm"}], 1, 1)
    con.close()
    for engine, p in (("myosotis", path), ("sqlite", sql)):
        run_child(b, {"mode": "open_read", "engine": engine, "path": p, "node": 1,
                      "field": "name"})
        run_child(b, {"mode": "at_read", "engine": engine, "path": p,
                      "queries": [[1, 1, "name"]]})
    myo = myo_cli()
    for argv in ([myo, "--version"], [myo, "show", "1", "-f", path],
                 [myo, "history", "-n", "10", "-f", path]):
        run_cmd(b, argv)
    for p in (path, sql):
        for extra in ("", "-wal", "-shm", ".lock"):
            if os.path.exists(p + extra):
                os.unlink(p + extra)


def myo_cli() -> str:
    """The ``myo`` script of this interpreter's environment."""
    return os.path.join(os.path.dirname(sys.executable), "myo")


# ---------------------------------------------------------------------------
# W1


def w1_files(b: Bench) -> W1Files:
    """The W1 data and non-durable files (W3-W5 read them); built once.

    Myosotis and SQLite run in interleaved rounds, so load from other
    processes on the machine hits both alike. A third engine, SQLite with the
    history table, does the same commits in the same rounds (W4 reads it).
    """
    if b._w1 is None:
        s = b.sizes
        progress(f"W1: generating {s.nodes:,} nodes and {s.commits:,} change commits")
        nodes = wl.initial_nodes(s.nodes)
        changes = wl.change_commits(s.nodes, s.commits)
        mchanges = myo_changes(changes)
        mp, sp, hp = b.path("w1.myo"), b.path("w1.sqlite"), b.path("w1hist.sqlite")
        progress("W1: myosotis durability=none, sqlite synchronous=OFF and sqlite + history "
                 "table, interleaved")
        myo, sql = MyoRun(b, mp, "none", "W1 myosotis durability=none"), SqliteRun(sp, "OFF")
        hist = SqliteRun(hp, "OFF", history=True)
        myo.create(nodes)
        sql.create(nodes)
        hist.create(nodes)
        for lo, hi in chunks(len(changes), ROUNDS):
            myo.run(mchanges[lo:hi])
            sql.run(changes[lo:hi])
            hist.run(changes[lo:hi])
        b._w1 = W1Files(nodes, changes, mp, sp, hp, myo.finish(), sql.finish(), hist.finish())
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
    myo, sql, hist = f.myo, f.sqlite, f.sqlite_hist
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
    same_hist = hist["content_sha256"] == sql["content_sha256"]
    # #10: the median over the rounds of the per-round ratio (engines alternate per round)
    round_vs_sql = [q / m for m, q in zip(myo["round_s"], sql["round_s"], strict=True)]
    round_vs_fdatasync = [r / m for m, r in zip(myo_d["round_s"], raw_d.rounds, strict=True)]
    rate_hist = n / hist["commits_s"]
    rows: list[Row] = [
        (f"create {s.nodes:,} nodes in 1 commit (s)", fmt_s(myo["create_s"]),
         fmt_s(sql["create_s"]), "-", fmt_ratio(ratio(myo["create_s"], sql["create_s"]),
                                                 "sqlite time")),
        (f"commits/s, no fsync ({n:,} commits)", fmt_rate(rate_myo), fmt_rate(rate_sql),
         fmt_rate(rate_raw), join_ratios(fmt_ratio(ratio(rate_myo, rate_sql), "sqlite"),
                                         fmt_ratio(ratio(rate_myo, rate_raw), "raw"))),
        ("  median of the per-round ratios", "", "", "",
         f"{median(round_vs_sql):.2f}x sqlite ({spread(round_vs_sql, lambda x: f'{x:.2f}')})"),
        ("  sqlite with the history table (W4)", "", fmt_rate(rate_hist), "",
         fmt_ratio(ratio(rate_myo, rate_hist), "sqlite+history")),
        (f"commits/s, durable ({n_d:,} commits)", fmt_rate(drate_myo), fmt_rate(drate_sql),
         fmt_rate(drate_raw), join_ratios(fmt_ratio(ratio(drate_myo, drate_sql), "sqlite"),
                                          fmt_ratio(ratio(drate_myo, drate_raw), "raw"))),
        ("  durable floor with fdatasync instead", "", "", fmt_rate(drate_rawd),
         fmt_ratio(ratio(drate_myo, drate_rawd), "raw fdatasync")),
        ("  median of the per-round ratios", "", "", "",
         f"{median(round_vs_fdatasync):.2f}x raw fdatasync "
         f"({spread(round_vs_fdatasync, lambda x: f'{x:.2f}')})"),
        ("mean bytes appended per commit", fmt_int(myo["bytes_per_commit"]), "-",
         fmt_int(bpc), ""),
        ("  same, durable run", fmt_int(myo_d["bytes_per_commit"]), "-", fmt_int(bpc), ""),
        ("  checkpoints written meanwhile", str(myo["checkpoints_during_commits"]), "-", "-",
         ""),
        ("file size after W1", fmt_bytes(myo["size_end"]), fmt_bytes(sql["size_end"]), "-",
         fmt_ratio(size_ratio, "sqlite")),
        ("  sqlite with the history table", "", fmt_bytes(hist["size_end"]), "-",
         fmt_ratio(ratio(myo["size_end"], hist["size_end"]), "sqlite+history")),
        ("bytes written (write system calls)", fmt_bytes(myo["wchar"] or 0),
         fmt_bytes(sql["wchar"] or 0), "-", fmt_ratio(ratio(myo["wchar"], sql["wchar"]),
                                                       "sqlite")),
        ("write amplification (written / commit frames)", fmt_wa(myo["write_amp"]), "-", "-",
         ""),
        ("  same, durable run", fmt_wa(myo_d["write_amp"]), "-", "-", ""),
        ("  file frames / commit frames", fmt_wa(myo["write_amp_file"]), "-", "-", ""),
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
        f"sqlite {'yes' if same_sql else 'NO'}, sqlite+history "
        f"{'yes' if same_sql and same_hist else 'NO'}.",
        "per-round ratios: each of the rounds times every engine on the same commits; the "
        "#10 targets use the median of those ratios (spread = min - max in brackets).",
        "sqlite+history: the same commits plus one history row per field change, in the same "
        "transactions (context: what keeping history costs SQLite).",
        "bytes written: wchar of /proc/self/io around each engine's calls (pwrite counted); "
        "write amplification = bytes Myosotis wrote / bytes of the commit frames in its file "
        "(mem.space()); the file-frames line counts what stays in the file instead.",
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
        "sqlite_history": {**hist, "commits_per_s": rate_hist},
        "round_ratio_vs_sqlite": round_vs_sql,
        "round_ratio_durable_vs_fdatasync": round_vs_fdatasync,
        "raw": {"commits_per_s": rate_raw, "bytes_per_commit": bpc},
        "durable": {"myosotis": {**myo_d, "commits_per_s": drate_myo},
                    "sqlite": {**sql_d, "commits_per_s": drate_sql},
                    "raw_fsync": {"commits_per_s": drate_raw, "bytes_per_commit": bpc},
                    "raw_fdatasync": {"commits_per_s": drate_rawd,
                                      "round_s": raw_d.rounds}},
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
        out, wall = run_child(b, req, "W2 myosotis ingest" if engine == "myosotis" else None)
        out["process_wall_s"] = wall
        out["peak_rss_bytes"] = peak_rss(out)
        res[engine] = out
    m, q, r = res["myosotis"], res["sqlite"], res["raw"]
    commit_bytes = kind_bytes(m["space"], "commit")
    m["write_amp"] = write_amp(m["wchar"], commit_bytes)
    m["write_amp_file"] = write_amp(frame_bytes(m["space"]), commit_bytes)

    def three(key: str, fmt: Callable[[float], str]) -> Row:
        return ("", fmt(m[key]), fmt(q[key]), fmt(r[key]),
                join_ratios(fmt_ratio(ratio(m[key], q[key]), "sqlite"),
                            fmt_ratio(ratio(m[key], r[key]), "raw")))

    rows: list[Row] = [
        ("ingest time (s)", *three("seconds", fmt_s)[1:]),
        ("nodes/s", fmt_rate(total / m["seconds"]), fmt_rate(total / q["seconds"]),
         "-", fmt_ratio(ratio(q["seconds"], m["seconds"]), "sqlite")),
        ("file bytes", *three("file_bytes", fmt_bytes)[1:]),
        ("peak RSS of the process", *three("peak_rss_bytes", fmt_bytes)[1:]),
        ("process wall time", *three("process_wall_s", fmt_s)[1:]),
        ("bytes written (write system calls)", fmt_bytes(m["wchar"] or 0),
         fmt_bytes(q["wchar"] or 0), "-", fmt_ratio(ratio(m["wchar"], q["wchar"]), "sqlite")),
        ("write amplification (written / commit frames)", fmt_wa(m["write_amp"]), "-", "-",
         ""),
        ("  file frames / commit frames", fmt_wa(m["write_amp_file"]), "-", "-", ""),
    ]
    notes = [
        "each engine in a fresh process; peak RSS = VmHWM at the end (not ru_maxrss: on "
        "Linux a child's ru_maxrss starts from its parent's RSS); the raw-floor process "
        "generates the same data (untimed) and appends+fsyncs the mean Myosotis bytes per "
        "commit, so its RSS is the interpreter + data baseline.",
        "myosotis durability='full' (with its automatic checkpoints: "
        f"{m['checkpoints']} written); sqlite WAL synchronous=FULL, executemany per commit, "
        "size after wal_checkpoint(TRUNCATE).",
        "time and bytes: lower is better; ratio = myosotis / other; data generation untimed.",
    ]
    print_table(f"W2 bulk ingest: {total:,} nodes in {commits} commits", rows, notes)
    b.results["W2"] = res
    run_w2_interchange(b, b.path("w2.myosotis"), total)


def run_w2_interchange(b: Bench, path: str, total: int) -> None:
    """Export (state, history) and import of the W2 state (formatspec/EXPORT.md)."""
    progress(f"W2: export and import of the {total:,}-node state")
    res: dict[str, Any] = {}
    with Memory.open(path, readonly=True) as mem:
        want = mem.state_hash()
        for kind, history in (("state", False), ("history", True)):
            out = b.path(f"w2.{kind}.json")
            with b.profiled(f"W2 export {kind}"), open(out, "wb") as f:
                t0 = time.perf_counter()
                mem.export(f, history=history)
                res[f"export_{kind}_s"] = time.perf_counter() - t0
            res[f"export_{kind}_bytes"] = os.path.getsize(out)
    for kind in ("state", "history"):
        new = b.path(f"w2.{kind}.imported.myo")
        with b.profiled(f"W2 import {kind}"), open(b.path(f"w2.{kind}.json"), "rb") as f:
            t0 = time.perf_counter()
            mem = Memory.import_(f, new)
            res[f"import_{kind}_s"] = time.perf_counter() - t0
        res[f"import_{kind}_same_hash"] = mem.state_hash() == want
        mem.close()

    def row(op: str, kind: str) -> Row:
        secs = res[f"{op}_{kind}_s"]
        return (f"{op} {kind} (nodes/s)", fmt_rate(total / secs), "-", "-",
                f"{fmt_s(secs)}, {fmt_bytes(res[f'export_{kind}_bytes'])} of JSON")

    rows = [row(op, kind) for op in ("export", "import") for kind in ("state", "history")]
    notes = [
        "in this process, from the W2 file (read-only); export streams to a file (no "
        "fsync); import streams the document, checks every rule, writes and fsyncs a "
        "new file.",
        f"imported state hash equals the source's: state "
        f"{res['import_state_same_hash']}, history {res['import_history_same_hash']}.",
    ]
    print_table(f"W2 export and import: {total:,} nodes", rows, notes)
    b.results["W2_interchange"] = res


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
            out, w = run_child(b, {"mode": "open_read", "engine": engine, "path": path,
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

    # the peer: the history table filled in the same W1 commits, fresh connection
    t0 = time.perf_counter()
    con = sqlite3.connect(f.sqlite_hist_path)
    sql_open_s = time.perf_counter() - t0
    sql_times: list[float] = []
    sql_answers: list[Any] = []
    value_at = sq.value_at
    try:
        for seq, node_id, k in queries:
            t0 = clock()
            v = value_at(con, node_id, k, seq)
            sql_times.append(clock() - t0)
            sql_answers.append(v)
    finally:
        con.close()

    def wrong_answers(got: list[Any]) -> int:
        bad = 0
        for (seq, node_id, k), a in zip(queries, got, strict=True):
            seqs, vals = timeline[(node_id, k)]
            if vals[bisect.bisect_right(seqs, seq) - 1] != a:
                bad += 1
        return bad

    wrong, sql_wrong = wrong_answers(answers), wrong_answers(sql_answers)
    rest, sql_rest = times[1:], sql_times[1:]
    med_ratio = ratio(median(rest), median(sql_rest))
    p99_ratio = ratio(p99(rest), p99(sql_rest))

    def row(label: str, fn: Callable[[list[float]], float], shown_ratio: bool = True) -> Row:
        mv, sv = fn(rest), fn(sql_rest)
        return (label, fmt_us(mv), fmt_us(sv), "-",
                fmt_ratio(ratio(mv, sv), "sqlite history") if shown_ratio else "")

    rows: list[Row] = [
        ("first call (may build an index)", fmt_us(times[0]), fmt_us(sql_times[0]), "-",
         fmt_ratio(ratio(times[0], sql_times[0]), "sqlite history")),
        row(f"median of the other {len(rest):,}", median),
        row("p99", p99),
        row("mean", statistics.fmean),
        row("max", max),
        ("calls over 1 ms", fmt_int(sum(t > 1e-3 for t in rest)),
         fmt_int(sum(t > 1e-3 for t in sql_rest)), "-", ""),
        ("Memory.open / sqlite3.connect before the first call", fmt_ms(open_s),
         fmt_ms(sql_open_s), "-", ""),
        ("file size (sqlite: nodes + history table)", fmt_bytes(f.myo["size_end"]),
         fmt_bytes(f.sqlite_hist["size_end"]), "-",
         fmt_ratio(ratio(f.myo["size_end"], f.sqlite_hist["size_end"]), "sqlite history")),
    ]
    notes = [
        f"mem.at(seq)[node][field] at a random past commit (1..{head:,}), random node and "
        "field, one fresh Memory on the W1 file.",
        "sqlite history: the same queries on a table with one row per field change (node, "
        "field, seq, value JSON; index on (node, field, seq)) filled in the same W1 commits: "
        "SELECT value ... WHERE node=? AND field=? AND seq<=? ORDER BY seq DESC LIMIT 1, then "
        "json.loads; one fresh connection.",
        f"answers checked against the reference model: myosotis {len(queries) - wrong:,}/"
        f"{len(queries):,} correct, sqlite history {len(queries) - sql_wrong:,}/"
        f"{len(queries):,}.",
        "times: lower is better; ratio = myosotis / sqlite history.",
    ]
    print_table("W4 time travel", rows, notes,
                header=("", "myosotis", "sqlite history", "raw floor", "ratio"))
    b.results["W4"] = {"first_s": times[0], "median_s": median(rest), "p99_s": p99(rest),
                       "mean_s": statistics.fmean(rest), "max_s": max(rest), "open_s": open_s,
                       "wrong": wrong, "queries": len(queries),
                       "sqlite_history": {"first_s": sql_times[0], "median_s": median(sql_rest),
                                          "p99_s": p99(sql_rest),
                                          "mean_s": statistics.fmean(sql_rest),
                                          "max_s": max(sql_rest), "open_s": sql_open_s,
                                          "wrong": sql_wrong,
                                          "size": f.sqlite_hist["size_end"]},
                       "median_ratio": med_ratio, "p99_ratio": p99_ratio}
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
    tm = w6_timing(b)
    long_len, n_t = s.time_list_len, s.time_appends
    t_long, t_empty = median(tm["long_s"]), median(tm["empty_s"])
    rows: list[Row] = [
        ("bytes written per append commit (median)", fmt_int(mm), fmt_int(sm), "-",
         fmt_ratio(ratio(mm, sm), "sqlite")),
        ("  min / max", f"{min(myo_growth)} / {max(myo_growth)}",
         f"{min(sql_growth)} / {max(sql_growth)}", "-", ""),
        ("file size after creating the list", fmt_bytes(myo_first), "-", "-", ""),
        (f"append+commit time, {long_len:,}-element list (median)", fmt_us(t_long), "-", "-",
         fmt_ratio(ratio(t_long, t_empty), "empty list")),
        ("append+commit time, empty list (median)", fmt_us(t_empty), "-", "-", ""),
        ("  p90, long / empty list", f"{fmt_us(pct(tm['long_s'], 90))} / "
         f"{fmt_us(pct(tm['empty_s'], 90))}", "-", "-", ""),
        (f"  bytes per append commit, {long_len:,} / empty list (median)",
         f"{fmt_int(median(tm['long_growth']))} / {fmt_int(median(tm['empty_growth']))}", "-",
         "-", ""),
    ]
    notes = [
        f"{k} commits, each appending one int to a {length:,}-element list (node.items."
        "append(x); commit), growth of the file per commit; sqlite: read JSON, append, "
        "write back, growth of db + wal (WAL frames are whole pages).",
        f"myosotis list content after the appends correct: {'yes' if myo_ok else 'NO'}.",
        f"append+commit time: {n_t} commits on a node whose list starts with {long_len:,} "
        f"elements, alternating with {n_t} on a node whose list starts empty (each in its "
        "own file, durability='none'); time per commit from before node.items.append(x) to "
        f"after commit(); contents correct: {'yes' if tm['ok'] else 'NO'}.",
    ]
    print_table(f"W6 list append: bytes on a {length:,}-element list, time on a "
                f"{long_len:,}-element list vs an empty one", rows, notes)
    b.results["W6"] = {"myosotis_growth": myo_growth, "sqlite_growth": sql_growth,
                       "myosotis_median": mm, "sqlite_median": sm,
                       "append_time": {**tm, "long_len": long_len, "median_long_s": t_long,
                                       "median_empty_s": t_empty,
                                       "long_over_empty": ratio(t_long, t_empty)}}
    b.target("bytes written by one list append", mm, "<", 100.0, "B",
             f"min {min(myo_growth)}, max {max(myo_growth)}")


def w6_timing(b: Bench) -> dict[str, Any]:
    """Append+commit time on a long list vs on a list that starts empty, alternating."""
    s = b.sizes
    n = s.time_appends
    progress(f"W6: {n} append+commit on a {s.time_list_len:,}-element list and {n} on an "
             "empty list, alternating")
    lp, ep = b.path("w6long.myo"), b.path("w6empty.myo")
    times: dict[str, list[float]] = {"long": [], "empty": []}
    growth: dict[str, list[int]] = {"long": [], "empty": []}
    clock = time.perf_counter
    with Memory.open(lp, durability="none") as long_mem, \
            Memory.open(ep, durability="none") as empty_mem:
        long_node = long_mem.create(wl.NODE_TYPE, items=list(range(s.time_list_len)))
        long_mem.commit()
        empty_node = empty_mem.create(wl.NODE_TYPE, items=[])
        empty_mem.commit()
        runs = (("long", long_mem, long_node, lp), ("empty", empty_mem, empty_node, ep))
        for i in range(n):
            for key, mem, node, path in runs:
                size = os.path.getsize(path)
                with b.profiled(f"W6 append+commit on a {s.time_list_len:,}-element list") \
                        if key == "long" else _null():
                    t0 = clock()
                    node.items.append(i)
                    mem.commit()
                    times[key].append(clock() - t0)
                growth[key].append(os.path.getsize(path) - size)
        ok = (len(long_node.items) == s.time_list_len + n and long_node.items[-1] == n - 1
              and list(empty_node.items) == list(range(n)))
    return {"long_s": times["long"], "empty_s": times["empty"],
            "long_growth": growth["long"], "empty_growth": growth["empty"], "ok": ok}


# ---------------------------------------------------------------------------
# W7


def open_runs(b: Bench, configs: Sequence[tuple[str, str]], node_id: int, fname: str,
              runs: int) -> dict[str, list[dict[str, Any]]]:
    """``runs`` fresh processes per (engine, path) that open the file and read one field,
    interleaved so drift hits all alike."""
    res: dict[str, list[dict[str, Any]]] = {e: [] for e, _ in configs}
    for _ in range(runs):
        for engine, path in configs:
            out, wall = run_child(b, {"mode": "open_read", "engine": engine, "path": path,
                                      "node": node_id, "field": fname})
            out["process_wall_s"] = wall
            res[engine].append(out)
    return res


def med_of(outs: list[dict[str, Any]], key: str) -> float | None:
    xs = [o[key] for o in outs if o.get(key) is not None]
    return median(xs) if xs else None


def w7_creation_seq(node_id: int, nodes: int, commits: int) -> int:
    """The commit that created ``node_id`` in the W7 build (wl.node_batches)."""
    return min((node_id - 1) // (nodes // commits), commits - 1) + 1


def run_w7(b: Bench) -> None:
    s = b.sizes
    n, bc, nc = s.w7_nodes, s.w7_build_commits, s.w7_commits
    mp, sp, hp = b.path("w7.myo"), b.path("w7.sqlite"), b.path("w7hist.sqlite")
    engines = (("myosotis", mp), ("sqlite", sp), ("sqlite+history", hp))

    build: dict[str, dict[str, Any]] = {}
    for name, path in engines:
        progress(f"W7: {name} build of {n:,} nodes in {bc} commits (fresh process)")
        req: dict[str, Any] = {"mode": "ingest", "total": n, "commits": bc, "path": path}
        if name == "myosotis":
            req.update(engine="myosotis", durability="none")
        else:
            req.update(engine="sqlite", synchronous="OFF", history=name != "sqlite")
        out, wall = run_child(b, req, "W7 myosotis build" if name == "myosotis" else None)
        out["process_wall_s"] = wall
        out["peak_rss_bytes"] = peak_rss(out)
        build[name] = out

    node_id = random.Random(wl.QUERY_SEED + 2).randint(1, n)
    fname = "name"
    progress(f"W7: {s.w7_open_runs} fresh open + read processes per engine, after the build")
    opened_built = open_runs(b, (("myosotis", mp), ("sqlite", sp)), node_id, fname,
                             s.w7_open_runs)

    small: dict[str, dict[str, Any]] = {}
    for name, path in engines:
        progress(f"W7: {name}, {nc:,} small commits (fresh process)")
        out, wall = run_child(b, {"mode": "commits", "engine": name.split("+")[0],
                                  "path": path, "nodes": n, "commits": nc,
                                  "first_seq": bc + 1, "history": name != "sqlite"
                                  and name != "myosotis"},
                              "W7 myosotis small commits" if name == "myosotis" else None)
        out["process_wall_s"] = wall
        small[name] = out
    head = small["myosotis"]["head_seq"]

    progress(f"W7: {s.w7_open_runs} fresh open + read processes per engine, after the "
             "small commits")
    opened = open_runs(b, (("myosotis", mp), ("sqlite", sp), ("noop", "")), node_id, fname,
                       s.w7_open_runs)

    # time travel: a few fresh processes, each timing its first and second at(c) read
    rng = random.Random(wl.QUERY_SEED + 4)

    def query() -> list[Any]:
        node = rng.randint(1, n)
        return [rng.randint(w7_creation_seq(node, n, bc), head), node, rng.choice(wl.FIELDS)]

    qsets = [[query(), query()] for _ in range(s.w7_tt_runs)]
    progress(f"W7: {s.w7_tt_runs} fresh processes per engine timing their first at(c) reads")
    at_res: dict[str, list[dict[str, Any]]] = {"myosotis": [], "sqlite+history": []}
    for qs in qsets:
        for name, path in (("myosotis", mp), ("sqlite+history", hp)):
            out, wall = run_child(b, {"mode": "at_read", "engine": name.split("+")[0],
                                      "path": path, "queries": qs})
            out["process_wall_s"] = wall
            at_res[name].append(out)
    agree = sum(a == c for m, q in zip(at_res["myosotis"], at_res["sqlite+history"],
                                       strict=True)
                for a, c in zip(m["values"], q["values"], strict=True))
    if b.profile:  # extra processes, not part of the figures
        run_child(b, {"mode": "open_read", "engine": "myosotis", "path": mp, "node": node_id,
                      "field": fname}, "W7 open + read one field after the small commits")
        run_child(b, {"mode": "at_read", "engine": "myosotis", "path": mp,
                      "queries": qsets[0]}, "W7 open + first two mem.at(c)[node][field]")

    # the CLI, which opens the file on every command
    myo = myo_cli()
    cmds = {"myo --version": [myo, "--version"],
            "myo show 1": [myo, "show", "1", "-f", mp],
            "myo history -n 10": [myo, "history", "-n", "10", "-f", mp]}
    progress(f"W7: CLI commands, {s.cli_runs} runs each")
    cli: dict[str, dict[str, list[float]]] = {k: {"wall_s": [], "rss_bytes": []} for k in cmds}
    launcher: list[float] = []
    for _ in range(s.cli_runs):
        for key, argv in cmds.items():
            out = run_cmd(b, argv)
            cli[key]["wall_s"].append(out["wall_s"])
            cli[key]["rss_bytes"].append(out["maxrss_bytes"])
            if out["launcher_vmhwm_bytes"] is not None:
                launcher.append(out["launcher_vmhwm_bytes"])
    cli_med = {k: median(v["wall_s"]) for k, v in cli.items()}

    # figures
    mb, qb, hb = build["myosotis"], build["sqlite"], build["sqlite+history"]
    mc, qc, hc = small["myosotis"], small["sqlite"], small["sqlite+history"]
    commit_build = kind_bytes(mb["space"], "commit")
    commit_before, commit_end = kind_bytes(mc["space_before"], "commit"), \
        kind_bytes(mc["space"], "commit")
    wa_build = write_amp(mb["wchar"], commit_build)
    wa_small = write_amp(mc["wchar"], None if commit_end is None or commit_before is None
                         else commit_end - commit_before)
    wa_all = write_amp(None if mb["wchar"] is None or mc["wchar"] is None
                       else mb["wchar"] + mc["wchar"], commit_end)
    wa_file = write_amp(frame_bytes(mc["space"]), commit_end)
    cp_bytes_build = kind_bytes(mb["space"], "checkpoint")
    cp_bytes_end = kind_bytes(mc["space"], "checkpoint")

    om_b, oq_b = med_of(opened_built["myosotis"], "seconds"), \
        med_of(opened_built["sqlite"], "seconds")
    om, oq = med_of(opened["myosotis"], "seconds"), med_of(opened["sqlite"], "seconds")
    rm_b, rq_b = med_of(opened_built["myosotis"], "vmhwm_bytes"), \
        med_of(opened_built["sqlite"], "vmhwm_bytes")
    rm, rq = med_of(opened["myosotis"], "vmhwm_bytes"), med_of(opened["sqlite"], "vmhwm_bytes")
    r_noop = med_of(opened["noop"], "vmhwm_bytes")
    first_m = median([o["times"][0] for o in at_res["myosotis"]])
    second_m = median([o["times"][1] for o in at_res["myosotis"]])
    first_h = median([o["times"][0] for o in at_res["sqlite+history"]])
    second_h = median([o["times"][1] for o in at_res["sqlite+history"]])
    at_open_m = med_of(at_res["myosotis"], "open_s")
    at_open_h = med_of(at_res["sqlite+history"], "open_s")
    size_ratio_build = ratio(mb["file_bytes"], qb["file_bytes"])
    size_ratio = ratio(mc["file_bytes"], qc["file_bytes"])
    values_built = {o["value"] for e in opened_built.values() for o in e}
    values_end = {o["value"] for k, e in opened.items() if k != "noop" for o in e}

    def three(label: str, m: float | None, q: float | None, h: float | None,
              fmt: Callable[[float], str], what: str = "sqlite") -> Row:
        return (label, "-" if m is None else fmt(m), "-" if q is None else fmt(q),
                "-" if h is None else fmt(h), fmt_ratio(ratio(m, q), what))

    def ms_spread(outs: list[dict[str, Any]], key: str = "seconds") -> str:
        return spread([o[key] for o in outs], fmt_t)

    rows: list[Row] = [
        three(f"build {n:,} nodes in {bc} commits", mb["seconds"], qb["seconds"], hb["seconds"],
              fmt_s, "sqlite time"),
        three("  peak RSS of the build process", mb["peak_rss_bytes"], qb["peak_rss_bytes"],
              hb["peak_rss_bytes"], fmt_bytes),
        three("file size after the build", mb["file_bytes"], qb["file_bytes"],
              hb["file_bytes"], fmt_bytes),
        three(f"{nc:,} small commits", mc["seconds"], qc["seconds"], hc["seconds"], fmt_s,
              "sqlite time"),
        three("  commits/s", nc / mc["seconds"], nc / qc["seconds"], nc / hc["seconds"],
              fmt_rate),
        three("  open of the writer before them", mc["open_s"], qc["open_s"], hc["open_s"],
              fmt_t),
        three("file size after the small commits", mc["file_bytes"], qc["file_bytes"],
              hc["file_bytes"], fmt_bytes),
        three("bytes written, build", mb["wchar"], qb["wchar"], hb["wchar"], fmt_bytes),
        three("bytes written, small commits", mc["wchar"], qc["wchar"], hc["wchar"], fmt_bytes),
        ("write amplification, build / small commits / all", f"{fmt_wa(wa_build)} / "
         f"{fmt_wa(wa_small)} / {fmt_wa(wa_all)}", "-", "-", ""),
        ("  file frames / commit frames", fmt_wa(wa_file), "-", "-", ""),
        ("checkpoints after the build / the small commits",
         f"{mb['checkpoints']} / {mc['checkpoints']}", "-", "-", ""),
        ("  checkpoint bytes after the build / the small commits",
         f"{fmt_bytes(cp_bytes_build or 0)} / {fmt_bytes(cp_bytes_end or 0)}", "-", "-", ""),
        three("cold open + read 1 field, after the build", om_b, oq_b, None, fmt_t),
        three("cold open + read 1 field, after the small commits", om, oq, None, fmt_t),
        three("peak RSS (VmHWM) of that process, after the build", rm_b, rq_b, None, fmt_mib),
        three("peak RSS (VmHWM) of that process, after the small commits", rm, rq, None,
              fmt_mib),
        three("  import of the engine in that process", med_of(opened["myosotis"], "import_s"),
              med_of(opened["sqlite"], "import_s"), None, fmt_t),
        three("  whole process wall, after the small commits",
              med_of(opened["myosotis"], "process_wall_s"),
              med_of(opened["sqlite"], "process_wall_s"), None, fmt_t),
        ("at(c)[node].field, first call in a process", fmt_t(first_m), "—", fmt_t(first_h),
         fmt_ratio(ratio(first_m, first_h), "sqlite+history")),
        ("  second call (another commit)", fmt_t(second_m), "—", fmt_t(second_h),
         fmt_ratio(ratio(second_m, second_h), "sqlite+history")),
        ("  open before the first call", fmt_t(at_open_m or 0), "—", fmt_t(at_open_h or 0),
         ""),
    ]
    notes = [
        f"{n:,} nodes of the W1 shape in {bc} commits, then {nc:,} W1-like commits of 1-5 "
        "field changes on random nodes; myosotis durability='none', sqlite WAL "
        "synchronous=OFF; every build and the small commits each in a fresh process, data "
        "generation untimed; RSS of a build process = its VmHWM.",
        "sqlite+history: the same schema plus the history table of W4, filled in the same "
        "transactions (its own database); it is the peer of at(c). The plain sqlite column "
        "is the peer of every other figure and target.",
        f"cold open: median of {s.w7_open_runs} fresh processes per engine, interleaved "
        f"(spread myosotis {ms_spread(opened_built['myosotis'])} after the build, "
        f"{ms_spread(opened['myosotis'])} after the small commits); in-process time from "
        f"just before Memory.open (as the writer) / sqlite3.connect to after reading node "
        f"{node_id:,} field {fname!r}; the engine's import is timed separately. VmHWM of a "
        f"process that only starts: {fmt_mib(r_noop)}.",
        f"values read after the build: {', '.join(sorted(values_built))}; after the small "
        f"commits: {', '.join(sorted(values_end))} "
        f"({'same in all' if len(values_built) == len(values_end) == 1 else 'DIFFERENT'}).",
        f"at(c): {s.w7_tt_runs} fresh processes per engine, each opening the file (untimed "
        f"here) and reading two (random commit >= the node's creation, random node, random "
        f"field), first call included; medians; spread of the first calls: "
        f"{ms_spread_list([o['times'][0] for o in at_res['myosotis']])}; answers equal "
        f"between the engines: {agree}/{2 * len(qsets)}.",
        "write amplification = bytes written (wchar of /proc/self/io of the Myosotis "
        "process) / bytes of the commit frames in the file (mem.space()); build: the build "
        "process over the build's commits; small commits: the commit process over the "
        "commit frames it added; all: both processes over every commit frame. Checkpoints "
        "are what it writes beyond the commits.",
        "ratio = myosotis / sqlite (lower is better for times, sizes and memory).",
    ]
    print_table(f"W7 scale: {n:,} nodes in {bc} commits, then {nc:,} small commits", rows,
                notes, header=("", "myosotis", "sqlite", "sqlite+history", "ratio"))

    crow: list[Row] = []
    for key, v in cli.items():
        crow.append((key + ("" if key == "myo --version" else " (W7 file)"),
                     fmt_t(cli_med[key]), "-", "-", spread(v["wall_s"], fmt_t)))
        if v["rss_bytes"]:
            crow.append(("  peak RSS", fmt_mib(median(v["rss_bytes"])), "-", "-", ""))
    print_table("W7 the myo CLI on the W7 file", crow,
                [f"wall time of the whole command ({myo}), output discarded, launched from a "
                 f"small process (bench/child.py); median of {s.cli_runs} runs; `myo --version` "
                 "opens no file (interpreter + CLI start-up).",
                 "peak RSS = ru_maxrss from wait4 in that launcher: on Linux it is at least "
                 "the launcher's own VmHWM "
                 f"({fmt_mib(max(launcher)) if launcher else 'unknown'}), below any myo "
                 "command's."],
                header=("", "myosotis", "-", "-", "spread (min - max)"))

    b.results["W7"] = {
        "nodes": n, "build_commits": bc, "small_commits": nc, "node": node_id, "field": fname,
        "build": build, "small_commits_run": small,
        "open_read_after_build": opened_built, "open_read_after_commits": opened,
        "median_open_read_s": {"after_build": {"myosotis": om_b, "sqlite": oq_b},
                               "after_commits": {"myosotis": om, "sqlite": oq}},
        "median_vmhwm_bytes": {"after_build": {"myosotis": rm_b, "sqlite": rq_b},
                               "after_commits": {"myosotis": rm, "sqlite": rq},
                               "noop": r_noop},
        "at": {"queries": qsets, "runs": at_res, "median_first_s": first_m,
               "median_second_s": second_m, "sqlite_history_median_first_s": first_h,
               "sqlite_history_median_second_s": second_h, "answers_agree": agree},
        "size_ratio_after_build": size_ratio_build, "size_ratio": size_ratio,
        "write_amp": {"build": wa_build, "small_commits": wa_small, "all": wa_all,
                      "file": wa_file},
        "cli": {k: {**v, "median_wall_s": cli_med[k]} for k, v in cli.items()},
    }


def ms_spread_list(xs: list[float]) -> str:
    return spread(xs, fmt_t)


# ---------------------------------------------------------------------------
# W8


IMPORT_CODE = ("import time; t0 = time.perf_counter(); import myosotis; "
               "print(time.perf_counter() - t0)")


def run_w8(b: Bench) -> None:
    s = b.sizes
    runs = s.import_runs
    progress(f"W8: import myosotis in {runs} fresh processes")
    py = sys.executable
    subprocess.run([py, "-c", IMPORT_CODE], check=True, env=b.env, capture_output=True)
    times: list[float] = []
    walls: list[float] = []
    noop: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([py, "-c", IMPORT_CODE], check=True, env=b.env,
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        times.append(float(proc.stdout.strip()))
        t0 = time.perf_counter()
        subprocess.run([py, "-c", "pass"], check=True, env=b.env, capture_output=True)
        noop.append(time.perf_counter() - t0)
    # where the time goes: -X importtime of one more process
    proc = subprocess.run([py, "-X", "importtime", "-c", "import myosotis"], check=True,
                          env=b.env, capture_output=True, text=True)
    tree = parse_importtime(proc.stderr)
    med = median(times)
    rows: list[Row] = [
        ("import myosotis (in-process, median)", fmt_ms(med), "-", "-", spread(times, fmt_ms)),
        ("whole process wall", fmt_ms(median(walls)), "-", fmt_ms(median(noop)),
         fmt_ratio(ratio(median(walls), median(noop)), "python -c pass")),
        ("-X importtime: myosotis cumulative", fmt_ms(tree["myosotis_us"] / 1e6), "-", "-",
         f"{tree['modules']} modules imported by it"),
    ]
    rows += [(f"  {name}", fmt_ms(self_us / 1e6), "-", "-", f"cumulative {fmt_ms(cum_us / 1e6)}")
             for name, self_us, cum_us in tree["top_self"]]
    notes = [
        f"median of {runs} fresh processes: perf_counter around `import myosotis` in "
        "`python -c`, bytecode cached (warm cache under the temporary directory); raw floor "
        "column = `python -c pass`.",
        "indented rows: the modules with the largest own import time under `import "
        "myosotis` (-X importtime, one process; its clock adds some overhead).",
    ]
    print_table("W8 import myosotis", rows, notes,
                header=("", "myosotis", "-", "raw floor", "spread / note"))
    b.results["W8"] = {"import_s": times, "median_import_s": med, "process_wall_s": walls,
                       "noop_wall_s": noop, "importtime": tree}


def parse_importtime(stderr: str) -> dict[str, Any]:
    """``-X importtime`` lines of ``import myosotis``: its cumulative time and the
    modules of its subtree with the largest own time (microseconds)."""
    entries: list[tuple[int, int, int, str]] = []  # (depth, self, cumulative, name)
    pat = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for line in stderr.splitlines():
        m = pat.match(line)
        if m:
            entries.append((len(m.group(3)) // 2, int(m.group(1)), int(m.group(2)),
                            m.group(4)))
    top = [i for i, e in enumerate(entries) if e[3] == "myosotis" and e[0] == 0]
    if not top:
        return {"myosotis_us": 0, "modules": 0, "top_self": []}
    end = top[-1]
    start = end
    while start > 0 and entries[start - 1][0] > 0:  # the subtree precedes its root
        start -= 1
    sub = entries[start:end + 1]
    top_self = sorted(sub, key=lambda e: -e[1])[:8]
    return {"myosotis_us": entries[end][2], "modules": len(sub),
            "top_self": [(e[3], e[1], e[2]) for e in top_self]}


# ---------------------------------------------------------------------------
# main


def issue10_targets(b: Bench) -> list[dict[str, Any]]:
    """The targets of issue #10, in its order, from this run's results; a target
    whose workload did not run is reported n/a."""
    r = b.results
    w1, w2, w3, w4, w5 = (r.get(w) for w in ("W1", "W2", "W3", "W4", "W5"))
    w6, w7, w8 = r.get("W6"), r.get("W7"), r.get("W8")
    out: list[dict[str, Any]] = []

    def t(name: str, measured: float | None, op: str, limit: float, unit: str,
          detail: str = "") -> None:
        out.append(make_target(name, measured, op, limit, unit, detail, "#10"))

    def ms(x: float | None) -> float | None:
        return None if x is None else x * 1e3

    def mib(x: float | None) -> float | None:
        return None if x is None else x / (1 << 20)

    not_run = "workload not run"
    med3 = w3["median_inprocess_s"] if w3 else {}
    t("cold open + read 1 field, W1 file (fresh process, import excluded)",
      ms(med3.get("myosotis/short")), "<=", 3.0, "ms",
      f"sqlite {fmt_ms(med3['sqlite/short'])}" if w3 else not_run)
    t(f"cold open + read 1 field, {b.sizes.history_factor}x-history file",
      ms(med3.get("myosotis/long")), "<=", 3.0, "ms",
      f"sqlite {fmt_ms(med3['sqlite/long'])}" if w3 else not_run)
    o7 = w7["median_open_read_s"] if w7 else {}
    for phase, label in (("after_build", "right after the build"),
                         ("after_commits", "after the small commits")):
        t(f"W7 cold open + read 1 field, {label}",
          ms(o7[phase]["myosotis"]) if w7 else None, "<=", 20.0, "ms",
          f"sqlite {fmt_ms(o7[phase]['sqlite'])}" if w7 else not_run)
    h7 = w7["median_vmhwm_bytes"] if w7 else {}
    t("W7 peak RSS (VmHWM) of a fresh process: open + read 1 field",
      mib(h7["after_commits"]["myosotis"]) if w7 else None, "<=", 40.0, "MiB",
      f"after the build {fmt_mib(h7['after_build']['myosotis'])}; sqlite "
      f"{fmt_mib(h7['after_commits']['sqlite'])}; python alone {fmt_mib(h7['noop'])}"
      if w7 else not_run)
    a7 = w7["at"] if w7 else {}
    t("W7 mem.at(c)[node].field, first call in a fresh process (median)",
      ms(a7.get("median_first_s")), "<=", 10.0, "ms",
      f"second call {fmt_ms(a7['median_second_s'])}; sqlite history first "
      f"{fmt_ms(a7['sqlite_history_median_first_s'])}" if w7 else not_run)
    h4 = w4["sqlite_history"] if w4 else {}
    t("W4 time-travel median vs SQLite history median", w4["median_ratio"] if w4 else None,
      "<=", 1.0, "x", f"{fmt_us(w4['median_s'])} vs {fmt_us(h4['median_s'])}"
      if w4 else not_run)
    t("W4 time-travel p99 vs SQLite history p99", w4["p99_ratio"] if w4 else None, "<=", 3.0,
      "x", f"{fmt_us(w4['p99_s'])} vs {fmt_us(h4['p99_s'])}" if w4 else not_run)
    m2, q2 = (w2["myosotis"], w2["sqlite"]) if w2 else ({}, {})
    t("W2 ingest time vs SQLite", ratio(m2.get("seconds"), q2.get("seconds")), "<=", 1.0, "x",
      f"{fmt_s(m2['seconds'])} vs {fmt_s(q2['seconds'])}" if w2 else not_run)
    t("W2 ingest peak RSS vs SQLite", ratio(m2.get("peak_rss_bytes"), q2.get("peak_rss_bytes")),
      "<=", 1.5, "x", f"{fmt_mib(m2['peak_rss_bytes'])} vs {fmt_mib(q2['peak_rss_bytes'])} "
      "(VmHWM)" if w2 else not_run)
    t("W5 full-scan rate vs SQLite", ratio(w5["myosotis_nodes_per_s"],
                                           w5["sqlite_nodes_per_s"]) if w5 else None,
      ">=", 1.0, "x", f"{fmt_rate(w5['myosotis_nodes_per_s'])} vs "
      f"{fmt_rate(w5['sqlite_nodes_per_s'])}" if w5 else not_run)
    t("W1 file size vs SQLite", w1["size_ratio"] if w1 else None, "<=", 1.0, "x",
      f"{fmt_bytes(w1['myosotis']['size_end'])} vs {fmt_bytes(w1['sqlite']['size_end'])}"
      if w1 else not_run)
    if w7:
        sizes7 = (w7["small_commits_run"]["myosotis"]["file_bytes"],
                  w7["small_commits_run"]["sqlite"]["file_bytes"])
    t("W7 file size vs SQLite, after the small commits", w7["size_ratio"] if w7 else None,
      "<=", 1.0, "x", f"{fmt_bytes(sizes7[0])} vs {fmt_bytes(sizes7[1])}; after the build "
      f"{w7['size_ratio_after_build']:.2f}x" if w7 else not_run)
    if w1:
        rs, rd = w1["round_ratio_vs_sqlite"], w1["round_ratio_durable_vs_fdatasync"]
    t("W1 non-durable commit rate vs SQLite synchronous=OFF", median(rs) if w1 else None,
      ">=", 3.0, "x", f"median of {len(rs)} rounds, spread {min(rs):.2f}-{max(rs):.2f}x; "
      f"{w1['myosotis']['commits_per_s']:,.0f}/s vs {w1['sqlite']['commits_per_s']:,.0f}/s"
      if w1 else not_run)
    t("W1 durable commit rate vs raw append+fdatasync floor", median(rd) if w1 else None,
      ">=", 0.9, "x", f"median of {len(rd)} rounds, spread {min(rd):.2f}-{max(rd):.2f}x; "
      f"{w1['durable']['myosotis']['commits_per_s']:,.0f}/s vs "
      f"{w1['durable']['raw_fdatasync']['commits_per_s']:,.0f}/s "
      f"({w1['durable_commits']:,} commits)" if w1 else not_run)
    at6 = w6["append_time"] if w6 else {}
    t(f"W6 append+commit, {b.sizes.time_list_len:,}-element list vs empty list",
      at6.get("long_over_empty"), "<=", 1.5, "x",
      f"{fmt_us(at6['median_long_s'])} vs {fmt_us(at6['median_empty_s'])}; "
      f"{w6['myosotis_median']:.0f} B per append" if w6 else not_run)
    t("import myosotis (fresh process, cached bytecode)",
      ms(w8["median_import_s"]) if w8 else None, "<=", 30.0, "ms",
      f"median of {len(w8['import_s'])}, spread {spread(w8['import_s'], fmt_ms)}"
      if w8 else not_run)
    cli = w7["cli"] if w7 else {}
    for key in ("myo show 1", "myo history -n 10"):
        t(f"`{key}` on the W7 file, wall", ms(cli[key]["median_wall_s"]) if w7 else None,
          "<=", 250.0, "ms", f"median of {len(cli[key]['wall_s'])}; `myo --version` "
          f"{fmt_ms(cli['myo --version']['median_wall_s'])}" if w7 else not_run)
    return out


def write_amp_rows(b: Bench) -> list[tuple[str, str]]:
    """Write amplification (#10) of each workload that ran: (label, figures)."""
    r = b.results
    rows: list[tuple[str, str]] = []
    if "W1" in r:
        w1 = r["W1"]
        rows.append(("W1 small commits", f"{fmt_wa(w1['myosotis']['write_amp'])} "
                     f"(durable run {fmt_wa(w1['durable']['myosotis']['write_amp'])}; file "
                     f"frames / commit frames {fmt_wa(w1['myosotis']['write_amp_file'])})"))
    if "W2" in r:
        m = r["W2"]["myosotis"]
        rows.append(("W2 bulk ingest", f"{fmt_wa(m['write_amp'])} (file frames / commit "
                     f"frames {fmt_wa(m['write_amp_file'])}; {m['checkpoints']} checkpoints)"))
    if "W7" in r:
        wa = r["W7"]["write_amp"]
        rows.append(("W7 scale", f"build {fmt_wa(wa['build'])}, small commits "
                     f"{fmt_wa(wa['small_commits'])}, all {fmt_wa(wa['all'])} (file frames / "
                     f"commit frames {fmt_wa(wa['file'])})"))
    return rows


def print_targets(title: str, targets: list[dict[str, Any]]) -> None:
    print(f"\n== {title}")
    if not targets:
        print("  (none: their workloads did not run)")
    for t in targets:
        m, unit = t["measured"], t["unit"]
        status = "n/a " if t["pass"] is None else ("PASS" if t["pass"] else "MISS")
        op = t["op"]
        if m is None:
            shown = "-"
        elif unit == "x":
            shown = f"{m:.2f}{unit}"
        elif unit == "ms" and m < 100:
            shown = f"{m:,.2f} {unit}"
        else:
            shown = f"{m:,.1f} {unit}"
        limit = f"{t['limit']:g}{unit}" if unit == "x" else f"{t['limit']:g} {unit}"
        print(f"  {status}  {t['target']}: {shown} (target {op} {limit}; {t['detail']})")


def print_summary(b: Bench, issue10: list[dict[str, Any]]) -> None:
    print_targets("Targets of the earlier issues", b.targets)
    quick = " (--quick: smaller sizes, not the targets' sizes)" if b.sizes is wl.QUICK else ""
    print_targets(f"#10 targets{quick}", issue10)
    wa = write_amp_rows(b)
    if wa:
        print("\n== Write amplification (#10): bytes written / bytes of commit frames")
        for label, text in wa:
            print(f"  {label}: {text}")


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
    b = Bench(sizes, tmp, args.profile, env=child_env(tmp))
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
               "W6": run_w6, "W7": run_w7, "W8": run_w8}
    spent: dict[str, float] = {}
    try:
        if any(w in only for w in ("W2", "W3", "W7", "W8")):  # they start fresh processes
            t0 = time.perf_counter()
            warm_bytecode(b)
            spent["warm-up"] = time.perf_counter() - t0
        for w in WORKLOADS:
            if w in only:
                t0 = time.perf_counter()
                runners[w](b)
                spent[w] = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    issue10 = issue10_targets(b)
    print_summary(b, issue10)
    for label, text in b.profile_reports():
        print(f"\n== Profile: {label} (top myosotis/ functions by own time)")
        print("\n".join(line for line in text.splitlines()
                        if line.strip() and not line.startswith(("   Ordered", "   List"))))
    print(f"\nTime per workload: {', '.join(f'{k} {v:.1f} s' for k, v in spent.items())}")
    print(f"Total benchmark time {elapsed:.1f} s; {load_average()}")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"environment": env, "quick": args.quick, "sizes": sizes.as_dict(),
                       "workloads": only, "elapsed_s": elapsed, "workload_s": spent,
                       "results": b.results, "targets": b.targets,
                       "issue10_targets": issue10,
                       "write_amplification": dict(write_amp_rows(b))},
                      fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
