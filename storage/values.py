"""The frozen values that the store returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from protocol import ProtocolError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a query: its items, and the cursor of the next page (None after the last).

    The cursor is opaque: pass it back to the same query to continue where this page stopped.
    Pages are read without a snapshot, so records stored between two pages show up in the
    later one if they sort after the cursor.
    """

    items: tuple[T, ...]
    cursor: bytes | None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one `Store.ingest` call did, each tuple in the order the records were handled.

    The first four tuples are about the records passed in, so that a caller can hold their
    source to account; the last three are about orphans that earlier calls parked.

    Attributes:
        added: ids of the records passed in that were stored, with every index entry,
            including those that waited for a parent passed later in the same call.
        duplicates: ids that were already stored (or appeared twice in the call).
        orphaned: ids that wait in the orphan area for a parent at the end of the call,
            including ones that were already waiting.
        rejected: (id, error) of the records passed in that broke a rule; they are not
            stored. A blob that failed to decode is named by the sha256 of its bytes.
        released: ids of orphans of earlier calls that this call stored, their parents having
            arrived.
        discarded: (id, error) of orphans of earlier calls that broke a rule once their parents
            arrived; they are dropped.
        evicted: orphans dropped by this call to keep the orphan area within its bounds.
    """

    added: tuple[bytes, ...] = ()
    duplicates: tuple[bytes, ...] = ()
    orphaned: tuple[bytes, ...] = ()
    rejected: tuple[tuple[bytes, ProtocolError], ...] = ()
    released: tuple[bytes, ...] = ()
    discarded: tuple[tuple[bytes, ProtocolError], ...] = ()
    evicted: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class LevelStats:
    """One level of the LevelDB tree under a store, as LevelDB counts it since it opened.

    LevelDB compacts in one background thread; when that thread falls behind, writes wait for
    it. `seconds`, `read_mib` and `write_mib` say how much compaction work the level took.
    """

    level: int
    files: int
    size_mib: int
    seconds: int
    read_mib: int
    write_mib: int


def level_stats(text: str) -> tuple[LevelStats, ...]:
    """Parses LevelDB's "leveldb.stats" property: one row of six integers per level."""
    levels = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 6 and all(f.isdigit() for f in fields):
            levels.append(LevelStats(*map(int, fields)))
    return tuple(levels)
