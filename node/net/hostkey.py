"""The persistent libp2p host key, so that a node's peer id survives restarts.

Bootstrap nodes are found by their peer id, so it must not change. The file holds the 32-byte
Ed25519 seed with a short header, mode 0600. It is not encrypted: it only authenticates the
transport (as kubo's and lighthouse's node keys do), the node must restart unattended, and the
key that signs records and so moves money is a different one, kept encrypted.
"""

from __future__ import annotations

from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from node.errors import KeyFileError
from node.files import read_secret, write_secret

HEADER = b"workwork-host-key/1\n"
FILENAME = "host.key"


def load_or_create(path: Path) -> KeyPair:
    """Returns the host key stored at `path`, creating one there if there is none.

    Raises:
        KeyFileError: the file exists but is unreadable, readable by others or malformed.
    """
    if not path.exists():
        pair = create_new_key_pair()
        write_secret(path, HEADER + pair.private_key.to_bytes())
        return pair
    data = read_secret(path)
    if not data.startswith(HEADER) or len(data) != len(HEADER) + 32:
        raise KeyFileError(f"{path} is not a WorkWork host key file")
    return create_new_key_pair(data[len(HEADER) :])


def peer_id(pair: KeyPair) -> ID:
    return ID.from_pubkey(pair.public_key)
