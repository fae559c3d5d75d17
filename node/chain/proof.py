"""Proof files: one contribution's proof of payment, for an auditor who has nothing else.

A proof file (format "workwork-proof/1", see docs/AUDIT.md) carries the leaf, its Merkle proof,
where the root was anchored, and the signed records that justify the leaf: the contribution, the
acceptance that weighs it, and (our additions to the design's list) the project revision in force,
whose owner and reviewers are the ones who may accept and whose payout address is the anchoring
address, and the owner's signed `epoch_root`, which ties the root to its chain, contract and
transaction. (If the project changed its payout address after anchoring, the file's `owner` is
the anchor's sender, `node.chain.anchors`, and only the chain can confirm it.) So the file can be
checked in two steps:

- offline (`verify_proof(data)`): the JSON's shape and types, every signature, that the records
  and the file's fields say the same thing, that the acceptance is by the owner or a reviewer, and
  that the proof leads from the leaf to the root;
- against a chain (`verify_proof(data, chain)`): the chain id, the settlement contract's code at
  `contract`, the `Anchored` event with that root in `tx_hash` at `block_number`, the epoch's
  stored root, and the contract's own `verify`, which runs OpenZeppelin's `MerkleProof` as `claim`
  does.

Every failure raises a subclass of `ProofError` whose `field` names the part of the file at fault
and whose `expected` and `found` give the values that disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from web3.logs import DISCARD

from node.chain.anchors import find_epoch_anchor
from node.chain.client import ChainClient
from node.chain.trees import committed_tree, standing_of
from node.errors import ChainError, ProofError
from protocol import (
    Acceptance,
    Contribution,
    EpochRoot,
    NotAuthorized,
    Project,
    ProtocolError,
    Record,
    decode,
    project_id,
)
from protocol.epoch import Status
from protocol.merkle import LEAF_ENCODING, Leaf, MerkleTree, checksum, verify
from protocol.records import MAX_EPOCH, Body
from protocol.validate import check_acceptance, check_authorized, check_epoch_root
from storage import Store
from storage.store import MAX_LIMIT

__all__ = [
    "FORMAT",
    "AnchorNotFound",
    "BadRecord",
    "ChainRejects",
    "ExportError",
    "InvalidMerkleProof",
    "MalformedProof",
    "NoContract",
    "ProofError",
    "ProofMismatch",
    "Unauthorized",
    "VerifiedProof",
    "WrongChain",
    "export_proof",
    "verify_proof",
]

FORMAT = "workwork-proof/1"
_KEYS = (
    "format",
    "chain_id",
    "contract",
    "tx_hash",
    "block_number",
    "owner",
    "project_id",
    "epoch",
    "root",
    "leaf_encoding",
    "leaf",
    "proof",
    "contribution",
    "acceptance",
    "project",
    "epoch_root",
)
_LEAF_KEYS = ("contribution_id", "payout", "weight")
# A tree holds at most 2**20 leaves (protocol.records.MAX_LEAVES), so its proofs are shorter.
_MAX_PROOF = 64
# JSON integers that every JSON reader (JavaScript's included) keeps exactly.
_MAX_JSON_INT = 2**53 - 1

_HEX32 = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_RECORD_HEX = re.compile(r"0x(?:[0-9a-f]{2})+")


class MalformedProof(ProofError):
    """Raised when a proof file is not JSON of the expected shape, keys and types."""


class BadRecord(ProofError):
    """Raised when a record in a proof file does not decode, is badly signed, or is another kind."""


class ProofMismatch(ProofError):
    """Raised when a field of a proof file disagrees with its signed records or with the chain."""


class Unauthorized(ProofError):
    """Raised when the acceptance or epoch root of a proof file is signed by someone not allowed."""


class InvalidMerkleProof(ProofError):
    """Raised when a proof file's Merkle proof does not lead from its leaf to its root."""


class WrongChain(ProofError):
    """Raised when a proof file is verified against a chain with another chain id."""


class NoContract(ProofError):
    """Raised when the settlement contract's code is not at a proof file's `contract` address."""


class AnchorNotFound(ProofError):
    """Raised when the chain has no `Anchored` event of a proof file's root where the file says."""


class ChainRejects(ProofError):
    """Raised when the contract's `verify` does not accept a proof file's leaf and proof."""


class ExportError(ProofError):
    """Raised when no proof can be exported: the contribution is not accepted or not anchored."""


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """A proof file that passed verification, as values.

    `on_chain` says whether it was also checked against a chain, not only offline.
    """

    chain_id: int
    contract: bytes
    tx_hash: bytes
    block_number: int
    owner: bytes
    project_id: bytes
    epoch: int
    root: bytes
    leaf: Leaf
    proof: tuple[bytes, ...]
    contribution: Record
    acceptance: Record
    project: Record
    epoch_root: Record
    on_chain: bool

    def to_json(self) -> dict[str, Any]:
        """Returns what was verified, as JSON-ready values (the API's and the CLI's answer)."""
        return {
            "valid": True,
            "on_chain": self.on_chain,
            "chain_id": self.chain_id,
            "contract": checksum(self.contract),
            "tx_hash": self.tx_hash.hex(),
            "block_number": self.block_number,
            "project_id": self.project_id.hex(),
            "epoch": self.epoch,
            "root": self.root.hex(),
            "contribution_id": self.leaf.contribution_id.hex(),
            "payout": checksum(self.leaf.payout),
            "weight": str(self.leaf.weight),
        }


def export_proof(store: Store, chain: ChainClient, contribution_id: bytes) -> dict[str, Any]:
    """Returns the proof file of one contribution, as JSON-ready values.

    The contribution must be paid by an anchored epoch: the manifest of the owner's `epoch_root`
    record of the anchor on `chain` (under the epoch's anchoring address, `node.chain.anchors`)
    lists an acceptance of it, and the tree of that manifest has the anchored root. The file
    carries that acceptance, whatever revision is in force now.

    Raises:
        ExportError: the contribution is not stored, not accepted (or withdrawn), its
            acceptance is late (its epoch was anchored without it), its epoch is not anchored,
            no epoch root names the anchor, or the anchored root is not its manifest's tree's.
        ChainError: the chain could not be read.
        StorageError: the store could not be read.
    """
    work = store.get(contribution_id)
    if work is None:
        raise ExportError(f"contribution {hex0x(contribution_id)} is not in the store")
    found = standing_of(store, contribution_id)
    if found is None or found.status is Status.WITHDRAWN:
        raise ExportError(f"contribution {hex0x(contribution_id)} is not accepted")
    if found.status is Status.LATE:
        raise ExportError(
            f"the acceptance of contribution {hex0x(contribution_id)} came after epoch "
            f"{found.epoch} was anchored: it is not counted, so there is nothing to prove"
        )
    acceptance = found.acceptance
    pid, epoch = acceptance.expect(Acceptance).project_id, found.epoch
    project = store.project(pid)
    if project is None:
        raise ExportError(f"project {hex0x(pid)} is not in the store")
    tried, anchor = find_epoch_anchor(chain, store, project, epoch)
    if anchor is None:
        raise ExportError(
            f"epoch {epoch} of project {hex0x(pid)} is not anchored by "
            f"{' or '.join(checksum(a) for a in tried)} on chain {chain.chain_id} at "
            f"{checksum(chain.address)}"
        )
    root_record = _epoch_root_of(store, pid, epoch, anchor.root, anchor.tx_hash, chain)
    tree = _committed_tree(store, project, root_record)
    if anchor.root != tree.root:
        raise ExportError(
            f"the anchored root {hex0x(anchor.root)} is not the root {hex0x(tree.root)} of the "
            f"acceptances the manifest of epoch {epoch} lists: run an audit of the epoch"
        )
    leaf = tree.leaves[tree.index_of(contribution_id)]
    return {
        "format": FORMAT,
        "chain_id": chain.chain_id,
        "contract": checksum(chain.address),
        "tx_hash": hex0x(anchor.tx_hash),
        "block_number": anchor.block_number,
        "owner": checksum(anchor.owner),
        "project_id": hex0x(pid),
        "epoch": epoch,
        "root": hex0x(anchor.root),
        "leaf_encoding": list(LEAF_ENCODING),
        "leaf": {
            "contribution_id": hex0x(leaf.contribution_id),
            "payout": checksum(leaf.payout),
            "weight": str(leaf.weight),
        },
        "proof": [hex0x(node) for node in tree.proof(contribution_id)],
        "contribution": hex0x(work.raw),
        "acceptance": hex0x(acceptance.raw),
        "project": hex0x(project.raw),
        "epoch_root": hex0x(root_record.raw),
    }


def verify_proof(data: object, chain: ChainClient | None = None) -> VerifiedProof:
    """Verifies a proof file offline, and against `chain` if one is given.

    Args:
        data: the proof file: its JSON text (str or bytes) or the parsed object.
        chain: a client of the chain the file names; its contract may be another one, the file's
            `contract` is what is checked. None verifies offline only.

    Raises:
        ProofError: a subclass naming the field at fault (see the module's docstring).
        ChainError: the chain could not be read.
    """
    proof = _offline(_parse(data), chain is not None)
    if chain is not None:
        _on_chain(proof, chain)
        return replace(proof, on_chain=True)
    return proof


# Parsing: shape and types.


def json_object(data: object, what: str) -> Mapping[str, Any]:
    """`data` (JSON text, or what it parsed to) as the JSON object `what` must be."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise MalformedProof(f"not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise MalformedProof(f"{what} is a JSON object, got {type(data).__name__}")
    return data


def _parse(data: object) -> dict[str, Any]:
    data = json_object(data, "a proof file")
    exact_keys(data, _KEYS, "")
    if data["format"] != FORMAT:
        raise MalformedProof(
            f"unknown format {data['format']!r}",
            field="format",
            expected=FORMAT,
            found=repr(data["format"]),
        )
    if data["leaf_encoding"] != list(LEAF_ENCODING):
        raise MalformedProof(
            f"must be {list(LEAF_ENCODING)}, got {data['leaf_encoding']!r}",
            field="leaf_encoding",
            expected=repr(list(LEAF_ENCODING)),
            found=repr(data["leaf_encoding"]),
        )
    leaf = data["leaf"]
    if not isinstance(leaf, Mapping):
        raise MalformedProof(f"must be an object, got {leaf!r}", field="leaf")
    exact_keys(leaf, _LEAF_KEYS, "leaf.")
    proof = data["proof"]
    if not isinstance(proof, list) or len(proof) > _MAX_PROOF:
        raise MalformedProof(
            f"must be a list of at most {_MAX_PROOF} hashes, got {proof!r}", field="proof"
        )
    return {
        "chain_id": _int(data, "chain_id", 1, _MAX_JSON_INT),
        "contract": address_field(data["contract"], "contract"),
        "tx_hash": hash_field(data["tx_hash"], "tx_hash"),
        "block_number": _int(data, "block_number", 0, _MAX_JSON_INT),
        "owner": address_field(data["owner"], "owner"),
        "project_id": hash_field(data["project_id"], "project_id"),
        "epoch": _int(data, "epoch", 0, MAX_EPOCH),
        "root": hash_field(data["root"], "root"),
        "leaf": Leaf(
            hash_field(leaf["contribution_id"], "leaf.contribution_id"),
            address_field(leaf["payout"], "leaf.payout"),
            decimal_field(leaf["weight"], "leaf.weight"),
        ),
        "proof": tuple(hash_field(node, f"proof[{i}]") for i, node in enumerate(proof)),
        "contribution": _record(data, "contribution", Contribution),
        "acceptance": _record(data, "acceptance", Acceptance),
        "project": _record(data, "project", Project),
        "epoch_root": _record(data, "epoch_root", EpochRoot),
    }


def exact_keys(data: Mapping[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    """Refuses a missing key and an unknown one, naming it under `prefix`."""
    for key in keys:
        if key not in data:
            raise MalformedProof("missing", field=prefix + key)
    for key in data:
        if key not in keys:
            raise MalformedProof("unknown key", field=prefix + str(key))


def _int(data: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = data[name]
    if type(value) is not int or not low <= value <= high:
        raise MalformedProof(f"must be an integer in [{low}, {high}], got {value!r}", field=name)
    return value


def hash_field(value: object, name: str) -> bytes:
    """A 32-byte hash written as 0x and 64 lowercase hex digits."""
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise MalformedProof(f"must be 0x and 64 lowercase hex digits, got {value!r}", field=name)
    return bytes.fromhex(value[2:])


def address_field(value: object, name: str) -> bytes:
    """An address written as 0x and 40 hex digits, its EIP-55 checksum right if mixed-case."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise MalformedProof(f"must be 0x and 40 hex digits, got {value!r}", field=name)
    address = bytes.fromhex(value[2:])
    digits = value[2:]
    # EIP-55: a mixed-case address carries a checksum, which must then be right.
    if digits not in (digits.lower(), digits.upper()) and value != checksum(address):
        raise MalformedProof(
            f"{value} has a wrong EIP-55 checksum",
            field=name,
            expected=checksum(address),
            found=value,
        )
    return address


def decimal_field(value: object, name: str) -> int:
    """A decimal string of at most 78 digits (a uint256), as an int."""
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value) or len(value) > 78:
        raise MalformedProof(f"must be a decimal string, got {value!r}", field=name)
    return int(value)


def _record(data: Mapping[str, Any], name: str, kind: type[Body]) -> Record:
    value = data[name]
    if not isinstance(value, str) or not _RECORD_HEX.fullmatch(value):
        raise MalformedProof("must be a signed record as 0x and lowercase hex", field=name)
    try:
        record = decode(bytes.fromhex(value[2:]))
    except ProtocolError as exc:
        raise BadRecord(str(exc), field=name) from exc
    if not isinstance(record.body, kind):
        raise BadRecord(
            f"holds a {record.kind} record, not a {kind.KIND}",
            field=name,
            expected=kind.KIND,
            found=record.kind,
        )
    return record


# Offline: the records against each other and against the file's fields.


def _offline(parsed: dict[str, Any], online: bool) -> VerifiedProof:
    proof = VerifiedProof(**parsed, on_chain=False)
    project, work, acceptance, root = (
        proof.project,
        proof.contribution,
        proof.acceptance,
        proof.epoch_root,
    )
    posting = project.expect(Project)
    _same("project_id", project_id(project.author, posting.name), proof.project_id, "project")
    if proof.owner != posting.payout and not online:
        # The project's payout changed after anchoring (`node.chain.anchors`): only the chain can
        # say that the anchor transaction the owner's epoch_root names was sent by `owner`.
        raise ProofMismatch(
            f"the anchoring address {checksum(proof.owner)} is not the project's payout address "
            f"{checksum(posting.payout)}; if the project changed it after anchoring, verify "
            "against the chain, which checks the sender of the anchor transaction",
            field="owner",
            expected=checksum(posting.payout),
            found=checksum(proof.owner),
        )
    _same("leaf.contribution_id", work.id, proof.leaf.contribution_id, "contribution")
    body = work.expect(Contribution)
    _same("project_id", body.project_id, proof.project_id, "contribution")
    _same("leaf.payout", body.payout, proof.leaf.payout, "contribution", address=True)
    judged = acceptance.expect(Acceptance)
    _same("leaf.contribution_id", judged.contribution_id, proof.leaf.contribution_id, "acceptance")
    _same("project_id", judged.project_id, proof.project_id, "acceptance")
    _same("epoch", judged.epoch, proof.epoch, "acceptance")
    _same("leaf.weight", judged.weight, proof.leaf.weight, "acceptance")
    try:
        check_acceptance(acceptance, project, work)
        check_authorized(acceptance, project)
    except NotAuthorized as exc:
        raise Unauthorized(str(exc), field="acceptance") from exc
    except ProtocolError as exc:
        raise ProofMismatch(str(exc), field="acceptance") from exc
    try:
        check_epoch_root(root, project)
    except NotAuthorized as exc:
        raise Unauthorized(str(exc), field="epoch_root") from exc
    except ProtocolError as exc:
        raise ProofMismatch(str(exc), field="epoch_root") from exc
    anchored = root.expect(EpochRoot)
    _same("epoch", anchored.epoch, proof.epoch, "epoch_root")
    _same("root", anchored.root, proof.root, "epoch_root")
    _same("chain_id", anchored.chain_id, proof.chain_id, "epoch_root")
    _same("contract", anchored.contract, proof.contract, "epoch_root", address=True)
    _same("tx_hash", anchored.tx_hash, proof.tx_hash, "epoch_root")
    if not verify(proof.root, proof.leaf, proof.proof):
        raise InvalidMerkleProof(
            f"the proof does not lead from the leaf to root {hex0x(proof.root)}", field="proof"
        )
    return proof


def _same(name: str, signed: object, stated: object, record: str, *, address: bool = False) -> None:
    """Raises ProofMismatch unless the file's field `name` states what the record signed."""
    if signed == stated:
        return
    expected, found = _show(signed, address), _show(stated, address)
    raise ProofMismatch(
        f"the file says {found}, the signed {record} record says {expected}",
        field=name,
        expected=expected,
        found=found,
    )


# Against a chain.


def _on_chain(proof: VerifiedProof, chain: ChainClient) -> None:
    if chain.chain_id != proof.chain_id:
        raise WrongChain(
            f"the file is for chain {proof.chain_id}, the chain given is {chain.chain_id}",
            field="chain_id",
            expected=str(chain.chain_id),
            found=str(proof.chain_id),
        )
    client = chain
    if chain.address != proof.contract:
        client = ChainClient(chain.w3, proof.contract, config=chain.config)
    try:
        client.check_deployed()
    except ChainError as exc:
        raise NoContract(str(exc), field="contract") from exc
    receipt = client.receipt(proof.tx_hash)
    if receipt is None:
        raise AnchorNotFound(
            f"transaction {hex0x(proof.tx_hash)} is not on chain {chain.chain_id}", field="tx_hash"
        )
    mined_in = int(receipt["blockNumber"])
    if mined_in != proof.block_number:
        raise ProofMismatch(
            f"transaction {hex0x(proof.tx_hash)} is in block {mined_in}, the file says "
            f"{proof.block_number}",
            field="block_number",
            expected=str(mined_in),
            found=str(proof.block_number),
        )
    events = client.contract.events.Anchored().process_receipt(receipt, errors=DISCARD)
    mine = [
        event
        for event in events
        if bytes.fromhex(event["address"][2:]) == proof.contract
        and bytes.fromhex(event["args"]["owner"][2:]) == proof.owner
        and bytes(event["args"]["projectId"]) == proof.project_id
        and int(event["args"]["epoch"]) == proof.epoch
    ]
    if not mine:
        raise AnchorNotFound(
            f"transaction {hex0x(proof.tx_hash)} anchored no epoch {proof.epoch} of project "
            f"{hex0x(proof.project_id)} by {checksum(proof.owner)} at {checksum(proof.contract)}",
            field="tx_hash",
        )
    anchored = bytes(mine[0]["args"]["root"])
    if anchored != proof.root:
        raise ProofMismatch(
            f"transaction {hex0x(proof.tx_hash)} anchored root {hex0x(anchored)}",
            field="root",
            expected=hex0x(anchored),
            found=hex0x(proof.root),
        )
    stored = client.epoch(proof.owner, proof.project_id, proof.epoch).root
    if stored != proof.root:
        raise AnchorNotFound(
            f"the contract holds root {hex0x(stored)} for the epoch, not {hex0x(proof.root)}",
            field="root",
            expected=hex0x(stored),
            found=hex0x(proof.root),
        )
    if not client.verify(proof.owner, proof.project_id, proof.epoch, proof.leaf, proof.proof):
        raise ChainRejects(
            "the contract's verify does not accept the leaf and proof", field="proof"
        )


# Export helpers.


def _committed_tree(store: Store, project: Record, root: Record) -> MerkleTree:
    """Returns the tree of the acceptances that an epoch root's manifest lists."""
    try:
        return committed_tree(store, project, root).merkle
    except ProtocolError as exc:
        raise ExportError(
            f"the manifest of epoch root {hex0x(root.id)} gives no tree: {exc}"
        ) from exc


def _epoch_root_of(
    store: Store, pid: bytes, epoch: int, root: bytes, tx_hash: bytes, chain: ChainClient
) -> Record:
    cursor = None
    while True:
        page = store.epoch_roots(pid, epoch=epoch, cursor=cursor, limit=MAX_LIMIT)
        for record in page.items:
            body = record.expect(EpochRoot)
            if (body.root, body.tx_hash, body.chain_id, body.contract) == (
                root,
                tx_hash,
                chain.chain_id,
                chain.address,
            ):
                return record
        if page.cursor is None:
            raise ExportError(
                f"the store has no epoch_root record of epoch {epoch} of project {hex0x(pid)} "
                f"naming root {hex0x(root)} in tx {hex0x(tx_hash)}"
            )
        cursor = page.cursor


def _show(value: object, address: bool) -> str:
    if isinstance(value, bytes):
        return checksum(value) if address else hex0x(value)
    return str(value)


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()
