"""The API's matching route: the open projects this node knows, ranked for its own profile.

The ranker (`node.match`) is sans-I/O; this module gathers what it needs, each part where it
belongs:

1. the store's part, in a gateway reader thread (`_gather`): the profile, its accepted work
   (and whether each one's epoch is anchored: the owner published its root), and the open
   projects of others with their activity and their owners' epoch roots;
2. a first ranking, in a worker thread: a thousand projects take tens of milliseconds of CPU,
   which the event loop must not spend while peers and other requests wait;
3. the chain's part, for the best candidates only (`_funding`): the funded and paid wei of
   their anchored epochs, at most CHAIN_EPOCHS reads within CHAIN_SECONDS, each in a thread of
   its own; then the final ranking. A chain that does not answer leaves pay unknown, and the
   reasons say so; it does not fail the request.

A profile's `about` text is read when the profile record has one (`about`); the record format
has no such field yet, so it is None until the format adds it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import trio

from node.api.app import Api
from node.api.routes import Param, Route
from node.chain.anchors import senders
from node.chain.client import ChainClient, EpochState
from node.chain.settlement import Settlement
from node.errors import ChainError, NoProfile
from node.match import Activity, Epoch, Opening, Seeker, Work, rank
from protocol import Acceptance, Contribution, EpochRoot, Profile, Project, Record, project_id
from protocol.topics import shard, work
from storage import Store
from storage.store import MAX_LIMIT

# At most this many open projects are ranked (the first ones in project id order), and this
# many contributions of each are read for its activity: a bound on the time a request takes.
MAX_PROJECTS = 10_000
# Pages of this node's own contributions read for its accepted work.
MAX_WORK_PAGES = 10
# The chain is asked about the anchored epochs of the best CHAIN_CANDIDATES projects of the
# first ranking (at least `limit`), their newest EPOCHS_EACH epochs, CHAIN_EPOCHS in all,
# for at most CHAIN_SECONDS.
CHAIN_CANDIDATES = 20
EPOCHS_EACH = 4
CHAIN_EPOCHS = 32
CHAIN_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class _Root:
    """An owner's published epoch root on this node's chain: where to ask for its funding."""

    project_id: bytes
    epoch: int
    tx_hash: bytes
    payout: bytes


@dataclass(frozen=True, slots=True)
class _Gathered:
    seeker: Seeker
    openings: list[Opening]
    roots: dict[bytes, list[_Root]]


def _work(store: Store, me: bytes) -> tuple[Work, ...]:
    """Returns this node's accepted contributions, each with its project's title and skills."""
    found: list[Work] = []
    projects: dict[bytes, Record | None] = {}
    cursor = None
    for _ in range(MAX_WORK_PAGES):
        page = store.contributions_by(me, cursor=cursor, limit=MAX_LIMIT)
        for item in page.items:
            verdict = store.acceptance_of(item.id)
            if verdict is None or verdict.expect(Acceptance).weight == 0:
                continue
            pid = item.expect(Contribution).project_id
            if pid not in projects:
                projects[pid] = store.project(pid)
            project = projects[pid]
            if project is None:
                continue
            accepted = verdict.expect(Acceptance)
            roots = store.epoch_roots(pid, epoch=accepted.epoch, limit=MAX_LIMIT).items
            posting = project.expect(Project)
            found.append(
                Work(
                    pid,
                    posting.title,
                    posting.skills,
                    accepted.weight,
                    any(r.author == project.author for r in roots),
                )
            )
        cursor = page.cursor
        if cursor is None:
            break
    return tuple(found)


def _activity(store: Store, pid: bytes, project: Record, followed: bool) -> Activity:
    """Returns what the store holds of a project's work: counts, and its newest record's time."""
    page = store.contributions(pid, limit=MAX_LIMIT)
    accepted = waiting = 0
    authors: set[bytes] = set()
    last = project.body.created_at
    for item in page.items:
        authors.add(item.author)
        last = max(last, item.body.created_at)
        verdict = store.acceptance_of(item.id)
        if verdict is None:
            waiting += 1
            continue
        last = max(last, verdict.body.created_at)
        if verdict.expect(Acceptance).weight > 0:
            accepted += 1
    return Activity(len(page.items), accepted, waiting, len(authors), last, followed)


def _epochs(
    store: Store, pid: bytes, project: Record, chain: tuple[int, bytes] | None
) -> tuple[tuple[Epoch, ...], list[_Root]]:
    """Returns the epochs its owner published roots of, and those on this node's chain."""
    epochs: dict[int, Epoch] = {}
    roots: list[_Root] = []
    payout = project.expect(Project).payout
    for record in store.epoch_roots(pid, limit=MAX_LIMIT).items:
        body = record.expect(EpochRoot)
        if record.author != project.author or body.epoch in epochs:
            continue
        epochs[body.epoch] = Epoch(body.epoch, body.total_weight)
        if chain == (body.chain_id, body.contract):
            roots.append(_Root(pid, body.epoch, body.tx_hash, payout))
    roots.sort(key=lambda r: -r.epoch)
    return tuple(epochs.values()), roots[:EPOCHS_EACH]


def _gather(
    store: Store, me: bytes, chain: tuple[int, bytes] | None, topics: frozenset[str]
) -> _Gathered:
    """The store's part (in a reader thread): the seeker, and the open projects of others."""
    profile = store.profile(me)
    if profile is None:
        raise NoProfile("this node has no profile yet, and matching ranks projects for it")
    body = profile.expect(Profile)
    seeker = Seeker(
        me,
        body.skills,
        body.interests,
        body.about,
        body.rate,
        _work(store, me),
    )
    openings: list[Opening] = []
    roots: dict[bytes, list[_Root]] = {}
    cursor = None
    while len(openings) < MAX_PROJECTS:
        page = store.projects(cursor=cursor, limit=MAX_LIMIT)
        for record in page.items:
            posting = record.expect(Project)
            if posting.status != "open" or record.author == me:
                continue
            pid = project_id(record.author, posting.name)
            followed = work(shard(pid)) in topics
            epochs, on_chain = _epochs(store, pid, record, chain)
            roots[pid] = on_chain
            openings.append(
                Opening(
                    pid,
                    record.author,
                    posting.title,
                    posting.description,
                    posting.skills,
                    _activity(store, pid, record, followed),
                    epochs,
                )
            )
        cursor = page.cursor
        if cursor is None:
            break
    return _Gathered(seeker, openings[:MAX_PROJECTS], roots)


def _epoch_state(chain: ChainClient, root: _Root) -> EpochState:
    """Returns an epoch's state under the address that anchored it (`node.chain.anchors`)."""
    state = None
    for owner in senders(chain, [root.tx_hash], root.payout):
        state = chain.epoch(owner, root.project_id, root.epoch)
        if state.anchored:
            return state
    assert state is not None  # senders() always names the payout address at least
    return state


async def _funding(chain: ChainClient, roots: list[_Root]) -> dict[tuple[bytes, int], EpochState]:
    """The chain's part: the state of each epoch asked, until the budget of reads or time runs
    out, or the chain fails (then what is not read stays unknown)."""
    found: dict[tuple[bytes, int], EpochState] = {}
    with trio.move_on_after(CHAIN_SECONDS):
        for root in roots[:CHAIN_EPOCHS]:
            try:
                # A read that outlives the budget is left to finish on its own: it changes
                # nothing, and the answer must not wait for it. (trio-typing's stubs, a
                # py-libp2p dependency, lack abandon_on_cancel.)
                state = await trio.to_thread.run_sync(  # type: ignore[call-arg]
                    _epoch_state, chain, root, abandon_on_cancel=True
                )
            except ChainError:
                break
            found[(root.project_id, root.epoch)] = state
    return found


def _funded(opening: Opening, states: dict[tuple[bytes, int], EpochState]) -> Opening:
    epochs = []
    for epoch in opening.epochs:
        state = states.get((opening.project_id, epoch.epoch))
        if state is not None:
            epoch = dataclasses.replace(epoch, funded=state.funded, paid=state.paid)
        epochs.append(epoch)
    return dataclasses.replace(opening, epochs=tuple(epochs))


async def match(api: Api, args: dict[str, Any]) -> Any:
    limit = args.get("limit", 100)
    settle = api.settlement if isinstance(api.settlement, Settlement) else None
    chain = settle.chain if settle is not None else None
    ref = None if chain is None else (chain.chain_id, chain.address)
    me = api.identity.public_key
    topics = api.node.gossip.followed
    gathered = await api.read(_gather, api.node.store, me, ref, topics)
    now = api.now()
    seeker, openings = gathered.seeker, gathered.openings
    first = await trio.to_thread.run_sync(lambda: rank(seeker, openings, now=now))
    states: dict[tuple[bytes, int], EpochState] = {}
    asked = 0
    if chain is not None:
        best = first[: max(CHAIN_CANDIDATES, limit)]
        roots = [r for m in best for r in gathered.roots.get(m.project_id, [])]
        asked = min(len(roots), CHAIN_EPOCHS)
        states = await _funding(chain, roots)
    if states:
        openings = [_funded(o, states) for o in openings]
        ranked = await trio.to_thread.run_sync(lambda: rank(seeker, openings, now=now, limit=limit))
    else:
        ranked = first[:limit]
    return {
        "items": [m.to_json() for m in ranked],
        "considered": len(openings),
        "accepted_work": len(seeker.work),
        "funding": {"epochs_asked": asked, "epochs_read": len(states)},
    }


MATCH_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/match", match,
          "Open projects of others ranked for this node's profile, best first, each with its "
          "love, good-at, needs and paid scores and their reasons.",
          (Param("limit", "limit", "how many, 1-1000 (default 100)", "query"),),
          raises=(NoProfile,), returns="Matches"),
)  # fmt: skip
