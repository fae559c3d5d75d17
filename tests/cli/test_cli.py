"""End to end: `workwork` daemons in subprocesses, driven by the CLI as a person would."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import termios
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from node.cli.base import cli
from node.client import Client, DaemonError
from node.home import Home
from tests.support.anvil import rpc, running_anvil
from tests.support.cli import WORKWORK, daemon, env, ok, run, wait_until

# Slow (real `workwork` processes and daemons): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

AGENT = Path(__file__).resolve().parents[2] / "scripts" / "agent.py"


def test_init_keys_and_refusals_without_a_daemon(tmp_path: Path) -> None:
    home = tmp_path / "a"
    made = ok(home, "init")
    for name in ("identity.key", "wallet.json", "host.key"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    assert (home / "config.toml").exists()
    # --json is accepted after the command name too.
    shown = json.loads(run(home, "keys", "--json").stdout)
    assert shown == {k: made[k] for k in ("public_key", "peer_id", "wallet")}

    again = run(home, "init")
    assert again.returncode == 1
    assert again.stderr.startswith("error: ") and "exists already" in again.stderr
    assert "hint: " in again.stderr

    down = run(home, "status")
    assert down.returncode == 1
    assert "hint: is `workwork node start` running" in down.stderr
    as_json = run(home, "--json", "status")
    assert json.loads(as_json.stdout)["error"]["type"] == "NotRunning"

    usage = run(home, "project", "post")
    assert usage.returncode == 2 and usage.stderr.startswith("error: Missing argument")
    help_text = run(home, "contribute", "--help")
    assert help_text.returncode == 0 and "Examples:" in help_text.stdout

    (home / "config.toml").write_text("[network]\nlisten_adrs = []\n")
    bad = run(home, "node", "start")
    assert bad.returncode == 1
    assert "unknown key network.listen_adrs" in bad.stderr


def _init(home: Path, *args: str, **variables: str | None) -> subprocess.CompletedProcess[str]:
    """Runs `workwork init` with the test environment changed by `variables` (None unsets)."""
    changed = {**env(), **{k: v for k, v in variables.items() if v is not None}}
    for name in [k for k, v in variables.items() if v is None]:
        changed.pop(name, None)
    return subprocess.run(
        [*WORKWORK, "--data-dir", str(home), "init", *args],
        capture_output=True, text=True, env=changed, timeout=30, check=False,
    )  # fmt: skip


def test_init_mints_the_identity_key_at_the_networks_difficulty(tmp_path: Path) -> None:
    """Defect 6: a key is minted with proof of work (protocol.stamp), and the node's config
    keeps the difficulty its rations ask of others' keys."""
    import tomllib

    from protocol.stamp import work

    made = json.loads(_init(tmp_path / "a", "--json", "--key-difficulty", "10").stdout)
    assert work(bytes.fromhex(made["public_key"])) >= 10
    config = tomllib.loads((tmp_path / "a" / "config.toml").read_text())
    assert config["network"]["key_difficulty"] == 10
    # From the environment too (the test suite's default is 0).
    made = json.loads(_init(tmp_path / "b", "--json", WORKWORK_KEY_DIFFICULTY="9").stdout)
    assert work(bytes.fromhex(made["public_key"])) >= 9


def test_init_turns_mdns_on_for_a_personal_node_only(tmp_path: Path) -> None:
    """A node at home finds the nodes on its LAN without being told to; a bootstrap node on a
    public address does not announce itself on one; either can say otherwise."""
    import tomllib

    def mdns(name: str, *args: str) -> bool:
        done = _init(tmp_path / name, *args, WORKWORK_MDNS=None)
        assert done.returncode == 0, done.stderr
        return tomllib.loads((tmp_path / name / "config.toml").read_text())["network"]["mdns"]

    assert mdns("personal") is True
    assert mdns("bootstrap", "--role", "bootstrap") is False
    assert mdns("quiet", "--no-mdns") is False
    assert mdns("lan-boot", "--role", "bootstrap", "--mdns") is True


def test_init_refuses_weak_passphrases_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    short = _init(home, WORKWORK_PASSPHRASE="seven c")
    assert short.returncode == 1, short.stderr
    assert "at least 8 characters" in short.stderr and "hint: " in short.stderr
    empty = _init(home, WORKWORK_PASSPHRASE="")
    assert empty.returncode == 1 and "WORKWORK_PASSPHRASE is set but empty" in empty.stderr
    secret = tmp_path / "pass"
    secret.write_text("a long enough passphrase\n")
    secret.chmod(0o644)
    exposed = _init(home, "--passphrase-file", str(secret), WORKWORK_PASSPHRASE=None)
    assert exposed.returncode == 1
    assert f"passphrase file {secret} is accessible by other users" in exposed.stderr
    assert not home.exists()

    secret.chmod(0o600)
    made = _init(home, "--json", "--passphrase-file", str(secret), WORKWORK_PASSPHRASE=None)
    assert made.returncode == 0, made.stderr
    # The daemon refuses the file too, before it opens anything.
    secret.chmod(0o640)
    start = run(home, "node", "start", "--passphrase-file", str(secret))
    assert start.returncode == 1 and "accessible by other users" in start.stderr
    assert not (home / "store").exists()


_PROMPT = re.compile(rb"(?m)^passphrase(?: \(again\))?: ")


def _on_a_terminal(home: Path, answers: list[str], **variables: str) -> tuple[int, str]:
    """Runs `workwork init` with a pseudo-terminal as its controlling terminal and standard
    streams, and answers each passphrase prompt with the next of `answers`.

    Returns the exit code and everything written to the terminal. A prompt with no answer
    left is the hang this guards against: the process is killed 3 s later (exit code -9).
    """
    changed = {k: v for k, v in env().items() if k != "WORKWORK_PASSPHRASE"} | variables
    leader, follower = pty.openpty()

    def take_the_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [*WORKWORK, "--data-dir", str(home), "init"],
        stdin=follower, stdout=follower, stderr=follower, env=changed,
        start_new_session=True, preexec_fn=take_the_terminal,
    )  # fmt: skip
    os.close(follower)
    seen, pending = b"", list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            seen += chunk
            if len(_PROMPT.findall(seen)) > len(answers) - len(pending):
                if pending:
                    os.write(leader, pending.pop(0).encode() + b"\n")
                else:
                    deadline = min(deadline, time.monotonic() + 3)
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
        return process.wait(timeout=30), seen.decode(errors="replace")
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_init_on_a_terminal(tmp_path: Path) -> None:
    # A variable set to nothing is an error at once, not a prompt that would hang a
    # supervisor's unattended start.
    code, seen = _on_a_terminal(tmp_path / "a", [], WORKWORK_PASSPHRASE="")
    assert code == 1, seen
    assert "WORKWORK_PASSPHRASE is set but empty" in seen and "passphrase:" not in seen
    # Typed, a short passphrase is refused at the first entry, before it is asked again.
    code, seen = _on_a_terminal(tmp_path / "b", ["short"])
    assert code == 1, seen
    assert "at least 8 characters" in seen and "again" not in seen
    assert not (tmp_path / "b").exists()
    # And a good one, typed twice, makes the keys.
    code, seen = _on_a_terminal(tmp_path / "c", ["a good passphrase", "a good passphrase"])
    assert code == 0, seen
    assert "Initialized" in seen and (tmp_path / "c" / "identity.key").exists()


def test_two_daemons_post_contribute_accept(tmp_path: Path) -> None:
    owner, worker = tmp_path / "owner", tmp_path / "worker"
    ok(owner, "init")
    ok(worker, "init")
    with daemon(owner):
        addr = ok(owner, "status")["addrs"][0]
        second = run(owner, "node", "start")
        assert second.returncode == 1
        assert "in use by another process" in second.stderr and "hint: " in second.stderr
        with daemon(worker, "--bootstrap", addr):
            wait_until(lambda: ok(worker, "peers")["connected"], timeout=15)
            me = ok(owner, "profile", "set", "--name", "Olivia", "--skill", "Writing")
            assert me["fields"]["skills"] == ["writing"]
            assert ok(owner, "profile", "show")["id"] == me["id"]
            posted = ok(
                owner, "project", "post", "docs", "--title", "Write the docs", "--skill", "writing"
            )
            pid = posted["project_id"]
            wait_until(lambda: ok(worker, "project", "list", "--open"), timeout=15)
            assert ok(worker, "project", "show", pid)["fields"]["title"] == "Write the docs"

            evidence = tmp_path / "guide.md"
            evidence.write_text("# Guide\n")
            digest = hashlib.sha256(b"# Guide\n").hexdigest()
            work = ok(
                worker, "contribute", pid, "--summary", "Wrote the guide",
                "--evidence", str(evidence), "--effort", "45",
            )  # fmt: skip
            assert work["fields"]["evidence_hash"] == digest
            assert work["fields"]["evidence_uri"] == f"workwork:sha256:{digest}"
            seen = wait_until(lambda: ok(owner, "contributions", "--project", pid), timeout=15)
            assert [c["id"] for c in seen] == [work["id"]]
            assert seen[0]["acceptance"] is None

            refused = run(worker, "accept", work["id"], "--weight", "5")
            assert refused.returncode == 1 and "owner or a reviewer" in refused.stderr

            # The owner opens the file: its node fetches it from the worker's over libp2p,
            # and the CLI checks the hash again.
            fetched = ok(owner, "evidence", "get", work["id"][:12], "-o", str(tmp_path / "got.md"))
            assert fetched == {"path": str(tmp_path / "got.md"), "size": 8, "sha256": digest}
            assert (tmp_path / "got.md").read_text() == "# Guide\n"
            verdict = ok(owner, "accept", work["id"], "--weight", "10")
            assert verdict["fields"]["weight"] == "10"
            mine = wait_until(
                lambda: [c for c in ok(worker, "contributions") if c["acceptance"]], timeout=15
            )
            assert mine[0]["acceptance"]["id"] == verdict["id"]

            # The example agent takes the open project that the node's match ranks first for
            # its profile, says why, contributes, and waits for the owner's acceptance.
            agent = subprocess.Popen(
                [sys.executable, str(AGENT), "--data-dir", str(worker), "--skill", "writing",
                 "--out", str(tmp_path / "agent-work"), "--timeout", "30"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
            )  # fmt: skip
            try:
                theirs = wait_until(
                    lambda: [
                        c
                        for c in ok(owner, "contributions", "--project", pid)
                        if c["id"] != work["id"]
                    ],
                    timeout=20,
                )
                ok(owner, "accept", theirs[0]["id"], "--weight", "3")
                out, err = agent.communicate(timeout=30)
            finally:
                if agent.poll() is None:
                    agent.kill()
                    agent.wait(timeout=10)
            assert agent.returncode == 0, err
            outcome = json.loads(out)
            assert outcome["contribution_id"] == theirs[0]["id"]
            # The agent's evidence opens on the owner's node too.
            assert outcome["evidence_uri"] == theirs[0]["fields"]["evidence_uri"]
            agent_file = run(owner, "evidence", "get", theirs[0]["id"], "-o", "-")
            assert agent_file.returncode == 0, agent_file.stderr
            assert agent_file.stdout == Path(outcome["evidence"]).read_text()
            assert (outcome["accepted"], outcome["weight"]) == (True, "3")
            # The worker's own accepted work in the project is what makes it good at it.
            assert outcome["why"]["good_at"]["reason"].startswith(
                "good at: 1 accepted contribution(s) tagged writing (weight 10, in 1 project(s))"
            )
            assert "picked docs" in err and "good at: 1 accepted contribution(s)" in err
            assert ok(worker, "profile", "show")["fields"]["actor"] == "agent"

            ok(owner, "project", "close", pid)
            wait_until(
                lambda: ok(worker, "project", "show", pid)["fields"]["status"] == "closed",
                timeout=15,
            )
            late = run(
                worker,
                "contribute",
                pid,
                "--summary",
                "late",
                "--evidence-uri",
                "https://example.org/w",
            )
            assert late.returncode == 1 and "closed" in late.stderr

            exported = tmp_path / "records.jsonl"
            assert run(owner, "export", str(exported)).returncode == 0
            lines = exported.read_text().splitlines()
            assert {json.loads(line)["id"] for line in lines} >= {me["id"], work["id"]}
            imported = ok(worker, "import", str(exported))
            assert imported["added"] == 0 and not imported["rejected"]

            # A node that joins late catches up by sync; `workwork sync` waits for it.
            late = tmp_path / "late"
            ok(late, "init")
            with daemon(late, "--bootstrap", addr):
                followed = ok(late, "project", "follow", pid, "--save")
                assert followed["saved"] and pid in (late / "config.toml").read_text()
                synced = ok(late, "sync", "--timeout", "60")
                assert synced["peers"] >= 1
                assert ok(late, "project", "show", pid)["fields"]["status"] == "closed"
                assert ok(late, "profile", "show", me["author"])["id"] == me["id"]


def test_every_command_has_help_with_an_example() -> None:
    def walk(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [path]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += walk(sub, (*path, name))
        return found

    paths = walk(cli, ())
    assert len(paths) > 15
    for path in paths:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Examples:" in result.output, path
        assert "workwork" in result.output.split("Examples:")[1], path


def test_chain_deploy_saves_the_contract_into_the_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    wallet = ok(home, "init")["wallet"]
    with running_anvil() as url:
        rpc(url, "anvil_setBalance", [wallet, hex(10**20)])
        deployed = ok(home, "chain", "deploy", "--chain", url, "--save")
        assert deployed["saved"] and deployed["deployer"] == wallet
        saved = Home(home).settings().chain
        assert (saved.backend, saved.url, saved.contract) == ("rpc", url, deployed["contract"])
        # Where its events start, so that the node never reads the chain from genesis.
        assert saved.contract_block == deployed["block"] > 0
    # Without a chain that answers: one clear line, and nothing changed.
    down = run(home, "chain", "deploy", "--chain", url, "--save")
    assert down.returncode == 1 and "did not answer" in down.stderr
    assert Home(home).settings().chain.contract == deployed["contract"]


def test_fund_takes_an_amount_with_its_unit_and_refuses_a_bare_number(tmp_path: Path) -> None:
    home = tmp_path / "owner"
    ok(home, "init")
    with daemon(home, "--chain", "embedded"):
        pid = ok(home, "project", "post", "docs", "--title", "Docs", "--epoch-length", "0")[
            "project_id"
        ]
        work = ok(
            home,
            "contribute",
            pid,
            "--summary",
            "Wrote it",
            "--evidence-uri",
            "https://example.org/w",
        )
        ok(home, "accept", work["id"], "--weight", "1", "--epoch", "0")
        ok(home, "epoch", "anchor", pid, "0")
        for bare in ("1", "0.5", "1e18"):
            refused = run(home, "fund", pid, "0", bare)
            assert refused.returncode == 2, refused.stderr
            assert f"error: Invalid value for 'AMOUNT': '{bare}' has no unit" in refused.stderr
            assert (
                "hint: give the amount with its unit: 1ether, 0.5eth, 20gwei or 1000wei"
                in refused.stderr
            )
        assert ok(home, "epoch", "status", pid)["items"][0]["funded"] == "0"
        paid = [ok(home, "fund", pid, "0", a)["amount"] for a in ("1ether", "0.5eth", "20gwei")]
        assert paid == [str(10**18), str(5 * 10**17), str(20 * 10**9)]
        shown = run(home, "fund", pid, "0", "1000wei")
        assert shown.returncode == 0 and "Funded 0.000000000000001 ETH" in shown.stdout
        # The API's amount is still a decimal string of wei.
        with Client.connect(home) as api:
            assert api.fund(pid, 0, 7)["amount"] == "7"
        funded = ok(home, "epoch", "status", pid)["items"][0]["funded"]
        assert int(funded) == 15 * 10**17 + 20 * 10**9 + 1000 + 7


def test_a_node_on_another_chain_than_the_project_says_so(tmp_path: Path) -> None:
    """The owner settles on an anvil chain; a contributor's node runs on its own (embedded)
    chain. The contributor is told where the project settles, and how to get there, instead
    of "not anchored yet" for ever; on the project's chain, it claims."""
    owner, worker = tmp_path / "owner", tmp_path / "worker"
    wallets = {home: ok(home, "init")["wallet"] for home in (owner, worker)}
    with running_anvil() as url:
        for wallet in wallets.values():
            rpc(url, "anvil_setBalance", [wallet, hex(10**20)])
        contract = ok(owner, "chain", "deploy", "--chain", url)["contract"]
        project_chain = ("--chain", url, "--contract", contract)
        with daemon(owner, *project_chain):
            addr = ok(owner, "status")["addrs"][0]
            pid = ok(owner, "project", "post", "docs", "--title", "Docs", "--epoch-length", "0")[
                "project_id"
            ]
            with daemon(worker, "--chain", "embedded", "--bootstrap", addr):
                wait_until(lambda: run(worker, "project", "show", pid).returncode == 0, timeout=20)
                work = ok(
                    worker,
                    "contribute",
                    pid,
                    "--summary",
                    "Wrote it",
                    "--evidence-uri",
                    "https://example.org/w",
                )
                cid = work["id"]
                wait_until(lambda: ok(owner, "contributions", "--project", pid), timeout=20)
                ok(owner, "accept", cid, "--weight", "1", "--epoch", "0")
                ok(owner, "epoch", "anchor", pid, "0")
                mine = ok(worker, "chain", "status")
                said = (
                    f"project {pid} settles on chain 31337 at contract {contract}; "
                    f"this node uses chain {mine['chain_id']} at {mine['contract']}"
                )
                # Once the owner's epoch root arrives, the worker's node knows where it settles.
                share = wait_until(
                    lambda: (s := ok(worker, "share", cid))["other_chain"] and s, timeout=20
                )
                assert not share["anchored"] and share["claimable"] == "0"
                other = share["other_chain"]
                assert (other["chain_id"], other["contract"], other["message"]) == (
                    31337,
                    contract,
                    said,
                )
                assert "--chain URL --contract 0x..." in other["hint"]
                (epoch,) = ok(worker, "epoch", "status", pid)["items"]
                assert not epoch["anchored"] and epoch["other_chain"] == other
                # In words, for people.
                for args in (("share", cid), ("epoch", "status", pid)):
                    shown = run(worker, *args)
                    assert shown.returncode == 0, shown.stderr
                    assert (
                        f"note: {said}" in shown.stdout
                        and "hint: ask the project's" in shown.stdout
                    )
                # What cannot proceed is refused, with the same words.
                for args in (("claim", cid), ("fund", pid, "0", "1ether")):
                    refused = run(worker, *args)
                    assert refused.returncode == 1, refused.stderr
                    assert f"error: {said}\n" in refused.stderr
                    assert "hint: ask the project's owner for that chain's JSON-RPC URL" in (
                        refused.stderr
                    )
                with Client.connect(worker) as api, pytest.raises(DaemonError) as info:
                    api.claim(cid)
                assert (info.value.status, info.value.type) == (409, "WrongChain")
                # The owner's node is on the project's chain: nothing to say there.
                assert ok(owner, "share", cid)["other_chain"] is None
                assert ok(owner, "epoch", "status", pid)["items"][0]["other_chain"] is None
            ok(owner, "fund", pid, "0", "1ether")
            # The worker follows the hint: on the project's chain, it claims its share.
            with daemon(worker, *project_chain, "--bootstrap", addr):
                share = ok(worker, "share", cid)
                assert share["anchored"] and share["other_chain"] is None
                assert ok(worker, "claim", cid)["amount"] == str(10**18)
