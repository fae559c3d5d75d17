"""The evidence store on a real directory: content addressing, atomic 0600 files, bounds, damage."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from node.errors import EvidenceMismatch, EvidenceTooLarge
from node.evidence import Evidence


def test_files_are_named_by_their_hash_written_0600_and_read_back_checked(
    tmp_path: Path,
) -> None:
    store = Evidence(tmp_path / "evidence", max_bytes=100)
    store.open()
    digest = store.put(b"work")
    assert digest == hashlib.sha256(b"work").digest()
    path = store.path(digest)
    assert path.parent.name == digest.hex()[:2] and path.name == digest.hex()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.get(digest) == b"work" and store.put(b"work") == digest
    assert store.read(digest, 2, 10) == (4, b"rk")
    assert store.get(bytes(32)) is None and store.read(bytes(32), 0, 1) is None


def test_what_is_refused_leaves_nothing(tmp_path: Path) -> None:
    store = Evidence(tmp_path / "evidence", max_bytes=100)
    store.open()
    with pytest.raises(EvidenceTooLarge):
        store.put(bytes(101))
    with pytest.raises(EvidenceMismatch):
        store.put(b"work", digest=bytes(32))
    assert list((tmp_path / "evidence").rglob("*")) == []


def test_a_damaged_file_is_removed_and_a_crash_s_leftovers_cleared(tmp_path: Path) -> None:
    store = Evidence(tmp_path / "evidence")
    store.open()
    digest = store.put(b"work")
    store.path(digest).write_bytes(b"rot")
    with pytest.raises(EvidenceMismatch):
        store.get(digest)
    assert not store.has(digest)
    stray = store.path(digest).with_name(f"{digest.hex()}.1234abcd.tmp")
    stray.write_bytes(b"half a fi")
    store.open()
    assert not stray.exists()
