"""The API's route table primitives: parameter types, parameters and routes.

A route is data: its method, path, handler, summary, parameters (each with a type from
`TYPES`, which checks and converts a JSON or query value and gives its JSON schema) and the
errors its handler may raise, whose statuses `node.errors.OUTCOMES` gives. node/api/app.py
serves the table, node/api/openapi.py describes it.

Integer parameters carry the bounds of the record field they end up in (`protocol.records`),
so that a value the protocol would refuse, or one that does not fit the store's keys (an epoch
is a u32 there), is a 400 with the bounds in its message, and the OpenAPI document states them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from node.errors import (
    OUTCOMES,
    BadRequest,
    BodyTimeout,
    BodyTooLarge,
    ForeignOrigin,
    Unauthorized,
    UnsupportedMediaType,
    WrongHost,
    outcome,
)
from protocol import Acceptance, Contribution, Project
from protocol.fields import UInt
from protocol.records import MAX_WINDOW, MODES, PER_MILLE
from storage import StorageError

if TYPE_CHECKING:
    from node.api.app import Api


# Parameter types: how a JSON or query value is checked and converted, and its JSON schema.

_HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def _hex(value: Any, sizes: tuple[int, ...]) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(
            f"expected {' or '.join(str(2 * s) for s in sizes)} hex digits (0-9, a-f)"
        ) from None
    if len(raw) not in sizes:
        raise ValueError(f"expected {' or '.join(str(2 * s) for s in sizes)} hex digits")
    return raw


_PREFIX = re.compile(r"[0-9a-f]{4,64}")


def _prefix(value: Any) -> str:
    if not isinstance(value, str) or not _PREFIX.fullmatch(value):
        raise ValueError("expected 4 to 64 hex digits (0-9, a-f)")
    return value


def _address(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError("expected a 0x-prefixed address")
    return _hex(value[2:], (20,))


_DECIMAL = re.compile(r"0|[1-9][0-9]{0,99}")


def _uint(value: Any, low: int, high: int) -> int:
    # ASCII digits without a leading zero, as `decimal_pattern` describes them: str.isdigit()
    # admits other scripts' digits, and int() reads some. The length is bounded before int().
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    elif type(value) is int:
        number = value
    else:
        raise ValueError(f"expected an integer in [{low}, {high}] (or its decimal string)")
    if not low <= number <= high:
        raise ValueError(f"{number} is outside [{low}, {high}]")
    return number


def decimal_pattern(low: int, high: int) -> str:
    """Returns a regular expression matching the decimal strings (no leading zero, no sign) of
    the integers in [low, high], for `low` 0 or 1: the bounds of a uint as a string's schema.

    The numbers with fewer digits than `high` come first; then, digit by digit, those with as
    many digits that share a prefix with `high` and are smaller at the next digit; then `high`.
    """
    assert low in (0, 1) and high >= 1
    top = str(high)
    parts = ["0"] if low == 0 else []
    if len(top) > 1:
        parts.append("[1-9]" if len(top) == 2 else f"[1-9][0-9]{{0,{len(top) - 2}}}")
    for i, digit in enumerate(top):
        first = 1 if i == 0 else 0
        if int(digit) > first:
            smaller = f"[{first}-{int(digit) - 1}]" if int(digit) - 1 > first else str(first)
            rest = len(top) - i - 1
            parts.append(top[:i] + smaller + ("", "[0-9]")[min(rest, 1)] + _times(rest))
    parts.append(top)
    return "^(" + "|".join(parts) + ")$"


def _times(count: int) -> str:
    return f"{{{count}}}" if count > 1 else ""


def _bounded(low: int, high: int) -> ParamType:
    """Returns the type of an integer in [low, high], given as a JSON number or a decimal string
    (so that values beyond a JavaScript number travel intact)."""
    number = {"type": "integer", "minimum": low, "maximum": high}
    text = {"type": "string", "pattern": decimal_pattern(low, high)}
    return ParamType(partial(_uint, low=low, high=high), {"oneOf": [number, text]}, number)


def _field_bounds(cls: type, name: str) -> tuple[int, int]:
    """Returns the bounds that the protocol gives an integer field of a record body."""
    check = next(f for f in dataclasses.fields(cls) if f.name == name).metadata["check"]
    assert isinstance(check, UInt)
    return check.low, check.high


def _limit(value: Any) -> int:
    return _uint(value, 1, 1000)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _one_of(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"expected one of {list(choices)}")
    return str(value)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ValueError("expected true or false")


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _indices(value: Any) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int and 0 <= v < 16 for v in value):
        raise ValueError("expected a list of option indices, 0-15")
    return value


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return value


@dataclass(frozen=True, slots=True)
class ParamType:
    """How a parameter's value is checked and converted, and its JSON schema.

    Attributes:
        convert: returns the value the handler gets; raises ValueError with the reason.
        schema: the JSON schema of the value in a JSON body.
        text: the schema in a path or a query, where every value is text on the wire and is
            described by what it reads as (an integer, not "an integer or a string").
    """

    convert: Callable[[Any], Any]
    schema: dict[str, Any]
    text: dict[str, Any] | None = None

    def schema_in(self, where: str) -> dict[str, Any]:
        return self.schema if where == "body" or self.text is None else self.text


# The largest value of an EVM uint256: wei amounts.
UINT256_MAX = 2**256 - 1

TYPES: dict[str, ParamType] = {
    "id": ParamType(partial(_hex, sizes=(32,)), _HEX32),
    "hash": ParamType(
        partial(_hex, sizes=(0, 32)), {"type": "string", "pattern": "^([0-9a-f]{64})?$"}
    ),
    "keys": ParamType(
        lambda v: [_hex(k, (32,)) for k in _strings(v)], {"type": "array", "items": _HEX32}
    ),
    "address": ParamType(_address, {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}),
    "epoch": _bounded(*_field_bounds(Acceptance, "epoch")),
    "weight": _bounded(*_field_bounds(Acceptance, "weight")),
    "epoch_length": _bounded(*_field_bounds(Project, "epoch_length")),
    "effort": _bounded(*_field_bounds(Contribution, "effort")),
    # The contract's amounts are uint256, and funding nothing is refused.
    "amount": _bounded(1, UINT256_MAX),
    "limit": ParamType(_limit, {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
    "cursor": ParamType(
        lambda v: bytes.fromhex(_string(v)), {"type": "string", "pattern": "^([0-9a-f]{2})+$"}
    ),
    # The first hex digits of an id, as a user writes it short (`Store.complete`).
    "prefix": ParamType(_prefix, {"type": "string", "pattern": "^[0-9a-f]{4,64}$"}),
    "string": ParamType(_string, {"type": "string"}),
    "flag": ParamType(_flag, {"type": "boolean"}, {"type": "boolean"}),
    # A token: "ETH", a 0x address, or the symbol of a token the project was funded in.
    "token": ParamType(_string, {"type": "string", "minLength": 1, "maxLength": 64}),
    # A project's short name (`protocol.fields.Slug`), and a profile's kind of actor.
    "slug": ParamType(_string, {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}),
    "actor": ParamType(_string, {"enum": ["human", "agent"]}),
    "strings": ParamType(_strings, {"type": "array", "items": {"type": "string"}}),
    "object": ParamType(_object, {"type": "object"}),
    # What a proposal would do, and a vote's choice (`protocol.records.Proposal`, `Vote`).
    "action": ParamType(_string, {"enum": ["allocate", "accept", "settings", "signal"]}),
    "choice": ParamType(_string, {"enum": ["yes", "no", "abstain", "approve"]}),
    "indices": ParamType(
        _indices, {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 15}}
    ),
    # Seconds; at least MIN_WINDOW, which the builder checks (the pattern takes 0 or 1 as low).
    "window": _bounded(1, MAX_WINDOW),
    # A project's governance (`protocol.records.GOVERNANCE`): its mode, quorum and threshold in
    # thousandths, and the lazy-consensus window in seconds (0: nothing can be overturned).
    "mode": ParamType(partial(_one_of, choices=MODES), {"enum": list(MODES)}),
    "per_mille": _bounded(0, PER_MILLE),
    "lazy_window": _bounded(0, MAX_WINDOW),
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

# What the app answers for any route before its handler runs: a Host other than the bound
# address, a browser page of another origin, no token. (And 500 for a bug, which no table
# lists: it is what any exception outside OUTCOMES becomes.)
APP_ERRORS: tuple[type[Exception], ...] = (WrongHost, ForeignOrigin, Unauthorized)
# What it answers for a route that takes a body, while reading it.
BODY_ERRORS: tuple[type[Exception], ...] = (BodyTooLarge, UnsupportedMediaType, BodyTimeout)


MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of a request body the API reads, and for how long (docs/API.md states them).

    Attributes:
        body: bytes of a JSON body, for every route but the bulk ones.
        bulk_body: bytes of a bulk route's body (an import: `node.api.work.MAX_IMPORT_LINES`
            lines of export, at up to ~3 KB each, the hex of records of ~1.6 KB).
        body_seconds: how long a body may take to arrive whole, from the request's headers.
        bulk_body_seconds: the same for a bulk route.
        head_seconds: how long a connection may take to send a request's line and headers,
            or stay idle between two requests (the server's keep-alive timeout).
    """

    body: int = 1 * MiB
    bulk_body: int = 32 * MiB
    body_seconds: float = 10.0
    bulk_body_seconds: float = 60.0
    head_seconds: float = 5.0

    def of(self, route: Route) -> tuple[int, float]:
        """Returns the size and time bounds of a route's body."""
        if route.bulk or route.upload:
            # An upload's size bound is the node's `[evidence] max_bytes` (node/api/app.py).
            return self.bulk_body, self.bulk_body_seconds
        return self.body, self.body_seconds


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint. The handler gets the checked parameters by name (absent ones left out)
    and returns JSON-able data, or a Starlette `Response` for other content types.

    `bulk` gives the route the larger body bounds of `Limits` (an import). `upload` makes the
    body raw bytes (`application/octet-stream`, bounded by the node's `[evidence] max_bytes`),
    which the handler gets as `data`.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    params: tuple[Param, ...] = ()
    raises: tuple[type[Exception], ...] = ()
    returns: str = "Object"
    bulk: bool = False
    upload: bool = False

    @property
    def body(self) -> bool:
        """Whether the route reads a body (JSON, or raw bytes for an upload)."""
        return self.upload or any(p.where == "body" for p in self.params)

    def errors(self) -> dict[int, tuple[type[BaseException], ...]]:
        """Returns the error statuses the route may answer, each with the errors that give it.

        Besides what the handler raises (and every subclass of it that `OUTCOMES` names): 400 for
        a malformed parameter, 503 when the store fails, which any route may meet, what the app
        refuses before the handler runs (`APP_ERRORS`), and while it reads a body
        (`BODY_ERRORS`). 500 (a bug) is not listed.
        """
        declared = (
            *self.raises,
            StorageError,
            *((BadRequest,) if self.params else ()),
            *APP_ERRORS,
            *(BODY_ERRORS if self.body else ()),
        )
        found: dict[int, list[type[BaseException]]] = {}
        for cls in declared:
            kinds = [cls, *(k for k, _ in OUTCOMES if issubclass(k, cls) and k is not cls)]
            for kind in kinds:
                found.setdefault(outcome(kind).status, []).append(kind)
        return {status: tuple(dict.fromkeys(found[status])) for status in sorted(found)}
