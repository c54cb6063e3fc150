"""Tests for three gaps that hand-made mutants of the engine slipped through.

(a) ``Memory.diff`` compares values as the format does (FORMAT.md §5: bool is
    not int, floats by their bits), not with Python ``==``.
(b) A stored commit whose reference names a node that does not exist is
    corruption (R51, §6), found when the commit is replayed (open, refresh),
    not only when a change is staged.
(c) ``mem.at(c)`` right before, at and right after a checkpoint is exactly the
    state after commit ``c``; checked with explicit comparisons (no ``assert``),
    also in a ``python -O`` child, so no ``assert`` in the engine is what
    catches a wrong checkpoint search.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest
from crashutil import (
    KIND_CHECKPOINT,
    KIND_COMMIT,
    FixedClock,
    checkpoint_fields,
    child_env,
    commit_seq,
    frames_of,
    read_bytes,
    run_python,
)
from model import Model, ModelNode, describe, same_value
from model import plain as model_plain
from model import state_hash as model_state_hash

from myosotis import CorruptFileError, Memory, Ref
from myosotis.engine.policy import CHECKPOINT_FLOOR
from myosotis.engine.verify import verify_file
from myosotis.format.header import encode_frame
from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListReplace,
    MapSet,
    Mutation,
    Set,
    put_mutation,
)
from myosotis.format.records import commit_id, decode_commit_header, encode_commit
from myosotis.format.values import iter_refs
from myosotis.testing import open_memory, store_of

# ====================================================================== (a) diff


def f64(hex_le: str) -> float:
    """The float whose little-endian IEEE-754 bytes are ``hex_le``."""
    return float(struct.unpack("<d", bytes.fromhex(hex_le))[0])


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


NAN_A = f64("010000000000f87f")  # quiet NaN, payload 1
NAN_B = f64("020000000000f87f")  # quiet NaN, payload 2
NAN_NEG = f64("010000000000f8ff")  # payload 1, sign bit set


def same_stored(a: Any, b: Any) -> bool:
    """Equal as stored values: same types all the way down, floats by bits."""
    return same_value(model_plain(a), model_plain(b))


# (field, value at commit 1, value at commit 2): Python == says "equal" for every pair,
# the format says "different".
EQ_BUT_DIFFERENT: list[tuple[str, Any, Any]] = [
    ("int_float", 1, 1.0),
    ("true_int", True, 1),
    ("false_zero", False, 0),
    ("zero_negzero", 0, -0.0),
    ("float_zero_negzero", 0.0, -0.0),
    ("int_float_big", 2**53, float(2**53)),
    ("list_int_float", [1, 2], [1, 2.0]),
    ("list_bool_int", [True], [1]),
    ("list_negzero", [[0.0]], [[-0.0]]),
    ("map_int_float", {"k": 1}, {"k": 1.0}),
    ("map_bool_int", {"k": {"j": 0}}, {"k": {"j": False}}),
    ("map_negzero", {"k": [0.0]}, {"k": [-0.0]}),
]

# Python == says "different" (NaN != NaN), the format says "equal" (same bits).
NE_BUT_EQUAL: list[tuple[str, Any]] = [
    ("nan_same", NAN_A),
    ("nan_in_list", [NAN_A, 1]),
    ("nan_in_map", {"k": NAN_NEG}),
]

# Different NaN payloads (or signs) are different values; == says different too.
NAN_PAIRS: list[tuple[str, Any, Any]] = [
    ("nan_payload", NAN_A, NAN_B),
    ("nan_sign", NAN_A, NAN_NEG),
    ("nan_payload_in_list", [NAN_A], [NAN_B]),
]


def test_stored_values_keep_their_type_and_float_bits(mem_path: str) -> None:
    """Precondition of the diff tests below: the format keeps 1.0 apart from 1, True
    apart from 1, -0.0 apart from 0.0 and every NaN payload (README, FORMAT.md §5)."""
    with Memory.open(mem_path, clock=FixedClock()) as mem:
        n = mem.create("T")
        for name, old, new in EQ_BUT_DIFFERENT + NAN_PAIRS:
            n[name + "_old"], n[name + "_new"] = old, new
        mem.commit()
    with Memory.open(mem_path, readonly=True) as mem:
        fields = mem[1].fields()
        for name, old, new in EQ_BUT_DIFFERENT + NAN_PAIRS:
            assert same_stored(fields[name + "_old"], old), name
            assert same_stored(fields[name + "_new"], new), name
        assert bits(fields["nan_payload_new"]) == bits(NAN_B)
        assert bits(fields["nan_sign_new"]) == bits(NAN_NEG)


def changed_fields(mem: Memory, a: int, b: int, node_id: int) -> dict[str, tuple[Any, Any]]:
    """``{field: (old, new)}`` of ``node_id`` in ``mem.diff(a, b)`` ({} if not listed)."""
    for change in mem.diff(a, b).nodes:
        if change.id == node_id:
            return {fc.field: (fc.old, fc.new) for fc in change.fields}
    return {}


def check_reported(got: dict[str, tuple[Any, Any]], want: dict[str, tuple[Any, Any]]) -> None:
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for name, (old, new) in want.items():
        g_old, g_new = got[name]
        assert same_stored(g_old, old), (name, describe(g_old), describe(old))
        assert same_stored(g_new, new), (name, describe(g_new), describe(new))


def fresh_copy(v: Any) -> Any:
    """A deep copy in which every float is a new object with the same bits."""
    if type(v) is float:
        return f64(bits(v).hex())
    if type(v) is list:
        return [fresh_copy(x) for x in v]
    if type(v) is dict:
        return {k: fresh_copy(x) for k, x in v.items()}
    return v


def build_value_changes(path: str) -> None:
    """Commit 1: node 1 with the "old" values; commit 2: every field set again (the
    "new" value, or the same bits for NE_BUT_EQUAL); commit 3: every field set back."""
    with Memory.open(path, clock=FixedClock()) as mem:
        n = mem.create("T")
        for name, old, _ in EQ_BUT_DIFFERENT + NAN_PAIRS:
            n[name] = old
        for name, v in NE_BUT_EQUAL:
            n[name] = v
        n["untouched_int"] = 1
        mem.commit(label="old")
        for name, _, new in EQ_BUT_DIFFERENT + NAN_PAIRS:
            n[name] = new
        for name, v in NE_BUT_EQUAL:
            n[name] = fresh_copy(v)  # new objects, the same bits: touched, not changed
        n["untouched_int"] = 1  # the same value set again
        mem.commit(label="new")
        for name, old, _ in EQ_BUT_DIFFERENT + NAN_PAIRS:
            n[name] = old
        mem.commit(label="back")


def test_diff_reports_changes_python_equality_misses_and_only_those(mem_path: str) -> None:
    """A field set from 1 to 1.0, True to 1, 0 to -0.0, 0.0 to -0.0, or one NaN payload
    to another (also inside lists and maps) is a change in both directions; a field
    set again to the same bits (NaN included) is not. A diff that compares with
    Python ``==`` gets both halves wrong."""
    build_value_changes(mem_path)
    with Memory.open(mem_path, readonly=True) as mem:
        forward = {name: (old, new) for name, old, new in EQ_BUT_DIFFERENT + NAN_PAIRS}
        backward = {name: (new, old) for name, (old, new) in forward.items()}
        check_reported(changed_fields(mem, 1, 2, 1), forward)
        check_reported(changed_fields(mem, 2, 1, 1), backward)
        check_reported(changed_fields(mem, 2, 3, 1), backward)
        # set back to exactly the old values: touched, but nothing changed at all
        assert changed_fields(mem, 1, 3, 1) == {}
        assert not mem.diff(1, 3) and not mem.diff(3, 1)
        assert mem.diff(1, 2).changed[0].status == "changed"


def test_diff_reports_in_place_element_edits_that_python_equality_misses(
        mem_path: str) -> None:
    """The same value pairs edited inside a list (LIST_REPLACE) and inside a map
    (MAP_SET), at a nested path: the field holding the container is reported as
    changed, with the whole old and new containers; an edit to the same bits is not."""
    pairs = [(old, new) for _, old, new in EQ_BUT_DIFFERENT + NAN_PAIRS]
    with Memory.open(mem_path, clock=FixedClock()) as mem:
        n = mem.create("T", box={"inner": [[0]]}, same=[NAN_A])
        mem.commit()
        seq = 1
        for i, (old, new) in enumerate(pairs):
            n[f"l{i}"] = ["head", old]
            n[f"m{i}"] = {"deep": {"k": old}}
            mem.commit()
            n[f"l{i}"][1] = new
            n[f"m{i}"]["deep"]["k"] = new
            mem.commit()
            seq += 2
            got = changed_fields(mem, seq - 1, seq, 1)
            check_reported(got, {f"l{i}": (["head", old], ["head", new]),
                                 f"m{i}": ({"deep": {"k": old}}, {"deep": {"k": new}})})
            check_reported(changed_fields(mem, seq, seq - 1, 1),
                           {f"l{i}": (["head", new], ["head", old]),
                            f"m{i}": ({"deep": {"k": new}}, {"deep": {"k": old}})})
        n["box"]["inner"][0][0] = 0.0  # int 0 -> float 0.0 three levels down
        n["same"][0] = fresh_copy(NAN_A)  # a new NaN object, the same bits
        mem.commit()
        check_reported(changed_fields(mem, seq, seq + 1, 1),
                       {"box": ({"inner": [[0]]}, {"inner": [[0.0]]})})


# ====================================================================== (b) R51 on replay

MISSING_ID = 99


def commit_tail(data: bytes) -> tuple[int, bytes, int, int]:
    """(seq, id, next_node_id, timestamp) of the last commit frame of ``data``."""
    last = [f for f in frames_of(data) if f.kind == KIND_COMMIT][-1]
    payload = data[last.payload_start:last.payload_end]
    h = decode_commit_header(payload)
    assert commit_seq(data, last) == h.seq
    return h.seq, commit_id(payload), h.next_node_id, h.timestamp_us


def commit_frame(data: bytes, muts: list[Mutation], next_node_id: int) -> bytes:
    """A whole, valid frame (CRCs, seq, parent link, next_node_id) holding ``muts`` as
    the commit after the last one of ``data``; no graph rule is checked here."""
    seq, parent, _, ts = commit_tail(data)
    body = bytearray()
    for m in muts:
        put_mutation(body, m)
    payload = encode_commit(seq + 1, ts + 1, parent, next_node_id, "forged", len(muts), body)
    return encode_frame(KIND_COMMIT, payload)


def build_base(path: Path) -> bytes:
    """Commits 1-3: node 1 (A) with a list, a map and a list of maps; node 2 (B),
    tombstoned in commit 3; a checkpoint after commit 2. Returns the file's bytes,
    which end with the last frame. The version-2 checkpoint policy (FORMAT.md §8.4)
    writes the checkpoint as a whole image."""
    with open_memory(path, clock=FixedClock(), durability="none",
                     checkpoint_floor=CHECKPOINT_FLOOR) as mem:
        a = mem.create("A", items=[1, 2], m={"k": 1}, rows=[{"x": 0}], nested={"l": [0]})
        mem.commit(label="one")
        mem.create("B", back=a)
        mem.commit(label="two")
        assert mem.checkpoint()
        mem[2].delete()
        mem.commit(label="three")
        end = store_of(mem).log.valid_end
    data = read_bytes(path)
    assert len(data) == end  # durability "none": no free space after the frames
    assert [f.kind for f in frames_of(data)] == [1, 1, 2, 1]
    return data


BAD = Ref(MISSING_ID)

# name -> (mutations, next_node_id after them); every reference to BAD names no node.
# base: next_node_id 3, node 1 live, node 2 tombstoned
R51_CASES: dict[str, tuple[list[Mutation], int]] = {
    "set_top_level": ([Set(1, "friend", BAD)], 3),
    "set_in_list": ([Set(1, "x", [1, [BAD]])], 3),
    "set_in_map": ([Set(1, "x", {"a": {"b": BAD}})], 3),
    "set_in_list_of_maps": ([Set(1, "x", [{"r": BAD}])], 3),
    "create_field": ([Create(3, "C", {"r": BAD})], 4),
    "create_field_in_list": ([Create(3, "C", {"l": [Ref(1), BAD]})], 4),
    "create_field_in_map": ([Create(3, "C", {"m": {"k": BAD}})], 4),
    # a node may refer to itself, not to the next node to come
    "create_refers_to_next_id": ([Create(3, "C", {"r": Ref(4)})], 4),
    "list_insert": ([ListInsert(1, "items", (), 2, BAD)], 3),
    "list_insert_nested_value": ([ListInsert(1, "items", (), 0, {"r": BAD})], 3),
    "list_insert_at_path": ([ListInsert(1, "nested", ("l",), 1, BAD)], 3),
    "list_replace": ([ListReplace(1, "items", (), 0, BAD)], 3),
    "map_set": ([MapSet(1, "m", (), "k2", BAD)], 3),
    "map_set_nested_value": ([MapSet(1, "m", (), "k", [BAD])], 3),
    "map_set_at_path": ([MapSet(1, "rows", (0,), "y", BAD)], 3),
    # the node exists by the end of the commit, but not when it is referenced
    "set_before_create_in_same_commit": ([Set(1, "friend", Ref(3)), Create(3, "C", {})], 4),
    "map_set_before_create_in_same_commit": (
        [MapSet(1, "m", (), "k", Ref(3)), Create(3, "C", {})], 4),
    # the bad one is not the first mutation of the commit
    "after_valid_mutations": (
        [Set(1, "ok", Ref(2)), Create(3, "C", {"me": Ref(3)}), Set(3, "x", Ref(4))], 4),
}


def valid_twin(muts: list[Mutation]) -> list[Mutation]:
    """``muts`` with every missing reference replaced by one to node 1 (which exists)."""
    out: list[Mutation] = []
    created = 3

    def fix(v: Any, limit: int) -> Any:
        if type(v) is Ref:
            return v if v.id < limit else Ref(1)
        if type(v) is list:
            return [fix(x, limit) for x in v]
        if type(v) is dict:
            return {k: fix(x, limit) for k, x in v.items()}
        return v

    for m in muts:
        if type(m) is Create:
            out.append(m._replace(fields=fix(m.fields, created + 1)))
            created += 1
        elif type(m) in (Set, ListInsert, ListReplace, MapSet):
            out.append(m._replace(value=fix(m.value, created)))  # type: ignore[union-attr,call-arg]
        else:
            out.append(m)
    return out


@pytest.fixture(scope="module")
def r51_base(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_base(tmp_path_factory.mktemp("r51") / "base.myo")


@pytest.mark.parametrize("case", sorted(R51_CASES))
def test_commit_with_dangling_reference_is_corruption_on_open(
        r51_base: bytes, tmp_path: Path, case: str) -> None:
    """R51: a commit frame that is valid in every other respect (CRCs, seq, parent,
    next_node_id) but references a node that does not exist at that point of the
    commit makes the file corrupt, for a reader and for a writer, at that frame.
    The same frame with the reference pointing at an existing node opens: so
    only the reference check can be what refuses it. fsck agrees."""
    muts, next_id = R51_CASES[case]
    good = tmp_path / "good.myo"
    good.write_bytes(r51_base + commit_frame(r51_base, valid_twin(muts), next_id))
    for readonly in (True, False):
        with Memory.open(good, readonly=readonly) as mem:
            assert mem.head is not None and mem.head.seq == 4 and mem.head.label == "forged"
            assert mem.next_node_id == next_id
    assert verify_file(str(good)).ok

    bad = tmp_path / "bad.myo"
    data = r51_base + commit_frame(r51_base, muts, next_id)
    bad.write_bytes(data)
    frame = frames_of(data)[-1]
    assert frame.offset == len(r51_base) and frame.end == len(data)
    missing = max(max(iter_refs(m.fields if type(m) is Create else getattr(m, "value", None)),
                      default=0) for m in muts)
    for readonly in (True, False):
        with pytest.raises(CorruptFileError) as ei:
            Memory.open(bad, readonly=readonly)
        assert ei.value.offset == frame.offset, (readonly, ei.value)
        assert f"reference to node {missing}," in str(ei.value), ei.value
        assert read_bytes(bad) == data  # the writer did not cut a valid frame
    report = verify_file(str(bad))
    assert report.errors, report.findings
    assert any(f.seq == 4 for f in report.errors), report.findings


def test_reader_refresh_onto_a_commit_with_dangling_reference_is_corruption(
        r51_base: bytes, tmp_path: Path) -> None:
    """A reader that opened before the forged commit was appended meets it on
    refresh(): CorruptFileError, and the reader is closed rather than left with a
    state that no commit describes."""
    path = tmp_path / "refresh.myo"
    path.write_bytes(r51_base)
    reader = Memory.open(path, readonly=True)
    try:
        assert reader.head is not None and reader.head.seq == 3
        with open(path, "ab") as f:
            f.write(commit_frame(r51_base, [ListInsert(1, "items", (), 0, BAD)], 3))
        with pytest.raises(CorruptFileError, match="reference to node 99"):
            reader.refresh()
        assert reader.closed
    finally:
        reader.close()


def test_references_that_r51_allows_open_and_read_back(r51_base: bytes,
                                                       tmp_path: Path) -> None:
    """The other side of R51: a reference to a tombstoned node, to the node being
    created (itself), and to a node created earlier in the same commit are valid."""
    muts: list[Mutation] = [
        Set(1, "dead", Ref(2)),  # node 2 is tombstoned
        Create(3, "C", {"me": Ref(3), "l": [Ref(2)]}),
        MapSet(1, "m", (), "new", Ref(3)),  # created just before, in this commit
        Delete(3),
        ListInsert(1, "items", (), 0, Ref(3)),  # tombstoned earlier in this commit
    ]
    path = tmp_path / "ok.myo"
    path.write_bytes(r51_base + commit_frame(r51_base, muts, 4))
    for readonly in (True, False):
        with Memory.open(path, readonly=readonly) as mem:
            a = mem[1]
            assert a["dead"].id == 2 and a["m"]["new"].id == 3 and a["items"][0].id == 3
            c = mem[3]
            assert c.deleted and c["me"].id == 3 and c["l"][0].id == 2
    assert verify_file(str(path)).ok


# ====================================================================== (c) at() near checkpoints


def expect(cond: bool, msg: str) -> None:
    """An assertion that ``python -O`` keeps."""
    if not cond:
        raise AssertionError(msg)


def view_state(reader: Any, lazy: bool) -> dict[int, ModelNode]:
    """Every node of a View (or Memory) as model nodes (references as Refs).

    ``lazy``: read node by node through ``get`` before anything enumerates the
    state (the per-node time-travel path); otherwise through ``nodes()`` (the
    whole materialised state)."""
    out: dict[int, ModelNode] = {}
    if lazy:
        handles = [reader.get(i) for i in range(1, reader.next_node_id)]
    else:
        handles = list(reader.nodes(deleted=True))
    for n in handles:
        out[n.id] = ModelNode(n.type, model_plain(n.fields()), n.deleted)
    return out


def state_difference(got: dict[int, ModelNode], want: dict[int, ModelNode]) -> str | None:
    if sorted(got) != sorted(want):
        return f"node ids {sorted(got)} != {sorted(want)}"
    for i in sorted(want):
        g, w = got[i], want[i]
        if g.type != w.type or g.deleted != w.deleted:
            return f"node {i}: {g.type}/{g.deleted} != {w.type}/{w.deleted}"
        if sorted(g.fields) != sorted(w.fields):
            return f"node {i}: fields {sorted(g.fields)} != {sorted(w.fields)}"
        for name in w.fields:
            if not same_value(g.fields[name], w.fields[name]):
                return (f"node {i} field {name!r}: {describe(g.fields[name])} != "
                        f"{describe(w.fields[name])}")
    return None


class Recorded:
    """What a history built by :func:`build_checkpointed` must read back."""

    def __init__(self) -> None:
        self.model = Model()
        self.head_hash: list[str] = []  # index = seq: state_hash() while it was the head
        self.explicit: list[int] = []  # seqs of explicit checkpoints


def random_edit(mem: Memory, model: Model, rng: random.Random) -> None:
    """One random staged change, mirrored on the model."""
    live = model.live_ids()
    r = rng.random()
    if not live or r < 0.15:
        fields: dict[str, Any] = {"n": rng.randrange(100), "l": [], "m": {}}
        if live and rng.random() < 0.5:
            fields["to"] = Ref(rng.choice(live))
        node = mem.create(rng.choice(("A", "B")),
                          **{k: mem[v.id] if type(v) is Ref else v for k, v in fields.items()})
        expect(model.create(node.type, fields) == node.id, "model and engine ids differ")
        return
    i = rng.choice(live)
    node = mem[i]
    if r < 0.4:
        v = rng.choice([rng.randrange(-5, 5), -0.0, 0.0, 1.0, True, "s" * rng.randrange(80),
                        None, NAN_A, [1, 1.0]])
        node["n"] = v
        model.set_field(i, "n", v)
    elif r < 0.55:
        target = rng.choice(live)
        node["to"] = mem[target]
        model.set_field(i, "to", Ref(target))
    elif r < 0.75:
        if "l" not in model.staged[i].fields:
            node["l"] = []
            model.set_field(i, "l", [])
        v = rng.choice([rng.randrange(9), 2.5, "x" * 40])
        node["l"].append(v)
        model.container(i, "l", ()).append(v)
        model.edited()
    elif r < 0.9:
        if "m" not in model.staged[i].fields:
            node["m"] = {}
            model.set_field(i, "m", {})
        k, v = f"k{rng.randrange(6)}", rng.choice([0, -0.0, False, "v"])
        node["m"][k] = v
        model.container(i, "m", ())[k] = v
        model.edited()
    elif r < 0.95 and "n" in model.staged[i].fields:
        del node["n"]
        model.unset_field(i, "n")
    elif len(live) > 3:
        node.delete()
        model.delete(i)


def build_checkpointed(path: Path, floor: int, seed: int, commits: int,
                       explicit_every: int) -> Recorded:
    """``commits`` commits of random edits with automatic checkpoints (``floor``) and
    an explicit ``mem.checkpoint()`` after every ``explicit_every``-th commit, the
    first commit, and twice in a row at one place."""
    rec = Recorded()
    rng = random.Random(seed)
    clock = FixedClock()
    with open_memory(path, clock=clock, checkpoint_floor=floor) as mem:
        rec.head_hash.append(mem.state_hash())
        for s in range(1, commits + 1):
            for _ in range(rng.randint(1, 4)):
                random_edit(mem, rec.model, rng)
            c = mem.commit(label=f"c{s}")
            expect(c is not None and c.seq == s, f"commit {s} got {c}")
            rec.model.commit(f"c{s}", c.timestamp_us or 0)
            rec.head_hash.append(mem.state_hash())
            if s == 1 or s % explicit_every == 0:
                if mem.checkpoint():
                    rec.explicit.append(s)
                expect(not mem.checkpoint(), "a second checkpoint of the same commit")
    return rec


def checkpoint_seqs(path: Path) -> list[int]:
    data = read_bytes(path)
    return [checkpoint_fields(data, f)[0] for f in frames_of(data) if f.kind == KIND_CHECKPOINT]


def check_one_view(mem: Memory, rec: Recorded, c: int, lazy: bool) -> None:
    snap = rec.model.snapshots[c]
    view = mem.at(c)
    expect(view.seq == c, f"at({c}).seq is {view.seq}")
    expect(view.next_node_id == snap.next_node_id,
           f"at({c}).next_node_id {view.next_node_id} != {snap.next_node_id}")
    diff = state_difference(view_state(view, lazy), snap.nodes)
    expect(diff is None, f"at({c}) ({'lazy' if lazy else 'whole'}): {diff}")
    h = view.state_hash()
    expect(h == rec.head_hash[c], f"at({c}).state_hash() differs from the head hash then")
    expect(h == model_state_hash(snap.nodes, snap.next_node_id),
           f"at({c}).state_hash() differs from the model's")


def check_views_around_checkpoints(path: Path, floor: int = 700, seed: int = 7,
                                   commits: int = 60, explicit_every: int = 9) -> str:
    """Build a history, then read ``at(c)`` for c = k-1, k, k+1 around every checkpoint
    k (and every other commit) in fresh readers and writers, in several orders, by
    node and whole. Raises AssertionError (never by ``assert``); returns a summary."""
    rec = build_checkpointed(path, floor, seed, commits, explicit_every)
    cps = checkpoint_seqs(path)
    automatic = sorted(set(cps) - set(rec.explicit))
    expect(len(rec.explicit) >= 3 and len(automatic) >= 3,
           f"want explicit and automatic checkpoints: {rec.explicit}, {automatic}")
    expect(any(b == a + 1 for a, b in zip(cps, cps[1:], strict=False)),
           f"no adjacent checkpoints: {cps}")
    near = sorted({c for k in cps for c in (k - 1, k, k + 1) if 0 <= c <= commits})
    everything = list(range(commits + 1))
    checks, failures = 0, []

    def check(mem: Memory, c: int, lazy: bool) -> None:
        nonlocal checks
        checks += 1
        try:
            check_one_view(mem, rec, c, lazy)
        except Exception as e:  # every failure is reported below, not only the first
            failures.append(f"at({c}) {'lazy' if lazy else 'whole'}: {type(e).__name__}: {e}")

    # a fresh reader per commit: nothing cached from another commit's reading
    for c in near:
        for lazy in (True, False):
            with Memory.open(path, readonly=True) as mem:
                check(mem, c, lazy)
    orders = [everything, everything[::-1], random.Random(seed).sample(everything, commits + 1)]
    for order in orders:  # one reader, every commit: segments cached across readings
        for readonly in (True, False):
            with open_memory(path, readonly=readonly, checkpoint_floor=floor) as mem:
                for c in order:
                    check(mem, c, lazy=c % 2 == 0)
    expect(not failures, f"{len(failures)} of {checks} views wrong (checkpoints at {cps}):\n"
           + "\n".join(failures[:12]))
    return f"OK {checks} checks, checkpoints at {cps}, explicit {rec.explicit}"


def test_at_just_before_at_and_after_each_checkpoint_is_exactly_that_commit(
        tmp_path: Path) -> None:
    """mem.at(c) for c around every checkpoint (explicit and automatic) equals the
    model's state after c, node by node and field by field, and its state hash is
    the one the writer reported when c was the head."""
    print(check_views_around_checkpoints(tmp_path / "cp.myo"))


OPTIMIZED_CHILD = r'''
import sys
from pathlib import Path
if sys.flags.optimize < 1:
    raise SystemExit("not running under -O")
try:
    assert False
except AssertionError:
    raise SystemExit("assert statements still run") from None
import test_mutant_gaps as t
print(t.check_views_around_checkpoints(Path(sys.argv[1])))
'''


def test_at_around_checkpoints_is_right_under_python_O(tmp_path: Path) -> None:
    """The same check in a ``python -O`` child, where every ``assert`` (of the engine
    and of the tests) is gone: the state read back is still exactly right, so what
    guards it is a real check, not an assert."""
    proc = run_python(OPTIMIZED_CHILD, str(tmp_path / "cp.myo"), timeout=300,
                      env=child_env(PYTHONOPTIMIZE="1"))
    assert proc.stdout.startswith("OK "), proc.stdout + proc.stderr
