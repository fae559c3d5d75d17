"""Decisions travel like every record: sync brings a node the whole history, gossip a new
decision, and every node then gives the decision's result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from node.outcomes import outcome
from protocol import Proposal
from tests.node.test_decisions import history
from tests.support import factories as f
from tests.support.nodes import has_all, running, wait_for


async def test_a_decision_reaches_a_peer_by_gossip_after_the_history_by_sync(
    dirs: Callable[[str], Path],
) -> None:
    records, question, _ = history()
    votes = [r for r in records if r.kind == "vote" and r.body.proposal_id == question.id]
    # bob's last revision (yes, 15) and carol's yes (20); dave has no anchored work.
    power = {f.pub("bob"): 15, f.pub("carol"): 20}
    decided = f.decision(question, votes, power)
    closes = question.expect(Proposal).closes_at
    with trio.fail_after(60):
        async with running(dirs("a"), role="bootstrap") as a:
            a.store.ingest(records, now=a.clock())
            async with running(dirs("b"), role="bootstrap", bootstrap=(a.addrs()[0],)) as b:
                await wait_for(has_all(b, [r.id for r in records]), timeout=40)
                assert not outcome(b.store, question, now=closes).final
                result = await a.submit([decided])
                assert result.added == (decided.id,)
                await wait_for(has_all(b, [decided.id]), timeout=20)
                seen = outcome(b.store, question, now=closes)
                assert seen.final and seen.valid and seen.record == decided
                t = seen.decision.tally
                assert (t.total, t.yes, t.no, t.passed) == (35, 35, 0, True)
