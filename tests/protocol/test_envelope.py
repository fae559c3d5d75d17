"""The author key that envelope bytes claim, read without decoding (a hint for rationing)."""

from __future__ import annotations

from protocol.envelope import claimed_author
from tests.support import factories as f


def test_the_claimed_author_of_a_record_is_its_author() -> None:
    record = f.profile("alice")
    assert claimed_author(record.raw) == record.author == f.pub("alice")


def test_bytes_that_do_not_start_as_an_envelope_claim_no_one() -> None:
    raw = f.profile("alice").raw
    assert claimed_author(b"") is None
    assert claimed_author(raw[:20]) is None
    assert claimed_author(b"\x92" + raw[1:]) is None
