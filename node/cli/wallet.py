"""The wallet commands: `chain faucet` (ether on a dev chain) and `wallet send`.

They ask the running node, whose chain client signs with the node's wallet. Amounts take a
unit, as `fund` does (node/cli/settle.py's `Amount`): `1ether`, `0.5eth`, `20gwei`, `1000wei`.
`chain faucet` joins the `chain` group of node/cli/settle.py.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from node.cli.base import cli, current, emit, examples, output, show_pairs
from node.cli.settle import Amount, chain, ether


class Address(click.ParamType[str]):
    """An EVM address: 0x and 40 hex digits (any case)."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        digits = text[2:] if text[:2].lower() == "0x" else text
        if len(digits) != 40 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            self.fail(f"{value!r} is not an address: 0x and 40 hex digits", param, ctx)
        return "0x" + digits


def _show(console: Console, data: dict[str, Any]) -> None:
    show_pairs(
        console,
        [
            (k.replace("_", " "), ether(v) if k in ("amount", "balance") else v)
            for k, v in data.items()
        ],
    )


@chain.command(
    "faucet",
    epilog=examples(
        "workwork chain faucet",
        "workwork chain faucet 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 100ether",
        "workwork chain faucet --chain http://127.0.0.1:8545     # no node running",
    ),
)
@click.argument("address", type=Address(), required=False)
@click.argument("amount", type=Amount(), required=False)
@click.option(
    "--chain",
    "url",
    help="Ask the anvil at this JSON-RPC URL directly, without a running node.",
)
@output
def faucet(address: str | None, amount: int | None, url: str | None) -> None:
    """Give ADDRESS (this node's wallet by default) AMOUNT (10ether by default) on a dev chain.

    Only dev chains have a faucet: the embedded chain, and anvil (started by the node, or at
    a URL). Elsewhere the command is refused; send ether from a wallet that holds some.
    Without --chain it asks the running node; with it, the anvil at URL (before a deploy, say).
    """
    if url is None:
        emit(current().client().faucet(address, amount), _show)
        return
    from node.chain.client import FAUCET_AMOUNT, checksum, is_dev_chain, top_up, web3_at
    from node.config import ChainConfig
    from node.errors import NoFaucet

    if address is None:
        from node import keys

        home = current().home
        address = checksum(keys.public(home.identity, home.wallet).address)
    config = ChainConfig(backend="rpc", url=url)
    w3 = web3_at(url, config)
    if not is_dev_chain(w3, config):
        raise NoFaucet(f"the chain at {url} is not a dev chain: only anvil has a faucet")
    amount = amount or FAUCET_AMOUNT
    balance = top_up(w3, address, amount)
    emit({"address": checksum(address), "amount": str(amount), "balance": str(balance)}, _show)


@cli.group(epilog=examples("workwork wallet send 0x7099...79C8 1ether"))
def wallet() -> None:
    """The node's wallet: send ether from it (`chain status` shows it and its balance)."""


@wallet.command(
    "send",
    epilog=examples(
        "workwork wallet send 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 1ether",
        "workwork wallet send 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 250000gwei",
    ),
)
@click.argument("address", type=Address())
@click.argument("amount", type=Amount())
@output
def send(address: str, amount: int) -> None:
    """Send AMOUNT from this node's wallet to ADDRESS, and wait until it is confirmed.

    AMOUNT takes its unit: 1ether, 0.5eth, 20gwei or 1000wei. A bare number is refused.
    """
    emit(current().client().send(address, amount), _show)
