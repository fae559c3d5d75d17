"""The encrypted identity and wallet keys: round trip, wrong passphrase, tampering, modes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from node import keys
from node.errors import KeyFileError
from protocol import decode
from tests.support import factories as f


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "identity.key", tmp_path / "wallet.json"


def test_round_trip_signs_records_and_keeps_the_wallet(paths: tuple[Path, Path]) -> None:
    made = keys.create(*paths, "correct horse")
    loaded = keys.load(*paths, "correct horse")
    assert loaded.public_key == made.public_key
    assert loaded.address == made.address and len(loaded.address) == 20
    assert keys.public(*paths) == keys.PublicKeys(made.public_key, made.address)
    record = loaded.sign(f.profile().body)
    assert record.author == made.public_key
    assert decode(record.raw).id == record.id  # the signature verifies


def test_files_are_private_and_never_overwritten(paths: tuple[Path, Path]) -> None:
    keys.create(*paths, "pw")
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = [p.read_bytes() for p in paths]
    with pytest.raises(KeyFileError, match="exists already"):
        keys.create(*paths, "pw")
    assert [p.read_bytes() for p in paths] == before
    paths[0].chmod(0o644)
    with pytest.raises(KeyFileError, match="accessible by other users"):
        keys.load(*paths, "pw")


def test_wrong_passphrase_names_the_file(paths: tuple[Path, Path]) -> None:
    keys.create(*paths, "pw")
    with pytest.raises(KeyFileError, match=r"wrong passphrase for .*identity\.key"):
        keys.load(*paths, "not it")


def test_wrong_passphrase_for_the_wallet_alone(paths: tuple[Path, Path], tmp_path: Path) -> None:
    keys.create(*paths, "pw")
    keys.create(tmp_path / "i2", tmp_path / "w2", "other")
    paths[1].write_bytes((tmp_path / "w2").read_bytes())
    with pytest.raises(KeyFileError, match=r"wrong passphrase for .*wallet\.json"):
        keys.load(*paths, "pw")


def _edit(path: Path, change: dict[str, object]) -> None:
    data = json.loads(path.read_text())
    data.update(change)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change",
    [
        {"public_key": f.pub("mallory").hex()},
        {"format": "something-else/1"},
        {"ciphertext": "00" * 72},
        {"ciphertext": "zz"},
        {"kdf": {"name": "argon2id", "opslimit": 2**40, "memlimit": 2**26, "salt": "00" * 16}},
        {"cipher": "rot13"},
    ],
)
def test_tampered_identity_file_is_refused(
    paths: tuple[Path, Path], change: dict[str, object]
) -> None:
    keys.create(*paths, "pw")
    _edit(paths[0], change)
    with pytest.raises(KeyFileError, match=r"identity\.key"):
        keys.load(*paths, "pw")


def test_tampered_or_malformed_wallet_is_refused(paths: tuple[Path, Path]) -> None:
    keys.create(*paths, "pw")
    _edit(paths[1], {"address": "11" * 20})
    with pytest.raises(KeyFileError, match=r"wallet\.json was tampered with"):
        keys.load(*paths, "pw")
    paths[1].write_text("{not json")
    with pytest.raises(KeyFileError, match=r"wallet\.json is not valid JSON"):
        keys.load(*paths, "pw")
    paths[1].write_text('{"crypto": 1}')
    with pytest.raises(KeyFileError, match=r"wallet\.json"):
        keys.load(*paths, "pw")


def test_missing_files_and_empty_passphrase(paths: tuple[Path, Path]) -> None:
    with pytest.raises(KeyFileError, match="run 'workwork init'"):
        keys.load(*paths, "pw")
    with pytest.raises(KeyFileError, match="must not be empty"):
        keys.create(*paths, "")
    assert not paths[0].exists() and not paths[1].exists()


def test_passphrase_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "pass"
    file.write_text("from file\nignored\n")
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "from env")
    assert keys.passphrase(file) == "from file"
    assert keys.passphrase() == "from env"
    monkeypatch.delenv(keys.PASSPHRASE_ENV)
    with pytest.raises(KeyFileError, match="cannot read passphrase file"):
        keys.passphrase(tmp_path / "missing")
    # Set but empty is no passphrase (an empty one is never valid): with no terminal to ask
    # on, that is an error rather than an empty passphrase.
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "")
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115
    with pytest.raises(KeyFileError, match="no passphrase"):
        keys.passphrase()
