"""The settlement commands of `workwork`: the chain, epochs, funding, claims, audits and proofs.

They join the `cli` group of node/cli/base.py and follow its rules:
`@output` for --json, `emit` with a renderer for people. Amounts take a unit: `1ether`,
`0.5eth`, `20gwei`, `1000wei`, or a token's symbol in its decimals (`100usdc`); a bare number is
refused, since `1` meaning one wei is a costly surprise to someone who meant one ether. `chain deploy` and `proof verify` work without a
daemon; the others ask the running node.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from node.cli.base import (
    ID,
    cli,
    command_id,
    current,
    emit,
    examples,
    new_table,
    output,
    show_pairs,
    suggest,
)

if TYPE_CHECKING:
    from node.chain.client import ChainClient

ETHER = 10**18
_UNITS = {"ether": 10**18, "eth": 10**18, "gwei": 10**9, "wei": 1}
# `workwork audit` exits with this when the audit ran and found differences (1 is an error).
AUDIT_FAILED = 3


# What an amount's refusal suggests.
UNITS_HINT = (
    "give the amount with its unit: 1ether, 0.5eth, 20gwei or 1000wei, or a token's symbol "
    "(100usdc, with --token ADDRESS the first time a project is funded in that token)"
)


class BadAmount(click.BadParameter):
    """Raised when an amount is not a positive number with a unit; `hint` names the units."""

    hint = UNITS_HINT


def ether(wei: int | str) -> str:
    """Shows wei as ether, exactly."""
    amount = Decimal(int(wei)) / ETHER
    return f"{amount.normalize():f} ETH"


def in_units(amount: int | str, token: dict[str, Any]) -> str:
    """Shows an amount in a token's smallest unit in its decimals, with its symbol, exactly."""
    value = Decimal(int(amount)).scaleb(-int(token["decimals"]))
    shown = f"{value.normalize():f}" if value else "0"
    return f"{shown} {token['symbol'] or token['address']}"


def split_amount(text: str) -> tuple[Decimal, str]:
    """Returns the number and the unit of an amount such as `100usdc` or `1.5 ether`.

    Raises:
        BadAmount: no unit (a bare number), or no number.
    """
    value = text.strip().lower().replace(" ", "").replace("_", "")
    cut = len(value)
    while cut and not (value[cut - 1].isdigit() or value[cut - 1] == "."):
        cut -= 1
    number, unit = value[:cut], value[cut:]
    if not unit:
        raise BadAmount(f"{text!r} has no unit (a bare number is not taken as wei)")
    try:
        parsed = Decimal(number)
    except InvalidOperation:
        raise BadAmount(f"{text!r} is not an amount such as 1ether or 100usdc") from None
    if not parsed.is_finite() or parsed <= 0:
        raise BadAmount(f"{text!r} is not a positive amount")
    return parsed, unit


class TokenAmount(click.ParamType[str]):
    """An amount with its unit, an ether unit or a token's symbol (`split_amount`), kept as
    text: its token's decimals are known only once the daemon has named the token."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            split_amount(str(value))
        except BadAmount as exc:
            raise BadAmount(exc.message, ctx=ctx, param=param) from None
        return str(value)


class Amount(click.ParamType[int]):
    """An amount of ether with its unit (1ether, 0.5eth, 20gwei, 1000wei), as wei."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            number, unit = split_amount(str(value))
            if unit not in _UNITS:
                raise BadAmount(f"{value!r} is not in ether's units (ether, eth, gwei, wei)")
            wei = number * _UNITS[unit]
            if wei != wei.to_integral_value():
                raise BadAmount(f"{value!r} is less than one wei, or not a whole number of wei")
        except BadAmount as exc:
            # Raised again with the parameter, so that the message names it.
            raise BadAmount(exc.message, ctx=ctx, param=param) from None
        return int(wei)


def _bad_amount(message: str) -> BadAmount:
    """A refusal of the current command's AMOUNT, naming it as click does."""
    ctx = click.get_current_context(silent=True)
    param = None
    if ctx is not None:
        param = next((p for p in ctx.command.params if p.name == "amount"), None)
    return BadAmount(message, ctx=ctx, param=param)


def resolve_amount(
    client: Any, project_id: str, text: str, token: str | None
) -> tuple[int, dict[str, Any]]:
    """Returns an amount in the smallest unit of its token, and the token (address, symbol,
    decimals), as the daemon knows it. The amount's unit is an ether unit, or the token's
    symbol; without --token the symbol names the token, among those the project was funded in.

    Raises:
        BadAmount: a bare number, a unit that is not the token's, or more decimals than the
            token has.
    """
    number, unit = split_amount(text)
    eth = {"address": "0x" + "00" * 20, "symbol": "ETH", "decimals": 18}
    if unit in _UNITS and (token is None or token.lower() in ("eth", "ether", eth["address"])):
        found = eth
        smallest = number * _UNITS[unit]
    else:
        found = client.tokens(project_id, token or unit)["items"][0]
        symbol = str(found["symbol"]).lower()
        if unit != symbol and not (found["symbol"] == "ETH" and unit in _UNITS):
            raise _bad_amount(
                f"{text!r}: {unit!r} is not the unit of token {found['address']}; write it as "
                f"100{symbol or 'units'}"
            )
        scale = _UNITS[unit] if found["symbol"] == "ETH" else 10 ** int(found["decimals"])
        smallest = number * scale
    if smallest != smallest.to_integral_value():
        raise _bad_amount(f"{text!r} has more decimals than {found['symbol']} has")
    return int(smallest), found


def _approvals(console: Console, data: dict[str, Any]) -> None:
    """Says that the node approved the contract for the token first, and in which tx."""
    for tx in data.get("approvals", []):
        console.print(
            f"Approved the contract to take {in_units(data['amount'], data['token'])} of your "
            f"wallet's {data['token']['symbol'] or 'token'} first (tx {tx})",
            markup=False,
            highlight=False,
        )


def _funded(console: Console, data: dict[str, Any]) -> None:
    _approvals(console, data)
    if data.get("forced"):
        console.print(
            "warning: funded although the epoch's anchor disagrees with its records (--force)",
            markup=False,
        )
    where = "the pool" if data["epoch"] is None else f"epoch {data['epoch']}"
    credited = ""
    if data["credited"] != data["amount"]:
        credited = f" ({in_units(data['credited'], data['token'])} arrived: the token takes a fee)"
    console.print(
        f"Funded {in_units(data['amount'], data['token'])} into {where}{credited} in tx "
        f"{data['tx_hash']}",
        markup=False,
        highlight=False,
    )


# The chain.


@cli.group(
    epilog=examples("workwork chain deploy --chain http://127.0.0.1:8545", "workwork chain status")
)
def chain() -> None:
    """The chain: deploy the settlement contract, show what the node uses."""


@chain.command(
    "deploy",
    epilog=examples(
        "workwork chain deploy --chain http://127.0.0.1:8545",
        "workwork chain deploy --chain https://rpc.example.org --save",
    ),
)
@click.option("--chain", "url", required=True, help="JSON-RPC URL of the chain.")
@click.option("--save", is_flag=True, help="Write the chain and contract into config.toml.")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the passphrase from this file, mode 0600 (else $WORKWORK_PASSPHRASE, else ask).",
)
@output
def chain_deploy(url: str, save: bool, passphrase_file: Path | None) -> None:
    """Deploy a settlement contract from this node's wallet (no daemon needed).

    One contract serves every project on a chain: deploy once, then give its address to every
    node with `node start --chain URL --contract 0x...` (or --save it in config.toml).
    """
    from web3 import Web3

    from node import keys
    from node.chain.client import ChainClient, checksum
    from node.config import ChainConfig
    from node.home import write

    home = current().home
    # Read before deploying, so that a config that cannot be updated costs no gas.
    settings = home.settings() if save else None
    identity = keys.load(home.identity, home.wallet, keys.passphrase(passphrase_file))
    config = ChainConfig(backend="rpc", url=url)
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": config.timeout}))
    client = ChainClient.deploy(w3, identity.wallet, config=config)
    address = checksum(client.address)
    if settings is not None:
        chain_settings = {
            "backend": "rpc",
            "url": url,
            "contract": address,
            "contract_block": client.first_block,
        }
        write(home.config, settings.replace(chain=chain_settings), replace=True)
    emit(
        {
            "contract": address,
            "block": client.first_block,
            "chain_id": client.chain_id,
            "deployer": checksum(client.sender),
            "saved": save,
        },
        lambda console, data: show_pairs(
            console, [(k.replace("_", " "), v) for k, v in data.items()]
        ),
    )


@chain.command("status", epilog=examples("workwork chain status"))
@output
def chain_status() -> None:
    """Show the node's chain: id, contract, wallet and its balance, latest block."""

    def human(console: Console, data: dict[str, Any]) -> None:
        rows = [(k.replace("_", " "), v) for k, v in data.items()]
        show_pairs(console, [(k, ether(v) if k == "balance" else v) for k, v in rows])

    emit(current().client().chain(), human)


# Epochs.


@cli.group(
    epilog=examples("workwork epoch status <project id>", "workwork epoch anchor <project id> 0")
)
def epoch() -> None:
    """Epochs of your projects: see them, close them (dry run), anchor them."""


def _default_epoch(client: Any, project_id: str) -> int:
    """The first epoch with accepted work that is not anchored yet."""
    for item in client.epochs(project_id)["items"]:
        if not item["anchored"]:
            return int(item["epoch"])
    raise click.UsageError("every epoch with accepted work is anchored; name one to show it")


@epoch.command("status", epilog=examples("workwork epoch status <project id>"))
@click.argument("project_id", type=ID)
@output
def epoch_status(project_id: str) -> None:
    """Show a project's epochs: leaves, weight, root, anchored, funded and paid per token."""

    def human(console: Console, data: dict[str, Any]) -> None:
        table = new_table("epoch", "leaves", "weight", "root", "anchored", "funded", "paid")
        for e in data["items"]:
            state = "yes" if e["anchored"] else ("sending" if e["pending"] else "no")
            if e.get("other_chain"):
                state = f"on chain {e['other_chain']['chain_id']}"
            table.add_row(
                str(e["epoch"]),
                str(e["leaves"]),
                e["total_weight"],
                e["root"][:16] + "…",
                state,
                "\n".join(in_units(b["funded"], b["token"]) for b in e.get("tokens") or [])
                or ether(e["funded"]),
                "\n".join(in_units(b["paid"], b["token"]) for b in e.get("tokens") or [])
                or ether(e["paid"]),
            )
        console.print(table)
        _other_chain(console, *(e.get("other_chain") for e in data["items"]))

    emit(current().client().epochs(project_id), human)


@epoch.command(
    "close",
    epilog=examples("workwork epoch close <project id>", "workwork epoch close <project id> 3"),
)
@click.argument("project_id", type=ID)
@click.argument("number", required=False, type=click.IntRange(0))
@output
def epoch_close(project_id: str, number: int | None) -> None:
    """Show the tree an epoch would anchor now: leaves, weights, root (nothing is sent).

    NUMBER defaults to the first epoch with accepted work that is not anchored yet.
    """
    with current().client() as client:
        chosen = _default_epoch(client, project_id) if number is None else number
        data = client.close_epoch(project_id, chosen)

    def human(console: Console, data: dict[str, Any]) -> None:
        console.print(
            f"epoch {data['epoch']}: {data['leaf_count']} leaves, total weight "
            f"{data['total_weight']}, root {data['root']}"
        )
        table = new_table("contribution id", "payout", "weight")
        for leaf in data["leaves"]:
            table.add_row(leaf["contribution_id"], leaf["payout"], leaf["weight"])
        console.print(table)
        suggest(
            console,
            f"Anchor it: workwork epoch anchor {command_id(data['project_id'])} {data['epoch']}",
        )

    emit(data, human)


@epoch.command(
    "anchor",
    epilog=examples("workwork epoch anchor <project id>", "workwork epoch anchor <project id> 0"),
)
@click.argument("project_id", type=ID)
@click.argument("number", required=False, type=click.IntRange(0))
@output
def epoch_anchor(project_id: str, number: int | None) -> None:
    """Anchor an epoch of your project on chain and publish its root.

    Waits for the configured confirmations. Safe to repeat: an anchored epoch is not sent
    again. NUMBER defaults to the first epoch with accepted work that is not anchored yet.
    """
    with current().client() as client:
        chosen = _default_epoch(client, project_id) if number is None else number
        with current().console.status(f"anchoring epoch {chosen}…"):
            data = client.anchor(project_id, chosen)

    def human(console: Console, data: dict[str, Any]) -> None:
        console.print(f"Epoch {data['epoch']} anchored in tx {data['tx_hash']}")
        show_pairs(
            console,
            [
                ("root", data["root"]),
                ("leaves", data["leaf_count"]),
                ("total weight", data["total_weight"]),
                ("epoch root record", data["record"]["id"]),
            ],
        )

    emit(data, human)


# Money.


@cli.command(
    epilog=examples(
        "workwork fund <project id> 0 1ether",
        "workwork fund <project id> 0 0.5eth",
        "workwork fund <project id> 0 100usdc --token 0xA0b8…eB48",
        "workwork fund <project id> 3 100usdc",
    )
)
@click.argument("project_id", type=ID)
@click.argument("number", metavar="EPOCH", type=click.IntRange(0))
@click.argument("amount", type=TokenAmount())
@click.option("--token", help="ETH (the default), a token's 0x address, or its symbol.")
@click.option(
    "--force",
    is_flag=True,
    help="Fund even if the epoch's audit finds its anchor disagreeing with the records: the "
    "money may be owed to leaves nobody can prove, and returns to funders only at the expiry.",
)
@click.option("--no-approve", is_flag=True, help="Do not approve the token; fail if not approved.")
@output
def fund(
    project_id: str, number: int, amount: str, token: str | None, force: bool, no_approve: bool
) -> None:
    """Pay AMOUNT from your wallet into an anchored epoch (anyone may fund).

    AMOUNT takes its unit: 1ether, 0.5eth, 20gwei, 1000wei, or a token's symbol in the token's
    decimals (100usdc). A bare number is refused. The epoch is audited first: one whose anchor
    disagrees with the records is refused, unless --force. A token is approved for the
    contract first if needed, and the command says so.
    """
    client = current().client()
    smallest, found = resolve_amount(client, project_id, amount, token)
    if force:
        current().console.print(
            "warning: --force funds the epoch even if its anchor disagrees with the records; "
            "such money may never be claimable and returns to its funders only at the epoch's "
            "expiry, a year after the anchor",
            markup=False,
            highlight=False,
        )
    with current().console.status("auditing and funding…"):
        data = client.fund(
            project_id,
            number,
            smallest,
            token=found["address"],
            approve=not no_approve,
            force=force,
        )
    emit(data, _funded)


# Pools.


@cli.group(
    epilog=examples(
        "workwork pool show <project id>",
        "workwork pool fund <project id> 100usdc --token 0xA0b8…eB48",
        "workwork pool allocate <project id> 0 40usdc",
        "workwork pool refund <project id> --token USDC",
    )
)
def pool() -> None:
    """A project's pool: money paid in before the work, allocated to its epochs by the owner."""


@pool.command("fund", epilog=examples("workwork pool fund <project id> 1ether"))
@click.argument("project_id", type=ID)
@click.argument("amount", type=TokenAmount())
@click.option("--token", help="ETH (the default), a token's 0x address, or its symbol.")
@click.option("--no-approve", is_flag=True, help="Do not approve the token; fail if not approved.")
@output
def pool_fund(project_id: str, amount: str, token: str | None, no_approve: bool) -> None:
    """Pay AMOUNT from your wallet into a project's pool (anyone may).

    Its owner allocates it to anchored epochs; if the owner closes the project's pools, or
    allocates nothing for 180 days, you take back your part of what is unallocated.
    """
    client = current().client()
    smallest, found = resolve_amount(client, project_id, amount, token)
    with current().console.status("funding the pool…"):
        data = client.fund_pool(
            project_id, smallest, token=found["address"], approve=not no_approve
        )
    emit(data, _funded)


@pool.command("show", epilog=examples("workwork pool show <project id>"))
@click.argument("project_id", type=ID)
@output
def pool_show(project_id: str) -> None:
    """Show a project's pools per token, your stake, and where allocations went."""

    def human(console: Console, data: dict[str, Any]) -> None:
        closed = "no" if not data["closed_at"] else f"yes, at Unix time {data['closed_at']}"
        show_pairs(console, [("owner", data["owner"]), ("closed", closed)])
        table = new_table("token", "funded", "unallocated", "refunded", "expires", "yours")
        for p in data["tokens"]:
            t = p["token"]
            table.add_row(
                t["symbol"] or t["address"],
                in_units(p["funded"], t),
                in_units(p["unallocated"], t),
                in_units(p["refunded"], t),
                str(p["expires_at"]),
                in_units(p["my_stake"], t),
            )
        console.print(table)
        names = {p["token"]["address"]: p["token"] for p in data["tokens"]}
        for a in data["allocations"]:
            t = names.get(a["token"], {"symbol": a["token"], "decimals": 0, "address": a["token"]})
            console.print(
                f"allocated {in_units(a['amount'], t)} to epoch {a['epoch']} in tx {a['tx_hash']}",
                markup=False,
                highlight=False,
            )

    emit(current().client().pool(project_id), human)


@pool.command("allocate", epilog=examples("workwork pool allocate <project id> 0 40usdc"))
@click.argument("project_id", type=ID)
@click.argument("number", metavar="EPOCH", type=click.IntRange(0))
@click.argument("amount", type=TokenAmount())
@click.option("--token", help="ETH (the default), a token's 0x address, or its symbol.")
@output
def pool_allocate(project_id: str, number: int, amount: str, token: str | None) -> None:
    """Move AMOUNT of your project's pool to one of its anchored epochs (owner only)."""
    client = current().client()
    smallest, found = resolve_amount(client, project_id, amount, token)
    with current().console.status("allocating…"):
        data = client.allocate(project_id, number, smallest, token=found["address"])
    emit(
        data,
        lambda c, d: c.print(
            f"Allocated {in_units(d['amount'], d['token'])} to epoch {d['epoch']} in tx "
            f"{d['tx_hash']}",
            markup=False,
            highlight=False,
        ),
    )


@pool.command("refund", epilog=examples("workwork pool refund <project id> --token USDC"))
@click.argument("project_id", type=ID)
@click.option("--token", help="ETH (the default), a token's 0x address, or its symbol.")
@output
def pool_refund(project_id: str, token: str | None) -> None:
    """Take back your part of a closed or expired pool in one token (no owner needed)."""
    with current().console.status("refunding…"):
        data = current().client().refund_pool(project_id, token=token)
    emit(
        data,
        lambda c, d: c.print(
            f"Refunded {in_units(d['amount'], d['token'])} in tx {d['tx_hash']}",
            markup=False,
            highlight=False,
        ),
    )


@pool.command("close", epilog=examples("workwork pool close <project id>"))
@click.argument("project_id", type=ID)
@output
def pool_close(project_id: str) -> None:
    """Close your project's pools in every token, for good (`project close` does it too).

    From then on they take nothing, and their funders take back what is unallocated.
    """
    data = current().client().close_pools(project_id)
    emit(
        data,
        lambda c, d: c.print(
            "The pools were closed already"
            if d["tx_hash"] is None
            else f"Closed the pools in tx {d['tx_hash']}"
        ),
    )


def _other_chain(console: Console, *found: dict[str, Any] | None) -> None:
    """Says, once each, where a project settles when it is not this node's chain."""
    for shown in dict.fromkeys(json.dumps(f, sort_keys=True) for f in found if f):
        other = json.loads(shown)
        console.print(f"note: {other['message']}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"hint: {other['hint']}", markup=False, highlight=False, soft_wrap=True)


def _share_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    anchored = "yes" if data["anchored"] else "not yet"
    if data.get("other_chain"):
        anchored = f"not on this node's chain (on chain {data['other_chain']['chain_id']})"
    return [
        ("contribution", data["contribution_id"]),
        ("epoch", data["epoch"]),
        ("weight", data["weight"]),
        ("payout", data["payout"]),
        ("anchored", anchored),
        *(
            (
                f"claimable / claimed ({t['token']['symbol'] or t['token']['address']})",
                f"{in_units(t['claimable'], t['token'])} / {in_units(t['claimed'], t['token'])}",
            )
            for t in data.get("tokens") or []
        ),
        *(
            [("claimable", ether(data["claimable"])), ("claimed", ether(data["claimed"]))]
            if not data.get("tokens")
            else []
        ),
    ]


@cli.command(epilog=examples("workwork share <contribution id>"))
@click.argument("contribution_id", type=ID)
@output
def share(contribution_id: str) -> None:
    """Show an accepted contribution's share: epoch, weight, claimable and claimed.

    If the project settles on another chain or contract than this node's, says which.
    """

    def human(console: Console, data: dict[str, Any]) -> None:
        show_pairs(console, _share_rows(data))
        _other_chain(console, data.get("other_chain"))

    emit(current().client().share(contribution_id), human)


@cli.command(epilog=examples("workwork claim <contribution id>"))
@click.argument("contribution_id", type=ID)
@output
def claim(contribution_id: str) -> None:
    """Claim what a contribution is owed now, in every token; the money goes to its payout.

    Claim again after more funding arrives to receive the difference.
    """
    with current().console.status("claiming…"):
        data = current().client().claim(contribution_id)

    def human(console: Console, d: dict[str, Any]) -> None:
        for paid in d["payments"]:
            console.print(
                f"Paid {in_units(paid['amount'], paid['token'])} to {d['payout']} in tx "
                f"{paid['tx_hash']}",
                markup=False,
                highlight=False,
            )

    emit(data, human)


# Audit and proofs.


@cli.command(
    epilog=examples(
        "workwork audit <project id> 0",
        "workwork --json audit <project id> 0",
        "workwork audit <project id> --decisions",
    )
)
@click.argument("project_id", type=ID)
@click.argument("number", metavar="[EPOCH]", type=click.IntRange(0), required=False)
@click.option(
    "--decisions",
    is_flag=True,
    help="Audit the project's decisions: recount every tally, match allocations on chain.",
)
@output
def audit(project_id: str, number: int | None, decisions: bool) -> int:
    """Audit an epoch: re-check every record and compare the root with the chain; with
    --decisions, recount every decision of the project and match its allocations.

    Exits 0 when everything agrees, 3 when the audit found differences (listed), 1 on error.
    """
    if number is None and not decisions:
        raise click.UsageError("name an EPOCH, or pass --decisions (or both)")
    reports = []
    if number is not None:
        with current().console.status(f"auditing epoch {number}…"):
            reports.append(current().client().audit(project_id, number))
    if decisions:
        with current().console.status("auditing decisions…"):
            reports.append(current().client().audit_decisions(project_id))
    data = reports[0] if len(reports) == 1 else {"ok": all(r["ok"] for r in reports),
                                                 "epoch": reports[0], "decisions": reports[1],
                                                 "summary": "\n\n".join(r["summary"] for r in reports)}  # fmt: skip
    emit(data, lambda c, d: c.print(d["summary"], markup=False, highlight=False))
    return 0 if data["ok"] else AUDIT_FAILED


@cli.group(
    epilog=examples(
        "workwork proof export <contribution id> -o proof.json", "workwork proof verify proof.json"
    )
)
def proof() -> None:
    """Proof files: one contribution's Merkle proof with its signed records."""


@proof.command(
    "export",
    epilog=examples("workwork proof export <contribution id> --output proof.json"),
)
@click.argument("contribution_id", type=ID)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write."
)
@output
def proof_export(contribution_id: str, output: Path | None) -> None:
    """Export the proof file of an anchored contribution (workwork-proof/1)."""
    data = current().client().proof(contribution_id)
    if output is None:
        output = Path(f"proof-{contribution_id[:16]}.json")
    output.write_text(json.dumps(data, indent=2) + "\n")
    emit(
        {"file": str(output), "contribution_id": contribution_id, "root": data["root"]},
        lambda c, d: c.print(f"Wrote {d['file']}"),
    )


@proof.command(
    "verify",
    epilog=examples(
        "workwork proof verify proof.json",
        "workwork proof verify proof.json --rpc http://127.0.0.1:8545",
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rpc", help="Also check against this chain's JSON-RPC endpoint.")
@click.option("--offline", is_flag=True, help="Check the file alone (the default without --rpc).")
@output
def proof_verify(file: Path, rpc: str | None, offline: bool) -> None:
    """Verify a proof file: signatures, authority, leaf, Merkle proof; with --rpc, the anchor.

    Needs no daemon and no keys. A failure names exactly what failed.
    """
    from node.chain.proof import verify_proof

    data = _read_json(file)
    checked = verify_proof(data)
    if rpc and not offline:
        checked = verify_proof(data, _rpc_chain(rpc, checked.contract))

    def human(console: Console, d: dict[str, Any]) -> None:
        where = "and against the chain" if d["on_chain"] else "offline (pass --rpc for the chain)"
        console.print(f"Valid {where}: contribution {d['contribution_id']}")
        show_pairs(console, [(k.replace("_", " "), v) for k, v in d.items() if k != "valid"])

    emit(checked.to_json(), human)


def _read_json(file: Path) -> Any:
    """The JSON in a proof or portfolio file (`MalformedProof` if it is not JSON)."""
    from node.chain.proof import MalformedProof

    try:
        return json.loads(file.read_text())
    except ValueError as exc:
        raise MalformedProof(f"{file} is not JSON: {exc}") from None


def _rpc_chain(rpc: str, contract: bytes) -> ChainClient:
    """A chain client of `contract` at JSON-RPC endpoint `rpc`, for verifying files (no keys)."""
    from web3 import Web3

    from node.chain.client import ChainClient
    from node.config import ChainConfig

    config = ChainConfig(backend="rpc", url=rpc)
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": config.timeout}))
    return ChainClient(w3, contract, config=config)


@cli.group(
    epilog=examples(
        "workwork portfolio export portfolio.json", "workwork portfolio verify portfolio.json"
    )
)
def portfolio() -> None:
    """Portfolios: a person's anchored work across projects, in one verifiable file."""


@portfolio.command(
    "export",
    epilog=examples(
        "workwork portfolio export portfolio.json",
        "workwork portfolio export --key <public key> bob.json",
    ),
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", help="Whose work (public key, hex); this node's own by default.")
@output
def portfolio_export(file: Path, key: str | None) -> None:
    """Export a portfolio (workwork-portfolio/1): a proof file of each anchored contribution.

    Contributions that no anchored epoch pays (open, late, withdrawn) are left out, each with
    the reason.
    """
    data = current().client().portfolio(key)
    file.write_text(json.dumps(data["portfolio"], indent=2) + "\n")
    entries = data["portfolio"]["entries"]

    def human(console: Console, d: dict[str, Any]) -> None:
        console.print(f"Wrote {d['file']}: {d['contributions']} anchored contributions")
        for left in d["left_out"]:
            console.print(f"  left out {left['contribution_id'][:16]}: {left['reason']}")

    emit(
        {
            "file": str(file),
            "author": data["portfolio"]["author"],
            "contributions": len(entries),
            "left_out": data["left_out"],
        },
        human,
    )


@portfolio.command(
    "verify",
    epilog=examples(
        "workwork portfolio verify portfolio.json",
        "workwork portfolio verify portfolio.json --rpc http://127.0.0.1:8545",
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rpc", help="Also check against this chain's JSON-RPC endpoint.")
@click.option("--offline", is_flag=True, help="Check the file alone (the default without --rpc).")
@output
def portfolio_verify(file: Path, rpc: str | None, offline: bool) -> None:
    """Verify a portfolio: every entry as a proof file, its manifest and its author; with
    --rpc, every anchor and what was paid.

    Needs no daemon and no keys. A failure names exactly what failed (entries[i]. and the field).
    """
    from node.chain.portfolio import verify_portfolio

    data = _read_json(file)
    checked = verify_portfolio(data)
    if rpc and not offline and checked.entries:
        checked = verify_portfolio(data, _rpc_chain(rpc, checked.entries[0].proof.contract))

    def human(console: Console, d: dict[str, Any]) -> None:
        where = "and against the chain" if d["on_chain"] else "offline (pass --rpc for the chain)"
        console.print(
            f"Valid {where}: {d['contributions']} contributions to {d['projects']} projects "
            f"by {d['author']}, total weight {d['total_weight']}"
        )
        for e in d["entries"]:
            paid = ", ".join(f"{p['claimed']} of {p['token']}" for p in e["paid"]) or "nothing"
            console.print(
                f"  {e['contribution_id'][:16]} project {e['project_id'][:16]} epoch "
                f"{e['epoch']} weight {e['weight']} paid {paid}"
            )

    emit(checked.to_json(), human)
