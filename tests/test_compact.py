"""Prefix compaction (FORMAT.md §8.3): what it keeps, what it folds, and that it is atomic.

The hypothesis test compacts a random history at a random commit and checks
the latest state, the kept history and every kept commit's state; the crash
test SIGKILLs a compacting process at random moments and checks that the file
is then either entirely the old one or entirely the new one.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myosotis import CommitNotFoundError, Memory
from myosotis.engine.verify import verify_file
from myosotis.testing import open_memory


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000_000

    def __call__(self) -> int:
        self.t += 1000
        return self.t


OPS = st.lists(
    st.tuples(st.sampled_from(["create", "set", "append", "delete", "checkpoint"]),
              st.integers(0, 10**6)),
    min_size=1, max_size=6)


def build(path: Path, history: list[list[tuple[str, int]]]) -> list[str]:
    """Write one commit per entry of ``history``; return the state hash after each."""
    hashes = []
    with open_memory(path, clock=Clock(), checkpoint_floor=1 << 40) as mem:
        for k, ops in enumerate(history):
            for op, r in ops:
                live = [n for n in mem.nodes()]
                if op == "create" or not live:
                    mem.create("T", n=r, items=[r], friend=live[r % len(live)] if live else None)
                elif op == "set":
                    live[r % len(live)].n = r
                elif op == "append":
                    live[r % len(live)].items.append(r)
                elif op == "delete" and len(live) > 1:
                    live[r % len(live)].delete()
                elif op == "checkpoint":
                    mem.commit(f"c{k}", allow_empty=True)
                    mem.checkpoint()
            mem.commit(f"commit {k}", allow_empty=True)
            hashes.append(mem.state_hash())
    return hashes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(history=st.lists(OPS, min_size=1, max_size=8), data=st.data())
def test_compaction_at_a_random_commit_keeps_the_latest_state_and_every_later_commit(
        tmp_path_factory: pytest.TempPathFactory, history: list[list[tuple[str, int]]],
        data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("c") / "h.myo"
    build(path, history)
    with Memory.open(path) as mem:
        head = mem.head
        assert head is not None
        commits = mem.history()
        views = {c.seq: mem.at(c.seq).state_hash() for c in commits}
        latest = mem.state_hash()
        base = data.draw(st.integers(1, head.seq), label="base")
        result = mem.compact(base)
        # the observable latest state is unchanged, in memory and on disk
        assert result.state_hash == latest == mem.state_hash()
        assert result.base_seq == base and result.bytes_after == path.stat().st_size
        # commits after the base are kept with their ids (the chain goes on, R32)
        assert mem.history() == [c for c in commits if c.seq > base]
        for seq in range(base, head.seq + 1):
            assert mem.at(seq).state_hash() == views[seq]
        for seq in range(1, base):
            with pytest.raises(CommitNotFoundError):
                mem.at(seq)
    report = verify_file(str(path))
    assert report.ok, report.findings
    with Memory.open(path, readonly=True) as again:
        assert again.state_hash() == latest
        assert again.head is not None and again.head.id == head.id


def test_compaction_is_deterministic(tmp_path: Path) -> None:
    """The same file compacted at the same commit gives byte-identical output."""
    history = [[("create", i), ("append", i * 7), ("set", i * 3)] for i in range(12)]
    a, b = tmp_path / "a.myo", tmp_path / "b.myo"
    build(a, history)
    shutil.copy(a, b)
    for p in (a, b):
        with Memory.open(p) as mem:
            mem.compact(7)
    assert a.read_bytes() == b.read_bytes()


def test_compacting_twice_and_committing_after_compaction(tmp_path: Path) -> None:
    path = tmp_path / "h.myo"
    hashes = build(path, [[("create", i), ("set", i)] for i in range(10)])
    with Memory.open(path) as mem:
        mem.compact(4)
        mem.compact(8)
        assert mem.at(8).state_hash() == hashes[7]
        mem[1].n = "after"
        c = mem.commit("after compaction")
        assert c is not None and c.seq == 11
    assert verify_file(str(path)).ok
    with Memory.open(path) as mem:
        assert mem[1].n == "after" and mem.head is not None and mem.head.seq == 11


def test_compaction_refuses_staged_changes_and_readers(tmp_path: Path) -> None:
    path = tmp_path / "h.myo"
    build(path, [[("create", 1)], [("set", 2)]])
    with Memory.open(path) as mem:
        mem[1].n = 5
        with pytest.raises(Exception, match="staged"):
            mem.compact()
        assert mem.pending == 1
    with Memory.open(path, readonly=True) as reader, pytest.raises(Exception, match="read-only"):
        reader.compact()


def test_a_reader_keeps_reading_the_old_file_and_refresh_moves_to_the_new_one(
        tmp_path: Path) -> None:
    path = tmp_path / "h.myo"
    hashes = build(path, [[("create", i)] for i in range(6)])
    with Memory.open(path, readonly=True) as reader:
        with Memory.open(path) as writer:
            writer.compact(5)
        assert reader.at(2).state_hash() == hashes[1]  # the old inode is still mapped
        reader.refresh()
        assert reader.state_hash() == hashes[5]
        with pytest.raises(CommitNotFoundError):
            reader.at(2)


# --------------------------------------------------------------------------
# crash test: SIGKILL during compaction

_CHILD = """
import sys
from myosotis import Memory
with Memory.open(sys.argv[1]) as mem:
    print("READY", flush=True)
    sys.stdin.readline()
    mem.compact(int(sys.argv[2]))
print("DONE", flush=True)
"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_compaction_killed_at_random_moments_leaves_the_old_or_the_new_file(
        tmp_path: Path) -> None:
    src = tmp_path / "src.myo"
    hashes = build(src, [[("create", i), ("append", i), ("set", i)] for i in range(300)])
    new = tmp_path / "new.myo"
    shutil.copy(src, new)
    with Memory.open(new) as mem:
        mem.compact(200)
    old_digest, new_digest = _digest(src), _digest(new)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    rng = random.Random(7)
    outcomes = {"old": 0, "new": 0}
    for _ in range(30):
        path = tmp_path / "h.myo"
        shutil.copy(src, path)
        child = subprocess.Popen([sys.executable, str(script), str(path), "200"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "READY"
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(rng.uniform(0, 0.03))
        child.send_signal(signal.SIGKILL)
        child.wait()
        digest = _digest(path)
        assert digest in (old_digest, new_digest)
        outcomes["old" if digest == old_digest else "new"] += 1
        with Memory.open(path) as mem:  # the next writer also removes the temp file
            assert mem.state_hash() == hashes[-1]
        assert not [p for p in os.listdir(tmp_path) if ".rewrite-" in p]
    assert outcomes["old"] + outcomes["new"] == 30
