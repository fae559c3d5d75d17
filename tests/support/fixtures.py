"""Fixtures shared by every test directory (a pytest plugin, see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.anvil import running_anvil


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """Starts anvil on a free loopback port for the session; returns its JSON-RPC URL."""
    with running_anvil() as url:
        yield url
