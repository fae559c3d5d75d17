"""The API's wallet routes: ether from a dev chain's faucet, and ether sent to an address.

They use the daemon's chain client (node/chain/client.py) as the settlement routes do, and join
`node.api.ROUTES`: addresses checksummed, wei as decimal strings.
"""

from __future__ import annotations

from typing import Any

import trio

from node.api.app import Api
from node.api.routes import Param, Route
from node.api.views import address
from node.chain.client import FAUCET_AMOUNT, ChainClient
from node.chain.settlement import Settlement
from node.errors import ChainError, NoChain, NoFaucet, Unpaid


def _chain(api: Api) -> ChainClient:
    if not isinstance(api.settlement, Settlement):
        raise NoChain("this node runs without a chain; start it with --chain")
    return api.settlement.chain


async def faucet(api: Api, args: dict[str, Any]) -> Any:
    chain = _chain(api)
    to = args.get("address") or chain.sender
    amount = args.get("amount") or FAUCET_AMOUNT
    balance = await trio.to_thread.run_sync(chain.faucet, to, amount)
    return {"address": address(to), "amount": str(amount), "balance": str(balance)}


async def send(api: Api, args: dict[str, Any]) -> Any:
    chain = _chain(api)
    tx = await trio.to_thread.run_sync(chain.sign_transfer, args["to"], args["amount"])
    await trio.to_thread.run_sync(chain.transact, tx)
    balance = await trio.to_thread.run_sync(chain.balance, chain.sender)
    return {
        "tx_hash": tx.hash.hex(),
        "from": address(chain.sender),
        "to": address(args["to"]),
        "amount": str(args["amount"]),
        "balance": str(balance),
    }


WALLET_ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/chain/faucet", faucet,
          "Give an address ether out of nothing, on a dev chain only (embedded, anvil).",
          (Param("address", "address", "who gets it; this node's wallet by default"),
           Param("amount", "amount", f"wei to give; {FAUCET_AMOUNT} by default")),
          raises=(NoChain, NoFaucet, ChainError)),
    Route("POST", "/v1/wallet/send", send,
          "Send wei from this node's wallet to an address; returns once confirmed.",
          (Param("to", "address", "the address that gets it", required=True),
           Param("amount", "amount", "wei to send, at least 1", required=True)),
          raises=(NoChain, Unpaid, ChainError)),
)  # fmt: skip
