"""The node on the network: the libp2p host, gossip, sync and peers, around a sans-I/O core.

| module | what |
|---|---|
| node.py | `Node`: one store, one host, gossip, sync and peers, run together |
| host.py | the libp2p host with every py-libp2p default that matters set on purpose |
| hostkey.py | the persistent host key (the peer id) |
| gossip.py | record batches over GossipSub: validated at the edge, published with flow control |
| sync.py | range-based reconciliation and fetching: what makes "nothing lost" true |
| peers.py | dialing, remembering, exchanging and penalizing peers |
| verify.py | decoding and signature checks of batches, on threads and worker processes |
"""
