"""Node state kept next to the records: known peers, anchoring intents, the config version.

py-libp2p's own LevelDB peerstore is broken, so the node keeps the peers it knows here. The
anchoring service writes an intent before it sends a transaction and deletes it once the anchor
is confirmed, so a crash between the two is found on restart; intents are therefore always
written with sync, whatever the store's setting. Values are opaque bytes: their encoding
belongs to the node code that owns them.

State reaches the database only through `Tables`, which its store provides: writes under the
store's lock, reads, and pages of a key range.
"""

from __future__ import annotations

from typing import Protocol

from storage import keys
from storage.values import Page

MAX_KEY = 512


class Tables(Protocol):
    """What `State` needs of the store it belongs to: keys and values of its database.

    Every method raises `StorageError` for what LevelDB or the system refuses, and
    `StoreClosed` once the store is closed.
    """

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        """Writes one key, under the store's lock; flushed to the disk if `sync` is true or
        the store flushes every write."""

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        """Deletes one key (a missing key is no error), as `put` writes one."""

    def get(self, key: bytes) -> bytes | None:
        """Returns the value of a key, or None."""

    def scan(
        self, prefix: bytes, cursor: bytes | None, limit: int
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """Returns a page of up to `limit` (key, value) pairs under `prefix`, as the store's
        queries page, and the cursor of the next page (None after the last).

        Raises:
            ValueError: `limit` is outside [1, 1000].
            BadCursor: `cursor` is not one this scan returned.
        """


def _check_key(what: str, key: bytes) -> None:
    if not 0 < len(key) <= MAX_KEY:
        raise ValueError(f"{what} must be 1 to {MAX_KEY} bytes, got {len(key)}")


class State:
    """The node-state tables of a store; reach it as `store.state`."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    # Peers.

    def put_peer(self, peer_id: str, info: bytes) -> None:
        """Remembers a peer (a libp2p peer id) and what the node knows of it."""
        key = keys.peer(peer_id)
        _check_key("a peer id", key[2:])
        self._tables.put(key, bytes(info))

    def peer(self, peer_id: str) -> bytes | None:
        """Returns what is known of a peer, or None."""
        return self._tables.get(keys.peer(peer_id))

    def peers(self, *, cursor: bytes | None = None, limit: int = 100) -> Page[tuple[str, bytes]]:
        """Returns known peers as (peer id, info), in peer id order."""
        entries, next_cursor = self._tables.scan(keys.PEER, cursor, limit)
        return Page(tuple((k[2:].decode(), v) for k, v in entries), next_cursor)

    def remove_peer(self, peer_id: str) -> None:
        """Forgets a peer; forgetting an unknown peer does nothing."""
        self._tables.delete(keys.peer(peer_id))

    # Anchoring intents.

    def put_intent(self, key: bytes, value: bytes) -> None:
        """Records an anchoring intent durably (synced to disk) before it is acted on."""
        _check_key("an intent key", key)
        self._tables.put(keys.intent(key), bytes(value), sync=True)

    def intent(self, key: bytes) -> bytes | None:
        """Returns the intent stored under `key`, or None."""
        return self._tables.get(keys.intent(key))

    def intents(
        self, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[tuple[bytes, bytes]]:
        """Returns the intents as (key, value), in key order."""
        entries, next_cursor = self._tables.scan(keys.INTENT, cursor, limit)
        return Page(tuple((k[2:], v) for k, v in entries), next_cursor)

    def delete_intent(self, key: bytes) -> None:
        """Deletes an intent durably; deleting a missing one does nothing."""
        self._tables.delete(keys.intent(key), sync=True)

    # Config version.

    def config_version(self) -> int | None:
        """Returns the version of the config this store was last run with, or None."""
        value = self._tables.get(keys.CONFIG_KEY)
        return None if value is None else keys.read_u64(value)

    def set_config_version(self, version: int) -> None:
        """Records the config version (a non-negative integer below 2**64)."""
        if not 0 <= version < 2**64:
            raise ValueError(f"config version {version} is outside [0, 2**64)")
        self._tables.put(keys.CONFIG_KEY, keys.u64(version), sync=True)
