"""Node handles and live list/map proxies.

A handle holds a source (a Memory or a View) and a node id, never a Python
object of the node: every access resolves the id again, so a handle stays
right after commits, discards and refreshes, and fails clearly after close.
Lists and maps read from a node come back as proxies whose in-place edits
become path-addressed mutations (FORMAT.md §6), so ``node.items.append(x)``
writes one small mutation and is never silently lost.

Every mutator is all or nothing: one that needs several mutations (``extend``,
``update``, ``clear``, ``reverse``, ``del lst[a:b]``) stages them as one batch
(``Store.stage_all``, which tries the whole batch before it stages any), so a
rejected change stages nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any, Protocol, overload

from myosotis.api.notebook import node_html
from myosotis.engine.graph import NodeState
from myosotis.errors import (
    FieldNotFoundError,
    InvalidOperationError,
    InvalidValueError,
    MissingAttributeError,
)
from myosotis.format.constants import MAX_DEPTH
from myosotis.format.display import REPR_LIMIT, clip, short_repr
from myosotis.format.mutation_parts import Path
from myosotis.format.mutations import (
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Set,
    Unset,
)
from myosotis.format.values import Ref, clone

if TYPE_CHECKING:
    from myosotis.engine.graph import GraphState, Overlay
    from myosotis.engine.segments import HistoricalState


class Source(Protocol):
    """What a handle needs from a Memory or a View."""

    def _node_state(self, node_id: int) -> NodeState: ...
    def _node_fields(self, node_id: int) -> dict[str, Any]: ...
    def _read_state(self) -> GraphState | Overlay | HistoricalState: ...
    def _stage(self, m: Mutation) -> None: ...
    def _stage_all(self, ms: list[Mutation]) -> None: ...
    def _owns(self, handle: Node) -> bool: ...


def _same_place(value: Any, src: Source, node_id: int, field: str, path: Path) -> bool:
    """True if ``value`` is a proxy of exactly this place of a live node (``x.items +=
    [...]`` assigns the extended list back to where it is: nothing to stage). On a
    deleted node the assignment is staged, and refused, as any other (R50)."""
    t = type(value)
    return (t is ListProxy or t is MapProxy) and value._src is src and \
        value._node == node_id and value._field == field and value._path == path and \
        not src._node_state(node_id).deleted


# --------------------------------------------------------------------------
# conversions


_SCALARS = frozenset((str, int, float, bool, type(None)))  # immutable: returned as they are


def to_stored(v: Any, src: Source, depth: int = 0) -> Any:
    """A fresh stored value (FORMAT.md §5) for the Python value ``v``.

    Handles become references (they must belong to ``src``'s memory), proxies
    become copies of what they show, tuples become lists. Raises
    InvalidValueError for anything else; the encoder checks ranges and limits.
    """
    t = type(v)
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if depth > MAX_DEPTH:
        raise InvalidValueError(f"value nests deeper than {MAX_DEPTH} lists/maps")
    # (scalar elements, the common case, without a call each)
    if t is list or t is tuple or t is ListProxy:
        return [x if type(x) in _SCALARS else to_stored(x, src, depth + 1) for x in v]
    if t is dict or t is MapProxy:
        out = {}
        for k, x in v.items():
            if type(k) is not str:
                raise InvalidValueError(f"map key {short_repr(k)} is not a str; map keys "
                                        f"must be strings")
            out[k] = x if type(x) in _SCALARS else to_stored(x, src, depth + 1)
        return out
    if t is Node:
        if not src._owns(v):
            raise InvalidValueError(
                f"node {v._id} belongs to another memory; references must stay inside one file")
        return Ref(v._id)
    if t is Ref:
        return v
    raise InvalidValueError(
        f"cannot store a value of type {t.__name__}; allowed: None, bool, int, float, str, "
        "list, tuple, dict with str keys, and nodes (stored as references)")


def to_python(v: Any, src: Source) -> Any:
    """A plain Python copy of a stored value; references become handles."""
    t = type(v)
    if t in _SCALARS:
        return v
    if t is list:
        return [x if type(x) in _SCALARS else to_python(x, src) for x in v]
    if t is dict:
        return {k: x if type(x) in _SCALARS else to_python(x, src) for k, x in v.items()}
    return Node(src, v.id)  # a Ref: the only other stored type


def fields_of(n: NodeState, src: Source) -> dict[str, Any]:
    """``Node.fields()`` of the node whose state is ``n``: its fields as plain copies
    (:func:`to_python`), in field-name order."""
    f = n.fields
    return {k: v if type(v) in _SCALARS else to_python(v, src) for k, v in sorted(f.items())}


def _wrap(v: Any, src: Source, node_id: int, field: str, path: Path) -> Any:
    """What a read returns: a proxy for a container, a handle for a reference."""
    t = type(v)
    if t is list:
        return ListProxy(src, node_id, field, path)
    if t is dict:
        return MapProxy(src, node_id, field, path)
    if t is Ref:
        return Node(src, v.id)
    return v


# --------------------------------------------------------------------------
# node handles

_OWN = frozenset({"_src", "_id"})


class Node:
    """A handle to one node. Fields read and write as attributes or items.

    ``node.goal``/``node["goal"]`` read a field (AttributeError/KeyError
    subclasses when absent), assignment sets it, ``del`` removes it. A field
    whose name is also a method or property of this class (``id``, ``type``,
    ``deleted``, ``delete``, ``fields``, ``get``) is reachable with item syntax
    only.
    """

    __slots__ = ("_src", "_id")
    _src: Source
    _id: int

    def __init__(self, src: Source, node_id: int) -> None:
        # the slots' own setters: __setattr__ sets fields (and is slower than these)
        _set_src(self, src)
        _set_id(self, node_id)

    @property
    def _myo_ref_id(self) -> int:
        return self._id

    def _state(self) -> NodeState:
        return self._src._node_state(self._id)

    @property
    def id(self) -> int:
        """The node's stable id."""
        return self._id

    @property
    def type(self) -> str:
        return self._state().type

    @property
    def deleted(self) -> bool:
        """True once the node is tombstoned (it stays readable)."""
        return self._state().deleted

    def delete(self) -> None:
        """Tombstone the node (no cascade; references to it stay valid)."""
        self._src._stage(Delete(self._id))

    def fields(self) -> dict[str, Any]:
        """Every field as a plain Python value (a copy), in field-name order."""
        return self._src._node_fields(self._id)

    def get(self, name: str, default: Any = None) -> Any:
        f = self._state().fields
        return _wrap(f[name], self._src, self._id, name, ()) if name in f else default

    def __getitem__(self, name: str) -> Any:
        f = self._state().fields
        if name not in f:
            raise FieldNotFoundError(f"node {self._id} ({self.type}) has no field "
                                     f"{short_repr(name)}")
        return _wrap(f[name], self._src, self._id, name, ())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        f = self._state().fields
        if name not in f:
            raise MissingAttributeError(
                f"node {self._id} ({self._state().type}) has no field {short_repr(name)}")
        return _wrap(f[name], self._src, self._id, name, ())

    def __setitem__(self, name: str, value: Any) -> None:
        if type(name) is not str:
            raise InvalidValueError(f"field names are strings, not {type(name).__name__}")
        t = type(value)
        if not (t is str or t is int or t is float or t is bool or value is None):
            if _same_place(value, self._src, self._id, name, ()):
                return
            value = to_stored(value, self._src)  # scalars are stored as they are
        self._src._stage(Set(self._id, name, value))

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _RESERVED:
            raise InvalidOperationError(
                f"{short_repr(name)} is a property of node handles; set the field with "
                f"node[{short_repr(name)}] = ...")
        self[name] = value

    def __delitem__(self, name: str) -> None:
        if name not in self._state().fields:
            raise FieldNotFoundError(f"node {self._id} has no field {short_repr(name)} to delete")
        self._src._stage(Unset(self._id, name))

    def __delattr__(self, name: str) -> None:
        if name not in self._state().fields:
            raise MissingAttributeError(f"node {self._id} has no field {short_repr(name)} "
                                        f"to delete")
        self._src._stage(Unset(self._id, name))

    def __contains__(self, name: object) -> bool:
        return name in self._state().fields

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._state().fields))

    def __len__(self) -> int:
        return len(self._state().fields)

    def __eq__(self, other: object) -> bool:
        return type(other) is Node and other._src is self._src and other._id == self._id

    def __hash__(self) -> int:
        return hash((id(self._src), self._id))

    def __repr__(self) -> str:
        try:
            s = self._state()
        except Exception:  # a repr must not raise (closed memory, missing node)
            return f"<Node {self._id}>"
        mark = " deleted" if s.deleted else ""
        # references print as ids: following them could loop (a node may refer to itself);
        # bounded: a field may hold a 16 MiB string (format/display.py)
        return f"<Node {self._id} {clip(s.type, 80)}{mark} " \
               f"{short_repr(dict(sorted(s.fields.items())), REPR_LIMIT)}>"

    def _repr_html_(self) -> str:
        """A notebook table of the node's fields (bounded, HTML-escaped)."""
        return node_html(self._id, self._state())


_set_src = Node.__dict__["_src"].__set__
_set_id = Node.__dict__["_id"].__set__


# --------------------------------------------------------------------------
# live containers


class _Proxy:
    __slots__ = ("_src", "_node", "_field", "_path")

    def __init__(self, src: Source, node_id: int, field: str, path: Path) -> None:
        self._src = src
        self._node = node_id
        self._field = field
        self._path = path

    def _target(self) -> Any:
        """The container this proxy names, resolved again on every access."""
        fields = self._src._node_state(self._node).fields
        if self._field not in fields:
            raise InvalidOperationError(
                f"field {short_repr(self._field)} of node {self._node} no longer exists")
        cur = fields[self._field]
        for step in self._path:
            try:
                cur = cur[step]
            except (KeyError, IndexError, TypeError):
                raise InvalidOperationError(
                    f"the container at {short_repr(list(self._path))} in field "
                    f"{short_repr(self._field)} of node "
                    f"{self._node} no longer exists") from None
        return cur

    def _child(self, key: int | str, v: Any) -> Any:
        return _wrap(v, self._src, self._node, self._field, (*self._path, key))

    def copy(self) -> Any:
        """A plain Python copy (references become handles)."""
        return to_python(self._target(), self._src)

    def __len__(self) -> int:
        return len(self._target())

    def __repr__(self) -> str:
        # the stored value, bounded (references print as Ref(id)): a copy would turn
        # every reference into a handle and could be megabytes long
        try:
            return short_repr(self._target())
        except Exception:  # a repr must not raise (closed memory, container gone)
            return f"<{type(self).__name__} of node {self._node} field {short_repr(self._field)}>"


class ListProxy(_Proxy, MutableSequence[Any]):
    """A list field (or a list inside one); edits are recorded as list mutations."""

    __slots__ = ()

    def _expect(self) -> list[Any]:
        t = self._target()
        if type(t) is not list:
            raise InvalidOperationError(f"field {short_repr(self._field)} of node {self._node} at "
                                        f"{short_repr(list(self._path))} is no longer a list")
        return t

    def _index(self, i: int, size: int, insert: bool = False) -> int:
        if type(i) is not int:
            raise TypeError(f"list indices must be integers, not {type(i).__name__}")
        j = i + size if i < 0 else i
        if insert:
            return min(max(j, 0), size)
        if not 0 <= j < size:
            raise IndexError(f"list index {short_repr(i)} out of range (length {size})")
        return j

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: Any) -> Any:
        lst = self._expect()
        if isinstance(i, slice):
            return [to_python(x, self._src) for x in lst[i]]
        j = self._index(i, len(lst))
        return self._child(j, lst[j])

    def __setitem__(self, i: Any, value: Any) -> None:
        if isinstance(i, slice):
            raise InvalidOperationError("slice assignment is not supported on stored lists; "
                                        "assign the whole field or edit element by element")
        j = self._index(i, len(self._expect()))
        if _same_place(value, self._src, self._node, self._field, (*self._path, j)):
            return  # ``lst[j] += [...]`` assigns lst[j] to itself
        self._src._stage(ListReplace(self._node, self._field, self._path, j,
                                     to_stored(value, self._src)))

    def __delitem__(self, i: Any) -> None:
        if isinstance(i, slice):
            gone = sorted(range(*i.indices(len(self._expect()))), reverse=True)
            self._stage_all([ListRemove(self._node, self._field, self._path, j) for j in gone])
            return
        j = self._index(i, len(self._expect()))
        self._src._stage(ListRemove(self._node, self._field, self._path, j))

    def _stage_all(self, ms: list[Mutation]) -> None:
        self._src._stage_all(ms)

    def insert(self, index: int, value: Any) -> None:
        j = self._index(index, len(self._expect()), insert=True)
        self._src._stage(ListInsert(self._node, self._field, self._path, j,
                                    to_stored(value, self._src)))

    def append(self, value: Any) -> None:
        self.insert(len(self._expect()), value)

    def extend(self, values: Iterable[Any]) -> None:
        """Append every value of ``values``; all or nothing (a rejected one stages none)."""
        stored = [to_stored(v, self._src) for v in values]  # also copies a proxy of self
        size = len(self._expect())
        self._stage_all([ListInsert(self._node, self._field, self._path, size + k, v)
                         for k, v in enumerate(stored)])

    def __iadd__(self, values: Iterable[Any]) -> ListProxy:
        self.extend(values)
        return self

    def clear(self) -> None:
        """Remove every element (all or nothing)."""
        del self[:]

    def reverse(self) -> None:
        """Reverse in place (all or nothing), as element replacements."""
        lst = self._expect()
        n = len(lst)
        ms: list[Mutation] = []
        for j in range(n // 2):
            k = n - 1 - j
            ms.append(ListReplace(self._node, self._field, self._path, j, clone(lst[k])))
            ms.append(ListReplace(self._node, self._field, self._path, k, clone(lst[j])))
        self._stage_all(ms)

    def pop(self, index: int = -1) -> Any:
        """Remove the element at ``index`` and return it as a plain copy."""
        lst = self._expect()
        j = self._index(index, len(lst))
        v = to_python(lst[j], self._src)
        self._src._stage(ListRemove(self._node, self._field, self._path, j))
        return v

    def __iter__(self) -> Iterator[Any]:
        for j, x in enumerate(list(self._expect())):
            yield self._child(j, x)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ListProxy):
            other = other.copy()
        return bool(self.copy() == other)

    __hash__ = None  # type: ignore[assignment]


class MapProxy(_Proxy, MutableMapping[str, Any]):
    """A map field (or a map inside one); edits are recorded as map mutations."""

    __slots__ = ()

    def _expect(self) -> dict[str, Any]:
        t = self._target()
        if type(t) is not dict:
            raise InvalidOperationError(f"field {short_repr(self._field)} of node {self._node} at "
                                        f"{short_repr(list(self._path))} is no longer a map")
        return t

    def __getitem__(self, key: str) -> Any:
        m = self._expect()
        if key not in m:
            raise FieldNotFoundError(f"map has no key {short_repr(key)}")
        return self._child(key, m[key])

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            raise InvalidValueError(f"map key {short_repr(key)} is not a str; map keys must "
                                    f"be strings")
        self._expect()
        if _same_place(value, self._src, self._node, self._field, (*self._path, key)):
            return  # ``m[k] += [...]`` assigns m[k] to itself
        self._src._stage(MapSet(self._node, self._field, self._path, key,
                                to_stored(value, self._src)))

    def __delitem__(self, key: str) -> None:
        if key not in self._expect():
            raise FieldNotFoundError(f"map has no key {short_repr(key)}")
        self._src._stage(MapDelete(self._node, self._field, self._path, key))

    def _stage_all(self, ms: list[Mutation]) -> None:
        self._src._stage_all(ms)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set every key of ``other`` (a mapping or key/value pairs) and ``kwargs``, as
        ``dict.update`` does; all or nothing (a rejected key or value stages none)."""
        if isinstance(other, Mapping):
            pairs = [(k, other[k]) for k in other]
        elif hasattr(other, "keys"):
            pairs = [(k, other[k]) for k in other.keys()]  # noqa: SIM118 - dict.update does this
        else:
            pairs = [(k, v) for k, v in other]
        pairs += kwargs.items()
        self._expect()
        ms: list[Mutation] = []
        for k, v in pairs:
            if type(k) is not str:
                raise InvalidValueError(f"map key {short_repr(k)} is not a str; map keys "
                                        f"must be strings")
            ms.append(MapSet(self._node, self._field, self._path, k, to_stored(v, self._src)))
        self._stage_all(ms)

    def clear(self) -> None:
        """Remove every key (all or nothing)."""
        self._stage_all([MapDelete(self._node, self._field, self._path, k)
                         for k in sorted(self._expect())])

    _NO_DEFAULT: Any = object()

    def pop(self, key: str, default: Any = _NO_DEFAULT) -> Any:
        """Remove ``key`` and return its value as a plain copy (``default`` if absent)."""
        m = self._expect()
        if key not in m:
            if default is MapProxy._NO_DEFAULT:
                raise FieldNotFoundError(f"map has no key {short_repr(key)}")
            return default
        v = to_python(m[key], self._src)
        self._src._stage(MapDelete(self._node, self._field, self._path, key))
        return v

    def popitem(self) -> tuple[str, Any]:
        """Remove the first key (in key order) and return ``(key, plain copy)``."""
        m = self._expect()
        if not m:
            raise FieldNotFoundError("popitem from an empty map")
        key = min(m)
        return key, self.pop(key)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._expect()))

    def __contains__(self, key: object) -> bool:
        return key in self._expect()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MapProxy):
            other = other.copy()
        return bool(self.copy() == other)

    __hash__ = None  # type: ignore[assignment]


# names that are attributes of Node itself, not fields (settable with item syntax only)
_RESERVED = frozenset(_OWN | {n for n in dir(Node) if not n.startswith("__")})
