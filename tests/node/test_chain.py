"""The chain client and the backends a node's config opens (eth-tester, anvil, JSON-RPC)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import eth_tester.exceptions
import eth_utils.exceptions
import pytest
import requests
from eth_account import Account
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, TimeExhausted, Web3RPCError

from node.chain import anvil
from node.chain.client import (
    ChainClient,
    NonceUsed,
    checksum,
    dev_fund,
    open_chain,
    tx_cost,
    web3_at,
)
from node.chain.rpc import retrying
from node.config import ChainConfig
from node.errors import (
    ChainError,
    ChainUnavailable,
    ConfigError,
    InsufficientFunds,
    TransactionReverted,
)
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# Typed errors at the client's boundary.

ETHER = 10**18


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest) -> ChainClient:
    """A fresh contract, deployed by a funded wallet, on eth-tester and on anvil."""
    if request.param == "embedded":
        return ChainClient.embedded()
    url = request.getfixturevalue("anvil_url")
    wallet = Account.create()
    w3 = web3_at(url, ChainConfig())
    dev_fund(w3, wallet.address)
    return ChainClient.deploy(w3, wallet)


def funded_epoch(chain: ChainClient, epoch: int, amount: int) -> tuple[MerkleTree, Leaf]:
    merkle, summary = tree()
    chain.transact(chain.sign_anchor(PROJECT, epoch, summary))
    chain.transact(chain.sign_fund(chain.sender, PROJECT, epoch, amount))
    return merkle, merkle.leaves[1]


def test_funding_more_than_the_wallet_holds_is_insufficient_funds(backend: ChainClient) -> None:
    chain = backend
    chain.transact(chain.sign_anchor(PROJECT, 4, tree()[1]))
    holds = chain.balance(chain.sender)
    for amount in (holds + 1, holds * 2, holds):
        with pytest.raises(InsufficientFunds) as info:
            chain.sign_fund(chain.sender, PROJECT, 4, amount)
        error = info.value
        assert (error.wallet, error.holds) == (checksum(chain.sender), holds)
        # The amount and the gas: more than the amount, by less than a gas-priced anchor.
        assert amount < error.needs < amount + 10**17
        assert str(error) == (
            f"insufficient funds: wallet {checksum(chain.sender)} holds {holds} wei, "
            f"needs {error.needs} wei (the amount and gas)"
        )
    # What it holds less the gas is fine.
    chain.transact(chain.sign_fund(chain.sender, PROJECT, 4, holds // 2))


def test_an_empty_wallet_cannot_anchor_claim_or_fund(backend: ChainClient) -> None:
    chain = backend
    merkle, leaf = funded_epoch(chain, 5, ETHER)
    empty = ChainClient(chain.w3, chain.address, Account.create(), config=chain.config)
    calls = {
        "anchor": lambda: empty.sign_anchor(PROJECT, 6, tree()[1]),
        "claim": lambda: empty.sign_claim(
            chain.sender, PROJECT, 5, leaf, merkle.proof(leaf.contribution_id)
        ),
        "fund": lambda: empty.sign_fund(chain.sender, PROJECT, 5, ETHER),
    }
    for name, call in calls.items():
        with pytest.raises(InsufficientFunds) as info:
            call()
        assert info.value.holds == 0 and info.value.needs > 0, name
        assert info.value.wallet == checksum(empty.sender), name
    # An empty wallet names what it needs at the least: the amount.
    with pytest.raises(InsufficientFunds, match=f"needs {ETHER} wei"):
        calls["fund"]()


def test_a_used_nonce_is_refused_as_such(backend: ChainClient) -> None:
    chain = backend
    first = chain.sign_anchor(PROJECT, 7, tree()[1])
    second = chain.sign_anchor(PROJECT, 8, tree()[1])
    assert first.nonce == second.nonce
    chain.transact(first)
    with pytest.raises(NonceUsed, match=f"0x{second.hash.hex()}"):
        chain.send(second)
    # Bytes the chain already mined are refused for their nonce too.
    with pytest.raises(NonceUsed):
        chain.send(first)


def test_a_send_the_wallet_can_no_longer_pay_is_insufficient_funds(anvil_url: str) -> None:
    wallet = Account.create()
    w3 = web3_at(anvil_url, ChainConfig())
    dev_fund(w3, wallet.address)
    chain = ChainClient.deploy(w3, wallet)
    tx = chain.sign_anchor(PROJECT, 1, tree()[1])
    # The balance falls between signing and sending.
    anvil.rpc(anvil_url, "anvil_setBalance", [wallet.address, hex(1000)])
    with pytest.raises(InsufficientFunds) as info:
        chain.send(tx)
    sender, cost = tx_cost(tx.raw)
    assert sender == chain.sender and cost > 1000
    assert (info.value.wallet, info.value.holds, info.value.needs) == (wallet.address, 1000, cost)


def test_no_contract_at_the_address_is_a_chain_error(backend: ChainClient) -> None:
    nowhere = ChainClient(backend.w3, "0x" + "33" * 20)
    with pytest.raises(ChainError, match="empty or malformed") as info:
        nowhere.epoch(nowhere.address, PROJECT, 0)
    assert type(info.value) is ChainError


class _Endpoint(http.server.BaseHTTPRequestHandler):
    """A JSON-RPC endpoint that answers every request with the status and body it is set to."""

    status = 200
    body = b"{}"
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[tuple[str, type[_Endpoint]]]:
    handler = type("Endpoint", (_Endpoint,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("status", "body", "error", "message", "attempts"),
    [
        (503, b"busy", ChainUnavailable, "did not answer", 2),
        (429, b"slow down", ChainUnavailable, "did not answer", 2),
        (401, b"who are you", ChainError, "401", 1),
        (200, b"<html>not json</html>", ChainError, "reading the chain id failed: Could not decode", 1),
        (200, b'{"jsonrpc": "2.0", "id": 0, "error": {"code": -32000, "message": "header not found"}}',
         ChainError, "header not found", 1),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_what_an_endpoint_answers_becomes_a_typed_error(
    endpoint: tuple[str, type[_Endpoint]],
    status: int,
    body: bytes,
    error: type[ChainError],
    message: str,
    attempts: int,
) -> None:
    url, handler = endpoint
    handler.status, handler.body = status, body
    config = ChainConfig(backend="rpc", url=url, contract="0x" + "11" * 20, retries=2)
    with pytest.raises(error, match=message) as info:
        ChainClient.connect(url, config.contract, config=config)
    assert type(info.value) is error
    # Only what may answer next time is tried again, and web3 adds no retries of its own.
    assert handler.calls == attempts


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (requests.ConnectionError("refused"), ChainUnavailable),
        (requests.Timeout("slow"), ChainUnavailable),
        (requests.exceptions.ChunkedEncodingError("cut"), ChainUnavailable),
        (_http_error(502), ChainUnavailable),
        (_http_error(403), ChainError),
        (requests.exceptions.InvalidURL("no"), ChainError),
        (Web3RPCError("{'code': -32000, 'message': 'missing trie node'}"), ChainError),
        (TimeExhausted("not mined in 10 s"), ChainError),
        (BadFunctionCallOutput("empty"), ChainError),
        (ValueError("a web3 shape of old"), ChainError),
        (eth_utils.exceptions.ValidationError("py-evm says no"), ChainError),
        (eth_tester.exceptions.BlockNotFound("no block 9"), ChainError),
        (ContractLogicError("execution reverted", data="0x"), TransactionReverted),
    ],
)
def test_what_the_chain_libraries_raise_leaves_the_client_typed(
    raised: Exception, error: type[ChainError]
) -> None:
    def fail() -> None:
        raise raised

    with pytest.raises(error) as info:
        retrying(ChainConfig(retries=2), "reading", fail)
    assert type(info.value) is error and info.value.__cause__ is raised


def test_a_bug_is_not_taken_for_the_chain() -> None:
    def fail() -> None:
        raise TypeError("a bug")

    with pytest.raises(TypeError, match="a bug"):
        retrying(ChainConfig(), "reading", fail)
