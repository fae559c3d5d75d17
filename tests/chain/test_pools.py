"""Project pools: crowdfunding before the work, allocated by the owner, refunded when it stops.

Anyone pays ether or a token into the pool of (owner, project) before any epoch exists. The owner
(the anchoring address) allocates pool money to its own anchored epochs, where the pool becomes
one of the funders. A pool expires POOL_TIMEOUT after its first funding or last allocation, or
when its owner closes the project's pools; from then on it takes nothing more, its owner can
allocate nothing, and its funders take back their pro-rata part of what is unallocated, again
whenever an expired epoch returns the pool's part.
"""

from __future__ import annotations

from typing import Any

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from protocol.settlement import CLAIM_PERIOD, POOL_TIMEOUT, refundable, share
from tests.support.evm import (
    ETH,
    NATIVE,
    Chain,
    Epoch,
    anchor,
    leaf_args,
    make_leaves,
    mint_and_approve,
    proof_of,
    reverts,
    token_balance,
)
from tests.support.factories import pid

PROJECT = pid("alice", "pool")
DAY = 86400


@pytest.fixture
def settlement(chain: Chain) -> Contract:
    return chain.settlement()


def fund_pool(chain: Chain, contract: Contract, owner: str, amount: int, *, sender: int = 1) -> Any:
    call = contract.functions.fundPool(owner, PROJECT)
    return chain.send(call, sender=chain.accounts[sender], value=amount)


def pool(contract: Contract, owner: str, token: str = NATIVE) -> tuple[int, int, int, int]:
    funded, unallocated, refunded, expiry = contract.functions.getPool(owner, PROJECT, token).call()
    return funded, unallocated, refunded, expiry


def allocate(
    chain: Chain, contract: Contract, epoch: Epoch, amount: int, token: str = NATIVE
) -> Any:
    call = contract.functions.allocate(epoch.project, epoch.number, token, amount)
    return chain.send(call, sender=epoch.owner)


def refund_pool(contract: Contract, owner: str, funder: str, to: str | None = None) -> Any:
    return contract.functions.refundPool(owner, PROJECT, NATIVE, funder, to or funder)


def claim(chain: Chain, contract: Contract, epoch: Epoch, index: int) -> int:
    leaf = epoch.leaves[index]
    before = chain.balance(leaf.payout)
    call = contract.functions.claim(*epoch.ref(), *leaf_args(leaf), proof_of(epoch.tree, leaf))
    chain.send(call, sender=chain.accounts[2])
    return chain.balance(leaf.payout) - before


def test_anyone_funds_a_pool_before_any_epoch(chain: Chain, settlement: Contract) -> None:
    owner = chain.accounts[0]
    receipt = fund_pool(chain, settlement, owner, 3 * ETH, sender=1)
    started = chain.now()
    chain.record("fundPool, first", receipt)
    (event,) = settlement.events.PoolFunded().process_receipt(receipt)
    assert dict(event["args"]) == {
        "owner": owner,
        "projectId": PROJECT,
        "token": NATIVE,
        "funder": chain.accounts[1],
        "amount": 3 * ETH,
        "funded": 3 * ETH,
        "expiresAt": started + POOL_TIMEOUT,
    }
    # Funding does not move the clock: only the owner's allocations do.
    chain.warp(DAY)
    receipt = fund_pool(chain, settlement, owner, ETH, sender=3)
    chain.record("fundPool, a new funder", receipt)
    assert pool(settlement, owner) == (4 * ETH, 4 * ETH, 0, started + POOL_TIMEOUT)
    for sender, amount in [(1, 3 * ETH), (3, ETH)]:
        stake = settlement.functions.poolStake(owner, PROJECT, NATIVE, chain.accounts[sender])
        assert stake.call() == [amount, 0]
    assert chain.balance(settlement.address) == 4 * ETH
    # Another owner's pool of the same project id is another pool.
    assert pool(settlement, chain.accounts[5]) == (0, 0, 0, 0)
    with reverts(settlement, "ZeroFunding"):
        settlement.functions.fundPool(owner, PROJECT).transact({"from": chain.accounts[1]})


def test_a_token_pool_is_credited_what_arrived(chain: Chain, settlement: Contract) -> None:
    token = chain.token("FeeToken", 100)
    owner, funder = chain.accounts[0], chain.accounts[1]
    mint_and_approve(chain, token, settlement.address, funder, 10_000)
    fund = settlement.functions.fundPoolToken
    with reverts(settlement, "NotAToken"):
        fund(owner, PROJECT, NATIVE, 10).transact({"from": funder})
    receipt = chain.send(fund(owner, PROJECT, token.address, 10_000), sender=funder)
    chain.record("fundPoolToken, first (fee on transfer)", receipt)
    (event,) = settlement.events.PoolFunded().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["amount"] == 9_900
    assert pool(settlement, owner, token.address)[:3] == (9_900, 9_900, 0)
    assert token.functions.balanceOf(settlement.address).call() == 9_900
    # Ether's pool and the token's are apart.
    assert pool(settlement, owner) == (0, 0, 0, 0)


def test_the_owner_allocates_its_pool_to_its_own_epochs(chain: Chain, settlement: Contract) -> None:
    owner = chain.accounts[0]
    fund_pool(chain, settlement, owner, 10 * ETH)
    chain.warp(10 * DAY)
    epoch = anchor(chain, settlement, make_leaves("allocated", [1, 3]), project=PROJECT)
    receipt = allocate(chain, settlement, epoch, 4 * ETH)
    chain.record("allocate, first to an epoch", receipt)
    now = chain.now()
    (allocated,) = settlement.events.PoolAllocated().process_receipt(receipt, errors=DISCARD)
    assert dict(allocated["args"]) == {
        "owner": owner,
        "projectId": PROJECT,
        "epoch": 1,
        "token": NATIVE,
        "amount": 4 * ETH,
        "unallocated": 6 * ETH,
        "expiresAt": now + POOL_TIMEOUT,
    }
    # To the epoch, the pool is one more funder: the contract's own address.
    (funded,) = settlement.events.Funded().process_receipt(receipt, errors=DISCARD)
    assert (funded["args"]["funder"], funded["args"]["amount"]) == (settlement.address, 4 * ETH)
    assert pool(settlement, owner) == (10 * ETH, 6 * ETH, 0, now + POOL_TIMEOUT)
    assert settlement.functions.getFunds(*epoch.ref(), NATIVE).call() == [4 * ETH, 0, 0]
    stake = settlement.functions.stake(*epoch.ref(), NATIVE, settlement.address).call()
    assert stake == [4 * ETH, 0]
    assert claim(chain, settlement, epoch, 0) == share(4 * ETH, epoch.leaves[0].weight, 4)

    call = settlement.functions.allocate
    # More than the pool holds.
    with reverts(settlement, "InsufficientPool", 6 * ETH, 6 * ETH + 1):
        call(PROJECT, 1, NATIVE, 6 * ETH + 1).transact({"from": owner})
    # Someone else allocates only from its own pool, to its own epochs: nobody reaches this one.
    stranger = chain.accounts[4]
    with reverts(settlement, "NotAnchored", stranger, PROJECT, 1):
        call(PROJECT, 1, NATIVE, ETH).transact({"from": stranger})
    theirs = anchor(
        chain, settlement, make_leaves("stranger", [1]), project=PROJECT, owner=stranger
    )
    with reverts(settlement, "InsufficientPool", 0, ETH):
        call(PROJECT, theirs.number, NATIVE, ETH).transact({"from": stranger})
    # An epoch not anchored, or a token the pool does not hold.
    with reverts(settlement, "NotAnchored", owner, PROJECT, 2):
        call(PROJECT, 2, NATIVE, ETH).transact({"from": owner})
    with reverts(settlement, "InsufficientPool", 0, 1):
        call(PROJECT, 1, chain.accounts[9], 1).transact({"from": owner})
    with reverts(settlement, "ZeroFunding"):
        call(PROJECT, 1, NATIVE, 0).transact({"from": owner})
    receipt = allocate(chain, settlement, epoch, 6 * ETH)
    chain.record("allocate, again to the same epoch", receipt)
    assert pool(settlement, owner)[:3] == (10 * ETH, 0, 0)
    assert chain.balance(settlement.address) == 10 * ETH - share(4 * ETH, epoch.leaves[0].weight, 4)


def test_funders_take_back_a_pool_its_owner_stopped_allocating(
    chain: Chain, settlement: Contract
) -> None:
    owner = chain.accounts[0]
    fund_pool(chain, settlement, owner, 3 * ETH, sender=1)
    fund_pool(chain, settlement, owner, ETH, sender=3)
    epoch = anchor(chain, settlement, make_leaves("idle", [1]), project=PROJECT)
    allocate(chain, settlement, epoch, ETH)
    expires = pool(settlement, owner)[3]
    assert expires == chain.now() + POOL_TIMEOUT

    funder = chain.accounts[1]
    with reverts(settlement, "PoolNotExpired", owner, PROJECT, NATIVE, expires):
        refund_pool(settlement, owner, funder).transact({"from": funder})
    assert settlement.functions.poolRefundable(owner, PROJECT, NATIVE, funder).call() == 0
    # Its last seconds, in blocks of exactly those times: it refunds nobody, and still takes
    # funds (and allocations, which would restart its clock).
    refused = chain.send_at(expires - 2, refund_pool(settlement, owner, funder), sender=funder)
    funding = settlement.functions.fundPool(owner, PROJECT)
    taken = chain.send_at(expires - 1, funding, sender=chain.accounts[4], value=4 * ETH)
    assert (refused["status"], taken["status"]) == (0, 1)

    # Its expiry: no funds, no allocations (no owner can keep the money in), and refunds.
    allocation = settlement.functions.allocate(PROJECT, 1, NATIVE, ETH)
    assert chain.send_at(expires, allocation, sender=owner)["status"] == 0
    with reverts(settlement, "PoolExpired", owner, PROJECT, NATIVE, expires):
        allocation.transact({"from": owner})
    with reverts(settlement, "PoolExpired", owner, PROJECT, NATIVE, expires):
        fund_pool(chain, settlement, owner, ETH, sender=5)
    funded, unallocated = 8 * ETH, 7 * ETH
    stakes = {1: 3 * ETH, 3: ETH, 4: 4 * ETH}
    refunded = 0
    for sender, stake in stakes.items():
        who = chain.accounts[sender]
        owed = refundable(unallocated, stake, funded, 0)
        assert settlement.functions.poolRefundable(owner, PROJECT, NATIVE, who).call() == owed
        before = chain.balance(who)
        receipt = chain.send(refund_pool(settlement, owner, who), sender=chain.accounts[2])
        assert chain.balance(who) - before == owed
        refunded += owed
        (event,) = settlement.events.PoolRefunded().process_receipt(receipt)
        assert dict(event["args"]) == {
            "owner": owner,
            "projectId": PROJECT,
            "token": NATIVE,
            "funder": who,
            "to": who,
            "amount": owed,
        }
        with reverts(settlement, "NothingToRefund"):
            refund_pool(settlement, owner, who).transact({"from": who})
    chain.record("refundPool, a funder's first", receipt)
    assert pool(settlement, owner) == (funded, unallocated - refunded, refunded, expires)
    assert unallocated - refunded < len(stakes)


def test_refunds_of_a_pool_go_where_the_funder_says(chain: Chain, settlement: Contract) -> None:
    owner, funder, stranger = chain.accounts[0], chain.accounts[1], chain.accounts[2]
    with reverts(settlement, "NothingToRefund"):
        refund_pool(settlement, owner, funder).transact({"from": funder})
    fund_pool(chain, settlement, owner, ETH)
    chain.warp(POOL_TIMEOUT)
    with reverts(settlement, "NotFunder", funder):
        refund_pool(settlement, owner, funder, stranger).transact({"from": stranger})
    with reverts(settlement, "NothingToRefund"):
        refund_pool(settlement, owner, stranger).transact({"from": stranger})
    with reverts(settlement, "BadRecipient", settlement.address):
        refund_pool(settlement, owner, funder, settlement.address).transact({"from": funder})
    elsewhere = chain.accounts[6]
    before = chain.balance(elsewhere)
    chain.send(refund_pool(settlement, owner, funder, elsewhere), sender=funder)
    assert chain.balance(elsewhere) - before == ETH


def test_an_expired_epoch_returns_the_pools_part_to_a_live_pool(
    chain: Chain, settlement: Contract
) -> None:
    owner = chain.accounts[0]
    fund_pool(chain, settlement, owner, 10 * ETH)
    first = anchor(chain, settlement, make_leaves("live a", [1, 1]), project=PROJECT, number=1)
    later = anchor(chain, settlement, make_leaves("live b", [1]), project=PROJECT, number=2)
    allocate(chain, settlement, first, 4 * ETH)
    assert claim(chain, settlement, first, 0) == 2 * ETH
    # The owner keeps the pool alive, allocating within every POOL_TIMEOUT.
    for _ in range(2):
        chain.warp(POOL_TIMEOUT - DAY)
        allocate(chain, settlement, later, ETH)
    expires = settlement.functions.getExpiry(*first.ref()).call()
    chain.warp(expires - chain.now())
    with reverts(settlement, "EpochExpired"):
        allocate(chain, settlement, first, ETH)
    receipt = chain.send(
        settlement.functions.returnToPool(*first.ref(), NATIVE), sender=chain.accounts[2]
    )
    chain.record("returnToPool", receipt)
    (returned,) = settlement.events.PoolReturned().process_receipt(receipt, errors=DISCARD)
    assert (returned["args"]["amount"], returned["args"]["unallocated"]) == (2 * ETH, 6 * ETH)
    assert settlement.functions.getFunds(*first.ref(), NATIVE).call() == [4 * ETH, 2 * ETH, 2 * ETH]
    assert pool(settlement, owner)[:3] == (10 * ETH, 6 * ETH, 0)
    with reverts(settlement, "NothingToRefund"):
        settlement.functions.returnToPool(*first.ref(), NATIVE).transact({"from": owner})
    # What came back is the pool's again: the owner allocates it to a new epoch.
    fresh = anchor(chain, settlement, make_leaves("live c", [1]), project=PROJECT, number=3)
    allocate(chain, settlement, fresh, 6 * ETH)
    assert claim(chain, settlement, fresh, 0) == 6 * ETH


def test_an_expired_pool_refunds_again_what_epochs_return(
    chain: Chain, settlement: Contract
) -> None:
    owner = chain.accounts[0]
    fund_pool(chain, settlement, owner, 3 * ETH, sender=1)
    fund_pool(chain, settlement, owner, ETH, sender=3)
    epoch = anchor(chain, settlement, make_leaves("expired pool", [1, 1]), project=PROJECT)
    allocate(chain, settlement, epoch, 2 * ETH)
    assert claim(chain, settlement, epoch, 0) == ETH
    first, second = chain.accounts[1], chain.accounts[3]
    chain.warp(POOL_TIMEOUT)
    # The pool expired with 2 ether unallocated: the first funder takes its 3/4.
    got: dict[str, int] = {first: 0, second: 0}

    def take(who: str) -> None:
        before = chain.balance(who)
        chain.send(refund_pool(settlement, owner, who), sender=chain.accounts[2])
        got[who] += chain.balance(who) - before

    take(first)
    assert got[first] == refundable(2 * ETH, 3 * ETH, 4 * ETH, 0) == 3 * ETH // 2
    # The epoch expires with its second leaf unclaimed, and returns that ether to the pool,
    # whose funders share it as they shared the rest.
    chain.warp(CLAIM_PERIOD - POOL_TIMEOUT)
    chain.send(settlement.functions.returnToPool(*epoch.ref(), NATIVE), sender=chain.accounts[2])
    assert pool(settlement, owner)[1:3] == (ETH // 2 + ETH, 3 * ETH // 2)
    take(first)
    take(second)
    assert got == {first: 9 * ETH // 4, second: 3 * ETH // 4}
    assert pool(settlement, owner)[:3] == (4 * ETH, 0, 3 * ETH)
    assert chain.balance(settlement.address) == 0
    for who in (first, second):
        with reverts(settlement, "NothingToRefund"):
            refund_pool(settlement, owner, who).transact({"from": who})


def test_a_token_pool_round_trip(chain: Chain, settlement: Contract) -> None:
    token = chain.token("NoReturnToken")
    owner, funder = chain.accounts[0], chain.accounts[1]
    mint_and_approve(chain, token, settlement.address, funder, 100)
    chain.send(
        settlement.functions.fundPoolToken(owner, PROJECT, token.address, 100), sender=funder
    )
    epoch = anchor(chain, settlement, make_leaves("token pool", [1, 1]), project=PROJECT)
    allocate(chain, settlement, epoch, 60, token.address)
    leaf = epoch.leaves[0]
    call = settlement.functions.claimToken(
        *epoch.ref(), token.address, *leaf_args(leaf), proof_of(epoch.tree, leaf)
    )
    chain.send(call, sender=chain.accounts[2])
    assert token_balance(token, leaf.payout, chain) == 30
    chain.warp(CLAIM_PERIOD)
    chain.send(
        settlement.functions.returnToPool(*epoch.ref(), token.address), sender=chain.accounts[2]
    )
    refund = settlement.functions.refundPool(owner, PROJECT, token.address, funder, funder)
    chain.send(refund, sender=chain.accounts[2])
    assert token_balance(token, funder, chain) == 70
    assert token_balance(token, settlement.address, chain) == 0


def test_closing_a_project_opens_its_pools_refunds_at_once(
    chain: Chain, settlement: Contract
) -> None:
    owner, funder = chain.accounts[0], chain.accounts[1]
    token = chain.token("TestToken", "USD", "USDC", 6)
    mint_and_approve(chain, token, settlement.address, funder, 500)
    fund_pool(chain, settlement, owner, 2 * ETH, sender=1)
    chain.send(
        settlement.functions.fundPoolToken(owner, PROJECT, token.address, 500), sender=funder
    )
    epoch = anchor(chain, settlement, make_leaves("closed", [1, 1]), project=PROJECT)
    allocate(chain, settlement, epoch, ETH)
    assert claim(chain, settlement, epoch, 0) == ETH // 2
    with reverts(settlement, "PoolNotExpired"):
        refund_pool(settlement, owner, funder).transact({"from": funder})
    # Only the owner closes its own project's pools: a stranger closes a namespace of its own.
    stranger = chain.accounts[4]
    chain.send(settlement.functions.closePools(PROJECT), sender=stranger)
    assert pool(settlement, owner)[3] > chain.now()

    receipt = chain.send(settlement.functions.closePools(PROJECT), sender=owner)
    chain.record("closePools", receipt)
    closed = chain.now()
    (event,) = settlement.events.PoolsClosed().process_receipt(receipt)
    assert dict(event["args"]) == {"owner": owner, "projectId": PROJECT, "closedAt": closed}
    assert settlement.functions.poolsClosedAt(owner, PROJECT).call() == closed
    with reverts(settlement, "PoolsAlreadyClosed", owner, PROJECT, closed):
        settlement.functions.closePools(PROJECT).transact({"from": owner})
    # Every token's pool expired with the closing, even one nobody had funded yet.
    assert pool(settlement, owner) == (2 * ETH, ETH, 0, closed)
    assert pool(settlement, owner, token.address)[3] == closed
    with reverts(settlement, "PoolExpired", owner, PROJECT, NATIVE, closed):
        allocate(chain, settlement, epoch, 1)
    with reverts(settlement, "PoolExpired", owner, PROJECT, NATIVE, closed):
        fund_pool(chain, settlement, owner, ETH, sender=3)
    other = chain.token("NoReturnToken")
    mint_and_approve(chain, other, settlement.address, funder, 10)
    with reverts(settlement, "PoolExpired", owner, PROJECT, other.address, closed):
        settlement.functions.fundPoolToken(owner, PROJECT, other.address, 10).transact(
            {"from": funder}
        )
    # The funder takes back what is unallocated, without the owner and without waiting.
    before = chain.balance(funder)
    chain.send(refund_pool(settlement, owner, funder), sender=chain.accounts[2])
    assert chain.balance(funder) - before == ETH
    refund = settlement.functions.refundPool(owner, PROJECT, token.address, funder, funder)
    chain.send(refund, sender=chain.accounts[2])
    assert token.functions.balanceOf(funder).call() == 500
    # The epoch keeps its own expiry; what it leaves goes back to the pool's funders.
    assert claim(chain, settlement, epoch, 1) == ETH // 2
    chain.warp(CLAIM_PERIOD)
    with reverts(settlement, "NothingToRefund"):
        settlement.functions.returnToPool(*epoch.ref(), NATIVE).transact({"from": funder})
    assert chain.balance(settlement.address) == 0
