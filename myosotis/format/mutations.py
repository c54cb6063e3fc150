"""Mutations (FORMAT.md §6): one class per mutation type, holding all of it.

Each class is an immutable tuple of its operands (``Set(node, field, value)``)
and carries, in one place, what the rest of Myosotis needs of that type:

- ``NAME``, its name for people (``myo status`` prints it), and ``OP``, its opcode;
- ``put(out)``, its encoding (raises InvalidValueError for anything the
  decoder would refuse: the limits of §11), and ``_get``, its decoder,
  registered by opcode for :func:`get_mutation` (raises DecodeError);
- ``apply(state)``, the rules R50–R53 and the edit, against any
  :class:`GraphTarget` (the engine's states implement that protocol: this
  module imports nothing of the engine);
- ``describe(r)`` and ``to_json(value)``, its forms for people and for JSON.

``path`` is a tuple of steps from a field's value to the container an edit
applies to: an ``int`` steps into a list, a ``str`` into a map. The parts the
types share (the protocols, operand codecs, rule checks) are in
format/mutation_parts.py. No I/O here.

The classes are NamedTuples: ``Set(1, "goal", "x")``, ``m.node``,
``m._replace(value=...)``. A NamedTuple body holds only fields and methods, so
``NAME`` and ``OP`` are written as :class:`_classvar` methods; they read as
class variables, ``Set.NAME == m.NAME == "set"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from myosotis.errors import (
    InvalidOperationError,
    InvalidValueError,
)
from myosotis.format.constants import (
    MAX_FIELD_NAME,
    MAX_ITEMS,
    MAX_NODE_ID,
    MAX_TYPE_NAME,
    OP_CREATE,
    OP_DELETE,
    OP_LIST_INSERT,
    OP_LIST_REMOVE,
    OP_LIST_REPLACE,
    OP_MAP_DELETE,
    OP_MAP_SET,
    OP_SET,
    OP_UNDELETE,
    OP_UNSET,
)
from myosotis.format.display import short_repr
from myosotis.format.mutation_parts import (
    GraphTarget,
    Path,
    Renderer,
    check_pos,
    check_refs,
    classvar,
    container,
    edited,
    get_edit_head,
    get_field,
    live_node,
    put_edit_head,
    put_field,
    put_head,
    put_pos,
    refuse,
    tombstoned_node,
    writable,
)
from myosotis.format.values import (
    DecodeError,
    Ref,
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

# Decoders build the hottest types (Set, Create) without their Python-level
# __new__: the same tuple, at about half the cost.
_new = tuple.__new__

# --------------------------------------------------------------------------
# the mutation types


class Create(NamedTuple):
    """CREATE: a new node ``node`` (which must be the state's next id) of ``type``."""

    node: int
    type: str
    fields: dict[str, Any]

    @classvar
    def NAME(cls) -> str:
        return "create"

    @classvar
    def OP(cls) -> int:
        return OP_CREATE

    def put(self, out: bytearray) -> None:
        put_head(out, OP_CREATE, self.node)
        if not self.type:
            raise InvalidValueError("node type must be a non-empty string")
        if type(self.type) is str:  # a few types, many nodes: memoised as keys are
            put_key(out, self.type, "node type", MAX_TYPE_NAME)
        else:
            put_str(out, self.type, "node type", MAX_TYPE_NAME)
        fields = self.fields
        if len(fields) > MAX_ITEMS:
            raise InvalidValueError(f"a node of {len(fields)} fields; the limit is {MAX_ITEMS}")
        keys = sorted_keys(fields, "field name")
        put_uvarint(out, len(keys))
        for name in keys:
            put_field(out, name)
            put_value(out, fields[name], 0)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Create, int]:
        type_name, p = get_str(buf, pos, end, MAX_TYPE_NAME)
        if not type_name:
            raise DecodeError("empty node type (§8.1)", pos)
        type_name = sys.intern(type_name)  # a few types, many nodes
        fields, p = get_map_body(buf, p, end, 0, MAX_FIELD_NAME)
        if "" in fields:
            raise DecodeError("empty field name (§5)", pos)
        return _new(Create, (node, type_name, fields)), p

    def apply(self, state: GraphTarget) -> None:
        nxt = state.next_node_id
        if self.node != nxt:
            raise InvalidOperationError(
                f"create of node {self.node} but the next id is {nxt} (§6 CREATE)")
        check_refs(self.fields, nxt + 1)  # R51: a node may refer to itself
        state.add(self.node, self.type, self.fields)

    def describe(self, r: Renderer) -> str:
        fields = " ".join(f"{r.name(k)}={r.value(v)}" for k, v in sorted(self.fields.items()))
        return f"create {self.node} {r.name(self.type)}" + (f" {fields}" if fields else "")

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "type": self.type,
                "fields": {k: value(v) for k, v in self.fields.items()}}


class Set(NamedTuple):
    """SET: set ``field`` (create or replace) to ``value``. The most frequent
    mutation: its encoder writes small node ids inline."""

    node: int
    field: str
    value: Any

    @classvar
    def NAME(cls) -> str:
        return "set"

    @classvar
    def OP(cls) -> int:
        return OP_SET

    def put(self, out: bytearray) -> None:
        node = self.node
        if type(node) is not int or not 0 < node <= MAX_NODE_ID:
            raise InvalidValueError(f"node id {short_repr(node)} is out of range (§11)")
        out.append(OP_SET)
        if node < 0x4000:  # one or two uvarint bytes: most ids, inlined
            if node < 0x80:
                out.append(node)
            else:
                out.append((node & 0x7F) | 0x80)
                out.append(node >> 7)
        else:
            put_uvarint(out, node)
        put_field(out, self.field)
        put_value(out, self.value)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Set, int]:
        field, p = get_str(buf, pos, end, MAX_FIELD_NAME)  # get_field, inlined
        if not field:
            raise DecodeError("empty field name (§5)", pos)
        value, p = get_value(buf, p, end)
        return _new(Set, (node, field, value)), p

    def apply(self, state: GraphTarget) -> None:
        v = self.value
        if type(v) in (Ref, list, dict):
            check_refs(v, state.next_node_id)
        if not state.set_field(self.node, self.field, v):
            refuse(state, self.node)

    def describe(self, r: Renderer) -> str:
        return f"set {r.place(self.node, self.field, ())} = {r.value(self.value)}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "value": value(self.value)}


class Unset(NamedTuple):
    """UNSET: remove ``field``, which must exist."""

    node: int
    field: str

    @classvar
    def NAME(cls) -> str:
        return "unset"

    @classvar
    def OP(cls) -> int:
        return OP_UNSET

    def put(self, out: bytearray) -> None:
        put_head(out, OP_UNSET, self.node)
        put_field(out, self.field)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Unset, int]:
        field, p = get_field(buf, pos, end)
        return Unset(node, field), p

    def apply(self, state: GraphTarget) -> None:
        n = live_node(state, self.node)
        if self.field not in n.fields:
            raise InvalidOperationError(
                f"node {self.node} has no field {short_repr(self.field)} to delete")
        del writable(state, self.node).fields[self.field]

    def describe(self, r: Renderer) -> str:
        return f"unset {r.place(self.node, self.field, ())}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field}


class Delete(NamedTuple):
    """DELETE: set the node's tombstone; it must not be set already."""

    node: int

    @classvar
    def NAME(cls) -> str:
        return "delete"

    @classvar
    def OP(cls) -> int:
        return OP_DELETE

    def put(self, out: bytearray) -> None:
        put_head(out, OP_DELETE, self.node)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Delete, int]:
        return Delete(node), pos

    def apply(self, state: GraphTarget) -> None:
        live_node(state, self.node)
        writable(state, self.node).deleted = True

    def describe(self, r: Renderer) -> str:
        return f"delete {self.node}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node}


class Undelete(NamedTuple):
    """UNDELETE (format version 3): clear the tombstone of a node that has one. Its
    fields stay as they were when it was deleted."""

    node: int

    @classvar
    def NAME(cls) -> str:
        return "undelete"

    @classvar
    def OP(cls) -> int:
        return OP_UNDELETE

    def put(self, out: bytearray) -> None:
        put_head(out, OP_UNDELETE, self.node)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Undelete, int]:
        return Undelete(node), pos

    def apply(self, state: GraphTarget) -> None:
        tombstoned_node(state, self.node)
        writable(state, self.node).deleted = False

    def describe(self, r: Renderer) -> str:
        return f"undelete {self.node}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node}


class ListInsert(NamedTuple):
    """LIST_INSERT: insert ``value`` before index ``pos`` (``pos == len`` appends)."""

    node: int
    field: str
    path: Path
    pos: int
    value: Any

    @classvar
    def NAME(cls) -> str:
        return "list-insert"

    @classvar
    def OP(cls) -> int:
        return OP_LIST_INSERT

    def put(self, out: bytearray) -> None:
        put_edit_head(out, OP_LIST_INSERT, self.node, self.field, self.path)
        put_pos(out, self.pos)
        # the element sits inside len(path) + 1 containers (R41, R53)
        put_value(out, self.value, len(self.path) + 1)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[ListInsert, int]:
        field, path, p = get_edit_head(buf, pos, end)
        index, p = get_uvarint(buf, p, end)
        value, p = get_value(buf, p, end, len(path) + 1)
        return ListInsert(node, field, path, index, value), p

    def apply(self, state: GraphTarget) -> None:
        target = container(state, self.node, self.field, self.path, list, "list")
        check_pos(self.pos, len(target), insert=True)
        if type(self.value) in (Ref, list, dict):
            check_refs(self.value, state.next_node_id)
        edited(state, self.node, self.field, self.path).insert(self.pos, self.value)

    def describe(self, r: Renderer) -> str:
        return (f"list-insert {r.place(self.node, self.field, self.path)} at {self.pos}: "
                f"{r.value(self.value)}")

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "path": list(self.path), "index": self.pos, "value": value(self.value)}


class ListRemove(NamedTuple):
    """LIST_REMOVE: remove the element at index ``pos``."""

    node: int
    field: str
    path: Path
    pos: int

    @classvar
    def NAME(cls) -> str:
        return "list-remove"

    @classvar
    def OP(cls) -> int:
        return OP_LIST_REMOVE

    def put(self, out: bytearray) -> None:
        put_edit_head(out, OP_LIST_REMOVE, self.node, self.field, self.path)
        put_pos(out, self.pos)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[ListRemove, int]:
        field, path, p = get_edit_head(buf, pos, end)
        index, p = get_uvarint(buf, p, end)
        return ListRemove(node, field, path, index), p

    def apply(self, state: GraphTarget) -> None:
        target = container(state, self.node, self.field, self.path, list, "list")
        check_pos(self.pos, len(target))
        del edited(state, self.node, self.field, self.path)[self.pos]

    def describe(self, r: Renderer) -> str:
        return f"list-remove {r.place(self.node, self.field, self.path)} at {self.pos}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "path": list(self.path), "index": self.pos}


class ListReplace(NamedTuple):
    """LIST_REPLACE: replace the element at index ``pos`` by ``value``."""

    node: int
    field: str
    path: Path
    pos: int
    value: Any

    @classvar
    def NAME(cls) -> str:
        return "list-set"

    @classvar
    def OP(cls) -> int:
        return OP_LIST_REPLACE

    def put(self, out: bytearray) -> None:
        put_edit_head(out, OP_LIST_REPLACE, self.node, self.field, self.path)
        put_pos(out, self.pos)
        put_value(out, self.value, len(self.path) + 1)  # inside len(path) + 1 containers

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[ListReplace, int]:
        field, path, p = get_edit_head(buf, pos, end)
        index, p = get_uvarint(buf, p, end)
        value, p = get_value(buf, p, end, len(path) + 1)
        return ListReplace(node, field, path, index, value), p

    def apply(self, state: GraphTarget) -> None:
        target = container(state, self.node, self.field, self.path, list, "list")
        check_pos(self.pos, len(target))
        if type(self.value) in (Ref, list, dict):
            check_refs(self.value, state.next_node_id)
        edited(state, self.node, self.field, self.path)[self.pos] = self.value

    def describe(self, r: Renderer) -> str:
        return (f"list-set {r.place(self.node, self.field, self.path)} at {self.pos} = "
                f"{r.value(self.value)}")

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "path": list(self.path), "index": self.pos, "value": value(self.value)}


class MapSet(NamedTuple):
    """MAP_SET: set ``key`` of the map to ``value``."""

    node: int
    field: str
    path: Path
    key: str
    value: Any

    @classvar
    def NAME(cls) -> str:
        return "map-set"

    @classvar
    def OP(cls) -> int:
        return OP_MAP_SET

    def put(self, out: bytearray) -> None:
        put_edit_head(out, OP_MAP_SET, self.node, self.field, self.path)
        put_str(out, self.key, "map key")
        put_value(out, self.value, len(self.path) + 1)  # inside len(path) + 1 containers

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[MapSet, int]:
        field, path, p = get_edit_head(buf, pos, end)
        key, p = get_str(buf, p, end)
        value, p = get_value(buf, p, end, len(path) + 1)
        return MapSet(node, field, path, key, value), p

    def apply(self, state: GraphTarget) -> None:
        container(state, self.node, self.field, self.path, dict, "map")
        if type(self.value) in (Ref, list, dict):
            check_refs(self.value, state.next_node_id)
        edited(state, self.node, self.field, self.path)[self.key] = self.value

    def describe(self, r: Renderer) -> str:
        return (f"map-set {r.place(self.node, self.field, self.path)} [{r.value(self.key)}] = "
                f"{r.value(self.value)}")

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "path": list(self.path), "key": self.key, "value": value(self.value)}


class MapDelete(NamedTuple):
    """MAP_DELETE: remove ``key`` from the map; it must exist."""

    node: int
    field: str
    path: Path
    key: str

    @classvar
    def NAME(cls) -> str:
        return "map-delete"

    @classvar
    def OP(cls) -> int:
        return OP_MAP_DELETE

    def put(self, out: bytearray) -> None:
        put_edit_head(out, OP_MAP_DELETE, self.node, self.field, self.path)
        put_str(out, self.key, "map key")

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[MapDelete, int]:
        field, path, p = get_edit_head(buf, pos, end)
        key, p = get_str(buf, p, end)
        return MapDelete(node, field, path, key), p

    def apply(self, state: GraphTarget) -> None:
        target = container(state, self.node, self.field, self.path, dict, "map")
        if self.key not in target:
            raise InvalidOperationError(f"map has no key {short_repr(self.key)} to delete")
        del edited(state, self.node, self.field, self.path)[self.key]

    def describe(self, r: Renderer) -> str:
        return f"map-delete {r.place(self.node, self.field, self.path)} [{r.value(self.key)}]"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "path": list(self.path), "key": self.key}


Mutation = (
    Create | Set | Unset | Delete | ListInsert | ListRemove | ListReplace | MapSet | MapDelete
    | Undelete
)

MUTATION_TYPES: tuple[type[Mutation], ...] = (
    Create, Set, Unset, Delete, ListInsert, ListRemove, ListReplace, MapSet, MapDelete, Undelete)

# The mutation types a file needs format version 3 for (§12); the others are version 1.
VERSION_3_TYPES: tuple[type[Mutation], ...] = (Undelete,)

# The decoder of each opcode (None: an invalid opcode, §6); a list, indexed by the
# opcode byte, is the cheapest lookup.
_DECODERS: list[Callable[[Any, int, int, int], tuple[Mutation, int]] | None] = [None] * 256
for _t in MUTATION_TYPES:
    _DECODERS[_t.OP] = _t._get
del _t


# --------------------------------------------------------------------------
# entry points


def put_mutation(out: bytearray, m: Mutation) -> None:
    """Append the encoding of ``m`` (§6); raises InvalidValueError for anything the
    decoder would refuse (limits of §11)."""
    m.put(out)


def get_mutation(buf: Any, pos: int, end: int) -> tuple[Mutation, int]:
    """Decode one mutation at ``pos``; return ``(mutation, next_pos)``. Raises
    DecodeError."""
    if pos >= end:
        raise DecodeError("mutation runs past the end of the record", pos)
    op: int = buf[pos]
    # The node id: ids below 2^14 (one or two uvarint bytes, canonical) decoded
    # inline, as Set.put writes them; anything else, errors included, by get_uvarint.
    p = pos + 1
    b = buf[p] if p < end else 0
    if 0 < b < 0x80:
        node, p = b, p + 1
    elif b >= 0x80 and p + 1 < end and 0 < buf[p + 1] < 0x80:
        node, p = (b & 0x7F) | (buf[p + 1] << 7), p + 2
    else:
        node, p = get_uvarint(buf, p, end)
    if not 1 <= node <= MAX_NODE_ID:
        raise DecodeError(f"node id {node} is out of range (§11)", pos + 1)
    decode = _DECODERS[op]
    if decode is None:
        raise DecodeError(f"invalid mutation opcode 0x{op:02x} (§6)", pos)
    return decode(buf, p, end, node)
