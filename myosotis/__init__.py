"""Myosotis: deterministic, inspectable, versioned memory for long-lived programs.

>>> from myosotis import Memory
>>> mem = Memory.open("state.myo")  # doctest: +SKIP

The public API is exactly the names in ``__all__`` below, plus
:mod:`myosotis.testing` (hooks for tests). Everything else (the packages
``format``, ``storage``, ``engine``, ``api`` and ``cli``) is internal: it may
change in any release. docs/ARCHITECTURE.md describes it.
"""

from myosotis.api.explore import WalkStep
from myosotis.api.handles import ListProxy, MapProxy, Node
from myosotis.api.info import MemoryInfo, SpaceUsage
from myosotis.api.legacy import MigrateResult
from myosotis.api.memory import Memory, RepairResult
from myosotis.api.names import CommitRef
from myosotis.api.stagefile import Stage, StageIntent, StageStatus
from myosotis.api.view import View
from myosotis.engine.compact import CompactResult
from myosotis.engine.diff import Diff, DiffOp, DiffStat, FieldChange, NodeChange
from myosotis.engine.fork import Origin
from myosotis.engine.history import Commit
from myosotis.engine.node_history import LogEntry, Referrer
from myosotis.engine.rewind import Conflict, RevertResult
from myosotis.engine.structdiff import MISSING
from myosotis.engine.verify import Finding, VerifyReport
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
