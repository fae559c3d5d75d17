"""The API's settlement routes: epochs, anchors, funding, claims, audits, proof files and
portfolios.

They act on the daemon's `Settlement` service (node/chain/settlement.py) and chain client, and join
`node.api.ROUTES`, with its conventions: ids hex, addresses
checksummed, wei and weights as decimal strings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from node.api.app import Api, loads
from node.api.routes import Param, Route
from node.api.views import address, record
from node.chain.audit import audit_epoch
from node.chain.client import ChainClient, TokenInfo
from node.chain.portfolio import export_portfolio, verify_portfolio
from node.chain.proof import export_proof, verify_proof
from node.chain.settlement import Anchored, Claim, EpochStatus, Settlement, Share
from node.chain.treasury import Funding, Payment, PoolStatus
from node.errors import (
    AnchorDisagrees,
    AuditError,
    ChainError,
    NoChain,
    NotFound,
    ProofError,
    SettlementError,
    UnknownToken,
    WrongChain,
    outcome,
)
from storage import Store

_PID = Param("project_id", "id", "the project (hex id)", "path", required=True)
_EPOCH = Param("epoch", "epoch", "the epoch number", "path", required=True)
_CID = Param("contribution_id", "id", "the contribution (hex id)", "path", required=True)
_AMOUNT = Param(
    "amount", "amount", "how much, in the token's smallest unit (wei for ETH), at least 1",
    required=True,
)  # fmt: skip
_TOKEN = Param("token", "token", "ETH (the default), a token's 0x address, or its symbol")
_APPROVE = Param(
    "approve", "flag", "approve the contract for a token's amount if needed (default true)"
)


def _settlement(api: Api) -> Settlement:
    if not isinstance(api.settlement, Settlement):
        raise NoChain("this node runs without a chain; start it with --chain")
    return api.settlement


def _other_chain(elsewhere: WrongChain | None) -> dict[str, Any] | None:
    """Where the project settles when that is not this node's chain, in words and with a hint;
    None when it settles here (or nowhere yet)."""
    if elsewhere is None:
        return None
    return {
        "chain_id": elsewhere.chain_id,
        "contract": elsewhere.contract,
        "message": str(elsewhere),
        "hint": outcome(elsewhere).hint,
    }


def _token(info: TokenInfo) -> dict[str, Any]:
    return {"address": address(info.address), "symbol": info.symbol, "decimals": info.decimals}


def _funding(done: Funding) -> dict[str, Any]:
    return {
        "project_id": done.project_id.hex(),
        "epoch": done.epoch,
        "owner": address(done.owner),
        "token": _token(done.token),
        "amount": str(done.amount),
        "credited": str(done.credited),
        "tx_hash": done.tx_hash.hex(),
        "approvals": [tx.hex() for tx in done.approvals],
        "forced": done.forced,
    }


def _payment(paid: Payment) -> dict[str, Any]:
    return {"token": _token(paid.token), "amount": str(paid.amount), "tx_hash": paid.tx_hash.hex()}


def _pool(status: PoolStatus) -> dict[str, Any]:
    return {
        "project_id": status.project_id.hex(),
        "owner": address(status.owner),
        "closed_at": status.closed_at,
        "tokens": [
            {
                "token": _token(p.token),
                "funded": str(p.funded),
                "unallocated": str(p.unallocated),
                "refunded": str(p.refunded),
                "expires_at": p.expires_at,
                "my_stake": str(p.stake),
                "my_refundable": str(p.refundable),
            }
            for p in status.pools
        ],
        "allocations": [
            {
                "epoch": a.epoch,
                "token": address(a.token),
                "amount": str(a.amount),
                "tx_hash": a.tx_hash.hex(),
                "block": a.block_number,
            }
            for a in status.allocations
        ],
    }


def _epoch(status: EpochStatus) -> dict[str, Any]:
    return {
        "epoch": status.epoch,
        "leaves": status.leaves,
        "total_weight": str(status.total_weight),
        "root": status.root.hex(),
        "anchored": status.anchored,
        "pending": status.pending,
        "tx_hash": None if status.tx_hash is None else status.tx_hash.hex(),
        "funded": str(status.funded),
        "paid": str(status.paid),
        "tokens": [
            {"token": _token(b.token), "funded": str(b.funded), "paid": str(b.paid)}
            for b in status.tokens
        ],
        "other_chain": _other_chain(status.elsewhere),
    }


def _anchored(done: Anchored) -> dict[str, Any]:
    return {
        "project_id": done.project_id.hex(),
        "epoch": done.epoch,
        "root": done.summary.root.hex(),
        "leaf_count": done.summary.leaf_count,
        "total_weight": str(done.summary.total_weight),
        "tx_hash": done.tx_hash.hex(),
        "record": record(done.record),
    }


def _share(share: Share) -> dict[str, Any]:
    return {
        "contribution_id": share.contribution_id.hex(),
        "project_id": share.project_id.hex(),
        "epoch": share.epoch,
        "weight": str(share.weight),
        "payout": address(share.payout),
        "anchored": share.anchored,
        "claimable": str(share.claimable),
        "claimed": str(share.claimed),
        "tokens": [
            {"token": _token(t.token), "claimable": str(t.claimable), "claimed": str(t.claimed)}
            for t in share.tokens
        ],
        "other_chain": _other_chain(share.elsewhere),
    }


async def chain_info(api: Api, args: dict[str, Any]) -> Any:
    chain = _settlement(api).chain
    balance = await trio.to_thread.run_sync(chain.balance, chain.sender)
    block = await trio.to_thread.run_sync(chain.block_number)
    return {
        "backend": chain.config.backend,
        "chain_id": chain.chain_id,
        "contract": address(chain.address),
        "wallet": address(chain.sender),
        "balance": str(balance),
        "block": block,
        "confirmations": chain.config.confirmations,
    }


async def epochs(api: Api, args: dict[str, Any]) -> Any:
    found = await _settlement(api).epochs(args["project_id"])
    return {"items": [_epoch(s) for s in found]}


async def close_epoch(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    merkle, summary = await settle.tree(args["project_id"], args["epoch"])
    return {
        "project_id": args["project_id"].hex(),
        "epoch": args["epoch"],
        "root": summary.root.hex(),
        "leaf_count": summary.leaf_count,
        "total_weight": str(summary.total_weight),
        "leaves": [
            {
                "contribution_id": leaf.contribution_id.hex(),
                "payout": address(leaf.payout),
                "weight": str(leaf.weight),
            }
            for leaf in merkle.leaves
        ],
    }


async def anchor(api: Api, args: dict[str, Any]) -> Any:
    return _anchored(await _settlement(api).anchor(args["project_id"], args["epoch"]))


def _kept_tree(path: Path) -> Any:
    """Returns the tree dump kept for an anchored epoch, or None (a file of up to megabytes:
    read in a thread)."""
    return json.loads(path.read_text()) if path.exists() else None


async def tree(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    path = settle.dump_path(args["project_id"], args["epoch"])
    kept = await trio.to_thread.run_sync(_kept_tree, path)
    if kept is not None:
        return kept
    merkle, _ = await settle.tree(args["project_id"], args["epoch"])
    return merkle.dump()


async def _token_of(settle: Settlement, args: dict[str, Any]) -> bytes:
    """The token a request names (`token`: "ETH", an address or a symbol), ether by default."""
    if "token" not in args:
        return bytes(20)
    return (await settle.treasury.token(args.get("project_id"), args["token"])).address


async def fund(api: Api, args: dict[str, Any]) -> Any:
    # The chain client refuses an amount beyond the wallet (InsufficientFunds) before sending.
    settle = _settlement(api)
    token = await _token_of(settle, args)
    done = await settle.fund(
        args["project_id"],
        args["epoch"],
        args["amount"],
        token,
        approve=args.get("approve", True),
        force=args.get("force", False),
    )
    return _funding(done)


async def tokens(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    if "token" in args:
        return {"items": [_token(await settle.treasury.token(args["project_id"], args["token"]))]}
    return {"items": [_token(t) for t in await settle.treasury.tokens(args["project_id"])]}


async def pool(api: Api, args: dict[str, Any]) -> Any:
    return _pool(await _settlement(api).treasury.pool(args["project_id"]))


async def fund_pool(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    token = await _token_of(settle, args)
    done = await settle.treasury.fund_pool(
        args["project_id"], args["amount"], token, approve=args.get("approve", True)
    )
    return _funding(done)


async def allocate(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    token = await _token_of(settle, args)
    info = await settle.treasury.token(None, "0x" + token.hex())
    tx = await settle.treasury.allocate(args["project_id"], args["epoch"], args["amount"], token)
    return {
        "project_id": args["project_id"].hex(),
        "epoch": args["epoch"],
        "token": _token(info),
        "amount": str(args["amount"]),
        "tx_hash": tx.hex(),
    }


async def refund_pool(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    token = await _token_of(settle, args)
    return _payment(await settle.treasury.refund_pool(args["project_id"], token))


async def close_pools(api: Api, args: dict[str, Any]) -> Any:
    tx = await _settlement(api).treasury.close_pools(args["project_id"])
    return {"project_id": args["project_id"].hex(), "tx_hash": None if tx is None else tx.hex()}


async def share(api: Api, args: dict[str, Any]) -> Any:
    return _share(await _settlement(api).share(args["contribution_id"]))


def _claim(paid: Claim) -> dict[str, Any]:
    return {
        "contribution_id": paid.contribution_id.hex(),
        "payout": address(paid.payout),
        "amount": str(paid.amount),
        "tx_hash": paid.tx_hash.hex(),
        "payments": [_payment(p) for p in paid.payments],
    }


async def claim(api: Api, args: dict[str, Any]) -> Any:
    return _claim(await _settlement(api).claim(args["contribution_id"]))


async def audit(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    pid, epoch = args["project_id"], args["epoch"]
    dump = await trio.to_thread.run_sync(_kept_tree, settle.dump_path(pid, epoch))
    report = await api.read(audit_epoch, api.node.store, settle.chain, pid, epoch, dump)
    return {**report.to_json(), "summary": report.summary()}


def _proof(store: Store, chain: ChainClient, cid: bytes) -> Any:
    if store.get(cid) is None:
        raise NotFound(f"no contribution {cid.hex()} in the store")
    return export_proof(store, chain, cid)


async def proof(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    return await api.read(_proof, api.node.store, settle.chain, args["contribution_id"])


async def verify(api: Api, args: dict[str, Any]) -> Any:
    data = loads(args["proof"], "proof")
    chain = _settlement(api).chain if api.settlement is not None else None
    checked = await trio.to_thread.run_sync(verify_proof, data, chain)
    return checked.to_json()


async def portfolio(api: Api, args: dict[str, Any]) -> Any:
    settle = _settlement(api)
    author = args.get("key") or api.identity.public_key
    exported = await api.read(export_portfolio, api.node.store, settle.chain, author)
    return {
        "portfolio": exported.data,
        "left_out": [left.to_json() for left in exported.left_out],
    }


async def verify_folio(api: Api, args: dict[str, Any]) -> Any:
    data = loads(args["portfolio"], "portfolio")
    chain = _settlement(api).chain if api.settlement is not None else None
    checked = await trio.to_thread.run_sync(verify_portfolio, data, chain)
    return checked.to_json()


SETTLEMENT_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/chain", chain_info, "The chain: id, contract, wallet, balance, block.",
          raises=(NoChain, ChainError)),
    Route("GET", "/v1/projects/{project_id}/epochs", epochs,
          "Epochs of a project: leaves, root, anchored, funded, paid.", (_PID,),
          raises=(NoChain, NotFound, ChainError)),
    Route("POST", "/v1/projects/{project_id}/epochs/{epoch}/close", close_epoch,
          "The tree an epoch would anchor now (nothing is sent).", (_PID, _EPOCH),
          raises=(NoChain, NotFound, SettlementError)),
    Route("POST", "/v1/projects/{project_id}/epochs/{epoch}/anchor", anchor,
          "Anchor an epoch of a project of ours; returns once confirmed and published.",
          (_PID, _EPOCH), raises=(NoChain, NotFound, SettlementError, ChainError)),
    Route("GET", "/v1/projects/{project_id}/epochs/{epoch}/tree", tree,
          "The epoch's tree as an OpenZeppelin standard-v1 dump.", (_PID, _EPOCH),
          raises=(NoChain, NotFound, SettlementError)),
    Route("POST", "/v1/projects/{project_id}/epochs/{epoch}/fund", fund,
          "Pay ether or a token from this node's wallet into an anchored epoch, once its audit "
          "agrees with the anchor; approves the token for the contract first if needed.",
          (_PID, _EPOCH, _AMOUNT, _TOKEN, _APPROVE,
           Param("force", "flag", "fund even if the anchor disagrees with the records")),
          raises=(NoChain, NotFound, AnchorDisagrees, SettlementError, UnknownToken,
                  ChainError)),
    Route("GET", "/v1/projects/{project_id}/tokens", tokens,
          "The tokens a project's pools and epochs were funded in, or the one `token` names.",
          (_PID, Param("token", "token", "a token to look up: ETH, an address or a symbol",
                       "query")),
          raises=(NoChain, NotFound, UnknownToken, ChainError)),
    Route("GET", "/v1/projects/{project_id}/pool", pool,
          "A project's pools per token, this wallet's stake in them, and their allocations.",
          (_PID,), raises=(NoChain, NotFound, ChainError)),
    Route("POST", "/v1/projects/{project_id}/pool/fund", fund_pool,
          "Pay ether or a token from this node's wallet into a project's pool.",
          (_PID, _AMOUNT, _TOKEN, _APPROVE),
          raises=(NoChain, NotFound, SettlementError, UnknownToken, ChainError)),
    Route("POST", "/v1/projects/{project_id}/pool/allocate", allocate,
          "Move part of our project's pool to one of its anchored epochs (the owner only).",
          (_PID, Param("epoch", "epoch", "the anchored epoch", required=True), _AMOUNT, _TOKEN),
          raises=(NoChain, NotFound, SettlementError, UnknownToken, ChainError)),
    Route("POST", "/v1/projects/{project_id}/pool/refund", refund_pool,
          "Take back this wallet's part of a closed or expired pool in one token.",
          (_PID, _TOKEN), raises=(NoChain, NotFound, SettlementError, UnknownToken, ChainError)),
    Route("POST", "/v1/projects/{project_id}/pool/close", close_pools,
          "Close our project's pools in every token, for good: their funders take back what is "
          "unallocated at once.",
          (_PID,), raises=(NoChain, NotFound, SettlementError, ChainError)),
    Route("GET", "/v1/projects/{project_id}/epochs/{epoch}/audit", audit,
          "Audit an epoch: local records against the chain and the published tree.",
          (_PID, _EPOCH), raises=(NoChain, AuditError, ChainError)),
    Route("GET", "/v1/contributions/{contribution_id}/share", share,
          "An accepted contribution's weight, epoch, claimable and claimed wei.", (_CID,),
          raises=(NoChain, NotFound, SettlementError, ChainError)),
    Route("POST", "/v1/contributions/{contribution_id}/claim", claim,
          "Claim what a contribution is owed now; the money goes to its payout address.",
          (_CID,), raises=(NoChain, NotFound, SettlementError, ChainError)),
    Route("GET", "/v1/contributions/{contribution_id}/proof", proof,
          "A self-contained proof file (workwork-proof/1) of an anchored contribution.",
          (_CID,), raises=(NoChain, NotFound, ProofError, ChainError)),
    Route("POST", "/v1/proofs/verify", verify,
          "Verify a proof file offline and against this node's chain.",
          (Param("proof", "string", "the proof file's JSON text", required=True),),
          raises=(ProofError, ChainError)),
    Route("GET", "/v1/portfolio", portfolio,
          "A portfolio (workwork-portfolio/1): the proof files of a person's anchored work, and "
          "what was left out and why.",
          (Param("key", "id", "the author's public key (hex); this node's own by default",
                 "query"),), raises=(NoChain, ChainError)),
    Route("POST", "/v1/portfolios/verify", verify_folio,
          "Verify a portfolio offline and against this node's chain.",
          (Param("portfolio", "string", "the portfolio's JSON text", required=True),),
          raises=(ProofError, ChainError)),
)  # fmt: skip
