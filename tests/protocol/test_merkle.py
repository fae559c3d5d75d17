"""Tests of protocol.merkle: known answers from OpenZeppelin's JavaScript library, properties.

Every test runs twice: with keccak256 in batches (protocol._keccak, the C extension) and with a
Python call per hash, the path of a machine where the extension did not compile.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import merkle
from protocol.errors import InvalidProof, ProtocolError
from protocol.merkle import (
    EmptyTree,
    InvalidLeaf,
    Leaf,
    MerkleTree,
    MultiProof,
    UnknownLeaf,
    _sort,
    checksum,
    keccak,
    process_multiproof,
    process_proof,
    verify,
    verify_multiproof,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "merkle.json"
SCRIPT = ROOT / "scripts" / "vectors" / "merkle.mjs"
OZ = ROOT / "node_modules" / "@openzeppelin" / "merkle-tree"

ids = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20)
weights = st.integers(min_value=0, max_value=2**256 - 1)
leaves = st.builds(Leaf, ids, addresses, weights)
leaf_sets = st.lists(leaves, min_size=1, max_size=40, unique_by=lambda leaf: leaf.contribution_id)


@pytest.fixture(autouse=True, scope="module", params=["batch", "python"])
def keccak_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the module with protocol._keccak, then without it (module-scoped: hypothesis does not
    allow function-scoped fixtures in its tests)."""
    saved = merkle._batch
    if request.param == "batch":
        if saved is None:
            pytest.skip("protocol._keccak did not compile on this machine")
    else:
        merkle._batch = None
    try:
        yield request.param
    finally:
        merkle._batch = saved


def h(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def make(n: int, seed: int = 0) -> list[Leaf]:
    rng = random.Random(seed)
    return [Leaf(rng.randbytes(32), rng.randbytes(20), rng.getrandbits(256)) for _ in range(n)]


def reference_root(items: list[Leaf]) -> bytes:
    """Builds the root as OpenZeppelin's makeMerkleTree does, one node at a time."""
    hashed = sorted(keccak(keccak(leaf.encode()).digest()).digest() for leaf in items)
    tree: list[bytes] = [b""] * (2 * len(hashed) - 1)
    for i, node in enumerate(hashed):
        tree[len(tree) - 1 - i] = node
    for i in range(len(tree) - 1 - len(hashed), -1, -1):
        a, b = sorted((tree[2 * i + 1], tree[2 * i + 2]))
        tree[i] = keccak(a + b).digest()
    return tree[0]


def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def vector_sets() -> list[dict[str, Any]]:
    sets: list[dict[str, Any]] = vectors()["sets"]
    return sets


def by_slot(dump: dict[str, Any]) -> list[tuple[int, list[str]]]:
    return sorted((entry["treeIndex"], entry["value"]) for entry in dump["values"])


# Known answers, computed by @openzeppelin/merkle-tree.


@pytest.mark.parametrize("case", vector_sets(), ids=lambda case: case["name"])
def test_vectors(case: dict[str, Any]) -> None:
    items = [Leaf.from_json(entry["value"]) for entry in case["leaves"]]
    tree = MerkleTree.build(items)
    assert tree.root == h(case["root"])
    assert len(tree) == len(items)
    for leaf, entry in zip(items, case["leaves"], strict=True):
        assert leaf.to_json() == entry["value"]
        assert leaf.hash == h(entry["hash"])
        assert tree.proof(leaf.contribution_id) == tuple(h(p) for p in entry["proof"])
        assert verify(tree.root, leaf, tree.proof(leaf.contribution_id))

    multi = case["multiproof"]
    proof = tree.multiproof(items[i].contribution_id for i in multi["indices"])
    assert [leaf.to_json() for leaf in proof.leaves] == multi["leaves"]
    assert proof.proof == tuple(h(p) for p in multi["proof"])
    assert list(proof.proof_flags) == multi["proofFlags"]
    assert verify_multiproof(tree.root, proof)

    ours = tree.dump()
    theirs = case["dump"]
    assert ours["tree"] == theirs["tree"]
    assert by_slot(ours) == by_slot(theirs)
    assert {k: v for k, v in ours.items() if k != "values"} == {
        k: v for k, v in theirs.items() if k != "values"
    }
    assert MerkleTree.load(theirs).dump() == ours


def test_vectors_cover_edge_weights() -> None:
    found = {int(entry["value"][2]) for case in vector_sets() for entry in case["leaves"]}
    assert {0, 1, 2**255 - 1, 2**255, 2**256 - 1} <= found
    assert [len(case["leaves"]) for case in vector_sets()] == [1, 2, 3, 7, 16, 33]


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not OZ.is_dir():
        pytest.skip("node_modules/@openzeppelin/merkle-tree is missing: run npm install")
    return node


def test_vectors_match_javascript_live() -> None:
    node = node_or_skip()
    out = subprocess.run(
        [node, str(SCRIPT)], cwd=ROOT, capture_output=True, check=True, text=True, timeout=120
    )
    assert json.loads(out.stdout) == vectors()


def test_dump_loads_in_javascript() -> None:
    node = node_or_skip()
    items = make(9, seed=5)
    tree = MerkleTree.build(items)
    leaf = tree.leaves[4]
    # The JavaScript library checks the whole dump on load, then must agree on root and proof.
    script = """
    import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
    let input = "";
    for await (const chunk of process.stdin) input += chunk;
    const { dump, leaf } = JSON.parse(input);
    const tree = StandardMerkleTree.load(dump);
    const proof = tree.getProof(leaf);
    const ok = StandardMerkleTree.verify(tree.root, dump.leafEncoding, leaf, proof);
    console.log(JSON.stringify({ root: tree.root, proof, ok }));
    """
    out = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=ROOT,
        input=json.dumps({"dump": tree.dump(), "leaf": leaf.to_json()}),
        capture_output=True,
        check=True,
        text=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    assert result == {
        "root": "0x" + tree.root.hex(),
        "proof": ["0x" + p.hex() for p in tree.proof(4)],
        "ok": True,
    }


def test_checksum_eip55_examples() -> None:
    # The examples in the text of EIP-55.
    for address in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ]:
        assert checksum(h(address)) == address


# Agreement with a plain transcription of OpenZeppelin's algorithm, at sizes the vectors do not
# reach: every shape of the last level, and trees large enough to take the bucket sort.


@pytest.mark.parametrize("n", [*range(1, 70), 255, 256, 257, 2047, 2048, 2049, 5000])
def test_root_matches_reference(n: int) -> None:
    items = make(n, seed=n)
    assert MerkleTree.build(items).root == reference_root(items)


def make_small(n: int, seed: int = 0) -> list[Leaf]:
    """Leaves whose weights fit 64 bits, as every leaf of a record does: the packed encoding."""
    rng = random.Random(seed)
    return [Leaf(rng.randbytes(32), rng.randbytes(20), rng.getrandbits(32)) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 4097])
def test_root_matches_reference_with_record_weights(n: int) -> None:
    items = make_small(n, seed=n)
    items[-1] = replace(items[-1], weight=2**64 - 1)
    assert MerkleTree.build(items).root == reference_root(items)


def test_a_weight_above_64_bits_anywhere_takes_the_general_encoding() -> None:
    items = make_small(600, seed=1)
    for i in [0, 299, 599]:
        changed = list(items)
        changed[i] = replace(items[i], weight=2**64)
        tree = MerkleTree.build(changed)
        assert tree.root == reference_root(changed)
        assert verify(tree.root, changed[i], tree.proof(changed[i].contribution_id))


def test_sort_orders_hashes_that_share_their_first_8_bytes() -> None:
    # Leaf hashes are keccak outputs, so a collision of their first 8 bytes cannot be made by
    # choosing leaves (short of 2**32 tries); the sort is fed such hashes directly.
    rng = random.Random(7)
    head = rng.randbytes(8)
    hashes = [head + rng.randbytes(24) for _ in range(50)] + [rng.randbytes(32) for _ in range(50)]
    hashes += [head + bytes(24), head + b"\xff" * 24]
    rng.shuffle(hashes)
    ordered, order = _sort(b"".join(hashes))
    assert [ordered[i : i + 32] for i in range(0, len(ordered), 32)] == sorted(hashes)
    assert [hashes[i] for i in order] == sorted(hashes)


def test_duplicates_found_among_ids_that_share_their_first_8_bytes() -> None:
    rng = random.Random(4)
    items = make_small(1000, seed=3)
    head = rng.randbytes(8)
    twins = [Leaf(head + rng.randbytes(24), bytes(20), 1) for _ in range(3)]
    # Ids that share 8 bytes but differ are not duplicates.
    assert MerkleTree.build(items + twins).root == reference_root(items + twins)
    copy_of = Leaf(twins[1].contribution_id, b"\x01" * 20, 2)
    with pytest.raises(InvalidLeaf, match=twins[1].contribution_id.hex()):
        MerkleTree.build(items + twins + [copy_of])
    with pytest.raises(InvalidLeaf, match=items[500].contribution_id.hex()):
        MerkleTree.build([*items, replace(items[500], weight=7)])


def test_proofs_and_nodes_of_a_large_tree() -> None:
    items = make_small(3001, seed=5)
    tree = MerkleTree.build(items)
    nodes = tree.nodes
    assert len(nodes) == 2 * len(items) - 1
    for i in range(len(nodes) - len(items)):
        a, b = sorted((nodes[2 * i + 1], nodes[2 * i + 2]))
        assert nodes[i] == keccak(a + b).digest()
    for leaf in items[::97]:
        assert verify(tree.root, leaf, tree.proof(leaf.contribution_id))


def test_leaves_sorted_by_hash() -> None:
    tree = MerkleTree.build(make(3000))
    hashes = [leaf.hash for leaf in tree.leaves]
    assert hashes == sorted(hashes)
    assert tree.nodes[len(tree) - 1 :] == tuple(reversed(hashes))


# Properties.


@given(leaf_sets)
def test_every_proof_verifies(items: list[Leaf]) -> None:
    tree = MerkleTree.build(items)
    for leaf in items:
        proof = tree.proof(leaf.contribution_id)
        assert proof == tree.proof(tree.index_of(leaf.contribution_id))
        assert verify(tree.root, leaf, proof)
        assert process_proof(leaf.hash, proof) == tree.root


@given(leaf_sets, st.data())
def test_proof_verifies_no_other_leaf(items: list[Leaf], data: st.DataObject) -> None:
    tree = MerkleTree.build(items)
    leaf = data.draw(st.sampled_from(items))
    proof = tree.proof(leaf.contribution_id)
    bit = data.draw(st.integers(0, 7))
    flip = 1 << bit
    changed = [
        replace(
            leaf, contribution_id=bytes([leaf.contribution_id[0] ^ flip]) + leaf.contribution_id[1:]
        ),
        replace(leaf, payout=leaf.payout[:-1] + bytes([leaf.payout[-1] ^ flip])),
        replace(leaf, weight=(leaf.weight + 1) % 2**256),
        replace(leaf, weight=leaf.weight ^ 1 << 255),
        *(other for other in items if other != leaf),
    ]
    for other in changed:
        assert not verify(tree.root, other, proof)


@given(leaf_sets, st.randoms(use_true_random=False))
def test_build_ignores_order(items: list[Leaf], rng: random.Random) -> None:
    shuffled = items[:]
    rng.shuffle(shuffled)
    a, b = MerkleTree.build(items), MerkleTree.build(iter(shuffled))
    assert a.root == b.root
    assert a.leaves == b.leaves
    assert a.dump() == b.dump()


@given(leaf_sets, st.data())
def test_multiproof_of_any_subset_verifies(items: list[Leaf], data: st.DataObject) -> None:
    tree = MerkleTree.build(items)
    picked = data.draw(st.lists(st.sampled_from(range(len(items))), unique=True))
    keys: list[bytes | int] = [
        i if data.draw(st.booleans()) else tree.leaves[i].contribution_id for i in picked
    ]
    proof = tree.multiproof(keys)
    assert sorted(proof.leaves, key=lambda leaf: leaf.hash) == list(proof.leaves)
    assert set(proof.leaves) == {tree.leaves[i] for i in picked}
    assert verify_multiproof(tree.root, proof)


@given(leaf_sets, st.data())
def test_multiproof_fails_for_changed_leaf(items: list[Leaf], data: st.DataObject) -> None:
    tree = MerkleTree.build(items)
    picked = data.draw(st.lists(st.sampled_from(range(len(items))), min_size=1, unique=True))
    proof = tree.multiproof(picked)
    which = data.draw(st.integers(0, len(proof.leaves) - 1))
    old = proof.leaves[which]
    new = replace(old, weight=(old.weight + 1) % 2**256)
    leaves_ = (*proof.leaves[:which], new, *proof.leaves[which + 1 :])
    assert not verify_multiproof(tree.root, MultiProof(leaves_, proof.proof, proof.proof_flags))


@given(leaf_sets)
def test_dump_load_round_trip(items: list[Leaf]) -> None:
    tree = MerkleTree.build(items)
    dump = json.loads(json.dumps(tree.dump()))
    loaded = MerkleTree.load(dump)
    assert loaded.root == tree.root
    assert loaded.leaves == tree.leaves
    assert loaded.nodes == tree.nodes
    assert loaded.dump() == dump


@given(leaf_sets, st.data())
def test_load_rejects_any_changed_node(items: list[Leaf], data: st.DataObject) -> None:
    dump = MerkleTree.build(items).dump()
    i = data.draw(st.integers(0, len(dump["tree"]) - 1))
    digit = data.draw(st.integers(2, 65))
    node = dump["tree"][i]
    dump["tree"][i] = node[:digit] + ("1" if node[digit] != "1" else "2") + node[digit + 1 :]
    with pytest.raises(InvalidProof):
        MerkleTree.load(dump)


def tampered() -> list[tuple[str, Callable[[dict[str, Any]], object]]]:
    def value(i: int, field: int, new: object) -> Callable[[dict[str, Any]], object]:
        def change(dump: dict[str, Any]) -> None:
            dump["values"][i]["value"][field] = new

        return change

    def swap_slots(dump: dict[str, Any]) -> None:
        a, b = dump["values"][0], dump["values"][1]
        a["treeIndex"], b["treeIndex"] = b["treeIndex"], a["treeIndex"]

    def unsorted(dump: dict[str, Any]) -> None:
        # A valid OpenZeppelin tree built with sortLeaves: false, which keeps the leaves in the
        # order given (here: descending hash): the same values, another root.
        items = [Leaf.from_json(entry["value"]) for entry in dump["values"]]
        items.sort(key=lambda leaf: leaf.hash, reverse=True)
        nodes = [b""] * (2 * len(items) - 1)
        for i, leaf in enumerate(items):
            nodes[len(nodes) - 1 - i] = leaf.hash
        for i in range(len(items) - 2, -1, -1):
            a, b = sorted((nodes[2 * i + 1], nodes[2 * i + 2]))
            nodes[i] = keccak(a + b).digest()
        dump["tree"] = ["0x" + node.hex() for node in nodes]
        dump["values"] = [
            {"value": leaf.to_json(), "treeIndex": len(nodes) - 1 - i}
            for i, leaf in enumerate(items)
        ]

    def duplicate(dump: dict[str, Any]) -> None:
        dump["values"][1]["value"][0] = dump["values"][0]["value"][0]

    def bad_checksum(dump: dict[str, Any]) -> None:
        address = dump["values"][0]["value"][1]
        dump["values"][0]["value"][1] = address[:2] + address[2:].swapcase()

    return [
        ("format", lambda d: d.update(format="standard-v2")),
        ("encoding", lambda d: d.update(leafEncoding=["bytes32", "address", "uint128"])),
        ("extra key", lambda d: d.update(extra=1)),
        ("missing key", lambda d: d.pop("tree")),
        ("tree not a list", lambda d: d.update(tree="0x00")),
        ("node not hex", lambda d: d["tree"].__setitem__(0, "0x" + "zz" * 32)),
        ("node short", lambda d: d["tree"].__setitem__(0, d["tree"][0][:-2])),
        ("node without 0x", lambda d: d["tree"].__setitem__(0, d["tree"][0][2:] + "00")),
        ("root", lambda d: d["tree"].__setitem__(0, "0x" + "00" * 32)),
        ("extra node", lambda d: d["tree"].append(d["tree"][-1])),
        ("missing value", lambda d: d["values"].pop()),
        ("value twice", lambda d: d["values"].__setitem__(1, copy.deepcopy(d["values"][0]))),
        ("id", value(0, 0, "0x" + "11" * 32)),
        ("payout", value(0, 1, "0x" + "11" * 20)),
        ("weight", value(0, 2, "12345")),
        ("weight too big", value(0, 2, str(2**256))),
        ("weight negative", value(0, 2, "-1")),
        ("weight hex", value(0, 2, "0x10")),
        ("weight float", value(0, 2, 1.0)),
        ("short value", lambda d: d["values"][0]["value"].pop()),
        ("slot", lambda d: d["values"][0].update(treeIndex=0)),
        ("slot out of range", lambda d: d["values"][0].update(treeIndex=len(d["tree"]))),
        ("slot bool", lambda d: d["values"][0].update(treeIndex=True)),
        ("swapped slots", swap_slots),
        ("unsorted leaves", unsorted),
        ("duplicate id", duplicate),
        ("bad checksum", bad_checksum),
        ("no values", lambda d: d.update(tree=[], values=[])),
    ]


@pytest.mark.parametrize(("name", "change"), tampered(), ids=[name for name, _ in tampered()])
def test_load_rejects_tampered_dump(name: str, change: Callable[[dict[str, Any]], object]) -> None:
    dump = MerkleTree.build(make(5)).dump()
    MerkleTree.load(copy.deepcopy(dump))
    change(dump)
    with pytest.raises(InvalidProof):
        MerkleTree.load(dump)


def test_load_says_why_unsorted() -> None:
    dump = MerkleTree.build(make(5)).dump()
    dict(tampered())["unsorted leaves"](dump)
    with pytest.raises(InvalidProof, match="not sorted"):
        MerkleTree.load(dump)


def test_load_rejects_non_dict() -> None:
    with pytest.raises(InvalidProof):
        MerkleTree.load([])  # type: ignore[arg-type]


# Edges and errors.


def test_single_leaf() -> None:
    leaf = make(1)[0]
    tree = MerkleTree.build([leaf])
    assert tree.root == leaf.hash
    assert tree.proof(0) == ()
    assert verify(tree.root, leaf, ())
    assert tree.multiproof([0]) == MultiProof((leaf,), (), ())


def test_empty_multiproof_is_the_root() -> None:
    # OpenZeppelin and MerkleProof.sol both treat a multiproof of no leaves as the root itself.
    tree = MerkleTree.build(make(4))
    proof = tree.multiproof([])
    assert proof == MultiProof((), (tree.root,), ())
    assert verify_multiproof(tree.root, proof)


def test_leaf_checks_its_fields() -> None:
    good = (bytes(32), bytes(20), 1)
    for bad in [
        (bytes(31), bytes(20), 1),
        (bytes(33), bytes(20), 1),
        ("00" * 32, bytes(20), 1),
        (bytearray(32), bytes(20), 1),
        (bytes(32), bytes(19), 1),
        (bytes(32), bytes(32), 1),
        (bytes(32), bytes(20), -1),
        (bytes(32), bytes(20), 2**256),
        (bytes(32), bytes(20), True),
        (bytes(32), bytes(20), 1.0),
        (bytes(32), bytes(20), "1"),
    ]:
        with pytest.raises(InvalidLeaf):
            Leaf(*bad)  # type: ignore[arg-type]
    assert Leaf(*good).weight == 1
    assert Leaf(bytes(32), bytes(20), 2**256 - 1).encode()[-32:] == b"\xff" * 32


def test_leaf_encoding_is_abi_encode() -> None:
    leaf = Leaf(bytes(range(32)), bytes(range(100, 120)), 258)
    assert (
        leaf.encode()
        == bytes(range(32)) + bytes(12) + bytes(range(100, 120)) + bytes(30) + b"\x01\x02"
    )


@given(leaves)
def test_leaf_json_round_trip(leaf: Leaf) -> None:
    assert Leaf.from_json(leaf.to_json()) == leaf
    id_, payout, weight = leaf.to_json()
    assert Leaf.from_json([id_.upper().replace("0X", "0x"), payout.lower(), int(weight)]) == leaf


def test_build_rejects_empty_and_duplicates() -> None:
    with pytest.raises(EmptyTree):
        MerkleTree.build([])
    a, b = make(2)
    twin = Leaf(a.contribution_id, b.payout, a.weight + 1)
    with pytest.raises(InvalidLeaf, match=a.contribution_id.hex()):
        MerkleTree.build([a, b, twin])
    with pytest.raises(InvalidLeaf):
        MerkleTree.build([a, a])


def test_unknown_leaves() -> None:
    tree = MerkleTree.build(make(3))
    for key in [bytes(32), -1, 3, True, "0"]:
        with pytest.raises(UnknownLeaf):
            tree.proof(key)  # type: ignore[arg-type]
    with pytest.raises(UnknownLeaf):
        tree.index_of(bytes(32))
    with pytest.raises(UnknownLeaf):
        tree.multiproof([0, 7])
    with pytest.raises(InvalidLeaf):
        tree.multiproof([0, tree.leaves[0].contribution_id])


def test_malformed_proofs_raise() -> None:
    items = make(4)
    tree = MerkleTree.build(items)
    proof = tree.proof(0)
    for bad in [b"\x00" * 31, b"\x00" * 33, "00" * 32, None, bytearray(32)]:
        with pytest.raises(InvalidProof):
            verify(tree.root, tree.leaves[0], (*proof[:-1], bad))  # type: ignore[arg-type]
        with pytest.raises(InvalidProof):
            verify(bad, tree.leaves[0], proof)  # type: ignore[arg-type]
        with pytest.raises(InvalidProof):
            process_proof(bad, proof)  # type: ignore[arg-type]
    # Well-formed but wrong: False, not an error.
    assert not verify(tree.root, tree.leaves[0], tree.proof(1))
    assert not verify(tree.root, tree.leaves[0], proof[:-1])
    assert not verify(tree.root, tree.leaves[0], (*proof, bytes(32)))


def test_malformed_multiproofs_raise() -> None:
    tree = MerkleTree.build(make(8))
    good = tree.multiproof([0, 3, 5])
    hashes = [leaf.hash for leaf in good.leaves]
    assert process_multiproof(hashes, good.proof, good.proof_flags) == tree.root
    for bad_hashes, bad_proof, bad_flags in [
        (hashes, good.proof, (*good.proof_flags, True)),
        (hashes, good.proof[:-1], good.proof_flags),
        (hashes, (*good.proof[:-1], b"\x00" * 31), good.proof_flags),
        ([*hashes[:-1], b"\x00"], good.proof, good.proof_flags),
        ([], [], []),
        # Lengths fit, but the flags consume more computed hashes than exist.
        (hashes[:1], [tree.root], [True]),
        # Lengths fit, but the flags consume more proof elements than exist.
        (hashes, [], [False, False]),
    ]:
        with pytest.raises(InvalidProof):
            process_multiproof(bad_hashes, bad_proof, bad_flags)


def test_errors_are_protocol_errors() -> None:
    for error in (InvalidLeaf, EmptyTree, UnknownLeaf, InvalidProof):
        assert issubclass(error, ProtocolError)
        assert error.__doc__ and error.__doc__.startswith("Raised when")
    assert issubclass(UnknownLeaf, LookupError)


@settings(max_examples=20)
@given(st.integers(1, 300), st.integers(0, 2**32))
def test_proofs_verify_at_every_size(n: int, seed: int) -> None:
    items = make(n, seed)
    tree = MerkleTree.build(items)
    for i in range(n):
        assert process_proof(tree.leaves[i].hash, tree.proof(i)) == tree.root
