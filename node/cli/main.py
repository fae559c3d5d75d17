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

from node.cli import network, settle, setup, work  # noqa: F401  (they add their commands)
from node.cli.base import cli
from node.client import DaemonError
from node.errors import (
    ChainError,
    ChainUnavailable,
    ConfigError,
    KeyFileError,
    NodeError,
    TransactionReverted,
)
from protocol import ProtocolError
from storage import StorageError, StoreInUse

_HINTS: tuple[tuple[type[Exception], str], ...] = (
    (StoreInUse, "a node already runs over this data dir; use the other commands, or stop it"),
    (KeyFileError, "check the passphrase (--passphrase-file or WORKWORK_PASSPHRASE) and the data dir"),
    (ConfigError, "check config.toml in the data dir and the flags; see `workwork node start --help`"),
    (StorageError, "see the message: the store's directory is in the data dir"),
    (ProtocolError, "the record was refused; nothing was stored"),
    (ChainUnavailable, "is the chain's endpoint up? check --chain (or [chain] in config.toml)"),
    (TransactionReverted, "the contract refused it; nothing changed on chain"),
    (ChainError, "check --chain and --contract (or [chain] in config.toml)"),
)  # fmt: skip


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
        return _fail(args, exc.format_message(), f"see `{command} --help`", "UsageError", 2)
    except click.Abort:
        return _fail(args, "aborted", "", "Aborted", 1)
    except click.ClickException as exc:
        return _fail(args, exc.format_message(), "", type(exc).__name__, 1)
    except DaemonError as exc:
        return _fail(args, exc.message, exc.hint, exc.type, 1)
    except (NodeError, StorageError, ProtocolError) as exc:
        return _known(args, exc)
    except BaseExceptionGroup as group:
        # The daemon's nursery wraps what failed at start (a store in use, a port taken).
        leaf = _leaf(group)
        if isinstance(leaf, NodeError | StorageError | ProtocolError):
            return _known(args, leaf)
        if isinstance(leaf, OSError):
            return _fail(args, str(leaf), "is the address or port in use?", "OSError", 1)
        raise
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def _known(args: Sequence[str], exc: Exception) -> int:
    hint = next((h for cls, h in _HINTS if isinstance(exc, cls)), "")
    return _fail(args, str(exc), hint, type(exc).__name__, 1)


def _leaf(exc: BaseException) -> BaseException:
    """Returns the one exception inside nested single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
