"""`workwork match`: the open projects this node knows, ranked for your profile, with reasons.

It joins the `cli` group of node/cli/base.py: `@output` for --json (the ranked list, best
first, as the API gives its items), `emit` with a rendering for people.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from node.cli.base import cli, current, emit, examples, output

PARTS = ("love", "good_at", "needs", "paid")


def show_matches(console: Console, items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("No open project of others is known here yet: try `workwork sync`.")
        return
    for place, item in enumerate(items, 1):
        # Titles and reasons come from other people's records: printed as text, not markup.
        console.print(
            f"[bold]{place}. {escape(item['title'])}[/bold]  score {item['score']:.2f}  "
            f"{item['project_id']}"
        )
        for part in PARTS:
            console.print(f"   {item[part]['score']:.2f}  {escape(item[part]['reason'])}")


@cli.command(
    epilog=examples(
        "workwork match",
        "workwork match --limit 3",
        "workwork --json match --limit 1 | jq -r '.[0].project_id'",
    )
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many."
)
@output
def match(limit: int) -> None:
    """Rank the open projects this node knows for your profile, best first.

    Each project gets four scores with a reason each: love (your interests), good at (your
    skills, and more your accepted and anchored work), needs (how much it needs people now)
    and paid (what it paid per unit of weight, against your rate if it is in wei per weight).
    """
    emit(current().client().match(limit=limit)["items"], show_matches)
