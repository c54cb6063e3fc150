"""Going back: restore, revert (staged like any change) and fork (a new file)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from myosotis import Memory, Mutation

from . import stage as stg
from .common import FileOpt, JsonOpt, add_commands, point_json, point_text
from .files import open_reader, open_writer, resolve_file
from .output import emit_json, out, printable

CommitArg = Annotated[str, typer.Argument(
    metavar="COMMIT", help="seq number, id or unique id prefix (4+ hex digits), HEAD or "
                           "HEAD~N.", show_default=False)]


def _stage_planned(path: str, plan: Any) -> tuple[list[Mutation], Any]:
    """Run ``plan(mem)`` (which stages on the Memory and returns its result) against the
    committed head, and add what it staged to the stage file."""
    with open_writer(path) as mem, stg.staged(mem, path) as current:
        result = plan(mem)
        ops = list(result if isinstance(result, list) else result.mutations)
        if ops:
            stg.add(path, current, ops)
        return ops, result


def _report(path: str, what: str, target: dict[str, Any], ops: list[Mutation],
            json_out: bool, extra: dict[str, Any] | None = None) -> None:
    if json_out:
        emit_json({"file": path, what: target, "staged": [stg.op_json(m) for m in ops],
                   **(extra or {})})
        return
    for m in ops:
        out(f"staged: {printable(stg.describe(m))}")
    if not ops:
        out("nothing to stage: the state already matches")
    else:
        out(f"{len(ops)} change{'s' if len(ops) != 1 else ''} staged; `myo commit` writes them")


NodesOpt = Annotated[list[int] | None, typer.Option(
    "--node", "-n", metavar="ID", help="Restore only this node (repeatable).",
    show_default=False)]


def restore(ctx: typer.Context, commit: CommitArg, node: NodesOpt = None,
            file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """Stage the changes that make the live state equal to COMMIT's.

    Every node changed since gets COMMIT's fields and tombstone back (a node
    deleted since is undeleted, which moves the file to format version 3 when
    committed); a node created since is deleted (ids are never reused). Needs
    an empty stage. `myo commit` writes the changes as a new commit.

    \b
    Example:
      myo restore HEAD~3
      myo restore 12 --node 4
      myo commit "back to #12"
    """
    path = resolve_file(ctx, file)
    target: dict[str, Any] = {}

    def plan(mem: Memory) -> list[Mutation]:
        target.update(point_json(mem, mem.resolve(commit)))
        return mem.restore(commit, node)

    ops, _ = _stage_planned(path, plan)
    _report(path, "restored_to", target, ops, json_out)


def revert(ctx: typer.Context, commit: CommitArg,
           force: Annotated[bool, typer.Option(
               "--force", help="Where a later commit changed the same field, keep its "
                               "value and revert the rest (the skipped places are listed).")
           ] = False,
           file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """Stage the inverse of COMMIT's changes.

    Each field COMMIT changed goes back to its value before it; a node it
    created is deleted, a node it deleted is undeleted. If a later commit
    changed the same field or tombstone, nothing is staged and each conflict
    is named, unless --force. Needs an empty stage.

    \b
    Example:
      myo revert HEAD~1
      myo revert 7 --force
    """
    path = resolve_file(ctx, file)
    target: dict[str, Any] = {}

    def plan(mem: Memory) -> Any:
        target.update(point_json(mem, mem.resolve(commit)))
        return mem.revert(commit, force=force)

    ops, result = _stage_planned(path, plan)
    skipped = [{"commit": c.commit, "node": c.node, "path": c.path} for c in result.skipped]
    if not json_out:
        for c in result.skipped:
            out(f"skipped (kept the later value): {printable(str(c))}")
    _report(path, "reverted", target, ops, json_out, {"skipped": skipped})


def fork(ctx: typer.Context, commit: CommitArg,
         new_file: Annotated[str, typer.Argument(
             metavar="NEW", help="The new .myo file; it must not exist.",
             show_default=False)],
         file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """Write NEW, a memory whose history starts at COMMIT of this one.

    NEW holds COMMIT's state as its genesis snapshot and records where it came
    from (commit id and state hash: `myo info` shows it). Commits made on NEW
    continue the chain from COMMIT; this file is only read. Never overwrites.

    \b
    Example:
      myo fork HEAD~2 experiment.myo
    """
    path = resolve_file(ctx, file)
    with open_reader(path) as mem:
        seq = mem.resolve(commit)
        where = point_text(mem, seq)
        o = mem.fork(seq, new_file)
    if json_out:
        emit_json({"file": path, "new_file": new_file,
                   "origin": {"seq": o.seq, "commit_id": o.commit_id,
                              "state_hash": o.state_hash, "base_seq": o.base_seq,
                              "base_commit_id": o.base_commit_id}})
        return
    out(f"forked {printable(path)} at {where} into {printable(new_file)} "
        f"(state {o.state_hash[:12]})")


def register(app: typer.Typer) -> None:
    """Add restore, revert and fork to ``app``."""
    add_commands(app, [
        ("restore", restore, {}),
        ("revert", revert, {}),
        ("fork", fork, {}),
    ])
