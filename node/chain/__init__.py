"""The node on the chain: the client, a local anvil, anchoring, funding, claims, audits, proofs.

| module | what |
|---|---|
| client.py | the settlement contract through web3's sync client |
| rpc.py | the boundary of the chain libraries: retries, typed errors, reverts |
| anvil.py | a local anvil chain started by the node, dying with it, one per state file |
| anvil_guard.py | the process that stops anvil when its node is gone (run as a script) |
| anchoring.py | the decisions of anchoring an epoch: a sans-I/O state machine |
| closing.py | the decisions of epoch closing: which ended epochs are due, and when |
| intents.py | an anchor's intent (recorded before sending) and its result |
| settlement.py | the settlement service: the I/O around anchoring and closing; funding, claims |
| anchors.py | which address an epoch is anchored under |
| trees.py | an epoch's Merkle tree from the stored records, kept while they stay the same |
| audit.py | an epoch's audit: records, tree and chain compared |
| proof.py | self-contained proof files, exported and verified |
"""
