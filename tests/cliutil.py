"""Running ``myo`` in process for the CLI tests (the ``cli`` fixture is in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import typer.main
from typer.testing import CliRunner, Result

from myosotis.cli import app

RUNNER = CliRunner()
# typer's CliRunner rebuilds the click command from the app on every invoke (most of
# an in-process run's time); the command is stateless, so conftest.py builds it once.
COMMAND = typer.main.get_command(app)
Run = Callable[..., Result]
