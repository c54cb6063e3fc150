"""Commands that make a file or stage a change: init, create, set, unset, delete,
and the list and map edits.

Every change is staged (stage.py): the command opens the file as its writer,
replays the stage with ``Memory.stage``, stages the new change the same way
(so the engine checks it), and only then rewrites the stage file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any

import typer

from myosotis import (
    Create,
    DamagedStageError,
    Delete,
    InvalidOperationError,
    ListInsert,
    ListProxy,
    ListRemove,
    ListReplace,
    MapDelete,
    MapProxy,
    MapSet,
    Memory,
    Mutation,
    Path,
    Set,
    Unset,
)

from . import stage as stg
from .common import VALUE_COMMAND, FileOpt, InOpt, JsonOpt, StringOpt, ValueCommand, add_commands
from .files import ENV_FILE, open_writer, resolve_file, root_obj
from .output import EXIT_USAGE, CliError, emit_json, out, printable, warn
from .values import node_id, parse_value, path_text

NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="Node id.")]
ValueArg = Annotated[str, typer.Argument(metavar="VALUE", help="The new element.")]


def _stage_change(path: str, build: Callable[[Memory], list[Mutation]]) -> list[Mutation]:
    """Build operations against the staged state, stage them on the Memory (the engine
    checks them, all or nothing), then add them to the stage file."""
    with open_writer(path) as mem, stg.staged(mem, path) as current:
        ops = build(mem)
        mem.stage(*ops)
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


def _list_edit(path: str, nid: int, field: str, steps: list[str] | None,
               edit: Callable[[Path, int], Mutation]) -> None:
    """Stage ``edit(path, length)`` on the list FIELD (at ``--in`` steps) of node ``nid``."""
    def build(mem: Memory) -> list[Mutation]:
        p = _path(mem, nid, field, steps)
        return [edit(p, len(stg.list_at(mem.get(nid), field, p)))]

    _stage_change(path, build)


def _map_at(mem: Memory, nid: int, field: str, steps: list[str] | None) -> Path:
    """The path of the map a map edit changes; refuses, saying why, what is not a map."""
    p = _path(mem, nid, field, steps)
    stg.map_at(mem.get(nid), field, p)
    return p


# --------------------------------------------------------------------------
# the file and its nodes


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
    from myosotis import Stage
    target = path or file or root_obj(ctx).get("file") or os.environ.get(ENV_FILE)
    if not target:
        raise CliError("name the file to create: myo init PATH", EXIT_USAGE)
    if os.path.exists(target):
        raise CliError(f"{target} already exists; nothing was changed")
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise CliError(f"cannot create {target}: the directory {parent} does not exist")
    with Memory.open(target):  # holds the writer lock while the old stage goes (S11)
        leftover = os.path.exists(Stage.path_for(target))
        if leftover:
            try:
                old = Stage.read(target)
                what = f"{len(old.ops) if old else 0} staged change(s)"
            except DamagedStageError:
                what = "damaged"
            Stage.remove(target)
    out(f"created {printable(target)}")
    if leftover:
        warn(f"removed {Stage.path_for(target)} ({what}) left by an earlier {target}; "
             "a stage belongs to the file it was made for")


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


def unset(
    ctx: typer.Context,
    node: NodeArg,
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


def delete(
    ctx: typer.Context,
    node: NodeArg,
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


# --------------------------------------------------------------------------
# list edits

ListFieldArg = Annotated[str, typer.Argument(metavar="FIELD", help="A list field.")]


def list_append(
    ctx: typer.Context,
    node: NodeArg,
    field: ListFieldArg,
    value: ValueArg,
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
    _list_edit(path, nid, field, steps, lambda p, size: ListInsert(nid, field, p, size, v))


def list_insert(
    ctx: typer.Context,
    node: NodeArg,
    field: ListFieldArg,
    index: Annotated[str, typer.Argument(
        metavar="INDEX", help="Insert before this index (0 = first; the length appends; "
        "negative counts from the end).")],
    value: ValueArg,
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
    _list_edit(path, nid, field, steps, lambda p, size: ListInsert(
        nid, field, p, _index(index, size, insert=True), v))


def list_set(
    ctx: typer.Context,
    node: NodeArg,
    field: ListFieldArg,
    index: Annotated[str, typer.Argument(metavar="INDEX",
                                         help="Element to replace (negative from the end).")],
    value: ValueArg,
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
    _list_edit(path, nid, field, steps, lambda p, size: ListReplace(
        nid, field, p, _index(index, size, insert=False), v))


def list_remove(
    ctx: typer.Context,
    node: NodeArg,
    field: ListFieldArg,
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
    _list_edit(path, nid, field, steps, lambda p, size: ListRemove(
        nid, field, p, _index(index, size, insert=False)))


# --------------------------------------------------------------------------
# map edits

MapFieldArg = Annotated[str, typer.Argument(metavar="FIELD", help="A map field.")]


def map_set(
    ctx: typer.Context,
    node: NodeArg,
    field: MapFieldArg,
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
    _stage_change(path, lambda mem: [MapSet(nid, field, _map_at(mem, nid, field, steps), key, v)])


def map_delete(
    ctx: typer.Context,
    node: NodeArg,
    field: MapFieldArg,
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
        if key not in stg.map_at(mem.get(nid), field, p):
            raise InvalidOperationError(f"map {path_text(field, p)} of node {nid} has no key "
                                        f"{key!r}")
        return [MapDelete(nid, field, p, key)]

    _stage_change(path, build)


LIST_HELP = ("Edit a list field: append, insert, set or remove (staged)."
             "\n\n\b\nExample:\n  myo list append 1 tags urgent\n  myo list remove 1 tags 0")
MAP_HELP = ("Edit a map field: set or delete one key (staged).\n\n\b\nExample:\n"
            "  myo map set 1 config retries 3\n  myo map delete 1 config retries")


def register(app: typer.Typer) -> None:
    """Add init, create, set, unset, delete and the ``list`` and ``map`` groups to ``app``."""
    add_commands(app, [
        ("init", init, {}),
        ("create", create, VALUE_COMMAND),
        ("set", set_, VALUE_COMMAND),
        ("unset", unset, {}),
        ("delete", delete, {}),
    ])
    list_app = typer.Typer(name="list", help=LIST_HELP, no_args_is_help=True,
                           rich_markup_mode=None)
    add_commands(list_app, [
        ("append", list_append, VALUE_COMMAND),
        ("insert", list_insert, VALUE_COMMAND),
        ("set", list_set, VALUE_COMMAND),
        ("remove", list_remove, {"cls": ValueCommand}),
    ])
    map_app = typer.Typer(name="map", help=MAP_HELP, no_args_is_help=True,
                          rich_markup_mode=None)
    add_commands(map_app, [
        ("set", map_set, VALUE_COMMAND),
        ("delete", map_delete, {}),
    ])
    app.add_typer(list_app, name="list")
    app.add_typer(map_app, name="map")
