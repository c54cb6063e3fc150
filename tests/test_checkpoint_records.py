"""A checkpoint whose image hashes right but holds a malformed node record (§8.4).

Its hash vouches for its bytes, not for the writer that made them: readers use
it (R80 checks the hash and the tables, never every record, so that opening
costs no decode of the whole state) and refuse a record when they read it,
naming that record's offset in the file, never the commit that happened to
touch it. fsck, which checks every checkpoint against a replay, reports it as
an error (readers use it), and ``--repair`` drops it (checkpoints are a cache),
after which the file reads the true state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crashutil import frames_of, read_bytes
from model import FixedClock

from myosotis import CorruptFileError, Memory
from myosotis.engine.policy import CHECKPOINT_FLOOR
from myosotis.engine.verify import repair_file, verify_file
from myosotis.format.constants import KIND_CHECKPOINT, SNAPSHOT_PREFIX_SIZE
from myosotis.format.header import encode_frame
from myosotis.format.image import StateImage, state_hash
from myosotis.testing import open_memory


def build(path: Path) -> str:
    """Two nodes, a checkpoint, then a commit that changes node 1; the head's state
    hash. Written by the version-2 checkpoint policy (FORMAT.md §8.4): the checkpoint
    is a whole image (layers, §8.7, are in test_checkpoint_layers.py)."""
    with open_memory(path, clock=FixedClock(), checkpoint_floor=CHECKPOINT_FLOOR) as mem:
        a = mem.create("A", n=1)
        mem.create("B", back=a)
        mem.commit("one")
        mem.checkpoint()
        a.n = 2
        mem.commit("two")
        return mem.state_hash()


def break_first_record(path: Path) -> int:
    """Set a reserved flag bit of node 1's record in the checkpoint, then make the
    checkpoint's state hash and both frame CRCs right again. Returns the record's
    file offset."""
    data = bytearray(read_bytes(path))
    cp = [f for f in frames_of(bytes(data)) if f.kind == KIND_CHECKPOINT][0]
    payload = bytearray(data[cp.payload_start:cp.payload_end])
    image = payload[SNAPSHOT_PREFIX_SIZE:]
    img = StateImage(memoryview(bytes(image)), 0)
    at = img._data_at  # node 1's record comes first (ids are 1..N, R73)
    image[at] |= 0x80  # reserved node flag bit (§8.1)
    payload[SNAPSHOT_PREFIX_SIZE:] = image
    payload[40:72] = state_hash(bytes(image))
    frame = encode_frame(KIND_CHECKPOINT, bytes(payload))
    data[cp.offset:cp.offset + len(frame)] = frame
    path.write_bytes(bytes(data))
    return cp.payload_start + SNAPSHOT_PREFIX_SIZE + at


@pytest.mark.parametrize("readonly", [True, False])
def test_open_blames_the_checkpoint_record_not_the_commit_replayed_over_it(
        tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "cp.myo"
    build(path)
    record = break_first_record(path)
    with pytest.raises(CorruptFileError) as ei:
        Memory.open(path, readonly=readonly)
    assert ei.value.offset == record and "§8.4" in str(ei.value)


def test_fsck_reports_it_as_an_error_and_repair_drops_it(tmp_path: Path) -> None:
    path = tmp_path / "cp.myo"
    head = build(path)
    break_first_record(path)
    report = verify_file(str(path))
    cp = [f for f in frames_of(read_bytes(path)) if f.kind == KIND_CHECKPOINT][0]
    assert [(f.severity, f.code, f.offset) for f in report.findings] == \
        [("error", "checkpoint", cp.offset)]
    assert "readers use it" in report.findings[0].message
    _, actions = repair_file(str(path))
    assert actions and verify_file(str(path)).ok
    with Memory.open(path, readonly=True) as mem:
        assert mem.state_hash() == head and mem[1].n == 2
