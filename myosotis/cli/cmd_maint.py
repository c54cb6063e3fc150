"""Maintenance commands: checkpoint, fsck, compact."""

from __future__ import annotations

import datetime as _dt
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from myosotis import (
    DamagedStageError,
    LockedError,
    Memory,
    MyosotisError,
)

from . import stage as stg
from .common import AtOpt, FileOpt, JsonOpt, add_commands, point_text
from .files import head_of, lock_timeout, locked, open_reader, open_writer, resolve_file
from .output import (
    EXIT_CORRUPT,
    EXIT_USAGE,
    CliError,
    emit_json,
    out,
    printable,
    progress,
    style,
)

if TYPE_CHECKING:  # imported by fsck, not with every command
    from myosotis import Finding, VerifyReport


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"severity": f.severity, "code": f.code, "message": f.message, "offset": f.offset,
            "seq": f.seq, "repairable": f.repairable}


def _finding_text(f: Finding) -> str:
    where = []
    if f.offset is not None:
        where.append(f"offset {f.offset}")
    if f.seq is not None:
        where.append(f"commit {f.seq}")
    loc = f" [{', '.join(where)}]" if where else ""
    colour = "red" if f.severity == "error" else "yellow"
    return style(f"{f.severity}: {f.code}", fg=colour, bold=True) + \
        f"{loc}: {printable(f.message)}"


def _check_stage(path: str, report: VerifyReport) -> tuple[list[Finding], dict[str, Any]]:
    """Findings about ``<file>.stage`` (STAGE.md), and a summary of it.

    A damaged stage is a finding (a warning: nothing committed is affected).
    A stale one is not: another writer committing is normal; it is reported
    in the summary, as is one made for another file at this path (S12). The
    stage is compared with the head only when the file itself has no errors
    (otherwise the head is not known for sure).
    """
    from myosotis import Finding, Stage
    sp = Stage.path_for(path)
    info: dict[str, Any] = {"path": sp, "present": os.path.exists(sp), "state": "none",
                            "changes": 0}
    if not info["present"]:
        return [], info
    try:
        st = Stage.read(path)
    except DamagedStageError as e:
        info["state"] = "damaged"
        return [Finding("warning", "stage", e.message)], info
    assert st is not None
    info["changes"] = len(st.ops)
    info["base"] = {"seq": st.base_seq, "id": None if st.base_seq == 0 else st.base_id}
    if report.errors:
        info["state"] = "unchecked"
        return [], info
    try:
        with open_reader(path) as mem:
            info["state"] = stg.status_of(mem, st)
    except MyosotisError:
        info["state"] = "unchecked"
    return [], info


def checkpoint(ctx: typer.Context, file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """Write a checkpoint of the head state now (faster opening).

    Does nothing when a checkpoint already covers the head.

    \b
    Example:
      myo checkpoint
    """
    path = resolve_file(ctx, file)
    with open_writer(path) as mem:
        before = mem.info().data_end  # frames only: free space (§3) is not data
        written = mem.checkpoint()
        seq, _ = head_of(mem)
        after = mem.info().data_end
        if json_out:
            emit_json({"written": written, "seq": seq, "bytes": after - before})
        elif written:
            out(f"checkpoint written for {point_text(mem, seq)} ({after - before:,} bytes)")
        elif seq == 0:
            out("no commits yet: nothing to checkpoint")
        else:
            out(f"a checkpoint (or the genesis snapshot) already covers "
                f"{point_text(mem, seq)}")


def _print_fsck(path: str, report: VerifyReport, findings: list[Finding], actions: list[str],
                stage_info: dict[str, Any], repair: bool) -> None:
    """The human output of ``myo fsck``: what was repaired, each finding, a summary."""
    for a in actions:
        out(style("repaired: ", fg="green", bold=True) + printable(a))
    for f in findings:
        out(_finding_text(f))
    summary = (f"{printable(path)}: {report.file_size:,} bytes, {report.frames:,} frames, "
               f"{report.commits:,} commits, {report.checkpoints:,} checkpoints")
    if stage_info["state"] == "stale":
        out(f"note: the stage ({stage_info['changes']} changes) was made against "
            "an older head; `myo commit` will refuse it (`myo discard` drops it)")
    elif stage_info["state"] == "foreign":
        out(f"note: the stage ({stage_info['changes']} changes) was made for another "
            "file at this path; `myo commit` will refuse it (`myo discard` drops it)")
    if not findings:
        out(summary + ": " + style("clean", fg="green", bold=True))
        return
    errs = sum(1 for f in findings if f.severity == "error")
    warns = len(findings) - errs
    hint = ("; `myo fsck --repair` can fix the warnings" if not repair and any(
        f.repairable for f in findings) else "")
    out(summary + ": " + style(f"{errs} error(s), {warns} warning(s)", fg="red",
                               bold=True) + hint)


def fsck(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Cut a torn tail or a damaged last frame (its bytes kept in "
        "<file>.recovered-<offset> first) and drop checkpoints that fail (they are a "
        "cache). A frame that valid frames follow is never dropped; other problems are "
        "only reported.")]
        = False,
    file: FileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify the whole file; exit 0 if clean, 3 if problems remain.

    Checks the header and version, every frame's CRCs, the commit hash chain,
    sequence numbers and parent links, every checkpoint against a replay from
    the start (or the genesis snapshot), the graph rules at every commit
    (references, ids never reused, next_node_id never going back) and the
    stage file. Each finding names its offset or commit.

    \b
    Example:
      myo fsck
      myo fsck --repair
      myo fsck --json
    """
    path = resolve_file(ctx, file)
    if not os.path.exists(path):
        raise CliError(f"{path} does not exist")
    actions: list[str] = []
    if repair:
        try:
            report, actions = Memory.repair(path, lock_timeout=lock_timeout())
        except LockedError:
            raise locked(path) from None
    else:
        with progress("checking") as cb:
            report = Memory.check_file(path, progress=cb)
    stage_findings, stage_info = _check_stage(path, report)
    findings = [*report.findings, *stage_findings]
    if json_out:
        emit_json({
            "file": path, "ok": not findings, "file_size": report.file_size,
            "frames": report.frames, "commits": report.commits,
            "checkpoints": report.checkpoints,
            "errors": sum(1 for f in findings if f.severity == "error"),
            "warnings": sum(1 for f in findings if f.severity != "error"),
            "findings": [_finding_json(f) for f in findings],
            "repaired": actions, "stage": stage_info})
    else:
        _print_fsck(path, report, findings, actions, stage_info, repair)
    if findings:
        raise typer.Exit(EXIT_CORRUPT)


KeepLastOpt = Annotated[int | None, typer.Option(
    "--keep-last", metavar="N", min=0, help="Keep the newest N commits; fold the rest.",
    show_default=False)]
KeepSinceOpt = Annotated[str | None, typer.Option(
    "--keep-since", metavar="TIME",
    help="Keep every commit from the first one at or after TIME (ISO 8601, e.g. "
         "2026-01-31 or 2026-01-31T12:00:00Z; UTC unless it has an offset).",
    show_default=False)]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Change nothing; report what would be folded and the bytes saved.")]


def _since(text: str | None) -> _dt.datetime | None:
    if text is None:
        return None
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--keep-since {text!r} is not an ISO 8601 time (e.g. 2026-01-31 or "
                       "2026-01-31T12:00:00Z)", EXIT_USAGE) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def compact(ctx: typer.Context, at: AtOpt = None, keep_last: KeepLastOpt = None,
            keep_since: KeepSinceOpt = None, dry_run: DryRunOpt = False,
            file: FileOpt = None, json_out: JsonOpt = False) -> None:
    """Fold history up to a commit into a snapshot; report the bytes.

    The latest state and every later commit (with its id) stay as they are;
    commits before --at can no longer be viewed. Atomic: a crash leaves the
    old file or the new one. Staged changes are kept. Instead of --at, a
    retention policy: --keep-last N and/or --keep-since TIME (a commit stays
    if either keeps it). --dry-run only reports.

    \b
    Example:
      myo compact
      myo compact --at HEAD~10
      myo compact --keep-last 100 --dry-run
      myo compact --keep-since 2026-01-01
    """
    path = resolve_file(ctx, file)
    with open_writer(path) as mem:
        r = mem.compact(at, keep_last=keep_last, keep_since=_since(keep_since),
                        dry_run=dry_run)
        if json_out:
            emit_json({"file": path, "bytes_before": r.bytes_before,
                       "bytes_after": r.bytes_after, "base_seq": r.base_seq,
                       "state_hash": r.state_hash, "dry_run": r.dry_run,
                       "folded": [r.folded.start, r.folded.stop - 1] if r.folded else None,
                       "bytes_reclaimed": r.bytes_reclaimed})
            return
        if dry_run:
            span = (f"commits #{r.folded.start}..#{r.folded.stop - 1}" if r.folded
                    else "no commit")
            out(f"would fold {span} of {printable(path)} into a snapshot: "
                f"{r.bytes_before:,} -> {r.bytes_after:,} bytes "
                f"({r.bytes_reclaimed:,} reclaimed); nothing changed")
            return
        if not r.folded and (keep_last is not None or keep_since is not None):
            out(f"nothing to fold: the policy keeps every commit of {printable(path)}")
            return
        pct = ""
        if r.bytes_before and r.bytes_after != r.bytes_before:
            change = 100 * abs(r.bytes_after - r.bytes_before) / r.bytes_before
            word = "larger" if r.bytes_after > r.bytes_before else "smaller"
            pct = f" ({change:.0f}% {word})"
        elif r.bytes_before:
            pct = " (same size)"
        out(f"compacted {printable(path)}: {r.bytes_before:,} -> {r.bytes_after:,} bytes{pct}; "
            f"history up to #{r.base_seq} is now a snapshot")


def register(app: typer.Typer) -> None:
    """Add checkpoint, fsck and compact to ``app``."""
    add_commands(app, [
        ("checkpoint", checkpoint, {}),
        ("fsck", fsck, {}),
        ("compact", compact, {}),
    ])
