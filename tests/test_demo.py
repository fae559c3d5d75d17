"""The README's main job: scripts/demo.py runs a three-node network on anvil to the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.chain import anvil

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_a_whole_cycle_in_two_tokens_and_the_audit_passes(tmp_path: Path) -> None:
    if anvil.binary() is None:
        pytest.skip("anvil is not installed (node_modules/.bin/anvil): run scripts/setup")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    # Both contributors were paid their pro-rata share of 1 ETH and of the 100 USDC allocated
    # from the pool (weights 3 and 2), each token on its own...
    assert "weight 3  paid 0.600000 ETH  60.000000 USDC" in out
    assert "weight 2  paid 0.400000 ETH  40.000000 USDC" in out
    assert "paid 500.000000 USDC into the project's pool (approved the contract first" in out
    # The 100 USDC reached the epoch by a decision the members passed with the power of their
    # accepted weights (the agent voting too), executed by the owner's node once...
    assert "allocate 100 USDC to epoch 0: passed, yes 5, no 0, abstain 0 of 5" in out
    assert "the agent yes  power 2" in out and "Dana      yes  power 3" in out
    assert "(by Alice's node, once)" in out
    # ...the audits passed and the proof verified both ways.
    assert "audit       OK (epoch 0 and the decision); proof file valid offline and on chain" in out
    # Every node was stopped: none left its api.json behind.
    assert not list((tmp_path / "demo").glob("*/api.json"))
