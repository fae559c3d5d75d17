"""Acknowledged writes survive `kill -9`, and the store stays consistent however it is killed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from storage import Store

# Slow (child processes killed mid-write): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("child.py")
ROUNDS = 6


def run_and_kill(path: Path, seed: int, after: float) -> set[bytes]:
    """Runs an ingesting child, SIGKILLs it `after` seconds into its work; returns its acks."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "ingest", str(path), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[str] = []
    assert child.stdout is not None
    stdout = child.stdout

    def read() -> None:
        acked.extend(stdout)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # Wait for the first acknowledgement, so the kill lands while it is writing.
        deadline = time.monotonic() + 60
        while not acked and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert acked, (
            f"the child acknowledged nothing: {child.stderr.read() if child.stderr else ''}"
        )
        time.sleep(after)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    # A line cut by the kill was never acknowledged in full; only whole lines count.
    return {bytes.fromhex(line[7:-1]) for line in acked if line.endswith("\n")}


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "store"
    rng = random.Random(2026)
    acked: set[bytes] = set()
    for round_ in range(ROUNDS):
        acked |= run_and_kill(path, seed=round_, after=rng.uniform(0.05, 0.6))
        with Store.open(path) as store:
            assert store.check() == ()
            missing = [rid.hex() for rid in acked if not store.has(rid)]
            assert missing == [], f"round {round_}: acknowledged but lost"
    assert len(acked) > 100
