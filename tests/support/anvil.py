"""Anvil for tests: `node.anvil` on a free loopback port, skipped when it is not installed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from node.chain import anvil
from node.chain.anvil import HARDFORK, ROOT, rpc

__all__ = ["HARDFORK", "ROOT", "rpc", "running_anvil"]


@contextlib.contextmanager
def running_anvil(*args: str) -> Iterator[str]:
    """Runs anvil (with extra `args`) on a free loopback port; yields its JSON-RPC URL."""
    if anvil.binary() is None:
        pytest.skip("anvil is not installed (node_modules/.bin/anvil): run scripts/setup")
    with anvil.running(args=args) as url:
        yield url
