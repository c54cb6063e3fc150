"""Canonical JSON export and import (formatspec/EXPORT.md).

Properties: for random histories over every value kind, a state export
imports to a file with the same state hash and head (E30), a history export
to a file with every commit id (E31), at the head and at any past commit,
from a compacted file too (§7 "Genesis"); the export bytes are a function of
the state alone (E10); import refuses hostile documents with their JSON
location and creates no file (E1-E3, E11-E22, E40-E42), and reads any layout
as a stream (E43).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model import FixedClock

from myosotis import (
    INT_MAX,
    INT_MIN,
    InvalidDocumentError,
    Memory,
    MyosotisError,
    Ref,
)

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

U64 = (1 << 64) - 1
FLOATS = st.integers(0, U64).map(lambda b: struct.unpack("<d", struct.pack("<Q", b))[0]) | \
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 1.5])
TEXT = st.text(st.characters(codec="utf-8"), max_size=8)
SCALARS = st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX) | FLOATS | TEXT | \
    st.integers(1, 6).map(lambda k: ("ref", k))
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) |
                      st.dictionaries(TEXT, c, max_size=3), max_leaves=8)
FIELDS = st.sampled_from(["a", "b", "goal", "ünï"])
ACTIONS = st.lists(st.tuples(
    st.sampled_from(["create", "set", "unset", "delete", "append", "mapset", "nested",
                     "pop"]),
    st.integers(1, 6), FIELDS, VALUES), min_size=1, max_size=6)
HISTORIES = st.lists(ACTIONS, min_size=1, max_size=5)


def _value(v: Any, n: int) -> Any:
    """A drawn value with ``("ref", k)`` turned into a reference to an existing node."""
    if isinstance(v, tuple):
        return Ref(min(v[1], n)) if n else None
    if isinstance(v, list):
        return [_value(x, n) for x in v]
    if isinstance(v, dict):
        return {k: _value(x, n) for k, x in v.items()}
    return v


def _act(mem: Memory, kind: str, k: int, field: str, v: Any) -> None:
    n = len(mem) + sum(1 for _ in mem.nodes(deleted=True))
    value = _value(v, n)
    try:
        if kind == "create" or n == 0:
            mem.create("T", **{field: value})
            return
        node = mem[min(k, n)]
        if kind == "set":
            node[field] = value
        elif kind == "unset":
            names = sorted(node.fields())
            if names:
                del node[names[k % len(names)]]
        elif kind == "delete":
            node.delete()
        elif kind == "nested":  # path mutations below the field's value (path != ())
            node[field] = {"in": [0, {"deep": []}]}
            node[field]["in"].insert(1, value)
            node[field]["in"][2]["deep"].append(value)
            node[field]["in"][0] = value
        elif kind == "pop":  # list-remove or map-delete on some container field
            boxes = [(name, v) for name, v in sorted(node.fields().items())
                     if isinstance(v, (list, dict)) and v]
            if boxes:
                name, items = boxes[k % len(boxes)]
                del node[name][k % len(items) if isinstance(items, list)
                               else sorted(items)[k % len(items)]]
        elif kind == "append":  # list-insert, then list-remove
            node[field] = [value, value]
            node[field].append(value)
            del node[field][k % 3]
        else:  # map-set, then map-delete
            node[field] = {"k": value}
            node[field]["j"] = value
            del node[field]["k" if k % 2 else "j"]
    except (MyosotisError, KeyError, AttributeError, TypeError):
        pass  # refused: nothing staged (R50 on a tombstone, a missing field)


def build(path: Path, history: list[list[tuple[str, int, str, Any]]]) -> Memory:
    mem = Memory.open(path, clock=FixedClock())
    for i, actions in enumerate(history):
        for a in actions:
            _act(mem, *a)
        mem.commit(f"c{i}" if i % 2 else None, allow_empty=True)
    return mem


def export_bytes(mem: Memory, **kw: Any) -> bytes:
    buf = io.BytesIO()
    mem.export(buf, **kw)
    return buf.getvalue()


def imported(data: bytes, path: Path) -> Memory:
    return Memory.import_(io.BytesIO(data), path)


# ---------------------------------------------------------------------- round trips


@SETTINGS
@given(HISTORIES, st.data())
def test_state_and_history_round_trip_at_any_commit(tmp_path_factory: Any, history: Any,
                                                   data: st.DataObject) -> None:
    d = tmp_path_factory.mktemp("rt")
    with build(d / "src.myo", history) as mem:
        at = data.draw(st.integers(0, mem.head.seq if mem.head else 0), label="at")
        state = export_bytes(mem, at=at)
        hist = export_bytes(mem, at=at, history=True)
        want_hash = mem.at(at).state_hash()
        want_ids = [c.id for c in mem.history()][:at]
        with imported(state, d / "state.myo") as copy:
            assert copy.state_hash() == want_hash
            assert (copy.head.seq, copy.head.id) == (at, mem.commit_info(at).id) if at else True
            assert export_bytes(copy) == state  # E10: same state, same bytes
        with imported(hist, d / "hist.myo") as copy:
            assert [c.id for c in copy.history()] == want_ids
            assert copy.state_hash() == want_hash
            assert export_bytes(copy, history=True) == hist
        assert Memory.check_file(d / "hist.myo").ok


@SETTINGS
@given(HISTORIES, st.data())
def test_history_of_a_compacted_file_starts_from_its_genesis(tmp_path_factory: Any,
                                                            history: Any,
                                                            data: st.DataObject) -> None:
    d = tmp_path_factory.mktemp("cp")
    with build(d / "src.myo", history) as mem:
        base = data.draw(st.integers(0, mem.head.seq), label="base")
        mem.compact(at=base)
        hist = export_bytes(mem, history=True)
        doc = json.loads(hist)
        assert doc["genesis"]["seq"] == base  # compaction always writes a genesis
        assert [c["seq"] for c in doc["commits"]] == list(range(base + 1, mem.head.seq + 1))
        with imported(hist, d / "copy.myo") as copy:
            assert [c.id for c in copy.history()] == [c.id for c in mem.history()]
            assert copy.head == mem.head
            assert copy.state_hash() == mem.state_hash()


def test_every_value_kind_is_typed_and_floats_keep_their_bits(tmp_path: Path) -> None:
    nan_payload = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000123))[0]
    with Memory.open(tmp_path / "a.myo", clock=FixedClock()) as mem:
        a = mem.create("A", n=None, t=True, i=INT_MIN, j=INT_MAX, z=-0.0, inf=math.inf,
                       nan=nan_payload, s="ü\0", l=[1, [2]], m={"b": {}, "a": 1})
        a.r = a
        mem.commit()
        doc = json.loads(export_bytes(mem))
        f = doc["nodes"][0]["fields"]
        assert f["n"] == {"null": None} and f["t"] == {"bool": True}
        assert f["i"] == {"int": INT_MIN} and f["r"] == {"ref": 1}
        assert f["z"] == {"float": "8000000000000000"}
        assert f["inf"] == {"float": "7ff0000000000000"}
        assert f["nan"] == {"float": "7ff0000000000123"}
        assert list(f["m"]["map"]) == ["a", "b"]  # R40 order
        with imported(export_bytes(mem), tmp_path / "b.myo") as copy:
            got = copy[1].nan
            assert struct.pack("<d", got) == struct.pack("<d", nan_payload)
            assert math.copysign(1, copy[1].z) == -1
            assert copy.state_hash() == mem.state_hash()


def test_export_is_deterministic_and_streams_to_text_files(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "a.myo", clock=FixedClock()) as mem:
        for k in range(50):
            mem.create("N", k=k, s=str(k))
        mem.commit("x")
        one = export_bytes(mem, history=True)
    with Memory.open(tmp_path / "a.myo", readonly=True) as mem:
        assert export_bytes(mem, history=True) == one
        text = io.StringIO()
        mem.export(text, history=True)
        assert text.getvalue().encode() == one
    assert one.count(b"\n") == 3  # "commits":[ / the one commit / ],"head"... / end


def test_empty_memory_exports_and_imports(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "a.myo") as mem:
        for history in (False, True):
            data = export_bytes(mem, history=history)
            with imported(data, tmp_path / f"e{history}.myo") as copy:
                assert copy.head is None and len(copy) == 0
                assert copy.state_hash() == mem.state_hash()


# ---------------------------------------------------------------------- hostile input


def _state_doc() -> dict[str, Any]:
    return {"format": "myosotis-export", "version": 1, "kind": "state",
            "at": {"seq": 0, "id": None}, "next_node_id": 3,
            "nodes": [{"id": 1, "type": "A", "deleted": False, "fields": {"x": {"int": 1}}},
                      {"id": 2, "type": "B", "deleted": True, "fields": {"r": {"ref": 1}}}]}


def _edit(path: str, value: Any) -> dict[str, Any]:
    doc = _state_doc()
    *parents, last = path.strip("/").split("/")
    target: Any = doc
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


HOSTILE = [
    (_edit("/nodes/0/fields/x", {"int": "1"}), "/nodes/0/fields/x/int"),
    (_edit("/nodes/0/fields/x", {"int": True}), "/nodes/0/fields/x/int"),
    (_edit("/nodes/0/fields/x", {"int": 1 << 63}), "/nodes/0/fields/x/int"),
    (_edit("/nodes/0/fields/x", {"float": 1.5}), "/nodes/0/fields/x/float"),
    (_edit("/nodes/0/fields/x", {"int": 1, "str": "a"}), "/nodes/0/fields/x"),
    (_edit("/nodes/0/fields/x", {"ref": 7}), "/nodes/0"),  # dangling (R72)
    (_edit("/nodes/1/id", 1), "/nodes/1/id"),  # duplicate id
    (_edit("/nodes/1/id", 3), "/nodes/1/id"),  # >= next_node_id
    (_edit("/next_node_id", 1 << 63), "/nodes"),  # ids missing, nothing allocated
    (_edit("/next_node_id", 1 << 64), "/next_node_id"),
    (_edit("/nodes/0/type", ""), "/nodes/0/type"),
    (_edit("/nodes/0/deleted", 0), "/nodes/0/deleted"),
    (_edit("/nodes/0/extra", 1), "/nodes/0/extra"),
    (_edit("/version", 2), "/version"),
    (_edit("/kind", "other"), "/kind"),
    (_edit("/at/id", "00" * 32), "/at/id"),  # seq 0 names no commit (R86)
    (_edit("/nodes/0/fields/x", {"str": "\ud800"}), "/nodes/0/fields/x/str"),
    (_edit("/state_hash", "00" * 32), "/state_hash"),
    (_edit("/nodes/0/fields", {"": {"int": 1}}), "/nodes/0/fields/"),  # §5: non-empty
    (_edit("/nodes/0/fields", {"f" * 1025: {"int": 1}}), f"/nodes/0/fields/{'f' * 1025}"),
]


@pytest.mark.parametrize(("doc", "where"), HOSTILE)
def test_hostile_documents_are_refused_with_their_location(tmp_path: Path, doc: Any,
                                                           where: str) -> None:
    with pytest.raises(InvalidDocumentError) as e:
        imported(json.dumps(doc).encode(), tmp_path / "x.myo")
    assert e.value.location == where, e.value
    assert os.listdir(tmp_path) == []  # no file, no temp file


@pytest.mark.parametrize(("text", "where"), [
    (b"[" * 200_000, "line 1, column"),  # no RecursionError
    (b'{"a": ' + b"9" * 1_000_000 + b"}", "/"),  # no int of a million digits
    (b'{"format": 1, "format": 2}', "/format"),  # duplicate key
    (b'{"format": "myosotis-export", "version": 1e0}', "/version"),
    (b"\xff\xfe", "byte 0"),
    (b'{"format": "myosotis-export", "version": 1, "kind": "state" ', "line 1, column"),
    (b"NaN", ""),  # the whole document (RFC 6901)
])
def test_hostile_text_is_refused_cleanly(tmp_path: Path, text: bytes, where: str) -> None:
    with pytest.raises(InvalidDocumentError) as e:
        imported(text, tmp_path / "x.myo")
    assert e.value.location.startswith(where), e.value
    assert os.listdir(tmp_path) == []


def test_deep_values_are_refused_at_the_limit(tmp_path: Path) -> None:
    v: Any = {"int": 1}
    for _ in range(65):
        v = {"list": [v]}
    with pytest.raises(InvalidDocumentError, match="deeper than 64"):
        imported(json.dumps(_edit("/nodes/0/fields/x", v)).encode(), tmp_path / "x.myo")
    assert os.listdir(tmp_path) == []


def _history_doc(tmp_path: Path) -> dict[str, Any]:
    with Memory.open(tmp_path / "src.myo", clock=FixedClock()) as mem:
        a = mem.create("A", l=[1])
        mem.commit("one")
        a.l.append(2)
        mem.commit("two")
        doc: dict[str, Any] = json.loads(export_bytes(mem, history=True))
    for leftover in tmp_path.iterdir():  # the file, its lock and its history index
        os.remove(leftover)
    return doc


@pytest.mark.parametrize(("edit", "where"), [
    (lambda d: d["commits"][1].update(label="changed"), "/commits/1/id"),
    (lambda d: d["commits"][1].update(seq=3), "/commits/1/seq"),
    (lambda d: d["commits"][1].update(parent="ab" * 32), "/commits/1/parent"),
    (lambda d: d["commits"][1]["mutations"][0].update(index=5), "/commits/1/mutations/0"),
    (lambda d: d["commits"][1]["mutations"][0].update(op="explode"),
     "/commits/1/mutations/0/op"),
    (lambda d: d["commits"][0]["mutations"][0].update(node=2), "/commits/0/mutations/0"),
    (lambda d: d["commits"][0].update(timestamp_us=1 << 63), "/commits/0/timestamp_us"),
    (lambda d: d["commits"].pop(), "/head"),
    (lambda d: d.update(next_node_id=5), "/next_node_id"),
])
def test_hostile_histories_are_refused(tmp_path: Path, edit: Any, where: str) -> None:
    doc = _history_doc(tmp_path)
    edit(doc)
    with pytest.raises(InvalidDocumentError) as e:
        imported(json.dumps(doc).encode(), tmp_path / "x.myo")
    assert e.value.location == where, e.value
    assert os.listdir(tmp_path) == []


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_exports_are_refused_or_imported_whole(tmp_path: Path,
                                                       data: st.DataObject) -> None:
    good = json.dumps(_state_doc()).encode()
    pos = data.draw(st.integers(0, len(good) - 1))
    bad = good[:pos] + data.draw(st.binary(min_size=0, max_size=3)) + \
        good[pos + data.draw(st.integers(0, 3)):]
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "x.myo"
    try:
        imported(bad, out).close()
    except InvalidDocumentError:
        assert not out.exists()
    else:
        assert Memory.check_file(out).ok


def test_import_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "x.myo").write_bytes(b"keep")
    with pytest.raises(MyosotisError, match="already exists"):
        imported(json.dumps(_state_doc()).encode(), tmp_path / "x.myo")
    assert (tmp_path / "x.myo").read_bytes() == b"keep"
    assert sorted(os.listdir(tmp_path)) == ["x.myo"]


def test_export_memory_does_not_grow_with_the_state(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """E10/§2: export streams in constant memory: one node at a time, a block of the
    state hash's tables, the output buffer; not the document, the image, nor even
    the 8 bytes per node of the record lengths."""
    import tracemalloc

    from myosotis.engine import export
    monkeypatch.setattr(export, "_CHUNK", 1024)  # blocks far smaller than the state

    path = tmp_path / "big.myo"
    with Memory.open(path, clock=FixedClock()) as mem:
        for k in range(20_000):
            mem.create("N", k=k, text="x" * 40, tags=["a", "b"])
        mem.commit()
        mem.checkpoint()  # the state is then read in place, not held decoded
    written = [0]

    class Sink:
        def write(self, b: bytes) -> None:
            written[0] += len(b)

    with Memory.open(path, readonly=True, node_cache=100) as mem:
        tracemalloc.start()
        try:
            mem.export(Sink())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert written[0] > 2_000_000
    # less than the record lengths alone would take (8 bytes a node), for 3.4 MB of JSON
    assert peak < 8 * 20_000, (peak, written[0])


class Trickle(io.RawIOBase):
    """A file that returns at most 7 bytes per read, as a pipe may."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._data[self._pos:self._pos + min(7, n if n >= 0 else 7)]
        self._pos += len(chunk)
        return chunk


def _reordered(x: Any) -> Any:
    """The same JSON content with every object's keys in reverse order."""
    if isinstance(x, dict):
        return {k: _reordered(x[k]) for k in reversed(list(x))}
    if isinstance(x, list):
        return [_reordered(v) for v in x]
    return x


@pytest.mark.parametrize("history", [False, True])
def test_import_reads_any_layout_and_key_order(tmp_path: Path, history: bool) -> None:
    """E10: a reader accepts any whitespace and key order (the streamed reader then
    reads ahead); and input that arrives a few bytes at a time."""
    with build(tmp_path / "src.myo", [[("create", 1, "a", [1, ("ref", 1)])],
                                      [("nested", 1, "b", {"x": 2.5})]]) as mem:
        mem.compact(at=1)
        data = export_bytes(mem, history=history)
        want = (mem.state_hash(), mem.head.id, [c.id for c in mem.history()] if history else [])
    pretty = json.dumps(_reordered(json.loads(data)), indent=3).encode()
    for i, text in enumerate((pretty, data)):
        with Memory.import_(Trickle(text), tmp_path / f"c{i}.myo") as copy:
            assert (copy.state_hash(), copy.head.id, [c.id for c in copy.history()]) == want
            assert export_bytes(copy, history=history) == data


@pytest.mark.parametrize(("tail", "where"), [
    (b" x", "line 4, column"), (b"{}", "line 4, column"), (b"\n\n ]", "line 6, column 2")])
def test_nothing_may_follow_the_document(tmp_path: Path, tail: bytes, where: str) -> None:
    with Memory.open(tmp_path / "a.myo") as mem:
        mem.create("A")
        mem.commit()
        data = export_bytes(mem)
    with pytest.raises(InvalidDocumentError) as e:
        imported(data + tail, tmp_path / "x.myo")
    assert e.value.location.startswith(where), e.value
    assert not (tmp_path / "x.myo").exists()


def test_the_streamed_reader_cuts_its_buffer_without_losing_its_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a tiny buffer the reader cuts consumed text all the time: the import and
    the line numbers of errors must not notice."""
    from myosotis.format import jsonstream
    monkeypatch.setattr(jsonstream, "_KEEP", 10)
    monkeypatch.setattr(jsonstream, "_CHUNK", 5)
    history = [[("create", 1, "a", "x" * 30), ("append", 1, "b", 1.5)] for _ in range(6)]
    with build(tmp_path / "src.myo", history) as mem:
        data = export_bytes(mem, history=True)
        want = [c.id for c in mem.history()]
    with Memory.import_(io.BytesIO(data), tmp_path / "c.myo") as copy:
        assert [c.id for c in copy.history()] == want
    lines = data.count(b"\n")
    with pytest.raises(InvalidDocumentError) as e:
        imported(data + b"\n\n  x", tmp_path / "x.myo")
    assert e.value.location == f"line {lines + 3}, column 3"
    bad = data.replace(b'"timestamp_us"', b'"timestamp_us" x', 1)
    with pytest.raises(InvalidDocumentError) as e:
        imported(bad, tmp_path / "y.myo")
    col = bad.split(b"\n")[1].index(b" x") + 2
    assert e.value.location == f"line 2, column {col}", e.value


def test_cli_export_to_stdout_and_import_from_stdin(cli: Any, tmp_path: Path) -> None:
    cli("init", "s.myo")
    cli("create", "Agent", "goal=Explore")
    cli("commit", "one")
    cli("set", "1", "goal", "-0.0")
    cli("commit", "two")
    r = cli("export", "--at", "1")
    doc = json.loads(r.stdout)
    assert doc["at"]["seq"] == 1
    assert doc["nodes"][0]["fields"]["goal"] == {"str": "Explore"}
    r = cli("export", "--history")
    hist = r.stdout
    assert json.loads(hist)["commits"][1]["mutations"][0]["value"] == {
        "float": "8000000000000000"}
    from cliutil import RUNNER

    from myosotis.cli import app
    res = RUNNER.invoke(app, ["import", "-", "copy.myo", "--json"], input=hist)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["commits"] == 2 and out["head"]["seq"] == 2
    r = cli("-f", "copy.myo", "export", "--history")
    assert r.stdout == hist


def test_a_history_with_an_undelete_imports_as_a_version_3_file(tmp_path: Path) -> None:
    # the importer learns that the file needs version 3 (R54) only at the commit that
    # holds the UNDELETE, after the header was written: it rewrites the header
    with Memory.open(tmp_path / "src.myo", clock=FixedClock()) as mem:
        a = mem.create("A", x=1)
        mem.commit("make")
        a.delete()
        mem.commit("delete")
        mem.restore(1)
        mem.commit("restore")
        doc = export_bytes(mem, history=True)
        head, h = mem.head, mem.state_hash()
    with imported(doc, tmp_path / "x.myo") as new:
        assert new.info().format_version == 3
        assert new.head is not None and head is not None
        assert new.head.id == head.id and new.state_hash() == h
    assert Memory.check_file(tmp_path / "x.myo").ok
    exported = json.loads(doc)
    assert any(m["op"] == "undelete" for c in exported["commits"] for m in c["mutations"])
