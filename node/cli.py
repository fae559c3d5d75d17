"""The `workwork` command.

For now it only reports its version; the commands of the node (init, node start, project post,
contribute, accept, ...) arrive with the product work.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from node import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="workwork",
        description="A peer-to-peer node for decentralized work.",
    )
    parser.add_argument("--version", action="version", version=f"workwork {__version__}")
    parser.parse_args(argv)
    print(f"workwork {__version__}: no commands yet; see README.md")
    return 0
