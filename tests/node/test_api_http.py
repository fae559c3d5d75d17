"""The local API at the HTTP level, over real sockets: Host and Origin, body size, type and pace,
slow heads, clients that leave, and 405s.

Each test runs a real daemon (`daemon` of test_api.py) and speaks raw HTTP/1.1 where a client
library would not send what is tested (a huge Content-Length, a trickled body, a closed socket).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
import trio

from node.api.routes import Limits
from node.client import Client
from node.config import ApiConfig
from tests.node.test_api import call, daemon
from tests.support.nodes import wait_for

MiB = 1024 * 1024


def _port(client: Client) -> int:
    return int(client.base_url.rpartition(":")[2])


def _head(
    client: Client, method: str, path: str, *, length: int | None = None, **headers: str
) -> bytes:
    """Returns a request line and headers, with the token and the bound Host by default."""
    fields = {"Host": f"127.0.0.1:{_port(client)}", "Authorization": f"Bearer {client.token}"}
    fields.update({k.replace("_", "-"): v for k, v in headers.items()})
    if length is not None:
        fields["Content-Length"] = str(length)
        fields.setdefault("Content-Type", "application/json")
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items()), "", ""]
    return "\r\n".join(lines).encode()


async def _until_closed(stream: trio.SocketStream) -> bytes:
    """Returns what the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:  # a reset: the server closed with our data unread
            return data
        if not chunk:
            return data
        data += chunk


def _answer(data: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """Returns the status, headers and JSON body of one HTTP response."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, json.loads(body) if body else {}


async def test_the_host_must_name_the_bound_address(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            port = _port(client)
            auth = {"Authorization": f"Bearer {client.token}"}
            url = f"http://127.0.0.1:{port}/v1/status"
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
                response = await call(httpx.get, url, headers={**auth, "Host": host})
                assert response.status_code == 200, host
            # A DNS rebinding page sends its own name; the other ports and addresses are not
            # this API either. The Host is checked before the token: a page learns nothing.
            for host in (
                f"evil.example:{port}",
                "evil.example",
                f"127.0.0.1:{port + 1}",
                "127.0.0.1",
                f"[::1]:{port}",
                f"127.0.0.2:{port}",
                f"localhost.:{port}",
            ):
                for headers in (auth, {}):
                    response = await call(httpx.get, url, headers={**headers, "Host": host})
                    assert response.status_code == 421, host
                    assert response.json()["error"]["type"] == "WrongHost"
                    assert response.json()["error"]["hint"]
            # HTTP/1.0 may leave the Host out: refused too.
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                request = f"GET /v1/status HTTP/1.0\r\nAuthorization: Bearer {client.token}\r\n\r\n"
                await stream.send_all(request.encode())
                assert _answer(await _until_closed(stream))[0] == 421


async def test_on_ipv6_loopback_the_host_is_bracketed(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a", api=ApiConfig(host="::1")) as (_, client):
            assert client.base_url.startswith("http://[::1]:")
            port = _port(client)
            auth = {"Authorization": f"Bearer {client.token}"}
            for host, status in (
                (f"[::1]:{port}", 200),
                (f"localhost:{port}", 200),
                (f"127.0.0.1:{port}", 421),
                (f"[::1]:{port + 1}", 421),
                ("::1", 421),
            ):
                response = await call(
                    httpx.get, client.base_url + "/v1/status", headers={**auth, "Host": host}
                )
                assert response.status_code == status, host


async def test_browsers_may_call_only_from_the_dashboard_origin(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            port = _port(client)
            auth = {"Authorization": f"Bearer {client.token}"}
            url = client.base_url
            own = f"http://127.0.0.1:{port}"
            response = await call(httpx.get, url + "/v1/status", headers={**auth, "Origin": own})
            assert response.status_code == 200
            # The dashboard served under localhost is its own origin there.
            local = {**auth, "Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
            assert (await call(httpx.get, url + "/v1/status", headers=local)).status_code == 200
            for origin in (
                "http://evil.example",
                "null",
                f"http://localhost:{port}",  # another origin than the page's (Host 127.0.0.1)
                f"https://127.0.0.1:{port}",
                f"http://127.0.0.1:{port + 1}",
            ):
                for method, path in (("GET", "/v1/status"), ("POST", "/v1/profile")):
                    response = await call(
                        httpx.request,
                        method,
                        url + path,
                        headers={**auth, "Origin": origin},
                        json={"name": "Mallory"},
                    )
                    assert response.status_code == 403, (origin, path)
                    assert response.json()["error"]["type"] == "ForeignOrigin"
                # A preflight from another page is refused as well.
                response = await call(
                    httpx.options, url + "/v1/profile", headers={"Origin": origin}
                )
                assert response.status_code == 403
            # Nothing was written by the refused requests.
            assert (await call(httpx.get, url + "/v1/profile", headers=auth)).status_code == 404


async def test_bodies_must_be_declared_as_json(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            auth = {"Authorization": f"Bearer {client.token}"}
            url = client.base_url + "/v1/profile"
            body = json.dumps({"name": "Alice"})
            for kind in (None, "text/plain", "application/x-www-form-urlencoded", "json"):
                headers = auth if kind is None else {**auth, "Content-Type": kind}
                response = await call(httpx.post, url, headers=headers, content=body)
                assert response.status_code == 415, kind
                assert response.json()["error"]["type"] == "UnsupportedMediaType"
            assert (await call(httpx.get, url, headers=auth)).status_code == 404
            # No body at all is an empty object; a JSON body with a charset is JSON.
            response = await call(httpx.post, url, headers=auth)
            assert response.status_code == 400
            assert "needs a name" in response.json()["error"]["message"]
            json_utf8 = {**auth, "Content-Type": "application/json; charset=utf-8"}
            response = await call(httpx.post, url, headers=json_utf8, content=body)
            assert response.status_code == 200
            # JSON nested too deep for the parser is bad input, not a crash: the body, a proof
            # file's text, a line of an import.
            deep = "[" * 100_000 + "]" * 100_000
            response = await call(httpx.post, url, headers=json_utf8, content=deep)
            assert response.status_code == 400
            assert "nested" in response.json()["error"]["message"]
            base = client.base_url
            for path, body in (
                ("/v1/proofs/verify", {"proof": deep}),
                ("/v1/records/import", {"lines": ['{"raw": ' + deep]}),
            ):
                response = await call(httpx.post, base + path, headers=auth, json=body)
                assert response.status_code == 400, path
                assert "nested" in response.json()["error"]["message"]


async def test_every_405_names_the_allowed_methods(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            auth = {"Authorization": f"Bearer {client.token}"}
            for method, path, allowed in (
                ("TRACE", "/v1/status", {"GET", "HEAD"}),
                ("DELETE", "/v1/status", {"GET", "HEAD"}),
                ("TRACE", "/v1/profile", {"GET", "HEAD", "POST"}),
                ("PUT", "/v1/projects", {"GET", "HEAD", "POST"}),
                ("OPTIONS", "/v1/contributions", {"GET", "HEAD", "POST"}),
                ("GET", "/v1/acceptances", {"POST"}),
                ("POST", "/openapi.json", {"GET", "HEAD"}),
                ("POST", "/", {"GET", "HEAD"}),
            ):
                response = await call(httpx.request, method, client.base_url + path, headers=auth)
                assert response.status_code == 405, (method, path)
                assert set(response.headers["allow"].split(", ")) == allowed, (method, path)
                assert response.json()["error"]["type"] == "HTTPError"


async def test_a_body_over_the_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            port = _port(client)
            for path, bound in (("/v1/profile", MiB), ("/v1/records/import", 32 * MiB)):
                # 100 MB announced, 1 KiB sent: the answer comes without the rest.
                async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                    await stream.send_all(_head(client, "POST", path, length=100_000_000))
                    await stream.send_all(b"{" + b" " * 1023)
                    status, headers, body = _answer(await _until_closed(stream))
                assert status == 413
                assert headers["connection"] == "close"
                assert body["error"]["type"] == "BodyTooLarge"  # type: ignore[index]
                assert str(bound) in body["error"]["message"]  # type: ignore[index]
            # A chunked body has no length to judge: reading stops at the bound.
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                head = _head(client, "POST", "/v1/profile", Transfer_Encoding="chunked",
                             Content_Type="application/json")  # fmt: skip
                await stream.send_all(head)
                chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
                sent = 0
                answer = b""
                answered = trio.Event()

                async def receive() -> None:
                    nonlocal answer
                    answer = await _until_closed(stream)
                    answered.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(receive)
                    try:
                        while sent < 64 * MiB and not answered.is_set():
                            await stream.send_all(chunk)
                            sent += 64 * 1024
                    except trio.BrokenResourceError:
                        pass  # the server closed the connection
                    await answered.wait()
                # What the socket buffers held besides the bound, not the 64 MiB.
                assert sent < 16 * MiB
                assert _answer(answer)[0] == 413
            # The daemon still answers.
            assert (await call(client.status))["peer_id"]


@pytest.mark.slow
async def test_a_slow_body_is_cut_off_in_time(tmp_path: Path) -> None:
    # Three hundred connections trickle bodies: each is answered 408 and closed once its
    # body's time is up, and the API answers others meanwhile.
    limits = Limits(body_seconds=1.0)
    with trio.fail_after(30):
        async with daemon(tmp_path / "a", limits=limits) as (_, client):
            port = _port(client)
            answers: list[tuple[int, float]] = []

            async def slow() -> None:
                async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                    start = trio.current_time()
                    await stream.send_all(_head(client, "POST", "/v1/profile", length=100))
                    await stream.send_all(b'{"name": ')
                    data = await _until_closed(stream)
                    answers.append((_answer(data)[0], trio.current_time() - start))

            async with trio.open_nursery() as nursery:
                for _ in range(300):
                    nursery.start_soon(slow)
                assert (await call(client.status))["peer_id"]
            assert [status for status, _ in answers] == [408] * 300
            assert all(1.0 <= elapsed < 10 for _, elapsed in answers)
            # The connections are gone: their body was never taken for a request.
            assert (await call(client.status))["peer_id"]


@pytest.mark.slow
async def test_a_slow_head_is_cut_off_in_time(tmp_path: Path) -> None:
    limits = Limits(head_seconds=1.0)
    with trio.fail_after(30):
        async with daemon(tmp_path / "a", limits=limits) as (_, client):
            stream = await trio.open_tcp_stream("127.0.0.1", _port(client))
            async with stream:
                start = trio.current_time()
                await stream.send_all(_head(client, "GET", "/v1/status")[:-4])  # no blank line
                assert await _until_closed(stream) == b""
                assert 1.0 <= trio.current_time() - start < 10


async def test_a_client_that_leaves_mid_body_is_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="node.api")
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            async with await trio.open_tcp_stream("127.0.0.1", _port(client)) as stream:
                await stream.send_all(_head(client, "POST", "/v1/profile", length=100))
                await stream.send_all(b'{"name": ')
            await wait_for(lambda: "client left" in caplog.text, timeout=10)
            assert (await call(client.status))["peer_id"]
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING and "api" in r.name]
    assert not noisy, [r.getMessage() for r in noisy]
    assert "internal error" not in caplog.text
