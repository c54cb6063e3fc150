"""Layered checkpoints (FORMAT.md §8.7, format version 4): the record codec, the
lazy block checks (R88, R89), the stack the writer builds, damaged layers, fsck,
and the move of a version-2 file to version 4 (§12)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myosotis import CorruptFileError, Memory
from myosotis.engine.layers import LayerStack
from myosotis.engine.verify import verify_file
from myosotis.format.constants import (
    FRAME_HEADER_SIZE,
    KIND_LAYER,
    LAYER_BLOCK,
    LAYER_LEVEL_FULL,
)
from myosotis.format.helper import crc32c
from myosotis.format.image import encode_image
from myosotis.format.layer import (
    BlockGuard,
    decode_layer_header,
    encode_layer,
    image_start,
    layer_image,
)
from myosotis.format.values import DecodeError
from myosotis.format.walk import walk_file
from myosotis.testing import store_of

VECTORS = Path(__file__).resolve().parent.parent / "formatspec" / "vectors"
CID = bytes(range(32))


def sparse_image(next_node_id: int, ids: list[int], size: int = 3) -> bytes:
    recs = [(i, b"\x00\x01T\x01\x01x\x05" + bytes([size]) + b"a" * size) for i in ids]
    return encode_image(next_node_id, recs)


# --------------------------------------------------------------------------
# the record codec


def test_layer_round_trip_keeps_every_field() -> None:
    img = sparse_image(10, [2, 5, 9])
    payload = encode_layer(7, CID, 4096, 3, 2, 8192, img)
    h = decode_layer_header(memoryview(payload))
    assert (h.seq, h.commit_id, h.base_offset, h.base_seq, h.level) == (7, CID, 4096, 3, 2)
    assert h.block_count == 1 and h.image_at == image_start(1) and h.image_at % 8 == 0
    assert payload[h.image_at:h.image_at + h.image_length] == img
    assert h.self_offset == 8192 and len(payload) % 8 == 0
    assert payload[-16:] == (8192).to_bytes(8, "little") + b"MYOLAYER"  # the trailer
    layer = layer_image(memoryview(payload), h, 0)
    assert [layer.id_at(i) for i in range(layer.node_count)] == [2, 5, 9]
    assert layer.index_of(5) == 1 and layer.index_of(4) == -1
    rec = layer.get(9)
    assert rec is not None and rec.fields == {"x": "aaa"}


def test_a_full_layer_has_no_base_and_the_full_level() -> None:
    img = sparse_image(3, [1, 2])
    h = decode_layer_header(encode_layer(2, CID, 0, 0, LAYER_LEVEL_FULL, 8192, img))
    assert h.full


@pytest.mark.parametrize("edit, reason", [
    (lambda p: p[:60], "shorter than its head and trailer"),
    (lambda p: p[:64] + b"\xff" + p[65:], "head checksum"),
    (lambda p: p + b"\0" * LAYER_BLOCK, "block CRCs for an image"),
])
def test_a_damaged_head_is_refused(edit: Any, reason: str) -> None:
    payload = encode_layer(7, CID, 4096, 3, 2, 8192, sparse_image(10, [2, 5, 9]))
    with pytest.raises(DecodeError, match=reason):
        decode_layer_header(edit(payload))


def test_base_fields_must_agree_r87() -> None:
    img = sparse_image(10, [2])
    with pytest.raises(DecodeError, match="base fields disagree"):
        decode_layer_header(encode_layer(7, CID, 0, 3, 1, 8192, img))
    with pytest.raises(DecodeError, match="on a base of commit 7"):
        decode_layer_header(encode_layer(7, CID, 64, 7, 1, 8192, img))


def test_each_block_is_checked_when_first_read_and_names_its_offset_r88() -> None:
    ids = list(range(1, 1000))
    img = sparse_image(1000, ids, size=120)  # records span two blocks and more
    payload = bytearray(encode_layer(7, CID, 64, 3, 0, 8192, img))
    h = decode_layer_header(payload)
    assert h.block_count >= 2
    at = h.image_at + LAYER_BLOCK + 10  # a byte of block 1
    payload[at] ^= 0x01
    layer = layer_image(memoryview(bytes(payload)), h, 1000)
    assert layer.get(1) is not None  # block 0 is intact
    with pytest.raises(DecodeError, match="block 1 fails its CRC") as e:
        for node_id in ids:
            layer.get(node_id)
    assert e.value.offset == 1000 + h.image_at + LAYER_BLOCK
    guard = BlockGuard(memoryview(bytes(payload)), h, 0)
    with pytest.raises(DecodeError):
        guard.check_all()


# --------------------------------------------------------------------------
# the writer's stack


def build(path: Path, commits: int, every: int = 2, durability: str = "none") -> dict[int, Any]:
    """``commits`` commits of creates and edits with a layer every ``every`` commits;
    returns node id -> fields after the last."""
    with Memory.open(path, durability=durability) as mem:  # type: ignore[arg-type]
        store_of(mem).layer_commits = every
        nodes = []
        for c in range(commits):
            if c % 3 == 0 or not nodes:
                nodes.append(mem.create("T", x=c, tag=f"t{c}"))
            nodes[(c * 7) % len(nodes)]["x"] = c
            if c % 11 == 5:
                nodes[c % len(nodes)]["extra"] = [c, "e" * (c % 5)]
            mem.commit(f"c{c}")
        return {n.id: n.fields() for n in nodes}


def layer_head(path: Path, off: int) -> Any:
    """The decoded head of the layer frame at ``off``."""
    data = path.read_bytes()
    n = int.from_bytes(data[off:off + 4], "little")
    return decode_layer_header(data[off + FRAME_HEADER_SIZE:off + FRAME_HEADER_SIZE + n])


def layer_offsets(path: Path) -> list[int]:
    found = walk_file(memoryview(path.read_bytes()))
    return [int(o) for o, k in zip(found.offsets, found.kinds, strict=True) if k == KIND_LAYER]


def test_the_stack_stays_logarithmic_and_reads_the_state(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    want = build(p, 200)
    assert p.read_bytes()[8] == 4  # the first layer moved the file to version 4 (§12)
    with Memory.open(p, readonly=True) as mem:
        base = store_of(mem).committed.base
        assert isinstance(base, LayerStack)
        assert 1 <= len(base.entries) <= 10  # 100 layers: at most 3 per level, 4 levels
        assert base.entries[-1].level == LAYER_LEVEL_FULL
        levels = [e.level for e in base.entries[:-1]]
        assert levels == sorted(levels)  # newest first, levels strictly increasing
        assert {n: mem[n].fields() for n in want} == want
        assert store_of(mem).head_seq - store_of(mem).travel.head.base_seq <= 2
    assert verify_file(str(p)).ok


def test_time_travel_through_layers_matches_every_past_state(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    past: dict[int, dict[int, Any]] = {}
    with Memory.open(p, durability="none") as mem:
        store_of(mem).layer_commits = 3
        for c in range(1, 60):
            if c % 4 == 1:
                mem.create("T", x=c)
            mem[1 + c % (mem.next_node_id - 1)]["x"] = c
            mem.commit()
            past[c] = {n.id: n.fields() for n in mem.nodes()}
        hashes = {c: mem.at(c).state_hash() for c in past}
    with Memory.open(p, readonly=True) as mem:
        for c, nodes in past.items():
            view = mem.at(c)
            assert {n.id: n.fields() for n in view.nodes()} == nodes
            assert view.state_hash() == hashes[c]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.integers(-5, 5)),
                    min_size=1, max_size=60),
       every=st.integers(1, 4))
def test_layers_agree_with_a_plain_model_and_the_replay(tmp_path: Path, ops: list[Any],
                                                        every: int) -> None:
    """Property: with a tiny layer period (layers merge many times), the state read
    through the layers at every commit equals a plain dict model's, and its state
    hash equals that of the same history written with no layer at all."""
    p, plain = tmp_path / "layers.myo", tmp_path / "plain.myo"
    for f in (p, plain):
        f.unlink(missing_ok=True)
    model: dict[int, dict[str, Any]] = {}
    states: list[dict[int, dict[str, Any]]] = []
    with Memory.open(p, durability="none") as mem, Memory.open(plain, durability="none") as ref:
        store_of(mem).layer_commits = every
        store_of(ref).layer_commits = 1 << 30
        for op, a, b in ops:
            for m in (mem, ref):
                if op == 0 or not model:
                    m.create("N", v=b)
                elif op == 1:
                    m[1 + a % len(model)]["v"] = b
                elif op == 2:
                    m[1 + a % len(model)][f"f{b % 3}"] = [a, b]
                else:
                    m.commit()  # an empty commit is not written: nothing staged
            if op == 0 or not model:
                model[len(model) + 1] = {"v": b}
            elif op == 1:
                model[1 + a % len(model)]["v"] = b
            elif op == 2:
                model[1 + a % len(model)][f"f{b % 3}"] = [a, b]
            for m in (mem, ref):
                m.commit(allow_empty=True)
            states.append({k: dict(v) for k, v in model.items()})
        assert layer_offsets(plain) == []
    with Memory.open(p, readonly=True) as mem, Memory.open(plain, readonly=True) as ref:
        for c, want in enumerate(states, 1):
            view = mem.at(c)
            assert {n.id: n.fields() for n in view.nodes()} == want
            assert view.state_hash() == ref.at(c).state_hash()
        assert mem.state_hash() == ref.state_hash()
    assert verify_file(str(p)).ok


# --------------------------------------------------------------------------
# opening from the newest layer (§10.1)


def test_open_indexes_only_the_frames_from_the_newest_layer(tmp_path: Path,
                                                             monkeypatch: Any) -> None:
    p = tmp_path / "a.myo"
    want = build(p, 300, every=4)
    with Memory.open(p, readonly=True) as mem:
        log = store_of(mem).log
        assert log.index_from == layer_offsets(p)[-1] > 32
        assert len(log.frames) <= 1 + 4  # the layer and the commits after it
        assert {n: mem[n].fields() for n in want} == want
        partial = [(c.seq, c.id, c.label) for c in mem.history()]  # indexes the rest
        assert log.index_from == 32 and len(log.frames) > 300
        old = {c: mem.at(c).state_hash() for c in (1, 2, 77, 150)}
    monkeypatch.setattr("myosotis.storage.tail.TAIL_SEARCH", 0)  # the whole walk
    with Memory.open(p, readonly=True) as mem:
        assert store_of(mem).log.index_from == 32
        assert [(c.seq, c.id, c.label) for c in mem.history()] == partial
        assert {c: mem.at(c).state_hash() for c in old} == old
        assert {n: mem[n].fields() for n in want} == want


@pytest.mark.parametrize("tail", [10, 70_000, 300_000])
def test_the_newest_layer_is_found_past_user_bytes_that_look_like_a_trailer(
        tmp_path: Path, tail: int) -> None:
    """A string holding the magic (8-aligned or not, with a plausible offset before
    it) after the newest layer, across the search windows: open passes it over."""
    p = tmp_path / "a.myo"
    build(p, 12, every=4)
    newest = layer_offsets(p)[-1]
    fake = (newest.to_bytes(8, "little") + b"MYOLAYER") * 4
    with Memory.open(p) as mem:
        mem[1]["blob"] = "x" * tail + fake.decode("latin-1")
        mem[2]["blob"] = "y" * 3 + fake.decode("latin-1")
        mem.commit()
        want = {n.id: n.fields() for n in mem.nodes()}
    # (the largest commit is over LAYER_BYTES: a layer of the fakes follows it)
    with Memory.open(p, readonly=True) as mem:
        assert store_of(mem).log.index_from == layer_offsets(p)[-1] >= newest
        assert {n.id: n.fields() for n in mem.nodes()} == want


def test_time_travel_before_the_newest_layer_walks_the_older_frames(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    build(p, 100, every=4)
    with Memory.open(p, readonly=True) as mem:
        assert store_of(mem).log.index_from > 32
        assert mem.at(3)[1]["x"] is not None
        assert store_of(mem).log.index_from == 32


def test_old_commits_are_named_by_id_prefix_and_by_commit_after_a_partial_open(
        tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    build(p, 100, every=4)
    with Memory.open(p, readonly=True) as mem:
        old = mem.commit_info(3)
    with Memory.open(p, readonly=True) as mem:
        assert store_of(mem).log.index_from > 32
        assert mem.resolve(old.id[:10]) == 3
    with Memory.open(p, readonly=True) as mem:
        assert store_of(mem).log.index_from > 32
        assert mem.resolve(old) == 3 and mem.at(old).state_hash() == mem.at(3).state_hash()


def test_damage_before_the_newest_layer_is_found_when_that_history_is_read(
        tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    want = build(p, 100, every=4)
    found = walk_file(memoryview(p.read_bytes()))
    third = int(found.offsets[3])
    flip(p, third + 2)  # the payload_length of an old frame: its header CRC fails
    with Memory.open(p, readonly=True) as mem:  # the tail is whole: open works
        assert {n: mem[n].fields() for n in want} == want
        with pytest.raises(CorruptFileError) as e:
            mem.history()
        assert e.value.offset == third
    assert not verify_file(str(p)).ok


def test_a_writer_opened_from_the_newest_layer_commits_and_compacts(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    build(p, 100, every=4)
    with Memory.open(p) as mem:
        assert store_of(mem).log.index_from > 32
        mem[1]["x"] = "after"
        mem.commit()
        h = mem.state_hash()
        assert len(mem.history()) == 101  # the older frames indexed under the writer
        mem[1]["x"] = "again"
        mem.commit()
        mem.compact(101)
        assert mem.at(101).state_hash() == h and mem[1]["x"] == "again"
    assert verify_file(str(p)).ok


def test_a_torn_layer_at_the_end_is_passed_over_for_the_layer_before(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    want = build(p, 20, every=4)
    with Memory.open(p, durability="none") as mem:
        store_of(mem).layer_commits = 1
        for n in want:
            mem[n]["x"] = "t" * 200  # a layer of a few KiB: whole sectors in it
        mem.commit()  # a layer follows this commit
    *_, before, last = layer_offsets(p)
    data = p.read_bytes()
    # A crash left the layer's first and last bytes but not its middle (§10 step 5)
    p.write_bytes(data[:last + 16] + bytes(len(data) - last - 32) + data[-16:])
    with pytest.warns(UserWarning, match="torn tail"), Memory.open(p) as mem:
        # the torn layer's head fails: the search goes on to the layer before it,
        # and the walk from there finds the torn tail, which the writer cuts
        assert store_of(mem).log.index_from == before
        assert store_of(mem).head_seq == 21  # the commit before the torn layer stays
        assert mem[1]["x"] == "t" * 200


# --------------------------------------------------------------------------
# damaged layers


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def fix_frame_crc(path: Path, off: int) -> None:
    """Recompute the frame's payload CRC (and header CRC): damage only the layer's own
    CRCs can see."""
    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[off:off + 4], "little")
    payload = bytes(data[off + 16:off + 16 + n])
    data[off + 8:off + 12] = crc32c(payload).to_bytes(4, "little")
    data[off + 12:off + 16] = crc32c(bytes(data[off:off + 12])).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_a_layer_with_a_damaged_head_is_reported_and_skipped(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    want = build(p, 41)  # the newest layer is followed by a commit
    off = layer_offsets(p)[-1]
    flip(p, off + FRAME_HEADER_SIZE + 20)  # its commit_id
    fix_frame_crc(p, off)
    with pytest.warns(UserWarning, match="skipped"), Memory.open(p, readonly=True) as mem:
        assert any(f"offset {off}" in msg for msg in store_of(mem).problems)
        assert {n: mem[n].fields() for n in want} == want  # the commits are the truth
    rep = verify_file(str(p))
    assert [f.offset for f in rep.findings if f.code == "checkpoint"][:1] == [off]


def test_a_damaged_block_read_at_open_makes_the_layer_skipped(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    with Memory.open(p, durability="none") as mem:
        store_of(mem).layer_commits = 1
        mem.create("T", x=1)
        mem.commit()
        mem.create("T", x=2)
        mem.commit()
        mem.commit(allow_empty=True)
    top = layer_offsets(p)[-1]
    flip(p, top + FRAME_HEADER_SIZE + layer_head(p, top).image_at)
    fix_frame_crc(p, top)
    with pytest.warns(UserWarning, match="block 0 fails its CRC"), \
            Memory.open(p, readonly=True) as mem:  # the image's prefix is read at open
        assert [mem[n]["x"] for n in (1, 2)] == [1, 2]


def test_a_damaged_block_found_late_is_corruption_named_at_its_offset(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    with Memory.open(p, durability="none") as mem:
        store_of(mem).layer_commits = 1
        for i in range(1500):
            mem.create("T", x=i, text="t" * 100)
        mem.commit()  # one layer of ~190 KiB: blocks 0 to 2
        mem.commit(allow_empty=True)
    top = layer_offsets(p)[0]  # the full one (an empty layer follows the empty commit)
    h = layer_head(p, top)
    image_at = top + FRAME_HEADER_SIZE + h.image_at
    damage = image_at + 2 * LAYER_BLOCK + 100
    flip(p, damage)
    fix_frame_crc(p, top)
    with Memory.open(p, readonly=True) as mem:  # open reads block 0 only
        assert mem[1]["x"] == 0
        with pytest.raises(CorruptFileError) as e:
            for n in range(1, 1501):
                mem[n].fields()
        assert e.value.offset == image_at + 2 * LAYER_BLOCK  # the block, in the file
    rep = verify_file(str(p))
    assert any(f.code == "checkpoint" and f.offset == top for f in rep.findings)


# --------------------------------------------------------------------------
# version 2 -> 4 (§12)


def test_a_version_2_file_moves_to_version_4_with_the_same_ids(tmp_path: Path) -> None:
    p = tmp_path / "unsynced.myo"
    shutil.copy(VECTORS / "unsynced.myo", p)
    assert p.read_bytes()[8] == 2
    with Memory.open(p, readonly=True) as mem:
        ids = [c.id for c in mem.history()]
        before = mem.state_hash()
    with Memory.open(p) as mem:
        store_of(mem).layer_commits = 1
        mem.commit(allow_empty=True)
    data = p.read_bytes()
    assert data[8] == 4 and layer_offsets(p)
    with Memory.open(p, readonly=True) as mem:
        assert [c.id for c in mem.history()][:len(ids)] == ids
        assert mem.state_hash() == before
    assert verify_file(str(p)).ok


def test_a_layer_in_a_version_2_file_is_refused_r22(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    build(p, 4)
    data = bytearray(p.read_bytes())
    data[8] = 2  # claim version 2: kind 5 does not exist there
    data[28:32] = crc32c(bytes(data[:28])).to_bytes(4, "little")
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="kind 5"):
        Memory.open(p, readonly=True)


def test_compaction_drops_layers_and_keeps_the_state(tmp_path: Path) -> None:
    p = tmp_path / "a.myo"
    want = build(p, 30)
    with Memory.open(p) as mem:
        h = mem.state_hash()
        mem.compact()
        assert mem.state_hash() == h
    assert layer_offsets(p) == []
    with Memory.open(p, readonly=True) as mem:
        assert {n: mem[n].fields() for n in want} == want


def test_per_handle_bookkeeping_stays_bounded_as_commits_go_on(tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    """Remembered commit ids and cached stacks are windows (policy.COMMIT_ID_CACHE,
    SNAPSHOT_CACHE, made small here), not an entry per commit or per layer; what
    was forgotten is read again, right."""
    monkeypatch.setattr("myosotis.engine.history.COMMIT_ID_CACHE", 20)
    monkeypatch.setattr("myosotis.engine.checkpoints.SNAPSHOT_CACHE", 4)
    p = tmp_path / "a.myo"
    with Memory.open(p, durability="none") as mem:
        store_of(mem).layer_commits = 2
        hashes = {}
        for c in range(1, 201):
            if c % 10 == 1:
                mem.create("T", x=c)
            mem[1 + c % (mem.next_node_id - 1)]["x"] = c
            mem.commit()
            hashes[c] = mem.state_hash()
        st = store_of(mem)
        assert len(st.commits._ids) <= 20 and len(st.snapshots._images) <= 4
        ids = [c.id for c in mem.history()]
        assert len(st.commits._ids) <= 20
        for c in (3, 50, 101, 177, 200):
            assert mem.at(c).state_hash() == hashes[c]
        assert len(st.snapshots._images) <= 4
    with Memory.open(p, readonly=True) as mem:
        assert [c.id for c in mem.history()] == ids
