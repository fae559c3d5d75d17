"""The error family of the storage layer, and the translation of LevelDB and OS errors into it.

Everything `storage` raises about the database or its directory derives from `StorageError`, so
the node catches one class at the boundary. Errors carry the path of the store: the person who
reads "disk full" or "permission denied" needs to know where.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import plyvel


class StorageError(Exception):
    """Raised when the store cannot open, read or write its database."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


class NotAStore(StorageError):
    """Raised when a path exists but is not a WorkWork store, so it is left untouched."""


class VersionMismatch(StorageError):
    """Raised when a store was written with another schema version than this code reads."""

    def __init__(self, path: Path | str, found: int, expected: int) -> None:
        super().__init__(
            f"store {path} has schema version {found}; this program reads version {expected}",
            path,
        )
        self.found = found
        self.expected = expected


class StoreInUse(StorageError):
    """Raised when another process, or another open Store in this one, holds the database."""


class StoreClosed(StorageError):
    """Raised when a store is used after `close()`."""


class BadCursor(StorageError):
    """Raised when a page cursor is not one that the same query returned."""


def _message(exc: BaseException) -> str:
    # plyvel passes LevelDB's status string as bytes.
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, plyvel.Error):
        text = exc.strerror
    return str(text)


@contextmanager
def translate(path: Path, doing: str) -> Iterator[None]:
    """Turns LevelDB and OS errors raised in the block into `StorageError`s naming `path`.

    Args:
        path: the store's directory.
        doing: what was being done, as a gerund phrase ("writing", "opening").
    """
    try:
        yield
    except plyvel.Error as exc:
        text = _message(exc)
        if "lock" in text and ("already held" in text or "temporarily unavailable" in text):
            raise StoreInUse(
                f"store {path} is in use by another process (or already open in this one)", path
            ) from exc
        raise StorageError(f"{doing} store {path}: {text}", path) from exc
    except OSError as exc:
        where = exc.filename or path
        raise StorageError(f"{doing} store {path}: {_message(exc)} ({where})", path) from exc
