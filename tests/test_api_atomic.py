"""A rejected change changes nothing (README "API overview"; issue #8 item 7).

Every public mutator that stages several mutations (``extend``, ``+=``,
``update``, ``clear``, ``reverse``, ``del lst[a:b]``) or builds one from many
values (``create`` with many fields) either stages all of them or, rejected,
leaves the staged state, ``mem.pending``, the state hash and every value read
back exactly as they were.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from model import FixedClock

from myosotis import (
    DeletedNodeError,
    InvalidOperationError,
    InvalidValueError,
    Memory,
    Node,
    NodeNotFoundError,
    Ref,
    UncommittedChangesWarning,
)


@pytest.fixture
def mem(mem_path: str, clock: FixedClock) -> Iterator[Memory]:
    m = Memory.open(mem_path, clock=clock)
    yield m
    with warnings.catch_warnings():  # the tests end with changes staged on purpose
        warnings.simplefilter("ignore", UncommittedChangesWarning)
        m.close()


@pytest.fixture
def node(mem: Memory) -> Node:
    """Node 1 with a list, a map and a nested list committed, and changes staged on top
    of it (so "unchanged" also covers the staged state, not only the committed one);
    node 2 is deleted (staged)."""
    n = mem.create("A", items=[0], meta={"k": 0}, nest=[[1], [2]], deep={"in": {"x": 1}})
    mem.create("B", items=[1, 2, 3], meta={"k": 1})
    mem.commit()
    n.items.append(10)
    n.meta["s"] = "staged"
    mem[2].delete()
    return n


def snapshot(mem: Memory, n: Node) -> tuple[int, str, int, dict[str, Any]]:
    return mem.pending, mem.state_hash(), mem.next_node_id, n.fields()


def iadd_field(n: Node, name: str, values: Any) -> None:
    proxy = n[name]
    proxy += values
    n[name] = proxy


def iadd_nested(n: Node, values: Any) -> None:
    n.nest[0] += values


REJECTED: dict[str, tuple[type[BaseException] | tuple[type[BaseException], ...],
                          Callable[[Memory, Node], Any]]] = {
    "extend_with_a_set_last": (InvalidValueError, lambda m, n: n.items.extend([1, 2, {3}])),
    "extend_with_an_int_out_of_range_last":
        (InvalidValueError, lambda m, n: n.items.extend([1, 2, 1 << 70])),
    "extend_with_a_nested_int_out_of_range":
        (InvalidValueError, lambda m, n: n.items.extend(["ok", ["x" * 5, 1 << 64]])),
    "extend_from_a_generator_failing_half_way":
        (InvalidValueError, lambda m, n: n.items.extend(x for x in (1, 2, object()))),
    "extend_with_a_reference_to_no_node":
        ((NodeNotFoundError, InvalidValueError), lambda m, n: n.items.extend([1, Ref(99)])),
    "plus_equals_with_a_bad_value_last":
        (InvalidValueError, lambda m, n: iadd_field(n, "items", [1, 2, {3}])),
    "plus_equals_on_a_nested_list": (InvalidValueError, lambda m, n: iadd_nested(n, [1, {3}])),
    "slice_assignment": (InvalidOperationError, lambda m, n: n.items.__setitem__(
        slice(0, 1), [1, 2, 3])),
    "insert_of_a_bad_value": (InvalidValueError, lambda m, n: n.items.insert(0, {1})),
    "update_with_a_bad_value_last":
        (InvalidValueError, lambda m, n: n.meta.update({"a": 1, "b": {2}})),
    "update_with_a_non_str_key_last":
        (InvalidValueError, lambda m, n: n.meta.update({"a": 1, 5: 2})),
    "update_from_pairs_with_a_bad_value_last":
        (InvalidValueError, lambda m, n: n.meta.update([("a", 1), ("b", 1 << 64)])),
    "update_with_a_bad_keyword_value":
        (InvalidValueError, lambda m, n: n.meta.update({"a": 1}, b={2})),
    "update_of_a_nested_map": (InvalidValueError, lambda m, n: n.deep["in"].update(
        {"y": 2, "z": {3}})),
    "setdefault_with_a_bad_default": (InvalidValueError, lambda m, n: n.meta.setdefault(
        "new", {1})),
    "create_with_a_bad_field_last":
        (InvalidValueError, lambda m, n: m.create("C", a=1, b=[2], c={3})),
    "create_with_a_reference_to_no_node_last":
        ((NodeNotFoundError, InvalidValueError), lambda m, n: m.create("C", a=1, b=Ref(99))),
}

# multi-step changes of a deleted node (node 2): refused by R50 before anything is staged
REJECTED.update({
    f"{name}_of_a_deleted_node": (DeletedNodeError, action) for name, action in {
        "extend": lambda m, n: m[2].items.extend([1, 2]),
        "update": lambda m, n: m[2].meta.update({"a": 1, "b": 2}),
        "clear_a_list": lambda m, n: m[2].items.clear(),
        "clear_a_map": lambda m, n: m[2].meta.clear(),
        "reverse": lambda m, n: m[2].items.reverse(),
        "delete_a_slice": lambda m, n: m[2].items.__delitem__(slice(0, 2)),
        "assign_a_list_to_itself": lambda m, n: m[2].__setitem__("items", m[2].items),
    }.items()})


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_a_rejected_multi_step_change_changes_nothing(mem: Memory, node: Node,
                                                       name: str) -> None:
    exc, action = REJECTED[name]
    before = snapshot(mem, node)
    with pytest.raises(exc):
        action(mem, node)
    assert snapshot(mem, node) == before
    # and the memory goes on normally
    node.items.extend([7, 8])
    mem.commit()
    assert node.items[-2:] == [7, 8]


def test_accepted_multi_step_changes_stage_one_mutation_per_element(
        mem: Memory, node: Node) -> None:
    base = mem.pending
    node.items.extend([1, 2, {"x": [3]}])
    assert mem.pending == base + 3
    node.items += [4]  # the extended list assigned back to itself stages nothing more
    assert mem.pending == base + 4
    node.nest[0] += [5]
    node.meta.update({"a": 1}, b=[2])
    node.meta["b"] += [3]
    assert mem.pending == base + 8
    del node.items[2:4]
    assert mem.pending == base + 10
    mem.commit()
    assert node.items.copy() == [0, 10, {"x": [3]}, 4]
    assert node.nest.copy() == [[1, 5], [2]]
    assert node.meta.copy() == {"a": 1, "b": [2, 3], "k": 0, "s": "staged"}
    node.items.clear()
    node.meta.clear()
    assert mem.pending == 4 + 4
    mem.commit()
    assert node.items.copy() == [] and node.meta.copy() == {}


def test_reverse_of_a_list_of_lists_swaps_values_not_live_views(
        mem: Memory, node: Node) -> None:
    node.nest.append([3, {"k": 4}])
    node.nest.reverse()
    assert node.nest.copy() == [[3, {"k": 4}], [2], [1]]
    mem.commit()
    assert node.nest.copy() == [[3, {"k": 4}], [2], [1]]


def test_pop_returns_a_copy_of_a_removed_container(mem: Memory, node: Node) -> None:
    first = node.nest.pop(0)
    inner = node.deep.pop("in")
    assert first == [1] and node.nest.copy() == [[2]]
    assert inner == {"x": 1} and "in" not in node.deep
    assert node.meta.popitem() == ("k", 0)
    assert node.meta.pop("missing", None) is None
    with pytest.raises(KeyError):
        node.meta.pop("missing")
