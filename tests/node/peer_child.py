"""A node in a child process, for the tests that kill a peer: run as a script, never collected.

python tests/node/peer_child.py DATA_DIR [BOOTSTRAP_ADDR]

Runs a bootstrap-role node over DATA_DIR (whose store the test filled) on a free loopback port,
dialing BOOTSTRAP_ADDR if given, prints its first address on a line of its own once it runs,
and runs until it is killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import trio

from node.config import NetworkConfig
from node.net.node import Node


async def main(data_dir: Path, bootstrap: tuple[str, ...]) -> None:
    config = NetworkConfig(role="bootstrap", bootstrap=bootstrap, sync_interval=3600.0)
    async with trio.open_nursery() as nursery:
        node = await nursery.start(Node(data_dir, config).run)
        print(node.addrs()[0], flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), tuple(sys.argv[2:3]))
