"""Interchange commands: export, import, migrate (formatspec/EXPORT.md, LEGACY.md)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated

import typer

from myosotis import LockedError, Memory

from .common import AtOpt, FileOpt, JsonOpt, add_commands, point_json, point_text
from .files import lock_timeout, locked, open_reader, resolve_file
from .output import EXIT_USAGE, CliError, emit_json, out, printable


def export(
    ctx: typer.Context,
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="F",
        help="Write the export to F (replaced whole, atomically); '-' for standard "
        "output.")] = "-",
    history: Annotated[bool, typer.Option(
        "--history", help="Every commit up to --at too (from the genesis state of a "
        "compacted file), so that an import reproduces each commit id.")] = False,
    at: AtOpt = None,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the canonical JSON export of the state (formatspec/EXPORT.md).

    Every value is typed, floats by their exact bits; the same state always
    gives the same bytes. `myo import` reads it back. With --json, a summary
    of what was written is printed (then -o must name a file).

    \b
    Example:
      myo export -o state.json
      myo export --history --at HEAD~3 -o upto.json
    """
    path = resolve_file(ctx, file)
    if json_out and output == "-":
        raise CliError("--json prints a summary: name the export file with -o F", EXIT_USAGE)
    with open_reader(path) as mem:
        seq = mem.resolve(at) if at is not None else (mem.head.seq if mem.head else 0)
        if output == "-":
            mem.export(sys.stdout.buffer, at=seq, history=history)
            sys.stdout.buffer.flush()
            return
        tmp = f"{output}.export-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                mem.export(f, at=seq, history=history)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, output)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        size = os.path.getsize(output)
        if json_out:
            emit_json({"file": path, "output": output, "history": history,
                       "at": point_json(mem, seq), "bytes": size})
        else:
            out(f"exported {'history up to ' if history else 'the state at '}"
                f"{point_text(mem, seq)} to {printable(output)} ({size:,} bytes)")


def import_(
    source: Annotated[str, typer.Argument(
        metavar="F", help="The export to read ('-' for standard input).")],
    new_file: Annotated[str, typer.Argument(
        metavar="NEW.myo", help="The file to create; it must not exist.")],
    json_out: JsonOpt = False,
) -> None:
    """Create a new .myo file from a JSON export (`myo export`).

    A state export gives a file with the same state hash and head commit; a
    history export gives every commit again, with the same ids. The whole
    export is checked first: an error names its place in the JSON and no
    file is created.

    \b
    Example:
      myo import state.json copy.myo
    """
    if source == "-":
        mem = Memory.import_(sys.stdin.buffer, new_file)
    else:
        with open(source, "rb") as f:
            mem = Memory.import_(f, new_file)
    with mem:
        head = mem.head
        seq = head.seq if head is not None else 0
        commits = len(mem.history())
        if json_out:
            emit_json({"file": new_file, "head": point_json(mem, seq), "commits": commits,
                       "state_hash": mem.state_hash()})
        else:
            out(f"created {printable(new_file)}: {commits:,} commits, head "
                f"{point_text(mem, seq)}, state {mem.state_hash()[:12]}")


def migrate(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Argument(
        metavar="FILE", help="The legacy file (default: --file, $MYO_FILE, the only "
        "*.myo here).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Migrate a legacy v0.5 JSON file to the binary format now.

    The first write would do it anyway; commit ids and the state hash stay
    the same. The old file is kept as FILE.v0.bak. A file that is already
    binary is left as it is.

    \b
    Example:
      myo migrate old.myo
    """
    path = resolve_file(ctx, file)
    if not os.path.exists(path):
        raise CliError(f"{path} does not exist")
    try:
        r = Memory.migrate(path, lock_timeout=lock_timeout())
    except LockedError:
        raise locked(path) from None
    if json_out:
        emit_json({"file": path, "migrated": r.backup is not None, "backup": r.backup,
                   "head": {"seq": r.head_seq, "id": r.head_id}, "state_hash": r.state_hash,
                   "dropped_checkpoints": list(r.dropped)})
    elif r.backup is None:
        out(f"{printable(path)} is already a binary Myosotis file: nothing to do")
    else:
        out(f"migrated {printable(path)}: {r.head_seq:,} commits, state "
            f"{r.state_hash[:12]}; the legacy file is kept as {printable(r.backup)}")
        for d in r.dropped:
            out(f"note: {printable(d)}")


def register(app: typer.Typer) -> None:
    """Add export, import and migrate to ``app``."""
    add_commands(app, [
        ("export", export, {}),
        ("import", import_, {}),
        ("migrate", migrate, {}),
    ])
