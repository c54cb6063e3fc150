"""A read-only ``mmap`` of the data file that follows it as it grows."""

from __future__ import annotations

import mmap


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

    @property
    def size(self) -> int:
        return len(self._mv)

    def ensure(self, size: int) -> None:
        """Make at least ``size`` bytes addressable (the file must be that long)."""
        if size <= len(self._mv):
            return
        self._map = mmap.mmap(self._fd, size, access=mmap.ACCESS_READ)
        self._mv = memoryview(self._map)

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

    def release(self) -> None:
        """Drop this object's references; outstanding views keep their map alive."""
        self._mv = memoryview(b"")
        self._map = None
