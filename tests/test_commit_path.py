"""The commit path's shortcuts give exactly what the simple path gives.

- The history index of a writer is fed from the mutations it staged, not by
  decoding the payload it just wrote: its sidecar rows are those of an index
  rebuilt from the log (which decodes every commit).
- A layer copies the record of a node created since the last snapshot from
  its CREATE instead of encoding the node again: the file's bytes are those
  a writer that encodes every changed node writes (so the golden vectors'
  policy holds), and ``create_record`` is ``encode_node_record`` of the node.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from model import FixedClock

from myosotis import ListProxy, Memory, MyosotisError, Ref
from myosotis.engine import history_index, layers
from myosotis.engine.graph import GraphState
from myosotis.engine.index_file import sidecar_path
from myosotis.engine.layers import NewRecords
from myosotis.format.image import create_record, encode_node_record
from myosotis.format.mutations import Create, ListReplace, MapDelete, MapSet, Undelete, Unset
from myosotis.testing import open_memory, store_of

LABELS = ("", "x", "a longer label ✓", "é" * 70)  # label lengths move every offset


def value(rng: random.Random, ids: list[int], depth: int = 0) -> Any:
    """A random stored value, references to ``ids`` anywhere inside."""
    kind = rng.randrange(7 if depth < 2 and ids else 4)
    if kind == 0:
        return rng.randrange(-5, 1 << 40)
    if kind == 1:
        return "s" * rng.randrange(3)
    if kind == 2:
        return None
    if kind == 3:
        return rng.random()
    if kind == 4:
        return Ref(rng.choice(ids))
    if kind == 5:
        return [value(rng, ids, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice("zyxab"): value(rng, ids, depth + 1) for _ in range(rng.randrange(4))}


def edit(mem: Memory, rng: random.Random) -> None:
    """One random edit through the API (node handles, proxies, raw mutations); a
    refused one stages nothing."""
    ids = [n.id for n in mem.nodes()]
    step = rng.randrange(10) if ids else 0
    if step == 0:
        # fields in no particular order: the index must not depend on it
        names = rng.sample(["zeta", "alpha", "mid", "b", "items"], rng.randrange(1, 5))
        mem.create("N", **{k: value(rng, ids) for k in names})
        return
    n = mem[rng.choice(ids)]
    field = rng.choice(["zeta", "alpha", "items", "meta"])
    if step == 1:
        n[field] = value(rng, ids)
    elif step == 2:
        n["items"] = [Ref(rng.choice(ids)), [Ref(rng.choice(ids))], 3]
    elif step == 3:
        items = n.get("items")
        if type(items) is ListProxy:
            items.append(value(rng, ids))
            items.extend([value(rng, ids), Ref(rng.choice(ids))])  # staged as one batch
    elif step == 4:
        mem.stage(ListReplace(n.id, "items", (), 0, Ref(rng.choice(ids))))
    elif step == 5:
        mem.stage(MapSet(n.id, "meta", (), rng.choice("ab"), value(rng, ids)),
                  MapDelete(n.id, "meta", (), "zz"))  # refused whole: no key zz
    elif step == 6:
        mem.stage(MapSet(n.id, "meta", (), rng.choice("ab"), [Ref(rng.choice(ids))]))
    elif step == 7:
        mem.stage(Unset(n.id, field))
    elif step == 8:
        n.delete()
    else:
        mem.stage(Undelete(n.id))


def try_edit(mem: Memory, rng: random.Random) -> None:
    with contextlib.suppress(MyosotisError):  # refused: nothing staged (all or nothing)
        edit(mem, rng)


def write(mem: Memory, seed: int, commits: int) -> None:
    rng = random.Random(seed)
    for i in range(commits):
        for _ in range(rng.randrange(1, 5)):
            try_edit(mem, rng)
        if i % 17 == 16:
            mem.discard()  # a dropped edit leaves no rows
            try_edit(mem, rng)
        mem.commit(label=rng.choice(LABELS), allow_empty=True)


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(sidecar_path(str(path)))
    try:
        return {
            "chain": db.execute("SELECT seq, id FROM chain ORDER BY seq").fetchall(),
            "touch": db.execute("SELECT * FROM touch ORDER BY node, seq, off").fetchall(),
            "refev": db.execute("SELECT * FROM refev ORDER BY dst, seq, src, field").fetchall(),
        }
    finally:
        db.close()


@pytest.mark.parametrize("seed", range(4))
def test_writer_fed_index_rows_equal_the_rebuilt_index(
        tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.myo"
    decoded: list[int] = []
    original = history_index.add_commit

    def counting(*args: Any) -> None:
        decoded.append(args[1])
        original(*args)

    monkeypatch.setattr(history_index, "add_commit", counting)
    with Memory.open(path, clock=FixedClock()) as mem:
        write(mem, seed, 60)
        assert mem.log(1)  # a query: the writer's index is current, nothing to catch up
    assert decoded == [], "the writer decoded commits it had staged"
    fed = rows(path)
    assert len(fed["chain"]) == 60 and fed["touch"] and fed["refev"]

    copy = tmp_path / "b.myo"
    shutil.copyfile(path, copy)
    with Memory.open(copy) as mem:
        mem.log(1)  # catches up from the log, decoding every commit
    assert len(decoded) == 60
    assert rows(copy) == fed


def build(path: Path, seed: int, every: int) -> None:
    with open_memory(path, clock=FixedClock()) as mem:
        store_of(mem).layer_commits = every
        write(mem, seed, 80)
        for i in range(40):  # bulk creates: whole layers of CREATE records
            for _ in range(5):
                mem.create("Bulk", i=i, ref=Ref(1), tags=["a", "b"])
            mem.commit()


@pytest.mark.parametrize(("seed", "every"), [(0, 1), (1, 3), (2, 7)])
def test_layers_copying_created_records_write_the_bytes_of_encoding_them(
        tmp_path: Path, seed: int, every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    copied: list[int] = []

    def counting(buf: Any, start: int, end: int) -> bytes:
        copied.append(start)
        return create_record(buf, start, end)

    monkeypatch.setattr(layers, "create_record", counting)
    build(tmp_path / "copied.myo", seed, every)
    assert copied
    monkeypatch.setattr(NewRecords, "note", lambda *args: None)  # encode every node
    build(tmp_path / "encoded.myo", seed, every)
    copied = (tmp_path / "copied.myo").read_bytes()
    assert copied == (tmp_path / "encoded.myo").read_bytes()
    with Memory.open(tmp_path / "copied.myo", readonly=True) as mem:
        assert mem.info().checkpoints >= 80 // every
        assert mem.verify().ok


@pytest.mark.parametrize("node", [1, 127, 128, 16383, 16384, 1 << 40])
@pytest.mark.parametrize("seed", range(20))
def test_create_record_is_the_encoded_record(node: int, seed: int) -> None:
    rng = random.Random(seed)
    fields = {k: value(rng, [1, 2, 3]) for k in rng.sample(["zeta", "a", "é", "mm"], 3)}
    buf = bytearray(b"\xff\xff")  # the mutation is read where it is
    Create(node, "Type", fields).put(buf)
    assert create_record(buf, 2, len(buf)) == encode_node_record("Type", fields, False)


def test_records_kept_for_a_layer_follow_the_committed_state(tmp_path: Path) -> None:
    """What is kept for the next layer never outlives the state it was taken from."""
    path = tmp_path / "a.myo"
    with open_memory(path, clock=FixedClock()) as mem:
        store = store_of(mem)
        n = mem.create("N", x=1)
        mem.commit()
        assert set(store.new_records.created) == {n.id}
        n.x = 2
        mem.commit()
        assert store.new_records.created == {}  # changed after its CREATE: encoded
        mem.create("N", x=3)
        mem.commit()
        mem.checkpoint()
        assert store.new_records.created == {}  # in the layer now
    assert os.path.getsize(path) > 0


def test_a_created_node_edited_before_its_commit_leaves_its_create_as_it_was(
        tmp_path: Path) -> None:
    """The overlay shares a CREATE's field dict until the node's first edit."""
    with open_memory(tmp_path / "a.myo", clock=FixedClock()) as mem:
        store = store_of(mem)
        m = Create(1, "N", {"a": 1, "items": [1]})
        store.stage(m)
        mem[1].a = 2
        mem[1]["items"].append(2)
        del mem[1].a
        assert m == Create(1, "N", {"a": 1, "items": [1]})
        assert mem[1].fields() == {"items": [1, 2]}
        mem.commit()
        assert mem[1].fields() == {"items": [1, 2]}


@pytest.mark.parametrize("seed", range(6))
def test_large_containers_edited_through_spares_read_as_a_plain_model(
        tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Edits of a large list or map commit after commit (each commit's copy made
    from the container the commit before replaced, GraphState.take_spare) give the
    state of the same edits on plain Python values; views taken meanwhile, staged
    changes dropped, fields replaced and edits inside elements change nothing else."""
    recycled: list[int] = []
    take = GraphState.take_spare

    def counting(self: GraphState, value: Any, field: str) -> Any:
        entry = self.spares.get(id(value))
        spare = None if entry is None else id(entry[1])
        del entry  # (a reference held here would make take_spare copy)
        copy = take(self, value, field)
        if id(copy) == spare:
            recycled.append(len(copy))
        return copy

    monkeypatch.setattr(GraphState, "take_spare", counting)
    rng = random.Random(seed)
    path = tmp_path / "a.myo"
    model: dict[str, Any] = {"items": list(range(300)), "meta": {f"k{i}": i for i in range(300)}}
    with open_memory(path, clock=FixedClock(), durability="none") as mem:
        store = store_of(mem)
        store.layer_commits = 5
        n = mem.create("N", items=list(model["items"]), meta=dict(model["meta"]))
        mem.commit()
        views: list[tuple[Any, dict[str, Any]]] = []
        for i in range(80):
            step = rng.randrange(12)
            items, meta = n["items"], n["meta"]
            if step == 0:
                items.append(-1)  # dropped below, with the spare it took: the next edit copies
                mem.discard()
            if step == 1:
                views.append((mem.at(mem.head.seq), {"items": list(model["items"]),
                                                     "meta": dict(model["meta"])}))
            if step == 2:
                n["items"] = model["items"] = list(model["items"]) + [i]  # replaced
            if step == 3:
                items.append([i])  # an element edited inside later
                model["items"].append([i])
                items[len(model["items"]) - 1].append(i)
                model["items"][-1].append(i)
            if step == 4:
                mem.checkpoint()  # with nothing staged: a layer of what is committed
            for _ in range(rng.randrange(1, 4)):
                k = rng.randrange(4)
                if k == 0:
                    items.append(i)
                    model["items"].append(i)
                elif k == 1:
                    p = rng.randrange(len(model["items"]))
                    del items[p]
                    del model["items"][p]
                elif k == 2:
                    p = rng.randrange(len(model["items"]))
                    items.insert(p, str(i))
                    model["items"].insert(p, str(i))
                else:
                    key = f"k{rng.randrange(400)}"
                    if key in model["meta"] and rng.random() < 0.5:
                        del meta[key]
                        del model["meta"][key]
                    else:
                        meta[key] = i
                        model["meta"][key] = i
            mem.commit()
            assert n.fields() == model
        for view, seen in views:
            assert view[n.id].fields() == seen
        assert len(recycled) > 40  # most commits reused the spare
    with Memory.open(path, readonly=True) as mem:
        assert mem[n.id].fields() == model
        assert mem.verify().ok
