"""The encrypted identity and wallet keys: round trip, wrong passphrase, tampering, modes,
bounded key derivation, and where the passphrase comes from."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from nacl.signing import SigningKey

from node import keys
from node.errors import KeyFileError
from node.files import write_secret
from protocol import decode
from tests.support import factories as f

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse"


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "identity.key", tmp_path / "wallet.json"


def test_round_trip_signs_records_and_keeps_the_wallet(paths: tuple[Path, Path]) -> None:
    made = keys.create(*paths, PASSPHRASE)
    loaded = keys.load(*paths, PASSPHRASE)
    assert loaded.public_key == made.public_key
    assert loaded.address == made.address and len(loaded.address) == 20
    assert keys.public(*paths) == keys.PublicKeys(made.public_key, made.address)
    record = loaded.sign(f.profile().body)
    assert record.author == made.public_key
    assert decode(record.raw).id == record.id  # the signature verifies


def test_files_are_private_and_never_overwritten(paths: tuple[Path, Path]) -> None:
    keys.create(*paths, PASSPHRASE)
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = [p.read_bytes() for p in paths]
    with pytest.raises(KeyFileError, match="exists already"):
        keys.create(*paths, PASSPHRASE)
    assert [p.read_bytes() for p in paths] == before
    paths[0].chmod(0o644)
    with pytest.raises(KeyFileError, match="accessible by other users"):
        keys.load(*paths, PASSPHRASE)


def test_wrong_passphrase_names_the_file(paths: tuple[Path, Path]) -> None:
    keys.create(*paths, PASSPHRASE)
    with pytest.raises(KeyFileError, match=r"wrong passphrase for .*identity\.key"):
        keys.load(*paths, "not it at all")


def test_wrong_passphrase_for_the_wallet_alone(paths: tuple[Path, Path], tmp_path: Path) -> None:
    keys.create(*paths, PASSPHRASE)
    keys.create(tmp_path / "i2", tmp_path / "w2", "another passphrase")
    paths[1].write_bytes((tmp_path / "w2").read_bytes())
    with pytest.raises(KeyFileError, match=r"wrong passphrase for .*wallet\.json"):
        keys.load(*paths, PASSPHRASE)


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
    keys.create(*paths, PASSPHRASE)
    _edit(paths[0], change)
    with pytest.raises(KeyFileError, match=r"identity\.key"):
        keys.load(*paths, PASSPHRASE)


def test_tampered_or_malformed_wallet_is_refused(paths: tuple[Path, Path]) -> None:
    keys.create(*paths, PASSPHRASE)
    _edit(paths[1], {"address": "11" * 20})
    with pytest.raises(KeyFileError, match=r"wallet\.json was tampered with"):
        keys.load(*paths, PASSPHRASE)
    paths[1].write_text("{not json")
    with pytest.raises(KeyFileError, match=r"wallet\.json is not valid JSON"):
        keys.load(*paths, PASSPHRASE)
    paths[1].write_text('{"crypto": 1}')
    with pytest.raises(KeyFileError, match=r"wallet\.json"):
        keys.load(*paths, PASSPHRASE)
    paths[1].write_text("[" * 50_000)
    with pytest.raises(KeyFileError, match=r"wallet\.json is not valid JSON"):
        keys.load(*paths, PASSPHRASE)
    paths[1].write_text(" " * (64 * 1024) + "{}")
    with pytest.raises(KeyFileError, match=r"wallet\.json is too large to be a secret file"):
        keys.load(*paths, PASSPHRASE)


def _edit_keystore(path: Path, kdfparams: dict[str, Any], **crypto: Any) -> None:
    """Changes the keystore's KDF parameters and other fields of its `crypto` section."""
    data = json.loads(path.read_text())
    data["crypto"]["kdfparams"].update(kdfparams)
    data["crypto"].update(crypto)
    path.write_text(json.dumps(data))


# Loads the keys in a child process and prints what happened and how long it took.
_LOAD = """
import json, sys, time
from pathlib import Path
from node import keys
from node.errors import KeyFileError
start = time.perf_counter()
try:
    keys.load(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
    outcome = "loaded"
except KeyFileError as exc:
    outcome = f"KeyFileError: {exc}"
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start}))
"""

# What the child may use: enough for any key file within the bounds (argon2id's 64 MiB, or
# geth's 256 MiB scrypt), far from the gigabytes that a tampered file asks for.
_MEMORY = 768 * 2**20
_TIMEOUT = 30


def _load_bounded(paths: tuple[Path, Path], passphrase: str) -> dict[str, Any]:
    """Runs `keys.load` in a child process whose address space is capped at `_MEMORY`, so that
    a tampered file that the keys module trusted would fail here rather than take the machine's
    memory (or, past `_TIMEOUT`, its time)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY, _MEMORY))

    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(paths[0]), str(paths[1]), passphrase],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        preexec_fn=cap,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_the_bounded_child_loads_sound_keys(paths: tuple[Path, Path]) -> None:
    # The control for the test below: within the child's limits, real keys do unlock, so a
    # refusal there is the keys module's and not the limits'.
    keys.create(*paths, PASSPHRASE)
    assert _load_bounded(paths, PASSPHRASE)["outcome"] == "loaded"


@pytest.mark.parametrize(
    ("kdfparams", "crypto", "named"),
    [
        ({"n": 2**22}, {}, "scrypt n = 4194304"),
        ({"r": 2**20}, {}, "scrypt r = 1048576"),
        ({"p": 2**20}, {}, "scrypt p = 1048576"),
        ({"n": 2**18, "r": 8, "p": 8}, {}, "scrypt n*r*p = 16777216"),
        ({"dklen": 2**32}, {}, "scrypt dklen = 4294967296"),
        ({"c": 2**40, "prf": "hmac-sha256"}, {"kdf": "pbkdf2"}, "key derivation 'pbkdf2'"),
    ],
)
@pytest.mark.slow
def test_costly_wallet_kdf_parameters_are_refused_before_deriving(
    paths: tuple[Path, Path], kdfparams: dict[str, Any], crypto: dict[str, Any], named: str
) -> None:
    keys.create(*paths, PASSPHRASE)
    _edit_keystore(paths[1], kdfparams, **crypto)
    before = [p.read_bytes() for p in paths]
    result = _load_bounded(paths, PASSPHRASE)
    assert result["outcome"].startswith(f"KeyFileError: {paths[1]}: {named}")
    # No key derivation ran: parsing and checking two small files takes milliseconds.
    assert result["seconds"] < 0.5
    assert [p.read_bytes() for p in paths] == before


@pytest.mark.parametrize(
    ("kdfparams", "crypto", "named"),
    [
        ({"n": 3 * 2**14}, {}, "scrypt n = 49152"),
        ({"n": 2**13}, {}, "scrypt n = 8192"),
        ({"n": "16384"}, {}, "scrypt n = '16384'"),
        ({"n": 16384.0}, {}, "scrypt n = 16384.0"),
        ({"r": 0}, {}, "scrypt r = 0"),
        ({"r": True}, {}, "scrypt r = True"),
        ({"p": -1}, {}, "scrypt p = -1"),
        ({"dklen": 16}, {}, "scrypt dklen = 16"),
        ({"salt": "zz"}, {}, "field 'salt'"),
        ({}, {"kdf": "argon2"}, "key derivation 'argon2'"),
        ({}, {"cipher": "aes-256-gcm"}, "cipher 'aes-256-gcm'"),
        ({}, {"mac": "00"}, "field 'mac'"),
        ({}, {"cipherparams": {"iv": "00"}}, "field 'iv'"),
    ],
)
@pytest.mark.slow
def test_malformed_wallet_kdf_parameters_are_refused(
    paths: tuple[Path, Path], kdfparams: dict[str, Any], crypto: dict[str, Any], named: str
) -> None:
    keys.create(*paths, PASSPHRASE)
    _edit_keystore(paths[1], kdfparams, **crypto)
    with pytest.raises(KeyFileError) as refused:
        keys.load(*paths, PASSPHRASE)
    assert str(refused.value).startswith(f"{paths[1]}: {named}")


@pytest.mark.parametrize("version", [4, 3.0, "3", None])
def test_wallet_of_another_keystore_version_is_refused(
    paths: tuple[Path, Path], version: object
) -> None:
    keys.create(*paths, PASSPHRASE)
    _edit(paths[1], {"version": version})
    with pytest.raises(KeyFileError, match=rf"{paths[1]}: keystore version"):
        keys.load(*paths, PASSPHRASE)


def test_stronger_wallet_within_bounds_still_unlocks(paths: tuple[Path, Path]) -> None:
    # The bounds leave room to raise the cost later (or to use a keystore of geth's kind):
    # a wallet with twice our n, and one written with capitalized keys, still unlock.
    made = keys.create(*paths, PASSPHRASE)
    stronger = Account.encrypt(made.wallet.key, PASSPHRASE, kdf="scrypt", iterations=2**15)
    stronger["Crypto"] = stronger.pop("crypto")
    paths[1].write_text(json.dumps(stronger))
    paths[1].chmod(0o600)
    assert keys.load(*paths, PASSPHRASE).address == made.address


def _made_before_the_minimum(paths: tuple[Path, Path], passphrase: str) -> keys.Identity:
    """Writes keys as `keys.create` did before it required a minimum length: same formats, same
    KDFs, any non-empty passphrase."""
    identity = keys.Identity(SigningKey.generate(), Account.create())
    write_secret(paths[0], keys._seal_identity(identity.signing_key, passphrase))
    keystore = Account.encrypt(
        identity.wallet.key, passphrase, kdf="scrypt", iterations=keys.SCRYPT_N
    )
    write_secret(paths[1], json.dumps(keystore).encode())
    return identity


def test_new_keys_need_a_passphrase_of_the_minimum_length(paths: tuple[Path, Path]) -> None:
    # Characters, not bytes: six kanji are 18 bytes of UTF-8 and still too short.
    for short in ("", "x", "7 chars", "秘密の合言葉"):
        with pytest.raises(KeyFileError, match="at least 8 characters"):
            keys.create(*paths, short)
        assert not paths[0].exists() and not paths[1].exists()
    made = keys.create(*paths, "秘密の合言葉です")
    assert keys.load(*paths, "秘密の合言葉です").public_key == made.public_key


def test_existing_keys_with_a_short_passphrase_still_unlock(
    paths: tuple[Path, Path], tmp_path: Path
) -> None:
    made = _made_before_the_minimum(paths, "pw")
    assert keys.load(*paths, "pw").public_key == made.public_key
    file = tmp_path / "pass"
    file.write_text("pw\n")
    file.chmod(0o600)
    assert keys.passphrase(file) == "pw"  # unlocking takes it; only a new key refuses it
    with pytest.raises(KeyFileError, match="at least 8 characters"):
        keys.passphrase(file, new=True)


def test_missing_files(paths: tuple[Path, Path]) -> None:
    with pytest.raises(KeyFileError, match="run 'workwork init'"):
        keys.load(*paths, PASSPHRASE)


def _secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_passphrase_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = _secret(tmp_path / "pass", "from file\nignored\n")
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "from env")
    assert keys.passphrase(file) == "from file"
    assert keys.passphrase() == "from env"
    monkeypatch.delenv(keys.PASSPHRASE_ENV)
    with pytest.raises(KeyFileError, match="cannot read passphrase file"):
        keys.passphrase(tmp_path / "missing")
    with pytest.raises(KeyFileError, match=r"passphrase file .* is empty"):
        keys.passphrase(_secret(tmp_path / "empty", "\nsecond line\n"))
    binary = _secret(tmp_path / "binary", "")
    binary.write_bytes(b"\xff\xfe\n")
    with pytest.raises(KeyFileError, match=r"passphrase file .* is not UTF-8 text"):
        keys.passphrase(binary)
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115
    with pytest.raises(KeyFileError, match="no passphrase"):
        keys.passphrase()


def test_empty_passphrase_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set to nothing is most likely a supervisor that lost the value: it is an error, whether
    # or not there is a terminal, never a fall-through to a prompt nobody answers.
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "")
    for new in (False, True):
        with pytest.raises(KeyFileError, match=f"{keys.PASSPHRASE_ENV} is set but empty"):
            keys.passphrase(new=new)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_passphrase_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    file = _secret(tmp_path / "pass", f"{PASSPHRASE}\n", mode)
    with pytest.raises(KeyFileError) as refused:
        keys.passphrase(file)
    message = str(refused.value)
    assert message.startswith(f"passphrase file {file} is accessible by other users")
    assert f"run 'chmod 600 {file}'" in message
    assert stat.S_IMODE(file.stat().st_mode) == mode  # refused, not repaired behind one's back


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_passphrase_file_of_its_owner_alone_is_read(tmp_path: Path, mode: int) -> None:
    assert keys.passphrase(_secret(tmp_path / "pass", f"{PASSPHRASE}\n", mode)) == PASSPHRASE
