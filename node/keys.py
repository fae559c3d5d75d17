"""The two keys of a participant, encrypted at rest with one passphrase.

- The identity key (`identity.key`) is the Ed25519 key that signs records: who you are on the
  network. Its 32-byte seed is encrypted with NaCl's SecretBox (XSalsa20-Poly1305) under a key
  derived from the passphrase by argon2id. The file is JSON:

      {"format": "workwork-identity/1", "public_key": hex,
       "kdf": {"name": "argon2id", "opslimit": int, "memlimit": int, "salt": hex},
       "cipher": "xsalsa20-poly1305", "ciphertext": hex (24-byte nonce + box)}

  The public key is kept in clear so that `workwork keys` works without the passphrase, and it
  is compared with the decrypted seed's key, so editing it is detected. The KDF parameters are
  in the file so that stronger ones can be chosen later without breaking old files; new files
  use argon2id's INTERACTIVE limits (2 passes, 64 MiB: ~0.1 s), as libsodium recommends for
  keys unlocked once per start.

- The wallet key (`wallet.json`) is the secp256k1 key that anchors epochs and pays gas: a
  standard Ethereum v3 keystore (`eth_account.Account.encrypt`), so geth, foundry's `cast` or
  MetaMask import it. It uses scrypt with n = 2**14, r = 8, p = 1 (16 MiB, ~50 ms) instead of
  the default n = 2**18: the file never leaves the data dir, whose mode already keeps others
  out, and a lighter KDF keeps `node start` and the tests quick.

Both files are written with mode 0600 (`node.files`); both use the same passphrase.

Rules of this module:

- A key file is checked whole before any key derivation runs, and its KDF parameters must lie
  within bounds: an edited file must not make unlocking take the machine's memory or hours.
  The lower bounds are what `create` writes; the upper bounds leave room for stronger files
  (argon2id up to libsodium's SENSITIVE limits, 1 GiB; scrypt up to the cost of geth's
  standard keystore, n = 2**18 with r = 8, p = 1: 256 MiB, ~1 s). Only scrypt keystores are
  read: `create` never writes pbkdf2 ones, and nothing else would bound their cost.
- A new key needs a passphrase of at least `MIN_PASSPHRASE` characters (`create`, and
  `passphrase(new=True)`); unlocking takes any passphrase, so that keys made before the rule
  still open.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from eth_account import Account
from eth_account.signers.local import LocalAccount
from nacl.signing import SigningKey

from node.errors import KeyFileError
from node.files import read_secret, write_secret
from protocol import Body, Record, sign, stamp

IDENTITY_FORMAT = "workwork-identity/1"
IDENTITY_FILE = "identity.key"
WALLET_FILE = "wallet.json"
PASSPHRASE_ENV = "WORKWORK_PASSPHRASE"

# The shortest passphrase a new key accepts. Eight characters is the floor NIST SP 800-63B sets
# for chosen secrets; it matters here because the wallet's scrypt is deliberately light, so the
# passphrase is what holds against someone who copied the files (a backup, a lost disk).
MIN_PASSPHRASE = 8

OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
SCRYPT_N = 2**14
SCRYPT_DKLEN = 32  # a v3 keystore's derived key: 16 bytes for AES-128, 16 for the MAC

# Bounds on the KDF parameters read from a file, so that a tampered file cannot make unlocking
# take hours or all the memory.
_MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
_MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
# scrypt needs 128 * n * r bytes and time in proportion to n * r * p. The bounds let a file cost
# at most what geth's standard keystore does (n = 2**18, r = 8, p = 1: 256 MiB, ~1 s), however
# the cost is split between the parameters.
_MAX_SCRYPT_N = 2**18
_MAX_SCRYPT_R = 8
_MAX_SCRYPT_P = 8
_MAX_SCRYPT_WORK = _MAX_SCRYPT_N * _MAX_SCRYPT_R


@dataclass(frozen=True, slots=True)
class Identity:
    """The unlocked keys of a participant: the record signer and the EVM wallet."""

    signing_key: SigningKey
    wallet: LocalAccount

    @property
    def public_key(self) -> bytes:
        """The Ed25519 public key: the author of every record this identity signs."""
        return bytes(self.signing_key.verify_key)

    @property
    def address(self) -> bytes:
        """The wallet's 20-byte EVM address."""
        return bytes.fromhex(self.wallet.address[2:])

    def sign(self, body: Body) -> Record:
        """Signs a record body with the identity key."""
        return sign(body, self.signing_key)


@dataclass(frozen=True, slots=True)
class PublicKeys:
    """What the key files say in clear: readable without the passphrase."""

    public_key: bytes
    address: bytes


@dataclass(frozen=True, slots=True)
class _Sealed:
    """An identity file that passed its checks: what `_open_identity` needs to decrypt it."""

    public_key: bytes
    salt: bytes
    opslimit: int
    memlimit: int
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class _Keystore:
    """A wallet file that passed its checks.

    `document` is rebuilt from the checked values alone, so that the keystore library sees
    nothing that was not checked (a second, capitalized "Crypto", a stray field).
    """

    address: str
    document: dict[str, Any]


def create(
    identity_path: Path, wallet_path: Path, passphrase: str, *, difficulty: int = 0
) -> Identity:
    """Makes a new identity key and wallet key and writes them encrypted.

    The identity key is minted with `difficulty` bits of proof of work (`protocol.stamp`): the
    network's `key_difficulty`, so that its records draw on the newcomers' pool of other nodes.

    Raises:
        KeyFileError: either file exists already (keys are never overwritten), the passphrase
            is shorter than `MIN_PASSPHRASE` characters, or a file cannot be written.
    """
    for path in (identity_path, wallet_path):
        if path.exists():
            raise KeyFileError(f"{path} exists already; refusing to overwrite a key")
    _check_new(passphrase)
    identity = Identity(stamp.mint(difficulty), Account.create())
    write_secret(identity_path, _seal_identity(identity.signing_key, passphrase))
    keystore = Account.encrypt(identity.wallet.key, passphrase, kdf="scrypt", iterations=SCRYPT_N)
    write_secret(wallet_path, json.dumps(keystore, indent=2).encode())
    return identity


def load(identity_path: Path, wallet_path: Path, passphrase: str) -> Identity:
    """Decrypts both keys.

    Both files are read and checked before either key is derived, so a malformed or tampered
    file is refused in milliseconds whichever of the two it is.

    Raises:
        KeyFileError: a file is missing, readable by others, malformed or tampered with (its
            KDF parameters out of bounds among others), or the passphrase is wrong; the
            message names the file, and the parameter at fault.
    """
    sealed = _read_identity(identity_path)
    keystore = _read_keystore(wallet_path)
    signing_key = _open_identity(sealed, identity_path, passphrase)
    try:
        secret = Account.decrypt(keystore.document, passphrase)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeyFileError(f"wrong passphrase for {wallet_path}") from None
        raise KeyFileError(f"{wallet_path} is not a valid keystore: {exc}") from None
    wallet: LocalAccount = Account.from_key(secret)
    if wallet.address[2:].lower() != keystore.address:
        raise KeyFileError(f"{wallet_path} was tampered with: its address is not its key's")
    return Identity(signing_key, wallet)


def public(identity_path: Path, wallet_path: Path) -> PublicKeys:
    """Returns the public key and wallet address written in clear in the key files.

    Raises:
        KeyFileError: a file is missing, readable by others or malformed.
    """
    data = _read_json(identity_path)
    public_key = _hex(data, "public_key", identity_path, 32)
    keystore = _read_json(wallet_path)
    address = str(keystore.get("address", "")).removeprefix("0x")
    try:
        raw = bytes.fromhex(address)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise KeyFileError(f"{wallet_path} has no valid address")
    return PublicKeys(public_key, raw)


def passphrase(file: Path | None = None, *, new: bool = False) -> str:
    """Returns the passphrase: from `file`, else from $WORKWORK_PASSPHRASE, else from the tty.

    A file holds the passphrase on its first line (a trailing newline is not part of it), and,
    like a key file, must not be accessible by the group or others. For a new key (`new`), the
    passphrase must have at least `MIN_PASSPHRASE` characters, and on the tty it is asked twice,
    so that a typo does not lock the keys away.

    Raises:
        KeyFileError: the file cannot be read, is accessible by others or has an empty first
            line; $WORKWORK_PASSPHRASE is set but empty; there is no source (no tty to ask on);
            the two entries differ; or a new passphrase is too short.
    """
    if file is not None:
        value = _read_passphrase(file)
    elif (env := os.environ.get(PASSPHRASE_ENV)) is not None:
        # Set to nothing is most likely a supervisor whose secret did not arrive. Asking on a
        # terminal instead would hang an unattended start, or pass for a wrong passphrase.
        if not env:
            raise KeyFileError(
                f"{PASSPHRASE_ENV} is set but empty; set it to the passphrase, or unset it to "
                "be asked on the terminal"
            )
        value = env
    else:
        return _ask(new=new)
    if new:
        _check_new(value)
    return value


def _read_passphrase(file: Path) -> str:
    raw = read_secret(file, kind="passphrase file")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise KeyFileError(f"passphrase file {file} is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise KeyFileError(f"passphrase file {file} is empty (the passphrase is its first line)")
    return lines[0]


def _ask(*, new: bool) -> str:
    if not sys.stdin.isatty():
        raise KeyFileError(
            f"no passphrase: pass --passphrase-file or set {PASSPHRASE_ENV} (there is no "
            "terminal to ask on)"
        )
    first = getpass.getpass("passphrase: ")
    if new:
        # Before it is asked again: typing a refused passphrase twice helps nobody.
        _check_new(first)
        if getpass.getpass("passphrase (again): ") != first:
            raise KeyFileError("the two passphrases differ")
    return first


def _check_new(passphrase: str) -> None:
    # Characters, not bytes, as a person counts them; the reason for the floor is at
    # MIN_PASSPHRASE.
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyFileError(
            f"a new passphrase needs at least {MIN_PASSPHRASE} characters: it is what protects "
            "the keys in any copy of the data dir"
        )


def _seal_identity(key: SigningKey, passphrase: str) -> bytes:
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, OPSLIMIT, MEMLIMIT))
    document = {
        "format": IDENTITY_FORMAT,
        "public_key": bytes(key.verify_key).hex(),
        "kdf": {"name": "argon2id", "opslimit": OPSLIMIT, "memlimit": MEMLIMIT, "salt": salt.hex()},
        "cipher": "xsalsa20-poly1305",
        "ciphertext": bytes(box.encrypt(bytes(key))).hex(),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _read_identity(path: Path) -> _Sealed:
    data = _read_json(path)
    if data.get("format") != IDENTITY_FORMAT:
        raise KeyFileError(f"{path} is not a {IDENTITY_FORMAT} file")
    kdf = data.get("kdf")
    if (
        not isinstance(kdf, dict)
        or kdf.get("name") != "argon2id"
        or data.get("cipher") != "xsalsa20-poly1305"
    ):
        raise KeyFileError(f"{path} names an unknown key derivation or cipher")
    opslimit, memlimit = kdf.get("opslimit"), kdf.get("memlimit")
    if not (_is_int(opslimit) and OPSLIMIT <= opslimit <= _MAX_OPSLIMIT):
        _out_of_bounds(path, "argon2id opslimit", opslimit, f"{OPSLIMIT} to {_MAX_OPSLIMIT}")
    if not (_is_int(memlimit) and MEMLIMIT <= memlimit <= _MAX_MEMLIMIT):
        _out_of_bounds(path, "argon2id memlimit", memlimit, f"{MEMLIMIT} to {_MAX_MEMLIMIT}")
    return _Sealed(
        public_key=_hex(data, "public_key", path, 32),
        salt=_hex(kdf, "salt", path, nacl.pwhash.argon2id.SALTBYTES),
        opslimit=opslimit,
        memlimit=memlimit,
        ciphertext=_hex(data, "ciphertext", path, None),
    )


def _open_identity(sealed: _Sealed, path: Path, passphrase: str) -> SigningKey:
    key = _derive(passphrase, sealed.salt, sealed.opslimit, sealed.memlimit)
    try:
        seed = nacl.secret.SecretBox(key).decrypt(sealed.ciphertext)
    except nacl.exceptions.CryptoError:
        # Poly1305 cannot tell a wrong key from a changed ciphertext; the passphrase is by
        # far the likelier cause.
        raise KeyFileError(f"wrong passphrase for {path} (or the file was tampered with)") from None
    if len(seed) != 32:
        raise KeyFileError(f"{path} holds a key of the wrong size")
    signing_key = SigningKey(seed)
    if bytes(signing_key.verify_key) != sealed.public_key:
        raise KeyFileError(f"{path} was tampered with: its public key is not its key's")
    return signing_key


def _read_keystore(path: Path) -> _Keystore:
    """Checks a v3 keystore whole, its scrypt parameters within bounds, before any derivation."""
    data = _read_json(path)
    version = data.get("version")
    if not (_is_int(version) and version == 3):
        raise KeyFileError(f"{path}: keystore version {version!r} is not 3 (Ethereum's v3)")
    # Some early keystores spell it "Crypto"; the keystore library reads either, as we do.
    crypto = data.get("crypto", data.get("Crypto"))
    if not isinstance(crypto, dict):
        raise KeyFileError(f"{path}: field 'crypto' is missing or malformed")
    kdf, cipher = crypto.get("kdf"), crypto.get("cipher")
    if kdf != "scrypt":
        raise KeyFileError(f"{path}: key derivation {kdf!r} is not accepted (only scrypt)")
    if cipher != "aes-128-ctr":
        raise KeyFileError(f"{path}: cipher {cipher!r} is not accepted (only aes-128-ctr)")
    params, cipherparams = crypto.get("kdfparams"), crypto.get("cipherparams")
    if not isinstance(params, dict):
        raise KeyFileError(f"{path}: field 'kdfparams' is missing or malformed")
    if not isinstance(cipherparams, dict):
        raise KeyFileError(f"{path}: field 'cipherparams' is missing or malformed")
    n, r, p, dklen = (params.get(name) for name in ("n", "r", "p", "dklen"))
    if not (_is_int(n) and SCRYPT_N <= n <= _MAX_SCRYPT_N and n & (n - 1) == 0):
        _out_of_bounds(path, "scrypt n", n, f"a power of two from {SCRYPT_N} to {_MAX_SCRYPT_N}")
    if not (_is_int(r) and 1 <= r <= _MAX_SCRYPT_R):
        _out_of_bounds(path, "scrypt r", r, f"1 to {_MAX_SCRYPT_R}")
    if not (_is_int(p) and 1 <= p <= _MAX_SCRYPT_P):
        _out_of_bounds(path, "scrypt p", p, f"1 to {_MAX_SCRYPT_P}")
    if n * r * p > _MAX_SCRYPT_WORK:
        _out_of_bounds(path, "scrypt n*r*p", n * r * p, f"at most {_MAX_SCRYPT_WORK}")
    if not (_is_int(dklen) and dklen == SCRYPT_DKLEN):
        _out_of_bounds(path, "scrypt dklen", dklen, f"exactly {SCRYPT_DKLEN}")
    salt = _hex(params, "salt", path, None)
    iv = _hex(cipherparams, "iv", path, 16)
    ciphertext = _hex(crypto, "ciphertext", path, 32)
    mac = _hex(crypto, "mac", path, 32)
    document = {
        "version": 3,
        "crypto": {
            "kdf": "scrypt",
            "kdfparams": {"n": n, "r": r, "p": p, "dklen": dklen, "salt": salt.hex()},
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "mac": mac.hex(),
        },
    }
    address = str(data.get("address", "")).lower().removeprefix("0x")
    return _Keystore(address, document)


def _is_int(value: object) -> TypeGuard[int]:
    # JSON's true is a Python bool, which is an int; 16384.0 compares equal to 16384. Neither
    # is what a keystore writer puts there.
    return type(value) is int


def _out_of_bounds(path: Path, name: str, value: object, allowed: str) -> NoReturn:
    raise KeyFileError(f"{path}: {name} = {value!r} is out of bounds ({allowed})")


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    key: bytes = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode(),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )
    return key


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise KeyFileError(f"{path} does not exist; run 'workwork init' first")
    try:
        data = json.loads(read_secret(path))
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: brackets nested deeper than the parser goes, which no key file has.
        raise KeyFileError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise KeyFileError(f"{path} is not a key file (not a JSON object)")
    return data


def _hex(data: dict[str, Any], name: str, path: Path, size: int | None) -> bytes:
    value = data.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        raise KeyFileError(f"{path}: field {name!r} is missing or malformed")
    return raw
