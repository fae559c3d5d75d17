"""The commands of `workwork` on collective decisions: propose, vote, proposals, proposal show,
governance.

They join the `cli` group of node/cli/base.py and follow its rules: `@output` for --json,
`emit` with a renderer for people. All of them ask the running node.
"""

from __future__ import annotations

import re
from typing import Any

import click
from rich.console import Console

from node.cli.base import ID, cli, current, emit, examples, new_table, output, plain, show_pairs
from node.cli.base import show_record as _show_record

_DURATION = re.compile(r"([0-9]+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


class Duration(click.ParamType[int]):
    """Seconds, or a number with s, m, h or d."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        found = _DURATION.fullmatch(str(value).strip())
        if found is None:
            self.fail(f"{value!r} is not a duration: seconds, or e.g. 90m, 36h, 7d", param, ctx)
        return int(found.group(1)) * _UNITS[found.group(2)]


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        out[name] = [v for v in value.split(",") if v] if name == "reviewers" else value
    return out


@cli.command(
    epilog=examples(
        "workwork propose <project id> signal --title 'Move the docs to a wiki?' --window 3d",
        "workwork propose <project id> allocate --title 'Pay epoch 0 from the pool' "
        "--param epoch=0 --param amount=1000000000000000000",
        "workwork propose <project id> signal --title 'Next focus' --option docs --option api",
    )
)
@click.argument("project_id", type=ID)
@click.argument("action", type=click.Choice(["allocate", "accept", "settings", "signal"]))
@click.option("--title", required=True, help="The question, in a line.")
@click.option("--text", help="Free text: the case for it.")
@click.option(
    "--param",
    "params",
    multiple=True,
    help="NAME=VALUE of the action (repeatable): allocate epoch, token (default ether), amount "
    "(wei); accept contribution_id, epoch, weight; settings quorum, threshold (thousandths), "
    "half_life (epochs), epoch_length, reviewers (comma-separated keys), status, mode (owner, "
    "lazy or vote), window (seconds to overturn an acceptance in lazy mode).",
)
@click.option(
    "--option", "options", multiple=True, help="An option to approve (2-16; approval voting)."
)
@click.option("--snapshot", type=int, help="The anchored epoch up to which work gives power.")
@click.option("--window", type=Duration(), help="How long votes are taken (default 7d).")
@output
def propose(
    project_id: str,
    action: str,
    title: str,
    text: str | None,
    params: tuple[str, ...],
    options: tuple[str, ...],
    snapshot: int | None,
    window: int | None,
) -> None:
    """Put a decision to a project's members, who vote with the power of their anchored work."""
    data = (
        current()
        .client()
        .propose(
            project_id,
            action,
            title,
            text=text,
            params=_params(params) or None,
            options=list(options) or None,
            snapshot=snapshot,
            window=window,
        )
    )
    emit(data, _show_record)


@cli.command(
    epilog=examples(
        "workwork vote <proposal id> yes --reason 'The wiki is easier to edit'",
        "workwork vote <proposal id> approve --option 0 --option 2",
    )
)
@click.argument("proposal_id", type=ID)
@click.argument("choice", type=click.Choice(["yes", "no", "abstain", "approve"]))
@click.option("--option", "approve", type=int, multiple=True, help="An option's index to approve.")
@click.option("--reason", help="Why, in a few words.")
@output
def vote(proposal_id: str, choice: str, approve: tuple[int, ...], reason: str | None) -> None:
    """Vote on a proposal; voting again replaces your vote while the window is open."""
    data = (
        current().client().vote(proposal_id, choice, approve=list(approve) or None, reason=reason)
    )
    emit(data, _show_record)


def _summary(tally: dict[str, Any]) -> str:
    if tally["options"]:
        counts = ", ".join(
            f"[{i}] {name}: {power}"
            for i, (name, power) in enumerate(
                zip(tally["options"], tally["approvals"], strict=True)
            )
        )
    else:
        counts = f"yes {tally['yes']}, no {tally['no']}, abstain {tally['abstain']}"
    return f"{counts} of {tally['total_power']}"


def _show_list(console: Console, data: dict[str, Any]) -> None:
    if not data["items"]:
        console.print("No proposals.")
        return
    table = new_table("id", "action", "title", "votes", "tally", "outcome", "open")
    for item in data["items"]:
        table.add_row(
            item["proposal"]["id"][:16],
            item["action"],
            plain(item["title"]),
            str(item["votes"]),
            _summary(item),
            item["outcome"] + (" (final)" if item.get("decision") else ""),
            "open" if item["open"] else "closed",
        )
    console.print(table)


@cli.command(epilog=examples("workwork proposals <project id> --open"))
@click.argument("project_id", type=ID)
@click.option("--open", "only_open", is_flag=True, help="Only proposals still taking votes.")
@output
def proposals(project_id: str, only_open: bool) -> None:
    """A project's proposals, each with its tally so far."""
    emit(current().client().proposals(project_id, only_open=only_open), _show_list)


def _show_tally(console: Console, data: dict[str, Any]) -> None:
    settings = data["settings"]
    show_pairs(
        console,
        [
            ("proposal", data["proposal"]["id"]),
            ("title", data["title"]),
            ("action", data["action"]),
            ("params", ", ".join(f"{k}={v}" for k, v in data["params"].items())),
            ("snapshot", f"epoch {data['snapshot']}"),
            ("window", "open" if data["open"] else f"closed at {data['closes_at']}"),
            ("tally", _summary(data)),
            ("quorum", f"{settings['quorum']}/1000: {'met' if data['quorum_met'] else 'not met'}"),
            ("threshold", f"{settings['threshold']}/1000"),
            ("winners", [data["options"][i] for i in data["winners"]]),
            ("outcome", data["outcome"] + _finality(data)),
            *_decision_rows(data.get("decision")),
        ],
    )
    table = new_table("author", "choice", "power", "credits", "reason")
    for ballot in data.get("ballots", ()):
        choice = ballot["choice"]
        if choice == "approve":
            choice = "approve " + ", ".join(str(i) for i in ballot["approve"])
        credits = ", ".join(
            f"e{c['epoch']}:{c['contribution_id'][:8]}={c['weight']}" for c in ballot["credits"]
        )
        table.add_row(
            ballot["author"][:16],
            choice,
            ballot["power"],
            credits or "-",
            plain(ballot["vote"]["fields"]["reason"]),
        )
    console.print(table)


def _finality(data: dict[str, Any]) -> str:
    if data["open"]:
        return " (so far)"
    if data.get("decision") is None:
        return " (provisional: the owner's decision is not in yet)"
    return " (final: the owner's signed decision)"


def _decision_rows(decision: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The rows of the owner's signed decision, if any: its id, whether this node's records
    bear out its powers, the findings, and the allocation's transaction where known."""
    if decision is None:
        return []
    rows: list[tuple[str, Any]] = [
        ("decision", decision["record"]["id"]),
        ("recount", "agrees" if decision["valid"] else "DISAGREES: not executed"),
    ]
    for finding in decision["findings"]:
        rows.append((finding["code"], finding["detail"]))
    if decision["executed_tx"]:
        rows.append(("executed", decision["executed_tx"]))
    return rows


@cli.group(epilog=examples("workwork proposal show <proposal id>"))
def proposal() -> None:
    """One proposal: its tally, every vote, and the power behind each."""


@proposal.command("show", epilog=examples("workwork proposal show <proposal id>"))
@click.argument("proposal_id", type=ID)
@output
def proposal_show(proposal_id: str) -> None:
    """A proposal's tally with every vote that counts, its power and the anchored work
    (epoch:contribution=weight) that gives it."""
    emit(current().client().proposal(proposal_id), _show_tally)


def _show_governance(console: Console, data: dict[str, Any]) -> None:
    show_pairs(
        console,
        [
            ("mode", data["mode"]),
            ("quorum", f"{data['quorum']}/1000"),
            ("threshold", f"{data['threshold']}/1000"),
            ("half-life", f"{data['half_life']} epochs" if data["half_life"] else "none"),
            ("window", f"{data['window']} s to overturn an acceptance (lazy mode)"),
            ("epoch length", f"{data['epoch_length']} s" if data["epoch_length"] else "on command"),
            ("reviewers", [key[:16] for key in data["reviewers"]] or "none"),
            ("status", data["status"]),
            ("set by", data["decision"] or "the project record"),
        ],
    )


@cli.command(epilog=examples("workwork governance <project id>"))
@click.argument("project_id", type=ID)
@output
def governance(project_id: str) -> None:
    """A project's governance in effect: its record's settings as passed decisions changed
    them (docs/GOVERNANCE.md); --json adds every earlier state."""
    emit(current().client().governance(project_id), _show_governance)
