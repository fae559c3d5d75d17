"""Discovery beyond the bootstrap list: a Kademlia walk over py-libp2p's DHT, and mDNS on a LAN.

Whatever discovery finds goes into the same peer book as peer exchange (`Peers.learned`), so the
book's rules hold for it unchanged: at most MAX_KNOWN peers, unverified peers never displace
verified ones, at most MAX_LEARNED entries read per answer, addresses outside the operator's
scopes refused, banned peers ignored, and dialing (with backoff) decided by the book alone.

- The DHT. py-libp2p's `KadDHT` runs in server mode and answers FIND_NODE (`/ipfs/kad/1.0.0`)
  from its routing table, which holds the peers this node is connected to. Its *client* side is
  not used as is: `PeerRouting.find_closest_peers_network` dials every peer an answer names, at
  whatever addresses the answer gives (private ranges, the node itself), past our bans and
  backoff, and writes every address of every answer into the host's peerstore, however many
  the answer names (up to its 4 MiB message limit). Instead the walk asks connected peers
  only, one FIND_NODE each for a random key, reads at most MAX_LEARNED peers of each answer,
  and hands them to the book; the book dials those it wants, and the next round asks them in
  turn. Round after round that is Kademlia's iterative lookup, with every hop through the book.
  The DHT service's maintenance loop (which runs the dialing lookup every 10 minutes) is not
  started for the same reason.
- mDNS. py-libp2p's `MDNSDiscovery` (zeroconf) announces the node's addresses on the LAN and
  reports the peers it hears; its reports arrive on zeroconf's thread and are queued (bounded,
  dropped when full) for the event loop, which hands them to the book. On when
  `network.mdns` says so, which `workwork init` writes for a personal node; off for a bootstrap
  node, which on a public address has no LAN to find peers on and should not announce itself
  on one.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING

import multiaddr
import trio
from libp2p.abc import INetStream
from libp2p.kad_dht.common import PROTOCOL_ID as KAD
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited

from node.config import NetworkConfig
from node.net.core.peers import MAX_ADDRS, MAX_LEARNED
from node.net.host import Stack
from node.net.peers import Peers

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

# Peers asked per round of the walk, and how long one answer may take.
ASK_PER_ROUND = 3
QUERY_TIMEOUT = 10.0
# A FIND_NODE answer names at most 20 peers (Kademlia's k); anything much larger is not read.
MAX_ANSWER = 64 * 1024
# mDNS reports waiting for the event loop; more are dropped (a LAN flood cannot queue memory).
MDNS_QUEUE = 64

Entry = tuple[str, tuple[str, ...]]


def read_answer(data: bytes, self_id: ID) -> list[Entry]:
    """Returns the (peer id, addresses) of a FIND_NODE answer, at most MAX_LEARNED of them.

    Entries that are not peer ids, name this node, or carry no readable address are skipped;
    addresses lose any /p2p/ part and are capped at MAX_ADDRS per peer.

    Raises:
        ValueError: `data` is not a FIND_NODE answer.
    """
    message = Message()
    try:
        message.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ValueError(f"not a DHT message: {exc}") from None
    if message.type != Message.MessageType.FIND_NODE:
        raise ValueError(f"answer of type {message.type}, not FIND_NODE")
    out: list[Entry] = []
    for peer in message.closerPeers[: MAX_LEARNED * 2]:
        if len(out) >= MAX_LEARNED:
            break
        try:
            pid = ID(peer.id)
            pid.to_base58()
        except Exception:  # not a multihash
            continue
        if pid == self_id:
            continue
        addrs: list[str] = []
        for raw in peer.addrs[: MAX_ADDRS * 2]:
            try:
                addrs.append(str(multiaddr.Multiaddr(raw)).split("/p2p/")[0])
            except Exception:  # multiaddr raises several unrelated types
                continue
        if addrs:
            out.append((str(pid), tuple(dict.fromkeys(addrs))[:MAX_ADDRS]))
    return out


async def find_node(stream: INetStream, key: bytes, self_id: ID) -> list[Entry]:
    """Sends one FIND_NODE for `key` on `stream` and returns the answer's peers (`read_answer`).

    Raises:
        ValueError: the answer is not a FIND_NODE answer, or too large.
        Exception: whatever the stream raises when the peer goes away.
    """
    request = Message()
    request.type = Message.MessageType.FIND_NODE
    request.key = key
    await stream.write(encode_varint_prefixed(request.SerializeToString()))
    try:
        data = await read_varint_prefixed_bytes_limited(stream, MAX_ANSWER)
    except Exception as exc:  # too large, cut short: the peer's fault either way
        raise ValueError(f"unreadable answer: {exc}") from None
    return read_answer(data, self_id)


class Discovery:
    """Finds peers by the DHT walk and mDNS, for the peer book (see the module's docstring)."""

    def __init__(
        self,
        stack: Stack,
        peers: Peers,
        config: NetworkConfig,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._stack = stack
        self._peers = peers
        self._config = config
        self._rng = rng or random.Random()
        self.dht: KadDHT | None = None
        if config.dht:
            self.dht = KadDHT(
                stack.host, DHTMode.SERVER, enable_providers=False, enable_values=False
            )
            peers.on_connected.append(self._connected)
        self._nursery: trio.Nursery | None = None
        # Rounds of the walk done, and peers it found (for tests and benchmarks).
        self.rounds = 0
        self.found = 0

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.dht is not None:
                for peer in self._peers.connected():
                    self._connected(peer)
                nursery.start_soon(self._walk)
            if self._config.mdns:
                await nursery.start(self._mdns)
            task_status.started()

    # The DHT.

    def _connected(self, peer: ID) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._add_to_table, peer)

    async def _add_to_table(self, peer: ID) -> None:
        """Puts a connected peer in the DHT's routing table, to be named in its answers."""
        assert self.dht is not None
        try:
            addrs = self._stack.host.get_peerstore().addrs(peer)
        except Exception:  # no addresses known: nothing to tell others
            return
        try:
            await self.dht.routing_table.add_peer(PeerInfo(peer, addrs))
        except Exception as exc:  # a full bucket, or the subnet cap: kept out, as Kademlia does
            log.debug("routing table refused %s: %s", peer, exc)

    async def _walk(self) -> None:
        while True:
            await self.walk_once()
            # Quickly while the node has fewer peers than it wants, then at the configured pace.
            short = len(self._peers.connected()) < self._config.target_peers
            interval = self._config.discovery_interval
            await trio.sleep(min(interval, 2.0) if short else interval)

    async def walk_once(self) -> int:
        """Asks up to ASK_PER_ROUND connected peers for the peers closest to a random key, and
        gives what they name to the book. Returns how many entries the answers held."""
        connected = [p for p in self._peers.connected() if not self._peers.is_banned(p)]
        asked = self._rng.sample(connected, min(ASK_PER_ROUND, len(connected)))
        learned: list[Entry] = []
        async with trio.open_nursery() as nursery:
            for peer in asked:
                nursery.start_soon(self._ask, peer, learned)
        self.rounds += 1
        self.found += len(learned)
        return len(learned)

    async def _ask(self, peer: ID, learned: list[Entry]) -> None:
        # A random key: over rounds the answers cover every region of the key space, rather
        # than only the node's own neighbourhood.
        key = ID(b"\x00\x20" + os.urandom(32)).to_bytes()
        stream = None
        try:
            with trio.fail_after(QUERY_TIMEOUT):
                stream = await self._stack.host.new_stream(peer, [KAD])
                entries = await find_node(stream, key, self._stack.host.get_id())
        except ValueError as exc:
            self._peers.penalize(peer, f"bad DHT answer: {exc}")
            return
        except Exception as exc:  # the peer does not speak the DHT, went away, or timed out
            log.debug("FIND_NODE to %s failed: %s", peer, exc)
            return
        finally:
            if stream is not None:
                # An error closing a stream that the peer reset already is of no interest.
                with trio.CancelScope(shield=True), trio.move_on_after(1), suppress(Exception):
                    await stream.close()
        learned.extend(entries)
        self._peers.learned(entries)

    # mDNS.

    async def _mdns(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from libp2p.discovery.events.peerDiscovery import peerDiscovery
        from libp2p.discovery.mdns.mdns import MDNSDiscovery

        send, receive = trio.open_memory_channel[PeerInfo](MDNS_QUEUE)
        token = trio.lowlevel.current_trio_token()

        def heard(info: PeerInfo) -> None:  # on zeroconf's thread
            # Dropped if the queue is full (a flood), or if the node is stopping.
            with suppress(trio.WouldBlock, trio.RunFinishedError, trio.Cancelled):
                trio.from_thread.run_sync(send.send_nowait, info, trio_token=token)

        host = self._stack.host
        port = _tcp_port(host.get_addrs())
        mdns = await trio.to_thread.run_sync(
            lambda: MDNSDiscovery(
                host.get_network(),
                port=port,
                listen_addrs=[str(a) for a in host.get_addrs()],
                host=host,
            )
        )
        peerDiscovery.register_peer_discovered_handler(heard)
        try:
            await trio.to_thread.run_sync(mdns.broadcaster.register)
            task_status.started()
            async for info in receive:
                self._heard(info)
        finally:
            peerDiscovery.unregister_peer_discovered_handler(heard)
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_stop_mdns, mdns)

    def _heard(self, info: PeerInfo) -> None:
        addrs = tuple(str(a).split("/p2p/")[0] for a in info.addrs)[:MAX_ADDRS]
        self._peers.learned([(str(info.peer_id), addrs)])
        self.found += 1


def _stop_mdns(mdns: object) -> None:
    try:
        mdns.broadcaster.unregister()  # type: ignore[attr-defined]
        mdns.listener.stop()  # type: ignore[attr-defined]
        mdns.zeroconf.close()  # type: ignore[attr-defined]
    except Exception as exc:  # zeroconf already closed
        log.debug("mDNS stop: %s", exc)


def _tcp_port(addrs: Sequence[multiaddr.Multiaddr]) -> int:
    for addr in addrs:
        try:
            return int(addr.value_for_protocol("tcp"))
        except Exception:  # not a TCP address
            continue
    return 0
