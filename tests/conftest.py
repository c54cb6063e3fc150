"""Shared fixtures: a fresh file path, a deterministic clock, and ``cli`` (``myo`` run
in process)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.testing
from cliutil import COMMAND, RUNNER, Run
from model import FixedClock
from typer.testing import Result

from myosotis.cli import app


@pytest.fixture
def mem_path(tmp_path: Path) -> str:
    """Path of a not-yet-existing Myosotis file in a fresh temporary directory."""
    return str(tmp_path / "test.myo")


@pytest.fixture
def clock() -> FixedClock:
    """A clock returning 1, 2, 3, ... microseconds after a fixed epoch (deterministic files)."""
    return FixedClock()


@pytest.fixture(autouse=True)
def _build_the_myo_command_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CliRunner.invoke reuses cliutil.COMMAND instead of rebuilding it."""
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: COMMAND)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run `myo ARGS` in process, in tmp_path, and check the exit code (default 0)."""
    monkeypatch.chdir(tmp_path)
    for var in ("MYO_FILE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MYO_LOCK_TIMEOUT", "0")

    def run(*args: str, code: int = 0) -> Result:
        r = RUNNER.invoke(app, list(args))
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        assert r.exit_code == code, (args, r.exit_code, r.stdout, r.stderr)
        return r

    return run
