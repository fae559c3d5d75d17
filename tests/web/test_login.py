"""Browser login and the web app's headers, over real HTTP against a running daemon: one-time
codes, the session cookie's flags, sessions that outlive a restart, the CSP of every file, and
pages of other origins refused."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import trio

from node.api import ROUTES
from node.api.session import SESSION_SECONDS, Sessions
from node.api.webapp import files
from node.chain.anvil import free_port
from node.config import ApiConfig
from tests.node.test_api import call, daemon


def _port(url: str) -> int:
    return int(url.rpartition(":")[2])


async def _code(url: str, token: str) -> str:
    response = await call(
        httpx.post, url + "/v1/session/code", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["fragment"] == "#login=" + data["code"]
    return str(data["code"])


async def _login(url: str, code: str, **headers: str) -> httpx.Response:
    origin = {"Origin": url, **headers}
    return await call(httpx.post, url + "/v1/session", json={"code": code}, headers=origin)


async def test_a_login_code_works_once_and_sets_a_strict_httponly_cookie(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            url = client.base_url
            code = await _code(url, client.token)
            response = await _login(url, code)
            assert response.status_code == 200, response.text
            header = response.headers["set-cookie"]
            cookie = SimpleCookie(header)
            name = f"workwork_session_{_port(url)}"
            assert list(cookie) == [name]
            morsel = cookie[name]
            assert morsel["httponly"] is True
            assert morsel["samesite"].lower() == "strict"
            assert morsel["path"] == "/"
            assert morsel["domain"] == ""  # bound to this host only
            assert int(morsel["max-age"]) == SESSION_SECONDS
            session = {"Cookie": f"{name}={morsel.value}"}
            # The session reads the API, as the token does.
            status = await call(httpx.get, url + "/v1/status", headers=session)
            assert status.status_code == 200
            # The code is spent; a made-up one is no better.
            for used in (code, "0" * 32, ""):
                again = await _login(url, used)
                assert again.status_code == 401, used
                assert again.json()["error"]["type"] == "LoginExpired"
                assert "set-cookie" not in again.headers
            # The session is not the token: it does not work as a bearer, nor under the
            # token's cookie name, nor under another port's session name.
            for headers in (
                {"Authorization": f"Bearer {morsel.value}"},
                {"Cookie": f"workwork_token={morsel.value}"},
                {"Cookie": f"workwork_session_{_port(url) + 1}={morsel.value}"},
                # Its last hex digit changed (to 1 if it was 0: appending "0" to a value
                # that ended in 0 changed nothing, and failed this test once in 16 runs).
                {"Cookie": f"{name}={morsel.value[:-1]}{'1' if morsel.value[-1] == '0' else '0'}"},
            ):
                refused = await call(httpx.get, url + "/v1/status", headers=headers)
                assert refused.status_code == 401, headers
            # Logging out clears the cookie in the browser.
            out = await call(
                httpx.request, "DELETE", url + "/v1/session", headers={**session, "Origin": url}
            )
            assert out.status_code == 200
            assert "max-age=0" in out.headers["set-cookie"].lower()


async def test_a_session_changes_nothing_without_its_page_origin(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            url = client.base_url
            response = await _login(url, await _code(url, client.token))
            name = f"workwork_session_{_port(url)}"
            session = {"Cookie": f"{name}={response.cookies[name]}"}
            profile = {"name": "Mallory"}
            # No Origin: not a page of ours (a browser always names the page on a POST).
            bare = await call(httpx.post, url + "/v1/profile", json=profile, headers=session)
            assert bare.status_code == 403
            assert bare.json()["error"]["type"] == "ForeignOrigin"
            # Another origin, even with the cookie (a browser ignoring SameSite): refused.
            for origin in ("http://evil.example", "null", f"http://localhost:{_port(url)}"):
                evil = await call(
                    httpx.post, url + "/v1/profile", json=profile,
                    headers={**session, "Origin": origin},
                )  # fmt: skip
                assert evil.status_code == 403, origin
                # Nor can another origin trade a code for a session.
                stolen = await _login(url, await _code(url, client.token), Origin=origin)
                assert stolen.status_code == 403 and "set-cookie" not in stolen.headers
            auth = {"Authorization": f"Bearer {client.token}"}
            missing = await call(httpx.get, url + "/v1/profile", headers=auth)
            assert missing.status_code == 404  # nothing was written
            # A session cannot make itself login codes: only the token's holder can.
            codes = await call(
                httpx.post, url + "/v1/session/code", headers={**session, "Origin": url}
            )
            assert codes.status_code == 401
            # Our own page may.
            own = await call(
                httpx.post, url + "/v1/profile", json=profile, headers={**session, "Origin": url}
            )
            assert own.status_code == 200, own.text


async def test_a_session_outlives_a_restart_and_the_token_does_not(tmp_path: Path) -> None:
    port = free_port()
    api = ApiConfig(port=port)
    with trio.fail_after(60):
        async with daemon(tmp_path / "a", api=api) as (_, client):
            url, first_token = client.base_url, client.token
            response = await _login(url, await _code(url, client.token))
            name = f"workwork_session_{port}"
            session = {"Cookie": f"{name}={response.cookies[name]}"}
        async with daemon(tmp_path / "a", api=api) as (_, client):
            assert client.token != first_token
            old = await call(
                httpx.get, url + "/v1/status", headers={"Authorization": f"Bearer {first_token}"}
            )
            assert old.status_code == 401
            status = await call(httpx.get, url + "/v1/status", headers=session)
            assert status.status_code == 200, status.text
    # The key is the data dir's secret; without it every session ends.
    key = tmp_path / "a" / "api.session"
    assert key.stat().st_mode & 0o777 == 0o600
    key.unlink()
    with trio.fail_after(60):
        async with daemon(tmp_path / "a", api=api) as (_, client):
            ended = await call(httpx.get, url + "/v1/status", headers=session)
            assert ended.status_code == 401


async def test_every_file_of_the_app_has_a_strict_csp_and_no_inline_code(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            answers = {
                path: await call(httpx.get, client.base_url + path) for path in sorted(files())
            }
            post = await call(httpx.post, client.base_url + "/")
            assert post.status_code in (401, 405)
    for path, response in answers.items():
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().partition(" ")[::2] for d in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
        assert "unsafe" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    html = answers["/"].text
    assert answers["/"].headers["content-type"].startswith("text/html")
    # No inline script or style, no style attributes, no handlers in the markup.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html and not re.search(r" on\w+=", html)
    code = "\n".join(r.text for p, r in answers.items() if p.endswith(".js"))
    # Values are written as text, never as HTML; nothing is evaluated.
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert banned not in code, banned
    assert "new Function" not in code
    # Every API path the app calls is a route the node serves.
    served = {r.path for r in ROUTES} | {"/v1/session"}
    used = set(re.findall(r"[`\"](/v1/[^`\"?]*)", code))
    assert len(used) > 15
    for path in used:
        shape = re.sub(r"\$\{[^}]+\}", "{}", path)
        assert any(re.sub(r"\{[^}]+\}", "{}", r) == shape for r in served), path


def test_sessions_expire_and_codes_expire_and_are_bounded() -> None:
    sessions = Sessions(b"k" * 32)
    code, expires = sessions.code(now=1000)
    assert expires == 1600
    later, _ = sessions.code(now=1000)
    assert not sessions.valid("v1.1000.x.y", 1000)
    # A code is good until it expires, once.
    value = sessions.login(code, now=1599)
    assert sessions.valid(value, 1599) and sessions.valid(value, 1599 + SESSION_SECONDS - 1)
    assert not sessions.valid(value, 1599 + SESSION_SECONDS)
    assert not sessions.valid(value, 1000)  # issued in the future of `now`
    assert not Sessions(b"x" * 32).valid(value, 1600)  # another key
    try:
        sessions.login(later, now=1600)
    except Exception as exc:
        assert type(exc).__name__ == "LoginExpired"
    else:
        raise AssertionError("an expired code was taken")
    for _ in range(200):
        sessions.code(now=2000)
    assert len(sessions.codes) == 64
