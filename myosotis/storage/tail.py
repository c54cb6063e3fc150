"""Opening a version-4 file from its newest layer (FORMAT.md §10.1), and indexing the
frames before it when they are first needed: functions bound as methods of
:class:`~myosotis.storage.log.LogFile` (the log's own state, kept there).

A layer ends with a trailer (its own offset and a magic) by which
``format/layer.find_newest_layer`` finds it from the end of the file; the
walk of §10 then runs from it only. Frames before it are walked by
:func:`ensure_full`, which must find them end exactly at the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from myosotis.errors import CorruptFileError
from myosotis.format.constants import (
    FRAME_ALIGN,
    FRAME_FLAGS_ALLOWED,
    FRAME_HEADER_SIZE,
    FRAME_KIND_OFFSET,
    HEADER_SIZE,
    KIND_LAYER,
    KINDS_BY_VERSION,
)
from myosotis.format.header import frame_payload_ok, padding
from myosotis.format.helper import ScanStatus, crc32c
from myosotis.format.helper_contract import header_payload_length
from myosotis.format.layer import find_newest_layer
from myosotis.format.walk import Walk, walk

if TYPE_CHECKING:
    from myosotis.storage.log import LogFile

TAIL_SEARCH = 1 << 20
"""Bytes at the end of a version-4 file searched for the newest layer's trailer at
open (FORMAT.md §10.1): four times the commit bytes after which the reference
writer appends a layer (engine/policy.py LAYER_BYTES), so its files are opened
from their newest layer unless their last commit alone is larger."""


def walk_from_newest_layer(self: LogFile, size: int) -> tuple[Walk | None, int]:
    """§10.1: open a version-4 file from its newest layer, found from the end by its
    trailer, walking only the frames from there; (None, size) when that cannot
    be proved clean (no layer near the end, or damage after it), and the caller
    walks the whole file instead (which is what reports damage)."""
    if size < HEADER_SIZE + FRAME_HEADER_SIZE:
        return None, size
    self.map.ensure(size)
    version = int.from_bytes(self.map.view(8, 10), "little")
    if KIND_LAYER not in KINDS_BY_VERSION.get(version, ()):
        return None, size
    q = find_newest_layer(self.map.whole(), size, FRAME_FLAGS_ALLOWED[version],
                          TAIL_SEARCH)
    if q is None:
        return None, size
    self.valid_end = self.index_from = q
    found, size = self._walk_any(size)
    if found.status == ScanStatus.CORRUPT or not found.offsets or found.offsets[0] != q:
        self.valid_end = self.index_from = HEADER_SIZE
        return None, size
    return found, size


def ensure_full(self: LogFile, check: Callable[[], None] = lambda: None) -> int:
    """Index the frames before ``index_from`` (a file opened from its newest layer,
    §10.1) by walking them; return how many were added (0 when all were).

    Raises CorruptFileError when they do not end exactly at the layer (damage
    in history older than the newest layer, found when it is first needed), or
    when ``check``, called once the frames are indexed, raises it (damage a
    reader of those frames finds): then the frames are indexed as before.
    """
    q = self.index_from
    if q == HEADER_SIZE:
        check()
        return 0
    version = int.from_bytes(self.map.view(8, 10), "little")
    found = walk(self.map.view(0, q), HEADER_SIZE, FRAME_FLAGS_ALLOWED.get(version, 0),
                 KINDS_BY_VERSION.get(version))
    if found.status != ScanStatus.CLEAN or found.end != q:
        raise CorruptFileError(found.reason or "damaged frame before the newest layer "
                               "(§10.1)", found.end)
    n = len(found.offsets)
    frames = type(self.frames)()
    frames.extend(found.offsets, found.kinds)
    frames.extend(self.frames.offsets, self.frames.kinds)
    verified = {i + n for i in self._verified}
    appended = None if self.appended_from is None else self.appended_from + n
    # The frame indices move by n: every index kept here moves with them.
    before = self.frames, self._verified, self.appended_from, self.index_from
    self.frames, self._verified, self.appended_from, self.index_from = \
        frames, verified, appended, HEADER_SIZE
    try:
        check()
    except CorruptFileError:
        # back in one step, as they moved (an index the check made is dropped)
        self.frames, self._verified, self.appended_from, self.index_from = before
        raise
    return n


def frame_header_at(self: LogFile, offset: int) -> tuple[int, memoryview] | None:
    """``(kind, payload)`` of the header-valid frame (R21–R25) at ``offset`` of the
    valid prefix, payload unchecked (R26); None if there is none. For a frame
    outside the index (before ``index_from``, §10.1) named by a layer."""
    if not HEADER_SIZE <= offset <= self.valid_end - FRAME_HEADER_SIZE or \
            offset % FRAME_ALIGN:
        return None
    head = bytes(self.map.view(offset, offset + FRAME_HEADER_SIZE))
    n = header_payload_length(head, FRAME_FLAGS_ALLOWED.get(self.version, 0), crc32c)
    start = offset + FRAME_HEADER_SIZE
    if n < 0 or start + n + padding(n) > self.valid_end:
        return None
    return head[FRAME_KIND_OFFSET], self.map.view(start, start + n)


def payload_at(self: LogFile, offset: int) -> memoryview:
    """The CRC-checked payload (R26, R27) of the frame at ``offset``, indexed or
    not; raises CorruptFileError."""
    got = self.frame_header_at(offset)
    if got is None or not frame_payload_ok(self.map.view(0, self.valid_end), offset):
        raise CorruptFileError("damaged frame (R21–R27)", offset)
    return got[1]
