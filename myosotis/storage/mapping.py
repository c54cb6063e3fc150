"""A read-only ``mmap`` of the data file that follows it as it grows."""

from __future__ import annotations

import contextlib
import mmap
import weakref


class FileMap:
    """Maps the first ``size`` bytes of ``fd`` read-only and hands out memoryviews.

    When the file grows, :meth:`ensure` maps it again at the new size. The old
    map is never closed explicitly: memoryviews handed out earlier keep it
    alive and valid, and it is unmapped when the last of them is dropped. So a
    caller never sees ``BufferError`` and a view never goes stale.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._map: mmap.mmap | None = None
        self._mv: memoryview = memoryview(b"")
        # every map made and not yet unmapped (views keep old ones alive)
        self._maps: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()

    @property
    def size(self) -> int:
        return len(self._mv)

    def ensure(self, size: int) -> None:
        """Make at least ``size`` bytes addressable (the file must be that long)."""
        if size <= len(self._mv):
            return
        self._map = mmap.mmap(self._fd, size, access=mmap.ACCESS_READ)
        self._mv = memoryview(self._map)
        self._maps.add(self._map)

    def view(self, start: int, stop: int) -> memoryview:
        """Bytes ``[start, stop)`` of the file, zero-copy.

        The view stays valid as long as it is referenced, even after the map
        is replaced or this object is dropped.
        """
        if stop > len(self._mv):
            self.ensure(stop)
        return self._mv[start:stop]

    def whole(self) -> memoryview:
        """The whole mapped region (for scanning)."""
        return self._mv

    def drop_resident(self) -> None:
        """Take the pages this process has read through any of its maps out of its
        resident set (MADV_DONTNEED): the maps are read-only and shared, so the
        bytes stay in the page cache and a later read maps them again, at a minor
        fault a page. A writer calls it after a layer, which read the layers it
        merged: what it read once need not count in its memory. Best effort."""
        dontneed = getattr(mmap, "MADV_DONTNEED", None)
        if dontneed is None:  # pragma: no cover - no madvise on this platform
            return
        for m in list(self._maps):
            with contextlib.suppress(OSError, ValueError):  # ValueError: closed
                m.madvise(dontneed)

    def release(self) -> None:
        """Drop this object's references; outstanding views keep their map alive."""
        self._mv = memoryview(b"")
        self._map = None
