"""Every epoch's money has an exit: claims until the expiry, refunds to the funders after it.

An epoch takes funds and pays claims for CLAIM_PERIOD after it was anchored; from its expiry on,
each funder may take back its part of what the claims left, `stake * (funded - paid) / funded`.
These tests move the chain's clock to the expiry's last second and first second, and check that
money nobody can claim (a total weight above the leaves' sum, a root whose leaves nobody knows,
duplicate leaves, a payout that refuses it) goes back, in ether and in tokens, exactly once.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from protocol.merkle import Leaf
from protocol.settlement import CLAIM_PERIOD, refundable, share
from tests.support.evm import (
    BLACKLISTED,
    ETH,
    NATIVE,
    Chain,
    Epoch,
    anchor,
    checksum,
    claim_call,
    describe,
    leaf_args,
    make_leaves,
    mint_and_approve,
    proof_of,
    revert_data,
    reverts,
    token_balance,
)
from tests.support.factories import pid

PROJECT = pid("alice", "expiry")
USDC = 10**6


@pytest.fixture
def settlement(chain: Chain) -> Contract:
    return chain.settlement()


def expiry(contract: Contract, epoch: Epoch) -> int:
    return int(contract.functions.getExpiry(*epoch.ref()).call())


def fund(
    chain: Chain,
    contract: Contract,
    epoch: Epoch,
    amount: int,
    *,
    sender: int = 1,
    token: Contract | None = None,
) -> None:
    """Funds an epoch from `accounts[sender]` in ether, or in `token` (minted and approved)."""
    funder = chain.accounts[sender]
    if token is None:
        chain.send(contract.functions.fund(*epoch.ref()), sender=funder, value=amount)
        return
    mint_and_approve(chain, token, contract.address, funder, amount)
    chain.send(contract.functions.fundToken(*epoch.ref(), token.address, amount), sender=funder)


def claim(
    chain: Chain, contract: Contract, epoch: Epoch, leaf: Leaf, token: str = NATIVE, **tx: Any
) -> Any:
    call = contract.functions.claimToken(
        *epoch.ref(), token, *leaf_args(leaf), proof_of(epoch.tree, leaf)
    )
    return chain.send(call, sender=chain.accounts[2], **tx)


def refund_call(
    contract: Contract, epoch: Epoch, funder: str, to: str | None = None, token: str = NATIVE
) -> Any:
    return contract.functions.refund(*epoch.ref(), token, funder, to or funder)


def books(contract: Contract, epoch: Epoch, token: str = NATIVE) -> tuple[int, int, int]:
    funded, paid, refunded = contract.functions.getFunds(*epoch.ref(), token).call()
    return funded, paid, refunded


@pytest.mark.parametrize("action", ["claim", "fund", "refund"])
def test_the_expiry_is_the_first_second_of_refunds_and_the_end_of_claims(
    chain: Chain, settlement: Contract, action: str
) -> None:
    # Each action is tried in the epoch's last second and in its expiry's first second, in mined
    # blocks of exactly those times: a claim or a funding goes through in the first and not in
    # the second, a refund the other way round.
    epoch = anchor(chain, settlement, make_leaves(f"boundary {action}", [1, 1]), project=PROJECT)
    anchored_at = chain.now()
    expires = expiry(settlement, epoch)
    assert expires == anchored_at + CLAIM_PERIOD
    fund(chain, settlement, epoch, 2 * ETH)
    funder = chain.accounts[1]

    def call(leaf: Leaf) -> Any:
        if action == "claim":
            return claim_call(settlement, *epoch.ref(), leaf, proof_of(epoch.tree, leaf))
        if action == "fund":
            return settlement.functions.fund(*epoch.ref())
        return refund_call(settlement, epoch, funder)

    value = ETH if action == "fund" else 0
    open_before = action != "refund"
    results = []
    for timestamp, leaf in [(expires - 1, epoch.leaves[0]), (expires, epoch.leaves[1])]:
        receipt = chain.send_at(timestamp, call(leaf), sender=funder, value=value)
        results.append(receipt["status"] == 1)
    assert results == [open_before, not open_before]
    expected = {
        "claim": (2 * ETH, ETH, 0),
        "fund": (3 * ETH, 0, 0),
        "refund": (2 * ETH, 0, 2 * ETH),
    }
    assert books(settlement, epoch) == expected[action]


def test_claims_close_and_refunds_open_at_the_expiry(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("closing", [1, 1]), project=PROJECT)
    expires = expiry(settlement, epoch)
    fund(chain, settlement, epoch, 2 * ETH)
    first, second = epoch.leaves
    funder = chain.accounts[1]
    with reverts(settlement, "EpochNotExpired", *epoch.ref(), expires):
        refund_call(settlement, epoch, funder).transact({"from": funder})
    assert settlement.functions.refundable(*epoch.ref(), NATIVE, funder).call() == 0
    claim(chain, settlement, epoch, first)

    chain.warp(expires - chain.now())
    with reverts(settlement, "EpochExpired", *epoch.ref(), expires):
        claim_call(settlement, *epoch.ref(), second, proof_of(epoch.tree, second)).transact(
            {"from": chain.accounts[2]}
        )
    with reverts(settlement, "EpochExpired", *epoch.ref(), expires):
        settlement.functions.fund(*epoch.ref()).transact({"from": funder, "value": 1})
    assert settlement.functions.claimable(*epoch.ref(), *leaf_args(second)).call() == 0
    assert settlement.functions.refundable(*epoch.ref(), NATIVE, funder).call() == ETH
    before = chain.balance(funder)
    receipt = chain.send(refund_call(settlement, epoch, funder), sender=chain.accounts[2])
    assert chain.balance(funder) - before == ETH
    assert books(settlement, epoch) == (2 * ETH, ETH, ETH)
    assert chain.balance(settlement.address) == 0
    chain.record("refund, ether, funder's first", receipt)
    (event,) = settlement.events.Refunded().process_receipt(receipt)
    assert dict(event["args"]) == {
        "owner": epoch.owner,
        "projectId": PROJECT,
        "epoch": 1,
        "token": NATIVE,
        "funder": funder,
        "to": funder,
        "amount": ETH,
    }


@pytest.mark.parametrize("currency", ["ether", "6-decimals token"])
def test_unclaimed_funds_go_back_to_the_funders_pro_rata(
    chain: Chain, settlement: Contract, currency: str
) -> None:
    token = chain.token("TestToken", "USD", "USDC", 6) if currency != "ether" else None
    address = token.address if token is not None else NATIVE
    unit = USDC if token is not None else ETH
    epoch = anchor(chain, settlement, make_leaves(f"pro rata {currency}", [1, 2, 4]))
    # Three funders, one of them twice; amounts that leave rounding dust in the claims.
    stakes = {1: 3 * unit + 1, 3: 2 * unit, 4: 7}
    for sender, amount in [(1, 3 * unit + 1), (3, unit), (4, 7), (3, unit)]:
        fund(chain, settlement, epoch, amount, sender=sender, token=token)
    funded = sum(stakes.values())
    paid = 0
    for leaf in epoch.leaves[:2]:
        claim(chain, settlement, epoch, leaf, address)
        paid += share(funded, leaf.weight, 7)
    assert books(settlement, epoch, address) == (funded, paid, 0)

    chain.warp(expiry(settlement, epoch) - chain.now())
    refunded = 0
    for sender, stake in stakes.items():
        funder = chain.accounts[sender]
        owed = refundable(funded - paid, stake, funded, 0)
        assert settlement.functions.refundable(*epoch.ref(), address, funder).call() == owed
        before = token_balance(token, funder, chain)
        # Anyone may have a funder refunded to its own address.
        receipt = chain.send(
            refund_call(settlement, epoch, funder, token=address), sender=chain.accounts[2]
        )
        assert token_balance(token, funder, chain) - before == owed
        refunded += owed
        assert settlement.functions.stake(*epoch.ref(), address, funder).call() == [stake, owed]
        assert settlement.functions.refundable(*epoch.ref(), address, funder).call() == 0
        with reverts(settlement, "NothingToRefund"):
            refund_call(settlement, epoch, funder, token=address).transact({"from": funder})
    if token is not None:
        chain.record("refund, token, funder's first", receipt)
    assert books(settlement, epoch, address) == (funded, paid, refunded)
    # What stays is what rounding left of the refunds: less than one unit per funder.
    left = token_balance(token, settlement.address, chain)
    assert left == funded - paid - refunded < len(stakes)
    # The third leaf never claimed: its share went back, and its claim is closed.
    last = epoch.leaves[2]
    with reverts(settlement, "EpochExpired"):
        claim_call(settlement, *epoch.ref(), last, proof_of(epoch.tree, last)).transact(
            {"from": chain.accounts[2]}
        )


def _duplicated(chain: Chain, contract: Contract) -> tuple[Epoch, list[tuple[Leaf, list[bytes]]]]:
    """Anchors a tree whose two leaves are the same leaf: its weight counts twice in the total,
    but the leaf can only be paid once."""
    (leaf,) = make_leaves("duplicate", [5])
    root = Web3.keccak(leaf.hash + leaf.hash)
    contract_call = contract.functions.anchor(PROJECT, 9, root, 2, 10)
    chain.send(contract_call)
    epoch = Epoch(chain.accounts[0], PROJECT, 9, None, 10)  # type: ignore[arg-type]
    return epoch, [(leaf, [leaf.hash]), (leaf, [leaf.hash])]


@pytest.mark.parametrize(
    "case",
    [
        "total weight above the leaves' sum",
        "a root whose leaves nobody knows",
        "duplicate leaves",
        "a payout that refuses ether",
        "a total weight below the leaves' sum",
    ],
)
def test_money_nobody_can_claim_goes_back_to_the_funder(
    chain: Chain, settlement: Contract, case: str
) -> None:
    funded = 12 * ETH
    claims: list[tuple[Leaf, list[bytes]]]
    if case == "duplicate leaves":
        epoch, claims = _duplicated(chain, settlement)
    elif case == "a root whose leaves nobody knows":
        chain.send(settlement.functions.anchor(PROJECT, 9, b"\x42" * 32, 3, 3))
        epoch = Epoch(chain.accounts[0], PROJECT, 9, None, 3)  # type: ignore[arg-type]
        claims = []
    else:
        if case == "a payout that refuses ether":
            payee = chain.payee("RejectingPayee")
            leaves = [Leaf(b"\xcc" * 32, bytes.fromhex(payee.address[2:]), 1)]
            leaves += make_leaves("refused", [2])
        else:
            leaves = make_leaves(f"nobody {case}", [3, 3])
        total = {
            "total weight above the leaves' sum": 60,
            "a total weight below the leaves' sum": 4,
        }
        epoch = anchor(
            chain, settlement, leaves, project=PROJECT, number=9, total_weight=total.get(case)
        )
        claims = [(leaf, proof_of(epoch.tree, leaf)) for leaf in epoch.leaves]
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=funded)

    paid = 0
    for leaf, proof in claims:
        call = claim_call(settlement, *epoch.ref(), leaf, proof)
        try:
            chain.send(call, sender=chain.accounts[2])
        except (ContractLogicError, TransactionFailed) as exc:
            name = describe(settlement, revert_data(exc))[0]
            assert name in {"NothingToClaim", "PaymentFailed", "Overdrawn"}, name
        else:
            paid += int(settlement.functions.claimed(*epoch.ref(), *leaf_args(leaf)).call())
    expected_paid = {
        "total weight above the leaves' sum": 2 * share(funded, 3, 60),
        "a root whose leaves nobody knows": 0,
        "duplicate leaves": share(funded, 5, 10),
        "a payout that refuses ether": share(funded, 2, 3),
        "a total weight below the leaves' sum": share(funded, 3, 4),
    }[case]
    assert paid == expected_paid == books(settlement, epoch)[1]
    assert paid < funded

    chain.warp(expiry(settlement, epoch) - chain.now())
    funder = chain.accounts[1]
    before = chain.balance(funder)
    chain.send(refund_call(settlement, epoch, funder), sender=chain.accounts[2])
    assert chain.balance(funder) - before == funded - paid
    assert books(settlement, epoch) == (funded, paid, funded - paid)
    assert chain.balance(settlement.address) == 0


def test_refunds_go_where_the_funder_says_and_only_once(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("rules", [1]), project=PROJECT)
    funder, stranger, elsewhere = chain.accounts[1], chain.accounts[2], chain.accounts[5]
    fund(chain, settlement, epoch, ETH)
    with reverts(settlement, "NotAnchored", epoch.owner, PROJECT, 2):
        settlement.functions.refund(epoch.owner, PROJECT, 2, NATIVE, funder, funder).transact(
            {"from": funder}
        )
    chain.warp(expiry(settlement, epoch) - chain.now())
    # Only the funder may send its refund elsewhere.
    with reverts(settlement, "NotFunder", funder):
        refund_call(settlement, epoch, funder, stranger).transact({"from": stranger})
    # A pool's part is the contract's stake, which only `returnToPool` moves (to the pool).
    with reverts(settlement, "NotFunder", settlement.address):
        refund_call(settlement, epoch, settlement.address).transact({"from": stranger})
    with reverts(settlement, "NothingToRefund"):
        settlement.functions.returnToPool(*epoch.ref(), NATIVE).transact({"from": stranger})
    # Someone who funded nothing is owed nothing.
    with reverts(settlement, "NothingToRefund"):
        refund_call(settlement, epoch, stranger).transact({"from": stranger})
    # Money sent to the zero address or to the contract itself would be lost or counted twice.
    for bad in ("0x" + "00" * 20, settlement.address):
        with reverts(settlement, "BadRecipient", checksum(bytes.fromhex(bad[2:]))):
            refund_call(settlement, epoch, funder, bad).transact({"from": funder})
    before = chain.balance(elsewhere)
    chain.send(refund_call(settlement, epoch, funder, elsewhere), sender=funder)
    assert chain.balance(elsewhere) - before == ETH
    for sender in (funder, stranger):
        with reverts(settlement, "NothingToRefund"):
            refund_call(settlement, epoch, funder).transact({"from": sender})


def test_a_funder_that_cannot_receive_sends_its_refund_elsewhere(
    chain: Chain, settlement: Contract
) -> None:
    # A contract wallet funds an epoch in a token that later blocks the wallet: a refund to the
    # wallet fails, and the wallet, calling itself, sends it to its keeper instead.
    token = chain.token("TestToken", "USD", "USDC", 6)
    keeper = chain.accounts[7]
    wallet = chain.payee("SigningWallet", keeper)
    epoch = anchor(chain, settlement, make_leaves("wallet funder", [1]), project=PROJECT)
    chain.send(token.functions.mint(wallet.address, 5 * USDC))

    def execute(call: Any) -> Any:
        data = bytes.fromhex(call._encode_transaction_data()[2:])
        return chain.send(wallet.functions.execute(call.address, data), sender=keeper)

    execute(token.functions.approve(settlement.address, 5 * USDC))
    execute(settlement.functions.fundToken(*epoch.ref(), token.address, 5 * USDC))
    assert settlement.functions.stake(*epoch.ref(), token.address, wallet.address).call() == [
        5 * USDC,
        0,
    ]
    chain.send(token.functions.setBlocked(wallet.address, True))
    chain.warp(expiry(settlement, epoch) - chain.now())
    with reverts(token, "Error", BLACKLISTED):
        refund_call(settlement, epoch, wallet.address, token=token.address).transact(
            {"from": chain.accounts[2]}
        )
    execute(refund_call(settlement, epoch, wallet.address, keeper, token.address))
    assert token.functions.balanceOf(keeper).call() == 5 * USDC
    assert books(settlement, epoch, token.address) == (5 * USDC, 0, 5 * USDC)


def test_a_late_claim_and_a_refund_never_spend_the_same_money(
    chain: Chain, settlement: Contract
) -> None:
    epoch = anchor(chain, settlement, make_leaves("late", [1, 1]), project=PROJECT)
    fund(chain, settlement, epoch, 2 * ETH + 1)
    early, late = epoch.leaves
    expires = expiry(settlement, epoch)
    claimed = chain.send_at(
        expires - 1,
        claim_call(settlement, *epoch.ref(), early, proof_of(epoch.tree, early)),
        sender=chain.accounts[2],
    )
    receipt = chain.send_at(
        expires, refund_call(settlement, epoch, chain.accounts[1]), sender=chain.accounts[2]
    )
    assert claimed["status"] == receipt["status"] == 1
    (event,) = settlement.events.Refunded().process_receipt(receipt, errors=DISCARD)
    # The refund took the late leaf's share and the dust; its claim now has nothing to take.
    assert event["args"]["amount"] == ETH + 1
    with reverts(settlement, "EpochExpired"):
        claim_call(settlement, *epoch.ref(), late, proof_of(epoch.tree, late)).transact(
            {"from": chain.accounts[2]}
        )
    assert books(settlement, epoch) == (2 * ETH + 1, ETH, ETH + 1)
    assert chain.balance(settlement.address) == 0
