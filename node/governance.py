"""A project's governance and effective acceptances from the store (`protocol.governance`).

`governance_of` walks the project's passed `settings` decisions; `verdicts` and `effective_tree`
apply its passed `accept` decisions to the acceptances in force, in lazy and vote modes. Both
are what every node computes from the same records at the same `now`; the owner's node makes a
passed decision's verdict an acceptance of its own (`executions`) before it anchors an epoch,
so that the epoch's manifest lists signed acceptances as always and the anchored tree is the
effective one.

A reviewer that only a decision names counts for the acceptance in force here (the store's
own index follows the project revision in force); see docs/GOVERNANCE.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from node.chain.trees import EpochTree
from node.decisions import _all, power_of
from node.errors import NotFound, SettlementError
from protocol import Acceptance, Contribution, Project, Proposal, Record
from protocol import Decision as DecisionBody
from protocol.epoch import summarize
from protocol.governance import Governance, Verdict, at, timeline, verdict
from protocol.merkle import Leaf, MerkleTree
from protocol.records import project_id
from protocol.tally import tally
from protocol.validate import first_decision, latest_authorized
from storage import Store
from storage.store import MAX_LIMIT


def passes(store: Store, project: Record, proposal: Record, governance: Governance) -> bool:
    """Returns whether a closed proposal passed, tallied with `governance`'s settings.

    Once the owner has signed the proposal's decision (`node.outcomes`), the ballots are the
    ones it lists, so that a vote backdated into the window after the decision changes nothing
    here either; the powers are still this node's own count, never the decision's word.
    """
    body = proposal.expect(Proposal)
    settings = governance.settings
    power, _ = power_of(store, project, body.snapshot, settings.half_life)
    held = first_decision(_all(store.decisions, proposal.id))
    if held is None:
        ballots = _all(store.votes, proposal.id)
    else:
        listed = (store.get(vid) for vid in held.expect(DecisionBody).ballots)
        ballots = [vote for vote in listed if vote is not None]
    return tally(proposal, ballots, power, settings).passed


def line_of(store: Store, project: Record, *, now: float) -> tuple[Governance, ...]:
    """Returns the governance timeline of a project (`protocol.governance.timeline`)."""
    pid = project_id(project.author, project.expect(Project).name)
    return timeline(
        project,
        _all(store.proposals, pid),
        lambda proposal, governance: passes(store, project, proposal, governance),
        now=now,
    )


def governance_of(
    store: Store, project: Record, *, now: float, when: float | None = None
) -> Governance:
    """Returns a project's governance in effect at `when` (default: `now`), as known at `now`.

    Raises:
        StorageError: the store could not be read.
    """
    return at(line_of(store, project, now=now), now if when is None else when)


def governed(project: Record, governance: Governance) -> Record:
    """Returns the project revision with the reviewers, epoch length and status `governance`
    gives: what counting acceptances and closing epochs read. Not a signed record (its bytes
    and id are the revision's); never store or send it."""
    body = project.expect(Project)
    changed = replace(
        body,
        reviewers=governance.reviewers,
        epoch_length=governance.epoch_length,
        status=governance.status,
    )
    return replace(project, body=changed)


def project_of(store: Store, pid: bytes) -> Record:
    """Returns the project revision in force (NotFound if none)."""
    posting = store.project(pid)
    if posting is None:
        raise NotFound(f"no project {pid.hex()} in the store")
    return posting


def accept_decisions(
    store: Store, project: Record, line: tuple[Governance, ...], *, now: float
) -> dict[bytes, list[Record]]:
    """Returns the passed `accept` proposals of a project closed by `now`, by contribution id;
    those naming a contribution the store does not hold as one of this project are left out."""
    pid = project_id(project.author, project.expect(Project).name)
    found: dict[bytes, list[Record]] = {}
    for proposal in _all(store.proposals, pid):
        body = proposal.expect(Proposal)
        if body.action != "accept" or body.closes_at > now:
            continue
        cid = body.param("contribution_id")
        work = store.get(cid)
        if work is None or not isinstance(work.body, Contribution) or work.body.project_id != pid:
            continue
        if passes(store, project, proposal, at(line, body.created_at)):
            found.setdefault(cid, []).append(proposal)
    return found


def verdicts(store: Store, project: Record, *, now: float) -> dict[bytes, Verdict]:
    """Returns what counts of every judged contribution of a project at `now`, by id.

    Reads every contribution's acceptances when the governance names other reviewers than the
    revision in force (the store's index of acceptances in force follows the revision).

    Raises:
        StorageError: the store could not be read.
    """
    line = line_of(store, project, now=now)
    governance = at(line, now)
    decisions = (
        accept_decisions(store, project, line, now=now) if governance.mode != "owner" else {}
    )
    pid = project_id(project.author, project.expect(Project).name)
    counting = governed(project, governance)
    in_force: dict[bytes, Record] = {}
    if governance.reviewers == project.expect(Project).reviewers:
        for epoch in _epochs(store, pid):
            for acceptance in _all(store.acceptances, pid, epoch):
                in_force[acceptance.expect(Acceptance).contribution_id] = acceptance
        # Withdrawals (weight 0) are in force too: a decision's window runs from them.
        for cid in decisions:
            held = store.acceptance_of(cid)
            if held is not None:
                in_force[cid] = held
    else:
        for work in _all(store.contributions, pid):
            chosen = latest_authorized(counting, _all(store.acceptances_of, work.id)).get(work.id)
            if chosen is not None:
                in_force[work.id] = chosen
    found: dict[bytes, Verdict] = {}
    for cid in sorted(set(in_force) | set(decisions)):
        judged = verdict(governance, cid, in_force.get(cid), decisions.get(cid, ()))
        if judged is not None:
            found[cid] = judged
    return found


def effective_leaves(
    store: Store, project: Record, epoch: int, *, now: float
) -> tuple[tuple[Verdict, Leaf], ...]:
    """Returns the leaves an open epoch has at `now` with decisions applied, each with the
    verdict that gives it: contributions an anchored epoch pays already have none."""
    result = []
    for cid, judged in verdicts(store, project, now=now).items():
        if judged.epoch != epoch or judged.weight == 0 or store.committed_of(cid):
            continue
        work = store.get(cid)
        assert work is not None, "a verdict is of a stored contribution"
        result.append((judged, Leaf(cid, work.expect(Contribution).payout, judged.weight)))
    return tuple(result)


def effective_tree(store: Store, project: Record, epoch: int, *, now: float) -> MerkleTree:
    """Returns the tree of an open epoch at `now` with decisions applied.

    Raises:
        EmptyTree: no contribution counts in the epoch.
    """
    return MerkleTree.build(leaf for _, leaf in effective_leaves(store, project, epoch, now=now))


def executions(store: Store, project: Record, *, now: float) -> tuple[Acceptance, ...]:
    """Returns the acceptances the owner's node signs to carry out passed `accept` decisions:
    one for each contribution, not paid by an anchored epoch, whose verdict is a decision (not
    an acceptance made after the decision closed). None in owner mode.

    Each revises the acceptance in force (the next revision above every stored one) and is
    dated `now`, after the decision closed, so it stands as the verdict in turn. The owner
    signs them (the owner's acceptances always count).
    """
    pid = project_id(project.author, project.expect(Project).name)
    made: list[Acceptance] = []
    line = line_of(store, project, now=now)
    governance = at(line, now)
    if governance.mode == "owner":
        return ()
    # Only contributions a passed decision names can have a decision as their verdict: the
    # service asks every round, so this reads those alone.
    for cid, decided in accept_decisions(store, project, line, now=now).items():
        judged = verdict(governance, cid, _in_force(store, project, governance, cid), decided)
        if judged is None or judged.acceptance is not None or store.committed_of(cid):
            continue
        if judged.weight and store.anchored(pid, judged.epoch):
            continue  # too late for that epoch: an acceptance into it would be late
        # A decision is the verdict only while no acceptance made after it closed stands: once
        # this one is stored, the decision no longer counts against it (`verdict`).
        revision = 1 + max(
            (a.expect(Acceptance).revision for a in _all(store.acceptances_of, cid)), default=-1
        )
        made.append(
            Acceptance(
                created_at=int(now),
                revision=revision,
                project_id=pid,
                contribution_id=cid,
                epoch=judged.epoch,
                weight=judged.weight,
            )
        )
    return tuple(made)


def _in_force(store: Store, project: Record, governance: Governance, cid: bytes) -> Record | None:
    """Returns a contribution's acceptance in force among the reviewers `governance` names."""
    if governance.reviewers == project.expect(Project).reviewers:
        return store.acceptance_of(cid)
    counting = governed(project, governance)
    return latest_authorized(counting, _all(store.acceptances_of, cid)).get(cid)


def owner_tree(store: Store, project: Record, epoch: int, *, now: float) -> EpochTree | None:
    """Returns the tree the owner's node anchors for an open epoch when governance changes
    what counts (lazy or vote mode, or reviewers a decision named or removed), or None when the
    stored acceptances in force give it (`node.chain.trees.stored_tree`).

    Call it after signing the `executions`: every leaf must then come from an acceptance,
    which the manifest lists.

    Raises:
        EmptyTree: no contribution counts in the epoch.
        SettlementError: a leaf comes from a decision that no acceptance carries out yet.
    """
    governance = governance_of(store, project, now=now)
    if governance.mode == "owner" and governance.reviewers == project.expect(Project).reviewers:
        return None
    pairs = effective_leaves(store, project, epoch, now=now)
    ids = []
    for judged, _ in pairs:
        if judged.acceptance is None:
            raise SettlementError(
                f"contribution {judged.contribution_id.hex()[:16]} counts in epoch {epoch} by "
                "a decision that no acceptance carries out yet"
            )
        ids.append(judged.acceptance.id)
    merkle = MerkleTree.build(leaf for _, leaf in pairs)
    return EpochTree(merkle, summarize(merkle), tuple(sorted(ids)), None)


def _epochs(store: Store, pid: bytes) -> Iterable[int]:
    start = 0
    while True:
        page = store.accepted_epochs(pid, start=start, limit=MAX_LIMIT)
        yield from page
        if len(page) < MAX_LIMIT:
            return
        start = page[-1] + 1
