"""The node's chain client on the second contract: tokens, expiry and refunds, redirects, pools.

The client signs with its own key and sends raw transactions, as the node does; these tests give
it a fresh funded wallet on each backend and check each new method against the contract's own
views, and that reverts name the contract's or the token's custom error. Ether through the
methods main's settlement service calls (`sign_fund`, `sign_claim`, `claimable`, `claimed`,
`epoch`) keeps the signatures and meaning it had.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.middleware import Web3Middleware
from web3.types import MakeRequestFn, RPCEndpoint, RPCResponse

from node.chain.client import (
    ETHER,
    ChainClient,
    InsufficientAllowance,
    InsufficientTokens,
    PoolState,
    Stake,
    TokenFunding,
    TokenInfo,
    UnknownToken,
    WrongChain,
    dev_fund,
)
from node.config import ChainConfig
from node.errors import ChainError, InsufficientFunds, TransactionReverted, outcome
from protocol.epoch import Summary
from protocol.merkle import Leaf, MerkleTree
from protocol.settlement import CLAIM_PERIOD, POOL_TIMEOUT, refundable, share
from tests.support.evm import ETH, Chain, checksum, make_leaves
from tests.support.factories import pid

PROJECT = pid("alice", "client")
USDC = 10**6


def wallet(chain: Chain) -> ChainClient:
    """A fresh key with ether for gas, and a client of a fresh contract deployed by it."""
    account = Account.create()
    dev_fund(chain.w3, account.address)
    return ChainClient.deploy(chain.w3, account)


def beside(client: ChainClient, chain: Chain) -> ChainClient:
    """Another fresh key with ether for gas, on the same contract."""
    account = Account.create()
    dev_fund(chain.w3, account.address)
    return ChainClient(client.w3, client.address, account, config=client.config)


def anchored(client: ChainClient, tag: str, weights: list[int], epoch: int = 1) -> MerkleTree:
    merkle = MerkleTree.build(make_leaves(tag, weights))
    summary = Summary(merkle.root, len(merkle), sum(weights))
    client.transact(client.sign_anchor(PROJECT, epoch, summary))
    return merkle


def token_address(token: Contract) -> bytes:
    return bytes.fromhex(token.address[2:])


def mint(chain: Chain, token: Contract, to: bytes, amount: int) -> None:
    chain.send(token.functions.mint(checksum(to), amount))


def test_ether_keeps_its_methods(chain: Chain) -> None:
    client = wallet(chain)
    merkle = anchored(client, "client ether", [1, 3])
    client.transact(client.sign_fund(client.sender, PROJECT, 1, 4 * ETH))
    state = client.epoch(client.sender, PROJECT, 1)
    assert (state.root, state.funded, state.paid) == (merkle.root, 4 * ETH, 0)
    leaf = max(merkle.leaves, key=lambda x: x.weight)
    assert client.claimable(client.sender, PROJECT, 1, leaf) == 3 * ETH
    client.transact(
        client.sign_claim(client.sender, PROJECT, 1, leaf, merkle.proof(leaf.contribution_id))
    )
    assert client.claimed(client.sender, PROJECT, 1, leaf) == 3 * ETH
    assert client.balance(leaf.payout) == 3 * ETH
    assert client.funds(client.sender, PROJECT, 1).paid == 3 * ETH
    assert client.stake(client.sender, PROJECT, 1, client.sender) == Stake(4 * ETH, 0)


def test_a_token_is_approved_as_needed_funded_and_claimed(chain: Chain) -> None:
    client = wallet(chain)
    usdt = chain.token("NoReturnToken")
    token = token_address(usdt)
    assert client.token_info(token) == TokenInfo(token, "USDT", 6)
    assert client.token_info(ETHER) == TokenInfo(ETHER, "ETH", 18)
    merkle = anchored(client, "client token", [1, 1])
    mint(chain, usdt, client.sender, 100 * USDC)
    # A small allowance already there: a USDT-style token wants it set to zero before it changes.
    assert len(client.approve(token, 1)) == 1
    assert client.allowance(token) == 1
    funding = client.fund_token(client.sender, PROJECT, 1, token, 60 * USDC)
    # Two approvals: to zero, then to the amount; what the contract credited is all of it.
    assert len(funding.approvals) == 2
    assert funding.credited == 60 * USDC
    assert client.receipt(funding.tx_hash) is not None
    assert client.allowance(token) == 0
    assert client.funds(client.sender, PROJECT, 1, token).funded == 60 * USDC
    assert client.epoch_tokens(client.sender, PROJECT, 1) == [token]
    client.transact(client.sign_fund(client.sender, PROJECT, 1, 1))
    assert client.epoch_tokens(client.sender, PROJECT, 1) == [token, ETHER]
    assert client.epoch_tokens(client.sender, PROJECT, 2) == []
    assert client.token_balance(token, client.address) == 60 * USDC
    assert client.approve(token, 0) == []

    leaf = merkle.leaves[0]
    assert client.claimable(client.sender, PROJECT, 1, leaf, token) == 30 * USDC
    assert client.claimable(client.sender, PROJECT, 1, leaf) == 0
    relayer = beside(client, chain)
    proof = merkle.proof(leaf.contribution_id)
    relayer.transact(relayer.sign_claim(client.sender, PROJECT, 1, leaf, proof, token))
    assert client.token_balance(token, leaf.payout) == 30 * USDC
    assert client.claimed(client.sender, PROJECT, 1, leaf, token) == 30 * USDC
    with pytest.raises(TransactionReverted, match="NothingToClaim"):
        relayer.sign_claim(client.sender, PROJECT, 1, leaf, proof, token)


def test_a_token_funding_the_wallet_cannot_make_is_refused_by_name(chain: Chain) -> None:
    client = wallet(chain)
    usdc = chain.token("TestToken", "USD", "USDC", 6)
    token = token_address(usdc)
    merkle = anchored(client, "client refused", [1])
    mint(chain, usdc, client.sender, 5 * USDC)
    with pytest.raises(InsufficientTokens) as info:
        client.fund_token(client.sender, PROJECT, 1, token, 6 * USDC)
    assert (info.value.holds, info.value.needs) == (5 * USDC, 6 * USDC)
    assert isinstance(info.value, InsufficientFunds)
    assert f"holds {5 * USDC} of token {usdc.address}" in str(info.value)
    # Without the allowance, the client says so before anything is sent.
    with pytest.raises(InsufficientAllowance) as short:
        client.sign_fund(client.sender, PROJECT, 1, USDC, token)
    assert (short.value.allowed, short.value.needs) == (0, USDC)
    assert f"lets the contract take 0 of token {usdc.address}" in str(short.value)
    assert "approve" in outcome(short.value).hint
    # What a token reverts with inside the contract's call is decoded too: here the reason
    # string of USDC's blocklist, refusing a claim to a blocked payout.
    client.approve(token, USDC)
    client.transact(client.sign_fund(client.sender, PROJECT, 1, USDC, token))
    leaf = merkle.leaves[0]
    chain.send(usdc.functions.setBlocked(checksum(leaf.payout), True))
    proof = merkle.proof(leaf.contribution_id)
    with pytest.raises(
        TransactionReverted, match=r"Error\(Blacklistable: account is blacklisted\)"
    ):
        client.sign_claim(client.sender, PROJECT, 1, leaf, proof, token)
    # Nothing is approved for an epoch that cannot take the funds.
    allowed = client.allowance(token)
    with pytest.raises(TransactionReverted, match="NotAnchored"):
        client.fund_token(client.sender, PROJECT, 2, token, USDC)
    assert client.allowance(token) == allowed


def test_an_address_that_is_no_token_is_refused_by_name(chain: Chain) -> None:
    client = wallet(chain)
    anchored(client, "client unknown", [1])
    nobody = bytes.fromhex(Account.create().address[2:])
    # No code at all: perhaps the token's address on another chain.
    with pytest.raises(UnknownToken, match=rf"not an ERC-20 token on chain {client.chain_id}"):
        client.token_info(nobody)
    with pytest.raises(UnknownToken, match="no contract at that address"):
        client.fund_token(client.sender, PROJECT, 1, nobody, 1)
    # A contract that is no token: the settlement contract itself.
    with pytest.raises(UnknownToken, match=r"does not answer balanceOf\(\)"):
        client.token_balance(client.address, client.sender)
    with pytest.raises(UnknownToken, match="ether"):
        client.allowance(ETHER)
    assert outcome(UnknownToken("0x", 1, "")).status == 400


def test_a_project_on_another_chain_is_named(chain: Chain) -> None:
    client = wallet(chain)
    client.check_settles_here(PROJECT, client.chain_id, client.address)
    other = bytes.fromhex(Account.create().address[2:])
    with pytest.raises(WrongChain) as info:
        client.check_settles_here(PROJECT, 1, other)
    assert str(info.value) == (
        f"project {PROJECT.hex()} settles on chain 1 at contract {checksum(other)}; "
        f"this node uses chain {client.chain_id} at {checksum(client.address)}"
    )
    with pytest.raises(WrongChain):
        client.check_settles_here(PROJECT, client.chain_id, other)


def test_refunds_after_the_expiry(chain: Chain) -> None:
    client = wallet(chain)
    merkle = anchored(client, "client refund", [1, 1])
    anchored_at = chain.now()
    expires = client.expires_at(client.sender, PROJECT, 1)
    assert expires == anchored_at + CLAIM_PERIOD
    found = client.find_anchor(client.sender, PROJECT, 1)
    assert found is not None and found.expires_at == expires
    funder = beside(client, chain)
    funder.transact(funder.sign_fund(client.sender, PROJECT, 1, 2 * ETH))
    leaf = merkle.leaves[0]
    client.transact(
        client.sign_claim(client.sender, PROJECT, 1, leaf, merkle.proof(leaf.contribution_id))
    )
    with pytest.raises(TransactionReverted, match=r"EpochNotExpired\(0x"):
        funder.sign_refund(client.sender, PROJECT, 1)
    chain.warp(expires - chain.now())
    assert client.refundable(client.sender, PROJECT, 1, funder.sender) == ETH
    elsewhere = Account.create().address
    to = bytes.fromhex(elsewhere[2:])
    funder.transact(funder.sign_refund(client.sender, PROJECT, 1, to=to))
    assert client.balance(to) == ETH
    assert client.funds(client.sender, PROJECT, 1).refunded == ETH
    assert client.stake(client.sender, PROJECT, 1, funder.sender) == Stake(2 * ETH, ETH)
    # Only the funder may send its refund elsewhere.
    with pytest.raises(TransactionReverted, match=r"NotFunder\(0x"):
        client.sign_refund(client.sender, PROJECT, 1, funder=funder.sender, to=client.sender)


def test_a_redirected_claim(chain: Chain) -> None:
    client = wallet(chain)
    payout = Account.create()
    leaf = Leaf(b"\x31" * 32, bytes.fromhex(payout.address[2:]), 1)
    merkle = MerkleTree.build([leaf, *make_leaves("client redirect", [1])])
    client.transact(client.sign_anchor(PROJECT, 1, Summary(merkle.root, 2, 2)))
    client.transact(client.sign_fund(client.sender, PROJECT, 1, 2 * ETH))
    to = bytes.fromhex(Account.create().address[2:])
    deadline = chain.now() + 3600
    signature = client.redirect_signature(client.sender, PROJECT, 1, leaf, to, deadline, payout)
    proof = merkle.proof(leaf.contribution_id)
    tx = client.sign_claim_to(
        client.sender, PROJECT, 1, leaf, proof, to, deadline=deadline, signature=signature
    )
    client.transact(tx)
    assert client.balance(to) == ETH
    # Another address than the one signed for is refused, by name.
    with pytest.raises(TransactionReverted, match=r"InvalidSignature\(0x"):
        client.sign_claim_to(
            client.sender,
            PROJECT,
            1,
            leaf,
            proof,
            client.sender,
            deadline=deadline,
            signature=signature,
        )


def test_a_pool_funded_allocated_and_refunded(chain: Chain) -> None:
    owner = wallet(chain)
    funder = beside(owner, chain)
    fee = chain.token("FeeToken", 100)
    token = token_address(fee)
    mint(chain, fee, funder.sender, 10_000)
    funder.transact(funder.sign_fund_pool(owner.sender, PROJECT, 3 * ETH))
    funding = funder.fund_pool_token(owner.sender, PROJECT, token, 10_000)
    assert funding == TokenFunding(funding.approvals, funding.tx_hash, 9_900)
    assert len(funding.approvals) == 1
    started = chain.now()
    assert owner.pool(owner.sender, PROJECT, token) == PoolState(
        9_900, 9_900, 0, started + POOL_TIMEOUT
    )
    assert owner.pool_stake(owner.sender, PROJECT, funder.sender, token) == Stake(9_900, 0)
    merkle = anchored(owner, "client pool", [1, 1])
    owner.transact(owner.sign_allocate(PROJECT, 1, 2 * ETH))
    owner.transact(owner.sign_allocate(PROJECT, 1, 4_000, token))
    with pytest.raises(TransactionReverted, match=r"InsufficientPool\(1000000000000000000, "):
        owner.sign_allocate(PROJECT, 1, 2 * ETH)
    # What an audit reads: the pool's tokens and every allocation, with the epoch it went to.
    assert owner.pool_tokens(owner.sender, PROJECT) == [ETHER, token]
    allocations = owner.allocations(owner.sender, PROJECT)
    assert [(a.epoch, a.token, a.amount) for a in allocations] == [
        (1, ETHER, 2 * ETH),
        (1, token, 4_000),
    ]
    assert owner.epoch_tokens(owner.sender, PROJECT, 1) == [ETHER, token]
    assert owner.allocations(funder.sender, PROJECT) == []
    # A stranger allocates only its own pool, to its own epochs.
    with pytest.raises(TransactionReverted, match=r"NotAnchored\(0x"):
        funder.sign_allocate(PROJECT, 1, 1)
    leaf = merkle.leaves[0]
    proof = merkle.proof(leaf.contribution_id)
    owner.transact(owner.sign_claim(owner.sender, PROJECT, 1, leaf, proof, token))
    assert owner.claimed(owner.sender, PROJECT, 1, leaf, token) == 2_000

    chain.warp(POOL_TIMEOUT)
    assert owner.pool_refundable(owner.sender, PROJECT, funder.sender) == ETH
    funder.transact(funder.sign_refund_pool(owner.sender, PROJECT))
    funder.transact(funder.sign_refund_pool(owner.sender, PROJECT, token=token))
    chain.warp(CLAIM_PERIOD)
    owner.transact(owner.sign_return_to_pool(owner.sender, PROJECT, 1, token))
    returned = owner.pool(owner.sender, PROJECT, token)
    assert returned.unallocated == 2_000
    owed = refundable(returned.unallocated + returned.refunded, 9_900, 9_900, 5_900)
    assert owner.pool_refundable(owner.sender, PROJECT, funder.sender, token) == owed == 2_000
    funder.transact(funder.sign_refund_pool(owner.sender, PROJECT, token=token))
    assert owner.token_balance(token, owner.address) == 0
    assert owner.stake(owner.sender, PROJECT, 1, owner.address, token) == Stake(4_000, 2_000)
    assert share(4_000, 1, 2) == 2_000


def test_an_owner_closes_its_pools(chain: Chain) -> None:
    owner = wallet(chain)
    funder = beside(owner, chain)
    usdc = chain.token("TestToken", "USD", "USDC", 6)
    token = token_address(usdc)
    mint(chain, usdc, funder.sender, 10 * USDC)
    funder.fund_pool_token(owner.sender, PROJECT, token, 4 * USDC)
    assert owner.pools_closed_at(owner.sender, PROJECT) == 0
    assert funder.pool_refundable(owner.sender, PROJECT, funder.sender, token) == 0
    owner.transact(owner.sign_close_pools(PROJECT))
    closed = chain.now()
    assert owner.pools_closed_at(owner.sender, PROJECT) == closed
    assert owner.pool(owner.sender, PROJECT, token).expires_at == closed
    # No more funding, and nothing approved for it; the funder takes its tokens back at once.
    allowed = funder.allowance(token)
    with pytest.raises(TransactionReverted, match=r"PoolExpired\(0x"):
        funder.fund_pool_token(owner.sender, PROJECT, token, USDC)
    assert funder.allowance(token) == allowed
    assert funder.pool_refundable(owner.sender, PROJECT, funder.sender, token) == 4 * USDC
    funder.transact(funder.sign_refund_pool(owner.sender, PROJECT, token=token))
    assert funder.token_balance(token, funder.sender) == 10 * USDC
    with pytest.raises(TransactionReverted, match=r"PoolsAlreadyClosed\(0x"):
        owner.sign_close_pools(PROJECT)


def capped_logs(w3: Web3, span: int, queries: list[tuple[int, int]]) -> Web3:
    """A Web3 on `w3`'s provider that refuses eth_getLogs over more than `span` blocks, as public
    endpoints do (each with its own limit), and notes every range asked."""

    class Capped(Web3Middleware):
        def wrap_make_request(self, make_request: MakeRequestFn) -> MakeRequestFn:
            def refuse_wide(method: RPCEndpoint, params: Any) -> RPCResponse:
                if method == "eth_getLogs":
                    start, end = (int(str(params[0][key]), 0) for key in ("fromBlock", "toBlock"))
                    queries.append((start, end))
                    if end - start + 1 > span:
                        raise ValueError(f"range of {end - start + 1} blocks over {span}")
                return make_request(method, params)

            return refuse_wide

    capped = Web3(w3.provider)
    capped.middleware_onion.add(Capped)
    return capped


def test_events_are_read_in_slices_from_the_deployment_block(chain: Chain) -> None:
    for _ in range(3):  # blocks before the contract, which no query should read
        dev_fund(chain.w3, Account.create().address)
    owner = wallet(chain)
    first = owner.first_block
    assert first > 0
    funder = beside(owner, chain)
    anchored(owner, "slices", [1, 1])
    for amount in (1, 2, 3, 4, 5):  # one block each
        funder.transact(funder.sign_fund_pool(owner.sender, PROJECT, amount))
        owner.transact(owner.sign_allocate(PROJECT, 1, amount))
    queries: list[tuple[int, int]] = []
    capped = capped_logs(chain.w3, 4, queries)
    config = ChainConfig(contract_block=first, log_range=4)
    reader = ChainClient(capped, owner.address, config=config)
    found = reader.allocations(owner.sender, PROJECT)
    assert [a.amount for a in found] == [1, 2, 3, 4, 5]
    assert reader.find_anchor(owner.sender, PROJECT, 1) is not None
    assert queries and all(start >= first for start, _ in queries)
    assert all(end - start < 4 for start, end in queries)
    # Read from genesis in one request, as before, the same endpoint refuses.
    wide = ChainClient(capped, owner.address, config=ChainConfig(log_range=10**9))
    with pytest.raises(ChainError):
        wide.allocations(owner.sender, PROJECT)
