"""The golden vectors of formatspec/vectors/ (FORMAT.md §12, §13).

Three independent statements about every vector:
- myosotis opens the ``.myo`` and sees exactly the state and history in the
  ``.json`` (nodes, fields bit for bit, tombstones, next_node_id, state hash,
  commit ids and labels, and the state hash after every commit via time travel);
- ``formatspec/reference_reader.py``, written from FORMAT.md alone, reads the
  ``.myo`` to exactly the ``.json``;
- the current code regenerates every file byte for byte (a difference is a
  format change, which needs a new format_version: vectors are never edited).
The suite runs once per helper implementation (CI sets MYOSOTIS_PURE=1 for
the second pass); nothing here depends on which one is active.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from myosotis import CorruptFileError, Create, Memory, Node, Ref
from myosotis.engine.verify import verify_file
from myosotis.format.constants import KIND_COMMIT
from myosotis.format.header import encode_frame
from myosotis.testing import store_of

FORMATSPEC = Path(__file__).resolve().parent.parent / "formatspec"
VECTORS_DIR = FORMATSPEC / "vectors"
sys.path.insert(0, str(FORMATSPEC))
import make_vectors  # noqa: E402
import reference_reader  # noqa: E402

NAMES = list(make_vectors.VECTORS)
# Vectors of damaged files readers must refuse: their JSON is {"error": {rule, offset}}.
REFUSED = [n for n in NAMES if "error" in json.loads(
    (VECTORS_DIR / f"{n}.json").read_text("utf-8"))]
READABLE = [n for n in NAMES if n not in REFUSED]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------
# helpers


def expected(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS_DIR / f"{name}.json").read_text("utf-8"))
    return doc


def vector_bytes(name: str) -> bytes:
    return (VECTORS_DIR / f"{name}.myo").read_bytes()


def copy_vector(name: str, tmp_path: Path) -> Path:
    """A private copy: opening a vector must never touch the golden file
    (a writer cuts a torn tail; any open may create a lock sidecar)."""
    dst = tmp_path / f"{name}.myo"
    shutil.copyfile(VECTORS_DIR / f"{name}.myo", dst)
    return dst


def tagged(v: Any) -> Any:
    """A value read through the public API, in the vectors' tagged JSON form."""
    if v is None or type(v) is bool:
        return v
    if type(v) is int:
        return {"int": str(v)}
    if type(v) is float:
        return {"float": f"{struct.unpack('<Q', struct.pack('<d', v))[0]:016x}"}
    if type(v) is str:
        return {"str": v}
    if type(v) is Node:
        return {"ref": v.id}
    if type(v) is list:
        return {"list": [tagged(x) for x in v]}
    if type(v) is dict:
        return {"map": [[k, tagged(v[k])] for k in sorted(v, key=lambda k: k.encode())]}
    raise AssertionError(f"unexpected value {v!r} of type {type(v).__name__}")


def engine_state(mem: Memory) -> dict[str, Any]:
    """The state of ``mem`` in the shape of the JSON's ``state``."""
    return {
        "next_node_id": mem.next_node_id,
        "nodes": [{"id": n.id, "type": n.type, "deleted": n.deleted,
                   "fields": [[k, tagged(v)] for k, v in sorted(
                       n.fields().items(), key=lambda kv: kv[0].encode())]}
                  for n in mem.nodes(deleted=True)],
        "state_hash": mem.state_hash(),
    }


def hex_dump_lines(text: str) -> list[tuple[int, bytes]]:
    """(offset, bytes) of every data line of an annotated hex dump: an 8-digit
    offset, two spaces, up to 16 bytes in a 47-column field, the note. A line
    "*" stands for 16-byte lines of zeros up to the next line's offset."""
    out: list[tuple[int, bytes]] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line == "*":
            skipping = True
            continue
        off = int(line[:8], 16)
        if skipping:
            at = out[-1][0] + len(out[-1][1])
            out += [(a, bytes(16)) for a in range(at, off, 16)]
            skipping = False
        out.append((off, bytes.fromhex(line[10:57])))
    return out


# --------------------------------------------------------------------------
# myosotis reads every vector to its JSON


@pytest.mark.parametrize("name", READABLE)
def test_engine_reads_vector_to_the_expected_state(name: str, tmp_path: Path) -> None:
    want = expected(name)
    with Memory.open(copy_vector(name, tmp_path), readonly=True) as mem:
        assert engine_state(mem) == want["state"]
        assert len(mem) == sum(not n["deleted"] for n in want["state"]["nodes"])
        # each checkpoint that is not usable (R80) is reported and skipped
        unusable = [c for c in want["checkpoints"] if not c["usable"]]
        assert len(store_of(mem).problems) == len(unusable)


@pytest.mark.parametrize("name", READABLE)
def test_engine_reads_vector_history(name: str, tmp_path: Path) -> None:
    """Commit ids (§9.1), parents (R32), labels (empty = none), timestamps."""
    want = expected(name)["commits"]
    with Memory.open(copy_vector(name, tmp_path), readonly=True) as mem:
        got = [{"seq": c.seq, "id": c.id, "parent": c.parent, "label": c.label,
                "next_node_id": c.next_node_id,
                "timestamp_us": (c.timestamp - EPOCH) // dt.timedelta(microseconds=1)}
               for c in mem.history()]
        assert got == [{"seq": c["seq"], "id": c["id"], "parent": c["parent"],
                        "label": c["label"] or None, "next_node_id": c["next_node_id"],
                        "timestamp_us": c["timestamp_us"]} for c in want]
        genesis = expected(name)["genesis"]
        base = genesis["base_commit_id"] if genesis and genesis["base_seq"] else None
        assert (mem.head.id if mem.head else None) == (want[-1]["id"] if want else base)


@pytest.mark.parametrize("name", READABLE)
def test_engine_time_travel_matches_state_hash_after_each_commit(
        name: str, tmp_path: Path) -> None:
    """The state at every commit (replayed, or from the checkpoint) hashes as the
    reference reader's replay does (§8.4, §9.2)."""
    want = expected(name)["commits"]
    with Memory.open(copy_vector(name, tmp_path), readonly=True) as mem:
        assert [mem.at(c["seq"]).state_hash() for c in want] == \
            [c["state_hash_after"] for c in want]


def test_engine_keeps_every_float_bit_of_all_values(tmp_path: Path) -> None:
    """§5 tag 0x04: -0.0 and each NaN payload (quiet, negative, signalling) survive."""
    with Memory.open(copy_vector("all_values", tmp_path), readonly=True) as mem:
        fields = mem.get(1).fields()
        bits = {k: struct.unpack("<Q", struct.pack("<d", v))[0]
                for k, v in fields.items() if type(v) is float}
    assert bits["float_neg_zero"] == 0x8000000000000000
    assert bits["float_nan_payload"] == 0x7FF80000DEADBEEF
    assert bits["float_neg_nan_payload"] == 0xFFF8000000000001
    assert bits["float_snan"] == 0x7FF0000000000001
    assert fields["int_min"] == -(1 << 63) and fields["int_max"] == (1 << 63) - 1
    assert fields["true"] is True and fields["false"] is False


# --------------------------------------------------------------------------
# the independent reader agrees


@pytest.mark.parametrize("name", READABLE)
def test_reference_reader_dump_equals_vector_json(name: str) -> None:
    want = expected(name)
    del want["vector"], want["description"]
    assert reference_reader.read_file(vector_bytes(name)).data == want


@pytest.mark.parametrize("name", REFUSED)
def test_damaged_vector_is_refused_by_every_reader_at_the_same_offset(
        name: str, tmp_path: Path) -> None:
    """The reference reader, the engine (reader and writer) and fsck refuse the file
    at the offset and for the rule its JSON names; a writer cuts nothing."""
    err = expected(name)["error"]
    with pytest.raises(reference_reader.SpecError) as spec:
        reference_reader.read_file(vector_bytes(name))
    assert {"rule": spec.value.rule, "offset": spec.value.offset} == err
    path = copy_vector(name, tmp_path)
    for readonly in (True, False):
        with pytest.raises(CorruptFileError) as ei:
            Memory.open(path, readonly=readonly)
        assert ei.value.offset == err["offset"]
        assert err["rule"] in str(ei.value)
    assert path.read_bytes() == vector_bytes(name)
    report = verify_file(str(path))
    assert [f.offset for f in report.errors][:1] == [err["offset"]]


@pytest.mark.parametrize("name", NAMES)
def test_hex_dump_holds_exactly_the_bytes_of_the_file(name: str) -> None:
    lines = hex_dump_lines((VECTORS_DIR / f"{name}.hex").read_text("utf-8"))
    at = 0
    for off, chunk in lines:
        assert off == at
        at += len(chunk)
    assert b"".join(chunk for _, chunk in lines) == vector_bytes(name)


def test_readme_walkthrough_quotes_one_commit_hex_exactly() -> None:
    """The worked example FORMAT.md §13 points to shows the real bytes."""
    readme = (VECTORS_DIR / "README.md").read_text("utf-8")
    dump = (VECTORS_DIR / "one_commit.hex").read_text("utf-8").splitlines()
    quoted = [ln for ln in readme.splitlines() if re.match(r"^[0-9a-f]{8}  ", ln)]
    assert quoted == [ln for ln in dump if not ln.startswith("#")]
    assert expected("one_commit")["commits"][0]["id"] in readme
    assert expected("one_commit")["state"]["state_hash"] in readme
    assert expected("empty")["state"]["state_hash"] in readme


# --------------------------------------------------------------------------
# specific statements of FORMAT.md the vectors pin down


def test_empty_vector_is_the_header_alone_and_hashes_the_empty_image() -> None:
    """§2: a new file is exactly the header; §8.1: the empty state's image."""
    data = vector_bytes("empty")
    assert len(data) == 32 and data[:8] == b"MYOSOTIS"
    empty_image = bytes([1] + [0] * 23)
    assert expected("empty")["state"]["state_hash"] == reference_reader.State().hash()
    assert reference_reader.State().image() == empty_image


def test_torn_tail_vector_is_edits_plus_a_partial_frame() -> None:
    edits, torn = vector_bytes("edits"), vector_bytes("torn_tail")
    want = expected("torn_tail")
    assert torn.startswith(edits) and len(torn) > len(edits)
    assert want["valid_end"] == len(edits)
    assert want["torn_tail"] == {"offset": len(edits), "length": len(torn) - len(edits),
                                 "ignored": True}
    assert want["state"] == expected("edits")["state"]


def test_reader_ignores_torn_tail_and_leaves_file_alone(tmp_path: Path) -> None:
    """§10 step 3: a reader ignores the torn tail and does not cut it."""
    path = copy_vector("torn_tail", tmp_path)
    with Memory.open(path, readonly=True) as mem:
        assert mem.state_hash() == expected("edits")["state"]["state_hash"]
        assert len(mem.history()) == len(expected("edits")["commits"])
    assert path.read_bytes() == vector_bytes("torn_tail")


def test_writer_cuts_torn_tail_before_appending(tmp_path: Path) -> None:
    """§10 step 3: a writer cuts the file to the valid end; the next commit follows it."""
    path = copy_vector("torn_tail", tmp_path)
    with Memory.open(path, clock=make_vectors.fixed_clock()) as mem:
        assert path.read_bytes() == vector_bytes("edits")
        mem.get(1).title = "after recovery"
        mem.commit()
    after = path.read_bytes()
    assert after.startswith(vector_bytes("edits"))
    dump = reference_reader.read_file(after).data
    assert dump["torn_tail"] is None and len(dump["commits"]) == 7


def test_checkpoint_vector_checkpoint_names_commit_three_and_its_state() -> None:
    """R33 and §8.2: the checkpoint holds the state after the commit before it."""
    want = expected("checkpoint")
    (cp,) = want["checkpoints"]
    third = want["commits"][2]
    assert (cp["seq"], cp["commit_id"], cp["state_hash"], cp["usable"]) == \
        (3, third["id"], third["state_hash_after"], True)
    assert [f["kind"] for f in want["frames"]] == ["COMMIT"] * 3 + ["CHECKPOINT"] + ["COMMIT"] * 2


def test_edits_vector_holds_an_empty_commit_and_an_unlabelled_one() -> None:
    """§7: count = 0 is a valid commit; an empty label means no label."""
    commits = expected("edits")["commits"]
    assert [c["label"] for c in commits if not c["mutations"]] == ["marker"]
    assert [c["seq"] for c in commits if c["label"] == ""] == [4]
    # every opcode of version 1 (UNDELETE, version 3, has its own vector)
    assert {m["op"] for c in commits for m in c["mutations"]} == set(
        reference_reader.OPS.values()) - {"UNDELETE"}




def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x40]) + data[offset + 1:]


def test_damaged_middle_frame_is_corruption_for_both_readers(tmp_path: Path) -> None:
    """R26 / §10 step 5: a payload CRC failure in a frame that is not the last is
    corruption, not a torn tail; the engine and the spec reader both refuse."""
    frames = expected("edits")["frames"]
    bad = _flip(vector_bytes("edits"), frames[1]["offset"] + 16 + 10)
    with pytest.raises(reference_reader.SpecError) as info:
        reference_reader.read_file(bad)
    assert info.value.rule == "R26"
    path = tmp_path / "bad.myo"
    path.write_bytes(bad)
    with pytest.raises(CorruptFileError), Memory.open(path, readonly=True) as mem:
        mem.at(2).state_hash()  # refused at open (replay) or, at the latest, here


def test_damaged_last_frame_is_corruption_for_both_readers(tmp_path: Path) -> None:
    """§10 step 5, R28: a last frame that fails R26 although no sector of it is zero
    cannot be a torn write: both readers refuse it at its offset (once it was dropped
    as a torn tail, losing an acknowledged commit)."""
    want = expected("edits")
    last = want["frames"][-1]["offset"]
    bad = _flip(vector_bytes("edits"), last + 16 + 10)
    with pytest.raises(reference_reader.SpecError) as spec:
        reference_reader.read_file(bad)
    assert (spec.value.rule, spec.value.offset) == ("R28", last)
    path = tmp_path / "bad.myo"
    path.write_bytes(bad)
    with pytest.raises(CorruptFileError) as ei:
        Memory.open(path, readonly=True)
    assert ei.value.offset == last and "R28" in str(ei.value)


def test_torn_last_frame_with_a_zero_sector_is_a_torn_tail_for_both_readers(
        tmp_path: Path) -> None:
    """§10 step 5, R28: a last frame of several sectors, one of them never written
    (zero), is a torn tail; the valid end moves to it."""
    want = expected("edits")
    good = vector_bytes("edits")
    big = encode_frame(KIND_COMMIT, bytes(range(256)) * 8)  # payload CRC right, 4 sectors
    torn = bytearray(big)
    first = -len(good) % 512 + 512  # a whole sector inside the frame
    torn[first:first + 512] = bytes(512)
    data = good + bytes(torn)
    dump = reference_reader.read_file(data).data
    assert dump["valid_end"] == len(good) and dump["torn_tail"]["offset"] == len(good)
    assert dump["state"]["state_hash"] == want["commits"][-1]["state_hash_after"]
    path = tmp_path / "torn.myo"
    path.write_bytes(data)
    with Memory.open(path, readonly=True) as mem:
        assert mem.state_hash() == dump["state"]["state_hash"]
        assert len(mem.history()) == len(want["commits"])
        assert store_of(mem).log.torn_bytes == len(torn)


# --------------------------------------------------------------------------
# the vectors still come out of the current code, and are never overwritten


def test_regenerating_vectors_gives_identical_bytes() -> None:
    """make_vectors.py --check: a difference means the format changed (§12)."""
    assert make_vectors.check(VECTORS_DIR) == []


def test_check_reports_a_changed_and_a_missing_vector_file(tmp_path: Path) -> None:
    for p in VECTORS_DIR.iterdir():
        if p.is_file():  # not legacy/ (LEGACY.md's vectors, checked by their own script)
            shutil.copyfile(p, tmp_path / p.name)
    (tmp_path / "edits.myo").write_bytes(_flip(vector_bytes("edits"), 100))
    (tmp_path / "empty.hex").unlink()
    problems = make_vectors.check(tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith("edits.myo: differs from the committed file at byte 100")
    assert problems[1].startswith("empty.hex: generated but missing")
    assert make_vectors.main(["--check", "--dir", str(tmp_path)]) == 1


def test_writing_refuses_to_overwrite_an_existing_vector(tmp_path: Path) -> None:
    assert make_vectors.write(["one_commit"], tmp_path) == []
    assert (tmp_path / "one_commit.myo").read_bytes() == vector_bytes("one_commit")
    (tmp_path / "one_commit.json").write_text("edited by hand")
    assert make_vectors.main(["--new", "one_commit", "--dir", str(tmp_path)]) == 1
    assert (tmp_path / "one_commit.json").read_text() == "edited by hand"


# --------------------------------------------------------------------------
# engine bugs found while building the vectors


def test_repr_of_self_referencing_node_terminates(tmp_path: Path) -> None:
    with Memory.open(copy_vector("all_values", tmp_path), readonly=True) as mem:
        assert "Values" in repr(mem.get(1))


def test_a_node_that_references_itself_at_creation_is_read_by_every_reader(
        tmp_path: Path) -> None:
    """R51: the fields of a CREATE may reference the node being created. The engine
    writes and reads it; the reference reader, written from FORMAT.md, must agree."""
    path = tmp_path / "self.myo"
    with Memory.open(path) as mem:
        mem.stage(Create(1, "Loop", {"me": Ref(1), "xs": [Ref(1)]}))
        mem.commit()
        h = mem.state_hash()
    dump = reference_reader.read_file(path.read_bytes()).data
    assert dump["state"]["state_hash"] == h
    with Memory.open(path, readonly=True) as ro:
        assert ro[1].me.id == 1 and ro.verify().ok
