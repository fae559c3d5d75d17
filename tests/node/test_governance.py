"""Governance from the store: settings that passed decisions change, and lazy consensus on
acceptances, the same on every node whatever order the records reached it in."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
from eth_account import Account

from node.api.actions import close_project, contribute, post_project
from node.chain.client import ChainClient
from node.chain.settlement import Settlement
from node.chain.trees import stored_tree
from node.config import ChainConfig
from node.decisions import credits_of, decide, propose, settings_of
from node.errors import Conflict
from node.governance import effective_tree, executions, governance_of, owner_tree, verdicts
from node.keys import Identity
from node.outcomes import sign_decision
from protocol import Acceptance, EmptyTree, Project, ProjectClosed, Proposal, Record, sign
from protocol.epoch import listed, manifest_parts
from protocol.governance import DEFAULT_WINDOW
from protocol.tally import DEFAULTS, Settings
from storage import Store
from tests.support import factories as f
from tests.support.epochs import ingest as epochs_ingest
from tests.support.epochs import strict_node

WINDOW = 2 * 86_400
DAY = 86_400


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def governed(mode: str = "lazy", **changes: Any) -> Record:
    return f.project(governance=(mode, 200, 500, 0, WINDOW), **changes)


def base(project: Record) -> tuple[list[Record], Record]:
    """Epoch 0 anchored (bob 10, carol 20: the power), and dave's work accepted by the owner
    into open epoch 1 with weight 5 at T0 + 1000."""
    bob, carol, dave = f.contribution("bob"), f.contribution("carol"), f.contribution("dave")
    a_bob = f.acceptance(bob, weight=10, epoch=0)
    a_carol = f.acceptance(carol, weight=20, epoch=0)
    a_dave = f.acceptance(dave, weight=5, epoch=1, created_at=f.T0 + 1000)
    anchored = f.anchoring([a_bob, a_carol], [bob, carol], epoch=0)
    return [project, bob, carol, dave, a_bob, a_carol, a_dave, *anchored], dave


def passed(proposal: Record, *voters: str) -> list[Record]:
    return [proposal, *(f.vote(proposal, who) for who in voters)]


def accepting(work: Record, weight: int, *, at: int, epoch: int = 1) -> Record:
    return f.proposal(
        "carol",
        action="accept",
        params=(work.id, epoch, weight),
        created_at=at,
        closes_at=at + DAY,
    )


def changing(params: tuple[Any, ...], *, at: int, who: str = "carol") -> Record:
    return f.proposal(who, action="settings", params=params, created_at=at, closes_at=at + DAY)


# Every record of these tests is dated before this: the store's clock refuses none.
LATER = f.T0 + 60 * DAY


def ingest(store: Store, records: list[Record]) -> None:
    result = store.ingest(records, now=LATER)
    assert not result.rejected and not result.orphaned, result


def project_of(store: Store) -> Record:
    found = store.project(f.pid())
    assert found is not None
    return found


# Settings.


def test_a_project_record_without_governance_has_the_defaults(store: Store) -> None:
    records, _ = base(f.project())
    ingest(store, records)
    governance = governance_of(store, project_of(store), now=f.T0 + 100)
    assert (governance.mode, governance.settings, governance.window) == (
        "owner",
        DEFAULTS,
        DEFAULT_WINDOW,
    )
    assert governance.reviewers == () and governance.epoch_length == 86_400


def test_the_project_record_states_its_settings(store: Store) -> None:
    records, _ = base(f.project(governance=("lazy", 333, 666, 4, WINDOW)))
    ingest(store, records)
    assert settings_of(store, project_of(store), now=f.T0 + 100) == Settings(333, 666, 4)


def test_a_passed_settings_decision_takes_effect_when_it_closes(store: Store) -> None:
    records, _ = base(governed())
    change = changing((400, 700, 2, 3600, (f.pub("carol"),), "open"), at=f.T0 + 500)
    ingest(store, records + passed(change, "bob", "carol"))
    closes = change.expect(Proposal).closes_at
    project = project_of(store)
    assert settings_of(store, project, now=closes - 1) == Settings(200, 500, 0)
    after = governance_of(store, project, now=closes)
    assert (after.settings, after.epoch_length, after.reviewers) == (
        Settings(400, 700, 2),
        3600,
        (f.pub("carol"),),
    )
    # Still lazy (the decision left mode and window out), and it says which decision set it.
    assert (after.mode, after.window, after.decision, after.since) == (
        "lazy",
        WINDOW,
        change.id,
        closes,
    )


def test_a_settings_proposal_that_fails_changes_nothing(store: Store) -> None:
    records, _ = base(governed())
    change = changing((400, 700, 2, 3600, (), "open"), at=f.T0 + 500)
    # bob (10 of 30) says yes, carol (20) says no: rejected.
    ingest(store, [*records, change, f.vote(change, "bob"), f.vote(change, "carol", "no")])
    closes = change.expect(Proposal).closes_at
    assert governance_of(store, project_of(store), now=closes + DAY).decision is None


def test_in_owner_mode_a_later_revision_wins_and_in_lazy_mode_it_does_not(
    tmp_path: Path,
) -> None:
    change = changing((400, 700, 2, 3600, (), "open"), at=f.T0 + 500)
    closes = change.expect(Proposal).closes_at
    for mode, expected in (("owner", Settings(111, 500, 0)), ("lazy", Settings(400, 700, 2))):
        records, _ = base(governed(mode))
        # The owner revises the record after the decision closed, setting quorum 111.
        revision = governed(mode, revision=1, created_at=closes + 10)
        revision = sign(
            replace(revision.body, governance=(mode, 111, 500, 0, WINDOW)), f.key("alice")
        )
        with Store.open(tmp_path / mode) as store:
            ingest(store, records + passed(change, "bob", "carol") + [revision])
            assert settings_of(store, project_of(store), now=closes + 20) == expected, mode


def test_a_decision_can_move_a_project_from_owner_to_lazy_mode(store: Store) -> None:
    records, _ = base(f.project())
    change = changing((200, 500, 0, 86_400, (), "open", "lazy", WINDOW), at=f.T0 + 500)
    ingest(store, records + passed(change, "bob", "carol"))
    closes = change.expect(Proposal).closes_at
    assert governance_of(store, project_of(store), now=closes).mode == "lazy"
    assert governance_of(store, project_of(store), now=closes - 1).mode == "owner"


def test_a_proposal_is_counted_with_the_settings_of_when_it_was_made(store: Store) -> None:
    records, _ = base(governed())
    # A quorum of 100% passes while a signal proposal is open; bob alone (10 of 30) voted on
    # the signal, which the old quorum (20%) lets pass.
    change = changing((1000, 500, 0, 86_400, (), "open"), at=f.T0 + 500)
    question = f.proposal("bob", created_at=f.T0 + 600, closes_at=f.T0 + 600 + 2 * DAY)
    ingest(store, records + passed(change, "bob", "carol") + passed(question, "bob"))
    result = decide(store, question, now=f.T0 + 600 + 2 * DAY).tally
    assert result.settings == Settings(200, 500, 0) and result.passed
    later = f.proposal("bob", created_at=f.T0 + 500 + DAY + 1, closes_at=f.T0 + 600 + 3 * DAY)
    ingest(store, passed(later, "bob"))
    result = decide(store, later, now=f.T0 + 600 + 3 * DAY).tally
    assert result.settings == Settings(1000, 500, 0) and not result.passed


def test_a_project_closed_by_a_decision_takes_no_proposals_and_no_contributions(
    store: Store,
) -> None:
    records, _ = base(governed())
    change = changing((200, 500, 0, 86_400, (), "closed"), at=f.T0 + 500)
    ingest(store, records + passed(change, "bob", "carol"))
    closes = change.expect(Proposal).closes_at
    bob = Identity(f.key("bob"), Account.create())
    # Before it closes, both are fine.
    propose(store, bob, now=closes - 1, project=f.pid(), action="signal", title="still open?")
    contribute(store, bob, now=closes - 1, project=f.pid(), summary="x", evidence_uri="u")
    with pytest.raises(Conflict, match="closed"):
        propose(store, bob, now=closes, project=f.pid(), action="signal", title="open?")
    with pytest.raises(ProjectClosed, match="closed by a decision"):
        contribute(store, bob, now=closes, project=f.pid(), summary="x", evidence_uri="u")


def test_a_reviewer_removed_by_a_decision_no_longer_counts(store: Store) -> None:
    project = governed(reviewers=(f.pub("erin"),))
    records, dave = base(project)
    # erin, a reviewer, re-weighs dave's work to 7 after the owner's 5.
    by_erin = f.acceptance(dave, "erin", weight=7, epoch=1, revision=1, created_at=f.T0 + 1100)
    change = changing((200, 500, 0, 86_400, (), "open"), at=f.T0 + 1200)
    ingest(store, [*records, by_erin, *passed(change, "bob", "carol")])
    closes = change.expect(Proposal).closes_at
    assert verdicts(store, project_of(store), now=closes - 1)[dave.id].weight == 7
    assert verdicts(store, project_of(store), now=closes)[dave.id].weight == 5


# Lazy consensus on acceptances.


def _weight_of(store: Store, work: Record, now: int) -> int:
    tree = effective_tree(store, project_of(store), 1, now=now)
    return {leaf.contribution_id: leaf.weight for leaf in tree.leaves}[work.id]


def test_an_overturn_within_the_window_changes_the_tree(store: Store) -> None:
    records, dave = base(governed())
    overturn = accepting(dave, 50, at=f.T0 + 1000 + WINDOW - 1)
    ingest(store, records + passed(overturn, "bob", "carol"))
    closes = overturn.expect(Proposal).closes_at
    before = effective_tree(store, project_of(store), 1, now=closes - 1)
    after = effective_tree(store, project_of(store), 1, now=closes)
    assert before.root != after.root
    assert _weight_of(store, dave, closes - 1) == 5
    assert _weight_of(store, dave, closes) == 50
    judged = verdicts(store, project_of(store), now=closes)[dave.id]
    assert judged.decision == overturn and judged.acceptance is None


def test_a_proposal_made_after_the_window_does_not_overturn(store: Store) -> None:
    records, dave = base(governed())
    late = accepting(dave, 50, at=f.T0 + 1000 + WINDOW)
    ingest(store, records + passed(late, "bob", "carol"))
    closes = late.expect(Proposal).closes_at
    assert decide(store, late, now=closes).tally.passed
    assert _weight_of(store, dave, closes) == 5


def test_a_withdrawal_by_decision_removes_the_leaf(store: Store) -> None:
    records, dave = base(governed())
    withdraw = accepting(dave, 0, at=f.T0 + 1500)
    keep = f.contribution("erin")
    kept = f.acceptance(keep, weight=3, epoch=1)
    ingest(store, [*records, keep, kept, *passed(withdraw, "bob", "carol")])
    closes = withdraw.expect(Proposal).closes_at
    leaves = effective_tree(store, project_of(store), 1, now=closes).leaves
    assert [leaf.contribution_id for leaf in leaves] == [keep.id]


def test_in_owner_mode_a_passed_accept_decision_changes_nothing(store: Store) -> None:
    records, dave = base(governed("owner"))
    overturn = accepting(dave, 50, at=f.T0 + 1500)
    ingest(store, records + passed(overturn, "bob", "carol"))
    closes = overturn.expect(Proposal).closes_at
    assert decide(store, overturn, now=closes).tally.passed
    assert _weight_of(store, dave, closes) == 5
    assert executions(store, project_of(store), now=closes) == ()


def test_a_rejected_overturn_leaves_the_acceptance(store: Store) -> None:
    records, dave = base(governed())
    overturn = accepting(dave, 50, at=f.T0 + 1500)
    no = [f.vote(overturn, "bob"), f.vote(overturn, "carol", "no")]
    ingest(store, [*records, overturn, *no])
    assert _weight_of(store, dave, overturn.expect(Proposal).closes_at) == 5


def test_the_owner_executes_a_decision_and_the_stored_tree_becomes_the_effective_one(
    store: Store,
) -> None:
    records, dave = base(governed())
    overturn = accepting(dave, 50, at=f.T0 + 1500)
    ingest(store, records + passed(overturn, "bob", "carol"))
    closes = overturn.expect(Proposal).closes_at
    project = project_of(store)
    effective = effective_tree(store, project, 1, now=closes)
    assert stored_tree(store, project, 1).merkle.root != effective.root
    bodies = executions(store, project, now=closes)
    assert [(b.contribution_id, b.epoch, b.weight, b.revision) for b in bodies] == [
        (dave.id, 1, 50, 1)
    ]
    ingest(store, [sign(b, f.key("alice")) for b in bodies])
    assert stored_tree(store, project, 1).merkle.root == effective.root
    # The executed acceptance now stands (made after the decision closed): nothing left to do,
    # and the effective tree is unchanged.
    assert executions(store, project, now=closes + 1) == ()
    assert effective_tree(store, project, 1, now=closes + 1).root == effective.root
    assert verdicts(store, project, now=closes + 1)[dave.id].acceptance is not None


def history(mode: str = "lazy") -> tuple[list[Record], int]:
    """A lazy project with a settings decision (quorum, reviewers), an overturn, a late
    overturn, a rejected one, vote revisions, and an acceptance by a reviewer."""
    records, dave = base(governed(mode, reviewers=(f.pub("erin"),)))
    erin_work = f.contribution("erin")
    by_erin = f.acceptance(erin_work, "erin", weight=4, epoch=1, created_at=f.T0 + 1100)
    change = changing((300, 500, 0, 86_400, (f.pub("erin"),), "open"), at=f.T0 + 900)
    overturn = accepting(dave, 50, at=f.T0 + 1500)
    late = accepting(erin_work, 9, at=f.T0 + 1100 + WINDOW + 5)
    rejected = accepting(erin_work, 1, at=f.T0 + 1200)
    votes = [
        f.vote(overturn, "bob", "no"),
        f.vote(overturn, "bob", "yes", revision=1),
        f.vote(overturn, "carol"),
        f.vote(late, "carol"),
        f.vote(rejected, "carol", "no"),
        f.vote(rejected, "bob"),
        f.vote(change, "carol"),
    ]
    all_records = [*records, erin_work, by_erin, change, overturn, late, rejected, *votes]
    return all_records, late.expect(Proposal).closes_at


def _state(store: Store, now: int) -> tuple[Any, ...]:
    project = project_of(store)
    governance = governance_of(store, project, now=now)
    judged = {
        cid: (v.epoch, v.weight, v.acceptance and v.acceptance.id, v.decision and v.decision.id)
        for cid, v in verdicts(store, project, now=now).items()
    }
    try:
        root: bytes | None = effective_tree(store, project, 1, now=now).root
    except EmptyTree:
        root = None  # vote mode, before any decision closed
    return governance, judged, root


# The weights of every contribution that counts at the end.
EXPECTED = {"lazy": [4, 10, 20, 50], "vote": [9, 50]}


@pytest.mark.parametrize("mode", ["lazy", "vote"])
@pytest.mark.parametrize("seed", range(3))
def test_every_store_computes_the_same_effective_state_whatever_the_arrival_order(
    tmp_path: Path, seed: int, mode: str
) -> None:
    records, end = history(mode)
    states = []
    for copy in range(3):
        shuffled = records[:]
        random.Random(seed * 10 + copy).shuffle(shuffled)
        with Store.open(tmp_path / f"store-{copy}") as store:
            # In a few batches, so that orphans wait across calls too.
            for start in range(0, len(shuffled), 5):
                store.ingest(shuffled[start : start + 5], now=LATER)
            assert not store.is_orphan(records[-1].id)
            states.append([_state(store, now) for now in (f.T0 + 1600, end - DAY, end)])
    assert states[0] == states[1] == states[2]
    final_governance, final_verdicts, _ = states[0][-1]
    assert final_governance.quorum == 300
    weights = {cid: weight for cid, (_, weight, _, _) in final_verdicts.items()}
    # Lazy: bob and carol in epoch 0, erin 4 (the late overturn does not count), dave 50.
    # Vote: only decisions: dave 50 and erin 9 (no window in vote mode).
    assert sorted(weights.values()) == EXPECTED[mode]


# The credits cache.


def test_credits_follow_a_new_anchor(store: Store) -> None:
    records, dave = base(governed())
    ingest(store, records)
    project = project_of(store)
    assert {c.weight for c in credits_of(store, project, 1)} == {10, 20}
    assert credits_of(store, project, 1) == credits_of(store, project, 1)
    a_dave = [r for r in records if isinstance(r.body, Acceptance) and r.body.epoch == 1]
    ingest(store, f.anchoring(a_dave, [dave], epoch=1))
    assert {c.weight for c in credits_of(store, project, 1)} == {10, 20, 5}
    assert {c.weight for c in credits_of(store, project, 0)} == {10, 20}


# The owner's node anchors what governance says counts.


async def test_the_owner_node_anchors_what_a_passed_overturn_decided(tmp_path: Path) -> None:
    owner = Identity(f.key("alice"), Account.create())
    chain = ChainClient.embedded(owner.wallet, config=ChainConfig(poll_interval=0.05))
    project = f.project(
        payout=owner.address, epoch_length=0, governance=("lazy", 200, 500, 0, WINDOW)
    )
    records, dave = base(project)
    extra = f.contribution("erin")
    overturn = accepting(dave, 50, at=f.T0 + 1500)
    moved = accepting(extra, 8, at=f.T0 + 1500)  # nobody accepted erin's work: members do
    records += [extra, *passed(overturn, "bob", "carol"), *passed(moved, "bob", "carol")]
    closes = overturn.expect(Proposal).closes_at
    with trio.fail_after(30):
        async with strict_node(tmp_path / "n") as node:
            settle = Settlement(
                node, owner, chain, tmp_path / "n", auto_close=False, clock=lambda: closes + 10
            )
            await epochs_ingest(node, records, now=LATER)
            done = await settle.anchor(f.pid(), 1)
            assert (done.summary.leaf_count, done.summary.total_weight) == (2, 58)
            # The manifest lists the owner's acceptances that carry out the decisions.
            listed = await node.gateway.read(_listed, node.store, done.record)
            assert sorted((a.body.weight, a.body.revision) for a in listed) == [(8, 0), (50, 1)]
            assert all(a.author == owner.public_key for a in listed)
            # Done once: a second anchor call finds nothing left to carry out.
            assert await settle.execute(f.pid()) == ()


def _listed(store: Store, root: Record) -> list[Any]:
    project = store.project(f.pid())
    assert project is not None
    found = []
    for aid in listed(manifest_parts(root, project, store.get)):
        acceptance = store.get(aid)
        assert acceptance is not None
        found.append(acceptance)
    return found


def test_a_reviewer_a_settings_proposal_names_is_stored_and_counts_once_it_passes(
    tmp_path: Path,
) -> None:
    records, _ = base(governed())
    erin_work = f.contribution("erin")
    by_frank = f.acceptance(erin_work, "frank", weight=6, epoch=1, created_at=f.T0 + 1100)
    change = changing((200, 500, 0, 86_400, (f.pub("frank"),), "open"), at=f.T0 + 1200)
    closes = change.expect(Proposal).closes_at
    every = [*records, erin_work, by_frank, *passed(change, "bob", "carol")]
    for seed in range(3):
        shuffled = every[:]
        random.Random(seed).shuffle(shuffled)
        with Store.open(tmp_path / f"s{seed}") as store:
            store.ingest(shuffled, now=LATER)  # one call: frank's acceptance waits for it
            assert store.has(by_frank.id)
            assert not store.check()
            judged = verdicts(store, project_of(store), now=closes)
            assert judged[erin_work.id].acceptance == by_frank
            assert erin_work.id not in verdicts(store, project_of(store), now=closes - 1)
    # Before any record names frank, his acceptance is refused (sync offers it again later).
    with Store.open(tmp_path / "early") as store:
        ingest(store, [*records, erin_work])
        assert store.ingest([by_frank], now=LATER).rejected
        ingest(store, passed(change, "bob", "carol"))
        ingest(store, [by_frank])
        assert not store.check()


async def test_an_epoch_length_a_decision_sets_closes_epochs(tmp_path: Path) -> None:
    owner = Identity(f.key("alice"), Account.create())
    chain = ChainClient.embedded(owner.wallet, config=ChainConfig(poll_interval=0.05))
    # Epochs close on the owner's command only, until the members set an hour.
    project = f.project(payout=owner.address, epoch_length=0)
    records, _ = base(project)
    change = changing((200, 500, 0, 3600, (), "open"), at=f.T0 + 1200)
    closes = change.expect(Proposal).closes_at
    with trio.fail_after(30):
        async with strict_node(tmp_path / "n") as node:
            await epochs_ingest(node, [*records, *passed(change, "bob", "carol")], now=LATER)
            before = Settlement(node, owner, chain, tmp_path / "n", clock=lambda: closes - 1)
            assert await before.close_due() == []
            after = Settlement(node, owner, chain, tmp_path / "n", clock=lambda: closes)
            closed = await after.close_due()
            # Epoch 1 (dave's) ended long ago in hours since 1970; epoch 0, anchored on another
            # chain, is anchored here too, with its manifest.
            assert sorted(a.epoch for a in closed) == [0, 1]
            assert after.errors == []


# Vote mode: only decisions accept.


def test_in_vote_mode_only_decisions_accept_and_the_owner_carries_them_out(
    store: Store,
) -> None:
    records, dave = base(governed("vote"))
    unjudged = f.contribution("erin")
    by_owner = f.acceptance(unjudged, weight=3, epoch=1)  # no decision backs it
    # Proposed long after the owner's acceptance of dave's work: no window in vote mode.
    decision = accepting(dave, 40, at=f.T0 + 1000 + 30 * DAY)
    ingest(store, [*records, unjudged, by_owner, *passed(decision, "bob", "carol")])
    closes = decision.expect(Proposal).closes_at
    project = project_of(store)
    # Before it closes, nothing of epoch 1 counts: the owner's acceptances alone do not.
    assert dave.id not in verdicts(store, project, now=closes - 1)
    assert unjudged.id not in verdicts(store, project, now=closes)
    judged = verdicts(store, project, now=closes)[dave.id]
    assert (judged.weight, judged.decision, judged.acceptance) == (40, decision, None)
    bodies = executions(store, project, now=closes)
    assert [(b.contribution_id, b.weight) for b in bodies] == [(dave.id, 40)]
    ingest(store, [sign(b, f.key("alice")) for b in bodies])
    # Carried out: the decision still decides, the new acceptance states it, and the tree the
    # owner anchors holds dave's work alone.
    judged = verdicts(store, project, now=closes + 1)[dave.id]
    assert judged.decision == decision and judged.acceptance is not None
    assert executions(store, project, now=closes + 1) == ()
    tree = owner_tree(store, project, 1, now=closes + 1)
    assert tree is not None and [leaf.weight for leaf in tree.merkle.leaves] == [40]
    assert tree.acceptances == (judged.acceptance.id,)


def test_in_lazy_mode_the_owner_cannot_close_the_project_alone(store: Store) -> None:
    records, _ = base(governed())
    ingest(store, records)
    alice = Identity(f.key("alice"), Account.create())
    with pytest.raises(Conflict, match="only a passed settings decision closes it"):
        close_project(store, alice, now=f.T0 + 2000, project=f.pid())
    # In owner mode the owner closes it by a revision, as before.
    with Store.open(store.path.parent / "owner") as other:
        records, _ = base(governed("owner"))
        ingest(other, records)
        closing = close_project(other, alice, now=f.T0 + 2000, project=f.pid())
        assert closing.expect(Project).status == "closed"


def test_in_lazy_mode_a_revision_may_not_change_what_decisions_govern(store: Store) -> None:
    records, _ = base(governed())
    ingest(store, records)
    alice = Identity(f.key("alice"), Account.create())
    now = f.T0 + 2000
    for change in (
        {"epoch_length": 60},
        {"reviewers": [f.pub("erin")]},
        {"governance": ("owner", 200, 500, 0, WINDOW)},
    ):
        with pytest.raises(Conflict, match="only a passed settings decision changes"):
            post_project(store, alice, now=now, name="docs", **change)  # type: ignore[arg-type]
    # What governance does not cover, and values left as they are, may be revised.
    revised = post_project(
        store, alice, now=now, name="docs", title="New title", epoch_length=86_400
    )
    assert revised.expect(Project).title == "New title"


def test_a_vote_backdated_after_the_decision_changes_no_setting(store: Store) -> None:
    records, _ = base(governed())
    change = changing((400, 700, 2, 3600, (), "open"), at=f.T0 + 500)
    ingest(store, records + passed(change, "bob", "carol"))  # 10 + 20 yes
    closes = change.expect(Proposal).closes_at
    owner = Identity(f.key("alice"), Account.create())
    ingest(store, [sign_decision(store, owner, change, now=closes + 120)])
    assert settings_of(store, project_of(store), now=closes + 120) == Settings(400, 700, 2)
    # Carol turns to no after the decision, dated back inside the window. Counted, her 20
    # against bob's 10 would reject the change; the decision's ballots are what count.
    ingest(store, [f.vote(change, "carol", "no", revision=1)])
    assert settings_of(store, project_of(store), now=closes + 200) == Settings(400, 700, 2)
