"""The chain client and the backends a node's config opens (eth-tester, anvil, JSON-RPC)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account

from node.chain import anvil
from node.chain.client import ChainClient, open_chain
from node.config import ChainConfig
from node.errors import ChainError, ChainUnavailable, ConfigError, TransactionReverted
from protocol.epoch import Summary
from protocol.merkle import Leaf, MerkleTree

PROJECT = b"\x11" * 32


def tree() -> tuple[MerkleTree, Summary]:
    merkle = MerkleTree.build([Leaf(bytes([i]) * 32, bytes([i + 1]) * 20, i + 1) for i in range(4)])
    return merkle, Summary(merkle.root, 4, 10)


def test_embedded_anchor_find_verify_and_typed_reverts() -> None:
    chain = ChainClient.embedded()
    merkle, summary = tree()
    assert chain.find_anchor(chain.sender, PROJECT, 1) is None
    receipt = chain.transact(chain.sign_anchor(PROJECT, 1, summary))
    found = chain.find_anchor(chain.sender, PROJECT, 1)
    assert found is not None
    assert (found.root, found.leaf_count, found.total_weight) == (summary.root, 4, 10)
    assert (found.tx_hash, found.block_number) == (
        bytes(receipt["transactionHash"]),
        receipt["blockNumber"],
    )
    assert chain.tx_sender(found.tx_hash) == chain.sender
    leaf = merkle.leaves[0]
    assert chain.verify(chain.sender, PROJECT, 1, leaf, merkle.proof(leaf.contribution_id))
    assert not chain.verify(chain.sender, PROJECT, 2, leaf, merkle.proof(leaf.contribution_id))
    with pytest.raises(TransactionReverted, match=r"AlreadyAnchored\(0x[0-9a-fA-F]{40}, 0x1111"):
        chain.sign_anchor(PROJECT, 1, summary)
    with pytest.raises(TransactionReverted, match="NotAnchored"):
        chain.sign_fund(chain.sender, PROJECT, 9, 1)
    reader = ChainClient(chain.w3, chain.address)
    with pytest.raises(ChainError, match="no key"):
        reader.sign_fund(chain.sender, PROJECT, 1, 1)


def test_an_endpoint_that_does_not_answer_is_unavailable_after_retries() -> None:
    url = f"http://127.0.0.1:{anvil.free_port()}"
    config = ChainConfig(backend="rpc", url=url, contract="0x" + "11" * 20, retries=2)
    started = time.monotonic()
    with pytest.raises(ChainUnavailable, match=r"did not answer .*\(2 attempts\)"):
        ChainClient.connect(url, config.contract, config=config)
    assert time.monotonic() - started < 10


def test_rpc_needs_a_contract_and_refuses_the_wrong_one(tmp_path: Path) -> None:
    no_contract = ChainConfig(backend="rpc", url="http://127.0.0.1:1")
    with (
        pytest.raises(ConfigError, match="contract"),
        open_chain(no_contract, Account.create(), tmp_path),
    ):
        pass
    if anvil.binary() is None:
        pytest.skip("anvil is not installed: run scripts/setup")
    with anvil.running() as url:
        config = ChainConfig(backend="rpc", url=url, contract="0x" + "22" * 20)
        with (
            pytest.raises(ChainError, match="no contract at"),
            open_chain(config, Account.create(), tmp_path),
        ):
            pass


def test_an_anvil_chain_keeps_its_contract_and_anchors_across_restarts(tmp_path: Path) -> None:
    if anvil.binary() is None:
        pytest.skip("anvil is not installed: run scripts/setup")
    wallet = Account.create()
    _, summary = tree()
    with open_chain(ChainConfig(backend="anvil"), wallet, tmp_path) as chain:
        assert chain.balance(chain.sender) > 10**18  # the dev faucet paid for gas
        chain.transact(chain.sign_anchor(PROJECT, 3, summary))
        first = chain.address
    with open_chain(ChainConfig(backend="anvil"), wallet, tmp_path) as chain:
        assert chain.address == first
        assert chain.epoch(chain.sender, PROJECT, 3).root == summary.root
