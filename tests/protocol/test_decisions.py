"""Proposals and votes: construction rules, strict decoding, and the rules that admit a vote."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from protocol import (
    InvalidField,
    OutsideWindow,
    Proposal,
    ReferenceMismatch,
    Vote,
    decode,
    decode_body,
    encode_body,
)
from protocol.codec import pack
from protocol.records import MAX_OPTIONS, MAX_WINDOW, MIN_WINDOW, PARAMS
from protocol.topics import shard, topic, work
from protocol.validate import Ref, check_proposal, check_vote, dependencies, slot
from tests.support import factories as f

KEY = f.pub("carol")


def body(**changes: Any) -> Proposal:
    return replace(f.proposal().expect(Proposal), **changes)


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("signal", ()),
        ("allocate", (0, bytes(20), "1")),
        ("allocate", (7, b"\x01" * 20, str(2**256 - 1))),
        ("accept", (b"\x02" * 32, 3, 0)),
        ("settings", (0, 1000, 0, 0, (), "closed")),
        ("settings", (200, 500, 4, 86_400, (KEY,), "open")),
        # With the optional mode and lazy-consensus window.
        ("settings", (200, 500, 4, 86_400, (KEY,), "open", "lazy", 86_400)),
        ("settings", (0, 1000, 0, 0, (), "closed", "owner", 0)),
    ],
)
def test_each_action_takes_its_parameters(action: str, params: tuple[Any, ...]) -> None:
    made = body(action=action, params=params)
    assert decode_body(encode_body(made)) == made
    assert [name for name, _ in PARAMS[action]][: len(params)] == list(made.named_params())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"action": "vote"}, "action"),
        ({"params": (1,)}, "params"),  # a signal takes none
        ({"action": "allocate", "params": (0, bytes(20))}, "params"),
        ({"action": "allocate", "params": (0, bytes(20), "0")}, "params.amount"),
        ({"action": "allocate", "params": (0, bytes(20), "01")}, "params.amount"),
        ({"action": "allocate", "params": (0, bytes(20), str(2**256))}, "params.amount"),
        ({"action": "allocate", "params": (0, bytes(20), 5)}, "params.amount"),
        ({"action": "allocate", "params": (0, bytes(20), "1e3")}, "params.amount"),
        ({"action": "allocate", "params": (2**32, bytes(20), "1")}, "params.epoch"),
        ({"action": "accept", "params": (b"\x02" * 31, 0, 1)}, "params.contribution_id"),
        ({"action": "accept", "params": (b"\x02" * 32, 0, 2**32)}, "params.weight"),
        ({"action": "settings", "params": (1001, 500, 0, 0, (), "open")}, "params.quorum"),
        ({"action": "settings", "params": (0, 500, 0, 0, (KEY, KEY), "open")}, "params.reviewers"),
        ({"action": "settings", "params": (0, 500, 0, 0, (), "gone")}, "params.status"),
        # Mode and window come together or not at all; the mode is one of MODES.
        ({"action": "settings", "params": (0, 500, 0, 0, (), "open", "lazy")}, "params"),
        ({"action": "settings", "params": (0, 500, 0, 0, (), "open", "dao", 0)}, "params.mode"),
        (
            {"action": "settings", "params": (0, 500, 0, 0, (), "open", "lazy", MAX_WINDOW + 1)},
            "params.window",
        ),
        ({"params": []}, "params"),
        ({"options": ("only one",)}, "options"),
        ({"options": ("a", "a")}, "options"),
        ({"options": ("",) * 2}, "options"),
        ({"options": tuple(str(i) for i in range(MAX_OPTIONS + 1))}, "options"),
        ({"closes_at": f.T0 + 100 + MIN_WINDOW - 1}, "closes_at"),
        ({"closes_at": f.T0 + 100 + MAX_WINDOW + 1}, "closes_at"),
        ({"closes_at": f.T0}, "closes_at"),
        ({"title": ""}, "title"),
        ({"snapshot": 2**32}, "snapshot"),
    ],
)
def test_proposal_refuses_bad_fields(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        body(**changes)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "changes",
    [
        {"choice": "approve"},  # approve needs options listed
        {"choice": "yes", "approve": (0,)},
        {"choice": "maybe"},
        {"choice": "approve", "approve": (1, 0)},  # a set: sorted
        {"choice": "approve", "approve": (MAX_OPTIONS,)},
        {"reason": "x" * 2001},
        {"proposal_id": b"\x00" * 31},
    ],
)
def test_vote_refuses_bad_fields(changes: dict[str, Any]) -> None:
    base = f.vote(f.proposal()).expect(Vote)
    with pytest.raises(InvalidField):
        replace(base, **changes)


def test_decoder_refuses_a_proposal_whose_params_are_not_canonical() -> None:
    record = f.proposal(action="allocate", params=(0, bytes(20), "5"))
    values = [2, "proposal", *record.body.values()]
    values[6] = [0, bytes(20), 5]  # the amount as an integer
    with pytest.raises(InvalidField):
        decode_body(pack(tuple(values)))


def test_proposals_and_votes_travel_on_their_projects_shard() -> None:
    question = f.proposal()
    ballot = f.vote(question)
    expected = work(shard(f.pid()))
    assert topic(question) == topic(ballot) == expected
    assert dependencies(question) == (Ref("project", f.pid()),)
    assert dependencies(ballot) == (Ref("proposal", question.id),)
    assert decode(ballot.raw) == ballot


def test_a_votes_slot_is_its_proposal_and_author() -> None:
    question = f.proposal()
    assert slot(f.vote(question, "bob")) == ("vote", question.id + f.pub("bob"))
    assert slot(f.vote(question, "bob", revision=3)) == slot(f.vote(question, "bob"))
    assert slot(f.vote(question, "carol")) != slot(f.vote(question, "bob"))


def test_check_proposal_needs_its_own_project() -> None:
    check_proposal(f.proposal(), f.project())
    with pytest.raises(ReferenceMismatch):
        check_proposal(f.proposal(), f.project(name="other"))


def test_check_vote_admits_votes_inside_the_window_only() -> None:
    question = f.proposal()
    asked = question.expect(Proposal)
    check_vote(f.vote(question, created_at=asked.created_at), question)
    check_vote(f.vote(question, created_at=asked.closes_at - 1), question)
    for when in (asked.closes_at, asked.closes_at + 1, asked.created_at - 1):
        with pytest.raises(OutsideWindow):
            check_vote(f.vote(question, created_at=when), question)


def test_check_vote_matches_the_choices_offered() -> None:
    plain = f.proposal()
    options = f.proposal(options=("a", "b", "c"))
    check_vote(f.vote(plain, choice="no"), plain)
    check_vote(f.vote(plain, choice="abstain"), plain)
    check_vote(f.vote(options, choice="approve", approve=(0, 2)), options)
    check_vote(f.vote(options, choice="abstain"), options)
    bad = [
        (f.vote(plain, choice="approve", approve=(0,)), plain),
        (f.vote(options, choice="yes"), options),
        (f.vote(options, choice="approve", approve=(3,)), options),
        (f.vote(plain, project_id=f.pid(name="other")), plain),
        (f.vote(plain), options),  # names another proposal
    ]
    for ballot, question in bad:
        with pytest.raises(ReferenceMismatch):
            check_vote(ballot, question)
