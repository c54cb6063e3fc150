"""Read commands: history, show, ls, get, stats (diff: cmd_diff.py; per-node
history: cmd_history.py).

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
    Create,
    DamagedStageError,
    FieldNotFoundError,
    Memory,
    NodeNotFoundError,
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
from .output import (
    EXIT_USAGE,
    CliError,
    emit_json,
    out,
    printable,
    style,
    table,
    table_lines,
)
from .pager import page
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
            from myosotis import Stage
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


SHOW_WIDTH = 300  # characters of one value in `myo show`; `myo get` prints it whole


def _cut(text: str, field: str) -> str:
    if len(text) <= SHOW_WIDTH:
        return text
    return (f"{text[:SHOW_WIDTH]}… ({len(text) - SHOW_WIDTH:,} more characters; "
            f"`myo get NODE {printable(field)}` prints all)")


def history(
    ctx: typer.Context,
    limit: LimitOpt = None,
    reverse: Annotated[bool, typer.Option(
        "--reverse", help="Oldest first (default: newest first).")] = False,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="COMMIT|TIME",
        help="Only this commit and later ones, or (an ISO time such as 2026-11-29T10:00Z) "
             "commits made at or after that time.", show_default=False)] = None,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="COMMIT|TIME",
        help="Only this commit and earlier ones, or commits made at or before that time.",
        show_default=False)] = None,
    label: Annotated[str | None, typer.Option(
        "--label", metavar="REGEX",
        help="Only commits whose label matches this regular expression (re.search).",
        show_default=False)] = None,
    at: Annotated[str | None, typer.Option(
        "--at", metavar="COMMIT",
        help="The history as of COMMIT: it and the commits before it.",
        show_default=False)] = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the commits, newest first: seq, id, time (UTC) and label.

    Times are the writer's clock, which may go backwards: --since/--until with a
    time keep each commit whose own time is in range.

    \b
    Example:
      myo history
      myo history -n 5 --json
      myo history --since 2026-11-01 --label '^deploy'
    """
    path = resolve_file(ctx, file)
    if at is not None and until is not None:
        raise CliError("--at and --until do not go together; give one", EXIT_USAGE)
    with open_reader(path) as mem:
        found = mem.commits(since=since, until=until if at is None else at, label=label,
                            reverse=True)
        commits = list(islice(found, limit))  # newest first
        if reverse:
            commits.reverse()
        base = mem.info().base_seq
        if json_out:
            emit_json({"file": path,
                       "compacted_before": base + 1 if base else None,
                       "commits": [commit_json(c) for c in commits]})
            return
        if not commits:
            filtered = since is not None or until is not None or at is not None or \
                label is not None
            out("no commits match" if filtered else "no commits" if not base else
                f"no commits after the compacted base #{base}")
            return
        lines = table_lines(["SEQ", "ID", "TIME", "LABEL"],
                            [[str(c.seq), style(c.id[:12], fg="yellow"),
                              short_time(c.timestamp), printable(c.label or "")]
                             for c in commits], "rlll")
        if base:
            lines.append(f"(commits up to #{base} were folded into a snapshot by compaction)")
        page(lines)


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
        lines = [style(f"node {nid} {printable(n.type)}", bold=True) + mark +
                 f"  at {_where_text(mem, seq)}"]
        if fields:
            lines += table_lines(["FIELD", "VALUE"], [[printable(k), _cut(human(v), k)]
                                                      for k, v in fields.items()])
        else:
            lines.append("(no fields)")
        if refs:
            lines.append("references:")
            for f, p, t in refs:
                ttype, tdel = targets[t]
                lines.append(f"  {path_text(f, p)} -> @{t} {printable(ttype)}"
                             + (" (deleted)" if tdel else ""))
        page(lines)


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
            page(table_lines(["ID", "TYPE", "DELETED", "FIELDS"],
                             [[str(i), printable(t), "yes" if d else "", _fields_line(f)]
                              for i, t, d, f in nodes], "rlll"))
        else:
            page(table_lines(["ID", "TYPE", "FIELDS"],
                             [[str(i), printable(t), _fields_line(f)]
                              for i, t, d, f in nodes], "rll"))


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


def stats(ctx: typer.Context, at: AtOpt = None, file: FileOpt = None,
          json_out: JsonOpt = False) -> None:
    """Show file size, commits, checkpoints, nodes and bytes by kind.

    With --at, the node counts are those of that commit (the rest is the file's).

    \b
    Example:
      myo stats
      myo stats --json
      myo stats --at HEAD~10
    """
    path = resolve_file(ctx, file)
    with reading(path, at, False) as (mem, reader, seq):
        info, space = mem.info(), mem.space()
        live = deleted = 0
        for n in reader.nodes(deleted=True):
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
            "next_node_id": reader.next_node_id,
            "bytes": {"header": space.header, **{k: v[1] for k, v in space.kinds.items()},
                      "torn_tail": space.torn_tail, "free_space": space.free},
            "frames": {k: v[0] for k, v in space.kinds.items()},
            "format_version": info.format_version,
            "origin": None if info.origin is None else {
                "seq": info.origin.seq, "commit_id": info.origin.commit_id,
                "state_hash": info.origin.state_hash},
        }
        if at is not None and seq is not None:
            doc["nodes_at"] = point_json(mem, seq)  # the counts above are of that commit
        if json_out:
            emit_json(doc)
            return
        out(f"file         {printable(path)}  ({doc['file_size']:,} bytes)")
        out(f"head         {point_text(mem, info.head_seq)}")
        extra = f" (after a compacted base #{base})" if base else ""
        out(f"commits      {info.commits:,}{extra}")
        out(f"checkpoints  {info.checkpoints:,}")
        out(f"nodes        {live:,} live, {deleted:,} deleted (next id {reader.next_node_id})"
            + (f" at {point_text(mem, seq)}" if at is not None and seq is not None else ""))
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
    """Add history, show, ls, get and stats to ``app``."""
    add_commands(app, [
        ("history", history, {}),
        ("show", show, {}),
        ("ls", ls, {}),
        ("get", get, {"cls": ValueCommand}),
        ("stats", stats, {}),
    ])
