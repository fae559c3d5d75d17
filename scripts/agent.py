#!/usr/bin/env python3
"""An example AI agent that takes part in WorkWork through the local API, as a person would.

It needs a running node (`workwork node start`) and uses only `node.client`:

1. makes sure it has a profile that says it is an agent (and its skills);
2. asks the node to match open projects of others to its profile (GET /v1/match: love, good
   at, needs and paid, each with a reason), takes the best one that fits, and prints why;
3. produces a piece of work: here a small Markdown file about the project (a real agent would
   write code, docs or data);
4. stores the file on its node (POST /v1/evidence), which serves it to peers, and contributes
   with its `workwork:sha256:` URI as evidence: the owner's node fetches it over libp2p and
   checks the hash (`workwork evidence get <contribution id>`);
5. follows the contribution until the project's owner accepts it, or the wait runs out,
   and prints the outcome as JSON.

With --vote it takes part in decisions instead: it waits for open proposals in the projects it
contributed to (where accepted work gives it voting power), votes yes on each it has not voted
on, with a reason, and prints what it voted as JSON. A real agent would read the proposal and
decide; this one trusts its project's members.

    scripts/agent.py --data-dir ~/.workwork-agent --skill writing --timeout 600
    scripts/agent.py --data-dir ~/.workwork-agent --vote --timeout 60

Exit status: 0 accepted (or voted), 1 an error (no daemon, no fitting project), 3 not accepted
(or nothing to vote on) in time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.client import Client, DaemonError

PARTS = ("love", "good_at", "needs", "paid")


def pick(client: Client) -> tuple[Any, Any] | None:
    """Returns the best match the node's ranker gives our profile, and its project; None if
    no open project of someone else fits at all (nothing we are good at or care about)."""
    for item in client.match(limit=10)["items"]:
        if item["good_at"]["score"] > 0 or item["love"]["score"] > 0:
            return item, client.project(item["project_id"])
    return None


def produce(project: Any, out_dir: Path) -> Path:
    """Does the work: a stand-in for what a real agent would make for the project."""
    fields = project["fields"]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{fields['name']}-{int(time.time())}.md"
    path.write_text(
        f"# Notes for {fields['title']}\n\n"
        f"Skills applied: {', '.join(fields['skills']) or 'none listed'}.\n\n"
        f"{fields['description'] or 'No description was given; here is a first outline.'}\n"
    )
    return path


def follow(client: Client, contribution_id: str, timeout: float) -> Any | None:
    """Polls the contribution until it has an acceptance; None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.contribution(contribution_id)
        if found["acceptance"] is not None:
            return found["acceptance"]
        time.sleep(1.0)
    return None


def vote_open(client: Client, timeout: float) -> list[Any]:
    """Votes yes on every open proposal, not voted on yet, of the projects we contributed to;
    waits up to `timeout` seconds for at least one. Returns what was voted."""
    me = client.status()["public_key"]
    deadline = time.monotonic() + timeout
    voted: list[Any] = []
    while not voted and time.monotonic() < deadline:
        projects = {c["fields"]["project_id"] for c in client.contributions()["items"]}
        for pid in sorted(projects):
            for item in client.proposals(pid, only_open=True)["items"]:
                shown = client.proposal(item["proposal"]["id"])
                if any(b["author"] == me for b in shown["ballots"]):
                    continue
                made = client.vote(
                    item["proposal"]["id"], "yes", reason="My accepted work here says yes."
                )
                voted.append(
                    {
                        "proposal_id": item["proposal"]["id"],
                        "title": item["title"],
                        "vote": made["id"],
                    }
                )
        if not voted:
            time.sleep(0.5)
    return voted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="the node's data dir (default: $WORKWORK_HOME)")
    parser.add_argument("--skill", action="append", default=[], help="a skill (repeatable)")
    parser.add_argument("--name", default="Example agent", help="profile name if none exists")
    parser.add_argument("--out", default="agent-work", help="where produced files go")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    parser.add_argument(
        "--vote", action="store_true", help="vote yes on open proposals of our projects, then exit"
    )
    args = parser.parse_args()
    if args.vote:
        try:
            with Client.connect(args.data_dir) as client:
                voted = vote_open(client, args.timeout)
        except DaemonError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        print(json.dumps({"voted": voted}, indent=2))
        return 0 if voted else 3

    try:
        with Client.connect(args.data_dir) as client:
            skills = {s.lower() for s in args.skill}
            try:
                listed = set(client.profile()["fields"]["skills"])
                # The node matches projects to the profile it holds: skills given here join it.
                if not skills <= listed:
                    client.set_profile(skills=sorted(skills | listed))
                skills |= listed
            except DaemonError as exc:
                if exc.type != "NotFound":
                    raise
                client.set_profile(name=args.name, actor="agent", skills=sorted(skills))
            picked = pick(client)
            if picked is None:
                print(f"error: no open project fits the skills {sorted(skills)}", file=sys.stderr)
                return 1
            chosen, project = picked
            print(f"picked {project['fields']['name']} (score {chosen['score']}):", file=sys.stderr)
            for part in PARTS:
                print(f"  {chosen[part]['reason']}", file=sys.stderr)
            work = produce(project, Path(args.out))
            stored = client.put_evidence(work.read_bytes())
            contribution = client.contribute(
                project_id=project["project_id"],
                summary=f"Agent notes for {project['fields']['title']}",
                evidence_uri=stored["uri"],
                evidence_hash=stored["sha256"],
                effort=1,
            )
            print(
                f"contributed {contribution['id']} to {project['fields']['name']}; "
                f"waiting up to {args.timeout:.0f} s for acceptance",
                file=sys.stderr,
            )
            verdict = follow(client, contribution["id"], args.timeout)
    except DaemonError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    outcome = {
        "project_id": project["project_id"],
        "contribution_id": contribution["id"],
        "evidence": str(work),
        "evidence_uri": stored["uri"],
        "why": {part: chosen[part] for part in PARTS},
        "accepted": verdict is not None,
        "weight": None if verdict is None else verdict["fields"]["weight"],
        "epoch": None if verdict is None else verdict["fields"]["epoch"],
    }
    print(json.dumps(outcome, indent=2))
    return 0 if verdict is not None else 3


if __name__ == "__main__":
    sys.exit(main())
