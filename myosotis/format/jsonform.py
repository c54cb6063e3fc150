"""The typed JSON form of values, nodes and mutations (formatspec/EXPORT.md §3–§5),
and a JSON reader that refuses hostile input with its location. No I/O.

Every stored value is one JSON object of exactly one key naming its type:
``{"int": 5}``, ``{"float": "3ff8000000000000"}`` (the IEEE-754 bits, so
``-0.0``, NaN payloads and infinities survive), ``{"str": "x"}``,
``{"bool": true}``, ``{"null": null}``, ``{"ref": 3}``, ``{"list": [...]}``,
``{"map": {...}}``. Readers raise :class:`InvalidDocumentError` whose
``location`` is the JSON pointer of the offending part (RFC 6901).

:func:`load_json` parses text with hooks that keep every number as the
reader will check it (no float rounding, no int of a million digits), mark
duplicate keys instead of dropping one, and turn deep nesting into an error
with its line and column instead of a RecursionError.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any, cast

from myosotis.errors import InvalidDocumentError, MyosotisError
from myosotis.format.constants import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MAX_FIELD_NAME,
    MAX_ITEMS,
    MAX_NODE_ID,
    MAX_PATH,
)
from myosotis.format.mutations import MUTATION_TYPES, Mutation, put_mutation
from myosotis.format.values import Ref, encode_str

_F64_BE = struct.Struct(">d")
_BITS = re.compile(r"[0-9a-f]{16}\Z")
_HEX_ID = re.compile(r"[0-9a-f]{64}\Z")
_MAX_NUMBER_TEXT = 20  # "-9223372036854775808" is the longest number the schema holds
U64_MAX = (1 << 64) - 1
_ASCII_OK = 1024  # an ASCII string this short is under every length limit (§11)

VALUE_TAGS = ("null", "bool", "int", "float", "str", "ref", "list", "map")


# --------------------------------------------------------------------------
# reading JSON text


class Number:
    """A JSON number the schema never holds as it is (a fraction, an exponent,
    NaN/Infinity or an integer too long to be in range): kept as its text so that
    the schema check refuses it where it stands."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text[:_MAX_NUMBER_TEXT + 3] + ("..." if len(text) > _MAX_NUMBER_TEXT else "")

    def __repr__(self) -> str:
        return self.text


class DuplicateKeys(dict[str, Any]):
    """A JSON object that named ``dup`` twice (JSON leaves it undefined: refused)."""

    dup: str = ""


def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's ``object_pairs_hook``: a dict, or DuplicateKeys naming a repeated key."""
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            dd = DuplicateKeys(pairs)
            dd.dup = k
            return dd
        d[k] = v
    return d


def parse_int(text: str) -> int | Number:
    """json's ``parse_int``: an int, or a Number for one too long to be in range."""
    # Checked before int(): Python refuses (ValueError) ints of over 4300 digits.
    return Number(text) if len(text) > _MAX_NUMBER_TEXT else int(text)


def _nesting_error(text: str) -> InvalidDocumentError:
    """Where ``text`` first nests deeper than the reader follows (found without
    recursion: brackets outside strings counted left to right)."""
    depth, line, col = 0, 1, 1
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]|\n', text):
        tok = m.group()
        if tok == "\n":
            line, col = line + 1, m.end()
        elif tok in "[{":
            depth += 1
            if depth > 2 * MAX_DEPTH + 8:
                return InvalidDocumentError(
                    f"JSON nests deeper than any export does ({2 * MAX_DEPTH + 8} arrays and "
                    "objects)", f"line {line}, column {m.start() - col + 2}")
        elif tok in "]}":
            depth -= 1
    return InvalidDocumentError("JSON nests too deep", "line 1, column 1")


def load_json(data: bytes | str) -> Any:
    """Parse a JSON document (UTF-8 bytes or text) for the schema checks below.

    Objects with a repeated key become :class:`DuplicateKeys`; numbers with a
    fraction or exponent, ``NaN``/``Infinity`` and integers over 20 characters
    become :class:`Number`. Raises InvalidDocumentError (``line L, column C``)
    for text that is not JSON, not UTF-8, or nests deeper than the interpreter
    can follow. Cost: linear in the text; the result holds the whole document.
    """
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidDocumentError("the document is not UTF-8 text", f"byte {e.start}") from None
    try:
        return json.loads(text, object_pairs_hook=pairs_hook, parse_int=parse_int,
                          parse_float=Number, parse_constant=Number)
    except json.JSONDecodeError as e:
        raise InvalidDocumentError(f"not valid JSON ({e.msg})",
                                   f"line {e.lineno}, column {e.colno}") from None
    except RecursionError:
        raise _nesting_error(text) from None


# --------------------------------------------------------------------------
# schema checks shared by the readers of EXPORT.md and LEGACY.md


def pointer(where: str, key: str | int) -> str:
    """The JSON pointer of ``key`` inside the part at ``where`` (RFC 6901 escapes)."""
    if not isinstance(key, str):
        return f"{where}/{key}"
    if "~" in key or "/" in key:  # rare: most keys are used as they are
        key = key.replace("~", "~0").replace("/", "~1")
    return f"{where}/{key}"


def refuse(where: str, reason: str) -> InvalidDocumentError:
    return InvalidDocumentError(reason, where)


def json_type(x: Any) -> str:
    if isinstance(x, Number):
        return f"the number {x.text}"
    return {dict: "an object", DuplicateKeys: "an object", list: "an array", str: "a string",
            bool: "a boolean", int: "an integer", type(None): "null"}.get(type(x), "a value")


def obj(x: Any, where: str, keys: tuple[str, ...] = (), optional: tuple[str, ...] = ()
        ) -> dict[str, Any]:
    """``x`` as an object whose keys are ``keys`` (all required) plus any of
    ``optional``; with neither given, any keys. Refuses duplicate keys."""
    if type(x) is DuplicateKeys:
        raise refuse(pointer(where, x.dup), f"the key {x.dup!r} appears twice in one object")
    if getattr(type(x), "lazy_object", False):  # format/jsonstream.py: checked as it is read
        if keys or optional:
            x.expect(keys, optional)
        return cast(dict[str, Any], x)
    if type(x) is not dict:
        raise refuse(where, f"expected an object, found {json_type(x)}")
    if keys or optional:
        for k in keys:
            if k not in x:
                raise refuse(where, f"the object has no {k!r} key")
        for k in x:
            if k not in keys and k not in optional:
                raise refuse(pointer(where, k), f"unknown key {k!r} (allowed: "
                             f"{', '.join(keys + optional)})")
    return x


def array(x: Any, where: str) -> list[Any]:
    """``x`` as an array; a streamed one (format/jsonstream.py) can be iterated once."""
    if getattr(type(x), "lazy_array", False):
        return cast(list[Any], x)
    if type(x) is not list:
        raise refuse(where, f"expected an array, found {json_type(x)}")
    return x


def integer(x: Any, where: str, lo: int, hi: int, what: str = "integer") -> int:
    """``x`` as an int in ``[lo, hi]`` (a JSON boolean is not an integer)."""
    if type(x) is not int:
        raise refuse(where, f"expected an integer ({what}), found {json_type(x)}")
    if not lo <= x <= hi:
        raise refuse(where, f"{what} {x} is out of range [{lo}, {hi}]")
    return x


def node_id(x: Any, where: str) -> int:
    return integer(x, where, 1, MAX_NODE_ID, "node id")


def text(x: Any, where: str, what: str = "string") -> str:
    """``x`` as a string that can be stored (no lone surrogate)."""
    if type(x) is not str:
        raise refuse(where, f"expected a string ({what}), found {json_type(x)}")
    if x.isascii() and len(x) <= _ASCII_OK:  # no surrogate, under every limit: nothing to check
        return x
    try:
        encode_str(x, what)
    except MyosotisError as e:
        raise refuse(where, str(e)) from None
    return x


def hex_id(x: Any, where: str, what: str = "commit id") -> bytes:
    """A 32-byte id written as 64 lowercase hex digits."""
    if type(x) is not str or not _HEX_ID.match(x):
        raise refuse(where, f"expected a {what}: 64 lowercase hex digits, found {json_type(x)}")
    return bytes.fromhex(x)


# --------------------------------------------------------------------------
# values (EXPORT.md §3)


def float_bits(f: float) -> str:
    """The 16 lowercase hex digits of ``f``'s IEEE-754 binary64 bits, most significant
    first: ``1.0`` is ``3ff0000000000000``, ``-0.0`` is ``8000000000000000``."""
    return _F64_BE.pack(f).hex()


def value_to_json(v: Any) -> Any:
    """The typed JSON form of a stored value (the inverse of :func:`value_from_json`)."""
    t = type(v)
    if t is str:
        return {"str": v}
    if t is int:
        return {"int": v}
    if t is float:
        return {"float": _F64_BE.pack(v).hex()}
    if t is bool:
        return {"bool": v}
    if v is None:
        return {"null": None}
    if t is Ref:
        return {"ref": v.id}
    if t is list or t is tuple:
        return {"list": [value_to_json(x) for x in v]}
    return {"map": {k: value_to_json(v[k]) for k in sorted(v)}}  # R40 order


def value_from_json(x: Any, where: str, depth: int = 0) -> Any:
    """The stored value a typed JSON value stands for; raises InvalidDocumentError.

    Checks types, the int64 range, float bits, references' id range, strings,
    nesting (``MAX_DEPTH``, counted as FORMAT.md R41) and item counts; not
    whether a reference names an existing node (the caller knows the state).
    """
    d = obj(x, where)
    if len(d) != 1:
        raise refuse(where, "a value is an object with exactly one key, its type: "
                     + ", ".join(VALUE_TAGS))
    tag, body = next(iter(d.items()))
    w = pointer(where, tag)
    if tag == "str":
        return text(body, w)
    if tag == "int":
        return integer(body, w, INT_MIN, INT_MAX, "signed 64-bit integer")
    if tag == "float":
        if type(body) is not str or not _BITS.match(body):
            raise refuse(w, "a float is written as the 16 lowercase hex digits of its "
                         f"IEEE-754 bits (e.g. 3ff8000000000000 for 1.5), found {json_type(body)}")
        return float(_F64_BE.unpack(bytes.fromhex(body))[0])
    if tag == "bool":
        if type(body) is not bool:
            raise refuse(w, f"expected true or false, found {json_type(body)}")
        return body
    if tag == "null":
        if body is not None:
            raise refuse(w, f"expected null, found {json_type(body)}")
        return None
    if tag == "ref":
        return Ref(node_id(body, w))
    if tag in ("list", "map"):
        if depth >= MAX_DEPTH:
            raise refuse(w, f"value nests deeper than {MAX_DEPTH} lists and maps (R41)")
        if tag == "list":
            items = array(body, w)
            _count(items, w)
            return [value_from_json(e, pointer(w, i), depth + 1) for i, e in enumerate(items)]
        m = obj(body, w)
        _count(m, w)
        return {text(k, pointer(w, k), "map key"): value_from_json(e, pointer(w, k), depth + 1)
                for k, e in m.items()}
    raise refuse(pointer(where, tag), f"unknown value type {tag!r} (one of: "
                 f"{', '.join(VALUE_TAGS)})")


def _count(items: list[Any] | dict[str, Any], where: str) -> None:
    if len(items) > MAX_ITEMS:
        raise refuse(where, f"{len(items)} items; the limit is {MAX_ITEMS} (FORMAT.md §11)")


def fields_from_json(x: Any, where: str) -> dict[str, Any]:
    """A field set: field name (non-empty, at most MAX_FIELD_NAME bytes, §5) -> typed
    value."""
    d = obj(x, where)
    _count(d, where)
    return {field_name(k, pointer(where, k)): value_from_json(v, pointer(where, k))
            for k, v in d.items()}


def field_name(x: Any, where: str) -> str:
    """``x`` as a field name: a non-empty string of at most MAX_FIELD_NAME bytes (§5)."""
    name = text(x, where, "field name")
    if not name:
        raise refuse(where, "a field name is a non-empty string (FORMAT.md §5)")
    if len(name) > MAX_FIELD_NAME // 4 and len(name.encode("utf-8")) > MAX_FIELD_NAME:
        raise refuse(where, f"a field name of {len(name.encode('utf-8'))} bytes; the limit "
                     f"is {MAX_FIELD_NAME} (FORMAT.md §11)")
    return name


# --------------------------------------------------------------------------
# mutations (EXPORT.md §5): the classes' own to_json, read back generically


_BY_NAME: dict[str, type[Mutation]] = {t.NAME: t for t in MUTATION_TYPES}
_JSON_KEY = {"pos": "index"}  # operand name -> its key in to_json's form


def mutation_to_json(m: Mutation) -> dict[str, Any]:
    """The typed JSON form of a mutation: its class's ``to_json`` with typed values."""
    return m.to_json(value_to_json)


def _path(x: Any, where: str) -> tuple[int | str, ...]:
    steps = array(x, where)
    if len(steps) > MAX_PATH:
        raise refuse(where, f"a path of {len(steps)} steps; the limit is {MAX_PATH}")
    out: list[int | str] = []
    for i, s in enumerate(steps):
        w = pointer(where, i)
        out.append(text(s, w, "map key") if type(s) is str
                   else integer(s, w, 0, U64_MAX, "list index"))
    return tuple(out)


def _operand(name: str, x: Any, where: str) -> Any:
    if name == "node":
        return node_id(x, where)
    if name in ("field", "type", "key"):
        return text(x, where, name)
    if name == "fields":
        return fields_from_json(x, where)
    if name == "path":
        return _path(x, where)
    if name == "pos":
        return integer(x, where, 0, U64_MAX, "index")
    if name == "value":
        return value_from_json(x, where)
    raise refuse(where, f"this version cannot read the operand {name!r}")


def mutation_from_json(x: Any, where: str) -> tuple[Mutation, bytes]:
    """The mutation a typed JSON mutation stands for, and its encoding (FORMAT.md §6).

    Checks the shape and every limit of §11; not the graph rules R50–R53 (the
    caller applies it to its state). Raises InvalidDocumentError.
    """
    d = obj(x, where)
    op = d.get("op")
    t = _BY_NAME.get(op) if type(op) is str else None
    if t is None:
        raise refuse(pointer(where, "op"), f"unknown mutation {op!r} (one of: "
                     f"{', '.join(_BY_NAME)})")
    keys = tuple(_JSON_KEY.get(f, f) for f in t._fields)
    obj(d, where, ("op", *keys))
    args = [_operand(f, d[k], pointer(where, k)) for f, k in zip(t._fields, keys, strict=True)]
    m: Mutation = t(*args)
    out = bytearray()
    try:
        put_mutation(out, m)
    except MyosotisError as e:
        raise refuse(where, str(e)) from None
    return m, bytes(out)
