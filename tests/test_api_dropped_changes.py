"""Staged changes never vanish without a word (issue #8 item 11).

Closing a memory with staged changes (``close()``, the end of a ``with``
block, garbage collection, interpreter exit) drops them and warns with an
``UncommittedChangesWarning`` (a ``UserWarning``, shown by default) naming how
many. ``discard()`` first, or a commit, closes silently; a warning never
replaces the exception leaving a ``with`` block.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from model import FixedClock

from myosotis import Memory, UncommittedChangesWarning


def staged(mem_path: str, clock: FixedClock, changes: int) -> Memory:
    mem = Memory.open(mem_path, clock=clock)
    n = mem.create("A")
    for i in range(changes - 1):
        n[f"f{i}"] = i
    return mem


def test_the_warning_is_a_user_warning_shown_by_default() -> None:
    assert issubclass(UncommittedChangesWarning, UserWarning)
    assert not issubclass(UncommittedChangesWarning, ResourceWarning)  # hidden by default


def test_close_with_staged_changes_warns_with_their_number(mem_path: str,
                                                           clock: FixedClock) -> None:
    mem = staged(mem_path, clock, 3)
    with pytest.warns(UncommittedChangesWarning, match="with 3 staged changes not committed"):
        mem.close()
    assert mem.closed
    with Memory.open(mem_path) as again:
        assert again.next_node_id == 1  # dropped indeed


def test_the_end_of_a_with_block_with_staged_changes_warns(mem_path: str) -> None:
    with pytest.warns(UncommittedChangesWarning, match="1 staged change not") as rec, \
            Memory.open(mem_path) as mem:
        mem.create("A")
    assert rec[0].filename == __file__  # points at the user's code, not at myosotis


def test_an_exception_leaving_a_with_block_keeps_the_exception_and_warns(
        mem_path: str) -> None:
    with pytest.warns(UncommittedChangesWarning, match="2 staged changes"), \
            pytest.raises(ZeroDivisionError), Memory.open(mem_path) as mem:
        mem.create("A", x=1)
        mem.create("B")
        1 / 0  # noqa: B018
    assert mem.closed


def test_warnings_as_errors_never_replace_the_exception_leaving_a_with_block(
        mem_path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncommittedChangesWarning)
        with pytest.raises(ZeroDivisionError), Memory.open(mem_path) as mem:
            mem.create("A")
            1 / 0  # noqa: B018
        assert mem.closed
        # without an exception in flight the warning, as an error, is raised after closing
        mem2 = Memory.open(mem_path)
        mem2.create("A")
        with pytest.raises(UncommittedChangesWarning):
            mem2.close()
        assert mem2.closed


@pytest.mark.parametrize("how", ["discard", "commit", "nothing_staged"])
def test_closing_after_discard_or_commit_is_silent(mem_path: str, how: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mem = Memory.open(mem_path)
        if how != "nothing_staged":
            mem.create("A")
        if how == "discard":
            assert mem.discard() == 1
        elif how == "commit":
            mem.commit()
        mem.close()
        mem.close()  # idempotent, and silent the second time too
        with Memory.open(mem_path) as again:
            again.create("B")
            again.discard()


def test_a_transaction_that_fails_drops_its_changes_without_a_warning(mem_path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Memory.open(mem_path) as mem, pytest.raises(ZeroDivisionError), \
                mem.transaction():
            mem.create("A")
            1 / 0  # noqa: B018


def test_a_memory_garbage_collected_with_staged_changes_warns(mem_path: str,
                                                              clock: FixedClock) -> None:
    mem = staged(mem_path, clock, 2)
    with pytest.warns(UncommittedChangesWarning, match="garbage collected with 2 staged"):
        del mem
        gc.collect()


def test_staged_changes_left_at_interpreter_exit_are_reported_on_stderr(
        tmp_path: Path) -> None:
    code = textwrap.dedent("""
        from myosotis import Memory
        mem = Memory.open("exit.myo")
        mem.create("A", goal="lost")
        kept = Memory.open("kept.myo")
        kept.create("A")
        kept.commit()
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "UncommittedChangesWarning: exit.myo was garbage collected with 1 staged " \
           "change not committed" in r.stderr
    assert "kept.myo" not in r.stderr
