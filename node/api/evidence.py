"""The API's routes on evidence files: upload one into the node's evidence store, read one back.

`POST /v1/evidence` takes the file's raw bytes (`Content-Type: application/octet-stream`, at
most `[evidence] max_bytes`) and answers `{"uri": "workwork:sha256:<hex>", "sha256": "<hex>",
"size": n}`: the URI to give a contribution as its evidence, which peers can then fetch from
this node over `/workwork/evidence/1`. `GET /v1/evidence/{sha256}` answers the bytes of a file
this node holds. `GET /v1/contributions/{id}/evidence` answers the file a contribution names,
from this node or fetched from its peers (`node.net.evidence`), checked against the hash.
Files are read and written in a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import Any

import trio
from starlette.responses import Response

from node.api.app import OCTETS, Api
from node.api.routes import Param, Route
from node.errors import (
    BadRequest,
    EvidenceMismatch,
    EvidenceTooLarge,
    EvidenceUnavailable,
    NotFound,
)
from protocol import Contribution
from protocol.evidence import named_sha256
from storage import Store


def blob_response(data: bytes, digest: bytes) -> Response:
    """Returns an evidence file as an HTTP answer that a browser downloads, never renders: the
    bytes come from whoever contributed, and this origin holds the API's token."""
    headers = {
        "Content-Disposition": f'attachment; filename="{digest.hex()}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        # Content-addressed: the bytes of a hash never change.
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    return Response(data, media_type=OCTETS, headers=headers)


async def upload(api: Api, args: dict[str, Any]) -> Any:
    data: bytes = args["data"]
    if not data:
        raise BadRequest("the file is empty: send its bytes as the body")
    digest = await trio.to_thread.run_sync(api.node.evidence.put, data)
    return {"uri": api.node.evidence.uri(digest), "sha256": digest.hex(), "size": len(data)}


async def download(api: Api, args: dict[str, Any]) -> Any:
    digest: bytes = args["sha256"]
    data = await trio.to_thread.run_sync(api.node.evidence.get, digest)
    if data is None:
        raise NotFound(f"no evidence file {digest.hex()} in this node's evidence store")
    return blob_response(data, digest)


def _named(store: Store, cid: bytes) -> bytes:
    found = store.get(cid)
    if found is None or not isinstance(found.body, Contribution):
        raise NotFound(f"no contribution {cid.hex()} in the store")
    named = named_sha256(found.body)
    if named is None:
        where = found.body.evidence_uri
        raise NotFound(
            f"contribution {cid.hex()[:16]} names no file by hash"
            + (f": its evidence is at {where}" if where else "")
        )
    return named


async def contribution_evidence(api: Api, args: dict[str, Any]) -> Any:
    cid: bytes = args["contribution_id"]
    digest = await api.read(_named, api.node.store, cid)
    data = await api.node.evidence_net.get(cid, digest)
    return blob_response(data, digest)


EVIDENCE_ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/evidence", upload,
          "Store an evidence file (the raw body, application/octet-stream); answers its workwork: URI, sha256 and size.",
          raises=(BadRequest, EvidenceTooLarge), returns="Evidence", upload=True),
    Route("GET", "/v1/evidence/{sha256}", download,
          "The bytes of an evidence file this node holds (application/octet-stream).",
          (Param("sha256", "id", "the file's sha256 (hex)", "path", True),),
          raises=(NotFound, EvidenceMismatch), returns="bytes"),
    Route("GET", "/v1/contributions/{contribution_id}/evidence", contribution_evidence,
          "The file a contribution names by hash: from this node, else fetched from peers over /workwork/evidence/1 and checked against the hash (then kept).",
          (Param("contribution_id", "id", "contribution id (hex)", "path", True),),
          raises=(NotFound, EvidenceUnavailable, EvidenceMismatch), returns="bytes"),
)  # fmt: skip
