"""Evidence files given to the node: `POST /v1/evidence` stores one, `GET /v1/evidence/{sha256}`
answers it.

The smallest version of the contract the `evidence` branch builds (issue 16, item 3), so that the
web app can upload what a contributor attaches; that branch's store (peers fetching blobs over
libp2p, limits per peer) replaces it at merge. The contract:

- `POST /v1/evidence`, the file as the raw body (`Content-Type: application/octet-stream`), at
  most `MAX_EVIDENCE` bytes: `{"uri": "workwork:sha256:<hex>", "sha256": "<hex>", "size": n}`;
- `GET /v1/evidence/{sha256}`: the bytes, as an attachment that a browser never renders (a file
  from anyone must not run as a page of this origin), or 404.

Files live in the data dir's `evidence/`, named by their sha256, written atomically.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from node.errors import BadRequest, BodyTimeout, BodyTooLarge, NotFound, UnsupportedMediaType

if TYPE_CHECKING:
    from node.api.app import Api

MAX_EVIDENCE = 16 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]{64}$")
# A stored file is served as bytes to save, never as a page: no sniffing, no scripts, a sandbox.
_DOWNLOAD = {
    "Content-Disposition": "attachment",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


def _folder(api: Api) -> Path:
    return Path(api.node.data_dir) / "evidence"


def _store(folder: Path, digest: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / digest
    if path.exists():
        return
    tmp = folder / f".{digest}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def _read_body(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/octet-stream":
        raise UnsupportedMediaType(
            f"the body is declared as {kind or 'nothing'}; send the file as "
            "application/octet-stream"
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_EVIDENCE:
        raise BodyTooLarge(f"the file has {length} bytes; evidence takes at most {MAX_EVIDENCE}")
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(60) as timer:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_EVIDENCE:
                raise BodyTooLarge(
                    f"the file has more than {MAX_EVIDENCE} bytes, the most it takes"
                )
            chunks.append(chunk)
    if timer.cancelled_caught:
        raise BodyTimeout(f"the file did not arrive whole within 60 s ({size} bytes came)")
    return b"".join(chunks)


def starlette_routes(api: Api) -> list[StarletteRoute]:
    """Returns the two evidence routes, which read and answer raw bytes."""
    from node.api.app import _Gone, problem

    async def add(request: Request) -> Response:
        try:
            data = await _read_body(request)
            if not data:
                raise BadRequest("the file is empty")
            digest = hashlib.sha256(data).hexdigest()
            await trio.to_thread.run_sync(_store, _folder(api), digest, data)
        except ClientDisconnect:
            return _Gone()
        except Exception as exc:
            return problem(exc)
        return JSONResponse(
            {"uri": f"workwork:sha256:{digest}", "sha256": digest, "size": len(data)}
        )

    async def get(request: Request) -> Response:
        digest = str(request.path_params["sha256"]).lower()
        try:
            if not _HEX.match(digest):
                raise BadRequest("sha256: expected 64 hex digits (0-9, a-f)")
            path = _folder(api) / digest
            try:
                data = await trio.to_thread.run_sync(path.read_bytes)
            except FileNotFoundError:
                raise NotFound(f"no evidence file {digest} on this node") from None
        except Exception as exc:
            return problem(exc)
        return Response(data, media_type="application/octet-stream", headers=_DOWNLOAD)

    return [
        StarletteRoute("/v1/evidence", add, methods=["POST"]),
        StarletteRoute("/v1/evidence/{sha256}", get, methods=["GET"]),
    ]
