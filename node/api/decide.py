"""The API's routes on collective decisions: proposals, votes and tallies.

Builders and tallies live in `node.decisions`; this module converts JSON to record values and
back, with the API's conventions (ids hex, addresses checksummed, weights and power as decimal
strings, since a sum of weights may pass what a JavaScript number holds).
"""

from __future__ import annotations

from typing import Any

from node import decisions, outcomes
from node.api import actions
from node.api.app import Api
from node.api.routes import TYPES, Param, Route
from node.api.views import address, record
from node.chain.audit_decisions import audit_decisions
from node.chain.executions import Executed, done_key
from node.errors import BadRequest, ChainError, Conflict, NotFound, OrphanRecord
from node.governance import line_of, project_of
from protocol import Proposal, ProtocolError, Record
from protocol.governance import Governance, at
from protocol.records import MODES, PARAMS

# The record type of each parameter of a proposal's action, as the API's types convert them.
_PARAM_TYPES = {
    "epoch": "epoch",
    "token": "address",
    "amount": "amount",
    "contribution_id": "id",
    "weight": "weight",
    "quorum": "per_mille",
    "threshold": "per_mille",
    "half_life": "epoch",
    "epoch_length": "epoch_length",
    "reviewers": "keys",
    "status": "status",
    "mode": "mode",
    "window": "lazy_window",
}


def convert_params(action: str, given: dict[str, Any]) -> dict[str, Any]:
    """Returns the JSON parameters of an action as record values, by name.

    Raises:
        BadRequest: an unknown action or parameter, or a malformed value.
    """
    if action not in PARAMS:
        raise BadRequest(f"unknown action {action!r}: one of {sorted(PARAMS)}")
    names = {name for name, _ in PARAMS[action]}
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in names:
            raise BadRequest(f"a {action} proposal takes {sorted(names)}, not {name!r}")
        kind = _PARAM_TYPES[name]
        try:
            if kind == "per_mille":
                converted: Any = TYPES["epoch"].convert(value)
                if converted > 1000:
                    raise ValueError(f"{converted} is above 1000 (thousandths)")
            elif kind == "status":
                if value not in ("open", "closed"):
                    raise ValueError("expected 'open' or 'closed'")
                converted = value
            elif kind == "mode":
                if value not in MODES:
                    raise ValueError(f"expected one of {list(MODES)}")
                converted = value
            elif kind == "amount":
                converted = str(TYPES["amount"].convert(value))
            elif kind == "keys":
                converted = tuple(sorted(set(TYPES["keys"].convert(value))))
            else:
                converted = TYPES[kind].convert(value)
        except ValueError as exc:
            raise BadRequest(f"params.{name}: {exc}") from None
        out[name] = converted
    return out


def params_view(body: Proposal) -> dict[str, Any]:
    """Returns a proposal's parameters by name as JSON."""
    out: dict[str, Any] = {}
    for name, value in body.named_params().items():
        if name == "token":
            out[name] = address(value) if any(value) else None
        elif isinstance(value, bytes):
            out[name] = value.hex()
        elif isinstance(value, tuple):
            out[name] = [v.hex() for v in value]
        elif name in ("weight",):
            out[name] = str(value)
        else:
            out[name] = value
    return out


def decision_view(found: decisions.Decision, *, votes: bool = True) -> dict[str, Any]:
    """Returns a proposal with its tally as JSON; with `votes`, every ballot with its power
    and the credits (anchored leaves) that make it."""
    result = found.tally
    body = result.proposal.expect(Proposal)
    out: dict[str, Any] = {
        "proposal": record(result.proposal),
        "action": body.action,
        "title": body.title,
        "params": params_view(body),
        "options": list(body.options),
        "snapshot": body.snapshot,
        "closes_at": body.closes_at,
        "open": found.open,
        "settings": {
            "quorum": result.settings.quorum,
            "threshold": result.settings.threshold,
            "half_life": result.settings.half_life,
        },
        "total_power": str(result.total),
        "voted": str(result.voted),
        "yes": str(result.yes),
        "no": str(result.no),
        "abstain": str(result.abstain),
        "approvals": [str(v) for v in result.approvals],
        "quorum_met": result.quorum,
        "winners": list(result.winners),
        "passed": result.passed,
        # Until the window closes, the outcome is what the votes so far give.
        "outcome": result.outcome,
        "votes": len(result.ballots),
    }
    if votes:
        out["ballots"] = [
            {
                "author": ballot.author.hex(),
                "vote": record(ballot.vote),
                "choice": ballot.choice,
                "approve": list(ballot.approve),
                "power": str(ballot.power),
                "credits": [
                    {
                        "epoch": credit.epoch,
                        "contribution_id": credit.contribution_id.hex(),
                        "weight": str(credit.weight),
                    }
                    for credit in found.credits.get(ballot.author, ())
                ],
            }
            for ballot in result.ballots
        ]
    return out


def outcome_view(store: Any, seen: outcomes.Outcome, *, votes: bool = True) -> dict[str, Any]:
    """Returns a proposal's tally as JSON (`decision_view`), with `decision`: the owner's signed
    decision that fixes it (null until there is one), whether this node's records bear out its
    powers (`valid`), what they do not (`findings`), and the transaction that executed it, where
    this node executed it."""
    out = decision_view(seen.decision, votes=votes)
    held = seen.record
    if held is None:
        out["decision"] = None
        return out
    done = store.state.intent(done_key(held.id))
    executed = None if done is None else Executed.decode(held.id, done)
    out["decision"] = {
        "record": record(held),
        "valid": seen.valid,
        "findings": [{"code": f.code, "detail": f.detail} for f in seen.findings],
        "executed_tx": None if executed is None else "0x" + executed.tx_hash.hex(),
    }
    return out


def _audit(store: Any, chain: Any, pid: bytes, now: float, grace: float) -> dict[str, Any]:
    decisions.proposals(store, pid)  # NotFound for an unknown project
    report = audit_decisions(store, chain, pid, now=now, grace=grace)
    return {**report.to_json(), "summary": report.summary()}


async def audit(api: Api, args: dict[str, Any]) -> Any:
    settle = api.settlement
    chain = getattr(settle, "chain", None)
    grace = chain.config.execution_grace if chain is not None else 0.0
    return await api.read(_audit, api.node.store, chain, args["project_id"], api.now(), grace)


async def propose(api: Api, args: dict[str, Any]) -> Any:
    action = args["action"]
    params = convert_params(action, args.pop("params", {}))
    args["project"] = args.pop("project_id")
    new = await api.read(
        decisions.propose, api.node.store, api.identity, now=api.now(), params=params, **args
    )
    await api.follow(new.expect(Proposal).project_id)
    await actions.submit(api.node, [new])
    return record(new)


async def vote(api: Api, args: dict[str, Any]) -> Any:
    new = await api.read(decisions.vote, api.node.store, api.identity, now=api.now(), **args)
    await actions.submit(api.node, [new])
    return record(new)


def _list(store: Any, pid: bytes, now: int, only_open: bool) -> dict[str, Any]:
    found = []
    for proposal in decisions.proposals(store, pid):
        if only_open and now >= proposal.expect(Proposal).closes_at:
            continue
        found.append(outcome_view(store, outcomes.outcome(store, proposal, now=now), votes=False))
    return {"items": found}


async def list_proposals(api: Api, args: dict[str, Any]) -> Any:
    only_open = args.get("open", "") in ("1", "true", "yes")
    return await api.read(_list, api.node.store, args["project_id"], api.now(), only_open)


def _show(store: Any, rid: bytes, now: int) -> dict[str, Any]:
    found: Record = decisions.proposal(store, rid)
    return outcome_view(store, outcomes.outcome(store, found, now=now))


async def show_proposal(api: Api, args: dict[str, Any]) -> Any:
    return await api.read(_show, api.node.store, args["proposal_id"], api.now())


def governance_view(governance: Governance) -> dict[str, Any]:
    """Returns a project's governance as JSON."""
    return {
        "mode": governance.mode,
        "quorum": governance.quorum,
        "threshold": governance.threshold,
        "half_life": governance.half_life,
        "window": governance.window,
        "epoch_length": governance.epoch_length,
        "reviewers": [key.hex() for key in governance.reviewers],
        "status": governance.status,
        "since": governance.since,
        "decision": None if governance.decision is None else governance.decision.hex(),
    }


def _governance(store: Any, pid: bytes, now: int) -> dict[str, Any]:
    project = project_of(store, pid)
    line = line_of(store, project, now=now)
    return {**governance_view(at(line, now)), "history": [governance_view(g) for g in line]}


async def show_governance(api: Api, args: dict[str, Any]) -> Any:
    return await api.read(_governance, api.node.store, args["project_id"], api.now())


_PROPOSE = (
    Param("project_id", "id", "the project (hex id)", required=True),
    Param(
        "action",
        "action",
        "what the decision would do: allocate, accept, settings or signal",
        required=True,
    ),
    Param("title", "string", "the question, in a line", required=True),
    Param("text", "string", "free text: the case for it"),
    Param(
        "params",
        "object",
        "the action's parameters by name: allocate {epoch, token (default ether), amount}; "
        "accept {contribution_id, epoch, weight}; settings {quorum, threshold, half_life, "
        "epoch_length, reviewers, status, mode, window} (what is not given stays); signal {}",
    ),
    Param("options", "strings", "2-16 options to approve (approval voting); none: yes/no/abstain"),
    Param(
        "snapshot", "epoch", "the anchored epoch up to which work gives power (default: the last)"
    ),
    Param("window", "window", f"seconds open for votes (default {decisions.DEFAULT_WINDOW})"),
)
_VOTE = (
    Param("proposal_id", "id", "the proposal (hex id)", required=True),
    Param(
        "choice", "choice", "yes, no or abstain; approve (with `approve`) on options", required=True
    ),
    Param("approve", "indices", "the indices of the options approved"),
    Param("reason", "string", "why, in a few words (optional)"),
)

DECISION_ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/proposals", propose, "Propose a decision to a project's members.", _PROPOSE,
          raises=(NotFound, Conflict, OrphanRecord, ProtocolError), returns="Record"),
    Route("GET", "/v1/projects/{project_id}/proposals", list_proposals,
          "A project's proposals, oldest first, each with its tally (without the ballots).",
          (Param("project_id", "id", "a project id (hex)", "path", True),
           Param("open", "string", "'true': only proposals whose window is open", "query")),
          raises=(NotFound,), returns="Object"),
    Route("GET", "/v1/proposals/{proposal_id}", show_proposal,
          "A proposal's tally with every ballot, its power and the anchored credits behind it.",
          (Param("proposal_id", "id", "proposal id (hex)", "path", True),),
          raises=(NotFound,), returns="Object"),
    Route("POST", "/v1/votes", vote, "Vote on a proposal (again: the last vote counts).", _VOTE,
          raises=(NotFound, Conflict, OrphanRecord, ProtocolError), returns="Record"),
    Route("GET", "/v1/projects/{project_id}/decisions/audit", audit,
          "Audit a project's decisions: every tally recounted from the records and the chain, "
          "every allocation on chain matched to a passed decision (docs/AUDIT.md).",
          (Param("project_id", "id", "a project id (hex)", "path", True),),
          raises=(NotFound, ChainError), returns="Object"),
    Route("GET", "/v1/projects/{project_id}/governance", show_governance,
          "A project's governance in effect (its record's, as passed settings decisions changed "
          "it), and each state since the record's (`history`).",
          (Param("project_id", "id", "a project id (hex)", "path", True),),
          raises=(NotFound,), returns="Object"),
)  # fmt: skip
