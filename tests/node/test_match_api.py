"""GET /v1/match and `workwork match` against a real daemon: a real store, a real embedded chain.

Like every daemon of the tests, its store refuses calls from the event loop (strict mode): the
route reads the store through the gateway, or this test fails with a 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner
from eth_account import Account
from web3 import Web3

from node.chain.client import ChainClient, checksum, dev_fund
from node.cli.base import cli
from node.cli.main import main
from node.client import Client, DaemonError
from node.config import ChainConfig
from node.errors import NoProfile, outcome
from node.keys import Identity
from protocol import EpochRoot, Profile, Record, decode
from protocol.epoch import Summary
from tests.node.test_api import call, daemon
from tests.node.test_settlement_api import daemon as chain_daemon
from tests.support import factories as f
from tests.support.anvil import running_anvil

BOB = Account.from_key(hashlib.sha256(b"workwork match tests: bob").digest())
BOB_WALLET = bytes.fromhex(BOB.address[2:])


def lines(*records: Any) -> list[str]:
    return [r.raw.hex() for r in records]


def anchor_as_bob(chain: ChainClient, root: Record) -> bytes:
    """Anchors the epoch of bob's epoch root `root` from bob's wallet on the daemon's chain;
    returns the transaction's hash."""
    dev_fund(chain.w3, BOB.address)
    bob = ChainClient(chain.w3, chain.address, BOB, config=chain.config)
    body = root.expect(EpochRoot)
    summary = Summary(body.root, body.leaf_count, body.total_weight)
    tx = bob.sign_anchor(body.project_id, body.epoch, summary)
    bob.transact(tx)
    return tx.hash


def bobs_epoch(chain_id: int, contract: bytes, epoch: int = 0, **changes: Any) -> list[Record]:
    """A contribution to bob's "ml" project of weight 10, bob's acceptance of it into `epoch`,
    and the manifest and epoch root that anchor it on chain `chain_id` at `contract`."""
    work = f.contribution("dave", "bob", "ml", summary=f"model {epoch}")
    accepted = f.acceptance(work, "bob", epoch=epoch, weight=10)
    return [
        work,
        accepted,
        *f.anchoring(
            [accepted], [work], "bob", "ml",
            epoch=epoch, chain_id=chain_id, contract=contract, **changes,
        ),
    ]  # fmt: skip


def cli_json(root: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--data-dir", str(root), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_match_ranks_others_open_projects_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "me"
    with trio.fail_after(60):
        async with daemon(root) as (running, client):
            # Without a profile there is nothing to rank for: a typed 404 with a hint.
            with pytest.raises(DaemonError) as info:
                await call(client.match)
            assert (info.value.status, info.value.type) == (404, "NoProfile")
            assert info.value.hint == outcome(NoProfile).hint and "profile set" in info.value.hint

            await call(
                client.set_profile,
                name="Mia",
                skills=["ML", "python"],
                interests=["climate"],
                rate="0.001 eth/weight",
            )
            mine = await call(
                client.post_project, name="mine", title="My model", skills=["machine-learning"]
            )
            ml = f.project(
                "bob", "ml", title="Forecast city emissions", payout=BOB_WALLET,
                description="A machine learning model of emissions for the climate plan.",
                skills=("machine-learning",), epoch_length=0,
            )  # fmt: skip
            closed = f.project("dave", "old", title="Old ML model", skills=("ml",), status="closed")
            essays = f.project("carol", "essays", title="Essays", skills=("writing",))
            blog = f.project("carol", "blog", title="Blog posts", skills=("copywriting",))
            bees = f.project(
                "erin", "bees", title="Count bees", description="In the meadows.", skills=()
            )
            added = await call(client.import_records, lines(ml, closed, essays, blog, bees))
            assert (added["added"], added["rejected"]) == (5, [])

            # Work of ours that carol accepted: proven writing.
            ours = await call(
                client.contribute, project_id=f.pid("carol", "essays").hex(),
                summary="An essay", evidence_uri="https://example.org/essay",
            )  # fmt: skip
            accepted = f.acceptance(decode(bytes.fromhex(ours["raw"])), "carol", weight=7)
            assert (await call(client.import_records, lines(accepted)))["added"] == 1

            # Bob's epoch 0 anchored on this node's chain, its root published, and funded by us
            # with 0.01 ETH over a weight of 10: 0.001 ETH per unit of weight.
            assert running.settlement is not None
            chain = running.settlement.chain
            pid = f.pid("bob", "ml")
            tx = await call(anchor_as_bob, chain, bobs_epoch(chain.chain_id, chain.address)[-1])
            epoch = bobs_epoch(chain.chain_id, chain.address, tx_hash=tx)
            added = await call(client.import_records, lines(*epoch))
            assert added["added"] == len(epoch), added
            await call(client.fund, pid.hex(), 0, 10**16)

            found = await call(client.match)
            items = found["items"]
            titles = [i["title"] for i in items]
            # Ours and the closed one are left out; the one that fits comes first.
            assert set(titles) == {"Forecast city emissions", "Essays", "Blog posts", "Count bees"}
            assert titles[0] == "Forecast city emissions"
            assert found["considered"] == 4 and found["accepted_work"] == 1
            assert found["funding"] == {"epochs_asked": 1, "epochs_read": 1}
            assert mine["project_id"] not in {i["project_id"] for i in items}
            for item in items:
                assert re.fullmatch("[0-9a-f]{64}", item["project_id"])
                assert isinstance(item["score"], float)
                for part in ("love", "good_at", "needs", "paid"):
                    assert 0 <= item[part]["score"] <= 1 and item[part]["reason"]
            best = items[0]
            assert best["project_id"] == pid.hex()
            assert "climate" in best["love"]["reason"]
            assert best["paid"]["reason"] == (
                "paid: 0.001 ETH per unit of weight (0.01 ETH funded over 1 epoch(s), "
                "0 ETH claimed), at or above your rate of 0.001 ETH per weight"
            )
            by_title = {i["title"]: i for i in items}
            assert by_title["Essays"]["good_at"]["reason"] == (
                "good at: 1 accepted contribution(s) tagged writing (weight 7, in 1 project(s))"
            )
            assert (
                "related to your 1 accepted contribution(s) tagged writing"
                in (by_title["Blog posts"]["good_at"]["reason"])
            )
            assert by_title["Count bees"]["score"] == 0
            assert items[-1]["title"] == "Count bees"

            assert [i["title"] for i in (await call(client.match, limit=1))["items"]] == [
                "Forecast city emissions"
            ]
            with pytest.raises(DaemonError) as info:
                await call(client.match, limit=0)
            assert (info.value.status, info.value.type) == (400, "BadRequest")

            # The command: --json prints the list, best first; people get the reasons.
            shown = await call(cli_json, root, "match", "--limit", "2")
            assert [i["title"] for i in shown] == titles[:2]
            result = await call(
                CliRunner().invoke, cli, ["--data-dir", str(root), "match", "--limit", "1"]
            )
            assert result.exit_code == 0, result.output
            assert "1. Forecast city emissions" in result.output
            assert "at or above your rate" in result.output


async def test_profile_set_about_through_the_command_and_match_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "me"
    # Square brackets as people write them, which rich would read as markup.
    about = "I watch birds every weekend [red]mostly[/red].\nI map where they nest [/b]."
    with trio.fail_after(60):
        async with daemon(root) as (_, client):
            shown = await call(
                cli_json, root, "profile", "set", "--name", "Mia", "--skill", "swift",
                "--about", about,
            )  # fmt: skip
            assert shown["fields"]["about"] == about
            # Signed, stored and served: the record in force holds the text as given.
            held = await call(client.profile)
            assert held["id"] == shown["id"]
            assert decode(bytes.fromhex(held["raw"])).expect(Profile).about == about
            # People see it as written, both lines, brackets and all.
            shown_to_people = await call(
                CliRunner().invoke, cli, ["--data-dir", str(root), "profile", "show"]
            )
            assert shown_to_people.exit_code == 0, shown_to_people.output
            assert "[red]mostly[/red]" in shown_to_people.output
            assert "I map where they nest [/b]." in shown_to_people.output

            birds = f.project(
                "bob",
                "birds",
                title="Bird sightings app",
                description="Log sightings with photos.",
                skills=("ios",),
            )
            ledger = f.project("bob", "ledger", title="Ledger app",
                               description="Track expenses.", skills=("ios",))  # fmt: skip
            assert (await call(client.import_records, lines(ledger, birds)))["added"] == 2
            best = (await call(client.match))["items"][0]
            assert best["title"] == "Bird sightings app"
            assert best["love"]["reason"] == "love: it is about birds, from your about text"

            # A revision that does not name it keeps it; '' clears it.
            kept = await call(cli_json, root, "profile", "set", "--rate", "20 USDC/h")
            assert kept["fields"]["about"] == about and kept["fields"]["revision"] == 1
            cleared = await call(cli_json, root, "profile", "set", "--about", "")
            assert cleared["fields"]["about"] == "" and cleared["fields"]["rate"] == "20 USDC/h"
            love = (await call(client.match))["items"][0]["love"]
            assert love == {
                "score": 0.0,
                "reason": "love: your profile names no interests and has no about text",
            }

            # Over 2,000 bytes: refused by the record's rules, one line, nothing stored.
            capsys.readouterr()
            code = await call(
                main, ["--data-dir", str(root), "profile", "set", "--about", "€" * 667]
            )
            assert code == 1
            assert capsys.readouterr().err.startswith(
                "error: profile.about: 2001 bytes is outside [0, 2000]\nhint: "
            )
            with pytest.raises(DaemonError) as info:
                await call(client.set_profile, about="x" * 2001)
            assert (info.value.status, info.value.type) == (400, "InvalidField")
            assert (await call(client.profile))["id"] == cleared["id"]


async def test_match_reads_funding_on_this_nodes_chain_only(tmp_path: Path) -> None:
    root = tmp_path / "me"
    with trio.fail_after(60):
        async with daemon(root) as (running, client):
            await call(client.set_profile, name="Mia", skills=["ml"])
            ml = f.project("bob", "ml", title="ML", skills=("machine-learning",))
            # An epoch root on this chain whose transaction the chain never saw: the anchorer
            # is looked up, found nowhere, and the epoch reads as unfunded under the payout.
            assert running.settlement is not None
            chain = running.settlement.chain
            await call(client.import_records, lines(ml, *bobs_epoch(chain.chain_id, chain.address)))
            item = (await call(client.match))["items"][0]
            assert item["paid"]["reason"] == "paid: 1 anchored epoch(s), none funded yet"
            # An epoch root on another chain: not asked, and said so.
            await call(client.import_records, lines(*bobs_epoch(1, chain.address, 1)))
            found = await call(client.match)
            assert found["funding"] == {"epochs_asked": 1, "epochs_read": 1}
            assert "none funded yet" in found["items"][0]["paid"]["reason"]


@pytest.mark.slow
async def test_match_leaves_pay_unknown_when_the_chain_does_not_answer(tmp_path: Path) -> None:
    owner = Identity(f.key("mia"), Account.create())
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(running_anvil())
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
        await call(dev_fund, w3, owner.wallet.address)
        deployed = await call(ChainClient.deploy, w3, owner.wallet)
        config = ChainConfig(
            backend="rpc", url=url, contract=checksum(deployed.address),
            poll_interval=0.05, timeout=0.5, retries=1,
        )  # fmt: skip
        with trio.fail_after(60):
            async with chain_daemon(tmp_path / "n", owner, config):
                client = await call(Client.connect, tmp_path / "n")
                await call(client.set_profile, name="Mia", skills=["ml"])
                ml = f.project("bob", "ml", title="ML", skills=("machine-learning",))
                epoch = bobs_epoch(deployed.chain_id, deployed.address)
                await call(client.import_records, lines(ml, *epoch))
                answered = (await call(client.match))["items"][0]["paid"]["reason"]
                assert answered == "paid: 1 anchored epoch(s), none funded yet"
                # The chain goes away: matching still answers, and says what it lacks.
                stack.close()
                found = await call(client.match)
                assert found["funding"] == {"epochs_asked": 1, "epochs_read": 0}
                assert found["items"][0]["paid"]["reason"] == (
                    "paid: 1 anchored epoch(s); their funding was not read from the chain"
                )
                client.close()


def test_the_client_and_the_command_have_the_route() -> None:
    assert Client.match.__doc__ and "love" in Client.match.__doc__
    result = CliRunner().invoke(cli, ["match", "--help"])
    assert result.exit_code == 0 and "workwork match --limit 3" in result.output
