"""Key stamps: a key's proof of work is checked with one hash and minted by grinding keys."""

from __future__ import annotations

import hashlib
import time

import pytest

from protocol.stamp import MAX_DIFFICULTY, STAMP_DOMAIN, mint, work
from tests.support import factories as f


def test_work_counts_the_leading_zero_bits_of_the_keys_stamp_hash() -> None:
    key = f.pub("alice")
    digest = hashlib.sha256(STAMP_DOMAIN + key).digest()
    bits = "".join(f"{byte:08b}" for byte in digest)
    assert work(key) == len(bits) - len(bits.lstrip("0"))


def test_a_minted_key_has_at_least_the_work_asked_for() -> None:
    counter = iter(range(10**6))
    key = mint(10, seed=lambda: bytes([next(counter)]) * 32)
    assert work(bytes(key.verify_key)) >= 10
    # Difficulty 0 takes the first key.
    assert mint(0) is not None


def test_a_difficulty_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        mint(MAX_DIFFICULTY + 1)
    with pytest.raises(ValueError):
        mint(-1)


@pytest.mark.slow
def test_the_default_difficulty_takes_about_a_second_and_a_hash_to_check() -> None:
    """The network default (15 bits): ~32,768 tries on average. On a loaded CI machine a try
    costs several times a laptop's, so the bound is loose; checking is one hash."""
    began = time.perf_counter()
    key = mint(15)
    took = time.perf_counter() - began
    assert work(bytes(key.verify_key)) >= 15
    assert took < 60
    began = time.perf_counter()
    for _ in range(1000):
        work(bytes(key.verify_key))
    assert (time.perf_counter() - began) / 1000 < 1e-4
