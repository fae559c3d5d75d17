"""Manifests: what an anchored epoch covers, its parts and their links, and late acceptances."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol import (
    MAX_RECORD_SIZE,
    InvalidField,
    InvalidManifest,
    Manifest,
    MissingRecord,
    NotAuthorized,
    ReferenceMismatch,
    UnknownKind,
    sign,
)
from protocol.epoch import (
    Status,
    committed,
    counted,
    first_root,
    leaves,
    listed,
    manifest,
    manifest_parts,
    standing,
)
from protocol.merkle import Leaf
from protocol.records import MAX_EPOCH, MAX_MANIFEST_IDS, MAX_PARTS, MAX_TIMESTAMP
from protocol.validate import check_epoch_root, check_manifest
from tests.support import factories as f

WORKS = [f.contribution(who) for who in ("bob", "carol", "dave", "erin", "frank")]
ACCEPTED = [f.acceptance(w, weight=i + 1, epoch=2) for i, w in enumerate(WORKS)]
PROJECT = f.project()


def test_parts_hold_the_sorted_ids_and_name_the_next() -> None:
    parts = f.manifest(ACCEPTED, epoch=2, per_part=2)
    assert [p.expect(Manifest).part for p in parts] == [0, 1, 2]
    assert {p.expect(Manifest).parts for p in parts} == {3}
    assert listed(parts) == tuple(sorted(a.id for a in ACCEPTED))
    assert [len(p.expect(Manifest).acceptances) for p in parts] == [2, 2, 1]
    assert [p.expect(Manifest).next for p in parts] == [parts[1].id, parts[2].id, b""]
    # One part when they fit.
    (single,) = f.manifest(ACCEPTED, epoch=2)
    assert listed([single]) == listed(parts)


def test_a_manifest_lists_something_once() -> None:
    signer = lambda body: sign(body, f.key("alice"))  # noqa: E731
    with pytest.raises(InvalidManifest, match="at least one"):
        manifest(f.pid(), 0, [], created_at=f.T0, sign=signer)
    with pytest.raises(InvalidManifest, match="once"):
        manifest(f.pid(), 0, [b"\x01" * 32] * 2, created_at=f.T0, sign=signer)
    with pytest.raises(InvalidManifest, match="outside"):
        manifest(f.pid(), 0, [b"\x01" * 32], created_at=f.T0, sign=signer, per_part=0)


def test_a_full_part_fits_in_a_record() -> None:
    ids = tuple(i.to_bytes(32, "big") for i in range(2**255, 2**255 + MAX_MANIFEST_IDS))
    body = Manifest(
        created_at=MAX_TIMESTAMP,
        project_id=b"\xff" * 32,
        epoch=MAX_EPOCH,
        part=MAX_PARTS - 2,
        parts=MAX_PARTS,
        next=b"\xff" * 32,
        acceptances=ids,
    )
    record = sign(body, f.key("alice"))
    assert len(record.raw) <= MAX_RECORD_SIZE
    with pytest.raises(InvalidField, match="acceptances"):
        replace(body, acceptances=(*ids, b"\xff" * 32))
    # Enough parts for the largest epoch.
    assert MAX_PARTS * MAX_MANIFEST_IDS >= 2**20 > (MAX_PARTS - 1) * MAX_MANIFEST_IDS


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"acceptances": ()}, "acceptances"),
        ({"part": 1, "parts": 1}, "part"),
        ({"next": b"\x01" * 32}, "next"),  # the last part names no next part
        ({"parts": 2}, "next"),  # part 0 of 2 must name part 1
        ({"next": b"\x01" * 31, "parts": 2}, "next"),
    ],
)
def test_part_fields(changes: dict[str, object], field: str) -> None:
    (part,) = f.manifest(ACCEPTED[:1], epoch=2)
    with pytest.raises(InvalidField) as info:
        replace(part.expect(Manifest), **changes)
    assert info.value.field == field


def test_epoch_root_parts_fit_its_leaves() -> None:
    with pytest.raises(InvalidField, match="parts"):
        f.epoch_root(leaf_count=1, total_weight=1, parts=2)
    with pytest.raises(InvalidField, match="parts"):
        f.epoch_root(leaf_count=MAX_MANIFEST_IDS + 1, total_weight=10**6, parts=1)
    f.epoch_root(leaf_count=MAX_MANIFEST_IDS + 1, total_weight=10**6, parts=2)


def test_a_part_fits_its_acceptances_and_the_next_part() -> None:
    first, second, last = f.manifest(ACCEPTED, epoch=2, per_part=2)
    by_id = {a.id: a for a in ACCEPTED}

    def mine(part: object) -> list[object]:
        return [by_id[i] for i in part.expect(Manifest).acceptances]  # type: ignore[attr-defined]

    check_manifest(first, PROJECT, second, mine(first))
    check_manifest(last, PROJECT, None, mine(last))
    check_manifest(second, f.project(revision=3), last, None)  # any revision will do
    with pytest.raises(InvalidManifest, match="not given"):
        check_manifest(first, PROJECT, None, mine(first))
    with pytest.raises(InvalidManifest, match="not the part after it"):
        check_manifest(first, PROJECT, last.__class__(**{**_fields(last), "id": second.id}), None)
    with pytest.raises(UnknownKind):
        check_manifest(first, PROJECT, _as(WORKS[0], second.id), None)
    with pytest.raises(InvalidManifest, match=r"2 acceptances, 1 given"):
        check_manifest(first, PROJECT, second, mine(first)[:1])
    with pytest.raises(InvalidManifest, match="does not list"):
        check_manifest(first, PROJECT, second, [*mine(first)[:1], ACCEPTED[4]])
    with pytest.raises(UnknownKind):
        check_manifest(last, PROJECT, None, [WORKS[0]])
    with pytest.raises(ReferenceMismatch):
        check_manifest(last, f.project(name="other"), None, mine(last))
    forged = f.manifest(ACCEPTED[:1], "carol", epoch=2)[0]
    forged = sign(replace(forged.expect(Manifest), project_id=f.pid()), f.key("carol"))
    with pytest.raises(NotAuthorized, match="not signed by its owner"):
        check_manifest(forged, PROJECT, None, ACCEPTED[:1])


@pytest.mark.parametrize(
    ("acceptance", "message"),
    [
        (f.acceptance(WORKS[0], epoch=3), "epoch 2"),
        (f.acceptance(WORKS[0], epoch=2, project_id=f.pid("alice", "x")), "epoch 2"),
        (f.acceptance(WORKS[0], epoch=2, weight=0), "withdraws"),
    ],
)
def test_a_part_lists_only_what_it_can_pay(acceptance: object, message: str) -> None:
    (part,) = f.manifest([acceptance], epoch=2)  # type: ignore[list-item]
    with pytest.raises(InvalidManifest, match=message):
        check_manifest(part, PROJECT, None, [acceptance])  # type: ignore[list-item]


def test_a_part_pays_a_contribution_once() -> None:
    again = f.acceptance(WORKS[0], "carol", revision=1, epoch=2, weight=9)
    (part,) = f.manifest([ACCEPTED[0], again], epoch=2)
    with pytest.raises(InvalidManifest, match="two acceptances of contribution"):
        check_manifest(part, PROJECT, None, [ACCEPTED[0], again])
    # Across parts, building the tree finds it.
    first, second = f.manifest([ACCEPTED[0], again], epoch=2, per_part=1)
    works = {w.id: w for w in WORKS}
    with pytest.raises(InvalidManifest, match="two acceptances"):
        committed(f.pid(), 2, [ACCEPTED[0], again], works)
    assert listed([first, second]) == tuple(sorted((ACCEPTED[0].id, again.id)))


def test_an_epoch_root_names_part_zero_of_its_manifest() -> None:
    records = f.anchoring(ACCEPTED, WORKS, epoch=2, per_part=2)
    parts, root = records[:-1], records[-1]
    check_epoch_root(root, PROJECT, parts[0])
    check_epoch_root(root, PROJECT)  # the author alone
    for wrong in (
        parts[1],  # not part 0
        f.manifest(ACCEPTED, epoch=2, per_part=3)[0],  # another manifest
    ):
        with pytest.raises(InvalidManifest, match="is not the first part"):
            check_epoch_root(root, PROJECT, wrong)
    lying = f.epoch_root(**{**_root_fields(root), "parts": 2})
    with pytest.raises(InvalidManifest):
        check_epoch_root(lying, PROJECT, parts[0])
    with pytest.raises(NotAuthorized):
        check_epoch_root(f.epoch_root("carol", project_id=f.pid()), PROJECT, parts[0])


def test_walking_a_manifest_from_its_root() -> None:
    records = f.anchoring(ACCEPTED, WORKS, epoch=2, per_part=2)
    by_id = {r.id: r for r in records}
    parts = manifest_parts(records[-1], PROJECT, by_id.get)
    assert parts == tuple(records[:-1])
    del by_id[records[1].id]
    with pytest.raises(MissingRecord, match="part 1"):
        manifest_parts(records[-1], PROJECT, by_id.get)


def test_the_committed_tree_is_the_listed_acceptances() -> None:
    works = {w.id: w for w in WORKS}
    found = committed(f.pid(), 2, ACCEPTED[:2], works)
    assert found == tuple(
        Leaf(w.id, f.address(who), i + 1)
        for i, (w, who) in enumerate(zip(WORKS, ("bob", "carol"), strict=False))
    )
    with pytest.raises(MissingRecord):
        committed(f.pid(), 2, ACCEPTED[:1], {})
    elsewhere = f.contribution("bob", name="other")
    with pytest.raises(InvalidManifest, match="another project"):
        committed(
            f.pid(),
            2,
            [f.acceptance(elsewhere, epoch=2, project_id=f.pid())],
            {elsewhere.id: elsewhere},
        )
    with pytest.raises(InvalidManifest, match="epoch 3"):
        committed(f.pid(), 3, ACCEPTED[:1], works)


def test_settled_contributions_have_no_leaf_in_an_open_epoch() -> None:
    works = {w.id: w for w in WORKS}
    moved = f.acceptance(WORKS[0], revision=1, epoch=3, weight=50)
    acceptances = [*ACCEPTED, moved]
    assert {leaf.contribution_id for leaf in leaves(PROJECT, acceptances, works, 3)} == {
        WORKS[0].id
    }
    # Anchored in epoch 2 already: the move to epoch 3 is late, nothing is paid twice.
    assert leaves(PROJECT, acceptances, works, 3, settled={WORKS[0].id}) == ()
    pairs = counted(PROJECT, acceptances, works, 2, settled={WORKS[1].id})
    assert [a for a, _ in pairs] == [
        a for a in ACCEPTED if a.id != ACCEPTED[1].id and a != ACCEPTED[0]
    ]


def test_standing() -> None:
    paid, later = ACCEPTED[0], f.acceptance(WORKS[0], revision=1, epoch=2, weight=99)
    anchored = {2}.__contains__
    never = set[int]().__contains__
    assert standing(None, (), anchored) is None
    opened = standing(paid, (), never)
    assert opened is not None and (opened.status, opened.epoch, opened.weight) == (
        Status.OPEN,
        2,
        1,
    )
    late = standing(later, (), anchored)
    assert late is not None and late.status is Status.LATE and late.acceptance == later
    withdrawn = standing(f.acceptance(WORKS[0], weight=0, epoch=5), (), anchored)
    assert withdrawn is not None and withdrawn.status is Status.WITHDRAWN
    # Anchored: the listed acceptance counts; a later one in force is late.
    settled = standing(later, (paid,), anchored)
    assert settled is not None
    assert (settled.status, settled.acceptance, settled.late) == (Status.ANCHORED, paid, later)
    same = standing(paid, (paid,), anchored)
    assert same is not None and same.late is None


def test_the_first_root_decides_when_no_chain_does() -> None:
    a = f.epoch_root(created_at=f.T0 + 50)
    b = f.epoch_root(created_at=f.T0 + 40, chain_id=5)
    c = f.epoch_root(created_at=f.T0 + 40, chain_id=6)
    assert first_root([a, b, c]) == min(b, c, key=lambda r: r.id)
    assert first_root([]) is None


def _fields(record: object) -> dict[str, object]:
    return {name: getattr(record, name) for name in ("body", "author", "signature", "raw", "id")}


def _as(record: object, rid: bytes) -> object:
    return record.__class__(**{**_fields(record), "id": rid})


def _root_fields(root: object) -> dict[str, object]:
    body = root.body  # type: ignore[attr-defined]
    return {name: getattr(body, name) for name, _ in body.SCHEMA}
