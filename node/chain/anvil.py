"""A local anvil chain, started from the npm package `@foundry-rs/anvil` and stopped by its pid.

What the multi-process demo network shares, and what `--chain anvil` runs for a lone node. The
chain's state lives in a state file (`--state`: loaded at start, dumped at exit and every few
seconds), so anchors and balances survive a restart. anvil listens on 127.0.0.1 only.

The binary is found, in order: $WORKWORK_ANVIL, node_modules/.bin/anvil of this checkout (what
scripts/setup installs), `anvil` on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from node.errors import ChainUnavailable

ROOT = Path(__file__).resolve().parents[2]
# The fork the contract is compiled for (scripts/contract/build.mjs), so that anvil runs the same
# rules whatever its default becomes.
HARDFORK = "prague"
START_TIMEOUT = 30.0
# Seconds anvil gets to write its state file and exit before it is killed.
STOP_TIMEOUT = 20.0
# Seconds between dumps of the state file while anvil runs (it also dumps at exit).
STATE_INTERVAL = 5


def binary() -> Path | None:
    """Returns the anvil executable to run, or None if there is none."""
    override = os.environ.get("WORKWORK_ANVIL")
    if override:
        return Path(override)
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return local
    found = shutil.which("anvil")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: Sequence[object] = ()) -> object:
    """Calls one JSON-RPC method and returns its result.

    Raises:
        OSError: the endpoint did not answer.
        RuntimeError: it answered with an error.
    """
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.load(response)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def _answers(url: str) -> bool:
    try:
        rpc(url, "eth_chainId")
    except (OSError, RuntimeError):
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stops anvil: SIGTERM to its process group, a wait while it dumps its state, then SIGKILL
    to whatever is left of the group.

    node_modules/.bin/anvil is a Node wrapper that runs the real binary as its child; both are in
    the process group the wrapper leads (it was started in a session of its own). The wrapper
    can exit before the binary has finished writing the state file, so the whole group is
    waited for, not only the wrapper: killing the binary mid-dump would corrupt the state.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextlib.contextmanager
def running(
    *,
    state: Path | None = None,
    port: int = 0,
    block_time: float | None = None,
    log: Path | None = None,
    args: Sequence[str] = (),
) -> Iterator[str]:
    """Runs anvil on 127.0.0.1 until the block exits; yields its JSON-RPC URL.

    Args:
        state: the state file (loaded if it exists, written at exit and periodically).
        port: the port; 0 picks a free one (retried if another process takes it first).
        block_time: mine a block every so many seconds, besides one per transaction, so that
            confirmations arrive on an idle chain.
        log: where anvil's output goes (discarded if None).
        args: more anvil arguments.

    Raises:
        ChainUnavailable: anvil is not installed, or did not answer in time.
    """
    exe = binary()
    if exe is None:
        raise ChainUnavailable(
            "anvil is not installed: run scripts/setup (npm), or set WORKWORK_ANVIL"
        )
    command = [str(exe), "--host", "127.0.0.1", "--silent", "--hardfork", HARDFORK, *args]
    if state is not None:
        command += ["--state", str(state), "--state-interval", str(STATE_INTERVAL)]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    sink = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        for _attempt in range(3 if port == 0 else 1):
            chosen = port or free_port()
            url = f"http://127.0.0.1:{chosen}"
            process = subprocess.Popen(
                [*command, "--port", str(chosen)],
                stdout=sink,
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
            stop(process)
        else:
            raise ChainUnavailable(f"anvil ({exe}) did not answer on {url}")
        try:
            yield url
        finally:
            stop(process)
    finally:
        if log is not None and not isinstance(sink, int):
            sink.close()
