"""A store's directory: the marker file that says it is ours, and the checks made on opening.

A store directory holds LevelDB's files and `WORKWORK-STORE`, a small text file naming the
schema version. Opening refuses, without writing anything, a path that is a file, a directory
that holds files but no marker (someone's home directory, someone else's LevelDB), and a marker
of another schema version. A new store's marker is written first and atomically (temporary
file, fsync, rename), so a crash while creating leaves either no marker in an otherwise empty
directory or a complete marker; LevelDB's files come after it.
"""

from __future__ import annotations

import os
from pathlib import Path

from storage import keys
from storage.errors import NotAStore, StorageError, VersionMismatch

MARKER = "WORKWORK-STORE"
_MARKER_TMP = MARKER + ".tmp"


def _marker_text(version: int) -> str:
    return f"WorkWork record store\nschema {version}\n"


def _read_marker(path: Path) -> int:
    text = (path / MARKER).read_text(errors="replace")
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "schema" and value.isdigit():
            return int(value)
    raise NotAStore(f"{path / MARKER} does not name a schema version: not a WorkWork store", path)


def _write_marker(path: Path) -> None:
    # Written whole or not at all: a crash leaves either no marker or a complete one.
    tmp = path / _MARKER_TMP
    with open(tmp, "w") as out:
        out.write(_marker_text(keys.SCHEMA_VERSION))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path / MARKER)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare(path: Path, create: bool) -> None:
    """Checks that `path` is a store of our version, or makes it one; raises otherwise."""
    if path.exists():
        if not path.is_dir():
            raise NotAStore(f"{path} is not a directory", path)
        if (path / MARKER).exists():
            found = _read_marker(path)
            if found != keys.SCHEMA_VERSION:
                raise VersionMismatch(path, found, keys.SCHEMA_VERSION)
            return
        if any(entry.name != _MARKER_TMP for entry in path.iterdir()):
            raise NotAStore(
                f"{path} holds files but no {MARKER} marker: not a WorkWork store, left untouched",
                path,
            )
    if not create:
        raise StorageError(f"no store at {path}", path)
    path.mkdir(parents=True, exist_ok=True)
    _write_marker(path)
