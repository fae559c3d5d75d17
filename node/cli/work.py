"""The commands of `workwork` on records: profiles, projects, contributions and acceptances.

They join the `cli` group of node/cli/base.py and follow its rules:
`@output` for --json, `emit` with a renderer for people. All of them ask the running node.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

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
    plain,
    show_record,
)
from node.errors import EXIT_REFUSED
from node.home import write
from protocol.records import MAX_ABOUT


@cli.group(
    epilog=examples("workwork profile set --name Alice --skill python", "workwork profile show")
)
def profile() -> None:
    """Your profile: who you are, your skills, where you are paid."""


@profile.command(
    "set",
    epilog=examples(
        "workwork profile set --name Alice --skill python --skill rust",
        "workwork profile set --actor agent --rate '20 USDC/h'",
        "workwork profile set --about 'I map flood risk from satellite images.'",
    ),
)
@click.option("--name", help="Display name (required the first time).")
@click.option("--actor", type=click.Choice(["human", "agent"]))
@click.option("--skill", "skills", multiple=True, help="A skill tag (repeatable).")
@click.option("--interest", "interests", multiple=True, help="An interest tag (repeatable).")
@click.option("--payout", help="Payout address 0x... (default: your wallet).")
@click.option("--rate", help="Rate or pay expectation, free text.")
@click.option(
    "--about",
    help=f"Free text about you, up to {MAX_ABOUT:,} bytes; matching reads it beside your "
    "interests. '' clears it.",
)
@output
def profile_set(
    name: str | None,
    actor: str | None,
    skills: tuple[str, ...],
    interests: tuple[str, ...],
    payout: str | None,
    rate: str | None,
    about: str | None,
) -> None:
    """Publish a new revision of your profile; what is not given is kept."""
    fields = {
        "name": name,
        "actor": actor,
        "skills": list(skills) or None,
        "interests": list(interests) or None,
        "payout": payout,
        "rate": rate,
        "about": about,
    }
    emit(current().client().set_profile(**fields), show_record)


@profile.command("show", epilog=examples("workwork profile show", "workwork profile show <key>"))
@click.argument("author", required=False)
@output
def profile_show(author: str | None) -> None:
    """Show a profile (yours by default, or of the public key AUTHOR)."""
    emit(current().client().profile(author), show_record)


@cli.group(
    epilog=examples(
        "workwork project post docs --title 'Write the docs'", "workwork project list --open"
    )
)
def project() -> None:
    """Post, list, show and close projects."""


@project.command(
    "post",
    epilog=examples(
        "workwork project post docs --title 'Write the docs' --skill writing",
        "workwork project post docs --description 'Now with examples'   # a revision",
    ),
)
@click.argument("name")
@click.option("--title", help="Title (required for a new project).")
@click.option("--description", help="Description.")
@click.option("--skill", "skills", multiple=True, help="A skill wanted (repeatable).")
@click.option("--epoch-length", type=click.IntRange(0), help="Seconds per epoch; 0: on command.")
@click.option(
    "--reviewer", "reviewers", multiple=True, help="A reviewer's public key (repeatable)."
)
@click.option(
    "--mode",
    type=click.Choice(["owner", "lazy", "vote"]),
    help="Governance: owner (owner and reviewers accept), lazy (members may overturn) or "
    "vote (only members' decisions accept).",
)
@click.option("--quorum", type=click.IntRange(0, 1000), help="Thousandths of power that vote.")
@click.option("--threshold", type=click.IntRange(0, 1000), help="Thousandths of yes to pass.")
@click.option("--half-life", type=click.IntRange(0), help="Epochs until work counts half.")
@click.option("--window", type=click.IntRange(0), help="Lazy mode: seconds to overturn.")
@output
def project_post(
    name: str,
    title: str | None,
    description: str | None,
    skills: tuple[str, ...],
    epoch_length: int | None,
    reviewers: tuple[str, ...],
    mode: str | None,
    quorum: int | None,
    threshold: int | None,
    half_life: int | None,
    window: int | None,
) -> None:
    """Post project NAME, or revise your project NAME (fields not given are kept)."""
    governance = {
        "mode": mode,
        "quorum": quorum,
        "threshold": threshold,
        "half_life": half_life,
        "window": window,
    }
    emit(
        current()
        .client()
        .post_project(
            name=name,
            title=title,
            description=description,
            skills=list(skills) or None,
            epoch_length=epoch_length,
            reviewers=list(reviewers) or None,
            **{key: value for key, value in governance.items() if value is not None},
        ),
        show_record,
    )


@project.command("list", epilog=examples("workwork project list", "workwork --json project list"))
@click.option("--open", "only_open", is_flag=True, help="Only projects open to contributions.")
@click.option("--skill", help="Only projects that want this skill.")
@output
def project_list(only_open: bool, skill: str | None) -> None:
    """List the projects this node knows."""
    with current().client() as client:
        items = [
            p
            for p in client.all_projects()
            if (not only_open or p["fields"]["status"] == "open")
            and (skill is None or skill.lower() in p["fields"]["skills"])
        ]

    def human(console: Console, data: list[dict[str, Any]]) -> None:
        table = new_table("project id", "name", "title", "status", "skills")
        for p in data:
            f = p["fields"]
            table.add_row(
                p["project_id"], f["name"], plain(f["title"]), f["status"], ", ".join(f["skills"])
            )
        console.print(table)

    emit(items, human)


@project.command("show", epilog=examples("workwork project show <project id>"))
@click.argument("project_id", type=ID)
@output
def project_show(project_id: str) -> None:
    """Show a project."""
    emit(current().client().project(project_id), show_record)


@project.command(
    "follow",
    epilog=examples("workwork project follow <project id>", "workwork project follow <id> --save"),
)
@click.argument("project_id", type=ID)
@click.option("--save", is_flag=True, help="Also follow it after restarts (config.toml).")
@output
def project_follow(project_id: str, save: bool) -> None:
    """Receive a project's contributions, acceptances and epoch roots (and sync them now).

    A personal node follows its own projects and those it contributed to by itself; an
    auditor or a reviewer follows others' with this.
    """
    state = current()
    data = state.client().follow_project(project_id)
    if save:
        settings = state.home.settings()
        wanted = {*settings.network.follow, bytes.fromhex(project_id)}
        follow = tuple(sorted(wanted))
        write(state.home.config, settings.replace(network={"follow": follow}), replace=True)
    emit(
        {**data, "saved": save},
        lambda c, d: c.print(f"Following {project_id} ({d['followed']})", soft_wrap=True),
    )


@project.command("close", epilog=examples("workwork project close <project id>"))
@click.argument("project_id", type=ID)
@output
def project_close(project_id: str) -> None:
    """Close one of your projects to new contributions, and its pools on chain.

    Closing the pools lets their funders take back what is unallocated at once.
    """

    def human(console: Console, data: dict[str, Any]) -> None:
        show_record(console, data)
        pools = data.get("pools")
        if pools and pools["closed"]:
            done = (
                "were closed already"
                if pools["tx_hash"] is None
                else f"closed in tx {pools['tx_hash']}"
            )
            console.print(f"Pools {done}", markup=False, highlight=False)
        elif pools:
            console.print(f"note: the pools were not closed: {pools['error']}", markup=False)
            console.print(
                f"hint: {pools['hint']}; then `workwork pool close {command_id(project_id)}`",
                markup=False,
                soft_wrap=True,
            )

    emit(current().client().close_project(project_id), human)


@cli.command(
    epilog=examples(
        "workwork contribute <project id> --summary 'Wrote the guide' --evidence guide.md",
        "workwork contribute <project id> --summary 'Wrote the guide' "
        "--evidence-uri https://example.org/guide --evidence-file guide.md --effort 90",
    )
)
@click.argument("project_id", type=ID)
@click.option("--summary", required=True, help="What you did.")
@click.option(
    "--evidence",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of the work, stored on your node, which serves it to peers: its "
    "workwork:sha256 URI becomes the evidence.",
)
@click.option(
    "--evidence-uri",
    default="",
    help="Where the work is: https://, ipfs://, ar:// or workwork:sha256:<hex>.",
)
@click.option(
    "--evidence-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of the work: its sha256 becomes the evidence hash.",
)
@click.option("--evidence-hash", help="The sha256 of the work (hex), if not --evidence-file.")
@click.option("--effort", type=click.IntRange(0), default=0, help="Effort in minutes.")
@click.option("--payout", help="Payout address 0x... (default: your wallet).")
@output
def contribute(
    project_id: str,
    summary: str,
    evidence: Path | None,
    evidence_uri: str,
    evidence_file: Path | None,
    evidence_hash: str | None,
    effort: int,
    payout: str | None,
) -> None:  # fmt: skip
    """Contribute to a project (needs evidence: a file, a URI or a hash)."""
    if evidence is not None and (evidence_uri or evidence_file or evidence_hash):
        raise click.UsageError(
            "--evidence stores the file and names it: leave out --evidence-uri, "
            "--evidence-file and --evidence-hash"
        )
    if evidence_file is not None:
        evidence_hash = hashlib.sha256(evidence_file.read_bytes()).hexdigest()
    client = current().client()
    if evidence is not None:
        stored = client.put_evidence(evidence.read_bytes())
        evidence_uri, evidence_hash = stored["uri"], stored["sha256"]
    emit(
        client.contribute(
            project_id=project_id,
            summary=summary,
            evidence_uri=evidence_uri,
            evidence_hash=evidence_hash,
            effort=effort,
            payout=payout,
        ),
        show_record,
    )


@cli.command(
    epilog=examples("workwork contributions", "workwork contributions --project <project id>")
)
@click.option("--project", "project_id", type=ID, help="Contributions to this project.")
@click.option("--author", help="Contributions of this public key (default: yours).")
@output
def contributions(project_id: str | None, author: str | None) -> None:
    """List contributions, each with its acceptance."""
    items: list[Any] = []
    cursor = None
    with current().client() as client:
        while True:
            page = client.contributions(
                project_id=project_id, author=author, cursor=cursor, limit=1000
            )
            items.extend(page["items"])
            cursor = page["cursor"]
            if cursor is None:
                break

    def human(console: Console, data: list[dict[str, Any]]) -> None:
        table = new_table("contribution id", "summary", "effort", "weight", "epoch")
        for c in data:
            verdict = (c.get("acceptance") or {}).get("fields", {})
            table.add_row(
                c["id"],
                plain(c["fields"]["summary"]),
                str(c["fields"]["effort"]),
                verdict.get("weight", "-"),
                str(verdict.get("epoch", "-")),
            )
        console.print(table)

    emit(items, human)


@cli.command(
    epilog=examples(
        "workwork evidence get <contribution id>   # open the work first",
        "workwork accept <contribution id> --weight 10",
        "workwork accept <contribution id> --weight 0   # withdraw",
    )
)
@click.argument("contribution_id", type=ID)
@click.option("--weight", type=click.IntRange(0), required=True, help="Weight (0 withdraws).")
@click.option("--epoch", type=click.IntRange(0), help="Epoch (default: the current one).")
@output
def accept(contribution_id: str, weight: int, epoch: int | None) -> None:
    """Accept a contribution to one of your projects, with a weight."""
    emit(current().client().accept(contribution_id, weight, epoch=epoch), show_record)


@cli.command(
    "export", epilog=examples("workwork export records.jsonl", "workwork export - | wc -l")
)
@click.argument("file", type=click.File("w"), default="-")
def export_(file: Any) -> None:
    """Write every stored record to FILE as JSON lines {id, kind, raw}."""
    count = 0
    with current().client() as client:
        for line in client.export():
            file.write(line + "\n")
            count += 1
    if getattr(file, "name", "") != "<stdout>":
        click.echo(f"exported {count} records", err=True)


@cli.command(
    "import",
    epilog=examples("workwork import records.jsonl", "cat records.jsonl | workwork import"),
)
@click.argument("file", type=click.File("rb"), default="-")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr (default: when stderr is a terminal).",
)
@output
def import_(file: Any, progress: bool | None) -> int:
    """Validate and store records from JSON lines (as `export` writes them).

    Exits 0 when every record was stored (or held already), 4 when some were refused (listed).
    """
    data = file.read()
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise click.UsageError(
            f"{file.name}: line {line} is not UTF-8 text: not an export of records "
            '(JSON lines {"id", "kind", "raw"}, as `workwork export` writes them)'
        ) from None
    result = _import_with_progress(lines, progress)

    def human(console: Console, data: dict[str, Any]) -> None:
        console.print(
            f"added {data['added']}, already had {data['duplicates']}, waiting for a parent "
            f"{data['orphaned']}, refused {len(data['rejected'])}"
        )
        for item in data["rejected"]:
            console.print(f"  refused {item['id'][:16]}: {item['error']}")

    emit(result, human)
    return EXIT_REFUSED if result["rejected"] else 0


# Lines per import request while progress shows: finer steps than the daemon's bound, at the
# cost of a request per thousand records.
_PROGRESS_LINES = 1000


def _import_with_progress(lines: list[str], progress: bool | None) -> Any:
    """Imports the lines through the daemon, with a progress bar on stderr if `progress` (or,
    left unsaid, if stderr is a terminal): the JSON or summary on stdout stays as it is."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    errors = Console(stderr=True)
    show = errors.is_terminal if progress is None else progress
    client = current().client()
    if not show:
        return client.import_records(lines)
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
        console=errors,
    ) as bar:  # fmt: skip
        task = bar.add_task("import", total=len(lines))

        def step(sent: int, total: int) -> None:
            bar.update(task, completed=sent, total=total)

        return client.import_records(lines, progress=step, part_lines=_PROGRESS_LINES)
