"""Which file a command works on, and opening it.

The file is, in this order: ``--file/-f PATH`` given to the command, ``--file``
given before the command (``myo -f PATH show 1``), the environment variable
``MYO_FILE``, or the only ``*.myo`` file in the current directory. Otherwise
the command stops with a one-line usage error that says how to name the file.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

from myosotis import LockedError, Memory, MyosotisError

from .output import EXIT_USAGE, CliError

ENV_FILE = "MYO_FILE"
ENV_LOCK_TIMEOUT = "MYO_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 2.0


def root_obj(ctx: Any) -> dict[str, Any]:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    obj: dict[str, Any] = root.obj
    return obj


def resolve_file(ctx: Any, given: str | None) -> str:
    """The path of the data file for this command (see the module docstring)."""
    if given:
        return given
    root = root_obj(ctx).get("file")
    if root:
        return str(root)
    env = os.environ.get(ENV_FILE)
    if env:
        return env
    found = sorted(p for p in glob.glob("*.myo") if os.path.isfile(p))
    if len(found) == 1:
        return found[0]
    why = ("there is no *.myo file here" if not found else
           f"there are {len(found)} *.myo files here ({', '.join(found[:4])}"
           f"{', ...' if len(found) > 4 else ''})")
    raise CliError(f"which file? {why}; name it with --file PATH (or -f PATH), or set "
                   f"{ENV_FILE}=PATH", EXIT_USAGE)


def _require(path: str) -> None:
    if not os.path.exists(path):
        raise CliError(f"{path} does not exist; create it with `myo init {path}`")
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory, not a Myosotis file")


def lock_timeout() -> float:
    raw = os.environ.get(ENV_LOCK_TIMEOUT)
    if raw is None or raw == "":
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise CliError(f"{ENV_LOCK_TIMEOUT}={raw!r} is not a number of seconds",
                       EXIT_USAGE) from None
    if not value >= 0:
        raise CliError(f"{ENV_LOCK_TIMEOUT} must be >= 0 seconds", EXIT_USAGE)
    return value


def open_reader(path: str) -> Memory:
    """Open an existing file read-only (no lock; sees the commits present now)."""
    _require(path)
    return Memory.open(path, readonly=True)


def locked(path: str) -> CliError:
    """The command line's words for LockedError (the library's name API arguments)."""
    return CliError(f"{path} is open for writing by another process (waited "
                    f"{lock_timeout():g} s); try again when it is done, or set "
                    f"{ENV_LOCK_TIMEOUT}=SECONDS to wait longer")


@contextmanager
def writer_lock(path: str) -> Iterator[None]:
    """Hold the data file's writer lock (``<file>.lock``) without opening the file."""
    with ExitStack() as stack:
        try:
            stack.enter_context(Memory.writer_lock(path, timeout=lock_timeout()))
        except LockedError:
            raise locked(path) from None
        yield


@contextmanager
def open_writer(path: str, clock: Callable[[], int] | None = None) -> Iterator[Memory]:
    """Open an existing file as its writer (waits up to MYO_LOCK_TIMEOUT seconds).

    Whatever the command staged on the Memory is dropped when it closes, without
    the library's UncommittedChangesWarning: the stage file holds the changes.
    """
    _require(path)
    try:
        mem = Memory.open(path, clock=clock, lock_timeout=lock_timeout())
    except LockedError:
        raise locked(path) from None
    try:
        yield mem
    finally:
        if not mem.closed:
            with suppress(MyosotisError):  # an interrupted edit may refuse; closing goes on
                mem.discard()
            mem.close()


def head_of(mem: Memory) -> tuple[int, str]:
    """``(seq, commit id hex)`` of the newest commit (after compaction at HEAD, the
    genesis snapshot's base commit), ``(0, 64 zeros)`` for none."""
    head = mem.head
    return (0, "0" * 64) if head is None else (head.seq, head.id)
