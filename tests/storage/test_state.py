"""Node state: known peers, anchoring intents and the config version."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Store


def test_peers(store: Store) -> None:
    state = store.state
    assert state.peers().items == ()
    state.put_peer("QmBob", b"/ip4/127.0.0.1/tcp/4001")
    state.put_peer("QmAlice", b"/ip4/127.0.0.1/tcp/4002")
    state.put_peer("QmBob", b"/ip4/127.0.0.1/tcp/4003")
    assert state.peer("QmBob") == b"/ip4/127.0.0.1/tcp/4003"
    assert state.peer("QmNobody") is None
    assert state.peers().items == (
        ("QmAlice", b"/ip4/127.0.0.1/tcp/4002"),
        ("QmBob", b"/ip4/127.0.0.1/tcp/4003"),
    )
    state.remove_peer("QmAlice")
    state.remove_peer("QmAlice")
    assert [p for p, _ in state.peers().items] == ["QmBob"]
    with pytest.raises(ValueError, match="peer id"):
        state.put_peer("", b"")


def test_peer_pages(store: Store) -> None:
    names = [f"Qm{i:03}" for i in range(25)]
    for name in reversed(names):
        store.state.put_peer(name, name.encode())
    seen, cursor = [], None
    while True:
        page = store.state.peers(cursor=cursor, limit=10)
        seen += [p for p, _ in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == names


def test_intents_and_config_survive_reopening(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        assert store.state.config_version() is None
        store.state.set_config_version(3)
        store.state.put_intent(b"anchor/docs/1", b"tx pending")
        store.state.put_intent(b"anchor/docs/2", b"not sent")
        store.state.delete_intent(b"anchor/docs/2")
        store.state.delete_intent(b"anchor/never")
        with pytest.raises(ValueError):
            store.state.set_config_version(-1)
        with pytest.raises(ValueError, match="intent key"):
            store.state.put_intent(b"x" * 513, b"")
    with Store.open(tmp_path / "s") as store:
        assert store.state.config_version() == 3
        assert store.state.intent(b"anchor/docs/1") == b"tx pending"
        assert store.state.intent(b"anchor/docs/2") is None
        assert store.state.intents().items == ((b"anchor/docs/1", b"tx pending"),)
        # Node state is not a record: the store stays consistent around it.
        assert store.check() == ()
