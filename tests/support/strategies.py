"""Hypothesis strategies that draw valid record bodies of every kind."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

from protocol import (
    Acceptance,
    Body,
    Contribution,
    Decision,
    EpochRoot,
    Manifest,
    Profile,
    Project,
    Proposal,
    Vote,
)
from protocol.records import (
    MAX_ABOUT,
    MAX_LEAVES,
    MAX_MANIFEST_IDS,
    MAX_OPTIONS,
    MAX_PARTS,
    MAX_TIMESTAMP,
    MAX_WEIGHT,
    MAX_WINDOW,
    MIN_TIMESTAMP,
    MIN_WINDOW,
    MODES,
)
from protocol.uri import URI_RULE_FROM, evidence_uri

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
    about=text(0, MAX_ABOUT, multiline),
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
    # The optional governance: absent (the defaults) or all five settings.
    governance=st.one_of(
        st.just(()),
        st.tuples(
            st.sampled_from(MODES),
            st.integers(0, 1000),
            st.integers(0, 1000),
            st.integers(0, 2**32 - 1),
            st.integers(0, MAX_WINDOW),
        ),
    ),
)
# Evidence URIs others can open (protocol.uri), which contributions from URI_RULE_FROM carry;
# older ones may carry any text.
_PATHS = st.from_regex(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,20}){0,3}", fullmatch=True).filter(
    lambda p: re.fullmatch(r"([^%]|%[0-9A-Fa-f]{2})*", p) is not None
)
open_uris = st.one_of(
    st.builds(
        lambda host, path: f"https://{host}{path}",
        st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}", fullmatch=True),
        _PATHS,
    ),
    st.builds(
        lambda cid, path: f"ipfs://b{cid}{path}",
        st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=58, max_size=58),
        _PATHS,
    ),
    st.builds(lambda tx: f"ar://{tx}", st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True)),
)


def _contribution(
    created_at: int, uri: str, old_uri: str, digest: bytes, workwork: bool, **rest: Any
) -> Contribution:
    """A contribution whose URI fits its date: any text before URI_RULE_FROM, else a URI
    others can open (a workwork: one names the hash)."""
    if created_at < URI_RULE_FROM:
        uri = old_uri
    elif workwork and digest:
        uri = evidence_uri(digest)
    return Contribution(created_at=created_at, evidence_uri=uri, evidence_hash=digest, **rest)


contributions = st.builds(
    _contribution,
    created_at=timestamps,
    uri=open_uris,
    old_uri=text(1, 200),
    digest=st.one_of(st.just(b""), hashes),
    workwork=st.booleans(),
    project_id=hashes,
    summary=text(1, 400, multiline),
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
epochs = st.integers(0, 2**32 - 1)
keysets = st.sets(hashes, max_size=4).map(lambda s: tuple(sorted(s)))
params = {
    "signal": st.just(()),
    "allocate": st.tuples(
        epochs, st.binary(min_size=20, max_size=20), st.integers(1, 2**256 - 1).map(str)
    ),
    "accept": st.tuples(hashes, epochs, st.integers(0, MAX_WEIGHT)),
    "settings": st.one_of(
        st.tuples(
            st.integers(0, 1000),
            st.integers(0, 1000),
            epochs,
            epochs,
            keysets,
            st.sampled_from(["open", "closed"]),
        ),
        # With the optional mode and window.
        st.tuples(
            st.integers(0, 1000),
            st.integers(0, 1000),
            epochs,
            epochs,
            keysets,
            st.sampled_from(["open", "closed"]),
            st.sampled_from(MODES),
            st.integers(0, MAX_WINDOW),
        ),
    ),
}
options = st.one_of(
    st.just(()),
    st.lists(text(1, 200), min_size=2, max_size=MAX_OPTIONS, unique=True).map(tuple),
)
# The window: created_at, then closes_at between MIN_WINDOW and MAX_WINDOW later.
windows = st.tuples(
    st.integers(MIN_TIMESTAMP, MAX_TIMESTAMP - MAX_WINDOW), st.integers(MIN_WINDOW, MAX_WINDOW)
)
proposals = st.tuples(st.sampled_from(sorted(params)), windows).flatmap(
    lambda drawn: st.builds(
        Proposal,
        created_at=st.just(drawn[1][0]),
        project_id=hashes,
        action=st.just(drawn[0]),
        title=text(1, 200),
        text=text(0, 2000, multiline),
        params=params[drawn[0]],
        options=options,
        snapshot=epochs,
        closes_at=st.just(drawn[1][0] + drawn[1][1]),
    )
)
votes = st.sampled_from(["yes", "no", "abstain", "approve"]).flatmap(
    lambda choice: st.builds(
        Vote,
        created_at=timestamps,
        revision=revisions,
        project_id=hashes,
        proposal_id=hashes,
        choice=st.just(choice),
        approve=(
            st.sets(st.integers(0, MAX_OPTIONS - 1), min_size=1).map(lambda s: tuple(sorted(s)))
            if choice == "approve"
            else st.just(())
        ),
        reason=text(0, 2000, multiline),
    )
)
# A decision's structural rules only (its figures need its proposal: check_decision).
powers = st.integers(0, 2**40)
decisions = st.sets(hashes, max_size=20).flatmap(
    lambda ballots: st.lists(powers, min_size=len(ballots), max_size=len(ballots)).flatmap(
        lambda given: st.builds(
            Decision,
            created_at=timestamps,
            project_id=hashes,
            proposal_id=hashes,
            ballots=st.just(tuple(sorted(ballots))),
            powers=st.just(tuple(given)),
            total=st.integers(sum(given), sum(given) + 2**40),
            quorum=st.integers(0, 1000),
            threshold=st.integers(0, 1000),
            half_life=epochs,
            yes=powers,
            no=powers,
            abstain=powers,
            approvals=st.lists(powers, max_size=MAX_OPTIONS).map(tuple),
            winners=st.lists(
                st.integers(0, MAX_OPTIONS - 1), max_size=MAX_OPTIONS, unique=True
            ).map(tuple),
            outcome=st.sampled_from(["passed", "rejected", "no quorum"]),
        )
    )
)
bodies: st.SearchStrategy[Body] = st.one_of(
    profiles,
    projects,
    contributions,
    acceptances,
    manifests,
    epoch_roots,
    proposals,
    votes,
    decisions,
)
