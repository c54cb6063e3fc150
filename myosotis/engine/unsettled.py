"""The stand-in for a handle's state while an operation that cannot be undone runs.

Exception safety (STYLE.md 11): an exception of any kind — KeyboardInterrupt,
SystemExit, MemoryError — can arrive between any two lines. An operation
that changes a store's state in several steps (stage an edit, commit,
checkpoint, refresh, reopen) therefore follows one pattern:

1. ``store.work = Unsettled(...)`` before its first change;
2. its changes, including the point of no return (the durable append);
3. ``store.work = <the real state>`` as its very last step.

An exception anywhere in between leaves the stand-in in place, and every later
use of the state raises :class:`InterruptedOperationError` with what to do,
instead of showing a state that may never have existed. Nothing has to run on
the way out (no ``except`` or ``finally``), so no second exception can skip it.
"""

from __future__ import annotations

from typing import Any, NoReturn

from myosotis.engine.graph import Overlay
from myosotis.errors import InterruptedOperationError

# What the user does about each interrupted operation (the remedy in the message).
DISCARD = "call discard() to drop the staged changes (the edit may have been half staged)"
REOPEN = ("the commit may or may not be in the file: close this handle, reopen the file and "
          "check mem.head before retrying")
REFRESH = "call refresh() again to read the newest commit"
REOPEN_READER = "close this handle and open the file again"

_OWN = frozenset({"operation", "remedy", "fail", "__class__"})


class Unsettled(Overlay):
    """An Overlay whose every attribute raises InterruptedOperationError.

    It is an Overlay only so that ``Store.work`` keeps one static type; it
    holds no state of its own.
    """

    def __init__(self, operation: str, remedy: str) -> None:  # no Overlay.__init__: no parent
        object.__setattr__(self, "operation", operation)
        object.__setattr__(self, "remedy", remedy)

    def fail(self) -> NoReturn:
        op, remedy = object.__getattribute__(self, "operation"), \
            object.__getattribute__(self, "remedy")
        raise InterruptedOperationError(f"{op} was interrupted before it finished; {remedy}")

    def __getattribute__(self, name: str) -> Any:
        if name in _OWN:
            return object.__getattribute__(self, name)
        object.__getattribute__(self, "fail")()

    def __setattr__(self, name: str, value: Any) -> None:
        self.fail()

    def __repr__(self) -> str:
        return f"<Unsettled after an interrupted {object.__getattribute__(self, 'operation')}>"


def is_unsettled(work: Overlay) -> bool:
    """Whether ``work`` is the stand-in left by an interrupted operation."""
    return type(work) is Unsettled


def check_settled(work: Overlay) -> None:
    """Raise InterruptedOperationError if ``work`` is the stand-in of an interrupted
    operation."""
    if type(work) is Unsettled:
        work.fail()


def remedy_of(work: Overlay) -> str | None:
    """The remedy of an Unsettled ``work`` (DISCARD, REOPEN or REFRESH); None if settled."""
    return object.__getattribute__(work, "remedy") if type(work) is Unsettled else None

