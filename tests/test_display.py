"""Bounded reprs and notebook HTML: a node holding a 10 MB string never prints 10 MB,
and every ``_repr_html_`` escapes what users stored (a stored ``<script>`` is text)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from model import FixedClock

from myosotis import (
    CommitNotFoundError,
    FieldNotFoundError,
    InvalidValueError,
    Memory,
    MissingAttributeError,
    Set,
)

BIG = "x" * 10_000_000
SCRIPT = "<script>alert('owned')</script>"
BOUND = 1_000  # no repr or message below may be longer than this


@pytest.fixture
def mem(mem_path: str, clock: FixedClock) -> Iterator[Memory]:
    m = Memory.open(mem_path, clock=clock)
    yield m
    m.close()


def test_reprs_of_a_node_with_a_10_mb_string_are_bounded(mem: Memory) -> None:
    n = mem.create("Big", s=BIG, items=[BIG] * 3 + list(range(100_000)),
                   meta={"k" * 5_000_000: BIG, "small": 1})
    c = mem.commit(label=BIG)
    assert c is not None
    texts = [repr(n), str(n), repr(n.items), str(n.items), repr(n.meta), repr(mem),
             repr(mem.at(1)), repr(c), str(c), repr(mem.head)]
    for text in texts:
        assert len(text) < BOUND, text[:200]
    assert repr(n).startswith("<Node 1 Big {")
    assert "(+9999" in repr(n)  # says how much was left out
    assert "more)" in repr(n.items)


def test_the_repr_of_a_small_node_is_unchanged_in_shape(mem: Memory) -> None:
    a = mem.create("A", name="Iris")
    b = mem.create("B", to=a, xs=[1, "two"])
    mem.commit()
    assert repr(b) == "<Node 2 B {'to': Ref(1), 'xs': [1, 'two']}>"
    assert repr(b.xs) == "[1, 'two']"
    assert str(mem.head) == f"#1 {mem.head.id[:12]}"  # type: ignore[union-attr]


def test_error_messages_quote_values_bounded(mem: Memory) -> None:
    n = mem.create("A", m={"a": 1})
    mem.commit()
    key = "k" * 10_000_000
    cases = [
        lambda: n[key],
        lambda: getattr(n, key),
        lambda: n.m[key],
        lambda: n.m.__delitem__(key),
        lambda: mem.resolve(key),
        lambda: n.m.update({3 * (key,): 1}),  # type: ignore[dict-item]
    ]
    for case in cases:
        with pytest.raises((FieldNotFoundError, MissingAttributeError, CommitNotFoundError,
                            InvalidValueError)) as e:
            case()
        assert len(str(e.value)) < BOUND
    with pytest.raises(Exception) as e2:
        mem.stage(Set(1, key, 1), Set(1, "m", {3: 1}))  # type: ignore[dict-item]
    assert len(str(e2.value)) < BOUND


def test_a_huge_int_is_refused_with_a_short_message_and_nothing_staged(mem: Memory) -> None:
    """Python refuses to print an int of more than 4300 digits (ValueError): the message
    must not try, or the edit would fail with a non-Myosotis error half-way."""
    n = mem.create("A", items=[1])
    mem.commit()
    for bad in (lambda: setattr(n, "x", 10**10_000), lambda: n.items.append([10**5_000]),
                lambda: mem.stage(Set(10**10_000, "x", 1))):
        with pytest.raises(InvalidValueError, match="int of") as e:
            bad()
        assert len(str(e.value)) < BOUND
    assert mem.pending == 0
    with pytest.raises(IndexError, match="int of"):
        n.items[10**10_000]


def _text_of(html: str) -> str:
    """What a browser shows: tags dropped, entities decoded."""
    import html as h
    return h.unescape(re.sub(r"<[^>]+>", "", html))


def test_html_of_node_memory_view_and_commit_escapes_and_is_bounded(mem: Memory) -> None:
    n = mem.create(SCRIPT, **{SCRIPT: SCRIPT, "big": BIG})
    for i in range(120):
        mem.create("Filler", i=i)
    c = mem.commit(label=SCRIPT)
    assert c is not None
    n.delete()
    mem.commit()
    for html in (n._repr_html_(), mem._repr_html_(), mem.at(1)._repr_html_(),
                 mem.at(2)._repr_html_(), c._repr_html_()):
        assert "<script>" not in html
        assert SCRIPT in _text_of(html)  # shown as text
        assert len(html) < 50_000
    full = mem._repr_html_()
    assert "71 more not shown" in full  # 121 nodes, 50 rows
    assert "line-through" in full  # the tombstone is marked
    assert "line-through" not in mem.at(1)._repr_html_()
    mem.create("Staged")
    assert "+ 1 staged changes" in mem._repr_html_()
    mem.discard()
    node = n._repr_html_()
    assert "(deleted)" in node and "big" in node and "(+9999" in node
