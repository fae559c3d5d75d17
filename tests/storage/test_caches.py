"""The bounded maps of recent records that ingest reads before the database."""

from __future__ import annotations

from storage.caches import Recent


def test_recent_keeps_at_least_its_size_and_forgets_the_oldest() -> None:
    recent: Recent[int, str] = Recent(4)
    for i in range(6):
        recent.put(i, str(i))
    assert [recent.get(i) for i in range(6)] == ["0", "1", "2", "3", "4", "5"]
    recent.update({i: str(i) for i in range(6, 10)})
    # Rolled over once more: the two newest generations are 4-5 and 6-9; 0-3 are forgotten.
    assert [recent.get(i) for i in range(10)] == [None] * 4 + [str(i) for i in range(4, 10)]


def test_recent_update_larger_than_its_size_stays_bounded() -> None:
    recent: Recent[int, int] = Recent(4)
    recent.put(-1, -1)
    recent.update({i: i for i in range(10)})
    # Two generations of at most 4: the last items of the call are kept, the oldest forgotten.
    assert len(recent._new) <= 4 and len(recent._old) <= 4
    assert all(recent.get(i) == i for i in range(6, 10))
    assert recent.get(-1) is None and recent.get(0) is None
    recent.pop(9)
    assert recent.get(9) is None and recent.get(8) == 8
