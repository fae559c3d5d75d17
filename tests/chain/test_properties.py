"""Property tests of settlement: random weights, fundings, claims, expiries and refunds.

However fundings and claims interleave, every claim pays what protocol/settlement.py says, every
leaf ends with exactly its share of the total funded, and the contract holds exactly what was
funded and not yet paid. With tokens, epochs and the expiry in the mix, each (epoch, token) keeps
its own books: after the expiry no claim and no funding goes through, refunds pay each funder its
part of what the claims left, and a unit of money is claimed or refunded, never both. Pools add
allocations, returns and the closing of a project's pools, and their money too ends with a leaf
or a funder.

Each example is a transaction sequence on a real EVM, so the number of examples is small; the
examples of one run share one contract and its tokens (each anchors its own epochs, and each
pool is a project of its own), which also checks that epochs and tokens do not leak into each
other.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from protocol.merkle import Leaf, MerkleTree
from protocol.settlement import POOL_TIMEOUT, claimable, refundable, share
from tests.support.evm import (
    NATIVE,
    Chain,
    Epoch,
    anchor,
    claim_call,
    leaf_args,
    make_leaves,
    mint_and_approve,
    proof_of,
    reverts,
    token_balance,
)
from tests.support.factories import address, pid

# Slow (hypothesis interleavings on two chains): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

PROJECT = pid("alice", "property")
TOKENS_PROJECT = pid("alice", "property tokens")

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


# Tokens, epochs and the expiry: fundings and claims in ether and three tokens over two epochs, then
# the expiry, then late claims and fundings (all refused) interleaved with refunds.

# The fee token burns 1% of each transfer.
FEE_BPS = 100
TOKENS = ("ether", "6 decimals", "no return value", "fee on transfer")
FUNDERS = (1, 3)


@dataclass
class Books:
    """What the test expects of one (epoch, token): the contract's books, per funder and leaf."""

    funded: int = 0
    paid: int = 0
    refunded: int = 0
    stakes: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)
    claimed: dict[bytes, int] = field(default_factory=dict)


@dataclass
class World:
    """One contract, its tokens, and what the test put into and took out of it per token."""

    chain: Chain
    contract: Contract
    tokens: dict[str, Contract | None]
    held: dict[str, int] = field(default_factory=dict)
    examples: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def address(self, name: str) -> str:
        token = self.tokens[name]
        return NATIVE if token is None else token.address

    def balance(self, name: str) -> int:
        return token_balance(self.tokens[name], self.contract.address, self.chain)


@pytest.fixture
def world(chain: Chain) -> World:
    contract = chain.settlement()
    tokens: dict[str, Contract | None] = {
        "ether": None,
        "6 decimals": chain.token("TestToken", "USD", "USDC", 6),
        "no return value": chain.token("NoReturnToken"),
        "fee on transfer": chain.token("FeeToken", FEE_BPS),
    }
    for token in tokens.values():
        if token is None:
            continue
        for sender in FUNDERS:
            # Enough for every example, and an allowance no funding uses up.
            mint_and_approve(chain, token, contract.address, chain.accounts[sender], 2**200)
    return World(chain, contract, tokens, dict.fromkeys(TOKENS, 0))


token_names = st.sampled_from(TOKENS)
funder_picks = st.sampled_from(FUNDERS)
epoch_picks = st.integers(0, 1)
amounts = st.integers(min_value=1, max_value=10**19)
before_expiry = st.lists(
    st.one_of(
        st.tuples(st.just("fund"), epoch_picks, token_names, funder_picks, amounts),
        st.tuples(st.just("claim"), epoch_picks, token_names, st.integers(0, 7)),
    ),
    max_size=12,
)
after_expiry = st.lists(
    st.one_of(
        st.tuples(st.just("refund"), epoch_picks, token_names, funder_picks),
        st.tuples(st.just("late claim"), epoch_picks, token_names, st.integers(0, 7)),
        st.tuples(st.just("late fund"), epoch_picks, token_names, funder_picks),
    ),
    max_size=8,
)
weights_per_epoch = st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=5)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    weights=st.tuples(weights_per_epoch, weights_per_epoch),
    before=before_expiry,
    after=after_expiry,
)
def test_money_across_tokens_and_epochs_is_claimed_or_refunded_never_both(
    world: World,
    weights: tuple[list[int], list[int]],
    before: list[tuple[Any, ...]],
    after: list[tuple[Any, ...]],
) -> None:
    chain, contract = world.chain, world.contract
    example = next(world.examples)
    owner = chain.accounts[0]
    epochs: list[Epoch] = []
    for i, ws in enumerate(weights):
        leaves = make_leaves(f"tokens {chain.name} {example} {i}", ws)
        epochs.append(
            anchor(
                chain, contract, leaves, project=TOKENS_PROJECT, number=2 * example + i, owner=owner
            )
        )
    books = {(e, t): Books() for e in range(2) for t in TOKENS}

    def check(e: int, name: str) -> None:
        got = contract.functions.getFunds(*epochs[e].ref(), world.address(name)).call()
        b = books[e, name]
        assert got == [b.funded, b.paid, b.refunded]
        assert world.balance(name) == world.held[name]
        assert b.paid + b.refunded <= b.funded

    def fund(e: int, name: str, sender: int, amount: int) -> None:
        token, funder = world.tokens[name], chain.accounts[sender]
        if token is None:
            chain.send(contract.functions.fund(*epochs[e].ref()), sender=funder, value=amount)
            credited = amount
        else:
            call = contract.functions.fundToken(*epochs[e].ref(), token.address, amount)
            chain.send(call, sender=funder)
            credited = amount - amount * FEE_BPS // 10_000 if name == "fee on transfer" else amount
        b = books[e, name]
        b.funded += credited
        b.stakes[funder] = b.stakes.get(funder, 0) + credited
        world.held[name] += credited

    def claim_call_of(e: int, name: str, pick: int) -> tuple[Any, Leaf]:
        epoch = epochs[e]
        leaf = epoch.leaves[pick % len(epoch.leaves)]
        call = contract.functions.claimToken(
            *epoch.ref(), world.address(name), *leaf_args(leaf), proof_of(epoch.tree, leaf)
        )
        return call, leaf

    def claim(e: int, name: str, pick: int) -> None:
        call, leaf = claim_call_of(e, name, pick)
        b = books[e, name]
        already = b.claimed.get(leaf.contribution_id, 0)
        owed = claimable(b.funded, leaf.weight, epochs[e].total_weight, already)
        if owed == 0:
            with reverts(contract, "NothingToClaim"):
                call.transact({"from": chain.accounts[2]})
            return
        chain.send(call, sender=chain.accounts[2])
        b.claimed[leaf.contribution_id] = already + owed
        b.paid += owed
        world.held[name] -= owed

    def refund(e: int, name: str, sender: int) -> None:
        funder = chain.accounts[sender]
        b = books[e, name]
        call = contract.functions.refund(*epochs[e].ref(), world.address(name), funder, funder)
        stake = b.stakes.get(funder, 0)
        owed = (
            refundable(b.funded - b.paid, stake, b.funded, b.refunds.get(funder, 0)) if stake else 0
        )
        if owed == 0:
            with reverts(contract, "NothingToRefund"):
                call.transact({"from": chain.accounts[2]})
            return
        before = token_balance(world.tokens[name], funder, chain)
        chain.send(call, sender=chain.accounts[2])
        got = token_balance(world.tokens[name], funder, chain) - before
        fee = owed * FEE_BPS // 10_000 if name == "fee on transfer" else 0
        assert got == owed - fee
        b.refunds[funder] = b.refunds.get(funder, 0) + owed
        b.refunded += owed
        world.held[name] -= owed

    for op in before:
        if op[0] == "fund":
            fund(*op[1:])
        else:
            claim(*op[1:])
        check(op[1], op[2])

    chain.warp(max(contract.functions.getExpiry(*e.ref()).call() for e in epochs) - chain.now())
    for op in after:
        kind, e, name = op[0], op[1], op[2]
        if kind == "refund":
            refund(e, name, op[3])
        elif kind == "late claim":
            call, _ = claim_call_of(e, name, op[3])
            with reverts(contract, "EpochExpired"):
                call.transact({"from": chain.accounts[2]})
        else:
            funder = chain.accounts[op[3]]
            token = world.tokens[name]
            late = (
                contract.functions.fund(*epochs[e].ref())
                if token is None
                else contract.functions.fundToken(*epochs[e].ref(), token.address, 1)
            )
            with reverts(contract, "EpochExpired"):
                late.transact({"from": funder, "value": 1 if token is None else 0})
        check(e, name)

    # Everyone who is owed a refund takes it: each (epoch, token) then holds only the dust of
    # the refunds' rounding, less than one unit per funder.
    for e in range(2):
        for name in TOKENS:
            b = books[e, name]
            for funder in list(b.stakes):
                if refundable(
                    b.funded - b.paid, b.stakes[funder], b.funded, b.refunds.get(funder, 0)
                ):
                    refund(e, name, chain.accounts.index(funder))
            check(e, name)
            assert 0 <= b.funded - b.paid - b.refunded < max(1, len(b.stakes))
            for leaf in epochs[e].leaves:
                claimed = b.claimed.get(leaf.contribution_id, 0)
                assert claimed <= share(b.funded, leaf.weight, epochs[e].total_weight)


# Pools: fundings into a pool, allocations to two epochs, claims; then the pool's and the epochs'
# expiries, and refunds and returns to the pool in any order.

POOLS = ("ether", "fee on transfer")


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(POOLS),
    weights=st.tuples(weights_per_epoch, weights_per_epoch),
    before=st.lists(
        st.one_of(
            st.tuples(st.just("fund"), funder_picks, amounts),
            st.tuples(st.just("allocate"), epoch_picks, st.integers(0, 1000)),
            st.tuples(st.just("claim"), epoch_picks, st.integers(0, 7)),
        ),
        max_size=10,
    ),
    after=st.permutations(
        [("return", 0), ("return", 1), ("refund", 1), ("refund", 3), ("refund", 1), ("refund", 3)]
    ),
    split=st.integers(0, 6),
    closed=st.booleans(),
)
def test_pool_money_always_has_an_exit(
    world: World,
    name: str,
    weights: tuple[list[int], list[int]],
    before: list[tuple[Any, ...]],
    after: list[tuple[str, int]],
    split: int,
    closed: bool,
) -> None:
    chain, contract = world.chain, world.contract
    example = next(world.examples)
    owner = chain.accounts[0]
    project = pid("alice", f"pool property {example}")
    token = world.tokens[name]
    address = world.address(name)
    epochs = [
        anchor(
            chain,
            contract,
            make_leaves(f"pool {chain.name} {example} {i}", ws),
            project=project,
            number=i,
            owner=owner,
        )
        for i, ws in enumerate(weights)
    ]
    pool = {"funded": 0, "unallocated": 0, "refunded": 0}
    pool_stakes: dict[str, int] = {}
    pool_refunds: dict[str, int] = {}
    epoch_books = [Books(), Books()]
    me = contract.address

    def check() -> None:
        got = contract.functions.getPool(owner, project, address).call()
        assert got[:3] == [pool["funded"], pool["unallocated"], pool["refunded"]]
        for e in range(2):
            b = epoch_books[e]
            funds = contract.functions.getFunds(*epochs[e].ref(), address).call()
            assert funds == [b.funded, b.paid, b.refunded]
        assert world.balance(name) == world.held[name]

    def fund(sender: int, amount: int) -> None:
        funder = chain.accounts[sender]
        if token is None:
            chain.send(contract.functions.fundPool(owner, project), sender=funder, value=amount)
            credited = amount
        else:
            call = contract.functions.fundPoolToken(owner, project, token.address, amount)
            chain.send(call, sender=funder)
            credited = amount - amount * FEE_BPS // 10_000
        pool["funded"] += credited
        pool["unallocated"] += credited
        pool_stakes[funder] = pool_stakes.get(funder, 0) + credited
        world.held[name] += credited

    def allocate(e: int, permille: int) -> None:
        amount = pool["unallocated"] * permille // 1000
        call = contract.functions.allocate(project, e, address, amount)
        if amount == 0:
            with reverts(contract, "ZeroFunding"):
                call.transact({"from": owner})
            return
        chain.send(call, sender=owner)
        pool["unallocated"] -= amount
        b = epoch_books[e]
        b.funded += amount
        b.stakes[me] = b.stakes.get(me, 0) + amount

    def claim(e: int, pick: int) -> None:
        epoch = epochs[e]
        leaf = epoch.leaves[pick % len(epoch.leaves)]
        b = epoch_books[e]
        already = b.claimed.get(leaf.contribution_id, 0)
        owed = claimable(b.funded, leaf.weight, epoch.total_weight, already)
        call = contract.functions.claimToken(
            *epoch.ref(), address, *leaf_args(leaf), proof_of(epoch.tree, leaf)
        )
        if owed == 0:
            with reverts(contract, "NothingToClaim"):
                call.transact({"from": chain.accounts[2]})
            return
        chain.send(call, sender=chain.accounts[2])
        b.claimed[leaf.contribution_id] = already + owed
        b.paid += owed
        world.held[name] -= owed

    def give_back(e: int) -> None:
        b = epoch_books[e]
        call = contract.functions.returnToPool(*epochs[e].ref(), address)
        stake = b.stakes.get(me, 0)
        owed = refundable(b.funded - b.paid, stake, b.funded, b.refunds.get(me, 0)) if stake else 0
        if owed == 0:
            with reverts(contract, "NothingToRefund"):
                call.transact({"from": chain.accounts[2]})
            return
        chain.send(call, sender=chain.accounts[2])
        b.refunds[me] = b.refunds.get(me, 0) + owed
        b.refunded += owed
        pool["unallocated"] += owed

    def refund(sender: int) -> None:
        funder = chain.accounts[sender]
        call = contract.functions.refundPool(owner, project, address, funder, funder)
        stake = pool_stakes.get(funder, 0)
        remaining = pool["unallocated"] + pool["refunded"]
        owed = (
            refundable(remaining, stake, pool["funded"], pool_refunds.get(funder, 0))
            if stake
            else 0
        )
        if owed == 0:
            with reverts(contract, "NothingToRefund"):
                call.transact({"from": chain.accounts[2]})
            return
        chain.send(call, sender=chain.accounts[2])
        pool_refunds[funder] = pool_refunds.get(funder, 0) + owed
        pool["refunded"] += owed
        pool["unallocated"] -= owed
        world.held[name] -= owed

    fund(1, 10**18)
    for op in before:
        {"fund": fund, "allocate": allocate, "claim": claim}[op[0]](*op[1:])
        check()

    # The pool expires first (its owner stopped allocating, or closed the project's pools), and
    # the epochs later: refunds of the pool taken between the two see less than those taken
    # after the epochs give back.
    moves = {"return": give_back, "refund": refund}
    if closed:
        chain.send(contract.functions.closePools(project), sender=owner)
    else:
        chain.warp(POOL_TIMEOUT)
    for kind, arg in after[:split]:
        if kind == "refund":
            refund(arg)
            check()
    chain.warp(max(contract.functions.getExpiry(*e.ref()).call() for e in epochs) - chain.now())
    for kind, arg in after:
        moves[kind](arg)
        check()
    # Once both epochs gave back and every funder took its part, only rounding dust is left.
    for e in range(2):
        if epoch_books[e].stakes.get(me) and refundable(
            epoch_books[e].funded - epoch_books[e].paid,
            epoch_books[e].stakes[me],
            epoch_books[e].funded,
            epoch_books[e].refunds.get(me, 0),
        ):
            give_back(e)
    for funder in pool_stakes:
        if refundable(
            pool["unallocated"] + pool["refunded"],
            pool_stakes[funder],
            pool["funded"],
            pool_refunds.get(funder, 0),
        ):
            refund(chain.accounts.index(funder))
    check()
    assert pool["unallocated"] < len(pool_stakes)
    for b in epoch_books:
        assert b.funded - b.paid - b.refunded < max(1, len(b.stakes))
