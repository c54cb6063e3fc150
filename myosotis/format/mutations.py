"""Mutation encoding (FORMAT.md §6). Each mutation is a small immutable tuple.

``path`` is a tuple of steps from a field's value to the container an edit
applies to: an ``int`` steps into a list, a ``str`` into a map. Encoders
raise InvalidValueError; ``get_mutation`` raises DecodeError. No I/O here,
and no graph rules: applying a mutation (R50–R53) is the engine's job.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from myosotis.errors import InvalidValueError
from myosotis.format.constants import (
    MAX_FIELD_NAME,
    MAX_ITEMS,
    MAX_NODE_ID,
    MAX_PATH,
    MAX_TYPE_NAME,
    OP_CREATE,
    OP_DELETE,
    OP_LIST_INSERT,
    OP_LIST_REMOVE,
    OP_LIST_REPLACE,
    OP_MAP_DELETE,
    OP_MAP_SET,
    OP_SET,
    OP_UNSET,
    PATH_INDEX,
    PATH_KEY,
)
from myosotis.format.values import (
    DecodeError,
    get_map_body,
    get_str,
    get_uvarint,
    get_value,
    put_key,
    put_str,
    put_uvarint,
    put_value,
    sorted_keys,
)

Path = tuple[int | str, ...]


class Create(NamedTuple):
    node: int
    type: str
    fields: dict[str, Any]


class Set(NamedTuple):
    node: int
    field: str
    value: Any


class Unset(NamedTuple):
    node: int
    field: str


class Delete(NamedTuple):
    node: int


class ListInsert(NamedTuple):
    node: int
    field: str
    path: Path
    pos: int
    value: Any


class ListRemove(NamedTuple):
    node: int
    field: str
    path: Path
    pos: int


class ListReplace(NamedTuple):
    node: int
    field: str
    path: Path
    pos: int
    value: Any


class MapSet(NamedTuple):
    node: int
    field: str
    path: Path
    key: str
    value: Any


class MapDelete(NamedTuple):
    node: int
    field: str
    path: Path
    key: str


Mutation = (
    Create | Set | Unset | Delete | ListInsert | ListRemove | ListReplace | MapSet | MapDelete
)


def _put_field(out: bytearray, name: str) -> None:
    if not name:
        raise InvalidValueError("field names must be non-empty")
    put_key(out, name, "field name", MAX_FIELD_NAME)


def _put_path(out: bytearray, path: Path) -> None:
    if len(path) > MAX_PATH:
        raise InvalidValueError(f"path has {len(path)} steps; the limit is {MAX_PATH}")
    put_uvarint(out, len(path))
    for step in path:
        if type(step) is int:
            if not 0 <= step < _U64_LIMIT:
                raise InvalidValueError(f"list index {step} in a path is out of range (§11)")
            out.append(PATH_INDEX)
            put_uvarint(out, step)
        else:
            out.append(PATH_KEY)
            put_str(out, str(step), "map key")


_U64_LIMIT = 1 << 64  # a uvarint holds less (R2); the graph rules refuse big indices later


def put_mutation(out: bytearray, m: Mutation) -> None:
    """Append the encoding of ``m`` (§6); raises InvalidValueError for anything the
    decoder would refuse (limits of §11)."""
    t = type(m)
    node = m.node
    if type(node) is not int or not 0 < node <= MAX_NODE_ID:
        raise InvalidValueError(f"node id {node!r} is out of range (§11)")
    if t is Set:
        out.append(OP_SET)
        if node < 0x4000:  # one or two uvarint bytes: most ids, inlined
            if node < 0x80:
                out.append(node)
            else:
                out.append((node & 0x7F) | 0x80)
                out.append(node >> 7)
        else:
            put_uvarint(out, node)
        _put_field(out, m.field)  # type: ignore[union-attr]
        put_value(out, m.value)  # type: ignore[union-attr]
    elif t is Create:
        out.append(OP_CREATE)
        put_uvarint(out, m.node)
        if not m.type:  # type: ignore[union-attr]
            raise InvalidValueError("node type must be a non-empty string")
        put_str(out, m.type, "node type", MAX_TYPE_NAME)  # type: ignore[union-attr]
        fields = m.fields  # type: ignore[union-attr]
        if len(fields) > MAX_ITEMS:
            raise InvalidValueError(f"a node of {len(fields)} fields; the limit is {MAX_ITEMS}")
        keys = sorted_keys(fields, "field name")
        put_uvarint(out, len(keys))
        for name in keys:
            _put_field(out, name)
            put_value(out, fields[name], 0)
    elif t is Unset:
        out.append(OP_UNSET)
        put_uvarint(out, m.node)
        _put_field(out, m.field)  # type: ignore[union-attr]
    elif t is Delete:
        out.append(OP_DELETE)
        put_uvarint(out, m.node)
    else:
        op = _PATH_OPS[t]
        out.append(op)
        put_uvarint(out, m.node)
        _put_field(out, m.field)  # type: ignore[union-attr]
        _put_path(out, m.path)  # type: ignore[union-attr]
        if op in (OP_MAP_SET, OP_MAP_DELETE):
            put_str(out, m.key, "map key")  # type: ignore[union-attr]
        else:
            pos = m.pos  # type: ignore[union-attr]
            if type(pos) is not int or not 0 <= pos < _U64_LIMIT:
                raise InvalidValueError(f"list index {pos!r} is out of range (§11)")
            put_uvarint(out, pos)
        if op in (OP_LIST_INSERT, OP_LIST_REPLACE, OP_MAP_SET):
            # the element sits inside len(path) + 1 containers (R41, R53)
            put_value(out, m.value, len(m.path) + 1)  # type: ignore[union-attr]


_PATH_OPS: dict[type, int] = {
    ListInsert: OP_LIST_INSERT,
    ListRemove: OP_LIST_REMOVE,
    ListReplace: OP_LIST_REPLACE,
    MapSet: OP_MAP_SET,
    MapDelete: OP_MAP_DELETE,
}


def _get_field(buf: Any, pos: int, end: int) -> tuple[str, int]:
    name, p = get_str(buf, pos, end, MAX_FIELD_NAME)
    if not name:
        raise DecodeError("empty field name (§5)", pos)
    return name, p


def _get_path(buf: Any, pos: int, end: int) -> tuple[Path, int]:
    n, p = get_uvarint(buf, pos, end)
    if n > MAX_PATH:
        raise DecodeError(f"path of {n} steps exceeds MAX_PATH (§11)", pos)
    steps: list[int | str] = []
    for _ in range(n):
        if p >= end:
            raise DecodeError("path runs past the end of the record", p)
        kind = buf[p]
        if kind == PATH_INDEX:
            i, p = get_uvarint(buf, p + 1, end)
            steps.append(i)
        elif kind == PATH_KEY:
            k, p = get_str(buf, p + 1, end)
            steps.append(k)
        else:
            raise DecodeError(f"invalid path step 0x{kind:02x} (§6)", p)
    return tuple(steps), p


def get_mutation(buf: Any, pos: int, end: int) -> tuple[Mutation, int]:
    """Decode one mutation at ``pos``; return ``(mutation, next_pos)``."""
    if pos >= end:
        raise DecodeError("mutation runs past the end of the record", pos)
    op = buf[pos]
    node, p = get_uvarint(buf, pos + 1, end)
    if not 1 <= node <= MAX_NODE_ID:
        raise DecodeError(f"node id {node} is out of range (§11)", pos + 1)
    if op == OP_SET:
        field, p = _get_field(buf, p, end)
        value, p = get_value(buf, p, end)
        return Set(node, field, value), p
    if op == OP_CREATE:
        tpos = p
        type_name, p = get_str(buf, p, end, MAX_TYPE_NAME)
        if not type_name:
            raise DecodeError("empty node type (§8.1)", tpos)
        type_name = sys.intern(type_name)  # a few types, many nodes
        fields, p = get_map_body(buf, p, end, 0, MAX_FIELD_NAME)
        if "" in fields:
            raise DecodeError("empty field name (§5)", tpos)
        return Create(node, type_name, fields), p
    if op == OP_UNSET:
        field, p = _get_field(buf, p, end)
        return Unset(node, field), p
    if op == OP_DELETE:
        return Delete(node), p
    if op < OP_LIST_INSERT or op > OP_MAP_DELETE:
        raise DecodeError(f"invalid mutation opcode 0x{op:02x} (§6)", pos)
    field, p = _get_field(buf, p, end)
    path, p = _get_path(buf, p, end)
    if op in (OP_MAP_SET, OP_MAP_DELETE):
        key, p = get_str(buf, p, end)
        if op == OP_MAP_DELETE:
            return MapDelete(node, field, path, key), p
        value, p = get_value(buf, p, end, len(path) + 1)
        return MapSet(node, field, path, key, value), p
    index, p = get_uvarint(buf, p, end)
    if op == OP_LIST_REMOVE:
        return ListRemove(node, field, path, index), p
    value, p = get_value(buf, p, end, len(path) + 1)
    if op == OP_LIST_INSERT:
        return ListInsert(node, field, path, index, value), p
    return ListReplace(node, field, path, index, value), p
