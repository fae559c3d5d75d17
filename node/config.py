"""Configuration of a running node: immutable objects, built once.

`NetworkConfig` says how the node joins the network, `ChainConfig` which chain it settles on,
`ApiConfig` where its local API listens. The config file and the command-line flags fill them;
tests build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import multiaddr

from node.errors import ConfigError
from protocol.stamp import MAX_DIFFICULTY

Role = Literal["personal", "bootstrap"]
Reachability = Literal["auto", "public", "private"]


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
        dial_private: also dial private and loopback addresses that other peers tell of (by
            default only the scopes of this node's own listen, announce and bootstrap
            addresses, and public ones).
        quic: also listen on QUIC (experimental in py-libp2p).
        gossip_drop: fraction of received gossip messages to ignore, for fault-injection tests
            that show sync repairing what gossip loses. Always 0 in production.
        reachability: whether peers can dial this node: "auto" asks AutoNAT servers (the
            bootstrap nodes), "public" and "private" say so without asking. A private node
            reserves a slot on relays and advertises its relayed address (node/net/nat.py).
        relay_slots: relays a private node keeps a reservation on.
        hole_punch: upgrade relayed connections to direct ones with DCUtR.
        relay_hop: offer circuit relay v2 to others (bootstrap nodes with a public address).
        relay_reservations: reservations a relay holds at once (all peers together).
        relay_per_ip: reservations a relay holds at once for peers connecting from one IP
            address.
        relay_circuits: circuits at once to one reserved peer.
        relay_duration: seconds a relayed circuit may last before the relay closes it.
        relay_bytes: bytes a relayed circuit may carry (both ways together).
        relay_ttl: seconds a reservation lasts unless renewed (clients renew before).
        author_rate: records per second a key with no accepted work may make this node store
            from peers (node/net/core/authors.py); a key with n accepted contributions gets
            1 + min(n, 100) times this, and the bursts and totals below likewise. 0 turns the
            authors' rations off (for benchmarks of the pipeline, and tests of other things).
        author_burst: records such a key may bring at once.
        author_total: bytes such a key may make this node store since it started.
        newcomers_rate: records per second all keys with no accepted work together may add.
        newcomers_burst: records they may add together at once.
        key_difficulty: bits of proof of work (protocol.stamp) a key with no accepted work
            needs to draw on the newcomers' pool; `workwork init` mints the identity key with
            this much. A network parameter: dev and test networks set it low or to 0.
        unstamped_rate: records per second all keys with no accepted work and too little
            proof of work together may add.
        unstamped_burst: records they may add together at once.
        dht: answer and walk the Kademlia DHT to find peers beyond the bootstrap list
            (node/net/discovery.py).
        mdns: announce the node and find peers on the LAN by mDNS. Off here; `workwork init`
            writes it on for a personal node (a bootstrap node on a public address should
            leave it off).
        discovery_interval: seconds between rounds of the DHT walk once the node has
            `target_peers` peers (every 2 s while it has fewer).
    """

    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    announce: tuple[str, ...] = ()
    bootstrap: tuple[str, ...] = ()
    role: Role = "personal"
    follow: tuple[bytes, ...] = ()
    max_connections: int = 128
    target_peers: int = 8
    sync_interval: float = 30.0
    dial_private: bool = False
    quic: bool = False
    gossip_drop: float = 0.0
    reachability: Reachability = "auto"
    relay_slots: int = 2
    hole_punch: bool = True
    relay_hop: bool = False
    relay_reservations: int = 128
    relay_per_ip: int = 8
    relay_circuits: int = 8
    relay_duration: int = 600
    relay_bytes: int = 16 * 1024 * 1024
    relay_ttl: int = 3600
    author_rate: float = 1.0
    author_burst: int = 500
    author_total: int = 64 * 1024 * 1024
    newcomers_rate: float = 50.0
    newcomers_burst: int = 5_000
    key_difficulty: int = 15
    unstamped_rate: float = 2.0
    unstamped_burst: int = 200
    dht: bool = True
    mdns: bool = False
    discovery_interval: float = 30.0

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
        rations = (
            self.author_rate,
            self.author_burst,
            self.author_total,
            self.newcomers_rate,
            self.newcomers_burst,
        )
        if any(value < 0 for value in (*rations, self.unstamped_rate, self.unstamped_burst)):
            raise ConfigError("author_*, newcomers_* and unstamped_* must not be negative")
        if not 0 <= self.key_difficulty <= MAX_DIFFICULTY:
            raise ConfigError(f"key_difficulty must be in [0, {MAX_DIFFICULTY}]")
        for pid in self.follow:
            if len(pid) != 32:
                raise ConfigError("follow takes 32-byte project ids")
        if self.max_connections < 1 or self.target_peers < 0 or self.sync_interval <= 0:
            raise ConfigError("max_connections, target_peers and sync_interval must be positive")
        if self.reachability not in ("auto", "public", "private"):
            raise ConfigError(
                f"reachability must be 'auto', 'public' or 'private', not {self.reachability!r}"
            )
        relay = (
            self.relay_reservations,
            self.relay_per_ip,
            self.relay_circuits,
            self.relay_duration,
            self.relay_bytes,
            self.relay_ttl,
        )
        if self.relay_slots < 0 or min(relay) < 1:
            raise ConfigError(
                "relay_slots must be >= 0, and relay_reservations, relay_per_ip, relay_circuits, "
                "relay_duration, relay_bytes and relay_ttl >= 1"
            )
        if self.discovery_interval <= 0:
            raise ConfigError("discovery_interval must be positive")


ChainBackend = Literal["embedded", "anvil", "rpc"]


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """Which chain the node anchors on and pays from.

    Attributes:
        backend: "embedded" runs an EVM in process (state lost on exit; tests, trying things
            out), "anvil" starts anvil from the npm package with a state file in the data dir,
            "rpc" talks to `url` with the key of the encrypted wallet.
        url: the JSON-RPC URL of an "rpc" backend (http or https).
        contract: the settlement contract's address (0x...). Empty on a dev chain (embedded or
            anvil) means deploy it at start; an "rpc" backend needs it.
        confirmations: blocks after the one including an anchor before it counts as final.
        poll_interval: seconds between looks at the chain while waiting.
        timeout: seconds one JSON-RPC request may take.
        retries: attempts of a request before the chain is reported unavailable.
        settle: seconds after a proposal's window closes before the owner's node signs its
            decision (votes made at the last moment reach it meanwhile).
        execution_grace: seconds after a passed decision by which its owner's node must have
            executed it; `workwork audit` reports one not executed by then.
        contract_block: the block the contract was deployed in, where the node starts reading
            its events (0 reads from genesis: right, but slow on a long chain).
        log_range: the most blocks one eth_getLogs request spans; public endpoints refuse
            wide ranges (commonly above 10,000 or fewer blocks), so events are read in slices.
    """

    backend: ChainBackend = "embedded"
    url: str = ""
    contract: str = ""
    contract_block: int = 0
    log_range: int = 5_000
    confirmations: int = 0
    poll_interval: float = 1.0
    timeout: float = 10.0
    retries: int = 5
    settle: float = 120.0
    execution_grace: float = 3600.0

    def __post_init__(self) -> None:
        if self.settle < 0 or self.execution_grace < 0:
            raise ConfigError("settle and execution_grace must be >= 0")
        if self.backend not in ("embedded", "anvil", "rpc"):
            raise ConfigError(f"chain backend must be embedded, anvil or rpc, not {self.backend!r}")
        if self.backend == "rpc" and not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"an rpc chain needs an http(s) URL, not {self.url!r}")
        if self.contract and not (
            len(self.contract) == 42
            and self.contract.startswith("0x")
            and all(c in "0123456789abcdefABCDEF" for c in self.contract[2:])
        ):
            raise ConfigError(f"contract {self.contract!r} is not a 0x-prefixed 20-byte address")
        if self.confirmations < 0 or self.retries < 1:
            raise ConfigError("confirmations must be >= 0 and retries >= 1")
        if self.contract_block < 0 or self.log_range < 1:
            raise ConfigError("contract_block must be >= 0 and log_range >= 1")
        if self.poll_interval <= 0 or self.timeout <= 0:
            raise ConfigError("poll_interval and timeout must be positive")


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Where the local HTTP API listens.

    Attributes:
        host: the address to bind; loopback unless `allow_remote` says otherwise, since the
            API moves money for whoever holds the cookie.
        port: the TCP port; 0 picks a free one (written to the data dir for clients).
        allow_remote: allows binding a non-loopback address.
    """

    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK and not self.allow_remote:
            raise ConfigError(
                f"the API would listen on {self.host}, which is not loopback; "
                "pass --api-allow-remote (and protect the port) if you mean it"
            )
        if not 0 <= self.port < 65536:
            raise ConfigError(f"API port {self.port} is outside 0-65535")


@dataclass(frozen=True, slots=True)
class EvidenceConfig:
    """The node's evidence store (`node.evidence`) and what it serves to peers.

    Attributes:
        max_bytes: the largest evidence file taken (API upload, peer fetch) or served.
        peer_rate: requests a peer may make of this node per second, on average; each asks
            for one chunk of a file, at most 1 MiB (`protocol.evidence.CHUNK`).
        peer_burst: requests a peer may make at once before the rate applies: with the
            defaults, a file of 16 MiB (16 chunks) at once, then 4 MiB a second.
    """

    max_bytes: int = 16 * 1024 * 1024
    peer_rate: float = 4.0
    peer_burst: float = 32.0

    def __post_init__(self) -> None:
        if not 0 < self.max_bytes <= 1024 * 1024 * 1024:
            raise ConfigError("evidence max_bytes must be in [1, 1 GiB]")
        if self.peer_rate <= 0 or self.peer_burst < 1:
            raise ConfigError("evidence peer_rate must be positive and peer_burst at least 1")
