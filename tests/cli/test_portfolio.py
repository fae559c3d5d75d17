"""A portfolio as people use it (issue 14): a contributor exports its anchored work on its own
node, and anyone verifies the file elsewhere, with no daemon and no keys, offline and against
the chain (anvil); an edited byte is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.anvil import rpc, running_anvil
from tests.support.cli import daemon, ok, run, wait_until

# Slow (real daemons and anvil): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow


def test_a_portfolio_exported_on_one_node_verifies_anywhere(tmp_path: Path) -> None:
    owner, worker, auditor = tmp_path / "owner", tmp_path / "worker", tmp_path / "auditor"
    wallets = {home: ok(home, "init")["wallet"] for home in (owner, worker)}
    with running_anvil() as url:
        for wallet in wallets.values():
            rpc(url, "anvil_setBalance", [wallet, hex(10**20)])
        contract = ok(owner, "chain", "deploy", "--chain", url)["contract"]
        chain = ("--chain", url, "--contract", contract)
        with daemon(owner, *chain):
            addr = ok(owner, "status")["addrs"][0]
            pid = ok(owner, "project", "post", "docs", "--title", "Docs", "--epoch-length", "0")[
                "project_id"
            ]
            with daemon(worker, *chain, "--bootstrap", addr):
                wait_until(lambda: run(worker, "project", "show", pid).returncode == 0, timeout=20)
                paid = ok(
                    worker,
                    "contribute",
                    pid,
                    "--summary",
                    "Wrote it",
                    "--evidence-uri",
                    "https://example.org/w",
                )
                waiting = ok(
                    worker,
                    "contribute",
                    pid,
                    "--summary",
                    "More",
                    "--evidence-uri",
                    "https://example.org/v",
                )
                wait_until(
                    lambda: len(ok(owner, "contributions", "--project", pid)) == 2, timeout=20
                )
                ok(owner, "accept", paid["id"], "--weight", "3", "--epoch", "0")
                ok(owner, "epoch", "anchor", pid, "0")
                ok(owner, "fund", pid, "0", "1ether")
                wait_until(lambda: ok(worker, "share", paid["id"])["anchored"], timeout=20)
                assert ok(worker, "claim", paid["id"])["amount"] == str(10**18)

                file = tmp_path / "portfolio.json"
                exported = ok(worker, "portfolio", "export", str(file))
                assert exported["contributions"] == 1
                assert [c["contribution_id"] for c in exported["left_out"]] == [waiting["id"]]

        # Elsewhere, with no daemon running and no keys: offline, then against the chain.
        checked = ok(auditor, "portfolio", "verify", str(file))
        assert (checked["contributions"], checked["on_chain"]) == (1, False)
        checked = ok(auditor, "portfolio", "verify", str(file), "--rpc", url)
        assert checked["on_chain"] and checked["total_weight"] == "3"
        (entry,) = checked["entries"]
        assert entry["contribution_id"] == paid["id"]
        assert [p["claimed"] for p in entry["paid"]] == [str(10**18)]

        # An edited weight is named, and the command fails.
        data = json.loads(file.read_text())
        data["entries"][0]["proof"]["leaf"]["weight"] = 30
        edited = tmp_path / "edited.json"
        edited.write_text(json.dumps(data))
        done = run(auditor, "--json", "portfolio", "verify", str(edited))
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "entries[0].proof.leaf.weight" in json.loads(done.stdout)["error"]["message"]
