"""Commands that need no running daemon: `init`, `keys`, `node start`, which runs it, `node stop`,
which stops it, and `node unit`, its systemd unit.

The commands that need keys, libp2p or the daemon import them when they run: they take a
second to import, and the client commands, which agents call in loops, need none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from node.cli.base import cli, current, emit, examples, output, show_pairs
from node.errors import ConfigError, KeyFileError
from node.home import Settings, write


@cli.command(
    epilog=examples(
        "workwork init",
        "workwork --data-dir ./boot init --role bootstrap --listen /ip4/0.0.0.0/tcp/4001 \\\n"
        "      --announce /dns4/boot.example.org/tcp/4001",
    )
)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the passphrase from this file, mode 0600 (else $WORKWORK_PASSPHRASE, else ask).",
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
@click.option(
    "--key-difficulty",
    type=click.IntRange(0, 32),
    envvar="WORKWORK_KEY_DIFFICULTY",
    help="The network's key_difficulty: bits of proof of work to mint the identity key with "
    "(about 1 s at the default 15); written to config.toml (else $WORKWORK_KEY_DIFFICULTY).",
)
@click.option(
    "--mdns/--no-mdns",
    default=None,
    envvar="WORKWORK_MDNS",
    help="Find peers on the LAN by mDNS (network.mdns); on for a personal node, off for a "
    "bootstrap node, unless said (else $WORKWORK_MDNS).",
)
@output
def init(
    passphrase_file: Path | None,
    role: str,
    listen: tuple[str, ...],
    announce: tuple[str, ...],
    bootstrap: tuple[str, ...],
    key_difficulty: int | None,
    mdns: bool | None,
) -> None:
    """Create the data dir: keys (encrypted with a passphrase) and config.toml.

    The passphrase needs at least 8 characters. Refuses to touch a data dir that has keys or a
    config file already.
    """
    from node import keys
    from node.net import hostkey

    home = current().home
    for path in (home.config, home.identity, home.wallet):
        if path.exists():
            raise ConfigError(f"{path} exists already; {home.root} is initialized")
    network: dict[str, Any] = {"role": role}
    for name, value in (("listen", listen), ("announce", announce), ("bootstrap", bootstrap)):
        if value:
            network[name] = value
    if key_difficulty is not None:
        network["key_difficulty"] = key_difficulty
    # A personal node is at home or in an office, where the LAN may hold other nodes; a
    # bootstrap node has a public address and no LAN to announce itself on.
    network["mdns"] = role == "personal" if mdns is None else mdns
    settings = Settings().replace(network=network)
    passphrase = keys.passphrase(passphrase_file, new=True)
    home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = keys.create(
        home.identity, home.wallet, passphrase, difficulty=settings.network.key_difficulty
    )
    peer = hostkey.peer_id(hostkey.load_or_create(home.host_key))
    write(home.config, settings)

    def human(console: Console, data: dict[str, Any]) -> None:
        console.print(f"Initialized {data['data_dir']}")
        show_pairs(console, [(k.replace("_", " "), v) for k, v in data.items() if k != "data_dir"])
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


@cli.command("keys", epilog=examples("workwork keys", "workwork --json keys"))
@output
def show_keys() -> None:
    """Show the public key, peer id and wallet address (no passphrase, no daemon)."""
    from node import keys
    from node.net import hostkey
    from protocol.merkle import checksum

    home = current().home
    public = keys.public(home.identity, home.wallet)
    peer = str(hostkey.peer_id(hostkey.load_or_create(home.host_key)))
    emit(
        {
            "public_key": public.public_key.hex(),
            "peer_id": peer,
            "wallet": checksum(public.address),
        },
        lambda console, data: show_pairs(
            console, [(k.replace("_", " "), v) for k, v in data.items()]
        ),
    )


@cli.group("node", epilog=examples("workwork node start", "workwork node start --help"))
def node_group() -> None:
    """Run the node."""


@node_group.command(
    epilog=examples(
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
@click.option(
    "--settle",
    type=click.FloatRange(0),
    help="Seconds after a proposal's window closes before this owner's node decides it.",
)
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
    help="Read the passphrase from this file, mode 0600 (else $WORKWORK_PASSPHRASE, else ask).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def start(
    role: str | None,
    chain: str | None,
    contract: str | None,
    confirmations: int | None,
    settle: float | None,
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

    home = current().home
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
    if settle is not None:
        chain_settings["settle"] = settle
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


@node_group.command(
    "stop", epilog=examples("workwork node stop", "workwork node stop --timeout 60")
)
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Give up waiting for the node to exit after this many seconds.",
)
@output
def stop(timeout: float) -> None:
    """Stop the node running over the data dir, cleanly, and wait until it has exited.

    It is sent SIGTERM, as a supervisor would: the API answers the requests in flight,
    `api.json` is removed and the store is closed. Exits 1, saying so, when no node runs.
    """
    import json
    import os
    import signal
    import time

    from node.client import NOT_RUNNING_HINT, DaemonError

    home = current().home
    try:
        pid = int(json.loads(home.api_file.read_text())["pid"])
    except FileNotFoundError:
        raise DaemonError(
            "NotRunning", f"no node is running over {home.root}", NOT_RUNNING_HINT
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DaemonError("NotRunning", f"cannot read {home.api_file}: {exc}", "") from None
    # The pid is signalled only if the API that api.json names answers: a file left by a node
    # that died must not make us signal whatever process has its pid now.
    try:
        with current().client() as client:
            client.status()
    except DaemonError as exc:
        raise DaemonError(
            "NotRunning",
            f"{home.api_file} names process {pid}, but no node answers at its address "
            f"({exc.message}); it was left by a node that did not stop cleanly",
            f"if no node runs over {home.root}, delete {home.api_file}",
        ) from None
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        raise DaemonError(
            "NotPermitted",
            f"not allowed to signal the node (process {pid}): it runs as another user",
            "run `workwork node stop` as the user that runs the node (or `systemctl stop`)",
        ) from None
    except ProcessLookupError:
        pass  # it exited between the look at its API and now
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise DaemonError(
                "StillRunning",
                f"the node (process {pid}) is still running {timeout:.0f} s after SIGTERM",
                f"see its log ({home.log}); `kill -9 {pid}` stops it without closing the store",
            )
        time.sleep(0.1)
    emit(
        {"stopped": True, "pid": pid, "data_dir": str(home.root)},
        lambda c, d: c.print(f"Stopped the node over {d['data_dir']} (process {d['pid']})"),
    )


def _alive(pid: int) -> bool:
    """Returns True while process `pid` runs (an exited one its parent has not reaped yet, a
    zombie, has closed its store and counts as gone)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[0] != "Z"


_UNIT = """\
[Unit]
Description=WorkWork node ({root})
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={user}
Environment=WORKWORK_HOME={root}
ExecStart={exe} node start --passphrase-file {passphrase}
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


@node_group.command(
    "unit",
    epilog=examples(
        "workwork node unit --passphrase-file /etc/workwork/pass > workwork.service",
        "sudo cp workwork.service /etc/systemd/system/ && sudo systemctl enable --now workwork",
    ),
)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file the service reads the passphrase from (mode 0600, owned by --user).",
)
@click.option("--user", default=None, help="The user the service runs as (default: you).")
def unit(passphrase_file: Path, user: str | None) -> None:
    """Print a systemd unit that runs this node as a service (start at boot, restart on failure).

    It runs `workwork node start` over this data dir with this installation of workwork, and
    stops it with SIGTERM, which shuts the node down cleanly.
    """
    import getpass
    import shutil
    import sys

    exe = shutil.which("workwork") or str(Path(sys.executable).with_name("workwork"))
    click.echo(
        _UNIT.format(
            root=current().home.root.absolute(),
            user=user or getpass.getuser(),
            exe=Path(exe).absolute(),
            passphrase=passphrase_file.absolute(),
        ),
        nl=False,
    )
