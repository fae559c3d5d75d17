"""What the API answers when the chain says no: a daemon on eth-tester and on anvil, over HTTP.

The daemon's store refuses calls from the event loop (`WORKWORK_STRICT_IO`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.chain import anvil
from node.chain.client import TIP, ChainClient, checksum
from node.client import Client, DaemonError
from node.config import ChainConfig, NetworkConfig
from node.daemon import Daemon
from node.errors import InsufficientFunds, outcome
from node.home import Home, Settings
from node.keys import Identity
from node.net.node import STRICT_IO_ENV
from protocol import Contribution
from tests.support import factories as f
from tests.support.epochs import ingest, records

T = TypeVar("T")
ETHER = 10**18
TIMEOUT = 60


@asynccontextmanager
async def daemon(root: Path, owner: Identity, chain: ChainConfig) -> AsyncIterator[Daemon]:
    root.mkdir(parents=True)
    settings = Settings(network=NetworkConfig(sync_interval=3600.0), chain=chain)
    running = Daemon(Home(root), owner, settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(running.run)
        try:
            yield running
        finally:
            running.stop()


async def call(fn: Callable[..., T], *args: Any) -> T:
    """Runs a blocking call in a thread, so that the daemon on this event loop can answer."""
    return await trio.to_thread.run_sync(partial(fn, *args))


async def refused(fn: Callable[..., Any], *args: Any) -> DaemonError:
    with pytest.raises(DaemonError) as info:
        await call(fn, *args)
    return info.value


def drain(chain: ChainClient, wallet: LocalAccount) -> int:
    """Sends what the wallet can spare to a burn address; returns what is left (dust, less than
    the gas of any call of the contract)."""
    w3 = chain.w3
    fee = 2 * int(w3.eth.get_block("latest")["baseFeePerGas"]) + TIP
    balance = w3.eth.get_balance(wallet.address)
    tx = wallet.sign_transaction(
        {
            "to": checksum(b"\xde" * 20),
            "value": balance - 21_000 * fee,
            "gas": 21_000,
            "maxFeePerGas": fee,
            "maxPriorityFeePerGas": TIP,
            "nonce": w3.eth.get_transaction_count(wallet.address, "pending"),
            "chainId": chain.chain_id,
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction), 30)
    return int(w3.eth.get_balance(wallet.address))


def amounts(error: DaemonError) -> tuple[str, int, int]:
    found = re.fullmatch(
        r"insufficient funds: wallet (0x[0-9a-fA-F]{40}) holds (\d+) wei, needs (\d+) wei "
        r"\(the amount and gas\)",
        error.message,
    )
    assert found is not None, error.message
    return found.group(1), int(found.group(2)), int(found.group(3))


@pytest.mark.parametrize("backend", ["embedded", pytest.param("anvil", marks=pytest.mark.slow)])
async def test_a_wallet_short_of_funds_gets_409_insufficient_funds(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STRICT_IO_ENV, "1")
    if backend == "anvil" and anvil.binary() is None:
        pytest.skip("anvil is not installed (node_modules/.bin/anvil): run scripts/setup")
    owner = Identity(f.key("alice"), Account.create())
    hint = outcome(InsufficientFunds).hint
    with trio.fail_after(TIMEOUT):
        async with daemon(
            tmp_path / "n", owner, ChainConfig(backend=backend, poll_interval=0.05)
        ) as running:
            assert running.node is not None and running.settlement is not None
            client = await call(Client.connect, tmp_path / "n")
            chain = running.settlement.chain
            posted = records(owner, epochs=(0, 1))
            await ingest(running.node, posted)
            works = [r for r in posted if isinstance(r.body, Contribution)]
            pid = f.pid().hex()
            await call(client.anchor, pid, 0)

            # Funding more than the wallet holds: 409, naming the wallet, holds and needs.
            holds = await call(chain.balance, chain.sender)
            error = await refused(client.fund, pid, 0, 2 * holds)
            assert (error.status, error.type, error.hint) == (409, "InsufficientFunds", hint)
            wallet, said_holds, needs = amounts(error)
            assert (wallet, said_holds) == (checksum(chain.sender), holds)
            assert needs > 2 * holds

            # An empty wallet can neither claim nor anchor; nothing is sent, nothing recorded.
            await call(client.fund, pid, 0, ETHER)
            left = await call(drain, chain, owner.wallet)
            nonce = await call(chain.w3.eth.get_transaction_count, owner.wallet.address)
            for fn, args in ((client.claim, (works[0].id.hex(),)), (client.anchor, (pid, 1))):
                error = await refused(fn, *args)
                assert (error.status, error.type, error.hint) == (409, "InsufficientFunds", hint)
                wallet, said_holds, needs = amounts(error)
                assert (wallet, said_holds) == (checksum(chain.sender), left)
                assert needs > left
            assert await call(chain.w3.eth.get_transaction_count, owner.wallet.address) == nonce
            status = await call(client.request, "GET", f"/v1/projects/{pid}/epochs")
            assert [(e["epoch"], e["anchored"], e["pending"]) for e in status["items"]] == [
                (0, True, False),
                (1, False, False),
            ]
            client.close()
