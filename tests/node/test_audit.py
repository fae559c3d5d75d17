"""Audits of anchored epochs: a real LevelDB store, a real EVM (eth-tester, and anvil if installed).

Each test works on a project of its own, so that the epochs it anchors never meet another
test's on the shared chain. `Epoch` (also used by test_proof.py) ingests a project's records,
builds the tree from the store as the anchoring node would, anchors it from the project's payout
address and stores the owner's signed epoch root.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
from web3 import Web3

from node.chain.audit import AuditError, AuditReport, Kind, audit_epoch
from node.chain.client import ChainClient
from protocol.epoch import Summary
from protocol.merkle import Leaf, MerkleTree
from storage import Store, keys
from tests.support import epochs
from tests.support import factories as f
from tests.support.epochs import OWNER, Epoch, anchored, forged

# The fixtures of anchored epochs: a chain per backend, a fresh store, a project name per test.
chain = epochs.chain
store = epochs.store
name = epochs.name


def kinds(report: AuditReport) -> list[Kind]:
    return sorted(finding.kind for finding in report.findings)


REPORT_KEYS = {
    "ok",
    "project_id",
    "epoch",
    "owner",
    "leaves",
    "total_weight",
    "root",
    "records_checked",
    "chain",
    "epoch_roots",
    "manifest_of",
    "late",
    "dump_root",
    "pools",
    "allocations",
    "findings",
}
FINDING_KEYS = {"kind", "message", "record", "contribution", "source", "field", "expected", "found"}


def test_clean_epoch(store: Store, chain: ChainClient, name: str) -> None:
    epoch = anchored(store, chain, name)
    built = epoch.tree()
    report = epoch.audit(built.dump())
    assert report.ok, report.summary()
    assert report.local == Summary(built.root, 5, 15)
    assert report.anchor is not None and report.anchor.root == built.root
    assert report.dump_root == built.root
    # The project, five contributions, five acceptances, the epoch root and its manifest.
    assert report.records == 13
    assert report.manifest is not None and report.late == ()
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == REPORT_KEYS
    # No pool was funded: none is reported, and there is no allocation to check.
    assert (data["pools"], data["allocations"]) == ([], [])
    assert data["ok"] is True and data["leaves"] == 5 and data["total_weight"] == 15
    assert data["root"] == "0x" + built.root.hex()
    assert data["chain"]["chain_id"] == chain.chain_id
    assert data["chain"]["anchor"]["tx_hash"] == "0x" + report.anchor.tx_hash.hex()
    assert report.summary().splitlines()[0].endswith(": OK")


def test_offline_audit_reads_no_chain(store: Store, chain: ChainClient, name: str) -> None:
    epoch = anchored(store, chain, name)
    report = epoch.audit(chain=False)
    assert report.ok, report.summary()
    assert report.to_json()["chain"] is None
    assert "chain: not checked" in report.summary()


def test_epoch_not_anchored(store: Store, chain: ChainClient, name: str) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(3)
    report = epoch.audit()
    assert kinds(report) == [Kind.NO_EPOCH_ROOT, Kind.NOT_ANCHORED]
    assert not report.ok
    assert report.anchor is None and report.local is not None
    assert report.to_json()["chain"]["anchor"] is None
    assert "not anchored by" in report.summary()


def test_bad_signature_is_left_out_of_the_local_tree(
    store: Store, chain: ChainClient, name: str
) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(3)
    work = f.contribution("carol", "alice", name, summary="forged")
    bad = forged(f.acceptance(work, weight=100))
    epoch.ingest([work, bad])
    # The anchoring node trusted its store, so the forged acceptance is in the anchored tree.
    epoch.publish(epoch.anchor())
    report = epoch.audit()
    bad_signatures = [x for x in report.findings if x.kind is Kind.BAD_SIGNATURE]
    assert [x.record for x in bad_signatures] == [bad.id]
    assert "signature does not verify" in bad_signatures[0].message
    assert report.local is not None and report.local.leaf_count == 3
    for kind in (Kind.ROOT_MISMATCH, Kind.LEAF_COUNT_MISMATCH, Kind.TOTAL_WEIGHT_MISMATCH):
        assert sorted(x.source or "" for x in report.findings if x.kind is kind) == [
            "chain",
            "epoch_root",
        ]
    count = next(x for x in report.findings if x.kind is Kind.LEAF_COUNT_MISMATCH)
    assert (count.expected, count.found) == ("3", "4")


def test_acceptances_after_the_anchor_are_late_not_findings(
    store: Store, chain: ChainClient, name: str
) -> None:
    epoch = anchored(store, chain, name, count=3)
    dump = epoch.tree().dump()
    # A reviewer's acceptance of new work, backdated into the anchored epoch; a withdrawal and
    # a re-weighing of anchored work: all late.
    work = f.contribution("dave", "alice", name, summary="late")
    backdated = f.acceptance(work, "carol", weight=4, created_at=f.T0)
    withdrawn = f.acceptance(epoch.works[0], revision=1, weight=0)
    heavier = f.acceptance(epoch.works[1], "carol", revision=1, weight=40)
    epoch.ingest([work, backdated, withdrawn, heavier])
    report = epoch.audit(dump)
    assert report.ok, report.summary()
    assert set(report.late) == {backdated.id, heavier.id}
    assert report.local is not None and report.local.leaf_count == 3
    assert "late acceptances (after the anchor; not counted, not findings): 2" in (report.summary())


def test_a_reviewer_removed_after_the_anchor_does_not_undo_it(
    store: Store, chain: ChainClient, name: str
) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    epoch.contribute(1, signer="carol")
    epoch.publish(epoch.anchor())
    dump = epoch.tree().dump()
    # The owner then removes carol from the reviewers: her acceptance no longer counts for
    # what is open, but the anchored epoch's manifest lists it, and the owner signed that.
    revised = f.project("alice", name, payout=OWNER, revision=1, reviewers=())
    epoch.ingest([revised])
    assert store.acceptance_of(epoch.works[2].id) is None
    report = epoch.audit(dump)
    assert report.ok, report.summary()
    assert report.local is not None and report.local.leaf_count == 3


def test_an_acceptance_by_a_stranger_breaks_a_rule(
    store: Store, chain: ChainClient, name: str
) -> None:
    # Only a damaged store can hold it: written here with raw LevelDB puts.
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    work = f.contribution("bob", "alice", name, summary="smuggled")
    stranger = f.acceptance(work, "mallory", weight=9)
    epoch.ingest([work])
    store._db.put(keys.RECORD + stranger.id, stranger.raw)
    store._db.put(keys.accepted_prefix(epoch.pid, epoch.epoch) + work.id, stranger.id)
    # In force in an open epoch.
    report = epoch.audit()
    rules = [x for x in report.findings if x.kind is Kind.RULE_VIOLATION]
    assert [x.record for x in rules] == [stranger.id]
    assert "neither the owner nor a reviewer" in rules[0].message
    assert report.local is not None and report.local.leaf_count == 2
    # Listed in the manifest of an anchored epoch, whose anchored tree has it: left out, and
    # the roots differ.
    with_it = MerkleTree.build([*epoch.tree().leaves, Leaf(work.id, f.address("bob"), 9)])
    anchor = epoch.anchor(Summary(with_it.root, 3, 1 + 2 + 9))
    epoch.publish(anchor, listed=[*epoch.listed, stranger.id])
    report = epoch.audit()
    rules = [x for x in report.findings if x.kind is Kind.RULE_VIOLATION]
    assert [x.record for x in rules] == [stranger.id]
    assert "no revision of the project names" in rules[0].message
    assert report.local is not None and report.local.leaf_count == 2
    assert Kind.ROOT_MISMATCH in kinds(report)


def test_records_from_the_future_break_a_rule(store: Store, chain: ChainClient, name: str) -> None:
    epoch = anchored(store, chain, name, count=2)
    report = audit_epoch(store, None, epoch.pid, 0, now=f.T0 - 3600)
    rules = {x.record for x in report.findings if x.kind is Kind.RULE_VIOLATION}
    every = {epoch.project.id, *(w.id for w in epoch.works), *(a.id for a in epoch.acceptances)}
    assert every <= rules
    assert all("in the future" in x.message for x in report.findings if x.record in every)


def test_leaves_differ_from_the_published_tree(store: Store, chain: ChainClient, name: str) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(4)
    epoch.contribute(1, epoch=1)  # accepted into another epoch
    local = {leaf.contribution_id: leaf for leaf in epoch.tree().leaves}
    w = [work.id for work in epoch.works]
    stranger = hashlib.sha256(b"never stored").digest()
    # The owner published and anchored a tree that differs from the records in every way.
    published = [
        replace(local[w[1]], weight=99),
        replace(local[w[2]], payout=f.address("mallory")),
        local[w[3]],
        Leaf(w[4], f.address("bob"), 7),
        Leaf(stranger, f.address("mallory"), 8),
    ]
    tree = MerkleTree.build(published)
    epoch.publish(epoch.anchor(Summary(tree.root, 5, 99 + 3 + 4 + 7 + 8)))
    report = epoch.audit(tree.dump())
    by_kind: dict[Kind, list[Any]] = {}
    for x in report.findings:
        by_kind.setdefault(x.kind, []).append(x)
    assert [x.contribution for x in by_kind[Kind.EXTRA_LEAF]] == [w[0]]
    assert sorted(x.contribution for x in by_kind[Kind.MISSING_LEAF]) == sorted([w[4], stranger])
    why = {x.contribution: x.message for x in by_kind[Kind.MISSING_LEAF]}
    assert why[w[4]].endswith("is for epoch 1")
    assert why[stranger].endswith("the contribution is not in the store")
    [weight] = by_kind[Kind.WEIGHT_MISMATCH]
    assert (weight.contribution, weight.expected, weight.found) == (w[1], "2", "99")
    [payout] = by_kind[Kind.PAYOUT_MISMATCH]
    assert payout.contribution == w[2]
    assert payout.found == Web3.to_checksum_address(f.address("mallory"))
    roots = sorted(x.source or "" for x in by_kind[Kind.ROOT_MISMATCH])
    assert roots == ["chain", "dump", "epoch_root"]
    assert report.dump_root == tree.root


def test_epoch_roots_that_disagree_with_the_chain(
    store: Store, chain: ChainClient, name: str
) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    anchor = epoch.anchor()
    elsewhere = epoch.publish(
        anchor, chain_id=chain.chain_id + 1, contract=f.address("other"), tx_hash=b"\x07" * 32
    )
    wrong_root = epoch.publish(anchor, root=b"\x09" * 32)
    report = epoch.audit()
    placed = {x.field: x for x in report.findings if x.kind is Kind.EPOCH_ROOT_MISMATCH}
    assert set(placed) == {"chain_id", "contract", "tx_hash"}
    assert all(x.record == elsewhere.id for x in placed.values())
    assert placed["tx_hash"].expected == "0x" + anchor.tx_hash.hex()
    assert placed["tx_hash"].found == "0x" + "07" * 32
    assert placed["chain_id"].found == str(chain.chain_id + 1)
    [root] = [x for x in report.findings if x.kind is Kind.ROOT_MISMATCH]
    assert (root.record, root.source, root.found) == (wrong_root.id, "epoch_root", "0x" + "09" * 32)
    assert len(report.findings) == 4
    assert set(report.epoch_roots) == {elsewhere.id, wrong_root.id}


def test_anchored_total_weight_differs(store: Store, chain: ChainClient, name: str) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(3)
    built = epoch.tree()
    anchor = epoch.anchor(Summary(built.root, 3, 6 + 1))
    epoch.publish(anchor, total_weight=6)
    report = epoch.audit()
    [finding] = report.findings
    assert (finding.kind, finding.source, finding.field) == (
        Kind.TOTAL_WEIGHT_MISMATCH,
        "chain",
        "total_weight",
    )
    assert (finding.expected, finding.found) == ("6", "7")
    assert set(finding.to_json()) == FINDING_KEYS


def test_forged_epoch_root_is_not_believed(store: Store, chain: ChainClient, name: str) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    anchor = epoch.anchor()
    parts = f.manifest(epoch.acceptances, "alice", name)
    fake = forged(
        f.epoch_root(
            "alice",
            name,
            root=anchor.root,
            leaf_count=2,
            total_weight=3,
            manifest=parts[0].id,
            chain_id=chain.chain_id,
            contract=chain.address,
            tx_hash=anchor.tx_hash,
        )
    )
    epoch.ingest([*parts, fake])
    report = epoch.audit()
    assert kinds(report) == [Kind.BAD_SIGNATURE, Kind.NO_EPOCH_ROOT]
    assert report.findings[0].record == fake.id


def test_unknown_project_and_bad_dump(store: Store, chain: ChainClient, name: str) -> None:
    epoch = anchored(store, chain, name, count=2)
    with pytest.raises(AuditError, match="not in the store"):
        audit_epoch(store, chain, f.pid("alice", "nothing"), 0)
    dump = epoch.tree().dump()
    dump["tree"][0] = "0x" + "00" * 32
    with pytest.raises(AuditError, match="tree dump is not valid"):
        epoch.audit(dump)


def test_anchor_is_found_after_the_payout_address_moves(
    store: Store, chain: ChainClient, name: str
) -> None:
    epoch = anchored(store, chain, name, count=2)
    # A revision after anchoring moves the payout address elsewhere: the anchor is found under
    # the sender of the transaction that the owner's epoch_root names (node.anchors).
    epoch.ingest([f.project("alice", name, payout=f.address("elsewhere"), revision=1)])
    report = epoch.audit()
    assert report.ok, report.summary()
    assert report.owner == OWNER and report.anchor is not None


def test_without_an_epoch_root_only_the_payout_address_counts(
    store: Store, chain: ChainClient, name: str
) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    epoch.anchor()  # by OWNER, and never published
    epoch.ingest([f.project("alice", name, payout=f.address("elsewhere"), revision=1)])
    report = epoch.audit()
    # Nothing the owner signed ties OWNER's anchor to the project any more.
    assert kinds(report) == [Kind.NO_EPOCH_ROOT, Kind.NOT_ANCHORED]
    assert report.owner == f.address("elsewhere")
