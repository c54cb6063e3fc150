"""Shared fixtures: a fresh file path and a deterministic clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from model import FixedClock


@pytest.fixture
def mem_path(tmp_path: Path) -> str:
    """Path of a not-yet-existing Myosotis file in a fresh temporary directory."""
    return str(tmp_path / "test.myo")


@pytest.fixture
def clock() -> FixedClock:
    """A clock returning 1, 2, 3, ... microseconds after a fixed epoch (deterministic files)."""
    return FixedClock()
