"""A daemon whose disk fills up on demand, for the full-disk test: run as a script, never collected.

python tests/node/full_disk_child.py DATA_DIR BOOTSTRAP_ADDR

Runs a daemon (a bootstrap-role node syncing every second, its API, an embedded chain) over
DATA_DIR, dialing BOOTSTRAP_ADDR, and prints "ready" once its API answers. On SIGUSR2 the disk
is "full": the limit on file sizes (RLIMIT_FSIZE) drops to the size of the store's current
LevelDB log, so that its next write fails with EFBIG, as on a full disk; it prints "full". On
SIGUSR1 space returns: the limit is lifted, and it prints "space". SIGTERM stops it cleanly.
"""

from __future__ import annotations

import logging
import resource
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import trio
from eth_account import Account

from node.config import ApiConfig, ChainConfig, NetworkConfig
from node.daemon import Daemon
from node.home import Home, Settings
from node.keys import Identity
from tests.support import factories as f


def fill(store: Path) -> None:
    newest = max(store.glob("*.log"), key=lambda p: p.stat().st_mtime)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (newest.stat().st_size, hard))


def free() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


async def main(data_dir: Path, bootstrap: str) -> None:
    # Logs to stderr only: a log file would meet the file size limit too.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("libp2p").setLevel(logging.WARNING)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so that a write past the limit fails: EFBIG
    settings = Settings(
        # The authors' rations are on, as in production; the keys of the factories carry no
        # proof of work, so the network's difficulty is 0 here (as on dev networks).
        network=NetworkConfig(
            role="bootstrap", bootstrap=(bootstrap,), sync_interval=1.0, key_difficulty=0
        ),
        chain=ChainConfig(backend="embedded"),
        api=ApiConfig(),
    )
    identity = Identity(f.key("carol"), Account.create())
    daemon = Daemon(Home(data_dir), identity, settings)
    with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.run)
            print("ready", flush=True)
            async for signum in signals:
                if signum == signal.SIGUSR2:
                    fill(data_dir / "store")
                    print("full", flush=True)
                elif signum == signal.SIGUSR1:
                    free()
                    print("space", flush=True)
                else:
                    daemon.stop()
                    return


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2])
