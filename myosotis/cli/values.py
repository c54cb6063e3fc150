"""The command line's value syntax, and values printed back (docs/CLI.md "Values").

A VALUE argument is read, in this order:

1. with ``--string``/``-s``: the argument as it is, a string;
2. ``@N`` (``N`` decimal digits): a reference to node ``N``; any other
   argument starting with ``@`` is refused;
3. an argument that parses as JSON is that JSON value: ``42`` (integer),
   ``1.5``/``1e3``/``-0.0`` (float, any number with ``.`` or an exponent),
   ``true``/``false``, ``null``, ``"42"`` (a string), ``[...]`` (list),
   ``{...}`` (map). Inside JSON, ``{"@ref": N}`` is a reference,
   ``{"@float": "NaN"|"Infinity"|"-Infinity"}`` a non-finite float (bare
   ``NaN``/``Infinity``/``-Infinity`` are accepted too), and a map key
   starting with ``@`` is written with one more ``@`` (``"@@x"`` is the key
   ``"@x"``); other keys starting with ``@`` and duplicate keys are refused;
4. an argument starting with ``[``, ``{`` or ``"`` that is not valid JSON
   is refused (a typo never silently becomes a string);
5. anything else is a string: ``Explore``, ``hello world``, ``01``.

Integers outside the signed 64-bit range and floats that overflow
(``1e400``) are refused. ``--json`` output writes values in the same JSON
form, so what ``myo get --json`` prints can be given back to ``myo set``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from myosotis import INT_MAX, INT_MIN, MAX_NODE_ID, Node, Ref

from .output import EXIT_USAGE, CliError, json_safe, printable

_REF = re.compile(r"@([0-9]+)")
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class _Refused(Exception):
    """Internal: a JSON value that parses but cannot be stored."""


def node_id(text: str) -> int:
    """A node id argument: ``12`` or ``@12``."""
    t = text.strip()
    if t.startswith("@"):
        t = t[1:]
    if not t.isascii() or not t.isdigit() or not 1 <= int(t) <= MAX_NODE_ID:
        raise CliError(f"{text!r} is not a node id; write a positive integer such as 12 or @12",
                       EXIT_USAGE)
    return int(t)


def _ref(text: str) -> Ref:
    m = _REF.fullmatch(text)
    if m is None or len(m.group(1)) > 19 or not 1 <= int(m.group(1)) <= MAX_NODE_ID:
        raise CliError(f"{text!r} is not a reference: write @N with N a node id (e.g. @12); "
                       "for a string starting with '@' use --string or JSON quotes ('\"@x\"')")
    return Ref(int(m.group(1)))


def _int(s: str) -> int:
    if len(s.lstrip("-")) > 19 or not INT_MIN <= int(s) <= INT_MAX:
        raise _Refused(f"integer {s} is outside the signed 64-bit range "
                       f"[{INT_MIN}, {INT_MAX}]; use --string to store it as text")
    return int(s)


def _float(s: str) -> float:
    f = float(s)
    if math.isinf(f):
        raise _Refused(f"number {s} is too large for a 64-bit float; use --string to store "
                       "it as text")
    return f


def _constant(s: str) -> float:
    return _NONFINITE[s]


def _object(pairs: list[tuple[str, Any]]) -> Any:
    if len(pairs) == 1 and pairs[0][0] == "@ref":
        v = pairs[0][1]
        if type(v) is not int or not 1 <= v <= MAX_NODE_ID:
            raise _Refused(f'{{"@ref": {json.dumps(v)}}}: a reference needs a node id >= 1')
        return Ref(v)
    if len(pairs) == 1 and pairs[0][0] == "@float":
        v = pairs[0][1]
        if v not in _NONFINITE:
            raise _Refused('{"@float": ...} takes "NaN", "Infinity" or "-Infinity"')
        return _NONFINITE[v]
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k.startswith("@@"):
            key = k[1:]
        elif k.startswith("@"):
            raise _Refused(f"map key {k!r}: keys starting with '@' are reserved; write "
                           f"{'@' + k!r} for a key that starts with '@'")
        else:
            key = k
        if key in out:
            raise _Refused(f"map key {key!r} appears twice")
        out[key] = v
    return out


def parse_json(text: str) -> Any:
    """A stored value from its JSON form (the ``--json`` output form); raises CliError."""
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant,
                          object_pairs_hook=_object)
    except _Refused as e:
        raise CliError(f"value refused: {e}") from None
    except RecursionError:
        raise CliError("value nests too deeply") from None


def parse_value(text: str, *, raw: bool = False) -> Any:
    """The stored value a VALUE argument stands for (see the module docstring)."""
    if raw:
        return text
    if text.startswith("@"):
        return _ref(text)
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant,
                          object_pairs_hook=_object)
    except _Refused as e:
        raise CliError(f"value refused: {e}") from None
    except RecursionError:
        raise CliError("value nests too deeply") from None
    except json.JSONDecodeError as e:
        if text.lstrip()[:1] in ('[', '{', '"'):
            raise CliError(f"value {_short(text)} looks like JSON but is not valid JSON "
                           f"({e.msg} at character {e.pos}); fix it, or pass --string to "
                           "store the text as it is") from None
        return text


def _short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


# --------------------------------------------------------------------------
# printing values


def to_json(v: Any) -> Any:
    """The JSON form of a stored value (the inverse of :func:`parse_json`)."""
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        if math.isnan(v):
            return {"@float": "NaN"}
        if math.isinf(v):
            return {"@float": "Infinity" if v > 0 else "-Infinity"}
        return v
    if t is Ref:
        return {"@ref": v.id}
    if t is Node:
        return {"@ref": v.id}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {("@" + k if k.startswith("@") else k): to_json(x) for k, x in v.items()}
    raise TypeError(f"not a stored value: {t.__name__}")


def _float_text(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def human(v: Any) -> str:
    """A value for people: JSON-like, references as ``@N``; safe to print (strings are
    JSON-escaped, and so are the characters JSON leaves as they are, see json_safe)."""
    t = type(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return _float_text(v)
    if t is str:
        return json_safe(json.dumps(v, ensure_ascii=False))
    if t is Ref or t is Node:
        return f"@{v.id}"
    if isinstance(v, list):
        return "[" + ", ".join(human(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json_safe(json.dumps(k, ensure_ascii=False))}: {human(x)}"
                               for k, x in v.items()) + "}"
    return repr(v)


def references(v: Any, path: tuple[int | str, ...] = ()) -> list[tuple[tuple[int | str, ...], int]]:
    """Every reference inside ``v`` as ``(path, node id)``, in order."""
    t = type(v)
    if t is Ref or t is Node:
        return [(path, v.id)]
    out: list[tuple[tuple[int | str, ...], int]] = []
    if isinstance(v, list):
        for i, x in enumerate(v):
            out += references(x, (*path, i))
    elif isinstance(v, dict):
        for k, x in v.items():
            out += references(x, (*path, k))
    return out


def path_text(field: str, path: tuple[int | str, ...]) -> str:
    """``field[0]["key"]`` for people, safe to print (see output.printable)."""
    return printable(field) + "".join(f"[{s}]" if type(s) is int else f"[{json.dumps(s)}]"
                                      for s in path)
