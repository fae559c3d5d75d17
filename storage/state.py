"""Node state kept next to the records: known peers, anchoring intents, the config version.

py-libp2p's own LevelDB peerstore is broken, so the node keeps the peers it knows here. The
anchoring service writes an intent before it sends a transaction and deletes it once the anchor
is confirmed, so a crash between the two is found on restart; intents are therefore always
written with sync, whatever the store's setting. Values are opaque bytes: their encoding
belongs to the node code that owns them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage import keys
from storage.errors import translate
from storage.values import Page

if TYPE_CHECKING:
    from storage.store import Store

MAX_KEY = 512


def _check_key(what: str, key: bytes) -> None:
    if not 0 < len(key) <= MAX_KEY:
        raise ValueError(f"{what} must be 1 to {MAX_KEY} bytes, got {len(key)}")


class State:
    """The node-state tables of a store; reach it as `store.state`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _put(self, key: bytes, value: bytes, *, sync: bool) -> None:
        store = self._store
        with store._lock, translate(store.path, "writing to"):
            store._db.put(key, value, sync=sync)

    def _delete(self, key: bytes, *, sync: bool) -> None:
        store = self._store
        with store._lock, translate(store.path, "writing to"):
            store._db.delete(key, sync=sync)

    def _get(self, key: bytes) -> bytes | None:
        store = self._store
        with translate(store.path, "reading"):
            value: bytes | None = store._db.get(key)
        return value

    # Peers.

    def put_peer(self, peer_id: str, info: bytes) -> None:
        """Remembers a peer (a libp2p peer id) and what the node knows of it."""
        key = keys.peer(peer_id)
        _check_key("a peer id", key[2:])
        self._put(key, bytes(info), sync=self._store.sync)

    def peer(self, peer_id: str) -> bytes | None:
        """Returns what is known of a peer, or None."""
        return self._get(keys.peer(peer_id))

    def peers(self, *, cursor: bytes | None = None, limit: int = 100) -> Page[tuple[str, bytes]]:
        """Returns known peers as (peer id, info), in peer id order."""
        entries, next_cursor = self._store._scan(keys.PEER, cursor, limit)
        return Page(tuple((k[2:].decode(), v) for k, v in entries), next_cursor)

    def remove_peer(self, peer_id: str) -> None:
        """Forgets a peer; forgetting an unknown peer does nothing."""
        self._delete(keys.peer(peer_id), sync=self._store.sync)

    # Anchoring intents.

    def put_intent(self, key: bytes, value: bytes) -> None:
        """Records an anchoring intent durably (synced to disk) before it is acted on."""
        _check_key("an intent key", key)
        self._put(keys.intent(key), bytes(value), sync=True)

    def intent(self, key: bytes) -> bytes | None:
        """Returns the intent stored under `key`, or None."""
        return self._get(keys.intent(key))

    def intents(
        self, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[tuple[bytes, bytes]]:
        """Returns the intents as (key, value), in key order."""
        entries, next_cursor = self._store._scan(keys.INTENT, cursor, limit)
        return Page(tuple((k[2:], v) for k, v in entries), next_cursor)

    def delete_intent(self, key: bytes) -> None:
        """Deletes an intent durably; deleting a missing one does nothing."""
        self._delete(keys.intent(key), sync=True)

    # Config version.

    def config_version(self) -> int | None:
        """Returns the version of the config this store was last run with, or None."""
        value = self._get(keys.CONFIG_KEY)
        return None if value is None else keys.read_u64(value)

    def set_config_version(self, version: int) -> None:
        """Records the config version (a non-negative integer below 2**64)."""
        if not 0 <= version < 2**64:
            raise ValueError(f"config version {version} is outside [0, 2**64)")
        self._put(keys.CONFIG_KEY, keys.u64(version), sync=True)
