"""Anvil for tests: started from node_modules on a free loopback port, stopped by its pid.

Tests that need it skip, with the reason, when it is not installed (no npm on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
# The fork the contract is compiled for (scripts/contract/build.mjs), so that every backend runs
# the same rules whatever anvil's default becomes.
HARDFORK = "prague"
START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: Sequence[object] = ()) -> object:
    """Calls one JSON-RPC method and returns its result (raises on an error answer)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.load(response)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def _answers(url: str) -> bool:
    try:
        rpc(url, "eth_chainId")
    except OSError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    # node_modules/.bin/anvil is a Node wrapper that runs the real binary as its child and
    # forwards SIGTERM to it. Whatever is left of the process group the wrapper leads (it was
    # started in a session of its own) is then killed, so no anvil outlives the tests.
    process.terminate()
    try:
        process.wait(timeout=10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def running_anvil(*args: str) -> Iterator[str]:
    """Runs anvil (with extra `args`) on a free loopback port; yields its JSON-RPC URL."""
    if not ANVIL.exists():
        pytest.skip(f"anvil is not installed ({ANVIL.relative_to(ROOT)}): run scripts/setup")
    command = [str(ANVIL), "--host", "127.0.0.1", "--silent", "--hardfork", HARDFORK, *args]
    with tempfile.TemporaryFile() as log:
        # The port is free when chosen but could be taken before anvil binds it: retry then.
        for _attempt in range(3):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [*command, "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if _answers(url):
                    break
                time.sleep(0.05)
            if process.poll() is None and _answers(url):
                break
            _stop(process)
        else:
            log.seek(0)
            pytest.fail(f"anvil did not answer on {url}:\n{log.read().decode(errors='replace')}")
        try:
            yield url
        finally:
            _stop(process)
