"""Commands about the running node and its network: status, sync, dashboard, peers, connect."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from node.cli.base import cli, current, emit, examples, new_table, output, show_pairs


@cli.command(epilog=examples("workwork status", "workwork --json status"))
@output
def status() -> None:
    """Show the node: peer id, addresses, keys, peers, record counts."""

    def human(console: Console, data: dict[str, Any]) -> None:
        show_pairs(
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
                ("store", _store(data["store"])),
                ("topics", [f"{t} ({n})" for t, n in data["topics"].items()]),
                ("version", data["version"]),
            ],
        )

    emit(current().client().status(), human)


def _store(health: dict[str, Any]) -> str:
    if health["writable"]:
        return "writable"
    return (
        f"NOT WRITABLE, records are refused: {health['error']} (free space: it resumes by itself)"
    )


@cli.command("sync", epilog=examples("workwork sync", "workwork sync --timeout 3600"))
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

    state = current()
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


@cli.command(epilog=examples("workwork dashboard", "workwork dashboard --open"))
@click.option("--open", "launch", is_flag=True, help="Open it in the default browser.")
@output
def dashboard(launch: bool) -> None:
    """Print the URL of the node's web dashboard (projects, contributions, epochs, peers).

    The URL carries the API token after '#', which browsers never send to a server: treat
    the URL as the token itself.
    """
    with current().client() as client:
        client.status()  # fails here, with a hint, if the node is not running
        url = f"{client.base_url}/#token={client.token}"
    if launch:
        import webbrowser

        webbrowser.open(url)
    emit({"url": url}, lambda c, d: c.print(d["url"], soft_wrap=True))


@cli.command(epilog=examples("workwork peers"))
@output
def peers() -> None:
    """List connected and known peers."""

    def human(console: Console, data: dict[str, Any]) -> None:
        table = new_table("peer id", "connected", "addresses", "failures")
        for peer in data["known"]:
            table.add_row(
                peer["peer_id"],
                "yes" if peer["connected"] else "",
                "\n".join(peer["addrs"]),
                str(peer["failures"]),
            )
        console.print(table)
        console.print(f"{len(data['connected'])} connected, {len(data['known'])} known")

    emit(current().client().peers(), human)


@cli.command(epilog=examples("workwork connect /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW..."))
@click.argument("addr")
@output
def connect(addr: str) -> None:
    """Connect to a peer by multiaddr (with /p2p/<peer id>)."""
    emit(
        current().client().connect_peer(addr),
        lambda console, data: console.print(f"connected to {data['connected']}"),
    )
