"""The local HTTP JSON API: what the CLI, scripts and AI agents use to drive a running node.

Every route is one `Route` entry (node/api/routes.py): method, path, handler, summary,
parameters and the errors it may answer. The tables of node/api/network.py, work.py and
settle.py make up `node.api.ROUTES`. The same table builds the Starlette app, checks and
converts every parameter before the handler runs, and generates the OpenAPI 3.1 document
(node/api/openapi.py, GET /openapi.json), so the description cannot drift from the code. Adding an
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

import hmac
import json
import logging
from dataclasses import dataclass
from functools import partial
from importlib import resources
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from node.api.openapi import openapi
from node.api.routes import TYPES, Route
from node.errors import BUG, BadRequest, outcome
from node.keys import Identity
from node.net.node import Node

log = logging.getLogger(__name__)

TOKEN_COOKIE = "workwork_token"


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
    routes: tuple[Route, ...] = ()

    def now(self) -> int:
        return int(self.node.clock())

    async def follow(self, pid: bytes) -> None:
        """Joins a project's work shard, and syncs it from connected peers if it is new."""
        await self.node.follow_project(pid)

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


def problem(exc: Exception) -> JSONResponse:
    """Returns the response for an exception raised by a handler (`node.errors.OUTCOMES`)."""
    result = outcome(exc)
    if result is BUG:
        log.exception("internal error in the API")
        return error(
            result.status, "InternalError", "internal error: a bug in the node", result.hint
        )
    return error(result.status, type(exc).__name__, str(exc), result.hint)


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
    page = resources.files("node.api").joinpath("dashboard.html").read_text("utf-8")
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
