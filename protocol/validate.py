"""Validation rules: which well-formed, signed records the network admits.

Theory of operation. A record passes three gates, and every gate is a pure function:

1. `envelope.decode` — canonical bytes, known kind, field types and bounds, signature. A record
   object that exists has passed it (records built locally pass the same checks when constructed).
2. `check(record, now=...)` — rules that need the clock, passed in: a record may not be dated
   more than MAX_SKEW seconds ahead of `now`. (Old records are fine: sync replays history.)
3. `check_contribution`, `check_acceptance`, `check_manifest`, `check_epoch_root` — rules that
   need the records a record depends on (`dependencies` names them). The caller looks them up
   (the store, or an auditor's file) and passes them in; a record whose dependencies are not all
   at hand waits as an orphan until they arrive, it is not rejected.

Anchored epochs. A manifest part depends on the next part and on every acceptance it lists; an
epoch root depends on part 0 of its manifest. So a node stores an epoch root only once it holds
every part of its manifest and every acceptance listed, all checked (`check_manifest`): whatever
order records arrive in, a node that knows an epoch is anchored knows exactly what it covers.

Revisions. Profiles, projects and acceptances are revisable: `slot` names what a record is about,
and among records of one slot the one that `supersedes` all others is in force. The order is
(revision, record id), so every node picks the same winner whatever order records arrived in.

Who may accept. An acceptance is signed by the project's owner or by a reviewer a project
revision names, and revisions may add and remove reviewers. Two questions are kept apart so that
neither depends on the order in which a node received the revisions:

- Storing (`ever_authorized`): an acceptance is kept if its author is the owner or is named by
  ANY revision of the project, superseded ones included. Every revision is stored, so the set
  of stored acceptances does not depend on arrival order. (A node that holds no revision naming
  the author yet refuses the acceptance for now; sync offers it again later.)
- Counting (`authorized`): among the stored acceptances of a contribution, the one in force is
  the highest (revision, id) among those whose author the project revision IN FORCE authorizes
  (`latest_authorized`). When the revision in force changes its reviewers, the acceptance in
  force may change with it; Merkle trees (`protocol.epoch`) follow.

`check_acceptance` is left with what makes an acceptance invalid for good (references). Whether
a project is still open is not a storage rule either (`check_open`), for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from protocol.envelope import Record
from protocol.errors import (
    BadDecision,
    FromTheFuture,
    InvalidManifest,
    NotAuthorized,
    OutsideWindow,
    ProjectClosed,
    ReferenceMismatch,
)
from protocol.records import (
    Acceptance,
    Contribution,
    Decision,
    EpochRoot,
    Manifest,
    Profile,
    Project,
    Proposal,
    Vote,
    project_id,
)

# How far ahead of the validator's clock a record may be dated.
MAX_SKEW = 300


class Ref(NamedTuple):
    """A dependency: the project with id `key` (kind "project"), or the record with id `key`
    that the dependent names as its contribution, a manifest part, a listed acceptance, its
    proposal or a counted ballot (kinds "contribution", "manifest", "acceptance", "proposal",
    "vote").

    A named tuple, not a frozen dataclass: ingest makes one or two per record, and a tuple
    is made in under half the time.
    """

    kind: str
    key: bytes


def check(record: Record, *, now: float) -> None:
    """Checks the rules that need the clock.

    Args:
        record: a decoded (so signed and well-formed) record.
        now: the validator's time in seconds since 1970.

    Raises:
        FromTheFuture: the record is dated more than MAX_SKEW seconds after `now`.
    """
    ahead = record.body.created_at - now
    if ahead > MAX_SKEW:
        raise FromTheFuture(
            f"{record.kind} {record.id.hex()[:16]} is dated {ahead:.0f} s in the future "
            f"(at most {MAX_SKEW} s allowed)"
        )


def subject_project(record: Record) -> bytes | None:
    """Returns the id of the project a record belongs to, or None for profiles."""
    body = record.body
    if isinstance(body, Project):
        return project_id(record.author, body.name)
    if isinstance(
        body, Contribution | Acceptance | Manifest | EpochRoot | Proposal | Vote | Decision
    ):
        return body.project_id
    return None


def dependencies(record: Record) -> tuple[Ref, ...]:
    """Returns the records that must be known before `record` can be applied."""
    body = record.body
    if isinstance(body, Acceptance):
        return (Ref("project", body.project_id), Ref("contribution", body.contribution_id))
    if isinstance(body, Contribution | Proposal):
        return (Ref("project", body.project_id),)
    if isinstance(body, Vote):
        return (Ref("proposal", body.proposal_id),)
    if isinstance(body, Decision):
        refs = [Ref("project", body.project_id), Ref("proposal", body.proposal_id)]
        return tuple(refs + [Ref("vote", vid) for vid in body.ballots])
    if isinstance(body, EpochRoot):
        return (Ref("project", body.project_id), Ref("manifest", body.manifest))
    if isinstance(body, Manifest):
        refs = [Ref("project", body.project_id)]
        if body.next:
            refs.append(Ref("manifest", body.next))
        refs += [Ref("acceptance", aid) for aid in body.acceptances]
        return tuple(refs)
    return ()


def slot(record: Record) -> tuple[str, bytes] | None:
    """Returns what a revisable record is about, or None if the record is not revisable.

    A profile's slot is its author; a project's is its project id (which includes its owner); an
    acceptance's is the contribution it judges, whichever of the owner or reviewers signed it; a
    vote's is its proposal and its author (64 bytes). Which vote of a slot counts also depends
    on the proposal's window (`protocol.tally.ballots`), not on this order alone.
    """
    body = record.body
    if isinstance(body, Profile):
        return ("profile", record.author)
    if isinstance(body, Project):
        return ("project", project_id(record.author, body.name))
    if isinstance(body, Acceptance):
        return ("acceptance", body.contribution_id)
    if isinstance(body, Vote):
        return ("vote", body.proposal_id + record.author)
    return None


def _rank(record: Record) -> tuple[int, bytes]:
    revision: int = getattr(record.body, "revision", 0)
    return (revision, record.id)


def supersedes(new: Record, old: Record) -> bool:
    """Returns True if `new` replaces `old`, two records of the same slot.

    The higher revision wins; between equal revisions the higher record id wins, so that the
    outcome does not depend on arrival order.
    """
    return _rank(new) > _rank(old)


def latest(records: Iterable[Record]) -> dict[tuple[str, bytes], Record]:
    """Returns the record in force for each slot among `records` (non-revisable ones skipped)."""
    current: dict[tuple[str, bytes], Record] = {}
    for record in records:
        key = slot(record)
        if key is not None and (key not in current or supersedes(record, current[key])):
            current[key] = record
    return current


def _project_of(record: Record, project: Record, project_ref: bytes) -> Project:
    body = project.expect(Project)
    if project_id(project.author, body.name) != project_ref:
        raise ReferenceMismatch(
            f"{record.kind} {record.id.hex()[:16]} refers to project {project_ref.hex()[:16]}, "
            f"not to the project given ({project_id(project.author, body.name).hex()[:16]})"
        )
    return body


def check_contribution(contribution: Record, project: Record) -> None:
    """Checks that a contribution belongs to the project given.

    Raises:
        ReferenceMismatch: `project` is not the project the contribution names.
    """
    body = contribution.expect(Contribution)
    _project_of(contribution, project, body.project_id)


def check_open(contribution: Record, project: Record) -> None:
    """Checks that a project (revision in force) takes contributions made when this one was.

    Not a condition for storing: whether the closing revision arrived before or after the
    contribution depends on each node's arrival order, and nodes must agree on what they store
    (sync offers every stored record to every peer). A node applies it to what its own user
    submits; the project's owner simply does not accept work that came after closing.

    Raises:
        ReferenceMismatch: `project` is not the project the contribution names.
        ProjectClosed: the project was closed no later than the contribution was made.
    """
    body = contribution.expect(Contribution)
    posting = _project_of(contribution, project, body.project_id)
    if posting.status == "closed" and body.created_at >= posting.created_at:
        raise ProjectClosed(
            f"contribution {contribution.id.hex()[:16]} was made after project "
            f"{posting.name!r} closed"
        )


def check_acceptance(acceptance: Record, project: Record, contribution: Record) -> None:
    """Checks an acceptance against its project (any revision) and its contribution.

    Only what can never change: who signed it is a separate question (`authorized`,
    `ever_authorized`), since the answer changes with the project's revisions.

    Raises:
        ReferenceMismatch: the project or contribution given is not the one named, or the
            contribution belongs to another project.
    """
    body = acceptance.expect(Acceptance)
    _project_of(acceptance, project, body.project_id)
    work = contribution.expect(Contribution)
    if contribution.id != body.contribution_id:
        raise ReferenceMismatch(
            f"acceptance {acceptance.id.hex()[:16]} names contribution "
            f"{body.contribution_id.hex()[:16]}, not {contribution.id.hex()[:16]}"
        )
    if work.project_id != body.project_id:
        raise ReferenceMismatch(
            f"acceptance {acceptance.id.hex()[:16]} is for a project the contribution is not in"
        )


def authorized(author: bytes, project: Record) -> bool:
    """Returns True if `author` may accept for the project revision `project`.

    That is, the author is the project's owner or one of the reviewers this revision names.
    Applied to the revision in force, it decides which stored acceptances count.
    """
    return author == project.author or author in project.expect(Project).reviewers


def ever_authorized(author: bytes, revisions: Iterable[Record]) -> bool:
    """Returns True if some revision among `revisions` (of one project) authorizes `author`.

    The storage rule: an acceptance is stored if this holds for the revisions a node has.
    """
    return any(authorized(author, revision) for revision in revisions)


def check_authorized(acceptance: Record, project: Record) -> None:
    """Checks that the project revision given (the one in force) authorizes the acceptance.

    For auditors and proofs, which judge an acceptance in force against the revision in force.

    Raises:
        ReferenceMismatch: `project` is not the project the acceptance names.
        NotAuthorized: the author is neither the owner nor a reviewer of that revision.
    """
    posting = _project_of(acceptance, project, acceptance.expect(Acceptance).project_id)
    if not authorized(acceptance.author, project):
        raise NotAuthorized(
            f"acceptance {acceptance.id.hex()[:16]} is signed by {acceptance.author.hex()[:16]}, "
            f"who is neither the owner nor a reviewer of project {posting.name!r} "
            f"(revision {posting.revision})"
        )


def latest_authorized(project: Record, acceptances: Iterable[Record]) -> Mapping[bytes, Record]:
    """Returns the acceptance in force of each contribution, by contribution id.

    The counting rule: acceptances whose author `project` (the revision in force) does not
    authorize are ignored, then the highest (revision, id) of each contribution wins.
    """
    counted = (a for a in acceptances if authorized(a.author, project))
    return {key[1]: record for key, record in latest(counted).items()}


def _owned(record: Record, project: Record, project_ref: bytes, what: str) -> None:
    posting = _project_of(record, project, project_ref)
    if record.author != project.author:
        raise NotAuthorized(
            f"{what} {record.id.hex()[:16]} for project {posting.name!r} is not signed by its owner"
        )


def check_epoch_root(root: Record, project: Record, manifest: Record | None = None) -> None:
    """Checks that an epoch root is signed by its project's owner and fits its manifest.

    Args:
        root: the epoch root.
        project: any revision of its project (the owner never changes).
        manifest: the record the root names as part 0 of its manifest; None checks the author
            alone (for a caller that has no manifest at hand, such as a proof file).

    Raises:
        ReferenceMismatch: `project` is not the project the root names.
        NotAuthorized: the root is not signed by the project's owner.
        InvalidManifest: `manifest` is not part 0 of a manifest of this epoch in `parts` parts.
        UnknownKind: `manifest` is not a manifest part.
    """
    body = root.expect(EpochRoot)
    _owned(root, project, body.project_id, "epoch root")
    if manifest is None:
        return
    first = manifest.expect(Manifest)
    if (
        manifest.id != body.manifest
        or manifest.author != root.author
        or (first.project_id, first.epoch, first.part, first.parts)
        != (body.project_id, body.epoch, 0, body.parts)
    ):
        raise InvalidManifest(
            f"epoch root {root.id.hex()[:16]} names manifest {body.manifest.hex()[:16]} in "
            f"{body.parts} parts, which record {manifest.id.hex()[:16]} is not the first part of"
        )


def check_manifest(
    part: Record,
    project: Record,
    following: Record | None,
    acceptances: Iterable[Record] | None,
) -> None:
    """Checks a manifest part against its project, the next part and the acceptances it lists.

    Args:
        part: the manifest part.
        project: any revision of its project.
        following: the record the part names as the next part (None for the last part).
        acceptances: the records of the ids the part lists, each one once; None checks the
            part and its link alone (for a reader walking parts that were checked when stored).

    Raises:
        ReferenceMismatch: `project` is not the part's project.
        NotAuthorized: the part is not signed by the project's owner.
        InvalidManifest: the next part is not the next part of the same manifest (same
            project, epoch, author and number of parts; ids continuing in order), or a listed
            record is not an acceptance of the project into the part's epoch with a weight
            above 0, or two listed acceptances judge the same contribution.
        UnknownKind: `following` is not a manifest part, or a listed record not an acceptance.
    """
    body = part.expect(Manifest)
    _owned(part, project, body.project_id, "manifest part")
    name = f"manifest part {part.id.hex()[:16]}"
    if body.next:
        if following is None or following.id != body.next:
            raise InvalidManifest(f"{name} names next part {body.next.hex()[:16]}, not given")
        after = following.expect(Manifest)
        if (
            following.author != part.author
            or (after.project_id, after.epoch, after.parts, after.part)
            != (body.project_id, body.epoch, body.parts, body.part + 1)
            or after.acceptances[0] <= body.acceptances[-1]
        ):
            raise InvalidManifest(
                f"{name} names {following.id.hex()[:16]}, which is not the part after it"
            )
    if acceptances is None:
        return
    listed = set(body.acceptances)
    judged: set[bytes] = set()
    given = 0
    for acceptance in acceptances:
        given += 1
        verdict = acceptance.expect(Acceptance)
        if acceptance.id not in listed:
            raise InvalidManifest(f"{name} does not list acceptance {acceptance.id.hex()[:16]}")
        if verdict.project_id != body.project_id or verdict.epoch != body.epoch:
            raise InvalidManifest(
                f"{name} lists acceptance {acceptance.id.hex()[:16]}, which is not of this "
                f"project's epoch {body.epoch}"
            )
        if verdict.weight == 0:
            raise InvalidManifest(
                f"{name} lists acceptance {acceptance.id.hex()[:16]}, which withdraws (weight 0)"
            )
        if verdict.contribution_id in judged:
            raise InvalidManifest(
                f"{name} lists two acceptances of contribution {verdict.contribution_id.hex()[:16]}"
            )
        judged.add(verdict.contribution_id)
    if given != len(body.acceptances):
        raise InvalidManifest(f"{name} lists {len(body.acceptances)} acceptances, {given} given")


def check_proposal(proposal: Record, project: Record) -> None:
    """Checks that a proposal belongs to the project given (any revision).

    Anyone may propose: a proposal decides nothing until members with voting power vote for it.
    Whether the project is still open is, as for contributions, checked only on what a node's
    own user submits.

    Raises:
        ReferenceMismatch: `project` is not the project the proposal names.
    """
    _project_of(proposal, project, proposal.expect(Proposal).project_id)


def check_vote(vote: Record, proposal: Record) -> None:
    """Checks a vote against its proposal: same project, a choice the proposal offers, and a
    date inside its voting window.

    All three are facts of the two records alone, so a vote that fails is invalid for good,
    whatever else a node holds. A vote dated inside the window may still have been signed
    after it (its date is its author's word, as every record's is); see `protocol.tally`.

    Raises:
        ReferenceMismatch: `proposal` is not the proposal the vote names, or is of another
            project, or the choice is not one the proposal offers.
        InvalidRecord: the vote is dated outside the proposal's window.
    """
    body = vote.expect(Vote)
    question = proposal.expect(Proposal)
    name = f"vote {vote.id.hex()[:16]}"
    if proposal.id != body.proposal_id:
        raise ReferenceMismatch(
            f"{name} names proposal {body.proposal_id.hex()[:16]}, not {proposal.id.hex()[:16]}"
        )
    if question.project_id != body.project_id:
        raise ReferenceMismatch(f"{name} names another project than its proposal")
    if question.options:
        if body.choice not in ("approve", "abstain"):
            raise ReferenceMismatch(
                f"{name} says {body.choice!r} to a proposal with options: approve or abstain"
            )
        if body.approve and body.approve[-1] >= len(question.options):
            raise ReferenceMismatch(
                f"{name} approves option {body.approve[-1]}; the proposal has "
                f"{len(question.options)}"
            )
    elif body.choice == "approve":
        raise ReferenceMismatch(f"{name} approves options of a yes/no proposal")
    if not question.created_at <= body.created_at < question.closes_at:
        raise OutsideWindow(
            f"{name} is dated {body.created_at}, outside the window of proposal "
            f"{proposal.id.hex()[:16]} [{question.created_at}, {question.closes_at})"
        )


def check_decision(
    decision: Record, project: Record, proposal: Record, votes: Iterable[Record]
) -> None:
    """Checks a decision against its project, its proposal and the votes it lists: signed by
    the owner, dated once the window closed, one counted vote per author, and figures that
    follow from the ballots' choices and powers by the tally's rules (`protocol.tally`).

    Whether each power is what the anchored epochs give is not checked here: that needs the
    chain's records, which a node may still be missing (see `node.decisions`).

    Args:
        decision: the decision.
        project: any revision of its project (the owner never changes).
        proposal: the record the decision names as its proposal.
        votes: the records of the ids the decision lists, each once.

    Raises:
        ReferenceMismatch: the project or proposal given is not the one named, or a vote is of
            another proposal or says what the proposal does not offer.
        NotAuthorized: the decision is not signed by the project's owner.
        OutsideWindow: a listed vote is dated outside the window.
        BadDecision: the decision is dated before the window closed, lists two votes of one
            author or a vote not given, or a figure does not follow from the ballots.
    """
    from protocol.tally import Settings, tally

    body = decision.expect(Decision)
    _owned(decision, project, body.project_id, "decision")
    question = proposal.expect(Proposal)
    name = f"decision {decision.id.hex()[:16]}"
    if proposal.id != body.proposal_id or question.project_id != body.project_id:
        raise ReferenceMismatch(f"{name} names another proposal or project than the one given")
    if body.created_at < question.closes_at:
        raise BadDecision(
            f"{name} is dated {body.created_at}, before its proposal's window closes "
            f"({question.closes_at})"
        )
    listed = dict(zip(body.ballots, body.powers, strict=True))
    power: dict[bytes, int] = {}
    counted: list[Record] = []
    for vote in votes:
        if vote.id not in listed:
            raise BadDecision(f"{name} does not list vote {vote.id.hex()[:16]}")
        check_vote(vote, proposal)
        if vote.author in power:
            raise BadDecision(f"{name} counts two votes of {vote.author.hex()[:16]}")
        power[vote.author] = listed[vote.id]
        counted.append(vote)
    if len(counted) != len(body.ballots):
        raise BadDecision(f"{name} lists {len(body.ballots)} votes, {len(counted)} given")
    settings = Settings(body.quorum, body.threshold, body.half_life)
    result = tally(proposal, counted, power, settings, total=body.total)
    figures = (
        result.yes,
        result.no,
        result.abstain,
        result.approvals,
        result.winners,
        result.outcome,
    )
    claimed = (body.yes, body.no, body.abstain, body.approvals, body.winners, body.outcome)
    if figures != claimed:
        raise BadDecision(
            f"{name} says (yes, no, abstain, approvals, winners, outcome) = {claimed}, but its "
            f"ballots give {figures}"
        )


def first_decision(decisions: Iterable[Record]) -> Record | None:
    """Returns the decision in force among decisions of one proposal: the lowest
    (created_at, id), as for epoch roots; None if there is none. Only the owner signs
    decisions, so two of them are the owner's equivocation, which `workwork audit` reports."""
    return min(decisions, key=lambda d: (d.body.created_at, d.id), default=None)
