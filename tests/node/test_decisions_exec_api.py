"""A passed allocation through a running daemon: the owner's node decides it, executes it on
its chain, and the API, the client and the CLI show the decision, the transaction and an audit
that agrees."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner
from eth_account import Account

import node.cli.main  # noqa: F401  (registers the commands)
from node.cli.base import cli
from node.client import Client, DaemonError
from node.config import ChainConfig, NetworkConfig
from node.daemon import Daemon
from node.home import Home, Settings
from node.keys import Identity
from node.net.node import STRICT_IO_ENV
from protocol import decode
from tests.support import factories as f
from tests.support.epochs import ingest, records

ETHER = 10**18


def invoke(root: Path, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--data-dir", str(root), "--json", *args])
    return result.exit_code, json.loads(result.output)


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def test_an_allocation_decided_executed_and_audited_through_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STRICT_IO_ENV, "1")
    root = tmp_path / "n"
    root.mkdir()
    owner = Identity(f.key("alice"), Account.create())
    now = [f.T0 + 100.0]
    chain = ChainConfig(poll_interval=0.05, settle=1.0)
    settings = Settings(network=NetworkConfig(sync_interval=3600.0), chain=chain)
    running = Daemon(Home(root), owner, settings, clock=lambda: now[0])
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(running.run)
            try:
                assert running.node is not None and running.settlement is not None
                client = await call(Client.connect, root)
                await ingest(running.node, records(owner))
                pid = f.pid().hex()
                await call(client.anchor, pid, 0)
                await call(client.fund_pool, pid, ETHER)
                asked = await call(
                    client.propose,
                    pid,
                    "allocate",
                    "Pay epoch 0",
                    params={"epoch": 0, "amount": str(ETHER // 4)},
                    window=60,
                )
                question = decode(bytes.fromhex(asked["raw"]))
                at = {"created_at": question.body.created_at + 10}
                votes = [
                    f.vote(question, "carol", "yes", **at),
                    f.vote(question, "bob", "no", **at),
                ]
                await ingest(running.node, votes, now=now[0])
                shown = await call(client.proposal, asked["id"])
                assert shown["decision"] is None and shown["open"]

                now[0] = question.body.closes_at + 2.0
                await running.settlement.executor.round()
                shown = await call(client.proposal, asked["id"])
                decided = shown["decision"]
                assert decided is not None and decided["valid"] and decided["findings"] == []
                assert decided["record"]["kind"] == "decision"
                assert (shown["outcome"], shown["yes"], shown["no"]) == ("passed", "4", "2")
                allocations = running.settlement.chain.allocations(
                    running.settlement.chain.sender, f.pid()
                )
                assert [(a.epoch, a.amount) for a in allocations] == [(0, ETHER // 4)]
                assert decided["executed_tx"] == "0x" + allocations[0].tx_hash.hex()

                report = await call(client.audit_decisions, pid)
                assert report["ok"], report["summary"]
                with pytest.raises(DaemonError) as caught:
                    await call(client.audit_decisions, "ab" * 32)
                assert (caught.value.status, caught.value.type) == (404, "NotFound")
                assert report["proposals"][0]["execution"] == decided["executed_tx"]

                code, out = await call(invoke, root, "proposal", "show", asked["id"])
                assert code == 0 and out["decision"]["executed_tx"] == decided["executed_tx"]
                code, out = await call(invoke, root, "audit", pid, "--decisions")
                assert code == 0 and out["ok"]
                code, out = await call(invoke, root, "audit", pid, "0", "--decisions")
                assert code == 0 and out["ok"] and out["epoch"]["ok"]
                # Human output: the tally is final and names the transaction.
                text = await call(
                    CliRunner().invoke,
                    cli,
                    ["--data-dir", str(root), "proposal", "show", asked["id"]],
                )
                assert "final" in text.output and decided["executed_tx"] in text.output
                text = await call(CliRunner().invoke, cli, ["--data-dir", str(root), "audit", pid])
                assert text.exit_code != 0 and "--decisions" in text.output
            finally:
                running.stop()
