"""Audit of a project's collective decisions: every tally recounted, every allocation matched.

Theory of operation. For each proposal of the project, the audit takes the decision in force
(the owner's signed final tally, `protocol.validate.first_decision`) and recounts it:

- the decision and the votes it lists are decoded again from their stored bytes with their
  signatures checked, and its figures recomputed from the listed ballots and powers
  (`protocol.validate.check_decision`);
- each listed power, the total and the settings are recomputed from the anchored epochs up to
  the proposal's snapshot (`node.outcomes`): a power above what the credits give is an
  over-claimed power; a vote dated inside the window that the decision leaves out, or an
  earlier revision counted where a later one was in the window, is reported too;
- every anchored epoch that gives power must be anchored on chain with the root its epoch root
  states (power is only as good as the anchor that proves it).

Then it matches the chain's `PoolAllocated` events of the project (under its anchoring address,
the project's payout) to the passed, valid `allocate` decisions, one to one by (epoch, token,
amount), oldest decision first and earliest allocation first. An allocation that no decision
matches is a finding; a passed decision with no allocation `grace` seconds after it was signed
is a finding (before that it is listed as pending). A proposal whose window closed more than
`grace` seconds ago with no decision is a finding too: the owner must decide.

The audit writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from node.chain.client import Allocation, ChainClient, checksum
from node.decisions import _all, _project, anchored_epochs
from node.outcomes import outcome
from protocol import Decision, EpochRoot, Project, Proposal, ProtocolError, Record, decode
from protocol.validate import check_decision
from storage import Store

# Finding kinds.
FIGURES = "figures"  # the decision's figures do not follow from its ballots
POWER = "power"  # a listed power is not what the anchored epochs give (over-claimed if more)
TOTAL = "total"
SETTINGS = "settings"
OMITTED = "omitted"
SUPERSEDED = "superseded"
EQUIVOCATION = "equivocation"
UNANCHORED = "unanchored"  # an epoch that gives power is not anchored on chain as stated
UNDECIDED = "undecided"  # the window closed long ago and there is no decision
UNMATCHED = "unmatched allocation"  # an allocation on chain with no passed decision
NOT_EXECUTED = "not executed"  # a passed allocation not executed within the grace period


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    message: str
    proposal: bytes | None = None
    tx_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class Audited:
    """One proposal as the audit saw it."""

    proposal: Record
    decision: Record | None
    outcome: str
    yes: int
    no: int
    abstain: int
    total: int
    execution: bytes | None = None  # the allocation's transaction, for a passed allocate
    pending: bool = False  # a passed allocate not executed yet, within its grace period


@dataclass(frozen=True, slots=True)
class DecisionsReport:
    project_id: bytes
    proposals: tuple[Audited, ...]
    allocations: tuple[Allocation, ...]
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "project_id": self.project_id.hex(),
            "proposals": [
                {
                    "proposal_id": a.proposal.id.hex(),
                    "title": a.proposal.expect(Proposal).title,
                    "action": a.proposal.expect(Proposal).action,
                    "decision_id": None if a.decision is None else a.decision.id.hex(),
                    "outcome": a.outcome,
                    "yes": a.yes,
                    "no": a.no,
                    "abstain": a.abstain,
                    "total": a.total,
                    "execution": None if a.execution is None else "0x" + a.execution.hex(),
                    "pending": a.pending,
                }
                for a in self.proposals
            ],
            "allocations": [
                {
                    "epoch": a.epoch,
                    "token": checksum(a.token),
                    "amount": str(a.amount),
                    "tx_hash": "0x" + a.tx_hash.hex(),
                }
                for a in self.allocations
            ],
            "findings": [
                {
                    "kind": f.kind,
                    "message": f.message,
                    "proposal_id": None if f.proposal is None else f.proposal.hex(),
                    "tx_hash": None if f.tx_hash is None else "0x" + f.tx_hash.hex(),
                }
                for f in self.findings
            ],
        }

    def summary(self) -> str:
        lines = [
            f"Decisions of project {self.project_id.hex()[:16]}: {len(self.proposals)} "
            f"proposals, {len(self.allocations)} allocations on chain"
        ]
        for a in self.proposals:
            body = a.proposal.expect(Proposal)
            line = (
                f"  {a.proposal.id.hex()[:12]} {body.action} {body.title!r}: {a.outcome} "
                f"(yes {a.yes}, no {a.no}, abstain {a.abstain} of {a.total})"
            )
            if a.execution is not None:
                line += f", executed in tx 0x{a.execution.hex()}"
            elif a.pending:
                line += ", execution pending"
            lines.append(line)
        if self.ok:
            lines.append("OK: every tally recounts and every allocation matches a decision")
        else:
            lines.append(f"{len(self.findings)} finding(s):")
            lines += [f"  [{f.kind}] {f.message}" for f in self.findings]
        return "\n".join(lines)


def audit_decisions(
    store: Store, chain: ChainClient | None, project_id: bytes, *, now: float, grace: float
) -> DecisionsReport:
    """Audits every decision of a project and, with a chain, its allocations (see the module).

    Raises:
        NotFound: the project is not in the store.
        ChainError: the chain could not be read.
        StorageError: the store could not be read.
    """
    project = _project(store, project_id)
    findings: list[Finding] = []
    audited: list[Audited] = []
    passed: list[tuple[Record, Record]] = []  # (decision, proposal) of passed valid allocations
    for question in _all(store.proposals, project_id):
        seen, found = _recount(store, question, now=now, grace=grace)
        findings += found
        audited.append(seen)
        body = question.expect(Proposal)
        valid = not any(f.kind in (FIGURES, POWER, TOTAL, SETTINGS) for f in found)
        allocates = body.action == "allocate" and seen.outcome == "passed"
        if seen.decision is not None and allocates and valid:
            passed.append((seen.decision, question))
    allocations: list[Allocation] = []
    if chain is not None:
        owner = project.expect(Project).payout
        findings += _anchors(store, chain, project_id, owner)
        allocations = chain.allocations(owner, project_id)
        audited, more = _match(audited, passed, allocations, now=now, grace=grace)
        findings += more
    return DecisionsReport(project_id, tuple(audited), tuple(allocations), tuple(findings))


def _recount(
    store: Store, question: Record, *, now: float, grace: float
) -> tuple[Audited, list[Finding]]:
    found: list[Finding] = []
    pid = question.id
    body = question.expect(Proposal)
    seen = outcome(store, question, now=now)
    t = seen.decision.tally
    held = seen.record
    if held is None:
        if now >= body.closes_at + grace:
            found.append(
                Finding(UNDECIDED, f"proposal {pid.hex()[:16]} closed with no decision", pid)
            )
        return Audited(question, None, "undecided", t.yes, t.no, t.abstain, t.total), found
    try:
        again = decode(held.raw)
        votes = [decode(v.raw) for v in _listed(store, held)]
        project = store.project(held.expect(Decision).project_id)
        assert project is not None
        check_decision(again, project, decode(question.raw), votes)
    except ProtocolError as exc:
        found.append(Finding(FIGURES, f"decision {held.id.hex()[:16]}: {exc}", pid))
    for item in seen.findings:
        found.append(Finding(item.code, f"decision {held.id.hex()[:16]}: {item.detail}", pid))
    decided = held.expect(Decision)
    return (
        Audited(question, held, decided.outcome, t.yes, t.no, t.abstain, t.total),
        found,
    )


def _listed(store: Store, held: Record) -> Iterable[Record]:
    for vid in held.expect(Decision).ballots:
        vote = store.get(vid)
        assert vote is not None, "a stored decision's votes are stored"
        yield vote


def _anchors(store: Store, chain: ChainClient, pid: bytes, owner: bytes) -> list[Finding]:
    found = []
    for epoch, root in sorted(anchored_epochs(store, pid).items()):
        stated = root.expect(EpochRoot).root
        on_chain = chain.epoch(owner, pid, epoch)
        if not on_chain.anchored or on_chain.root != stated:
            found.append(
                Finding(
                    UNANCHORED,
                    f"epoch {epoch} gives voting power with root 0x{stated.hex()[:16]}, which "
                    f"the chain does not hold under 0x{owner.hex()}",
                )
            )
    return found


def _match(
    audited: list[Audited],
    passed: list[tuple[Record, Record]],
    allocations: list[Allocation],
    *,
    now: float,
    grace: float,
) -> tuple[list[Audited], list[Finding]]:
    found: list[Finding] = []
    left = sorted(allocations, key=lambda a: a.block_number)
    executed: dict[bytes, bytes] = {}
    pending: set[bytes] = set()
    for held, question in sorted(passed, key=lambda p: (p[0].expect(Decision).created_at, p[0].id)):
        params = question.expect(Proposal).named_params()
        want = (params["epoch"], params["token"], int(params["amount"]))
        match = next((a for a in left if (a.epoch, a.token, a.amount) == want), None)
        if match is not None:
            left.remove(match)
            executed[question.id] = match.tx_hash
        elif now >= held.body.created_at + grace:
            found.append(
                Finding(
                    NOT_EXECUTED,
                    f"proposal {question.id.hex()[:16]} passed to allocate {want[2]} to epoch "
                    f"{want[0]}, and no allocation was made within {grace:.0f} s",
                    question.id,
                )
            )
        else:
            pending.add(question.id)
    for allocation in left:
        found.append(
            Finding(
                UNMATCHED,
                f"{allocation.amount} of token {checksum(allocation.token)} went to epoch "
                f"{allocation.epoch} with no passed decision",
                tx_hash=allocation.tx_hash,
            )
        )
    out = [
        Audited(
            a.proposal,
            a.decision,
            a.outcome,
            a.yes,
            a.no,
            a.abstain,
            a.total,
            executed.get(a.proposal.id),
            a.proposal.id in pending,
        )
        for a in audited
    ]
    return out, found
