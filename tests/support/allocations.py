"""A proposal to allocate pool funds, the members' votes, and a settlement service whose clock
stands after the window: what the execution tests (in process and across kill -9) share."""

from __future__ import annotations

from node.chain.client import ETHER as ETHER_TOKEN
from node.chain.client import ChainClient
from node.keys import Identity
from protocol import Proposal, Record
from tests.support import factories as f

ETHER = 10**18
AMOUNT = ETHER // 2
# Settle time of the tests' chain config (seconds after the window before the owner decides).
SETTLE = 5.0


def proposal() -> Record:
    """Bob proposes to move AMOUNT of the pool in ether to epoch 0 (records(owner) anchors it:
    carol holds power 4, bob 2)."""
    return f.proposal(
        "bob",
        action="allocate",
        params=(0, ETHER_TOKEN, str(AMOUNT)),
        title="Pay epoch 0 from the pool",
    )


def votes(question: Record) -> list[Record]:
    return [f.vote(question, "carol", "yes"), f.vote(question, "bob", "yes")]


def after(question: Record) -> float:
    """A time at which the proposal's decision is due."""
    return question.expect(Proposal).closes_at + SETTLE + 1


def fund_pool(chain: ChainClient, owner: Identity, amount: int = ETHER) -> None:
    """Pays `amount` of ether into the pool of alice's test project from the chain client's
    wallet (the owner's, in these tests)."""
    chain.transact(chain.sign_fund_pool(owner.address, f.pid(), amount))


def allocations(chain: ChainClient, owner: bytes) -> list[tuple[int, int]]:
    """(epoch, amount) of every allocation of the project's pools on chain."""
    return [(a.epoch, a.amount) for a in chain.allocations(owner, f.pid())]
