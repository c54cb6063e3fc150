"""Myosotis: deterministic, inspectable, versioned memory for long-lived programs.

>>> from myosotis import Memory
>>> mem = Memory.open("state.myo")  # doctest: +SKIP
"""

from myosotis.api.handles import ListProxy, MapProxy, Node
from myosotis.api.memory import Memory, View
from myosotis.engine.diff import MISSING, Diff, FieldChange, NodeChange
from myosotis.engine.history import Commit
from myosotis.errors import (
    ClosedError,
    CommitNotFoundError,
    CorruptFileError,
    DeletedNodeError,
    FieldNotFoundError,
    FileMissingError,
    InterruptedOperationError,
    InvalidArgumentError,
    InvalidOperationError,
    InvalidValueError,
    LockedError,
    MissingAttributeError,
    MyosotisError,
    NodeNotFoundError,
    NotAMyosotisFileError,
    NotARegularFileError,
    ReadOnlyError,
    RecoveredTailWarning,
    UncommittedChangesWarning,
    UnsupportedVersionError,
    WriterFailedError,
)
from myosotis.format.values import Ref

__version__ = "0.1.0"

__all__ = [
    "MISSING", "ClosedError", "Commit", "CommitNotFoundError", "CorruptFileError",
    "DeletedNodeError", "Diff", "FieldChange", "FieldNotFoundError", "FileMissingError",
    "InterruptedOperationError", "InvalidArgumentError", "InvalidOperationError",
    "InvalidValueError", "ListProxy", "LockedError", "MapProxy", "Memory",
    "MissingAttributeError", "MyosotisError", "Node", "NodeChange", "NodeNotFoundError",
    "NotAMyosotisFileError", "NotARegularFileError", "ReadOnlyError", "RecoveredTailWarning", "Ref",
    "UncommittedChangesWarning",
    "UnsupportedVersionError", "View",
    "WriterFailedError",
]
