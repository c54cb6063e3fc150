"""Determinism: the same workload with the same clock writes the same bytes, and
checkpoints are a cache of what replaying the commits gives (FORMAT.md §8.2, §8.4, §9).

The workload runs in this process and in child processes with other hash seeds
(``PYTHONHASHSEED``: set and dict orders of strings differ) and with the pure
Python helper (``MYOSOTIS_PURE=1``), so any dependence on iteration order or on
the helper implementation shows up as a byte difference.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from crashutil import (
    KIND_CHECKPOINT,
    KIND_COMMIT,
    FixedClock,
    checkpoint_fields,
    child_env,
    frames_of,
    read_bytes,
    run_python,
)

from myosotis import Memory
from myosotis.format.helper import IMPLEMENTATION
from myosotis.format.image import state_hash as image_hash
from myosotis.testing import open_memory, store_of

SMALL_FLOOR = 2048
HUGE_FLOOR = 1 << 40


def run_workload(path: str, floor: int, explicit_checkpoints: bool) -> list[str]:
    """A scripted workload; returns the state hash after each commit (index = seq - 1)."""
    rng = random.Random(42)
    hashes: list[str] = []
    with open_memory(path, clock=FixedClock(), checkpoint_floor=floor) as mem:

        def commit(label: str | None, **kw: bool) -> None:
            c = mem.commit(label=label, **kw)
            assert c is not None and c.seq == len(hashes) + 1
            hashes.append(mem.state_hash())

        iris = mem.create("Agent", name="Iris", goal="Explore ideas", tags=["curious"])
        commit("initial goal")
        echo = mem.create("Agent", name="Échо ✓", friend=iris, scores={"b": 2, "a": 1},
                          nested={"z": [1, {"y": None, "x": [True, False]}], "": -0.0})
        iris.friend = echo
        iris.numbers = [0, -1, 2**63 - 1, -(2**63), 1.5, float("inf"), -0.0]
        commit("second agent")
        iris.tags.append("patient")
        iris.tags.insert(0, "first")
        iris.tags[1] = "renamed"
        del iris.tags[2]
        echo.scores["c"] = 3
        del echo.scores["a"]
        echo.nested["z"][1]["x"].append(None)
        commit("list and map edits")
        if explicit_checkpoints:
            assert mem.checkpoint()
        del iris.goal
        note = mem.create("Note", text="temporary", about=iris)
        commit(None)
        note.delete()
        commit("delete a node")
        commit("an empty commit", allow_empty=True)
        with mem.transaction(label="in a transaction"):
            mem.create("Task", title="t", done=False, owner=echo)
        assert mem.head is not None and mem.head.seq == len(hashes) + 1
        hashes.append(mem.state_hash())
        # a longer random stretch: many nodes, big and small values, so that the
        # small floor triggers several automatic checkpoints
        for i in range(80):
            live = [n for n in mem.nodes()]
            for _ in range(rng.randint(1, 4)):
                r = rng.random()
                node = rng.choice(live)
                if r < 0.25:
                    node[f"f{rng.randrange(6)}"] = rng.choice(
                        [rng.randrange(-1000, 1000), "s" * rng.randrange(40), None, True,
                         rng.random(), [rng.randrange(9)] * rng.randrange(5)])
                elif r < 0.40:
                    live.append(mem.create(rng.choice(("Note", "Task", "Agent")),
                                           i=i, ref=rng.choice(live)))
                elif r < 0.50:
                    node["blob"] = "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(400))
                elif r < 0.65:
                    if "items" not in node:
                        node["items"] = []
                    node["items"].append({"i": i, "r": rng.choice(live)})
                elif r < 0.80:
                    if "m" not in node:
                        node["m"] = {}
                    node["m"][f"k{rng.randrange(20)}"] = [i, str(i)]
                elif r < 0.90:
                    fields = [f for f in node if f.startswith("f")]
                    if fields:
                        del node[rng.choice(fields)]
                elif node.id > 3:
                    node.delete()
                    live.remove(node)
            if explicit_checkpoints and i == 40:
                commit(f"r{i}", allow_empty=True)
                mem.checkpoint()
                continue
            commit(f"r{i}" if i % 3 else None, allow_empty=True)
    return hashes


CHILD = '''
import json, sys
from myosotis.format.helper import IMPLEMENTATION
from test_determinism import run_workload
hashes = run_workload(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1")
print(json.dumps({"impl": IMPLEMENTATION, "hashes": hashes}))
'''


def run_in_child(path: Path, floor: int, explicit: bool, **env: str) -> list[str]:
    """Run the workload in a child interpreter; check which helper it used."""
    out = json.loads(run_python(CHILD, str(path), str(floor), "1" if explicit else "0",
                                env=child_env(**env)).stdout)
    assert out["impl"] == ("python" if env.get("MYOSOTIS_PURE") == "1" else IMPLEMENTATION)
    return list(out["hashes"])


@pytest.fixture(scope="module")
def with_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("det") / "a.myo"
    return path, run_workload(str(path), SMALL_FLOOR, explicit_checkpoints=True)


@pytest.fixture(scope="module")
def replay_only(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("det") / "b.myo"
    return path, run_workload(str(path), HUGE_FLOOR, explicit_checkpoints=False)


def test_workload_writes_explicit_and_automatic_checkpoints(
        with_checkpoints: tuple[Path, list[str]], replay_only: tuple[Path, list[str]]) -> None:
    data = read_bytes(with_checkpoints[0])
    kinds = [f.kind for f in frames_of(data)]
    assert kinds.count(KIND_COMMIT) == len(with_checkpoints[1]) > 80
    assert kinds.count(KIND_CHECKPOINT) >= 5, kinds
    assert KIND_CHECKPOINT not in [f.kind for f in frames_of(read_bytes(replay_only[0]))]


def test_same_workload_twice_in_process_gives_byte_identical_files(
        tmp_path: Path, with_checkpoints: tuple[Path, list[str]]) -> None:
    path, hashes = with_checkpoints
    again = tmp_path / "again.myo"
    assert run_workload(str(again), SMALL_FLOOR, explicit_checkpoints=True) == hashes
    assert read_bytes(again) == read_bytes(path)


@pytest.mark.parametrize("env", [
    pytest.param({"PYTHONHASHSEED": "1"}, id="hashseed-1"),
    pytest.param({"PYTHONHASHSEED": "4242", "MYOSOTIS_PURE": "1"}, id="pure-hashseed-4242"),
])
def test_same_workload_in_another_process_gives_byte_identical_files(
        tmp_path: Path, with_checkpoints: tuple[Path, list[str]], env: dict[str, str]) -> None:
    """§9.2: the image is canonical (sorted ids, fields, map keys), so neither the
    hash seed nor the helper implementation (C or pure Python) changes a byte."""
    path, hashes = with_checkpoints
    other = tmp_path / "other.myo"
    assert run_in_child(other, SMALL_FLOOR, True, **env) == hashes
    assert read_bytes(other) == read_bytes(path)


def test_checkpoints_are_only_a_cache_the_commit_frames_are_identical(
        with_checkpoints: tuple[Path, list[str]], replay_only: tuple[Path, list[str]]) -> None:
    """§8.4: checkpoints never change commits: removing the checkpoint frames from the
    file written with them gives, byte for byte, the file written without them; so the
    commit ids and every state hash agree."""
    a, b = read_bytes(with_checkpoints[0]), read_bytes(replay_only[0])
    stripped = a[:32] + b"".join(a[f.offset:f.end] for f in frames_of(a)
                                  if f.kind != KIND_CHECKPOINT)
    # both end with free space (§3), whose length depends on where the frames end
    end = frames_of(b)[-1].end
    assert stripped == b[:end] and not any(b[end:])
    assert with_checkpoints[1] == replay_only[1]


def test_replay_from_the_start_reproduces_every_checkpoint_state_hash(
        with_checkpoints: tuple[Path, list[str]], replay_only: tuple[Path, list[str]]) -> None:
    """§8.2, R33, R80: for each CHECKPOINT frame (seq, commit_id, state_hash), the file
    without checkpoints, where ``at(seq)`` can only replay from the empty state, gives
    the same state hash, and commit ``seq`` there has the same id."""
    a = read_bytes(with_checkpoints[0])
    checkpoints = [f for f in frames_of(a) if f.kind == KIND_CHECKPOINT]
    assert checkpoints
    with Memory.open(replay_only[0], readonly=True) as replay, \
            Memory.open(with_checkpoints[0], readonly=True) as cached:
        assert store_of(replay).commits.checkpoints == []
        for f in checkpoints:
            seq, cid, stored = checkpoint_fields(a, f)
            assert image_hash(a[f.payload_start + 72:f.payload_end]) == stored  # R80
            assert replay.at(seq).state_hash() == stored.hex(), seq
            assert replay.at(seq).commit.id == cid.hex()  # R33
            assert cached.at(seq).state_hash() == stored.hex()
            assert stored.hex() == with_checkpoints[1][seq - 1]


def test_every_historical_state_agrees_with_and_without_checkpoints(
        with_checkpoints: tuple[Path, list[str]], replay_only: tuple[Path, list[str]]) -> None:
    hashes = with_checkpoints[1]
    with Memory.open(replay_only[0], readonly=True) as replay, \
            Memory.open(with_checkpoints[0], readonly=True) as cached:
        assert cached.state_hash() == replay.state_hash() == hashes[-1]
        for seq in range(1, len(hashes) + 1):
            assert cached.at(seq).state_hash() == hashes[seq - 1], seq
            assert replay.at(seq).state_hash() == hashes[seq - 1], seq
