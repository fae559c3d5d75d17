"""A child process for the kill -9 test of executions: run as a script, never collected.

python tests/node/execution_child.py DATA_DIR ANVIL_URL CONTRACT WALLET_KEY

Runs a node over DATA_DIR with alice's test project (anchoring from WALLET_KEY) and its epoch
0, anchors it (or finds it anchored), stores bob's proposal to allocate from the pool and the
votes on it, prints "ready", then runs executor rounds (the clock stands after the window)
until the decision is executed, prints "executed <tx hash>" and exits 0.
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
from tests.support import allocations as al
from tests.support import factories as f
from tests.support.epochs import ingest, records, strict_node


async def main(data_dir: Path, url: str, contract: str, wallet_key: str) -> None:
    owner = Identity(f.key("alice"), Account.from_key(wallet_key))
    config = ChainConfig(
        backend="rpc", url=url, contract=contract, poll_interval=0.02, settle=al.SETTLE
    )
    chain = ChainClient.connect(url, contract, owner.wallet, config=config)
    question = al.proposal()
    async with strict_node(data_dir) as node:
        await ingest(node, records(owner))
        settle = Settlement(node, owner, chain, data_dir, clock=lambda: al.after(question))
        await settle.anchor(f.pid(), 0)
        await ingest(node, [question, *al.votes(question)], now=f.T0 + 200)
        print("ready", flush=True)
        while not await node.gateway.read(settle.executor.executed):
            await settle.executor.round()
        (done,) = await node.gateway.read(settle.executor.executed)
        print(f"executed {done.tx_hash.hex()}", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
