"""Rewards in ERC-20 tokens beside ether, on a real EVM, with tokens that misbehave.

The test tokens (tests/chain/contracts/Tokens.sol) stand for the kinds that real epochs will meet:
an 18-decimals token, a 6-decimals stablecoin with a blocklist (USDC), a token whose transfers
return nothing (USDT), one that burns a fee on every transfer, and one that calls back into the
contract whenever it moves. Every epoch keeps books per token, so the tests check each token's
books against the Python arithmetic and the contract's balance of that token, and that no token
or epoch reaches another's money.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from protocol.merkle import Leaf
from protocol.settlement import share
from tests.support.evm import (
    BLACKLISTED,
    ETH,
    NATIVE,
    Chain,
    Epoch,
    anchor,
    checksum,
    leaf_args,
    make_leaves,
    mint_and_approve,
    proof_of,
    reverts,
)

USDC = 10**6
# The fee token burns 1% of every transfer.
FEE_BPS = 100


@dataclass(frozen=True)
class Kind:
    """A kind of token: how to deploy it, its unit, and what a transfer of `x` delivers."""

    name: str
    contract: str
    args: tuple[Any, ...]
    unit: int
    fee_bps: int = 0

    def delivered(self, amount: int) -> int:
        return amount - amount * self.fee_bps // 10_000


KINDS = {
    "18 decimals": Kind("18 decimals", "TestToken", ("Test", "TST", 18), 10**18),
    "6-decimals stablecoin": Kind("6-decimals stablecoin", "TestToken", ("USD", "USDC", 6), USDC),
    "no return value (USDT)": Kind("no return value (USDT)", "NoReturnToken", (), USDC),
    "fee on transfer": Kind("fee on transfer", "FeeToken", (FEE_BPS,), 10**18, FEE_BPS),
}


@pytest.fixture
def settlement(chain: Chain) -> Contract:
    return chain.settlement()


def fund_token(
    chain: Chain, contract: Contract, epoch: Epoch, token: Contract, amount: int, *, sender: int = 1
) -> Any:
    """Mints `amount` to a funder, approves it and funds the epoch; returns the receipt."""
    funder = chain.accounts[sender]
    mint_and_approve(chain, token, contract.address, funder, amount)
    call = contract.functions.fundToken(*epoch.ref(), token.address, amount)
    return chain.send(call, sender=funder)


def claim_token(chain: Chain, contract: Contract, epoch: Epoch, token: str, leaf: Leaf) -> Any:
    call = contract.functions.claimToken(
        *epoch.ref(), token, *leaf_args(leaf), proof_of(epoch.tree, leaf)
    )
    return chain.send(call, sender=chain.accounts[2])


def books(contract: Contract, epoch: Epoch, token: str) -> tuple[int, int, int]:
    funded, paid, refunded = contract.functions.getFunds(*epoch.ref(), token).call()
    return funded, paid, refunded


def held(token: Contract, holder: str | bytes) -> int:
    if isinstance(holder, bytes):
        holder = checksum(holder)
    return int(token.functions.balanceOf(holder).call())


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_token_epoch_pays_each_leaf_its_share(
    chain: Chain, settlement: Contract, kind: str
) -> None:
    spec = KINDS[kind]
    token = chain.token(spec.contract, *spec.args)
    epoch = anchor(chain, settlement, make_leaves(f"token {kind}", [1, 2, 3, 4]))
    amount = 1000 * spec.unit + 7
    receipt = fund_token(chain, settlement, epoch, token, amount)
    credited = spec.delivered(amount)
    chain.record(f"fundToken, first: {kind}", receipt)
    (event,) = settlement.events.Funded().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "owner": epoch.owner,
        "projectId": epoch.project,
        "epoch": epoch.number,
        "token": token.address,
        "funder": chain.accounts[1],
        "amount": credited,
        "funded": credited,
    }
    assert books(settlement, epoch, token.address) == (credited, 0, 0)
    assert held(token, settlement.address) == credited
    # The same funder again: a top-up writes no new stake.
    receipt = fund_token(chain, settlement, epoch, token, amount)
    chain.record(f"fundToken, top-up by the same funder: {kind}", receipt)
    funded = 2 * credited
    assert settlement.functions.stake(*epoch.ref(), token.address, chain.accounts[1]).call() == [
        funded,
        0,
    ]

    paid = 0
    for i, leaf in enumerate(epoch.leaves):
        owed = share(funded, leaf.weight, epoch.total_weight)
        view = settlement.functions.claimableToken(*epoch.ref(), token.address, *leaf_args(leaf))
        assert view.call() == owed
        receipt = claim_token(chain, settlement, epoch, token.address, leaf)
        if i == 0:
            chain.record(f"claimToken, first of a leaf, new holder: {kind}", receipt)
        # The payout gets what the token delivers of the share; the books count the share.
        assert held(token, leaf.payout) == spec.delivered(owed)
        (event,) = settlement.events.Claimed().process_receipt(receipt, errors=DISCARD)
        assert event["args"]["token"] == token.address
        assert (event["args"]["amount"], event["args"]["claimed"]) == (owed, owed)
        paid += owed
    assert books(settlement, epoch, token.address) == (funded, paid, 0)
    assert held(token, settlement.address) == funded - paid < len(epoch.leaves)
    # Ether's books are untouched by all of it.
    assert books(settlement, epoch, NATIVE) == (0, 0, 0)
    assert chain.balance(settlement.address) == 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_claim_after_a_token_top_up_pays_the_difference(
    chain: Chain, settlement: Contract, kind: str
) -> None:
    spec = KINDS[kind]
    token = chain.token(spec.contract, *spec.args)
    epoch = anchor(chain, settlement, make_leaves(f"topup {kind}", [1, 2]))
    leaf = max(epoch.leaves, key=lambda x: x.weight)
    # Someone already holds the token at the payout address, as most payouts will.
    chain.send(token.functions.mint(checksum(leaf.payout), 1))
    fund_token(chain, settlement, epoch, token, 30 * spec.unit)
    claim_token(chain, settlement, epoch, token.address, leaf)
    fund_token(chain, settlement, epoch, token, 3 * spec.unit, sender=3)
    funded = spec.delivered(30 * spec.unit) + spec.delivered(3 * spec.unit)
    before = held(token, leaf.payout)
    receipt = claim_token(chain, settlement, epoch, token.address, leaf)
    chain.record(f"claimToken, again after a top-up: {kind}", receipt)
    owed = share(funded, 2, 3) - share(spec.delivered(30 * spec.unit), 2, 3)
    assert held(token, leaf.payout) - before == spec.delivered(owed)
    claimed = settlement.functions.claimedToken(*epoch.ref(), token.address, *leaf_args(leaf))
    assert claimed.call() == share(funded, 2, 3)


def test_fee_on_transfer_is_credited_what_arrived(chain: Chain, settlement: Contract) -> None:
    # Two epochs share the fee token's balance in the contract. Were the sent amounts credited,
    # the books would promise 2% more than the contract holds, and the last claim would take
    # the other epoch's tokens or fail. Credited what arrived, both pay every leaf in full.
    token = chain.token("FeeToken", FEE_BPS)
    first = anchor(chain, settlement, make_leaves("fee a", [1, 1]), number=1)
    second = anchor(chain, settlement, make_leaves("fee b", [1]), number=2)
    fund_token(chain, settlement, first, token, 10_000)
    fund_token(chain, settlement, second, token, 5_000)
    assert books(settlement, first, token.address)[0] == 9_900
    assert books(settlement, second, token.address)[0] == 4_950
    assert held(token, settlement.address) == 14_850
    for epoch in (first, second):
        for leaf in epoch.leaves:
            claim_token(chain, settlement, epoch, token.address, leaf)
    assert books(settlement, first, token.address)[1] == 9_900
    assert books(settlement, second, token.address)[1] == 4_950
    assert held(token, settlement.address) == 0


def test_ether_and_tokens_have_separate_books(chain: Chain, settlement: Contract) -> None:
    usdc = chain.token("TestToken", "USD", "USDC", 6)
    dai = chain.token("TestToken", "Dai", "DAI", 18)
    epoch = anchor(chain, settlement, make_leaves("separate", [1, 3]))
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=4 * ETH)
    fund_token(chain, settlement, epoch, usdc, 400 * USDC)
    leaf = epoch.leaves[1] if epoch.leaves[1].weight == 3 else epoch.leaves[0]
    # The same proof claims each token in turn; ether is the token address(0) as well.
    claim_token(chain, settlement, epoch, usdc.address, leaf)
    assert held(usdc, leaf.payout) == 300 * USDC
    assert books(settlement, epoch, NATIVE) == (4 * ETH, 0, 0)
    before = chain.balance(leaf.payout)
    claim_token(chain, settlement, epoch, NATIVE, leaf)
    assert chain.balance(leaf.payout) - before == 3 * ETH
    assert settlement.functions.claimed(*epoch.ref(), *leaf_args(leaf)).call() == 3 * ETH
    # A token the epoch never received has nothing to claim, and ether's claim is done.
    for token in (dai.address, NATIVE, usdc.address):
        with reverts(settlement, "NothingToClaim"):
            call = settlement.functions.claimToken(
                *epoch.ref(), token, *leaf_args(leaf), proof_of(epoch.tree, leaf)
            )
            call.transact({"from": chain.accounts[2]})
    assert books(settlement, epoch, usdc.address) == (400 * USDC, 300 * USDC, 0)
    assert held(usdc, settlement.address) == 100 * USDC
    assert chain.balance(settlement.address) == ETH


def test_a_lying_epoch_cannot_take_another_epochs_tokens(
    chain: Chain, settlement: Contract
) -> None:
    token = chain.token("TestToken", "USD", "USDC", 6)
    honest = anchor(chain, settlement, make_leaves("honest t", [1, 1]), number=1)
    fund_token(chain, settlement, honest, token, 10 * USDC)
    liar = chain.accounts[6]
    lie = anchor(
        chain, settlement, make_leaves("lie t", [3, 3]), owner=liar, total_weight=4, number=1
    )
    fund_token(chain, settlement, lie, token, 4 * USDC)
    first, second = lie.leaves
    claim_token(chain, settlement, lie, token.address, first)
    with reverts(settlement, "Overdrawn", 4 * USDC, 6 * USDC):
        call = settlement.functions.claimToken(
            *lie.ref(), token.address, *leaf_args(second), proof_of(lie.tree, second)
        )
        call.transact({"from": chain.accounts[2]})
    for leaf in honest.leaves:
        claim_token(chain, settlement, honest, token.address, leaf)
        assert held(token, leaf.payout) == 5 * USDC
    assert held(token, settlement.address) == USDC


def test_fund_token_refuses_what_it_cannot_book(chain: Chain, settlement: Contract) -> None:
    token = chain.token("TestToken", "Test", "TST", 18)
    epoch = anchor(chain, settlement, make_leaves("refuse", [1]))
    funder = chain.accounts[1]
    mint_and_approve(chain, token, settlement.address, funder, 10)
    fund = settlement.functions.fundToken
    with reverts(settlement, "NotAToken"):
        fund(*epoch.ref(), NATIVE, 10).transact({"from": funder})
    with reverts(settlement, "ZeroFunding"):
        fund(*epoch.ref(), token.address, 0).transact({"from": funder})
    with reverts(settlement, "NotAnchored", epoch.owner, epoch.project, 2):
        fund(epoch.owner, epoch.project, 2, token.address, 10).transact({"from": funder})
    # More than the allowance: the token's own error, decoded from its ABI.
    with reverts(token, "ERC20InsufficientAllowance", settlement.address, 10, 11):
        fund(*epoch.ref(), token.address, 11).transact({"from": funder})
    # An address with no code is no token.
    with reverts(settlement, "NotAToken"):
        fund(*epoch.ref(), chain.accounts[7], 10).transact({"from": funder})
    assert books(settlement, epoch, token.address) == (0, 0, 0)


def test_a_token_epoch_is_capped_at_2_128(chain: Chain, settlement: Contract) -> None:
    token = chain.token("TestToken", "Big", "BIG", 18)
    epoch = anchor(chain, settlement, make_leaves("cap t", [1]))
    funder = chain.accounts[1]
    mint_and_approve(chain, token, settlement.address, funder, 2**129)
    chain.send(
        settlement.functions.fundToken(*epoch.ref(), token.address, 2**128 - 1), sender=funder
    )
    with reverts(settlement, "FundingOverflow", 2**128):
        settlement.functions.fundToken(*epoch.ref(), token.address, 1).transact({"from": funder})
    assert books(settlement, epoch, token.address)[0] == 2**128 - 1


def test_a_payout_the_token_blocks_leaves_the_others_whole(
    chain: Chain, settlement: Contract
) -> None:
    token = chain.token("TestToken", "USD", "USDC", 6)
    epoch = anchor(chain, settlement, make_leaves("blocked", [1, 1]))
    fund_token(chain, settlement, epoch, token, 10 * USDC)
    blocked, free = epoch.leaves
    chain.send(token.functions.setBlocked(checksum(blocked.payout), True))
    call = settlement.functions.claimToken(
        *epoch.ref(), token.address, *leaf_args(blocked), proof_of(epoch.tree, blocked)
    )
    with reverts(token, "Error", BLACKLISTED):
        call.transact({"from": chain.accounts[2]})
    claim_token(chain, settlement, epoch, token.address, free)
    assert books(settlement, epoch, token.address) == (10 * USDC, 5 * USDC, 0)
    # The blocked leaf's share stays claimable: to another address by redirect (test_redirect),
    # or back to the funders at the expiry (test_expiry).
    view = settlement.functions.claimableToken(*epoch.ref(), token.address, *leaf_args(blocked))
    assert view.call() == 5 * USDC


def test_a_reentrant_token_is_credited_and_paid_once(chain: Chain, settlement: Contract) -> None:
    token = chain.token("ReentrantToken")
    epoch = anchor(chain, settlement, make_leaves("hook", [1, 1]))
    funder = chain.accounts[1]
    mint_and_approve(chain, token, settlement.address, funder, 1000)
    guard = bytes(Web3.keccak(text="ReentrancyGuardReentrantCall()"))[:4]

    def calldata(call: Any) -> bytes:
        return bytes.fromhex(call._encode_transaction_data()[2:])

    # While the contract pulls the funding, the token tries to fund again: were it let in, the
    # balance measured around the outer transfer would count the inner funding twice.
    inner = calldata(settlement.functions.fundToken(*epoch.ref(), token.address, 100))
    chain.send(token.functions.arm(settlement.address, inner, 1))
    chain.send(settlement.functions.fundToken(*epoch.ref(), token.address, 600), sender=funder)
    assert token.functions.attempts().call() == 1
    assert token.functions.successes().call() == 0
    assert bytes(token.functions.lastResult().call()) == guard
    assert books(settlement, epoch, token.address) == (600, 0, 0)
    assert held(token, settlement.address) == 600

    # While the contract pays a claim, the token tries to claim the same leaf and the other
    # one, and reads what the leaf is owed: settled already.
    mine, other = epoch.leaves

    def claim_of(leaf: Leaf) -> bytes:
        return calldata(
            settlement.functions.claimToken(
                *epoch.ref(), token.address, *leaf_args(leaf), proof_of(epoch.tree, leaf)
            )
        )

    owed = settlement.functions.claimableToken(*epoch.ref(), token.address, *leaf_args(mine))
    for payload, result in [
        (claim_of(mine), guard),
        (claim_of(other), guard),
        (calldata(owed), (0).to_bytes(32)),
    ]:
        chain.send(token.functions.arm(settlement.address, payload, 1))
        claimed_before = settlement.functions.claimedToken(
            *epoch.ref(), token.address, *leaf_args(mine)
        ).call()
        if claimed_before:
            fund_more = settlement.functions.fundToken(*epoch.ref(), token.address, 200)
            chain.send(token.functions.arm(settlement.address, b"", 0))
            chain.send(fund_more, sender=funder)
            chain.send(token.functions.arm(settlement.address, payload, 1))
        claim_token(chain, settlement, epoch, token.address, mine)
        assert bytes(token.functions.lastResult().call()) == result
    funded = 1000
    assert books(settlement, epoch, token.address) == (funded, share(funded, 1, 2), 0)
    assert held(token, mine.payout) == share(funded, 1, 2)
    assert held(token, other.payout) == 0
    assert held(token, settlement.address) == funded - share(funded, 1, 2)
