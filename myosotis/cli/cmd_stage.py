"""Commands on the stage as a whole: status, commit, discard.

``myo commit`` records its intent in the stage file before it writes the
commit (STAGE.md S9), so a crash between the commit and the removal of the
stage is recognised by the next command and never commits twice.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer

from myosotis import DamagedStageError

from . import stage as stg
from .common import FileOpt, JsonOpt, add_commands, commit_json, point_json, point_text
from .files import head_of, open_reader, open_writer, resolve_file, writer_lock
from .output import EXIT_USAGE, CliError, emit_json, out, printable, style


def status(ctx: typer.Context, file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """List the staged changes and the commit they apply to.

    \b
    Example:
      myo status
      myo status --json
    """
    from myosotis import Stage
    path = resolve_file(ctx, file)
    with open_reader(path) as mem:
        st = Stage.read(path)
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
    from myosotis import Stage, StageIntent
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
            # the intent names the commit about to be written (its time and label),
            # so a crash after it is durable is recognised and never repeated (S9)
            when[0] = time.time_ns() // 1000
            intent = StageIntent(when[0], label or "")
            dataclasses.replace(current, intent=intent).write(path)
        c = mem.commit(label, allow_empty=allow_empty)
        Stage.remove(path)
    assert c is not None
    n = len(current.ops)
    if json_out:
        emit_json({**commit_json(c), "changes": n})
    else:
        out(f"[#{c.seq} {c.id[:12]}] {printable(label or '')}".rstrip() +
            f" ({n} change{'s' if n != 1 else ''})")


def discard(ctx: typer.Context, file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """Drop every staged change (even a damaged or stale stage).

    \b
    Example:
      myo discard
    """
    from myosotis import Stage
    path = resolve_file(ctx, file)
    with writer_lock(path):
        try:
            st = Stage.read(path)
            n = len(st.ops) if st is not None else 0
        except DamagedStageError:
            n = -1
        removed = Stage.remove(path)
    if json_out:
        emit_json({"discarded": max(n, 0) if removed else 0, "damaged": n < 0})
    elif not removed:
        out("nothing staged")
    elif n < 0:
        out("removed the damaged stage file")
    else:
        out(f"discarded {n} staged change{'s' if n != 1 else ''}")


def register(app: typer.Typer) -> None:
    """Add status, commit and discard to ``app``."""
    add_commands(app, [
        ("status", status, {}),
        ("commit", commit, {}),
        ("discard", discard, {}),
    ])
