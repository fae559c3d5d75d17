"""The evidence routes over real HTTP: upload a file, read it back, and what is refused."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import httpx
import pytest
import trio

from node.client import DaemonError
from node.evidence import Evidence
from tests.node.test_api import call, daemon


async def test_an_uploaded_file_is_stored_by_its_hash_and_read_back(tmp_path: Path) -> None:
    data = b"chapter 1\n" * 1000
    digest = hashlib.sha256(data).hexdigest()
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            answer = await call(client.put_evidence, data)
            assert answer == {"uri": f"workwork:sha256:{digest}", "sha256": digest, "size": 10_000}
            # Twice is the same file.
            assert await call(client.put_evidence, data) == answer
            assert await call(client.evidence, digest) == data
            response = await call(
                httpx.get,
                f"{client.base_url}/v1/evidence/{digest}",
                headers={"Authorization": f"Bearer {client.token}"},
            )
            assert response.headers["content-type"] == "application/octet-stream"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["content-disposition"].startswith("attachment")
            assert "sandbox" in response.headers["content-security-policy"]
            with pytest.raises(DaemonError) as missing:
                await call(client.evidence, "00" * 32)
            assert missing.value.status == 404
    path = Evidence(tmp_path / "a" / "evidence").path(bytes.fromhex(digest))
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob("*.tmp"))


async def test_uploads_that_are_refused(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (running, client):
            assert running.node is not None
            url = f"{client.base_url}/v1/evidence"
            auth = {"Authorization": f"Bearer {client.token}"}
            as_json = await call(
                httpx.post, url, headers={**auth, "Content-Type": "application/json"}, content=b"{}"
            )
            assert as_json.status_code == 415
            with pytest.raises(DaemonError) as empty:
                await call(client.put_evidence, b"")
            assert (empty.value.status, empty.value.type) == (400, "BadRequest")
            bound = running.node.evidence.max_bytes
            with pytest.raises(DaemonError) as large:
                await call(client.put_evidence, bytes(bound + 1))
            assert (large.value.status, large.value.type) == (413, "BodyTooLarge")
            # Exactly the bound is taken.
            assert (await call(client.put_evidence, bytes(bound)))["size"] == bound
            with pytest.raises(DaemonError) as bad:
                await call(client.evidence, "xyz")
            assert bad.value.status == 400
    assert len(list((tmp_path / "a" / "evidence").glob("*/*"))) == 1


async def test_a_contribution_s_file_is_answered_by_the_node_that_holds_it(
    tmp_path: Path,
) -> None:
    data = b"the guide\n"
    digest = hashlib.sha256(data).hexdigest()
    with trio.fail_after(30):
        async with daemon(tmp_path / "a") as (_, client):
            pid = (await call(client.post_project, name="docs", title="Docs"))["project_id"]
            stored = await call(client.put_evidence, data)
            # The hash comes from the workwork URI when none is given.
            work = await call(
                client.contribute, project_id=pid, summary="guide", evidence_uri=stored["uri"]
            )
            assert work["fields"]["evidence_hash"] == digest
            assert await call(client.contribution_evidence, work["id"]) == data
            elsewhere = await call(
                client.contribute,
                project_id=pid,
                summary="on the web",
                evidence_uri="https://example.org/guide",
            )
            with pytest.raises(DaemonError) as none:
                await call(client.contribution_evidence, elsewhere["id"])
            assert none.value.status == 404
            assert "its evidence is at https://example.org/guide" in none.value.message
            with pytest.raises(DaemonError) as refused:
                await call(client.contribute, project_id=pid, summary="x", evidence_uri="not a uri")
            assert (refused.value.status, refused.value.type) == (400, "InvalidField")
            assert "https://" in refused.value.message
            # No peer holds a file this node lacks: said, with what was asked.
            lost = hashlib.sha256(b"lost").hexdigest()
            gone = await call(client.contribute, project_id=pid, summary="lost", evidence_hash=lost)
            with pytest.raises(DaemonError) as unavailable:
                await call(client.contribution_evidence, gone["id"])
            assert (unavailable.value.status, unavailable.value.type) == (
                404,
                "EvidenceUnavailable",
            )
            assert "no peer is connected" in unavailable.value.message
