#!/usr/bin/env python3
"""The demo: a local WorkWork network of three node processes sharing one local chain.

Everything goes through the `workwork` command and the example agent, as a user would do it:

    boot   a community bootstrap node (role bootstrap); its operator, Dana, also contributes
    alice  a personal node: Alice posts a project, accepts work, anchors, funds
    agent  a personal node driven by an AI agent (scripts/agent.py) through the local API

They share anvil (from the npm package) on 127.0.0.1. The run: keys and configs, anvil and the
settlement contract, three daemons (the two personal nodes bootstrap from `boot`), profiles, a
project, a human's and an agent's contributions, acceptances, the epoch anchored on chain,
a test stablecoin (USDC, 6 decimals) paid into the project's pool by Dana's node as a sponsor,
a decision to allocate part of it to the anchored epoch (Dana proposes, Dana and the agent vote
with the power of their accepted weights, Alice's node signs the decision and executes it on
chain by itself), Alice funding the epoch in ETH, both contributors claiming both tokens, an
audit of the epoch and of the decisions from the bootstrap node and a proof file verified
offline and against the chain. It prints a summary, stops everything it started (by pid) and leaves the
data dirs for inspection.

    scripts/demo.py [--dir demo-data]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.chain import anvil  # noqa: E402

WORKWORK = [sys.executable, "-m", "node"]
ETHER = 10**18
# Every wait of the demo is bounded: a stuck step fails the demo instead of hanging it.
STEP_TIMEOUT = 90.0


class DemoFailed(Exception):
    pass


def say(step: str) -> None:
    print(f"\n== {step}", flush=True)


def info(line: str) -> None:
    print(f"   {line}", flush=True)


def run(home: Path, *args: str, check: bool = True) -> Any:
    """Runs `workwork --data-dir home --json args...` and returns its parsed JSON output."""
    command = [*WORKWORK, "--data-dir", str(home), "--json", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=STEP_TIMEOUT, cwd=ROOT, env=ENV
    )
    if check and done.returncode != 0:
        raise DemoFailed(f"`workwork {' '.join(args)}` failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout) if done.stdout.strip() else None


def _opened(home: Path, contribution_id: str, out: Path) -> Any:
    """`workwork evidence get` into `out`: its answer once the file came, else None."""
    got = run(home, "evidence", "get", contribution_id, "-o", str(out), check=False)
    return got if isinstance(got, dict) and "path" in got else None


def wait(what: str, probe: Any, timeout: float = STEP_TIMEOUT) -> Any:
    """Polls `probe()` until it returns something truthy; fails the demo after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def eth(wei: int | str) -> str:
    return f"{int(wei) / ETHER:.6f} ETH"


def units(amount: int | str, token: dict[str, Any]) -> str:
    return f"{int(amount) / 10 ** int(token['decimals']):.6f} {token['symbol']}"


def deploy_stablecoin(url: str, holder: str, amount: int) -> str:
    """Deploys the test stablecoin of tests/chain/contracts/Tokens.sol (6 decimals) from
    anvil's first dev account, and mints `amount` to `holder`; returns its address."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(url))
    data = json.loads((ROOT / "tests" / "chain" / "contracts" / "TestToken.json").read_text())
    dev = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    tx = factory.constructor("Demo USD", "USDC", 6).transact({"from": dev})
    address = w3.eth.wait_for_transaction_receipt(tx, STEP_TIMEOUT)["contractAddress"]
    token = w3.eth.contract(address=address, abi=data["abi"])
    holder = Web3.to_checksum_address(holder)
    w3.eth.wait_for_transaction_receipt(
        token.functions.mint(holder, amount).transact({"from": dev}), STEP_TIMEOUT
    )
    return str(address)


@contextmanager
def daemon(home: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `workwork node start` for `home` until the block exits, then stops it by pid."""
    log = open(home / "demo-daemon.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [*WORKWORK, "--data-dir", str(home), "node", "start", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=ENV,
    )
    try:
        wait(
            f"the {home.name} node to start (see {home / 'demo-daemon.log'})",
            lambda: process.poll() is not None or (home / "api.json").exists(),
        )
        if process.poll() is not None:
            raise DemoFailed(f"the {home.name} node exited; see {home / 'demo-daemon.log'}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


ENV = dict(os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "demo-data", help="where data goes")
    args = parser.parse_args(argv)
    started = time.monotonic()
    base: Path = args.dir.resolve()
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    secret = base / "passphrase"
    secret.write_text("demo passphrase, not for real money\n")
    secret.chmod(0o600)
    ENV.pop("WORKWORK_PASSPHRASE", None)
    ENV.pop("WORKWORK_HOME", None)
    # A dev network: keys are minted with a little proof of work (the default 15 bits take
    # about a second each on a laptop).
    ENV["WORKWORK_KEY_DIFFICULTY"] = "8"
    # The demo's nodes find each other by their bootstrap address, not by announcing
    # themselves on whatever LAN this machine is on.
    ENV["WORKWORK_MDNS"] = "0"
    homes = {name: base / name for name in ("boot", "alice", "agent")}
    pp = ("--passphrase-file", str(secret))

    try:
        with ExitStack() as stack:
            say("1. Keys and config for three nodes (identity and wallet keys encrypted)")
            keys = {}
            for name, home in homes.items():
                role = ("--role", "bootstrap") if name == "boot" else ()
                keys[name] = run(home, "init", *pp, *role)
                info(
                    f"{name:6} key {keys[name]['public_key'][:16]}…  wallet {keys[name]['wallet']}"
                )

            say("2. A local chain (anvil) and the settlement contract")
            url = stack.enter_context(
                anvil.running(state=base / "anvil-state.json", block_time=1, log=base / "anvil.log")
            )
            for name in homes:
                anvil.rpc(url, "anvil_setBalance", [keys[name]["wallet"], hex(100 * ETHER)])
            info(f"anvil at {url}; dev faucet gave each wallet 100 ETH for gas and funding")
            deployed = run(homes["alice"], "chain", "deploy", "--chain", url, *pp)
            contract = deployed["contract"]
            info(f"WorkWorkSettlement deployed at {contract} by Alice's wallet")
            usdc = deploy_stablecoin(url, keys["boot"]["wallet"], 1000 * 10**6)
            info(f"a test stablecoin, USDC (6 decimals), at {usdc}; 1000 USDC minted to Dana")
            # Decisions are signed one second after a proposal's window closes (the default
            # settle time is two minutes, for votes that travel over a wide network).
            chain = (
                "--chain",
                url,
                "--contract",
                contract,
                "--confirmations",
                "1",
                "--settle",
                "1",
            )

            say("3. Three daemons: the bootstrap node first, the others bootstrap from it")
            stack.enter_context(daemon(homes["boot"], *chain, *pp))
            boot_addr = run(homes["boot"], "status")["addrs"][0]
            info(f"boot   {boot_addr}")
            for name in ("alice", "agent"):
                stack.enter_context(daemon(homes[name], *chain, *pp, "--bootstrap", boot_addr))
                info(f"{name:6} started, bootstrapping from boot")
            for name in ("alice", "agent"):
                wait(f"{name} to connect", lambda n=name: run(homes[n], "status")["peers"] >= 1)

            say("4. Profiles and a project")
            run(homes["boot"], "profile", "set", "--name", "Dana", "--actor", "human",
                "--skill", "writing", "--skill", "python")  # fmt: skip
            run(homes["alice"], "profile", "set", "--name", "Alice", "--actor", "human",
                "--skill", "management")  # fmt: skip
            project = run(homes["alice"], "project", "post", "guide",
                          "--title", "Write the WorkWork user guide",
                          "--description", "A guide for participants, operators and auditors.",
                          "--skill", "writing", "--skill", "docs", "--epoch-length", "0")  # fmt: skip
            pid = project["project_id"]
            info(f"Alice posted 'guide' ({pid[:16]}…)")
            for name in ("boot", "agent"):
                wait(f"the project to reach {name}", lambda n=name: _has_project(homes[n], pid))
            info("the project reached both other nodes over gossip")

            say("5. Two contributions: Dana by hand, an AI agent through the API")
            work_file = base / "dana-chapter1.md"
            work_file.write_text("# Chapter 1\n\nGetting started with WorkWork.\n")
            dana = run(homes["boot"], "contribute", pid, "--summary", "Chapter 1: getting started",
                       "--evidence", str(work_file), "--effort", "120")  # fmt: skip
            info(
                f"Dana contributed {dana['id'][:16]}…, her file stored on her node "
                f"({dana['fields']['evidence_uri'][:25]}…)"
            )
            agent = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "agent.py"), "--data-dir",
                 str(homes["agent"]), "--skill", "writing", "--name", "Scribe (agent)",
                 "--out", str(base / "agent-work"), "--timeout", str(STEP_TIMEOUT)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
            )  # fmt: skip
            contributions = wait(
                "both contributions to reach Alice",
                lambda: _two(run(homes["alice"], "contributions", "--project", pid)),
            )
            ids = {c["author"]: c["id"] for c in contributions}
            agent_cid = ids[keys["agent"]["public_key"]]
            info(f"the agent contributed {agent_cid[:16]}…; Alice's node has both")

            opened = wait(
                "Alice's node to fetch Dana's file from hers",
                lambda: _opened(homes["alice"], dana["id"], base / "alice-opened-ch1.md"),
            )
            info(f"Alice opened Dana's file over libp2p: {opened['size']} bytes, sha256 checked")

            say("6. Alice accepts both (weights 3 and 2)")
            run(homes["alice"], "accept", dana["id"], "--weight", "3", "--epoch", "0")
            run(homes["alice"], "accept", agent_cid, "--weight", "2", "--epoch", "0")
            out, err = agent.communicate(timeout=STEP_TIMEOUT)
            if agent.returncode != 0:
                raise DemoFailed(f"the agent failed:\n{err}")
            verdict = json.loads(out)
            # The agent chose its project with `match` (Ikigai: love, good at, needs, paid).
            for line in err.splitlines():
                if line.startswith(("picked ", "  ")):
                    info(f"agent: {line.strip()}")
            info(
                f"the agent saw its acceptance: weight {verdict['weight']}, epoch {verdict['epoch']}"
            )

            say("7. Epoch 0 closed and anchored on chain; its root published")
            # Meanwhile a sponsor pays into the project's pool: pools need no anchored epoch.
            pool = ThreadPoolExecutor(2)
            stack.callback(pool.shutdown)
            pooling = pool.submit(
                run, homes["boot"], "pool", "fund", pid, "500usdc", "--token", usdc
            )
            anchored = run(homes["alice"], "epoch", "anchor", pid, "0")
            info(f"root {anchored['root'][:18]}…  {anchored['leaf_count']} leaves, total weight "
                 f"{anchored['total_weight']}, tx {anchored['tx_hash'][:18]}…")  # fmt: skip

            say("8. A decision: the members allocate 100 USDC of the pool to epoch 0")
            # The agent waits for proposals in the projects it contributed to, and votes.
            voter = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "agent.py"), "--data-dir",
                 str(homes["agent"]), "--vote", "--timeout", "30"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
            )  # fmt: skip
            wait("the epoch root to reach Dana's node",
                 lambda: run(homes["boot"], "share", dana["id"])["anchored"])  # fmt: skip
            asked = run(homes["boot"], "propose", pid, "allocate",
                        "--title", "Pay epoch 0 100 USDC from the pool",
                        "--param", "epoch=0", "--param", f"token={usdc}",
                        "--param", "amount=100000000", "--window", "10s")  # fmt: skip
            qid = asked["id"]
            info(f"Dana proposed {qid[:16]}…: 100 USDC of the pool to epoch 0, 10 s to vote")
            run(homes["boot"], "vote", qid, "yes", "--reason", "Chapter 1 and the notes earned it")
            info("Dana voted yes (power 3: her accepted weight in anchored epoch 0)")
            # While the window runs: the sponsor's pool, Alice's own funding in ETH, an audit.
            pooled = pooling.result(timeout=STEP_TIMEOUT)
            info(f"Dana's node, as a sponsor, had paid {units(pooled['amount'], pooled['token'])} "
                 f"into the project's pool (approved the contract first in tx "
                 f"{pooled['approvals'][0][:18]}…)")  # fmt: skip
            funded = run(homes["alice"], "fund", pid, "0", "1ether")
            info(f"Alice's project earned 1 ETH and paid it into epoch 0 (audited first) in tx "
                 f"{funded['tx_hash'][:18]}…")  # fmt: skip
            # And the bootstrap node audits epoch 0; a proof file is checked.
            report = run(homes["boot"], "audit", pid, "0", check=False)
            if not report or not report.get("ok"):
                raise DemoFailed(f"the audit failed: {json.dumps(report, indent=1)}")
            info(
                f"audit: OK ({report['leaves']} leaves, root matches the chain and the epoch root)"
            )
            proof_file = base / "agent-proof.json"
            run(homes["agent"], "proof", "export", agent_cid, "--output", str(proof_file))
            verifying = pool.submit(
                run, homes["boot"], "proof", "verify", str(proof_file), "--rpc", url
            )
            offline = run(homes["boot"], "proof", "verify", str(proof_file), "--offline")
            online = verifying.result(timeout=STEP_TIMEOUT)
            if not (offline["valid"] and online["valid"] and online["on_chain"]):
                raise DemoFailed("the proof file did not verify")
            info(f"{proof_file.name}: valid offline, and against the chain")
            out, err = voter.communicate(timeout=STEP_TIMEOUT)
            if voter.returncode != 0:
                raise DemoFailed(f"the agent did not vote:\n{err}")
            info(f"the agent voted yes through the API: {json.loads(out)['voted'][0]['title']!r}")
            decided = wait(
                "Alice's node to decide and execute the proposal",
                lambda: _executed(run(homes["alice"], "proposal", "show", qid)),
            )
            tally = (f"yes {decided['yes']}, no {decided['no']}, abstain {decided['abstain']} of "
                     f"{decided['total_power']}")  # fmt: skip
            execution = decided["decision"]["executed_tx"]
            info(f"the window closed; Alice's node signed the decision: {decided['outcome']} "
                 f"({tally})")  # fmt: skip
            info(f"and executed it on chain by itself: 100 USDC to epoch 0 in tx {execution[:18]}…")

            say("9. Claims: each contributor claims a pro-rata share of both tokens")

            def claim(name: str, cid: str) -> Any:
                wait(f"the epoch root to reach {name}",
                     lambda: run(homes[name], "share", cid)["anchored"])  # fmt: skip
                return run(homes[name], "claim", cid)

            # Each on its own node, at once.
            claiming = {
                name: pool.submit(claim, name, cid)
                for name, cid in (("boot", dana["id"]), ("agent", agent_cid))
            }
            claims = {name: done.result(timeout=STEP_TIMEOUT) for name, done in claiming.items()}
            for name in claims:
                for paid in claims[name]["payments"]:
                    info(f"{name:6} claimed {units(paid['amount'], paid['token'])} in tx "
                         f"{paid['tx_hash'][:18]}…")  # fmt: skip

            say("10. Audit of the decisions from the bootstrap node; a portfolio checked")
            auditing = pool.submit(run, homes["boot"], "audit", pid, "--decisions", check=False)
            portfolio = base / "dana-portfolio.json"
            run(homes["boot"], "portfolio", "export", str(portfolio))
            checked = run(homes["alice"], "portfolio", "verify", str(portfolio), "--rpc", url)
            choices = auditing.result(timeout=STEP_TIMEOUT)
            if not choices or not choices.get("ok"):
                raise DemoFailed(f"the audit of decisions failed: {json.dumps(choices, indent=1)}")
            (audited,) = choices["proposals"]
            if audited["execution"] != execution:
                raise DemoFailed(f"the audit matched another allocation: {audited}")
            info(f"decisions: OK (the tally recounts from the records and the chain: "
                 f"{audited['outcome']}, yes {audited['yes']} of {audited['total']}; the one "
                 f"allocation on chain is its execution)")  # fmt: skip
            if not checked["on_chain"] or checked["contributions"] != 1:
                raise DemoFailed("Dana's portfolio did not verify")
            info(
                f"{portfolio.name}: {checked['contributions']} anchored contribution, weight "
                f"{checked['total_weight']}, paid as claimed: valid against the chain"
            )

            say("Summary")
            rows = [
                ("Dana (human, bootstrap node)", 3, claims["boot"]),
                ("Scribe (AI agent)", 2, claims["agent"]),
            ]
            for who, weight, claim in rows:
                paid = "  ".join(units(p["amount"], p["token"]) for p in claim["payments"])
                info(f"{who:30} weight {weight}  paid {paid}")
            info(f"anchor tx   {anchored['tx_hash']}")
            info(f"pool tx     {pooled['tx_hash']} (500 USDC in)")
            info(f"decision    {qid[:16]}… allocate 100 USDC to epoch 0: {decided['outcome']}, "
                 f"{tally}")  # fmt: skip
            for ballot in decided["ballots"]:
                who = "Dana" if ballot["author"] == keys["boot"]["public_key"] else "the agent"
                info(f"              {who:9} {ballot['choice']:4} power {ballot['power']}")
            info(f"executed    {execution} (by Alice's node, once)")
            info(f"fund tx     {funded['tx_hash']} (1 ETH)")
            info("audit       OK (epoch 0 and the decision); proof file valid offline and on chain; "
                 "Dana's portfolio valid")  # fmt: skip
            info(f"data dirs left in {base} (logs in each dir's logs/ and demo-daemon.log)")
            info(f"took {time.monotonic() - started:.0f} s")
    except DemoFailed as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _has_project(home: Path, pid: str) -> bool:
    found = run(home, "project", "show", pid, check=False)
    return bool(found) and "error" not in found


def _executed(shown: dict[str, Any]) -> dict[str, Any] | None:
    decision = shown.get("decision")
    return shown if decision is not None and decision["executed_tx"] else None


def _two(contributions: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return contributions if len(contributions) >= 2 else None


if __name__ == "__main__":
    sys.exit(main())
