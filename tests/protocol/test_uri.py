"""Evidence URIs: the known-answer vectors, and the rule's place in a contribution."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Contribution, InvalidField, decode, sign
from protocol.uri import URI_RULE_FROM, UriError, check_uri, evidence_uri, workwork_digest
from tests.support import factories as f
from tests.support.strategies import open_uris

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "tests/vectors/uris.json"
VECTORS = json.loads(VECTORS_FILE.read_text())


def test_vectors_are_what_the_script_writes() -> None:
    out = subprocess.run(
        [sys.executable, "scripts/vectors/uris.py"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    )
    assert out.stdout == VECTORS_FILE.read_text()


@pytest.mark.parametrize("uri", VECTORS["valid"])
def test_valid_vectors_are_taken(uri: str) -> None:
    check_uri(uri)


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["why"])
def test_invalid_vectors_are_refused(case: dict[str, str]) -> None:
    with pytest.raises(UriError):
        check_uri(case["uri"])


def test_every_scheme_has_valid_and_invalid_vectors() -> None:
    for scheme in VECTORS["schemes"]:
        assert any(u.startswith(scheme + ":") for u in VECTORS["valid"]), scheme
        assert any(c["uri"].startswith(scheme + ":") for c in VECTORS["invalid"]), scheme


def test_workwork_uris_round_trip() -> None:
    digest = hashlib.sha256(b"the work").digest()
    assert workwork_digest(evidence_uri(digest)) == digest
    assert workwork_digest("https://example.org") is None


def _contribution(created_at: int, uri: str, digest: bytes = b"") -> Contribution:
    body = f.contribution().body
    assert isinstance(body, Contribution)
    return replace(body, created_at=created_at, evidence_uri=uri, evidence_hash=digest)


def test_the_rule_binds_contributions_from_its_date() -> None:
    # Older records keep what they carried: a store or a peer's history stays valid.
    old = _contribution(URI_RULE_FROM - 1, "u")
    assert old.evidence_uri == "u"
    record = sign(old, f.key("bob"))
    assert decode(record.raw).body == old
    with pytest.raises(InvalidField, match="evidence_uri") as refused:
        _contribution(URI_RULE_FROM, "u")
    assert "https://" in str(refused.value)
    with pytest.raises(InvalidField, match="evidence_uri"):
        _contribution(URI_RULE_FROM + 10**6, "file:///home/bob/work.md")
    # A hash alone stays valid evidence.
    _contribution(URI_RULE_FROM, "", hashlib.sha256(b"x").digest())


def test_a_workwork_uri_and_the_hash_must_agree() -> None:
    digest = hashlib.sha256(b"the work").digest()
    _contribution(URI_RULE_FROM, evidence_uri(digest), digest)
    with pytest.raises(InvalidField, match="evidence_hash"):
        _contribution(URI_RULE_FROM, evidence_uri(digest), hashlib.sha256(b"other").digest())


def test_a_peer_s_record_with_a_bad_uri_is_refused_at_decode() -> None:
    # Signed by a hostile author with the checks bypassed: the receiver's decode refuses it.
    good = _contribution(URI_RULE_FROM, "https://example.org/w")
    bad = object.__new__(Contribution)
    for name in ("created_at", *(n for n, _ in Contribution.SCHEMA)):
        object.__setattr__(bad, name, getattr(good, name))
    object.__setattr__(bad, "evidence_uri", "javascript:alert(1)")
    record = sign(bad, f.key("bob"))
    with pytest.raises(InvalidField, match="evidence_uri"):
        decode(record.raw)


@given(open_uris)
def test_drawn_open_uris_are_taken(uri: str) -> None:
    check_uri(uri)


@given(st.text(max_size=80))
def test_any_text_is_taken_or_refused_with_a_uri_error(uri: str) -> None:
    try:
        check_uri(uri)
    except UriError as exc:
        assert str(exc)
    else:
        assert uri.split(":", 1)[0] in ("https", "ipfs", "ar", "workwork")
