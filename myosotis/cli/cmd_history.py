"""Per-node history commands: log, blame, refs.

Thin over ``Memory.log``, ``Memory.blame`` and ``Memory.referrers``, which
answer through the history index (``<file>.idx``), not by diffing every
commit. They open the file read-only and read committed state only.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer

from myosotis import Commit, Memory

from .common import AtOpt, FileOpt, JsonOpt, add_commands, commit_json, point_json, short_time
from .files import open_reader, resolve_file
from .output import emit_json, out, printable, style, table
from .pager import page
from .stage import describe, op_json
from .values import node_id, path_text

NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="Node id (12 or @12).")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", "-n", metavar="N", min=1, help="Show at most N commits.", show_default=False)]


def _upto(mem: Memory, at: str | None) -> int:
    return mem.resolve(at if at is not None else "HEAD")


def _commit_line(c: Commit) -> str:
    label = f"  {printable(c.label)}" if c.label else ""
    return style(f"#{c.seq} {c.id[:12]}", fg="yellow") + f"  {short_time(c.timestamp)}" + label


def _at_head(mem: Memory, seq: int) -> bool:
    return seq == mem.resolve("HEAD")


def _describe_node(mem: Memory, nid: int, seq: int) -> str:
    """``Type`` (a type never changes, so it is read at HEAD: no time travel) and,
    at HEAD, whether the node is deleted."""
    n = mem[nid]
    return printable(n.type) + (" (deleted)" if _at_head(mem, seq) and n.deleted else "")


def _node_title(mem: Memory, nid: int, seq: int) -> str:
    return f"node {nid} {_describe_node(mem, nid, seq)}"


def log(
    ctx: typer.Context,
    node: NodeArg,
    field: Annotated[str | None, typer.Argument(
        metavar="[FIELD]", help="Only the commits that changed this field.",
        show_default=False)] = None,
    limit: LimitOpt = None,
    at: AtOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the commits that changed one node (or one of its fields), newest first,
    with the changes each made to it.

    Answered through the history index (<file>.idx, rebuilt from the log when
    missing), in time proportional to the node's changes.

    \b
    Example:
      myo log 1
      myo log 1 goal -n 3 --json
    """
    path = resolve_file(ctx, file)
    nid = node_id(node)
    with open_reader(path) as mem:
        seq = _upto(mem, at)
        entries = list(islice(mem.log(nid, field, at=seq), limit))
        if json_out:
            emit_json({"node": nid, "field": field, "at": point_json(mem, seq), "commits": [
                {**commit_json(e.commit), "changes": [op_json(m) for m in e.mutations]}
                for e in entries]})
            return
        lines = [style(_node_title(mem, nid, seq), bold=True)
                 + (f"  field {printable(field)}" if field is not None else "")]
        if not entries:
            base = mem.info().base_seq
            lines.append(f"no commit after #{base} changed it" if base else
                         "no commit changed it")
        for e in entries:
            lines.append(_commit_line(e.commit))
            lines += ["    " + describe(m) for m in e.mutations]
        page(lines)


def blame(
    ctx: typer.Context,
    node: NodeArg,
    at: AtOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show, for each field of a node, the commit that last set it.

    A field set before the compacted base is shown with that base.

    \b
    Example:
      myo blame 1
      myo blame 1 --at HEAD~2 --json
    """
    path = resolve_file(ctx, file)
    nid = node_id(node)
    with open_reader(path) as mem:
        seq = _upto(mem, at)
        fields = mem.blame(nid, at=seq)
        if json_out:
            emit_json({"node": nid, "at": point_json(mem, seq),
                       "fields": {k: commit_json(c) for k, c in fields.items()}})
            return
        out(style(_node_title(mem, nid, seq), bold=True))
        if not fields:
            out("no fields")
        table(["FIELD", "COMMIT", "TIME", "LABEL"], [
            [printable(k), f"#{c.seq} {c.id[:12]}", short_time(c.timestamp),
             printable(c.label or "")] for k, c in fields.items()])


def refs(
    ctx: typer.Context,
    node: NodeArg,
    at: AtOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the places (node and field path) that reference a node.

    Tombstoned nodes are included: their fields are kept. Answered through the
    history index, at HEAD or at any past commit with --at.

    \b
    Example:
      myo refs 2
      myo refs 2 --at 5 --json
    """
    path = resolve_file(ctx, file)
    nid = node_id(node)
    with open_reader(path) as mem:
        seq = _upto(mem, at)
        found = mem.referrers(nid, at=seq)
        if json_out:
            emit_json({"node": nid, "at": point_json(mem, seq), "referrers": [
                {"node": r.node, "type": mem[r.node].type, "field": r.path[0],
                 "path": list(r.path[1:])} for r in found]})
            return
        if not found:
            out(f"nothing references node {nid}")
        page([f"@{r.node}.{path_text(str(r.path[0]), tuple(r.path[1:]))}  "
              f"{_describe_node(mem, r.node, seq)}" for r in found])


def register(app: typer.Typer) -> None:
    """Add log, blame and refs to ``app``."""
    add_commands(app, [
        ("log", log, {}),
        ("blame", blame, {}),
        ("refs", refs, {}),
    ])
