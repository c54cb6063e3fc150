"""The checks ``Memory.open`` makes on its arguments before it touches any file.

Each bad argument is an InvalidArgumentError naming the argument, what it
must be and the value it got, raised before a lock sidecar or a data file is
created, so a failed open leaves nothing behind.
"""

from __future__ import annotations

import math
import os
from typing import Any

from myosotis.errors import InvalidArgumentError
from myosotis.storage.fileops import FileOps


def _got(value: Any) -> str:
    return f"{value!r:.60} ({type(value).__name__})"


def check_path(path: Any) -> str:
    """``path`` as a ``str``; raises InvalidArgumentError unless it is a non-empty
    ``str`` or ``os.PathLike`` of one, without NUL characters."""
    try:
        p = os.fspath(path)
    except TypeError:
        p = None
    if not isinstance(p, str) or not p or "\0" in p:
        raise InvalidArgumentError(
            f"path must be a non-empty str or os.PathLike naming the file (bytes paths and "
            f"NUL characters are not accepted), not {_got(path)}")
    return p


def check_open_args(path: Any, *, readonly: Any, durability: Any, clock: Any,
                    lock_timeout: Any, node_cache: Any, fileops: Any,
                    checkpoint_floor: Any) -> str:
    """Check every argument of ``Memory.open``; return ``path`` as a ``str``.

    Raises InvalidArgumentError for the first bad one.
    """
    p = check_path(path)
    if not isinstance(readonly, bool):
        raise InvalidArgumentError(f"readonly must be True or False, not {_got(readonly)}")
    if not isinstance(durability, str) or durability not in ("full", "none"):
        raise InvalidArgumentError(
            f"durability must be 'full' or 'none' (lower case), not {_got(durability)}")
    if clock is not None and not callable(clock):
        raise InvalidArgumentError(
            "clock must be a callable returning microseconds since the epoch, or None, not "
            f"{_got(clock)}")
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) or \
            not math.isfinite(lock_timeout) or lock_timeout < 0:
        raise InvalidArgumentError(
            "lock_timeout must be a finite number of seconds >= 0 (0: do not wait), not "
            f"{_got(lock_timeout)}")
    if node_cache is not None and (isinstance(node_cache, bool) or not isinstance(
            node_cache, int) or node_cache < 1):
        raise InvalidArgumentError(
            f"node_cache must be an int >= 1 (nodes) or None, not {_got(node_cache)}")
    if fileops is not None and not isinstance(fileops, FileOps):
        raise InvalidArgumentError(
            f"fileops must be a FileOps instance or None, not {_got(fileops)}")
    if checkpoint_floor is not None and (isinstance(checkpoint_floor, bool) or not isinstance(
            checkpoint_floor, int) or checkpoint_floor < 0):
        raise InvalidArgumentError(
            f"checkpoint_floor must be an int >= 0 (bytes) or None, not "
            f"{_got(checkpoint_floor)}")
    return p
