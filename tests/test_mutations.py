"""Each mutation type of FORMAT.md §6, one class each (format/mutations.py): its
name and opcode, encoding and decoding, the rules of applying it (R50–R53) on
every kind of state, and its forms for people and for JSON.

The byte-level round trips of arbitrary mutations are property tests in
test_format_codec.py; here every type gets one worked example and its rules.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from myosotis.cli.stage import describe
from myosotis.cli.values import to_json as cli_to_json
from myosotis.engine.graph import GraphState, NodeState, Overlay, SingleNode
from myosotis.errors import (
    DeletedNodeError,
    InvalidOperationError,
    InvalidValueError,
    NodeNotFoundError,
)
from myosotis.format.mutation_parts import Path
from myosotis.format.mutations import (
    MUTATION_TYPES,
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Set,
    Undelete,
    Unset,
    get_mutation,
    put_mutation,
)
from myosotis.format.values import DecodeError, Ref

# One example of each type, with its encoding (§6) and its forms for people and JSON.
EXAMPLES: list[tuple[Mutation, str, str, dict[str, Any]]] = [
    (Create(1, "Task", {"goal": "x", "n": 2}),
     "01 01 04 5461736b 02 04 676f616c 05 0178 01 6e 03 04",
     'create 1 Task goal="x" n=2',
     {"op": "create", "node": 1, "type": "Task", "fields": {"goal": "x", "n": 2}}),
    (Set(1, "goal", "x"), "02 01 04 676f616c 05 01 78", 'set 1.goal = "x"',
     {"op": "set", "node": 1, "field": "goal", "value": "x"}),
    (Unset(3, "goal"), "03 03 04 676f616c", "unset 3.goal",
     {"op": "unset", "node": 3, "field": "goal"}),
    (Delete(200), "04 c801", "delete 200", {"op": "delete", "node": 200}),
    (ListInsert(1, "items", (), 2, 5), "05 01 05 6974656d73 00 02 03 0a",
     "list-insert 1.items at 2: 5",
     {"op": "list-insert", "node": 1, "field": "items", "path": [], "index": 2, "value": 5}),
    (ListRemove(1, "items", (0,), 1), "06 01 05 6974656d73 01 00 00 01",
     "list-remove 1.items[0] at 1",
     {"op": "list-remove", "node": 1, "field": "items", "path": [0], "index": 1}),
    (ListReplace(1, "items", (), 0, Ref(2)), "07 01 05 6974656d73 00 00 06 02",
     "list-set 1.items at 0 = @2",
     {"op": "list-set", "node": 1, "field": "items", "path": [], "index": 0,
      "value": {"@ref": 2}}),
    (MapSet(1, "m", ("a",), "k", 1), "08 01 01 6d 01 01 01 61 01 6b 03 02",
     'map-set 1.m["a"] ["k"] = 1',
     {"op": "map-set", "node": 1, "field": "m", "path": ["a"], "key": "k", "value": 1}),
    (MapDelete(1, "m", (), "k"), "09 01 01 6d 00 01 6b", 'map-delete 1.m ["k"]',
     {"op": "map-delete", "node": 1, "field": "m", "path": [], "key": "k"}),
    (Undelete(300), "0a ac02", "undelete 300", {"op": "undelete", "node": 300}),
]
IDS = [type(m).__name__ for m, *_ in EXAMPLES]


class PlainRenderer:
    """A Renderer for the tests: JSON for values, names as they are."""

    def value(self, v: Any) -> str:
        return f"@{v.id}" if type(v) is Ref else json.dumps(v)

    def name(self, s: str) -> str:
        return s

    def place(self, node: int, field: str, path: Path) -> str:
        return f"{node}.{field}" + "".join(f"[{json.dumps(s)}]" for s in path)


def test_every_type_has_its_name_and_opcode() -> None:
    assert [(t.NAME, t.OP) for t in MUTATION_TYPES] == [
        ("create", 1), ("set", 2), ("unset", 3), ("delete", 4), ("list-insert", 5),
        ("list-remove", 6), ("list-set", 7), ("map-set", 8), ("map-delete", 9),
        ("undelete", 10)]
    assert Set(1, "a", 1).NAME == "set" and ListReplace.NAME == "list-set"


def test_fields_and_constructors_are_the_tuples() -> None:
    m = ListInsert(1, "items", (0,), 2, "v")
    assert ListInsert._fields == ("node", "field", "path", "pos", "value")
    assert tuple(m) == (1, "items", (0,), 2, "v") and m.pos == 2
    assert m._replace(value="w") == ListInsert(1, "items", (0,), 2, "w")
    assert type(m._replace(pos=0)) is ListInsert


# --------------------------------------------------------------------------
# encoding


@pytest.mark.parametrize(("m", "hex_bytes"), [(m, h) for m, h, *_ in EXAMPLES], ids=IDS)
def test_each_type_encodes_to_the_spec_bytes_and_decodes_back(m: Mutation,
                                                              hex_bytes: str) -> None:
    out = bytearray()
    m.put(out)
    assert out.hex() == hex_bytes.replace(" ", "")
    other = bytearray()
    put_mutation(other, m)
    assert other == out
    back, end = get_mutation(bytes(out), 0, len(out))
    assert back == m and type(back) is type(m) and end == len(out)


@pytest.mark.parametrize("node", [1, 127, 128, 200, 0x3FFF, 0x4000, 1 << 40, (1 << 63) - 1])
def test_node_ids_of_every_width_round_trip(node: int) -> None:
    for m in (Set(node, "f", None), Delete(node)):
        out = bytearray()
        m.put(out)
        assert get_mutation(bytes(out), 0, len(out)) == (m, len(out))


@pytest.mark.parametrize(("data", "reason"), [
    ("02", "varint runs past the end"),  # the node id is missing
    ("02 80", "varint runs past the end"),  # cut in the middle of the node id
    ("02 80 00", "shortest form"),  # non-canonical two-byte id (R1)
    ("02 00", "node id 0 is out of range"),
    ("0b 01", "invalid mutation opcode 0x0b"),
    ("00 01", "invalid mutation opcode 0x00"),
    ("02 01 00", "empty field name"),
    ("01 01 00 00", "empty node type"),
])
def test_decoder_refuses_broken_heads(data: str, reason: str) -> None:
    buf = bytes.fromhex(data.replace(" ", ""))
    with pytest.raises(DecodeError, match=reason):
        get_mutation(buf, 0, len(buf))


@pytest.mark.parametrize(("m", "fragment"), [
    (Set(0, "f", 1), "node id 0"),
    (Delete(1 << 63), "out of range"),
    (Set(1, "", 1), "non-empty"),
    (Create(1, "", {}), "non-empty"),
    (ListRemove(1, "f", (), -1), "list index -1"),
    (ListInsert(1, "f", (-1,), 0, 1), "list index -1 in a path"),
    (MapSet(1, "f", (), "k", object()), "cannot"),
])
def test_encoder_refuses_what_the_decoder_would(m: Mutation, fragment: str) -> None:
    with pytest.raises(InvalidValueError, match=fragment):
        m.put(bytearray())


# --------------------------------------------------------------------------
# applying (R50–R53)


def committed() -> GraphState:
    """Node 1 (Task: goal, items [[1, 2], 3], m {"a": {"k": 0}}) and node 2, deleted."""
    g = GraphState()
    Create(1, "Task", {"goal": "x", "items": [[1, 2], 3], "m": {"a": {"k": 0}}}).apply(g)
    Create(2, "Task", {}).apply(g)
    Delete(2).apply(g)
    return g


def test_undelete_clears_a_tombstone_and_keeps_the_fields() -> None:
    g = committed()
    Set(1, "goal", "y").apply(g)
    Undelete(2).apply(g)
    n = g.get(2)
    assert n is not None and not n.deleted and n.fields == {}
    Set(2, "f", 1).apply(g)  # live again: it can change
    assert fields(g, 2) == {"f": 1}


@pytest.mark.parametrize(("node", "error"), [(1, InvalidOperationError), (9, NodeNotFoundError)])
def test_undelete_of_a_live_or_missing_node_is_refused(node: int, error: type) -> None:
    g = committed()
    before = g.image()
    with pytest.raises(error):
        Undelete(node).apply(g)
    assert g.image() == before


def fields(state: Any, node_id: int = 1) -> dict[str, Any]:
    n = state.get(node_id)
    assert n is not None
    return n.fields


APPLIED: list[tuple[Mutation, str, Any]] = [
    (Set(1, "goal", "y"), "goal", "y"),
    (Set(1, "new", Ref(2)), "new", Ref(2)),  # a reference to a deleted node is fine (R51)
    (Unset(1, "goal"), "goal", None),
    (ListInsert(1, "items", (), 2, 4), "items", [[1, 2], 3, 4]),
    (ListInsert(1, "items", (0,), 0, 0), "items", [[0, 1, 2], 3]),
    (ListRemove(1, "items", (), 1), "items", [[1, 2]]),
    (ListReplace(1, "items", (0,), 1, 9), "items", [[1, 9], 3]),
    (MapSet(1, "m", ("a",), "j", 1), "m", {"a": {"k": 0, "j": 1}}),
    (MapDelete(1, "m", ("a",), "k"), "m", {"a": {}}),
]
APPLIED_IDS = [f"{type(m).__name__}-{i}" for i, (m, *_) in enumerate(APPLIED)]


@pytest.mark.parametrize(("m", "field", "after"), APPLIED, ids=APPLIED_IDS)
def test_each_edit_applies_in_place_on_a_committed_state(m: Mutation, field: str,
                                                         after: Any) -> None:
    g = committed()
    m.apply(g)
    assert fields(g).get(field) == after


@pytest.mark.parametrize(("m", "field", "after"), APPLIED, ids=APPLIED_IDS)
def test_each_edit_stages_on_an_overlay_without_changing_its_parent(m: Mutation, field: str,
                                                                    after: Any) -> None:
    g = committed()
    before = json.dumps(fields(g), default=repr, sort_keys=True)
    o = Overlay(g)
    m.apply(o)
    assert fields(o).get(field) == after
    assert json.dumps(fields(g), default=repr, sort_keys=True) == before


def test_create_takes_the_next_id_and_may_refer_to_itself() -> None:
    g = committed()
    Create(3, "Note", {"self": Ref(3)}).apply(g)
    assert g.next_node_id == 4 and g.get(3) is not None
    with pytest.raises(InvalidOperationError, match=r"create of node 5 but the next id is 4"):
        Create(5, "Note", {}).apply(g)
    with pytest.raises(NodeNotFoundError, match="reference to node 5"):
        Create(4, "Note", {"x": [Ref(5)]}).apply(g)
    assert g.next_node_id == 4


def test_delete_sets_the_tombstone_once() -> None:
    g = committed()
    Delete(1).apply(g)
    n = g.get(1)
    assert n is not None and n.deleted
    with pytest.raises(DeletedNodeError, match="node 1 is deleted"):
        Delete(1).apply(g)


REFUSED: list[tuple[Mutation, type[Exception], str]] = [
    (Set(9, "goal", 1), NodeNotFoundError, "node 9 does not exist"),
    (Set(2, "goal", 1), DeletedNodeError,
     r"node 2 is deleted; a deleted node cannot change \(R50\)"),
    (Set(1, "goal", Ref(3)), NodeNotFoundError, "reference to node 3, which does not exist"),
    (Set(1, "goal", {"a": [Ref(9)]}), NodeNotFoundError, "reference to node 9"),
    (Unset(1, "nope"), InvalidOperationError, "node 1 has no field 'nope' to delete"),
    (Unset(2, "goal"), DeletedNodeError, "node 2 is deleted"),
    (Delete(9), NodeNotFoundError, "node 9 does not exist"),
    (ListInsert(1, "nope", (), 0, 1), InvalidOperationError, "node 1 has no field 'nope'"),
    (ListInsert(1, "items", (), 3, 1), InvalidOperationError,
     "list index 3 out of range for a list of length 2"),
    (ListInsert(1, "items", (), 0, Ref(7)), NodeNotFoundError, "reference to node 7"),
    (ListRemove(1, "items", (), 2), InvalidOperationError, "list index 2 out of range"),
    (ListRemove(1, "goal", (), 0), InvalidOperationError,
     r"field 'goal' of node 1 at path \[\] is a str, not a list"),
    (ListReplace(1, "items", (5,), 0, 1), InvalidOperationError,
     "index 5 out of range at step 0 of the path into 'items' \\(length 2\\)"),
    (ListReplace(1, "items", ("k",), 0, 1), InvalidOperationError,
     "path step 'k' does not fit a list in field 'items'"),
    (MapSet(1, "items", (), "k", 1), InvalidOperationError, "is a list, not a map"),
    (MapSet(1, "m", ("b",), "k", 1), InvalidOperationError,
     "key 'b' missing at step 0 of the path into 'm'"),
    (MapSet(2, "m", (), "k", 1), DeletedNodeError, "node 2 is deleted"),
    (MapDelete(1, "m", ("a",), "z"), InvalidOperationError, "map has no key 'z' to delete"),
]


@pytest.mark.parametrize(("m", "error", "message"), REFUSED,
                         ids=[f"{type(m).__name__}-{i}" for i, (m, *_) in enumerate(REFUSED)])
def test_a_refused_mutation_raises_and_changes_nothing(m: Mutation, error: type[Exception],
                                                       message: str) -> None:
    for state in (committed(), Overlay(committed())):
        before = json.dumps([fields(state), state.next_node_id], default=repr, sort_keys=True)
        with pytest.raises(error, match=message):
            m.apply(state)
        after = json.dumps([fields(state), state.next_node_id], default=repr, sort_keys=True)
        assert after == before


def test_overlay_copies_a_field_once_then_edits_its_own_copy() -> None:
    g = committed()
    o = Overlay(g)
    ListInsert(1, "items", (0,), 0, 0).apply(o)
    ListInsert(1, "items", (0,), 0, -1).apply(o)
    assert fields(o)["items"] == [[-1, 0, 1, 2], 3]
    assert fields(g)["items"] == [[1, 2], 3]
    Set(1, "goal", "y").apply(o)  # a new value: the overlay's own, the old one shared
    assert fields(o)["m"] is fields(g)["m"]


def test_a_single_node_state_replays_one_nodes_history() -> None:
    one = SingleNode(4, None)
    Create(4, "Task", {"items": []}).apply(one)
    ListInsert(4, "items", (), 0, "a").apply(one)
    Set(4, "other", Ref(1)).apply(one)  # no other node to check against: not refused
    Delete(4).apply(one)
    assert one.node is not None and one.node.fields == {"items": ["a"], "other": Ref(1)}
    with pytest.raises(DeletedNodeError):
        Set(4, "x", 1).apply(one)
    empty = SingleNode(4, NodeState("Task", {}))
    with pytest.raises(InvalidOperationError, match="create of node 4"):
        Create(4, "Task", {}).apply(empty)  # the node exists already


# --------------------------------------------------------------------------
# for people and for JSON


@pytest.mark.parametrize(("m", "text", "as_json"), [(m, t, j) for m, _, t, j in EXAMPLES],
                         ids=IDS)
def test_describe_and_to_json(m: Mutation, text: str, as_json: dict[str, Any]) -> None:
    assert describe(m) == text  # the command line's renderer (cli/stage.py)
    plain = m.describe(PlainRenderer())
    assert plain.split()[0] == m.NAME
    d = m.to_json(cli_to_json)
    assert d == as_json and list(d) == list(as_json)  # the keys in this order
