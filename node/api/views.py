"""Records and values as the API's JSON (see node/api/app.py for the conventions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol import Body, Project, Record, project_id
from protocol.epoch import Standing
from protocol.merkle import checksum

# Fields that hold EVM addresses, and integers that JSON carries as decimal strings.
_ADDRESSES = frozenset({"payout", "contract"})
_BIG = frozenset({"weight", "total_weight"})


def address(raw: bytes) -> str:
    """Returns a 20-byte address as 0x-prefixed EIP-55 checksummed hex."""
    return checksum(raw)


def _field(name: str, value: Any) -> Any:
    if isinstance(value, bytes):
        return address(value) if name in _ADDRESSES else value.hex()
    if isinstance(value, tuple):
        return [_field(name, v) for v in value]
    if name in _BIG:
        return str(value)
    return value


def fields(body: Body) -> dict[str, Any]:
    """Returns a body's fields as JSON values (see the module's conventions)."""
    return {
        name: _field(name, value)
        for name, value in zip((n for n, _ in body.SCHEMA), body.values(), strict=True)
    }


def record(rec: Record) -> dict[str, Any]:
    """Returns a record as JSON; projects also carry their `project_id`."""
    out: dict[str, Any] = {
        "id": rec.id.hex(),
        "author": rec.author.hex(),
        "kind": rec.kind,
        "fields": fields(rec.body),
        "raw": rec.raw.hex(),
    }
    if isinstance(rec.body, Project):
        out["project_id"] = project_id(rec.author, rec.body.name).hex()
    return out


def standing_view(found: Standing) -> dict[str, Any]:
    """Returns where a contribution stands as JSON: which acceptance counts, in which epoch, at
    what weight, and the id of an acceptance in force that does not count (`late`)."""
    return {
        "status": found.status.value,
        "epoch": found.epoch,
        "weight": str(found.weight),
        "acceptance": found.acceptance.id.hex(),
        "late": None if found.late is None else found.late.id.hex(),
    }


def page(items: Iterable[dict[str, Any]], cursor: bytes | None) -> dict[str, Any]:
    return {"items": list(items), "cursor": None if cursor is None else cursor.hex()}
