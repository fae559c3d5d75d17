"""The parts of the CLI that fit the hand that need no daemon: the sync tally, the systemd
unit, and `store check --repair` on a store whose filter of stored ids is damaged."""

from __future__ import annotations

import configparser
from pathlib import Path

import plyvel
import pytest
from click.testing import CliRunner

from node.chain.client import ChainClient
from node.cli.base import cli
from node.cli.main import main
from node.cli.network import Tally
from node.config import ChainConfig
from node.errors import NoFaucet, outcome
from storage import Store, keys
from storage.seen import Seen
from tests.support import factories as f
from tests.support.factories import T0


def _run(peer: str, needed: int, fetched: int) -> dict[str, object]:
    return {"peer": peer, "needed": needed, "fetched": fetched, "stored": fetched, "rejected": 0}


def test_the_sync_tally_never_goes_backwards() -> None:
    tally = Tally()
    assert tally.update([]) == (0, 0)
    assert tally.update([_run("a", 60005, 30000)]) == (30000, 60005)
    assert tally.update([_run("a", 60005, 60005)]) == (60005, 60005)
    # The run ends and leaves the list: the bar stays full instead of dropping to 0.
    assert tally.update([]) == (60005, 60005)
    assert tally.update([]) == (60005, 60005)
    # A second peer's run adds to it.
    assert tally.update([_run("b", 10, 4)]) == (60009, 60015)
    # A new run with the same peer (its count fell) after the first ended.
    assert tally.update([_run("b", 6, 1)]) == (60016, 60021)
    # Two runs with one peer count together.
    assert tally.update([_run("b", 6, 1), _run("b", 4, 4)]) == (60020, 60025)


def test_node_unit_is_a_complete_systemd_unit(tmp_path: Path) -> None:
    home = tmp_path / "node"
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(home),
            "node",
            "unit",
            "--passphrase-file",
            "/etc/ww/pass",
            "--user",
            "ww",
        ],
    )
    assert result.exit_code == 0, result.output
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(result.output)
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Unit"]["After"] == "network-online.target"
    service = unit["Service"]
    assert service["User"] == "ww"
    assert service["Environment"] == f"WORKWORK_HOME={home.absolute()}"
    assert service["ExecStart"].endswith("workwork node start --passphrase-file /etc/ww/pass")
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_store_check_repairs_the_filter_of_stored_ids_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    with Store.open(home / "store") as store:
        work = f.contribution()
        store.ingest([f.project(), work], now=T0)
    # A saved filter that misses every stored id.
    db = plyvel.DB(str(home / "store"))
    db.put(keys.SEEN_KEY, Seen().dump())
    db.close()

    assert main(["--data-dir", str(home), "store", "check"]) == 3
    out = capsys.readouterr().out
    assert f"problem: record {work.id.hex()} is missing from the filter of stored ids" in out
    assert "see `workwork store check --help` for --repair" in out

    assert main(["--data-dir", str(home), "store", "check", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "Repaired: rebuilt the filter of stored ids from the records" in out
    assert "is consistent" in out
    # The repaired filter was saved when the store closed.
    assert main(["--data-dir", str(home), "--json", "store", "check"]) == 0
    assert '"consistent": true' in capsys.readouterr().out

    # Damage the repair does not touch is listed, and left as it is.
    db = plyvel.DB(str(home / "store"))
    db.put(b"Zzz", b"")
    db.close()
    assert main(["--data-dir", str(home), "store", "check", "--repair"]) == 3
    out = capsys.readouterr().out
    assert "is in no table of the schema" in out and "Repaired" not in out
    db = plyvel.DB(str(home / "store"))
    assert db.get(b"Zzz") == b""
    db.close()


def test_the_faucet_is_refused_on_a_chain_that_is_not_a_dev_chain() -> None:
    class Geth:
        """A Web3 of a chain that is no dev chain, as far as the faucet asks."""

        provider = object()
        client_version = "Geth/v1.14.0-stable/linux-amd64/go1.22"

    chain = ChainClient.embedded(config=ChainConfig(backend="rpc", url="http://127.0.0.1:1"))
    assert chain.is_dev()  # eth-tester
    chain.w3 = Geth()  # type: ignore[assignment]
    assert not chain.is_dev()
    with pytest.raises(NoFaucet, match="is not a dev chain: only the embedded chain and anvil"):
        chain.faucet(b"\x01" * 20, 1)
    assert "wallet send" in outcome(NoFaucet).hint


def test_store_check_without_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "store", "check"]) == 1
    assert "has no store yet" in capsys.readouterr().err


def test_tables_never_wrap_ids() -> None:
    from rich.console import Console
    from rich.text import Text

    from node.cli.base import IdTable, short

    pid = "5a45d65dd9bb" + "0" * 52
    peer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xw"
    assert short(pid) == "5a45d65dd9bb…"
    assert short(peer) == "12D3KooWQYhT…CVe2Xw"
    assert short("0x70997970C51812dc3A010C7d01b50e0d17dc79C8") == (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    )
    long_title = "A title long enough to take the rest of a narrow terminal and then some more"

    def render(wide: bool, width: int) -> str:
        table = IdTable("project id", "peer", "title", wide=wide)
        table.add_row(pid, Text(peer), long_title)
        console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        console.print(table)
        return console.export_text()

    narrow = render(False, 80)
    assert "5a45d65dd9bb…" in narrow and pid not in narrow and "12D3KooWQYhT…CVe2Xw" in narrow
    # --wide: whole ids, each on one line; the other cells fold around them.
    wide = render(True, 160)
    assert pid in wide and peer in wide
