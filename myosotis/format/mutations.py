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
applies to: an ``int`` steps into a list, a ``str`` into a map. No I/O here.

The classes are NamedTuples: ``Set(1, "goal", "x")``, ``m.node``,
``m._replace(value=...)``. A NamedTuple body holds only fields and methods, so
``NAME`` and ``OP`` are written as :class:`_classvar` methods; they read as
class variables, ``Set.NAME == m.NAME == "set"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, NoReturn, Protocol, TypeVar

from myosotis.errors import (
    DeletedNodeError,
    InvalidOperationError,
    InvalidValueError,
    NodeNotFoundError,
)
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

Path = tuple[int | str, ...]

_U64_LIMIT = 1 << 64  # a uvarint holds less (R2); the graph rules refuse big indices later

_T = TypeVar("_T")


class _classvar(Generic[_T]):
    """A class variable declared in a NamedTuple body, where ``NAME: ClassVar[str] =
    "set"`` is not allowed (it would be a field): ``@_classvar def NAME(cls) -> str:
    return "set"`` makes ``Set.NAME`` and ``Set(...).NAME`` that string."""

    def __init__(self, value_of: Callable[[Any], _T]) -> None:
        self.value = value_of(None)

    def __get__(self, obj: object, owner: type | None = None) -> _T:
        return self.value


# --------------------------------------------------------------------------
# what a mutation is applied to, and how it is shown


class GraphNode(Protocol):
    """One node of a state: its type, its fields (name -> stored value) and tombstone."""

    type: str
    fields: dict[str, Any]
    deleted: bool


class GraphTarget(Protocol):
    """A graph state a mutation can be applied to (engine/graph.py: GraphState for
    replay, Overlay for staging, SingleNode for one node's history).

    Ids are dense: the nodes are exactly ``1 .. next_node_id - 1``. A state
    decides how a write reaches its nodes (in place, or copying on first write);
    the rules that decide whether a write is allowed are the mutations'.
    """

    next_node_id: int

    def get(self, node_id: int) -> GraphNode | None:
        """The node, to read only; None if it does not exist."""
        ...

    def writable(self, node_id: int) -> GraphNode | None:
        """The node, to replace or remove its field values or set its tombstone."""
        ...

    def writable_field(self, node_id: int, field: str) -> GraphNode | None:
        """The node, whose ``field`` value may also be edited in place."""
        ...

    def add(self, node_id: int, type_name: str, fields: dict[str, Any]) -> None:
        """Add node ``node_id == next_node_id`` (taking ``fields`` over); next_node_id
        becomes ``node_id + 1``."""
        ...

    def set_field(self, node_id: int, field: str, value: Any) -> bool:
        """Set ``field`` of a live node to ``value`` (taken over) and return True; return
        False and change nothing when the node is missing or tombstoned."""
        ...


class Renderer(Protocol):
    """How :meth:`describe` shows the parts of a mutation (the CLI's look)."""

    def value(self, v: Any) -> str:
        """A stored value (or a map key) for people, safe to print."""
        ...

    def name(self, s: str) -> str:
        """A type or field name, safe to print."""
        ...

    def place(self, node: int, field: str, path: Path) -> str:
        """Where an edit applies, e.g. ``1.goal`` or ``3.items[0]["k"]``."""
        ...


# --------------------------------------------------------------------------
# shared pieces of the encodings


def _put_head(out: bytearray, op: int, node: int) -> None:
    """The opcode and node id of every mutation."""
    if type(node) is not int or not 0 < node <= MAX_NODE_ID:
        raise InvalidValueError(f"node id {node!r} is out of range (§11)")
    out.append(op)
    put_uvarint(out, node)


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


def _put_edit_head(out: bytearray, op: int, node: int, field: str, path: Path) -> None:
    """Opcode, node id, field and path of a list or map edit."""
    _put_head(out, op, node)
    _put_field(out, field)
    _put_path(out, path)


def _put_pos(out: bytearray, pos: int) -> None:
    if type(pos) is not int or not 0 <= pos < _U64_LIMIT:
        raise InvalidValueError(f"list index {pos!r} is out of range (§11)")
    put_uvarint(out, pos)


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


def _get_edit_head(buf: Any, pos: int, end: int) -> tuple[str, Path, int]:
    """Field and path of a list or map edit."""
    field, p = _get_field(buf, pos, end)
    path, p = _get_path(buf, p, end)
    return field, path, p


# --------------------------------------------------------------------------
# shared pieces of the rules (R50–R53)


def _check_refs(v: Any, next_node_id: int) -> None:
    """R51: every reference inside ``v`` names an existing node."""
    t = type(v)
    if t is Ref:
        if not 1 <= v.id < next_node_id:
            raise NodeNotFoundError(f"reference to node {v.id}, which does not exist")
    elif t is list:
        for x in v:
            if type(x) in (Ref, list, dict):
                _check_refs(x, next_node_id)
    elif t is dict:
        for x in v.values():
            if type(x) in (Ref, list, dict):
                _check_refs(x, next_node_id)


def _live_node(state: GraphTarget, node_id: int) -> GraphNode:
    """R50: the node exists and is not tombstoned."""
    n = state.get(node_id)
    if n is None:
        raise NodeNotFoundError(f"node {node_id} does not exist")
    if n.deleted:
        raise DeletedNodeError(f"node {node_id} is deleted; a deleted node cannot change (R50)")
    return n


def _refuse(state: GraphTarget, node_id: int) -> NoReturn:
    """Raise the R50 error for a node a state refused to write."""
    _live_node(state, node_id)
    raise AssertionError(f"node {node_id} is live, yet the state refused to write it")


def _writable(state: GraphTarget, node_id: int, field: str | None = None) -> GraphNode:
    """The node to change, once :func:`_live_node` found it; with ``field``, that
    field's value may be edited in place."""
    n = state.writable(node_id) if field is None else state.writable_field(node_id, field)
    if n is None:
        raise AssertionError(f"node {node_id} vanished while a mutation was applied")
    return n


def _walk(node: GraphNode, node_id: int, field: str, path: Path) -> Any:
    """The container ``path`` names inside ``field`` (R52); raises InvalidOperationError."""
    if field not in node.fields:
        raise InvalidOperationError(f"node {node_id} has no field {field!r}")
    cur = node.fields[field]
    for depth, step in enumerate(path):
        t = type(cur)
        if t is list and type(step) is int:
            if not 0 <= step < len(cur):
                raise InvalidOperationError(
                    f"index {step} out of range at step {depth} of the path into {field!r} "
                    f"(length {len(cur)})")
            cur = cur[step]
        elif t is dict and type(step) is str:
            if step not in cur:
                raise InvalidOperationError(
                    f"key {step!r} missing at step {depth} of the path into {field!r}")
            cur = cur[step]
        else:
            raise InvalidOperationError(
                f"path step {step!r} does not fit a {type(cur).__name__} in field {field!r}")
    return cur


def _container(state: GraphTarget, node_id: int, field: str, path: Path, kind: type,
               kind_name: str) -> Any:
    """The container a list (``kind`` list) or map (dict) edit names, checked
    against R50 and R52 without changing anything."""
    target = _walk(_live_node(state, node_id), node_id, field, path)
    if type(target) is not kind:
        raise InvalidOperationError(
            f"field {field!r} of node {node_id} at path {list(path)} is a "
            f"{type(target).__name__}, not a {kind_name}")
    return target


def _check_pos(pos: int, size: int, insert: bool = False) -> None:
    """R52 for list indices: ``0 <= pos < size``, or ``<= size`` for an insert."""
    if not (0 <= pos <= size if insert else 0 <= pos < size):
        raise InvalidOperationError(f"list index {pos} out of range for a list of length {size}")


def _edited(state: GraphTarget, node_id: int, field: str, path: Path) -> Any:
    """The container to edit, once checked: the state's own copy of it."""
    return _walk(_writable(state, node_id, field), node_id, field, path)


# --------------------------------------------------------------------------
# the mutation types


class Create(NamedTuple):
    """CREATE: a new node ``node`` (which must be the state's next id) of ``type``."""

    node: int
    type: str
    fields: dict[str, Any]

    @_classvar
    def NAME(cls) -> str:
        return "create"

    @_classvar
    def OP(cls) -> int:
        return OP_CREATE

    def put(self, out: bytearray) -> None:
        _put_head(out, OP_CREATE, self.node)
        if not self.type:
            raise InvalidValueError("node type must be a non-empty string")
        put_str(out, self.type, "node type", MAX_TYPE_NAME)
        fields = self.fields
        if len(fields) > MAX_ITEMS:
            raise InvalidValueError(f"a node of {len(fields)} fields; the limit is {MAX_ITEMS}")
        keys = sorted_keys(fields, "field name")
        put_uvarint(out, len(keys))
        for name in keys:
            _put_field(out, name)
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
        return Create(node, type_name, fields), p

    def apply(self, state: GraphTarget) -> None:
        nxt = state.next_node_id
        if self.node != nxt:
            raise InvalidOperationError(
                f"create of node {self.node} but the next id is {nxt} (§6 CREATE)")
        _check_refs(self.fields, nxt + 1)  # R51: a node may refer to itself
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

    @_classvar
    def NAME(cls) -> str:
        return "set"

    @_classvar
    def OP(cls) -> int:
        return OP_SET

    def put(self, out: bytearray) -> None:
        node = self.node
        if type(node) is not int or not 0 < node <= MAX_NODE_ID:
            raise InvalidValueError(f"node id {node!r} is out of range (§11)")
        out.append(OP_SET)
        if node < 0x4000:  # one or two uvarint bytes: most ids, inlined
            if node < 0x80:
                out.append(node)
            else:
                out.append((node & 0x7F) | 0x80)
                out.append(node >> 7)
        else:
            put_uvarint(out, node)
        _put_field(out, self.field)
        put_value(out, self.value)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Set, int]:
        field, p = get_str(buf, pos, end, MAX_FIELD_NAME)  # _get_field, inlined
        if not field:
            raise DecodeError("empty field name (§5)", pos)
        value, p = get_value(buf, p, end)
        return Set(node, field, value), p

    def apply(self, state: GraphTarget) -> None:
        v = self.value
        if type(v) in (Ref, list, dict):
            _check_refs(v, state.next_node_id)
        if not state.set_field(self.node, self.field, v):
            _refuse(state, self.node)

    def describe(self, r: Renderer) -> str:
        return f"set {r.place(self.node, self.field, ())} = {r.value(self.value)}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "value": value(self.value)}


class Unset(NamedTuple):
    """UNSET: remove ``field``, which must exist."""

    node: int
    field: str

    @_classvar
    def NAME(cls) -> str:
        return "unset"

    @_classvar
    def OP(cls) -> int:
        return OP_UNSET

    def put(self, out: bytearray) -> None:
        _put_head(out, OP_UNSET, self.node)
        _put_field(out, self.field)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Unset, int]:
        field, p = _get_field(buf, pos, end)
        return Unset(node, field), p

    def apply(self, state: GraphTarget) -> None:
        n = _live_node(state, self.node)
        if self.field not in n.fields:
            raise InvalidOperationError(
                f"node {self.node} has no field {self.field!r} to delete")
        del _writable(state, self.node).fields[self.field]

    def describe(self, r: Renderer) -> str:
        return f"unset {r.place(self.node, self.field, ())}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field}


class Delete(NamedTuple):
    """DELETE: set the node's tombstone; it must not be set already."""

    node: int

    @_classvar
    def NAME(cls) -> str:
        return "delete"

    @_classvar
    def OP(cls) -> int:
        return OP_DELETE

    def put(self, out: bytearray) -> None:
        _put_head(out, OP_DELETE, self.node)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[Delete, int]:
        return Delete(node), pos

    def apply(self, state: GraphTarget) -> None:
        _live_node(state, self.node)
        _writable(state, self.node).deleted = True

    def describe(self, r: Renderer) -> str:
        return f"delete {self.node}"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node}


class ListInsert(NamedTuple):
    """LIST_INSERT: insert ``value`` before index ``pos`` (``pos == len`` appends)."""

    node: int
    field: str
    path: Path
    pos: int
    value: Any

    @_classvar
    def NAME(cls) -> str:
        return "list-insert"

    @_classvar
    def OP(cls) -> int:
        return OP_LIST_INSERT

    def put(self, out: bytearray) -> None:
        _put_edit_head(out, OP_LIST_INSERT, self.node, self.field, self.path)
        _put_pos(out, self.pos)
        # the element sits inside len(path) + 1 containers (R41, R53)
        put_value(out, self.value, len(self.path) + 1)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[ListInsert, int]:
        field, path, p = _get_edit_head(buf, pos, end)
        index, p = get_uvarint(buf, p, end)
        value, p = get_value(buf, p, end, len(path) + 1)
        return ListInsert(node, field, path, index, value), p

    def apply(self, state: GraphTarget) -> None:
        target = _container(state, self.node, self.field, self.path, list, "list")
        _check_pos(self.pos, len(target), insert=True)
        if type(self.value) in (Ref, list, dict):
            _check_refs(self.value, state.next_node_id)
        _edited(state, self.node, self.field, self.path).insert(self.pos, self.value)

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

    @_classvar
    def NAME(cls) -> str:
        return "list-remove"

    @_classvar
    def OP(cls) -> int:
        return OP_LIST_REMOVE

    def put(self, out: bytearray) -> None:
        _put_edit_head(out, OP_LIST_REMOVE, self.node, self.field, self.path)
        _put_pos(out, self.pos)

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[ListRemove, int]:
        field, path, p = _get_edit_head(buf, pos, end)
        index, p = get_uvarint(buf, p, end)
        return ListRemove(node, field, path, index), p

    def apply(self, state: GraphTarget) -> None:
        target = _container(state, self.node, self.field, self.path, list, "list")
        _check_pos(self.pos, len(target))
        del _edited(state, self.node, self.field, self.path)[self.pos]

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

    @_classvar
    def NAME(cls) -> str:
        return "list-set"

    @_classvar
    def OP(cls) -> int:
        return OP_LIST_REPLACE

    def put(self, out: bytearray) -> None:
        _put_edit_head(out, OP_LIST_REPLACE, self.node, self.field, self.path)
        _put_pos(out, self.pos)
        put_value(out, self.value, len(self.path) + 1)  # inside len(path) + 1 containers

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[ListReplace, int]:
        field, path, p = _get_edit_head(buf, pos, end)
        index, p = get_uvarint(buf, p, end)
        value, p = get_value(buf, p, end, len(path) + 1)
        return ListReplace(node, field, path, index, value), p

    def apply(self, state: GraphTarget) -> None:
        target = _container(state, self.node, self.field, self.path, list, "list")
        _check_pos(self.pos, len(target))
        if type(self.value) in (Ref, list, dict):
            _check_refs(self.value, state.next_node_id)
        _edited(state, self.node, self.field, self.path)[self.pos] = self.value

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

    @_classvar
    def NAME(cls) -> str:
        return "map-set"

    @_classvar
    def OP(cls) -> int:
        return OP_MAP_SET

    def put(self, out: bytearray) -> None:
        _put_edit_head(out, OP_MAP_SET, self.node, self.field, self.path)
        put_str(out, self.key, "map key")
        put_value(out, self.value, len(self.path) + 1)  # inside len(path) + 1 containers

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[MapSet, int]:
        field, path, p = _get_edit_head(buf, pos, end)
        key, p = get_str(buf, p, end)
        value, p = get_value(buf, p, end, len(path) + 1)
        return MapSet(node, field, path, key, value), p

    def apply(self, state: GraphTarget) -> None:
        _container(state, self.node, self.field, self.path, dict, "map")
        if type(self.value) in (Ref, list, dict):
            _check_refs(self.value, state.next_node_id)
        _edited(state, self.node, self.field, self.path)[self.key] = self.value

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

    @_classvar
    def NAME(cls) -> str:
        return "map-delete"

    @_classvar
    def OP(cls) -> int:
        return OP_MAP_DELETE

    def put(self, out: bytearray) -> None:
        _put_edit_head(out, OP_MAP_DELETE, self.node, self.field, self.path)
        put_str(out, self.key, "map key")

    @staticmethod
    def _get(buf: Any, pos: int, end: int, node: int) -> tuple[MapDelete, int]:
        field, path, p = _get_edit_head(buf, pos, end)
        key, p = get_str(buf, p, end)
        return MapDelete(node, field, path, key), p

    def apply(self, state: GraphTarget) -> None:
        target = _container(state, self.node, self.field, self.path, dict, "map")
        if self.key not in target:
            raise InvalidOperationError(f"map has no key {self.key!r} to delete")
        del _edited(state, self.node, self.field, self.path)[self.key]

    def describe(self, r: Renderer) -> str:
        return f"map-delete {r.place(self.node, self.field, self.path)} [{r.value(self.key)}]"

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {"op": self.NAME, "node": self.node, "field": self.field,
                "path": list(self.path), "key": self.key}


Mutation = (
    Create | Set | Unset | Delete | ListInsert | ListRemove | ListReplace | MapSet | MapDelete
)

MUTATION_TYPES: tuple[type[Mutation], ...] = (
    Create, Set, Unset, Delete, ListInsert, ListRemove, ListReplace, MapSet, MapDelete)

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
