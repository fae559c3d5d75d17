"""The entry point of `workwork`: runs the command line and turns failures into exit codes.

Importing the command modules adds their commands to the root group of node/cli/base.py. A
failure prints `error: <message>` and `hint: <what to try>` on stderr (and the error object on
stdout with --json) and exits with 2 for a usage error, 1 for anything else.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import click

from node.cli import decide, evidence, match, network, settle, setup, store, wallet, work  # noqa: F401  (they add their commands)
from node.cli.base import cli
from node.client import DaemonError
from node.errors import BUG, outcome, single
from storage import StorageError


def _fail(args: Sequence[str], message: str, hint: str, kind: str, code: int) -> int:
    if "--json" in args:
        click.echo(json.dumps({"error": {"type": kind, "message": message, "hint": hint}}))
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (the console script's entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="workwork", standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "workwork"
        # A usage error may know better what to try than the command's help (an amount's units).
        hint = getattr(exc, "hint", None) or f"see `{command} --help`"
        return _fail(args, exc.format_message(), hint, "UsageError", 2)
    except click.Abort:
        return _fail(args, "aborted", "", "Aborted", 1)
    except click.ClickException as exc:
        return _fail(args, exc.format_message(), "", type(exc).__name__, 1)
    except DaemonError as exc:
        return _fail(args, exc.message, exc.hint, exc.type, 1)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        # The daemon's nurseries wrap what failed at start (a store in use, a port taken).
        leaf = single(exc)
        if isinstance(leaf, KeyboardInterrupt):
            return 130
        if isinstance(leaf, OSError) and not isinstance(leaf, StorageError):
            return _fail(args, str(leaf), "is the address or port in use?", "OSError", 1)
        result = outcome(leaf)
        if result is BUG or not isinstance(leaf, Exception):
            raise
        return _fail(args, str(leaf), result.hint, type(leaf).__name__, result.exit)
    return result if isinstance(result, int) else 0
