"""The error family of the node: configuration, keys, network and chain.

Errors of the lower layers (`protocol.ProtocolError`, `storage.StorageError`) are translated into
these where they cross into the node's own operations, `raise ... from` the original.
"""

from __future__ import annotations


class NodeError(Exception):
    """Raised when the node cannot do what it was asked."""


class ConfigError(NodeError):
    """Raised when configuration (a file, a flag, an address) is invalid."""


class KeyFileError(NodeError):
    """Raised when a key file is missing, unreadable, malformed or readable by others."""


class NetworkError(NodeError):
    """Raised when a peer cannot be reached or a network exchange fails."""


class SyncError(NetworkError):
    """Raised when a sync exchange with a peer fails or the peer answers out of protocol."""
