"""The consistency checker finds each kind of damage (made here with raw LevelDB writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from protocol.topics import shard, work
from protocol.validate import Ref
from storage import Store, keys
from tests import factories as f
from tests.factories import T0

WORK = f.contribution()
OLD = f.acceptance(WORK, epoch=1)
NEW = f.acceptance(WORK, epoch=2, revision=1)
ORPHAN = f.contribution(name="ghost")


def damage(db: Any) -> dict[str, Callable[[], None]]:
    pid = f.pid()
    return {
        "lacks index entry": lambda: db.delete(
            keys.contribution(pid, WORK.body.created_at, WORK.id)
        ),
        "which is not stored": lambda: db.delete(keys.RECORD + OLD.id),
        "not in force": lambda: db.put(keys.accepted_prefix(pid, 1) + WORK.id, OLD.id),
        "is not in its epoch's index": lambda: db.delete(keys.accepted_prefix(pid, 2) + WORK.id),
        "supersedes the revision in force": lambda: db.put(
            keys.latest("acceptance", WORK.id), keys.latest_value(OLD.id, 0)
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
    store.ingest([f.project(), WORK, OLD, NEW, f.epoch_root(), f.profile(), ORPHAN], now=T0)
    assert store.check() == ()
    damage(store._db)[symptom]()
    problems = store.check()
    assert any(symptom in p for p in problems), problems
