"""Order does not matter: any order and any split into calls gives the same store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    Acceptance,
    Contribution,
    EpochRoot,
    Manifest,
    Profile,
    Project,
    ProtocolError,
    Record,
)
from protocol.epoch import leaves
from protocol.merkle import Leaf
from protocol.records import project_id
from protocol.validate import (
    MAX_SKEW,
    check,
    check_acceptance,
    check_epoch_root,
    check_manifest,
    ever_authorized,
    latest,
    latest_authorized,
)
from storage import Store, keys
from tests.support import factories as f
from tests.support.factories import T0

# Slow (hypothesis runs of whole stores): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow


def _keys(*names: str) -> tuple[bytes, ...]:
    return tuple(sorted(f.pub(name) for name in names))


def _pool() -> list[Record]:
    """Records that exercise every rule, revision and orphan path, valid or not.

    Project revisions add and remove reviewers and close the project, so that whose acceptance
    counts changes with the revision in force.
    """
    carol = _keys("carol")
    w1 = f.contribution("bob", summary="w1")
    w2 = f.contribution("carol", summary="w2")
    w3 = f.contribution("dave", "bob", "code", summary="w3")
    w4 = f.contribution("bob", "bob", "code", summary="w4")
    ghost = f.contribution("bob", "alice", "ghost", summary="never posted")
    # Docs epoch 0 anchored with two acceptances, in two parts; code epoch 2 with one.
    by_alice = f.acceptance(w1, weight=10)
    withdrawn = f.acceptance(w1, revision=2, epoch=1, weight=0)
    on_w2 = f.acceptance(w2, epoch=0, weight=3)
    on_w3 = f.acceptance(w3, "bob", epoch=2, weight=1)
    docs = f.anchoring([by_alice, on_w2], [w1, w2], per_part=1)
    code = f.anchoring([on_w3], [w3], "bob", "code", epoch=2)
    (bad_part,) = f.manifest([withdrawn], epoch=1)  # lists a withdrawal: refused
    return [
        f.project(reviewers=carol),
        f.project(revision=1, title="Docs, revised", reviewers=()),  # carol removed
        f.project(revision=1, title="Docs, revised again", reviewers=_keys("carol", "dave")),
        f.project(revision=2, status="closed", created_at=T0 + 1000, reviewers=_keys("dave")),
        f.project("bob", "code"),
        w1,
        w2,
        w3,
        w4,
        ghost,
        by_alice,
        f.acceptance(w1, "carol", revision=1, epoch=1, weight=5),
        withdrawn,
        on_w2,
        f.acceptance(w2, "carol", epoch=0, weight=4),
        on_w3,
        f.acceptance(w3, "mallory"),  # not authorized by any revision
        f.acceptance(w4, "alice"),  # alice does not own "code"
        f.acceptance(w3, project_id=f.pid()),  # names docs, but w3 is code's
        f.acceptance(ghost),  # waits forever
        f.acceptance(w2, "dave", revision=1, epoch=2, weight=6),
        docs[-1],
        code[-1],
        f.epoch_root("bob", project_id=f.pid(), manifest=docs[0].id, parts=2, leaf_count=2),
        f.profile("bob"),
        f.profile("bob", revision=1, name="Robert"),
        f.profile("carol", rate="a"),
        f.profile("carol", rate="b"),
        f.profile("dave", created_at=NOW + MAX_SKEW + 1),  # from the future
        *docs[:-1],
        *code[:-1],
        bad_part,
        f.epoch_root(epoch=1, manifest=bad_part.id),  # waits for a part that is refused
    ]


def _reviewer_pool() -> list[Record]:
    """A project whose revisions add and remove reviewers, and acceptances by all of them."""
    revisions = [
        f.project(reviewers=_keys("carol")),
        f.project(revision=1, reviewers=_keys("carol", "dave")),
        f.project(revision=2, reviewers=_keys("dave")),  # carol removed
        f.project(revision=3, reviewers=_keys("erin")),  # dave removed, erin added
        f.project(revision=3, title="Tie", reviewers=_keys("carol")),  # the same revision
    ]
    w1, w2, w3 = (f.contribution(who) for who in ("bob", "dave", "erin"))
    return [
        *revisions,
        w1,
        w2,
        w3,
        f.acceptance(w1, weight=10),
        f.acceptance(w1, "carol", revision=1, epoch=1, weight=20),
        f.acceptance(w1, "dave", revision=2, weight=0),
        f.acceptance(w1, "erin", epoch=2, weight=5),
        f.acceptance(w2, "carol", weight=3),
        f.acceptance(w2, "dave", weight=4),
        f.acceptance(w2, "mallory", revision=9, weight=9),  # never named
        f.acceptance(w3, "erin", revision=1, epoch=1, weight=7),
        f.acceptance(w3, epoch=2, weight=1),
        f.acceptance(w3, "carol", revision=4, epoch=1, weight=2),
    ]


NOW = T0 + 1000
POOL = _pool()
REVIEWERS = _reviewer_pool()


def state(store: Store) -> tuple[dict[bytes, bytes], set[bytes]]:
    """Everything in the store, except orphans' arrival numbers, which follow arrival order."""
    rows = dict(store._db.iterator())
    arrivals = {k[9:] for k in rows if k[:1] == keys.ARRIVAL}
    return {k: v for k, v in rows.items() if k[:1] != keys.ARRIVAL}, arrivals


def ingest_in_calls(path: Path, records: list[Record], sizes: list[int]) -> Store:
    store = Store.open(path)
    start = 0
    for size in sizes:
        store.ingest(records[start : start + size], now=NOW)
        start += size
    store.ingest(records[start:], now=NOW)
    return store


def reference(pool: list[Record], records: list[Record]) -> tuple[dict[bytes, bytes], set[bytes]]:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp)) as store:
        store.ingest(sorted(set(records), key=pool.index), now=NOW)
        assert store.check() == ()
        return state(store)


def model(records: list[Record]) -> tuple[set[bytes], dict[bytes, Record]]:
    """What the rules of `protocol.validate` store, and the acceptances in force they count.

    Computed from the records alone, with no store: the ids stored, and the acceptance in force
    of each contribution.
    """
    given = {r.id: r for r in records if _on_time(r)}
    revisions: dict[bytes, list[Record]] = {}
    for r in given.values():
        if isinstance(r.body, Project):
            revisions.setdefault(project_id(r.author, r.body.name), []).append(r)
    stored = {r.id for r in given.values() if isinstance(r.body, Project | Profile)}
    for r in given.values():
        if isinstance(r.body, Contribution) and r.body.project_id in revisions:
            stored.add(r.id)
    in_force: dict[bytes, Record] = {}
    for pid, posted in revisions.items():
        accepted = []
        for r in given.values():
            body = r.body
            if not isinstance(body, Acceptance) or body.project_id != pid:
                continue
            if body.contribution_id not in stored:
                continue
            try:
                check_acceptance(r, posted[0], given[body.contribution_id])
            except ProtocolError:
                continue
            if ever_authorized(r.author, posted):
                stored.add(r.id)
                accepted.append(r)
        in_force.update(latest_authorized(latest(posted)[("project", pid)], accepted))
    # Manifest parts once the next part and their acceptances are stored; roots once part 0 is.
    changed = True
    while changed:
        changed = False
        for r in given.values():
            body = r.body
            if r.id in stored or not isinstance(body, Manifest | EpochRoot):
                continue
            if body.project_id not in revisions:
                continue
            try:
                if isinstance(body, EpochRoot):
                    if body.manifest not in stored:
                        continue
                    check_epoch_root(r, revisions[body.project_id][0], given[body.manifest])
                else:
                    if (body.next and body.next not in stored) or not all(
                        a in stored for a in body.acceptances
                    ):
                        continue
                    following = given[body.next] if body.next else None
                    listed = [given[a] for a in body.acceptances]
                    check_manifest(r, revisions[body.project_id][0], following, listed)
            except ProtocolError:
                continue
            stored.add(r.id)
            changed = True
    return stored, in_force


def committed(records: list[Record], stored: set[bytes]) -> set[tuple[bytes, int, bytes]]:
    """The (contribution, epoch, acceptance) triples that the manifests of stored roots list."""
    by_id = {r.id: r for r in records}
    found = set()
    for r in records:
        if r.id in stored and isinstance(r.body, EpochRoot):
            wanted = r.body.manifest
            while wanted:
                part = by_id[wanted].expect(Manifest)
                for aid in part.acceptances:
                    verdict = by_id[aid].expect(Acceptance)
                    found.add((verdict.contribution_id, r.body.epoch, aid))
                wanted = part.next
    return found


def _on_time(record: Record) -> bool:
    try:
        check(record, now=NOW)
    except ProtocolError:
        return False
    return True


def check_against_the_model(store: Store, records: list[Record]) -> None:
    """The store holds what the rules store and counts what they count, trees included."""
    stored, in_force = model(records)
    assert {r.id for r in records if store.has(r.id)} == stored
    works = {r.id: r for r in records if r.id in stored and isinstance(r.body, Contribution)}
    for work in works.values():
        assert store.acceptance_of(work.id) == in_force.get(work.id)
    paid = committed(records, stored)
    for work in works.values():
        expected = {(epoch, aid) for cid, epoch, aid in paid if cid == work.id}
        assert set(store.committed_of(work.id)) == expected
    accepted = [r for r in records if r.id in stored and isinstance(r.body, Acceptance)]
    for pid in {w.expect(Contribution).project_id for w in works.values()}:
        project = store.project(pid)
        assert project is not None
        mine = [a for a in accepted if a.expect(Acceptance).project_id == pid]
        for epoch in range(3):
            # The epoch's tree as an auditor computes it from every stored acceptance.
            tree = set(leaves(project, mine, works, epoch))
            found = store.acceptances(pid, epoch).items
            assert {_leaf(a, works) for a in found} == tree


def _leaf(acceptance: Record, works: dict[bytes, Record]) -> Leaf:
    body = acceptance.expect(Acceptance)
    payout = works[body.contribution_id].expect(Contribution).payout
    return Leaf(body.contribution_id, payout, body.weight)


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(st.sampled_from(POOL), max_size=40),
    sizes=st.lists(st.integers(0, 10), max_size=8),
)
def test_any_order_and_split_give_the_same_store(records: list[Record], sizes: list[int]) -> None:
    converge(POOL, records, sizes)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(st.sampled_from(REVIEWERS), max_size=30),
    sizes=st.lists(st.integers(0, 6), max_size=8),
)
def test_reviewers_added_and_removed_in_any_order(records: list[Record], sizes: list[int]) -> None:
    converge(REVIEWERS, records, sizes)


def converge(pool: list[Record], records: list[Record], sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ingest_in_calls(Path(tmp), records, sizes)
        with store:
            assert store.check() == ()
            # An acceptance whose author no revision held yet named was rejected; sync offers
            # it again (as it offers every record the peer holds and this store lacks).
            store.ingest(records, now=NOW)
            assert store.check() == ()
            after = state(store)
            assert after == reference(pool, records)
            check_against_the_model(store, records)
            # Ingesting everything again changes nothing.
            store.ingest(records, now=NOW)
            assert state(store) == after


@settings(max_examples=100, deadline=None)
@given(st.permutations(REVIEWERS))
def test_one_call_in_any_order_gives_the_same_store(records: list[Record]) -> None:
    # Within one call nothing is rejected for want of a revision that comes later in the call.
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp)) as store:
        result = store.ingest(records, now=NOW)
        assert len(result.rejected) == 1  # mallory's
        assert state(store) == reference(REVIEWERS, REVIEWERS)
        check_against_the_model(store, records)


def test_the_whole_pool(store: Store) -> None:
    result = store.ingest(reversed(POOL), now=NOW)
    assert len(result.rejected) == 6
    assert result.orphaned == (POOL[-1].id, POOL[19].id, POOL[9].id)
    stored = [r for r in POOL if store.has(r.id)]
    assert len(stored) == len(POOL) - 6 - 3
    # What is in force is what protocol.validate.latest says of the stored records.
    for (kind, subject), record in latest(stored).items():
        if kind == "acceptance":
            continue
        found = {"project": store.project, "profile": store.profile}[kind](subject)
        assert found == record
    check_against_the_model(store, POOL)
    # The revision in force names dave only: carol's acceptances are stored but do not count.
    assert store.acceptance_of(POOL[5].id) == POOL[12]
    assert store.acceptance_of(POOL[6].id) == POOL[20]
    assert [r.id for r in store.acceptances(f.pid(), 2).items] == [POOL[20].id]
    assert store.acceptances(f.pid(), 0).items == ()
    assert store.acceptances(f.pid(), 1).items == ()
    # Docs epoch 0 is anchored with alice's acceptances of w1 and w2, whatever is in force now.
    assert store.committed_of(POOL[5].id) == ((0, POOL[10].id),)
    assert store.committed_of(POOL[6].id) == ((0, POOL[13].id),)
    assert store.anchored(f.pid(), 0) and not store.anchored(f.pid(), 1)
    assert store.check() == ()
