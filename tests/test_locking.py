"""One writer, many readers, across processes.

The writer lock (storage/lock.py: ``flock`` on the sidecar ``<real path>.lock``
and an OFD lock on the data file's inode; tests/test_lock_alias.py covers the
names a file can have): a second writer gets LockedError at once or after
``lock_timeout``; readers
(``readonly=True``) never take it, see the commits present when they opened,
and move forward only on ``refresh()``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crashutil import finish, read_line, send_line, spawn_python, stop

from myosotis import LockedError, Memory

# A writer that holds the file and obeys commands on stdin, one per line:
#   COMMIT <n>       set node 1's "step" to n and commit; answers "ACK <seq> <hash>"
#   CLOSE_AFTER <s>  sleep s seconds, close the file; answers "CLOSED"
#   EXIT             leave
HOLDER_SRC = r'''
import sys, time
from myosotis import Memory
from myosotis.testing import open_memory
mem = Memory.open(sys.argv[1])
agent = mem.create("Agent", name="Iris", step=0)
c = mem.commit(label="first")
print(f"ACK {c.seq} {mem.state_hash()}", flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "COMMIT":
        agent["step"] = int(args[0])
        c = mem.commit(label=f"step {args[0]}")
        print(f"ACK {c.seq} {mem.state_hash()}", flush=True)
    elif cmd == "CLOSE_AFTER":
        time.sleep(float(args[0]))
        mem.close()
        print("CLOSED", flush=True)
    elif cmd == "EXIT":
        break
'''


def parse_ack(line: str) -> tuple[int, str]:
    tag, seq, h = line.split()
    assert tag == "ACK", line
    return int(seq), h


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, str]]:
    """A child process holding the writer lock of ``data.myo`` after one commit."""
    path = tmp_path / "data.myo"
    proc = spawn_python(HOLDER_SRC, str(path))
    try:
        seq, h = parse_ack(read_line(proc))
        assert seq == 1
        yield proc, path, h
    finally:
        stop(proc)


def test_second_writer_gets_locked_error_immediately(
        holder: tuple[subprocess.Popen[str], Path, str]) -> None:
    proc, path, _ = holder
    t0 = time.monotonic()
    with pytest.raises(LockedError, match="readonly=True"):
        Memory.open(path)
    assert time.monotonic() - t0 < 0.5  # lock_timeout=0: no waiting
    send_line(proc, "EXIT")
    finish(proc)


def test_second_writer_with_lock_timeout_gets_the_file_once_the_holder_closes(
        holder: tuple[subprocess.Popen[str], Path, str]) -> None:
    proc, path, h1 = holder
    send_line(proc, "CLOSE_AFTER 0.5")
    t0 = time.monotonic()
    with Memory.open(path, lock_timeout=2) as mem:
        waited = time.monotonic() - t0
        assert 0.3 <= waited < 2.0, waited
        assert read_line(proc) == "CLOSED"
        assert mem.head is not None and mem.head.seq == 1
        assert mem.state_hash() == h1
        mem.get(1)["step"] = 99
        c = mem.commit(label="second writer")
        assert c is not None and c.seq == 2
    send_line(proc, "EXIT")
    finish(proc)


def test_lock_timeout_expires_with_locked_error_while_the_holder_keeps_the_file(
        holder: tuple[subprocess.Popen[str], Path, str]) -> None:
    proc, path, _ = holder
    t0 = time.monotonic()
    with pytest.raises(LockedError):
        Memory.open(path, lock_timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    send_line(proc, "EXIT")
    finish(proc)


def test_writer_lock_is_released_when_the_holder_is_killed(
        holder: tuple[subprocess.Popen[str], Path, str]) -> None:
    proc, path, h1 = holder
    with pytest.raises(LockedError):
        Memory.open(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)
    with Memory.open(path) as mem:  # the kernel dropped the flock with the process
        assert mem.state_hash() == h1


def test_reader_sees_commits_of_a_writer_process_only_after_refresh(
        holder: tuple[subprocess.Popen[str], Path, str]) -> None:
    """A readonly reader opens while another process holds the writer lock; it sees
    the committed prefix at open time and nothing newer until refresh()."""
    proc, path, h1 = holder
    reader = Memory.open(path, readonly=True)
    try:
        assert reader.head is not None and reader.head.seq == 1
        assert reader.state_hash() == h1
        assert reader.get(1)["step"] == 0

        send_line(proc, "COMMIT 1")
        seq2, h2 = parse_ack(read_line(proc))
        assert seq2 == 2
        # committed and durable in the file, but this reader stays where it was
        assert reader.head.seq == 1
        assert reader.state_hash() == h1
        assert reader.get(1)["step"] == 0
        assert len(reader.history()) == 1

        assert reader.refresh() == 1
        assert reader.head is not None and reader.head.seq == 2
        assert reader.state_hash() == h2
        assert reader.get(1)["step"] == 1

        hashes = {1: h1, 2: h2}
        for n in range(2, 5):
            send_line(proc, f"COMMIT {n}")
            seq, h = parse_ack(read_line(proc))
            hashes[seq] = h
        assert reader.head.seq == 2
        assert reader.refresh() == 3
        assert reader.refresh() == 0  # nothing new
        assert reader.head is not None and reader.head.seq == 5
        assert reader.get(1)["step"] == 4
        assert [c.label for c in reader.history()] == [
            "first", "step 1", "step 2", "step 3", "step 4"]
        for seq, h in hashes.items():
            assert reader.at(seq).state_hash() == h
    finally:
        reader.close()
    send_line(proc, "EXIT")
    finish(proc)


# ---------------------------------------------------------------------- concurrency

CONC_WRITER_SRC = r'''
import random, sys
from myosotis import Memory
from myosotis.testing import open_memory
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(5)
mem = open_memory(path, checkpoint_floor=4096)
root = mem.create("Root", n=0, log=[], blob="")
c = mem.commit(label="root")
print(f"ACK {c.seq} {mem.state_hash()}", flush=True)
sys.stdin.readline()  # "GO" once the readers run
for i in range(2, n + 1):
    r = rng.random()
    if r < 0.3:
        mem.create("Item", i=i, parent=root)
    elif r < 0.5:
        root["log"].append(i)
    elif r < 0.6:
        root["blob"] = "b" * rng.randint(500, 4000)  # large: automatic checkpoints
    else:
        root["n"] = i
    c = mem.commit(label=f"c{i}")
    print(f"ACK {c.seq} {mem.state_hash()}", flush=True)
mem.close()
'''

CONC_READER_SRC = r'''
import random, sys, time
from myosotis import Memory
path, seed, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
mem = Memory.open(path, readonly=True)
print("STARTED", flush=True)
deadline = time.monotonic() + 60
while True:
    if rng.random() < 0.1:
        mem.close()
        mem = Memory.open(path, readonly=True)
        how = "O"
    else:
        mem.refresh()
        how = "F"
    seq = mem.head.seq if mem.head is not None else 0
    print(f"{how} {seq} {mem.state_hash()}")
    if seq > 1 and rng.random() < 0.3:
        old = rng.randint(1, seq)
        print(f"A {old} {mem.at(old).state_hash()}")
    if seq >= target:
        break
    if time.monotonic() > deadline:
        raise SystemExit(f"reader stuck at {seq}")
    time.sleep(rng.random() * 0.002)
mem.close()
print("END", flush=True)
'''


def test_readers_in_other_processes_only_ever_see_committed_states(tmp_path: Path) -> None:
    """One writer process commits 300 times (with automatic checkpoints) while two
    reader processes loop over open/refresh/read. Every (seq, state hash) a reader
    reports equals the writer's own hash at that seq; readers never error and never
    move backwards."""
    n = 300
    path = tmp_path / "conc.myo"
    writer = spawn_python(CONC_WRITER_SRC, str(path), str(n))
    readers: list[subprocess.Popen[str]] = []
    try:
        truth: dict[int, str] = {}
        seq, h = parse_ack(read_line(writer))
        truth[seq] = h
        readers = [spawn_python(CONC_READER_SRC, str(path), str(seed), str(n))
                   for seed in (1, 2)]
        for r in readers:
            assert read_line(r) == "STARTED"
        send_line(writer, "GO")
        out, err = finish(writer, timeout=120)
        assert err == ""
        for line in out.splitlines():
            seq, h = parse_ack(line)
            truth[seq] = h
        assert sorted(truth) == list(range(1, n + 1))
        for r in readers:
            out, err = finish(r, timeout=120)
            assert err == "", err
            lines = out.splitlines()
            assert lines[-1] == "END"
            heads: list[int] = []
            for line in lines[:-1]:
                how, s, h = line.split()
                assert truth[int(s)] == h, line
                if how in "OF":
                    heads.append(int(s))
            assert heads == sorted(heads)  # never backwards, reopen or refresh
            assert heads[-1] == n
            # the reader really ran alongside the writer, not only after it
            assert len(set(heads)) >= 5, heads
    finally:
        for p in (writer, *readers):
            stop(p)


STEP5_READER_SRC = r'''
import sys, time
import myosotis.format.walk as walk_mod
from myosotis.storage.log import LogFile
r = LogFile.open(sys.argv[1], readonly=True)
orig = walk_mod.frame_payload_ok
def paused(buf, off):
    print("CHECKING", flush=True)  # §10 step 5 on the newest frame: the parent opens a writer
    time.sleep(1.0)  # long enough for that writer to cut the frame, if nothing stops it
    return orig(buf, off)
walk_mod.frame_payload_ok = paused
print("ADDED", r.refresh(), flush=True)
'''


def test_a_writer_cannot_cut_the_torn_frame_a_reader_is_checking(tmp_path: Path) -> None:
    """A reader checks the newest frame in full (§10 step 5) while it holds the shared
    truncation guard, so a writer that opens meanwhile and cuts that torn frame waits
    for it; the reader never touches cut bytes (which would be SIGBUS)."""
    from myosotis.format.constants import KIND_COMMIT
    from myosotis.format.header import encode_frame
    from myosotis.storage.log import LogFile

    path = tmp_path / "t.myo"
    w = LogFile.open(str(path))
    w.append(KIND_COMMIT, b"a" * 4048, durable=False)  # the next frame starts a new page
    end = w.valid_end
    w.close()
    torn = bytearray(encode_frame(KIND_COMMIT, b"x" * 100_000))
    # A dead writer's last frame: header-valid, one sector never written (R28)
    torn[50_000 // 512 * 512:50_000 // 512 * 512 + 512] = bytes(512)
    with open(path, "r+b") as f:
        f.seek(end)
        f.write(torn)
    reader = spawn_python(STEP5_READER_SRC, str(path))
    try:
        read_line(reader, "CHECKING")
        writer = LogFile.open(str(path))  # cuts the torn frame, once it may
        try:
            assert writer.valid_end == end and writer.torn_bytes == 0
        finally:
            writer.close()
        assert read_line(reader, "ADDED") == "ADDED 0"  # the torn frame was ignored
        assert reader.wait(timeout=30) == 0, reader.stderr.read() if reader.stderr else ""
    finally:
        stop(reader)
    assert os.path.getsize(path) == end
