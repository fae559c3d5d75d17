"""The API's routes on evidence files: upload one into the node's evidence store, read one back.

`POST /v1/evidence` takes the file's raw bytes (`Content-Type: application/octet-stream`, at
most `[evidence] max_bytes`) and answers `{"uri": "workwork:sha256:<hex>", "sha256": "<hex>",
"size": n}`: the URI to give a contribution as its evidence, which peers can then fetch from
this node over `/workwork/evidence/1`. `GET /v1/evidence/{sha256}` answers the bytes of a file
this node holds. Files are read and written in a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import Any

import trio
from starlette.responses import Response

from node.api.app import OCTETS, Api
from node.api.routes import Param, Route
from node.errors import BadRequest, EvidenceMismatch, EvidenceTooLarge, NotFound


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


EVIDENCE_ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/evidence", upload,
          "Store an evidence file (the raw body, application/octet-stream); answers its workwork: URI, sha256 and size.",
          raises=(BadRequest, EvidenceTooLarge), returns="Evidence", upload=True),
    Route("GET", "/v1/evidence/{sha256}", download,
          "The bytes of an evidence file this node holds (application/octet-stream).",
          (Param("sha256", "id", "the file's sha256 (hex)", "path", True),),
          raises=(NotFound, EvidenceMismatch), returns="bytes"),
)  # fmt: skip
