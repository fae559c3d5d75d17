"""The `workwork` command: set up a node, run it, and drive it.

`init` and `keys` work on the data dir alone, and `node start` runs the daemon in the
foreground; every other command is a client of the running daemon's local API
(`node.client`), so it works while the daemon holds the store.

Output is for people by default (tables), and JSON with `--json` (before or after the command
name): the API's own JSON, with stable keys, for scripts and agents. A failure prints
`error: <message>` and `hint: <what to try>` on stderr (and the error object on stdout with
--json) and exits with 2 for a usage error, 1 for anything else.

Adding a command: a function under the right group with `@output` (for --json) that calls the
client and hands the answer to `emit` with a renderer for people.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from node import __version__
from node.client import Client, DaemonError
from node.errors import (
    ChainError,
    ChainUnavailable,
    ConfigError,
    KeyFileError,
    NodeError,
    TransactionReverted,
)
from node.home import Home, Settings, write

# The commands that need keys, libp2p or the daemon import them when they run: they take a
# second to import, and the client commands, which agents call in loops, need none of them.
from protocol import ProtocolError
from storage import StorageError, StoreInUse

F = TypeVar("F", bound=Callable[..., Any])

_HINTS: tuple[tuple[type[Exception], str], ...] = (
    (StoreInUse, "a node already runs over this data dir; use the other commands, or stop it"),
    (KeyFileError, "check the passphrase (--passphrase-file or WORKWORK_PASSPHRASE) and the data dir"),
    (ConfigError, "check config.toml in the data dir and the flags; see `workwork node start --help`"),
    (StorageError, "see the message: the store's directory is in the data dir"),
    (ProtocolError, "the record was refused; nothing was stored"),
    (ChainUnavailable, "is the chain's endpoint up? check --chain (or [chain] in config.toml)"),
    (TransactionReverted, "the contract refused it; nothing changed on chain"),
    (ChainError, "check --chain and --contract (or [chain] in config.toml)"),
)  # fmt: skip


@dataclass
class State:
    """What every command knows: the data dir and the output mode."""

    home: Home
    json: bool = False
    console: Console = field(default_factory=Console)

    def client(self) -> Client:
        return Client.connect(self.home.root)


def _state() -> State:
    return click.get_current_context().find_object(State) or State(Home.locate())


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _state().json = True


def output(fn: F) -> F:
    """Adds `--json` to a command, so it is accepted after the command name too."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the result as JSON.",
    )(fn)


def emit(data: Any, human: Callable[[Console, Any], None]) -> None:
    """Prints a result: as JSON with --json, else with `human`."""
    state = _state()
    if state.json:
        click.echo(json.dumps(data, indent=2))
    else:
        human(state.console, data)


def _pairs(console: Console, rows: Iterable[tuple[str, Any]]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        table.add_row(key, "-" if value in ("", None) else str(value))
    console.print(table)


def _table(*headers: str) -> Table:
    """Returns a table whose cells fold instead of being cut: ids must stay copyable."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _record(console: Console, data: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [("kind", data["kind"]), ("id", data["id"])]
    if "project_id" in data:
        rows.append(("project id", data["project_id"]))
    rows.append(("author", data["author"]))
    rows.extend((k.replace("_", " "), v) for k, v in data["fields"].items())
    for extra in ("current_epoch", "followed"):
        if extra in data:
            rows.append((extra.replace("_", " "), data[extra]))
    if data.get("acceptance") is not None:
        verdict = data["acceptance"]["fields"]
        rows.append(("accepted", f"weight {verdict['weight']} in epoch {verdict['epoch']}"))
    elif "acceptance" in data:
        rows.append(("accepted", "not yet"))
    _pairs(console, rows)


EXAMPLES = "\b\nExamples:\n"


def _examples(*lines: str) -> str:
    return EXAMPLES + "\n".join(f"  {line}" for line in lines)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_examples(
        "workwork init",
        "workwork node start",
        "workwork --json status",
        "workwork project post docs --title 'Write the docs' --skill writing",
    ),
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The node's data dir (default: $WORKWORK_HOME, else ~/.workwork).",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.version_option(__version__, prog_name="workwork")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, as_json: bool) -> None:
    """WorkWork: a peer-to-peer node for decentralized work.

    Post projects, contribute, accept contributions; records are signed and gossiped over
    libp2p. Run `workwork init` once, then `workwork node start`; the other commands talk to
    the running node.
    """
    ctx.obj = State(Home.locate(data_dir), as_json)


# Set-up, without a daemon.


@cli.command(
    epilog=_examples(
        "workwork init",
        "workwork --data-dir ./boot init --role bootstrap --listen /ip4/0.0.0.0/tcp/4001 \\\n"
        "      --announce /dns4/boot.example.org/tcp/4001",
    )
)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the passphrase from this file (else $WORKWORK_PASSPHRASE, else ask).",
)
@click.option(
    "--role",
    type=click.Choice(["personal", "bootstrap"]),
    default="personal",
    show_default=True,
    help="A bootstrap node follows every topic and keeps all.",
)
@click.option("--listen", multiple=True, help="Multiaddr to listen on (repeatable).")
@click.option("--announce", multiple=True, help="Multiaddr to tell peers instead (repeatable).")
@click.option("--bootstrap", multiple=True, help="Multiaddr of a bootstrap node (repeatable).")
@output
def init(
    passphrase_file: Path | None,
    role: str,
    listen: tuple[str, ...],
    announce: tuple[str, ...],
    bootstrap: tuple[str, ...],
) -> None:
    """Create the data dir: keys (encrypted with a passphrase) and config.toml.

    Refuses to touch a data dir that has keys or a config file already.
    """
    from node import hostkey, keys

    home = _state().home
    for path in (home.config, home.identity, home.wallet):
        if path.exists():
            raise ConfigError(f"{path} exists already; {home.root} is initialized")
    network: dict[str, Any] = {"role": role}
    for name, value in (("listen", listen), ("announce", announce), ("bootstrap", bootstrap)):
        if value:
            network[name] = value
    settings = Settings().replace(network=network)
    passphrase = keys.passphrase(passphrase_file, confirm=True)
    home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = keys.create(home.identity, home.wallet, passphrase)
    peer = hostkey.peer_id(hostkey.load_or_create(home.host_key))
    write(home.config, settings)

    def human(console: Console, data: dict[str, Any]) -> None:
        console.print(f"Initialized {data['data_dir']}")
        _pairs(console, [(k.replace("_", " "), v) for k, v in data.items() if k != "data_dir"])
        console.print("Next: workwork node start")

    emit(
        {
            "data_dir": str(home.root),
            "public_key": identity.public_key.hex(),
            "peer_id": str(peer),
            "wallet": identity.wallet.address,
        },
        human,
    )


@cli.command("keys", epilog=_examples("workwork keys", "workwork --json keys"))
@output
def show_keys() -> None:
    """Show the public key, peer id and wallet address (no passphrase, no daemon)."""
    from node import hostkey, keys
    from protocol.merkle import checksum

    home = _state().home
    public = keys.public(home.identity, home.wallet)
    peer = str(hostkey.peer_id(hostkey.load_or_create(home.host_key)))
    emit(
        {
            "public_key": public.public_key.hex(),
            "peer_id": peer,
            "wallet": checksum(public.address),
        },
        lambda console, data: _pairs(console, [(k.replace("_", " "), v) for k, v in data.items()]),
    )


# The daemon.


@cli.group(epilog=_examples("workwork node start", "workwork node start --help"))
def node() -> None:
    """Run the node."""


@node.command(
    epilog=_examples(
        "workwork node start",
        "workwork node start --role bootstrap --listen /ip4/0.0.0.0/tcp/4001",
        "workwork node start --bootstrap /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...",
        "workwork node start --chain anvil",
        "workwork node start --chain http://127.0.0.1:8545 --contract 0x5FbD...",
    )
)
@click.option("--role", type=click.Choice(["personal", "bootstrap"]), help="Override the role.")
@click.option("--chain", help="embedded, anvil, or a JSON-RPC URL (http[s]://...).")
@click.option("--contract", help="The settlement contract's address (needed with a URL).")
@click.option("--confirmations", type=click.IntRange(0), help="Blocks to wait after an anchor.")
@click.option("--listen", multiple=True, help="Multiaddr to listen on (repeatable).")
@click.option("--announce", multiple=True, help="Multiaddr to announce instead (repeatable).")
@click.option("--bootstrap", multiple=True, help="Bootstrap multiaddr with /p2p/ (repeatable).")
@click.option("--api-host", help="Address the API binds (loopback unless --api-allow-remote).")
@click.option("--api-port", type=int, help="API port (0: any free port).")
@click.option(
    "--api-allow-remote",
    is_flag=True,
    default=None,
    help="Allow the API on a non-loopback address (protect it!).",
)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the passphrase from this file (else $WORKWORK_PASSPHRASE, else ask).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def start(
    role: str | None,
    chain: str | None,
    contract: str | None,
    confirmations: int | None,
    listen: tuple[str, ...],
    announce: tuple[str, ...],
    bootstrap: tuple[str, ...],
    api_host: str | None,
    api_port: int | None,
    api_allow_remote: bool | None,
    passphrase_file: Path | None,
    verbose: bool,
) -> None:
    """Run the node in the foreground until Ctrl-C (or SIGTERM).

    Flags override config.toml. Logs go to stderr and to logs/node.log in the data dir; the
    API's address goes to api.json and its token to api.cookie, for the other commands.
    """
    import trio

    from node import keys
    from node.daemon import Daemon, setup_logging

    home = _state().home
    if not home.identity.exists():
        raise KeyFileError(f"{home.identity} does not exist; run 'workwork init' first")
    network: dict[str, Any] = {}
    if role:
        network["role"] = role
    for name, value in (("listen", listen), ("announce", announce), ("bootstrap", bootstrap)):
        if value:
            network[name] = value
    api: dict[str, Any] = {}
    for name, setting in (("host", api_host), ("port", api_port),
                          ("allow_remote", api_allow_remote)):  # fmt: skip
        if setting is not None:
            api[name] = setting
    chain_settings = _chain(chain)
    if contract is not None:
        chain_settings["contract"] = contract
    if confirmations is not None:
        chain_settings["confirmations"] = confirmations
    settings = home.settings().replace(network=network, api=api, chain=chain_settings)
    identity = keys.load(home.identity, home.wallet, keys.passphrase(passphrase_file))
    setup_logging(home, verbose=verbose)
    trio.run(Daemon(home, identity, settings).run_until_signal)


def _chain(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    if value in ("embedded", "anvil"):
        return {"backend": value}
    if value.startswith(("http://", "https://")):
        return {"backend": "rpc", "url": value}
    raise click.BadParameter("expected embedded, anvil or an http(s) URL", param_hint="--chain")


# Clients of the running daemon.


@cli.command(epilog=_examples("workwork status", "workwork --json status"))
@output
def status() -> None:
    """Show the node: peer id, addresses, keys, peers, record counts."""

    def human(console: Console, data: dict[str, Any]) -> None:
        _pairs(
            console,
            [
                ("peer id", data["peer_id"]),
                ("addresses", data["addrs"]),
                ("role", data["role"]),
                ("public key", data["public_key"]),
                ("wallet", data["wallet"]),
                ("peers", data["peers"]),
                ("records", data["records"]),
                ("orphans", data["orphans"]),
                ("topics", [f"{t} ({n})" for t, n in data["topics"].items()]),
                ("version", data["version"]),
            ],
        )

    emit(_state().client().status(), human)


@cli.command("sync", epilog=_examples("workwork sync", "workwork sync --timeout 3600"))
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=600.0,
    show_default=True,
    help="Give up after this many seconds.",
)
@output
def sync_progress(timeout: float) -> int:
    """Watch catch-up sync with peers, with a progress bar, until it is done.

    Done means connected to a peer and no sync under way for two looks in a row. Exits 1 on
    timeout.
    """
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    state = _state()
    deadline = time.monotonic() + timeout
    idle = 0
    with state.client() as client, Progress(
        TextColumn("catching up"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
        console=state.console, disable=state.json,
    ) as bar:  # fmt: skip
        task = bar.add_task("sync", total=None)
        while idle < 2:
            if time.monotonic() > deadline:
                raise click.ClickException(f"sync still under way after {timeout:.0f} s")
            now = client.status()
            active = now["syncing"]
            # Not done before a first peer is connected (and so synced with).
            idle = 0 if active or not now["peers"] else idle + 1
            needed = sum(s["needed"] for s in active)
            bar.update(task, total=needed or None, completed=sum(s["fetched"] for s in active))
            time.sleep(0.5)
    emit(
        {"records": now["records"], "peers": now["peers"]},
        lambda c, d: c.print(f"In sync: {d['records']} records, {d['peers']} peer(s)"),
    )
    return 0


@cli.command(epilog=_examples("workwork dashboard", "workwork dashboard --open"))
@click.option("--open", "launch", is_flag=True, help="Open it in the default browser.")
@output
def dashboard(launch: bool) -> None:
    """Print the URL of the node's web dashboard (projects, contributions, epochs, peers).

    The URL carries the API token after '#', which browsers never send to a server: treat
    the URL as the token itself.
    """
    with _state().client() as client:
        client.status()  # fails here, with a hint, if the node is not running
        url = f"{client.base_url}/#token={client.token}"
    if launch:
        import webbrowser

        webbrowser.open(url)
    emit({"url": url}, lambda c, d: c.print(d["url"], soft_wrap=True))


@cli.command(epilog=_examples("workwork peers"))
@output
def peers() -> None:
    """List connected and known peers."""

    def human(console: Console, data: dict[str, Any]) -> None:
        table = _table("peer id", "connected", "addresses", "failures")
        for peer in data["known"]:
            table.add_row(
                peer["peer_id"],
                "yes" if peer["connected"] else "",
                "\n".join(peer["addrs"]),
                str(peer["failures"]),
            )
        console.print(table)
        console.print(f"{len(data['connected'])} connected, {len(data['known'])} known")

    emit(_state().client().peers(), human)


@cli.command(epilog=_examples("workwork connect /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW..."))
@click.argument("addr")
@output
def connect(addr: str) -> None:
    """Connect to a peer by multiaddr (with /p2p/<peer id>)."""
    emit(
        _state().client().connect_peer(addr),
        lambda console, data: console.print(f"connected to {data['connected']}"),
    )


# Errors.


def _fail(args: Sequence[str], message: str, hint: str, kind: str, code: int) -> int:
    if "--json" in args:
        click.echo(json.dumps({"error": {"type": kind, "message": message, "hint": hint}}))
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (the console script's entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="workwork", standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "workwork"
        return _fail(args, exc.format_message(), f"see `{command} --help`", "UsageError", 2)
    except click.Abort:
        return _fail(args, "aborted", "", "Aborted", 1)
    except click.ClickException as exc:
        return _fail(args, exc.format_message(), "", type(exc).__name__, 1)
    except DaemonError as exc:
        return _fail(args, exc.message, exc.hint, exc.type, 1)
    except (NodeError, StorageError, ProtocolError) as exc:
        return _known(args, exc)
    except BaseExceptionGroup as group:
        # The daemon's nursery wraps what failed at start (a store in use, a port taken).
        leaf = _leaf(group)
        if isinstance(leaf, NodeError | StorageError | ProtocolError):
            return _known(args, leaf)
        if isinstance(leaf, OSError):
            return _fail(args, str(leaf), "is the address or port in use?", "OSError", 1)
        raise
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def _known(args: Sequence[str], exc: Exception) -> int:
    hint = next((h for cls, h in _HINTS if isinstance(exc, cls)), "")
    return _fail(args, str(exc), hint, type(exc).__name__, 1)


def _leaf(exc: BaseException) -> BaseException:
    """Returns the one exception inside nested single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


# The commands on records (profile, project, contribute, contributions, accept, export,
# import) and the settlement commands (chain, epoch, fund, share, claim, audit, proof) live in
# modules of their own and join `cli` when imported; they need the helpers above, hence the late
# imports. Run the command as `workwork` or `python -m node` (not `python -m node.cli`, which
# would load this module twice).
from node import cli_settle, cli_work  # noqa: E402, F401
