"""Format version 3 (FORMAT.md §4, §6, §8.6, §12): UNDELETE, the ORIGIN record, when
a file moves to version 3, and what every reader (open, fsck, the reference
reader, the C helper and its twin, the stage file) makes of them."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from crashutil import frames_of, read_bytes, run_python
from model import FixedClock

from myosotis import (
    CorruptFileError,
    DamagedStageError,
    Delete,
    Memory,
    Set,
    Stage,
    Undelete,
    UnsupportedVersionError,
)
from myosotis.format import _helper_py as pure
from myosotis.format import header, helper
from myosotis.format.constants import KIND_GENESIS, KIND_ORIGIN, ORIGIN_STRUCT
from myosotis.format.header import encode_file_header, encode_frame
from myosotis.format.helper import ScanStatus, crc32c
from myosotis.format.records import OriginRecord, encode_origin
from myosotis.testing import open_memory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "formatspec"))
import reference_reader  # noqa: E402

needs_c = pytest.mark.skipif(helper.IMPLEMENTATION != "c", reason="C helper not built")


def _version(path: Path) -> int:
    return int.from_bytes(read_bytes(path)[8:10], "little")


def _deleted_node_file(path: Path, durability: str = "full") -> Memory:
    mem = open_memory(path, clock=FixedClock(), durability=durability)  # type: ignore[arg-type]
    a = mem.create("A", x=1)
    mem.commit("create")
    a.delete()
    mem.commit("delete")
    return mem


# --------------------------------------------------------------------------
# moving to version 3


def test_a_version_1_file_moves_to_3_only_when_an_undelete_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with _deleted_node_file(path) as mem:
        mem.create("B")
        mem.commit("no undelete")
        assert _version(path) == 1
        mem.stage(Undelete(1))
        assert _version(path) == 1  # staging writes nothing
        mem.discard()
        mem.stage(Undelete(1))
        before = read_bytes(path)
        mem.commit("undelete")
        after = read_bytes(path)
        assert _version(path) == 3 and mem.info().format_version == 3
        # Only the header changed before the new frame: ids and frames stay (§12).
        assert after[32:len(before.rstrip(b"\0"))] == before[32:len(before.rstrip(b"\0"))]
        assert after[:8] == before[:8] and after[10:28] == before[10:28]
    with Memory.open(path, readonly=True) as r:
        assert not r[1].deleted and r[1].x == 1 and r.verify().ok
    reference_reader.read_file(read_bytes(path))


def test_a_version_2_file_moves_to_3_and_keeps_its_flags(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with _deleted_node_file(path, durability="none") as mem:
        mem.create("B")
        mem.commit("flagged")
        assert _version(path) == 2
        mem.stage(Undelete(1))
        mem.commit("undelete")
        assert _version(path) == 3
        mem.create("C")
        mem.commit("flagged again")  # after the move's sync: this one is unsynced again
    flags = [read_bytes(path)[f.offset + 5] for f in frames_of(read_bytes(path))]
    assert flags[-1] == 1 and flags[-2] == 0  # the UNDELETE frame followed a sync
    with Memory.open(path) as mem:
        assert mem.verify().ok and [c.label for c in mem.history()][-2:] == [
            "undelete", "flagged again"]


# The steps of a commit that moves a file to version 3, as FileOps calls: the header
# write, its sync, the frame write (into free space), its sync. The child SIGKILLs
# itself just before or just after one of them.
_KILL_CHILD = r"""
import os, signal, sys
from myosotis import Undelete
from myosotis.testing import FileOps, open_memory
path, when, which = sys.argv[1], sys.argv[2], int(sys.argv[3])
class Killer(FileOps):
    armed = False
    n = 0
    def _step(self, op, *args):
        if self.armed:
            self.n += 1
            if self.n == which and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
        getattr(FileOps, op)(self, *args)
        if self.armed and self.n == which and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
    def pwrite(self, fd, data, off): self._step("pwrite", fd, data, off)
    def sync(self, fd): self._step("sync", fd)
ops = Killer()
mem = open_memory(path, fileops=ops)
mem.stage(Undelete(1))
ops.armed = True
mem.commit("undelete")
print("survived")
"""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("which", [1, 2, 3, 4])
def test_sigkill_around_the_move_to_version_3_leaves_a_readable_file(
        tmp_path: Path, when: str, which: int) -> None:
    path = tmp_path / "m.myo"
    _deleted_node_file(path).close()
    proc = run_python(_KILL_CHILD, str(path), when, str(which), check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    version = _version(path)
    assert version in (1, 3)
    with Memory.open(path) as mem:
        assert mem.verify().ok
        heads = [c.label for c in mem.history()]
        if heads[-1] == "undelete":
            assert version == 3 and not mem[1].deleted
        else:
            assert heads == ["create", "delete"] and mem[1].deleted
            mem.stage(Undelete(1))  # and the writer goes on
            mem.commit("again")
            assert _version(path) == 3
    reference_reader.read_file(read_bytes(path))


# --------------------------------------------------------------------------
# readers refuse what only version 3 may hold


def test_an_undelete_in_a_version_1_file_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with _deleted_node_file(path) as mem:
        mem.stage(Undelete(1))
        mem.commit("undelete")
    data = bytearray(read_bytes(path))
    data[:32] = encode_file_header(1)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="R54"):
        Memory.open(path)
    report = Memory.check_file(path)
    assert [f.code for f in report.errors] == ["rule"] and "R54" in report.errors[0].message
    with pytest.raises(reference_reader.SpecError, match="R54"):
        reference_reader.read_file(bytes(data))


def _fork(tmp_path: Path) -> Path:
    with open_memory(tmp_path / "src.myo", clock=FixedClock()) as mem:
        mem.create("A", x=1)
        mem.commit()
        mem.fork(1, tmp_path / "fork.myo")
    return tmp_path / "fork.myo"


def test_an_origin_frame_in_a_version_2_file_is_corruption(tmp_path: Path) -> None:
    path = _fork(tmp_path)
    data = bytearray(read_bytes(path))
    data[:32] = encode_file_header(2)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="R34"):
        Memory.open(path)
    assert [f.code for f in Memory.check_file(path).errors] == ["origin"]
    with pytest.raises(reference_reader.SpecError, match="R34"):
        reference_reader.read_file(bytes(data))


def _rebuilt(path: Path, origin: OriginRecord) -> bytes:
    data = read_bytes(path)
    frames = frames_of(data)
    assert [f.kind for f in frames] == [KIND_GENESIS, KIND_ORIGIN]
    return data[:frames[1].offset] + encode_frame(KIND_ORIGIN, encode_origin(origin))


@pytest.mark.parametrize("change", ["seq after base", "other id", "other hash",
                                    "base after seq", "zero id"])
def test_an_origin_that_disagrees_with_its_genesis_is_refused(tmp_path: Path,
                                                             change: str) -> None:
    path = _fork(tmp_path)
    data = read_bytes(path)
    o = OriginRecord(*ORIGIN_STRUCT.unpack_from(data, frames_of(data)[1].offset + 16))
    bad = {"seq after base": o._replace(seq=2), "other id": o._replace(commit_id=b"\1" * 32),
           "other hash": o._replace(state_hash=b"\1" * 32),
           "base after seq": o._replace(base_seq=5, base_commit_id=b"\1" * 32),
           "zero id": o._replace(commit_id=bytes(32))}[change]
    path.write_bytes(_rebuilt(path, bad))
    with pytest.raises(CorruptFileError, match="R87"):
        Memory.open(path)
    assert [f.code for f in Memory.check_file(path).errors] == ["origin"]
    with pytest.raises(reference_reader.SpecError, match="R87"):
        reference_reader.read_file(read_bytes(path))


def test_an_origin_frame_after_a_commit_is_refused(tmp_path: Path) -> None:
    path = _fork(tmp_path)
    data = read_bytes(path)
    origin_frame = data[frames_of(data)[1].offset:]
    with Memory.open(path) as mem:
        mem.create("B")
        mem.commit()
    tail = read_bytes(path)[len(data):].rstrip(b"\0")
    path.write_bytes(data[:frames_of(data)[1].offset] + tail + bytes(-len(tail) % 8)
                     + origin_frame)
    with pytest.raises(CorruptFileError):
        Memory.open(path)
    assert Memory.check_file(path).errors


def test_a_damaged_origin_frame_is_never_a_torn_tail(tmp_path: Path) -> None:
    """Written whole and synced with the genesis (R87, R28): damage in it is refused,
    never cut off as a crash leftover."""
    path = _fork(tmp_path)
    data = bytearray(read_bytes(path))
    data[frames_of(bytes(data))[1].offset + 20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        Memory.open(path)
    assert read_bytes(path) == bytes(data)


# --------------------------------------------------------------------------
# the C helper and its twin


@pytest.mark.parametrize("impl", [pytest.param(pure, id="pure"),
                                  pytest.param(helper, id="c", marks=needs_c)])
def test_kinds_4_and_5_are_valid_kinds_and_6_is_not(impl: object) -> None:
    """R22: the scan takes every version's kinds (4 ORIGIN, 5 LAYER); 6 is none's."""
    def frame(kind: int) -> bytes:
        head = bytes(4) + bytes([kind, 0, 0, 0]) + crc32c(b"").to_bytes(4, "little")
        return head + crc32c(head).to_bytes(4, "little")

    good = frame(1) + frame(KIND_ORIGIN)
    res = impl.scan_frames(good, 0, True)  # type: ignore[attr-defined]
    assert res.status == ScanStatus.CLEAN and bytes(res.kinds) == b"\x01\x04"
    res = impl.scan_frames(frame(1) + frame(5), 0, True)  # type: ignore[attr-defined]
    assert res.status == ScanStatus.CLEAN and bytes(res.kinds) == b"\x01\x05"
    res = impl.scan_frames(frame(1) + frame(6), 0, True)  # type: ignore[attr-defined]
    assert res.status == ScanStatus.TORN and list(res.offsets) == [0] and res.end == 16


@needs_c
def test_c_and_twin_agree_on_a_forked_file(tmp_path: Path) -> None:
    data = read_bytes(_fork(tmp_path))
    for verify in (True, False):
        want, got = pure.scan_frames(data, 32, verify), helper.scan_frames(data, 32, verify)
        assert (want.status, list(want.offsets), bytes(want.kinds), want.end) == \
            (got.status, list(got.offsets), bytes(got.kinds), got.end)
    assert helper.scan_frames(data, 32, True).kinds[1] == KIND_ORIGIN


# --------------------------------------------------------------------------
# the stage file (STAGE.md S2)


def test_a_stage_with_an_undelete_is_version_3(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with _deleted_node_file(path) as mem:
        head = mem.head
        assert head is not None
        stage = Stage(head.seq, head.id, (Undelete(1), Set(1, "x", 2)))
        stage.write(str(path))
        raw = read_bytes(Path(f"{path}.stage"))
        assert raw[8:10] == b"\x03\x00"
        assert Stage.read(str(path)).ops == (Undelete(1), Set(1, "x", 2))  # type: ignore[union-attr]
        Stage(head.seq, head.id, (Delete(1),)).write(str(path))
        assert read_bytes(Path(f"{path}.stage"))[8:10] == b"\x02\x00"
        # An UNDELETE in a version-2 stage is damage, not a newer stage.
        bad = bytearray(raw)
        bad[8:10] = b"\x02\x00"
        bad[-4:] = crc32c(bytes(bad[:-4])).to_bytes(4, "little")
        Path(f"{path}.stage").write_bytes(bytes(bad))
        with pytest.raises(DamagedStageError, match="S2"):
            Stage.read(str(path))


# --------------------------------------------------------------------------
# the golden vectors of version 3 (formatspec/vectors/undelete, forked)

VECTORS = Path(__file__).resolve().parent.parent / "formatspec" / "vectors"


def test_undelete_vector_is_version_3_and_holds_an_undelete() -> None:
    data = read_bytes(VECTORS / "undelete.myo")
    assert data[8:10] == b"\x03\x00"
    dump = reference_reader.read_file(data)
    ops = [m["op"] for c in dump.data["commits"] for m in c["mutations"]]
    assert "UNDELETE" in ops and dump.data["commits"][-1]["label"] == "restore 1"
    # the state after the restore is the state after commit 1, but for history
    assert dump.data["commits"][-1]["state_hash_after"] == \
        dump.data["commits"][0]["state_hash_after"]


def test_forked_vector_starts_with_a_genesis_and_its_origin(tmp_path: Path) -> None:
    data = read_bytes(VECTORS / "forked.myo")
    dump = reference_reader.read_file(data)
    kinds = [f["kind"] for f in dump.data["frames"]]
    assert kinds == ["GENESIS", "ORIGIN", "COMMIT"]
    origin, genesis = dump.data["origin"], dump.data["genesis"]
    assert origin["source_seq"] == genesis["base_seq"] == 1
    assert origin["source_commit_id"] == genesis["base_commit_id"]
    assert origin["source_state_hash"] == genesis["state_hash"]
    one = reference_reader.read_file(read_bytes(VECTORS / "one_commit.myo"))
    assert origin["source_commit_id"] == one.data["commits"][0]["id"]  # the same history
    (tmp_path / "f.myo").write_bytes(data)
    with Memory.open(tmp_path / "f.myo", readonly=True) as mem:
        o = mem.info().origin
        assert o is not None and o.seq == 1 and o.commit_id == origin["source_commit_id"]


def test_a_version_2_reader_refuses_the_version_3_vectors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """R11: a reader that knows versions up to 2 refuses a version-3 file as newer."""
    monkeypatch.setattr(header, "FORMAT_VERSION", 2)  # the header check of a v2 build
    for name in ("undelete", "forked"):
        (tmp_path / f"{name}.myo").write_bytes(read_bytes(VECTORS / f"{name}.myo"))
        for readonly in (True, False):
            with pytest.raises(UnsupportedVersionError, match="format_version 3"):
                Memory.open(tmp_path / f"{name}.myo", readonly=readonly)


def test_a_reader_follows_the_move_to_version_3(tmp_path: Path) -> None:
    """A reader opened on the version-1 file refreshes onto the UNDELETE commit."""
    path = tmp_path / "m.myo"
    with _deleted_node_file(path) as mem, Memory.open(path, readonly=True) as reader:
        assert reader.info().format_version == 1 and reader[1].deleted
        mem.stage(Undelete(1))
        mem.commit("undelete")
        assert reader.refresh() == 1
        assert reader.info().format_version == 3 and not reader[1].deleted
        assert reader.diff(2, 3).nodes[0].status == "undeleted"


# --------------------------------------------------------------------------
# files written whole (compaction §8.5, repair) keep version 3


def test_compaction_keeps_a_version_3_file_at_3_even_with_the_undelete_folded(
        tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with _deleted_node_file(path) as mem:
        mem.stage(Undelete(1))
        mem.commit("undelete")
        mem.create("B")
        mem.commit("after")
        h = mem.state_hash()
        mem.compact()  # the UNDELETE commit is folded into the genesis
        assert _version(path) == 3 and mem.state_hash() == h and mem.verify().ok
    with _deleted_node_file(tmp_path / "v1.myo") as mem:
        mem.compact()
        assert _version(tmp_path / "v1.myo") == 1


def test_repair_keeps_a_fork_at_version_3_with_its_origin(tmp_path: Path) -> None:
    path = _fork(tmp_path)
    # a version-2 checkpoint (checkpoint_floor: the §8.4 policy), not a layer
    with open_memory(path, clock=FixedClock(), durability="none",
                     checkpoint_floor=1 << 21) as mem:
        mem.create("B", x=1)
        mem.commit()
        assert mem.checkpoint()
        mem.get(2).x = 2
        mem.commit()
        origin = mem.info().origin
    data = bytearray(read_bytes(path))
    ckpt = [f for f in frames_of(bytes(data)) if f.kind == 2][0]
    data[ckpt.payload_start + 100] ^= 1  # the checkpoint fails R26: a cache to drop
    path.write_bytes(bytes(data))
    result = Memory.repair(path)
    assert result.actions and result.report.ok
    assert _version(path) == 3
    with Memory.open(path, readonly=True) as mem:
        assert mem.info().origin == origin and mem.get(2).x == 2
    reference_reader.read_file(read_bytes(path))
