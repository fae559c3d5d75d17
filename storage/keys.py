"""The key schema of the store: every LevelDB key the store writes, and how it is built.

A key is a one-byte table prefix followed by fixed-width fields, so that the byte order of keys
is the order a query wants: integers are big-endian and unsigned (created_at 8 bytes, epoch 4,
revision 8, sequence numbers 8), ids, keys and project ids are 32 bytes. Only the topic name,
the node-state keys and the meta names are variable; a topic name is ASCII ended by a 0 byte,
which sorts before any character, so "work/1" and "work/10" never share a prefix.

    table  key                                            value
    \\x00   \\x00 name                                       meta: "schema" -> u32 schema version,
                                                          "config" -> u64 config version,
                                                          "count:" + topic -> u64 records in topic,
                                                          "seen" -> id filter saved by a clean
                                                          close (storage.seen)
    R      R id                                           the record's envelope bytes
    T      T topic \\x00 created_at id                     empty: the topic's records, sync order
    L      L slot subject                                 id + u64 revision of the record in force
    C      C project_id created_at id                     empty: contributions by project
    B      B author created_at id                         empty: contributions by contributor
    E      E project_id epoch contribution_id             acceptance id: acceptances in force
    A      A contribution_id revision id                  author key: every stored acceptance
    V      V project_id key                               empty: keys some stored revision of
                                                          the project names as reviewers
    G      G project_id author contribution_id            empty: contributions that someone
                                                          other than the owner has accepted
    X      X project_id epoch id                          empty: epoch roots
    K      K contribution_id epoch acceptance_id          empty: acceptances that the manifest
                                                          of a stored epoch root lists
    P      P project_id created_at id                     empty: proposals by project
    U      U proposal_id author revision id               empty: every stored vote
    D      D proposal_id created_at id                    empty: decisions of a proposal
    O      O id                                           envelope bytes of an orphan
    Q      Q seq id                                       u32 size: orphans in arrival order
    W      W ref key id                                   empty: orphan `id` waits for (ref, key)
    S      S p peer_id | S i key                          node state: known peers, anchoring intents

`slot` is one byte naming what a revisable record is about (`protocol.validate.slot`): f for a
profile (subject = author key), p for a project (subject = project id), a for an acceptance
(subject = contribution id). L therefore also lists the projects and profiles in force. The
acceptance in force of a contribution is the highest (revision, id) among its stored
acceptances (A) whose author the project revision in force authorizes (owner or reviewer:
`protocol.validate.latest_authorized`); a contribution none of whose acceptances is authorized
has no L entry. E holds only the acceptance in force of each contribution, and only while its
weight is above 0 (a weight of 0 withdraws an acceptance, and Merkle trees leave such leaves
out). V is what the storage rule reads (an acceptance is stored if its author is the owner or
named by any stored revision); G finds the contributions whose acceptance in force a change of
reviewers may change (author = the acceptance's signer, never the owner). K says which acceptance of a
contribution an anchored epoch pays: its entries are written with the epoch root, from the
manifest the root names (which is stored before it, with every acceptance it lists). `ref` is one
byte naming a dependency (`protocol.validate.Ref`): p for a project (key = project id), c for a
contribution, m for a manifest part, a for a listed acceptance, r for a vote's (or a
decision's) proposal, v for a vote a decision counts (key = record id). Votes have no L entry: which vote of an author counts is decided when a proposal is
tallied (`protocol.tally`), from all of them (the U entries of the proposal). Records (R) and
every index but the orphan tables are only ever added to, except E and L entries, which follow
the record in force (and so also change when the project revision in force changes its
reviewers).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from protocol.validate import Ref

# Bumped whenever the meaning of a stored key or value changes; a store of another version is
# refused rather than read wrongly (there are no migrations yet).
# Version 3: the K table, manifest records and their dependencies (m and a refs).
SCHEMA_VERSION = 3

META = b"\x00"
RECORD = b"R"
TOPIC = b"T"
LATEST = b"L"
CONTRIBUTIONS = b"C"
BY_AUTHOR = b"B"
ACCEPTED = b"E"
ACCEPTANCES = b"A"
REVIEWERS = b"V"
REVIEWED = b"G"
ROOTS = b"X"
COMMITTED = b"K"
PROPOSALS = b"P"
VOTES = b"U"
DECISIONS = b"D"
ORPHAN = b"O"
ARRIVAL = b"Q"
WAITING = b"W"
STATE = b"S"

SCHEMA_KEY = META + b"schema"
CONFIG_KEY = META + b"config"
SEEN_KEY = META + b"seen"
COUNT_PREFIX = META + b"count:"

SLOTS = {"profile": b"f", "project": b"p", "acceptance": b"a"}
SLOT_NAMES = {code: name for name, code in SLOTS.items()}
REFS = {
    "project": b"p",
    "contribution": b"c",
    "manifest": b"m",
    "acceptance": b"a",
    "proposal": b"r",
    "vote": b"v",
}
# The kinds of dependency that name a record by its id (all but a project).
RECORD_REFS = ("contribution", "manifest", "acceptance", "proposal", "vote")
REF_NAMES = {code: name for name, code in REFS.items()}

PEER = STATE + b"p"
INTENT = STATE + b"i"

ID_SIZE = 32

_u64 = struct.Struct(">Q")
_u32 = struct.Struct(">I")


# The packers themselves, not functions that call them: ingest packs a u64 for every record.
u64: Callable[[int], bytes] = _u64.pack
u32: Callable[[int], bytes] = _u32.pack


def read_u64(data: bytes, offset: int = 0) -> int:
    value: int = _u64.unpack_from(data, offset)[0]
    return value


def read_u32(data: bytes, offset: int = 0) -> int:
    value: int = _u32.unpack_from(data, offset)[0]
    return value


def record(rid: bytes) -> bytes:
    return RECORD + rid


def topic_prefix(name: str) -> bytes:
    return TOPIC + name.encode("ascii") + b"\x00"


def count(name: str) -> bytes:
    return COUNT_PREFIX + name.encode("ascii")


def latest(slot: str, subject: bytes) -> bytes:
    return LATEST + SLOTS[slot] + subject


def latest_value(rid: bytes, revision: int) -> bytes:
    return rid + _u64.pack(revision)


def read_latest(value: bytes) -> tuple[bytes, int]:
    """Returns (record id, revision) of an L value."""
    return value[:ID_SIZE], read_u64(value, ID_SIZE)


def contribution(project_id: bytes, created_at: int, rid: bytes) -> bytes:
    return CONTRIBUTIONS + project_id + _u64.pack(created_at) + rid


def by_author(author: bytes, created_at: int, rid: bytes) -> bytes:
    return BY_AUTHOR + author + _u64.pack(created_at) + rid


def accepted_prefix(project_id: bytes, epoch: int) -> bytes:
    return ACCEPTED + project_id + _u32.pack(epoch)


def acceptance(contribution_id: bytes, revision: int, rid: bytes) -> bytes:
    return ACCEPTANCES + contribution_id + _u64.pack(revision) + rid


def read_acceptance(key: bytes) -> tuple[int, bytes]:
    """Returns (revision, record id) of an A key."""
    return read_u64(key, 1 + ID_SIZE), key[1 + ID_SIZE + 8 :]


def reviewer(project_id: bytes, key: bytes) -> bytes:
    return REVIEWERS + project_id + key


def reviewed(project_id: bytes, author: bytes, contribution_id: bytes) -> bytes:
    return REVIEWED + project_id + author + contribution_id


def root(project_id: bytes, epoch: int, rid: bytes) -> bytes:
    return ROOTS + project_id + _u32.pack(epoch) + rid


def committed(contribution_id: bytes, epoch: int, acceptance_id: bytes) -> bytes:
    return COMMITTED + contribution_id + _u32.pack(epoch) + acceptance_id


def read_committed(key: bytes) -> tuple[bytes, int, bytes]:
    """Returns (contribution id, epoch, acceptance id) of a K key."""
    return key[1 : 1 + ID_SIZE], read_u32(key, 1 + ID_SIZE), key[1 + ID_SIZE + 4 :]


def proposal(project_id: bytes, created_at: int, rid: bytes) -> bytes:
    return PROPOSALS + project_id + _u64.pack(created_at) + rid


def vote(proposal_id: bytes, author: bytes, revision: int, rid: bytes) -> bytes:
    return VOTES + proposal_id + author + _u64.pack(revision) + rid


def decision(proposal_id: bytes, created_at: int, rid: bytes) -> bytes:
    return DECISIONS + proposal_id + _u64.pack(created_at) + rid


def orphan(rid: bytes) -> bytes:
    return ORPHAN + rid


def arrival(seq: int, rid: bytes) -> bytes:
    return ARRIVAL + _u64.pack(seq) + rid


def waiting(ref: Ref, rid: bytes) -> bytes:
    return WAITING + REFS[ref.kind] + ref.key + rid


def ref_of(key: bytes) -> tuple[Ref, bytes]:
    """Returns (ref, orphan id) of a W key."""
    kind = REF_NAMES[key[1:2]]
    return Ref(kind, key[2 : 2 + ID_SIZE]), key[2 + ID_SIZE :]


def peer(peer_id: str) -> bytes:
    return PEER + peer_id.encode()


def intent(key: bytes) -> bytes:
    return INTENT + key


def upper_bound(prefix: bytes) -> bytes | None:
    """Returns the smallest key greater than every key that starts with `prefix`.

    None means there is none (a prefix of only 0xff bytes): iterate to the end.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
