"""The network's decisions, without I/O: state machines that take events and `now` and return
actions, in the way of Radicle heartwood's service and h11.

| module | what it decides |
|---|---|
| peers.py | `PeerBook`: which peers are known and kept, whom to dial and when, strikes and bans |
| syncs.py | `SyncPlan`: when to sync with which peer, backoff after failures, failing over |
| quotas.py | `Quotas`: per-peer allowances of replays and orphans |
| held.py | `Held`: records a little ahead of the node's clock, until they are valid |
| nat.py | `Slots`: which relays a home node reserves on, renews and leaves alone; when to ask AutoNAT again |
| ticker.py | `Ticker`: calls a core's `tick` at the times it asks for (the only clock) |

node/net/peers.py, node/net/sync.py, node/net/intake.py and node/net/nat.py are the I/O around them: they feed events in and
perform the actions that come out. Tests drive the cores with plain numbers for `now`, and
the ticker with trio's MockClock.
"""
