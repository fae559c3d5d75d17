"""The participant web app: its static files, and the routes of browser login.

The app is plain ES modules, HTML and CSS in node/api/static/, served as they are: no build
step, nothing fetched from elsewhere, so it works offline and a reader can audit what runs.
Every file is answered with a strict Content-Security-Policy (scripts and styles from this
origin only, no inline code, no eval, no frames), so that text from other people's records
can never run as code even if a page wrote it as HTML (it does not: it writes textContent).

Login (node/api/session.py): `POST /v1/session/code` (token holders: the CLI) makes a one-time
code; the page trades it at `POST /v1/session` for an HttpOnly, SameSite=Strict cookie;
`DELETE /v1/session` ends it in this browser.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from node.api.routes import Route
from node.api.session import SESSION_SECONDS, cookie_name
from node.errors import BadRequest, BodyTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from node.api.app import Api

INDEX = "/"
STATIC_PREFIX = "/static/"
SESSION_PATH = "/v1/session"
CODE_PATH = "/v1/session/code"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The files change with the node's version: always ask, the answer is small.
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# A login body is `{"code": "<32 hex>"}`.
_MAX_LOGIN_BODY = 1024


@lru_cache(maxsize=1)
def files() -> dict[str, tuple[bytes, str]]:
    """Returns the static files by URL path, each with its content and type, read once."""
    found: dict[str, tuple[bytes, str]] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
                continue
            kind = _TYPES.get("." + item.name.rpartition(".")[2])
            if kind is not None:
                found[prefix + item.name] = (item.read_bytes(), kind)

    walk(resources.files("node.api").joinpath("static"), STATIC_PREFIX)
    found[INDEX] = found.pop(STATIC_PREFIX + "index.html")
    return found


def public(method: str, path: str) -> bool:
    """Returns whether a request may come without a token or a session: the static files,
    which hold no data, and the trade of a one-time code for a session."""
    if method in ("GET", "HEAD"):
        return path in files()
    return method == "POST" and path == SESSION_PATH


async def _static(request: Request) -> Response:
    found = files().get(request.url.path)
    if found is None:
        return JSONResponse(
            {"error": {"type": "HTTPError", "message": "Not Found", "hint": ""}}, status_code=404
        )
    content, kind = found
    return Response(content, media_type=kind, headers=HEADERS)


def _port(request: Request) -> int:
    server = request.scope.get("server")
    return int(server[1]) if server else 0


def starlette_routes(api: Api) -> list[StarletteRoute]:
    """Returns the routes of the web app's files and of browser login."""

    async def login(request: Request) -> Response:
        from node.api.app import problem

        try:
            code = await _login_code(request)
            assert api.sessions is not None
            value = api.sessions.login(code, api.now())
        except Exception as exc:
            return problem(exc)
        response = JSONResponse({"expires_at": api.now() + SESSION_SECONDS})
        response.set_cookie(
            cookie_name(_port(request)),
            value,
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(request: Request) -> Response:
        response = JSONResponse({"ended": True})
        response.delete_cookie(
            cookie_name(_port(request)), path="/", httponly=True, samesite="strict"
        )
        return response

    paths = sorted(p for p in files() if p != INDEX)
    return [
        StarletteRoute(INDEX, _static, methods=["GET"]),
        *(StarletteRoute(p, _static, methods=["GET"]) for p in paths),
        StarletteRoute(SESSION_PATH, login, methods=["POST"]),
        StarletteRoute(SESSION_PATH, logout, methods=["DELETE"]),
    ]


async def _login_code(request: Request) -> str:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise UnsupportedMediaType('send the login code as JSON: {"code": "..."}')
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_LOGIN_BODY:
            raise BodyTooLarge(f"a login body takes at most {_MAX_LOGIN_BODY} bytes")
    from node.api.app import loads

    data = loads(body, "the request body")
    if not isinstance(data, dict) or not isinstance(data.get("code"), str):
        raise BadRequest('the body must be {"code": "<the code of the login link>"}')
    return str(data["code"])


async def new_code(api: Api, args: dict[str, Any]) -> Any:
    assert api.sessions is not None
    code, expires = api.sessions.code(api.now())
    return {"code": code, "expires_at": expires, "fragment": f"#login={code}"}


SESSION_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        CODE_PATH,
        new_code,
        "A one-time login code for the web app (`workwork dashboard` prints the link): good "
        "once, for 10 minutes; the page at /#login=CODE trades it for a session cookie.",
    ),
)
