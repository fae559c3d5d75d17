"""The API's routes on records: profiles, projects, contributions, acceptances, export, import.

Each handler builds a record with `node.api.actions` (signed by this node's identity), hands it
to `actions.submit` (checked, stored, then published), and answers with its JSON
(`node.api.views`). Whatever reads the store (queries, the builders) runs in the gateway's
reader threads (`Api.read`), never on the event loop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from node.api import actions
from node.api.app import Api, loads
from node.api.routes import Param, Route
from node.api.views import page as _page
from node.api.views import record, standing_view
from node.chain.settlement import Settlement
from node.chain.trees import standing_of
from node.errors import (
    BadRequest,
    Conflict,
    ContributionAnchored,
    EpochAnchored,
    NodeError,
    NotFound,
    OrphanRecord,
    outcome,
)
from protocol import (
    NotAuthorized,
    Project,
    ProjectClosed,
    ProtocolError,
    Record,
    decode,
    project_id,
)
from protocol.records import MAX_ABOUT, Acceptance, Contribution
from protocol.topics import ALL as ALL_TOPICS
from protocol.topics import shard, work
from storage import BadCursor, Page, Store

# Lines of one import request; with `Limits.bulk_body` (32 MiB) that leaves ~3 KB a line, twice
# the hex of a typical record. `node.client.Client.import_records` splits larger files.
MAX_IMPORT_LINES = 10_000
_IMPORT_BATCH = 1000


async def show_profile(api: Api, args: dict[str, Any]) -> Any:
    author = args.get("author", api.identity.public_key)
    found = await api.read(api.node.store.profile, author)
    if found is None:
        raise NotFound(f"no profile of {author.hex()} in the store")
    return record(found)


async def set_profile(api: Api, args: dict[str, Any]) -> Any:
    new = await api.read(actions.set_profile, api.node.store, api.identity, now=api.now(), **args)
    await actions.submit(api.node, [new])
    return record(new)


async def list_projects(api: Api, args: dict[str, Any]) -> Any:
    page = await api.read(
        api.node.store.projects, cursor=args.get("cursor"), limit=args.get("limit", 100)
    )
    return _page(map(record, page.items), page.cursor)


def _project(store: Store, pid: bytes) -> Record:
    found = store.project(pid)
    if found is None:
        raise NotFound(f"no project {pid.hex()} in the store")
    return found


def _project_and_epoch(store: Store, pid: bytes, now: int) -> tuple[Record, int]:
    posting = _project(store, pid)
    return posting, actions.current_epoch(store, posting, now=now)


async def show_project(api: Api, args: dict[str, Any]) -> Any:
    pid = args["project_id"]
    posting, epoch = await api.read(_project_and_epoch, api.node.store, pid, api.now())
    out = record(posting)
    out["current_epoch"] = epoch
    out["followed"] = work(shard(pid)) in api.node.gossip.followed
    return out


# The parameters of POST /v1/projects that make the project record's governance.
GOVERNANCE_PARAMS = ("mode", "quorum", "threshold", "half_life", "window")


async def post_project(api: Api, args: dict[str, Any]) -> Any:
    given = {name: args.pop(name) for name in GOVERNANCE_PARAMS if name in args}
    if given:
        args["governance"] = await api.read(
            actions.governance_given, api.node.store, api.identity, args["name"], given
        )
    new = await api.read(actions.post_project, api.node.store, api.identity, now=api.now(), **args)
    pid = project_id(new.author, new.expect(Project).name)
    await api.follow(pid)
    await actions.submit(api.node, [new])
    return record(new)


async def close_project(api: Api, args: dict[str, Any]) -> Any:
    new = await api.read(
        actions.close_project,
        api.node.store,
        api.identity,
        now=api.now(),
        project=args["project_id"],
    )
    await actions.submit(api.node, [new])
    return {**record(new), "pools": await _close_pools(api, args["project_id"])}


async def _close_pools(api: Api, pid: bytes) -> dict[str, Any] | None:
    """Closes the closed project's pools on chain, so that their funders take back what is
    unallocated at once; None on a node without a chain. The project stays closed if the chain
    fails: the answer says so, and `POST .../pool/close` tries again."""
    settle = api.settlement
    if not isinstance(settle, Settlement):
        return None
    try:
        tx = await settle.treasury.close_pools(pid)
    except NodeError as exc:
        return {"closed": False, "tx_hash": None, "error": str(exc), "hint": outcome(exc).hint}
    return {"closed": True, "tx_hash": None if tx is None else tx.hex(), "error": None}


async def follow_project(api: Api, args: dict[str, Any]) -> Any:
    await api.follow(args["project_id"])
    return {"followed": work(shard(args["project_id"]))}


def _with_acceptance(store: Store, contribution: Record) -> dict[str, Any]:
    """Returns a contribution as JSON with its acceptance in force (or None), and where it
    stands (`protocol.epoch.standing`): `open` (counted, its epoch not anchored yet),
    `anchored` (an anchored epoch pays it), `late` (its acceptance came after its epoch was
    anchored: not counted, not paid) or `withdrawn`; None if it has no acceptance."""
    out = record(contribution)
    verdict = store.acceptance_of(contribution.id)
    out["acceptance"] = None if verdict is None else record(verdict)
    found = standing_of(store, contribution.id)
    out["standing"] = None if found is None else standing_view(found)
    return out


def _with_acceptances(store: Store, page: Page[Record]) -> dict[str, Any]:
    return _page((_with_acceptance(store, c) for c in page.items), page.cursor)


def _project_contributions(store: Store, pid: bytes, **paging: Any) -> dict[str, Any]:
    # An unknown project is a 404, as for every route that names one: its contributions could
    # only be orphans, which no index lists, so an empty page would hide a wrong id.
    _project(store, pid)
    return _with_acceptances(store, store.contributions(pid, **paging))


async def project_contributions(api: Api, args: dict[str, Any]) -> Any:
    return await api.read(
        _project_contributions,
        api.node.store,
        args["project_id"],
        cursor=args.get("cursor"),
        limit=args.get("limit", 100),
    )


def _author_contributions(store: Store, author: bytes, **paging: Any) -> dict[str, Any]:
    return _with_acceptances(store, store.contributions_by(author, **paging))


async def author_contributions(api: Api, args: dict[str, Any]) -> Any:
    return await api.read(
        _author_contributions,
        api.node.store,
        args.get("author", api.identity.public_key),
        cursor=args.get("cursor"),
        limit=args.get("limit", 100),
    )


def _contribution(store: Store, cid: bytes) -> dict[str, Any]:
    found = store.get(cid)
    if found is None or not isinstance(found.body, Contribution):
        raise NotFound(f"no contribution {cid.hex()} in the store")
    return _with_acceptance(store, found)


async def show_contribution(api: Api, args: dict[str, Any]) -> Any:
    return await api.read(_contribution, api.node.store, args["contribution_id"])


async def contribute(api: Api, args: dict[str, Any]) -> Any:
    args["project"] = args.pop("project_id")
    new = await api.read(actions.contribute, api.node.store, api.identity, now=api.now(), **args)
    await api.follow(args["project"])
    await actions.submit(api.node, [new])
    return record(new)


def _acceptances(
    store: Store, pid: bytes, epoch: int | None, now: int, **paging: Any
) -> dict[str, Any]:
    posting = _project(store, pid)
    if epoch is None:
        epoch = actions.current_epoch(store, posting, now=now)
    page = store.acceptances(pid, epoch, **paging)
    result = _page(map(record, page.items), page.cursor)
    result["epoch"] = epoch
    return result


async def acceptances(api: Api, args: dict[str, Any]) -> Any:
    return await api.read(
        _acceptances,
        api.node.store,
        args["project_id"],
        args.get("epoch"),
        api.now(),
        cursor=args.get("cursor"),
        limit=args.get("limit", 100),
    )


async def accept(api: Api, args: dict[str, Any]) -> Any:
    args["contribution"] = args.pop("contribution_id")
    new = await api.read(actions.accept, api.node.store, api.identity, now=api.now(), **args)
    await api.follow(new.expect(Acceptance).project_id)
    await actions.submit(api.node, [new])
    return record(new)


async def export(api: Api, args: dict[str, Any]) -> Any:
    """Streams every stored record, topic by topic ("meta" first, so parents come first)."""
    store = api.node.store

    def chunk(name: str, cursor: bytes | None) -> tuple[bytes, bytes | None]:
        page = store.topic_ids(name, cursor=cursor, limit=1000)
        found = (store.get(rid) for _, rid in page.items)
        lines = [
            json.dumps({"id": r.id.hex(), "kind": r.kind, "raw": r.raw.hex()}) + "\n"
            for r in found
            if r is not None
        ]
        return "".join(lines).encode(), page.cursor

    async def lines() -> AsyncIterator[bytes]:
        for name in ALL_TOPICS:
            cursor = None
            while True:
                data, cursor = await api.read(chunk, name, cursor)
                yield data
                if cursor is None:
                    break

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def complete_id(api: Api, args: dict[str, Any]) -> Any:
    """The ids that begin with a prefix (`Store.complete`): one names an id, two are ambiguous."""
    found = await api.read(api.node.store.complete, args["prefix"])
    return {"matches": [{"kind": kind, "id": rid.hex()} for kind, rid in found]}


async def import_records(api: Api, args: dict[str, Any]) -> Any:
    """Takes JSON lines of `{"raw": hex}` (or lines of bare hex) through full validation.

    Records the store refused for now are offered again once the others are in, as sync would
    offer them: a reviewer's acceptance before the project revision that names the reviewer,
    in a later batch, is stored on the second pass. What is refused in the last pass is
    reported.
    """
    node = api.node
    totals: dict[str, Any] = {"added": 0, "duplicates": 0, "orphaned": 0, "rejected": []}
    pending = _import_lines(args["lines"])
    while pending:
        progress = 0
        refused: list[bytes] = []
        totals["rejected"] = []
        for start in range(0, len(pending), _IMPORT_BATCH):
            batch = pending[start : start + _IMPORT_BATCH]
            # ingest_raw decodes and verifies every signature: imported records are not
            # trusted. A write: through the gateway's writer, which tracks the store's health.
            result = await node.gateway.write(node.store.ingest_raw, batch, now=node.clock())
            # A record's id is the sha256 of its bytes: only what was stored is decoded again
            # (without the signature check it just passed), to be published.
            stored = set(result.added) | set(result.released)
            ids = [hashlib.sha256(blob).digest() for blob in batch]
            fresh = [
                decode(blob, verify=False)
                for blob, i in zip(batch, ids, strict=True)
                if i in stored
            ]
            await node.gossip.publish(fresh)
            progress += len(stored)
            totals["added"] += len(result.added)
            totals["duplicates"] += len(result.duplicates)
            totals["orphaned"] += len(result.orphaned)
            totals["rejected"] += [{"id": rid.hex(), "error": str(e)} for rid, e in result.rejected]
            failed = {rid for rid, _ in result.rejected}
            refused += [blob for blob, i in zip(batch, ids, strict=True) if i in failed]
        # Another pass can only help if this one stored something and refused something.
        pending = refused if progress else []
    return totals


def _import_lines(lines: list[str]) -> list[bytes]:
    if len(lines) > MAX_IMPORT_LINES:
        raise BadRequest(f"at most {MAX_IMPORT_LINES} records per import")
    blobs = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            value = loads(text, f"line {number}") if text[0] in '{"' else text
            raw = value["raw"] if isinstance(value, dict) else value
            blobs.append(bytes.fromhex(raw))
        except (ValueError, KeyError, TypeError):
            raise BadRequest(f'line {number}: expected {{"raw": "<hex>"}} or hex') from None
    return blobs


_PID = Param("project_id", "id", "a project id (hex)", "path", True)
_PAGE = (
    Param("cursor", "cursor", "the cursor a previous page returned", "query"),
    Param("limit", "limit", "page size, 1-1000 (default 100)", "query"),
)
_PROFILE = (
    Param("name", "string", "display name (required the first time)"),
    Param("actor", "actor", "'human' or 'agent'"),
    Param("skills", "strings", "skill tags"),
    Param("interests", "strings", "interest tags"),
    Param("payout", "address", "payout address (default: the wallet's)"),
    Param("rate", "string", "rate or pay expectation, free text"),
    Param(
        "about",
        "string",
        f"free text about you, up to {MAX_ABOUT:,} bytes, new lines allowed, that matching "
        "reads beside the interests; '' clears it",
    ),
)
_POST = (
    Param(
        "name",
        "slug",
        "short name (a-z, 0-9, -): with the owner key, the project id",
        required=True,
    ),
    Param("title", "string", "title (required for a new project)"),
    Param("description", "string", "description"),
    Param("skills", "strings", "skills wanted"),
    Param(
        "epoch_length", "epoch_length", "seconds per epoch; 0: epochs close on the owner's command"
    ),
    Param("reviewers", "keys", "public keys (hex) whose acceptances count too"),
    # The project's governance (docs/GOVERNANCE.md); those not given keep the record's values
    # (the defaults for a new project, or one that states none).
    Param(
        "mode",
        "mode",
        "owner: the owner and reviewers accept; lazy: lazy consensus; vote: decisions only",
    ),
    Param("quorum", "per_mille", "share of all power that must vote, in thousandths"),
    Param("threshold", "per_mille", "share of yes among yes + no to pass, in thousandths"),
    Param("half_life", "epoch", "epochs after which accepted work counts half; 0: no decay"),
    Param("window", "lazy_window", "lazy mode: seconds after an acceptance to overturn it"),
)
_CONTRIBUTE = (
    Param("project_id", "id", "the project (hex id)", required=True),
    Param("summary", "string", "what was done", required=True),
    Param("evidence_uri", "string", "where the work is"),
    Param("evidence_hash", "hash", "sha256 of the work (hex)"),
    Param("effort", "effort", "claimed effort in minutes"),
    Param("payout", "address", "payout address (default: the wallet's)"),
)
_ACCEPT = (
    Param("contribution_id", "id", "the contribution (hex id)", required=True),
    Param("weight", "weight", "weight (0 withdraws an acceptance)", required=True),
    Param("epoch", "epoch", "epoch, not anchored (default: the project's first open epoch)"),
)

WORK_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/profile", show_profile, "A profile in force (default: this node's).",
          (Param("author", "id", "author public key (hex)", "query"),), raises=(NotFound,),
          returns="Record"),
    Route("POST", "/v1/profile", set_profile, "Set this node's profile (a new revision).",
          _PROFILE, raises=(ProtocolError,), returns="Record"),
    Route("GET", "/v1/projects", list_projects, "Projects in force, by project id.", _PAGE,
          raises=(BadCursor,), returns="Page"),
    Route("POST", "/v1/projects", post_project, "Post a project, or revise one of ours.", _POST,
          raises=(ProtocolError,), returns="Record"),
    Route("GET", "/v1/projects/{project_id}", show_project, "A project in force.", (_PID,),
          raises=(NotFound,), returns="Record"),
    Route("POST", "/v1/projects/{project_id}/close", close_project,
          "Close a project of ours to new contributions.", (_PID,), raises=(NotFound, NotAuthorized, Conflict, ProtocolError),
          returns="Record"),
    Route("POST", "/v1/projects/{project_id}/follow", follow_project,
          "Receive the project's contributions and acceptances from now on.", (_PID,)),
    Route("GET", "/v1/projects/{project_id}/contributions", project_contributions,
          "Contributions to a project, oldest first, each with its acceptance in force.",
          (_PID, *_PAGE), raises=(NotFound, BadCursor), returns="Page"),
    Route("GET", "/v1/projects/{project_id}/acceptances", acceptances,
          "Acceptances in force of weight > 0 of one epoch (the leaves of its tree until it is anchored; then its manifest decides).",
          (_PID, Param("epoch", "epoch", "epoch (default: the current one)", "query"), *_PAGE),
          raises=(NotFound, BadCursor), returns="Page"),
    Route("GET", "/v1/contributions", author_contributions,
          "Contributions of an author (default: this node's), each with its acceptance.",
          (Param("author", "id", "author public key (hex)", "query"), *_PAGE), raises=(BadCursor,),
          returns="Page"),
    Route("GET", "/v1/contributions/{contribution_id}", show_contribution,
          "A contribution with its acceptance in force.",
          (Param("contribution_id", "id", "contribution id (hex)", "path", True),),
          raises=(NotFound,), returns="Record"),
    Route("POST", "/v1/contributions", contribute, "Contribute to a project.", _CONTRIBUTE,
          raises=(NotFound, ProjectClosed, OrphanRecord, ProtocolError), returns="Record"),
    Route("POST", "/v1/acceptances", accept,
          "Accept (or re-weigh, or withdraw with weight 0) a contribution.", _ACCEPT,
          raises=(NotFound, NotAuthorized, EpochAnchored, ContributionAnchored, OrphanRecord, ProtocolError),
          returns="Record"),
    Route("GET", "/v1/ids/{prefix}", complete_id,
          "The ids of stored records and of projects that begin with a prefix: `matches`, at most two (one: the prefix names it).",
          (Param("prefix", "prefix", "the first 4 to 64 hex digits of an id", "path", True),),
          returns="Object"),
    Route("GET", "/v1/records/export", export,
          "Every stored record as JSON lines {id, kind, raw}.", returns="JSON lines"),
    Route("POST", "/v1/records/import", import_records,
          "Validate and store records ({raw: hex} JSON lines, as a list of lines).",
          (Param("lines", "strings", f"the JSON lines of an export, at most {MAX_IMPORT_LINES}", required=True),),
          returns="ImportResult", bulk=True),
)  # fmt: skip
