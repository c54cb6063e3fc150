"""Long human output through a pager, as git does: only when stdout is a terminal.

``$MYO_PAGER``, else ``$PAGER``, else ``less``, run through the shell with
``LESS=FRX`` unless ``LESS`` is set (quit if one screen, keep colours, do not
clear the screen). Output that fits the terminal, output to a pipe or a file,
``MYO_PAGER=cat`` (or an empty one) and a pager that is not installed are
printed directly. JSON output is never paged.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence

from .output import out


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def pager_command() -> str | None:
    """The pager to run, or None for printing directly (``cat`` or empty)."""
    cmd = os.environ.get("MYO_PAGER")
    if cmd is None:
        cmd = os.environ.get("PAGER")
    if cmd is None:
        cmd = "less"
    cmd = cmd.strip()
    if cmd in ("", "cat"):
        return None
    try:
        program = shlex.split(cmd)[0]
    except (ValueError, IndexError):
        return None
    # a pager that is not installed would swallow the output: print it instead
    return cmd if shutil.which(program) is not None else None


def page(lines: Sequence[str]) -> None:
    """Print ``lines``, through the pager when stdout is a terminal and they do not
    fit on one screen."""
    cmd = pager_command() if _stdout_is_terminal() else None
    if cmd is None or len(lines) < shutil.get_terminal_size().lines:
        for line in lines:
            out(line)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    text = "\n".join(lines) + "\n"
    try:
        proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        for line in lines:
            out(line)
        return
    assert proc.stdin is not None
    try:
        proc.stdin.write(text.encode("utf-8", "replace"))
        proc.stdin.close()
    except BrokenPipeError:  # the reader quit the pager early: not an error
        pass
    proc.wait()

