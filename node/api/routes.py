"""The API's route table primitives: parameter types, parameters and routes.

A route is data: its method, path, handler, summary, parameters (each with a type from
`TYPES`, which checks and converts a JSON or query value and gives its JSON schema) and the
errors its handler may raise, whose statuses `node.errors.OUTCOMES` gives. node/api/app.py serves the table, node/api/openapi.py describes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from node.errors import OUTCOMES, BadRequest, outcome
from storage import StorageError

if TYPE_CHECKING:
    from node.api.app import Api


# Parameter types: how a JSON or query value is checked and converted, and its JSON schema.

_HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def _hex(value: Any, sizes: tuple[int, ...]) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    raw = bytes.fromhex(value)
    if len(raw) not in sizes:
        raise ValueError(f"expected {' or '.join(str(2 * s) for s in sizes)} hex digits")
    return raw


def _address(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError("expected a 0x-prefixed address")
    return _hex(value[2:], (20,))


def _uint(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if type(value) is int and value >= 0:
        return value
    raise ValueError("expected a non-negative integer")


def _limit(value: Any) -> int:
    number = _uint(value)
    if not 1 <= number <= 1000:
        raise ValueError("must be between 1 and 1000")
    return number


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return value


TYPES: dict[str, tuple[Callable[[Any], Any], dict[str, Any]]] = {
    "id": (partial(_hex, sizes=(32,)), _HEX32),
    "hash": (
        partial(_hex, sizes=(0, 32)),
        {"type": "string", "pattern": "^([0-9a-f]{64})?$"},
    ),
    "keys": (
        lambda v: [_hex(k, (32,)) for k in _strings(v)],
        {"type": "array", "items": _HEX32},
    ),
    "address": (_address, {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}),
    "uint": (_uint, {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}),
    "limit": (_limit, {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
    "cursor": (
        lambda v: bytes.fromhex(_string(v)),
        {"type": "string", "pattern": "^([0-9a-f]{2})+$"},
    ),
    "string": (_string, {"type": "string"}),
    "strings": (_strings, {"type": "array", "items": {"type": "string"}}),
}


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a route: where it comes from, its type (a key of TYPES), its doc."""

    name: str
    type: str
    doc: str
    where: Literal["path", "query", "body"] = "body"
    required: bool = False


Handler = Callable[["Api", dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint. The handler gets the checked parameters by name (absent ones left out)
    and returns JSON-able data, or a Starlette `Response` for other content types."""

    method: str
    path: str
    handler: Handler
    summary: str
    params: tuple[Param, ...] = ()
    raises: tuple[type[Exception], ...] = ()
    returns: str = "Object"

    def errors(self) -> dict[int, tuple[type[BaseException], ...]]:
        """Returns the error statuses the route may answer, each with the errors that give it.

        Besides what the handler raises (and every subclass of it that `OUTCOMES` names): 400 for
        a malformed parameter, and 503 when the store fails, which any route may meet. 401 (no
        token) and 500 (a bug) are the app's, not the route's.
        """
        declared = (*self.raises, StorageError, *((BadRequest,) if self.params else ()))
        found: dict[int, list[type[BaseException]]] = {}
        for cls in declared:
            kinds = [cls, *(k for k, _ in OUTCOMES if issubclass(k, cls) and k is not cls)]
            for kind in kinds:
                found.setdefault(outcome(kind).status, []).append(kind)
        return {status: tuple(dict.fromkeys(found[status])) for status in sorted(found)}
