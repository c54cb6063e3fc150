"""Graph commands: walk (what a node reaches), orphans (what no root reaches) and graph
(a Graphviz picture).

Thin layers over ``Memory.walk``, ``Memory.orphans`` and ``Memory.graph``: they open the file
read-only and read committed state at HEAD or ``--at COMMIT``. Long human
output goes through the pager when stdout is a terminal (cli/pager.py).
"""

from __future__ import annotations

import os
from enum import Enum
from itertools import islice
from typing import Annotated, Any

import typer

from myosotis import Memory, View, WalkStep

from .common import AtOpt, FileOpt, JsonOpt, add_commands, point_json, point_text
from .files import head_of, open_reader, resolve_file
from .output import emit_json, out, printable, style, table_lines
from .pager import page
from .values import node_id, path_text

NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="Node id (12 or @12).")]
DepthOpt = Annotated[int | None, typer.Option(
    "--depth", "-d", metavar="N", min=0,
    help="Follow at most N references from the start.", show_default=False)]
FollowOpt = Annotated[list[str] | None, typer.Option(
    "--follow", metavar="FIELD",
    help="Follow only references inside this field (repeat for several). Default: all.",
    show_default=False)]


def _reader(mem: Memory, at: str | None) -> tuple[Memory | View, int]:
    seq = mem.resolve(at if at is not None else "HEAD")
    return (mem if seq == head_of(mem)[0] else mem.at(seq)), seq


def _step_json(s: WalkStep) -> dict[str, Any]:
    return {"id": s.node.id, "type": s.node.type, "deleted": s.node.deleted,
            "depth": s.depth, "parent": s.parent, "via": list(s.via)}


def _via_text(s: WalkStep) -> str:
    if s.parent is None:
        return "(start)"
    field, *rest = s.via
    return f"@{s.parent} {path_text(str(field), tuple(rest))}"


def walk(
    ctx: typer.Context,
    node: NodeArg,
    depth: DepthOpt = None,
    follow: FollowOpt = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", metavar="N", min=0,
        help="Show at most N nodes (0: all).")] = 1000,
    at: AtOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the nodes NODE reaches through references, breadth-first.

    References inside lists and maps count. Each node is shown once, with its
    depth and the reference that reached it first (node and path). Tombstoned
    nodes are walked through like others and marked.

    \b
    Example:
      myo walk 1
      myo walk 1 --depth 2 --follow friends --json
      myo walk 1 --at HEAD~3
    """
    path = resolve_file(ctx, file)
    nid = node_id(node)
    with open_reader(path) as mem:
        reader, seq = _reader(mem, at)
        steps = reader.walk(nid, depth=depth, follow=follow or None)
        shown = list(steps) if limit == 0 else list(islice(steps, limit))
        truncated = limit != 0 and next(steps, None) is not None
        if json_out:
            emit_json({"at": point_json(mem, seq), "start": nid, "depth": depth,
                       "follow": follow or None, "nodes": [_step_json(s) for s in shown],
                       "truncated": truncated})
            return
        rows = [[str(s.depth), str(s.node.id),
                 printable(s.node.type) + (" (deleted)" if s.node.deleted else ""),
                 _via_text(s)] for s in shown]
        lines = [style(f"walk from @{nid} at {point_text(mem, seq)}", bold=True)]
        lines += table_lines(["DEPTH", "ID", "TYPE", "VIA"], rows, "rrll")
        if truncated:
            lines.append(f"(stopped after {limit} nodes; --limit 0 shows all)")
        page(lines)


def orphans(
    ctx: typer.Context,
    roots: Annotated[list[str], typer.Argument(
        metavar="ROOT", help="Root node ids (12 or @12).")],
    limit: Annotated[int, typer.Option(
        "--limit", "-n", metavar="N", min=0,
        help="Show at most N nodes (0: all).")] = 1000,
    at: AtOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the live nodes that no ROOT reaches through references.

    Reads every node once. Tombstoned nodes are never listed, but references
    in them still count.

    \b
    Example:
      myo orphans 1
      myo orphans 1 2 --at HEAD~1 --json
    """
    path = resolve_file(ctx, file)
    ids = [node_id(r) for r in roots]
    with open_reader(path) as mem:
        reader, seq = _reader(mem, at)
        found = reader.orphans(ids)
        shown = found if limit == 0 else found[:limit]
        if json_out:
            emit_json({"at": point_json(mem, seq), "roots": ids, "count": len(found),
                       "orphans": [{"id": i, "type": reader[i].type} for i in shown]})
            return
        where = point_text(mem, seq)
        if not found:
            out(f"no orphans at {where}: every live node is reachable")
            return
        lines = [style(f"{len(found):,} orphan{'s' if len(found) != 1 else ''} at {where}",
                       bold=True)]
        lines += table_lines(["ID", "TYPE"], [[str(i), printable(reader[i].type)]
                                              for i in shown], "rl")
        if len(shown) < len(found):
            lines.append(f"(showing {len(shown)}; --limit 0 shows all)")
        page(lines)


class GraphFormat(str, Enum):
    dot = "dot"
    svg = "svg"


def _write_output(target: str, text: str) -> None:
    """Write ``text`` to ``target`` whole or not at all (temporary file, rename)."""
    import tempfile  # only `myo graph -o` writes a file
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".myo-graph-", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # as a plain open() would make it (mkstemp: 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def graph(
    ctx: typer.Context,
    nodes: Annotated[list[str] | None, typer.Argument(
        metavar="NODE", help="Start nodes (default: every node).",
        show_default=False)] = None,
    depth: Annotated[int, typer.Option(
        "--depth", "-d", metavar="N", min=0,
        help="Draw what the start nodes reach within N references.")] = 1,
    fields: Annotated[list[str] | None, typer.Option(
        "--field", metavar="FIELD",
        help="Show this field in the boxes (repeat; default: up to 8 fields that hold "
             "no reference).", show_default=False)] = None,
    fmt: Annotated[GraphFormat, typer.Option(
        "--format", help="dot (Graphviz text) or svg (needs the `dot` program).",
        case_sensitive=False)] = GraphFormat.dot,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.",
        show_default=False)] = None,
    max_nodes: Annotated[int, typer.Option(
        "--max-nodes", metavar="N", min=1,
        help="Draw at most N nodes; a note counts the rest.")] = 500,
    at: AtOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Draw part of the graph as Graphviz DOT (or SVG through `dot`).

    Boxes show `#id Type` and some fields; tombstones are dashed and grey;
    each reference between drawn nodes is an arrow labelled with its field
    path.

    \b
    Example:
      myo graph 1 --depth 2 | dot -Tpng > graph.png
      myo graph 1 --format svg -o graph.svg
      myo graph --at HEAD~1 --field name
    """
    path = resolve_file(ctx, file)
    starts = [node_id(n) for n in nodes] if nodes else None
    with open_reader(path) as mem:
        reader, seq = _reader(mem, at)
        text = reader.graph(starts, depth=depth, fields=fields, format=fmt.value,
                            max_nodes=max_nodes)
        where = point_json(mem, seq)
    if output is not None:
        _write_output(output, text)
    if json_out:
        emit_json({"at": where, "format": fmt.value, "output": output,
                   "text": None if output is not None else text})
    elif output is None:
        typer.echo(text, nl=False)
    else:
        out(f"wrote {printable(output)} ({fmt.value}, {len(text.encode('utf-8')):,} bytes)")


def register(app: typer.Typer) -> None:
    """Add walk, orphans and graph to ``app``."""
    add_commands(app, [
        ("walk", walk, {}),
        ("orphans", orphans, {}),
        ("graph", graph, {}),
    ])
