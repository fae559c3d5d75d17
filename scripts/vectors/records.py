#!/usr/bin/env python3
"""Writes tests/vectors/records.json: fixed keys and bodies, and the exact bytes they give.

The bodies are fixed here; the bytes, signatures and ids are what our encoder produces. They are
checked independently by scripts/vectors/records.mjs (msgpack and Ed25519 from other authors, in
JavaScript), and frozen so any change of the wire format shows up as a failing test.

Run: .venv/bin/python scripts/vectors/records.py > tests/vectors/records.json
"""

from __future__ import annotations

import hashlib
import json
import sys

from nacl.signing import SigningKey

from protocol import (
    FORMAT_VERSION,
    SIGNING_DOMAIN,
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
    encode_body,
    project_id,
    sign,
)
from protocol.records import MAX_ABOUT
from protocol.uri import URI_RULE_FROM, evidence_uri

# 117 lines of 17 bytes, then 11 more: MAX_ABOUT bytes exactly.
ABOUT_AT_LIMIT = "Ops\tÑ€€𝄞\n" * 117 + "€€€ok"
assert len(ABOUT_AT_LIMIT.encode()) == MAX_ABOUT


def seed(name: str) -> bytes:
    return hashlib.sha256(b"workwork test key " + name.encode()).digest()


def typed(value: object) -> tuple[str, object]:
    """Returns the value with a type tag that tells a JavaScript encoder what to emit."""
    if isinstance(value, bool):
        raise TypeError("no booleans in records")
    if isinstance(value, int):
        return "int", value
    if isinstance(value, str):
        return "str", value
    if isinstance(value, bytes):
        return "bin", value.hex()
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "str[]", list(value)
    if isinstance(value, tuple) and all(type(v) is int for v in value):
        return "int[]", list(value)
    if isinstance(value, tuple) and all(isinstance(v, bytes) for v in value):
        return "bin[]", [v.hex() for v in value]
    if isinstance(value, tuple):
        # A proposal's parameters: an array whose items have types of their own.
        return "arr", [list(typed(v)) for v in value]
    raise TypeError(type(value))


def case(
    name: str, signer: str, body: Body, links: dict[str, str] | None = None
) -> dict[str, object]:
    """One vector. `links` names, for fields that hold another record's id, the case whose
    record that is: the JavaScript side derives that id itself and checks the link."""
    key = SigningKey(seed(signer))
    record = sign(body, key)
    out: dict[str, object] = {
        "name": name,
        "seed": seed(signer).hex(),
        "kind": body.KIND,
        # What goes on the wire: optional trailing fields that are absent are left out.
        "fields": [
            [field, *typed(value)]
            for (field, _), value in zip(body.SCHEMA, body.wire(), strict=False)
        ],
        "author": record.author.hex(),
        "body": encode_body(body).hex(),
        "signature": record.signature.hex(),
        "envelope": record.raw.hex(),
        "id": record.id.hex(),
    }
    if links:
        out["links"] = links
    return out


def record_id(signer: str, body: Body) -> bytes:
    return sign(body, SigningKey(seed(signer))).id


def main() -> None:
    alice = bytes(SigningKey(seed("alice")).verify_key)
    carol = bytes(SigningKey(seed("carol")).verify_key)
    t0 = 1_767_225_600  # 2026-01-01T00:00:00Z
    pid = project_id(alice, "translate-docs")
    contribution = Contribution(
        created_at=t0 + 3600,
        project_id=pid,
        summary="Translated chapters 1-3 to Spanish.\nGlossary included.",
        evidence_uri="https://example.org/pr/17",
        evidence_hash=hashlib.sha256(b"chapters 1-3").digest(),
        effort=240,
        payout=bytes.fromhex("b0b0000000000000000000000000000000000b0b"),
    )
    contribution_id = record_id("bob", contribution)
    acceptance = Acceptance(
        created_at=t0 + 7200,
        revision=0,
        project_id=pid,
        contribution_id=contribution_id,
        epoch=2,
        weight=300,
    )
    # A manifest of three acceptances in two parts (two ids, then one), and its epoch root:
    # part 0 names part 1's record id, the root names part 0's.
    listed = sorted(
        [record_id("carol", acceptance)]
        + [hashlib.sha256(b"acceptance %d" % i).digest() for i in (1, 2)]
    )
    last = Manifest(
        created_at=t0 + 604_800 * 3,
        project_id=pid,
        epoch=2,
        part=1,
        parts=2,
        next=b"",
        acceptances=tuple(listed[2:]),
    )
    first = Manifest(
        created_at=t0 + 604_800 * 3,
        project_id=pid,
        epoch=2,
        part=0,
        parts=2,
        next=record_id("alice", last),
        acceptances=tuple(listed[:2]),
    )
    # Collective decisions: a proposal to allocate pool funds (parameters of three types, an
    # amount beyond 2^64 as decimal text), one to change settings (a nested set of keys), one
    # with options to approve, and votes on them that name them by id.
    allocate = Proposal(
        created_at=t0 + 604_800 * 3 + 600,
        project_id=pid,
        action="allocate",
        title="Pay epoch 2 from the pool",
        text="The pool holds 3 ETH; epoch 2 shipped the Spanish docs.\nPay it 1.5 ETH.",
        params=(2, bytes(20), "1500000000000000000000000000000"),
        options=(),
        snapshot=2,
        closes_at=t0 + 604_800 * 4,
    )
    approval = Proposal(
        created_at=t0 + 604_800 * 3 + 700,
        project_id=pid,
        action="signal",
        title="Which language next?",
        text="",
        params=(),
        options=("German", "Français", "日本語"),
        snapshot=2,
        closes_at=t0 + 604_800 * 3 + 700 + 60,
    )
    vote_yes = Vote(
        created_at=t0 + 604_800 * 3 + 900,
        revision=0,
        project_id=pid,
        proposal_id=record_id("bob", allocate),
        choice="yes",
        approve=(),
        reason="Epoch 2 earned it.",
    )
    # The owner's decision on the allocation: carol's yes with power 30 of 45 (a quorum of 20 %
    # and more than half of yes + no), dated five minutes after the window closed.
    decision = Decision(
        created_at=t0 + 604_800 * 4 + 300,
        project_id=pid,
        proposal_id=record_id("bob", allocate),
        ballots=(record_id("carol", vote_yes),),
        powers=(30,),
        total=45,
        quorum=200,
        threshold=500,
        half_life=0,
        yes=30,
        no=0,
        abstain=0,
        approvals=(),
        winners=(),
        outcome="passed",
    )
    cases = [
        case(
            "profile-human",
            "alice",
            Profile(
                created_at=t0,
                revision=0,
                name="Alice Ñúñez",
                actor="human",
                skills=("python", "rust", "solidity"),
                interests=("open-source", "translation"),
                payout=bytes.fromhex("a11ce00000000000000000000000000000000a11"),
                rate="60 USD/h",
                about="Translator and Rust developer in Sevilla.\nI care about open-source "
                "docs — in every language.",
            ),
        ),
        case(
            "profile-agent-empty-lists",
            "agent",
            Profile(
                created_at=t0 + 1,
                revision=7,
                name="translator-bot",
                actor="agent",
                skills=(),
                interests=(),
                payout=bytes.fromhex("00000000000000000000000000000000000000a9"),
                rate="",
                about="",
            ),
        ),
        # An `about` of exactly MAX_ABOUT bytes (a str16 on the wire), of 1- to 4-byte
        # characters, new lines and tabs.
        case(
            "profile-about-at-limit",
            "carol",
            Profile(
                created_at=t0 + 2,
                revision=1,
                name="Carol",
                actor="human",
                skills=("k8s",),
                interests=(),
                payout=bytes.fromhex("ca401000000000000000000000000000000000ca"),
                rate="",
                about=ABOUT_AT_LIMIT,
            ),
        ),
        case(
            "project",
            "alice",
            Project(
                created_at=t0 + 60,
                revision=1,
                name="translate-docs",
                title="Translate the WorkWork docs",
                description="Translate docs/ into Spanish and German.\n\tOne PR per chapter.",
                skills=("german", "spanish", "translation"),
                payout=bytes.fromhex("a11ce00000000000000000000000000000000a11"),
                epoch_length=604_800,
                status="open",
                reviewers=(carol,),
            ),
        ),
        # The optional governance settings (mode, quorum, threshold, half-life, window) of a
        # project revision; the case above, without them, keeps its bytes and id.
        case(
            "project-governed",
            "alice",
            Project(
                created_at=t0 + 120,
                revision=2,
                name="translate-docs",
                title="Translate the WorkWork docs",
                description="",
                skills=(),
                payout=bytes.fromhex("a11ce00000000000000000000000000000000a11"),
                epoch_length=0,
                status="open",
                reviewers=(),
                governance=("lazy", 250, 600, 4, 3 * 86_400),
            ),
        ),
        case("contribution", "bob", contribution),
        # Dated after the evidence URI rule (protocol.uri): a file in the author's node's
        # evidence store, its workwork: URI naming the same sha256 as the hash.
        case(
            "contribution-workwork-evidence",
            "bob",
            Contribution(
                created_at=URI_RULE_FROM + 60,
                project_id=pid,
                summary="Chapter 4 in German.",
                evidence_uri=evidence_uri(hashlib.sha256(b"chapter 4").digest()),
                evidence_hash=hashlib.sha256(b"chapter 4").digest(),
                effort=90,
                payout=bytes.fromhex("b0b0000000000000000000000000000000000b0b"),
            ),
        ),
        case("acceptance", "carol", acceptance),
        case("manifest-part-1", "alice", last),
        case("manifest-part-0", "alice", first, {"next": "manifest-part-1"}),
        case(
            "epoch-root",
            "alice",
            EpochRoot(
                created_at=t0 + 604_800 * 3 + 12,
                project_id=pid,
                epoch=2,
                root=hashlib.sha256(b"tree of epoch 2").digest(),
                leaf_count=3,
                total_weight=700,
                manifest=record_id("alice", first),
                parts=2,
                chain_id=31337,
                contract=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"),
                tx_hash=hashlib.sha256(b"anchor of epoch 2").digest(),
            ),
            {"manifest": "manifest-part-0"},
        ),
        case(
            "epoch-root-large-ints",
            "alice",
            EpochRoot(
                created_at=2**32 + 5,
                project_id=pid,
                epoch=2**32 - 1,
                root=hashlib.sha256(b"root").digest(),
                leaf_count=70_000,
                total_weight=2**45 + 1,
                manifest=hashlib.sha256(b"manifest").digest(),
                parts=37,
                chain_id=31337,
                contract=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"),
                tx_hash=hashlib.sha256(b"tx").digest(),
            ),
        ),
        case("proposal-allocate", "bob", allocate),
        case(
            "proposal-settings",
            "carol",
            Proposal(
                created_at=t0 + 604_800 * 3 + 650,
                project_id=pid,
                action="settings",
                title="Quorum of a third, decay by half a year",
                text="",
                params=(333, 500, 26, 604_800, (alice, carol), "open"),
                options=(),
                snapshot=2,
                closes_at=t0 + 604_800 * 3 + 650 + 90 * 86_400,
            ),
        ),
        # A settings proposal with the optional mode and lazy-consensus window.
        case(
            "proposal-settings-mode",
            "bob",
            Proposal(
                created_at=t0 + 604_800 * 3 + 660,
                project_id=pid,
                action="settings",
                title="Lazy consensus",
                text="Acceptances stand unless overturned within two days.",
                params=(200, 500, 0, 604_800, (carol,), "closed", "lazy", 2 * 86_400),
                options=(),
                snapshot=2,
                closes_at=t0 + 604_800 * 3 + 660 + 86_400,
            ),
        ),
        case("proposal-options", "bob", approval),
        case(
            "vote-yes",
            "carol",
            vote_yes,
            {"proposal_id": "proposal-allocate"},
        ),
        case(
            "decision-passed",
            "alice",
            decision,
            {"proposal_id": "proposal-allocate", "ballots": ["vote-yes"]},
        ),
        case(
            "vote-approve-revised",
            "bob",
            Vote(
                created_at=t0 + 604_800 * 3 + 759,
                revision=3,
                project_id=pid,
                proposal_id=record_id("bob", approval),
                choice="approve",
                approve=(0, 2),
                reason="",
            ),
            {"proposal_id": "proposal-options"},
        ),
    ]
    out = {
        "generator": "scripts/vectors/records.py",
        "format_version": FORMAT_VERSION,
        "signing_domain": SIGNING_DOMAIN.hex(),
        "cases": cases,
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
