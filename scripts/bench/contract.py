#!/usr/bin/env python3
"""Measures the gas of the settlement contract: anchor, fund, and claim against tree depth;
funding and claims per kind of token; refunds, redirects and pools.

Gas is exact and the same on every EVM of a fork, so each figure is measured once; the run
checks that eth-tester and anvil (when node_modules has it) agree to the unit. The raw baseline
is a plain transfer of ether (21,000 gas). The part of a transaction's gas that pays for its
calldata (4 per zero byte, 16 per other byte) is split out, since it depends on the bytes of
the root, the proof and the addresses, not on what the contract does. The tokens are the test
tokens of tests/chain/contracts/Tokens.sol, which behave as their kinds do on mainnet.

Run: .venv/bin/python scripts/bench/contract.py [--no-anvil] [--write]
     (--write replaces the "Gas of the settlement contract" part of docs/BENCHMARKS.md)
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

from eth_account import Account
from web3 import Web3
from web3.types import Wei

from protocol.contract import artifact, redirect_typed_data
from protocol.merkle import Leaf, MerkleTree

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
TEST_CONTRACTS = ROOT / "tests" / "chain" / "contracts"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
COMMAND = ".venv/bin/python scripts/bench/contract.py --write"
PROJECT = hashlib.sha256(b"bench project").digest()
ANCHOR_SIZES = (10, 100_000)
CLAIM_SIZES = (1, 2, 16, 1024, 65_536, 100_000)
ETHER = 10**18
TIMEOUT = 60
ZERO = "0x" + "00" * 20
YEAR = 366 * 24 * 3600
# Each kind of token: its test contract and constructor, and the unit of its amounts.
TOKENS = {
    "ether": None,
    "ERC-20, 18 decimals": ("TestToken", ("Test", "TST", 18), 10**18),
    "stablecoin, 6 decimals": ("TestToken", ("USD", "USDC", 6), 10**6),
    "USDT-style (no return value)": ("NoReturnToken", (), 10**6),
    "fee on transfer (1%)": ("FeeToken", (100,), 10**18),
}
# The token claims are measured in a tree of 16 leaves (a proof of 4).
TOKEN_TREE = 16


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

    def __init__(self, w3: Web3, accounts: tuple[str, str]) -> None:
        self.w3 = w3
        self.sender, self.other = accounts
        built = artifact()
        receipt = self.send(w3.eth.contract(abi=built.abi, bytecode=built.bytecode).constructor())
        self.deploy = int(receipt["gasUsed"])
        self.contract = w3.eth.contract(address=receipt["contractAddress"], abi=built.abi)
        self.epochs = iter(range(1, 1_000_000))

    def send(self, call: Any, value: int = 0, sender: str | None = None) -> Any:
        tx = {"from": sender or self.sender, "value": Wei(value)}
        tx_hash = call.transact(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT)
        assert receipt["status"] == 1, receipt
        return receipt

    def gas(self, call: Any, value: int = 0, sender: str | None = None) -> tuple[int, int]:
        """Sends a call; returns its gas and the part of it that paid for calldata."""
        receipt = self.send(call, value, sender)
        data = bytes(self.w3.eth.get_transaction(receipt["transactionHash"])["input"])
        return int(receipt["gasUsed"]), calldata_gas(data)

    def deploy_test(self, name: str, *args: Any) -> Any:
        """Deploys a test-only contract of tests/chain/contracts (a token, a wallet)."""
        data = json.loads((TEST_CONTRACTS / f"{name}.json").read_text())
        factory = self.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
        receipt = self.send(factory.constructor(*args))
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=data["abi"])

    def warp(self, seconds: int) -> None:
        """Moves the chain's clock ahead, past an expiry."""
        provider = self.w3.provider
        if isinstance(provider, Web3.EthereumTesterProvider):
            tester = provider.ethereum_tester
            tester.time_travel(int(self.w3.eth.get_block("latest")["timestamp"]) + seconds)
        else:
            provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
            provider.make_request("evm_mine", [])  # type: ignore[arg-type]

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


def measure_tokens(bench: Bench, tree: MerkleTree) -> dict[str, Any]:
    """Funding and claims per kind of token: first funding and a top-up by the same funder;
    a leaf's first claim when its payout holds the token already and when it does not; a claim
    again after a top-up."""
    contract, me = bench.contract, bench.sender
    out: dict[str, Any] = {}
    for name, spec in TOKENS.items():
        epoch = next(bench.epochs)
        total = sum(leaf.weight for leaf in tree.leaves)
        bench.send(contract.functions.anchor(PROJECT, epoch, tree.root, len(tree), total))
        existing, fresh = tree.leaves[0], tree.leaves[1]
        row: dict[str, Any] = {}
        if spec is None:
            address = ZERO
            row["fund_first"] = bench.fund(epoch, 100 * ETHER)
            row["fund_topup"] = bench.fund(epoch, ETHER)
            bench.prefund(existing)
        else:
            contract_name, args, unit = spec
            token = bench.deploy_test(contract_name, *args)
            address = token.address
            bench.send(token.functions.mint(me, 10**12 * unit))
            bench.send(token.functions.approve(contract.address, 10**12 * unit))
            fund = contract.functions.fundToken
            row["fund_first"] = bench.gas(fund(me, PROJECT, epoch, address, 100 * unit))
            row["fund_topup"] = bench.gas(fund(me, PROJECT, epoch, address, unit))
            bench.send(token.functions.mint(Web3.to_checksum_address(existing.payout), 1))

        def claim(leaf: Leaf, address: str = address, epoch: int = epoch) -> tuple[int, int]:
            payout = Web3.to_checksum_address(leaf.payout)
            proof = list(tree.proof(leaf.contribution_id))
            call = contract.functions.claimToken(
                me, PROJECT, epoch, address, leaf.contribution_id, payout, leaf.weight, proof
            )
            return bench.gas(call)

        row["claim_existing"] = claim(existing)
        row["claim_fresh"] = claim(fresh)
        if spec is None:
            bench.fund(epoch, ETHER)
        else:
            bench.send(contract.functions.fundToken(me, PROJECT, epoch, address, spec[2]))
        row["claim_again"] = claim(existing)
        out[name] = row
    return out


def measure_exits(bench: Bench, tree: MerkleTree) -> dict[str, Any]:
    """Redirected claims, refunds after the expiry, and pools."""
    w3, contract, me = bench.w3, bench.contract, bench.sender
    out: dict[str, Any] = {}
    total = sum(leaf.weight for leaf in tree.leaves)
    chain_id = w3.eth.chain_id
    # Where redirected claims go: an account that exists, as in the claims table's first column.
    to = Web3.to_checksum_address(hashlib.sha256(b"bench redirect").digest()[:20])
    tx_hash = w3.eth.send_transaction({"from": me, "to": to, "value": Wei(1)})
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT)

    # A redirect signed by an ordinary account (ECDSA), and by a contract wallet (ERC-1271).
    signer = Account.from_key(hashlib.sha256(b"bench signer").digest())
    wallet = bench.deploy_test("SigningWallet", signer.address)
    for label, payout in [("ecdsa", signer.address), ("erc1271", wallet.address)]:
        epoch = next(bench.epochs)
        leaf = Leaf(hashlib.sha256(label.encode()).digest(), bytes.fromhex(payout[2:]), 1)
        leaves = [leaf, *tree.leaves[: TOKEN_TREE - 1]]
        merkle = MerkleTree.build(leaves)
        weight = 1 + sum(x.weight for x in tree.leaves[: TOKEN_TREE - 1])
        bench.send(contract.functions.anchor(PROJECT, epoch, merkle.root, len(leaves), weight))
        bench.fund(epoch, ETHER)
        deadline = 2**40
        message = redirect_typed_data(
            chain_id=chain_id,
            contract=bytes.fromhex(contract.address[2:]),
            owner=bytes.fromhex(me[2:]),
            project_id=PROJECT,
            epoch=epoch,
            contribution_id=leaf.contribution_id,
            payout=leaf.payout,
            weight=leaf.weight,
            to=bytes.fromhex(to[2:]),
            deadline=deadline,
        )
        signature = bytes(signer.sign_typed_data(full_message=message).signature)
        call = contract.functions.claimTo(
            me,
            PROJECT,
            epoch,
            ZERO,
            leaf.contribution_id,
            payout,
            leaf.weight,
            list(merkle.proof(leaf.contribution_id)),
            (to, deadline, signature),
        )
        out[f"claim_to_{label}"] = bench.gas(call)

    # Refunds: a funder's first refund from an epoch's books, and a second funder's.
    token = bench.deploy_test("TestToken", "USD", "USDC", 6)
    bench.send(token.functions.mint(me, 10**18))
    bench.send(token.functions.approve(contract.address, 10**18))
    other = bench.other
    bench.send(token.functions.mint(other, 10**18), sender=me)
    bench.send(token.functions.approve(contract.address, 10**18), sender=other)
    epoch = next(bench.epochs)
    bench.send(contract.functions.anchor(PROJECT, epoch, tree.root, len(tree), total))
    for funder in (me, other):
        bench.send(contract.functions.fund(me, PROJECT, epoch), ETHER, funder)
        bench.send(
            contract.functions.fundToken(me, PROJECT, epoch, token.address, 10**6), 0, funder
        )

    # A pool: funded by two, allocated twice to an epoch, then returned to and refunded.
    out["fund_pool_create"] = bench.gas(contract.functions.fundPool(me, PROJECT), ETHER)
    out["fund_pool_first"] = bench.gas(contract.functions.fundPool(me, PROJECT), ETHER, other)
    out["fund_pool_topup"] = bench.gas(contract.functions.fundPool(me, PROJECT), ETHER, other)
    pool_epoch = next(bench.epochs)
    bench.send(contract.functions.anchor(PROJECT, pool_epoch, tree.root, len(tree), total))
    # An allocation restarts the pool's clock: a later second, so that it writes a new value (anvil
    # may mine blocks within the same second).
    bench.warp(3600)
    out["allocate_first"] = bench.gas(contract.functions.allocate(PROJECT, pool_epoch, ZERO, ETHER))
    bench.warp(3600)
    out["allocate_again"] = bench.gas(contract.functions.allocate(PROJECT, pool_epoch, ZERO, ETHER))

    bench.warp(YEAR)
    refund = contract.functions.refund
    out["refund_first"] = bench.gas(refund(me, PROJECT, epoch, ZERO, me, me))
    out["refund_second"] = bench.gas(refund(me, PROJECT, epoch, ZERO, other, other), sender=other)
    out["refund_token"] = bench.gas(refund(me, PROJECT, epoch, token.address, me, me))
    out["return_to_pool"] = bench.gas(
        contract.functions.returnToPool(me, PROJECT, pool_epoch, ZERO)
    )
    refund_pool = contract.functions.refundPool
    out["refund_pool_first"] = bench.gas(refund_pool(me, PROJECT, ZERO, me, me))
    out["refund_pool_second"] = bench.gas(
        refund_pool(me, PROJECT, ZERO, other, other), sender=other
    )
    out["close_pools"] = bench.gas(contract.functions.closePools(PROJECT))
    return out


def measure(w3: Web3, trees: dict[Any, MerkleTree], accounts: tuple[str, str]) -> dict[str, Any]:
    bench = Bench(w3, accounts)
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
    # Trees of their own, so that no payout account was paid before.
    out["tokens"] = measure_tokens(bench, trees["tokens"])
    out["exits"] = measure_exits(bench, trees["exits"])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def anvil(chain_id: int) -> Iterator[Web3]:
    """Runs anvil on a free loopback port, at the fork the contract is compiled for, with the
    chain id given (eth-tester's)."""
    port = free_port()
    fork = artifact().settings["evmVersion"]
    args = [ANVIL, "--host", "127.0.0.1", "--port", str(port), "--silent", "--hardfork", fork]
    args += ["--chain-id", str(chain_id)]
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
    lines += token_tables(result)
    return "\n".join(lines)


def token_tables(result: dict[str, Any]) -> list[str]:
    def gas(pair: tuple[int, int]) -> str:
        used, data = pair
        return f"{used:,} ({used - 21_000 - data:,})"

    lines = [
        "",
        textwrap.fill(
            "Funding and claims per kind of token (`fund` and `claim` for ether, `fundToken` and"
            f" `claimToken` for the others; a tree of {TOKEN_TREE} leaves, a proof of 4; the"
            " first funding of an epoch in that token, and a top-up by the same funder; a leaf's"
            " first claim when its payout already holds the token and when it does not; a claim"
            " again after a top-up):",
            width=96,
            break_on_hyphens=False,
        ),
        "",
        "| token | fund, first | fund, top-up | claim, payout holds it | claim, new holder"
        " | claim again after a top-up |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in result["tokens"].items():
        lines.append(
            f"| {name} | {gas(row['fund_first'])} | {gas(row['fund_topup'])} |"
            f" {gas(row['claim_existing'])} | {gas(row['claim_fresh'])} |"
            f" {gas(row['claim_again'])} |"
        )
    tokens = result["tokens"]
    ether, erc20 = tokens["ether"], tokens["ERC-20, 18 decimals"]
    summary = (
        "Every funding also books the funder's stake, from which its refund after the expiry is"
        " computed: a new funder's stake is a new storage slot, a known funder's top-up adds to it."
        " A token funding costs more than ether's by the token's `transferFrom` and the two"
        " `balanceOf` calls around it that measure what arrived (the 18-decimals ERC-20's first"
        f" funding: {erc20['fund_first'][0] - ether['fund_first'][0]:,} more than ether's, of which"
        " the contract's first balance of the token is a new slot in the token); a token claim"
        f" costs {erc20['claim_existing'][0] - ether['claim_existing'][0]:,} more than ether's when"
        " the payout holds the token already, and a payout that does not pays for its new balance"
        " slot in the token instead of a new account. Decimals change nothing; the USDT-style"
        " test token is cheaper only because it is simpler than OpenZeppelin's ERC-20, and the"
        " fee token's extra gas is its burn."
    )
    lines += ["", textwrap.fill(summary, width=96, break_on_hyphens=False)]
    exits = result["exits"]
    rows = [
        ("`claimTo`, ether, a redirect signed by an account (ECDSA)", "claim_to_ecdsa"),
        ("`claimTo`, ether, a redirect signed by a contract wallet (ERC-1271)", "claim_to_erc1271"),
        ("`refund`, ether, the epoch's first", "refund_first"),
        ("`refund`, ether, another funder's", "refund_second"),
        ("`refund`, 6-decimals token, the epoch's first in it", "refund_token"),
        ("`fundPool`, ether, the pool's first funding", "fund_pool_create"),
        ("`fundPool`, ether, a new funder", "fund_pool_first"),
        ("`fundPool`, ether, a top-up by the same funder", "fund_pool_topup"),
        ("`allocate`, ether, first to an epoch", "allocate_first"),
        ("`allocate`, ether, again to the same epoch", "allocate_again"),
        ("`returnToPool`, ether", "return_to_pool"),
        ("`refundPool`, ether", "refund_pool_first"),
        ("`closePools`, every token of a project", "close_pools"),
    ]
    lines += [
        "",
        "Redirects, refunds and pools (the redirected claims in a tree of 16 leaves):",
        "",
        "| transaction | gas (execution) |",
        "|---|---|",
        *(f"| {label} | {gas(exits[key])} |" for label, key in rows),
    ]
    return lines


def write_docs(text: str) -> None:
    """Replaces the "### Gas of the settlement contract" part of docs/BENCHMARKS.md, up to the
    next heading of any level, or appends a "## Chain" section with it; leaves the rest (the
    other parts of "## Chain" included)."""
    heading = "### Gas of the settlement contract"
    part = f"{heading}\n\n`{COMMAND}`\n\n{text}\n"
    current = DOCS.read_text()
    start = current.find(f"\n{heading}\n")
    if start == -1:
        updated = current.rstrip("\n") + "\n\n## Chain\n\n" + part
    else:
        end = current.find("\n#", start + len(heading) + 2)
        rest = "" if end == -1 else current[end:]
        updated = current[: start + 1] + part + rest
    DOCS.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-anvil", action="store_true", help="measure on eth-tester only")
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args()

    trees: dict[Any, MerkleTree] = {
        tag: MerkleTree.build(leaves(TOKEN_TREE, f"bench {tag}")) for tag in ("tokens", "exits")
    }
    build_s: dict[int, float] = {}
    for n in sorted({*ANCHOR_SIZES, *CLAIM_SIZES}):
        data = leaves(n, f"bench {n}")
        start = time.perf_counter()
        trees[n] = MerkleTree.build(data)
        build_s[n] = time.perf_counter() - start

    tester = Web3(Web3.EthereumTesterProvider())
    accounts = (tester.eth.accounts[0], tester.eth.accounts[1])
    result = measure(tester, trees, accounts)
    backends = ["eth-tester (py-evm)"]
    if not args.no_anvil and ANVIL.exists():
        with anvil(tester.eth.chain_id) as w3:
            # The same senders and chain id on both, so that every transaction (the contracts'
            # addresses, the signed redirects) is the same bytes on both.
            for account in accounts:
                w3.provider.make_request("anvil_setBalance", [account, hex(10**24)])  # type: ignore[arg-type]
                w3.provider.make_request("anvil_impersonateAccount", [account])  # type: ignore[arg-type]
            other = measure(w3, trees, accounts)
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
