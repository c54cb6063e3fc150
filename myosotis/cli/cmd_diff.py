"""``myo diff``: what changed between two commits, path by path (over ``Memory.diff``).

The text marks only what changed: one line per op of the structural diff
(``+`` added or inserted, ``-`` removed, ``old -> new`` replaced), at its
path inside the field, values cut to a width and at most ``--limit`` ops;
``--json`` prints the whole document of docs/DIFF.md, ``--stat`` the counts.
"""

from __future__ import annotations

import json
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any

import typer

from myosotis import Memory

from .common import FileOpt, JsonOpt, add_commands, point_json, point_text
from .files import open_reader, resolve_file
from .output import emit_json, json_safe, printable, style
from .pager import page
from .values import human, path_text

if TYPE_CHECKING:  # imported with the first diff, not with every command
    from myosotis import Diff, DiffOp, DiffStat

WIDTH = 80  # characters of one value in the text output; --json has the whole value
LIMIT = 500  # lines of changes shown by default: `myo diff HEAD~1` after a huge change
# stays readable (and the terminal usable); --all shows everything, --json gives all


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def short(v: Any, width: int = WIDTH) -> str:
    """:func:`human` of ``v`` cut to ``width`` characters, looking at no more of ``v``
    than that (a 10 MB string or a 20k-element list costs its first few items)."""
    if isinstance(v, str):
        return _cut(human(v[: width + 1]) if len(v) > width else human(v), width)
    if isinstance(v, (list, dict)):
        items = list(islice(v.items() if isinstance(v, dict) else v, width // 2 + 1))
        parts = []
        used = 0
        for x in items:
            if isinstance(v, dict):
                k, x = x
                p = json_safe(json.dumps(k[: width + 1], ensure_ascii=False)) + ": "
                p += short(x, max(width - used, 4))
            else:
                p = short(x, max(width - used, 4))
            parts.append(p)
            used += len(p) + 2
            if used > width:
                break
        more = len(parts) < len(v)
        body = ", ".join(parts) + (", ..." if more else "")
        return _cut(("[" + body + "]") if isinstance(v, list) else ("{" + body + "}"), width)
    return _cut(human(v), width)


def _where(op: DiffOp) -> str:
    return path_text(str(op.path[0]), tuple(op.path[1:]))


def _moved(op: DiffOp) -> str:
    """Where a list element that moved came from (an insert) or went (a remove)."""
    if op.moved is None:
        return ""
    where = path_text(str(op.moved[0]), tuple(op.moved[1:]))
    return f" (moved {'from' if op.op == 'insert' else 'to'} {where})"


FIELDS = 20  # fields shown of a created (or uncreated) node


def _fields(fields: dict[str, Any], mark: str, colour: str) -> list[str]:
    lines = [style(f"  {mark} {path_text(k, ())}: {short(v)}", fg=colour)
             for k, v in islice(fields.items(), FIELDS)]
    if len(fields) > FIELDS:
        lines.append(style(f"    ... {len(fields) - FIELDS:,} more fields", dim=True))
    return lines


def _op_lines(op: DiffOp) -> list[str]:
    """The lines of one op under its node's header."""
    if op.op == "create":  # each field of the new node, as if added
        return _fields(op.new, "+", "green")
    if op.op == "uncreate":
        return _fields(op.old, "-", "red")
    if op.op in ("delete", "undelete"):
        return [style(f"    ({op.op}d)", fg="red" if op.op == "delete" else "green")]
    if op.op in ("add", "insert"):
        return [style(f"  + {_where(op)}: {short(op.new)}{_moved(op)}", fg="green")]
    if op.op == "remove":
        return [style(f"  - {_where(op)}: {short(op.old)}{_moved(op)}", fg="red")]
    return [f"    {_where(op)}: " + style(short(op.old), fg="red") + " -> "
            + style(short(op.new), fg="green")]


_HEAD = {"create": ("+", "green", " (created)"), "uncreate": ("-", "red", " (uncreated)"),
         "delete": ("-", "red", " (deleted)"), "undelete": ("+", "green", " (undeleted)")}


def _header(op: DiffOp) -> tuple[str, bool]:
    """The node's header line, and whether it already says what ``op`` did."""
    mark, colour, status = _HEAD.get(op.op, ("~", "yellow", "")) if not op.path else \
        ("~", "yellow", "")
    text = style(f"{mark} node {op.node} {printable(op.type)}{status}", fg=colour, bold=True)
    return text, op.op in ("delete", "undelete")


def _ops_lines(d: Diff, limit: int | None) -> list[str]:
    """The lines of the ops, at most ``limit`` of them (headers included), then how
    many ops were left out."""
    last = None
    used = 0
    shown: list[str] = []
    ops = d.ops()
    for op in ops:
        lines: list[str] = []
        said = False
        if op.node != last:
            head, said = _header(op)
            lines.append(head)
        if not said:
            lines += _op_lines(op)
        if limit is not None and used + len(lines) > limit:
            rest = 1 + sum(1 for _ in ops)
            shown.append(style(f"... {rest:,} more ops not shown (--limit N, --all, or "
                               "--json)", dim=True))
            return shown
        shown += lines
        used += len(lines)
        last = op.node
    if last is None:
        shown.append("no changes")
    return shown


def _stat_lines(s: DiffStat) -> list[str]:
    kinds = ", ".join(f"{n:,} {k}" for k, n in s.by_op.items())
    lines = [f"{s.nodes:,} node{'s' if s.nodes != 1 else ''}, {s.ops:,} op"
             f"{'s' if s.ops != 1 else ''}" + (f": {kinds}" if kinds else "")]
    width = max((len(printable(f)) for f in s.by_field), default=0)
    lines += [f"  {printable(f).ljust(width)}  {n:,}" for f, n in s.by_field.items()]
    return lines


def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="A", help="The older commit.")],
    b: Annotated[str, typer.Argument(metavar="B", help="The newer commit.",
                                     show_default=False)] = "HEAD",
    stat: Annotated[bool, typer.Option(
        "--stat", help="Only count: nodes changed, ops by kind, ops by field.")] = False,
    node: Annotated[list[int] | None, typer.Option(
        "--node", metavar="ID", help="Only this node (repeat for more).",
        show_default=False)] = None,
    type_name: Annotated[list[str] | None, typer.Option(
        "--type", "-t", metavar="TYPE", help="Only nodes of this type (repeat for more).",
        show_default=False)] = None,
    field: Annotated[list[str] | None, typer.Option(
        "--field", metavar="FIELD", help="Only changes in this field (repeat for more); "
        "leaves out node creations and deletions.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", metavar="N", min=1,
        help="Show at most N lines of changes (the rest is counted).")] = LIMIT,
    show_all: Annotated[bool, typer.Option("--all", help="Show every change.")] = False,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show what changed from commit A to commit B (default HEAD), path by path.

    One line per change, at its path inside the field: `+ items[3]: 5`
    (added, inserted), `- meta["k"]: 1` (removed), `name: "a" -> "b"`
    (replaced); created and deleted nodes are marked on their header. Values
    are cut to 80 characters and at most --limit changes are shown; --json
    prints the whole diff (schema in docs/DIFF.md). Commits are named by seq,
    id or unique id prefix, HEAD or HEAD~N; 0 is the empty state before the
    first commit.

    \b
    Example:
      myo diff HEAD~1
      myo diff 1 3 --stat
      myo diff 3f2a 9c1b --field items --json
    """
    path = resolve_file(ctx, file)
    with open_reader(path) as mem:
        sa, sb = mem.resolve(a), mem.resolve(b)
        d = mem.diff(sa, sb).filter(node=node or None, type=type_name or None,
                                    field=field or None)
        if json_out:
            doc = d.to_json() if not stat else _stat_json(mem, d, sa, sb)
            emit_json(doc)
            return
        head = style(f"diff {point_text(mem, sa)} -> {point_text(mem, sb)}", bold=True)
        if stat:
            page([head, *_stat_lines(d.stat())])
            return
        # on a terminal, through the pager as git does (cli/pager.py)
        page([head, *_ops_lines(d, None if show_all else limit)])


def _stat_json(mem: Memory, d: Diff, sa: int, sb: int) -> dict[str, Any]:
    s = d.stat()
    return {"schema": "myosotis.diff", "version": 1, "from": point_json(mem, sa),
            "to": point_json(mem, sb),
            "stat": {"nodes": s.nodes, "ops": s.ops, "by_op": s.by_op,
                     "by_field": s.by_field}}


def register(app: typer.Typer) -> None:
    """Add diff to ``app``."""
    add_commands(app, [("diff", diff, {})])
