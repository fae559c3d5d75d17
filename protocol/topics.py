"""Which gossip topic a record travels on.

Profiles and project postings share one `meta` topic that every node follows. Contributions,
acceptances, manifests, epoch roots, proposals, votes and decisions travel on one of SHARDS work topics,
chosen from their project id, as Ethereum shards attestations into subnets: a node follows the
shards of the projects it cares about, and the cost of a mesh stays bounded however many projects exist. The store keeps its
per-topic record sets (what sync reconciles) under the same names.
"""

from __future__ import annotations

from protocol.envelope import Record
from protocol.records import (
    Acceptance,
    Contribution,
    Decision,
    EpochRoot,
    Manifest,
    Proposal,
    Vote,
)

SHARDS = 32
META = "meta"


def shard(project_id: bytes) -> int:
    """Returns the work shard of a project: the first two bytes of its id, modulo SHARDS."""
    return int.from_bytes(project_id[:2], "big") % SHARDS


def work(index: int) -> str:
    """Returns the name of work shard `index`."""
    if not 0 <= index < SHARDS:
        raise ValueError(f"shard {index} is outside [0, {SHARDS})")
    return f"work/{index}"


def topic(record: Record) -> str:
    """Returns the topic a record is published on and synced under."""
    body = record.body
    if isinstance(
        body, Contribution | Acceptance | Manifest | EpochRoot | Proposal | Vote | Decision
    ):
        return work(shard(body.project_id))
    return META


ALL = (META, *(work(i) for i in range(SHARDS)))
