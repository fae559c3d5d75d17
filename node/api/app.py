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
- errors are `{"error": {"type", "message", "hint"}}`, with the status that `node.errors.OUTCOMES`
  gives the error's class (docs/API.md lists them); 500 is a bug: the message says so and the
  traceback goes to the node's log, never to the client.

What every request passes before a route sees it (`_Guard`), in this order: its Host names the
address the API is bound to (421 otherwise: a DNS rebinding page names its own host); a
browser's Origin, if any, is the dashboard's own (403); it carries the token of the data dir's
`api.cookie`, as `Authorization: Bearer <token>` or as a cookie `workwork_token=<token>` (401),
/openapi.json included and the web app's static files excepted; a browser holds a session cookie
instead (node/api/session.py), and a request that changes something on a session alone must
carry its page's Origin. A route that takes a body then reads it
under `Limits`: declared as JSON (415), within a size (413, answered from Content-Length before
reading any of it) and within a time (408); both close the connection.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, TypeVar

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.api import webapp
from node.api.openapi import openapi
from node.api.routes import TYPES, Limits, Route
from node.api.session import KEY_FILE, Sessions, cookie_name, load_key
from node.errors import (
    BUG,
    BadRequest,
    BodyTimeout,
    BodyTooLarge,
    ForeignOrigin,
    Refused,
    Unauthorized,
    UnsupportedMediaType,
    WrongHost,
    outcome,
)
from node.keys import Identity
from node.net.node import Node

log = logging.getLogger(__name__)

T = TypeVar("T")

TOKEN_COOKIE = "workwork_token"

JSON = "application/json"
# The media type of a raw upload (an evidence file).
OCTETS = "application/octet-stream"


@dataclass
class Api:
    """What handlers act on: the running node and the unlocked identity.

    Attributes:
        node: the running node.
        identity: the keys records are signed with.
        nursery: where background work (syncing a newly followed shard) runs.
        settlement: the chain and settlement service, once the daemon runs one.
        routes: the route table served.
        limits: the bounds of request bodies.
    """

    node: Node
    identity: Identity
    nursery: trio.Nursery
    settlement: Any = None
    routes: tuple[Route, ...] = ()
    limits: Limits = field(default_factory=Limits)
    sessions: Sessions | None = None

    def now(self) -> int:
        return int(self.node.clock())

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Returns `fn(*args, **kwargs)` run by the node's gateway in a reader thread: every
        call that touches the store (a query, an `actions` builder, a tree) goes this way,
        never on the event loop, which it would stall for every other request and peer."""
        return await self.node.gateway.read(fn, *args, **kwargs)

    async def follow(self, pid: bytes) -> None:
        """Joins a project's work shard, and syncs it from connected peers if it is new."""
        await self.node.follow_project(pid)

    def app(self, token: str) -> ASGIApp:
        """Returns the ASGI app serving the routes to holders of `token`."""
        # One Starlette route per path, with every method of that path, so that a 405 names
        # them all in its Allow header.
        by_path: dict[str, dict[str, Route]] = {}
        for r in self.routes:
            by_path.setdefault(r.path, {})[r.method] = r
        routes = [
            StarletteRoute(path, partial(self._endpoint, methods), methods=list(methods))
            for path, methods in by_path.items()
        ]
        routes.append(StarletteRoute("/openapi.json", self._openapi, methods=["GET"]))
        # The session key lives in the data dir, so that browser sessions outlive a restart.
        self.sessions = Sessions(load_key(self.node.data_dir / KEY_FILE))
        routes.extend(webapp.starlette_routes(self))
        app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
        return _Guard(app, token, self.sessions, self.now)

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(openapi(self.routes, cookie=TOKEN_COOKIE, limits=self.limits))

    async def _endpoint(self, methods: dict[str, Route], request: Request) -> Response:
        # Starlette routes HEAD to a GET route's endpoint.
        route = methods[request.method if request.method != "HEAD" else "GET"]
        try:
            args = await self._arguments(route, request)
            result = await route.handler(self, args)
        except ClientDisconnect:
            # Not a failure of the node: nobody is left to answer.
            log.debug("client left during %s %s", request.method, request.url.path)
            return _Gone()
        except Exception as exc:
            return problem(exc)
        return result if isinstance(result, Response) else JSONResponse(result)

    async def _arguments(self, route: Route, request: Request) -> dict[str, Any]:
        """Checks and converts a request's parameters as the route declares them."""
        body: dict[str, Any] = {}
        if route.upload:
            data = await self._body(route, request, kind=OCTETS, size=self.node.evidence.max_bytes)
            return {"data": data}
        if route.body:
            raw = await self._body(route, request)
            # In a thread: an import's 32 MiB take a while to parse.
            body = await trio.to_thread.run_sync(loads, raw, "the request body") if raw else {}
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
            try:
                args[param.name] = TYPES[param.type].convert(source[param.name])
            except ValueError as exc:
                raise BadRequest(f"{param.name}: {exc}") from None
        return args

    async def _body(
        self, route: Route, request: Request, *, kind: str = JSON, size: int | None = None
    ) -> bytes:
        """Returns a request's body, read within the route's bounds of size and time.

        Args:
            kind: the media type the body must be declared as.
            size: its bound in bytes, in place of the route's `Limits`.

        Raises:
            UnsupportedMediaType: a body that is not declared as `kind`.
            BodyTooLarge: a body larger than the route takes; a declared length says so before
                anything is read.
            BodyTimeout: the body did not arrive whole in time.
            ClientDisconnect: the client left.
        """
        bound, seconds = self.limits.of(route)
        size = bound if size is None else size
        length = request.headers.get("content-length")
        declared = (length is not None and length != "0") or "transfer-encoding" in request.headers
        if declared:
            _check_type(request, kind)
        if length is not None and length.isdigit() and int(length) > size:
            raise BodyTooLarge(f"the body has {length} bytes; this route takes at most {size}")
        chunks: list[bytes] = []
        received = 0
        more = True
        with trio.move_on_after(seconds):
            while more:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > size:
                    raise BodyTooLarge(f"the body has more than {size} bytes, the most it takes")
                chunks.append(chunk)
                more = message.get("more_body", False)
        if more:
            raise BodyTimeout(
                f"the body did not arrive whole within {seconds:g} s ({received} bytes came)"
            )
        if received and not declared:
            _check_type(request, kind)  # a body without a declared length (HTTP/2)
        return b"".join(chunks)


# How deep arrays and objects may nest in JSON the API parses. Ours nest 2 deep (a proof file
# 4); the bound keeps the parser from recursing deeper than the C stack holds, since py-evm and
# py_ecc raise the interpreter's recursion limit to 100,000 on import: a body of 100,000 "["
# would crash the daemon instead of raising RecursionError.
MAX_NESTING = 32

# Escapes, then strings without them: what is left of valid JSON holds its structure only.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def nesting_within(text: bytes, limit: int) -> bool:
    """Returns whether a JSON parser reading `text` nests its arrays and objects at most
    `limit` deep. (A text that may nest deeper but does not balance is not JSON: False.)

    Each pass takes away the innermost pairs of brackets, in C: a text of depth d is empty
    after d passes. Two regular expressions remove strings first, each in one pass (no
    backtracking: an escape is two bytes, a string runs to the next quote).
    """
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", text)).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return True  # it cannot nest deeper than it opens
    brackets = brackets.replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):  # no pair left: empty, or unbalanced
            break
        brackets = inner
    return not brackets


def loads(text: str | bytes, what: str) -> Any:
    """Returns the value of a JSON text from a client, which nests at most MAX_NESTING deep.

    Raises:
        BadRequest: the text is not JSON, or nests deeper.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if not nesting_within(raw, MAX_NESTING):
        raise BadRequest(f"{what} is not JSON nested at most {MAX_NESTING} deep")
    try:
        return json.loads(text)
    except ValueError:
        raise BadRequest(f"{what} is not valid JSON") from None


def _check_type(request: Request, expected: str) -> None:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != expected:
        raise UnsupportedMediaType(
            f"the body is declared as {kind or 'nothing'}; send it as {expected}"
        )


class _Gone(Response):
    """The answer to a client that left: nothing is sent, since nobody would read it."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return


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
    response = error(result.status, type(exc).__name__, str(exc), result.hint)
    if isinstance(exc, (BodyTooLarge, BodyTimeout)):
        # The rest of the body is not read: the connection cannot carry another request.
        response.headers["Connection"] = "close"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    hint = "see GET /openapi.json for the routes" if exc.status_code in (404, 405) else ""
    response = error(exc.status_code, "HTTPError", str(exc.detail), hint)
    # A 405 names the methods the path takes (Allow).
    response.headers.update(exc.headers or {})
    return response


DASHBOARD_PATH = webapp.INDEX
# Methods that change nothing: a session alone may make them without an Origin.
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class _Guard:
    """Refuses a request before any route sees it: a Host other than the address the API is
    bound to, a browser page of another origin than the dashboard's, no or a wrong token."""

    def __init__(
        self, app: ASGIApp, token: str, sessions: Sessions, now: Callable[[], int]
    ) -> None:
        self.app = app
        self.token = token.encode()
        self.sessions = sessions
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # No route takes one; refused before the handshake (the server answers 403).
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] == "http":
            try:
                self._check(scope)
            except Refused as exc:
                await problem(exc)(scope, receive, send)
                return
            send = _until_gone(send, scope)
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        headers: dict[bytes, list[bytes]] = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.lower(), []).append(value)
        # A page that an attacker's DNS name made resolve to 127.0.0.1 sends its own name as
        # Host: only the bound address (and localhost, on loopback) is this API.
        hosts = headers.get(b"host", [])
        host = hosts[0].decode("latin-1").lower() if len(hosts) == 1 else ""
        if host not in _names(_server(scope)):
            raise WrongHost(
                f"Host {host!r} is not this API's address" if host else "no single Host header"
            )
        # Browsers name the page behind a request in Origin; only the dashboard's own page,
        # served from this very host, may call the API from a browser.
        origins = headers.get(b"origin", [])
        if origins and origins != [f"http://{host}".encode()]:
            shown = b", ".join(origins).decode("latin-1")
            raise ForeignOrigin(f"requests from pages of {shown} are refused")
        # The web app's files are static and hold no data; a login trades a one-time code.
        method, path = str(scope.get("method")), str(scope.get("path"))
        if webapp.public(method, path) or self._holds_token(headers):
            return
        server = _server(scope)
        if not self._holds_session(headers, server[1] if server else 0):
            raise Unauthorized("missing or wrong API token")
        # A session is a browser's: what changes something must come from our page, which
        # names itself in Origin (checked above). SameSite=Strict already keeps other sites'
        # pages from sending the cookie; this holds even in a browser that ignores it.
        if method not in _SAFE and not origins:
            raise ForeignOrigin("a request that changes something must name its page's Origin")
        # Login codes come from the token's holder (`workwork dashboard`): a session cannot
        # make itself new ones, which would let it outlive its 30 days.
        if path == webapp.CODE_PATH:
            raise Unauthorized("a login code is made with the API token: run `workwork dashboard`")

    def _holds_token(self, headers: dict[bytes, list[bytes]]) -> bool:
        offered: list[bytes] = []
        for value in headers.get(b"authorization", []):
            if value[:7].lower() == b"bearer ":
                offered.append(value[7:].strip())
        offered.extend(_cookies(headers, TOKEN_COOKIE))
        return any(hmac.compare_digest(token, self.token) for token in offered)

    def _holds_session(self, headers: dict[bytes, list[bytes]], port: int) -> bool:
        now = self.now()
        return any(
            self.sessions.valid(value.decode("latin-1"), now)
            for value in _cookies(headers, cookie_name(port))
        )


def _cookies(headers: dict[bytes, list[bytes]], name: str) -> list[bytes]:
    """Returns the values of the cookies called `name` in a request's Cookie headers."""
    found: list[bytes] = []
    for value in headers.get(b"cookie", []):
        for part in value.split(b";"):
            key, _, token = part.strip().partition(b"=")
            if key == name.encode():
                found.append(token)
    return found


def _until_gone(send: Send, scope: Scope) -> Send:
    """Returns `send` that drops what it cannot send because the client left, and logs that at
    debug level: not a failure of the node.

    Hypercorn closes the connection when it reads the client's end, possibly while the app is
    sending (and then the send meets a socket that is busy closing, or closed).
    """
    gone = False

    async def send_until_gone(message: Message) -> None:
        nonlocal gone
        if gone:
            return
        try:
            await send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            gone = True
            log.debug("client left before the answer to %s %s", scope["method"], scope["path"])

    return send_until_gone


def _server(scope: Scope) -> tuple[str, int] | None:
    server = scope.get("server")
    return None if server is None else (str(server[0]), int(server[1]))


@lru_cache(maxsize=16)
def _names(server: tuple[str, int] | None) -> frozenset[str]:
    """Returns the Host values that name the address a request came in on: the address itself
    (IPv6 in brackets) and, on loopback, localhost; each with the port, and also without it on
    port 80, where clients leave it out."""
    if server is None:
        return frozenset()
    address, port = server
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return frozenset()
    names = {f"[{ip}]" if ip.version == 6 else str(ip)}
    if ip.is_loopback:
        names.add("localhost")
    with_port = {f"{name}:{port}" for name in names}
    return frozenset(with_port | names if port == 80 else with_port)
