"""Proof files: export, offline and on-chain verification, and every kind of tampering.

The chain is real (eth-tester, and anvil if installed) and the store is a real LevelDB; see
tests/support/epochs.py for `Epoch`, which anchors a project's epoch the way the anchoring node does.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from node.chain.client import ChainClient
from node.chain.proof import (
    FORMAT,
    AnchorNotFound,
    BadRecord,
    ExportError,
    InvalidMerkleProof,
    MalformedProof,
    NoContract,
    ProofError,
    ProofMismatch,
    Unauthorized,
    WrongChain,
    export_proof,
    verify_proof,
)
from protocol.epoch import Summary
from protocol.merkle import Leaf, checksum
from storage import Store
from tests.support import epochs
from tests.support import factories as f
from tests.support.epochs import ACCOUNT, OWNER, Epoch, anchored

ROOT = Path(__file__).resolve().parents[2]

# The fixtures of the audit tests: a chain per backend, a fresh store, a project name per test.
chain = epochs.chain
store = epochs.store
name = epochs.name

Proof = dict[str, Any]


@pytest.fixture
def epoch(store: Store, chain: ChainClient, name: str) -> Epoch:
    return anchored(store, chain, name, count=5)


@pytest.fixture
def exported(epoch: Epoch) -> Proof:
    """The proof file of the third contribution, through JSON text and back."""
    data = export_proof(epoch.store, epoch.chain, epoch.works[2].id)
    parsed: Proof = json.loads(json.dumps(data))
    return parsed


def test_round_trip(epoch: Epoch, exported: Proof) -> None:
    work = epoch.works[2]
    anchor = epoch.chain.find_anchor(OWNER, epoch.pid, 0)
    assert anchor is not None
    assert list(exported) == [
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
    ]
    assert exported["format"] == FORMAT
    assert exported["leaf"] == {
        "contribution_id": "0x" + work.id.hex(),
        "payout": Leaf(work.id, f.address("bob"), 3).to_json()[1],
        "weight": "3",
    }
    assert exported["contribution"] == "0x" + work.raw.hex()
    offline = verify_proof(exported)
    assert not offline.on_chain
    assert offline.leaf == Leaf(work.id, f.address("bob"), 3)
    assert offline.root == anchor.root and offline.tx_hash == anchor.tx_hash
    assert offline.block_number == anchor.block_number
    online = verify_proof(json.dumps(exported), epoch.chain)
    assert online.on_chain
    assert online.contribution == work and online.acceptance == epoch.acceptances[2]


def test_openzeppelin_library_agrees(exported: Proof) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = """
        import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
        const p = JSON.parse(process.argv[1]);
        const leaf = [p.leaf.contribution_id, p.leaf.payout, p.leaf.weight];
        const wrong = [p.leaf.contribution_id, p.leaf.payout, "1000"];
        console.log(JSON.stringify([
            StandardMerkleTree.verify(p.root, p.leaf_encoding, leaf, p.proof),
            StandardMerkleTree.verify(p.root, p.leaf_encoding, wrong, p.proof),
        ]));
    """
    out = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(exported)],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == [True, False]


def _at(data: Proof, path: str) -> tuple[Any, Any]:
    """Returns the container of the field at `path` ("leaf.weight", "proof.0") and its key."""
    target: Any = data
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key) if isinstance(target, list) else key]
    return target, int(last) if isinstance(target, list) else last


def _set(path: str, value: Any) -> Callable[[Proof], None]:
    def change(data: Proof) -> None:
        target, key = _at(data, path)
        target[key] = value

    return change


def _flip(path: str) -> Callable[[Proof], None]:
    """Changes the last hex digit of a 0x-hex field to another valid one."""

    def change(data: Proof) -> None:
        target, key = _at(data, path)
        value = target[key]
        target[key] = value[:-1] + ("1" if value[-1] != "1" else "2")

    return change


def _other_address(data: Proof, path: str) -> None:
    _set(path, "0x" + "ab" * 20)(data)


# Every field of the file changed to another well-formed value, and the field the error names.
TAMPERED: list[tuple[str, Callable[[Proof], None], type[ProofError], str]] = [
    ("format", _set("format", "workwork-proof/2"), MalformedProof, "format"),
    ("chain_id", lambda d: d.update(chain_id=d["chain_id"] + 1), ProofMismatch, "chain_id"),
    ("contract", lambda d: _other_address(d, "contract"), ProofMismatch, "contract"),
    ("tx_hash", _flip("tx_hash"), ProofMismatch, "tx_hash"),
    ("owner", lambda d: _other_address(d, "owner"), ProofMismatch, "owner"),
    ("project_id", _flip("project_id"), ProofMismatch, "project_id"),
    ("epoch", lambda d: d.update(epoch=d["epoch"] + 1), ProofMismatch, "epoch"),
    ("root", _flip("root"), ProofMismatch, "root"),
    (
        "leaf_encoding",
        _set("leaf_encoding", ["bytes32", "address", "uint128"]),
        MalformedProof,
        "leaf_encoding",
    ),
    ("leaf.contribution_id", _flip("leaf.contribution_id"), ProofMismatch, "leaf.contribution_id"),
    ("leaf.payout", lambda d: _other_address(d, "leaf.payout"), ProofMismatch, "leaf.payout"),
    ("leaf.weight", _set("leaf.weight", "4"), ProofMismatch, "leaf.weight"),
    ("proof element", _flip("proof.0"), InvalidMerkleProof, "proof"),
    ("proof shortened", lambda d: d["proof"].pop(), InvalidMerkleProof, "proof"),
    ("proof extended", lambda d: d["proof"].append("0x" + "00" * 32), InvalidMerkleProof, "proof"),
    ("contribution", _flip("contribution"), BadRecord, "contribution"),
    ("acceptance", _flip("acceptance"), BadRecord, "acceptance"),
    ("project", _flip("project"), BadRecord, "project"),
    ("epoch_root", _flip("epoch_root"), BadRecord, "epoch_root"),
]


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [case[1:] for case in TAMPERED],
    ids=[case[0] for case in TAMPERED],
)
@pytest.mark.slow
def test_tampered_field(
    exported: Proof, change: Callable[[Proof], None], error: type[ProofError], field: str
) -> None:
    data = copy.deepcopy(exported)
    change(data)
    assert data != exported
    with pytest.raises(error) as info:
        verify_proof(data)
    assert info.value.field == field, info.value
    assert str(info.value).startswith(field + ": ")


def test_every_byte_of_every_record_is_covered(exported: Proof) -> None:
    """A change anywhere in a signed record (header, author, signature, body) is refused."""
    for key in ("contribution", "acceptance", "project", "epoch_root"):
        raw = bytes.fromhex(exported[key][2:])
        for i in range(len(raw)):
            data = copy.deepcopy(exported)
            data[key] = "0x" + (raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]).hex()
            with pytest.raises(ProofError) as info:
                verify_proof(data)
            assert info.value.field == key, (key, i, info.value)


def test_mismatches_name_both_values(exported: Proof) -> None:
    data = copy.deepcopy(exported)
    data["leaf"]["weight"] = "4"
    with pytest.raises(ProofMismatch) as info:
        verify_proof(data)
    assert (info.value.expected, info.value.found) == ("3", "4")
    assert "the file says 4, the signed acceptance record says 3" in str(info.value)


def test_records_swapped_or_replaced(epoch: Epoch, exported: Proof) -> None:
    swapped = copy.deepcopy(exported)
    swapped["acceptance"], swapped["contribution"] = (
        exported["contribution"],
        exported["acceptance"],
    )
    with pytest.raises(BadRecord) as info:
        verify_proof(swapped)
    assert (info.value.field, info.value.expected, info.value.found) == (
        "contribution",
        "contribution",
        "acceptance",
    )
    other = copy.deepcopy(exported)
    other["acceptance"] = "0x" + epoch.acceptances[3].raw.hex()
    with pytest.raises(ProofMismatch) as mismatch:
        verify_proof(other)
    assert mismatch.value.field == "leaf.contribution_id"


def test_acceptance_and_root_need_authority(epoch: Epoch, exported: Proof) -> None:
    work = epoch.works[2]
    by_bob = copy.deepcopy(exported)
    by_bob["acceptance"] = "0x" + f.acceptance(work, "bob", weight=3).raw.hex()
    with pytest.raises(Unauthorized) as info:
        verify_proof(by_bob)
    assert info.value.field == "acceptance"
    assert "neither the owner nor a reviewer" in str(info.value)
    # A reviewer named by the project may accept.
    by_carol = copy.deepcopy(exported)
    by_carol["acceptance"] = "0x" + f.acceptance(work, "carol", weight=3).raw.hex()
    verify_proof(by_carol)
    # An epoch root of the same values, signed by someone other than the owner.
    body = verify_proof(exported).epoch_root.body
    values = {field.name: getattr(body, field.name) for field in dataclasses.fields(body)}
    by_bob_root = copy.deepcopy(exported)
    by_bob_root["epoch_root"] = "0x" + f.epoch_root("bob", **values).raw.hex()
    with pytest.raises(Unauthorized) as stranger:
        verify_proof(by_bob_root)
    assert stranger.value.field == "epoch_root"
    assert "not signed by its owner" in str(stranger.value)


MALFORMED: list[tuple[str, Callable[[Proof], None], str]] = [
    ("missing key", lambda d: d.pop("root"), "root"),
    ("unknown key", lambda d: d.update(extra=1), "extra"),
    ("missing leaf key", lambda d: d["leaf"].pop("weight"), "leaf.weight"),
    ("chain id as string", lambda d: d.update(chain_id=str(d["chain_id"])), "chain_id"),
    ("chain id bool", lambda d: d.update(chain_id=True), "chain_id"),
    ("negative block", lambda d: d.update(block_number=-1), "block_number"),
    ("epoch too large", lambda d: d.update(epoch=2**32), "epoch"),
    ("uppercase root", lambda d: d.update(root=d["root"].upper().replace("0X", "0x")), "root"),
    ("short tx hash", lambda d: d.update(tx_hash=d["tx_hash"][:-2]), "tx_hash"),
    ("bad checksum", lambda d: d.update(owner=_bad_checksum(d["owner"])), "owner"),
    ("weight as number", lambda d: d["leaf"].update(weight=3), "leaf.weight"),
    ("weight with sign", lambda d: d["leaf"].update(weight="+3"), "leaf.weight"),
    ("weight with zeros", lambda d: d["leaf"].update(weight="03"), "leaf.weight"),
    ("proof not a list", lambda d: d.update(proof="0x00"), "proof"),
    ("proof element", lambda d: d["proof"].insert(0, 7), "proof[0]"),
    ("record not hex", lambda d: d.update(project="zz"), "project"),
    ("record empty", lambda d: d.update(epoch_root="0x"), "epoch_root"),
    ("leaf not an object", lambda d: d.update(leaf=[]), "leaf"),
]


def _bad_checksum(address: str) -> str:
    flipped = address[:2] + address[2:].swapcase()
    return flipped if flipped.lower() != flipped and flipped.upper()[2:] != flipped[2:] else address


@pytest.mark.parametrize(
    ("change", "field"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
@pytest.mark.slow
def test_malformed(exported: Proof, change: Callable[[Proof], None], field: str) -> None:
    data = copy.deepcopy(exported)
    change(data)
    with pytest.raises(MalformedProof) as info:
        verify_proof(data)
    assert info.value.field == field, info.value


def test_not_json() -> None:
    with pytest.raises(MalformedProof, match="not JSON"):
        verify_proof("{")
    with pytest.raises(MalformedProof, match="JSON object"):
        verify_proof("[]")


def test_block_number_is_checked_on_chain(epoch: Epoch, exported: Proof) -> None:
    data = copy.deepcopy(exported)
    data["block_number"] += 1
    verify_proof(data)  # offline, nothing signed names the block
    with pytest.raises(ProofMismatch) as info:
        verify_proof(data, epoch.chain)
    assert info.value.field == "block_number"
    assert info.value.found == str(exported["block_number"] + 1)


def test_missing_anchor_and_missing_contract(store: Store, name: str) -> None:
    data = export_proof(*_embedded_epoch(store, name))
    # A fresh chain where the same key deployed the contract: same chain id, same contract
    # address, but the anchoring transaction never happened there.
    empty = ChainClient.embedded(ACCOUNT)
    assert empty.chain_id == data["chain_id"]
    assert checksum(empty.address) == data["contract"]
    with pytest.raises(AnchorNotFound) as info:
        verify_proof(data, empty)
    assert info.value.field == "tx_hash"
    # The same again, with the contract deployed by another key: nothing is at `contract`.
    other = ChainClient.embedded(Account.from_key(hashlib.sha256(b"someone else").digest()))
    with pytest.raises(NoContract) as missing:
        verify_proof(data, other)
    assert missing.value.field == "contract"


def _embedded_epoch(store: Store, name: str) -> tuple[Store, ChainClient, bytes]:
    """An epoch anchored on a fresh embedded chain, and the id of one of its contributions."""
    epoch = anchored(store, ChainClient.embedded(ACCOUNT), name, count=3)
    return store, epoch.chain, epoch.works[0].id


def test_wrong_chain_id(exported: Proof, anvil_url: str) -> None:
    from web3 import Web3

    from node.chain.client import dev_fund

    embedded = ChainClient.embedded(ACCOUNT)
    w3 = Web3(Web3.HTTPProvider(anvil_url, request_kwargs={"timeout": 30}))
    dev_fund(w3, ACCOUNT.address)
    on_anvil = ChainClient.deploy(w3, ACCOUNT)
    other = on_anvil if exported["chain_id"] == embedded.chain_id else embedded
    with pytest.raises(WrongChain) as info:
        verify_proof(exported, other)
    assert info.value.field == "chain_id"
    assert info.value.found == str(exported["chain_id"])
    assert info.value.expected == str(other.chain_id)


def test_export_refusals(store: Store, chain: ChainClient, name: str) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    with pytest.raises(ExportError, match="not in the store"):
        export_proof(store, chain, b"\x05" * 32)
    unjudged = f.contribution("carol", "alice", name, summary="not judged")
    epoch.ingest([unjudged])
    with pytest.raises(ExportError, match="is not accepted"):
        export_proof(store, chain, unjudged.id)
    with pytest.raises(ExportError, match="is not anchored"):
        export_proof(store, chain, epoch.works[0].id)
    anchor = epoch.anchor()
    with pytest.raises(ExportError, match="no epoch_root record"):
        export_proof(store, chain, epoch.works[0].id)
    epoch.publish(anchor)
    export_proof(store, chain, epoch.works[0].id)
    # An acceptance stored after the anchor is late: it changes nothing of the anchored tree
    # (the proofs of the others still export), and has no proof of its own.
    epoch.contribute(1)
    export_proof(store, chain, epoch.works[0].id)
    with pytest.raises(ExportError, match="came after epoch 0 was anchored"):
        export_proof(store, chain, epoch.works[2].id)


def test_export_of_a_lying_anchor_is_refused(
    store: Store,
    chain: ChainClient,
    name: str,
) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    epoch.publish(epoch.anchor(Summary(b"\x03" * 32, 2, 3)))
    with pytest.raises(ExportError, match="is not the root"):
        export_proof(store, chain, epoch.works[0].id)


def test_withdrawn_contribution_has_no_proof(store: Store, chain: ChainClient, name: str) -> None:
    epoch = Epoch(store, chain, name)
    epoch.contribute(2)
    work = epoch.works[0]
    epoch.ingest([f.acceptance(work, weight=0, revision=1)])
    epoch.publish(epoch.anchor())
    with pytest.raises(ExportError, match="is not accepted"):
        export_proof(epoch.store, epoch.chain, work.id)


def test_a_revision_after_the_anchor_changes_no_proof(epoch: Epoch) -> None:
    """A withdrawal, or another weight, that comes after the anchor is late: the file carries
    the acceptance the manifest lists, and verifies."""
    work = epoch.works[0]
    epoch.ingest([f.acceptance(work, weight=0, revision=1)])
    data = export_proof(epoch.store, epoch.chain, work.id)
    assert data["acceptance"] == "0x" + epoch.acceptances[0].raw.hex()
    assert data["leaf"]["weight"] == "1"
    assert verify_proof(data, epoch.chain).on_chain


def test_payout_moved_after_anchoring(epoch: Epoch) -> None:
    # The project names another payout address after its epoch was anchored: the proof names
    # the anchor's sender, which only the chain can confirm (the anchor transaction's sender).
    epoch.ingest([f.project("alice", epoch.name, payout=f.address("elsewhere"), revision=1)])
    data = export_proof(epoch.store, epoch.chain, epoch.works[1].id)
    assert data["owner"] == checksum(OWNER)
    with pytest.raises(ProofMismatch) as info:
        verify_proof(data)
    assert info.value.field == "owner"
    assert (info.value.expected, info.value.found) == (
        checksum(f.address("elsewhere")),
        checksum(OWNER),
    )
    assert verify_proof(data, epoch.chain).on_chain
    # Claiming that someone else anchored it does not get past the chain.
    lying = {**data, "owner": checksum(f.address("elsewhere"))}
    with pytest.raises(AnchorNotFound):
        verify_proof(lying, epoch.chain)
