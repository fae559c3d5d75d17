"""The "paid" and "needs" components: what a project pays per unit of weight, and how much it
needs people now.

Pay is read from the anchored epochs the node knows: the chain holds each epoch's funded and
paid wei, the epoch root its total weight, so funded / weight is what a unit of accepted weight
has earned there. A project pool (coming: wei held for work not anchored yet) enters through
`Opening.pool`, divided over the weight of one more epoch of the project's typical size; the
ranker uses it as soon as the caller fills it in.
"""

from __future__ import annotations

import math
import re

from node.match.model import Component, Opening

ETHER = 10**18
_UNITS = {"wei": 1, "gwei": 10**9, "eth": ETHER, "ether": ETHER}
_RATE = re.compile(
    r"\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*(wei|gwei|eth|ether)\s*(?:/|per)\s*"
    r"(?:(?:a|one|each|unit of)\s+)?(?:weight|w|point|unit)s?\s*",
    re.IGNORECASE,
)
DAY = 86_400
# Activity older than this counts half as much, every half life again.
HALF_LIFE = 30 * DAY


def parse_rate(rate: str) -> int | None:
    """Returns a profile's rate as wei per unit of accepted weight, or None if it is not one.

    "0.001 eth/weight", "2000 gwei per weight" and "1e15 wei / point" read as rates; "20
    USDC/h" does not (there is no exchange rate, nor hours, in a weight).
    """
    found = _RATE.fullmatch(rate)
    if found is None:
        return None
    try:
        number = float(found.group(1))
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return int(number * _UNITS[found.group(2).lower()])


Money = tuple[int | None, int, int, int]


def per_weight(opening: Opening) -> Money:
    """Returns (funded wei per unit of weight or None, funded, paid, epochs known on chain)."""
    known = [e for e in opening.epochs if e.funded is not None]
    funded = sum(e.funded or 0 for e in known)
    paid = sum(e.paid or 0 for e in known)
    weight = sum(e.total_weight for e in known)
    pool = opening.pool or 0
    if pool and opening.epochs:
        # A pool pays for epochs to come: count it against one more epoch of average weight.
        weight += sum(e.total_weight for e in opening.epochs) // len(opening.epochs)
        funded += pool
    if not known and not pool:
        return None, 0, 0, 0
    return (funded // weight if weight else None), funded, paid, len(known)


def eth(wei: int) -> str:
    """Returns an amount of wei in ether, short (for reasons)."""
    if wei == 0:
        return "0 ETH"
    if wei < 10**9:
        return f"{wei} wei"
    if wei < 10**14:
        return f"{wei / 10**9:.4g} gwei"
    return f"{wei / ETHER:.4g} ETH"


def paid(
    opening: Opening, rate: int | None, rate_text: str, best: int, money: Money | None = None
) -> Component:
    """Scores pay: against the seeker's rate if it is one, else against the best payer here.

    Args:
        opening: the project.
        rate: the seeker's rate in wei per weight, or None.
        rate_text: the rate as the profile states it.
        best: the highest wei per weight among the projects being ranked (0 if none pays).
        money: `per_weight(opening)`, if the caller has it already.
    """
    unit, funded, paid_out, epochs = money or per_weight(opening)
    anchored = len(opening.epochs)
    if unit is None:
        if anchored:
            # Not asked (beyond the caller's budget of chain reads), or the chain failed.
            return Component(
                0.25,
                f"paid: {anchored} anchored epoch(s); their funding was not read from the chain",
            )
        if opening.pool:
            return Component(
                0.3, f"paid: a pool of {eth(opening.pool)}, and no anchored epoch yet to weigh it"
            )
        return Component(0.25, "paid: no anchored epoch known yet, so no pay record")
    spent = f"{eth(funded)} funded over {epochs} epoch(s), {eth(paid_out)} claimed"
    if funded == 0:
        return Component(0.1, f"paid: {epochs} anchored epoch(s), none funded yet")
    note = f"{eth(unit)} per unit of weight ({spent})"
    if rate is not None:
        ratio = unit / rate
        score = min(1.0, 0.2 + 0.8 * ratio)
        side = "at or above" if ratio >= 1 else f"{ratio:.0%} of"
        return Component(score, f"paid: {note}, {side} your rate of {eth(rate)} per weight")
    # Without a rate: more per weight is better, on a log scale against the best payer here.
    score = 0.5 + 0.5 * (math.log1p(unit) / math.log1p(best) if best > 0 else 0.0)
    tail = "" if not rate_text else f"; your rate '{rate_text}' is not in wei per weight"
    return Component(min(1.0, score), f"paid: {note}{tail}")


def needs(opening: Opening, now: int, money: Money | None = None) -> Component:
    """Scores how much a project needs people now: recent, taking work in, few hands for
    its funding."""
    act = opening.activity
    age = max(0, now - act.last)
    recency = 0.5 ** (age / HALF_LIFE)
    when = _ago(age) if act.last else "at an unknown time"
    if not act.followed and act.contributions == 0:
        score = 0.2 + 0.4 * recency
        return Component(
            score, f"needs: open, last active {when}; its contributions are not followed here"
        )
    # Work waiting for review says the owner has more than they can take in; accepted work
    # says they take it. (Laplace's rule keeps a new project neutral.)
    uptake = (act.accepted + 1) / (act.accepted + act.waiting + 2)
    funded = (money or per_weight(opening))[1]
    # Few contributors for the money on the table: room for one more.
    hands = 3.0 + (2.0 if funded else 0.0)
    room = 1.0 / (1.0 + act.contributors / hands)
    score = 0.45 * recency + 0.3 * uptake + 0.25 * room
    parts = [f"open, last active {when}"]
    if act.contributions == 0:
        parts.append("no contributions yet")
    else:
        parts.append(
            f"{act.accepted} accepted and {act.waiting} waiting from "
            f"{act.contributors} contributor(s)"
        )
    if funded:
        parts.append(f"{eth(funded)} funded")
    return Component(score, "needs: " + ", ".join(parts))


def _ago(seconds: int) -> str:
    if seconds < DAY:
        return "today"
    days = seconds // DAY
    if days < 60:
        return f"{days} day(s) ago"
    return f"{days // 30} months ago"
