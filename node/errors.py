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


class ChainError(NodeError):
    """Raised when the chain cannot be reached, refuses a transaction, or disagrees with us."""


class ChainUnavailable(ChainError):
    """Raised when the chain's endpoint does not answer (after the retries it was given)."""


class TransactionReverted(ChainError):
    """Raised when the contract refuses a call; `reason` names the contract's custom error."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action} was refused by the contract: {reason}")
        self.action = action
        self.reason = reason


class ApiError(NodeError):
    """Raised by the API client when the daemon answers with an error, or cannot be reached."""
