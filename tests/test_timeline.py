"""History queries and commit names: ``commits(since, until, label, reverse)`` and
``at(datetime)`` against brute force over histories whose clock goes backwards, and
the naming rule of api/names.py (seq:N, id:HEX, all-digit names read both ways)."""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model import EPOCH_US, FixedClock

from myosotis import CommitNotFoundError, InvalidArgumentError, Memory
from myosotis.engine.index_file import sidecar_path
from myosotis.format import records

UTC = dt.timezone.utc
LABELS = ["", "deploy", "fix", "deploy-2", "Fix deploy"]


def when(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=us)


class ListClock:
    """Returns the given timestamps in turn (the writer's clock, free to go back)."""

    def __init__(self, stamps: list[int]) -> None:
        self.stamps = iter(stamps)

    def __call__(self) -> int:
        return next(self.stamps)


def bound(data: st.DataObject, stamps: list[int], what: str) -> Any:
    """None, a seq, a Commit-like name, a datetime or an ISO string."""
    n = len(stamps)
    kind = data.draw(st.sampled_from(["none", "seq", "name", "datetime", "iso"]), label=what)
    if kind == "none":
        return None
    if kind in ("seq", "name"):
        q = data.draw(st.integers(1, n), label=f"{what} seq")
        return q if kind == "seq" else f"seq:{q}"
    us = data.draw(st.sampled_from(stamps), label=f"{what} t") + \
        data.draw(st.sampled_from([-1, 0, 1]), label=f"{what} shift")
    return when(us) if kind == "datetime" else when(us).isoformat()


def expected(rows: list[tuple[int, int, str]], since: Any, until: Any,
             label: str | None) -> list[int]:
    def us_of(b: Any) -> int | None:
        if isinstance(b, dt.datetime):
            return (b - when(0)) // dt.timedelta(microseconds=1)
        if isinstance(b, str) and not b.startswith("seq:"):
            return us_of(dt.datetime.fromisoformat(b))
        return None

    def seq_of(b: Any) -> int | None:
        if isinstance(b, int):
            return b
        if isinstance(b, str) and b.startswith("seq:"):
            return int(b[4:])
        return None

    out = []
    for seq, us, lab in rows:
        if seq_of(since) is not None and seq < seq_of(since):  # type: ignore[operator]
            continue
        if seq_of(until) is not None and seq > seq_of(until):  # type: ignore[operator]
            continue
        if us_of(since) is not None and us < us_of(since):  # type: ignore[operator]
            continue
        if us_of(until) is not None and us > us_of(until):  # type: ignore[operator]
            continue
        if label is not None and re.search(label, lab) is None:
            continue
        out.append(seq)
    return out


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_commits_and_at_equal_brute_force_with_a_clock_that_goes_back(
        data: st.DataObject) -> None:
    stamps = data.draw(st.lists(st.integers(0, 12).map(lambda k: EPOCH_US + k * 1_000_000),
                                min_size=1, max_size=12), label="stamps")
    labels = [data.draw(st.sampled_from(LABELS), label="label") for _ in stamps]
    with tempfile.TemporaryDirectory() as d:
        mem = Memory.open(os.path.join(d, "h.myo"), durability="none",
                          clock=ListClock(stamps))
        try:
            for lab in labels:
                mem.commit(label=lab or None, allow_empty=True)
            rows = [(i + 1, us, lab)
                    for i, (us, lab) in enumerate(zip(stamps, labels, strict=True))]
            since, until = bound(data, stamps, "since"), bound(data, stamps, "until")
            label = data.draw(st.none() | st.sampled_from(["deploy", "^fix", "(?i)fix", "^$"]))
            want = expected(rows, since, until, label)
            got = [c.seq for c in mem.commits(since=since, until=until, label=label)]
            assert got == want
            back = mem.commits(since=since, until=until, label=label, reverse=True)
            assert [c.seq for c in back] == want[::-1]
            t = when(data.draw(st.sampled_from(stamps)) + data.draw(st.sampled_from([-1, 0])))
            limit = (t - when(0)) // dt.timedelta(microseconds=1)
            best = max((seq for seq, us, _ in rows if us <= limit), default=None)
            if best is None:
                with pytest.raises(CommitNotFoundError, match="at or before"):
                    mem.at(t)
            else:
                assert mem.at(t).seq == best
                assert mem.resolve(t.isoformat()) == best
                naive_local = t.astimezone().replace(tzinfo=None)  # local time, as Python has it
                assert mem.resolve(naive_local) == best
        finally:
            mem.close()


def test_commits_streams_and_checks_arguments_at_the_call(mem_path: str) -> None:
    with Memory.open(mem_path, clock=FixedClock()) as mem:
        for i in range(5):
            mem.commit(label=f"c{i}", allow_empty=True)
        it = mem.commits()
        assert isinstance(it, Iterator) and next(it).seq == 1
        with pytest.raises(InvalidArgumentError, match="regular expression"):
            mem.commits(label="(")
        with pytest.raises(CommitNotFoundError):
            mem.commits(since=99)
        with pytest.raises(InvalidArgumentError, match="not a valid date"):
            mem.commits(until="2026-02-30")
        assert [c.seq for c in mem.commits(since="HEAD~1")] == [4, 5]
        assert mem.history() == list(mem.commits())


# --------------------------------------------------------------------------
# names


def _grow_until(mem: Memory, found: Any, limit: int = 6000) -> tuple[int, str]:
    """Commit until ``found(seq, id)`` is true of some commit; return it."""
    ids: list[str] = []
    for _ in range(limit):
        c = mem.commit(allow_empty=True)
        assert c is not None
        ids.append(c.id)
        for q, cid in enumerate(ids, 1):
            if found(q, cid, len(ids)):
                return q, cid
    raise AssertionError("no such commit")


def test_an_all_digit_id_prefix_that_is_no_seq_names_its_commit(mem_path: str) -> None:
    """The issue's case: `21888` of `21888ae17ae7` was read as seq 21888 and failed."""
    with Memory.open(mem_path, durability="none", clock=FixedClock()) as mem:
        q, cid = _grow_until(mem, lambda q, cid, n: cid[:5].isdigit() and int(cid[:5]) > 10_000)
        assert mem.resolve(cid[:5]) == q
        assert mem.resolve(cid[:12]) == q
        assert mem.resolve(f"id:{cid[:5]}") == q
        with pytest.raises(CommitNotFoundError, match="no commit"):
            mem.resolve(f"seq:{cid[:5]}")


def test_a_name_that_is_both_a_seq_and_an_id_prefix_is_refused_naming_both(
        mem_path: str) -> None:
    with Memory.open(mem_path, durability="none", clock=FixedClock()) as mem:
        q, cid = _grow_until(mem, lambda q, cid, n: cid[:4].isdigit() and
                             1 <= int(cid[:4]) <= n and int(cid[:4]) != q)
        name, n = cid[:4], int(cid[:4])
        with pytest.raises(CommitNotFoundError) as e:
            mem.resolve(name)
        msg = str(e.value)
        assert "ambiguous" in msg and f"#{n}" in msg and f"#{q}" in msg
        assert f"seq:{n}" in msg and f"id:{cid[:12]}" in msg
        assert mem.resolve(f"seq:{name}") == n
        assert mem.resolve(n) == n  # a Python int is always a seq
        assert mem.resolve(f"id:{cid[:12]}") == q
        assert mem.resolve(name[:3]) == int(name[:3])  # under 4 digits: only a seq


def test_other_names(mem_path: str) -> None:
    with Memory.open(mem_path, clock=FixedClock()) as mem:
        for _ in range(3):
            mem.commit(allow_empty=True)
        head = mem.head
        assert head is not None
        assert mem.resolve("0") == 0 and mem.resolve("seq:0") == 0
        assert mem.resolve("HEAD~2") == 1
        assert mem.resolve(head.id.upper()) == 3
        for bad in ("id:12", "id:xyz1", "seq:x", "seq:", "nothing", "HEAD~x", "2026-13-01"):
            with pytest.raises((CommitNotFoundError, InvalidArgumentError)):
                mem.resolve(bad)
        assert mem.resolve(when(EPOCH_US + 2)) == 2  # FixedClock: +1 us per commit


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-29", dt.datetime(2026, 11, 29, tzinfo=UTC)),
    ("2026-11-29T10:00Z", dt.datetime(2026, 11, 29, 10, tzinfo=UTC)),
    ("2026-11-29 10:00:05.5+0130",
     dt.datetime(2026, 11, 29, 10, 0, 5, 500_000, tzinfo=dt.timezone(dt.timedelta(hours=1.5)))),
    ("2026-11-29t10:00:05.000001-05:00",
     dt.datetime(2026, 11, 29, 15, 0, 5, 1, tzinfo=UTC)),
])
def test_times_in_names(mem_path: str, text: str, expected: dt.datetime) -> None:
    us = (expected - when(0)) // dt.timedelta(microseconds=1)
    with Memory.open(mem_path, clock=ListClock([us - 1, us, us + 1])) as mem:
        for _ in range(3):
            mem.commit(allow_empty=True)
        assert mem.resolve(text) == 2
        for bad in ("2026-02-30", "2026-11-29T25:00", "2026-11-29T10:00+9999"):
            with pytest.raises(InvalidArgumentError, match="not a valid date"):
                mem.resolve(bad)


def test_a_time_before_the_kept_history_after_compaction_says_so(mem_path: str) -> None:
    with Memory.open(mem_path, clock=FixedClock()) as mem:
        for i in range(4):
            mem.create("N", i=i)
            mem.commit()
        mem.compact(at=2)
        assert mem.resolve(when(EPOCH_US + 3)) == 3
        with pytest.raises(CommitNotFoundError, match="compacted"):
            mem.at(when(EPOCH_US + 1))


def _all_ids(mem: Memory) -> dict[int, str]:
    """Every commit a name can reach (the compacted base too), by brute force."""
    head = mem.head
    assert head is not None
    return {q: mem.at(q).commit.id for q in range(1, head.seq + 1)
            if _reachable(mem, q)}


def _reachable(mem: Memory, q: int) -> bool:
    try:
        mem.at(q)
    except CommitNotFoundError:
        return False  # folded into the genesis by compaction
    return True


def _check_prefixes(mem: Memory, ids: dict[int, str]) -> None:
    """Every prefix (4, 5, 6 and 64 digits) of every id, and some that name nothing,
    resolve as a scan of all ids says: the commit, ambiguous, or none."""
    names = {cid[:n] for cid in ids.values() for n in (4, 5, 6, 64)}
    names |= {f"{i:04x}" for i in range(0, 1 << 16, 4099)}
    for name in sorted(names):
        want = [q for q, cid in ids.items() if cid.startswith(name)]
        if len(want) == 1:
            assert mem.resolve(f"id:{name}") == want[0], name
        else:
            with pytest.raises(CommitNotFoundError, match="ambiguous" if want else "no commit"):
                mem.resolve(f"id:{name}")


def test_id_prefixes_resolve_as_a_scan_of_every_id_says(tmp_path: Any) -> None:
    """Prefixes are looked up in the history index (api/names.py): before and after
    compaction (whose base is no row of the index), with rows still in memory, and
    through a reader."""
    path = str(tmp_path / "m.myo")
    with Memory.open(path, durability="none", clock=FixedClock()) as mem:
        for i in range(400):
            mem.create("T", a=i)
            mem.commit()
        _check_prefixes(mem, _all_ids(mem))
        mem.compact(keep_last=150)
        ids = _all_ids(mem)
        assert min(ids) == 250
        _check_prefixes(mem, ids)
        for i in range(20):  # rows still in memory, not yet in the sidecar
            mem[1].a = -i
            mem.commit()
        ids = _all_ids(mem)
        _check_prefixes(mem, ids)
    with Memory.open(path, readonly=True) as mem:
        _check_prefixes(mem, ids)


def test_an_id_prefix_costs_the_hits_not_the_history(tmp_path: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With the index caught up, resolving a prefix computes the ids of the commits
    it names, not one id per commit of the history; and a row the sidecar got
    wrong never names the wrong commit (each hit is checked against the log)."""
    path = str(tmp_path / "m.myo")
    with Memory.open(path, durability="none", clock=FixedClock()) as mem:
        for i in range(300):
            mem.create("T", a=i)
            mem.commit()
        cid = mem.at(123).commit.id
    con = sqlite3.connect(sidecar_path(path))
    con.execute("UPDATE chain SET id=? WHERE seq=7", (bytes.fromhex(cid),))
    con.commit()
    con.close()
    with Memory.open(path, readonly=True) as mem:
        mem.resolve("HEAD")
        mem.commits(since=1)  # catches the index up
        hashed: list[int] = []
        real = records.blake3

        def counting(data: Any) -> Any:
            hashed.append(len(data))
            return real(data)

        monkeypatch.setattr(records, "blake3", counting)
        assert mem.resolve(cid[:8]) == 123  # the damaged row of commit 7 names it too
        assert len(hashed) <= 2
