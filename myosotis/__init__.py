"""Myosotis: deterministic, inspectable, versioned memory for long-lived programs.

>>> from myosotis import Memory
>>> mem = Memory.open("state.myo")  # doctest: +SKIP

The public API is exactly the names in ``__all__`` below, plus
:mod:`myosotis.testing` (hooks for tests). Everything else (the packages
``format``, ``storage``, ``engine``, ``api`` and ``cli``) is internal: it may
change in any release. docs/ARCHITECTURE.md describes it.
"""

from typing import TYPE_CHECKING

from myosotis.api.handles import ListProxy, MapProxy, Node
from myosotis.api.memory import Memory, RepairResult
from myosotis.api.names import CommitRef
from myosotis.api.view import View
from myosotis.engine.history import Commit
from myosotis.errors import (
    ClosedError,
    CommitNotFoundError,
    CorruptFileError,
    DamagedStageError,
    DeletedNodeError,
    DiffConflictError,
    FieldNotFoundError,
    FileMissingError,
    ForeignStageError,
    IndexRebuiltWarning,
    InterruptedOperationError,
    InvalidArgumentError,
    InvalidDocumentError,
    InvalidOperationError,
    InvalidValueError,
    LockedError,
    MissingAttributeError,
    MissingProgramError,
    MyosotisError,
    NodeNotFoundError,
    NotAMyosotisFileError,
    NotARegularFileError,
    ReadOnlyError,
    RecoveredTailWarning,
    RenderError,
    RevertConflictError,
    StageError,
    StaleStageError,
    TargetExistsError,
    UncommittedChangesWarning,
    UnsupportedVersionError,
    WriterFailedError,
)
from myosotis.format.constants import INT_MAX, INT_MIN, MAX_NODE_ID
from myosotis.format.mutation_parts import Path
from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Set,
    Undelete,
    Unset,
)
from myosotis.format.values import Ref

if TYPE_CHECKING:
    from myosotis.api.explore import WalkStep
    from myosotis.api.info import MemoryInfo, SpaceUsage
    from myosotis.api.legacy import MigrateResult
    from myosotis.api.stagefile import Stage, StageIntent, StageStatus
    from myosotis.engine.compact import CompactResult
    from myosotis.engine.diff import Diff, DiffOp, DiffStat, FieldChange, NodeChange
    from myosotis.engine.fork import Origin
    from myosotis.engine.node_history import LogEntry, Referrer
    from myosotis.engine.rewind import Conflict, RevertResult
    from myosotis.engine.structdiff import MISSING
    from myosotis.engine.verify import Finding, VerifyReport

# The names above (under TYPE_CHECKING) belong to subsystems that a program
# which opens a memory and reads and writes nodes does not use: each is imported
# when first looked up (PEP 562), so `import myosotis` does not pay for them
# (tests/test_import_cost.py). Name -> its module.
_LAZY = {
    "WalkStep": "myosotis.api.explore",
    "MemoryInfo": "myosotis.api.info",
    "SpaceUsage": "myosotis.api.info",
    "MigrateResult": "myosotis.api.legacy",
    "Stage": "myosotis.api.stagefile",
    "StageIntent": "myosotis.api.stagefile",
    "StageStatus": "myosotis.api.stagefile",
    "CompactResult": "myosotis.engine.compact",
    "Diff": "myosotis.engine.diff",
    "DiffOp": "myosotis.engine.diff",
    "DiffStat": "myosotis.engine.diff",
    "FieldChange": "myosotis.engine.diff",
    "NodeChange": "myosotis.engine.diff",
    "Origin": "myosotis.engine.fork",
    "LogEntry": "myosotis.engine.node_history",
    "Referrer": "myosotis.engine.node_history",
    "Conflict": "myosotis.engine.rewind",
    "RevertResult": "myosotis.engine.rewind",
    "MISSING": "myosotis.engine.structdiff",
    "Finding": "myosotis.engine.verify",
    "VerifyReport": "myosotis.engine.verify",
}

__version__ = "0.1.0"

__all__ = [
    # opening, reading, changing
    "Memory", "View", "Node", "ListProxy", "MapProxy", "Ref", "CommitRef",
    # history and inspection
    "Commit", "Diff", "DiffOp", "DiffStat", "NodeChange", "FieldChange", "MISSING",
    "MemoryInfo", "SpaceUsage",
    "WalkStep",
        "LogEntry", "Referrer",
    # maintenance
    "VerifyReport", "Finding", "RepairResult", "CompactResult", "MigrateResult",
    # going back (restore, revert, fork)
    "RevertResult", "Conflict", "Origin",
    # raw mutations (FORMAT.md §6) and the stage file (formatspec/STAGE.md)
    "Mutation", "Path", "Create", "Set", "Unset", "Delete", "ListInsert", "ListRemove",
    "ListReplace", "MapSet", "MapDelete", "Undelete", "Stage", "StageIntent", "StageStatus",
    # limits of stored values (FORMAT.md §11)
    "INT_MIN", "INT_MAX", "MAX_NODE_ID",
    # errors and warnings
    "MyosotisError", "ClosedError", "CommitNotFoundError", "CorruptFileError",
    "DamagedStageError", "DeletedNodeError", "DiffConflictError", "FieldNotFoundError",
    "FileMissingError",
    "ForeignStageError", "InterruptedOperationError", "InvalidArgumentError",
    "InvalidDocumentError", "InvalidOperationError", "InvalidValueError", "LockedError",
    "MissingAttributeError",
    "NodeNotFoundError", "NotAMyosotisFileError", "NotARegularFileError", "ReadOnlyError",
    "StageError", "StaleStageError", "UnsupportedVersionError", "WriterFailedError",
    "RenderError", "MissingProgramError",
    "RevertConflictError", "TargetExistsError",
    "RecoveredTailWarning", "UncommittedChangesWarning", "IndexRebuiltWarning",
    "__version__",
]


# Hidden from type checkers: they see the TYPE_CHECKING imports above, and so
# still report a misspelled name instead of typing it as ``object``.
if not TYPE_CHECKING:
    def __getattr__(name: str) -> object:
        """A public name of ``_LAZY``, imported on first use (PEP 562); AttributeError
        for any other name, as for a module without ``__getattr__``."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups find it without coming here
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
