"""Options shared by the commands, and small helpers to print commits."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from myosotis import Commit, Memory

FileOpt = Annotated[str | None, typer.Option(
    "--file", "-f", metavar="PATH",
    help="The .myo file (default: $MYO_FILE, else the only *.myo file here).",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print one JSON document (shape in docs/CLI.md).")]
AtOpt = Annotated[str | None, typer.Option(
    "--at", metavar="COMMIT",
    help="Read the state after COMMIT: seq number (or seq:N), id or unique id prefix "
         "(4+ hex digits, or id:HEX), HEAD, HEAD~N, or a time (2026-11-29T10:00Z: the "
         "newest commit at or before it). Default: HEAD.", show_default=False)]
StagedOpt = Annotated[bool, typer.Option(
    "--staged", help="Read the committed state plus the staged changes (takes the writer "
                     "lock for a moment).")]
StringOpt = Annotated[bool, typer.Option(
    "--string", "-s", help="Take VALUE as a string, exactly as typed.")]
InOpt = Annotated[list[str] | None, typer.Option(
    "--in", metavar="STEP",
    help="Step into a nested list (STEP is an index, negative from the end) or map (STEP "
         "is a key) inside the field; repeat for deeper levels.", show_default=False)]

VALUE_HELP = """\b
VALUE syntax (docs/CLI.md "Values"):
  42  -7                   integer (signed 64-bit)
  1.5  1e3  -0.0  NaN      float
  true  false  null        boolean, null
  Explore  "two words"     string: an argument that is not JSON (quote spaces for the shell)
  '"42"'  -s 42            the string "42": JSON quotes, or --string for the text as typed
  @3                       reference to node 3 (it must exist, or be staged)
  '[1, "a", {"@ref": 3}]'  list (JSON); inside JSON a reference is {"@ref": N}
  '{"k": 1, "@@x": 2}'     map (JSON object); a key starting with @ takes one more @
Negative numbers are values (-5); use -- before other values that start with '-'."""

EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def iso(ts: _dt.datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def short_time(ts: _dt.datetime | None) -> str:
    if ts is None:  # a commit folded into the genesis snapshot
        return "(compacted)"
    return ts.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def commit_json(c: Commit) -> dict[str, Any]:
    return {"seq": c.seq, "id": c.id, "timestamp": iso(c.timestamp),
            "timestamp_us": c.timestamp_us, "label": c.label, "parent": c.parent,
            "next_node_id": c.next_node_id, "compacted": c.compacted}


def point_json(mem: Memory, seq: int) -> dict[str, Any]:
    """Where a read happened: ``{"seq": n, "id": hex|null}`` (id null for the empty state).

    ``Memory.commit_info`` also knows the id of the genesis snapshot's base
    commit after compaction.
    """
    if seq == 0:
        return {"seq": 0, "id": None}
    return {"seq": seq, "id": mem.commit_info(seq).id}


def point_text(mem: Memory, seq: int) -> str:
    p = point_json(mem, seq)
    if p["id"] is None:
        return "the empty history" if seq == 0 else f"#{seq}"
    return f"#{seq} {p['id'][:12]}"


_NEGATIVE = re.compile(r"-(?:[0-9]|\.[0-9]|Infinity$|NaN$)")


class ValueCommand(TyperCommand):
    """A command whose arguments may be negative numbers (``myo set 1 t -5``).

    An argument that starts with ``-`` followed by a digit (or is ``-Infinity``)
    is a value, never a cluster of short options; everything else is parsed
    as usual, so a mistyped option is still a usage error.
    """

    def make_parser(self, ctx: Any) -> Any:
        parser = super().make_parser(ctx)
        process = parser._process_opts

        def process_opts(arg: str, state: Any) -> None:
            if _NEGATIVE.match(arg):
                state.largs.append(arg)
            else:
                process(arg, state)

        parser._process_opts = process_opts  # type: ignore[method-assign]
        return parser


VALUE_COMMAND: dict[str, Any] = {"cls": ValueCommand, "epilog": VALUE_HELP}
"""Options of a command that takes a VALUE: negative numbers, and the syntax help."""

CommandTable = Sequence[tuple[str, Callable[..., None], dict[str, Any]]]


def add_commands(app: typer.Typer, commands: CommandTable) -> None:
    """Register each ``(name, function, options of typer's app.command)`` on ``app``,
    in order (the order of ``myo --help`` and docs/CLI.md)."""
    for name, function, options in commands:
        app.command(name, **options)(function)
