"""Tests of protocol.settlement: the contract's pro-rata arithmetic in uint256."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.settlement import (
    UINT256_MAX,
    Distribution,
    SettlementError,
    claimable,
    distribute,
    refundable,
    share,
)

# Amounts up to the total supply of ether in wei and more, weights as records bound them and
# beyond: every product stays below 2**256, as the contract needs.
amounts = st.integers(min_value=0, max_value=2**160)
weight_lists = st.lists(st.integers(min_value=0, max_value=2**64), min_size=1, max_size=50).filter(
    lambda weights: sum(weights) > 0
)


def test_share_known_values() -> None:
    assert share(100, 1, 3) == 33
    assert share(100, 2, 3) == 66
    assert share(100, 3, 3) == 100
    assert share(100, 0, 3) == 0
    assert share(0, 1, 1) == 0
    assert share(10**18, 1, 10**18 + 1) == 0
    # The largest product the contract can hold.
    assert share(UINT256_MAX, 1, 1) == UINT256_MAX
    assert share(2**128 - 1, 2**128 + 1, 2**128 + 1) == 2**128 - 1


def test_distribute_known_values() -> None:
    assert distribute(100, [1, 1, 1]) == Distribution((33, 33, 33), 99, 1)
    assert distribute(10, [0, 5, 0, 5]) == Distribution((0, 5, 0, 5), 10, 0)
    assert distribute(7, [3]) == Distribution((7,), 7, 0)
    assert distribute(0, [1, 2]) == Distribution((0, 0), 0, 0)


@given(amounts, weight_lists)
def test_distribution_adds_up(funded: int, weights: list[int]) -> None:
    result = distribute(funded, weights, total_weight=sum(weights))
    assert result.paid == sum(result.amounts)
    assert result.paid + result.remainder == funded
    assert 0 <= result.remainder < len(weights)
    # Each share loses less than one wei to rounding, and a leaf of no weight loses nothing.
    assert result.remainder < max(1, sum(1 for w in weights if w))
    total = sum(weights)
    for amount, weight in zip(result.amounts, weights, strict=True):
        assert amount * total <= funded * weight < (amount + 1) * total


@given(weight_lists, st.lists(amounts, min_size=1, max_size=10), st.data())
def test_claims_after_each_funding_add_up_to_the_share(
    weights: list[int], fundings: list[int], data: st.DataObject
) -> None:
    total = sum(weights)
    funded = 0
    paid = [0] * len(weights)
    for amount in fundings:
        funded += amount
        # Only some leaves claim after each top-up; the others claim later or never.
        for i in range(len(weights)):
            if data.draw(st.booleans()):
                paid[i] += claimable(funded, weights[i], total, paid[i])
            assert paid[i] <= share(funded, weights[i], total)
        assert sum(paid) <= funded
    for i in range(len(weights)):
        paid[i] += claimable(funded, weights[i], total, paid[i])
        assert claimable(funded, weights[i], total, paid[i]) == 0
    assert paid == list(distribute(funded, weights).amounts)


def test_claimable_refuses_overpayment() -> None:
    assert claimable(100, 1, 3, 30) == 3
    assert claimable(100, 1, 3, 33) == 0
    with pytest.raises(SettlementError, match="more than its share"):
        claimable(100, 1, 3, 34)


@pytest.mark.parametrize(
    "args",
    [
        (-1, 1, 1),
        (2**256, 1, 1),
        (1, -1, 1),
        (1, 2**256, 2**256),
        (1, 1, 0),
        (1, 2, 1),
        (True, 1, 1),
        (1.0, 1, 1),
        ("1", 1, 1),
        # funded * weight overflows uint256, so the contract's checked multiply reverts.
        (2**200, 2**56, 2**56),
    ],
)
def test_share_rejects(args: tuple[object, object, object]) -> None:
    with pytest.raises(SettlementError):
        share(*args)  # type: ignore[arg-type]


@given(
    st.lists(st.integers(min_value=1, max_value=2**100), min_size=1, max_size=20),
    st.integers(min_value=0, max_value=2**100),
    st.lists(st.integers(min_value=0, max_value=2**64), max_size=3),
)
def test_refunds_share_what_is_left_and_no_more(
    stakes: list[int], spent: int, returns: list[int]
) -> None:
    # What a pool (or an expired epoch) has left to give back: `remaining` of `funded`, which
    # only grows as expired epochs return money to a pool.
    funded = sum(stakes)
    remaining = funded - min(spent, funded)
    refunded = [0] * len(stakes)
    for extra in [0, *returns]:
        remaining = min(funded, remaining + extra)
        for i, stake in enumerate(stakes):
            refunded[i] += refundable(remaining, stake, funded, refunded[i])
            assert refundable(remaining, stake, funded, refunded[i]) == 0
        # Each funder has its part of what is left, rounded down: the rest is under one unit
        # per funder.
        assert 0 <= remaining - sum(refunded) < len(stakes)
    assert refunded == [share(remaining, stake, funded) for stake in stakes]


def test_refundable_is_the_claim_arithmetic_with_stakes() -> None:
    assert refundable(90, 3, 4, 0) == 67
    assert refundable(90, 3, 4, 60) == 7
    with pytest.raises(SettlementError, match="more than its share"):
        refundable(90, 3, 4, 68)
    with pytest.raises(SettlementError):
        refundable(1, 5, 4, 0)


def test_claimable_rejects_bad_paid() -> None:
    for paid in (-1, 2**256, None):
        with pytest.raises(SettlementError):
            claimable(1, 1, 1, paid)  # type: ignore[arg-type]


def test_distribute_rejects() -> None:
    with pytest.raises(SettlementError):
        distribute(1, [])
    with pytest.raises(SettlementError):
        distribute(1, [0, 0])
    with pytest.raises(SettlementError):
        distribute(1, [1, -1, 1])
    with pytest.raises(SettlementError):
        distribute(-1, [1])
    with pytest.raises(SettlementError, match="not the total weight"):
        distribute(10, [1, 2], total_weight=4)
    with pytest.raises(SettlementError):
        distribute(10, [UINT256_MAX, 1])
    assert distribute(10, [1, 2], total_weight=3).amounts == (3, 6)


def test_error_family() -> None:
    assert issubclass(SettlementError, ProtocolError)
    assert SettlementError.__doc__
    assert SettlementError.__doc__.startswith("Raised when")
