"""Tests of protocol._keccak, the batches of keccak256 behind Merkle trees, against safe-pysha3."""

from __future__ import annotations

import random

import pytest
import sha3  # type: ignore[import-untyped]

keccak_batch = pytest.importorskip("protocol._keccak", reason="the C extension did not compile")


def keccak(data: bytes) -> bytes:
    digest: bytes = sha3.keccak_256(data).digest()
    return digest


def test_every_width_matches_safe_pysha3() -> None:
    rng = random.Random(1)
    for width in range(1, 136):
        data = rng.randbytes(width * 7)
        expected = b"".join(keccak(data[i : i + width]) for i in range(0, len(data), width))
        assert keccak_batch.hash_each(data, width) == expected, width


def test_known_answer() -> None:
    # keccak256 of 32 zero bytes, as the EVM computes it.
    assert keccak_batch.hash_each(bytes(32), 32).hex() == (
        "290decd9548b62a8d60345a988386fc84ba6bc95484008f6362f93160ef3e563"
    )


def test_an_empty_buffer_has_no_digests_and_buffers_other_than_bytes_are_read() -> None:
    assert keccak_batch.hash_each(b"", 32) == b""
    data = bytearray(range(64))
    assert keccak_batch.hash_each(memoryview(data), 64) == keccak(bytes(data))


@pytest.mark.parametrize("width", [0, -1, 136, 1000])
def test_widths_outside_one_block_are_refused(width: int) -> None:
    with pytest.raises(ValueError, match="width"):
        keccak_batch.hash_each(bytes(136), width)


def test_a_partial_input_is_refused() -> None:
    with pytest.raises(ValueError, match="whole number"):
        keccak_batch.hash_each(bytes(65), 32)


def reference_inner(ordered: bytes) -> bytes:
    """OpenZeppelin's array layout built one node at a time: leaves in the last slots, largest
    first; node i is the hash of its children 2i + 1 and 2i + 2, the smaller first."""
    leaves = [ordered[i : i + 32] for i in range(0, len(ordered), 32)]
    n = len(leaves)
    tree = [b""] * (n - 1) + leaves[::-1]
    for i in range(n - 2, -1, -1):
        a, b = sorted((tree[2 * i + 1], tree[2 * i + 2]))
        tree[i] = keccak(a + b)
    return b"".join(tree[: n - 1])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 100, 1023, 1024, 1025])
def test_tree_matches_a_node_by_node_build(n: int) -> None:
    rng = random.Random(n)
    ordered = b"".join(sorted(rng.randbytes(32) for _ in range(n)))
    assert keccak_batch.tree(ordered) == reference_inner(ordered)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_tree_refuses_what_is_not_leaf_hashes(size: int) -> None:
    with pytest.raises(ValueError, match="32-byte"):
        keccak_batch.tree(bytes(size))
