"""Tokens and pools through the `workwork` command and a real daemon on anvil: amounts in a
token's decimals, the approval line, pools, per-token status, shares and claims, and the typed
refusals a person sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from tests.node.test_tokens_api import deploy_token, mint
from tests.support.anvil import rpc, running_anvil
from tests.support.cli import daemon, ok, run

pytestmark = pytest.mark.slow

ETHER = 10**18
USDC = 10**6


def test_fund_pool_allocate_claim_in_usdc_and_eth(tmp_path: Path) -> None:
    home = tmp_path / "owner"
    wallet = ok(home, "init")["wallet"]
    with running_anvil() as url:
        rpc(url, "anvil_setBalance", [wallet, hex(100 * ETHER)])
        contract = ok(home, "chain", "deploy", "--chain", url)["contract"]
        w3 = Web3(Web3.HTTPProvider(url))
        usdc = deploy_token(w3)
        mint(usdc, Web3.to_checksum_address(wallet), 1000 * USDC)
        chain = ("--chain", url, "--contract", contract, "--confirmations", "0")
        with daemon(home, *chain):
            pid = ok(
                home, "project", "post", "docs", "--title", "Docs", "--skill", "writing",
                "--epoch-length", "0",
            )["project_id"]  # fmt: skip
            work = ok(home, "contribute", pid, "--summary", "one", "--evidence-uri", "https://x")
            ok(home, "accept", work["id"], "--weight", "3", "--epoch", "0")
            ok(home, "epoch", "anchor", pid, "0")

            # A bare number is refused before anything is asked, with a hint naming the units.
            bare = run(home, "fund", pid, "0", "100")
            assert bare.returncode == 2
            assert "error: Invalid value for 'AMOUNT': '100' has no unit" in bare.stderr
            assert "100usdc" in bare.stderr
            # A symbol nobody funded this project in: the hint says to name it by address.
            unknown = run(home, "pool", "fund", pid, "100usdc")
            assert unknown.returncode == 1 and "name the token by its address" in unknown.stderr
            # More decimals than the token has.
            fine = run(home, "pool", "fund", pid, "0.0000001usdc", "--token", usdc.address)
            assert fine.returncode == 2, fine.stderr
            assert "Invalid value for 'AMOUNT': '0.0000001usdc' has more decimals" in fine.stderr
            # More than the wallet holds: typed, with its hint.
            short = run(home, "pool", "fund", pid, "5000usdc", "--token", usdc.address)
            assert short.returncode == 1
            assert "insufficient tokens" in short.stderr and "hint: send the wallet" in short.stderr
            # Without approving: refused, nothing sent.
            plain = run(home, "pool", "fund", pid, "1usdc", "--token", usdc.address, "--no-approve")
            assert plain.returncode == 1 and "insufficient allowance" in plain.stderr

            # Paid into the pool, the approval said in its own line.
            paid = run(home, "pool", "fund", pid, "500usdc", "--token", usdc.address)
            assert paid.returncode == 0, paid.stderr
            assert (
                "Approved the contract to take 500 USDC of your wallet's USDC first" in paid.stdout
            )
            assert "Funded 500 USDC into the pool in tx" in paid.stdout
            allocated = run(home, "pool", "allocate", pid, "0", "150usdc")
            assert "Allocated 150 USDC to epoch 0 in tx" in allocated.stdout, allocated.stderr
            shown = run(home, "pool", "show", pid)
            assert "350 USDC" in shown.stdout and "allocated 150 USDC to epoch 0" in shown.stdout
            funded = run(home, "fund", pid, "0", "1.5ether")
            assert "Funded 1.5 ETH into epoch 0 in tx" in funded.stdout, funded.stderr

            status = ok(home, "epoch", "status", pid)["items"][0]
            assert {t["token"]["symbol"]: t["funded"] for t in status["tokens"]} == {
                "ETH": str(3 * ETHER // 2),
                "USDC": str(150 * USDC),
            }
            human = run(home, "epoch", "status", pid).stdout
            assert "1.5 ETH" in human and "150 USDC" in human
            share = run(home, "share", work["id"]).stdout
            assert "1.5 ETH / 0 ETH" in share and "150 USDC / 0 USDC" in share
            claimed = run(home, "claim", work["id"])
            assert "Paid 1.5 ETH to" in claimed.stdout and "Paid 150 USDC to" in claimed.stdout

            # --force says what it risks (the audit agrees here, so nothing is forced).
            forced = run(home, "fund", pid, "0", "1usdc", "--force")
            assert "warning: --force funds the epoch even if its anchor disagrees" in (
                forced.stdout
            ), forced.stderr

            # Closing the project closes its pools; the funder takes back what is unallocated.
            closed = run(home, "project", "close", pid)
            assert "Pools closed in tx" in closed.stdout, closed.stderr
            back = json.loads(run(home, "--json", "pool", "refund", pid, "--token", "USDC").stdout)
            assert back["amount"] == str(350 * USDC)
