"""The local HTTP JSON API: what the CLI, scripts and AI agents use to drive a running node.

Every route is one `Route` entry (node/routes.py) in `ROUTES`: method, path, handler, summary,
parameters and the errors it may answer. The same table builds the Starlette app, checks and
converts every parameter before the handler runs, and generates the OpenAPI 3.1 document
(node/openapi.py, GET /openapi.json), so the description cannot drift from the code. Adding an
endpoint is adding one entry.

Conventions of the JSON:
- ids, keys, hashes and signatures are lowercase hex without 0x; EVM addresses are 0x-prefixed
  and checksummed (EIP-55); weights and amounts that may outgrow a JavaScript number (wei,
  weights, total weights) are decimal strings; times are seconds since 1970.
- a record is `{"id", "author", "kind", "fields": {...}, "raw"}`, `raw` being the hex of the
  signed envelope, so a client can verify it without trusting this node.
- errors are `{"error": {"type", "message", "hint"}}` with status 400 (bad input, a record the
  protocol refuses), 401 (no or wrong token), 403 (not the owner or a reviewer), 404, 409
  (conflict: a closed project, a transaction the contract refuses), 502 (a peer could not be
  reached), 503 (the chain does not answer) or 500 (a bug: the message says so and the
  traceback goes to the node's log, never to the client).

Authentication: every request, /openapi.json included, carries the token of the data dir's
`api.cookie`, as `Authorization: Bearer <token>` or as a cookie `workwork_token=<token>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from typing import Any

import multiaddr
import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from node import actions
from node.actions import Conflict, NotFound
from node.errors import (
    ChainError,
    ChainUnavailable,
    ConfigError,
    NetworkError,
    NodeError,
    SyncError,
    TransactionReverted,
)
from node.keys import Identity
from node.openapi import openapi
from node.proof import ProofError
from node.routes import TYPES, BadRequest, Param, Route
from node.service import Node
from node.settlement import SettlementError
from protocol import (
    Body,
    NotAuthorized,
    Project,
    ProjectClosed,
    ProtocolError,
    Record,
    __version__,
    decode,
    project_id,
)
from protocol.merkle import checksum
from protocol.records import Acceptance, Contribution
from protocol.topics import ALL as ALL_TOPICS
from protocol.topics import shard, work
from storage import BadCursor, StorageError

log = logging.getLogger(__name__)

TOKEN_COOKIE = "workwork_token"
MAX_IMPORT_LINES = 100_000
_IMPORT_BATCH = 1000
# Fields that hold EVM addresses, and integers that JSON carries as decimal strings.
_ADDRESSES = frozenset({"payout", "contract"})
_BIG = frozenset({"weight", "total_weight"})


@dataclass
class Api:
    """What handlers act on: the running node and the unlocked identity.

    Attributes:
        node: the running node.
        identity: the keys records are signed with.
        nursery: where background work (syncing a newly followed shard) runs.
        settlement: the chain and settlement service, once the daemon runs one.
    """

    node: Node
    identity: Identity
    nursery: trio.Nursery
    settlement: Any = None
    routes: tuple[Route, ...] = field(default_factory=lambda: ROUTES)

    def now(self) -> int:
        return int(self.node.clock())

    async def follow(self, pid: bytes) -> None:
        """Joins a project's work shard, and syncs it from connected peers if it is new."""
        if work(shard(pid)) in self.node.gossip.followed:
            return
        await self.node.follow_project(pid)
        for peer in self.node.peers.connected():
            self.nursery.start_soon(self._sync, peer)

    async def _sync(self, peer: Any) -> None:
        try:
            await self.node.sync.sync_with(peer)
        except SyncError as exc:
            log.debug("sync with %s after a follow failed: %s", peer, exc)

    def app(self, token: str) -> ASGIApp:
        """Returns the ASGI app serving the routes to holders of `token`."""
        routes = [
            StarletteRoute(r.path, partial(self._endpoint, r), methods=[r.method])
            for r in self.routes
        ]
        routes.append(StarletteRoute("/openapi.json", self._openapi, methods=["GET"]))
        routes.append(StarletteRoute(DASHBOARD_PATH, _dashboard, methods=["GET"]))
        app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
        return _Auth(app, token)

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(openapi(self.routes, cookie=TOKEN_COOKIE))

    async def _endpoint(self, route: Route, request: Request) -> Response:
        try:
            args = await _arguments(route, request)
            result = await route.handler(self, args)
        except Exception as exc:
            return problem(exc)
        return result if isinstance(result, Response) else JSONResponse(result)


async def _arguments(route: Route, request: Request) -> dict[str, Any]:
    """Checks and converts a request's parameters as the route declares them."""
    body: dict[str, Any] = {}
    if any(p.where == "body" for p in route.params):
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        known = {p.name for p in route.params if p.where == "body"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(unknown)}; known: {sorted(known)}")
    sources = {"path": request.path_params, "query": request.query_params, "body": body}
    args: dict[str, Any] = {}
    for param in route.params:
        source = sources[param.where]
        if param.name not in source or source[param.name] is None:
            if param.required:
                raise BadRequest(f"{param.name} is required")
            continue
        convert = TYPES[param.type][0]
        try:
            args[param.name] = convert(source[param.name])
        except ValueError as exc:
            raise BadRequest(f"{param.name}: {exc}") from None
    return args


# Errors.


def error(status: int, kind: str, message: str, hint: str = "") -> JSONResponse:
    """Returns the JSON error response every failure of the API takes."""
    return JSONResponse(
        {"error": {"type": kind, "message": message, "hint": hint}}, status_code=status
    )


_HINTS: tuple[tuple[type[Exception], int, str], ...] = (
    (BadRequest, 400, "see GET /openapi.json for the parameters of each route"),
    (ProjectClosed, 409, "the project no longer takes contributions"),
    (actions.OrphanRecord, 409, "the node has not seen what this record refers to; wait for sync"),
    (NotAuthorized, 403, "only a project's owner (or a reviewer it names) may do this"),
    (ProtocolError, 400, "the record was refused by the protocol's rules; nothing was stored"),
    (NotFound, 404, "the node may not have it yet: check `workwork peers` and wait for sync"),
    (Conflict, 409, ""),
    (NetworkError, 502, "check the address and that the peer is running"),
    (ChainUnavailable, 503, "the chain's endpoint does not answer; check it, then retry"),
    (TransactionReverted, 409, "the contract refused it; nothing was changed on chain"),
    (ProofError, 400, "the proof file is not valid: the message names what failed"),
    (SettlementError, 409, ""),
    (ChainError, 502, "see the node's log"),
    (ConfigError, 400, ""),
    (BadCursor, 400, "pass back the cursor that the previous page returned"),
    (NodeError, 400, ""),
    (StorageError, 500, "the node's store failed; see the node's log"),
)


def problem(exc: Exception) -> JSONResponse:
    """Returns the response for an exception raised by a handler."""
    for cls, status, hint in _HINTS:
        if isinstance(exc, cls):
            return error(status, type(exc).__name__, str(exc), hint)
    log.exception("internal error in the API")
    return error(500, "InternalError", "internal error: a bug in the node", "see the node's log")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    hint = "see GET /openapi.json for the routes" if exc.status_code in (404, 405) else ""
    return error(exc.status_code, "HTTPError", str(exc.detail), hint)


DASHBOARD_PATH = "/"
# The page may run its own inline script and talk to this origin, and nothing else.
_DASHBOARD_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def _dashboard(request: Request) -> Response:
    page = resources.files("node").joinpath("dashboard.html").read_text("utf-8")
    headers = {"Content-Security-Policy": _DASHBOARD_CSP, "Referrer-Policy": "no-referrer"}
    return HTMLResponse(page, headers=headers)


class _Auth:
    """Refuses every request that does not carry the token (header or cookie)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The dashboard page is static and holds no data: it reads the API with the token it
        # finds in its URL fragment, which browsers never send.
        public = scope.get("method") == "GET" and scope.get("path") == DASHBOARD_PATH
        if scope["type"] == "http" and not public and not self._holds_token(scope):
            response = error(
                401,
                "Unauthorized",
                "missing or wrong API token",
                "send 'Authorization: Bearer <token>' with the token in the data dir's api.cookie",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _holds_token(self, scope: Scope) -> bool:
        offered: list[bytes] = []
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                offered.append(value[7:].strip())
            elif name == b"cookie":
                for part in value.split(b";"):
                    key, _, token = part.strip().partition(b"=")
                    if key == TOKEN_COOKIE.encode():
                        offered.append(token)
        return any(hmac.compare_digest(token, self.token) for token in offered)


# Records as JSON.


def address(raw: bytes) -> str:
    """Returns a 20-byte address as 0x-prefixed EIP-55 checksummed hex."""
    return checksum(raw)


def _field(name: str, value: Any) -> Any:
    if isinstance(value, bytes):
        return address(value) if name in _ADDRESSES else value.hex()
    if isinstance(value, tuple):
        return [_field(name, v) for v in value]
    if name in _BIG:
        return str(value)
    return value


def fields(body: Body) -> dict[str, Any]:
    """Returns a body's fields as JSON values (see the module's conventions)."""
    return {
        name: _field(name, value)
        for name, value in zip((n for n, _ in body.SCHEMA), body.values(), strict=True)
    }


def record(rec: Record) -> dict[str, Any]:
    """Returns a record as JSON; projects also carry their `project_id`."""
    out: dict[str, Any] = {
        "id": rec.id.hex(),
        "author": rec.author.hex(),
        "kind": rec.kind,
        "fields": fields(rec.body),
        "raw": rec.raw.hex(),
    }
    if isinstance(rec.body, Project):
        out["project_id"] = project_id(rec.author, rec.body.name).hex()
    return out


def _page(items: Iterable[dict[str, Any]], cursor: bytes | None) -> dict[str, Any]:
    return {"items": list(items), "cursor": None if cursor is None else cursor.hex()}


# Handlers. Each takes the Api and the checked parameters of its route.


async def status(api: Api, args: dict[str, Any]) -> Any:
    node = api.node
    followed = sorted(node.gossip.followed)
    counts = {t: node.store.topic_count(t) for t in followed}
    orphans, _ = node.store.orphans()
    return {
        "version": __version__,
        "peer_id": str(node.peer_id),
        "addrs": node.addrs(),
        "role": node.config.role,
        "public_key": api.identity.public_key.hex(),
        "wallet": address(api.identity.address),
        "peers": len(node.peers.connected()),
        "records": sum(counts.values()),
        "orphans": orphans,
        "topics": counts,
        "syncing": [
            {
                "peer": r.peer,
                "needed": r.needed,
                "fetched": r.fetched,
                "stored": r.stored,
                "rejected": r.rejected,
            }
            for r in node.sync.active()
        ],
    }


async def peers(api: Api, args: dict[str, Any]) -> Any:
    connected = {str(p) for p in api.node.peers.connected()}
    known = [
        {
            "peer_id": p.peer_id,
            "addrs": list(p.addrs),
            "connected": p.peer_id in connected,
            "last_seen": p.last_seen,
            "failures": p.failures,
            "banned_until": p.banned_until,
        }
        for p in api.node.peers.known()
    ]
    return {"connected": sorted(connected), "known": known}


async def connect(api: Api, args: dict[str, Any]) -> Any:
    addr = args["addr"]
    try:
        multiaddr.Multiaddr(addr)
    except Exception as exc:  # multiaddr raises several unrelated types
        raise BadRequest(f"{addr!r} is not a multiaddr: {exc}") from None
    if "/p2p/" not in addr:
        raise BadRequest(f"{addr!r} needs a /p2p/<peer id> part")
    try:
        await api.node.connect(addr)
    except Exception as exc:  # libp2p's dialing raises many types; all mean "unreachable"
        raise NetworkError(f"cannot connect to {addr}: {exc or type(exc).__name__}") from exc
    return {"connected": addr.split("/p2p/")[1]}


async def show_profile(api: Api, args: dict[str, Any]) -> Any:
    author = args.get("author", api.identity.public_key)
    found = api.node.store.profile(author)
    if found is None:
        raise NotFound(f"no profile of {author.hex()} in the store")
    return record(found)


async def set_profile(api: Api, args: dict[str, Any]) -> Any:
    new = actions.set_profile(api.node.store, api.identity, now=api.now(), **args)
    await actions.submit(api.node, [new])
    return record(new)


async def list_projects(api: Api, args: dict[str, Any]) -> Any:
    page = await trio.to_thread.run_sync(
        partial(api.node.store.projects, cursor=args.get("cursor"), limit=args.get("limit", 100))
    )
    return _page(map(record, page.items), page.cursor)


def _project(api: Api, pid: bytes) -> Record:
    found = api.node.store.project(pid)
    if found is None:
        raise NotFound(f"no project {pid.hex()} in the store")
    return found


async def show_project(api: Api, args: dict[str, Any]) -> Any:
    posting = _project(api, args["project_id"])
    out = record(posting)
    out["current_epoch"] = actions.current_epoch(api.node.store, posting, now=api.now())
    out["followed"] = work(shard(args["project_id"])) in api.node.gossip.followed
    return out


async def post_project(api: Api, args: dict[str, Any]) -> Any:
    new = actions.post_project(api.node.store, api.identity, now=api.now(), **args)
    pid = project_id(new.author, new.expect(Project).name)
    await api.follow(pid)
    await actions.submit(api.node, [new])
    return record(new)


async def close_project(api: Api, args: dict[str, Any]) -> Any:
    new = actions.close_project(
        api.node.store, api.identity, now=api.now(), project=args["project_id"]
    )
    await actions.submit(api.node, [new])
    return record(new)


async def follow_project(api: Api, args: dict[str, Any]) -> Any:
    await api.follow(args["project_id"])
    return {"followed": work(shard(args["project_id"]))}


def _with_acceptance(api: Api, contribution: Record) -> dict[str, Any]:
    out = record(contribution)
    verdict = api.node.store.acceptance_of(contribution.id)
    out["acceptance"] = None if verdict is None else record(verdict)
    return out


async def project_contributions(api: Api, args: dict[str, Any]) -> Any:
    store = api.node.store
    page = await trio.to_thread.run_sync(
        partial(
            store.contributions,
            args["project_id"],
            cursor=args.get("cursor"),
            limit=args.get("limit", 100),
        )
    )
    return _page((_with_acceptance(api, c) for c in page.items), page.cursor)


async def author_contributions(api: Api, args: dict[str, Any]) -> Any:
    store = api.node.store
    page = await trio.to_thread.run_sync(
        partial(
            store.contributions_by,
            args.get("author", api.identity.public_key),
            cursor=args.get("cursor"),
            limit=args.get("limit", 100),
        )
    )
    return _page((_with_acceptance(api, c) for c in page.items), page.cursor)


async def show_contribution(api: Api, args: dict[str, Any]) -> Any:
    found = api.node.store.get(args["contribution_id"])
    if found is None or not isinstance(found.body, Contribution):
        raise NotFound(f"no contribution {args['contribution_id'].hex()} in the store")
    return _with_acceptance(api, found)


async def contribute(api: Api, args: dict[str, Any]) -> Any:
    args["project"] = args.pop("project_id")
    new = actions.contribute(api.node.store, api.identity, now=api.now(), **args)
    await api.follow(args["project"])
    await actions.submit(api.node, [new])
    return record(new)


async def acceptances(api: Api, args: dict[str, Any]) -> Any:
    store = api.node.store
    pid = args["project_id"]
    epoch = args.get("epoch")
    if epoch is None:
        epoch = actions.current_epoch(store, _project(api, pid), now=api.now())
    page = await trio.to_thread.run_sync(
        partial(
            store.acceptances, pid, epoch, cursor=args.get("cursor"), limit=args.get("limit", 100)
        )
    )
    result = _page(map(record, page.items), page.cursor)
    result["epoch"] = epoch
    return result


async def accept(api: Api, args: dict[str, Any]) -> Any:
    args["contribution"] = args.pop("contribution_id")
    new = actions.accept(api.node.store, api.identity, now=api.now(), **args)
    await api.follow(new.expect(Acceptance).project_id)
    await actions.submit(api.node, [new])
    return record(new)


async def export(api: Api, args: dict[str, Any]) -> Any:
    """Streams every stored record, topic by topic ("meta" first, so parents come first)."""
    store = api.node.store

    async def lines() -> AsyncIterator[bytes]:
        for name in ALL_TOPICS:
            cursor = None
            while True:
                page = await trio.to_thread.run_sync(
                    partial(store.topic_ids, name, cursor=cursor, limit=1000)
                )
                found = await trio.to_thread.run_sync(
                    lambda ids=page.items: [store.get(rid) for _, rid in ids]
                )
                chunk = [
                    json.dumps({"id": r.id.hex(), "kind": r.kind, "raw": r.raw.hex()}) + "\n"
                    for r in found
                    if r is not None
                ]
                yield "".join(chunk).encode()
                if page.cursor is None:
                    break
                cursor = page.cursor

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def import_records(api: Api, args: dict[str, Any]) -> Any:
    """Takes JSON lines of `{"raw": hex}` (or lines of bare hex) through full validation."""
    blobs = _import_lines(args["lines"])
    node = api.node
    totals: dict[str, Any] = {"added": 0, "duplicates": 0, "orphaned": 0, "rejected": []}
    for start in range(0, len(blobs), _IMPORT_BATCH):
        batch = blobs[start : start + _IMPORT_BATCH]
        # ingest_raw decodes and verifies every signature: imported records are not trusted.
        result = await trio.to_thread.run_sync(
            partial(node.store.ingest_raw, batch, now=node.clock())
        )
        # A record's id is the sha256 of its bytes: only what was stored is decoded again
        # (without the signature check it just passed), to be published.
        stored = set(result.added) | set(result.released)
        fresh = [
            decode(blob, verify=False) for blob in batch if hashlib.sha256(blob).digest() in stored
        ]
        await node.gossip.publish(fresh)
        totals["added"] += len(result.added)
        totals["duplicates"] += len(result.duplicates)
        totals["orphaned"] += len(result.orphaned)
        totals["rejected"] += [{"id": rid.hex(), "error": str(e)} for rid, e in result.rejected]
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
            value = json.loads(text) if text[0] in '{"' else text
            raw = value["raw"] if isinstance(value, dict) else value
            blobs.append(bytes.fromhex(raw))
        except (ValueError, KeyError, TypeError):
            raise BadRequest(f'line {number}: expected {{"raw": "<hex>"}} or hex') from None
    return blobs


# The route table.

_PID = Param("project_id", "id", "a project id (hex)", "path", True)
_PAGE = (
    Param("cursor", "cursor", "the cursor a previous page returned", "query"),
    Param("limit", "limit", "page size, 1-1000 (default 100)", "query"),
)
_PROFILE = (
    Param("name", "string", "display name (required the first time)"),
    Param("actor", "string", "'human' or 'agent'"),
    Param("skills", "strings", "skill tags"),
    Param("interests", "strings", "interest tags"),
    Param("payout", "address", "payout address (default: the wallet's)"),
    Param("rate", "string", "rate or pay expectation, free text"),
)
_POST = (
    Param(
        "name",
        "string",
        "short name (a-z, 0-9, -): with the owner key, the project id",
        required=True,
    ),
    Param("title", "string", "title (required for a new project)"),
    Param("description", "string", "description"),
    Param("skills", "strings", "skills wanted"),
    Param("epoch_length", "uint", "seconds per epoch; 0: epochs close on the owner's command"),
    Param("reviewers", "keys", "public keys (hex) whose acceptances count too"),
)
_CONTRIBUTE = (
    Param("project_id", "id", "the project (hex id)", required=True),
    Param("summary", "string", "what was done", required=True),
    Param("evidence_uri", "string", "where the work is"),
    Param("evidence_hash", "hash", "sha256 of the work (hex)"),
    Param("effort", "uint", "claimed effort in minutes"),
    Param("payout", "address", "payout address (default: the wallet's)"),
)
_ACCEPT = (
    Param("contribution_id", "id", "the contribution (hex id)", required=True),
    Param("weight", "uint", "weight (0 withdraws an acceptance)", required=True),
    Param("epoch", "uint", "epoch (default: the project's current epoch)"),
)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/status", status, "The node: ids, addresses, keys, counts, topics.",
          returns="Status"),
    Route("GET", "/v1/peers", peers, "Connected and known peers."),
    Route("POST", "/v1/peers/connect", connect, "Dial a peer by multiaddr (with /p2p/).",
          (Param("addr", "string", "multiaddr with /p2p/<peer id>", required=True),),
          errors=(400, 502)),
    Route("GET", "/v1/profile", show_profile, "A profile in force (default: this node's).",
          (Param("author", "id", "author public key (hex)", "query"),), errors=(400, 404),
          returns="Record"),
    Route("POST", "/v1/profile", set_profile, "Set this node's profile (a new revision).",
          _PROFILE, errors=(400,), returns="Record"),
    Route("GET", "/v1/projects", list_projects, "Projects in force, by project id.", _PAGE,
          errors=(400,), returns="Page"),
    Route("POST", "/v1/projects", post_project, "Post a project, or revise one of ours.", _POST,
          errors=(400,), returns="Record"),
    Route("GET", "/v1/projects/{project_id}", show_project, "A project in force.", (_PID,),
          errors=(400, 404), returns="Record"),
    Route("POST", "/v1/projects/{project_id}/close", close_project,
          "Close a project of ours to new contributions.", (_PID,), errors=(400, 403, 404, 409),
          returns="Record"),
    Route("POST", "/v1/projects/{project_id}/follow", follow_project,
          "Receive the project's contributions and acceptances from now on.", (_PID,),
          errors=(400,)),
    Route("GET", "/v1/projects/{project_id}/contributions", project_contributions,
          "Contributions to a project, oldest first, each with its acceptance in force.",
          (_PID, *_PAGE), errors=(400,), returns="Page"),
    Route("GET", "/v1/projects/{project_id}/acceptances", acceptances,
          "Acceptances in force of weight > 0 of one epoch (the leaves of its tree).",
          (_PID, Param("epoch", "uint", "epoch (default: the current one)", "query"), *_PAGE),
          errors=(400, 404), returns="Page"),
    Route("GET", "/v1/contributions", author_contributions,
          "Contributions of an author (default: this node's), each with its acceptance.",
          (Param("author", "id", "author public key (hex)", "query"), *_PAGE), errors=(400,),
          returns="Page"),
    Route("GET", "/v1/contributions/{contribution_id}", show_contribution,
          "A contribution with its acceptance in force.",
          (Param("contribution_id", "id", "contribution id (hex)", "path", True),),
          errors=(400, 404), returns="Record"),
    Route("POST", "/v1/contributions", contribute, "Contribute to a project.", _CONTRIBUTE,
          errors=(400, 404, 409), returns="Record"),
    Route("POST", "/v1/acceptances", accept,
          "Accept (or re-weigh, or withdraw with weight 0) a contribution.", _ACCEPT,
          errors=(400, 403, 404), returns="Record"),
    Route("GET", "/v1/records/export", export,
          "Every stored record as JSON lines {id, kind, raw}.", returns="JSON lines"),
    Route("POST", "/v1/records/import", import_records,
          "Validate and store records ({raw: hex} JSON lines, as a list of lines).",
          (Param("lines", "strings", "the JSON lines of an export", required=True),),
          errors=(400,), returns="ImportResult"),
)  # fmt: skip
