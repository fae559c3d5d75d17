"""README's owner example with weekly epochs, through a real daemon and the CLI.

The defect this guards against (issue 12): `workwork epoch anchor <id> <current epoch>` anchored
the current, unfinished week; the next `accept` went into that anchored epoch; from then on the
owner's own audit failed, `share` failed, and the only way out was to guess `--epoch N+1`. Here
every step of that path is refused or routed elsewhere, with a typed error and a hint, and the
state stays payable: a reviewer's acceptance that reaches the node after the anchor (backdated)
is stored and shown as late, and neither the audit nor anyone's share suffers from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol import Acceptance, decode, sign
from tests.support import factories as f
from tests.support.cli import daemon, ok, run

# Slow (a real daemon): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

WEEK = 604_800
ETHER = 10**18


def refused(home: Path, *args: str) -> dict[str, Any]:
    """Runs a command that must fail with exit code 1; returns its JSON error."""
    done = run(home, "--json", *args)
    assert done.returncode == 1, (args, done.stdout, done.stderr)
    error: dict[str, Any] = json.loads(done.stdout)["error"]
    assert error["hint"], error
    return error


def standing(home: Path, pid: str) -> dict[str, str | None]:
    return {
        c["fields"]["summary"]: None if c["standing"] is None else c["standing"]["status"]
        for c in ok(home, "contributions", "--project", pid)
    }


def test_weekly_epochs_can_no_longer_reach_an_unpayable_state(tmp_path: Path) -> None:
    home = tmp_path / "owner"
    ok(home, "init")
    with daemon(home, "--chain", "embedded"):
        ok(home, "profile", "set", "--name", "Olivia", "--skill", "writing")
        carol = f.pub("carol").hex()
        posted = ok(
            home, "project", "post", "docs", "--title", "Write the docs", "--skill", "writing",
            "--epoch-length", str(WEEK), "--reviewer", carol,
        )  # fmt: skip
        pid = posted["project_id"]
        works = {
            name: ok(
                home, "contribute", pid, "--summary", name, "--evidence-uri", f"https://x/{name}"
            )
            for name in ("one", "two", "three", "four")
        }

        # Accepted this week: the current epoch, which is open until the week ends.
        first = ok(home, "accept", works["one"]["id"], "--weight", "10")
        current = first["fields"]["epoch"]
        assert ok(home, "project", "show", pid)["current_epoch"] == current
        # README's `epoch anchor <id> <epoch>` on the current week is refused, saying when.
        early = refused(home, "epoch", "anchor", pid, str(current))
        assert early["type"] == "EpochOpen"
        assert f"epoch {current} of project 'docs' runs until" in early["message"]
        assert "it can be anchored from" in early["message"]
        assert [e["anchored"] for e in ok(home, "epoch", "status", pid)["items"]] == [False]

        # A week that has closed (its end plus 300 s) is anchored; two weeks back always has.
        closed = current - 2
        ok(home, "accept", works["two"]["id"], "--weight", "5", "--epoch", str(closed))
        anchored = ok(home, "epoch", "anchor", pid, str(closed))
        assert anchored["leaf_count"] == 1 and anchored["total_weight"] == "5"

        # No acceptance goes into the anchored week: neither named, nor by default, nor by
        # re-weighing what it pays.
        into = refused(
            home, "accept", works["three"]["id"], "--weight", "3", "--epoch", str(closed)
        )
        assert into["type"] == "EpochAnchored"
        assert f"the first open epoch is {current}" in into["message"]
        again = refused(home, "accept", works["two"]["id"], "--weight", "7")
        assert again["type"] == "ContributionAnchored"
        later = ok(home, "accept", works["three"]["id"], "--weight", "3")
        assert later["fields"]["epoch"] == current

        # A reviewer's acceptance of the fourth, dated inside the anchored week, arrives from
        # the network after the anchor: stored, and late.
        four = decode(bytes.fromhex(works["four"]["raw"]))
        body = Acceptance(
            created_at=closed * WEEK + 3600,
            revision=0,
            project_id=bytes.fromhex(pid),
            contribution_id=four.id,
            epoch=closed,
            weight=4,
        )
        backdated = sign(body, f.key("carol"))
        lines = tmp_path / "late.jsonl"
        lines.write_text(json.dumps({"raw": backdated.raw.hex()}) + "\n")
        assert ok(home, "import", str(lines))["added"] == 1
        assert standing(home, pid) == {
            "one": "open",
            "two": "anchored",
            "three": "open",
            "four": "late",
        }

        # The owner's audit of the anchored week passes and names the late acceptance.
        audit = ok(home, "audit", pid, str(closed))
        assert audit["ok"] is True and audit["findings"] == []
        assert audit["late"] == ["0x" + backdated.id.hex()]
        # The anchored week pays its one leaf in full; the late one is told why it has none.
        ok(home, "fund", pid, str(closed), "1ether")
        paid = ok(home, "share", works["two"]["id"])
        assert (paid["anchored"], paid["claimable"]) == (True, str(ETHER))
        assert ok(home, "claim", works["two"]["id"])["amount"] == str(ETHER)
        late = refused(home, "share", works["four"]["id"])
        assert (
            late["type"] == "LateAcceptance"
            and "came after that epoch was anchored" in (late["message"])
        )
        assert ok(home, "share", works["one"]["id"])["anchored"] is False
        proof = tmp_path / "proof.json"
        assert run(home, "proof", "export", works["two"]["id"], "-o", str(proof)).returncode == 0
        assert ok(home, "proof", "verify", str(proof))["valid"] is True
        # Status: the anchored week, and this week's two acceptances waiting for it to end.
        epochs = {e["epoch"]: e for e in ok(home, "epoch", "status", pid)["items"]}
        assert epochs[closed]["anchored"] and epochs[closed]["leaves"] == 1
        assert not epochs[current]["anchored"] and epochs[current]["leaves"] == 2
