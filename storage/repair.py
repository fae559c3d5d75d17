"""The safe repair of a store: index tables rebuilt from the records alone.

Some index tables hold, for each stored record, entries that are a function of that record and
nothing else (`LISTINGS`): a contribution's entries by project (C) and by author (B), an
acceptance's entry by contribution (A, its value the author), a project revision's reviewer
entries (V), an epoch root's entry (X), a proposal's (P) and a vote's (U). Ingest writes them
with the record and never removes them; `storage.check` finds an entry that is missing, names
no stored record or does not match its record. Rebuilding them from the R table is exact, so
it cannot lose anything a record does not say again.

What is not rebuilt here: the tables whose entries depend on several records or on the order
they came in (revisions and acceptances in force, epochs' acceptances, K entries, reviewers'
entries), the topic table with its counts and block summaries, and the orphan area. Their
problems are listed and left alone.

The rebuild streams the records once, holding the expected entries of these tables in memory
(about 100 bytes a record), then writes the difference in one atomic batch: an interrupted
repair leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from protocol import Acceptance, Contribution, EpochRoot, Project, Proposal, ProtocolError, Vote
from protocol import decode as decode_record
from protocol.records import project_id
from storage import keys

LISTINGS = (
    keys.CONTRIBUTIONS,
    keys.BY_AUTHOR,
    keys.ACCEPTANCES,
    keys.REVIEWERS,
    keys.ROOTS,
    keys.PROPOSALS,
    keys.VOTES,
)


def _entries(db: Any) -> Iterator[tuple[bytes, bytes]]:
    """Yields the listing entries (key, value) that the stored records call for."""
    for key, raw in db.iterator(prefix=keys.RECORD):
        try:
            record = decode_record(raw, verify=False)
        except ProtocolError:
            continue  # the check lists it; no entry can be derived from it
        if record.id != key[1:]:
            continue
        rid, body = record.id, record.body
        if isinstance(body, Contribution):
            yield keys.contribution(body.project_id, body.created_at, rid), b""
            yield keys.by_author(record.author, body.created_at, rid), b""
        elif isinstance(body, Acceptance):
            yield keys.acceptance(body.contribution_id, body.revision, rid), record.author
        elif isinstance(body, Project):
            pid = project_id(record.author, body.name)
            for reviewer in body.reviewers:
                yield keys.reviewer(pid, reviewer), b""
        elif isinstance(body, EpochRoot):
            yield keys.root(body.project_id, body.epoch, rid), b""
        elif isinstance(body, Proposal):
            yield keys.proposal(body.project_id, body.created_at, rid), b""
        elif isinstance(body, Vote):
            yield keys.vote(body.proposal_id, record.author, body.revision, rid), b""


def rebuild_listings(db: Any, *, sync: bool = True) -> int:
    """Rewrites the listing tables of plyvel database `db` to what its records call for.

    Returns:
        The number of entries written or removed (0: they were right).
    """
    expected = dict(_entries(db))
    changes = 0
    with db.write_batch(sync=sync) as batch:
        for table in LISTINGS:
            for key, value in db.iterator(prefix=table):
                wanted = expected.pop(key, None)
                if wanted is None:
                    batch.delete(key)
                    changes += 1
                elif wanted != value:
                    batch.put(key, wanted)
                    changes += 1
        for key, value in expected.items():
            batch.put(key, value)
            changes += 1
    return changes
