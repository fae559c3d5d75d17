"""Real `workwork` processes: one-shot commands, and daemons stopped by pid with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PASSPHRASE = "correct horse battery staple"
_SCRIPT = Path(sys.executable).parent / "workwork"
# The installed console script when there is one; the module otherwise (same code).
WORKWORK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "node"]


def env() -> dict[str, str]:
    return {**os.environ, "WORKWORK_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"}


def run(home: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs one `workwork --data-dir home ...` command to completion."""
    return subprocess.run(
        [*WORKWORK, "--data-dir", str(home), *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        check=False,
    )


def ok(home: Path, *args: str) -> Any:
    """Runs a command with --json, checks that it succeeded, returns its JSON output."""
    done = run(home, "--json", *args)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return json.loads(done.stdout)


@contextmanager
def daemon(home: Path, *args: str, timeout: float = 30) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `workwork node start` until the block exits, then stops it with SIGTERM.

    Checks that it exits with 0 and removes api.json, as a clean shutdown does.
    """
    log = (home.parent / f"{home.name}.log").open("wb")
    process = subprocess.Popen(
        [*WORKWORK, "--data-dir", str(home), "node", "start", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env(),
    )
    try:
        deadline = time.monotonic() + timeout
        while not (home / "api.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the daemon did not start: {_tail(home)}")
            time.sleep(0.05)
        assert json.loads((home / "api.json").read_text())["pid"] == process.pid
        yield process
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, _tail(home)
        assert not (home / "api.json").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _tail(home: Path) -> str:
    return (home.parent / f"{home.name}.log").read_text(errors="replace")[-3000:]


def wait_until(check: Any, *, timeout: float, step: float = 0.2) -> Any:
    """Calls `check()` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(step)
