"""The error family of the protocol layer.

Everything `protocol` raises on bad input derives from `ProtocolError`, so a caller that handles
untrusted bytes (a gossip validator, the sync server, an importer) catches exactly one class and
lets every other exception, which would mean a bug, propagate.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Raised when bytes, a record or a proof breaks a rule of the protocol."""


# Decoding: the bytes are not a well-formed, canonical record.


class DecodeError(ProtocolError):
    """Raised when bytes are not a well-formed msgpack value of the expected shape."""


class NonCanonical(DecodeError):
    """Raised when bytes decode but are not the one canonical encoding of their value."""


class RecordTooLarge(DecodeError):
    """Raised when an encoded record is over the size limit."""


class UnknownKind(DecodeError):
    """Raised when a record names a kind or format version this code does not know."""


class InvalidField(ProtocolError):
    """Raised when a field is missing, extra, of the wrong type or out of its bounds."""

    def __init__(self, kind: str, field: str, reason: str) -> None:
        super().__init__(f"{kind}.{field}: {reason}")
        self.kind = kind
        self.field = field
        self.reason = reason


class BadSignature(ProtocolError):
    """Raised when a record's signature does not verify against its author key."""


# Validation: a well-formed record that the rules do not admit.


class InvalidRecord(ProtocolError):
    """Raised when a well-formed, signed record breaks a validation rule."""


class FromTheFuture(InvalidRecord):
    """Raised when a record's timestamp is further ahead of `now` than the allowed skew."""


class NotAuthorized(InvalidRecord):
    """Raised when the author of a record may not sign records of that kind for that subject."""


class ReferenceMismatch(InvalidRecord):
    """Raised when a record refers to another record that does not fit it (wrong kind or project)."""


class ProjectClosed(InvalidRecord):
    """Raised when a contribution arrives for a project that was closed before it was made."""


class InvalidManifest(InvalidRecord):
    """Raised when a manifest part or an epoch root does not fit the records it names, or the
    acceptances a manifest lists cannot make a tree (another epoch, weight 0, one contribution
    twice)."""


# Merkle trees and settlement.


class OutsideWindow(InvalidRecord):
    """Raised when a vote is dated outside its proposal's voting window."""


class BadDecision(InvalidRecord):
    """Raised when a decision's figures do not follow from the ballots it lists, or it is
    dated before its proposal's window closed."""


class InvalidProof(ProtocolError):
    """Raised when a Merkle proof, multiproof or tree dump is malformed or inconsistent."""


class InvalidLeaf(ProtocolError):
    """Raised when a leaf field is out of its ABI type's range, or a leaf appears twice."""


class EmptyTree(ProtocolError):
    """Raised when a tree is built from no leaves."""


class UnknownLeaf(ProtocolError, LookupError):
    """Raised when a contribution id or leaf index is not in the tree."""


class MissingRecord(ProtocolError):
    """Raised when a rule needs a record that is not among the records given."""


class SettlementError(ProtocolError):
    """Raised when settlement amounts are out of uint256 range or inconsistent with each other."""


# Network messages.


class WireError(DecodeError):
    """Raised when a gossip batch or sync message is malformed, non-canonical or too large."""


class InvalidSyncMessage(ProtocolError):
    """Raised when a reconciliation message is malformed, non-canonical or over its limits."""


class SyncMessageTooLarge(InvalidSyncMessage):
    """Raised when a reconciliation message is longer than the receiver's frame limit."""


class UnsupportedSyncVersion(InvalidSyncMessage):
    """Raised when a reconciliation message is of a protocol version this code does not speak."""
