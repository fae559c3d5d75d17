"""Hostile and failing peers for the network tests: a bare py-libp2p host, and sync answers as
a lying, failing or vanishing node would give them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import multiaddr
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.request_response import BytesCodec, RequestContext, RequestResponse
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

from node.net.serve import CONFIG, PROTOCOL
from protocol import decode
from protocol.reconcile import DEFAULT_FRAME_LIMIT, Reconciler, SortedItems
from protocol.wire import (
    Fetch,
    PeerList,
    Reconcile,
    Records,
    Refused,
    decode_request,
    encode_response,
)


@asynccontextmanager
async def bare_peer() -> AsyncIterator[tuple[IHost, Pubsub]]:
    key = create_new_key_pair()
    host = new_host(
        key_pair=key,
        sec_opt={NOISE: NoiseTransport(key, noise_privkey=x25519_key_pair().private_key)},
    )
    router = GossipSub(
        protocols=[PROTOCOL_ID_V11],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=1,
        spam_protection_enabled=False,
    )
    pubsub = Pubsub(host, router)
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    # The host stops first, as a node's does (node.net.host.Stack.running).
    async with (
        background_trio_service(pubsub),
        background_trio_service(router),
        host.run(listen_addrs=listen),
    ):
        await pubsub.wait_until_ready()
        yield host, pubsub


def serve_sync(
    host: IHost,
    records: dict[bytes, bytes],
    *,
    extra: tuple[bytes, ...] = (),
    frame_limit: int = DEFAULT_FRAME_LIMIT,
    rounds: int | None = None,
) -> None:
    """Makes a bare host answer our sync protocol as a lying or failing node would.

    It reconciles as holding `records` (id -> the bytes it will send for it), answers every
    fetch with those bytes plus `extra`, and refuses reconcile requests after the first
    `rounds` (if given).
    """
    items = SortedItems(
        (decode(raw, verify=False).body.created_at, rid) for rid, raw in records.items()
    )
    reconciler = Reconciler(items, frame_limit=frame_limit)
    answered = 0

    async def handler(data: bytes, context: RequestContext) -> bytes:
        nonlocal answered
        request = decode_request(data)
        if isinstance(request, Reconcile):
            if rounds is not None and answered >= rounds:
                return encode_response(Refused("busy"))
            answered += 1
            return encode_response(Reconcile(reconciler.respond(request.payload)))
        if isinstance(request, Fetch):
            found = tuple(records[rid] for rid in request.ids if rid in records)
            return encode_response(Records(found + extra))
        return encode_response(PeerList(()))

    RequestResponse(host).set_handler(PROTOCOL, handler, BytesCodec(), CONFIG)
