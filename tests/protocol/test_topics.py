"""Topic assignment: meta for postings, a stable work shard per project."""

from __future__ import annotations

import pytest

from protocol import topics
from tests.support import factories as f


def test_postings_on_meta_and_work_on_the_project_shard() -> None:
    work = f.contribution()
    assert topics.topic(f.profile()) == topics.topic(f.project()) == topics.META
    expected = f"work/{int.from_bytes(f.pid()[:2], 'big') % 32}"
    for record in (work, f.acceptance(work), f.epoch_root()):
        assert topics.topic(record) == expected
    assert expected in topics.ALL and len(topics.ALL) == 33


def test_shards_spread_projects() -> None:
    used = {topics.shard(f.pid("alice", f"p{i}")) for i in range(400)}
    assert used == set(range(topics.SHARDS))


def test_work_bounds() -> None:
    with pytest.raises(ValueError):
        topics.work(32)
