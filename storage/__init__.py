"""The LevelDB record store: key schema, indexes, atomic ingest, queries and node state."""
