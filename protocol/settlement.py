"""Pro-rata settlement of an epoch, computed exactly as the contract computes it in uint256.

Anyone can fund an anchored epoch, in ether or any ERC-20 token, more than once until it expires.
Each token has its own books. A leaf of weight `w` in an epoch of total weight `W` is owed
`funded * w // W` of everything `funded` so far in a token, and a claim pays that share minus
what the leaf was already paid in that token. So however the funding arrives, and whenever
claims are made, a leaf never receives more than its share of the total funded, and once it
claims after the last top-up it has received exactly that share. Integer division rounds every
share down; the dust, less than one unit per leaf, stays with the epoch.

Claims close `CLAIM_PERIOD` seconds after the epoch was anchored. From then on each funder may
take back its part of what the claims left: `refundable(funded - paid, stake, funded, refunded)`,
the same arithmetic with the funder's stake for a weight. A project's pool refunds its funders in
the same way once it has gone `POOL_TIMEOUT` seconds without an allocation:
`refundable(unallocated + refunded, stake, funded, refunded)`. Amounts are integers in the
token's smallest unit (wei for ether, millionths for a 6-decimals stablecoin).

Every function checks that its inputs are uint256 values, since the contract cannot hold
anything else, and raises `SettlementError` where the contract would revert or where the
inputs show a bug or a lie (a leaf paid more than its share).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.errors import SettlementError

__all__ = [
    "CLAIM_PERIOD",
    "POOL_TIMEOUT",
    "UINT256_MAX",
    "Distribution",
    "SettlementError",
    "claimable",
    "distribute",
    "refundable",
    "share",
]

UINT256_MAX = 2**256 - 1
# The contract's constants (tests/chain checks that they agree): an epoch takes funds and pays
# claims for a year after it is anchored, and a pool lives 180 days past its last allocation.
CLAIM_PERIOD = 365 * 24 * 3600
POOL_TIMEOUT = 180 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Distribution:
    """How one funding total splits over an epoch's leaves.

    `amounts[i]` is the share of the leaf of `weights[i]`; `paid` is their sum and `remainder`
    what stays in the contract: `paid + remainder == funded`, and `remainder` is smaller than
    the number of leaves of nonzero weight (zero when there is only one).
    """

    amounts: tuple[int, ...]
    paid: int
    remainder: int


def _uint(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettlementError(f"{name} must be an int, got {value!r}")
    if not 0 <= value <= UINT256_MAX:
        raise SettlementError(f"{name} {value} is outside uint256")


def share(funded: int, weight: int, total_weight: int) -> int:
    """Returns a leaf's share of `funded`: `funded * weight / totalWeight` in Solidity.

    The contract computes it with checked uint256 arithmetic, so it reverts when
    `funded * weight` overflows; this function raises instead of returning a share that no
    claim could pay. With weights bounded as records bound them (below 2**32), that takes more
    than 2**224 wei, far more than exists.

    Args:
        funded: everything funded to the epoch so far, in wei.
        weight: the leaf's weight.
        total_weight: the epoch's anchored total weight.

    Raises:
        SettlementError: an argument is outside uint256, `total_weight` is zero, `weight` is
            more than `total_weight`, or `funded * weight` overflows uint256.
    """
    _uint("funded", funded)
    _uint("weight", weight)
    _uint("total weight", total_weight)
    if total_weight == 0:
        raise SettlementError("total weight is zero: an epoch with no weight pays nobody")
    if weight > total_weight:
        raise SettlementError(f"weight {weight} is more than the total weight {total_weight}")
    product = funded * weight
    if product > UINT256_MAX:
        raise SettlementError(f"funded * weight = {product} overflows uint256")
    return product // total_weight


def claimable(funded: int, weight: int, total_weight: int, already_paid: int) -> int:
    """Returns what a claim pays now: the leaf's share of `funded` minus what it was paid.

    Because the share is of the running total, claims after each top-up add up to exactly
    `share(total funded, ...)`, never more, whatever the order of fundings and claims.

    Args:
        funded: everything funded to the epoch so far, in wei.
        weight: the leaf's weight.
        total_weight: the epoch's anchored total weight.
        already_paid: what earlier claims of this leaf paid.

    Raises:
        SettlementError: as `share` does, or `already_paid` is more than the share, which
            only a bug or false data can produce (funding never decreases).
    """
    _uint("already paid", already_paid)
    owed = share(funded, weight, total_weight)
    if already_paid > owed:
        raise SettlementError(f"leaf was paid {already_paid}, more than its share {owed}")
    return owed - already_paid


def refundable(remaining: int, stake: int, funded: int, refunded: int) -> int:
    """Returns what a refund pays a funder now: its stake's part of `remaining`, less what it had.

    For an expired epoch, `remaining` is what its claims left in the token (`funded - paid`); for
    an expired pool, what it holds unallocated plus what it has refunded (`unallocated +
    refunded`), which grows when epochs return money. The refunds of all funders add up to at
    most `remaining`; what rounding leaves is less than one unit per funder.

    Args:
        remaining: what is to be shared among the funders, in the token's smallest unit.
        stake: what this funder put in.
        funded: what all funders put in (the sum of the stakes).
        refunded: what this funder was already refunded.

    Raises:
        SettlementError: as `claimable` does, with `funded` for the total weight: a value outside
            uint256, nothing funded, a stake above the total, or a refund above the part.
    """
    return claimable(remaining, stake, funded, refunded)


def distribute(
    funded: int, weights: Sequence[int], *, total_weight: int | None = None
) -> Distribution:
    """Returns what every leaf of an epoch receives once all claim after `funded` arrived.

    Args:
        funded: everything funded to the epoch, in wei.
        weights: the weight of each leaf.
        total_weight: the anchored total, if known; it must equal the sum of `weights`, since
            an owner who anchored a smaller total would let claims take more than was funded.

    Raises:
        SettlementError: a value is outside uint256, there is no weight at all, the weights do
            not add up to `total_weight`, or a share overflows as in `share`.
    """
    _uint("funded", funded)
    for weight in weights:
        _uint("weight", weight)
    total = sum(weights)
    # Checked here rather than left to `share`, which is never called when there are no weights.
    _uint("total weight", total)
    if total == 0:
        raise SettlementError("weights add up to zero: an epoch with no weight pays nobody")
    if total_weight is not None:
        _uint("total weight", total_weight)
        if total != total_weight:
            raise SettlementError(f"weights add up to {total}, not the total weight {total_weight}")
    amounts = tuple(share(funded, weight, total) for weight in weights)
    paid = sum(amounts)
    return Distribution(amounts=amounts, paid=paid, remainder=funded - paid)
