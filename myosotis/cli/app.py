"""The ``myo`` application: the root command, its global options and the commands."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from myosotis import __version__

from . import (
    cmd_diff,
    cmd_edit,
    cmd_graph,
    cmd_history,
    cmd_inspect,
    cmd_interchange,
    cmd_maint,
    cmd_rewind,
    cmd_stage,
)
from .files import root_obj
from .output import EXIT_CODES_HELP, MyoGroup, set_colour_mode


class Colour(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


HELP = """Myosotis from the command line: inspect, change, verify and compact a .myo file.

Changes (create, set, unset, delete, list and map edits) are staged in
<file>.stage, like Git's index, until `myo commit` writes them as one commit
or `myo discard` drops them. Read commands show committed state and take
--json. The file is --file/-f PATH, else $MYO_FILE, else the only *.myo
file in the current directory.

\b
Example:
  myo init state.myo
  myo create Agent                # prints the new node id, e.g. 1
  myo set 1 goal "Explore"
  myo commit "initial goal"
  myo history
  myo show 1 --at HEAD
  myo diff HEAD~1 HEAD
"""

app = typer.Typer(
    name="myo",
    cls=MyoGroup,
    help=HELP,
    epilog=EXIT_CODES_HELP,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"myo (myosotis) {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Option(
        "--file", "-f", metavar="PATH",
        help="The .myo file for every command (a command's own --file wins).")] = None,
    color: Annotated[Colour, typer.Option(
        "--color", help="Colour output: auto (only on a terminal, not with NO_COLOR), "
        "always or never.", case_sensitive=False)] = Colour.auto,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    obj = root_obj(ctx)
    obj["file"] = file
    set_colour_mode(color.value)


# the order of `myo --help` and docs/CLI.md
for _group in (cmd_edit, cmd_stage, cmd_inspect, cmd_history, cmd_diff, cmd_graph, cmd_rewind,
               cmd_maint, cmd_interchange):
    _group.register(app)
