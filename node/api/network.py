"""The API's routes about the node itself and its network: status, peers, connecting.

What reads the store (the counts of the status) runs in the gateway's reader threads (`Api.read`).
"""

from __future__ import annotations

from typing import Any

import multiaddr

from node.api.app import Api
from node.api.routes import Param, Route
from node.api.views import address
from node.errors import BadRequest, NetworkError
from protocol import __version__
from storage import Store


def _counts(store: Store, topics: list[str]) -> tuple[dict[str, int], int]:
    return {t: store.topic_count(t) for t in topics}, store.orphans()[0]


async def status(api: Api, args: dict[str, Any]) -> Any:
    node = api.node
    counts, orphans = await api.read(_counts, node.store, sorted(node.gossip.followed))
    return {
        "version": __version__,
        "peer_id": str(node.peer_id),
        "addrs": node.addrs(),
        "role": node.config.role,
        "public_key": api.identity.public_key.hex(),
        "wallet": address(api.identity.address),
        "peers": len(node.peers.connected()),
        # The connection limit, the spare slots past it, and connections trimmed back to it.
        "slots": {
            "limit": node.config.max_connections,
            "spare": node.config.spare_slots,
            "trimmed": node.peers.slots.trimmed,
        },
        "records": sum(counts.values()),
        "orphans": orphans,
        "topics": counts,
        # Whether the store takes writes: a full disk shows here (and records are refused).
        "store": node.gateway.status(),
        # Reachability (AutoNAT), relay slots held and served, direct vs relayed connections.
        "nat": node.nat.status(),
        "syncing": [
            {
                "peer": r.peer,
                "needed": r.needed,
                "fetched": r.fetched,
                "stored": r.stored,
                "rejected": r.rejected,
            }
            for r in node.sync.active()
        ],
    }


async def peers(api: Api, args: dict[str, Any]) -> Any:
    connected = {str(p) for p in api.node.peers.connected()}
    known = [
        {
            "peer_id": p.peer_id,
            "addrs": list(p.addrs),
            "connected": p.peer_id in connected,
            "last_seen": p.last_seen,
            "failures": p.failures,
            "banned_until": p.banned_until,
        }
        for p in api.node.peers.known()
    ]
    return {"connected": sorted(connected), "known": known}


async def connect(api: Api, args: dict[str, Any]) -> Any:
    addr = args["addr"]
    try:
        multiaddr.Multiaddr(addr)
    except Exception as exc:  # multiaddr raises several unrelated types
        raise BadRequest(f"{addr!r} is not a multiaddr: {exc}") from None
    if "/p2p/" not in addr:
        raise BadRequest(f"{addr!r} needs a /p2p/<peer id> part")
    try:
        await api.node.connect(addr)
    except NetworkError:  # RelayRefused: a relay said why, with its own hint
        raise
    except Exception as exc:  # libp2p's dialing raises many types; all mean "unreachable"
        raise NetworkError(f"cannot connect to {addr}: {exc or type(exc).__name__}") from exc
    return {"connected": addr.split("/p2p/")[1]}


NETWORK_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/status", status, "The node: ids, addresses, keys, counts, topics.",
          returns="Status"),
    Route("GET", "/v1/peers", peers, "Connected and known peers."),
    Route("POST", "/v1/peers/connect", connect, "Dial a peer by multiaddr (with /p2p/).",
          (Param("addr", "string", "multiaddr with /p2p/<peer id>", required=True),),
          raises=(NetworkError,)),
)  # fmt: skip
