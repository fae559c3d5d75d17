"""A child process for the kill -9 test of the settlement service: run as a script, never collected.

python tests/node/settlement_child.py DATA_DIR ANVIL_URL CONTRACT WALLET_KEY EPOCHS RUN

Runs a node over DATA_DIR, stores a project of the test owner "alice" (anchoring from the wallet
WALLET_KEY) with accepted contributions in epochs 0..EPOCHS-1, and one more contribution of this
run (number RUN) accepted into each of them, as work keeps arriving between restarts: into an
epoch whose tree an earlier run fixed (its intent recorded), or anchored, it is late. Resumes
whatever a previous run left unfinished, prints "ready", then anchors every epoch in turn,
printing "anchored <epoch> <tx hash>" after each, and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import trio
from eth_account import Account

from node.chain.client import ChainClient
from node.chain.settlement import Settlement
from node.config import ChainConfig
from node.keys import Identity
from tests.support import factories as f
from tests.support.epochs import ingest, records, strict_node


async def main(
    data_dir: Path, url: str, contract: str, wallet_key: str, epochs: int, run: int
) -> None:
    owner = Identity(f.key("alice"), Account.from_key(wallet_key))
    config = ChainConfig(backend="rpc", url=url, contract=contract, poll_interval=0.02)
    chain = ChainClient.connect(url, contract, owner.wallet, config=config)
    async with strict_node(data_dir) as node:
        await ingest(node, records(owner, epochs=tuple(range(epochs))))
        works = [f.contribution("dave", summary=f"run {run}, epoch {e}") for e in range(epochs)]
        more = [f.acceptance(w, epoch=e, weight=run + 1) for e, w in enumerate(works)]
        await ingest(node, [*works, *more])
        settle = Settlement(node, owner, chain, data_dir, auto_close=False, clock=lambda: f.T0 + 60)
        await settle.resume()
        print("ready", flush=True)
        for epoch in range(epochs):
            done = await settle.anchor(f.pid(), epoch)
            print(f"anchored {epoch} {done.tx_hash.hex()}", flush=True)


if __name__ == "__main__":
    trio.run(
        main, Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
        int(sys.argv[6]),
    )  # fmt: skip
