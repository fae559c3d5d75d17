"""A thin test harness over web3 that runs the same contract tests on eth-tester and on anvil.

The two backends report a revert differently (see `node.chain.revert_data`, which reads both), so
that a test names the custom error it expects and checks its arguments. Both let a test move
the chain's clock (`Chain.warp`, `Chain.next_block_at`), which is how expiries are tested.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from node.chain.client import describe_revert
from node.chain.client import revert_data as chain_revert_data
from protocol.contract import ETHER, artifact
from protocol.merkle import Leaf, MerkleTree
from tests.support.factories import address, pid

CONTRACTS = Path(__file__).parents[1] / "chain" / "contracts"
# Every wait on a chain is bounded: a hung backend fails a test instead of stalling the suite.
TIMEOUT = 30
# A balance above the 2**128 wei that one epoch's pool can hold.
RICH = 2**130
ETH = 10**18
# Ether, as the contract's functions that take a token name it.
NATIVE = Web3.to_checksum_address(ETHER)
PROJECT = pid("alice", "docs")


def checksum(address: bytes) -> str:
    return Web3.to_checksum_address(address)


@dataclass
class Chain:
    """One backend: a connected Web3, its funded dev accounts, and the gas each test recorded."""

    name: str
    w3: Web3
    accounts: tuple[str, ...]
    gas: dict[str, int] = field(default_factory=dict)

    def deploy(self, abi: Sequence[dict[str, Any]], bytecode: bytes) -> Contract:
        receipt = self.send(self.w3.eth.contract(abi=abi, bytecode=bytecode).constructor())
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=abi)

    def settlement(self) -> Contract:
        """Deploys a fresh settlement contract, so that no test sees another's epochs."""
        built = artifact()
        return self.deploy(built.abi, built.bytecode)

    def payee(self, name: str, *args: Any) -> Contract:
        """Deploys one of the test-only contracts of tests/chain/contracts: a payout contract
        (Payees.sol, Wallets.sol) or a token (Tokens.sol), with its constructor's `args`."""
        data = json.loads((CONTRACTS / f"{name}.json").read_text())
        factory = self.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
        receipt = self.send(factory.constructor(*args))
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=data["abi"])

    def token(self, name: str, *args: Any) -> Contract:
        """Deploys one of the test tokens of tests/chain/contracts/Tokens.sol."""
        return self.payee(name, *args)

    def now(self) -> int:
        """The timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def next_block_at(self, timestamp: int) -> None:
        """Makes the next transaction's block carry `timestamp` (later than the latest block's).

        eth-tester mines an empty block a second before, so that calls made in between see a
        time just short of it; anvil sets the next block's timestamp without mining.
        """
        provider = self.w3.provider
        if isinstance(provider, EthereumTesterProvider):
            provider.ethereum_tester.time_travel(timestamp)
            return
        response = provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
        assert "error" not in response, response

    def send_at(
        self, timestamp: int, call: Any, *, sender: str | None = None, value: int = 0
    ) -> TxReceipt:
        """Mines a transaction in a block of `timestamp`, whether it succeeds or reverts.

        Its gas is fixed rather than estimated: the backends estimate on different blocks (anvil
        on the latest, eth-tester on the next), so only a mined transaction shows what the
        contract does at an exact time. The receipt's status says whether it succeeded.
        """
        self.next_block_at(timestamp)
        receipt = self.send(call, sender=sender, value=value, gas=1_000_000)
        assert int(self.w3.eth.get_block(receipt["blockNumber"])["timestamp"]) == timestamp
        return receipt

    def mine(self) -> None:
        """Mines an empty block (at the time `next_block_at` set, if it did), so that calls,
        which run on the latest block, see its time."""
        provider = self.w3.provider
        if isinstance(provider, EthereumTesterProvider):
            provider.ethereum_tester.mine_blocks(1)
        else:
            provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def warp(self, seconds: int) -> int:
        """Moves the chain's clock `seconds` ahead and mines a block there; returns its time."""
        target = self.now() + seconds
        if isinstance(self.w3.provider, EthereumTesterProvider):
            # It mines its block a second before the time it is given.
            self.w3.provider.ethereum_tester.time_travel(target + 1)
        else:
            self.next_block_at(target)
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert self.now() == target
        return target

    def send(
        self,
        call: Any,
        *,
        sender: str | None = None,
        value: int = 0,
        gas: int | None = None,
    ) -> TxReceipt:
        """Sends a transaction and returns its receipt once mined.

        Without `gas`, the node estimates it first, so a call that would revert raises here
        and is never mined. With `gas`, the transaction is mined whatever it does, which is how a
        test shows that a reverted claim changed nothing.
        """
        tx: dict[str, Any] = {"from": sender or self.accounts[0], "value": value}
        if gas is not None:
            tx["gas"] = gas
        tx_hash = call.transact(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT)
        if gas is None:
            assert receipt["status"] == 1, receipt
        return receipt

    def balance(self, address: str | bytes) -> int:
        if isinstance(address, bytes):
            address = checksum(address)
        return self.w3.eth.get_balance(address)

    def record(self, label: str, receipt: TxReceipt) -> int:
        """Keeps the gas a transaction used, for the summary printed after the tests."""
        used = int(receipt["gasUsed"])
        self.gas[label] = used
        return used


def revert_data(exc: BaseException) -> bytes:
    """Returns the revert data carried by a failed call or transaction, from either backend."""
    data = chain_revert_data(exc)
    if data is None:
        raise AssertionError(f"no revert data in {exc!r}")
    return data


# What the test stablecoin (and USDC) reverts with when an address on its blocklist is involved.
BLACKLISTED = "Blacklistable: account is blacklisted"
# A revert with a reason string, which tokens use (USDC's blocklist among them).
_REASON = {"type": "error", "name": "Error", "inputs": [{"name": "", "type": "string"}]}


def describe(contract: Contract, data: bytes) -> tuple[str, tuple[Any, ...]]:
    """Returns the name and decoded arguments of a custom error, Error(reason) or Panic(code)."""
    return describe_revert([*contract.abi, _REASON], data)


@contextmanager
def reverts(contract: Contract, error: str, *args: Any) -> Iterator[None]:
    """Asserts that the block reverts with the custom error `error` (and `args`, if given)."""
    with pytest.raises((ContractLogicError, TransactionFailed)) as info:
        yield
    name, values = describe(contract, revert_data(info.value))
    assert name == error, f"reverted with {name}{values}, expected {error}"
    if args:
        assert values == args, f"{error} carried {values}, expected {args}"


def leaf_args(leaf: Leaf) -> tuple[bytes, str, int]:
    """The leaf as the contract takes it: (contributionId, payout, weight)."""
    return leaf.contribution_id, checksum(leaf.payout), leaf.weight


def claim_call(
    contract: Contract,
    owner: str,
    project: bytes,
    epoch: int,
    leaf: Leaf,
    proof: Sequence[bytes],
) -> ContractFunction:
    return contract.functions.claim(owner, project, epoch, *leaf_args(leaf), list(proof))


def proof_of(tree: MerkleTree, leaf: Leaf) -> list[bytes]:
    return list(tree.proof(leaf.contribution_id))


def make_leaves(tag: str, weights: Sequence[int]) -> list[Leaf]:
    """Returns leaves with distinct ids and fresh payout addresses (balance 0 on both chains)."""
    return [
        Leaf(
            hashlib.sha256(f"{tag} contribution {i}".encode()).digest(),
            address(f"{tag} payout {i}"),
            weight,
        )
        for i, weight in enumerate(weights)
    ]


@dataclass
class Epoch:
    """An anchored epoch of a test: where it lives and the tree behind it."""

    owner: str
    project: bytes
    number: int
    tree: MerkleTree
    total_weight: int

    @property
    def leaves(self) -> tuple[Leaf, ...]:
        return self.tree.leaves

    def ref(self) -> tuple[str, bytes, int]:
        return self.owner, self.project, self.number


def anchor(
    chain: Chain,
    contract: Contract,
    leaves: Sequence[Leaf],
    *,
    number: int = 1,
    project: bytes = PROJECT,
    owner: str | None = None,
    total_weight: int | None = None,
) -> Epoch:
    """Anchors the tree of `leaves`, with their true total weight unless told otherwise."""
    tree = MerkleTree.build(leaves)
    total = sum(leaf.weight for leaf in leaves) if total_weight is None else total_weight
    owner = owner or chain.accounts[0]
    call = contract.functions.anchor(project, number, tree.root, len(leaves), total)
    chain.send(call, sender=owner)
    return Epoch(owner, project, number, tree, total)


def token_balance(token: Contract | None, holder: str | bytes, chain: Chain) -> int:
    """What `holder` holds of `token`, or of ether when `token` is None."""
    if isinstance(holder, bytes):
        holder = checksum(holder)
    if token is None:
        return chain.balance(holder)
    return int(token.functions.balanceOf(holder).call())


def mint_and_approve(chain: Chain, token: Contract, spender: str, holder: str, amount: int) -> None:
    """Gives `holder` `amount` of a test token and lets `spender` take all of it.

    The allowance is set through zero first, which USDT-style tokens require.
    """
    chain.send(token.functions.mint(holder, amount))
    chain.send(token.functions.approve(spender, 0), sender=holder)
    chain.send(token.functions.approve(spender, amount), sender=holder)
