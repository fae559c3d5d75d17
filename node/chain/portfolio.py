"""Portfolios: one person's accepted, anchored work across projects, in one verifiable file.

A portfolio (format "workwork-portfolio/1", see docs/AUDIT.md) is a versioned list of proof
files (`node.chain.proof`), one per contribution of its author that an anchored epoch pays, each
with the signed manifest parts of that epoch (which list the acceptance the proof carries) and
what the leaf was paid, per token the epoch was funded in, as the chain said at export. So every
check of a proof file applies to each entry, and verification is mostly calls into
`verify_proof`; on top of them, a portfolio checks that

- every contribution is signed by the portfolio's `author` and appears once;
- the manifest parts are signed by the owner, fit the epoch root and each other
  (`protocol.epoch.manifest_parts`), and list the entry's acceptance;
- against a chain, each leaf has been paid at least what the file says (claims only grow).

A failure raises the `ProofError` subclass that `verify_proof` raises for a proof file, its
`field` prefixed with the entry (`entries[2].proof.leaf.weight`, `entries[0].manifest[1]`), so an
edited byte is named wherever it is. Contributions that no anchored epoch pays (not accepted, late,
withdrawn, epoch not anchored) are not in the file: `export_portfolio` returns them aside, each
with the reason, since nothing in the file could prove them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.chain.client import ChainClient
from node.chain.proof import (
    BadRecord,
    ExportError,
    MalformedProof,
    ProofMismatch,
    VerifiedProof,
    address_field,
    decimal_field,
    exact_keys,
    export_proof,
    hash_field,
    hex0x,
    json_object,
    verify_proof,
)
from node.errors import ProofError
from protocol import Manifest, ProtocolError, Record, decode
from protocol.epoch import listed, manifest_parts
from protocol.merkle import Leaf, checksum
from storage import Store
from storage.store import MAX_LIMIT

__all__ = [
    "FORMAT",
    "Exported",
    "LeftOut",
    "VerifiedPortfolio",
    "export_portfolio",
    "verify_portfolio",
]

FORMAT = "workwork-portfolio/1"
_KEYS = ("format", "author", "entries")
_ENTRY_KEYS = ("proof", "manifest", "paid")
_PAID_KEYS = ("token", "claimed")
# More entries than this is not a portfolio anyone reads; it bounds a verifier's work.
MAX_ENTRIES = 10_000
# An epoch's manifest has at most this many parts (a part lists up to 4,096 of 2**20 leaves).
_MAX_PARTS = 512
_MAX_TOKENS = 64

_RECORD_HEX = re.compile(r"0x(?:[0-9a-f]{2})+")


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A contribution of the author that the portfolio does not hold, and why."""

    contribution_id: bytes
    project_id: bytes
    reason: str

    def to_json(self) -> dict[str, str]:
        return {
            "contribution_id": self.contribution_id.hex(),
            "project_id": self.project_id.hex(),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Exported:
    """What `export_portfolio` returns: the file, and the contributions left out of it."""

    data: dict[str, Any]
    left_out: tuple[LeftOut, ...]


@dataclass(frozen=True, slots=True)
class Paid:
    """What one leaf was paid in one token: as the file says, and as the chain says (or None)."""

    token: bytes
    claimed: int
    on_chain: int | None


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    proof: VerifiedProof
    manifest: tuple[Record, ...]
    paid: tuple[Paid, ...]


@dataclass(frozen=True, slots=True)
class VerifiedPortfolio:
    """A portfolio that passed verification, as values; `on_chain` as for a proof file."""

    author: bytes
    entries: tuple[VerifiedEntry, ...]
    on_chain: bool

    def to_json(self) -> dict[str, Any]:
        """Returns what was verified, as JSON-ready values (the API's and the CLI's answer)."""
        return {
            "valid": True,
            "on_chain": self.on_chain,
            "author": self.author.hex(),
            "contributions": len(self.entries),
            "projects": len({e.proof.project_id for e in self.entries}),
            "total_weight": str(sum(e.proof.leaf.weight for e in self.entries)),
            "entries": [
                {
                    **entry.proof.to_json(),
                    "paid": [
                        {
                            "token": checksum(p.token),
                            "claimed": str(p.claimed),
                            "on_chain": None if p.on_chain is None else str(p.on_chain),
                        }
                        for p in entry.paid
                    ],
                }
                for entry in self.entries
            ],
        }


def export_portfolio(store: Store, chain: ChainClient, author: bytes) -> Exported:
    """Returns the portfolio of `author`: a proof file of each of their stored contributions
    that an anchored epoch on `chain` pays, oldest first, and the others aside with the reason.

    Raises:
        ChainError: the chain could not be read.
        StorageError: the store could not be read.
    """
    entries: list[dict[str, Any]] = []
    left_out: list[LeftOut] = []
    cursor = None
    while True:
        page = store.contributions_by(author, cursor=cursor, limit=MAX_LIMIT)
        for work in page.items:
            try:
                proof = export_proof(store, chain, work.id)
            except ExportError as exc:
                left_out.append(LeftOut(work.id, _project_of(work), str(exc)))
                continue
            entries.append(_entry(store, chain, proof))
        if page.cursor is None:
            break
        cursor = page.cursor
    data = {"format": FORMAT, "author": hex0x(author), "entries": entries}
    return Exported(data, tuple(left_out))


def verify_portfolio(data: object, chain: ChainClient | None = None) -> VerifiedPortfolio:
    """Verifies a portfolio offline, and against `chain` if one is given.

    Args:
        data: the portfolio: its JSON text (str or bytes) or the parsed object.
        chain: a client of the chain its proofs name (as for `verify_proof`); None verifies
            offline only.

    Raises:
        ProofError: a subclass naming the field at fault, `entries[i].` and the proof file's
            field for a proof (see `node.chain.proof`).
        ChainError: the chain could not be read.
    """
    parsed = _parse(data)
    author = hash_field(parsed["author"], "author")
    entries = parsed["entries"]
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise MalformedProof(f"must be a list of at most {MAX_ENTRIES} entries", field="entries")
    seen: set[bytes] = set()
    checked = []
    for i, entry in enumerate(entries):
        prefix = f"entries[{i}]."
        try:
            checked.append(_verify_entry(entry, author, chain, seen))
        except ProofError as exc:
            raise _within(prefix, exc) from exc
    return VerifiedPortfolio(author, tuple(checked), chain is not None)


def _verify_entry(
    entry: object, author: bytes, chain: ChainClient | None, seen: set[bytes]
) -> VerifiedEntry:
    if not isinstance(entry, Mapping):
        raise MalformedProof("must be an object")
    exact_keys(entry, _ENTRY_KEYS, "")
    try:
        proof = verify_proof(entry["proof"], chain)
    except ProofError as exc:
        raise _within("proof.", exc) from exc
    if proof.contribution.author != author:
        raise ProofMismatch(
            f"the contribution is signed by {proof.contribution.author.hex()}, the portfolio's "
            f"author is {author.hex()}",
            field="proof.contribution",
            expected=author.hex(),
            found=proof.contribution.author.hex(),
        )
    if proof.leaf.contribution_id in seen:
        raise ProofMismatch("the contribution is in the portfolio twice", field="proof.leaf")
    seen.add(proof.leaf.contribution_id)
    parts = _manifest(entry["manifest"], proof)
    paid = _paid(entry["paid"], proof, chain)
    return VerifiedEntry(proof, parts, paid)


def _manifest(value: object, proof: VerifiedProof) -> tuple[Record, ...]:
    """Checks the manifest parts: signed, fitting the epoch root, listing the acceptance."""
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_PARTS:
        raise MalformedProof(
            f"must be a list of 1 to {_MAX_PARTS} signed records", field="manifest"
        )
    records = [_record(part, f"manifest[{i}]") for i, part in enumerate(value)]
    by_id = {record.id: record for record in records}
    try:
        parts = manifest_parts(proof.epoch_root, proof.project, by_id.get)
    except ProtocolError as exc:
        raise ProofMismatch(
            f"the parts do not make the manifest the epoch root names: {exc}", field="manifest"
        ) from exc
    for i, (record, part) in enumerate(zip(records, parts, strict=False)):
        if record.id != part.id:
            raise ProofMismatch(
                "is not the manifest part the epoch root and the parts before it name",
                field=f"manifest[{i}]",
                expected=part.id.hex(),
                found=record.id.hex(),
            )
    if len(records) != len(parts):
        raise ProofMismatch(
            f"the epoch root names {len(parts)} parts, the file has {len(records)}",
            field="manifest",
            expected=str(len(parts)),
            found=str(len(records)),
        )
    if proof.acceptance.id not in listed(parts):
        raise ProofMismatch(
            f"the manifest does not list the acceptance {proof.acceptance.id.hex()}",
            field="manifest",
        )
    return tuple(parts)


def _paid(value: object, proof: VerifiedProof, chain: ChainClient | None) -> tuple[Paid, ...]:
    if not isinstance(value, list) or len(value) > _MAX_TOKENS:
        raise MalformedProof(f"must be a list of at most {_MAX_TOKENS} objects", field="paid")
    client = chain
    if chain is not None and chain.address != proof.contract:
        client = ChainClient(chain.w3, proof.contract, config=chain.config)
    found: list[Paid] = []
    tokens: set[bytes] = set()
    for i, item in enumerate(value):
        name = f"paid[{i}]"
        if not isinstance(item, Mapping):
            raise MalformedProof("must be an object", field=name)
        exact_keys(item, _PAID_KEYS, name + ".")
        token = address_field(item["token"], name + ".token")
        if token in tokens:
            raise MalformedProof("the token is listed twice", field=name + ".token")
        tokens.add(token)
        claimed = decimal_field(item["claimed"], name + ".claimed")
        on_chain = None
        if client is not None:
            on_chain = client.claimed(proof.owner, proof.project_id, proof.epoch, proof.leaf, token)
            # Claims only grow: the chain may hold more than at export, never less.
            if on_chain < claimed:
                raise ProofMismatch(
                    f"the chain says the leaf was paid {on_chain} in {checksum(token)}, the file "
                    f"says {claimed}",
                    field=name + ".claimed",
                    expected=str(on_chain),
                    found=str(claimed),
                )
        found.append(Paid(token, claimed, on_chain))
    return tuple(found)


# Export helpers.


def _entry(store: Store, chain: ChainClient, proof: dict[str, Any]) -> dict[str, Any]:
    record = decode(bytes.fromhex(proof["epoch_root"][2:]))
    project = decode(bytes.fromhex(proof["project"][2:]))
    parts = manifest_parts(record, project, store.get)
    owner = bytes.fromhex(proof["owner"][2:])
    pid = bytes.fromhex(proof["project_id"][2:])
    epoch = proof["epoch"]
    stated = proof["leaf"]
    mine = Leaf(
        bytes.fromhex(stated["contribution_id"][2:]),
        bytes.fromhex(stated["payout"][2:]),
        int(stated["weight"]),
    )
    paid = [
        {"token": checksum(token), "claimed": str(chain.claimed(owner, pid, epoch, mine, token))}
        for token in chain.epoch_tokens(owner, pid, epoch)
    ]
    return {"proof": proof, "manifest": [hex0x(part.raw) for part in parts], "paid": paid}


def _project_of(work: Record) -> bytes:
    project_id: bytes = getattr(work.body, "project_id", b"")
    return project_id


# Parsing.


def _parse(data: object) -> dict[str, Any]:
    data = json_object(data, "a portfolio")
    exact_keys(data, _KEYS, "")
    if data["format"] != FORMAT:
        raise MalformedProof(
            f"unknown format {data['format']!r}",
            field="format",
            expected=FORMAT,
            found=repr(data["format"]),
        )
    return dict(data)


def _record(value: object, name: str) -> Record:
    if not isinstance(value, str) or not _RECORD_HEX.fullmatch(value):
        raise MalformedProof("must be a signed record as 0x and lowercase hex", field=name)
    try:
        record = decode(bytes.fromhex(value[2:]))
    except ProtocolError as exc:
        raise BadRecord(str(exc), field=name) from exc
    if not isinstance(record.body, Manifest):
        raise BadRecord(
            f"holds a {record.kind} record, not a {Manifest.KIND}",
            field=name,
            expected=Manifest.KIND,
            found=record.kind,
        )
    return record


def _within(prefix: str, exc: ProofError) -> ProofError:
    """Returns `exc` again, its field under `prefix` (an entry, or an entry's proof)."""
    message = str(exc)
    if exc.field and message.startswith(exc.field + ": "):
        message = message[len(exc.field) + 2 :]
    field = prefix + exc.field if exc.field else prefix.rstrip(".")
    return type(exc)(message, field=field, expected=exc.expected, found=exc.found)
