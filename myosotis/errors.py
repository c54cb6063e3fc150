"""The one exception hierarchy of Myosotis.

Every error a user can cause derives from :class:`MyosotisError` and its
message says what was wrong and what to do. Where a Python user would catch a
builtin (``KeyError`` for a missing node, ``ValueError`` for a bad value) the
class derives from that builtin too.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, attributed to the user's line: the first frame outside this package.

    A fixed ``stacklevel`` breaks whenever a call path inside the package
    gains or loses a frame; this does not.
    """
    level, frame = 2, sys._getframe(1)
    while frame.f_code.co_filename.startswith(_PACKAGE) and frame.f_back is not None:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class MyosotisError(Exception):
    """Base class of every error raised by Myosotis."""


class NotAMyosotisFileError(MyosotisError):
    """The file does not start with the magic ``MYOSOTIS`` (FORMAT.md R10)."""


class UnsupportedVersionError(MyosotisError):
    """The file was written by a newer format version (FORMAT.md R11, §12)."""


class CorruptFileError(MyosotisError):
    """The file breaks a rule of FORMAT.md at a known place.

    ``offset`` is the byte offset of the damaged structure (or ``None`` when the
    damage is not tied to one place) and ``reason`` the rule it breaks.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(
            f"corrupt file{where}: {reason} "
            "(run `myo fsck` to see every problem; restore from a copy if it persists)"
        )


class FileMissingError(MyosotisError, FileNotFoundError):
    """The file does not exist and may not be created here (read-only open)."""


class LockedError(MyosotisError):
    """Another writer holds the file; open it with ``readonly=True`` or wait."""


class NotARegularFileError(MyosotisError):
    """The path names a directory, a FIFO, a device or a socket: a Myosotis file is a
    regular file. Raised before anything is read from it or created beside it."""


class InvalidArgumentError(MyosotisError, ValueError):
    """An argument of ``Memory.open`` (or another entry point) has the wrong type or
    is out of range; nothing was opened or created."""


class ReadOnlyError(MyosotisError):
    """A change was attempted through a read-only handle, view or memory."""


class ClosedError(MyosotisError):
    """The memory (or a handle of it) was used after ``close()``."""


class WriterFailedError(MyosotisError):
    """A write or fsync failed; this handle refuses further commits (fail-stop).

    Reopen the file to re-verify what is durable, then carry on.
    """


class InterruptedOperationError(MyosotisError):
    """An operation on this handle was interrupted (KeyboardInterrupt, SystemExit,
    MemoryError, ...) at a point where the handle's state could not be kept whole.

    The handle refuses to show or change a state that may never have existed.
    What to do is in the message: ``discard()`` after an interrupted edit,
    ``refresh()`` after an interrupted refresh, and closing and reopening the
    file after an interrupted commit, checkpoint or compaction (whose frame may
    or may not be in the file: check ``mem.head`` before retrying).
    """


class NodeNotFoundError(MyosotisError, KeyError):
    """No node has this id."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the sentence
        return str(self.args[0]) if self.args else ""


class FieldNotFoundError(MyosotisError, KeyError):
    """The node has no field of this name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingAttributeError(MyosotisError, AttributeError):
    """Attribute access to a field the node does not have."""


class CommitNotFoundError(MyosotisError, KeyError):
    """No commit matches this name (sequence number, id, id prefix)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidValueError(MyosotisError, ValueError):
    """A value cannot be stored: wrong type, out of range or over a limit."""


class InvalidOperationError(MyosotisError, ValueError):
    """A mutation that the graph's rules forbid (e.g. changing a deleted node)."""


class DeletedNodeError(InvalidOperationError):
    """The node is tombstoned: it stays readable but can no longer change."""


class DiffConflictError(InvalidOperationError):
    """``Memory.apply(diff)`` refused: the memory is not in the diff's state ``a``
    where the diff's ops touch it (the message names the node and the path), or
    the diff creates nodes and the memory's next node id is not ``a``'s.
    Nothing was staged."""


class RenderError(MyosotisError):
    """An external program that renders a picture (Graphviz ``dot``) failed."""


class MissingProgramError(RenderError):
    """An external program that is needed (Graphviz ``dot`` for SVG) is not on PATH;
    the message names it and says how to do without it."""


class RevertConflictError(InvalidOperationError):
    """A later commit changed what ``Memory.revert`` would put back. ``conflicts`` lists
    each one (the later commit, the node, the path); ``force=True`` keeps the later
    values and reverts the rest."""

    def __init__(self, message: str, conflicts: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.conflicts = conflicts


class TargetExistsError(MyosotisError, FileExistsError):
    """A file that would be created (``Memory.fork``) already exists; it is never
    overwritten: choose another path or remove it first."""


class StageError(MyosotisError):
    """Something is wrong with a data file's stage (``<file>.stage``, formatspec/STAGE.md).

    ``message`` is the whole text, which says what to do.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DamagedStageError(StageError):
    """The stage file breaks a rule of STAGE.md; nothing of it is used."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"the stage file {path} is damaged ({reason}); nothing in it was "
                         "used. Remove it (`myo discard`, or Stage.remove), then stage the "
                         "changes again")


class StaleStageError(StageError):
    """The head moved since the stage was made (STAGE.md S8)."""


class ForeignStageError(StageError):
    """The stage was made for another file at the same path (STAGE.md S12)."""


class InvalidDocumentError(MyosotisError, ValueError):
    """A JSON export (formatspec/EXPORT.md) or legacy file (formatspec/LEGACY.md) breaks
    its schema.

    ``location`` says where: a JSON pointer (``/commits/3/mutations/0/value``) for a
    document that parses, ``line L, column C`` for one that does not; ``reason``
    says what rule it breaks. Nothing was created from it.
    """

    def __init__(self, reason: str, location: str) -> None:
        self.reason = reason
        self.location = location
        super().__init__(f"{location or '/'}: {reason}")


# --------------------------------------------------------------------------
# warnings

class UncommittedChangesWarning(UserWarning):
    """Staged changes were dropped because the memory was closed without a commit.

    Emitted by ``Memory.close()``, at the end of a ``with`` block (also one left
    by an exception, which it never replaces) and when a memory with staged
    changes is garbage collected. Like ``ResourceWarning`` it reports work that
    was lost silently, but it is a ``UserWarning`` so it is shown by default
    (``ResourceWarning`` is hidden unless ``-W default`` or ``-X dev``). Call
    ``discard()`` before closing to drop changes on purpose, without it.
    """


class RecoveredTailWarning(UserWarning):
    """A writer cut a torn tail (FORMAT.md §10 step 3) that held non-zero bytes.

    Recovery never destroys bytes it cannot prove were never acknowledged: they
    were copied first to the file the message names (``<file>.recovered-<offset>``).
    Usually they are what a crash mid-commit left and can be deleted.
    """


class IndexRebuiltWarning(UserWarning):
    """The history index sidecar (``<file>.idx``) could not be used (damaged, or an
    index of another history) and is rebuilt from the log. Nothing is lost: the
    index is derived data; the warning only explains a slower first query."""
