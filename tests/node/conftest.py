"""Fixtures of the node tests: data dirs of actor nodes in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def dirs(tmp_path: Path) -> Callable[[str], Path]:
    return lambda name: tmp_path / name
