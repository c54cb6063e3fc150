"""The one-pass decoder of a node record's fields (FORMAT.md §8.1): the record's
common shape (short keys and strings, small lists) read straight into the
values a caller wants, references made by a function it gives.

It never decides that a record is bad: any record it does not read whole and
valid (another shape, or damage) it leaves to the full decoder
(``StateImage._decode``, format/image.py), which raises the precise error.
tests/test_scan_fast.py compares the two on valid and damaged records.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from myosotis.format.constants import (
    NODE_FLAG_DELETED,
    TAG_FLOAT,
    TAG_INT,
    TAG_LIST,
    TAG_REF,
    TAG_STR,
)
from myosotis.format.values import (
    DecodeError,
    Ref,
    decoded_ref,
    first_bad_ref,
    get_uvarint,
    get_value,
    replace_refs,
)

_unpack_f64 = struct.Struct("<d").unpack_from


class _NotFast(Exception):
    """A record :func:`one_pass_fields` leaves to the full decoder."""


# a read past the end of the record (IndexError, struct.error) is one of these too
_NOT_FAST = (_NotFast, IndexError, UnicodeDecodeError, DecodeError, struct.error)
_REFS_IN = frozenset((Ref, list, dict))  # the decoded types that may hold a Ref
_utf8 = bytes.decode  # strict UTF-8 (R3)


def one_pass_fields(rec: bytes, limit: int, ref: Callable[[int], Any]) -> dict[str, Any] | None:
    """The fields of the node record ``rec`` (§8.1) as plain values, references made by
    ``ref`` (ids below ``limit``), if the record is valid and of the common shape:
    under 128 fields, keys and strings under 128 bytes, lists of under 128 elements.
    None for any other record, valid or not: the full decoder then reads it and
    raises the precise error. One pass, straight into the values returned
    (``fields()`` of a scan, and ``StateImage.record``)."""
    try:
        return _plain_map(rec, limit, ref)
    except _NOT_FAST:
        return None


def _plain_map(rec: bytes, limit: int, ref: Callable[[int], Any]) -> dict[str, Any]:
    end = len(rec)  # so a read at or past ``end`` raises IndexError
    n = rec[1]
    p = 2 + n
    if rec[0] & ~NODE_FLAG_DELETED or not 0 < n < 0x80 or p > end:
        raise _NotFast
    _utf8(rec[2:p])  # the type: checked, not needed
    n = rec[p]
    p += 1
    if n >= 0x80:
        raise _NotFast
    out: dict[str, Any] = {}
    prev = ""  # keys are never empty here: every one is above it (R40)
    for _ in range(n):
        kn = rec[p]
        q = p + 1 + kn
        if not 0 < kn < 0x80 or q > end:
            raise _NotFast
        key = _utf8(rec[p + 1:q])
        if key <= prev:
            raise _NotFast
        prev = key
        tag = rec[q]
        if tag == TAG_STR:
            kn = rec[q + 1]
            p = q + 2 + kn
            if kn >= 0x80 or p > end:
                raise _NotFast
            out[key] = _utf8(rec[q + 2:p])
        elif tag == TAG_FLOAT:
            p = q + 9
            out[key] = _unpack_f64(rec, q + 1)[0]
        elif tag == TAG_INT:
            z, p = get_uvarint(rec, q + 1, end)
            out[key] = (z >> 1) ^ -(z & 1)
        elif tag == TAG_REF:
            z, p = get_uvarint(rec, q + 1, end)
            if not 0 < z < limit:  # R72, and the range of §5
                raise _NotFast
            out[key] = ref(z)
        elif tag == TAG_LIST:
            out[key], p = _plain_list(rec, q, end, limit, ref)
        else:
            out[key], p = _plain_value(rec, q, end, 0, limit, ref)
    if p != end:
        raise _NotFast
    return out


def _plain_list(rec: bytes, q: int, end: int, limit: int,
                ref: Callable[[int], Any]) -> tuple[list[Any], int]:
    """The list whose tag is at ``q`` (a field's value: depth 0)."""
    n = rec[q + 1]
    p = q + 2
    if n >= 0x80:
        raise _NotFast
    items: list[Any] = []
    for _ in range(n):
        if rec[p] == TAG_STR:
            k = rec[p + 1]
            r = p + 2 + k
            if k >= 0x80 or r > end:
                raise _NotFast
            items.append(_utf8(rec[p + 2:r]))
            p = r
        else:
            v, p = _plain_value(rec, p, end, 1, limit, ref)
            items.append(v)
    return items, p


def _plain_value(rec: bytes, p: int, end: int, depth: int, limit: int,
                 ref: Callable[[int], Any]) -> tuple[Any, int]:
    """Any value, by the full decoder (get_value), its references checked and made."""
    v, p = get_value(rec, p, end, depth)
    t = type(v)
    if t in _REFS_IN:
        if first_bad_ref(v, limit) is not None:
            raise _NotFast
        if ref is decoded_ref:  # the stored form: get_value made them so
            pass
        elif t is Ref:
            v = ref(v.id)
        else:
            replace_refs(v, ref)
    return v, p
