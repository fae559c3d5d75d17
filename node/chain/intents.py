"""The values an anchor is made of: its intent (the signed transaction and the manifest's list of
acceptances, recorded before it is sent), the chain it is for, and the anchored epoch it ends as.

The intent's encoding is what the store keeps across restarts: it must stay readable by every
later version of the node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from node.chain.client import SignedTx
from node.errors import SettlementError
from protocol import EpochRoot, Record
from protocol.epoch import Summary

_INTENT = b"anchor"


def intent_key(project_id: bytes, epoch: int) -> bytes:
    """Returns the key of an epoch's intent in the store's node state."""
    return _INTENT + project_id + epoch.to_bytes(4, "big")


def is_intent_key(key: bytes) -> bool:
    """Returns whether a key of the store's intents is an anchoring intent."""
    return key.startswith(_INTENT)


@dataclass(frozen=True, slots=True)
class Intent:
    """A signed anchor transaction, recorded before it is sent.

    `tx.raw` is empty for an anchor this node adopted from the chain (it has no signed bytes of
    it, only the hash of the transaction that the Anchored event names). `acceptances` are the
    ids of the acceptances the tree of `summary` was built from, sorted: what the manifest
    published with the epoch root lists, fixed before the anchor is sent so that acceptances
    arriving meanwhile cannot change it.
    """

    project_id: bytes
    epoch: int
    summary: Summary
    chain_id: int
    contract: bytes
    tx: SignedTx
    acceptances: tuple[bytes, ...]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "project_id": self.project_id.hex(),
                "epoch": self.epoch,
                "root": self.summary.root.hex(),
                "leaf_count": self.summary.leaf_count,
                "total_weight": self.summary.total_weight,
                "chain_id": self.chain_id,
                "contract": self.contract.hex(),
                "raw": self.tx.raw.hex(),
                "hash": self.tx.hash.hex(),
                "nonce": self.tx.nonce,
                "acceptances": b"".join(self.acceptances).hex(),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Intent:
        """Reads an encoded intent.

        Raises:
            SettlementError: the bytes are not an intent (the store was damaged).
        """
        try:
            d = json.loads(data)
            summary = Summary(bytes.fromhex(d["root"]), d["leaf_count"], d["total_weight"])
            tx = SignedTx(bytes.fromhex(d["raw"]), bytes.fromhex(d["hash"]), d["nonce"])
            joined = bytes.fromhex(d["acceptances"])
            if not joined or len(joined) % 32:
                raise ValueError("the acceptances are not a list of 32-byte ids")
            return cls(
                bytes.fromhex(d["project_id"]),
                d["epoch"],
                summary,
                d["chain_id"],
                bytes.fromhex(d["contract"]),
                tx,
                tuple(joined[i : i + 32] for i in range(0, len(joined), 32)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SettlementError(f"a recorded anchoring intent is unreadable: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Anchored:
    """An anchored epoch, as this node published it."""

    project_id: bytes
    epoch: int
    summary: Summary
    tx_hash: bytes
    block_number: int
    record: Record


@dataclass(frozen=True, slots=True)
class ChainRef:
    """The chain and contract an anchor is for, and the wallet that sends it."""

    chain_id: int
    contract: bytes
    sender: bytes


def published(
    roots: Iterable[Record], author: bytes, chain_id: int, contract: bytes
) -> list[Anchored]:
    """Returns the epoch roots that `author` published on this chain and contract, as anchors.

    Their block numbers are unknown (-1): a record names a transaction, not its block.
    """
    out = []
    for record in roots:
        body = record.expect(EpochRoot)
        if record.author == author and body.chain_id == chain_id and body.contract == contract:
            summary = Summary(body.root, body.leaf_count, body.total_weight)
            out.append(Anchored(body.project_id, body.epoch, summary, body.tx_hash, -1, record))
    return out
