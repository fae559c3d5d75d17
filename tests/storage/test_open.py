"""Opening a store: creating, refusing what is not ours, locks, and OS errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest

from storage import (
    SCHEMA_VERSION,
    NotAStore,
    StorageError,
    Store,
    StoreInUse,
    VersionMismatch,
    keys,
)
from storage.directory import MARKER
from tests.support import factories as f
from tests.support.factories import T0

CHILD = Path(__file__).with_name("child.py")


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_create_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store"
    with Store.open(path) as store:
        store.ingest([f.project()], now=T0)
    assert (path / MARKER).read_text() == f"WorkWork record store\nschema {SCHEMA_VERSION}\n"
    with Store.open(path, create=False) as store:
        assert store.project(f.pid()) is not None
    # An existing empty directory is fine too.
    (tmp_path / "empty").mkdir()
    Store.open(tmp_path / "empty").close()


def test_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no store at") as caught:
        Store.open(tmp_path / "nothing", create=False)
    assert caught.value.path == tmp_path / "nothing"
    assert not (tmp_path / "nothing").exists()


def test_a_directory_that_is_not_ours_is_left_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("precious")
    before = snapshot(home)
    with pytest.raises(NotAStore, match="not a WorkWork store") as caught:
        Store.open(home)
    assert caught.value.path == home
    assert snapshot(home) == before

    # Someone else's LevelDB, too.
    other = tmp_path / "other"
    db = plyvel.DB(str(other), create_if_missing=True)
    db.put(b"theirs", b"data")
    db.close()
    before = snapshot(other)
    with pytest.raises(NotAStore):
        Store.open(other)
    assert snapshot(other) == before

    # And a file.
    with pytest.raises(NotAStore, match="not a directory"):
        Store.open(home / "notes.txt")


def test_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    Store.open(path).close()
    (path / MARKER).write_text("WorkWork record store\nschema 99\n")
    before = snapshot(path)
    with pytest.raises(VersionMismatch, match=f"schema version 99.*version {SCHEMA_VERSION}") as e:
        Store.open(path)
    assert (e.value.found, e.value.expected) == (99, SCHEMA_VERSION)
    assert snapshot(path) == before

    # The version inside the database counts as well.
    (path / MARKER).write_text(f"WorkWork record store\nschema {SCHEMA_VERSION}\n")
    db = plyvel.DB(str(path))
    db.put(keys.SCHEMA_KEY, keys.u32(7))
    db.close()
    with pytest.raises(VersionMismatch, match="schema version 7"):
        Store.open(path)


def test_a_store_is_opened_by_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with Store.open(path), pytest.raises(StoreInUse, match="in use"):
        Store.open(path)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "hold", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "open\n"
        with pytest.raises(StoreInUse, match="another process") as caught:
            Store.open(path)
        assert caught.value.path == path
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    Store.open(path).close()


def test_os_errors_name_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    # A directory cannot be made under a regular file, even by root.
    with pytest.raises(StorageError) as caught:
        Store.open(blocker / "store")
    assert str(blocker / "store") in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StorageError, match="ermission denied") as caught:
            Store.open(locked / "store")
        assert caught.value.path == locked / "store"
    finally:
        locked.chmod(0o700)


def test_a_failed_write_is_a_storage_error_and_loses_nothing(tmp_path: Path) -> None:
    # Files limited to 256 KiB: LevelDB's log hits the limit and its write fails (EFBIG), as it
    # would on a full disk.
    path = tmp_path / "s"
    run = subprocess.run(
        [sys.executable, str(CHILD), "fill", str(path), str(256 * 1024)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stderr
    assert lines[-3].startswith("error writing to store") and "File too large" in lines[-3]
    assert lines[-2] == f"path {path}"
    assert lines[-1] == "cause IOError"
    stored = {bytes.fromhex(line.split()[1]) for line in lines if line.startswith("stored ")}
    assert stored
    with Store.open(path) as store:
        assert store.check() == ()
        assert all(store.has(rid) for rid in stored)
