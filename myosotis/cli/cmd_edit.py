"""Commands that change a file: init, create, set, unset, delete, list and map
edits, status, commit, discard.

Every change is staged (stage.py): the command opens the file as its writer,
replays the stage through the public API, applies the new change through the
API (so the engine checks it), and only then rewrites the stage file.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from myosotis.api.handles import ListProxy, MapProxy
from myosotis.api.memory import Memory
from myosotis.errors import InvalidOperationError
from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Path,
    Set,
    Unset,
)

from . import stage as stg
from .common import (
    VALUE_HELP,
    FileOpt,
    InOpt,
    JsonOpt,
    StringOpt,
    ValueCommand,
    commit_json,
    point_json,
    point_text,
)
from .files import (
    ENV_FILE,
    head_of,
    open_reader,
    open_writer,
    resolve_file,
    root_obj,
    writer_lock,
)
from .output import EXIT_USAGE, CliError, emit_json, out, printable, style, warn
from .values import node_id, parse_value, path_text


def _stage_change(path: str, build: Callable[[Memory], list[Mutation]]) -> list[Mutation]:
    """Build operations against the staged state, check them through the API, stage them."""
    with open_writer(path) as mem, stg.staged(mem, path) as current:
        ops = build(mem)
        for op in ops:
            stg.apply(mem, op)
        stg.add(path, current, ops)
        return ops


def _path(mem: Memory, nid: int, field: str, steps: list[str] | None) -> Path:
    """Typed path steps: an index where the container is a list, a key where it is a map."""
    if not steps:
        return ()
    node = mem.get(nid)
    out_steps: list[int | str] = []
    for s in steps:
        cur = stg.container(node, field, tuple(out_steps))
        if isinstance(cur, ListProxy):
            out_steps.append(_index(s, len(cur), insert=False))
        elif isinstance(cur, MapProxy):
            out_steps.append(s)
        else:
            raise InvalidOperationError(
                f"{path_text(field, tuple(out_steps))} of node {nid} is not a list or map; "
                f"cannot step into it with --in {s}")
    return tuple(out_steps)


def _index(text: str, size: int, insert: bool) -> int:
    try:
        i = int(text)
    except ValueError:
        raise CliError(f"{text!r} is not a list index (an integer, negative counts from the "
                       "end)", EXIT_USAGE) from None
    j = i + size if i < 0 else i
    top = size if insert else size - 1
    if not 0 <= j <= top:
        raise CliError(f"list index {i} is out of range for a list of length {size}")
    return j


def register(app: typer.Typer) -> None:  # noqa: C901 - one function per command
    list_app = typer.Typer(
        name="list", help="Edit a list field: append, insert, set or remove (staged)."
        "\n\n\b\nExample:\n  myo list append 1 tags urgent\n  myo list remove 1 tags 0",
        no_args_is_help=True, rich_markup_mode=None)
    map_app = typer.Typer(
        name="map", help="Edit a map field: set or delete one key (staged).\n\n\b\nExample:\n"
        "  myo map set 1 config retries 3\n  myo map delete 1 config retries",
        no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(list_app, name="list")
    app.add_typer(map_app, name="map")

    @app.command("init")
    def init(
        ctx: typer.Context,
        path: Annotated[str | None, typer.Argument(
            metavar="PATH", help="The file to create (default: --file or $MYO_FILE).",
            show_default=False)] = None,
        file: FileOpt = None,
    ) -> None:
        """Create a new, empty .myo file.

        Refuses a path that already exists. A stage file left at PATH.stage by an
        earlier file of that name (deleted since) is removed, with a warning: it
        can never apply to the new file.

        \b
        Example:
          myo init state.myo
        """
        target = path or file or root_obj(ctx).get("file") or os.environ.get(ENV_FILE)
        if not target:
            raise CliError("name the file to create: myo init PATH", EXIT_USAGE)
        if os.path.exists(target):
            raise CliError(f"{target} already exists; nothing was changed")
        parent = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(parent):
            raise CliError(f"cannot create {target}: the directory {parent} does not exist")
        with Memory.open(target):  # holds the writer lock while the old stage goes (S11)
            leftover = os.path.exists(stg.stage_path(target))
            if leftover:
                try:
                    old = stg.read(target)
                    what = f"{len(old.ops) if old else 0} staged change(s)"
                except stg.DamagedStageError:
                    what = "damaged"
                stg.remove(target)
        out(f"created {printable(target)}")
        if leftover:
            warn(f"removed {stg.stage_path(target)} ({what}) left by an earlier {target}; "
                 "a stage belongs to the file it was made for")

    @app.command("create", cls=ValueCommand, epilog=VALUE_HELP)
    def create(
        ctx: typer.Context,
        type_name: Annotated[str, typer.Argument(metavar="TYPE", help="The node's type.")],
        assignments: Annotated[list[str] | None, typer.Argument(
            metavar="FIELD=VALUE", help="Initial fields.", show_default=False)] = None,
        string: StringOpt = False,
        file: FileOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Stage a new node of TYPE and print its id.

        The id is the one the node gets at `myo commit`.

        \b
        Example:
          myo create Agent
          myo create Agent goal=Explore energy=10 tags='["a","b"]'
        """
        path = resolve_file(ctx, file)
        fields: dict[str, Any] = {}
        for a in assignments or []:
            name, eq, text = a.partition("=")
            if not eq or not name:
                raise CliError(f"{a!r} is not FIELD=VALUE", EXIT_USAGE)
            if name in fields:
                raise CliError(f"field {name!r} is given twice", EXIT_USAGE)
            fields[name] = parse_value(text, raw=string)
        ops = _stage_change(path, lambda mem: [Create(mem.next_node_id, type_name, fields)])
        nid = ops[0].node
        if json_out:
            emit_json({"id": nid, "type": type_name, "staged": True})
        else:
            out(str(nid))

    @app.command("set", cls=ValueCommand, epilog=VALUE_HELP)
    def set_(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id (12 or @12).")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="Field name.")],
        value: Annotated[str, typer.Argument(metavar="VALUE", help="The new value.")],
        string: StringOpt = False,
        file: FileOpt = None,
    ) -> None:
        """Stage FIELD of NODE := VALUE (creates or replaces the field).

        \b
        Example:
          myo set 1 goal Explore
          myo set 1 energy 42
          myo set 1 code -s 007
          myo set 1 friend @2
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)
        v = parse_value(value, raw=string)
        _stage_change(path, lambda mem: [Set(nid, field, v)])

    @app.command("unset")
    def unset(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="Field name.")],
        file: FileOpt = None,
    ) -> None:
        """Stage the removal of FIELD from NODE (the field must exist).

        \b
        Example:
          myo unset 1 goal
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)
        _stage_change(path, lambda mem: [Unset(nid, field)])

    @app.command("delete")
    def delete(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        file: FileOpt = None,
    ) -> None:
        """Stage deleting NODE (a tombstone: history keeps it).

        References to it stay valid; nothing cascades.

        \b
        Example:
          myo delete 3
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)
        _stage_change(path, lambda mem: [Delete(nid)])

    # ------------------------------------------------------------ list edits

    @list_app.command("append", cls=ValueCommand, epilog=VALUE_HELP)
    def list_append(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="A list field.")],
        value: Annotated[str, typer.Argument(metavar="VALUE", help="The new element.")],
        steps: InOpt = None,
        string: StringOpt = False,
        file: FileOpt = None,
    ) -> None:
        """Stage appending VALUE to the list FIELD of NODE.

        \b
        Example:
          myo list append 1 tags urgent
          myo list append 1 matrix 7 --in 0     # append to matrix[0]
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)
        v = parse_value(value, raw=string)

        def build(mem: Memory) -> list[Mutation]:
            p = _path(mem, nid, field, steps)
            lst = stg.list_at(mem.get(nid), field, p)
            return [ListInsert(nid, field, p, len(lst), v)]

        _stage_change(path, build)

    @list_app.command("insert", cls=ValueCommand, epilog=VALUE_HELP)
    def list_insert(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="A list field.")],
        index: Annotated[str, typer.Argument(
            metavar="INDEX", help="Insert before this index (0 = first; the length appends; "
            "negative counts from the end).")],
        value: Annotated[str, typer.Argument(metavar="VALUE", help="The new element.")],
        steps: InOpt = None,
        string: StringOpt = False,
        file: FileOpt = None,
    ) -> None:
        """Stage inserting VALUE before INDEX in the list FIELD of NODE.

        \b
        Example:
          myo list insert 1 tags 0 first
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)
        v = parse_value(value, raw=string)

        def build(mem: Memory) -> list[Mutation]:
            p = _path(mem, nid, field, steps)
            lst = stg.list_at(mem.get(nid), field, p)
            return [ListInsert(nid, field, p, _index(index, len(lst), insert=True), v)]

        _stage_change(path, build)

    @list_app.command("set", cls=ValueCommand, epilog=VALUE_HELP)
    def list_set(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="A list field.")],
        index: Annotated[str, typer.Argument(metavar="INDEX",
                                             help="Element to replace (negative from the end).")],
        value: Annotated[str, typer.Argument(metavar="VALUE", help="The new element.")],
        steps: InOpt = None,
        string: StringOpt = False,
        file: FileOpt = None,
    ) -> None:
        """Stage replacing element INDEX of the list FIELD by VALUE.

        \b
        Example:
          myo list set 1 tags -1 done
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)
        v = parse_value(value, raw=string)

        def build(mem: Memory) -> list[Mutation]:
            p = _path(mem, nid, field, steps)
            lst = stg.list_at(mem.get(nid), field, p)
            return [ListReplace(nid, field, p, _index(index, len(lst), insert=False), v)]

        _stage_change(path, build)

    @list_app.command("remove", cls=ValueCommand)
    def list_remove(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="A list field.")],
        index: Annotated[str, typer.Argument(metavar="INDEX",
                                             help="Element to remove (negative from the end).")],
        steps: InOpt = None,
        file: FileOpt = None,
    ) -> None:
        """Stage removing element INDEX from the list FIELD of NODE.

        \b
        Example:
          myo list remove 1 tags 0
          myo list remove 1 tags -1
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)

        def build(mem: Memory) -> list[Mutation]:
            p = _path(mem, nid, field, steps)
            lst = stg.list_at(mem.get(nid), field, p)
            return [ListRemove(nid, field, p, _index(index, len(lst), insert=False))]

        _stage_change(path, build)

    # ------------------------------------------------------------ map edits

    @map_app.command("set", cls=ValueCommand, epilog=VALUE_HELP)
    def map_set(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="A map field.")],
        key: Annotated[str, typer.Argument(metavar="KEY", help="The key (any text).")],
        value: Annotated[str, typer.Argument(metavar="VALUE", help="The new value.")],
        steps: InOpt = None,
        string: StringOpt = False,
        file: FileOpt = None,
    ) -> None:
        """Stage KEY := VALUE in the map FIELD of NODE.

        \b
        Example:
          myo map set 1 config retries 3
          myo map set 1 config timeout 30 --in network   # config["network"]["timeout"]
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)
        v = parse_value(value, raw=string)

        def build(mem: Memory) -> list[Mutation]:
            p = _path(mem, nid, field, steps)
            return [MapSet(nid, field, p, key, v)]

        _stage_change(path, build)

    @map_app.command("delete")
    def map_delete(
        ctx: typer.Context,
        node: Annotated[str, typer.Argument(metavar="NODE", help="Node id.")],
        field: Annotated[str, typer.Argument(metavar="FIELD", help="A map field.")],
        key: Annotated[str, typer.Argument(metavar="KEY", help="The key to remove.")],
        steps: InOpt = None,
        file: FileOpt = None,
    ) -> None:
        """Stage removing KEY from the map FIELD of NODE (the key must exist).

        \b
        Example:
          myo map delete 1 config retries
        """
        path = resolve_file(ctx, file)
        nid = node_id(node)

        def build(mem: Memory) -> list[Mutation]:
            p = _path(mem, nid, field, steps)
            return [MapDelete(nid, field, p, key)]

        _stage_change(path, build)

    # ------------------------------------------------------------ the stage

    @app.command("status")
    def status(ctx: typer.Context, file: FileOpt = None, json_out: JsonOpt = False) -> None:
        """List the staged changes and the commit they apply to.

        \b
        Example:
          myo status
          myo status --json
        """
        path = resolve_file(ctx, file)
        with open_reader(path) as mem:
            st = stg.read(path)
            state = stg.status_of(mem, st)
            head_seq, _ = head_of(mem)
            ops = st.ops if st is not None and state != "committed" else ()
            if json_out:
                emit_json({
                    "file": path,
                    "head": point_json(mem, head_seq),
                    "stage": state,
                    "base": None if st is None else {
                        "seq": st.base_seq, "id": None if st.base_seq == 0 else st.base_id},
                    "changes": [stg.op_json(op) for op in ops],
                })
                return
            out(f"file {printable(path)}, head {point_text(mem, head_seq)}")
            if st is None or (state == "current" and not ops):
                out("nothing staged")
                return
            if state == "committed":
                out("the staged changes were already committed by an interrupted `myo "
                    "commit`; the next command that writes removes the stage")
                return
            if state == "stale":
                out(style(stg.stale_message(mem, st), fg="red"))
            elif state == "foreign":
                out(style(printable(stg.foreign_message(path, st)), fg="red"))
            out(f"{len(ops)} staged change{'s' if len(ops) != 1 else ''} "
                "(`myo commit MESSAGE` writes them, `myo discard` drops them):")
            for op in ops:
                out("  " + style(stg.describe(op), fg="green" if state == "current" else None))

    @app.command("commit")
    def commit(
        ctx: typer.Context,
        message: Annotated[str | None, typer.Argument(
            metavar="MESSAGE", help="The commit label.", show_default=False)] = None,
        m: Annotated[str | None, typer.Option(
            "--message", "-m", metavar="MESSAGE", help="The commit label (like git -m).",
            show_default=False)] = None,
        allow_empty: Annotated[bool, typer.Option(
            "--allow-empty", help="Write a commit even with nothing staged.")] = False,
        file: FileOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Write every staged change as one atomic commit.

        Refuses when another writer committed since the changes were staged.

        \b
        Example:
          myo commit "initial goal"
          myo commit -m "initial goal"
        """
        if message is not None and m is not None:
            raise CliError("give the message once: as an argument or with -m", EXIT_USAGE)
        label = message if message is not None else m
        path = resolve_file(ctx, file)
        when = [0]

        def clock() -> int:
            return when[0] or time.time_ns() // 1000

        with open_writer(path, clock=clock) as mem:
            current = stg.load_for_write(mem, path)
            if not current.ops and not allow_empty:
                raise CliError("nothing to commit (stage changes with create/set/...; "
                               "--allow-empty writes an empty commit)")
            stg.replay(mem, current)
            if current.ops:
                when[0] = time.time_ns() // 1000
                intent = stg.Intent(when[0], label or "")
                stg.write(path, dataclasses.replace(current, intent=intent))
            c = mem.commit(label, allow_empty=allow_empty)
            stg.remove(path)
        assert c is not None
        if json_out:
            emit_json({**commit_json(c), "changes": len(current.ops)})
        else:
            n = len(current.ops)
            out(f"[#{c.seq} {c.id[:12]}] {printable(label or '')}".rstrip() +
                f" ({n} change{'s' if n != 1 else ''})")

    @app.command("discard")
    def discard(ctx: typer.Context, file: FileOpt = None, json_out: JsonOpt = False) -> None:
        """Drop every staged change (even a damaged or stale stage).

        \b
        Example:
          myo discard
        """
        path = resolve_file(ctx, file)
        with writer_lock(path):
            try:
                st = stg.read(path)
                n = len(st.ops) if st is not None else 0
            except stg.DamagedStageError:
                n = -1
            removed = stg.remove(path)
        if json_out:
            emit_json({"discarded": max(n, 0) if removed else 0, "damaged": n < 0})
        elif not removed:
            out("nothing staged")
        elif n < 0:
            out("removed the damaged stage file")
        else:
            out(f"discarded {n} staged change{'s' if n != 1 else ''}")

