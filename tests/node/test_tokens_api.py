"""Funding in tokens, pools, per-token shares and claims, and the audit before funding: through
a real daemon's API over HTTP, on the embedded chain (eth-tester) and on anvil, with a
6-decimals stablecoin.

The daemon's store refuses calls from the event loop (`WORKWORK_STRICT_IO`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from node.chain import anvil
from node.chain.client import ChainClient, checksum
from node.client import Client
from node.config import ChainConfig
from node.errors import (
    AnchorDisagrees,
    InsufficientAllowance,
    InsufficientTokens,
    UnknownToken,
    WrongChain,
    outcome,
)
from node.keys import Identity
from node.net.node import STRICT_IO_ENV
from protocol import Contribution
from protocol.epoch import Summary
from tests.node.test_settlement_api import call, daemon, refused
from tests.support import factories as f
from tests.support.epochs import ingest, records

CONTRACTS = Path(__file__).parents[1] / "chain" / "contracts"
ETHER = 10**18
USDC = 10**6
TIMEOUT = 90


def deploy_token(w3: Web3, symbol: str = "USDC", decimals: int = 6) -> Contract:
    """Deploys the test stablecoin of tests/chain/contracts/Tokens.sol from a dev account."""
    data = json.loads((CONTRACTS / "TestToken.json").read_text())
    factory = w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    tx = factory.constructor("USD", symbol, decimals).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx, 30)
    return w3.eth.contract(address=receipt["contractAddress"], abi=data["abi"])


def mint(token: Contract, to: str, amount: int) -> None:
    w3 = token.w3
    tx = token.functions.mint(to, amount).transact({"from": w3.eth.accounts[0]})
    w3.eth.wait_for_transaction_receipt(tx, 30)


def check(error: Any, cls: type[Exception]) -> None:
    assert (error.status, error.type, error.hint) == (
        outcome(cls).status,
        cls.__name__,
        outcome(cls).hint,
    ), error.message


@pytest.mark.parametrize("backend", ["embedded", pytest.param("anvil", marks=pytest.mark.slow)])
async def test_pool_allocation_and_ether_are_claimed_in_both_tokens(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STRICT_IO_ENV, "1")
    if backend == "anvil" and anvil.binary() is None:
        pytest.skip("anvil is not installed (node_modules/.bin/anvil): run scripts/setup")
    owner = Identity(f.key("alice"), Account.create())
    with trio.fail_after(TIMEOUT):
        async with daemon(
            tmp_path / "n", owner, ChainConfig(backend=backend, poll_interval=0.05)
        ) as running:
            assert running.node is not None and running.settlement is not None
            client = await call(Client.connect, tmp_path / "n")
            chain: ChainClient = running.settlement.chain
            posted = records(owner, epochs=(0, 1, 2))
            await ingest(running.node, posted)
            works = [r for r in posted if isinstance(r.body, Contribution)]
            pid = f.pid().hex()
            await call(client.anchor, pid, 0)
            usdc = await call(deploy_token, chain.w3)
            await call(mint, usdc, owner.wallet.address, 1000 * USDC)

            # Typed refusals, nothing sent: an address with no token, a symbol nobody funded
            # this project in yet, more than the wallet holds, no allowance without approving.
            nonce = await call(chain.w3.eth.get_transaction_count, owner.wallet.address)
            check(
                await refused(lambda: client.fund_pool(pid, 1, token="0x" + "ab" * 20)),
                UnknownToken,
            )
            error = await refused(lambda: client.fund_pool(pid, 1, token="USDC"))
            check(error, UnknownToken)
            assert "name the token by its address" in error.message
            error = await refused(lambda: client.fund_pool(pid, 2000 * USDC, token=usdc.address))
            check(error, InsufficientTokens)
            error = await refused(
                lambda: client.fund_pool(pid, 10 * USDC, token=usdc.address, approve=False)
            )
            check(error, InsufficientAllowance)
            assert await call(chain.w3.eth.get_transaction_count, owner.wallet.address) == nonce

            # A funder pays 500 USDC into the pool; the node approves the contract first.
            pooled = await call(lambda: client.fund_pool(pid, 500 * USDC, token=usdc.address))
            assert len(pooled["approvals"]) == 1 and pooled["credited"] == str(500 * USDC)
            assert pooled["token"] == {"address": usdc.address, "symbol": "USDC", "decimals": 6}
            # From now on the symbol names it.
            assert (await call(client.tokens, pid, "usdc"))["items"][0]["address"] == usdc.address

            # The owner allocates 200 of it to the anchored epoch; another party funds 1 ETH.
            await call(lambda: client.allocate(pid, 0, 200 * USDC, token="USDC"))
            error = await refused(lambda: client.allocate(pid, 0, 400 * USDC, token="USDC"))
            assert error.type == "TransactionReverted" and "InsufficientPool" in error.message
            # While the pool lives, nobody takes money back from it.
            error = await refused(lambda: client.refund_pool(pid, token="USDC"))
            assert error.type == "SettlementError" and "the pool is open" in error.message
            await call(client.fund, pid, 0, 3 * ETHER)
            shown = await call(client.pool, pid)
            assert shown["closed_at"] == 0 and shown["owner"] == checksum(chain.sender)
            (book,) = shown["tokens"]
            assert (book["funded"], book["unallocated"], book["my_stake"]) == (
                str(500 * USDC),
                str(300 * USDC),
                str(500 * USDC),
            )
            assert [(a["epoch"], a["amount"]) for a in shown["allocations"]] == [
                (0, str(200 * USDC))
            ]
            status = await call(client.epochs, pid)
            books = {
                b["token"]["symbol"]: (b["funded"], b["paid"]) for b in status["items"][0]["tokens"]
            }
            assert books == {"ETH": (str(3 * ETHER), "0"), "USDC": (str(200 * USDC), "0")}

            # Each contributor's share shows both tokens, and a claim pays both (weights 1, 2, 3).
            for i, work in enumerate(works[:3]):
                share = await call(client.share, work.id.hex())
                owed = {t["token"]["symbol"]: t["claimable"] for t in share["tokens"]}
                assert owed == {
                    "ETH": str((i + 1) * ETHER // 2),
                    "USDC": str((i + 1) * 200 * USDC // 6),
                }
                before = await call(usdc.functions.balanceOf(share["payout"]).call)
                paid = await call(client.claim, work.id.hex())
                assert {p["token"]["symbol"]: p["amount"] for p in paid["payments"]} == owed
                after = await call(usdc.functions.balanceOf(share["payout"]).call)
                assert after - before == int(owed["USDC"])

            # An anchor that disagrees with the records (a total weight the leaves do not have)
            # is refused before anything is paid; --force pays anyway and says so.
            tree = await running.settlement.tree(f.pid(), 1)
            summary = tree[1]
            bogus = Summary(summary.root, summary.leaf_count, summary.total_weight * 1000)
            tx = await call(chain.sign_anchor, f.pid(), 1, bogus)
            await call(chain.transact, tx)
            nonce = await call(chain.w3.eth.get_transaction_count, owner.wallet.address)
            error = await refused(client.fund, pid, 1, ETHER)
            check(error, AnchorDisagrees)
            assert "total_weight_mismatch" in error.message and "nothing was sent" in error.message
            assert await call(chain.w3.eth.get_transaction_count, owner.wallet.address) == nonce
            forced = await call(lambda: client.fund(pid, 1, ETHER, force=True))
            assert forced["forced"] is True

            # The owner allocates to that epoch, which no epoch root names: the audit (of any
            # epoch of the project) finds it, and reports the pool's balance per token.
            await call(lambda: client.allocate(pid, 1, 50 * USDC, token="USDC"))
            report = await call(client.audit, pid, 0)
            assert [x["kind"] for x in report["findings"]] == ["unpublished_allocation"]
            assert [(a["epoch"], a["amount"]) for a in report["allocations"]] == [
                (0, str(200 * USDC)),
                (1, str(50 * USDC)),
            ]
            assert report["pools"] == [
                {
                    "token": usdc.address,
                    "funded": str(500 * USDC),
                    "unallocated": str(250 * USDC),
                    "refunded": "0",
                }
            ]

            # Closing the project closes its pools: the funder takes back the unallocated 250.
            closed = await call(client.close_project, pid)
            assert closed["pools"]["closed"] is True and closed["pools"]["tx_hash"]
            back = await call(lambda: client.refund_pool(pid, token="USDC"))
            assert back["amount"] == str(250 * USDC)
            error = await refused(lambda: client.refund_pool(pid, token="USDC"))
            assert error.type == "SettlementError" and "taken back already" in error.message

            # An epoch whose owner's epoch root names another chain: WrongChain, in words.
            accepted = [r for r in posted if r.body.KIND == "acceptance"][6:]
            elsewhere = f.anchoring(
                accepted, works[6:], epoch=2, chain_id=31337, contract=f.address("c")
            )
            await ingest(running.node, elsewhere)
            error = await refused(client.fund, pid, 2, ETHER)
            check(error, WrongChain)
            assert "settles on chain 31337" in error.message
            client.close()
