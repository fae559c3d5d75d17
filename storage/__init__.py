"""The LevelDB record store: key schema, indexes, atomic ingest, queries and node state.

`Store.open(path)` opens (or creates) a store; `Store.ingest` validates and stores records with
their index entries in one write; the query methods return frozen records and `Page`s;
`store.state` keeps the node's peers, anchoring intents and config version. The key schema is
documented in `storage.keys` and docs/STORAGE.md.
"""

from storage.errors import (
    BadCursor,
    NotAStore,
    StorageError,
    StoreClosed,
    StoreInUse,
    VersionMismatch,
)
from storage.keys import SCHEMA_VERSION
from storage.state import State
from storage.store import MAX_ORPHAN_BYTES, MAX_ORPHANS, Store
from storage.values import IngestResult, Page

__all__ = [
    "MAX_ORPHANS",
    "MAX_ORPHAN_BYTES",
    "SCHEMA_VERSION",
    "BadCursor",
    "IngestResult",
    "NotAStore",
    "Page",
    "State",
    "StorageError",
    "Store",
    "StoreClosed",
    "StoreInUse",
    "VersionMismatch",
]
