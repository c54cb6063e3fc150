"""The parts every mutation type of format/mutations.py is built from.

- the protocols of what a mutation is applied to (:class:`GraphTarget`, the
  engine's states implement it) and how it is shown (:class:`Renderer`);
- the encoding and decoding of the operands mutations share: the node id,
  the field name, the path and a list position (FORMAT.md §6);
- the checks of the rules R50–R53 that several types make.

Adding a mutation type uses these; it does not change them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from myosotis.errors import (
    DeletedNodeError,
    InvalidOperationError,
    InvalidValueError,
    NodeNotFoundError,
)
from myosotis.format.constants import MAX_FIELD_NAME, MAX_NODE_ID, MAX_PATH, PATH_INDEX, PATH_KEY
from myosotis.format.display import short_repr
from myosotis.format.values import (
    DecodeError,
    Ref,
    cached_key,
    get_str,
    get_uvarint,
    put_key,
    put_str,
    put_uvarint,
)

Path = tuple[int | str, ...]

U64_LIMIT = 1 << 64  # a uvarint holds less (R2); the graph rules refuse big indices later

_T = TypeVar("_T")


class classvar(Generic[_T]):
    """A class variable declared in a NamedTuple body, where ``NAME: ClassVar[str] =
    "set"`` is not allowed (it would be a field): ``@classvar def NAME(cls) -> str:
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

    def writable_container(self, node_id: int, field: str, path: Path) -> Any:
        """The list or map at ``path`` inside ``field`` of the live node ``node_id``
        (R52 already checked), which the caller may edit in place."""
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


def put_head(out: bytearray, op: int, node: int) -> None:
    """The opcode and node id of every mutation."""
    if type(node) is not int or not 0 < node <= MAX_NODE_ID:
        raise InvalidValueError(f"node id {short_repr(node)} is out of range (§11)")
    out.append(op)
    put_uvarint(out, node)


def put_field(out: bytearray, name: str) -> None:
    enc = cached_key(name) if name else None  # the frequent case: a name seen before
    if enc is not None:
        out += enc
        return
    if not name:
        raise InvalidValueError("field names must be non-empty")
    put_key(out, name, "field name", MAX_FIELD_NAME)


def put_path(out: bytearray, path: Path) -> None:
    if len(path) > MAX_PATH:
        raise InvalidValueError(f"path has {len(path)} steps; the limit is {MAX_PATH}")
    put_uvarint(out, len(path))
    for step in path:
        if type(step) is int:
            if not 0 <= step < U64_LIMIT:
                raise InvalidValueError(
                    f"list index {short_repr(step)} in a path is out of range (§11)")
            out.append(PATH_INDEX)
            put_uvarint(out, step)
        else:
            out.append(PATH_KEY)
            put_str(out, str(step), "map key")


def put_edit_head(out: bytearray, op: int, node: int, field: str, path: Path) -> None:
    """Opcode, node id, field and path of a list or map edit."""
    put_head(out, op, node)
    put_field(out, field)
    put_path(out, path)


def put_pos(out: bytearray, pos: int) -> None:
    if type(pos) is not int or not 0 <= pos < U64_LIMIT:
        raise InvalidValueError(f"list index {short_repr(pos)} is out of range (§11)")
    put_uvarint(out, pos)


def get_field(buf: Any, pos: int, end: int) -> tuple[str, int]:
    name, p = get_str(buf, pos, end, MAX_FIELD_NAME)
    if not name:
        raise DecodeError("empty field name (§5)", pos)
    return name, p


def get_path(buf: Any, pos: int, end: int) -> tuple[Path, int]:
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


def get_edit_head(buf: Any, pos: int, end: int) -> tuple[str, Path, int]:
    """Field and path of a list or map edit."""
    field, p = get_field(buf, pos, end)
    path, p = get_path(buf, p, end)
    return field, path, p


# --------------------------------------------------------------------------
# shared pieces of the rules (R50–R53)


def check_refs(v: Any, next_node_id: int) -> None:
    """R51: every reference inside ``v`` names an existing node."""
    t = type(v)
    if t is Ref:
        if not 1 <= v.id < next_node_id:
            raise NodeNotFoundError(f"reference to node {v.id}, which does not exist")
    elif t is list:
        for x in v:
            if type(x) in (Ref, list, dict):
                check_refs(x, next_node_id)
    elif t is dict:
        for x in v.values():
            if type(x) in (Ref, list, dict):
                check_refs(x, next_node_id)


def live_node(state: GraphTarget, node_id: int) -> GraphNode:
    """R50: the node exists and is not tombstoned."""
    n = state.get(node_id)
    if n is None:
        raise NodeNotFoundError(f"node {node_id} does not exist")
    if n.deleted:
        raise DeletedNodeError(f"node {node_id} is deleted; a deleted node cannot change (R50)")
    return n


def tombstoned_node(state: GraphTarget, node_id: int) -> GraphNode:
    """R50 for UNDELETE: the node exists and is tombstoned."""
    n = state.get(node_id)
    if n is None:
        raise NodeNotFoundError(f"node {node_id} does not exist")
    if not n.deleted:
        raise InvalidOperationError(
            f"node {node_id} is not deleted; only a deleted node can be undeleted (R50)")
    return n


def refuse(state: GraphTarget, node_id: int) -> NoReturn:
    """Raise the R50 error for a node a state refused to write."""
    live_node(state, node_id)
    raise AssertionError(f"node {node_id} is live, yet the state refused to write it")


def writable(state: GraphTarget, node_id: int) -> GraphNode:
    """The node to change, once :func:`live_node` found it."""
    n = state.writable(node_id)
    if n is None:
        raise AssertionError(f"node {node_id} vanished while a mutation was applied")
    return n


def walk(node: GraphNode, node_id: int, field: str, path: Path) -> Any:
    """The container ``path`` names inside ``field`` (R52); raises InvalidOperationError."""
    if field not in node.fields:
        raise InvalidOperationError(f"node {node_id} has no field {short_repr(field)}")
    cur = node.fields[field]
    for depth, step in enumerate(path):
        t = type(cur)
        if t is list and type(step) is int:
            if not 0 <= step < len(cur):
                raise InvalidOperationError(
                    f"index {step} out of range at step {depth} of the path into "
                    f"{short_repr(field)} "
                    f"(length {len(cur)})")
            cur = cur[step]
        elif t is dict and type(step) is str:
            if step not in cur:
                raise InvalidOperationError(
                    f"key {short_repr(step)} missing at step {depth} of the path into "
                    f"{short_repr(field)}")
            cur = cur[step]
        else:
            raise InvalidOperationError(
                f"path step {short_repr(step)} does not fit a {type(cur).__name__} in field "
                f"{short_repr(field)}")
    return cur


def container(state: GraphTarget, node_id: int, field: str, path: Path, kind: type,
               kind_name: str) -> Any:
    """The container a list (``kind`` list) or map (dict) edit names, checked
    against R50 and R52 without changing anything."""
    target = walk(live_node(state, node_id), node_id, field, path)
    if type(target) is not kind:
        raise InvalidOperationError(
            f"field {short_repr(field)} of node {node_id} at path {list(path)} is a "
            f"{type(target).__name__}, not a {kind_name}")
    return target


def check_pos(pos: int, size: int, insert: bool = False) -> None:
    """R52 for list indices: ``0 <= pos < size``, or ``<= size`` for an insert."""
    if not (0 <= pos <= size if insert else 0 <= pos < size):
        raise InvalidOperationError(f"list index {pos} out of range for a list of length {size}")


def edited(state: GraphTarget, node_id: int, field: str, path: Path) -> Any:
    """The container to edit, once checked (:func:`container`): the state's own."""
    return state.writable_container(node_id, field, path)


