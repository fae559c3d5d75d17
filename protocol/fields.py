"""Field types of record bodies: each one checks a value and admits only its canonical form.

A record body is a msgpack array, so its fields carry no names on the wire; the record classes in
`protocol.records` attach one checker from this module to each field. A checker accepts exactly
the Python values that msgpack decodes from the one canonical encoding of a valid field: `int`
(never `bool`), `str`, `bytes` and tuples of those. Set-like fields (skills, reviewers) must be
sorted and free of duplicates, so that one set has one byte string and one record id.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import field as dataclass_field
from typing import Any

from protocol.errors import InvalidField

# Ids, keys and roots are 32 bytes; EVM addresses are 20.
HASH_SIZE = 32
KEY_SIZE = 32
ADDRESS_SIZE = 20

# Integers that a JavaScript peer can hold in a Number without loss.
MAX_SAFE_INT = 2**53 - 1

# C0 controls and DEL, which a terminal may interpret; multi-line text may hold \t and \n.
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TAG = re.compile(r"[a-z0-9][a-z0-9+#.\-]{0,31}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9\-]{0,63}")
_AMOUNT = re.compile(r"[1-9][0-9]{0,77}")


class Check:
    """Checks one field value; subclasses raise `InvalidField` with the reason."""

    def __call__(self, kind: str, name: str, value: Any) -> None:
        raise NotImplementedError


class UInt(Check):
    """An integer in [low, high]."""

    def __init__(self, high: int = MAX_SAFE_INT, low: int = 0) -> None:
        self.low, self.high = low, high

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not int:
            raise InvalidField(kind, name, f"expected an integer, got {type(value).__name__}")
        if not self.low <= value <= self.high:
            raise InvalidField(kind, name, f"{value} is outside [{self.low}, {self.high}]")


class Text(Check):
    """A UTF-8 string of at most `max_bytes` bytes with no control characters."""

    def __init__(self, max_bytes: int, *, min_bytes: int = 0, multiline: bool = False) -> None:
        self.min_bytes, self.max_bytes = min_bytes, max_bytes
        self.control = _CONTROL_TEXT if multiline else _CONTROL_LINE

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not str:
            raise InvalidField(kind, name, f"expected a string, got {type(value).__name__}")
        # Surrogates cannot be encoded, so a str that came from anywhere but msgpack is checked.
        try:
            size = len(value.encode())
        except UnicodeEncodeError:
            raise InvalidField(kind, name, "not valid UTF-8") from None
        if not self.min_bytes <= size <= self.max_bytes:
            raise InvalidField(
                kind, name, f"{size} bytes is outside [{self.min_bytes}, {self.max_bytes}]"
            )
        if self.control.search(value):
            raise InvalidField(kind, name, "contains a control character")


class Choice(Check):
    """One string out of a fixed set."""

    def __init__(self, *choices: str) -> None:
        self.choices = frozenset(choices)

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not str or value not in self.choices:
            raise InvalidField(kind, name, f"expected one of {sorted(self.choices)}, got {value!r}")


class Slug(Check):
    """A short lowercase name: letters, digits and dashes, at most 64 characters."""

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not str or not _SLUG.fullmatch(value):
            raise InvalidField(
                kind, name, f"{value!r} is not 1-64 of a-z, 0-9 and '-', starting with a-z or 0-9"
            )


class Blob(Check):
    """Bytes of one of the given exact sizes."""

    def __init__(self, *sizes: int, nonzero: bool = False) -> None:
        self.sizes = frozenset(sizes)
        self.nonzero = nonzero

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not bytes:
            raise InvalidField(kind, name, f"expected bytes, got {type(value).__name__}")
        if len(value) not in self.sizes:
            raise InvalidField(kind, name, f"{len(value)} bytes, expected {sorted(self.sizes)}")
        if self.nonzero and not any(value):
            raise InvalidField(kind, name, "must not be all zero")


class SortedSet(Check):
    """A tuple of at most `max_items` items, strictly increasing, each passing `item`."""

    def __init__(self, item: Check, max_items: int) -> None:
        self.item, self.max_items = item, max_items

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not tuple:
            raise InvalidField(kind, name, f"expected an array, got {type(value).__name__}")
        if len(value) > self.max_items:
            raise InvalidField(kind, name, f"{len(value)} items, at most {self.max_items} allowed")
        for entry in value:
            self.item(kind, name, entry)
        if any(a >= b for a, b in itertools.pairwise(value)):
            raise InvalidField(kind, name, "items must be sorted and unique")


class Unique(Check):
    """A tuple of at most `max_items` items, each passing `item`, without duplicates, in the
    author's order (options of a proposal: their order is what votes refer to by index)."""

    def __init__(self, item: Check, max_items: int) -> None:
        self.item, self.max_items = item, max_items

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not tuple:
            raise InvalidField(kind, name, f"expected an array, got {type(value).__name__}")
        if len(value) > self.max_items:
            raise InvalidField(kind, name, f"{len(value)} items, at most {self.max_items} allowed")
        for entry in value:
            self.item(kind, name, entry)
        if len(set(value)) != len(value):
            raise InvalidField(kind, name, "items must be unique")


class Array(Check):
    """A tuple whose shape another field decides: checked by its kind's cross-field rules."""

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not tuple:
            raise InvalidField(kind, name, f"expected an array, got {type(value).__name__}")


class Amount(Check):
    """A uint256 above zero written in decimal, without leading zeros or signs (an amount of a
    token in its smallest unit, beyond what a msgpack or JavaScript integer holds)."""

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not str or not _AMOUNT.fullmatch(value) or int(value) >= 2**256:
            raise InvalidField(
                kind, name, f"{value!r} is not a decimal integer in [1, 2**256) without leading 0"
            )


class Tag(Check):
    """A skill or interest tag: lowercase, no spaces, at most 32 characters (e.g. 'c++')."""

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not str or not _TAG.fullmatch(value):
            raise InvalidField(
                kind, name, f"{value!r} is not a tag: 1-32 of a-z, 0-9, '+', '#', '.', '-'"
            )


class Fixed(Check):
    """An array of a fixed number of items, each with a check of its own, in order; or, with
    `optional`, the empty array, which stands for a field that is absent from the wire
    (`protocol.records.Body.OPTIONAL`)."""

    def __init__(self, *items: tuple[str, Check], optional: bool = False) -> None:
        self.items, self.optional = items, optional

    def __call__(self, kind: str, name: str, value: Any) -> None:
        if type(value) is not tuple:
            raise InvalidField(kind, name, f"expected an array, got {type(value).__name__}")
        if self.optional and value == ():
            return
        if len(value) != len(self.items):
            raise InvalidField(kind, name, f"expected {len(self.items)} items, got {len(value)}")
        for (item, check), entry in zip(self.items, value, strict=True):
            check(kind, f"{name}.{item}", entry)


def spec(check: Check, default: Any = dataclass_field) -> Any:
    """Declares a dataclass field whose values `check` admits (with a default, for optional
    trailing fields)."""
    if default is dataclass_field:
        return dataclass_field(metadata={"check": check})
    return dataclass_field(default=default, metadata={"check": check})


def tagset(tags: Iterable[str]) -> tuple[str, ...]:
    """Returns tags in their canonical form: stripped, lowercased, sorted, without duplicates.

    Records admit only canonical sets; callers that take tags from a person use this first.
    """
    return tuple(sorted({tag.strip().lower() for tag in tags if tag.strip()}))


def keyset(keys: Iterable[bytes]) -> tuple[bytes, ...]:
    """Returns public keys as a canonical set: sorted, without duplicates."""
    return tuple(sorted(set(keys)))
