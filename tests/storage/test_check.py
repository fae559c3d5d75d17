"""The consistency checker finds each kind of damage (made here with raw LevelDB writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from protocol.topics import shard, work
from protocol.validate import Ref
from storage import Store, keys
from tests.support import factories as f
from tests.support.factories import T0

WORK = f.contribution()
OLD = f.acceptance(WORK, epoch=1)
NEW = f.acceptance(WORK, epoch=2, revision=1)
BY_CAROL = f.acceptance(WORK, "carol", epoch=3)
BY_MALLORY = f.acceptance(WORK, "mallory")
ORPHAN = f.contribution(name="ghost")
PROJECT = f.project(reviewers=(f.pub("carol"),))
PROFILES = [f.profile(), f.profile(revision=1, name="Alice B.")]


def damage(db: Any) -> dict[str, Callable[[], object]]:
    pid = f.pid()
    return {
        "lacks index entry": lambda: db.delete(
            keys.contribution(pid, WORK.body.created_at, WORK.id)
        ),
        "which is not stored": lambda: db.delete(keys.RECORD + OLD.id),
        "not in force": lambda: db.put(keys.accepted_prefix(pid, 1) + WORK.id, OLD.id),
        "is not in its epoch's index": lambda: db.delete(keys.accepted_prefix(pid, 2) + WORK.id),
        "supersedes the revision in force": lambda: db.put(
            keys.latest("profile", f.pub("alice")), keys.latest_value(PROFILES[0].id, 0)
        ),
        "in force, expected": lambda: db.put(
            keys.latest("acceptance", WORK.id), keys.latest_value(OLD.id, 0)
        ),
        "names another author": lambda: db.put(keys.acceptance(WORK.id, 0, OLD.id), b"\x07" * 32),
        "named by no stored project revision": lambda: db.put(
            keys.reviewer(pid, f.pub("mallory")), b""
        ),
        "lacks its reviewer's entry": lambda: db.delete(
            keys.reviewed(pid, f.pub("carol"), WORK.id)
        ),
        "names no acceptance by that reviewer": lambda: db.put(
            keys.reviewed(pid, f.pub("dave"), WORK.id), b""
        ),
        "no stored revision of its project names": lambda: (
            db.put(keys.RECORD + BY_MALLORY.id, BY_MALLORY.raw),
            db.put(keys.acceptance(WORK.id, 0, BY_MALLORY.id), BY_MALLORY.author),
        ),
        "count says": lambda: db.put(keys.count(work(shard(pid))), keys.u64(99)),
        "waits for nothing": lambda: db.delete(
            keys.waiting(Ref("project", f.pid("alice", "ghost")), ORPHAN.id)
        ),
        "in no table": lambda: db.put(b"Zzz", b""),
        "wrong id": lambda: db.put(keys.RECORD + b"\x01" * 32, WORK.raw),
        "does not decode": lambda: db.put(keys.RECORD + OLD.id, b"junk"),
    }


@pytest.mark.parametrize("symptom", list(damage(None)))
def test_check_finds_damage(store: Store, symptom: str) -> None:
    store.ingest([PROJECT, WORK, OLD, NEW, BY_CAROL, f.epoch_root(), *PROFILES, ORPHAN], now=T0)
    assert store.check() == ()
    damage(store._db)[symptom]()
    problems = store.check()
    assert any(symptom in p for p in problems), problems
