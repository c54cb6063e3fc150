"""The ``myo`` command line (docs/CLI.md): a thin layer over the public Python API.

``app`` is the typer application; ``main`` is the console-script entry point.
"""

from __future__ import annotations

from .app import app


def main(argv: list[str] | None = None) -> int:
    """Run ``myo`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        app(args=argv, prog_name="myo")
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code)
        return 1
    return 0


__all__ = ["app", "main"]
