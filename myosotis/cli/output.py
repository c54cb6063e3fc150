"""Output of the ``myo`` command: exit codes, the one error boundary, JSON,
tables and colour.

Exit codes (docs/CLI.md "Exit codes"):

- 0 success (for ``fsck``: the file is clean);
- 1 error: a user error (bad value, missing node, locked file, stale stage,
  not a Myosotis file, ...) reported as one line on stderr;
- 2 usage: the command line is wrong (unknown option, missing argument, no
  file named);
- 3 corruption: ``fsck`` found problems, or a command met a damaged file or
  stage file.

:class:`MyoGroup` is the ONE place where a :class:`~myosotis.MyosotisError`
(or an ``OSError`` from the file system) becomes a line on stderr and an exit
code; commands just raise. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from myosotis import CorruptFileError, DamagedStageError, MyosotisError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CORRUPT = 3

EXIT_CODES_HELP = """\b
Exit codes:
  0  success (fsck: the file is clean)
  1  error: bad value, missing node or commit, locked file, stale stage, ...
  2  usage: unknown command or option, missing argument, no file named
  3  corruption: fsck found problems, or the file is damaged"""


class CliError(MyosotisError):
    """A user error found by the command line itself, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------
# user text on a terminal

# Characters that must never reach a terminal as they are: control characters
# (C0, DEL, C1: cursor moves, title changes, bells, carriage returns), format
# characters (bidi overrides that reorder what is shown, invisible ones), line
# and paragraph separators, and lone surrogates (which cannot even be encoded).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset("\u200c\u200d")  # format characters that emoji and scripts need
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(c: str) -> bool:
    return not c.isprintable() and c not in _JOINERS and \
        unicodedata.category(c) in _UNSAFE_CATEGORIES


def printable(text: str, keep: str = "") -> str:
    """``text`` safe to print: every unsafe character (see above) not in ``keep``
    becomes a visible escape, ``\\x1b``, ``\\r``, ``\\u202e``, ``\\U000e0001``.

    Every user string in human output (labels, types, field names, keys, paths,
    error messages) goes through this; values go through :func:`json_safe`.
    """
    if text.isascii() and text.isprintable():
        return text
    out = []
    for c in text:
        if c in keep or not _unsafe(c):
            out.append(c)
            continue
        cp = ord(c)
        out.append(_NAMED.get(c) or (f"\\x{cp:02x}" if cp < 0x100 else
                                     f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"))
    return "".join(out)


def json_safe(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with every unsafe
    character that JSON leaves as it is (DEL, C1, format characters, separators,
    lone surrogates) written as a ``\\uXXXX`` escape: the same JSON value, safe
    to print. Such characters occur only inside JSON strings, so this is exact."""
    if text.isascii() and "\x7f" not in text:
        return text
    out = []
    for c in text:
        if c < " " or not _unsafe(c):  # JSON escaped C0 in strings: these are layout
            out.append(c)
            continue
        cp = ord(c)
        if cp < 0x10000:
            out.append(f"\\u{cp:04x}")
        else:
            cp -= 0x10000
            out.append(f"\\u{0xd800 + (cp >> 10):04x}\\u{0xdc00 + (cp & 0x3ff):04x}")
    return "".join(out)


def _say(kind: str, message: str) -> None:
    # one line: a multi-line engine message is joined so scripts can grep it; the
    # message may quote user input (a type, a field name, a path): escaped
    text = printable(" ".join(str(message).split("\n")))
    typer.echo(f"myo: {kind}: {text}", err=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    _say("error", message)
    raise typer.Exit(code)


def warn(message: str) -> None:
    _say("warning", message)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    warn(str(message))


def _os_error_text(e: OSError) -> str:
    what = e.strerror or str(e)
    name = e.filename if e.filename is not None else None
    return f"{name}: {what}" if name else what


class MyoGroup(TyperGroup):
    """The root command group; its :meth:`invoke` is the error boundary."""

    def invoke(self, ctx: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except CliError as e:
            fail(e.message, e.code)
        except (CorruptFileError, DamagedStageError) as e:
            fail(str(e), EXIT_CORRUPT)
        except MyosotisError as e:
            fail(str(e), EXIT_ERROR)
        except OSError as e:
            if e.errno == errno.EPIPE:  # stdout closed early (`myo ls | head`)
                raise
            fail(_os_error_text(e), EXIT_ERROR)


# --------------------------------------------------------------------------
# colour

_colour = {"mode": "auto"}


def set_colour_mode(mode: str) -> None:
    _colour["mode"] = mode


def colour_enabled() -> bool:
    """Colour only on a terminal and without ``NO_COLOR`` (unless ``--color always``)."""
    mode = _colour["mode"]
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR"):
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def style(text: str, *, fg: str | None = None, bold: bool = False, dim: bool = False) -> str:
    if not colour_enabled():
        return text
    return typer.style(text, fg=fg, bold=bold, dim=dim)


def out(text: str = "") -> None:
    typer.echo(text, color=colour_enabled())


# --------------------------------------------------------------------------
# JSON and tables


def emit_json(doc: Any) -> None:
    """Print one JSON document (strict JSON: no NaN, see values.to_json); characters
    unsafe on a terminal are written as JSON escapes (:func:`json_safe`)."""
    typer.echo(json_safe(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)))


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]],
                align: str | None = None) -> list[str]:
    """The lines of an aligned plain-text table (none without rows); ``align`` has
    ``l``/``r`` per column."""
    if not rows:
        return []
    cols = len(headers)
    align = align or "l" * cols
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(cols)]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, c in enumerate(cells):
            last = i == cols - 1
            if align[i] == "r":
                parts.append(c.rjust(widths[i]))
            else:
                parts.append(c if last else c.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    return [style(line(headers), bold=True)] + [line(r) for r in rows]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          align: str | None = None) -> None:
    """Print an aligned plain-text table; ``align`` has ``l``/``r`` per column."""
    for text in table_lines(headers, rows, align):
        out(text)


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a bar on stderr, or None when
    stderr is not a terminal (no bar in pipes, logs and tests)."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        yield None
        return
    state: dict[str, Any] = {"bar": None, "seen": 0}

    def update(done: int, total: int) -> None:
        bar = state["bar"]
        if bar is None:
            if total <= 0:
                return
            bar = typer.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
            state["bar"] = bar
        if done > state["seen"]:
            bar.update(done - state["seen"])
            state["seen"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
