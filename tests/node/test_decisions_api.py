"""Collective decisions through the API, the client and the CLI of a running daemon."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner

import node.cli.main  # noqa: F401  (registers the commands)
from node.api import ROUTES
from node.cli.base import cli
from node.client import Client, DaemonError
from node.keys import Identity
from protocol import EpochRoot, decode
from protocol.epoch import committed, manifest, summarize
from protocol.merkle import MerkleTree
from tests.node.test_api import call, daemon


def anchored_epoch(
    identity: Identity, pid: bytes, acceptance: dict[str, Any], work: dict[str, Any]
) -> list[str]:
    """The manifest and epoch root of epoch 0 holding one acceptance, as import lines (what
    the settlement service publishes after anchoring; no chain is needed to count power)."""
    accepted, contribution = (
        decode(bytes.fromhex(acceptance["raw"])),
        decode(bytes.fromhex(work["raw"])),
    )
    now = int(time.time())
    parts = manifest(pid, 0, [accepted.id], created_at=now, sign=identity.sign)
    tree = summarize(
        MerkleTree.build(committed(pid, 0, [accepted], {contribution.id: contribution}))
    )
    root = identity.sign(
        EpochRoot(
            created_at=now,
            project_id=pid,
            epoch=0,
            root=tree.root,
            leaf_count=tree.leaf_count,
            total_weight=tree.total_weight,
            manifest=parts[0].id,
            parts=len(parts),
            chain_id=31337,
            contract=b"\x11" * 20,
            tx_hash=b"\x22" * 32,
        )
    )
    return [json.dumps({"raw": r.raw.hex()}) for r in (*parts, root)]


async def expect_error(kind: str, fn: Any, *args: Any, **kwargs: Any) -> DaemonError:
    with pytest.raises(DaemonError) as caught:
        await call(fn, *args, **kwargs)
    assert caught.value.type == kind, caught.value.message
    return caught.value


def invoke(root: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--data-dir", str(root), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_propose_vote_and_tally(tmp_path: Path) -> None:
    root = tmp_path / "a"
    with trio.fail_after(60):
        async with daemon(root) as (running, client):
            posted = await call(client.post_project, name="docs", title="Docs")
            pid = posted["project_id"]
            # Nothing anchored yet: nobody has power, so no proposal.
            await expect_error("Conflict", client.propose, pid, "signal", "Too early?")
            work = await call(
                client.contribute, project_id=pid, summary="guide", evidence_uri="https://e.org"
            )
            verdict = await call(client.accept, work["id"], 10, epoch=0)
            lines = anchored_epoch(running.identity, bytes.fromhex(pid), verdict, work)
            imported = await call(client.import_records, lines)
            assert imported["added"] == 2 and not imported["rejected"]

            asked = await call(client.propose, pid, "signal", "Move to a wiki?", window=120)
            assert asked["kind"] == "proposal" and asked["fields"]["snapshot"] == 0
            await expect_error(
                "BadRequest", client.propose, pid, "allocate", "Pay", params={"epoch": 0}
            )
            await expect_error(
                "BadRequest", client.propose, pid, "signal", "Bad", params={"amount": "1"}
            )
            await expect_error("Conflict", client.propose, pid, "signal", "Bad", snapshot=3)
            allocate = await call(
                client.propose,
                pid,
                "allocate",
                "Pay epoch 0",
                params={"epoch": 0, "amount": str(10**30)},
                options=None,
            )
            assert allocate["fields"]["params"][2] == str(10**30)

            await call(client.vote, asked["id"], "no")
            voted = await call(client.vote, asked["id"], "yes", reason="easier")
            assert voted["fields"]["revision"] == 1
            await expect_error(
                "ReferenceMismatch", client.vote, asked["id"], "approve", approve=[0]
            )

            shown = await call(client.proposal, asked["id"])
            assert shown["open"] and shown["passed"] and shown["outcome"] == "passed"
            assert (shown["total_power"], shown["yes"], shown["no"]) == ("10", "10", "0")
            [ballot] = shown["ballots"]
            assert ballot["choice"] == "yes" and ballot["power"] == "10"
            assert ballot["credits"] == [
                {"epoch": 0, "contribution_id": work["id"], "weight": "10"}
            ]
            listed = await call(client.proposals, pid)
            # Oldest first, then by id (both were made in the same second, or not).
            by_id = {p["proposal"]["id"]: p for p in listed["items"]}
            assert set(by_id) == {asked["id"], allocate["id"]}
            assert by_id[allocate["id"]]["params"] == {
                "epoch": 0,
                "token": None,
                "amount": str(10**30),
            }
            await expect_error("NotFound", client.proposal, work["id"])

            # The CLI is a client of the same routes.
            out = await call(invoke, root, "proposals", pid, "--open")
            assert len(out["items"]) == 2
            out = await call(invoke, root, "vote", allocate["id"][:12], "abstain")
            assert out["fields"]["choice"] == "abstain"
            out = await call(invoke, root, "proposal", "show", allocate["id"])
            assert out["outcome"] == "rejected" and out["abstain"] == "10"
            out = await call(
                invoke,
                root,
                "propose",
                pid,
                "signal",
                "--title",
                "Next language",
                "--option",
                "de",
                "--option",
                "fr",
                "--window",
                "2m",
            )
            assert out["fields"]["options"] == ["de", "fr"]
            out = await call(invoke, root, "vote", out["id"], "approve", "--option", "1")
            assert out["fields"]["approve"] == [1]
            text = await call(CliRunner().invoke, cli, ["--data-dir", str(root), "proposals", pid])
            assert text.exit_code == 0 and "signal" in text.output and "passed" in text.output


def test_routes_are_described() -> None:
    paths = {(r.method, r.path) for r in ROUTES}
    assert {
        ("POST", "/v1/proposals"),
        ("POST", "/v1/votes"),
        ("GET", "/v1/proposals/{proposal_id}"),
        ("GET", "/v1/projects/{project_id}/proposals"),
    } <= paths
    assert hasattr(Client, "propose") and hasattr(Client, "vote")


async def test_project_governance_through_the_api_and_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "a"
    with trio.fail_after(60):
        async with daemon(root) as (running, client):
            posted = await call(client.post_project, name="docs", title="Docs", quorum=300)
            pid = posted["project_id"]
            # The rest takes the defaults; the record states all five.
            assert posted["fields"]["governance"] == ["owner", 300, 500, 0, 7 * 86_400]
            revised = await call(client.post_project, name="docs", threshold=600)
            assert revised["fields"]["governance"] == ["owner", 300, 600, 0, 7 * 86_400]
            # A revision that names none keeps them.
            kept = await call(client.post_project, name="docs", description="more")
            assert kept["fields"]["governance"] == revised["fields"]["governance"]
            out = await call(
                invoke, root, "project", "post", "docs", "--window", "3600", "--mode", "lazy"
            )
            assert out["fields"]["governance"] == ["lazy", 300, 600, 0, 3600]
            # Lazy now: only a passed settings decision changes them.
            await expect_error("Conflict", client.post_project, name="docs", quorum=100)
            await expect_error("Conflict", client.close_project, pid)
            await expect_error("BadRequest", client.post_project, name="docs", mode="dao")
            await expect_error("BadRequest", client.post_project, name="docs", quorum=1001)
            shown = await call(client.governance, pid)
            assert (shown["mode"], shown["quorum"], shown["threshold"], shown["window"]) == (
                "lazy",
                300,
                600,
                3600,
            )
            assert shown["decision"] is None and len(shown["history"]) == 1
            out = await call(invoke, root, "governance", pid)
            assert out["mode"] == "lazy" and out["window"] == 3600
            text = await call(CliRunner().invoke, cli, ["--data-dir", str(root), "governance", pid])
            assert text.exit_code == 0 and "the project record" in text.output

            work = await call(
                client.contribute, project_id=pid, summary="guide", evidence_uri="https://e.org"
            )
            verdict = await call(client.accept, work["id"], 10, epoch=0)
            lines = anchored_epoch(running.identity, bytes.fromhex(pid), verdict, work)
            await call(client.import_records, lines)
            # A settings proposal keeps what it does not name; mode and window go together.
            asked = await call(
                client.propose, pid, "settings", "Owner mode", params={"mode": "owner"}
            )
            assert asked["fields"]["params"][-2:] == ["owner", 3600]
            plain = await call(client.propose, pid, "settings", "Quorum", params={"quorum": 100})
            assert len(plain["fields"]["params"]) == 6
            await expect_error(
                "BadRequest", client.propose, pid, "settings", "Bad", params={"mode": "dao"}
            )
