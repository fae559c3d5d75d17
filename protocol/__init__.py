"""The WorkWork protocol core: records, their canonical encoding and signatures, validation
rules, Merkle trees and proofs, and settlement arithmetic.

No I/O happens here: no sockets, no database, no chain, no clock. Functions take bytes and values
(and `now`, where time matters) and return values or raise a `ProtocolError`.
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
    BadSignature,
    DecodeError,
    FromTheFuture,
    InvalidField,
    InvalidProof,
    InvalidRecord,
    NonCanonical,
    NotAuthorized,
    ProjectClosed,
    ProtocolError,
    RecordTooLarge,
    ReferenceMismatch,
    UnknownKind,
)
from protocol.fields import keyset, tagset
from protocol.records import (
    FORMAT_VERSION,
    KINDS,
    Acceptance,
    Body,
    Contribution,
    EpochRoot,
    Profile,
    Project,
    project_id,
)

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "MAX_RECORD_SIZE",
    "SIGNING_DOMAIN",
    "Acceptance",
    "BadSignature",
    "Body",
    "Contribution",
    "DecodeError",
    "EpochRoot",
    "FromTheFuture",
    "InvalidField",
    "InvalidProof",
    "InvalidRecord",
    "NonCanonical",
    "NotAuthorized",
    "Profile",
    "Project",
    "ProjectClosed",
    "ProtocolError",
    "Record",
    "RecordTooLarge",
    "ReferenceMismatch",
    "UnknownKind",
    "decode",
    "decode_body",
    "encode_body",
    "keyset",
    "project_id",
    "sign",
    "tagset",
]
