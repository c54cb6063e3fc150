"""The fast read paths against the plain ones (issue #10, W5).

``Memory.nodes()`` walks the layers' ids in one merge reading only each node's
flags byte (``LayerStack.scan``, ``GraphState.live_ids``), and
``Node.fields()`` of a node held only in the base decodes its record straight
into the plain values returned (``StateImage.plain_fields``). The plain paths
they replace are still there: ``Reader.nodes`` (every node through
``state.get``) and ``handles.fields_of`` over ``Reader._node_state``. These
tests drive random graphs (tombstones, staged changes, commits after the
newest layer, sparse layers over a full one, readers opened afresh) and
require both to return the same nodes and values, with the same types, in
the same order; and, on damaged records, the same errors (§8.1, R71, R72).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myosotis import Memory, MyosotisError
from myosotis.api.handles import Node, fields_of
from myosotis.api.view import Reader
from myosotis.format.constants import NODE_FLAG_DELETED
from myosotis.format.image import StateImage, encode_image, encode_node_record
from myosotis.format.record_fields import one_pass_fields
from myosotis.format.values import DecodeError, Ref, put_value

# --------------------------------------------------------------------------
# helpers


def strict(v: Any) -> Any:
    """``v`` in a form whose equality sees types (bool is not int, float by its bits,
    handles by memory and id) and the order of map keys."""
    t = type(v)
    if t is Node:
        return ("node", id(v._src), v.id)
    if t is list:
        return ("list", [strict(x) for x in v])
    if t is dict:
        return ("dict", [(k, strict(x)) for k, x in v.items()])
    if t is float:
        return ("float", struct.pack("<d", v))
    if t is Ref:
        return ("ref", v.id)
    return (t.__name__, v)


def fast_scan(mem: Memory) -> list[tuple[int, Any]]:
    return [(n.id, strict(n.fields())) for n in mem.nodes()]


def plain_scan(mem: Memory) -> list[tuple[int, Any]]:
    return [(n.id, strict(fields_of(mem._node_state(n.id), mem))) for n in Reader.nodes(mem)]


def every_node(mem: Memory) -> list[tuple[int, Any, Any]]:
    """Each node, tombstones too: its fields by the fast path and by the plain one."""
    return [(i, strict(mem.get(i).fields()), strict(fields_of(mem._node_state(i), mem)))
            for i in range(1, mem.next_node_id)]


def assert_same(mem: Memory) -> None:
    fast = fast_scan(mem)
    assert fast == plain_scan(mem)
    assert len(mem) == len(fast)
    for _, a, b in every_node(mem):
        assert a == b
    # a second scan reads what the first one (and the reads between) left cached
    assert fast_scan(mem) == fast


# --------------------------------------------------------------------------
# random graphs

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=True), st.text(max_size=6))
REF = object()  # stands for a reference to a node picked when the step runs
leaves = st.one_of(scalars, st.just(REF))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.text(max_size=3), inner, max_size=4)), max_leaves=8)
names = st.sampled_from(["a", "b", "name", "tags", "ü", "z"])
creates = st.tuples(st.just("create"), st.sampled_from(["T", "U"]),
                    st.dictionaries(names, values, max_size=4))
steps = st.lists(st.one_of(
    creates, creates, creates,
    st.tuples(st.just("set"), st.integers(0, 50), names, values),
    st.tuples(st.just("unset"), st.integers(0, 50), names),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("read"), st.integers(0, 50), names),
    st.tuples(st.just("commit")),
    st.tuples(st.just("checkpoint")),
), max_size=40)


def resolve(mem: Memory, v: Any, pick: int) -> Any:
    if v is REF:
        return mem.get(1 + pick % (mem.next_node_id - 1)) if mem.next_node_id > 1 else None
    if type(v) is list:
        return [resolve(mem, x, pick + k) for k, x in enumerate(v)]
    if type(v) is dict:
        return {k: resolve(mem, x, pick + len(k)) for k, x in v.items()}
    return v


def run_step(mem: Memory, step: tuple[Any, ...]) -> None:
    kind = step[0]
    live = [n.id for n in Reader.nodes(mem)]
    if kind == "create":
        mem.create(step[1], **{k: resolve(mem, v, 3) for k, v in step[2].items()})
    elif kind == "commit":
        mem.commit()
    elif kind == "checkpoint":
        mem.commit()
        mem.checkpoint()
    elif live:
        node = mem.get(live[step[1] % len(live)])
        if kind == "set":
            node[step[2]] = resolve(mem, step[3], step[1])
        elif kind == "unset" and step[2] in node:
            del node[step[2]]
        elif kind == "delete":
            node.delete()
        elif kind == "read" and step[2] in node:
            node[step[2]]  # noqa: B018 - a read: the node is decoded and cached


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps, tail=steps)
def test_scan_and_fields_equal_the_plain_paths(mem_path: str, steps: list[Any],
                                               tail: list[Any]) -> None:
    """Staged changes, commits after the newest layer, then a reader opened afresh
    (every node in the base) and a writer reopened with more staged changes."""
    with Memory.open(mem_path, durability="none") as mem:
        for step in steps:
            run_step(mem, step)
            assert_same(mem)
        mem.commit()
    with Memory.open(mem_path, readonly=True) as reader:
        assert_same(reader)
    with Memory.open(mem_path, durability="none") as mem:
        for step in tail:
            run_step(mem, step)
        assert_same(mem)
        mem.discard()


def test_fields_returns_values_the_caller_owns(mem_path: str) -> None:
    with Memory.open(mem_path) as mem:
        a = mem.create("T", tags=["x", ["y"]], m={"k": [1]})
        mem.create("T", friend=a, items=[a, {"r": a}])
        mem.commit()
        mem.checkpoint()
    with Memory.open(mem_path, readonly=True) as mem:
        for n in mem.nodes():
            f = n.fields()
            for v in f.values():
                if type(v) is list:
                    v.append("changed")
            if "m" in f:
                f["m"]["k"].append(2)
        assert [n.fields() for n in mem.nodes()] == [
            {"m": {"k": [1]}, "tags": ["x", ["y"]]},
            {"friend": mem.get(1), "items": [mem.get(1), {"r": mem.get(1)}]}]


def test_a_scan_sees_changes_staged_while_it_runs(mem_path: str) -> None:
    with Memory.open(mem_path) as mem:
        for i in range(6):
            mem.create("T", i=i)
        mem.commit()
        mem.checkpoint()
        seen = []
        for n in mem.nodes():
            seen.append(n.id)
            if n.id == 2:
                mem.get(4).delete()
                mem.create("T", i=6)  # past the end of the scan's range: not seen
        assert seen == [1, 2, 3, 5, 6]


# --------------------------------------------------------------------------
# damaged records: the same error from the fast decode as from the plain one


def record_bytes(flags: int, type_name: bytes, entries: list[tuple[bytes, Any]]) -> bytes:
    out = bytearray([flags, len(type_name)]) + type_name + bytes([len(entries)])
    for k, v in entries:
        out += bytes([len(k)]) + k
        put_value(out, v)
    return bytes(out)


damage = st.one_of(
    st.binary(max_size=24),
    st.tuples(st.integers(0, 3), st.sampled_from([b"T", b"", b"\xff"]),
              st.lists(st.tuples(st.sampled_from([b"a", b"b", b"", b"\xc3"]),
                                 st.one_of(scalars, st.builds(Ref, st.integers(1, 9)),
                                           st.lists(st.builds(Ref, st.integers(1, 9)),
                                                    max_size=2))),
                       max_size=3)).map(lambda t: record_bytes(*t)),
)


def outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except DecodeError as e:
        return ("error", e.reason, e.offset)


@settings(max_examples=400, deadline=None)
@given(rec=damage, cut=st.integers(0, 4))
def test_damaged_records_raise_the_same_errors(rec: bytes, cut: int) -> None:
    """A record is read by the full decoder (``_decode``, the plain path),
    ``plain_fields`` and ``record`` (which take the one-pass decoder first), and its
    flags by ``deleted_at`` (the scan): the same values, or the same error at the
    same offset."""
    rec = rec[:len(rec) - cut] if cut < len(rec) else rec
    img = StateImage(encode_image(6, [(i, rec) for i in range(1, 6)]), 1000)

    def plain() -> Any:
        type_name, fields, flags = img._decode(2)
        return type_name, flags == NODE_FLAG_DELETED, strict(fields)

    def fast() -> Any:
        return img.deleted_at(2), strict(img.plain_fields(2, Ref))

    def record() -> Any:
        r = img.record(2)
        return r.type, r.deleted, strict(r.fields)

    want = outcome(plain)
    assert outcome(record) == want
    assert outcome(fast) == (want if want[0] == "error" else ("ok", want[1][1:]))
    flags = outcome(lambda: img.deleted_at(2))
    if flags[0] == "error":  # the scan reports the flags byte's errors as record does
        assert outcome(plain) == flags


stored = st.recursive(
    st.one_of(scalars, st.builds(Ref, st.integers(1, 5))),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=3), inner, max_size=4)),
    max_leaves=8)
records = st.builds(encode_node_record, st.text(min_size=1, max_size=4),
                    st.dictionaries(st.text(min_size=1, max_size=5), stored, max_size=5),
                    st.booleans())


@settings(max_examples=400, deadline=None)
@given(rec=records, at=st.integers(0, 200), byte=st.integers(0, 255))
def test_records_with_one_byte_changed_read_the_same(rec: bytes, at: int, byte: int) -> None:
    """A valid record of the common shape is read by the one-pass decoder (not left to
    the full one), to the same values; with one byte changed, both read it the
    same or raise the same error."""
    img = StateImage(encode_image(6, [(i, rec) for i in range(1, 6)]))
    fast = one_pass_fields(rec, 6, Ref)
    assert fast is not None
    assert strict(fast) == strict(img._decode(0)[1]) == strict(img.record(0).fields)
    bad = bytearray(rec)
    bad[at % len(bad)] = byte
    img = StateImage(encode_image(6, [(i, bytes(bad)) for i in range(1, 6)]))
    full = outcome(lambda: img._decode(3))
    full = full if full[0] == "error" else ("ok", (full[1][0], strict(full[1][1]), full[1][2]))
    assert outcome(lambda: strict(img.plain_fields(3, Ref))) == \
        (full if full[0] == "error" else ("ok", full[1][1]))
    r = outcome(lambda: img.record(3))
    assert (r if r[0] == "error" else
            ("ok", (r[1].type, strict(r[1].fields), r[1].deleted))) == \
        (full if full[0] == "error" else ("ok", full[1][:2] + (full[1][2] == NODE_FLAG_DELETED,)))


VECTORS = Path(__file__).resolve().parent.parent / "formatspec" / "vectors"


@pytest.mark.parametrize("name", sorted(p.stem for p in VECTORS.glob("*.myo")))
def test_every_golden_vector_scans_as_the_plain_paths_read_it(name: str, tmp_path: Path) -> None:
    """Version 1 to 4 files: checkpoints and genesis images (full, not layers), layers,
    compacted and forked files. A vector that does not open is another test's."""
    path = tmp_path / f"{name}.myo"
    shutil.copyfile(VECTORS / f"{name}.myo", path)
    try:
        mem = Memory.open(path, readonly=True)
    except MyosotisError:
        return
    with mem:
        assert_same(mem)
