#!/usr/bin/env python3
"""An offline walk through the protocol core: one project, one epoch, two paid contributors.

Alice posts a project; Bob (a person) and a translation agent contribute; Alice accepts both
into epoch 0; the epoch's Merkle tree is built from the signed records; Bob's claim is proved
and checked as the contract will check it; a funded amount is split pro rata.
Nothing here touches a network or a chain: those parts of WorkWork are not built yet.
"""

from __future__ import annotations

import hashlib
import time

from nacl.signing import SigningKey

from protocol import (
    Acceptance,
    Contribution,
    Profile,
    Project,
    decode,
    project_id,
    settlement,
    sign,
)
from protocol import epoch as epochs
from protocol.merkle import checksum, verify
from protocol.validate import check, check_acceptance, check_contribution


def main() -> None:
    now = int(time.time())
    keys = {name: SigningKey.generate() for name in ("alice", "bob", "agent")}
    wallets = {name: hashlib.sha256(name.encode()).digest()[:20] for name in keys}

    def say(text: str) -> None:
        print(f"  {text}")

    print("1. Profiles and a project posting, signed with Ed25519")
    profiles = [
        sign(
            Profile(now, 0, "Bob", "human", ("spanish", "writing"), ("docs",), wallets["bob"], ""),
            keys["bob"],
        ),
        sign(
            Profile(now, 0, "translator-7", "agent", ("german",), (), wallets["agent"], "per word"),
            keys["agent"],
        ),
    ]
    posting = sign(
        Project(
            now,
            0,
            "translate-docs",
            "Translate the docs",
            "Spanish and German.",
            ("german", "spanish"),
            wallets["alice"],
            604_800,
            "open",
            (),
        ),
        keys["alice"],
    )
    pid = project_id(posting.author, "translate-docs")
    for record in (*profiles, posting):
        say(f"{record.kind:<12} {record.id.hex()[:16]}  {len(record.raw)} bytes")

    print("2. Contributions, and the owner's acceptances into epoch 0")
    works = [
        sign(
            Contribution(
                now,
                pid,
                "Spanish translation of chapter 1",
                "https://example.org/pr/1",
                b"",
                180,
                wallets["bob"],
            ),
            keys["bob"],
        ),
        sign(
            Contribution(
                now,
                pid,
                "German translation of chapter 1",
                "",
                hashlib.sha256(b"kapitel 1").digest(),
                12,
                wallets["agent"],
            ),
            keys["agent"],
        ),
    ]
    acceptances = [
        sign(Acceptance(now, 0, pid, works[0].id, 0, 300), keys["alice"]),
        sign(Acceptance(now, 0, pid, works[1].id, 0, 100), keys["alice"]),
    ]
    # Every record goes through the same gates a node applies to bytes from a peer.
    for record in (*profiles, posting, *works, *acceptances):
        check(decode(record.raw), now=now)
    for work in works:
        check_contribution(work, posting)
    for acceptance, work in zip(acceptances, works, strict=True):
        check_acceptance(acceptance, posting, work)
        say(f"accepted {work.id.hex()[:16]} weight {acceptance.body.weight}")  # type: ignore[attr-defined]

    print("3. The epoch's Merkle tree (OpenZeppelin StandardMerkleTree format)")
    tree, summary = epochs.tree(posting, acceptances, {w.id: w for w in works}, 0)
    say(
        f"root 0x{summary.root.hex()}  leaves {summary.leaf_count}  total weight {summary.total_weight}"
    )

    print("4. Bob's claim: his leaf and proof, verified as MerkleProof.sol will")
    leaf = tree.leaves[tree.index_of(works[0].id)]
    proof = tree.proof(works[0].id)
    say(f"leaf ({works[0].id.hex()[:16]}.., {checksum(leaf.payout)}, {leaf.weight})")
    say(
        f"proof {[p.hex()[:16] for p in proof]} -> {'valid' if verify(summary.root, leaf, proof) else 'INVALID'}"
    )

    print("5. Settlement of 1 ETH funded to the epoch")
    funded = 10**18
    split = settlement.distribute(funded, [leaf.weight for leaf in tree.leaves])
    for leaf, amount in zip(tree.leaves, split.amounts, strict=True):
        say(f"{checksum(leaf.payout)} weight {leaf.weight:>4} gets {amount} wei")
    say(f"remainder kept by the contract: {split.remainder} wei")


if __name__ == "__main__":
    main()
