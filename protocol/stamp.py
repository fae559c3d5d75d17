"""Key stamps: proof of work on an identity key, so that a new identity is not free.

A key's work is the number of leading zero bits of sha256(STAMP_DOMAIN + public key). Making a
key with `difficulty` bits of work takes about 2**difficulty key generations (`mint`); checking
one takes a hash (`work`). The network's difficulty is a parameter of the node's configuration
(`key_difficulty`); nodes give the records of keys with no accepted work and too little work a
much smaller share than those of stamped keys (node/net/core/authors.py). No record changes:
the stamp is the key itself, so every record ever signed stays valid, and a key minted once
serves every record it signs.

Why on the key and not on each record, as Nostr's NIP-13 does on event ids: rations are per
key, so what a flood of fresh keys must pay for is each key, and a key-level stamp charges
exactly that, once, without a nonce field in every record (no format change, no re-encoding of
old records, nothing for an independent encoder to learn).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from nacl.bindings import crypto_sign_seed_keypair
from nacl.signing import SigningKey

STAMP_DOMAIN = b"workwork/key-stamp/v1\x00"
MAX_DIFFICULTY = 32


def work(public_key: bytes) -> int:
    """The leading zero bits of sha256(STAMP_DOMAIN + public_key): the key's proof of work."""
    digest = int.from_bytes(hashlib.sha256(STAMP_DOMAIN + public_key).digest(), "big")
    return 256 - digest.bit_length()


def mint(difficulty: int, *, seed: Callable[[], bytes] = lambda: os.urandom(32)) -> SigningKey:
    """Makes a new signing key with at least `difficulty` bits of work (0: any key).

    Seeds are a random base seed's successive hashes, so the grind costs one key derivation and
    two hashes per try.

    Raises:
        ValueError: `difficulty` is outside [0, MAX_DIFFICULTY].
    """
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty {difficulty} is outside [0, {MAX_DIFFICULTY}]")
    base = seed()
    counter = 0
    while True:
        candidate = hashlib.sha256(base + counter.to_bytes(8, "big")).digest()
        public, _ = crypto_sign_seed_keypair(candidate)
        if work(public) >= difficulty:
            return SigningKey(candidate)
        counter += 1
