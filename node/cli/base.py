"""The frame of the `workwork` command: the root group, its state, and how results are shown.

Every command module (node/cli/setup.py, network.py, work.py, settle.py) adds its commands to
`cli` and shows results with the helpers here: `@output` gives a command `--json`, `emit`
prints the API's JSON for scripts or a rendering for people (`pairs`, `table`, `record`).
Nothing here imports the command modules; node/cli/main.py brings them together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from node import __version__
from node.client import Client
from node.home import Home

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """What every command knows: the data dir and the output mode."""

    home: Home
    json: bool = False
    console: Console = field(default_factory=Console)

    def client(self) -> Client:
        return Client.connect(self.home.root)


def current() -> State:
    return click.get_current_context().find_object(State) or State(Home.locate())


class RecordId(click.ParamType[str]):
    """An id as people write it: 64 hex digits, or (as git takes commits) the first 4 or more
    of them when they name one stored record or project; `0x` and upper case are accepted. A
    short id is looked up by the running daemon (`GET /v1/ids/{prefix}`)."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        text = text.removeprefix("0x")
        if not text or any(c not in "0123456789abcdef" for c in text):
            self.fail(f"{value!r} is not an id: ids are hex digits (0-9, a-f)", param, ctx)
        if len(text) > 64:
            self.fail(f"{value!r} is longer than an id (64 hex digits)", param, ctx)
        if len(text) == 64:
            return text
        if len(text) < 4:
            self.fail(f"{value!r} is too short: give at least 4 hex digits of the id", param, ctx)
        matches = current().client().complete_id(text)["matches"]
        if not matches:
            self.fail(f"no record or project this node holds begins with {text}", param, ctx)
        if len(matches) > 1:
            named = ", ".join(f"{m['id'][:16]}… ({m['kind']})" for m in matches)
            self.fail(f"{text} begins several ids ({named}): give more digits", param, ctx)
        return str(matches[0]["id"])


ID = RecordId()


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        current().json = True


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
    state = current()
    if state.json:
        click.echo(json.dumps(data, indent=2))
    else:
        human(state.console, data)


def plain(value: Any) -> Text:
    """Returns a value as text to print as it is: what other people's records say (a title, a
    profile's about text) is never read as rich markup, which could restyle the output or, with
    a stray closing tag, fail it."""
    return Text(str(value))


def show_pairs(console: Console, rows: Iterable[tuple[str, Any]]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        table.add_row(key, plain("-" if value in ("", None) else value))
    console.print(table)


def new_table(*headers: str) -> Table:
    """Returns a table whose cells fold instead of being cut: ids must stay copyable."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def show_record(console: Console, data: dict[str, Any]) -> None:
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
    show_pairs(console, rows)


EXAMPLES = "\b\nExamples:\n"


def examples(*lines: str) -> str:
    return EXAMPLES + "\n".join(f"  {line}" for line in lines)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=examples(
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
