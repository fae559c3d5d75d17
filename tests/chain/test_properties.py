"""Property test of settlement: random weights, random fundings, claims in between.

However fundings and claims interleave, every claim pays what protocol/settlement.py says, every
leaf ends with exactly its share of the total funded, and the contract holds exactly what was
funded and not yet paid. Each example is a transaction sequence on a real EVM, so the number of
examples is small; the examples of one run share one contract (each anchors its own epoch), which
also checks that epochs do not leak into each other.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from protocol.merkle import Leaf, MerkleTree
from protocol.settlement import claimable, share
from tests.support.evm import Chain, claim_call, leaf_args, proof_of, reverts
from tests.support.factories import address, pid

# Slow (hypothesis interleavings on two chains): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

PROJECT = pid("alice", "property")

fundings = st.integers(min_value=1, max_value=10**19)
# An operation is a funding (an amount) or a claim (the index of a leaf, modulo the leaf count).
operations = st.lists(
    st.one_of(st.tuples(st.just("fund"), fundings), st.tuples(st.just("claim"), st.integers(0, 7))),
    max_size=10,
)
weights = st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=8)


@dataclass
class Ledger:
    """What the test has put into and taken out of the shared contract, over all examples."""

    contract: Contract
    funded: int = 0
    paid: int = 0


@pytest.fixture
def ledger(chain: Chain) -> Ledger:
    return Ledger(chain.settlement())


@pytest.fixture
def epochs() -> itertools.count[int]:
    return itertools.count(1)


@settings(
    max_examples=25,
    deadline=None,
    # One contract serves every example on purpose; each example anchors a fresh epoch.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(weights=weights, ops=operations)
def test_every_leaf_ends_with_exactly_its_share(
    chain: Chain,
    ledger: Ledger,
    epochs: itertools.count[int],
    weights: list[int],
    ops: list[tuple[str, int]],
) -> None:
    contract = ledger.contract
    number = next(epochs)
    leaves = [
        Leaf(
            hashlib.sha256(f"property {number} {i}".encode()).digest(),
            address(f"property {chain.name} {number} {i}"),
            w,
        )
        for i, w in enumerate(weights)
    ]
    tree = MerkleTree.build(leaves)
    total = sum(weights)
    owner = chain.accounts[0]
    ref = (owner, PROJECT, number)
    chain.send(contract.functions.anchor(PROJECT, number, tree.root, len(leaves), total))

    funded = 0
    received = [0] * len(leaves)

    def claim(i: int) -> None:
        leaf = leaves[i]
        owed = claimable(funded, leaf.weight, total, received[i])
        call = claim_call(contract, *ref, leaf, proof_of(tree, leaf))
        if owed == 0:
            with reverts(contract, "NothingToClaim"):
                call.transact({"from": chain.accounts[2]})
            return
        before = chain.balance(leaf.payout)
        chain.send(call, sender=chain.accounts[2])
        assert chain.balance(leaf.payout) - before == owed
        received[i] += owed
        ledger.paid += owed

    for op, value in ops:
        if op == "fund":
            chain.send(contract.functions.fund(*ref), sender=chain.accounts[1], value=value)
            funded += value
            ledger.funded += value
        else:
            claim(value % len(leaves))
    for i in range(len(leaves)):
        if claimable(funded, leaves[i].weight, total, received[i]):
            claim(i)

    for leaf, got in zip(leaves, received, strict=True):
        assert got == share(funded, leaf.weight, total)
        assert contract.functions.claimed(*ref, *leaf_args(leaf)).call() == got
    assert contract.functions.getEpoch(*ref).call()[3:] == [funded, sum(received)]
    assert chain.balance(contract.address) == ledger.funded - ledger.paid
