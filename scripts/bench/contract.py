#!/usr/bin/env python3
"""Measures the gas of the settlement contract: anchor, fund, and claim against tree depth.

Gas is exact and the same on every EVM of a fork, so each figure is measured once; the run
checks that eth-tester and anvil (when node_modules has it) agree to the unit. The raw baseline
is a plain transfer of ether (21,000 gas). The part of a transaction's gas that pays for its
calldata (4 per zero byte, 16 per other byte) is split out, since it depends on the bytes of
the root, the proof and the addresses, not on what the contract does.

Run: .venv/bin/python scripts/bench/contract.py [--no-anvil] [--write]
     (--write replaces the "## Chain" section of docs/BENCHMARKS.md with the tables)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.types import Wei

from protocol.contract import artifact
from protocol.merkle import Leaf, MerkleTree

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
COMMAND = ".venv/bin/python scripts/bench/contract.py --write"
PROJECT = hashlib.sha256(b"bench project").digest()
ANCHOR_SIZES = (10, 100_000)
CLAIM_SIZES = (1, 2, 16, 1024, 65_536, 100_000)
ETHER = 10**18
TIMEOUT = 60


def leaves(n: int, tag: str) -> list[Leaf]:
    """Returns n distinct leaves whose payout addresses have never been used."""
    out = []
    for i in range(n):
        seed = hashlib.sha256(f"{tag} {i}".encode()).digest()
        out.append(Leaf(seed, seed[:20], 1 + int.from_bytes(seed[20:23], "big")))
    return out


def calldata_gas(data: bytes) -> int:
    return sum(4 if b == 0 else 16 for b in data)


class Bench:
    """Sends the measured transactions to one backend and records their gas."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.sender = w3.eth.accounts[0]
        built = artifact()
        receipt = self.send(w3.eth.contract(abi=built.abi, bytecode=built.bytecode).constructor())
        self.deploy = int(receipt["gasUsed"])
        self.contract = w3.eth.contract(address=receipt["contractAddress"], abi=built.abi)
        self.epochs = iter(range(1, 1_000_000))

    def send(self, call: Any, value: int = 0) -> Any:
        tx_hash = call.transact({"from": self.sender, "value": Wei(value)})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT)
        assert receipt["status"] == 1, receipt
        return receipt

    def gas(self, call: Any, value: int = 0) -> tuple[int, int]:
        """Sends a call; returns its gas and the part of it that paid for calldata."""
        receipt = self.send(call, value)
        data = bytes(self.w3.eth.get_transaction(receipt["transactionHash"])["input"])
        return int(receipt["gasUsed"]), calldata_gas(data)

    def transfer(self) -> int:
        to = Web3.to_checksum_address(hashlib.sha256(b"bench transfer").digest()[:20])
        self.w3.eth.send_transaction({"from": self.sender, "to": to, "value": Wei(1)})
        tx_hash = self.w3.eth.send_transaction({"from": self.sender, "to": to, "value": Wei(1)})
        return int(self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT)["gasUsed"])

    def anchor(self, tree: MerkleTree, count: int, total: int) -> tuple[int, tuple[int, int]]:
        epoch = next(self.epochs)
        call = self.contract.functions.anchor(PROJECT, epoch, tree.root, count, total)
        return epoch, self.gas(call)

    def fund(self, epoch: int, amount: int) -> tuple[int, int]:
        return self.gas(self.contract.functions.fund(self.sender, PROJECT, epoch), amount)

    def claim(self, epoch: int, tree: MerkleTree, leaf: Leaf) -> tuple[int, int]:
        payout = Web3.to_checksum_address(leaf.payout)
        proof = list(tree.proof(leaf.contribution_id))
        call = self.contract.functions.claim(
            self.sender, PROJECT, epoch, leaf.contribution_id, payout, leaf.weight, proof
        )
        return self.gas(call)

    def prefund(self, leaf: Leaf) -> None:
        """Gives a payout address 1 wei, so that a claim pays an account that exists."""
        to = Web3.to_checksum_address(leaf.payout)
        tx_hash = self.w3.eth.send_transaction({"from": self.sender, "to": to, "value": Wei(1)})
        self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT)


def measure(w3: Web3, trees: dict[int, MerkleTree]) -> dict[str, Any]:
    bench = Bench(w3)
    out: dict[str, Any] = {"deploy": bench.deploy, "transfer": bench.transfer(), "anchor": {}}
    for n in ANCHOR_SIZES:
        tree = trees[n]
        total = sum(leaf.weight for leaf in tree.leaves)
        out["anchor"][n] = bench.anchor(tree, n, total)[1]
    # Anchoring is O(1): whatever the tree, the same execution, only other calldata bytes.
    executions = {used - data for used, data in out["anchor"].values()}
    assert len(executions) == 1, f"anchor's execution gas depends on the tree: {out['anchor']}"

    epoch, _ = bench.anchor(trees[ANCHOR_SIZES[0]], ANCHOR_SIZES[0], 10**9)
    out["fund_first"] = bench.fund(epoch, ETHER)
    out["fund_topup"] = bench.fund(epoch, ETHER)

    out["claim"] = {}
    for n in CLAIM_SIZES:
        tree = trees[n]
        epoch, _ = bench.anchor(tree, n, sum(leaf.weight for leaf in tree.leaves))
        bench.fund(epoch, 100 * ETHER)
        # The deepest leaves: the first ones in tree order, which OpenZeppelin's array layout
        # puts at the end of the array, on the lowest level when the tree is not full.
        deep = tree.leaves[:2] if n > 1 else tree.leaves * 2
        existing, fresh = deep[0], deep[1]
        bench.prefund(existing)
        row: dict[str, Any] = {"depth": len(tree.proof(existing.contribution_id))}
        row["existing"] = bench.claim(epoch, tree, existing)
        bench.fund(epoch, ETHER)
        row["again"] = bench.claim(epoch, tree, existing)
        if n > 1:
            row["fresh"] = bench.claim(epoch, tree, fresh)
        out["claim"][n] = row
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def anvil() -> Iterator[Web3]:
    """Runs anvil on a free loopback port, at the fork the contract is compiled for."""
    port = free_port()
    fork = artifact().settings["evmVersion"]
    args = [ANVIL, "--host", "127.0.0.1", "--port", str(port), "--silent", "--hardfork", fork]
    process = subprocess.Popen(args, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
                request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"anvil did not start on {url}") from None
                time.sleep(0.05)
        yield Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": TIMEOUT}))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        finally:
            # The Node wrapper leads a process group with the real binary in it: kill what is
            # left of it, so that no anvil outlives the benchmark.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def tables(result: dict[str, Any], backends: list[str], build_s: dict[int, float]) -> str:
    def gas(pair: tuple[int, int]) -> str:
        used, data = pair
        return f"{used:,} ({used - 21_000 - data:,})"

    lines = [
        textwrap.fill(
            "Gas used by each transaction; in brackets, the gas of its execution alone (minus the"
            " 21,000 of any transaction and the calldata's 4 or 16 per byte). Backends that agreed"
            f" to the unit: {', '.join(backends)} (fork {artifact().settings['evmVersion']}).",
            width=96,
            break_on_hyphens=False,
        ),
        "",
        "| transaction | gas (execution) |",
        "|---|---|",
        f"| baseline: plain transfer of ether to an existing account | {result['transfer']:,} |",
        f"| deploy the contract | {result['deploy']:,} |",
    ]
    for n, pair in result["anchor"].items():
        lines.append(f"| `anchor`, tree of {n:,} leaves | {gas(pair)} |")
    lines += [
        f"| `fund`, first funding of an epoch | {gas(result['fund_first'])} |",
        f"| `fund`, top-up | {gas(result['fund_topup'])} |",
        "",
        "`claim` against the size of the tree (the leaf's first claim unless said otherwise):",
        "",
        "| leaves | proof length | payout account exists | payout account is new | claim again"
        " after a top-up | tree build (Python) |",
        "|---|---|---|---|---|---|",
    ]
    for n, row in result["claim"].items():
        fresh = gas(row["fresh"]) if "fresh" in row else "-"
        lines.append(
            f"| {n:,} | {row['depth']} | {gas(row['existing'])} | {fresh} | {gas(row['again'])}"
            f" | {build_s[n]:.2f} s |"
        )
    claims = result["claim"]
    small, big = claims[CLAIM_SIZES[0]], claims[CLAIM_SIZES[-1]]
    levels = big["depth"] - small["depth"]
    per_level = (big["existing"][0] - small["existing"][0]) / levels
    per_level_exec = (
        big["existing"][0] - big["existing"][1] - small["existing"][0] + small["existing"][1]
    ) / levels
    summary = (
        f"Each level of the tree adds {per_level:.0f} gas to a claim, {per_level_exec:.0f} of it"
        " execution (a keccak and the loop) and the rest the 32 bytes of calldata: a claim in a"
        f" tree of {CLAIM_SIZES[-1]:,} leaves costs {big['existing'][0] / result['transfer']:.2f}x"
        f" a plain transfer, against {small['existing'][0] / result['transfer']:.2f}x for a tree"
        " of one leaf. A payout account that does not exist yet costs 25,000 more (the EVM's"
        " price of a new account). `anchor` writes the same two storage slots whatever the"
        " tree's size, so its execution gas is the same for every size; the totals differ only"
        " by the calldata bytes of the root and the counts."
    )
    lines += ["", textwrap.fill(summary, width=96, break_on_hyphens=False)]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """Replaces the "## Chain" section of docs/BENCHMARKS.md, or appends one; leaves the rest."""
    section = f"## Chain\n\n### Gas of the settlement contract\n\n`{COMMAND}`\n\n{text}\n"
    current = DOCS.read_text()
    start = current.find("\n## Chain\n")
    if start == -1:
        updated = current.rstrip("\n") + "\n\n" + section
    else:
        end = current.find("\n## ", start + 1)
        rest = "" if end == -1 else current[end:]
        updated = current[: start + 1] + section + rest
    DOCS.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-anvil", action="store_true", help="measure on eth-tester only")
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args()

    trees: dict[int, MerkleTree] = {}
    build_s: dict[int, float] = {}
    for n in sorted({*ANCHOR_SIZES, *CLAIM_SIZES}):
        data = leaves(n, f"bench {n}")
        start = time.perf_counter()
        trees[n] = MerkleTree.build(data)
        build_s[n] = time.perf_counter() - start

    result = measure(Web3(Web3.EthereumTesterProvider()), trees)
    backends = ["eth-tester (py-evm)"]
    if not args.no_anvil and ANVIL.exists():
        with anvil() as w3:
            other = measure(w3, trees)
        if other != result:
            raise SystemExit(f"anvil and eth-tester disagree:\n{other}\n{result}")
        backends.append("anvil")
    text = tables(result, backends, build_s)
    print(text)
    if args.write:
        write_docs(text)
        print(f"\nwrote the Chain section of {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
