"""The WorkWork protocol core: records, their canonical encoding and signatures, validation
rules, Merkle trees and proofs, and settlement arithmetic.

No I/O happens here: no sockets, no database, no chain, no clock. Functions take bytes and values
(and `now`, where time matters) and return values or raise a `ProtocolError`.

Modules: `records` (the kinds), `envelope` (bytes, signatures, ids), `validate` (rules),
`topics` (gossip topics), `merkle` (OpenZeppelin-compatible trees and proofs), `epoch` (an
epoch's tree from records), `settlement` (the contract's pro-rata arithmetic), `tally`
(voting power and the result of a proposal).
"""

from protocol.envelope import (
    MAX_RECORD_SIZE,
    SIGNING_DOMAIN,
    Record,
    decode,
    decode_body,
    encode_body,
    sign,
)
from protocol.errors import (
    BadDecision,
    BadSignature,
    DecodeError,
    EmptyTree,
    FromTheFuture,
    InvalidField,
    InvalidLeaf,
    InvalidManifest,
    InvalidProof,
    InvalidRecord,
    MissingRecord,
    NonCanonical,
    NotAuthorized,
    OutsideWindow,
    ProjectClosed,
    ProtocolError,
    RecordTooLarge,
    ReferenceMismatch,
    SettlementError,
    UnknownKind,
    UnknownLeaf,
)
from protocol.fields import keyset, tagset
from protocol.records import (
    FORMAT_VERSION,
    KINDS,
    Acceptance,
    Body,
    Contribution,
    Decision,
    EpochRoot,
    Manifest,
    Profile,
    Project,
    Proposal,
    Vote,
    project_id,
)

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "MAX_RECORD_SIZE",
    "SIGNING_DOMAIN",
    "Acceptance",
    "BadDecision",
    "BadSignature",
    "Body",
    "Contribution",
    "Decision",
    "DecodeError",
    "EmptyTree",
    "EpochRoot",
    "FromTheFuture",
    "InvalidField",
    "InvalidLeaf",
    "InvalidManifest",
    "InvalidProof",
    "InvalidRecord",
    "Manifest",
    "MissingRecord",
    "NonCanonical",
    "NotAuthorized",
    "OutsideWindow",
    "Profile",
    "Project",
    "ProjectClosed",
    "Proposal",
    "ProtocolError",
    "Record",
    "RecordTooLarge",
    "ReferenceMismatch",
    "SettlementError",
    "UnknownKind",
    "UnknownLeaf",
    "Vote",
    "decode",
    "decode_body",
    "encode_body",
    "keyset",
    "project_id",
    "sign",
    "tagset",
]
