"""Reading a JSON document a piece at a time (formatspec/EXPORT.md §2), so that an
import holds one node or one commit of the document at a time, not all of it.

:func:`load_stream` returns the top-level object as a :class:`LazyObject`:
members are parsed when a key is asked for, in document order. The value of
a ``nodes`` or ``commits`` key is a :class:`LazyArray`, read one element per
step of its iteration; that of a ``genesis`` or ``genesis_state`` key is a
LazyObject too. Anything else is parsed whole, with the hooks of
format/jsonform.py (duplicate keys, numbers, nesting). A document whose keys
come in another order is still read: asking for a key past an unread array
reads the array into a list first (then memory is what it is for
``load_json``). No I/O: the text comes from a ``read(n)`` callable.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from typing import Any

from myosotis.errors import InvalidDocumentError
from myosotis.format.constants import MAX_DEPTH
from myosotis.format.jsonform import Number, pairs_hook, parse_int, pointer, refuse

LAZY_ARRAYS = frozenset({"nodes", "commits"})
LAZY_OBJECTS = frozenset({"genesis", "genesis_state"})
_CHUNK = 1 << 16
_KEEP = 1 << 20  # consumed text kept before the buffer is cut (cutting copies the rest)
_MISSING = object()


class Source:
    """The document's text, read on demand; positions are indexes into ``buf``."""

    def __init__(self, read: Callable[[int], bytes | str]) -> None:
        self._read = read
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._bytes = 0  # bytes read so far
        self._dropped = 0  # characters cut from the front of buf
        self._line = 1  # line of the first character of buf
        self._line_start = 0  # absolute index of the start of that line
        self.dec = json.JSONDecoder(object_pairs_hook=pairs_hook, parse_int=parse_int,
                                    parse_float=Number, parse_constant=Number)

    def grow(self) -> bool:
        """Read more text (at least as much as is unread: parsing a long value again
        after each read stays linear overall); False at the end of the document."""
        if self.eof:
            return False
        if self.pos > _KEEP:
            cut = self.buf[:self.pos]
            n = cut.count("\n")
            if n:
                self._line += n
                self._line_start = self._dropped + cut.rindex("\n") + 1
            self._dropped += self.pos
            self.buf, self.pos = self.buf[self.pos:], 0
        chunk = self._read(max(_CHUNK, len(self.buf) - self.pos))
        if isinstance(chunk, str):
            text = chunk
        else:
            try:
                text = self._utf8.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                raise InvalidDocumentError("the document is not UTF-8 text",
                                           f"byte {self._bytes + e.start}") from None
            self._bytes += len(chunk)
        if not chunk:
            self.eof = True
        self.buf += text
        return bool(chunk)

    def where(self, pos: int) -> str:
        """``line L, column C`` of ``buf[pos]``."""
        line = self._line + self.buf.count("\n", 0, pos)
        nl = self.buf.rfind("\n", 0, pos)
        col = pos - nl if nl >= 0 else self._dropped + pos - self._line_start + 1
        return f"line {line}, column {col}"

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end)."""
        while True:
            buf, n = self.buf, len(self.buf)
            while self.pos < n and buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < n:
                return buf[self.pos]
            if not self.grow():  # (which may have cut buf: nothing here is reused)
                return ""

    def take(self, ch: str) -> None:
        if self.peek() != ch:
            found = repr(self.buf[self.pos]) if self.pos < len(self.buf) else "the end"
            raise InvalidDocumentError(f"not valid JSON (expected {ch!r}, found {found})",
                                       self.where(self.pos))
        self.pos += 1

    def value(self) -> Any:
        """The next JSON value, parsed whole.

        The text up to the next line feed is read first: in the canonical layout
        (EXPORT.md §2) a node or commit is one line, so it is parsed once. Else a
        value cut off by the end of the text read is parsed again after reading
        as much again (linear overall)."""
        self.peek()
        seen = 0  # text after pos already searched for a line feed
        while self.buf.find("\n", self.pos + seen) < 0:
            seen = len(self.buf) - self.pos
            if not self.grow():
                break
        while True:
            try:
                v, end = self.dec.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.grow():
                    continue
                raise InvalidDocumentError(f"not valid JSON ({e.msg})",
                                           self.where(e.pos)) from None
            except RecursionError:
                raise InvalidDocumentError(
                    f"JSON nests deeper than any export does (over {2 * MAX_DEPTH + 8} arrays "
                    "and objects)", self.where(self.pos)) from None
            if end == len(self.buf) and self.grow():
                continue  # a number at the end of the text read may go on
            self.pos = end
            return v


class LazyArray:
    """A JSON array read one element per step of iteration (once)."""

    lazy_array = True

    def __init__(self, src: Source) -> None:
        src.take("[")
        self.src = src
        self.done = False
        self._first = True
        self._read: list[Any] | None = None  # elements read ahead, when skipped over
        self._used = False

    def _next(self) -> Any:
        src = self.src
        if src.peek() == "]":
            src.pos += 1
            self.done = True
            return _MISSING
        if not self._first:
            src.take(",")
        self._first = False
        return src.value()

    def __iter__(self) -> Iterator[Any]:
        if self._used:
            raise AssertionError("a streamed array is read once")
        self._used = True
        if self._read is not None:
            yield from self._read
        while not self.done:
            v = self._next()
            if v is not _MISSING:
                yield v

    def skip(self) -> None:
        """Read to the end; kept for a later iteration unless one began already."""
        rest: list[Any] = []
        while not self.done:
            v = self._next()
            if v is not _MISSING:
                rest.append(v)
        if not self._used:
            self._read = rest


class LazyObject:
    """A JSON object whose members are parsed as they are asked for (see the module
    docstring). ``expect`` sets the keys allowed, refused as they are met."""

    lazy_object = True

    def __init__(self, src: Source, where: str) -> None:
        src.take("{")
        self.src = src
        self.where = where
        self.items: dict[str, Any] = {}
        self.done = False
        self._first = True
        self._pending: LazyArray | LazyObject | None = None
        self._allowed: tuple[str, ...] | None = None

    def expect(self, keys: tuple[str, ...], optional: tuple[str, ...]) -> None:
        self._allowed = keys + optional
        for k in self.items:
            self._check(k)

    def _check(self, key: str) -> None:
        if self._allowed is not None and key not in self._allowed:
            raise refuse(pointer(self.where, key), f"unknown key {key!r} (allowed: "
                         f"{', '.join(self._allowed)})")

    def _next(self) -> bool:
        """Parse one more member; False at the end of the object."""
        if self.done:
            return False
        if self._pending is not None:
            self._pending.skip()
            self._pending = None
        src = self.src
        if src.peek() == "}":
            src.pos += 1
            self.done = True
            return False
        if not self._first:
            src.take(",")
        self._first = False
        at = src.pos
        key = src.value()
        if type(key) is not str:
            raise InvalidDocumentError("not valid JSON (expected a key string)", src.where(at))
        w = pointer(self.where, key)
        if key in self.items:
            raise refuse(w, f"the key {key!r} appears twice in one object")
        self._check(key)
        src.take(":")
        nxt = src.peek()
        v: Any
        if key in LAZY_ARRAYS and nxt == "[":
            v = self._pending = LazyArray(src)
        elif key in LAZY_OBJECTS and nxt == "{":
            v = self._pending = LazyObject(src, w)
        else:
            v = src.value()
        self.items[key] = v
        return True

    def get(self, key: str, default: Any = None) -> Any:
        while key not in self.items and self._next():
            pass
        return self.items.get(key, default)

    def __getitem__(self, key: str) -> Any:
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise refuse(self.where, f"the object has no {key!r} key")
        return v

    def __contains__(self, key: str) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def skip(self) -> None:
        """Read to the end of the object."""
        while self._next():
            pass


def load_stream(read: Callable[[int], bytes | str]) -> Any:
    """The document read through ``read``: a LazyObject when it is an object, else the
    value itself (which no schema accepts). Raises InvalidDocumentError."""
    src = Source(read)
    if src.peek() == "{":
        return LazyObject(src, "")
    v = src.value()
    end_of(src)
    return v


def finish(doc: Any) -> None:
    """Read what is left of a LazyObject document, checking it (unknown keys, JSON
    syntax) and that nothing follows it."""
    if isinstance(doc, LazyObject):
        doc.skip()
        end_of(doc.src)


def end_of(src: Source) -> None:
    if src.peek() != "":
        raise InvalidDocumentError("not valid JSON (extra data after the document)",
                                   src.where(src.pos))
