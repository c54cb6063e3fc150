"""Restore, revert, fork and retention (Memory.restore/revert/fork, compact policies).

Random histories (hypothesis) are built from raw mutations; the engine's own
time travel (``mem.at(c)``), checked elsewhere against the plain model of
tests/model.py, gives the expected past states.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model import FixedClock, plain, same_value

from myosotis import (
    CommitNotFoundError,
    Delete,
    InvalidArgumentError,
    InvalidOperationError,
    Memory,
    Mutation,
    NodeNotFoundError,
    ReadOnlyError,
    Ref,
    RevertConflictError,
    Set,
    TargetExistsError,
    Undelete,
    Unset,
    View,
)
from myosotis.testing import open_memory, store_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "formatspec"))
import reference_reader  # noqa: E402

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def live(src: Memory | View) -> dict[int, tuple[str, dict[str, Any]]]:
    """The live part of a state: type and fields of every node not tombstoned."""
    return {n.id: (n.type, plain(n.fields())) for n in src.nodes()}


def same_live(a: dict[int, tuple[str, dict[str, Any]]],
              b: dict[int, tuple[str, dict[str, Any]]]) -> bool:
    return a.keys() == b.keys() and all(
        a[i][0] == b[i][0] and same_value(a[i][1], b[i][1]) for i in a)


# --------------------------------------------------------------------------
# random histories

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3),
                    st.floats(allow_nan=False, width=64))
FIELDS = st.sampled_from(["a", "b", "c"])


@st.composite
def histories(draw: st.DrawFn) -> list[list[tuple[str, Any]]]:
    """A list of commits, each a list of abstract operations resolved against the state
    when applied (see :func:`build`)."""
    ops = st.one_of(
        st.tuples(st.just("create"), st.dictionaries(FIELDS, SCALARS, max_size=2)),
        st.tuples(st.just("set"), st.tuples(st.integers(0, 50), FIELDS, SCALARS)),
        st.tuples(st.just("ref"), st.tuples(st.integers(0, 50), FIELDS, st.integers(0, 50))),
        st.tuples(st.just("unset"), st.integers(0, 50)),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("undelete"), st.integers(0, 50)),
        st.tuples(st.just("append"), st.tuples(st.integers(0, 50), SCALARS)),
    )
    return draw(st.lists(st.lists(ops, min_size=1, max_size=4), min_size=1, max_size=7))


def _mutation(mem: Memory, op: str, arg: Any) -> Mutation | None:
    """The mutation ``op`` makes of the current staged state, or None if it cannot."""
    live_ids = [n.id for n in mem.nodes()]
    dead = [i for i in range(1, mem.info().next_node_id) if mem[i].deleted]
    if op == "create":
        mem.create("T", **arg)
        return None
    if op in ("set", "ref", "unset", "append") and not live_ids:
        return None
    if op == "set":
        return Set(live_ids[arg[0] % len(live_ids)], arg[1], arg[2])
    if op == "ref":
        return Set(live_ids[arg[0] % len(live_ids)], arg[1], Ref(live_ids[arg[2] % len(live_ids)]))
    if op == "unset":
        n = mem[live_ids[arg % len(live_ids)]]
        names = list(n)
        return Unset(n.id, names[arg % len(names)]) if names else None
    if op == "append":
        n = mem[live_ids[arg[0] % len(live_ids)]]
        if type(n.get("l")) is not list:
            return Set(n.id, "l", [arg[1]])
        n.l.append(arg[1])
        return None
    if op == "delete":
        return Delete(live_ids[arg % len(live_ids)]) if live_ids else None
    return Undelete(dead[arg % len(dead)]) if dead else None


def build(path: Path, history: list[list[tuple[str, Any]]]) -> Memory:
    """A memory at ``path`` with one commit per element of ``history``."""
    mem = open_memory(path, clock=FixedClock(), durability="none")
    for ops in history:
        for op, arg in ops:
            m = _mutation(mem, op, arg)
            if m is not None:
                mem.stage(m)
        mem.commit(allow_empty=True)
    return mem


# --------------------------------------------------------------------------
# restore


@SETTINGS
@given(history=histories(), pick=st.integers(0, 100))
def test_restore_then_commit_gives_the_live_state_of_c(tmp_path: Path,
                                                       history: list[Any], pick: int) -> None:
    path = tmp_path / f"r{pick}-{len(history)}.myo"
    path.unlink(missing_ok=True)
    with build(path, history) as mem:
        c = pick % (mem.head.seq + 1)  # type: ignore[union-attr]
        past = mem.at(c)
        want = live(past)
        mem.restore(c)
        mem.commit(allow_empty=True)
        assert same_live(live(mem), want)
        # Only nodes created after c differ, and they are tombstones now.
        created_at_c = {n.id for n in past.nodes(deleted=True)}
        for change in mem.diff(c, "HEAD").nodes:
            assert change.id not in created_at_c and change.status == "created"
            assert mem[change.id].deleted
        assert mem.verify().ok


@SETTINGS
@given(history=histories(), pick=st.integers(0, 100), which=st.integers(0, 100))
def test_restore_of_some_nodes_changes_only_them(tmp_path: Path, history: list[Any],
                                                 pick: int, which: int) -> None:
    path = tmp_path / f"n{pick}-{which}.myo"
    path.unlink(missing_ok=True)
    with build(path, history) as mem:
        head = mem.head.seq  # type: ignore[union-attr]
        n = 1 + which % (mem.info().next_node_id - 1) if mem.info().next_node_id > 1 else None
        if n is None:
            return
        c = pick % (head + 1)
        before = mem.at(head)
        mem.restore(c, nodes=[n])
        mem.commit(allow_empty=True)
        past = mem.at(c)
        for i in range(1, mem.info().next_node_id):
            got = mem[i]
            if i == n and i not in past:
                assert got.deleted  # created after c: a tombstone
                continue
            want = past[i] if i == n else before[i]
            assert got.deleted == want.deleted
            assert same_value(plain(got.fields()), plain(want.fields()))


def test_restore_brings_back_a_deleted_node_with_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with open_memory(path, clock=FixedClock()) as mem:
        a = mem.create("A", x=1, items=[1, 2])
        mem.commit("one")
        a.x = 2
        a.items.append(3)
        mem.commit("two")
        a.delete()
        b = mem.create("B")
        mem.commit("three")
        assert mem.info().format_version == 1
        staged = mem.restore(1)
        assert staged == [Undelete(1), Set(1, "items", [1, 2]), Set(1, "x", 1), Delete(2)]
        assert mem.pending == 4
        mem.commit("restore 1")
        assert mem.info().format_version == 3  # the UNDELETE moved it (§12)
        assert not a.deleted and a.x == 1 and a["items"] == [1, 2] and b.deleted
        d = mem.diff(1, "HEAD")
        assert [(c.id, c.status) for c in d.nodes] == [(2, "created")]
        assert mem.restore("HEAD") == [] and mem.pending == 0


def test_restore_to_a_tombstoned_past_of_a_node_changed_since(tmp_path: Path) -> None:
    """Deleted at c, undeleted and changed after: restored to c's fields, then
    tombstoned again."""
    with open_memory(tmp_path / "m.myo", clock=FixedClock()) as mem:
        a = mem.create("A", x=1)
        mem.commit()
        a.delete()
        mem.commit()  # c = 2
        mem.stage(Undelete(1))
        a.x = 5
        a.y = 6
        mem.commit()
        assert mem.restore(2) == [Unset(1, "y"), Set(1, "x", 1), Delete(1)]
        mem.commit()
        assert a.deleted and a.fields() == {"x": 1}
        assert mem.diff(2, "HEAD").nodes == ()


def test_restore_refuses_staged_changes_a_bad_node_and_readers(tmp_path: Path) -> None:
    path = tmp_path / "m.myo"
    with Memory.open(path) as mem:
        n = mem.create("A")
        mem.commit()
        n.x = 1
        with pytest.raises(InvalidOperationError, match="staged"):
            mem.restore(1)
        mem.discard()
        with pytest.raises(NodeNotFoundError):
            mem.restore(1, nodes=[7])
        with pytest.raises(CommitNotFoundError):
            mem.restore(9)
        assert mem.pending == 0
    with Memory.open(path, readonly=True) as r, pytest.raises(ReadOnlyError):
        r.restore(1)


# --------------------------------------------------------------------------
# revert


@SETTINGS
@given(history=histories(), pick=st.integers(0, 100))
def test_revert_of_an_untouched_commit_is_as_if_it_never_was(tmp_path: Path,
                                                            history: list[Any],
                                                            pick: int) -> None:
    path = tmp_path / f"v{pick}-{len(history)}.myo"
    path.unlink(missing_ok=True)
    with build(path, history) as mem:
        head = mem.head.seq  # type: ignore[union-attr]
        c = 1 + pick % head
        store = store_of(mem)
        mine, later = store.touched_between(c - 1, c), store.touched_between(c, head)
        if mine & later:
            # A later commit touched a node c touched: maybe a conflict. Either way a
            # refusal stages nothing, and force=True always goes through.
            try:
                mem.revert(c)
            except RevertConflictError as e:
                assert e.conflicts and mem.pending == 0
                assert all(x.node in mine and x.commit > c for x in e.conflicts)
            mem.discard()
            mem.revert(c, force=True)
            mem.commit(allow_empty=True)
            assert mem.verify().ok
            return
        # Untouched since: the live state is as if c had never been made.
        before = mem.at(c - 1)
        expected = live(mem)
        for i in mine:
            if i in before and not before[i].deleted:
                expected[i] = (before[i].type, plain(before[i].fields()))
            else:
                expected.pop(i, None)
        result = mem.revert(c)
        assert result.commit == c and not result.skipped
        mem.commit(allow_empty=True)
        assert same_live(live(mem), expected)
        assert mem.verify().ok


def test_revert_names_each_conflict_and_force_keeps_the_later_value(tmp_path: Path) -> None:
    with open_memory(tmp_path / "m.myo", clock=FixedClock()) as mem:
        a = mem.create("A", x=1, y=1, items=[1])
        mem.commit("one")
        a.x = 2
        a.y = 2
        a.items.append(2)
        mem.commit("two")
        a.items[0] = 9
        a.x = 3
        mem.commit("three")
        with pytest.raises(RevertConflictError) as ei:
            mem.revert(2)
        assert [(c.commit, c.node, c.path) for c in ei.value.conflicts] == [
            (3, 1, "items[0]"), (3, 1, "x")]
        assert "commit 3 changed node 1 items[0]" in str(ei.value)
        assert mem.pending == 0
        r = mem.revert(2, force=True)
        assert [c.path for c in r.skipped] == ["items[0]", "x"]
        assert list(r.mutations) == [Set(1, "y", 1)]
        mem.commit("revert two")
        assert (a.x, a.y, a["items"]) == (3, 1, [9, 2])


def test_revert_of_a_create_tombstones_and_of_a_delete_undeletes(tmp_path: Path) -> None:
    with open_memory(tmp_path / "m.myo", clock=FixedClock()) as mem:
        a = mem.create("A", x=1)
        mem.commit()
        b = mem.create("B")
        mem.commit()
        a.delete()
        mem.commit()
        assert list(mem.revert(2).mutations) == [Delete(2)]
        mem.commit()
        assert b.deleted
        assert list(mem.revert(3).mutations) == [Undelete(1)]
        mem.commit()
        assert not a.deleted and a.x == 1 and mem.info().format_version == 3


def test_revert_of_a_folded_or_missing_commit_is_refused(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.myo") as mem:
        for i in range(3):
            mem.create("A", i=i)
            mem.commit()
        mem.compact(at=2)
        with pytest.raises(CommitNotFoundError, match="compaction"):
            mem.revert(2)
        with pytest.raises(CommitNotFoundError):
            mem.revert(1)
        assert list(mem.revert(3).mutations) == [Delete(3)]


# --------------------------------------------------------------------------
# fork


@SETTINGS
@given(history=histories(), pick=st.integers(0, 100))
def test_a_fork_has_the_state_of_c_and_names_it(tmp_path: Path, history: list[Any],
                                                pick: int) -> None:
    path, fork = tmp_path / f"s{pick}.myo", tmp_path / f"s{pick}.fork.myo"
    path.unlink(missing_ok=True)
    fork.unlink(missing_ok=True)
    with build(path, history) as mem:
        c = pick % (mem.head.seq + 1)  # type: ignore[union-attr]
        before = path.read_bytes()
        origin = mem.fork(c, fork)
        assert path.read_bytes() == before  # the source is only read
        want_hash = mem.at(c).state_hash()
        cid = mem.commit_info(c).id if c else None
    assert origin.seq == c and origin.commit_id == cid and origin.state_hash == want_hash
    with Memory.open(fork) as f:
        info = f.info()
        assert info.origin == origin and info.format_version == 3
        assert f.state_hash() == want_hash and info.head_seq == c == info.base_seq
        f.create("Fork")
        nc = f.commit("on the fork")
        assert nc is not None and nc.seq == c + 1 and nc.parent == cid
        assert f.verify().ok
    dump = reference_reader.read_file(fork.read_bytes())
    assert dump.data["origin"]["source_seq"] == c


def test_fork_never_overwrites_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.myo") as mem:
        mem.create("A")
        mem.commit()
        target = tmp_path / "taken.myo"
        target.write_bytes(b"precious")
        with pytest.raises(TargetExistsError, match="never replaces"):
            mem.fork(1, target)
        assert target.read_bytes() == b"precious"
        with pytest.raises(CommitNotFoundError):
            mem.fork(5, tmp_path / "new.myo")
        assert not (tmp_path / "new.myo").exists()
        assert sorted(p.name for p in tmp_path.iterdir() if "fork-" in p.name) == []


def test_compacting_a_fork_keeps_its_origin(tmp_path: Path) -> None:
    with open_memory(tmp_path / "m.myo", clock=FixedClock()) as mem:
        for i in range(3):
            mem.create("A", i=i)
            mem.commit()
        origin = mem.fork(2, tmp_path / "f.myo")
    with open_memory(tmp_path / "f.myo", clock=FixedClock()) as f:
        for i in range(3):
            f.create("B", i=i)
            f.commit()
        h = f.state_hash()
        f.compact(at=4)
        info = f.info()
        assert info.origin == origin and info.format_version == 3 and info.base_seq == 4
        assert f.state_hash() == h and f.verify().ok
    reference_reader.read_file((tmp_path / "f.myo").read_bytes())


# --------------------------------------------------------------------------
# retention


def _history_file(path: Path, n: int) -> Memory:
    mem = open_memory(path, clock=FixedClock())
    for i in range(n):
        mem.create("A", i=i)
        mem.commit(f"c{i + 1}")
    return mem


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 8), keep=st.integers(0, 10), since=st.integers(0, 10),
       policy=st.sampled_from(["last", "since", "both"]))
def test_retention_keeps_exactly_the_commits_its_policy_names(
        tmp_path: Path, n: int, keep: int, since: int, policy: str) -> None:
    path = tmp_path / f"k{n}-{keep}-{since}-{policy}.myo"
    path.unlink(missing_ok=True)
    with _history_file(path, n) as mem:
        ts = {c.seq: c.timestamp_us for c in mem.history()}
        ids = {c.seq: c.id for c in mem.history()}
        h = mem.state_hash()
        cut = sorted(ts.values())[min(since, n - 1)] + (1 if since >= n else 0)
        kwargs: dict[str, Any] = {}
        expect: set[int] = set()
        if policy in ("last", "both"):
            kwargs["keep_last"] = keep
            expect |= {s for s in ts if s > n - keep}
        if policy in ("since", "both"):
            kwargs["keep_since"] = EPOCH + dt.timedelta(microseconds=cut)
            expect |= {s for s in ts if ts[s] >= cut}
        before = path.read_bytes()
        dry = mem.compact(**kwargs, dry_run=True)
        assert path.read_bytes() == before and dry.dry_run
        assert [c.seq for c in mem.history()] == list(range(1, n + 1))
        r = mem.compact(**kwargs)
        kept = [c.seq for c in mem.history()]
        assert kept == sorted(expect)
        assert {c.seq: c.id for c in mem.history()} == {s: ids[s] for s in kept}
        assert mem.state_hash() == h and mem.verify().ok
        assert (dry.base_seq, dry.bytes_after, list(dry.folded)) == \
            (r.base_seq, r.bytes_after, list(r.folded))
        assert list(r.folded) == [s for s in range(1, n + 1) if s not in expect]
        if r.folded:
            assert r.bytes_after == path.stat().st_size


def test_retention_arguments_are_checked(tmp_path: Path) -> None:
    with _history_file(tmp_path / "m.myo", 2) as mem:
        for kwargs in ({"keep_last": -1}, {"keep_last": 1.5}, {"keep_since": 5},
                       {"keep_since": dt.datetime(2020, 1, 1)},
                       {"at": 1, "keep_last": 1}):
            with pytest.raises(InvalidArgumentError):
                mem.compact(**kwargs)
        assert len(mem.history()) == 2
