"""The settlement contract on a real EVM: anchoring, funding in ether, pro-rata claims and their
attacks. Tokens, expiry and refunds, redirects and pools have their own modules beside this one.

Expected amounts come from protocol/settlement.py and proofs from protocol/merkle.py, so these
tests also check that the Python side of the protocol and the contract agree to the wei.
"""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract

from protocol.merkle import Leaf, MerkleTree
from protocol.settlement import CLAIM_PERIOD, POOL_TIMEOUT, SettlementError, claimable, share
from tests.support.evm import (
    ETH,
    NATIVE,
    RICH,
    Chain,
    Epoch,
    anchor,
    checksum,
    claim_call,
    describe,
    leaf_args,
    make_leaves,
    proof_of,
    reverts,
)
from tests.support.factories import address, pid

PROJECT = pid("alice", "docs")
OTHER_PROJECT = pid("alice", "site")


@pytest.fixture
def settlement(chain: Chain) -> Contract:
    return chain.settlement()


def fund(chain: Chain, contract: Contract, epoch: Epoch, amount: int, *, sender: int = 1) -> None:
    chain.send(contract.functions.fund(*epoch.ref()), sender=chain.accounts[sender], value=amount)


def claim(chain: Chain, contract: Contract, epoch: Epoch, leaf: Leaf) -> int:
    """Claims a leaf from a relayer account and returns what its payout address received."""
    before = chain.balance(leaf.payout)
    call = claim_call(contract, *epoch.ref(), leaf, proof_of(epoch.tree, leaf))
    chain.send(call, sender=chain.accounts[2])
    return chain.balance(leaf.payout) - before


def stored(contract: Contract, epoch: Epoch) -> tuple[bytes, int, int, int, int]:
    root, count, total, funded, paid = contract.functions.getEpoch(*epoch.ref()).call()
    return bytes(root), count, total, funded, paid


def claimed(contract: Contract, epoch: Epoch, leaf: Leaf) -> int:
    return int(contract.functions.claimed(*epoch.ref(), *leaf_args(leaf)).call())


# Anchoring.


def test_anchor_stores_the_epoch_under_the_sender(chain: Chain, settlement: Contract) -> None:
    leaves = make_leaves("a", [3, 5, 8])
    tree = MerkleTree.build(leaves)
    owner = chain.accounts[3]
    receipt = chain.send(settlement.functions.anchor(PROJECT, 7, tree.root, 3, 16), sender=owner)
    # The ceilings here and below catch a change that makes the contract costlier by accident;
    # scripts/bench/contract.py reports the exact figures.
    assert chain.record("anchor", receipt) < 75_000

    (event,) = settlement.events.Anchored().process_receipt(receipt)
    expires = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + CLAIM_PERIOD
    assert dict(event["args"]) == {
        "owner": owner,
        "projectId": PROJECT,
        "epoch": 7,
        "root": tree.root,
        "leafCount": 3,
        "totalWeight": 16,
        "expiresAt": expires,
    }
    got = settlement.functions.getEpoch(owner, PROJECT, 7).call()
    assert (bytes(got[0]), *got[1:]) == (tree.root, 3, 16, 0, 0)
    assert settlement.functions.getExpiry(owner, PROJECT, 7).call() == expires
    # The same project and epoch under another owner is another, unanchored, epoch.
    assert settlement.functions.getEpoch(chain.accounts[0], PROJECT, 7).call()[0] == bytes(32)


def test_owners_have_separate_namespaces(chain: Chain, settlement: Contract) -> None:
    mine = anchor(chain, settlement, make_leaves("mine", [1]), owner=chain.accounts[0])
    theirs = anchor(chain, settlement, make_leaves("theirs", [2]), owner=chain.accounts[1])
    assert stored(settlement, mine)[0] == mine.tree.root
    assert stored(settlement, theirs)[0] == theirs.tree.root


def test_an_anchored_epoch_cannot_be_overwritten(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("a", [1, 2]))
    other = MerkleTree.build(make_leaves("b", [1, 2]))
    for root, count, total in [(other.root, 2, 3), (epoch.tree.root, 2, 3), (other.root, 5, 99)]:
        with reverts(settlement, "AlreadyAnchored", epoch.owner, PROJECT, 1):
            settlement.functions.anchor(PROJECT, 1, root, count, total).transact(
                {"from": epoch.owner}
            )
    assert stored(settlement, epoch) == (epoch.tree.root, 2, 3, 0, 0)


@pytest.mark.parametrize(
    ("root", "count", "total", "error"),
    [
        (bytes(32), 1, 1, "ZeroRoot"),
        (b"\x01" * 32, 0, 0, "EmptyEpoch"),
        (b"\x01" * 32, 0, 10, "EmptyEpoch"),
        (b"\x01" * 32, 3, 2, "TotalWeightOutOfRange"),
        (b"\x01" * 32, 1, 0, "TotalWeightOutOfRange"),
        (b"\x01" * 32, 1, 2**128, "TotalWeightOutOfRange"),
        (b"\x01" * 32, 1, 2**256 - 1, "TotalWeightOutOfRange"),
    ],
)
def test_anchor_refuses_bad_arguments(
    chain: Chain, settlement: Contract, root: bytes, count: int, total: int, error: str
) -> None:
    with reverts(settlement, error):
        settlement.functions.anchor(PROJECT, 1, root, count, total).transact(
            {"from": chain.accounts[0]}
        )
    assert settlement.functions.getEpoch(chain.accounts[0], PROJECT, 1).call()[0] == bytes(32)


def test_anchor_takes_the_largest_total_weight(chain: Chain, settlement: Contract) -> None:
    call = settlement.functions.anchor(PROJECT, 1, b"\x01" * 32, 2**32 - 1, 2**128 - 1)
    chain.send(call)
    got = settlement.functions.getEpoch(chain.accounts[0], PROJECT, 1).call()
    assert got[1:3] == [2**32 - 1, 2**128 - 1]


def test_the_constants_are_protocol_settlements(chain: Chain, settlement: Contract) -> None:
    assert settlement.functions.CLAIM_PERIOD().call() == CLAIM_PERIOD == 365 * 86400
    assert settlement.functions.POOL_TIMEOUT().call() == POOL_TIMEOUT == 180 * 86400
    assert settlement.functions.ETHER().call() == NATIVE


# Funding.


def test_anyone_can_fund_an_epoch_more_than_once(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("a", [1, 2]))
    funders = [chain.accounts[4], chain.accounts[5], chain.accounts[4]]
    amounts = [ETH, 3, 2 * ETH]
    # The first funding writes the epoch's books and the funder's stake; a new funder's top-up
    # writes a stake, and a known funder's only adds to one.
    labels = ["fund, first", "fund, top-up by a new funder", "fund, top-up by the same funder"]
    ceilings = [80_000, 60_000, 45_000]
    total = 0
    for funder, amount, label, ceiling in zip(funders, amounts, labels, ceilings, strict=True):
        assert funder != epoch.owner
        call = settlement.functions.fund(*epoch.ref())
        receipt = chain.send(call, sender=funder, value=amount)
        assert chain.record(label, receipt) < ceiling
        total += amount
        (event,) = settlement.events.Funded().process_receipt(receipt)
        assert dict(event["args"]) == {
            "owner": epoch.owner,
            "projectId": PROJECT,
            "epoch": 1,
            "token": NATIVE,
            "funder": funder,
            "amount": amount,
            "funded": total,
        }
    assert stored(settlement, epoch)[3:] == (total, 0)
    assert settlement.functions.getFunds(*epoch.ref(), NATIVE).call() == [total, 0, 0]
    stakes = {
        funder: settlement.functions.stake(*epoch.ref(), NATIVE, funder).call()
        for funder in set(funders)
    }
    assert stakes == {funders[0]: [3 * ETH, 0], funders[1]: [3, 0]}
    assert chain.balance(settlement.address) == total


def test_fund_refuses_an_epoch_that_was_never_anchored(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("a", [1]))
    owner, funder = epoch.owner, chain.accounts[1]
    for ref in [
        (owner, PROJECT, 2),  # another epoch
        (owner, OTHER_PROJECT, 1),  # another project
        (chain.accounts[1], PROJECT, 1),  # another owner
    ]:
        with reverts(settlement, "NotAnchored", *ref):
            settlement.functions.fund(*ref).transact({"from": funder, "value": ETH})
    assert chain.balance(settlement.address) == 0


def test_fund_refuses_zero(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("a", [1]))
    with reverts(settlement, "ZeroFunding"):
        settlement.functions.fund(*epoch.ref()).transact({"from": chain.accounts[1]})


def test_plain_transfers_are_refused(chain: Chain, settlement: Contract) -> None:
    # Money sent without naming an epoch could never be claimed, so the contract has no receive.
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own type here.
        chain.w3.eth.send_transaction(
            {"from": chain.accounts[1], "to": settlement.address, "value": ETH}
        )
    assert chain.balance(settlement.address) == 0


def test_funding_is_capped_at_2_128(chain: Chain, settlement: Contract) -> None:
    rich = chain.accounts[9]
    if chain.name == "anvil":
        chain.w3.provider.make_request("anvil_setBalance", [rich, hex(RICH)])
    epoch = anchor(chain, settlement, make_leaves("a", [1]))
    # Anvil refuses a transaction whose value is 2**128 or more ("insufficient funds", whatever
    # the balance), so the pool is filled in two halves.
    fund(chain, settlement, epoch, 2**127, sender=9)
    fund(chain, settlement, epoch, 2**127 - 2, sender=9)
    with reverts(settlement, "FundingOverflow", 2**128):
        settlement.functions.fund(*epoch.ref()).transact({"from": rich, "value": 2})
    fund(chain, settlement, epoch, 1, sender=9)
    assert stored(settlement, epoch)[3] == 2**128 - 1


# Claims.


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 2, 5, 16])
def test_claims_pay_each_leaf_its_share(chain: Chain, settlement: Contract, size: int) -> None:
    weights = [1 + (i * 7919) % 97 for i in range(size)]
    epoch = anchor(chain, settlement, make_leaves(f"share{size}", weights))
    funded = 10 * ETH + 12345
    fund(chain, settlement, epoch, funded)

    paid = 0
    for leaf in epoch.leaves:
        expected = share(funded, leaf.weight, epoch.total_weight)
        assert settlement.functions.claimable(*epoch.ref(), *leaf_args(leaf)).call() == expected
        before = chain.balance(leaf.payout)
        relayer = chain.accounts[2]
        call = claim_call(settlement, *epoch.ref(), leaf, proof_of(epoch.tree, leaf))
        assert call.call({"from": relayer}) == expected
        receipt = chain.send(call, sender=relayer)
        assert chain.balance(leaf.payout) - before == expected
        paid += expected
        (event,) = settlement.events.Claimed().process_receipt(receipt)
        assert dict(event["args"]) == {
            "owner": epoch.owner,
            "projectId": PROJECT,
            "epoch": 1,
            "token": NATIVE,
            "contributionId": leaf.contribution_id,
            "payout": checksum(leaf.payout),
            "to": checksum(leaf.payout),
            "amount": expected,
            "claimed": expected,
        }
        assert claimed(settlement, epoch, leaf) == expected
        assert settlement.functions.claimable(*epoch.ref(), *leaf_args(leaf)).call() == 0
        depth = len(proof_of(epoch.tree, leaf))
        label = f"claim, first of a leaf, proof of {depth}, new payout account"
        assert chain.record(label, receipt) < 100_000 + 1_000 * depth

    assert stored(settlement, epoch)[3:] == (funded, paid)
    # Rounding down leaves less than one wei per leaf in the contract.
    assert 0 <= chain.balance(settlement.address) == funded - paid < size


def test_a_claim_after_more_funding_pays_the_difference(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("topup", [1, 2, 4]))
    leaf = max(epoch.leaves, key=lambda x: x.weight)
    fundings = [7 * ETH + 1, 3, ETH // 3]
    funded = received = 0
    for amount in fundings:
        fund(chain, settlement, epoch, amount)
        funded += amount
        owed = claimable(funded, leaf.weight, 7, received)
        assert claim(chain, settlement, epoch, leaf) == owed
        received += owed
        assert received == share(funded, leaf.weight, 7) == claimed(settlement, epoch, leaf)
    proof = proof_of(epoch.tree, leaf)
    fund(chain, settlement, epoch, ETH)
    receipt = chain.send(claim_call(settlement, *epoch.ref(), leaf, proof))
    label = f"claim, again after a top-up, proof of {len(proof)}"
    assert chain.record(label, receipt) < 60_000 + 1_000 * len(proof)


def test_a_claim_with_nothing_owed_reverts(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("twice", [1, 3]))
    leaf = epoch.leaves[0]
    call = claim_call(settlement, *epoch.ref(), leaf, proof_of(epoch.tree, leaf))
    with reverts(settlement, "NothingToClaim"):  # before any funding
        call.transact({"from": chain.accounts[2]})
    fund(chain, settlement, epoch, ETH)
    got = claim(chain, settlement, epoch, leaf)
    with reverts(settlement, "NothingToClaim"):  # already paid its share
        call.transact({"from": chain.accounts[2]})
    # A top-up too small to change the share still leaves nothing owed.
    fund(chain, settlement, epoch, 1)
    with reverts(settlement, "NothingToClaim"):
        call.transact({"from": chain.accounts[2]})
    assert chain.balance(leaf.payout) - got == claimed(settlement, epoch, leaf) - got == 0


def test_a_zero_share_is_nothing_to_claim(chain: Chain, settlement: Contract) -> None:
    # A 1-wei pool over weights 1 and 3 rounds both shares down to zero.
    epoch = anchor(chain, settlement, make_leaves("dust", [1, 3]))
    fund(chain, settlement, epoch, 1)
    for leaf in epoch.leaves:
        with reverts(settlement, "NothingToClaim"):
            claim_call(settlement, *epoch.ref(), leaf, proof_of(epoch.tree, leaf)).transact(
                {"from": chain.accounts[2]}
            )


def _altered(leaf: Leaf, **changes: object) -> Leaf:
    fields = {"contribution_id": leaf.contribution_id, "payout": leaf.payout, "weight": leaf.weight}
    fields.update(changes)
    return Leaf(**fields)


@pytest.mark.parametrize(
    "case",
    [
        "proof of another leaf",
        "proof with a sibling dropped",
        "proof with an extra element",
        "empty proof",
        "proof of another epoch",
        "weight raised",
        "weight lowered",
        "payout changed",
        "contribution id changed",
        "leaf of another epoch",
    ],
)
@pytest.mark.slow
def test_claims_with_a_wrong_proof_or_leaf_fail(
    chain: Chain, settlement: Contract, case: str
) -> None:
    epoch = anchor(chain, settlement, make_leaves("e1", [1, 2, 3, 4, 5]), number=1)
    other = anchor(chain, settlement, make_leaves("e2", [5, 6, 7]), number=2)
    fund(chain, settlement, epoch, ETH)
    fund(chain, settlement, other, ETH)
    leaf, neighbour = epoch.leaves[0], epoch.leaves[1]
    proof = proof_of(epoch.tree, leaf)
    attempts: dict[str, tuple[Epoch, Leaf, list[bytes]]] = {
        "proof of another leaf": (epoch, leaf, proof_of(epoch.tree, neighbour)),
        "proof with a sibling dropped": (epoch, leaf, proof[:-1]),
        "proof with an extra element": (epoch, leaf, [*proof, epoch.tree.root]),
        "empty proof": (epoch, leaf, []),
        # A leaf of epoch 1, with its true proof, claimed from epoch 2.
        "proof of another epoch": (other, leaf, proof),
        "weight raised": (epoch, _altered(leaf, weight=leaf.weight + 1), proof),
        "weight lowered": (epoch, _altered(leaf, weight=leaf.weight - 1), proof),
        "payout changed": (epoch, _altered(leaf, payout=address("thief")), proof),
        "contribution id changed": (epoch, _altered(leaf, contribution_id=b"\x07" * 32), proof),
        "leaf of another epoch": (epoch, other.leaves[0], proof_of(other.tree, other.leaves[0])),
    }
    target, claimed_leaf, used = attempts[case]
    # The auditors' view agrees with claim, both ways.
    assert settlement.functions.verify(*epoch.ref(), *leaf_args(leaf), proof).call() is True
    assert not settlement.functions.verify(*target.ref(), *leaf_args(claimed_leaf), used).call()
    with reverts(settlement, "InvalidProof"):
        claim_call(settlement, *target.ref(), claimed_leaf, used).transact(
            {"from": chain.accounts[2]}
        )
    assert stored(settlement, epoch)[4] == stored(settlement, other)[4] == 0
    assert chain.balance(settlement.address) == 2 * ETH


def test_claims_from_an_unanchored_epoch_fail(chain: Chain, settlement: Contract) -> None:
    epoch = anchor(chain, settlement, make_leaves("a", [1, 2]))
    fund(chain, settlement, epoch, ETH)
    leaf = epoch.leaves[0]
    proof = proof_of(epoch.tree, leaf)
    for ref in [(epoch.owner, PROJECT, 2), (chain.accounts[1], PROJECT, 1)]:
        with reverts(settlement, "NotAnchored", *ref):
            claim_call(settlement, *ref, leaf, proof).transact({"from": chain.accounts[2]})
        assert settlement.functions.claimable(*ref, *leaf_args(leaf)).call() == 0
        assert settlement.functions.verify(*ref, *leaf_args(leaf), proof).call() is False


def test_no_honest_share_overflows(chain: Chain, settlement: Contract) -> None:
    # With the total weight below 2**128 (anchor checks it) and a pool below 2**128 (funding
    # checks it), funded * weight fits 256 bits for every leaf of an honest tree.
    weight = 2**128 - 1
    epoch = anchor(chain, settlement, make_leaves("huge", [weight]))
    rich = chain.accounts[9]
    if chain.name == "anvil":
        chain.w3.provider.make_request("anvil_setBalance", [rich, hex(RICH)])
    fund(chain, settlement, epoch, 2**127, sender=9)
    fund(chain, settlement, epoch, 2**127 - 1, sender=9)
    leaf = epoch.leaves[0]
    assert claim(chain, settlement, epoch, leaf) == share(2**128 - 1, weight, weight) == 2**128 - 1


def test_a_lying_leaf_weight_overflows_as_settlement_raises(
    chain: Chain, settlement: Contract
) -> None:
    # Only a leaf heavier than the anchored total (an owner's lie) can overflow funded * weight:
    # protocol.settlement.share raises there, and the contract's checked arithmetic reverts with
    # Panic(0x11). The money stays the epoch's, and goes back to its funders at the expiry.
    weight = 2**255
    epoch = anchor(chain, settlement, make_leaves("liar", [weight]), total_weight=1)
    fund(chain, settlement, epoch, 2)
    leaf = epoch.leaves[0]
    with pytest.raises(SettlementError, match="overflows"):
        share(2, weight, weight)
    with reverts(settlement, "Panic", 0x11):
        claim_call(settlement, *epoch.ref(), leaf, proof_of(epoch.tree, leaf)).transact(
            {"from": chain.accounts[2]}
        )


# Attacks on the money.


@pytest.mark.slow
def test_a_reentrant_payout_gets_only_its_share(chain: Chain, settlement: Contract) -> None:
    payee = chain.payee("ReentrantPayee")
    payout = bytes.fromhex(payee.address[2:])
    # Two leaves pay the attacker, which calls back into the contract whenever it is paid.
    leaves = [
        *make_leaves("honest", [4, 2]),
        Leaf(b"\xaa" * 32, payout, 3),
        Leaf(b"\xbb" * 32, payout, 1),
    ]
    epoch = anchor(chain, settlement, leaves)
    funded = 10 * ETH
    fund(chain, settlement, epoch, funded)
    mine, second = leaves[2], leaves[3]

    def calldata(call: Any) -> bytes:
        return bytes.fromhex(call._encode_transaction_data()[2:])

    def claim_of(leaf: Leaf) -> bytes:
        return calldata(claim_call(settlement, *epoch.ref(), leaf, proof_of(epoch.tree, leaf)))

    guard = bytes(Web3.keccak(text="ReentrancyGuardReentrantCall()"))[:4]
    assert describe(settlement, guard) == ("ReentrancyGuardReentrantCall", ())
    # While it is being paid, the leaf's account is already settled (checks-effects-
    # interactions): the contract says nothing more is owed. Then the guard refuses a second
    # claim of the same leaf and a claim of the other leaf from inside the payment.
    rounds: list[tuple[Leaf, bytes, bool, bytes]] = [
        (
            mine,
            calldata(settlement.functions.claimable(*epoch.ref(), *leaf_args(mine))),
            True,
            (0).to_bytes(32),
        ),
        (mine, claim_of(mine), False, guard),
        (mine, claim_of(second), False, guard),
        (second, claim_of(second), False, guard),
    ]
    successes = 0
    for i, (outer, payload, succeeds, result) in enumerate(rounds):
        if i:
            # A top-up, so that the outer claim has something to pay again.
            fund(chain, settlement, epoch, ETH)
            funded += ETH
        chain.send(payee.functions.arm(settlement.address, payload, 1))
        before = claimed(settlement, epoch, outer)
        paid = claim(chain, settlement, epoch, outer)
        assert paid == share(funded, outer.weight, 10) - before
        assert payee.functions.attempts().call() == i + 1
        successes += succeeds
        assert payee.functions.successes().call() == successes
        assert bytes(payee.functions.lastResult().call()) == result

    # The attacker ends with exactly the two leaves' shares, and the honest leaves are whole.
    for leaf in (mine, second):
        if settlement.functions.claimable(*epoch.ref(), *leaf_args(leaf)).call():
            claim(chain, settlement, epoch, leaf)
    for leaf in leaves[:2]:
        claim(chain, settlement, epoch, leaf)
        assert claimed(settlement, epoch, leaf) == share(funded, leaf.weight, 10)
    expected = share(funded, 3, 10) + share(funded, 1, 10)
    assert chain.balance(payee.address) == expected
    assert chain.balance(settlement.address) == funded - stored(settlement, epoch)[4]


def test_a_payout_that_refuses_money_changes_nothing(chain: Chain, settlement: Contract) -> None:
    payee = chain.payee("RejectingPayee")
    leaves = [*make_leaves("ok", [1]), Leaf(b"\xcc" * 32, bytes.fromhex(payee.address[2:]), 1)]
    epoch = anchor(chain, settlement, leaves)
    fund(chain, settlement, epoch, ETH)
    leaf = leaves[1]
    call = claim_call(settlement, *epoch.ref(), leaf, proof_of(epoch.tree, leaf))
    amount = share(ETH, 1, 2)
    with reverts(settlement, "PaymentFailed", payee.address, amount):
        call.transact({"from": chain.accounts[2]})

    # Mined with a fixed gas limit, so that the failed claim really executes in a block.
    before = (stored(settlement, epoch), chain.balance(settlement.address))
    receipt = chain.send(call, sender=chain.accounts[2], gas=300_000)
    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert (stored(settlement, epoch), chain.balance(settlement.address)) == before
    assert claimed(settlement, epoch, leaf) == 0
    assert chain.balance(payee.address) == 0
    # The leaf stays claimable, and the other leaf is unaffected.
    assert settlement.functions.claimable(*epoch.ref(), *leaf_args(leaf)).call() == amount
    assert claim(chain, settlement, epoch, leaves[0]) == amount


def test_a_lying_total_weight_cannot_take_other_epochs_money(
    chain: Chain, settlement: Contract
) -> None:
    honest = anchor(chain, settlement, make_leaves("honest", [1, 1]), number=1)
    fund(chain, settlement, honest, 10 * ETH)
    # A liar anchors weights 3 + 3 with a total of 4: each leaf's "share" is 3/4 of the pool.
    liar = chain.accounts[6]
    lie = anchor(chain, settlement, make_leaves("lie", [3, 3]), owner=liar, total_weight=4)
    fund(chain, settlement, lie, 4 * ETH)
    first, second = lie.leaves
    assert claim(chain, settlement, lie, first) == 3 * ETH
    with reverts(settlement, "Overdrawn", 4 * ETH, 6 * ETH):
        claim_call(settlement, *lie.ref(), second, proof_of(lie.tree, second)).transact(
            {"from": chain.accounts[2]}
        )
    # An extreme lie (weight 1000 against a total of 2) cannot even make one claim.
    greedy = anchor(
        chain, settlement, make_leaves("greedy", [1000, 1000]), number=2, owner=liar, total_weight=2
    )
    fund(chain, settlement, greedy, 1)
    leaf = greedy.leaves[0]
    with reverts(settlement, "Overdrawn", 1, 500):
        claim_call(settlement, *greedy.ref(), leaf, proof_of(greedy.tree, leaf)).transact(
            {"from": chain.accounts[2]}
        )

    # The honest epoch still pays in full.
    for leaf in honest.leaves:
        assert claim(chain, settlement, honest, leaf) == 5 * ETH
    assert chain.balance(settlement.address) == 1 * ETH + 1
    assert stored(settlement, lie)[3:] == (4 * ETH, 3 * ETH)


def test_leaf_hash_matches_protocol_merkle(chain: Chain, settlement: Contract) -> None:
    for weight in [0, 1, 2**32 - 1, 2**255, 2**256 - 1]:
        (leaf,) = make_leaves(f"w{weight}", [weight])
        assert bytes(settlement.functions.leafHash(*leaf_args(leaf)).call()) == leaf.hash
