"""Anchored epochs in the store: a root waits for its whole manifest, and K says who is paid."""

from __future__ import annotations

import itertools
from pathlib import Path

import plyvel
import pytest

from protocol import InvalidManifest, Manifest, NotAuthorized
from storage import Store, VersionMismatch, keys
from storage.directory import MARKER
from tests.support import factories as f
from tests.support.factories import T0

POSTING = f.project(reviewers=(f.pub("carol"),))
WORKS = [f.contribution(who, summary=f"w{i}") for i, who in enumerate(("bob", "dave", "erin"))]
ACCEPTED = [f.acceptance(w, "carol" if i else "alice", weight=i + 1) for i, w in enumerate(WORKS)]
ANCHORING = f.anchoring(ACCEPTED, WORKS, per_part=1)  # three parts, then the root
PARTS, ROOT = ANCHORING[:-1], ANCHORING[-1]


def test_a_root_is_stored_once_its_whole_manifest_is(store: Store) -> None:
    store.ingest([POSTING, *WORKS], now=T0)
    # The root waits for part 0, part 0 for part 1 and its acceptance, and so on.
    result = store.ingest([ROOT, *PARTS], now=T0)
    assert result.added == () and set(result.orphaned) == {ROOT.id, *(p.id for p in PARTS)}
    assert not store.anchored(f.pid(), 0)
    # The last acceptance arrives: everything is released, in one write.
    result = store.ingest(ACCEPTED[::-1], now=T0)
    assert set(result.added) == {a.id for a in ACCEPTED}
    assert set(result.released) == {ROOT.id, *(p.id for p in PARTS)}
    assert store.anchored(f.pid(), 0)
    for work, accepted in zip(WORKS, ACCEPTED, strict=True):
        assert store.committed_of(work.id) == ((0, accepted.id),)
    assert store.check() == ()


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_order_gives_the_same_k_entries(tmp_path: Path, order: tuple[int, ...]) -> None:
    groups = [[POSTING, *WORKS], ACCEPTED, PARTS, [ROOT]]
    with Store.open(tmp_path / "s") as store:
        for index in order:
            store.ingest(groups[index], now=T0)
        assert store.check() == ()
        committed = dict(store._db.iterator(prefix=keys.COMMITTED))
        assert len(committed) == 3 and store.anchored(f.pid(), 0)


def test_a_bad_part_keeps_its_root_out(store: Store) -> None:
    store.ingest([POSTING, *WORKS, *ACCEPTED], now=T0)
    # A part listing a withdrawal, and one whose next part is of another manifest.
    withdrawn = f.acceptance(WORKS[0], revision=1, weight=0)
    (bad,) = f.manifest([withdrawn])
    other = f.manifest(ACCEPTED, per_part=2)
    result = store.ingest([withdrawn, bad, *other], now=T0)
    assert [type(e) for _, e in result.rejected] == [InvalidManifest]
    assert store.has(other[0].id) and store.has(other[1].id)
    root = f.epoch_root(manifest=bad.id, leaf_count=1)
    assert store.ingest([root], now=T0).orphaned == (root.id,)
    # A root whose parts count lies, and one by someone else than the owner.
    lying = f.epoch_root(manifest=other[0].id, parts=1, leaf_count=3, total_weight=6)
    by_carol = f.epoch_root(
        "carol", project_id=f.pid(), manifest=other[0].id, parts=2, leaf_count=3, total_weight=6
    )
    result = store.ingest([lying, by_carol], now=T0)
    assert [type(e) for _, e in result.rejected] == [InvalidManifest, NotAuthorized]
    assert not store.anchored(f.pid(), 0) and store.check() == ()


def test_parts_and_root_in_one_call_with_their_acceptances(store: Store) -> None:
    result = store.ingest([*ANCHORING, *ACCEPTED, *WORKS, POSTING], now=T0)
    assert result.orphaned == () and result.rejected == ()
    assert store.anchored(f.pid(), 0) and store.check() == ()


def test_a_manifest_named_by_two_roots_writes_its_entries_once(store: Store) -> None:
    again = f.epoch_root(**{**_fields(ROOT), "chain_id": 5, "created_at": T0 + 99})
    store.ingest([POSTING, *WORKS, *ACCEPTED, *ANCHORING, again], now=T0 + 99)
    assert len(dict(store._db.iterator(prefix=keys.COMMITTED))) == 3
    assert len(store.epoch_roots(f.pid(), epoch=0).items) == 2
    assert store.check() == ()


def test_the_checker_finds_missing_and_stray_k_entries(store: Store) -> None:
    store.ingest([POSTING, *WORKS, *ACCEPTED, *ANCHORING], now=T0)
    entry = keys.committed(WORKS[0].id, 0, ACCEPTED[0].id)
    store._db.delete(entry)
    assert any("lacks K entry" in p for p in store.check())
    store._db.put(entry, b"")
    store._db.put(keys.committed(WORKS[0].id, 7, ACCEPTED[0].id), b"")
    assert any("does not match its acceptance" in p for p in store.check())


def test_a_store_of_the_format_before_manifests_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old"
    Store.open(path).close()
    (path / MARKER).write_text("WorkWork record store\nschema 2\n")
    db = plyvel.DB(str(path))
    db.put(keys.SCHEMA_KEY, keys.u32(2))
    db.close()
    with pytest.raises(VersionMismatch, match=r"schema version 2.*version 3") as info:
        Store.open(path)
    assert (info.value.found, info.value.expected) == (2, 3)


def _fields(record: object) -> dict[str, object]:
    body = record.body  # type: ignore[attr-defined]
    assert not isinstance(body, Manifest)
    return {name: getattr(body, name) for name, _ in body.SCHEMA}
