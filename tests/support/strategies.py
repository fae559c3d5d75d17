"""Hypothesis strategies that draw valid record bodies of every kind."""

from __future__ import annotations

from hypothesis import strategies as st

from protocol import Acceptance, Body, Contribution, EpochRoot, Manifest, Profile, Project
from protocol.records import (
    MAX_LEAVES,
    MAX_MANIFEST_IDS,
    MAX_PARTS,
    MAX_TIMESTAMP,
    MAX_WEIGHT,
    MIN_TIMESTAMP,
)

timestamps = st.integers(MIN_TIMESTAMP, MAX_TIMESTAMP)
revisions = st.integers(0, 2**53 - 1)
hashes = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).filter(any)
tags = st.from_regex(r"[a-z0-9][a-z0-9+#.\-]{0,31}", fullmatch=True)
tag_sets = st.sets(tags, max_size=8).map(lambda s: tuple(sorted(s)))
# Printable text without C0 controls or DEL; unicode beyond ASCII included.
line = st.characters(blacklist_categories=("Cc", "Cs"))
multiline = st.one_of(line, st.sampled_from("\n\t"))


def text(
    min_size: int, max_size: int, chars: st.SearchStrategy[str] = line
) -> st.SearchStrategy[str]:
    # Sizes are in UTF-8 bytes; a character is at most 4 of them.
    return st.text(chars, min_size=min_size, max_size=max_size // 4)


profiles = st.builds(
    Profile,
    created_at=timestamps,
    revision=revisions,
    name=text(1, 64),
    actor=st.sampled_from(["human", "agent"]),
    skills=tag_sets,
    interests=tag_sets,
    payout=addresses,
    rate=text(0, 64),
)
projects = st.builds(
    Project,
    created_at=timestamps,
    revision=revisions,
    name=st.from_regex(r"[a-z0-9][a-z0-9\-]{0,63}", fullmatch=True),
    title=text(1, 200),
    description=text(0, 2000, multiline),
    skills=tag_sets,
    payout=addresses,
    epoch_length=st.integers(0, 2**32 - 1),
    status=st.sampled_from(["open", "closed"]),
    reviewers=st.sets(hashes, max_size=4).map(lambda s: tuple(sorted(s))),
)
contributions = st.builds(
    Contribution,
    created_at=timestamps,
    project_id=hashes,
    summary=text(1, 400, multiline),
    evidence_uri=text(1, 200),
    evidence_hash=st.one_of(st.just(b""), hashes),
    effort=st.integers(0, 10_000_000),
    payout=addresses,
)
acceptances = st.builds(
    Acceptance,
    created_at=timestamps,
    revision=revisions,
    project_id=hashes,
    contribution_id=hashes,
    epoch=st.integers(0, 2**32 - 1),
    weight=st.integers(0, MAX_WEIGHT),
)
epoch_roots = st.integers(1, MAX_LEAVES).flatmap(
    lambda count: st.builds(
        EpochRoot,
        created_at=timestamps,
        project_id=hashes,
        epoch=st.integers(0, 2**32 - 1),
        root=hashes,
        leaf_count=st.just(count),
        total_weight=st.integers(count, count * MAX_WEIGHT),
        manifest=hashes,
        parts=st.integers(-(-count // MAX_MANIFEST_IDS), min(count, MAX_PARTS)),
        chain_id=st.integers(1, 2**53 - 1),
        contract=addresses,
        tx_hash=hashes,
    )
)
manifests = st.integers(1, MAX_PARTS).flatmap(
    lambda parts: st.integers(0, parts - 1).flatmap(
        lambda part: st.builds(
            Manifest,
            created_at=timestamps,
            project_id=hashes,
            epoch=st.integers(0, 2**32 - 1),
            part=st.just(part),
            parts=st.just(parts),
            next=st.just(b"") if part == parts - 1 else hashes,
            acceptances=st.sets(hashes, min_size=1, max_size=40).map(lambda s: tuple(sorted(s))),
        )
    )
)
bodies: st.SearchStrategy[Body] = st.one_of(
    profiles, projects, contributions, acceptances, manifests, epoch_roots
)
