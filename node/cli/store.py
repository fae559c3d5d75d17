"""`workwork store check`: the consistency check of the record store, and its safe repair.

It opens the store itself, so it runs only while no node does (LevelDB allows one process per
store): it is refused, saying so, while the daemon holds the store.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from node.cli.base import cli, current, emit, examples, output
from node.errors import EXIT_FINDINGS

# The one problem `--repair` fixes, as storage/check.py words it.
_FILTER = "is missing from the filter of stored ids"


@cli.group("store", epilog=examples("workwork store check", "workwork store check --repair"))
def store_group() -> None:
    """The node's record store (stop the node first: `workwork node stop`)."""


@store_group.command(
    "check",
    epilog=examples("workwork node stop", "workwork store check", "workwork --json store check"),
)
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild what the records alone determine: the filter of stored ids, and the index "
    "entries of each record by project, author, contribution, reviewer, epoch root, proposal "
    "and vote.",
)
@output
def check(repair: bool) -> int:
    """Check that the store's records, indexes and orphan area agree (while no node runs).

    Reads every record and index entry once. Exits 0 if all agree, 3 if problems were found
    (listed, at most 100), 1 if the store cannot be checked.

    --repair fixes only what can be rebuilt exactly from the records: the filter of stored ids
    (a miss there costs a lookup, never a record), and the index entries that each record alone
    determines (storage/repair.py), rewritten in one atomic batch. Other problems (revisions in
    force, epochs' acceptances, topics, orphans) are listed and left alone: no record is
    deleted or rewritten; copy the data dir before anything else, then re-sync into a new one
    if the store is damaged.
    """
    from storage import Store, StoreInUse

    home = current().home
    if not home.store.exists():
        raise click.ClickException(f"{home.store} does not exist: this node has no store yet")
    try:
        store = Store.open(home.store, create=False)
    except StoreInUse:
        raise StoreInUse(
            f"the node running over {home.root} holds the store {home.store}: it cannot be "
            "checked while the node runs",
            home.store,
        ) from None
    repaired: list[str] = []
    with store:
        problems = store.check()
        if repair and problems:
            if any(_FILTER in p for p in problems):
                store.rebuild_filter()
                repaired.append("rebuilt the filter of stored ids from the records")
            # Idempotent: on tables that are right it changes nothing.
            changed = store.rebuild_indexes()
            if changed:
                repaired.append(f"rewrote {changed} index entries from the records")
            problems = store.check()

    def human(console: Console, data: dict[str, Any]) -> None:
        for line in data["repaired"]:
            console.print(f"Repaired: {line}")
        for line in data["problems"]:
            console.print(f"problem: {line}", markup=False, highlight=False, soft_wrap=True)
        if data["consistent"]:
            console.print(f"The store {data['store']} is consistent.", soft_wrap=True)
        else:
            console.print(
                f"{len(data['problems'])} problem(s) in {data['store']}"
                + ("" if repair else "; see `workwork store check --help` for --repair"),
                soft_wrap=True,
            )

    emit(
        {
            "store": str(home.store),
            "consistent": not problems,
            "problems": list(problems),
            "repaired": repaired,
        },
        human,
    )
    return 0 if not problems else EXIT_FINDINGS
