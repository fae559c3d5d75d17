"""Portfolios: export across projects, offline and on-chain verification, tampering named.

The chain is real (eth-tester, and anvil if installed) and the store a real LevelDB; the epochs are
anchored as the anchoring node does (tests/support/epochs.py). Every entry is a proof file, so the
tampering cases of tests/node/test_proof.py apply to each, under `entries[i].proof.`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.chain.client import ChainClient
from node.chain.portfolio import FORMAT, Exported, export_portfolio, verify_portfolio
from node.chain.proof import BadRecord, MalformedProof, ProofError, ProofMismatch
from protocol.merkle import Leaf
from storage import Store
from tests.node.test_proof import TAMPERED
from tests.support import epochs
from tests.support import factories as f
from tests.support.epochs import ACCOUNT, OWNER, Epoch, anchored

chain = epochs.chain
store = epochs.store
name = epochs.name

BOB = f.pub("bob")
Folio = dict[str, Any]


@pytest.fixture
def exported(store: Store, chain: ChainClient, name: str) -> tuple[Exported, list[Epoch]]:
    """Bob's work in two anchored projects, one funded and claimed, plus a late and an open
    contribution that the portfolio leaves out."""
    first = anchored(store, chain, name + "a", count=2)
    second = anchored(store, chain, name + "b", count=1)
    # Funded and claimed: the portfolio says what the leaf was paid.
    chain.transact(chain.sign_fund(OWNER, first.pid, 0, 1000), timeout=60)
    leaf = Leaf(first.works[1].id, f.address("bob"), 2)
    tree = first.tree()
    chain.transact(chain.sign_claim(OWNER, first.pid, 0, leaf, tree.proof(leaf.contribution_id)))
    first.contribute(1)  # into anchored epoch 0: late
    second.epoch = 1
    second.contribute(1)  # into epoch 1, not anchored
    result = export_portfolio(store, chain, BOB)
    # Oldest first, and ties (the works share their created_at) by id, which differs from one
    # run's chain to the other's (the project names do): put the entries in the order the tests
    # name them by, first's two works then second's.
    roles = [first.works[0], first.works[1], second.works[0]]
    exported = ["0x" + w.id.hex() for w in roles]
    result.data["entries"].sort(key=lambda e: exported.index(e["proof"]["leaf"]["contribution_id"]))
    return result, [first, second]


@pytest.fixture
def folio(exported: tuple[Exported, list[Epoch]]) -> Folio:
    parsed: Folio = json.loads(json.dumps(exported[0].data))
    return parsed


def test_round_trip(exported: tuple[Exported, list[Epoch]], chain: ChainClient) -> None:
    result, (first, second) = exported
    data = result.data
    assert list(data) == ["format", "author", "entries"] and data["format"] == FORMAT
    assert data["author"] == "0x" + BOB.hex()
    ids = [e["proof"]["leaf"]["contribution_id"] for e in data["entries"]]
    assert ids == ["0x" + w.id.hex() for w in (*first.works[:2], second.works[0])]
    assert [list(e) for e in data["entries"]] == [["proof", "manifest", "paid"]] * 3
    paid = {e["proof"]["leaf"]["contribution_id"]: e["paid"] for e in data["entries"]}
    assert paid[ids[1]] == [{"token": "0x" + "00" * 20, "claimed": str(1000 * 2 // 3)}]
    assert paid[ids[0]] == [{"token": "0x" + "00" * 20, "claimed": "0"}]
    assert paid[ids[2]] == []
    # Left out, each with its reason: the late one and the one of an epoch not anchored.
    left = {x.contribution_id: x.reason for x in result.left_out}
    assert set(left) == {first.works[2].id, second.works[1].id}
    assert "came after epoch 0 was anchored" in left[first.works[2].id]
    assert "epoch 1 of project" in left[second.works[1].id]
    assert "is not anchored" in left[second.works[1].id]

    # Verified from the file alone (no store: any other node, or none), and against the chain.
    text = json.dumps(data)
    offline = verify_portfolio(text)
    assert not offline.on_chain and len(offline.entries) == 3
    online = verify_portfolio(text, chain)
    assert online.on_chain
    shown = online.to_json()
    assert shown["contributions"] == 3 and shown["projects"] == 2
    assert shown["total_weight"] == str(1 + 2 + 1)
    assert shown["entries"][1]["paid"][0]["on_chain"] == str(1000 * 2 // 3)


def test_another_author_has_another_portfolio(store: Store, chain: ChainClient, name: str) -> None:
    anchored(store, chain, name, count=1)
    carol = export_portfolio(store, chain, f.pub("carol"))
    assert carol.data["entries"] == [] and carol.left_out == ()
    assert verify_portfolio(carol.data).entries == ()


def _entry_case(
    change: Callable[[dict[str, Any]], None],
) -> Callable[[Folio], None]:
    def apply(data: Folio) -> None:
        change(data["entries"][1]["proof"])

    return apply


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [case[1:] for case in TAMPERED if case[0] != "chain_id"],
    ids=[case[0] for case in TAMPERED if case[0] != "chain_id"],
)
@pytest.mark.slow
def test_tampered_proof_field(
    folio: Folio, change: Callable[[dict[str, Any]], None], error: type[ProofError], field: str
) -> None:
    data = copy.deepcopy(folio)
    change(data["entries"][1]["proof"])
    with pytest.raises(error) as info:
        verify_portfolio(data)
    assert info.value.field == "entries[1].proof." + field, info.value
    assert str(info.value).startswith(f"entries[1].proof.{field}: ")


def test_every_byte_of_every_record_is_named(folio: Folio) -> None:
    """A change anywhere in a signed record, of a proof or a manifest part, is refused and the
    error names where it is."""
    entry = folio["entries"][0]
    places: list[tuple[str, Callable[[Folio], dict[str, Any]], str]] = [
        *[(key, lambda d: d["entries"][0]["proof"], f"proof.{key}") for key in
          ("contribution", "acceptance", "project", "epoch_root")],
        *[(i, lambda d: d["entries"][0]["manifest"], f"manifest[{i}]")
          for i in range(len(entry["manifest"]))],
    ]  # fmt: skip
    for key, holder, field in places:
        value = holder(folio)[key]  # type: ignore[index]
        raw = bytes.fromhex(value[2:])
        for i in range(len(raw)):
            data = copy.deepcopy(folio)
            holder(data)[key] = "0x" + (raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]).hex()  # type: ignore[index]
            with pytest.raises(ProofError) as info:
                verify_portfolio(data)
            assert info.value.field is not None
            assert info.value.field.startswith("entries[0]." + field), (field, i, info.value)


def test_portfolio_fields_tampered(folio: Folio, chain: ChainClient) -> None:
    cases: list[tuple[Callable[[Folio], None], type[ProofError], str]] = [
        (lambda d: d.update(format="workwork-portfolio/2"), MalformedProof, "format"),
        (lambda d: d.update(author="0x" + f.pub("carol").hex()), ProofMismatch,
         "entries[0].proof.contribution"),
        (lambda d: d.update(extra=1), MalformedProof, "extra"),
        (lambda d: d["entries"].append(d["entries"][0]), ProofMismatch, "entries[3].proof.leaf"),
        (lambda d: d["entries"][0]["manifest"].pop(), MalformedProof, "entries[0].manifest"),
        (lambda d: d["entries"][0]["manifest"].append(d["entries"][0]["manifest"][0]),
         ProofMismatch, "entries[0].manifest"),
        (lambda d: d["entries"][0].update(manifest=d["entries"][2]["manifest"]), ProofMismatch,
         "entries[0].manifest"),
        (lambda d: d["entries"][0]["manifest"].__setitem__(0, d["entries"][0]["proof"]["project"]),
         BadRecord, "entries[0].manifest[0]"),
        (lambda d: d["entries"][1]["paid"][0].update(claimed="1000"), ProofMismatch,
         "entries[1].paid[0].claimed"),
        (lambda d: d["entries"][1]["paid"][0].update(claimed="01"), MalformedProof,
         "entries[1].paid[0].claimed"),
        (lambda d: d["entries"][2].pop("paid"), MalformedProof, "entries[2].paid"),
    ]  # fmt: skip
    for change, error, field in cases:
        data = copy.deepcopy(folio)
        change(data)
        with pytest.raises(error) as info:
            verify_portfolio(data, chain)
        assert info.value.field == field, (field, info.value)


def test_claims_only_grow(folio: Folio, chain: ChainClient) -> None:
    """Claimed less at export than now is fine offline and on chain: claims only grow."""
    data = copy.deepcopy(folio)
    data["entries"][1]["paid"][0]["claimed"] = "1"
    assert verify_portfolio(data, chain).entries[1].paid[0].on_chain == 666


def test_not_json(tmp_path: Path) -> None:
    with pytest.raises(MalformedProof):
        verify_portfolio("{")
    with pytest.raises(MalformedProof) as info:
        verify_portfolio({"format": FORMAT, "author": "0x" + "00" * 32, "entries": {}})
    assert info.value.field == "entries"


_ = ACCOUNT
