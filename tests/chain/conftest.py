"""Fixtures of the chain tests: the same tests run on eth-tester (in process) and on anvil.

`chain` is parametrized over both backends. Each backend lives for the whole session and each test
deploys its own contract, so tests do not see each other's epochs; balances are compared as
differences, since the dev accounts are shared. Anvil is started from node_modules on a free
loopback port and skipped, with the reason, when it is not installed.
"""

from __future__ import annotations

import pytest
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from tests.support.evm import RICH, TIMEOUT, Chain

_chains: list[Chain] = []


def _embedded() -> Chain:
    # eth-tester's usual accounts, with more than 2**128 wei each (instead of a million ether),
    # so that a test can reach the limit of an epoch's pool, as anvil_setBalance does on anvil.
    state = PyEVMBackend.generate_genesis_state(overrides={"balance": RICH}, num_accounts=10)
    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(genesis_state=state))))
    return Chain("embedded", w3, tuple(w3.eth.accounts))


def _anvil(url: str) -> Chain:
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": TIMEOUT}))
    return Chain("anvil", w3, tuple(w3.eth.accounts))


@pytest.fixture(scope="session", params=["embedded", pytest.param("anvil", marks=pytest.mark.slow)])
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
