"""A thin test harness over web3 that runs the same contract tests on eth-tester and on anvil.

The two backends report a revert differently (see `node.chain.revert_data`, which reads both), so
that a test names the custom error it expects and checks its arguments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from node.chain.client import describe_revert
from node.chain.client import revert_data as chain_revert_data
from protocol.contract import artifact
from protocol.merkle import Leaf, MerkleTree

CONTRACTS = Path(__file__).parents[1] / "chain" / "contracts"
# Every wait on a chain is bounded: a hung backend fails a test instead of stalling the suite.
TIMEOUT = 30
# A balance above the 2**128 wei that one epoch's pool can hold.
RICH = 2**130


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

    def payee(self, name: str) -> Contract:
        """Deploys one of the test-only payout contracts of tests/chain/contracts/Payees.sol."""
        data = json.loads((CONTRACTS / f"{name}.json").read_text())
        return self.deploy(data["abi"], bytes.fromhex(data["bytecode"][2:]))

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


def describe(contract: Contract, data: bytes) -> tuple[str, tuple[Any, ...]]:
    """Returns the name and decoded arguments of a custom error, or Panic(code)."""
    return describe_revert(contract.abi, data)


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
