"""Collective decisions from the store: voting power, tallies, and the records a user asks for.

Power comes from anchored epochs only (`protocol.tally`): for each epoch of the project up to a
proposal's snapshot that has an epoch root, the acceptances its manifest lists give credits to
the keys that signed their contributions. Where an owner published two roots of an epoch naming
different manifests, the root of lowest (created_at, id) decides (`protocol.epoch.first_root`),
not this node's chain, so that every node computes the same power whatever chain it uses.

The builders (`propose`, `vote`) check what only this node's user can be told before signing
(the project is open, the snapshot is anchored, the window has not closed), as `node.api.actions`
does for the other kinds; the store's rules (`protocol.validate.check_vote`) then apply as to any
record.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from node.errors import BadRequest, Conflict, NotFound
from node.keys import Identity
from protocol import Acceptance, Contribution, EpochRoot, Project, Proposal, Record, Vote
from protocol.epoch import first_root, listed, manifest_parts
from protocol.errors import MissingRecord
from protocol.governance import stated
from protocol.records import MAX_WINDOW, MIN_WINDOW, OPTIONAL_PARAMS, PARAMS, project_id
from protocol.tally import Credit, Settings, Tally, credits, powers, tally
from protocol.validate import check_vote
from storage import Store
from storage.store import MAX_LIMIT

# How long a proposal is open for votes unless its author says otherwise.
DEFAULT_WINDOW = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Decision:
    """A proposal's tally and the credits that give each voter's power.

    Attributes:
        tally: the result (`protocol.tally.Tally`).
        credits: the credits of every key at the snapshot, by key: what proves each power (an
            anchored leaf each, whose proof `workwork proof` exports).
        open: whether the window was still open at the time asked.
    """

    tally: Tally
    credits: Mapping[bytes, tuple[Credit, ...]]
    open: bool


def settings_of(
    store: Store, project: Record, *, now: float | None = None, when: float | None = None
) -> Settings:
    """Returns the project's quorum, threshold and half-life in effect at `when` (default:
    `now`), as its record states them and passed `settings` decisions closed by `now` change
    them (`node.governance`); `now` None takes the record's alone.
    """
    if now is None:
        return stated(project).settings
    from node.governance import governance_of  # it builds on this module

    return governance_of(store, project, now=now, when=when).settings


def _all(page_of: Any, *args: Any) -> list[Record]:
    found: list[Record] = []
    cursor = None
    while True:
        page = page_of(*args, cursor=cursor, limit=MAX_LIMIT)
        found += page.items
        if page.cursor is None:
            return found
        cursor = page.cursor


def anchored_epochs(store: Store, pid: bytes) -> dict[int, Record]:
    """Returns the epoch root that decides each anchored epoch of a project, by epoch."""
    roots: dict[int, list[Record]] = {}
    for root in _all(store.epoch_roots, pid):
        roots.setdefault(root.expect(EpochRoot).epoch, []).append(root)
    chosen = {epoch: first_root(found) for epoch, found in roots.items()}
    return {epoch: root for epoch, root in chosen.items() if root is not None}


def credits_of(store: Store, project: Record, snapshot: int) -> list[Credit]:
    """Returns the credits of a project's anchored epochs up to `snapshot`.

    Kept per (store, project, snapshot, epoch roots that decide the epochs up to it): reading
    every anchored epoch's manifest and acceptances is most of a tally's cost, and only a new
    anchor (an epoch root, stored only with its manifest) changes the result. The roots are
    read from their index each call (one scan), the manifests and acceptances only on a miss.

    Raises:
        MissingRecord: a listed record is missing (only a damaged store shows that).
        StorageError: the store could not be read.
    """
    return list(_counted(store, project, snapshot).credits)


def power_of(
    store: Store, project: Record, snapshot: int, half_life: int
) -> tuple[Mapping[bytes, int], Mapping[bytes, tuple[Credit, ...]]]:
    """Returns the voting power of every key with any at `snapshot` (`protocol.tally.powers`)
    and the credits behind each, kept with the credits (see `credits_of`); read-only.

    Raises:
        the errors of `credits_of`.
    """
    counted = _counted(store, project, snapshot)
    with _lock:
        found = counted.powers.get(half_life)
    if found is None:
        by_key: dict[bytes, list[Credit]] = {}
        for credit in counted.credits:
            by_key.setdefault(credit.author, []).append(credit)
        found = (
            MappingProxyType(powers(counted.credits, snapshot, half_life)),
            MappingProxyType({key: tuple(credits) for key, credits in by_key.items()}),
        )
        with _lock:
            counted.powers[half_life] = found
    return found


@dataclass(frozen=True, slots=True)
class _Counted:
    """What `credits_of` keeps: the credits, and the powers computed from them by half-life."""

    credits: tuple[Credit, ...]
    powers: dict[int, tuple[Mapping[bytes, int], Mapping[bytes, tuple[Credit, ...]]]]


def _counted(store: Store, project: Record, snapshot: int) -> _Counted:
    pid = project_id(project.author, project.expect(Project).name)
    roots = sorted((e, r) for e, r in anchored_epochs(store, pid).items() if e <= snapshot)
    key = (id(store), str(store.path), pid, snapshot, tuple(r.id for _, r in roots))
    return _kept_credits(key, lambda: _Counted(_credits(store, project, roots), {}))


def _credits(store: Store, project: Record, roots: list[tuple[int, Record]]) -> tuple[Credit, ...]:
    found: list[Credit] = []
    for epoch, root in roots:
        acceptances: list[Record] = []
        works: dict[bytes, Record] = {}
        for aid in listed(manifest_parts(root, project, store.get)):
            acceptance = store.get(aid)
            if acceptance is None:
                raise MissingRecord(f"acceptance {aid.hex()[:16]} of a stored manifest is missing")
            cid = acceptance.expect(Acceptance).contribution_id
            work = store.get(cid)
            if work is None:
                raise MissingRecord(
                    f"contribution {cid.hex()[:16]} of a stored manifest is missing"
                )
            works[cid] = work
            acceptances.append(acceptance)
        found += credits(epoch, acceptances, works)
    return tuple(found)


# The credits of the last few (store, project, snapshot, roots) asked for (`credits_of`).
KEPT_CREDITS = 64
_kept: OrderedDict[Hashable, _Counted] = OrderedDict()
_lock = threading.Lock()


def _kept_credits(key: Hashable, build: Callable[[], _Counted]) -> _Counted:
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
            return found
    built = build()
    with _lock:
        _kept[key] = built
        while len(_kept) > KEPT_CREDITS:
            _kept.popitem(last=False)
    return built


def decide(store: Store, proposal: Record, *, now: float) -> Decision:
    """Returns the tally of a stored proposal from the stored votes and anchored epochs.

    Raises:
        NotFound: the proposal's project is not in the store.
        StorageError: the store could not be read.
    """
    body = proposal.expect(Proposal)
    project = _project(store, body.project_id)
    # The settings in effect when the proposal was made: a decision closing during its window
    # does not change how it is counted.
    settings = settings_of(store, project, now=now, when=body.created_at)
    power, by_key = power_of(store, project, body.snapshot, settings.half_life)
    result = tally(proposal, _all(store.votes, proposal.id), power, settings)
    return Decision(result, by_key, now < body.closes_at)


def proposals(store: Store, pid: bytes) -> list[Record]:
    """Returns every stored proposal of a project, oldest first.

    Raises:
        NotFound: the project is not in the store.
    """
    _project(store, pid)
    return _all(store.proposals, pid)


def proposal(store: Store, rid: bytes) -> Record:
    """Returns a stored proposal.

    Raises:
        NotFound: no proposal of that id is stored.
    """
    found = store.get(rid)
    if found is None or not isinstance(found.body, Proposal):
        raise NotFound(f"no proposal {rid.hex()} in the store")
    return found


def params_of(
    store: Store,
    project: Record,
    action: str,
    given: Mapping[str, Any],
    *,
    now: float | None = None,
) -> tuple[Any, ...]:
    """Returns the parameters of an action in wire order from values given by name (already
    converted to their record types); for `settings`, what is not given is kept as it is now.

    Raises:
        BadRequest: a parameter is missing or unknown.
    """
    schema = PARAMS[action]
    names = [name for name, _ in schema]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise BadRequest(f"a {action} proposal takes {names or 'no parameters'}, not {unknown}")
    values = dict(given)
    if action == "settings":
        from node.governance import governance_of  # it builds on this module

        current = stated(project) if now is None else governance_of(store, project, now=now)
        defaults = {
            "quorum": current.quorum,
            "threshold": current.threshold,
            "half_life": current.half_life,
            "epoch_length": current.epoch_length,
            "reviewers": current.reviewers,
            "status": current.status,
        }
        values = {**defaults, **values}
        if ("mode" in given) != ("window" in given):
            # Both or neither go on the wire: the one not given stays as it is.
            values.setdefault("mode", current.mode)
            values.setdefault("window", current.window)
    if action == "allocate":
        values.setdefault("token", b"\x00" * 20)
    names = names[: len(names) - OPTIONAL_PARAMS.get(action, 0)] + [
        name for name in names[len(names) - OPTIONAL_PARAMS.get(action, 0) :] if name in values
    ]
    missing = [name for name in names if name not in values]
    if missing:
        raise BadRequest(f"a {action} proposal needs {missing}")
    return tuple(values[name] for name in names)


def propose(
    store: Store,
    identity: Identity,
    *,
    now: int,
    project: bytes,
    action: str,
    title: str,
    text: str = "",
    params: Mapping[str, Any] | None = None,
    options: Iterable[str] = (),
    snapshot: int | None = None,
    window: int = DEFAULT_WINDOW,
) -> Record:
    """Returns a proposal to a project's members.

    The snapshot defaults to the project's last anchored epoch, and must be anchored: the power
    of an epoch still open could change after the vote.

    Raises:
        NotFound: the project (or the contribution an `accept` names) is not in the store.
        Conflict: the project is closed, or no epoch of it up to the snapshot is anchored
            (nobody would have any power).
        BadRequest: the action is unknown, or a parameter is missing or unknown.
        InvalidField: a field is out of bounds (a window outside [MIN_WINDOW, MAX_WINDOW]).
    """
    posting = _project(store, project)
    body = posting.expect(Project)
    if action not in PARAMS:
        raise BadRequest(f"unknown action {action!r}: one of {sorted(PARAMS)}")
    if _closed(store, posting, now):
        raise Conflict(f"project {body.name!r} is closed")
    epochs = anchored_epochs(store, project)
    if not epochs:
        raise Conflict(f"no epoch of project {body.name!r} is anchored: nobody has power yet")
    if snapshot is None:
        snapshot = max(epochs)
    elif snapshot not in epochs:
        raise Conflict(
            f"epoch {snapshot} of project {body.name!r} is not anchored; anchored: "
            f"{sorted(epochs)[-10:]}"
        )
    values = params_of(store, posting, action, params or {}, now=now)
    if action == "accept":
        work = store.get(values[0])
        if (
            work is None
            or not isinstance(work.body, Contribution)
            or (work.body.project_id != project)
        ):
            raise NotFound(f"no contribution {values[0].hex()} of this project in the store")
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise BadRequest(f"a window of {window} s is outside [{MIN_WINDOW}, {MAX_WINDOW}]")
    return identity.sign(
        Proposal(
            created_at=now,
            project_id=project,
            action=action,
            title=title,
            text=text,
            params=values,
            options=tuple(options),
            snapshot=snapshot,
            closes_at=now + window,
        )
    )


def vote(
    store: Store,
    identity: Identity,
    *,
    now: int,
    proposal_id: bytes,
    choice: str,
    approve: Iterable[int] = (),
    reason: str = "",
) -> Record:
    """Returns a vote on a proposal, revising this identity's earlier vote on it if any.

    Raises:
        NotFound: the proposal is not in the store.
        Conflict: its window has closed.
        ProtocolError: the choice is not one the proposal offers (`check_vote`), or a field is
            out of bounds.
    """
    question = proposal(store, proposal_id)
    body = question.expect(Proposal)
    if now >= body.closes_at:
        raise Conflict(f"voting on proposal {proposal_id.hex()[:16]} closed at {body.closes_at}")
    revision, created_at = 0, max(now, body.created_at)
    for old in _all(store.votes, proposal_id):
        if old.author == identity.public_key:
            revision = max(revision, old.expect(Vote).revision + 1)
            created_at = max(created_at, old.body.created_at)
    new = identity.sign(
        Vote(
            created_at=created_at,
            revision=revision,
            project_id=body.project_id,
            proposal_id=proposal_id,
            choice=choice,
            approve=tuple(sorted(set(approve))),
            reason=reason,
        )
    )
    check_vote(new, question)
    return new


def _closed(store: Store, project: Record, now: float) -> bool:
    """Whether the project is closed by the governance in effect (its record's status, or a
    passed decision's: docs/GOVERNANCE.md says which wins)."""
    from node.governance import governance_of  # it builds on this module

    return governance_of(store, project, now=now).status == "closed"


def _project(store: Store, pid: bytes) -> Record:
    posting = store.project(pid)
    if posting is None:
        raise NotFound(f"no project {pid.hex()} in the store")
    return posting
