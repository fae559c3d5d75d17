"""`Store.rebuild_indexes` and `workwork store check --repair`: index entries that each record
alone determines are rebuilt from the records of a real LevelDB store whose indexes were broken."""

from __future__ import annotations

from pathlib import Path

import plyvel
import pytest

from node.cli.main import main
from protocol import Record
from storage import Store, keys
from tests.support import factories as f
from tests.support.factories import T0


def _records() -> list[Record]:
    carol = f.pub("carol")
    project = f.project(reviewers=(carol,))
    works = [f.contribution(summary=f"work {i}") for i in range(3)]
    verdicts = [f.acceptance(w, weight=5) for w in works[:2]]
    reviewed = f.acceptance(works[2], "carol", weight=3)
    anchored = f.anchoring(verdicts, works)
    question = f.proposal()
    return [project, *works, *verdicts, reviewed, *anchored, question, f.vote(question)]


def _damage(path: Path, records: list[Record]) -> None:
    """Breaks entries of every rebuilt table, as a crash or a bug could: some missing, some
    naming nothing, one with a wrong value."""
    work, verdict, question = records[1], records[4], records[-2]
    vote = records[-1]
    body = work.body
    db = plyvel.DB(str(path))
    db.delete(keys.contribution(f.pid(), body.created_at, work.id))
    db.delete(keys.by_author(work.author, body.created_at, work.id))
    db.put(keys.contribution(f.pid(), body.created_at, bytes(32)), b"")
    db.put(keys.BY_AUTHOR + bytes(32) + keys.u64(T0) + work.id, b"")
    verdict_body = verdict.body
    entry = keys.acceptance(verdict_body.contribution_id, verdict_body.revision, verdict.id)  # type: ignore[attr-defined]
    db.put(entry, bytes(32))  # another author
    db.delete(keys.reviewer(f.pid(), f.pub("carol")))
    for prefix in (keys.ROOTS, keys.PROPOSALS, keys.VOTES):
        for key in db.iterator(prefix=prefix, include_value=False):
            db.delete(key)
    assert question.kind == "proposal" and vote.kind == "vote"
    db.close()


def test_broken_indexes_are_rebuilt_from_the_records(tmp_path: Path) -> None:
    path = tmp_path / "store"
    records = _records()
    with Store.open(path) as store:
        result = store.ingest(records, now=T0 + 10**6)
        assert not result.rejected and not result.orphaned
        assert store.check() == ()
        # A consistent store: nothing to rewrite.
        assert store.rebuild_indexes() == 0
    _damage(path, records)
    with Store.open(path) as store:
        problems = store.check()
        assert len(problems) >= 8, problems
        assert store.rebuild_indexes() == 9
        assert store.check() == ()
        # What the queries answer is back too.
        listed = {r.id for r in store.contributions(f.pid()).items}
        assert listed == {r.id for r in records[1:4]}


def test_store_check_repair_rebuilds_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    records = _records()
    with Store.open(home / "store") as store:
        store.ingest(records, now=T0 + 10**6)
    _damage(home / "store", records)
    assert main(["--data-dir", str(home), "store", "check"]) == 3
    out = capsys.readouterr().out
    assert "lacks index entry" in out and "problem(s)" in out
    assert main(["--data-dir", str(home), "store", "check", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "Repaired: rewrote 9 index entries from the records" in out
    assert "is consistent" in out
    assert main(["--data-dir", str(home), "--json", "store", "check"]) == 0
