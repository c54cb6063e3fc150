"""Bit flips: every single-bit error in a small file is detected, never served as valid.

FORMAT.md covers every byte of a file by a check: the file header by its CRC
and must-be-zero fields (R10-R12), frame headers by their CRC (R21, R23),
payloads by theirs (R26), padding by being zero (R27), snapshots by their
BLAKE3 state hash (R80, R85), commits by the hash chain (R32). So for each
flipped bit the outcome must be one of:

- *refused*: ``Memory.open`` (or reading some commit) raises a MyosotisError;
- *served*: every commit of the undamaged file is shown, with its id and state
  hash, and ``verify_file`` reports the flip (an error, or a warning for a
  skipped checkpoint or for damage in free space). A damaged last commit is
  never dropped as a torn tail: a torn write cannot flip a bit of a sector it
  wrote (§10 step 5, R28), and every commit of these files was acknowledged.

Never a different state served as valid, and never an undetected flip: the
format has no byte whose value does not matter (padding must be zero, R27).
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from myosotis import Memory, MyosotisError
from myosotis.engine.verify import verify_file
from myosotis.format import helper
from myosotis.testing import open_memory, store_of


# About 4,700 opens and fscks: a few seconds with the C helper, too slow for the
# quick pure-Python pass (its CRC32C runs at a few MB/s).
def slow_if_pure(test: Callable[..., None]) -> Callable[..., None]:
    return pytest.mark.slow(test) if helper.IMPLEMENTATION == "python" else test


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000

    def __call__(self) -> int:
        self.now += 1000
        return self.now


@dataclass(frozen=True)
class Served:
    """What a reader showed: (seq, commit id, state hash) for every commit, head last."""

    commits: tuple[tuple[int, str, str], ...]
    base_seq: int


def serve(path: Path) -> Served:
    """Open read-only and read the state hash at every commit; MyosotisError if refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Memory.open(path, readonly=True) as mem:
            commits = tuple((c.seq, c.id, mem.at(c.seq).state_hash()) for c in mem.history())
            if commits:
                assert mem.state_hash() == commits[-1][2]
            for n in mem.nodes(deleted=True):  # decode every node of the head
                n.fields()
            return Served(commits, store_of(mem).commits.base_seq)


def small_file(path: Path, durability: Literal["full", "none"] = "none") -> None:
    """Three commits (a checkpoint after the second), every value type, about 500 bytes
    (with durability "full", followed by its free space, FORMAT.md §3)."""
    with Memory.open(path, clock=Clock(), durability=durability) as mem:
        a = mem.create("Agent", name="Iris", n=-3, f=0.5, ok=True, tags=["a", None])
        mem.commit("one")
        b = mem.create("Tool", owner=a, m={"k": [1]})
        del a.ok
        mem.commit()
        mem.checkpoint()
        b.m["z"] = 2.5
        a.delete()
        mem.commit("three")


def larger_file(path: Path) -> None:
    """A genesis (compaction), several checkpoints and a dozen commits."""
    with open_memory(path, clock=Clock(), durability="none", checkpoint_floor=300) as mem:
        nodes = [mem.create("N", i=i, s="x" * i, l=[i, {"k": i}]) for i in range(4)]
        mem.commit("start")
        for r in range(12):
            nodes[r % 4].i = r
            nodes[r % 4].l.append(r)
            if r == 5:
                mem.create("Late", ref=nodes[0])
            mem.commit(f"r{r}")
            if r == 3:
                mem.compact(at=2)


Outcome = str


def classify(path: Path, original: Served, where: str) -> Outcome:
    """Check the promise of the module docstring for the damaged file at ``path``."""
    try:
        got = serve(path)
    except MyosotisError:
        return "refused"
    by_seq = {seq: (cid, h) for seq, cid, h in original.commits}
    for seq, cid, h in got.commits:
        assert by_seq.get(seq) == (cid, h), f"{where}: commit {seq} served with another state"
    assert got.base_seq == original.base_seq, f"{where}: base moved"
    report = verify_file(str(path))
    assert report.findings, f"{where}: the flip was served and fsck found nothing"
    # Every commit of the file was acknowledged: a flip never makes one vanish
    # as a torn tail (§10 step 5, R28), whatever fsck would say about it.
    assert got.commits == original.commits, f"{where}: commits dropped"
    return "served whole, fsck reports"


def flip_each_bit(tmp_path: Path, data: bytes, original: Served,
                  positions: list[tuple[int, int]]) -> Counter[Outcome]:
    path = tmp_path / "flipped.myo"
    outcomes: Counter[Outcome] = Counter()
    buf = bytearray(data)
    for offset, bit in positions:
        buf[offset] ^= 1 << bit
        path.write_bytes(buf)
        outcomes[classify(path, original, f"bit {bit} of byte {offset}")] += 1
        buf[offset] ^= 1 << bit
    return outcomes


def flip_sweep(tmp_path: Path, src: Path) -> Counter[Outcome]:
    data = src.read_bytes()
    original = serve(src)
    assert len(original.commits) == 3 and not verify_file(str(src)).findings
    positions = [(o, b) for o in range(len(data)) for b in range(8)]
    outcomes = flip_each_bit(tmp_path, data, original, positions)
    assert sum(outcomes.values()) == 8 * len(data)
    return outcomes


@slow_if_pure
def test_every_single_bit_flip_of_a_small_file_is_detected(tmp_path: Path) -> None:
    src = tmp_path / "small.myo"
    small_file(src)
    outcomes = flip_sweep(tmp_path, src)
    # The header and the frames refuse; a flip in the checkpoint makes it skipped.
    assert set(outcomes) == {"refused", "served whole, fsck reports"}, outcomes


@slow_if_pure
def test_every_single_bit_flip_of_a_durable_file_with_free_space_is_detected(
        tmp_path: Path) -> None:
    """The same file written with durability "full": a flip in its last commit was
    once dropped as a torn tail (and overwritten by the next writer) although
    commit() had returned; a flip in its free space is a torn tail that holds no
    frame (served whole, fsck warns)."""
    src = tmp_path / "durable.myo"
    small_file(src, "full")
    with Memory.open(src, readonly=True) as mem:
        assert store_of(mem).log.free_bytes > 0
    outcomes = flip_sweep(tmp_path, src)
    assert set(outcomes) == {"refused", "served whole, fsck reports"}, outcomes


@slow_if_pure
def test_every_single_bit_flip_of_a_file_compacted_at_its_head_is_detected(
        tmp_path: Path) -> None:
    """After compact() at the head the file is a header and one genesis frame. A flip
    in the genesis frame once read as a torn tail: an empty state, cut by the next
    writer. A genesis frame is never torn (R85, R28): every flip is refused."""
    src = tmp_path / "compacted.myo"
    small_file(src, "full")
    with Memory.open(src, clock=Clock()) as mem:
        mem.compact()
    data = src.read_bytes()
    original = serve(src)
    positions = [(o, b) for o in range(len(data)) for b in range(8)]
    outcomes = flip_each_bit(tmp_path, data, original, positions)
    assert outcomes == Counter({"refused": 8 * len(data)}), outcomes


@pytest.mark.slow
def test_random_bit_flips_and_byte_smashes_of_a_larger_file_are_detected(
        tmp_path: Path) -> None:
    """A large random sample: single flips, double flips in one frame, random bytes."""
    src = tmp_path / "larger.myo"
    larger_file(src)
    data = src.read_bytes()
    original = serve(src)
    assert original.base_seq == 2 and not verify_file(str(src)).findings
    rng = random.Random(7)
    singles = [(rng.randrange(len(data)), rng.randrange(8)) for _ in range(2500)]
    outcomes = flip_each_bit(tmp_path, data, original, singles)
    path = tmp_path / "smashed.myo"
    for k in range(1500):
        buf = bytearray(data)
        if k % 2:
            o = rng.randrange(len(data) - 8)
            for _ in range(2):
                buf[o + rng.randrange(8)] ^= 1 << rng.randrange(8)
        else:
            buf[rng.randrange(len(data))] = rng.randrange(256)
        if buf == data:
            continue
        path.write_bytes(buf)
        outcomes[classify(path, original, f"smash {k}")] += 1
    assert outcomes["refused"] and outcomes["served whole, fsck reports"]
