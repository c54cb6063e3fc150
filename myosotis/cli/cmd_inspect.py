"""Read commands: history, show, ls, get, log, stats, diff.

They open the file read-only (no lock) and show committed state, at HEAD or
``--at COMMIT``; ``--staged`` adds the staged changes (show, ls, get).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Annotated, Any

import typer

from myosotis import (
    MISSING,
    Create,
    DamagedStageError,
    Diff,
    FieldChange,
    FieldNotFoundError,
    Memory,
    NodeChange,
    NodeNotFoundError,
    Stage,
    View,
)

from . import stage as stg
from .common import (
    AtOpt,
    FileOpt,
    InOpt,
    JsonOpt,
    StagedOpt,
    ValueCommand,
    add_commands,
    commit_json,
    point_json,
    point_text,
    short_time,
)
from .files import head_of, open_reader, open_writer, resolve_file
from .output import EXIT_USAGE, CliError, emit_json, out, printable, style, table
from .values import human, node_id, path_text, references, to_json

Reader = Memory | View
NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="Node id (12 or @12).")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", "-n", metavar="N", min=1, help="Show at most N commits.", show_default=False)]


@contextmanager
def reading(path: str, at: str | None, staged: bool) -> Iterator[tuple[Memory, Reader, int | None]]:
    """``(memory, what to read from, seq)``; seq is None for the staged state."""
    if staged:
        if at is not None:
            raise CliError("--staged and --at do not go together", EXIT_USAGE)
        with open_writer(path) as mem, stg.staged(mem, path):
            yield mem, mem, None
        return
    with open_reader(path) as mem:
        seq = mem.resolve(at if at is not None else "HEAD")
        yield mem, (mem if seq == head_of(mem)[0] else mem.at(seq)), seq


def _where(mem: Memory, seq: int | None) -> dict[str, Any]:
    return {"staged": True, **point_json(mem, head_of(mem)[0])} if seq is None else {
        "staged": False, **point_json(mem, seq)}


def _where_text(mem: Memory, seq: int | None) -> str:
    if seq is None:
        return f"{point_text(mem, head_of(mem)[0])} + staged changes"
    return point_text(mem, seq)


def _node(reader: Reader, nid: int, path: str, seq: int | None) -> Any:
    try:
        return reader.get(nid)
    except NodeNotFoundError:
        if seq is not None:
            try:
                st = Stage.read(path)
            except DamagedStageError:
                st = None
            if st is not None and any(type(op) is Create and op.node == nid
                                      for op in st.ops):
                raise CliError(f"node {nid} is staged but not committed; use --staged to "
                               "read it, or `myo commit` first") from None
        raise


def _fields_line(fields: dict[str, Any], width: int = 70) -> str:
    text = ", ".join(f"{printable(k)}={human(v)}" for k, v in fields.items())
    return text if len(text) <= width else text[: width - 3] + "..."


def _change_json(fc: FieldChange) -> dict[str, Any]:
    d: dict[str, Any] = {"field": fc.field}
    if fc.old is MISSING:
        d["change"] = "added"
    elif fc.new is MISSING:
        d["change"] = "removed"
    else:
        d["change"] = "changed"
    if fc.old is not MISSING:
        d["old"] = to_json(fc.old)
    if fc.new is not MISSING:
        d["new"] = to_json(fc.new)
    return d


def _node_change_json(nc: NodeChange) -> dict[str, Any]:
    return {"id": nc.id, "type": nc.type, "status": nc.status,
            "fields": [_change_json(fc) for fc in nc.fields]}


def _change_lines(nc: NodeChange, indent: str = "    ") -> list[str]:
    lines = []
    for fc in nc.fields:
        name = printable(fc.field)
        if fc.old is MISSING:
            lines.append(indent + style(f"+ {name}: {human(fc.new)}", fg="green"))
        elif fc.new is MISSING:
            lines.append(indent + style(f"- {name}: {human(fc.old)}", fg="red"))
        else:
            lines.append(indent + f"{name}: " + style(human(fc.old), fg="red") + " -> "
                         + style(human(fc.new), fg="green"))
    return lines


_STATUS = {"created": ("+", "green"), "deleted": ("-", "red"), "changed": ("~", "yellow"),
           "uncreated": ("-", "red"), "undeleted": ("+", "green")}


def _diff_lines(d: Diff) -> list[str]:
    lines = []
    for nc in d.nodes:
        mark, colour = _STATUS.get(nc.status, ("~", "yellow"))
        head = f"{mark} node {nc.id} {printable(nc.type)}"
        if nc.status != "changed":
            head += f" ({nc.status})"
        lines.append(style(head, fg=colour, bold=True))
        lines += _change_lines(nc)
    return lines


def history(
    ctx: typer.Context,
    limit: LimitOpt = None,
    reverse: Annotated[bool, typer.Option(
        "--reverse", help="Oldest first (default: newest first).")] = False,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the commits, newest first: seq, id, time (UTC) and label.

    \b
    Example:
      myo history
      myo history -n 5 --json
    """
    path = resolve_file(ctx, file)
    with open_reader(path) as mem:
        commits = list(islice(mem.commits(reverse=True), limit))  # newest first
        if reverse:
            commits.reverse()
        base = mem.info().base_seq
        if json_out:
            emit_json({"file": path,
                       "compacted_before": base + 1 if base else None,
                       "commits": [commit_json(c) for c in commits]})
            return
        if not commits:
            out("no commits" if not base else f"no commits after the compacted base #{base}")
            return
        table(["SEQ", "ID", "TIME", "LABEL"],
              [[str(c.seq), style(c.id[:12], fg="yellow"), short_time(c.timestamp),
                printable(c.label or "")] for c in commits], "rlll")
        if base:
            out(f"(commits up to #{base} were folded into a snapshot by compaction)")


def show(
    ctx: typer.Context,
    node: NodeArg,
    at: AtOpt = None,
    staged: StagedOpt = False,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one node: type, fields, tombstone and references.

    \b
    Example:
      myo show 1
      myo show 1 --at HEAD~2
      myo show 1 --at 3f2a --json
    """
    path = resolve_file(ctx, file)
    nid = node_id(node)
    with reading(path, at, staged) as (mem, reader, seq):
        n = _node(reader, nid, path, seq)
        fields = n.fields()
        refs = [(f, p, t) for f, v in fields.items() for p, t in references(v)]
        targets = {}
        for _, _, t in refs:
            if t not in targets:
                tn = reader.get(t)
                targets[t] = (tn.type, tn.deleted)
        if json_out:
            emit_json({
                "id": nid, "type": n.type, "deleted": n.deleted, "at": _where(mem, seq),
                "fields": {k: to_json(v) for k, v in fields.items()},
                "references": [{"field": f, "path": list(p), "to": t,
                                "to_type": targets[t][0], "to_deleted": targets[t][1]}
                               for f, p, t in refs]})
            return
        mark = style(" (deleted)", fg="red") if n.deleted else ""
        out(style(f"node {nid} {printable(n.type)}", bold=True) + mark +
            f"  at {_where_text(mem, seq)}")
        if fields:
            table(["FIELD", "VALUE"], [[printable(k), human(v)] for k, v in fields.items()])
        else:
            out("(no fields)")
        if refs:
            out("references:")
            for f, p, t in refs:
                ttype, tdel = targets[t]
                out(f"  {path_text(f, p)} -> @{t} {printable(ttype)}"
                    + (" (deleted)" if tdel else ""))


def ls(
    ctx: typer.Context,
    type_name: Annotated[str | None, typer.Option(
        "--type", "-t", metavar="TYPE", help="Only nodes of this type.",
        show_default=False)] = None,
    deleted: Annotated[bool, typer.Option(
        "--deleted", "-d", help="Include deleted (tombstoned) nodes.")] = False,
    at: AtOpt = None,
    staged: StagedOpt = False,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List nodes in id order (--deleted adds tombstoned ones).

    \b
    Example:
      myo ls
      myo ls --type Agent --at HEAD~1
    """
    path = resolve_file(ctx, file)
    with reading(path, at, staged) as (mem, reader, seq):
        nodes = [(n.id, n.type, n.deleted, n.fields())
                 for n in reader.nodes(type_name, deleted=deleted)]
        if json_out:
            emit_json({"at": _where(mem, seq), "type": type_name, "nodes": [
                {"id": i, "type": t, "deleted": d,
                 "fields": {k: to_json(v) for k, v in f.items()}}
                for i, t, d, f in nodes]})
            return
        if not nodes:
            out("no nodes" + (f" of type {printable(type_name)}" if type_name else ""))
            return
        if deleted:
            table(["ID", "TYPE", "DELETED", "FIELDS"],
                  [[str(i), printable(t), "yes" if d else "", _fields_line(f)]
                   for i, t, d, f in nodes], "rlll")
        else:
            table(["ID", "TYPE", "FIELDS"],
                  [[str(i), printable(t), _fields_line(f)] for i, t, d, f in nodes],
                  "rll")


def get(
    ctx: typer.Context,
    node: NodeArg,
    field: Annotated[str, typer.Argument(metavar="FIELD", help="Field name.")],
    steps: InOpt = None,
    at: AtOpt = None,
    staged: StagedOpt = False,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print one field's value (a string as plain text).

    \b
    Example:
      myo get 1 goal
      myo get 1 config --in network --json
    """
    path = resolve_file(ctx, file)
    nid = node_id(node)
    with reading(path, at, staged) as (mem, reader, seq):
        n = _node(reader, nid, path, seq)
        fields = n.fields()
        if field not in fields:
            raise FieldNotFoundError(f"node {nid} ({n.type}) has no field {field!r}")
        v = fields[field]
        p: list[int | str] = []
        for s in steps or []:
            if isinstance(v, list):
                try:
                    i = int(s)
                    v = v[i]
                except (ValueError, IndexError):
                    raise CliError(f"{path_text(field, tuple(p))} has no element {s!r} "
                                   f"(length {len(v)})") from None
                p.append(i)
            elif isinstance(v, dict):
                if s not in v:
                    raise CliError(f"{path_text(field, tuple(p))} has no key {s!r}")
                v = v[s]
                p.append(s)
            else:
                raise CliError(f"{path_text(field, tuple(p))} is not a list or map")
        if json_out:
            emit_json({"node": nid, "field": field, "path": p, "at": _where(mem, seq),
                       "value": to_json(v)})
        else:
            # a string as text (lines and tabs kept; --json for the exact value)
            out(printable(v, keep="\n\t") if isinstance(v, str) else human(v))


def log(
    ctx: typer.Context,
    node: NodeArg,
    limit: LimitOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the commits that changed one node, with what changed.

    \b
    Example:
      myo log 1
      myo log 1 -n 3 --json
    """
    path = resolve_file(ctx, file)
    nid = node_id(node)
    with open_reader(path) as mem:
        if nid not in mem:
            raise NodeNotFoundError(f"no node {nid}")
        entries = []
        base = mem.info().base_seq
        for c in mem.commits(reverse=True):
            if c.next_node_id <= nid:
                break  # the node did not exist yet at or before this commit
            d = mem.diff(c.seq - 1, c.seq) if c.seq - 1 >= base else None
            change = next((x for x in d.nodes if x.id == nid), None) if d else None
            if change is not None:
                entries.append((c, change))
                if limit is not None and len(entries) >= limit:
                    break
        if json_out:
            emit_json({"node": nid, "commits": [
                {**commit_json(c), "status": ch.status,
                 "fields": [_change_json(fc) for fc in ch.fields]} for c, ch in entries]})
            return
        if not entries:
            out(f"no commit after #{base} changed node {nid}" if base else
                f"no commit changed node {nid}")
            return
        for c, ch in entries:
            label = f"  {printable(c.label)}" if c.label else ""
            what = "" if ch.status == "changed" else f"  ({ch.status} {printable(ch.type)})"
            out(style(f"#{c.seq} {c.id[:12]}", fg="yellow") + f"  {short_time(c.timestamp)}"
                + label + what)
            for line in _change_lines(ch):
                out(line)


def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="A", help="The older commit.")],
    b: Annotated[str, typer.Argument(metavar="B", help="The newer commit.",
                                     show_default=False)] = "HEAD",
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show what changed from commit A to commit B (default HEAD).

    Created and deleted nodes, and each changed field with its old and new
    value. Commits are named by seq, id or unique id prefix, HEAD or HEAD~N;
    0 is the empty state before the first commit.

    \b
    Example:
      myo diff 1 3
      myo diff HEAD~1
      myo diff 3f2a 9c1b --json
    """
    path = resolve_file(ctx, file)
    with open_reader(path) as mem:
        sa, sb = mem.resolve(a), mem.resolve(b)
        d = mem.diff(sa, sb)
        if json_out:
            emit_json({"from": point_json(mem, sa), "to": point_json(mem, sb),
                       "nodes": [_node_change_json(nc) for nc in d.nodes]})
            return
        out(style(f"diff {point_text(mem, sa)} -> {point_text(mem, sb)}", bold=True))
        if not d.nodes:
            out("no changes")
        for line in _diff_lines(d):
            out(line)


def stats(ctx: typer.Context, file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """Show file size, commits, checkpoints, nodes and bytes by kind.

    \b
    Example:
      myo stats
      myo stats --json
    """
    path = resolve_file(ctx, file)
    with open_reader(path) as mem:
        info, space = mem.info(), mem.space()
        live = deleted = 0
        for n in mem.nodes(deleted=True):
            if n.deleted:
                deleted += 1
            else:
                live += 1
        base = info.base_seq
        doc = {
            "file": path,
            "file_size": space.file_size,
            "head": point_json(mem, info.head_seq),
            "commits": info.commits,
            "compacted_before": base + 1 if base else None,
            "checkpoints": info.checkpoints,
            "genesis": info.has_genesis,
            "nodes": {"live": live, "deleted": deleted, "total": live + deleted},
            "next_node_id": info.next_node_id,
            "bytes": {"header": space.header, **{k: v[1] for k, v in space.kinds.items()},
                      "torn_tail": space.torn_tail, "free_space": space.free},
            "frames": {k: v[0] for k, v in space.kinds.items()},
            "format_version": info.format_version,
            "origin": None if info.origin is None else {
                "seq": info.origin.seq, "commit_id": info.origin.commit_id,
                "state_hash": info.origin.state_hash},
        }
        if json_out:
            emit_json(doc)
            return
        out(f"file         {printable(path)}  ({doc['file_size']:,} bytes)")
        out(f"head         {point_text(mem, info.head_seq)}")
        extra = f" (after a compacted base #{base})" if base else ""
        out(f"commits      {info.commits:,}{extra}")
        out(f"checkpoints  {info.checkpoints:,}")
        out(f"nodes        {live:,} live, {deleted:,} deleted (next id {info.next_node_id})")
        if info.origin is not None:
            o = info.origin
            out(f"forked from  #{o.seq} {(o.commit_id or '')[:12]} (state {o.state_hash[:12]})")
    rows = [["header", "1", f"{space.header:,}"]]
    rows += [[k, f"{v[0]:,}", f"{v[1]:,}"] for k, v in space.kinds.items()]
    if space.torn_tail:
        rows.append(["torn tail", "", f"{space.torn_tail:,}"])
    if space.free:
        rows.append(["free space", "", f"{space.free:,}"])
    table(["KIND", "FRAMES", "BYTES"], rows, "lrr")


def register(app: typer.Typer) -> None:
    """Add history, show, ls, get, log, diff and stats to ``app``."""
    add_commands(app, [
        ("history", history, {}),
        ("show", show, {}),
        ("ls", ls, {}),
        ("get", get, {"cls": ValueCommand}),
        ("log", log, {}),
        ("diff", diff, {}),
        ("stats", stats, {}),
    ])
