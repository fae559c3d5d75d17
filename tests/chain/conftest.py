"""Fixtures of the chain tests: the same tests run on eth-tester (in process) and on anvil.

`chain` is parametrized over both backends. Each backend lives for the whole session and each test
deploys its own contract, so tests do not see each other's epochs; balances are compared as
differences, since the dev accounts are shared. Anvil is started from node_modules on a free
loopback port and skipped, with the reason, when it is not installed.
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
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from tests.chain.evm import RICH, TIMEOUT, Chain

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
# The fork the contract is compiled for (scripts/contract/build.mjs), so that both backends run
# the same rules whatever anvil's default becomes.
HARDFORK = "prague"
START_TIMEOUT = 20.0

_chains: list[Chain] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return "result" in json.load(response)
    except OSError:
        return False


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


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """Starts anvil on a free loopback port and returns its JSON-RPC URL."""
    if not ANVIL.exists():
        pytest.skip(f"anvil is not installed ({ANVIL.relative_to(ROOT)}): run scripts/setup")
    command = [str(ANVIL), "--host", "127.0.0.1", "--silent", "--hardfork", HARDFORK]
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


def _embedded() -> Chain:
    # eth-tester's usual accounts, with more than 2**128 wei each (instead of a million ether),
    # so that a test can reach the limit of an epoch's pool, as anvil_setBalance does on anvil.
    state = PyEVMBackend.generate_genesis_state(overrides={"balance": RICH}, num_accounts=10)
    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(genesis_state=state))))
    return Chain("embedded", w3, tuple(w3.eth.accounts))


def _anvil(url: str) -> Chain:
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": TIMEOUT}))
    return Chain("anvil", w3, tuple(w3.eth.accounts))


@pytest.fixture(scope="session", params=["embedded", "anvil"])
def chain(request: pytest.FixtureRequest) -> Chain:
    """A backend with funded, unlocked dev accounts (eth-tester's or anvil's)."""
    if request.param == "embedded":
        made = _embedded()
    else:
        made = _anvil(request.getfixturevalue("anvil_url"))
    _chains.append(made)
    return made


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Prints the gas that the chain tests recorded, per backend."""
    recorded = [c for c in _chains if c.gas]
    if not recorded:
        return
    labels = sorted({label for c in recorded for label in c.gas})
    width = max(len(label) for label in labels)
    terminalreporter.section("gas used")
    terminalreporter.write_line(
        f"{'transaction':<{width}}  " + "  ".join(f"{c.name:>10}" for c in recorded)
    )
    for label in labels:
        cells = "  ".join(
            f"{c.gas[label]:>10,}" if label in c.gas else f"{'-':>10}" for c in recorded
        )
        terminalreporter.write_line(f"{label:<{width}}  {cells}")
