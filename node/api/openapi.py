"""The OpenAPI 3.1 description of the API, generated from its route table.

Generated rather than written, so that it cannot drift from the code: a test checks that every
route, parameter and error code is described.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from node.api.routes import _HEX32, TYPES, Limits, Route
from protocol import KINDS, __version__

_ERROR_TEXT = {
    400: "Bad input, or a record the protocol refuses",
    401: "Missing or wrong API token",
    403: "Refused: not the project's owner or a reviewer, or a browser page of another origin "
    "than the dashboard's",
    404: "Not in this node's store",
    408: "The body did not arrive whole in time; the connection is closed",
    409: "Conflicts with the state of a record or of the chain (a closed project, a refused "
    "transaction)",
    413: "The body is larger than the route takes; the connection is closed",
    415: "The body is not declared as the route's media type (application/json, or "
    "application/octet-stream for an upload)",
    421: "The Host header names another host than the address the API is bound to",
    500: "A bug in the node (details in its log)",
    502: "A peer could not be reached, or the chain answered out of turn",
    503: "The chain's endpoint does not answer, or the node's store cannot be written",
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": "string"},
                },
                "required": ["type", "message", "hint"],
            }
        },
        "required": ["error"],
    },
    "Record": {
        "type": "object",
        "properties": {
            "id": _HEX32,
            "author": _HEX32,
            "kind": {"enum": list(KINDS)},
            "fields": {"type": "object"},
            "raw": {"type": "string", "description": "the signed envelope, hex"},
        },
        "required": ["id", "author", "kind", "fields", "raw"],
    },
    "Page": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
            "cursor": {"type": ["string", "null"]},
        },
    },
    "Matches": {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "description": "best first",
                "items": {
                    "type": "object",
                    "properties": {
                        "project_id": _HEX32,
                        "title": {"type": "string"},
                        "score": {"type": "number"},
                        **{
                            part: {
                                "type": "object",
                                "properties": {
                                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                                    "reason": {"type": "string"},
                                },
                                "required": ["score", "reason"],
                            }
                            for part in ("love", "good_at", "needs", "paid")
                        },
                    },
                    "required": ["project_id", "score", "love", "good_at", "needs", "paid"],
                },
            },
            "considered": {"type": "integer"},
            "accepted_work": {"type": "integer"},
            "funding": {"type": "object"},
        },
        "required": ["items"],
    },
    "Evidence": {
        "type": "object",
        "properties": {
            "uri": {"type": "string", "pattern": "^workwork:sha256:[0-9a-f]{64}$"},
            "sha256": _HEX32,
            "size": {"type": "integer", "minimum": 1},
        },
        "required": ["uri", "sha256", "size"],
    },
    "Status": {"type": "object"},
    "ImportResult": {"type": "object"},
    "Object": {"type": "object"},
}


def openapi(routes: Iterable[Route], *, cookie: str, limits: Limits) -> dict[str, Any]:
    """Returns the OpenAPI 3.1 description of `routes` (the token may come in cookie `cookie`,
    bodies are read within `limits`)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        parameters = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.doc,
                "schema": TYPES[p.type].schema_in(p.where),
            }
            for p in route.params
            if p.where != "body"
        ]
        body = [p for p in route.params if p.where == "body"]
        if route.returns == "JSON lines":
            ok = {"application/x-ndjson": {"schema": {"type": "string"}}}
        elif route.returns == "bytes":
            ok = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        else:
            ok = {"application/json": {"schema": {"$ref": f"#/components/schemas/{route.returns}"}}}
        responses: dict[str, Any] = {"200": {"description": route.summary, "content": ok}}
        errors = route.errors()
        for code in sorted({*errors, 500}):
            kinds = ", ".join(k.__name__ for k in errors.get(code, ()))
            responses[str(code)] = {
                "description": _ERROR_TEXT[code] + (f" ({kinds})" if kinds else ""),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        operation: dict[str, Any] = {
            "operationId": route.handler.__name__,
            "summary": route.summary,
            "parameters": parameters,
            "responses": responses,
        }
        if route.upload:
            operation["requestBody"] = {
                "description": "the file's bytes, at most the node's [evidence] max_bytes",
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        elif body:
            schema = {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    p.name: {**TYPES[p.type].schema, "description": p.doc} for p in body
                },
                "required": [p.name for p in body if p.required],
            }
            size, seconds = limits.of(route)
            operation["requestBody"] = {
                "description": f"JSON of at most {size} bytes, sent whole within {seconds:g} s",
                # A body of optional fields only may be left out: it reads as {}.
                "required": any(p.required for p in body),
                "content": {"application/json": {"schema": schema}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "WorkWork node API", "version": __version__},
        "servers": [{"url": "http://127.0.0.1"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": cookie},
            },
        },
    }
