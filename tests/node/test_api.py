"""The local API over real HTTP: auth, structured errors, OpenAPI, and two daemons over libp2p."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio

from node import keys
from node.api import ROUTES
from node.api.routes import Limits
from node.client import Client, DaemonError
from node.config import ApiConfig, NetworkConfig
from node.daemon import Daemon
from node.errors import BUG, OUTCOMES, outcome
from node.home import Home, Settings
from tests.support import factories as f
from tests.support.nodes import meshed, wait_for

T = TypeVar("T")


@asynccontextmanager
async def daemon(
    root: Path, *, limits: Limits | None = None, api: ApiConfig | None = None, **network: Any
) -> AsyncIterator[tuple[Daemon, Client]]:
    """Runs a daemon over a fresh data dir; stops it gracefully when the block exits.

    Like every node of the tests, its store refuses calls from the daemon's own tasks on the
    event loop (strict mode, tests/conftest.py): a handler that blocks answers 500.
    """
    home = Home(root)
    if home.identity.exists():
        identity = keys.load(home.identity, home.wallet, "correct horse")
    else:
        identity = keys.create(home.identity, home.wallet, "correct horse")
    network.setdefault("sync_interval", 3600.0)
    settings = Settings(network=NetworkConfig(**network), api=api or ApiConfig())
    running = Daemon(home, identity, settings, limits=limits)
    async with trio.open_nursery() as nursery:
        await nursery.start(running.run)
        assert running.node is not None and running.node.strict_io
        client = Client.connect(root)
        try:
            yield running, client
        finally:
            client.close()
            running.stop()
    assert not home.api_file.exists()


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a blocking client call in a thread, so the daemon on this event loop can answer."""
    return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def test_requests_without_the_token_get_401(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            url = client.base_url
            token = (tmp_path / "a" / "api.cookie").read_text()
            for headers in ({}, {"Authorization": "Bearer " + "0" * 64}, {"Authorization": token}):
                for path in ("/v1/status", "/openapi.json", "/nowhere"):
                    response = await call(httpx.get, url + path, headers=headers)
                    assert response.status_code == 401
                    assert response.json()["error"]["type"] == "Unauthorized"
            by_cookie = await call(
                httpx.get, url + "/v1/status", headers={"Cookie": f"workwork_token={token}"}
            )
            assert by_cookie.status_code == 200
            assert (tmp_path / "a" / "api.cookie").stat().st_mode & 0o777 == 0o600


async def test_errors_are_structured(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):

            async def fails(status: int, kind: str, fn: Callable[..., Any], *args: Any,
                            **kwargs: Any) -> DaemonError:  # fmt: skip
                with pytest.raises(DaemonError) as info:
                    await call(fn, *args, **kwargs)
                assert (info.value.status, info.value.type) == (status, kind), info.value.message
                assert info.value.message
                return info.value

            await fails(404, "HTTPError", client.request, "GET", "/v1/nothing")
            await fails(405, "HTTPError", client.request, "DELETE", "/v1/status")
            await fails(400, "BadRequest", client.project, "xyz")
            await fails(404, "NotFound", client.project, "00" * 32)
            await fails(404, "NotFound", client.profile)
            await fails(400, "BadRequest", client.post_project, name="docs", titel="typo")
            await fails(400, "BadRequest", client.post_project, name="docs")
            await fails(400, "InvalidField", client.post_project, name="Bad Name", title="t")
            await fails(400, "BadRequest", client.accept, "00" * 32, -1)
            await fails(400, "BadRequest", client.connect_peer, "not an address")
            await fails(502, "NetworkError", client.connect_peer,
                        "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLhbrxpxLkXQu9rU3tvEaMb5rRizJfLXEmVKdpVDoU6ok")  # fmt: skip
            posted = await call(client.post_project, name="docs", title="Docs")
            pid = posted["project_id"]
            await call(client.close_project, pid)
            error = await fails(409, "Conflict", client.close_project, pid)
            assert "closed already" in error.message
            closed = await fails(409, "ProjectClosed", client.contribute, project_id=pid,
                                 summary="late", evidence_uri="https://x")  # fmt: skip
            assert closed.hint
            await fails(400, "BadRequest", client.request, "POST", "/v1/profile", body={"name": 3})
            await fails(400, "BadRequest", client.request, "POST", "/v1/profile", body=None)


async def test_openapi_describes_every_route(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            document = await call(client.openapi)
    assert document["openapi"].startswith("3.1")
    listed = {(path, method) for path, ops in document["paths"].items() for method in ops}
    routes = ROUTES
    assert listed == {(r.path, r.method.lower()) for r in routes}
    for route in routes:
        operation = document["paths"][route.path][route.method.lower()]
        documented = {"200", "401", "500"} | {str(code) for code in route.errors()}
        assert set(operation["responses"]) == documented
        named = {p["name"] for p in operation["parameters"]}
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        named |= set(body.get("schema", {}).get("properties", {}))
        assert named == {p.name for p in route.params}
        assert all(p.doc for p in route.params)


async def test_project_contribute_accept_between_two_daemons(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with daemon(tmp_path / "a") as (owner, a):
            addr = (await call(a.status))["addrs"][0]
            async with daemon(tmp_path / "b", bootstrap=(addr,)) as (other, b):
                assert owner.node is not None and other.node is not None
                await wait_for(lambda: len(owner.node.peers.connected()) == 1, timeout=10)  # type: ignore[union-attr]
                await wait_for(meshed(owner.node, other.node), timeout=10)
                me = await call(a.set_profile, name="Alice", skills=["python"])
                assert me["fields"]["payout"] == (await call(a.status))["wallet"]
                posted = await call(a.post_project, name="docs", title="Docs", skills=["writing"])
                pid = posted["project_id"]

                async def seen_on_b() -> bool:
                    try:
                        await call(b.project, pid)
                        return True
                    except DaemonError:
                        return False

                with trio.fail_after(15):
                    while not await seen_on_b():
                        await trio.sleep(0.1)
                work = await call(
                    b.contribute,
                    project_id=pid,
                    summary="Wrote the guide",
                    evidence_uri="https://example.org/guide",
                    evidence_hash="ab" * 32,
                    effort=90,
                )
                assert work["fields"]["payout"] == (await call(b.status))["wallet"]

                async def count_on_a() -> int:
                    page = await call(a.contributions, project_id=pid)
                    return len(page["items"])

                with trio.fail_after(15):
                    while await count_on_a() == 0:
                        await trio.sleep(0.1)
                verdict = await call(a.accept, work["id"], 10)
                assert verdict["fields"]["weight"] == "10"  # big integers travel as strings
                assert verdict["fields"]["epoch"] == 0  # epoch_length 0: the first unanchored

                async def accepted_on_b() -> Any:
                    return (await call(b.contribution, work["id"]))["acceptance"]

                with trio.fail_after(15):
                    while await accepted_on_b() is None:
                        await trio.sleep(0.1)
                mine = await call(b.contributions)
                assert [c["id"] for c in mine["items"]] == [work["id"]]
                leaves = await call(a.acceptances, pid, epoch=0)
                assert [r["id"] for r in leaves["items"]] == [verdict["id"]]

                # Export from one node, import into the other: all duplicates; a forged
                # record is verified, refused and reported, not trusted.
                lines = await call(lambda: list(a.export()))
                exported = {json.loads(line)["id"] for line in lines}
                assert exported >= {me["id"], posted["id"], work["id"], verdict["id"]}
                raw = bytearray(bytes.fromhex(json.loads(lines[-1])["raw"]))
                raw[-1] ^= 1
                forged = json.dumps({"raw": raw.hex()})
                result = await call(b.import_records, [*lines, forged, '"00"'])
                assert result["added"] == 0 and result["duplicates"] == len(lines)
                assert len(result["rejected"]) == 2
                assert "signature" in result["rejected"][0]["error"]
                # A new foreign record is stored, and published to the other node.
                carol = f.profile("carol")
                result = await call(a.import_records, [carol.raw.hex()])
                assert (result["added"], result["rejected"]) == (1, [])
                with trio.fail_after(15):
                    while True:
                        with contextlib.suppress(DaemonError):
                            await call(b.profile, carol.author.hex())
                            break
                        await trio.sleep(0.1)


async def test_restarted_daemon_follows_its_own_projects(tmp_path: Path) -> None:
    # A personal node joins a project's shard when it posts it; after a restart it must join
    # again by itself, or it would stop receiving contributions to its own project.
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            pid = (await call(client.post_project, name="docs", title="Docs"))["project_id"]
            shard = f"work/{int(pid[:4], 16) % 32}"
            assert shard in (await call(client.status))["topics"]
        async with daemon(tmp_path / "a") as (_, client):
            assert shard in (await call(client.status))["topics"]
            assert (await call(client.project, pid))["followed"] is True


def test_every_declared_error_has_an_outcome_and_a_documented_status() -> None:
    for route in ROUTES:
        for cls in route.raises:
            assert outcome(cls) is not BUG, (route.path, cls)
        for status, kinds in route.errors().items():
            assert all(outcome(kind).status == status for kind in kinds)
    # The table never shadows a row with an earlier, more general one.
    rows = [cls for cls, _ in OUTCOMES]
    for i, cls in enumerate(rows):
        assert not any(issubclass(cls, earlier) for earlier in rows[:i]), cls
