"""The stage as ``myo`` uses it: loaded by a writer, replayed, described.

The stage file itself (formatspec/STAGE.md: its bytes, the sidecar
``<file>.stage``, its crash-safe rewrite, its status against the head) is the
library's :class:`myosotis.Stage`. This module adds only what is the command
line's: messages that name ``myo`` commands, replaying a stage on a Memory
with ``Memory.stage`` (so every rule the engine checks is checked when a change
is staged and again when it is committed), the list and map a command edits,
and operations described for people and for ``--json``.

Every write or removal of the stage happens while the data file's writer lock
is held (the commands hold an open writer, or ``files.writer_lock``), so two
``myo`` runs never interleave (STAGE.md S11).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from myosotis import (
    ForeignStageError,
    InvalidOperationError,
    ListProxy,
    MapProxy,
    Memory,
    Mutation,
    MyosotisError,
    Node,
    Path,
    StaleStageError,
)

from .files import head_of
from .output import CliError, printable
from .values import human, path_text, to_json

if TYPE_CHECKING:  # myosotis.Stage is imported where used: only edit commands read the stage
    from myosotis import Stage

# --------------------------------------------------------------------------
# the stage against the data file (STAGE.md §4)


def status_of(mem: Memory, stage: Stage | None) -> str:
    """``none`` when nothing is staged, else :meth:`Stage.status`: ``current``,
    ``committed`` (by its intent, S9), ``stale`` (S8) or ``foreign`` (S12)."""
    return "none" if stage is None else stage.status(mem)


def foreign_message(path: str, stage: Stage) -> str:
    from myosotis import Stage
    n = len(stage.ops)
    return (f"the stage file {Stage.path_for(path)} ({n} change{'s' if n != 1 else ''}) was "
            f"made for another file at this path, one that was deleted or replaced since; "
            "nothing in it was used. Run `myo discard` to remove it, then stage the changes "
            "again")


def stale_message(mem: Memory, stage: Stage) -> str:
    seq, cid = head_of(mem)
    return (f"the staged changes were made against commit #{stage.base_seq} "
            f"{stage.base_id[:12]}, but the head is now #{seq} {cid[:12]}: another writer "
            "committed in between. Run `myo status` to see them, `myo discard` to drop them, "
            "then stage them again")


def load_for_write(mem: Memory, path: str) -> Stage:
    """The current stage for a writer (holding the lock); a spent stage is removed.

    Raises StaleStageError when the head moved (S8), ForeignStageError (S12)
    and DamagedStageError.
    """
    from myosotis import Stage
    stage = Stage.read(path)
    seq, cid = head_of(mem)
    if stage is None:
        return Stage(seq, cid)
    st = stage.status(mem)
    if st == "committed":  # an interrupted `myo commit` wrote it (S9): never again
        Stage.remove(path)
        return Stage(seq, cid)
    if st == "stale":
        raise StaleStageError(stale_message(mem, stage))
    if st == "foreign":
        raise ForeignStageError(foreign_message(path, stage))
    return stage


def replay(mem: Memory, stage: Stage) -> None:
    """Stage every operation of ``stage``, in order, on ``mem`` (which has nothing
    staged); a CliError names the first one the engine refuses."""
    for i, op in enumerate(stage.ops, 1):
        try:
            mem.stage(op)
        except MyosotisError as e:
            raise CliError(f"staged change {i} ({describe(op)}) no longer applies: {e}. "
                           "Run `myo discard` and stage again") from None


@contextlib.contextmanager
def staged(mem: Memory, path: str) -> Iterator[Stage]:
    """The current stage, replayed on ``mem``; mem's staged state is dropped after."""
    stage = load_for_write(mem, path)
    try:
        replay(mem, stage)
        yield stage
    finally:
        if not mem.closed:
            mem.discard()


def add(path: str, stage: Stage, ops: list[Mutation]) -> Stage:
    """Write ``stage`` plus ``ops`` (already staged on a Memory) as the new stage."""
    return replace(stage, ops=(*stage.ops, *ops), intent=None).write(path)


# --------------------------------------------------------------------------
# the container a command edits


def container(node: Node, field_name: str, path: Path) -> Any:
    """The list or map proxy at ``path`` inside ``field_name`` of ``node``."""
    cur: Any = node[field_name]
    for depth, step in enumerate(path):
        if isinstance(cur, ListProxy) and type(step) is int:
            if not 0 <= step < len(cur):
                raise InvalidOperationError(
                    f"index {step} out of range at step {depth + 1} of the path into "
                    f"{field_name!r} (length {len(cur)})")
            cur = cur[step]
        elif isinstance(cur, MapProxy) and type(step) is str:
            if step not in cur:
                raise InvalidOperationError(
                    f"no key {step!r} at step {depth + 1} of the path into {field_name!r}")
            cur = cur[step]
        else:
            raise InvalidOperationError(
                f"{path_text(field_name, path[:depth])} of node {node.id} is "
                f"{_kind(cur)}; cannot step into it with {step!r}")
    return cur


def _kind(v: Any) -> str:
    if isinstance(v, ListProxy):
        return "a list"
    if isinstance(v, MapProxy):
        return "a map"
    return f"not a list or map ({human(v)})"


def list_at(node: Node, field_name: str, path: Path) -> ListProxy:
    """The list at ``path`` inside ``field_name``; InvalidOperationError if it is not one."""
    c = container(node, field_name, path)
    if not isinstance(c, ListProxy):
        raise InvalidOperationError(
            f"{path_text(field_name, path)} of node {node.id} is {_kind(c)}, not a list")
    return c


def map_at(node: Node, field_name: str, path: Path) -> MapProxy:
    """The map at ``path`` inside ``field_name``; InvalidOperationError if it is not one."""
    c = container(node, field_name, path)
    if not isinstance(c, MapProxy):
        raise InvalidOperationError(
            f"{path_text(field_name, path)} of node {node.id} is {_kind(c)}, not a map")
    return c


# --------------------------------------------------------------------------
# describing operations

class _Look:
    """How ``myo`` shows the parts of a mutation (the mutation types' Renderer)."""

    def value(self, v: Any) -> str:
        return human(v)

    def name(self, s: str) -> str:
        return printable(s)

    def place(self, node: int, field: str, path: Path) -> str:
        return f"{node}.{path_text(field, path)}"


_LOOK = _Look()


def describe(mutation: Mutation) -> str:
    """One line for people, e.g. ``set 1.goal = "Explore"``."""
    return mutation.describe(_LOOK)


def op_json(mutation: Mutation) -> dict[str, Any]:
    """The JSON form of a staged operation (docs/CLI.md, ``myo status --json``)."""
    return mutation.to_json(to_json)
