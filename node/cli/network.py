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
                *_nat(data.get("nat")),
                ("topics", [f"{t} ({n})" for t, n in data["topics"].items()]),
                ("version", data["version"]),
            ],
        )

    emit(current().client().status(), human)


def _nat(nat: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The status lines about reachability and relays (none from a node that predates them)."""
    if not nat:
        return []
    conns = nat["connections"]
    slots = [
        f"{a}  (expires in {r['expires_in']} s)" for r in nat["reservations"] for a in r["addrs"]
    ]
    rows: list[tuple[str, Any]] = [
        ("reachability", nat["reachability"]),
        ("connections", f"{conns['direct']} direct, {conns['relayed']} relayed"),
        ("relay slots", slots or "none"),
    ]
    if nat["relay_hop"]:
        rows.append(("relaying for", f"{nat['relay_reservations_served']} reserved peer(s)"))
    return rows


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
    tally = Tally()
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
            completed, total = tally.update(active)
            bar.update(task, total=total or None, completed=completed)
            time.sleep(0.5)
    emit(
        {"records": now["records"], "peers": now["peers"]},
        lambda c, d: c.print(f"In sync: {d['records']} records, {d['peers']} peer(s)"),
    )
    return 0


class Tally:
    """The progress of catch-up sync over the runs the node reports, one look at a time, as
    (completed, total) that never go backwards.

    A run is gone from the node's list once it ends: its records then count as done (fetched, or
    given up on), instead of leaving the bar, which would drop from 60005/60005 to 0. A run
    whose fetched count falls is a new run with the same peer, and the one before it ended.
    """

    def __init__(self) -> None:
        self.done = 0
        self.runs: dict[str, tuple[int, int]] = {}
        self.completed = 0
        self.total = 0

    def update(self, active: list[dict[str, Any]]) -> tuple[int, int]:
        """Takes the `syncing` list of one look at the status; returns (completed, total)."""
        now: dict[str, tuple[int, int]] = {}
        for run in active:
            needed, fetched = now.get(str(run["peer"]), (0, 0))
            now[str(run["peer"])] = (needed + int(run["needed"]), fetched + int(run["fetched"]))
        for peer, (needed, fetched) in self.runs.items():
            if peer not in now or now[peer][1] < fetched:
                self.done += max(needed, fetched)
        self.runs = now
        total = self.done + sum(max(n, f) for n, f in now.values())
        self.completed = max(self.completed, self.done + sum(f for _, f in now.values()))
        self.total = max(self.total, total, self.completed)
        return self.completed, self.total


@cli.command(epilog=examples("workwork dashboard", "workwork dashboard --open"))
@click.option("--open", "launch", is_flag=True, help="Open it in the default browser.")
@output
def dashboard(launch: bool) -> None:
    """Print a login link to the node's web app (matches, projects, contributions, claims,
    review, epochs, proposals, peers).

    The link works once, for 10 minutes: it starts a session in the browser that opens it
    (a cookie only this node's pages send), which lasts 30 days and outlives node restarts.
    The code after '#' never reaches a server other than this node.
    """
    with current().client() as client:
        data = client.request("POST", "/v1/session/code")
        url = f"{client.base_url}/{data['fragment']}"
    opened: bool | None = None
    if launch:
        opened = _open_browser(url)
    result = {"url": url, "expires_at": data["expires_at"], "opened": opened}
    emit(result, lambda c, d: c.print(d["url"], soft_wrap=True))
    if opened is False:
        click.echo(
            "no browser found on this machine: open the link above in a browser that can reach "
            "the node (it works once, for 10 minutes)",
            err=True,
        )


def _open_browser(url: str) -> bool:
    """Opens `url` in the default browser; returns False when there is none to open."""
    import webbrowser

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


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
