"""Unit tests of the public API (``from myosotis import ...``), one scenario each.

Rule numbers refer to formatspec/FORMAT.md.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import pickle
import struct
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from model import EPOCH_US, FixedClock

import myosotis
from myosotis import (
    ClosedError,
    Commit,
    CommitNotFoundError,
    DeletedNodeError,
    FieldNotFoundError,
    InvalidOperationError,
    InvalidValueError,
    ListProxy,
    LockedError,
    MapProxy,
    Memory,
    MissingAttributeError,
    MyosotisError,
    Node,
    NodeNotFoundError,
    ReadOnlyError,
    Ref,
    UncommittedChangesWarning,
    View,
)
from myosotis.testing import store_of


@pytest.fixture
def mem(mem_path: str, clock: FixedClock) -> Iterator[Memory]:
    m = Memory.open(mem_path, clock=clock)
    yield m
    with warnings.catch_warnings():  # a test may end with changes staged on purpose
        warnings.simplefilter("ignore", UncommittedChangesWarning)
        m.close()


def reopen(mem: Memory, clock: FixedClock | None = None, **kw: Any) -> Memory:
    """Close ``mem`` and open its file again."""
    mem.close()
    return Memory.open(mem.path, clock=clock, **kw)


def f64(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


def bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def nested_list(depth: int) -> list[Any]:
    """A list of nesting depth ``depth`` (R41: an empty list has depth 1)."""
    v: list[Any] = []
    for _ in range(depth - 1):
        v = [v]
    return v


def at_us(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)


# --------------------------------------------------------------------------
# the seed example, handles, references


def test_seed_example_agent_with_goal_is_committed_and_reopened(
        mem: Memory, clock: FixedClock) -> None:
    agent = mem.create("Agent", name="Iris")
    agent.goal = "learn the file format"
    assert mem.pending == 2
    c = mem.commit(label="initial goal")

    assert isinstance(c, Commit)
    assert (c.seq, c.label, c.parent, c.next_node_id) == (1, "initial goal", None, 2)
    assert len(c.id) == 64 and int(c.id, 16) >= 0
    assert c.timestamp == at_us(clock.now) and c.timestamp.tzinfo is not None
    assert mem.head == c and mem.history() == [c]
    assert mem.pending == 0

    mem = reopen(mem)
    try:
        agent = mem.get(1)
        assert agent.type == "Agent"
        assert agent.name == "Iris" and agent["goal"] == "learn the file format"
        assert agent.fields() == {"goal": "learn the file format", "name": "Iris"}
        assert list(agent) == ["goal", "name"] and len(agent) == 2
        assert "goal" in agent and "plan" not in agent
        assert agent.get("plan", "none yet") == "none yet"
        assert mem.history() == [c]
    finally:
        mem.close()


def test_missing_field_raises_attribute_and_key_error_subclasses(mem: Memory) -> None:
    n = mem.create("Agent")
    with pytest.raises(MissingAttributeError) as e1:
        _ = n.goal
    assert isinstance(e1.value, AttributeError)
    with pytest.raises(FieldNotFoundError) as e2:
        _ = n["goal"]
    assert isinstance(e2.value, KeyError)
    assert not hasattr(n, "goal")
    with pytest.raises(MissingAttributeError):
        del n.goal
    with pytest.raises(FieldNotFoundError):
        del n["goal"]


def test_field_named_like_a_handle_property_is_reachable_by_item_syntax(mem: Memory) -> None:
    n = mem.create("Agent", type="robot", id="x-1")
    assert n.type == "Agent" and n["type"] == "robot" and n["id"] == "x-1"
    with pytest.raises(InvalidOperationError):
        n.type = "human"  # type: ignore[misc]
    n["type"] = "human"
    assert n["type"] == "human" and n.type == "Agent"


def test_unset_field_removes_it(mem: Memory) -> None:
    n = mem.create("Agent", goal="g", plan="p")
    mem.commit()
    del n.goal
    del n["plan"]
    mem.commit()
    assert n.fields() == {}
    assert mem.diff(1, 2).nodes[0].fields[0].new is myosotis.MISSING


def test_handles_raise_closed_error_after_close(mem_path: str) -> None:
    mem = Memory.open(mem_path)
    n = mem.create("Agent", items=[1, 2], m={"a": 1})
    mem.commit()
    items, m = n.items, n.m
    view = mem.at(1)
    vn = view.get(1)
    mem.close()
    assert mem.closed
    for action in (
        lambda: n.type,
        lambda: n.fields(),
        lambda: n.goal,
        lambda: n.__setitem__("goal", "x"),
        lambda: n.delete(),
        lambda: items.append(3),
        lambda: len(items),
        lambda: m.__setitem__("b", 2),
        lambda: vn.fields(),
        lambda: view.get(1),
        lambda: mem.get(1),
        lambda: mem.create("Agent"),
        lambda: mem.commit(allow_empty=True),
        lambda: mem.history(),
        lambda: mem.at(1),
        lambda: len(mem),
        lambda: mem.state_hash(),
        lambda: mem.checkpoint(),
    ):
        with pytest.raises(ClosedError):
            action()
    assert repr(n) == "<Node 1>"  # a repr never raises
    mem.close()  # idempotent


def test_context_manager_closes_the_memory(mem_path: str) -> None:
    with Memory.open(mem_path) as mem:
        mem.create("Agent")
        mem.commit()
    assert mem.closed
    with Memory.open(mem_path) as again:  # the writer lock was released
        assert len(again) == 1


def test_second_writer_is_locked_out(mem: Memory) -> None:
    with pytest.raises(LockedError):
        Memory.open(mem.path)


def test_handle_identity_is_the_node_id_across_reopen(mem: Memory) -> None:
    a = mem.create("Agent", name="Iris")
    b = mem.create("Task", title="t")
    mem.commit()
    assert mem.get(a.id) == a and hash(mem.get(a.id)) == hash(a)
    assert mem[b.id] == b and a != b
    assert {a, mem.get(1)} == {a}
    ids = (a.id, b.id)
    mem = reopen(mem)
    try:
        a2, b2 = mem.get(ids[0]), mem.get(ids[1])
        assert (a2.id, b2.id) == ids
        assert (a2.type, a2.name, b2.type, b2.title) == ("Agent", "Iris", "Task", "t")
        assert ids[0] in mem and 3 not in mem and "1" not in mem
    finally:
        mem.close()


def test_handle_stays_right_after_discard_and_commit(mem: Memory) -> None:
    n = mem.create("Agent", goal="a")
    mem.commit()
    n.goal = "b"
    assert n.goal == "b"
    mem.discard()
    assert n.goal == "a"
    n.goal = "c"
    mem.commit()
    assert n.goal == "c"


def test_reference_reads_back_as_a_handle(mem: Memory) -> None:
    iris = mem.create("Agent", name="Iris")
    task = mem.create("Task", owner=iris, watchers=[iris], meta={"by": iris})
    task.self_ref = task
    mem.commit()
    mem = reopen(mem)
    try:
        task = mem.get(2)
        owner = task.owner
        assert type(owner) is Node and owner.id == 1 and owner.name == "Iris"
        assert owner == mem.get(1)
        assert task.watchers[0] == owner and task.meta["by"] == owner
        assert task.self_ref == task
        assert task.fields()["watchers"] == [owner]
        # a Ref is accepted in place of a handle and reads back as a handle too
        task.other = Ref(1)
        assert task.other == owner
    finally:
        mem.discard()
        mem.close()


def test_reference_must_name_an_existing_node(mem: Memory) -> None:
    """R51: a reference names a node that exists (tombstoned or not)."""
    n = mem.create("Agent")
    for bad in (Ref(10**6), [Ref(3)], {"x": Ref(10**6)}):
        with pytest.raises((NodeNotFoundError, InvalidValueError)):
            n.friend = bad
        with pytest.raises((NodeNotFoundError, InvalidValueError)):
            mem.create("Agent", friend=bad)
    for bad_id in (0, -1, 1 << 63):
        with pytest.raises((NodeNotFoundError, InvalidValueError)):
            n.friend = Ref(bad_id)
    assert mem.pending == 1 and mem.next_node_id == 2
    # a node may name itself at creation, and a tombstoned node may be referenced
    me = mem.create("Agent", me=Ref(2))
    assert me.me == me
    n.delete()
    me.friend = n
    mem.commit()
    assert me.friend.deleted


def test_reference_to_a_node_of_another_memory_is_refused(mem: Memory, tmp_path: Any) -> None:
    with Memory.open(str(tmp_path / "other.myo")) as other:
        foreign = other.create("Agent")
        n = mem.create("Agent")
        with pytest.raises(InvalidValueError, match="another memory"):
            n.friend = foreign
        assert "friend" not in n
        other.discard()


# --------------------------------------------------------------------------
# deletion and ids


def test_deleted_node_stays_readable_and_cannot_change(mem: Memory) -> None:
    """R50: a tombstoned node can no longer change; it stays readable."""
    n = mem.create("Agent", name="Iris", items=[1], m={"k": 1})
    keep = mem.create("Agent", friend=n)
    mem.commit()
    n.delete()
    assert n.deleted and n.name == "Iris"
    c = mem.commit()
    assert c is not None
    for mutate in (
        lambda: setattr(n, "name", "Ada"),
        lambda: n.__setitem__("new", 1),
        lambda: delattr(n, "name"),
        lambda: n.delete(),
        lambda: n.items.append(2),
        lambda: n.m.__setitem__("j", 2),
        lambda: n.m.__delitem__("k"),
    ):
        with pytest.raises(DeletedNodeError):
            mutate()
    assert mem.pending == 0
    assert issubclass(DeletedNodeError, InvalidOperationError)
    assert len(mem) == 1 and [x.id for x in mem.nodes()] == [keep.id]
    assert [x.id for x in mem.nodes(deleted=True)] == [1, 2]
    assert n.id in mem and mem.get(n.id).deleted
    assert keep.friend == n and keep.friend.deleted
    mem = reopen(mem)
    try:
        n = mem.get(1)
        assert n.deleted and n.fields() == {"items": [1], "m": {"k": 1}, "name": "Iris"}
        with pytest.raises(DeletedNodeError):
            n.name = "Ada"
        assert mem.diff(1, 2).deleted == [1]
    finally:
        mem.close()


def test_ids_are_never_reused_after_delete_or_reopen(mem: Memory) -> None:
    a = mem.create("A")
    b = mem.create("A")
    assert (a.id, b.id) == (1, 2)
    mem.commit()
    b.delete()
    mem.commit()
    c = mem.create("A")
    assert c.id == 3
    mem.commit()
    mem.get(3).delete()
    mem.commit()
    mem = reopen(mem)
    try:
        assert mem.next_node_id == 4
        assert mem.create("A").id == 4
        # a staged, discarded create never existed: its id is handed out again
        mem.discard()
        assert mem.next_node_id == 4
        assert mem.create("A").id == 4
    finally:
        mem.discard()
        mem.close()


# --------------------------------------------------------------------------
# commits


def log_end(mem: Memory) -> int:
    """Where the file's last frame ends: the bytes the log holds, without the free
    space a durable writer keeps after it (FORMAT.md §3)."""
    return store_of(mem).log.valid_end


def test_empty_commit_returns_none_and_writes_nothing(mem: Memory) -> None:
    size = log_end(mem)
    assert mem.commit() is None
    assert mem.commit(label="nothing") is None
    assert log_end(mem) == size and mem.head is None and mem.history() == []
    mem.create("A")
    mem.commit()
    size = log_end(mem)
    assert mem.commit() is None
    assert log_end(mem) == size and len(mem.history()) == 1


def test_allow_empty_commit_writes_one_commit(mem: Memory, clock: FixedClock) -> None:
    """§7: a commit with count = 0 is valid and changes only the history."""
    size = log_end(mem)
    h = mem.state_hash()
    c = mem.commit(label="marker", allow_empty=True)
    assert c is not None and c.seq == 1 and c.label == "marker" and c.next_node_id == 1
    assert log_end(mem) > size
    assert mem.state_hash() == h
    mem.create("A")
    mem.commit()
    assert mem.commit(allow_empty=True) is not None
    assert not mem.diff(2, 3) and mem.diff(1, 2).created == [1]
    mem = reopen(mem)
    try:
        assert mem.history()[0] == c and len(mem.history()) == 3
    finally:
        mem.close()


def test_empty_label_means_no_label(mem: Memory) -> None:
    mem.create("A")
    c = mem.commit(label="")
    assert c is not None and c.label is None and mem.history()[0].label is None


def test_commit_with_unstorable_label_is_refused_and_keeps_staged_changes(mem: Memory) -> None:
    mem.create("A")
    size = log_end(mem)
    with pytest.raises(InvalidValueError):
        mem.commit(label="bad \ud800")
    assert mem.pending == 1 and log_end(mem) == size
    assert mem.commit(label="good") is not None


def test_commits_chain_by_parent_id(mem: Memory) -> None:
    cs = []
    for i in range(3):
        mem.create("A", i=i)
        c = mem.commit(label=f"c{i}")
        assert c is not None
        cs.append(c)
    assert [c.parent for c in cs] == [None, cs[0].id, cs[1].id]
    assert mem.history() == cs
    assert [c.timestamp for c in cs] == sorted(c.timestamp for c in cs)
    assert str(cs[0]).startswith("#1 " + cs[0].id[:12])


def test_resolve_names_commits_by_seq_commit_id_prefix_and_head(mem: Memory) -> None:
    cs = []
    for i in range(3):
        mem.create("A", i=i)
        c = mem.commit()
        assert c is not None
        cs.append(c)
    for c in cs:
        assert mem.resolve(c.seq) == c.seq
        assert mem.resolve(c) == c.seq
        assert mem.resolve(c.id) == c.seq
        assert mem.resolve(c.id.upper()) == c.seq
        assert mem.resolve(c.id[:12]) == c.seq
        assert mem.at(c.id[:16]).commit == c
    assert mem.resolve("HEAD") == 3
    assert mem.resolve("HEAD~0") == 3
    assert mem.resolve("HEAD~1") == 2
    assert mem.resolve("HEAD~2") == 1
    assert mem.at("HEAD~1").get(2).i == 1
    assert mem.resolve(" head~1 ") == 2
    # a short string of decimal digits is a sequence number
    assert mem.resolve("2") == 2
    # seq 0 names the empty state before the first commit
    assert mem.resolve(0) == 0 and len(mem.at(0)) == 0 and mem.at(0).next_node_id == 1
    assert mem.diff(0, 1).created == [1]


def test_resolve_accepts_a_four_digit_prefix(mem: Memory) -> None:
    """The shortest id prefix is 4 hex digits (one with a letter: all-digit short names
    are sequence numbers)."""
    commits = []
    while len(commits) < 2:
        c = mem.commit(allow_empty=True)
        assert c is not None
        if not c.id[:4].isdigit():
            commits.append(c)
    a, b = commits
    assert a.id[:4] != b.id[:4]  # deterministic: the fixed clock fixes the ids
    assert mem.resolve(a.id[:4]) == a.seq and mem.resolve(b.id[:4]) == b.seq
    if not a.id[:3].isdigit():
        with pytest.raises(CommitNotFoundError):
            mem.resolve(a.id[:3])


def test_ambiguous_commit_prefix_is_refused(mem_path: str) -> None:
    clock = FixedClock()
    with Memory.open(mem_path, clock=clock, durability="none") as mem:
        seen: dict[str, str] = {}
        shared = None
        for _ in range(3000):  # birthday bound over 65536 four-digit prefixes
            c = mem.commit(allow_empty=True)
            assert c is not None
            prefix = c.id[:4]
            if prefix.isdigit():
                continue  # a short all-digit name is a sequence number
            if prefix in seen:
                shared = prefix
                break
            seen[prefix] = c.id
        assert shared is not None, "no two of 3000 commit ids share 4 hex digits"
        with pytest.raises(CommitNotFoundError, match="ambiguous"):
            mem.resolve(shared)
        with pytest.raises(CommitNotFoundError):
            mem.at(shared)
        assert mem.resolve(seen[shared]) >= 1  # the full id still resolves


@pytest.mark.parametrize("name", [
    -1, 4, 10**6, "HEAD~4", "HEAD~x", "HEAD~-1", "zzzz", "nothex", "", "abc",
    "f" * 64, None, 1.5, b"HEAD",
])
def test_bad_commit_names_raise_commit_not_found(mem: Memory, name: Any) -> None:
    for _ in range(3):
        mem.commit(allow_empty=True)
    with pytest.raises(CommitNotFoundError) as e:
        mem.resolve(name)
    assert isinstance(e.value, KeyError)
    with pytest.raises(CommitNotFoundError):
        mem.at(name)
    with pytest.raises(CommitNotFoundError):
        mem.diff(1, name)


def test_commit_of_another_file_is_not_found(mem: Memory, tmp_path: Any) -> None:
    with Memory.open(str(tmp_path / "other.myo")) as other:
        foreign = other.commit(label="elsewhere", allow_empty=True)
    mem.commit(allow_empty=True)
    assert foreign is not None
    with pytest.raises(CommitNotFoundError):
        mem.resolve(foreign)


# --------------------------------------------------------------------------
# views, queries, diff


def test_view_is_read_only_and_unchanged_by_later_commits(mem: Memory) -> None:
    n = mem.create("Agent", goal="first", items=[1], m={"a": 1})
    c1 = mem.commit()
    assert c1 is not None
    view = mem.at(c1)
    assert isinstance(view, View) and view.commit == c1
    n.goal = "second"
    n.items.append(2)
    mem.create("Agent")
    n.delete()
    mem.commit()
    vn = view.get(1)
    assert vn.goal == "first" and vn.items == [1] and not vn.deleted
    assert len(view) == 1 and view.next_node_id == 2 and 2 not in view
    with pytest.raises(NodeNotFoundError):
        view.get(2)
    for change in (
        lambda: setattr(vn, "goal", "x"),
        lambda: vn.__setitem__("goal", "x"),
        lambda: delattr(vn, "goal"),
        lambda: vn.delete(),
        lambda: vn.items.append(3),
        lambda: vn.items.__setitem__(0, 3),
        lambda: vn.items.__delitem__(0),
        lambda: vn.m.__setitem__("b", 2),
        lambda: vn.m.__delitem__("a"),
    ):
        with pytest.raises(ReadOnlyError):
            change()
    assert mem.pending == 0
    assert not hasattr(view, "create") and not hasattr(view, "commit_changes")
    assert vn.goal == "first" and mem.get(1).goal == "second"


def test_view_state_hash_is_the_committed_state_hash(mem: Memory) -> None:
    mem.create("A", x=1)
    mem.commit()
    h1 = mem.state_hash()
    mem.create("A", x=2)
    mem.commit()
    assert mem.at(1).state_hash() == h1
    assert mem.at(2).state_hash() == mem.state_hash() != h1


def test_nodes_filters_by_type_and_hides_deleted_unless_asked(mem: Memory) -> None:
    a1 = mem.create("Agent")
    t1 = mem.create("Task")
    a2 = mem.create("Agent")
    mem.create("Task")
    t1.delete()
    mem.commit()
    a2.delete()
    assert [n.id for n in mem.nodes()] == [1, 4]
    assert [n.id for n in mem] == [1, 4]
    assert [n.id for n in mem.nodes(type="Agent")] == [a1.id]
    assert [n.id for n in mem.nodes(type="Agent", deleted=True)] == [1, 3]
    assert [n.id for n in mem.nodes(type="Task", deleted=True)] == [2, 4]
    assert [n.id for n in mem.nodes(deleted=True)] == [1, 2, 3, 4]
    assert list(mem.nodes(type="Nothing")) == []
    assert len(mem) == 2
    assert [n.id for n in mem.at(1).nodes(type="Agent")] == [1, 3]
    assert [n.id for n in mem.at(1).nodes(type="Task")] == [4]


def test_get_of_a_missing_node_raises_node_not_found(mem: Memory) -> None:
    mem.create("A")
    for bad in (0, 2, -1, 10**6):
        with pytest.raises(NodeNotFoundError):
            mem.get(bad)
        with pytest.raises(KeyError):
            mem[bad]
        assert bad not in mem


def test_diff_reports_created_deleted_and_changed_fields(mem: Memory) -> None:
    a = mem.create("Agent", goal="g1", keep=1)
    b = mem.create("Agent")
    mem.commit()
    a.goal = "g2"
    a.flag = True
    del a.keep
    b.delete()
    c = mem.create("Task")
    mem.commit()
    d = mem.diff(1, 2)
    assert (d.a, d.b) == (1, 2)
    assert d.created == [c.id] and d.deleted == [b.id]
    by_id = {n.id: n for n in d.nodes}
    assert by_id[a.id].status == "changed"
    assert [(f.field, f.old, f.new) for f in by_id[a.id].fields] == [
        ("flag", myosotis.MISSING, True), ("goal", "g1", "g2"), ("keep", 1, myosotis.MISSING)]
    assert [n.id for n in d.changed] == [a.id]
    back = mem.diff("HEAD", "HEAD~1")
    assert {n.id: n.status for n in back.nodes} == {
        a.id: "changed", b.id: "undeleted", c.id: "uncreated"}
    assert not mem.diff(2, 2)


def test_diff_skips_a_field_changed_and_changed_back(mem: Memory) -> None:
    n = mem.create("A", x=1)
    mem.commit()
    n.x = 2
    mem.commit()
    n.x = 1
    mem.commit()
    assert not mem.diff(1, 3)
    assert mem.diff(1, 2)


# --------------------------------------------------------------------------
# transactions and refused mutations


def test_transaction_commits_on_success(mem: Memory) -> None:
    with mem.transaction(label="batch") as m:
        assert m is mem
        mem.create("A", x=1)
        mem.create("A", x=2)
    assert mem.head is not None and mem.head.label == "batch" and mem.head.seq == 1
    assert mem.pending == 0 and len(mem) == 2


def test_transaction_discards_on_exception(mem: Memory) -> None:
    n = mem.create("A", x=1)
    mem.commit()
    h = mem.state_hash()
    with pytest.raises(RuntimeError, match="boom"), mem.transaction(label="never"):
        n.x = 2
        mem.create("A")
        raise RuntimeError("boom")
    assert mem.pending == 0 and n.x == 1 and mem.next_node_id == 2
    assert mem.state_hash() == h and len(mem.history()) == 1


def test_transaction_refuses_to_start_with_staged_changes(mem: Memory) -> None:
    mem.create("A")
    with pytest.raises(InvalidOperationError), mem.transaction():
        pytest.fail("the body must not run")
    assert mem.pending == 1


def test_transaction_with_no_changes_writes_nothing(mem: Memory) -> None:
    size = log_end(mem)
    with mem.transaction(label="idle"):
        pass
    assert mem.head is None and log_end(mem) == size


def test_rejected_mutations_change_nothing(mem: Memory) -> None:
    n = mem.create("A", items=[1, 2], m={"k": 1})
    other = mem.create("B")
    mem.commit()
    n.x = 1
    other.delete()
    before_pending, before_hash = mem.pending, mem.state_hash()
    before_next = mem.next_node_id
    refused: list[tuple[type[BaseException] | tuple[type[BaseException], ...], Any]] = [
        (InvalidValueError, lambda: setattr(n, "x", 1 << 63)),
        (InvalidValueError, lambda: setattr(n, "x", {1: "a"})),
        (InvalidValueError, lambda: setattr(n, "x", {"a", "b"})),
        (InvalidValueError, lambda: n.__setitem__("", 1)),
        (InvalidValueError, lambda: n.__setitem__(3, 1)),
        (InvalidValueError, lambda: n.__setitem__("x" * 1025, 1)),
        (InvalidValueError, lambda: n.items.append(b"raw")),
        (InvalidValueError, lambda: n.m.__setitem__(5, 1)),
        (InvalidValueError, lambda: mem.create("")),
        (InvalidValueError, lambda: mem.create("T" * 256)),
        (InvalidValueError, lambda: mem.create("A", x=1 << 63)),
        ((NodeNotFoundError, InvalidValueError), lambda: mem.create("A", x=Ref(10**6))),
        ((NodeNotFoundError, InvalidValueError), lambda: n.items.insert(0, Ref(99))),
        (DeletedNodeError, lambda: setattr(other, "x", 1)),
        (IndexError, lambda: n.items.__setitem__(5, 0)),
        (IndexError, lambda: n.items.__delitem__(-3)),
        (KeyError, lambda: n.m.__delitem__("missing")),
        (InvalidOperationError, lambda: n.items.__setitem__(slice(0, 1), [9])),
    ]
    for exc, action in refused:
        with pytest.raises(exc):
            action()
        assert mem.pending == before_pending, action
        assert mem.next_node_id == before_next, action
        assert mem.state_hash() == before_hash, action
    assert n.fields() == {"items": [1, 2], "m": {"k": 1}, "x": 1}


def test_discard_returns_the_number_of_dropped_mutations(mem: Memory) -> None:
    n = mem.create("A")
    n.x = 1
    n.x = 2
    assert mem.pending == 3
    assert mem.discard() == 3
    assert mem.pending == 0 and mem.next_node_id == 1 and len(mem) == 0
    assert mem.discard() == 0


# --------------------------------------------------------------------------
# values


def test_bool_and_int_stay_distinct_after_reopen(mem: Memory) -> None:
    """§5: true and the integer 1 are different values."""
    mem.create("A", t=True, one=1, f=False, zero=0, mixed=[True, 1, False, 0],
               m={"b": True, "i": 1})
    mem.commit()
    mem = reopen(mem)
    try:
        f = mem.get(1).fields()
        assert type(f["t"]) is bool and type(f["one"]) is int
        assert type(f["f"]) is bool and type(f["zero"]) is int
        assert [type(x) for x in f["mixed"]] == [bool, int, bool, int]
        assert type(f["m"]["b"]) is bool and type(f["m"]["i"]) is int
        n = mem.get(1)
        n.one = True  # True replacing 1 is a change
        assert mem.state_hash() != mem.at("HEAD").state_hash()
        c = mem.commit()
        assert c is not None
        assert mem.diff(1, 2).nodes[0].fields[0].field == "one"
    finally:
        mem.close()


def test_negative_zero_and_nan_payload_bits_survive_reopen(mem: Memory) -> None:
    """§5: every float bit pattern (-0.0, each NaN payload) is preserved."""
    patterns = [0x8000000000000000, 0x0000000000000000, 0x7FF8000000000123,
                0xFFF800000000BEEF, 0x7FF0000000000001, 0x7FF0000000000000,
                0x0000000000000001, 0x3FF0000000000000]
    floats = [f64(b) for b in patterns]
    mem.create("A", neg_zero=-0.0, nans=floats, m={"nan": f64(0x7FF8000000000123)})
    mem.commit()
    mem = reopen(mem)
    try:
        f = mem.get(1).fields()
        assert bits(f["neg_zero"]) == 0x8000000000000000 and math.copysign(1, f["neg_zero"]) < 0
        assert [bits(x) for x in f["nans"]] == patterns
        assert bits(f["m"]["nan"]) == 0x7FF8000000000123
        # setting 0.0 over -0.0 is a change (the bits differ)
        n = mem.get(1)
        n.neg_zero = 0.0
        assert mem.commit() is not None
        assert [f.field for f in mem.diff(1, 2).nodes[0].fields] == ["neg_zero"]
    finally:
        mem.close()


def test_integer_range_limits_are_accepted_and_beyond_refused(mem: Memory) -> None:
    """§11: integers are signed 64-bit."""
    n = mem.create("A", lo=-(1 << 63), hi=(1 << 63) - 1)
    for bad in (1 << 63, -(1 << 63) - 1, 1 << 100):
        with pytest.raises(InvalidValueError, match="64-bit"):
            n.x = bad
        with pytest.raises(InvalidValueError):
            n.x = [0, {"k": bad}]
    mem.commit()
    mem = reopen(mem)
    try:
        assert mem.get(1).fields() == {"hi": (1 << 63) - 1, "lo": -(1 << 63)}
    finally:
        mem.close()


def test_lone_surrogate_string_is_refused(mem: Memory) -> None:
    """R3: strings are well-formed UTF-8; a lone surrogate has no UTF-8 form."""
    n = mem.create("A")
    for action in (
        lambda: setattr(n, "x", "a\ud800b"),
        lambda: setattr(n, "x", ["ok", "\udfff"]),
        lambda: setattr(n, "x", {"\ud800": 1}),
        lambda: n.__setitem__("\ud800", 1),
        lambda: mem.create("\ud800"),
        lambda: mem.create("A", x="\ud83d"),
    ):
        with pytest.raises(InvalidValueError):
            action()
    assert mem.pending == 1
    n.x = "emoji \U0001f600 and 日本 are fine"
    mem.commit()
    assert n.x == "emoji \U0001f600 and 日本 are fine"


def test_nesting_64_deep_is_accepted_and_65_refused(mem: Memory) -> None:
    """R41: MAX_DEPTH is 64, an empty list has depth 1."""
    n = mem.create("A", deep=nested_list(64))
    with pytest.raises(InvalidValueError, match="deeper"):
        n.deeper = nested_list(65)
    deep_map: Any = {}
    for _ in range(64):
        deep_map = {"k": deep_map}  # depth 65
    with pytest.raises(InvalidValueError):
        n.deeper = deep_map
    # an edit below the 64th level through a proxy is refused too (R53)
    inner: Any = n.deep
    for _ in range(63):
        inner = inner[0]
    assert type(inner) is ListProxy and len(inner) == 0
    with pytest.raises(InvalidValueError):
        inner.append([])
    inner.append(1)  # a scalar at depth 64 is fine
    mem.commit()
    mem = reopen(mem)
    try:
        v = mem.get(1).deep
        for _ in range(63):
            v = v[0]
        assert v == [1]
    finally:
        mem.close()


def test_dict_with_non_str_key_is_refused(mem: Memory) -> None:
    n = mem.create("A")
    for bad in ({1: "a"}, {None: 1}, {("t",): 1}, {b"k": 1}, [{"ok": {2.5: 1}}]):
        with pytest.raises(InvalidValueError, match="str"):
            n.x = bad
    assert "x" not in n


@pytest.mark.parametrize("value, type_name", [
    ({1, 2}, "set"), (frozenset(), "frozenset"), (b"raw", "bytes"), (bytearray(b"x"), "bytearray"),
    (object(), "object"), (1 + 2j, "complex"), (dt.date(2020, 1, 1), "date"),
    ([1, {"k": {2}}], "set"),
])
def test_unsupported_type_is_refused_naming_the_type(
        mem: Memory, value: Any, type_name: str) -> None:
    n = mem.create("A")
    with pytest.raises(InvalidValueError) as e:
        n.x = value
    assert type_name in str(e.value)
    with pytest.raises(InvalidValueError):
        mem.create("A", x=value)
    assert mem.pending == 1


def test_tuples_are_stored_as_lists(mem: Memory) -> None:
    n = mem.create("A", t=(1, (2, 3)))
    assert n.fields() == {"t": [1, [2, 3]]}


def test_append_to_a_10000_element_list_writes_under_100_bytes(mem: Memory) -> None:
    """§6 LIST_INSERT: an append is one small path mutation, not a rewrite of the list."""
    n = mem.create("Agent", items=list(range(10_000)))
    mem.commit()
    size = log_end(mem)
    n.items.append(10_000)
    assert mem.pending == 1
    mem.commit()
    grew = log_end(mem) - size
    assert 0 < grew < 100, f"append wrote {grew} bytes"
    assert len(n.items) == 10_001 and n.items[-1] == 10_000


def test_in_place_edits_of_nested_containers_survive_reopen(mem: Memory) -> None:
    n = mem.create("Agent", plan={"steps": [{"do": "a", "tags": []}], "meta": {}},
                   grid=[[0, 0], [0, 0]])
    mem.commit()
    assert type(n.plan) is MapProxy and type(n.plan["steps"]) is ListProxy
    n.plan["steps"].append({"do": "b", "tags": ["x"]})
    n.plan["steps"][0]["tags"].append("first")
    n.plan["steps"][1]["tags"].insert(0, "y")
    n.plan["meta"]["owner"] = "Iris"
    n.plan["steps"][0]["do"] = "A"
    del n.plan["steps"][1]["do"]
    n.grid[1][0] = 5
    del n.grid[0][1]
    n.grid[0].insert(-1, 7)
    n.grid.append([])
    expected = {
        "grid": [[7, 0], [5, 0], []],
        "plan": {"meta": {"owner": "Iris"},
                 "steps": [{"do": "A", "tags": ["first"]}, {"tags": ["y", "x"]}]},
    }
    assert n.fields() == expected
    assert mem.pending == 10
    mem.commit()
    mem = reopen(mem)
    try:
        n = mem.get(1)
        assert n.fields() == expected
        assert n.plan == expected["plan"] and n.grid == expected["grid"]
        assert n.plan.copy() == expected["plan"]
    finally:
        mem.close()


def test_proxy_of_a_replaced_field_refuses_edits(mem: Memory) -> None:
    n = mem.create("A", items=[1, 2])
    items = n.items
    n.items = {"now": "a map"}
    with pytest.raises(InvalidOperationError):
        items.append(3)
    del n.items
    with pytest.raises(InvalidOperationError):
        len(items)
    assert mem.pending == 3


def test_assigning_a_proxy_copies_its_value(mem: Memory) -> None:
    a = mem.create("A", items=[1, [2]])
    b = mem.create("A")
    b.items = a.items
    a.items[1].append(3)
    assert b.items == [1, [2]] and a.items == [1, [2, 3]]


# --------------------------------------------------------------------------
# readers, refresh, checkpoints, state hash


def test_readonly_reader_refuses_changes(mem: Memory) -> None:
    n = mem.create("A", items=[1], m={})
    mem.commit()
    with Memory.open(mem.path, readonly=True) as reader:
        assert reader.readonly
        rn = reader.get(n.id)
        for change in (
            lambda: setattr(rn, "x", 1),
            lambda: rn.delete(),
            lambda: rn.items.append(2),
            lambda: rn.m.__setitem__("k", 1),
            lambda: reader.create("A"),
            lambda: reader.commit(allow_empty=True),
            lambda: reader.checkpoint(),
        ):
            with pytest.raises(ReadOnlyError):
                change()
        assert reader.pending == 0 and rn.fields() == {"items": [1], "m": {}}
    assert len(mem.history()) == 1


def test_refresh_picks_up_a_commit_from_a_writer_in_the_same_process(mem: Memory) -> None:
    n = mem.create("A", x=1)
    mem.commit()
    with Memory.open(mem.path, readonly=True) as reader:
        n.x = 2
        mem.create("B")
        c2 = mem.commit(label="second")
        assert reader.get(1).x == 1 and len(reader.history()) == 1
        assert reader.next_node_id == 2
        assert reader.refresh() == 1
        assert reader.get(1).x == 2 and reader.next_node_id == 3
        assert reader.head == c2 and reader.state_hash() == mem.state_hash()
        assert reader.refresh() == 0
        mem.checkpoint()
        mem.commit(allow_empty=True)
        assert reader.refresh() == 1
        assert reader.state_hash() == mem.state_hash()
    assert mem.refresh() == 0  # a writer is always current


def test_checkpoint_returns_true_then_false_when_nothing_new(mem: Memory) -> None:
    assert mem.checkpoint() is False  # nothing committed yet
    mem.create("A")
    mem.commit()
    size = log_end(mem)
    assert mem.checkpoint() is True
    assert log_end(mem) > size
    size = log_end(mem)
    assert mem.checkpoint() is False
    assert log_end(mem) == size
    mem.commit(allow_empty=True)
    assert mem.checkpoint() is True
    mem = reopen(mem)
    try:
        assert mem.checkpoint() is False  # the newest checkpoint still covers the head
    finally:
        mem.close()


def test_reopening_after_a_checkpoint_gives_the_same_state_hash(mem: Memory) -> None:
    """§8.4: checkpoints are a cache; the state they give equals the replayed state."""
    a = mem.create("A", items=[1, 2], f=-0.0)
    mem.commit()
    a.items.append(3)
    mem.create("B", ref=a)
    mem.commit()
    before = mem.state_hash()
    assert mem.checkpoint()
    assert mem.state_hash() == before
    a.items.append(4)
    mem.get(2).delete()
    mem.commit()
    head = mem.state_hash()
    mem = reopen(mem)
    try:
        assert mem.state_hash() == head and not store_of(mem).problems
        assert mem.at(2).state_hash() == before
        assert mem.get(1).items == [1, 2, 3, 4] and mem.get(2).deleted
        assert bits(mem.get(1).f) == 0x8000000000000000
    finally:
        mem.close()


def test_checkpoint_keeps_staged_changes(mem: Memory) -> None:
    """A checkpoint writes the committed state; staged changes stay staged."""
    n = mem.create("A", x=1)
    mem.commit()
    n.x = 2
    mem.create("B")
    staged = mem.state_hash()
    assert mem.checkpoint() is True
    assert mem.pending == 2 and n.x == 2 and mem.next_node_id == 3
    assert mem.state_hash() == staged
    assert mem.commit() is not None and n.x == 2
    mem = reopen(mem)
    try:
        assert mem.get(1).x == 2 and mem.get(2).type == "B"
    finally:
        mem.close()


def test_state_hash_follows_staged_changes_and_returns_after_discard(mem: Memory) -> None:
    """§9.2: the state hash covers every node, tombstones and next_node_id."""
    empty = mem.state_hash()
    assert len(empty) == 64
    n = mem.create("A", x=1)
    staged = mem.state_hash()
    assert staged != empty
    mem.commit()
    committed = mem.state_hash()
    assert committed == staged
    n.x = 2
    assert mem.state_hash() != committed
    n.x = 1  # back to the committed value: the same state, the same hash
    assert mem.state_hash() == committed
    n.delete()
    deleted = mem.state_hash()
    assert deleted != committed
    assert mem.discard() == 3
    assert mem.state_hash() == committed
    mem.create("B")
    assert mem.state_hash() not in (committed, deleted)
    mem.discard()
    assert mem.state_hash() == committed


def test_state_hash_is_independent_of_history(tmp_path: Any) -> None:
    """§9.2: two histories reaching equal states have equal state hashes."""
    with Memory.open(str(tmp_path / "a.myo")) as a, Memory.open(str(tmp_path / "b.myo")) as b:
        n = a.create("A", m={"x": 1, "y": 2})
        a.commit()
        n.m["z"] = 3
        del n.m["x"]
        a.commit()
        b.create("A", m={"z": 3, "y": 2})
        b.commit(label="other label")
        assert a.state_hash() == b.state_hash()
        assert a.head is not None and b.head is not None and a.head.id != b.head.id


def test_durability_none_and_sync(mem_path: str) -> None:
    with Memory.open(mem_path, durability="none") as mem:
        mem.create("A")
        mem.commit()
        mem.sync()
    with Memory.open(mem_path) as mem:
        assert len(mem) == 1
    with pytest.raises(MyosotisError):
        Memory.open(mem_path, durability="sometimes")  # type: ignore[arg-type]


def test_fixed_clock_gives_byte_identical_files(tmp_path: Any) -> None:
    digests = []
    for name in ("one.myo", "two.myo"):
        with Memory.open(str(tmp_path / name), clock=FixedClock()) as mem:
            a = mem.create("Agent", name="Iris", items=[1.5, None, True])
            mem.commit(label="x")
            a.items.append(a)
            mem.commit()
            mem.checkpoint()
        with open(tmp_path / name, "rb") as f:
            digests.append(f.read())
    assert digests[0] == digests[1]
    assert digests[0][:8] == b"MYOSOTIS"
    assert EPOCH_US > 0


def test_ref_can_be_copied_and_pickled() -> None:
    r = Ref(3)
    assert copy.copy(r) == r
    assert copy.deepcopy({"x": [r]}) == {"x": [r]}
    assert pickle.loads(pickle.dumps(r)) == r


def test_create_with_an_overlong_field_name_is_refused_and_the_file_stays_readable(
        mem: Memory) -> None:
    """§11 MAX_FIELD_NAME: a writer refuses a value over a limit (found by this suite: the
    commit used to be written and the file then failed to open)."""
    mem.create("A", ok=1)
    mem.commit()
    with pytest.raises(InvalidValueError):
        mem.create("A", **{"x" * 1025: 1})
    assert mem.pending == 0 and mem.next_node_id == 2
    mem.create("A", **{"x" * 1024: 1})
    mem.commit()
    mem = reopen(mem)  # must not raise CorruptFileError
    try:
        assert mem.get(1).ok == 1 and list(mem.get(2)) == ["x" * 1024]
    finally:
        mem.close()


def test_set_with_an_overlong_field_name_is_refused(mem: Memory) -> None:
    """§11 MAX_FIELD_NAME, checked for SET."""
    n = mem.create("A")
    with pytest.raises(InvalidValueError):
        n["x" * 1025] = 1
    n["x" * 1024] = 1
    mem.commit()
    mem = reopen(mem)
    try:
        assert list(mem.get(1)) == ["x" * 1024]
    finally:
        mem.close()


def test_cyclic_value_is_refused_without_recursion_error(mem: Memory) -> None:
    n = mem.create("A")
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(InvalidValueError):
        n.x = cyclic
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(InvalidValueError):
        mem.create("A", x=loop)
    assert mem.pending == 1


def test_list_proxy_indexes_like_a_python_list(mem: Memory) -> None:
    """insert clamps, negative indices count from the end, out of range raises IndexError;
    every index of a 4-element list, for each edit, against a plain list."""
    n = mem.create("A", items=[])
    for i in range(-7, 8):
        for op in ("insert", "replace", "del", "get"):
            n.items = [10, 11, 12, 13]
            want: list[Any] = [10, 11, 12, 13]
            try:
                if op == "insert":
                    want.insert(i, 99)
                elif op == "replace":
                    want[i] = 99
                elif op == "del":
                    del want[i]
                else:
                    got = want[i]
            except IndexError:
                with pytest.raises(IndexError):
                    if op == "replace":
                        n.items[i] = 99
                    elif op == "del":
                        del n.items[i]
                    else:
                        _ = n.items[i]
                continue
            if op == "insert":
                n.items.insert(i, 99)
            elif op == "replace":
                n.items[i] = 99
            elif op == "del":
                del n.items[i]
            else:
                assert n.items[i] == got
            assert n.items == want, (op, i)
    assert n.items[1:3] == [11, 12]
    mem.commit()
    n.items = [1, 2, 3, 4, 5]
    del n.items[1:4]
    assert n.items == [1, 5]
