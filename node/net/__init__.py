"""The node on the network: the libp2p host, gossip, sync and peers, around a sans-I/O core.

| module | what |
|---|---|
| node.py | `Node`: one store, one host, gossip, sync and peers, run together |
| host.py | the libp2p host with every py-libp2p default that matters set on purpose |
| hostkey.py | the persistent host key (the peer id) |
| gossip.py | record batches over GossipSub: validated at the edge, published with flow control |
| sync.py | the node's sync sessions: reconcile and fetch, when the sync plan says |
| serve.py | answering other nodes' sync requests, within limits |
| evidence.py | evidence files: served to peers and fetched from them, checked against their hash |
| intake.py | what records from peers go through before the store: replays, topic, clock, orphans |
| core/ | the decisions, without I/O: the peer book, the sync plan, quotas, request rates, held records, the ticker |
| peers.py | dialing, remembering, exchanging and penalizing peers |
| verify.py | decoding and signature checks of batches, on threads and worker processes |
| worker.py | a verifying worker process (`python -m node.net.worker`): decodes and verifies batches |
"""
