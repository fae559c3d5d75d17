"""Merkle trees of an epoch's accepted contributions, built as OpenZeppelin's StandardMerkleTree.

A leaf is `(bytes32 contribution_id, address payout, uint256 weight)`. Everything here matches
@openzeppelin/merkle-tree 1.0.8 byte for byte, so that `MerkleProof.sol` on chain and the
JavaScript library verify our roots and proofs unchanged:

- a leaf hashes to `keccak256(keccak256(abi.encode(bytes32, address, uint256)))`;
- leaf hashes are sorted ascending, and the tree is a flat array, a complete binary tree with
  the root at 0, the children of node `i` at `2i+1` and `2i+2`, and the `i`-th sorted leaf at
  `len(nodes) - 1 - i`;
- a parent is `keccak256` of its two children concatenated smaller first, so a proof is just
  the list of siblings from the leaf up, with no left/right flags.

Because leaves are sorted by hash, the tree is a function of the set of leaves: every node that
holds the same acceptances computes the same root. A leaf's index is its position in that sorted
order (OpenZeppelin's own indices follow the order its caller passed values in).
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import sha3  # type: ignore[import-untyped]

from protocol.errors import EmptyTree, InvalidLeaf, InvalidProof, UnknownLeaf

# keccak256 in batches, without the GIL (protocol/_keccak.c); optional at install time. The tests
# set it to None to run the Python path too.
_batch: ModuleType | None
try:
    from protocol import _keccak as _batch
except ImportError:  # pragma: no cover - the extension did not compile here
    _batch = None

__all__ = [
    "LEAF_ENCODING",
    "EmptyTree",
    "InvalidLeaf",
    "Leaf",
    "MerkleTree",
    "MultiProof",
    "UnknownLeaf",
    "checksum",
    "process_multiproof",
    "process_proof",
    "verify",
    "verify_multiproof",
]


class _Hash(Protocol):
    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


# safe-pysha3's C keccak costs a fifth of pycryptodome's per call, which is most of a build.
keccak: Callable[[bytes], _Hash] = sha3.keccak_256

LEAF_ENCODING = ("bytes32", "address", "uint256")
DUMP_FORMAT = "standard-v1"

_NODE_SIZE = 32
_ADDRESS_SIZE = 20
_UINT256_LIMIT = 2**256
# abi.encode pads an address on the left to a 32-byte word.
_ADDRESS_PAD = bytes(12)

_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DECIMAL = re.compile(r"[0-9]+")

# abi.encode of a leaf whose weight fits 64 bits, in one call: the id, 12 zero bytes, the
# address, 24 zero bytes, the weight big-endian. Records bound weights below 2**32, so this is
# every real leaf; a larger weight makes `pack` raise struct.error and the build falls back to
# `Leaf.encode`. (Leaf has checked the lengths that "32s" and "20s" would otherwise pad.)
_pack_small = struct.Struct(">32s12x20s24xQ").pack


@dataclass(frozen=True, slots=True)
class Leaf:
    """One accepted contribution of an epoch: who is paid, and for how much weight.

    Raises:
        InvalidLeaf: `contribution_id` is not 32 bytes, `payout` is not 20 bytes, or `weight` is
            not an int in [0, 2**256).
    """

    contribution_id: bytes
    payout: bytes
    weight: int

    def __post_init__(self) -> None:
        if not isinstance(self.contribution_id, bytes) or len(self.contribution_id) != _NODE_SIZE:
            raise InvalidLeaf(f"contribution id must be 32 bytes, got {self.contribution_id!r}")
        if not isinstance(self.payout, bytes) or len(self.payout) != _ADDRESS_SIZE:
            raise InvalidLeaf(f"payout must be a 20-byte address, got {self.payout!r}")
        weight = self.weight
        if not isinstance(weight, int) or isinstance(weight, bool):
            raise InvalidLeaf(f"weight must be an int, got {weight!r}")
        if not 0 <= weight < _UINT256_LIMIT:
            raise InvalidLeaf(f"weight {weight} is outside uint256")

    def encode(self) -> bytes:
        """Returns `abi.encode(contribution_id, payout, weight)`: three 32-byte words."""
        return b"".join((self.contribution_id, _ADDRESS_PAD, self.payout, self.weight.to_bytes(32)))

    @property
    def hash(self) -> bytes:
        """The leaf's node in the tree: `keccak256(keccak256(abi.encode(...)))`."""
        return keccak(keccak(self.encode()).digest()).digest()

    def to_json(self) -> list[str]:
        """Returns the leaf as OpenZeppelin writes a value in a dump or proof.

        That is `[0x-hex id, EIP-55 checksummed address, decimal weight]`; the weight is a string
        because JSON numbers lose precision above 2**53.
        """
        return ["0x" + self.contribution_id.hex(), checksum(self.payout), str(self.weight)]

    @classmethod
    def from_json(cls, value: object) -> Leaf:
        """Parses a leaf from the form `to_json` returns.

        Args:
            value: a list `[id, address, weight]`. The id is 0x and 64 hex digits; the address is
                0x and 40 hex digits, all lowercase, all uppercase or correctly checksummed; the
                weight is a decimal string or an int.

        Raises:
            InvalidLeaf: the value has another shape, or a field is out of range.
        """
        if not isinstance(value, list | tuple) or len(value) != len(LEAF_ENCODING):
            raise InvalidLeaf(f"a leaf value is a list [id, address, weight], got {value!r}")
        raw_id, raw_payout, raw_weight = value
        if not isinstance(raw_id, str) or not _HEX32.fullmatch(raw_id):
            raise InvalidLeaf(f"contribution id must be 0x and 64 hex digits, got {raw_id!r}")
        if not isinstance(raw_payout, str) or not _ADDRESS.fullmatch(raw_payout):
            raise InvalidLeaf(f"payout must be 0x and 40 hex digits, got {raw_payout!r}")
        payout = bytes.fromhex(raw_payout[2:])
        digits = raw_payout[2:]
        # EIP-55: a mixed-case address carries a checksum, which must then be right.
        if digits != digits.lower() and digits != digits.upper() and raw_payout != checksum(payout):
            raise InvalidLeaf(f"payout {raw_payout} has a wrong EIP-55 checksum")
        if isinstance(raw_weight, str) and _DECIMAL.fullmatch(raw_weight):
            weight = int(raw_weight)
        elif isinstance(raw_weight, int) and not isinstance(raw_weight, bool):
            weight = raw_weight
        else:
            raise InvalidLeaf(f"weight must be a decimal string, got {raw_weight!r}")
        return cls(bytes.fromhex(raw_id[2:]), payout, weight)


def checksum(address: bytes) -> str:
    """Returns the EIP-55 mixed-case checksummed form of a 20-byte address."""
    digits = address.hex()
    mask = keccak(digits.encode()).hexdigest()
    # A hex letter is upper case where the same nibble of keccak256(lowercase hex) is >= 8.
    return "0x" + "".join(
        c.upper() if m in "89abcdef" else c for c, m in zip(digits, mask[:40], strict=True)
    )


@dataclass(frozen=True, slots=True)
class MultiProof:
    """A proof that several leaves are in one tree, as OpenZeppelin's `getMultiProof` returns it.

    `leaves` must be passed to the verifier in this order (ascending leaf hash); `proof_flags`
    says, for each hash the verifier computes, whether its second input is the next computed
    hash (True) or the next element of `proof` (False).
    """

    leaves: tuple[Leaf, ...]
    proof: tuple[bytes, ...]
    proof_flags: tuple[bool, ...]


class MerkleTree:
    """A built tree: its nodes in OpenZeppelin's array layout and the leaves they commit to.

    Make one with `build` or `load`. Instances are immutable.
    """

    def __init__(
        self, inner: bytes, ordered: bytes, order: np.ndarray, source: list[Leaf], hashes: bytes
    ) -> None:
        # Private: `build` and `load` guarantee that `inner` and `ordered` are the tree of
        # `source`. Nodes stay in the buffers the build wrote and become objects only when asked
        # for (`nodes`, `_node`): `inner` holds the n - 1 inner nodes in array order, `ordered`
        # the n leaf hashes ascending, `order` the index in `source` of each of them, and
        # `hashes` the leaf hash of each leaf of `source`, in its order.
        self._inner = inner
        self._ordered = ordered
        self._order = order
        self._source = source
        self._hashes = hashes

    @classmethod
    def build(cls, leaves: Iterable[Leaf]) -> MerkleTree:
        """Builds the tree of a set of leaves; the order they come in does not matter.

        The cost is the 3n - 1 keccak calls a tree of n leaves needs: with protocol._keccak,
        about 1.5 times those calls made in C batches alone, and 0.7-0.85 times the same calls
        made one by one from Python; without it, about 1.3 times the latter
        (scripts/bench/merkle.py measures it).

        Raises:
            EmptyTree: there are no leaves.
            InvalidLeaf: two leaves have the same contribution id.
        """
        source = list(leaves)
        if not source:
            raise EmptyTree("a Merkle tree needs at least one leaf")
        ids = b"".join([leaf.contribution_id for leaf in source])
        _check_unique(ids)
        hashes = _leaf_hashes(source, ids)
        ordered, order = _sort(hashes)
        return cls(_grow(ordered), ordered, order, source, hashes)

    @classmethod
    def load(cls, dump: Mapping[str, Any]) -> MerkleTree:
        """Loads and fully checks a tree written by `dump` or by OpenZeppelin's `dump()`.

        Every leaf and node is hashed again, and the dump must be the canonical tree of its
        values: leaves sorted (OpenZeppelin's default), each leaf slot holding exactly one value.

        Raises:
            InvalidProof: the dump is malformed, or any hash or position in it is inconsistent
                with its values.
        """
        if not isinstance(dump, Mapping):
            raise InvalidProof(f"a tree dump is a JSON object, got {type(dump).__name__}")
        if set(dump) != {"format", "leafEncoding", "tree", "values"}:
            raise InvalidProof(f"a tree dump has keys format, leafEncoding, tree, values: {dump!r}")
        if dump["format"] != DUMP_FORMAT:
            raise InvalidProof(f"unknown tree dump format {dump['format']!r}")
        encoding = dump["leafEncoding"]
        if not isinstance(encoding, list | tuple) or tuple(encoding) != LEAF_ENCODING:
            raise InvalidProof(f"leaf encoding must be {list(LEAF_ENCODING)}, got {encoding!r}")
        nodes = dump["tree"]
        values = dump["values"]
        if not isinstance(nodes, list | tuple) or not isinstance(values, list | tuple):
            raise InvalidProof("tree and values of a dump are lists")
        if not values:
            raise InvalidProof("a tree dump has no values")
        if len(nodes) != 2 * len(values) - 1:
            raise InvalidProof(f"{len(values)} values need {2 * len(values) - 1} nodes")
        for node in nodes:
            if not isinstance(node, str) or not _HEX32.fullmatch(node):
                raise InvalidProof(f"tree node must be 0x and 64 hex digits, got {node!r}")
        leaves: list[Leaf] = []
        slots: list[int] = []
        for entry in values:
            if not isinstance(entry, Mapping) or set(entry) != {"value", "treeIndex"}:
                raise InvalidProof(f"a dumped value is {{value, treeIndex}}, got {entry!r}")
            slot = entry["treeIndex"]
            if not isinstance(slot, int) or isinstance(slot, bool):
                raise InvalidProof(f"treeIndex must be an int, got {slot!r}")
            try:
                leaves.append(Leaf.from_json(entry["value"]))
            except InvalidLeaf as exc:
                raise InvalidProof(f"bad value in tree dump: {exc}") from exc
            slots.append(slot)
        try:
            tree = cls.build(leaves)
        except (EmptyTree, InvalidLeaf) as exc:
            raise InvalidProof(f"tree dump has no valid set of leaves: {exc}") from exc
        dumped = [bytes.fromhex(node[2:]) for node in nodes]
        first_leaf = len(leaves) - 1
        for i, (leaf, slot) in enumerate(zip(leaves, slots, strict=True)):
            leaf_hash = tree._hashes[i * _NODE_SIZE : (i + 1) * _NODE_SIZE]
            if not first_leaf <= slot < len(nodes):
                raise InvalidProof(f"treeIndex {slot} is not a leaf slot of {len(nodes)} nodes")
            if dumped[slot] != leaf_hash:
                raise InvalidProof(f"value {leaf.to_json()} does not hash to tree node {slot}")
            # Distinct leaves have distinct hashes, so the check above already rules out two
            # values in one slot; this one rules out trees built with sortLeaves: false.
            place = tree._slot(tree.index_of(leaf.contribution_id))
            if slot != place:
                raise InvalidProof(
                    f"leaves are not sorted by hash: value {leaf.to_json()} is at treeIndex"
                    f" {slot}, where the canonical tree has it at {place}"
                )
        for i, (node, expected) in enumerate(zip(dumped, tree.nodes, strict=True)):
            if node != expected:
                raise InvalidProof(
                    f"tree node {i} is 0x{node.hex()}, but its children give 0x{expected.hex()}"
                )
        return tree

    @property
    def root(self) -> bytes:
        """The 32-byte root that is anchored on chain."""
        return self._node(0)

    @cached_property
    def nodes(self) -> tuple[bytes, ...]:
        """Every node, root first, in OpenZeppelin's array layout."""
        ordered, inner = self._ordered, self._inner
        # Leaf slots run from the largest hash down to the smallest.
        leaves = (ordered[i : i + _NODE_SIZE] for i in range(len(ordered) - _NODE_SIZE, -1, -32))
        return (*(inner[i : i + _NODE_SIZE] for i in range(0, len(inner), 32)), *leaves)

    @cached_property
    def leaves(self) -> tuple[Leaf, ...]:
        """The leaves in tree order: ascending by leaf hash, which is what an index refers to."""
        source = self._source
        return tuple(source[i] for i in self._order.tolist())

    @cached_property
    def _index(self) -> dict[bytes, int]:
        return {leaf.contribution_id: i for i, leaf in enumerate(self.leaves)}

    def __len__(self) -> int:
        return len(self._source)

    def __repr__(self) -> str:
        return f"<MerkleTree root=0x{self.root.hex()} leaves={len(self)}>"

    def index_of(self, contribution_id: bytes) -> int:
        """Returns the index of a contribution's leaf in `leaves`.

        Raises:
            UnknownLeaf: no leaf has that contribution id.
        """
        try:
            return self._index[contribution_id]
        except (KeyError, TypeError):
            raise UnknownLeaf(f"no leaf for contribution id {contribution_id!r}") from None

    def proof(self, key: bytes | int) -> tuple[bytes, ...]:
        """Returns the proof of one leaf: its siblings from the bottom of the tree up.

        Args:
            key: a contribution id, or an index into `leaves`.

        Raises:
            UnknownLeaf: the key names no leaf of this tree.
        """
        node = self._node
        i = self._slot(self._resolve(key))
        proof = []
        while i > 0:
            # Left children have odd indices, so the sibling of an odd node is the next one.
            proof.append(node(i + 1 if i % 2 else i - 1))
            i = (i - 1) // 2
        return tuple(proof)

    def multiproof(self, keys: Iterable[bytes | int]) -> MultiProof:
        """Returns one proof of several leaves, as OpenZeppelin's `getMultiProof` does.

        Args:
            keys: contribution ids or indices into `leaves`, in any order; none twice.

        Raises:
            UnknownLeaf: a key names no leaf of this tree.
            InvalidLeaf: a leaf is asked for twice.
        """
        slots = sorted((self._slot(self._resolve(key)) for key in keys), reverse=True)
        if len(set(slots)) != len(slots):
            raise InvalidLeaf("a multiproof cannot prove the same leaf twice")
        node = self._node
        # The queue holds the nodes the verifier will have computed, deepest first; a node whose
        # sibling is also queued costs no proof element, only a True flag.
        queue = deque(slots)
        proof: list[bytes] = []
        flags: list[bool] = []
        while queue and queue[0] > 0:
            j = queue.popleft()
            sibling = j + 1 if j % 2 else j - 1
            if queue and queue[0] == sibling:
                flags.append(True)
                queue.popleft()
            else:
                flags.append(False)
                proof.append(node(sibling))
            queue.append((j - 1) // 2)
        if not slots:
            proof.append(node(0))
        last = 2 * len(self._source) - 2
        return MultiProof(
            leaves=tuple(self.leaves[last - slot] for slot in slots),
            proof=tuple(proof),
            proof_flags=tuple(flags),
        )

    def dump(self) -> dict[str, Any]:
        """Returns the tree in OpenZeppelin's `standard-v1` JSON form.

        `StandardMerkleTree.load` in JavaScript accepts it, and `MerkleTree.load` reads it back.
        Values come in tree order, so equal trees dump to equal JSON.
        """
        last = 2 * len(self._source) - 2
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(LEAF_ENCODING),
            "tree": ["0x" + node.hex() for node in self.nodes],
            "values": [
                {"value": leaf.to_json(), "treeIndex": last - i}
                for i, leaf in enumerate(self.leaves)
            ],
        }

    def _resolve(self, key: bytes | int) -> int:
        if isinstance(key, bytes):
            return self.index_of(key)
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(self._source):
            return key
        raise UnknownLeaf(f"no leaf at index {key!r} of a tree of {len(self._source)}")

    def _slot(self, index: int) -> int:
        return 2 * len(self._source) - 2 - index

    def _node(self, slot: int) -> bytes:
        start = slot * _NODE_SIZE
        if start < len(self._inner):
            return self._inner[start : start + _NODE_SIZE]
        # Leaf slot s holds the leaf of index 2n - 2 - s, that is slot n - 1 + j holds n - 1 - j.
        start = (2 * len(self._source) - 2 - slot) * _NODE_SIZE
        return self._ordered[start : start + _NODE_SIZE]


def _check_unique(ids: bytes) -> None:
    """Raises InvalidLeaf if two of the 32-byte contribution ids joined in `ids` are equal."""
    # Comparing neighbours after numpy sorts the first 8 bytes of each id costs two thirds of a set
    # of a million ids; only ids that share those bytes are compared whole.
    heads = np.sort(np.frombuffer(ids, dtype=np.uint64)[:: _NODE_SIZE // 8])
    if not (heads[1:] == heads[:-1]).any():
        return
    seen: set[bytes] = set()
    for i in range(0, len(ids), _NODE_SIZE):
        contribution_id = ids[i : i + _NODE_SIZE]
        if contribution_id in seen:
            raise InvalidLeaf(f"contribution id 0x{contribution_id.hex()} appears twice")
        seen.add(contribution_id)


def _leaf_hashes(source: list[Leaf], ids: bytes) -> bytes:
    """Returns the leaf hashes of `source`, joined in its order; `ids` are its ids, joined."""
    if _batch is None:
        return b"".join(_leaf_hashes_python(source))
    n = len(source)
    encoded: bytes | np.ndarray
    try:
        weights = np.fromiter(map(attrgetter("weight"), source), dtype=np.uint64, count=n)
    except OverflowError:
        # A weight of 2**64 or more (only a Leaf made by hand has one): the general encoding.
        encoded = b"".join([leaf.encode() for leaf in source])
    else:
        # abi.encode of every leaf in one buffer, written a field at a time: the id, 12 zero
        # bytes, the address, 24 zero bytes, the weight big-endian.
        rows = np.zeros((n, 3 * _NODE_SIZE), dtype=np.uint8)
        rows[:, :_NODE_SIZE] = np.frombuffer(ids, dtype=np.uint8).reshape(n, _NODE_SIZE)
        payouts = np.frombuffer(b"".join([leaf.payout for leaf in source]), dtype=np.uint8)
        rows[:, 2 * _NODE_SIZE - _ADDRESS_SIZE : 2 * _NODE_SIZE] = payouts.reshape(n, _ADDRESS_SIZE)
        rows[:, 3 * _NODE_SIZE - 8 :] = weights.astype(">u8").view(np.uint8).reshape(n, 8)
        encoded = rows  # read in place, through the buffer protocol
    hashes: bytes = _batch.hash_each(_batch.hash_each(encoded, 3 * _NODE_SIZE), _NODE_SIZE)
    return hashes


def _leaf_hashes_python(source: list[Leaf]) -> list[bytes]:
    """`_leaf_hashes` with two Python calls per leaf, where protocol._keccak did not compile."""
    k = keccak
    try:
        # Leaf.hash inlined, the encoding packed by one C call.
        return [
            k(k(_pack_small(leaf.contribution_id, leaf.payout, leaf.weight)).digest()).digest()
            for leaf in source
        ]
    except struct.error:
        # A weight of 2**64 or more (only a Leaf made by hand has one): the general encoding.
        return [k(k(leaf.encode()).digest()).digest() for leaf in source]


def _sort(hashes: bytes) -> tuple[bytes, np.ndarray]:
    """Sorts the 32-byte hashes joined in `hashes`.

    Returns them ascending, joined, and for each the index it had in `hashes`.
    """
    # A sort of Python bytes follows two pointers per comparison to objects scattered over the
    # heap; numpy sorts the first 8 bytes of each hash read big-endian (lexicographic order) as
    # integers and moves the rows, about a third of the time of the best Python sort (bucketing
    # by first byte). Only if two hashes share those 8 bytes does it sort by all 32.
    n = len(hashes) // _NODE_SIZE
    words = np.frombuffer(hashes, dtype=">u8").reshape(n, _NODE_SIZE // 8)
    heads = words[:, 0].astype(np.uint64)
    order = np.argsort(heads)
    sorted_heads = heads[order]
    if (sorted_heads[1:] == sorted_heads[:-1]).any():
        # lexsort's last key is the primary one.
        order = np.lexsort(words.T[::-1].astype(np.uint64))
    # np.take of rows of four uint64 copies faster than fancy indexing of 32-byte void rows.
    rows = np.frombuffer(hashes, dtype=np.uint64).reshape(n, _NODE_SIZE // 8)
    ordered: bytes = np.take(rows, order, axis=0).tobytes()
    return ordered, order


def _grow(ordered: bytes) -> bytes:
    """Returns the inner nodes, root first and joined, of the tree whose sorted leaf hashes are
    joined in `ordered`."""
    if _batch is None:
        return b"".join(_grow_python(ordered))
    inner: bytes = _batch.tree(ordered)
    return inner


def _grow_python(ordered: bytes) -> list[bytes]:
    """`_grow` with a Python call per node, where protocol._keccak did not compile."""
    k = keccak
    size = _NODE_SIZE
    n = len(ordered) // size
    inner: list[bytes] = [b""] * (n - 1)
    if n == 1:
        return inner
    # The parents of leaves only are the nodes from lo = (n - 1) // 2 to n - 2. Parent j has the
    # leaves of sorted indices 2m and 2m + 1, m = n - 2 - j, as children: its input is the
    # smaller then the larger, 64 bytes that already lie side by side in `ordered`. Half the tree
    # is hashed from slices of one buffer, with no comparison and no concatenation.
    lo = (n - 1) // 2
    bottom = [k(ordered[i : i + 2 * size]).digest() for i in range(0, 2 * size * (n - 1 - lo), 64)]
    bottom.reverse()
    inner[lo:] = bottom
    # Nodes from `done` on are computed. The parents of exactly that range are the nodes from
    # done // 2 to done, whose children form one contiguous slice, so each pass is a single
    # comprehension (about log2(n) passes) rather than a Python call per node.
    done = lo
    while done > 0:
        lo = done // 2
        stop = 2 * done + 1
        children = inner[2 * lo + 1 : stop]
        if stop > n - 1:
            # The last level is not full: a pass above it also takes leaves (slots n - 1 on).
            children += [
                ordered[(2 * n - 2 - slot) * size : (2 * n - 1 - slot) * size]
                for slot in range(max(n - 1, 2 * lo + 1), stop)
            ]
        pairs = iter(children)
        inner[lo:done] = [
            k(a + b if a < b else b + a).digest() for a, b in zip(pairs, pairs, strict=True)
        ]
        done = lo
    return inner


def _check_node(node: object, what: str) -> None:
    if not isinstance(node, bytes) or len(node) != _NODE_SIZE:
        raise InvalidProof(f"{what} must be 32 bytes, got {node!r}")


def process_proof(leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """Returns the root that `proof` leads to from `leaf_hash` (OpenZeppelin's `processProof`).

    Raises:
        InvalidProof: `leaf_hash` or an element of `proof` is not 32 bytes.
    """
    _check_node(leaf_hash, "leaf hash")
    for sibling in proof:
        _check_node(sibling, "proof element")
    k = keccak
    node = leaf_hash
    for sibling in proof:
        node = k(node + sibling if node < sibling else sibling + node).digest()
    return node


def verify(root: bytes, leaf: Leaf, proof: Sequence[bytes]) -> bool:
    """Returns whether `proof` shows that `leaf` is in the tree of `root`.

    A well-formed proof that leads elsewhere gives False; so does a proof of a leaf with any field
    changed.

    Raises:
        InvalidProof: `root` or an element of `proof` is not 32 bytes.
    """
    _check_node(root, "root")
    return process_proof(leaf.hash, proof) == root


def process_multiproof(
    leaf_hashes: Sequence[bytes], proof: Sequence[bytes], proof_flags: Sequence[bool]
) -> bytes:
    """Returns the root a multiproof leads to (OpenZeppelin's `processMultiProof`).

    Raises:
        InvalidProof: a hash is not 32 bytes, or the leaves, proof and flags do not fit
            together: as in MerkleProof.sol, a multiproof must use every leaf and every proof
            element exactly once, and is rejected rather than evaluated otherwise.
    """
    for node in leaf_hashes:
        _check_node(node, "leaf hash")
    for node in proof:
        _check_node(node, "proof element")
    if len(leaf_hashes) + len(proof) != len(proof_flags) + 1:
        raise InvalidProof(
            f"{len(leaf_hashes)} leaves and {len(proof)} proof elements need"
            f" {len(leaf_hashes) + len(proof) - 1} flags, got {len(proof_flags)}"
        )
    k = keccak
    queue = deque(leaf_hashes)
    rest = deque(proof)
    for flag in proof_flags:
        if not queue or (flag and len(queue) < 2) or (not flag and not rest):
            raise InvalidProof("multiproof flags ask for more hashes than there are")
        a = queue.popleft()
        b = queue.popleft() if flag else rest.popleft()
        queue.append(k(a + b if a < b else b + a).digest())
    # The length check above leaves exactly one hash: a computed one, or the lone proof element
    # of a multiproof of no leaves.
    return queue.pop() if queue else rest.popleft()


def verify_multiproof(root: bytes, multiproof: MultiProof) -> bool:
    """Returns whether `multiproof` shows that all its leaves are in the tree of `root`.

    A multiproof of no leaves is the root itself (OpenZeppelin's convention) and proves nothing.

    Raises:
        InvalidProof: the multiproof is malformed (see `process_multiproof`).
    """
    _check_node(root, "root")
    hashes = [leaf.hash for leaf in multiproof.leaves]
    return process_multiproof(hashes, multiproof.proof, multiproof.proof_flags) == root
