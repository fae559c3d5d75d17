"""Validation rules: the clock, authority, references and revisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import FromTheFuture, NotAuthorized, ProjectClosed, ReferenceMismatch, UnknownKind
from protocol.validate import (
    MAX_SKEW,
    Ref,
    authorized,
    check,
    check_acceptance,
    check_authorized,
    check_contribution,
    check_epoch_root,
    check_open,
    dependencies,
    ever_authorized,
    latest,
    latest_authorized,
    slot,
    subject_project,
    supersedes,
)
from tests.support import factories as f
from tests.support.factories import T0


def test_clock_skew() -> None:
    record = f.profile(created_at=T0)
    check(record, now=T0 - MAX_SKEW)  # exactly at the limit
    check(record, now=T0 + 10**6)  # old records are fine
    with pytest.raises(FromTheFuture, match="in the future"):
        check(record, now=T0 - MAX_SKEW - 1)


def test_dependencies_and_subject() -> None:
    work = f.contribution()
    accepted = f.acceptance(work)
    assert dependencies(f.profile()) == ()
    assert dependencies(f.project()) == ()
    assert dependencies(work) == (Ref("project", f.pid()),)
    assert dependencies(accepted) == (Ref("project", f.pid()), Ref("contribution", work.id))
    assert dependencies(f.epoch_root()) == (
        Ref("project", f.pid()),
        Ref("manifest", b"\x03" * 32),
    )
    first, last = f.manifest([accepted, f.acceptance(f.contribution("carol"))], per_part=1)
    (listed_first,) = first.body.acceptances  # type: ignore[attr-defined]
    assert dependencies(first) == (
        Ref("project", f.pid()),
        Ref("manifest", last.id),
        Ref("acceptance", listed_first),
    )
    assert dependencies(last)[:1] == (Ref("project", f.pid()),) and len(dependencies(last)) == 2
    assert subject_project(first) == f.pid()
    assert subject_project(f.project()) == f.pid()
    assert subject_project(accepted) == f.pid()
    assert subject_project(f.profile()) is None


def test_acceptance_by_owner_and_reviewer() -> None:
    posting = f.project(reviewers=(f.pub("carol"),))
    dropped = f.project(revision=1)
    work = f.contribution()
    for signer in ("alice", "carol", "mallory"):
        # Who signed is not a question of references: the answer changes with revisions.
        check_acceptance(f.acceptance(work, signer), posting, work)
    assert authorized(f.pub("alice"), posting) and authorized(f.pub("alice"), dropped)
    assert authorized(f.pub("carol"), posting)
    assert not authorized(f.pub("mallory"), posting)
    # A reviewer dropped in a later revision no longer counts...
    assert not authorized(f.pub("carol"), dropped)
    check_authorized(f.acceptance(work, "carol"), posting)
    with pytest.raises(NotAuthorized, match="neither the owner nor a reviewer"):
        check_authorized(f.acceptance(work, "carol"), dropped)
    with pytest.raises(ReferenceMismatch):
        check_authorized(f.acceptance(work, "alice"), f.project(name="other"))
    # ... but was named once, so their acceptances are still stored.
    assert ever_authorized(f.pub("carol"), [dropped, posting])
    assert ever_authorized(f.pub("alice"), [dropped])
    assert not ever_authorized(f.pub("mallory"), [dropped, posting])
    assert not ever_authorized(f.pub("carol"), [])


def test_latest_authorized_counts_only_what_the_revision_in_force_authorizes() -> None:
    work, other = f.contribution(), f.contribution("dave")
    by_alice = f.acceptance(work, weight=1)
    by_carol = f.acceptance(work, "carol", revision=1, weight=2)
    by_dave = f.acceptance(other, "dave", weight=3)
    records = [by_carol, by_dave, by_alice]
    with_carol = f.project(reviewers=(f.pub("carol"),))
    assert latest_authorized(with_carol, records) == {work.id: by_carol}
    assert latest_authorized(f.project(revision=1), records) == {work.id: by_alice}
    both = f.project(revision=2, reviewers=tuple(sorted((f.pub("carol"), f.pub("dave")))))
    assert latest_authorized(both, reversed(records)) == {work.id: by_carol, other.id: by_dave}


def test_acceptance_references() -> None:
    posting = f.project()
    work = f.contribution()
    other_work = f.contribution(summary="other work")
    with pytest.raises(ReferenceMismatch, match="names contribution"):
        check_acceptance(f.acceptance(work), posting, other_work)
    # Mallory's project of the same name is another project.
    with pytest.raises(ReferenceMismatch, match="refers to project"):
        check_acceptance(f.acceptance(work), f.project("mallory"), work)
    # The acceptance names alice's project, the contribution is for another one.
    elsewhere = f.contribution(name="other")
    lying = f.acceptance(elsewhere, project_id=f.pid())
    with pytest.raises(ReferenceMismatch, match="not in"):
        check_acceptance(lying, posting, elsewhere)
    with pytest.raises(UnknownKind):
        check_acceptance(f.acceptance(work), work, work)


def test_contribution_to_closed_project() -> None:
    work = f.contribution(created_at=T0 + 100)
    closed = f.project(status="closed", revision=1, created_at=T0 + 100)
    check_open(work, f.project(status="open"))
    check_open(work, f.project(status="closed", revision=1, created_at=T0 + 101))
    with pytest.raises(ProjectClosed):
        check_open(work, closed)
    # Closing is not a storage rule: it would depend on arrival order.
    check_contribution(work, closed)
    for check_fn in (check_open, check_contribution):
        with pytest.raises(ReferenceMismatch):
            check_fn(work, f.project(name="other"))


def test_epoch_root_only_from_owner() -> None:
    posting = f.project(reviewers=(f.pub("carol"),))
    check_epoch_root(f.epoch_root(), posting)
    forged = f.epoch_root(owner="carol", project_id=f.pid())
    with pytest.raises(NotAuthorized):
        check_epoch_root(forged, posting)


def test_slots() -> None:
    work = f.contribution()
    assert slot(f.profile()) == ("profile", f.pub("alice"))
    assert slot(f.project()) == ("project", f.pid())
    assert slot(f.acceptance(work)) == ("acceptance", work.id)
    assert slot(work) is None
    assert slot(f.epoch_root()) is None


def test_higher_revision_wins_then_higher_id() -> None:
    old = f.profile(revision=1, name="Old")
    new = f.profile(revision=2, name="New", created_at=T0 - 100)  # clocks do not decide
    assert supersedes(new, old) and not supersedes(old, new)
    a, b = f.profile(revision=3, name="A"), f.profile(revision=3, name="B")
    high, low = (a, b) if a.id > b.id else (b, a)
    assert supersedes(high, low) and not supersedes(low, high)
    assert not supersedes(a, a)


@given(st.permutations(list(range(6))))
def test_latest_does_not_depend_on_arrival_order(order: list[int]) -> None:
    work = f.contribution()
    records = [
        f.profile(revision=0),
        f.profile(revision=4, name="Four"),
        f.profile(revision=4, name="Vier"),
        f.acceptance(work, weight=1, revision=0),
        f.acceptance(work, weight=5, revision=2),
        work,
    ]
    current = latest(records[i] for i in order)
    four = max(records[1:3], key=lambda r: r.id)
    assert current == {("profile", f.pub("alice")): four, ("acceptance", work.id): records[4]}
