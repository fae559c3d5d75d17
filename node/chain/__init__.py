"""The node on the chain: the client, a local anvil, anchoring, funding, claims, audits, proofs.

| module | what |
|---|---|
| client.py | the settlement contract through web3's sync client, with typed errors |
| anvil.py | a local anvil chain started and stopped by the node |
| settlement.py | the settlement service: anchoring, funding, claiming |
| anchors.py | which address an epoch is anchored under |
| trees.py | an epoch's Merkle tree from the stored records, kept while they stay the same |
| audit.py | an epoch's audit: records, tree and chain compared |
| proof.py | self-contained proof files, exported and verified |
"""
