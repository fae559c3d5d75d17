"""Money in every token: funding epochs and pools, per-token books, allocations and refunds.

The settlement service (`node.chain.settlement`) anchors epochs and pays claims; this module is
its treasury: what a funder, a pool's owner or a pool's funder does, in ether or any ERC-20
token. Chain calls run in threads of their own, store reads through the node's gateway, as in
the settlement service.

Tokens are named by address, by "ETH", or by symbol. A symbol is only a name a token gives
itself, which any token can copy, so it is looked up among the tokens this project's pools and
epochs were already funded in (read from the contract's events), never guessed: the first
funding in a token names it by address.

Funding an epoch audits it first (`node.chain.audit`): an anchor whose root, leaf count or total
weight disagrees with the tree of the signed records is refused (`AnchorDisagrees`), since money
paid into it may be owed to leaves that nobody can prove, and gets out only at the epoch's expiry
(a year after the anchor) back to its funders. `force` pays anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from node.chain.audit import AuditReport, audit_epoch
from node.chain.client import ETHER, Allocation, ChainClient, TokenInfo, checksum
from node.errors import AnchorDisagrees, SettlementError, UnknownToken
from protocol import Project, Record

if TYPE_CHECKING:
    from node.chain.settlement import Settlement

T = TypeVar("T")

__all__ = ["Books", "Funding", "Payment", "PoolBooks", "PoolStatus", "Treasury"]

# What names ether where a token is asked for.
ETHER_NAMES = frozenset({"eth", "ether", "0x" + "00" * 20})


@dataclass(frozen=True, slots=True)
class Books:
    """An epoch's books in one token: funded and paid so far, in the token's smallest unit."""

    token: TokenInfo
    funded: int
    paid: int


@dataclass(frozen=True, slots=True)
class Funding:
    """A funding that was mined: of an epoch (`epoch` set) or of a pool (`epoch` None).

    `credited` is what the contract booked: less than `amount` for a token that takes a fee.
    `approvals` are the approval transactions the node sent for it first (none for ether, or
    when the allowance sufficed). `forced` says the epoch's audit found its anchor disagreeing
    with the records and it was paid anyway.
    """

    project_id: bytes
    epoch: int | None
    owner: bytes
    token: TokenInfo
    amount: int
    credited: int
    tx_hash: bytes
    approvals: tuple[bytes, ...] = ()
    forced: bool = False


@dataclass(frozen=True, slots=True)
class Payment:
    """Money the contract paid out in one token, in one transaction."""

    token: TokenInfo
    amount: int
    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class PoolBooks:
    """A project's pool in one token, and this node's wallet's part in it."""

    token: TokenInfo
    funded: int
    unallocated: int
    refunded: int
    expires_at: int
    stake: int
    refundable: int


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """A project's pools: their owner (the anchoring address), when they were closed (0 while
    open), each token's books, and where the allocations went."""

    project_id: bytes
    owner: bytes
    closed_at: int
    pools: tuple[PoolBooks, ...]
    allocations: tuple[Allocation, ...]


class Treasury:
    """Funding, pools and per-token books of one settlement service."""

    def __init__(self, settlement: Settlement) -> None:
        self.settlement = settlement

    @property
    def chain(self) -> ChainClient:
        return self.settlement.chain

    # Tokens.

    async def token(self, project_id: bytes | None, name: str) -> TokenInfo:
        """Returns the token that `name` means: ether ("ETH", "ether", the zero address), a
        token's address on this chain, or the symbol of a token the project's pools or epochs
        were funded in.

        Raises:
            UnknownToken: the address is not a token on this chain, or no token of the project
                has that symbol (or more than one has).
        """
        text = name.strip()
        if text.lower() in ETHER_NAMES:
            return TokenInfo(ETHER, "ETH", 18)
        if text.startswith("0x"):
            try:
                address = bytes.fromhex(text[2:])
            except ValueError:
                address = b""
            if len(address) != 20:
                raise UnknownToken(text, self.chain.chain_id, "that is not a 20-byte 0x address")
            return await _on_chain(self.chain.token_info, address)
        known = [] if project_id is None else await self.tokens(project_id)
        matches = [t for t in known if t.symbol.lower() == text.lower()]
        if len(matches) == 1:
            return matches[0]
        why = (
            f"{len(matches)} tokens of this project call themselves {text!r}"
            if matches
            else f"no token of this project's pools or epochs calls itself {text!r}"
        )
        raise UnknownToken(text, self.chain.chain_id, f"{why}; name the token by its address")

    async def tokens(self, project_id: bytes) -> list[TokenInfo]:
        """Returns every token the project's pools and anchored epochs were funded in, ether
        first if it was."""
        project = await self._project(project_id)
        owner = project.expect(Project).payout
        found: dict[bytes, None] = dict.fromkeys(
            await _on_chain(self.chain.pool_tokens, owner, project_id)
        )
        for epoch in await self._anchored_epochs(project_id):
            anchorer = await self.settlement.anchorer(project_id, epoch)
            for token in await _on_chain(self.chain.epoch_tokens, anchorer, project_id, epoch):
                found.setdefault(token, None)
        ordered = sorted(found, key=lambda t: t != ETHER)
        return [await _on_chain(self.chain.token_info, t) for t in ordered]

    async def books(self, owner: bytes, project_id: bytes, epoch: int) -> tuple[Books, ...]:
        """Returns an anchored epoch's books in every token it was funded in."""
        out = []
        for token in await _on_chain(self.chain.epoch_tokens, owner, project_id, epoch):
            info = await _on_chain(self.chain.token_info, token)
            funds = await _on_chain(self.chain.funds, owner, project_id, epoch, token)
            out.append(Books(info, funds.funded, funds.paid))
        return tuple(out)

    # Funding epochs.

    async def fund(
        self,
        project_id: bytes,
        epoch: int,
        amount: int,
        token: bytes = ETHER,
        *,
        approve: bool = True,
        force: bool = False,
    ) -> Funding:
        """Pays `amount` of `token` from this node's wallet into an anchored epoch, once its
        audit agrees with the anchor (or with `force`, anyway).

        Raises:
            AnchorDisagrees: the audit found the anchor disagreeing with the records (not with
                `force`).
            InsufficientFunds, InsufficientTokens, InsufficientAllowance (only without
            `approve`), UnknownToken, WrongChain, TransactionReverted: as the chain client's.
        """
        settle = self.settlement
        if amount <= 0:
            raise SettlementError("the amount to fund must be a positive number (smallest units)")
        owner = await settle.anchorer(project_id, epoch)
        await settle.check_here(project_id, epoch, owner)
        info = await _on_chain(self.chain.token_info, token)
        forced = False
        state = await _on_chain(self.chain.epoch, owner, project_id, epoch)
        if state.anchored:
            report = await self.audit(project_id, epoch)
            wrong = disagreements(report)
            if wrong and not force:
                raise AnchorDisagrees(project_id, epoch, wrong)
            forced = bool(wrong)
        if token == ETHER:
            tx = await _on_chain(self.chain.sign_fund, owner, project_id, epoch, amount)
            await _on_chain(self.chain.transact, tx)
            return Funding(project_id, epoch, owner, info, amount, amount, tx.hash, (), forced)
        if not approve:
            tx = await _on_chain(self.chain.sign_fund, owner, project_id, epoch, amount, token)
            await _on_chain(self.chain.transact, tx)
            return Funding(project_id, epoch, owner, info, amount, amount, tx.hash, (), forced)
        done = await _on_chain(self.chain.fund_token, owner, project_id, epoch, token, amount)
        return Funding(
            project_id, epoch, owner, info, amount, done.credited, done.tx_hash, done.approvals,
            forced,
        )  # fmt: skip

    async def audit(self, project_id: bytes, epoch: int) -> AuditReport:
        """Audits an epoch as `workwork audit` does, with the tree dump kept here if any."""
        settle = self.settlement
        dump = await trio.to_thread.run_sync(_kept, settle.dump_path(project_id, epoch))
        return await settle.gateway.read(
            audit_epoch, settle.store, self.chain, project_id, epoch, dump
        )

    # Pools.

    async def fund_pool(
        self, project_id: bytes, amount: int, token: bytes = ETHER, *, approve: bool = True
    ) -> Funding:
        """Pays `amount` of `token` from this node's wallet into the project's pool, whose owner
        is the anchoring address of the owner's project record.

        Raises:
            NotFound: the project is not in the store.
            InsufficientFunds, InsufficientTokens, InsufficientAllowance (only without
            `approve`), UnknownToken, TransactionReverted: as the chain client's.
        """
        if amount <= 0:
            raise SettlementError("the amount to fund must be a positive number (smallest units)")
        owner = (await self._project(project_id)).expect(Project).payout
        info = await _on_chain(self.chain.token_info, token)
        if token == ETHER or not approve:
            tx = await _on_chain(self.chain.sign_fund_pool, owner, project_id, amount, token)
            await _on_chain(self.chain.transact, tx)
            return Funding(project_id, None, owner, info, amount, amount, tx.hash)
        done = await _on_chain(self.chain.fund_pool_token, owner, project_id, token, amount)
        return Funding(
            project_id, None, owner, info, amount, done.credited, done.tx_hash, done.approvals
        )

    async def pool(self, project_id: bytes) -> PoolStatus:
        """Returns the project's pools in every token they were funded in, this wallet's stake
        and what it could take back now, and the allocations made from them."""
        owner = (await self._project(project_id)).expect(Project).payout
        chain, me = self.chain, self.chain.sender
        pools = []
        for token in await _on_chain(chain.pool_tokens, owner, project_id):
            info = await _on_chain(chain.token_info, token)
            state = await _on_chain(chain.pool, owner, project_id, token)
            stake = await _on_chain(chain.pool_stake, owner, project_id, me, token)
            back = await _on_chain(chain.pool_refundable, owner, project_id, me, token)
            pools.append(
                PoolBooks(
                    info, state.funded, state.unallocated, state.refunded, state.expires_at,
                    stake.amount, back,
                )
            )  # fmt: skip
        closed = await _on_chain(chain.pools_closed_at, owner, project_id)
        allocations = await _on_chain(chain.allocations, owner, project_id)
        return PoolStatus(project_id, owner, closed, tuple(pools), tuple(allocations))

    async def allocate(self, project_id: bytes, epoch: int, amount: int, token: bytes) -> bytes:
        """Moves `amount` of the project's pool in `token` to one of its anchored epochs; only
        the project's owner, whose wallet is the anchoring address, may.

        Raises:
            SettlementError: this node is not the project's owner, or its wallet not the
                project's anchoring address; or the amount is not positive.
            TransactionReverted: the epoch is not anchored (by this wallet) or has expired, or
                the pool holds less than `amount` unallocated, or has expired.
        """
        if amount <= 0:
            raise SettlementError("the amount to allocate must be a positive number")
        await self._own_wallet(project_id)
        tx = await _on_chain(self.chain.sign_allocate, project_id, epoch, amount, token)
        await _on_chain(self.chain.transact, tx)
        return tx.hash

    async def refund_pool(self, project_id: bytes, token: bytes) -> Payment:
        """Takes back this wallet's part of what a closed or expired pool holds unallocated.

        Raises:
            SettlementError: there is nothing to take back (the pool is still open, or this
                wallet did not fund it, or took its part already); the message says which.
        """
        owner = (await self._project(project_id)).expect(Project).payout
        chain, me = self.chain, self.chain.sender
        info = await _on_chain(chain.token_info, token)
        back = await _on_chain(chain.pool_refundable, owner, project_id, me, token)
        if back == 0:
            state = await _on_chain(chain.pool, owner, project_id, token)
            closed = await _on_chain(chain.pools_closed_at, owner, project_id)
            stake = await _on_chain(chain.pool_stake, owner, project_id, me, token)
            now = await _on_chain(chain.timestamp)
            ends = min(x for x in (state.expires_at, closed) if x) if state.expires_at else 0
            if stake.amount == 0:
                why = f"wallet {checksum(me)} paid nothing into this pool in {_name(info)}"
            elif ends == 0 or now < ends:
                why = (
                    "the pool is open: its funders take back what is unallocated once the owner "
                    "closes its pools, or when it expires"
                    + (f" (at Unix time {ends})" if ends else "")
                )
            else:
                why = "this wallet's part of what the pool holds was taken back already"
            raise SettlementError(f"nothing to refund: {why}")
        tx = await _on_chain(partial(chain.sign_refund_pool, owner, project_id, token=token))
        await _on_chain(chain.transact, tx)
        return Payment(info, back, tx.hash)

    async def close_pools(self, project_id: bytes) -> bytes | None:
        """Closes the project's pools in every token, for good (the owner does it when the
        project closes): they take nothing more and refund their funders at once. Returns the
        transaction, or None if they were closed already.

        Raises:
            SettlementError: this node is not the project's owner, or its wallet not the
                project's anchoring address.
        """
        await self._own_wallet(project_id)
        if await _on_chain(self.chain.pools_closed_at, self.chain.sender, project_id):
            return None
        tx = await _on_chain(self.chain.sign_close_pools, project_id)
        await _on_chain(self.chain.transact, tx)
        return tx.hash

    # Helpers.

    async def _project(self, project_id: bytes) -> Record:
        return await self.settlement.gateway.read(self.settlement.project, project_id)

    async def _own_wallet(self, project_id: bytes) -> None:
        project = await self._project(project_id)
        settle = self.settlement
        if project.author != settle.identity.public_key:
            raise SettlementError(
                f"project {project_id.hex()} is not this node's: only its owner manages its pools"
            )
        payout = project.expect(Project).payout
        if payout != self.chain.sender:
            raise SettlementError(
                f"the project's anchoring address is {checksum(payout)}, not this node's wallet "
                f"{checksum(self.chain.sender)}"
            )

    async def _anchored_epochs(self, project_id: bytes) -> list[int]:
        settle = self.settlement
        roots = await settle.gateway.read(settle.owner_roots, project_id)
        here = (self.chain.chain_id, self.chain.address)
        return sorted({r.epoch for r in roots if (r.chain_id, r.contract) == here})


def disagreements(report: AuditReport) -> list[str]:
    """Returns what in an audit says that the anchor on chain is not the tree of the records:
    the findings about the chain's root, leaf count and total weight, and bad records. What
    only concerns other copies (an epoch root naming another chain, a tree dump) does not put
    money at risk and is left to `workwork audit`."""
    return [
        f"{f.kind.value}: {f.message}"
        for f in report.findings
        if f.source == "chain" or f.kind.value in ("bad_signature", "rule_violation")
    ]


def _name(info: TokenInfo) -> str:
    return info.symbol or checksum(info.address)


def _kept(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


async def _on_chain(fn: Callable[..., T], *args: Any) -> T:
    return await trio.to_thread.run_sync(fn, *args)
