"""Records built from user intent: revisions, closing, the acceptance epoch, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from node.api import actions
from node.api.actions import Conflict, NotFound
from node.chain.intents import intent_key
from node.errors import ContributionAnchored, EpochAnchored, NodeError
from node.keys import Identity
from protocol import (
    Acceptance,
    NotAuthorized,
    Profile,
    Project,
    ProjectClosed,
    Record,
    project_id,
)
from storage import Store
from tests.support import factories as f
from tests.support.nodes import running

NOW = f.T0 + 1000


def identity(name: str) -> Identity:
    return Identity(f.key(name), Account.from_key(f.key(name + " wallet").encode()))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as store:
        yield store


def put(store: Store, *records: object) -> None:
    result = store.ingest(records, now=NOW + 10_000)  # type: ignore[arg-type]
    assert not result.rejected and not result.orphaned


def test_profile_revisions_keep_what_is_not_given(store: Store) -> None:
    alice = identity("alice")
    with pytest.raises(NodeError, match="needs a name"):
        actions.set_profile(store, alice, now=NOW, skills=["python"])
    first = actions.set_profile(store, alice, now=NOW, name="Alice", skills=["Rust", "python"])
    body = first.expect(Profile)
    assert (body.revision, body.payout, body.skills) == (0, alice.address, ("python", "rust"))
    put(store, first)
    second = actions.set_profile(store, alice, now=NOW + 1, rate="50/h").expect(Profile)
    assert (second.revision, second.name, second.skills, second.rate) == (
        1,
        "Alice",
        ("python", "rust"),
        "50/h",
    )


def test_project_post_revise_and_close(store: Store) -> None:
    alice = identity("alice")
    with pytest.raises(NodeError, match="needs a title"):
        actions.post_project(store, alice, now=NOW, name="docs")
    posted = actions.post_project(
        store, alice, now=NOW, name="docs", title="Docs", skills=["writing"], epoch_length=60
    )
    body = posted.expect(Project)
    assert (body.revision, body.status, body.payout) == (0, "open", alice.address)
    put(store, posted)
    pid = project_id(alice.public_key, "docs")
    revised = actions.post_project(store, alice, now=NOW + 1, name="docs", description="More")
    assert revised.expect(Project).revision == 1
    assert revised.expect(Project).title == "Docs" and revised.expect(Project).epoch_length == 60
    put(store, revised)
    with pytest.raises(NotAuthorized):
        actions.close_project(store, identity("bob"), now=NOW + 2, project=pid)
    closing = actions.close_project(store, alice, now=NOW + 2, project=pid)
    assert (closing.expect(Project).revision, closing.expect(Project).status) == (2, "closed")
    put(store, closing)
    with pytest.raises(Conflict, match="closed already"):
        actions.close_project(store, alice, now=NOW + 3, project=pid)
    with pytest.raises(NotFound):
        actions.close_project(store, alice, now=NOW, project=b"\x01" * 32)


def test_acceptance_epoch_rule_and_revisions(store: Store) -> None:
    alice, bob = identity("alice"), identity("bob")
    clocked = actions.post_project(
        store, alice, now=NOW, name="clocked", title="C", epoch_length=60
    )
    manual = actions.post_project(store, alice, now=NOW, name="docs", title="D", epoch_length=0)
    put(store, clocked, manual)
    on_clock = actions.contribute(
        store,
        bob,
        now=NOW,
        project=project_id(alice.public_key, "clocked"),
        summary="s",
        evidence_uri="https://x",
    )
    assert on_clock.body.payout == bob.address  # type: ignore[attr-defined]
    on_demand = actions.contribute(
        store, bob, now=NOW, project=f.pid("alice", "docs"), summary="s", evidence_hash=b"h" * 32
    )
    put(store, on_clock, on_demand)
    # Clock-aligned epochs: epoch n covers [60 n, 60 (n + 1)).
    first = actions.accept(store, alice, now=NOW, contribution=on_clock.id, weight=5)
    assert first.expect(Acceptance).epoch == NOW // 60
    assert first.expect(Acceptance).revision == 0
    put(store, first)
    again = actions.accept(store, alice, now=NOW + 60, contribution=on_clock.id, weight=7)
    assert (again.expect(Acceptance).revision, again.expect(Acceptance).epoch) == (1, NOW // 60 + 1)
    # Owner-closed epochs: the first epoch after the last anchored one.
    assert (
        actions.accept(store, alice, now=NOW, contribution=on_demand.id, weight=1)
        .expect(Acceptance)
        .epoch
        == 0
    )
    anchor(store, "docs", 0)
    anchor(store, "docs", 3)
    assert (
        actions.accept(store, alice, now=NOW, contribution=on_demand.id, weight=1)
        .expect(Acceptance)
        .epoch
        == 4
    )
    assert (
        actions.accept(store, alice, now=NOW, contribution=on_demand.id, weight=1, epoch=9)
        .expect(Acceptance)
        .epoch
        == 9
    )
    with pytest.raises(NotAuthorized):
        actions.accept(store, bob, now=NOW, contribution=on_demand.id, weight=1)
    with pytest.raises(NotFound):
        actions.accept(store, alice, now=NOW, contribution=manual.id, weight=1)


def anchor(store: Store, name: str, epoch: int) -> Record:
    """Stores an anchored epoch of alice's project `name`, with a contribution of its own."""
    work = f.contribution("dave", name=name, summary=f"anchored in {epoch}")
    accepted = f.acceptance(work, epoch=epoch)
    put(store, work, accepted, *f.anchoring([accepted], [work], name=name, epoch=epoch))
    return work


def test_accept_goes_into_the_first_open_epoch_and_never_an_anchored_one(store: Store) -> None:
    alice, bob = identity("alice"), identity("bob")
    length = 60
    put(
        store, actions.post_project(store, alice, now=NOW, name="w", title="W", epoch_length=length)
    )
    work = actions.contribute(
        store, bob, now=NOW, project=f.pid("alice", "w"), summary="s", evidence_uri="https://x"
    )
    put(store, work)
    current = NOW // length

    def epoch_of(**given: int) -> int:
        made = actions.accept(store, alice, now=NOW, contribution=work.id, weight=1, **given)
        return made.expect(Acceptance).epoch

    assert epoch_of() == current
    # The current epoch anchored (a root from elsewhere: another node's clock, a revision of the
    # epoch length): the default moves past it, and naming it is refused.
    anchor(store, "w", current)
    anchor(store, "w", current + 1)
    assert epoch_of() == current + 2
    with pytest.raises(EpochAnchored, match=f"epoch {current} .* is anchored") as info:
        epoch_of(epoch=current)
    assert f"the first open epoch is {current + 2}" in str(info.value)
    assert epoch_of(epoch=current - 1) == current - 1  # closed, not anchored: still open
    # An epoch this node is anchoring (an intent recorded) is fixed too.
    store.state.put_intent(intent_key(f.pid("alice", "w"), current + 2), b"{}")
    assert epoch_of() == current + 3
    with pytest.raises(EpochAnchored):
        epoch_of(epoch=current + 2)
    # Owner-closed epochs: the epoch being anchored is skipped the same way.
    put(store, actions.post_project(store, alice, now=NOW, name="m", title="M", epoch_length=0))
    manual = actions.contribute(
        store, bob, now=NOW, project=f.pid("alice", "m"), summary="s", evidence_uri="https://x"
    )
    put(store, manual)
    store.state.put_intent(intent_key(f.pid("alice", "m"), 0), b"{}")
    made = actions.accept(store, alice, now=NOW, contribution=manual.id, weight=1)
    assert made.expect(Acceptance).epoch == 1


def test_an_anchored_contribution_cannot_be_accepted_again(store: Store) -> None:
    alice, carol = identity("alice"), identity("carol")
    put(store, f.project(reviewers=(carol.public_key,)))
    paid = anchor(store, "docs", 2)
    for who in (alice, carol):
        for weight in (0, 5):
            with pytest.raises(ContributionAnchored, match="paid by anchored epoch 2"):
                actions.accept(store, who, now=NOW, contribution=paid.id, weight=weight)


def test_reviewer_may_accept(store: Store) -> None:
    alice, carol = identity("alice"), identity("carol")
    posted = actions.post_project(
        store, alice, now=NOW, name="docs", title="D", reviewers=[carol.public_key]
    )
    work = f.contribution("bob")
    put(store, posted, work)
    verdict = actions.accept(store, carol, now=NOW, contribution=work.id, weight=3)
    put(store, verdict)
    assert store.acceptance_of(work.id) == verdict
    # Carol is removed: her acceptance stays stored but is no longer in force. The owner's
    # acceptance numbers its revision above hers, so it still wins once Carol is named again.
    removed = actions.post_project(store, alice, now=NOW + 1, name="docs", reviewers=[])
    put(store, removed)
    assert store.acceptance_of(work.id) is None
    own = actions.accept(store, alice, now=NOW + 2, contribution=work.id, weight=5)
    assert own.expect(Acceptance).revision == 1
    again = actions.post_project(
        store, alice, now=NOW + 3, name="docs", reviewers=[carol.public_key]
    )
    put(store, own, again)
    assert store.acceptance_of(work.id) == own


async def test_submit_refuses_contributions_to_a_closed_project(tmp_path: Path) -> None:
    alice, bob = identity("alice"), identity("bob")
    async with running(tmp_path / "n") as node:
        now = int(node.clock())
        posted = actions.post_project(node.store, alice, now=now, name="docs", title="Docs")
        await actions.submit(node, [posted])
        pid = project_id(alice.public_key, "docs")
        early = actions.contribute(
            node.store,
            bob,
            now=now,
            project=pid,
            summary="early",
            evidence_uri="https://example.org/w",
        )
        await actions.submit(node, [early])
        closing = actions.close_project(node.store, alice, now=now + 1, project=pid)
        await actions.submit(node, [closing])
        late = actions.contribute(
            node.store,
            bob,
            now=now + 2,
            project=pid,
            summary="late",
            evidence_uri="https://example.org/w",
        )
        with pytest.raises(ProjectClosed):
            await actions.submit(node, [late])
        assert not node.store.has(late.id)
        assert node.store.has(early.id)
        # A refusal by the store's rules is raised too: bob may not accept alice's work.
        forged = f.acceptance(early, "bob", created_at=now)
        with pytest.raises(NotAuthorized):
            await actions.submit(node, [forged])
        assert not node.store.has(forged.id)
