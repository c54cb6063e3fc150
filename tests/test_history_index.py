"""The history index sidecar (``<file>.idx``, engine/history_index.py) is derived
data: whatever happens to it (deleted, garbage, truncated, another file's, left
behind by compaction or by a crash, ahead of a file that lost commits, written
by a writer a reader cannot wait for), the answers of ``log``, ``blame`` and
``referrers`` are those of an index rebuilt from the log.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest
from crashutil import read_line, run_python, spawn_python
from model import FixedClock

from myosotis import IndexRebuiltWarning, Memory, Ref
from myosotis.engine import history_index, index_file


def build(path: Path, commits: int = 30, seed: int = 1, durability: str = "full") -> None:
    """Nodes referencing each other through fields, lists and maps, changed at random."""
    rng = random.Random(seed)
    with Memory.open(path, clock=FixedClock(), durability=durability) as mem:  # type: ignore[arg-type]
        write(mem, rng, commits)


def write(mem: Memory, rng: random.Random, commits: int) -> None:
    for _ in range(commits):
        ids = [n.id for n in mem.nodes()]
        if len(ids) < 3 or rng.random() < 0.3:
            mem.create("N", friend=Ref(rng.choice(ids)) if ids else None, items=[], meta={})
        else:
            n = mem[rng.choice(ids)]
            target = Ref(rng.choice(ids))
            step = rng.randrange(4)
            if step == 0:
                n.friend = target
            elif step == 1:
                n.items.append(target)
            elif step == 2 and len(n.items):
                del n.items[rng.randrange(len(n.items))]
            else:
                n.meta[rng.choice("ab")] = target
        mem.commit()


def answers(mem: Memory) -> dict[str, Any]:
    head = mem.head.seq if mem.head else 0
    base = mem.info().base_seq
    out: dict[str, Any] = {}
    for at in sorted({head, (head + base) // 2, base + 1}):
        if not base <= at <= head:
            continue
        for node in range(1, mem.commit_info(at).next_node_id):
            out[f"log {node}@{at}"] = [(e.commit.seq, e.mutations) for e in mem.log(node, at=at)]
            out[f"blame {node}@{at}"] = {k: c.seq for k, c in mem.blame(node, at=at).items()}
            out[f"refs {node}@{at}"] = mem.referrers(node, at=at)
    return out


def fresh_answers(path: Path) -> dict[str, Any]:
    """The answers of an index rebuilt from nothing, on a copy of the file."""
    copy = path.with_name("fresh-" + path.name)
    shutil.copyfile(path, copy)
    with Memory.open(copy, readonly=True) as mem:
        return answers(mem)


def index_head(path: Path) -> int:
    db = sqlite3.connect(str(path) + ".idx")
    try:
        return int(db.execute("SELECT value FROM meta WHERE key='head_seq'").fetchone()[0])
    finally:
        db.close()


@pytest.fixture
def built(tmp_path: Path) -> Path:
    path = tmp_path / "h.myo"
    build(path)
    return path


def test_the_writer_leaves_an_index_that_covers_its_commits(built: Path) -> None:
    assert index_head(built) == 30
    with Memory.open(built, readonly=True) as mem:
        assert answers(mem) == fresh_answers(built)


@pytest.mark.parametrize("damage", ["garbage", "garbage-header", "truncated", "empty"])
@pytest.mark.parametrize("readonly", [False, True])
def test_a_damaged_index_is_rebuilt_with_a_warning(built: Path, damage: str,
                                                   readonly: bool) -> None:
    want = fresh_answers(built)
    idx = Path(str(built) + ".idx")
    data = idx.read_bytes()
    if damage == "garbage":
        idx.write_bytes(bytes(random.Random(2).randrange(256) for _ in range(len(data))))
    elif damage == "garbage-header":
        idx.write_bytes(b"\xff" * 100 + data[100:])
    elif damage == "truncated":
        idx.write_bytes(data[: len(data) // 2])
    else:
        idx.write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Memory.open(built, readonly=readonly) as mem:
            assert answers(mem) == want
    if damage != "empty":  # an empty file is a new SQLite database: nothing to warn about
        assert any(issubclass(w.category, IndexRebuiltWarning) for w in caught)
    assert index_head(built) == 30  # rebuilt on disk (no writer was running)


def test_another_files_index_is_not_used(tmp_path: Path) -> None:
    a, b = tmp_path / "a.myo", tmp_path / "b.myo"
    build(a, seed=1)
    build(b, seed=2)
    shutil.copyfile(str(a) + ".idx", str(b) + ".idx")
    with Memory.open(b, readonly=True) as mem:
        got = answers(mem)
    os.unlink(str(b) + ".idx")
    assert got == fresh_answers(b)


def test_compaction_leaves_no_stale_index(built: Path) -> None:
    with Memory.open(built) as mem:
        before = {n: mem.referrers(n) for n in range(1, mem.head.next_node_id)}  # type: ignore[union-attr]
        stale = str(built) + ".stale"
        shutil.copyfile(str(built) + ".idx", stale)
        mem.compact(at=20)
        assert {n: mem.referrers(n) for n in before} == before
        got = answers(mem)
    assert got == fresh_answers(built)
    # an index of the history before compaction, put back, is detected by its base
    shutil.copyfile(stale, str(built) + ".idx")
    with Memory.open(built, readonly=True) as mem:
        assert answers(mem) == got


def test_a_reader_catches_up_in_memory_while_a_writer_holds_the_lock(built: Path) -> None:
    with Memory.open(built, durability="none") as writer:
        write(writer, random.Random(5), 10)  # rows held in the writer's memory
        assert index_head(built) == 30
        with Memory.open(built, readonly=True) as reader:
            got = answers(reader)
            assert reader.head.seq == 40  # type: ignore[union-attr]
        assert index_head(built) == 30  # the reader could not take the lock: wrote nothing
        assert got == answers(writer)
    assert index_head(built) == 40  # flushed at close
    assert got == fresh_answers(built)


def test_a_reader_behind_the_index_reads_only_its_commits(built: Path) -> None:
    with Memory.open(built, readonly=True) as reader:
        want = answers(reader)
        build(built, commits=0)  # no-op writer open
        with Memory.open(built) as writer:
            write(writer, random.Random(6), 5)
        assert index_head(built) == 35
        assert answers(reader) == want


def test_an_index_ahead_of_the_file_is_cut_back(built: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.myo"
    shutil.copyfile(built, old)  # the file at commit 30
    with Memory.open(built) as mem:
        write(mem, random.Random(7), 5)
    shutil.copyfile(str(built) + ".idx", str(old) + ".idx")  # an index of 35 commits
    with Memory.open(old) as mem:  # as if the last commits were lost by a crash
        write(mem, random.Random(8), 3)  # and different ones written
        got = answers(mem)
    assert index_head(old) == 33
    assert got == fresh_answers(old)


def test_a_writer_behind_the_file_catches_up_as_it_commits(
        built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sidecar that lacks the last commits (rows a killed writer never flushed):
    the next writer decodes a few of them at each of its commits, each once, and is
    current after a bounded number of commits (before, it stayed behind for its
    whole life and every reader decoded a gap that grew with its commits)."""
    stale = tmp_path / "stale.idx"
    shutil.copyfile(str(built) + ".idx", stale)
    with Memory.open(built) as mem:
        write(mem, random.Random(10), 20)
    shutil.copyfile(stale, str(built) + ".idx")  # covers 30 of the 50 commits
    monkeypatch.setattr(history_index, "INDEX_BEHIND_STEP_ROWS", 4)
    decoded: list[int] = []
    add_commit = history_index.add_commit
    monkeypatch.setattr(history_index, "add_commit",
                        lambda d, seq, *a: (decoded.append(seq), add_commit(d, seq, *a)))
    rng = random.Random(11)
    with Memory.open(built, durability="none") as mem:
        write(mem, rng, 1)
        assert 2 <= len(decoded) < 20  # one step, not the whole gap
        for _ in range(19):  # the gap (in commits) shrinks by one or more a commit
            write(mem, rng, 1)
        mem.sync()
        assert index_head(built) == 70
        # the gap's commits, then the writer's own until it caught up: each once
        assert decoded == list(range(31, decoded[-1] + 1))
        got = answers(mem)
    assert got == fresh_answers(built)


def test_a_writer_flushes_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_index, "INDEX_FLUSH_ROWS", 64)
    path = tmp_path / "f.myo"
    with Memory.open(path, durability="none") as mem:
        a = mem.create("A")
        mem.commit()
        for i in range(100):  # one row per commit
            a.n = i
            mem.commit()
        assert index_head(path) == 64
        assert len(list(mem.log(a, "n"))) == 100


CHILD = r'''
import random, sys
sys.path.insert(0, sys.argv[2])
from test_history_index import write
from myosotis import Memory
from myosotis.engine import history_index, index_file
history_index.INDEX_FLUSH_ROWS = 5  # flush often: a kill may land inside one
rng = random.Random(int(sys.argv[3]))
with Memory.open(sys.argv[1], durability=sys.argv[4]) as mem:
    for i in range(10_000):
        write(mem, rng, 1)
        if rng.random() < 0.05:
            mem.sync()
        print("commit", mem.head.seq, flush=True)
'''


@pytest.mark.parametrize("durability", ["full", "none"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_writer_killed_mid_way_leaves_a_usable_index(tmp_path: Path, durability: str,
                                                       seed: int) -> None:
    path = tmp_path / "k.myo"
    build(path, commits=5)
    proc = spawn_python(CHILD, str(path), str(Path(__file__).parent), str(seed), durability)
    try:
        for _ in range(random.Random(seed).randrange(20, 400)):
            read_line(proc, "commit")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Memory.open(path, readonly=True) as mem:
            got = answers(mem)
    # a kill is no damage: even one inside a flush leaves a journal SQLite rolls back
    assert not [w for w in caught if issubclass(w.category, IndexRebuiltWarning)]
    assert got == fresh_answers(path)
    with Memory.open(path) as mem:
        assert answers(mem) == got


KILLED_IN_FLUSH = r'''
import os, random, signal, sys
from test_history_index import write
from myosotis import Memory
from myosotis.engine import index_file
rng = random.Random(4)
with Memory.open(sys.argv[1]) as mem:
    write(mem, rng, 10)
    mem.sync()  # the sidecar covers these
    write(mem, rng, 10)
    real = index_file.IndexFile.append
    def append(self, *args):
        # killed as the flush's COMMIT starts: its rows are in the database
        # pages and the old pages in the journal
        self.db.set_trace_callback(
            lambda sql: sql == "COMMIT" and os.kill(os.getpid(), signal.SIGKILL))
        return real(self, *args)
    index_file.IndexFile.append = append
    mem.sync()
'''


def killed_in_flush(tmp_path: Path) -> tuple[Path, Path]:
    """A file of 25 commits whose sidecar covers 15, with the journal of a flush of
    the last 10 that the writer did not finish."""
    path = tmp_path / "j.myo"
    build(path, commits=5)
    child = run_python(KILLED_IN_FLUSH, str(path), check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr
    journal = Path(str(path) + ".idx-journal")
    assert journal.exists()
    return path, journal


@pytest.mark.parametrize("writer_running", [False, True])
def test_a_reader_rolls_back_the_journal_of_a_writer_killed_in_a_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_running: bool) -> None:
    path, journal = killed_in_flush(tmp_path)
    want = fresh_answers(path)
    decoded: list[int] = []
    add_commit = history_index.add_commit
    monkeypatch.setattr(history_index, "add_commit",
                        lambda d, seq, *a: (decoded.append(seq), add_commit(d, seq, *a)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a writer that has not used the index yet holds the lock: the reader
        # cannot write rows, yet must read the rows of the finished flushes
        with Memory.open(path) if writer_running else contextlib.nullcontext(), \
                Memory.open(path, readonly=True) as mem:
            assert answers(mem) == want
    assert not [w for w in caught if issubclass(w.category, IndexRebuiltWarning)]
    assert decoded == list(range(16, 26))  # the unfinished flush's commits, not all
    assert not journal.exists()
    assert index_head(path) == (15 if writer_running else 25)


def test_a_reader_that_may_not_roll_back_the_journal_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = killed_in_flush(tmp_path)
    want = fresh_answers(path)
    connect = index_file.IndexFile._connect
    # as on a read-only mount: a read-write open gives a read-only connection
    monkeypatch.setattr(index_file.IndexFile, "_connect", lambda self, mode: connect(self, "ro"))
    with pytest.warns(IndexRebuiltWarning, match="a write to it was left unfinished"), \
            Memory.open(path, readonly=True) as mem:
        assert answers(mem) == want


def rows_of(path: Path) -> dict[str, list[Any]]:
    db = sqlite3.connect(str(path) + ".idx")
    try:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall())
                for t in ("meta", "chain", "touch", "refev")}
    finally:
        db.close()


@pytest.mark.parametrize("compacted", [False, True])
def test_the_index_is_a_function_of_the_file(built: Path, compacted: bool) -> None:
    """Rows written commit by commit by the writer equal those of a rebuild."""
    if compacted:
        with Memory.open(built) as mem:
            mem.compact(at=10)
            write(mem, random.Random(9), 5)  # behind the file: a few missing commits each
            list(mem.log(1))  # a query catches up whatever is still missing
    written = rows_of(built)
    assert written["touch"] and written["refev"]
    os.unlink(str(built) + ".idx")
    with Memory.open(built, readonly=True) as mem:
        list(mem.log(1))
    assert rows_of(built) == written
