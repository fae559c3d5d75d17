"""Configuration of a running node: one immutable object, built once.

The config file and command-line flags that fill it arrive with the CLI; the network layer and
tests build `NetworkConfig` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import multiaddr

from node.errors import ConfigError

Role = Literal["personal", "bootstrap"]


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """How a node joins the network.

    Attributes:
        listen: multiaddrs to listen on.
        announce: multiaddrs to tell peers instead of the listen addresses (behind NAT, say).
        bootstrap: multiaddrs with /p2p/ peer ids of nodes to dial at start and redial.
        role: a personal node follows the meta topic and the shards of `follow`; a bootstrap
            node follows every topic and keeps the full history.
        follow: project ids whose work shards a personal node joins.
        max_connections: libp2p connection limit (inbound and outbound together).
        target_peers: below this many connected peers, known peers are dialed.
        sync_interval: seconds between periodic syncs with a connected peer.
        quic: also listen on QUIC (experimental in py-libp2p).
        gossip_drop: fraction of received gossip messages to ignore, for fault-injection tests
            that show sync repairing what gossip loses. Always 0 in production.
    """

    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    announce: tuple[str, ...] = ()
    bootstrap: tuple[str, ...] = ()
    role: Role = "personal"
    follow: tuple[bytes, ...] = ()
    max_connections: int = 128
    target_peers: int = 8
    sync_interval: float = 30.0
    quic: bool = False
    gossip_drop: float = 0.0

    def __post_init__(self) -> None:
        for addr in (*self.listen, *self.announce, *self.bootstrap):
            try:
                multiaddr.Multiaddr(addr)
            except Exception as exc:  # multiaddr raises several unrelated types
                raise ConfigError(f"{addr!r} is not a multiaddr: {exc}") from None
        for addr in self.bootstrap:
            if "/p2p/" not in addr:
                raise ConfigError(f"bootstrap address {addr!r} needs a /p2p/<peer id> part")
        if self.role not in ("personal", "bootstrap"):
            raise ConfigError(f"role must be 'personal' or 'bootstrap', not {self.role!r}")
        if not 0.0 <= self.gossip_drop < 1.0:
            raise ConfigError("gossip_drop must be in [0, 1)")
        for pid in self.follow:
            if len(pid) != 32:
                raise ConfigError("follow takes 32-byte project ids")
        if self.max_connections < 1 or self.target_peers < 0 or self.sync_interval <= 0:
            raise ConfigError("max_connections, target_peers and sync_interval must be positive")
