"""The CLI that fits the hand, end to end: `node stop`, `store check`, `chain faucet` and
`wallet send` against real daemons."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.chain.client import DEV_BALANCE
from tests.support.anvil import running_anvil
from tests.support.cli import WORKWORK, daemon, env, ok, run

pytestmark = pytest.mark.slow

ETHER = 10**18
SOMEONE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_node_stop_stops_the_daemon_and_store_check_waits_for_it(tmp_path: Path) -> None:
    home = tmp_path / "a"
    ok(home, "init")
    none = run(home, "node", "stop")
    assert none.returncode == 1
    assert f"error: no node is running over {home}" in none.stderr
    assert "hint: is `workwork node start` running" in none.stderr

    with daemon(home) as process:
        ok(home, "project", "post", "docs", "--title", "Docs")
        # The daemon holds the store: the check is refused, and says why and what to do.
        held = run(home, "store", "check")
        assert held.returncode == 1, held.stderr
        assert f"error: the node running over {home} holds the store" in held.stderr
        assert "hint: a node already runs over this data dir" in held.stderr
        assert "`workwork node stop`" in held.stderr

        stopped = ok(home, "node", "stop")
        assert stopped == {"stopped": True, "pid": process.pid, "data_dir": str(home)}
        # It returns once the daemon has exited, cleanly (the helper checks 0 and api.json).
        assert process.wait(timeout=5) == 0
        assert not (home / "api.json").exists()

    checked = ok(home, "store", "check")
    assert checked["consistent"] and checked["problems"] == [] and checked["repaired"] == []
    shown = run(home, "store", "check")
    assert shown.returncode == 0 and "is consistent" in shown.stdout


def test_node_stop_never_signals_the_pid_of_a_stale_api_file(tmp_path: Path) -> None:
    home = tmp_path / "a"
    ok(home, "init")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # A node that died left api.json; its pid is now another process's.
        (home / "api.json").write_text(
            json.dumps({"host": "127.0.0.1", "port": 9, "pid": bystander.pid})
        )
        stale = run(home, "node", "stop")
        assert stale.returncode == 1
        assert f"names process {bystander.pid}, but no node answers" in stale.stderr
        assert f"hint: if no node runs over {home}, delete {home / 'api.json'}" in stale.stderr
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_faucet_and_send_on_the_embedded_chain(tmp_path: Path) -> None:
    home = tmp_path / "a"
    wallet = ok(home, "init")["wallet"]
    with daemon(home, "--chain", "embedded"):
        before = int(ok(home, "chain", "status")["balance"])
        mine = ok(home, "chain", "faucet")
        assert (mine["address"], mine["amount"]) == (wallet, str(10 * ETHER))
        assert int(mine["balance"]) == before + 10 * ETHER

        theirs = ok(home, "chain", "faucet", SOMEONE.lower(), "5ether")
        assert (theirs["address"], theirs["balance"]) == (SOMEONE, str(5 * ETHER))

        sent = ok(home, "wallet", "send", SOMEONE, "1.5eth")
        assert (sent["from"], sent["to"], sent["amount"]) == (
            wallet,
            SOMEONE,
            str(15 * ETHER // 10),
        )
        assert len(sent["tx_hash"]) == 64
        # The wallet paid the amount and the gas.
        assert int(sent["balance"]) < int(mine["balance"]) - 15 * ETHER // 10
        assert ok(home, "chain", "faucet", SOMEONE, "1wei")["balance"] == str(65 * ETHER // 10 + 1)

        shown = run(home, "wallet", "send", SOMEONE, "1gwei")
        assert shown.returncode == 0 and "0.000000001 ETH" in shown.stdout

        bare = run(home, "wallet", "send", SOMEONE, "1")
        assert bare.returncode == 2 and "has no unit" in bare.stderr
        assert "hint: give the amount with its unit" in bare.stderr
        not_address = run(home, "chain", "faucet", "0x1234")
        assert not_address.returncode == 2 and "is not an address" in not_address.stderr

        too_much = run(home, "wallet", "send", SOMEONE, f"{2 * DEV_BALANCE}wei")
        assert too_much.returncode == 1 and "insufficient funds" in too_much.stderr
        assert "hint: fund the wallet" in too_much.stderr


def test_an_empty_wallet_on_a_shared_anvil_is_told_to_use_the_faucet(tmp_path: Path) -> None:
    """Several nodes on one local anvil (the README's recipe): a new node's wallet is empty,
    the error says how to fund it, and `chain faucet` does, since anvil names itself."""
    deployer, home = tmp_path / "deployer", tmp_path / "a"
    ok(home, "init")
    paying = ok(deployer, "init")["wallet"]
    with running_anvil() as url:
        # Before any node runs: the faucet of the anvil at the URL, for the deployment's gas.
        given = ok(deployer, "chain", "faucet", "--chain", url)
        assert (given["address"], given["balance"]) == (paying, str(10 * ETHER))
        contract = ok(deployer, "chain", "deploy", "--chain", url)["contract"]
        with daemon(home, "--chain", url, "--contract", contract):
            assert ok(home, "chain", "status")["balance"] == "0"
            empty = run(home, "wallet", "send", SOMEONE, "1ether")
            assert empty.returncode == 1
            assert "error: insufficient funds" in empty.stderr
            assert "check --chain and --contract" not in empty.stderr
            assert "`workwork chain faucet`" in empty.stderr

            funded = ok(home, "chain", "faucet", "--json")
            assert funded["balance"] == str(10 * ETHER)
            assert ok(home, "wallet", "send", SOMEONE, "1ether")["to"] == SOMEONE


def test_shell_completion_as_the_readme_says(tmp_path: Path) -> None:
    def complete(*words: str) -> list[str]:
        done = subprocess.run(
            WORKWORK,
            env={
                **env(),
                "_WORKWORK_COMPLETE": "bash_complete",
                "COMP_WORDS": " ".join(("workwork", *words)),
                "COMP_CWORD": str(len(words)),
            },
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("node", "s") == ["start", "stop"]
    assert "check" in complete("store", "")
    assert complete("wallet", "") == ["send"]
    source = subprocess.run(
        WORKWORK, env={**env(), "_WORKWORK_COMPLETE": "bash_source"}, capture_output=True,
        text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "complete -o nosort -F _workwork_completion workwork" in source.stdout


def test_tables_show_short_ids_that_commands_take_and_wide_shows_them_whole(
    tmp_path: Path,
) -> None:
    home = tmp_path / "a"
    ok(home, "init")
    with daemon(home):
        pid = ok(home, "project", "post", "docs", "--title", "Docs")["project_id"]
        work = ok(
            home,
            "contribute",
            pid,
            "--summary",
            "Wrote it",
            "--evidence-uri",
            "https://example.org/w",
        )["id"]
        for args, full in ((("project", "list"), pid), (("contributions",), work)):
            listed = run(home, *args)
            assert listed.returncode == 0, listed.stderr
            assert f"{full[:12]}…" in listed.stdout and full not in listed.stdout
            for wide in ((*args, "--wide"), ("--wide", *args)):
                assert full in run(home, *wide).stdout
        # The short id a table shows is one that commands take.
        assert ok(home, "project", "show", pid[:12])["project_id"] == pid
