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


def test_recent_update_larger_than_its_size_keeps_the_whole_call() -> None:
    recent: Recent[int, int] = Recent(4)
    recent.put(-1, -1)
    recent.update({i: i for i in range(10)})
    assert all(recent.get(i) == i for i in range(10)) and recent.get(-1) == -1
    recent.pop(3)
    recent.pop(-1)
    assert recent.get(3) is None and recent.get(-1) is None
