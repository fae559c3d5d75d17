"""The local API's parameters: integer bounds (in the answers and the OpenAPI document), 404 for
what the store lacks, and the store reached only through the gateway."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.api import ROUTES
from node.api.routes import TYPES, UINT256_MAX, Limits, decimal_pattern
from node.api.work import MAX_IMPORT_LINES
from node.client import IMPORT_BYTES, IMPORT_LINES, Client, _import_parts
from tests.node.test_api import call, daemon

U32 = 2**32 - 1


def _documented(method: str, path: str) -> set[int]:
    route = next(r for r in ROUTES if (r.method, r.path) == (method, path))
    return {200, 500, *route.errors()}


async def _send(client: Client, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {client.token}"}
    return await call(httpx.request, method, client.base_url + path, headers=headers, json=body)


@pytest.mark.slow
async def test_integers_beyond_their_bounds_are_bad_requests(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with daemon(tmp_path / "a") as (_, client):
            pid = (await call(client.post_project, name="docs", title="Docs"))["project_id"]
            work = await call(
                client.contribute, project_id=pid, summary="s", evidence_uri="https://example.org/w"
            )
            await call(client.accept, work["id"], 10, epoch=0)
            base = f"/v1/projects/{pid}"
            epoch_routes = (
                ("GET", base + "/acceptances?epoch={}", "/v1/projects/{project_id}/acceptances"),
                ("POST", base + "/epochs/{}/close", "/v1/projects/{project_id}/epochs/{epoch}/close"),
                ("POST", base + "/epochs/{}/anchor", "/v1/projects/{project_id}/epochs/{epoch}/anchor"),
                ("GET", base + "/epochs/{}/tree", "/v1/projects/{project_id}/epochs/{epoch}/tree"),
                ("POST", base + "/epochs/{}/fund", "/v1/projects/{project_id}/epochs/{epoch}/fund"),
                ("GET", base + "/epochs/{}/audit", "/v1/projects/{project_id}/epochs/{epoch}/audit"),
            )  # fmt: skip
            for method, url, path in epoch_routes:
                body = {"amount": "1"} if url.endswith("fund") else None
                for epoch in (2**32, 2**64, 10**30, -1, "007", "1e3"):
                    response = await _send(client, method, url.format(epoch), body)
                    assert response.status_code == 400, (url, epoch, response.text)
                    error = response.json()["error"]
                    assert error["type"] == "BadRequest"
                    assert f"[0, {U32}]" in error["message"], error["message"]
                # The largest epoch is an answer, not a failure.
                response = await _send(client, method, url.format(U32), body)
                assert response.status_code in _documented(method, path), (url, response.text)
                assert response.status_code != 500, (url, response.text)

            fund = base + "/epochs/0/fund"
            for amount in (0, "0", -1, 2**256, str(2**256), "1.5", 1.5, True, "0x10", ""):
                response = await _send(client, "POST", fund, {"amount": amount})
                assert response.status_code == 400, (amount, response.text)
                assert f"[1, {UINT256_MAX}]" in response.json()["error"]["message"]
            # The largest amount is no bad request, but more than the wallet holds (the fuzzer
            # found it answered 500: the embedded chain's own error on estimating gas).
            response = await _send(client, "POST", fund, {"amount": str(UINT256_MAX)})
            assert response.status_code == 409, response.text
            assert response.json()["error"]["type"] == "InsufficientFunds"
            for body in (
                {"contribution_id": work["id"], "weight": 2**32},
                {"contribution_id": work["id"], "weight": "4294967296"},
                {"contribution_id": work["id"], "weight": 1, "epoch": 2**32},
            ):
                response = await _send(client, "POST", "/v1/acceptances", body)
                assert response.status_code == 400, (body, response.text)
            for body in (
                {"name": "big", "title": "t", "epoch_length": 2**32},
                {"name": "big", "title": "t", "epoch_length": -5},
            ):
                response = await _send(client, "POST", "/v1/projects", body)
                assert response.status_code == 400, (body, response.text)
            response = await _send(
                client,
                "POST",
                "/v1/contributions",
                {
                    "project_id": pid,
                    "summary": "s",
                    "evidence_uri": "https://example.org/w",
                    "effort": 10_000_001,
                },
            )
            assert response.status_code == 400
            assert "[0, 10000000]" in response.json()["error"]["message"]
            # Nothing was written by the refused requests.
            assert [p["fields"]["name"] for p in (await call(client.projects))["items"]] == ["docs"]
            mine = await call(client.contributions)
            assert [c["id"] for c in mine["items"]] == [work["id"]]
            assert mine["items"][0]["acceptance"]["fields"]["weight"] == "10"
            # In bounds, as a number or a decimal string, at the edges.
            for weight in (U32, str(U32), 0):
                verdict = await call(client.accept, work["id"], weight)
                assert verdict["fields"]["weight"] == str(weight)


async def test_the_openapi_document_states_the_bounds(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            document = await call(client.openapi)
    paths = document["paths"]
    epoch = next(
        p for p in paths["/v1/projects/{project_id}/epochs/{epoch}/tree"]["get"]["parameters"]
        if p["name"] == "epoch"
    )  # fmt: skip
    assert epoch["schema"] == {"type": "integer", "minimum": 0, "maximum": U32}
    query = paths["/v1/projects/{project_id}/acceptances"]["get"]["parameters"]
    assert next(p for p in query if p["name"] == "epoch")["schema"]["maximum"] == U32
    body = paths["/v1/acceptances"]["post"]["requestBody"]
    assert "1048576 bytes" in body["description"]
    weight = body["content"]["application/json"]["schema"]["properties"]["weight"]
    number, text = weight["oneOf"]
    assert number == {"type": "integer", "minimum": 0, "maximum": U32}
    assert text["type"] == "string" and re.fullmatch(text["pattern"], str(U32))
    assert not re.fullmatch(text["pattern"], str(U32 + 1))
    fund = paths["/v1/projects/{project_id}/epochs/{epoch}/fund"]["post"]["requestBody"]
    amount = fund["content"]["application/json"]["schema"]["properties"]["amount"]["oneOf"][0]
    assert (amount["minimum"], amount["maximum"]) == (1, UINT256_MAX)
    effort = paths["/v1/contributions"]["post"]["requestBody"]["content"]["application/json"]
    assert effort["schema"]["properties"]["effort"]["oneOf"][0]["maximum"] == 10_000_000
    imports = paths["/v1/records/import"]["post"]["requestBody"]["description"]
    assert f"{32 * 1024 * 1024} bytes" in imports
    # The app's refusals are documented on every route, the body's on routes that take one.
    for route in ROUTES:
        codes = set(paths[route.path][route.method.lower()]["responses"])
        assert {"401", "403", "421", "500"} <= codes
        assert ({"408", "413", "415"} <= codes) == route.body, route.path


@pytest.mark.slow
@pytest.mark.parametrize("low", [0, 1])
def test_decimal_patterns_match_exactly_the_numbers_in_bounds(low: int) -> None:
    for high in [*range(1, 1200), 10_000_000, U32, UINT256_MAX]:
        pattern = re.compile(decimal_pattern(low, high))
        edges = [0, 1, high - 1, high, high + 1, 10 * high, 10 ** len(str(high))]
        for n in [*range(min(high + 20, 1300)), *edges]:
            assert bool(pattern.fullmatch(str(n))) == (low <= n <= high), (low, high, n)
        assert not pattern.fullmatch("0" + str(high)) and not pattern.fullmatch("-1")
    # The converters take what the patterns take, and nothing else.
    convert = TYPES["epoch"].convert
    assert convert("4294967295") == convert(U32) == U32
    for value in ("04", "٣", "+1", " 1", True, 1.0, None, [1]):
        with pytest.raises(ValueError):
            convert(value)


async def test_what_the_store_lacks_is_a_404(tmp_path: Path) -> None:
    unknown = "ab" * 32
    with trio.fail_after(60):
        async with daemon(tmp_path / "a") as (_, client):
            base = f"/v1/projects/{unknown}"
            for method, path, body in (
                ("GET", base, None),
                ("POST", base + "/close", None),
                ("GET", base + "/contributions", None),
                ("GET", base + "/acceptances", None),
                ("GET", base + "/acceptances?epoch=0", None),
                ("GET", base + "/epochs", None),
                ("POST", base + "/epochs/0/close", None),
                ("POST", base + "/epochs/0/anchor", None),
                ("GET", base + "/epochs/0/tree", None),
                ("POST", base + "/epochs/0/fund", {"amount": "1"}),
                ("GET", base + "/epochs/0/audit", None),
                ("POST", "/v1/contributions", {"project_id": unknown, "summary": "s",
                                               "evidence_uri": "https://example.org/w"}),
                ("GET", f"/v1/contributions/{unknown}", None),
                ("POST", "/v1/acceptances", {"contribution_id": unknown, "weight": 1}),
                ("GET", f"/v1/contributions/{unknown}/share", None),
                ("POST", f"/v1/contributions/{unknown}/claim", None),
                ("GET", f"/v1/contributions/{unknown}/proof", None),
                ("GET", f"/v1/profile?author={unknown}", None),
            ):  # fmt: skip
                response = await _send(client, method, path, body)
                assert response.status_code == 404, (method, path, response.text)
                assert response.json()["error"]["hint"]
            # Following a project not seen yet is how its records come: not a 404.
            response = await _send(client, "POST", base + "/follow")
            assert response.status_code == 200
            # Another author's contributions are a page, empty while none is stored.
            page = await _send(client, "GET", f"/v1/contributions?author={unknown}")
            assert page.json() == {"items": [], "cursor": None}


def test_the_client_splits_imports_within_the_daemons_bounds() -> None:
    assert IMPORT_LINES == MAX_IMPORT_LINES
    assert Limits().bulk_body > IMPORT_BYTES
    assert [len(p) for p in _import_parts(["ab"] * 25_000)] == [10_000, 10_000, 5_000]
    big = ["x" * (IMPORT_BYTES // 3)] * 7
    assert [len(p) for p in _import_parts(big)] == [2, 2, 2, 1]
    assert list(_import_parts([])) == [[]]
