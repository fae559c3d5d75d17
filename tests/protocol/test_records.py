"""Records: known-answer vectors, construction rules and strict decoding."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack
import pytest
from nacl.signing import SigningKey

from protocol import (
    FORMAT_VERSION,
    KINDS,
    MAX_RECORD_SIZE,
    SIGNING_DOMAIN,
    BadSignature,
    DecodeError,
    InvalidField,
    NonCanonical,
    Profile,
    Project,
    ProtocolError,
    RecordTooLarge,
    UnknownKind,
    decode,
    decode_body,
    encode_body,
    keyset,
    project_id,
    sign,
    tagset,
)
from protocol.records import MAX_ABOUT
from tests.support import factories as f

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests/vectors/records.json").read_text())


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def field_value(entry: list[Any]) -> Any:
    _, kind, value = entry
    return {
        "int": lambda v: v,
        "str": lambda v: v,
        "bin": bytes.fromhex,
        "str[]": tuple,
        "bin[]": lambda v: tuple(bytes.fromhex(x) for x in v),
        "int[]": tuple,
        # A proposal's parameters: each item typed.
        "arr": lambda v: tuple(field_value([None, *item]) for item in v),
    }[kind](value)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_vector_decodes_to_its_fields(case: dict[str, Any]) -> None:
    record = decode(bytes.fromhex(case["envelope"]))
    assert record.kind == case["kind"]
    assert record.author.hex() == case["author"]
    assert record.signature.hex() == case["signature"]
    assert record.id.hex() == case["id"]
    assert record.body.wire() == tuple(field_value(e) for e in case["fields"])


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_vector_encodes_to_its_bytes(case: dict[str, Any]) -> None:
    body = KINDS[case["kind"]](*(field_value(e) for e in case["fields"]))
    record = sign(body, SigningKey(bytes.fromhex(case["seed"])))
    assert encode_body(body).hex() == case["body"]
    assert record.raw.hex() == case["envelope"]
    assert record.id.hex() == case["id"]


def test_signing_domain_is_the_documented_one() -> None:
    assert bytes.fromhex(VECTORS["signing_domain"]) == SIGNING_DOMAIN == b"workwork/record/v1\x00"


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules/@noble/ed25519").exists(),
    reason="needs node and the npm dev packages (scripts/setup installs them)",
)
def test_vectors_match_javascript_encoder() -> None:
    # An independent encoder (msgpack and Ed25519 by other authors) must give the same bytes.
    out = subprocess.run(
        ["node", "scripts/vectors/records.mjs"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    derived = json.loads(out.stdout)
    assert set(derived) == {c["name"] for c in VECTORS["cases"]}
    for case in VECTORS["cases"]:
        for name in ("author", "body", "signature", "envelope", "id"):
            assert derived[case["name"]][name] == case[name], (case["name"], name)
        # The ids an epoch root and its manifest parts name are those the encoder derived.
        expected = {
            field: case.get("links", {}).get(field) for field in derived[case["name"]]["links"]
        }
        assert derived[case["name"]]["links"] == expected, case["name"]
    linked = {c["name"]: c.get("links", {}) for c in VECTORS["cases"]}
    assert linked["epoch-root"] == {"manifest": "manifest-part-0"}
    assert linked["manifest-part-0"] == {"next": "manifest-part-1"}
    assert linked["vote-yes"] == {"proposal_id": "proposal-allocate"}
    assert linked["vote-approve-revised"] == {"proposal_id": "proposal-options"}
    assert linked["decision-passed"] == {
        "proposal_id": "proposal-allocate",
        "ballots": ["vote-yes"],
    }


def test_vectors_cover_every_kind_and_action() -> None:
    kinds = {c["kind"] for c in VECTORS["cases"]}
    assert kinds == set(KINDS)
    actions = {
        dict((f[0], f[2]) for f in c["fields"])["action"]
        for c in VECTORS["cases"]
        if c["kind"] == "proposal"
    }
    assert actions == {"allocate", "settings", "signal"}


def test_vectors_are_of_this_format_version() -> None:
    assert VECTORS["format_version"] == FORMAT_VERSION == 2
    for case in VECTORS["cases"]:
        body = msgpack.unpackb(bytes.fromhex(case["body"]))
        assert body[0] == FORMAT_VERSION


def test_project_id_is_stable_across_revisions_and_bound_to_owner() -> None:
    first = f.project(revision=0, title="One")
    second = f.project(revision=1, title="Two", status="closed")
    assert first.id != second.id
    assert project_id(first.author, "docs") == project_id(second.author, "docs") == f.pid()
    assert f.pid("mallory", "docs") != f.pid("alice", "docs")


def test_tagset_and_keyset_make_canonical_sets() -> None:
    assert tagset(["Rust", " python", "rust", ""]) == ("python", "rust")
    assert keyset([b"\x02" * 32, b"\x01" * 32, b"\x02" * 32]) == (b"\x01" * 32, b"\x02" * 32)


BAD_FIELDS: list[tuple[str, Any, dict[str, Any]]] = [
    ("profile", f.profile, {"created_at": 1}),
    ("profile", f.profile, {"created_at": True}),
    ("profile", f.profile, {"revision": -1}),
    ("profile", f.profile, {"revision": 1.0}),
    ("profile", f.profile, {"name": ""}),
    ("profile", f.profile, {"name": "x" * 65}),
    ("profile", f.profile, {"name": "bell\x07"}),
    ("profile", f.profile, {"name": "two\nlines"}),
    ("profile", f.profile, {"name": "\ud800"}),
    ("profile", f.profile, {"actor": "robot"}),
    ("profile", f.profile, {"skills": ("rust", "python")}),
    ("profile", f.profile, {"skills": ("python", "python")}),
    ("profile", f.profile, {"skills": ("Python",)}),
    ("profile", f.profile, {"skills": ("has space",)}),
    ("profile", f.profile, {"skills": ["python"]}),
    ("profile", f.profile, {"skills": tuple(f"s{i:02d}" for i in range(33))}),
    ("profile", f.profile, {"payout": b"\x00" * 20}),
    ("profile", f.profile, {"payout": b"\x01" * 19}),
    ("profile", f.profile, {"payout": "0x" + "11" * 20}),
    ("profile", f.profile, {"about": "x" * (MAX_ABOUT + 1)}),
    ("profile", f.profile, {"about": "€" * 667}),  # 2,001 bytes in 667 characters
    ("profile", f.profile, {"about": "bell\x07"}),
    ("profile", f.profile, {"about": "carriage\rreturn"}),
    ("profile", f.profile, {"about": b"bytes"}),
    ("profile", f.profile, {"about": None}),
    ("project", f.project, {"name": "Has-Caps"}),
    ("project", f.project, {"name": "-leading"}),
    ("project", f.project, {"name": "x" * 65}),
    ("project", f.project, {"description": "x" * 16_385}),
    ("project", f.project, {"status": "paused"}),
    ("project", f.project, {"epoch_length": 2**32}),
    ("project", f.project, {"reviewers": (b"\x01" * 31,)}),
    ("project", f.project, {"reviewers": tuple(bytes([i]) * 32 for i in range(17))}),
    ("contribution", f.contribution, {"evidence_uri": "", "evidence_hash": b""}),
    ("contribution", f.contribution, {"evidence_hash": b"\x01" * 31}),
    ("contribution", f.contribution, {"project_id": b"\x01" * 33}),
    ("contribution", f.contribution, {"summary": ""}),
    ("epoch_root", f.epoch_root, {"leaf_count": 0}),
    ("epoch_root", f.epoch_root, {"leaf_count": 5, "total_weight": 4}),
    ("epoch_root", f.epoch_root, {"chain_id": 0}),
    ("epoch_root", f.epoch_root, {"contract": b"\x00" * 20}),
]


@pytest.mark.parametrize(("kind", "build", "changes"), BAD_FIELDS, ids=lambda x: repr(x)[:40])
def test_construction_rejects_bad_fields(kind: str, build: Any, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidField) as info:
        build(**changes)
    assert info.value.kind == kind


def test_acceptance_bounds() -> None:
    work = f.contribution()
    with pytest.raises(InvalidField):
        f.acceptance(work, weight=2**32)
    with pytest.raises(InvalidField):
        f.acceptance(work, epoch=-1)
    assert f.acceptance(work, weight=0).body.values()[-1] == 0  # weight 0 withdraws


def envelope_of(body_value: Any, signer: str = "alice") -> bytes:
    """Signs arbitrary body bytes, bypassing the encoder, to test what the decoder admits."""
    body = pack(body_value) if not isinstance(body_value, bytes) else body_value
    key = f.key(signer)
    signature = key.sign(SIGNING_DOMAIN + body).signature
    return pack([bytes(key.verify_key), signature, body])


def profile_values() -> list[Any]:
    return [FORMAT_VERSION, "profile", *f.profile().body.values()]


def test_decoder_accepts_hand_built_canonical_body() -> None:
    record = decode(envelope_of(profile_values()))
    assert record.body == f.profile().body


def test_about_holds_lines_up_to_its_byte_bound() -> None:
    # The bound is in UTF-8 bytes: 666 three-byte characters and two of \n and \t.
    text = "€" * 333 + "\n\t" + "€" * 333
    assert len(text.encode()) == MAX_ABOUT
    record = decode(envelope_of([*profile_values()[:-1], text]))
    assert record.expect(Profile).about == text
    assert decode(f.profile(about=text).raw) == f.profile(about=text)


@pytest.mark.parametrize(
    ("about", "reason"),
    [
        ("x" * (MAX_ABOUT + 1), "2001 bytes is outside [0, 2000]"),
        ("€" * 667, "2001 bytes is outside [0, 2000]"),
        ("tab\tok, escape \x1b[31m not", "contains a control character"),
        (b"about", "expected a string, got bytes"),
        (7, "expected a string, got int"),
    ],
)
def test_decoder_refuses_a_bad_about_with_a_typed_error(about: Any, reason: str) -> None:
    # Built by hand and signed, as a peer that skips the checks would send it.
    with pytest.raises(InvalidField) as info:
        decode(envelope_of([*profile_values()[:-1], about]))
    assert (info.value.kind, info.value.field, info.value.reason) == ("profile", "about", reason)
    assert isinstance(info.value, ProtocolError)


def test_decoder_refuses_a_profile_without_about() -> None:
    # A profile of format 2 as it was before `about`: one field short, refused as such.
    with pytest.raises(InvalidField, match="expected 9 fields, got 8"):
        decode(envelope_of(profile_values()[:-1]))


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda v: [1, *v[1:]], UnknownKind),  # the format before manifests
        (lambda v: [3, *v[1:]], UnknownKind),
        (lambda v: ["2", *v[1:]], UnknownKind),
        (lambda v: [v[0], "ballot", *v[2:]], UnknownKind),
        (lambda v: [v[0], b"profile", *v[2:]], UnknownKind),
        (lambda v: v[:-1], InvalidField),
        (lambda v: [*v, ""], InvalidField),
        (lambda v: [*v[:3], None, *v[4:]], InvalidField),  # revision nil
        (lambda v: [*v[:3], True, *v[4:]], InvalidField),  # revision bool
        (lambda v: [*v[:3], 0.0, *v[4:]], InvalidField),  # revision float
        (lambda v: [*v[:4], b"Alice", *v[5:]], InvalidField),  # name as bin
        (lambda v: [*v[:8], "0x" + "11" * 20, *v[9:]], InvalidField),  # payout as str
        (lambda v: {"v": v}, DecodeError),
        (lambda v: "profile", DecodeError),
        (lambda v: [1], DecodeError),
    ],
)
def test_decoder_rejects_malformed_bodies(mutate: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(envelope_of(mutate(profile_values())))


def test_decoder_rejects_non_minimal_integer() -> None:
    body = pack(profile_values())
    # created_at is a uint32 (0xce); re-encode it as a uint64 (0xcf): same value, other bytes.
    created = f.profile().body.created_at.to_bytes(4, "big")
    bloated = body.replace(b"\xce" + created, b"\xcf" + b"\x00" * 4 + created, 1)
    assert bloated != body and msgpack.unpackb(bloated) == msgpack.unpackb(body)
    with pytest.raises(NonCanonical):
        decode(envelope_of(bloated))


def test_decoder_rejects_non_minimal_string_header() -> None:
    body = pack(profile_values())
    # "profile" as a fixstr (0xa7) re-encoded as str8 (0xd9 07): same value, other bytes.
    bloated = body.replace(b"\xa7profile", b"\xd9\x07profile", 1)
    with pytest.raises(NonCanonical):
        decode(envelope_of(bloated))


def test_decoder_rejects_non_canonical_envelope() -> None:
    raw = f.profile().raw
    # The envelope's array header as array16 instead of fixarray.
    with pytest.raises(NonCanonical):
        decode(b"\xdc\x00\x03" + raw[1:])


def test_decoder_rejects_trailing_bytes() -> None:
    with pytest.raises(DecodeError):
        decode(f.profile().raw + b"\x00")


def test_decoder_rejects_truncation() -> None:
    raw = f.profile().raw
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode(raw[:cut])


def test_decoder_rejects_bad_envelopes() -> None:
    record = f.profile()
    body = encode_body(record.body)
    for value in (
        [record.author[:31], record.signature, body],
        [record.author, record.signature[:63], body],
        [record.author, record.signature, body, b""],
        [record.author, record.signature, list(msgpack.unpackb(body))],
        [record.author.hex(), record.signature, body],
    ):
        with pytest.raises(DecodeError):
            decode(pack(value))


def test_bad_signature() -> None:
    record = f.profile()
    stranger = f.key("mallory")
    body = encode_body(record.body)
    # Signed by mallory, claiming alice as author.
    forged = pack([record.author, stranger.sign(SIGNING_DOMAIN + body).signature, body])
    with pytest.raises(BadSignature):
        decode(forged)
    # A signature without the domain prefix does not verify either.
    no_domain = pack([record.author, f.key("alice").sign(body).signature, body])
    with pytest.raises(BadSignature):
        decode(no_domain)
    # A small-order (all zero) author key.
    with pytest.raises(BadSignature):
        decode(pack([b"\x00" * 32, record.signature, body]))


def test_verify_false_skips_only_the_signature() -> None:
    record = f.profile()
    body = encode_body(record.body)
    forged = pack([record.author, b"\x00" * 64, body])
    assert decode(forged, verify=False).body == record.body
    with pytest.raises(BadSignature):
        decode(forged)


def test_size_limit() -> None:
    big = "x" * 16_000
    # Sixteen kilobytes of description fit; a body beyond 64 KiB cannot be signed or decoded.
    assert len(f.project(description=big).raw) < MAX_RECORD_SIZE
    oversized = envelope_of(b"\x00" * MAX_RECORD_SIZE)
    with pytest.raises(RecordTooLarge):
        decode(oversized)


def test_decode_accepts_memoryview_and_bytearray() -> None:
    record = f.profile()
    assert decode(bytearray(record.raw)) == record
    assert decode(memoryview(record.raw)) == record


def test_decode_body_round_trip_for_every_kind() -> None:
    work = f.contribution()
    accepted = f.acceptance(work)
    kinds = (f.profile(), f.project(), work, accepted, *f.manifest([accepted]), f.epoch_root())
    for record in kinds:
        assert decode_body(encode_body(record.body)) == record.body
        assert decode(record.raw) == record


def test_expect_names_the_kind() -> None:
    record = f.profile()
    with pytest.raises(UnknownKind, match="expected a project record, got a profile"):
        record.expect(Project)
    assert issubclass(UnknownKind, ProtocolError)


def test_records_are_frozen() -> None:
    record = f.project()
    with pytest.raises(AttributeError):
        record.body.title = "changed"  # type: ignore[misc]
    assert replace(record.body, title="changed").title == "changed"
