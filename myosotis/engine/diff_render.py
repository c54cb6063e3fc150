"""How a :class:`~myosotis.engine.diff.Diff` is shown: bounded text, an HTML table,
and the JSON document of docs/DIFF.md (schema ``myosotis.diff``, version 1).

Values are written in the JSON form of docs/CLI.md "Values" (references
``{"@ref": N}``, non-finite floats ``{"@float": "NaN"}``, map keys starting
with ``@`` given one more ``@``): the CLI's ``--json`` output and
``Diff.to_json`` are the same document. Text and HTML cut every value to a
width *before* rendering the rest of it, so a 10 MB string costs its first
characters only.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from myosotis.engine.structdiff import MISSING
from myosotis.format.mutation_parts import Path
from myosotis.format.values import Ref

if TYPE_CHECKING:
    from myosotis.engine.diff import Diff, DiffOp

SCHEMA = "myosotis.diff"
VERSION = 1


# ---------------------------------------------------------------------- values


def value_json(v: Any) -> Any:
    """The JSON form of a stored value (docs/CLI.md "Values")."""
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
    if t is list:
        return [value_json(x) for x in v]
    if t is dict:
        return {("@" + k if k.startswith("@") else k): value_json(x) for k, x in v.items()}
    raise TypeError(f"not a stored value: {t.__name__}")


def _pieces(v: Any, budget: int) -> Iterator[str]:
    """The text of ``v`` in pieces, stopping soon after ``budget`` characters."""
    t = type(v)
    if v is None:
        yield "null"
    elif t is bool:
        yield "true" if v else "false"
    elif t is float and not math.isfinite(v):
        yield "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    elif t is int or t is float:
        yield repr(v)
    elif t is str:
        cut = v[: budget + 1]  # never the whole of a huge string
        text = json.dumps(cut)
        yield text if len(cut) == len(v) else text[:-1]
    elif t is Ref:
        yield f"@{v.id}"
    elif t is list or t is dict:
        yield "[" if t is list else "{"
        used = 1
        for i, x in enumerate(v.items() if t is dict else v):
            if used > budget:
                return
            part = ", " if i else ""
            if t is dict:
                part += json.dumps(x[0][: budget + 1]) + ": "
                x = x[1]
            for p in _pieces(x, budget - used - len(part)):
                part += p
            used += len(part)
            yield part
        yield "]" if t is list else "}"
    else:
        yield repr(v)


def short_value(v: Any, width: int) -> str:
    """``v`` as JSON-like text (references ``@N``), ASCII only, at most ``width``
    characters (cut ones end with ``...``)."""
    text = ""
    for p in _pieces(v, width):
        text += p
        if len(text) > width:
            break
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def path_text(path: Path) -> str:
    """``field[0]["key"]``, ASCII only (the field name escaped when it needs it)."""
    if not path:
        return ""
    head = str(path[0])
    if not (head.isascii() and head.isprintable()):
        head = json.dumps(head)
    return head + "".join(f"[{s}]" if type(s) is int else f"[{json.dumps(s)}]"
                          for s in path[1:])


# ---------------------------------------------------------------------- text


def moved_note(op: DiffOp) -> str:
    """`` (moved from items[7])`` on an insert or `` (moved to items[3])`` on a remove
    of a list element that moved (``DiffOp.moved``), else nothing."""
    if op.moved is None:
        return ""
    return f" (moved {'from' if op.op == 'insert' else 'to'} {path_text(op.moved)})"


def op_line(op: DiffOp, width: int) -> str:
    """One op as a line of text, without the node (see :func:`diff_text`)."""
    where = path_text(op.path)
    if op.op in ("change",):
        return f"    {where}: {short_value(op.old, width)} -> {short_value(op.new, width)}"
    if op.op in ("add", "insert"):
        return f"  + {where}: {short_value(op.new, width)}{moved_note(op)}"
    if op.op == "remove":
        return f"  - {where}: {short_value(op.old, width)}{moved_note(op)}"
    if op.op == "create":
        return f"  + fields: {short_value(op.new, width)}"
    if op.op == "uncreate":
        return f"  - fields: {short_value(op.old, width)}"
    return f"    ({op.op}d)"  # delete, undelete


_MARK = {"create": "+", "delete": "-", "uncreate": "-", "undelete": "+"}


def node_header(op: DiffOp) -> str:
    """``~ node 3 Agent``, or ``+ node 4 Tool (created)`` for a node op."""
    mark = _MARK.get(op.op, "~") if not op.path else "~"
    name = op.type if op.type.isascii() and op.type.isprintable() else json.dumps(op.type)
    status = f" ({op.op}d)" if not op.path else ""
    return f"{mark} node {op.node} {name}{status}"


def diff_text(d: Diff, *, max_lines: int, width: int) -> str:
    """``diff #a -> #b``, then per node a header and its ops; at most ``max_lines``
    lines (then a line saying more were left out)."""
    lines = [f"diff #{d.a} -> #{d.b}"]
    last = None
    for op in d.ops():
        if len(lines) >= max_lines:
            lines.append("... more changes not shown (iterate the diff for all of them)")
            break
        if op.node != last:
            lines.append(node_header(op))
            last = op.node
            if op.op in ("delete", "undelete"):
                continue  # said by the header
        lines.append(op_line(op, width))
    if last is None:
        lines.append("no changes")
    return "\n".join(lines)


# ---------------------------------------------------------------------- HTML


def diff_html(d: Diff, *, max_rows: int, width: int) -> str:
    """A ``<table>`` of the first ``max_rows`` ops, every cell escaped."""
    esc = html.escape
    rows = []
    ops = d.ops()
    for op in islice(ops, max_rows):
        old = "" if op.op in ("add", "insert", "create") else short_value(op.old, width)
        new = "" if op.op in ("remove", "uncreate") else short_value(op.new, width)
        if op.op in ("delete", "undelete"):
            old = new = ""
        rows.append(f"<tr><td>{op.node}</td><td>{esc(op.type)}</td>"
                    f"<td><code>{esc(path_text(op.path))}</code></td><td>{op.op}</td>"
                    f"<td><code>{esc(old)}</code></td><td><code>{esc(new)}</code></td></tr>")
    more = next(ops, None) is not None
    head = ("<tr><th>node</th><th>type</th><th>path</th><th>op</th><th>old</th>"
            "<th>new</th></tr>")
    note = f"<p>first {max_rows} ops shown</p>" if more else ""
    if not rows:
        note = "<p>no changes</p>"
    return (f"<div><p>diff #{d.a} &rarr; #{d.b}</p><table>{head}{''.join(rows)}</table>"
            f"{note}</div>")


# ---------------------------------------------------------------------- JSON


def op_json(op: DiffOp) -> dict[str, Any]:
    """One op as in docs/DIFF.md: ``old``/``new`` only where the op has them."""
    doc: dict[str, Any] = {"node": op.node, "type": op.type, "op": op.op,
                           "path": list(op.path)}
    if op.old is not MISSING:
        doc["old"] = value_json(op.old)
    if op.new is not MISSING:
        doc["new"] = value_json(op.new)
    if op.moved is not None:
        doc["moved_from" if op.op == "insert" else "moved_to"] = list(op.moved)
    return doc


def diff_json(d: Diff) -> dict[str, Any]:
    """The whole diff as the document of docs/DIFF.md."""
    ia, ib = d.commit_ids
    ops = [op_json(op) for op in d.ops()]
    by_op: dict[str, int] = {}
    by_field: dict[str, int] = {}
    for o in ops:
        by_op[o["op"]] = by_op.get(o["op"], 0) + 1
        if o["path"]:
            by_field[o["path"][0]] = by_field.get(o["path"][0], 0) + 1
    return {"schema": SCHEMA, "version": VERSION,
            "from": {"seq": d.a, "id": ia}, "to": {"seq": d.b, "id": ib},
            "stat": {"nodes": len({o["node"] for o in ops}), "ops": len(ops), "by_op": by_op,
                     "by_field": dict(sorted(by_field.items()))},
            "ops": ops}
