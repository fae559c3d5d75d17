"""The frame of the `workwork` command: the root group, its state, and how results are shown.

Every command module (node/cli/setup.py, network.py, work.py, settle.py) adds its commands to
`cli` and shows results with the helpers here: `@output` gives a command `--json`, `emit`
prints the API's JSON for scripts or a rendering for people (`pairs`, `table`, `record`).
Nothing here imports the command modules; node/cli/main.py brings them together.
"""

from __future__ import annotations

import json
import re
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
    # Full ids in tables (`--wide`); else they are shortened to a prefix that still names them.
    wide: bool = False
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


def _set_wide(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        current().wide = True


def output(fn: F) -> F:
    """Adds `--json` and `--wide` to a command, so they are accepted after its name too."""
    fn = click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_set_wide,
        help="Show full ids in tables (else the first 12 digits, which name them as well).",
    )(fn)
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


# Digits of an id that a table shows without --wide: commands take them as the id (`RecordId`).
SHORT = 12
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PEER_ID = re.compile(r"(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{38,}")


def short(value: str) -> str:
    """Returns an id as a table shows it: 64 hex digits as their first 12 and `…`, a peer id as
    its first 12 characters and last 6; anything else as it is."""
    if _HEX64.fullmatch(value):
        return value[:SHORT] + "…"
    if _PEER_ID.fullmatch(value):
        return f"{value[:12]}…{value[-6:]}"
    return value


def command_id(value: str) -> str:
    """Returns an id as a suggested command line gives it: the first SHORT hex digits (which
    `RecordId` takes back as the id), or whole with `--wide`; so that the line fits 80 columns
    and copies in one piece."""
    if _HEX64.fullmatch(value) and not current().wide:
        return value[:SHORT]
    return value


def suggest(console: Console, text: str) -> None:
    """Prints a line that suggests a command: never wrapped by rich, never read as markup."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


class IdTable(Table):
    """A table that never wraps an id: ids are shortened to a prefix that commands take, or with
    `--wide` shown whole in a column that does not wrap; other cells fold instead of being cut."""

    def __init__(self, *headers: str, wide: bool) -> None:
        super().__init__()
        self.wide = wide
        for header in headers:
            self.add_column(header, overflow="fold")

    def add_row(self, *renderables: Any, **options: Any) -> None:
        cells = []
        for column, cell in zip(self.columns, renderables, strict=False):
            text = cell.plain if isinstance(cell, Text) else cell
            if isinstance(text, str) and short(text) != text:
                if self.wide:
                    column.no_wrap = True
                else:
                    cell = short(text)
            cells.append(cell)
        cells.extend(renderables[len(cells) :])
        super().add_row(*cells, **options)


def new_table(*headers: str) -> Table:
    """Returns a table for people (`IdTable`): ids shortened unless `--wide`, cells folded."""
    return IdTable(*headers, wide=current().wide)


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
@click.option("--wide", is_flag=True, help="Show full ids in tables.")
@click.version_option(__version__, prog_name="workwork")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, as_json: bool, wide: bool) -> None:
    """WorkWork: a peer-to-peer node for decentralized work.

    Post projects, contribute, accept contributions; records are signed and gossiped over
    libp2p. Run `workwork init` once, then `workwork node start`; the other commands talk to
    the running node.
    """
    ctx.obj = State(Home.locate(data_dir), as_json, wide)
