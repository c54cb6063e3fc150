"""Staging steps interrupted at every line (engine/staging.py, unsettled.py).

A refused edit is encoded into the pending bytes before the graph rules refuse
it, and its bytes are then dropped. An interrupt (Ctrl-C) arriving while they
were dropped left them in the buffer with the store settled; one arriving in
the middle of discard() left the staged changes' count without their bytes.
Either way the next commit wrote a commit that breaks §6, and the file no
longer opened. A stand-in of unsettled.py now covers each whole step.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import myosotis
from myosotis import InterruptedOperationError, Memory, NodeNotFoundError
from myosotis.format.values import Ref

MYO_DIR = os.path.dirname(myosotis.__file__) + os.sep


def _refused_edit(mem: Memory) -> None:
    mem[1]["friend"] = Ref(99)  # encoded, then refused by R51


def _run(mem: Memory, at: int, step: Callable[[Memory], Any] = _refused_edit,
         ) -> tuple[int, BaseException | None]:
    """Run ``step``, raising KeyboardInterrupt at the ``at``-th line of Myosotis code
    (never if 0); return the number of lines run and the exception."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
            if count == at:
                raise KeyboardInterrupt
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(MYO_DIR) else None

    sys.settrace(global_)
    try:
        step(mem)
    except BaseException as e:  # noqa: BLE001 - the sweep looks at every exception
        return count, e
    finally:
        sys.settrace(None)
    return count, None


def test_a_refused_edit_interrupted_at_any_line_never_reaches_a_commit(tmp_path: Path) -> None:
    path = str(tmp_path / "base.myo")
    with Memory.open(path) as mem:
        mem.create("T", x=1)
        mem.commit()
        mem[1]["x"] = 2  # staged, and kept by a refused edit
        lines, err = _run(mem, 0)
        assert isinstance(err, NodeNotFoundError)
        mem.discard()
    base = Path(path).read_bytes()
    for at in range(1, lines + 1):
        p = tmp_path / f"at-{at}.myo"
        p.write_bytes(base)
        with Memory.open(p) as mem:
            mem[1]["x"] = 2
            _, err = _run(mem, at)
            assert isinstance(err, (KeyboardInterrupt, NodeNotFoundError)), (at, err)
            try:
                mem.commit()
                committed_x = 2  # the interrupt came before anything was out of step
            except InterruptedOperationError:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mem.discard()
                committed_x = 1
            mem.commit(allow_empty=True)
        with Memory.open(p, readonly=True) as again:  # refused if a commit broke §6
            assert again.verify().ok
            assert again[1]["x"] == committed_x
            assert "friend" not in again[1]


def test_discard_interrupted_at_any_line_never_reaches_a_commit(tmp_path: Path) -> None:
    path = str(tmp_path / "base.myo")
    with Memory.open(path) as mem:
        mem.create("T", x=1)
        mem.commit()
        mem[1]["x"] = 2
        lines, err = _run(mem, 0, Memory.discard)
        assert err is None
    base = Path(path).read_bytes()
    for at in range(1, lines + 1):
        p = tmp_path / f"at-{at}.myo"
        p.write_bytes(base)
        with Memory.open(p) as mem:
            mem[1]["x"] = 2
            _, err = _run(mem, at, Memory.discard)
            assert isinstance(err, KeyboardInterrupt), (at, err)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    mem.commit()  # a discard interrupted before it changed anything
                except InterruptedOperationError:
                    assert mem.discard() in (0, 1)  # as the message says
            mem.commit(allow_empty=True)
        with Memory.open(p, readonly=True) as again:  # refused if a commit broke §6
            assert again.verify().ok
            assert again[1]["x"] in (1, 2)


@pytest.mark.parametrize("many", [False, True])
def test_a_refused_edit_leaves_the_staged_changes_usable(tmp_path: Path, many: bool) -> None:
    """Without an interrupt, a refused edit changes nothing and the store stays usable
    (a batch that fails part way is what asks for discard(), Store.stage_all)."""
    with Memory.open(tmp_path / "a.myo") as mem:
        n = mem.create("T", items=[1])
        with pytest.raises(NodeNotFoundError):
            if many:
                n.items.extend([2, Ref(99)])  # tried on a scratch copy first: none staged
            else:
                n["friend"] = Ref(99)
        n["x"] = 1
        assert mem.pending == 2
        mem.commit()
        assert mem[1]["items"] == [1] and mem[1]["x"] == 1
