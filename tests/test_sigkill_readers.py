"""SIGKILLed writers while readers in other processes keep reading (README
"Crash safety", "Concurrency"; FORMAT.md §10).

A writer process commits in a loop (durability "full"; creates, field sets,
list and map edits, big values that trigger automatic checkpoints with a small
``checkpoint_floor``, and explicit checkpoints) and acknowledges every commit
in a side file (:class:`crashutil.AckLog`, fsynced) before it makes the next
one. The test SIGKILLs it at a random moment and starts a new one, which
first checks that every acknowledged commit survived. Two reader processes
``refresh()`` (and sometimes reopen) all along and write down every
``(head seq, state hash)`` they see, and some past states they read.

Afterwards: every state a reader saw is the state the writer acknowledged for
that seq (readers see whole commits only); every commit in the file is
acknowledged exactly once, in order, with its state hash and label; the file
passes ``verify()`` (fsck).
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from crashutil import (
    ForkServer,
    describe_status,
    drain,
    parse_acks,
    read_acks,
    read_line,
    spawn_python,
    stop,
)

from myosotis import Memory
from myosotis.format import helper
from myosotis.testing import store_of

CHECKPOINT_FLOOR = 4096

# The kill schedule follows the writer's progress, not the clock, so that a loaded
# machine (a slow fork, open or fsync) changes where kills land, never how much work
# a run gets done. Every EARLY_KILL_EVERY-th writer is killed a few milliseconds
# after its fork, wherever it is then (fork, open, recovery, its first commit). The
# others are killed at a random instant after they acknowledged LATE_KILL_AFTER
# commits of their own: in a commit, a checkpoint, or between a commit and its
# acknowledgement (what makes the next writer recover one).
EARLY_KILL_EVERY = 3
LATE_KILL_AFTER = 3
# Seconds a writer may take for those acknowledgements before the test fails:
# generous, for a machine loaded many times over.
PROGRESS_TIMEOUT = 120.0

# Run by the fork server in a fresh child per call. Exits non-zero (the test
# fails with its message) if an acknowledged commit is missing after reopening.
WRITER_SRC = r'''
import random, sys
from crashutil import AckLog
from myosotis import Memory
from myosotis.testing import open_memory

def note(msg):
    sys.stderr.write(f"note: {msg}\n")

def writer(path, ack_path, seed, floor, generation, max_commits):
    acks = AckLog.open(ack_path)
    last = acks.last_seq
    mem = open_memory(path, checkpoint_floor=floor, durability="full")
    head = mem.head.seq if mem.head is not None else 0
    if head < last:
        raise SystemExit(f"LOST: head {head} after reopening, but commit {last} was "
                         "acknowledged")
    if head > last + 1:
        raise SystemExit(f"head {head} is more than one commit past the acknowledged {last}")
    if head == last + 1:  # committed, killed before the acknowledgement: record it now
        acks.append(head, mem.state_hash(), mem.head.label)
        note(f"recovered {head}")
    rng = random.Random(seed)
    if head == 0:
        mem.create("Root", n=0, blob="", items=[], m={})
        c = mem.commit(label=f"g{generation}.root")
        acks.append(c.seq, mem.state_hash(), c.label)
    for i in range(max_commits):
        live = [n.id for n in mem.nodes()]
        for _ in range(rng.choice((1, 1, 2, 3))):
            r = rng.random()
            node = mem[rng.choice(live)]
            if r < 0.3:
                node["n"] = rng.choice((rng.randrange(-10**6, 10**6), 1.0, -0.0, True, None))
            elif r < 0.45 and len(live) < 30:
                new = mem.create(rng.choice(("Note", "Task")), n=i, items=[], m={},
                                 parent=node)
                live.append(new.id)
            elif r < 0.6:
                # big values on the first nodes only: automatic checkpoints come
                # often, while the state image stays small
                mem[rng.randint(1, min(3, len(live)))]["blob"] = "x" * rng.randint(200, 2500)
            elif r < 0.8:
                if "items" not in node:
                    node["items"] = []
                items = node["items"]
                if len(items) > 6:
                    del items[0]
                items.append(rng.choice((i, "s", [1, 2.5], {"k": False}, node)))
            elif r < 0.92:
                if "m" not in node:
                    node["m"] = {}
                node["m"][f"k{rng.randrange(8)}"] = rng.randrange(100)
            elif node.id > 3:
                node.delete()
                live.remove(node.id)
        big = rng.random() < 0.05
        # now and then a frame of megabytes: a kill can land inside its write, and
        # readers walk the file while it is half written; the next commit drops it
        mem[1]["huge"] = "h" * rng.randint(1 << 19, 3 << 20) if big else ""
        label = f"g{generation}.{i}"
        c = mem.commit(label=label, allow_empty=True)
        acks.append(c.seq, mem.state_hash(), label)
        if rng.random() < 0.04:
            mem.checkpoint()
    mem.close()
'''

# A reader process: refresh (sometimes reopen) in a loop until the stop file
# exists; writes "S <head seq> <hash>" for every new head it sees, "A <seq> <hash>"
# for a past state it read, and "ERR ..." for any error (there must be none).
READER_SRC = r'''
import faulthandler, os, random, sys, time
faulthandler.enable()  # a SIGBUS or SIGSEGV prints where it happened
from myosotis import Memory, MyosotisError
path, out_path, stop_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
out = open(out_path, "w", buffering=1)  # line by line: a crash loses no line
mem = Memory.open(path, readonly=True)
print("STARTED", flush=True)
last = -1
while not os.path.exists(stop_path):
    try:
        if mem is None or rng.random() < 0.03:
            if mem is not None:
                mem.close()
            mem = Memory.open(path, readonly=True)
        else:
            mem.refresh()
        seq = mem.head.seq if mem.head is not None else 0
        if seq != last:
            out.write(f"S {seq} {mem.state_hash()}\n")
            last = seq
        if seq and rng.random() < 0.05:
            old = rng.randint(max(1, seq - 50), seq)
            out.write(f"A {old} {mem.at(old).state_hash()}\n")
    except MyosotisError as e:
        out.write(f"ERR {type(e).__name__}: {e}\n".replace("\n", " ") + "\n")
        mem = None
    time.sleep(rng.random() * 0.002)
out.close()
print("END", flush=True)
'''


@dataclass
class RunStats:
    kills: int = 0
    commits: int = 0
    recovered: int = 0  # commits a writer found durable but not yet acknowledged
    busy_rounds: int = 0  # rounds whose writer made at least one commit
    reader_heads: int = 0  # distinct head seqs the readers saw, summed over readers
    reader_past: int = 0  # past states the readers read
    checkpoints: int = 0
    seconds: float = 0.0


def end_reader(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for a reader told to stop (killing it after a minute); return its exit
    code and stderr."""
    try:
        _, err = drain(proc, timeout=60)
    except AssertionError as e:  # killed
        err = str(e)
    return proc.returncode, err


def expect_exit(server: ForkServer, status: int, want: str) -> None:
    got = describe_status(status)
    if got != want:
        raise AssertionError(f"writer: {got}, expected {want}\n{server.stderr_text()}")


def wait_for_acks(server: ForkServer, ack_path: Path, start: int, generation: int,
                  count: int) -> None:
    """Wait until the running writer has acknowledged ``count`` commits of its own
    (labelled ``g<generation>.``, in the ack log past byte ``start``, where the log
    ended when it started); fail with the writers' stderr if it ends first or takes
    longer than PROGRESS_TIMEOUT."""
    prefix = f"g{generation}."
    deadline = time.monotonic() + PROGRESS_TIMEOUT
    while True:
        with open(ack_path, "rb") as f:
            f.seek(start)
            done = sum(label.startswith(prefix) for _, _, label in parse_acks(f.read()))
        if done >= count:
            return
        if not server.running():
            raise AssertionError(f"writer {generation} ended ({describe_status(server.wait())}) "
                                 f"after {done} of {count} acknowledgements\n"
                                 f"{server.stderr_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"writer {generation} acknowledged {done} of {count} commits "
                                 f"in {PROGRESS_TIMEOUT} s\n{server.stderr_text()}")
        time.sleep(0.002)


def run_kills(tmp_path: Path, kills: int, seed: int) -> RunStats:
    """``kills`` rounds of start writer / wait (see EARLY_KILL_EVERY) / SIGKILL, with
    two readers reading throughout; then every check of the module docstring."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    path, ack_path = tmp_path / "data.myo", tmp_path / "acks.log"
    stop_file = tmp_path / "stop"
    server = ForkServer(WRITER_SRC, tmp_path / "writers.err")
    readers: list[subprocess.Popen[str]] = []
    outs = [tmp_path / f"reader{i}.out" for i in (1, 2)]
    stats = RunStats()
    try:
        server.start("writer", str(path), str(ack_path), seed, CHECKPOINT_FLOOR, 0, 5)
        expect_exit(server, server.wait(), "exit 0")
        readers = [spawn_python(READER_SRC, str(path), str(out), str(stop_file), str(seed + i))
                   for i, out in enumerate(outs)]
        for r in readers:
            read_line(r, "STARTED")
        for generation in range(1, kills + 1):
            # the killed writer may have left half a line, which the next one cuts
            ack_start = ack_path.read_bytes().rfind(b"\n") + 1
            server.start("writer", str(path), str(ack_path), rng.randrange(1 << 30),
                         CHECKPOINT_FLOOR, generation, 1 << 30)
            if generation % EARLY_KILL_EVERY:
                wait_for_acks(server, ack_path, ack_start, generation, LATE_KILL_AFTER)
                time.sleep(rng.uniform(0, 0.04))
            else:
                time.sleep(rng.uniform(0, 0.006))
            expect_exit(server, server.kill_and_wait(), "killed by SIGKILL")
            stats.kills += 1
        # one last writer: recovers and checks, commits nothing, exits
        server.start("writer", str(path), str(ack_path), 0, CHECKPOINT_FLOOR, kills + 1, 0)
        expect_exit(server, server.wait(), "exit 0")
    finally:
        stop_file.touch()
        ends = [end_reader(r) for r in readers]
        server.close()
    for out, (rc, err) in zip(outs, ends, strict=True):
        assert rc == 0 and err == "", f"{out.name} exited with {rc}:\n{err}"
    log = server.stderr_text()
    notes = [line for line in log.splitlines() if line.startswith("note: ")]
    # Nothing but notes and the warnings of torn tails kept aside: no writer error.
    kept = [line for line in log.splitlines() if "RecoveredTailWarning" in line]
    assert len(notes) + len(kept) == len(log.splitlines()), log
    stats.recovered = sum(line.startswith("note: recovered") for line in notes)

    # every commit in the file acknowledged exactly once, in order
    acks = read_acks(ack_path)
    truth = {seq: h for seq, h, _ in acks}
    assert [seq for seq, _, _ in acks] == list(range(1, len(acks) + 1))
    stats.commits = len(acks)
    stats.busy_rounds = len({label.split(".")[0] for _, _, label in acks}) - 1
    with Memory.open(path, readonly=True) as mem:
        assert mem.head is not None and mem.head.seq == len(acks)
        assert store_of(mem).problems == []
        labels = [c.label for c in mem.history()]
        assert labels == [label for _, _, label in acks]
        assert max(Counter(labels).values()) == 1  # no commit written twice
        assert mem.state_hash() == acks[-1][1]
        for seq, h, _ in acks:
            assert mem.at(seq).state_hash() == h, seq
        stats.checkpoints = len(store_of(mem).commits.checkpoints)
        report = mem.verify()
        assert report.ok, [str(f) for f in report.findings]
        assert report.commits == len(acks)

    # readers only ever saw acknowledged, whole states, never going backwards
    for out in outs:
        heads: list[int] = []
        for line in out.read_text().splitlines():
            kind, seq_s, h = line.split(" ", 2)
            assert kind in ("S", "A"), line
            assert truth.get(int(seq_s)) == h, (out.name, line)
            if kind == "S":
                heads.append(int(seq_s))
            else:
                stats.reader_past += 1
        assert heads == sorted(heads), out.name
        stats.reader_heads += len(heads)
    stats.seconds = time.monotonic() - t0
    return stats


# The writers write values of up to 3 MB: the pure-Python CRC32C (a few MB/s) makes
# the run several times slower (it passes, in about half a minute), too slow for the
# fast pass.
@pytest.mark.skipif(helper.IMPLEMENTATION == "python",
                    reason="needs the C helper's CRC32C speed (the pass with the C helper runs it)")
def test_sigkilled_writer_with_two_readers_20_kills(tmp_path: Path) -> None:
    """20 kills: readers see only acknowledged states, every acknowledged commit
    survives exactly once, and the file passes fsck."""
    stats = run_kills(tmp_path, kills=20, seed=11)
    print(stats)
    assert stats.kills == 20
    # the writers got work done between kills: LATE_KILL_AFTER acknowledged commits by
    # each of the 14 writers killed late, 6 by the first writer
    assert stats.commits > 40
    assert stats.checkpoints >= 2  # automatic and explicit checkpoints on the way
    assert stats.reader_heads >= 10  # the readers read while the writers wrote


@pytest.mark.slow
def test_sigkilled_writer_with_two_readers_1000_kills(tmp_path: Path) -> None:
    """The same with 1,000 kills on one file (one writer restart per kill; the
    readers run throughout)."""
    stats = run_kills(tmp_path, kills=1000, seed=2024)
    print(stats)
    assert stats.kills == 1000
    assert stats.recovered > 0  # some kills came between a commit and its acknowledgement
    assert stats.checkpoints >= 20
    assert stats.reader_heads >= 500



# A reader that stops right before it takes the shared truncation guard, until
# told to go on: where a reader that had read the file size first once died.
SCAN_RACE_READER_SRC = r'''
import contextlib, faulthandler, sys
faulthandler.enable()
import myosotis.storage.log as log_mod
from myosotis import Memory
real_guard = log_mod.truncation_guard

@contextlib.contextmanager
def late_guard(fd, exclusive):
    if not exclusive:
        print("SIZED", flush=True)  # the size is read; a new writer may cut the tail now
        sys.stdin.readline()  # "GO" once it has
    with real_guard(fd, exclusive):
        yield

log_mod.truncation_guard = late_guard
with Memory.open(sys.argv[1], readonly=True) as mem:
    print(f"HEAD {mem.head.seq} {mem.state_hash()}", flush=True)
'''


def test_reader_scan_racing_a_writer_that_cuts_a_torn_tail_survives(tmp_path: Path) -> None:
    """What the SIGKILL runs above hit now and then: a killed writer left a torn
    frame of half a megabyte; a reader reads the file size (torn tail included); a
    new writer opens and cuts the tail; then the reader scans. It must see the
    last whole commit, not touch the bytes that were cut (lock.py: "no reader dies
    of SIGBUS")."""
    from crashutil import append_bytes, send_line

    from myosotis.format.constants import KIND_COMMIT
    from myosotis.format.header import encode_frame

    path = tmp_path / "race.myo"
    with Memory.open(path, durability="none") as mem:
        for i in range(3):
            mem.create("N", i=i)
            mem.commit()
        good_end, truth = store_of(mem).log.valid_end, mem.state_hash()
    frame = encode_frame(KIND_COMMIT, b"x" * (1 << 20))
    append_bytes(path, frame[:len(frame) // 2])  # a dead writer's half-written frame
    reader = spawn_python(SCAN_RACE_READER_SRC, str(path))
    try:
        read_line(reader, "SIZED")
        with Memory.open(path) as writer:  # cuts the torn tail (§10 step 3)
            assert writer.head is not None and writer.head.seq == 3
        assert path.stat().st_size == good_end
        send_line(reader, "GO")
        assert read_line(reader, "HEAD") == f"HEAD 3 {truth}"
        assert reader.wait(timeout=30) == 0
    finally:
        stop(reader)
