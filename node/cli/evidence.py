"""`workwork evidence`: evidence files others can open, stored on the node and fetched from peers.

`put` stores a file on the running node (which serves it to peers once a contribution names
it); `get` fetches the file a contribution names, from the node or through it from its peers
over `/workwork/evidence/1`, and checks its sha256 here again: the node's word is not taken.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from node.cli.base import ID, cli, current, emit, examples, output
from protocol.uri import workwork_digest


@cli.group(
    epilog=examples(
        "workwork evidence put report.pdf",
        "workwork evidence get <contribution id> -o report.pdf",
    )
)
def evidence() -> None:
    """Evidence files: store one on your node, fetch the one a contribution names."""


@evidence.command(
    "put",
    epilog=examples(
        "workwork evidence put report.pdf",
        "workwork contribute <project id> --summary 'The report' --evidence report.pdf",
    ),
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output
def put(file: Path) -> None:
    """Store FILE on your node; prints the workwork:sha256 URI to contribute with.

    Peers can fetch it once a contribution names it (`contribute --evidence FILE` does both).
    """
    stored = current().client().put_evidence(file.read_bytes())

    def human(console: Console, data: dict[str, Any]) -> None:
        console.print(data["uri"], markup=False, highlight=False, soft_wrap=True)
        console.print(f"{data['size']:,} bytes, sha256 {data['sha256']}", soft_wrap=True)

    emit(stored, human)


@evidence.command(
    "get",
    epilog=examples(
        "workwork evidence get <contribution id>",
        "workwork evidence get <contribution id> -o work.md",
        "workwork evidence get <contribution id> -o - | less",
    ),
)
@click.argument("contribution_id", type=ID)
@click.option(
    "-o",
    "--output",
    "target",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write the file ('-': standard output). Default: evidence-<sha256 prefix> "
    "in the current directory.",
)
@output
def get(contribution_id: str, target: Path | None) -> None:
    """Fetch the file a contribution names by hash, from your node or its peers, and check it.

    The node asks its connected peers if it does not hold the file, keeps what it fetched,
    and answers; the bytes are checked against the contribution's sha256 here as well.
    """
    client = current().client()
    fields = client.contribution(contribution_id)["fields"]
    expected = workwork_digest(fields["evidence_uri"])
    if expected is None and len(fields["evidence_hash"]) == 64:
        expected = bytes.fromhex(fields["evidence_hash"])
    data = client.contribution_evidence(contribution_id)
    actual = hashlib.sha256(data).digest()
    if expected is None or actual != expected:
        raise click.ClickException(
            f"the node answered bytes of sha256 {actual.hex()}, not the file the contribution "
            "names: nothing was written"
        )
    if str(target) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = target or Path(f"evidence-{actual.hex()[:12]}")
    path.write_bytes(data)

    def human(console: Console, result: dict[str, Any]) -> None:
        console.print(
            f"Wrote {result['path']}: {result['size']:,} bytes, sha256 {result['sha256']} "
            "(checked)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    emit({"path": str(path), "size": len(data), "sha256": actual.hex()}, human)
