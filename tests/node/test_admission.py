"""Authors' rations over real hosts on 127.0.0.1 (issue 15, admission control): a flood of
records from fresh keys, passed on by an honest node, is refused past the newcomers' pool
without a strike against the forwarder; a key with accepted work still gets through during the
flood; and sync, asked for the same records, is held to the same rations. Every wait is on a
condition and bounded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import trio

from node.net.core.peers import MAX_STRIKES
from node.net.core.quotas import DUPLICATE_BURST
from node.net.intake import standing_of
from protocol import sign, stamp
from protocol.topics import shard, work
from tests.support import factories as f
from tests.support.nodes import running, wait_for

# Enough single-record replays to earn a ban, were they counted.
DUPLICATE_BURST_PLUS = int(DUPLICATE_BURST) + MAX_STRIKES + 2

# The target's rations: a pool for newcomers that refills too slowly to matter in a test.
POOL = 40
TARGET = {
    "author_rate": 1.0,
    "key_difficulty": 0,
    "newcomers_burst": POOL,
    "newcomers_rate": 0.001,
    "author_burst": 100,
}


async def test_a_flood_of_fresh_keys_is_rationed_and_the_honest_forwarder_is_not_blamed(
    dirs: Callable[[str], Path],
) -> None:
    project = f.project("alice")
    contribution = f.contribution("bob", "alice")
    accepted = f.acceptance(contribution, "alice")
    flood = [f.profile(f"fresh{i}") for i in range(300)]
    topic = work(shard(f.pid("alice")))
    with trio.fail_after(60):
        async with (
            # The forwarder rations nobody: it is an honest node that took the flood (say, its
            # records came to it slowly over a day) and passes it on.
            running(dirs("relay"), role="bootstrap", author_rate=0.0) as relay,
            running(
                dirs("target"), bootstrap=(relay.addrs()[0],), follow=(f.pid("alice"),), **TARGET
            ) as target,
        ):
            await wait_for(lambda: len(target.peers.connected()) == 1, timeout=10)
            await wait_for(lambda: relay.peer_id in target.gossip.mesh("meta"), timeout=10)
            await wait_for(lambda: bool(target.gossip.subscribers(topic)), timeout=10)
            await wait_for(lambda: relay.peer_id in target.gossip.mesh(topic), timeout=10)
            # Bob's contribution is accepted by Alice: Bob has standing at the target.
            await relay.submit([project])
            await wait_for(lambda: target.store.has(project.id), timeout=10)
            await relay.submit([contribution, accepted])
            await wait_for(lambda: target.store.has(accepted.id), timeout=10)
            assert standing_of(target.store, f.pub("bob"), 100) == 1
            before = target.gossip.counters.stored

            for i in range(0, len(flood), 50):
                await relay.submit(flood[i : i + 50])
            await wait_for(
                lambda: (
                    target.gossip.counters.rationed + target.gossip.counters.stored - before
                    >= len(flood)
                ),
                timeout=20,
            )
            stored = sum(target.store.has(r.id) for r in flood)
            # The pool had POOL less the project, the contribution and the acceptance (all three by
            # keys with no standing then).
            assert stored == POOL - 3
            assert target.gossip.counters.rationed == len(flood) - stored

            # During the flood, a key with accepted work still gets through.
            honest = f.profile("bob", about="trusted")
            await relay.submit([honest])
            await wait_for(lambda: target.store.has(honest.id), timeout=10)

            # Sync does not fetch again what was just left out...
            report = await target.sync.sync_with(relay.peer_id)
            assert report.needed >= len(flood) - stored
            assert report.fetched == 0
            # ...and what it fetches is held to the same rations: no back door. These records
            # of more fresh keys the relay holds without having published them.
            unseen = [f.profile(f"late{i}") for i in range(50)]
            await relay.gateway.write(relay.store.ingest, unseen, now=time.time())
            report = await target.sync.sync_with(relay.peer_id)
            assert report.fetched == len(unseen)
            assert report.rationed == len(unseen)
            assert not any(target.store.has(r.id) for r in unseen)
            assert sum(target.store.has(r.id) for r in flood) == stored

            # The forwarder did nothing it could have known was wrong.
            assert not target.peers.book._strikes.get(str(relay.peer_id))
            assert relay.peer_id in target.peers.connected()


async def test_fresh_keys_without_proof_of_work_cannot_starve_stamped_newcomers(
    dirs: Callable[[str], Path],
) -> None:
    """Defect 6: a new identity costs nothing. With a key difficulty, a flood of free keys
    fills only the unstamped pool; a newcomer who minted its key still gets through."""
    free = [f.profile(f"free{i}") for i in range(100)]
    assert all(
        stamp.work(r.author) < 8 for r in free[:30]
    )  # (the odds of one having 8 bits: 1/256)
    free = [r for r in free if stamp.work(r.author) < 8]
    newcomer = sign(f.profile("newcomer").body, stamp.mint(8))
    with trio.fail_after(60):
        async with (
            running(dirs("relay"), role="bootstrap", author_rate=0.0) as relay,
            running(
                dirs("target"),
                bootstrap=(relay.addrs()[0],),
                author_rate=1.0,
                key_difficulty=8,
                unstamped_burst=20,
                unstamped_rate=0.001,
            ) as target,
        ):
            await wait_for(lambda: relay.peer_id in target.gossip.mesh("meta"), timeout=10)
            await relay.submit(free)
            await wait_for(
                lambda: (
                    target.gossip.counters.rationed + target.gossip.counters.stored >= len(free)
                ),
                timeout=20,
            )
            assert sum(target.store.has(r.id) for r in free) == 20
            await relay.submit([newcomer])
            await wait_for(lambda: target.store.has(newcomer.id), timeout=10)
            assert not target.peers.book._strikes.get(str(relay.peer_id))


async def test_a_publisher_whose_records_sync_brought_first_is_no_replayer(
    dirs: Callable[[str], Path],
) -> None:
    """Found by the flood benchmark: under load a gossip message waits seconds in py-libp2p's
    validation queue, the node's sync with the publisher stores its records meanwhile, and the
    gossip copies then looked like replays: the honest publisher was banned. Records stored in
    the last REPLAY_GRACE seconds are no replay."""
    records = [f.profile(f"p{i}") for i in range(DUPLICATE_BURST_PLUS)]
    with trio.fail_after(60):
        async with (
            running(dirs("publisher"), role="bootstrap") as publisher,
            running(dirs("target"), bootstrap=(publisher.addrs()[0],)) as target,
        ):
            await wait_for(lambda: publisher.peer_id in target.gossip.mesh("meta"), timeout=10)
            await wait_for(lambda: target.peer_id in publisher.gossip.mesh("meta"), timeout=10)
            # Stored by the publisher, not yet gossiped; the target's sync brings them first.
            await publisher.gateway.write(publisher.store.ingest, records, now=time.time())
            await target.sync.sync_with(publisher.peer_id)
            # (Under load, the sync the connection started may be the one that stored them.)
            assert all(target.store.has(r.id) for r in records)
            # Then the gossip copies arrive, one message each.
            for record in records:
                sent = publisher.gossip.counters.published_messages
                await publisher.gossip.publish([record])
                await wait_for(
                    lambda s=sent: publisher.gossip.counters.published_messages > s, timeout=10
                )
            await wait_for(lambda: target.gossip.counters.replays >= len(records), timeout=20)
            assert not target.peers.book._strikes.get(str(publisher.peer_id))
            assert not target.peers.is_banned(publisher.peer_id)
