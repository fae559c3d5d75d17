"""Records built from what a user asks for, against what the store knows.

Each function reads the records in force that the new one follows (the current profile, the
project revision, the acceptance of a contribution), builds the body (its constructor checks
every field) and signs it. Nothing is stored here: the caller hands the record to `submit`,
which takes the path of every local write (check, store, publish) and turns a refusal into an
exception.

Epochs of an acceptance, when the caller does not choose one: the first open epoch, where
an epoch is *anchored* once the store holds an epoch root of it, or this node has started to
anchor it (an intent is recorded: its list of acceptances is fixed), and open until then.
- a project with `epoch_length` L > 0 has epochs aligned to the clock, epoch n covering the
  seconds [n * L, (n + 1) * L) since 1970: the current epoch is now // L, every node computes it
  from the time alone (a revision that changes L renumbers the epochs), and the default is the
  first epoch from there on that is not anchored (an epoch is not anchored before it closes,
  but another node's clock, or a revision of L, may have it so);
- a project with `epoch_length` 0 closes epochs on its owner's command, so the default is the
  epoch after the last anchored one (0 before the first anchor).
An acceptance into an anchored epoch could never count (`protocol.epoch`: it would be late), so
`accept` refuses one given explicitly, and refuses to change a contribution that an anchored
epoch pays: that epoch cannot change any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from node.chain.intents import intent_key
from node.errors import BadRequest, Conflict, ContributionAnchored, EpochAnchored, NotFound
from node.governance import governance_of
from node.keys import Identity
from protocol import (
    Acceptance,
    Contribution,
    EpochRoot,
    NotAuthorized,
    Profile,
    Project,
    ProjectClosed,
    Record,
    project_id,
    tagset,
)
from protocol.fields import keyset
from protocol.governance import DEFAULT_GOVERNANCE, stated
from protocol.records import GOVERNANCE
from protocol.uri import workwork_digest
from storage import Store

if TYPE_CHECKING:
    from node.net.node import Node


def set_profile(
    store: Store,
    identity: Identity,
    *,
    now: int,
    name: str | None = None,
    actor: str | None = None,
    skills: Iterable[str] | None = None,
    interests: Iterable[str] | None = None,
    payout: bytes | None = None,
    rate: str | None = None,
    about: str | None = None,
) -> Record:
    """Returns the next revision of the identity's profile; fields not given are kept.

    A first profile needs a `name`; its payout defaults to the wallet address.

    Raises:
        BadRequest: there is no profile yet and no name is given.
        InvalidField: a field is out of bounds.
    """
    current = store.profile(identity.public_key)
    if current is None:
        if name is None:
            raise BadRequest("a first profile needs a name")
        base = Profile(
            created_at=now,
            revision=0,
            name=name,
            actor=actor or "human",
            skills=tagset(skills or ()),
            interests=tagset(interests or ()),
            payout=payout or identity.address,
            rate=rate or "",
            about=about or "",
        )
        return identity.sign(base)
    old = current.expect(Profile)
    return identity.sign(
        Profile(
            created_at=max(now, old.created_at),
            revision=old.revision + 1,
            name=old.name if name is None else name,
            actor=old.actor if actor is None else actor,
            skills=old.skills if skills is None else tagset(skills),
            interests=old.interests if interests is None else tagset(interests),
            payout=old.payout if payout is None else payout,
            rate=old.rate if rate is None else rate,
            about=old.about if about is None else about,
        )
    )


def post_project(
    store: Store,
    identity: Identity,
    *,
    now: int,
    name: str,
    title: str | None = None,
    description: str | None = None,
    skills: Iterable[str] | None = None,
    epoch_length: int | None = None,
    reviewers: Iterable[bytes] | None = None,
    governance: tuple[Any, ...] | None = None,
) -> Record:
    """Returns a new project posting, or the next revision of the identity's project `name`.

    The payout (anchoring) address is always the wallet's: the contract stores an epoch's root
    under the address that sends `anchor`, and the node anchors with its wallet. A revision
    keeps the fields not given and the status (closing is `close_project`). `governance` is
    (mode, quorum, threshold, half_life, window) (`protocol.records.GOVERNANCE`), or () for
    the defaults; a revision keeps the record's unless given.

    Raises:
        BadRequest: a new project without a title.
        Conflict: a revision would change the epoch length, reviewers or governance of a
            project in lazy or vote mode, where only a passed `settings` decision does.
        InvalidField: a field is out of bounds.
    """
    pid = project_id(identity.public_key, name)
    current = store.project(pid)
    if current is None:
        if not title:
            raise BadRequest(f"a new project needs a title (project {name!r} does not exist yet)")
        return identity.sign(
            Project(
                created_at=now,
                revision=0,
                name=name,
                title=title,
                description=description or "",
                skills=tagset(skills or ()),
                payout=identity.address,
                epoch_length=epoch_length or 0,
                status="open",
                reviewers=keyset(reviewers or ()),
                governance=tuple(governance or ()),
            )
        )
    old = current.expect(Project)
    governed = {
        "epoch_length": epoch_length is not None and epoch_length != old.epoch_length,
        "reviewers": reviewers is not None and keyset(reviewers) != old.reviewers,
        "governance": governance is not None and tuple(governance) != old.governance,
    }
    changed = [name for name, differs in governed.items() if differs]
    if changed:
        mode = governance_of(store, current, now=now).mode
        if mode != "owner":
            # The revision would change none of them in this mode (docs/GOVERNANCE.md).
            raise Conflict(
                f"project {name!r} is in {mode} mode: only a passed settings decision changes "
                f"{', '.join(changed)} (workwork propose <project> settings --param ...)"
            )
    return identity.sign(
        Project(
            created_at=max(now, old.created_at),
            revision=old.revision + 1,
            name=name,
            title=old.title if title is None else title,
            description=old.description if description is None else description,
            skills=old.skills if skills is None else tagset(skills),
            payout=identity.address,
            epoch_length=old.epoch_length if epoch_length is None else epoch_length,
            status=old.status,
            reviewers=old.reviewers if reviewers is None else keyset(reviewers),
            governance=old.governance if governance is None else tuple(governance),
        )
    )


def governance_given(
    store: Store, identity: Identity, name: str, given: dict[str, Any]
) -> tuple[Any, ...]:
    """Returns the governance field of the identity's project `name` with the values `given`
    (by name: mode, quorum, threshold, half_life, window) and the others as the record in force
    states them (the defaults for a new project)."""
    current = store.project(project_id(identity.public_key, name))
    stated_now = DEFAULT_GOVERNANCE if current is None else stated(current)
    values = {
        "mode": stated_now.mode,
        "quorum": stated_now.quorum,
        "threshold": stated_now.threshold,
        "half_life": stated_now.half_life,
        "window": stated_now.window,
        **given,
    }
    return tuple(values[name] for name, _ in GOVERNANCE)


def close_project(store: Store, identity: Identity, *, now: int, project: bytes) -> Record:
    """Returns the revision of a project that closes it to new contributions.

    Raises:
        NotFound: the project is not in the store.
        NotAuthorized: the project is not the identity's.
        Conflict: the project is closed already, or its mode (lazy or vote) leaves closing to
            a passed `settings` decision (docs/GOVERNANCE.md).
    """
    current = _project(store, project)
    old = current.expect(Project)
    if current.author != identity.public_key:
        raise NotAuthorized(f"project {old.name!r} belongs to {current.author.hex()[:16]}")
    if old.status == "closed":
        raise Conflict(f"project {old.name!r} is closed already")
    governance = governance_of(store, current, now=now)
    if governance.status == "closed":
        raise Conflict(f"project {old.name!r} was closed by a decision")
    if governance.mode != "owner":
        # A revision would change no setting in this mode, but would still stop this node's
        # and others' contributions (`check_open` reads the record): refuse it here.
        raise Conflict(
            f"project {old.name!r} is in {governance.mode} mode: only a passed settings "
            "decision closes it (workwork propose <project> settings --param status=closed)"
        )
    return identity.sign(
        Project(
            created_at=max(now, old.created_at),
            revision=old.revision + 1,
            name=old.name,
            title=old.title,
            description=old.description,
            skills=old.skills,
            payout=old.payout,
            epoch_length=old.epoch_length,
            status="closed",
            reviewers=old.reviewers,
            governance=old.governance,
        )
    )


def contribute(
    store: Store,
    identity: Identity,
    *,
    now: int,
    project: bytes,
    summary: str,
    evidence_uri: str = "",
    evidence_hash: bytes = b"",
    effort: int = 0,
    payout: bytes | None = None,
) -> Record:
    """Returns a contribution to a project; its payout defaults to the wallet address.

    Raises:
        NotFound: the project is not in the store (the node may not have synced it yet).
        ProjectClosed: a passed `settings` decision closed the project (a closing revision
            is refused when the node stores the contribution, `validate.check_open`).
        InvalidField: a field is out of bounds, there is neither evidence URI nor hash, or the
            URI is not one others can open (`protocol.uri`).
    """
    posting = _project(store, project)
    # A closing revision is refused when the node stores the contribution (`check_open`).
    closed = posting.expect(Project).status == "closed"
    if not closed and governance_of(store, posting, now=now).status == "closed":
        raise ProjectClosed(f"project {posting.expect(Project).name!r} was closed by a decision")
    # A workwork: URI names the file's sha256: the record carries it as the hash too, which is
    # what a reviewer's node checks the fetched bytes against.
    named = workwork_digest(evidence_uri)
    if named is not None and not evidence_hash:
        evidence_hash = named
    return identity.sign(
        Contribution(
            created_at=now,
            project_id=project,
            summary=summary,
            evidence_uri=evidence_uri,
            evidence_hash=evidence_hash,
            effort=effort,
            payout=payout or identity.address,
        )
    )


def accept(
    store: Store,
    identity: Identity,
    *,
    now: int,
    contribution: bytes,
    weight: int,
    epoch: int | None = None,
) -> Record:
    """Returns an acceptance of a contribution, revising the acceptance in force if any.

    Weight 0 withdraws an earlier acceptance. The epoch defaults to `current_epoch`.

    Raises:
        NotFound: the contribution or its project is not in the store.
        NotAuthorized: the identity is neither the project's owner nor one of its reviewers.
        ContributionAnchored: an anchored epoch pays the contribution already.
        EpochAnchored: `epoch` is anchored, or being anchored.
        InvalidField: the weight or epoch is out of bounds.
    """
    work = store.get(contribution)
    if work is None or not isinstance(work.body, Contribution):
        raise NotFound(f"no contribution {contribution.hex()} in the store")
    pid = work.body.project_id
    posting = _project(store, pid)
    if identity.public_key != posting.author and identity.public_key not in (
        posting.expect(Project).reviewers
    ):
        raise NotAuthorized(
            f"only the owner or a reviewer of project {posting.expect(Project).name!r} may "
            "accept its contributions"
        )
    paid = store.committed_of(contribution)
    if paid:
        raise ContributionAnchored(
            f"contribution {contribution.hex()} is paid by anchored epoch {paid[0][0]}: its "
            "acceptance can no longer change"
        )
    if epoch is not None and anchored(store, pid, epoch):
        raise EpochAnchored(
            f"epoch {epoch} of project {posting.expect(Project).name!r} is anchored: an "
            f"acceptance into it would not count; the first open epoch is "
            f"{current_epoch(store, posting, now=now)}"
        )
    # Above every stored revision, not only the one in force: an acceptance by a reviewer the
    # project has since removed may hold a higher one, and would outrank this one if its
    # author were named a reviewer again.
    revision = 0
    created_at = now
    cursor = None
    while True:
        page = store.acceptances_of(contribution, cursor=cursor, limit=1000)
        for old in (r.expect(Acceptance) for r in page.items):
            revision = max(revision, old.revision + 1)
            created_at = max(created_at, old.created_at)
        if page.cursor is None:
            break
        cursor = page.cursor
    return identity.sign(
        Acceptance(
            created_at=created_at,
            revision=revision,
            project_id=pid,
            contribution_id=contribution,
            epoch=current_epoch(store, posting, now=now) if epoch is None else epoch,
            weight=weight,
        )
    )


def current_epoch(store: Store, project: Record, *, now: int) -> int:
    """Returns the epoch that acceptances made at `now` go into by default: the first open one
    (see the module docstring)."""
    body = project.expect(Project)
    pid = project_id(project.author, body.name)
    if body.epoch_length > 0:
        epoch = now // body.epoch_length
        while anchored(store, pid, epoch):
            epoch += 1
        return epoch
    last = -1
    cursor = None
    while True:
        page = store.epoch_roots(pid, cursor=cursor, limit=1000)
        for root in page.items:
            last = max(last, root.expect(EpochRoot).epoch)
        if page.cursor is None:
            break
        cursor = page.cursor
    # An epoch this node is anchoring has no root yet, but its list of acceptances is fixed.
    while anchored(store, pid, last + 1):
        last += 1
    return last + 1


def anchored(store: Store, pid: bytes, epoch: int) -> bool:
    """Returns True if an epoch is anchored (the store holds a root of it) or this node has
    started to anchor it (an intent is recorded): either way, what it covers is fixed."""
    return store.anchored(pid, epoch) or store.state.intent(intent_key(pid, epoch)) is not None


async def submit(node: Node, records: Sequence[Record]) -> None:
    """Stores and publishes records made here; raises the first refusal.

    `Node.submit` checks the clock, that what a record refers to is stored, and (for
    contributions) that the project is open, and raises; the store's rules refuse others
    silently, reporting them in the result: those are raised here, so that a user never
    believes a refused record was posted.

    Raises:
        ProtocolError: a record was refused (nothing of it was stored or published).
        OrphanRecord: a record refers to one this node has not seen (nothing was stored).
        StorageError: the store could not be written.
    """
    result = await node.submit(records)
    for _, error in result.rejected:
        raise error


def _project(store: Store, pid: bytes) -> Record:
    posting = store.project(pid)
    if posting is None:
        raise NotFound(f"no project {pid.hex()} in the store")
    return posting
