"""Which address an epoch is anchored under, and its `Anchored` event.

The contract keeps anchors per (sender, project, epoch), and a node anchors a project's epochs
from the project's payout address (`node.settlement` refuses any other wallet). But a project may
change its payout address after anchoring, so the payout of the revision in force does not
always name the anchor. What does: the owner's signed `epoch_root` record names the anchor's
chain, contract and transaction, and that transaction's sender is the anchoring address. So the
candidates are, in order: the senders of the anchor transactions named by the owner's
`epoch_root` records on this chain and contract, then the payout address in force. Claims,
funding, audits and proof files all go by the same rule.
"""

from __future__ import annotations

from node.chain.client import Anchor, ChainClient
from protocol import EpochRoot, Project, Record
from protocol.records import project_id as project_id_of
from storage import Store
from storage.store import MAX_LIMIT


def anchoring_addresses(
    chain: ChainClient, store: Store, project: Record, epoch: int
) -> list[bytes]:
    """Returns the addresses an epoch may be anchored under, the most specific first.

    Raises:
        ChainError: the chain could not be read.
        StorageError: the store could not be read.
    """
    named = published_anchors(store, project, epoch, chain.chain_id, chain.address)
    return senders(chain, named, project.expect(Project).payout)


def published_anchors(
    store: Store, project: Record, epoch: int, chain_id: int, contract: bytes
) -> list[bytes]:
    """Returns the anchor transactions that the owner's epoch roots name on a chain and contract.

    The store's half of `anchoring_addresses`, for callers that keep store and chain calls
    apart (the settlement service reads the store through the node's gateway).

    Raises:
        StorageError: the store could not be read.
    """
    pid = project_id_of(project.author, project.expect(Project).name)
    found: list[bytes] = []
    cursor = None
    while True:
        page = store.epoch_roots(pid, epoch=epoch, cursor=cursor, limit=MAX_LIMIT)
        for record in page.items:
            body = record.expect(EpochRoot)
            if (
                record.author == project.author
                and body.chain_id == chain_id
                and body.contract == contract
                and body.tx_hash not in found
            ):
                found.append(body.tx_hash)
        if page.cursor is None:
            return found
        cursor = page.cursor


def senders(chain: ChainClient, tx_hashes: list[bytes], payout: bytes) -> list[bytes]:
    """Returns the senders of the transactions the chain knows, then `payout`: the chain's half
    of `anchoring_addresses`.

    Raises:
        ChainError: the chain could not be read.
    """
    found: list[bytes] = []
    for tx_hash in tx_hashes:
        sender = chain.tx_sender(tx_hash)
        if sender is not None and sender not in found:
            found.append(sender)
    if payout not in found:
        found.append(payout)
    return found


def find_epoch_anchor(
    chain: ChainClient, store: Store, project: Record, epoch: int
) -> tuple[list[bytes], Anchor | None]:
    """Returns the addresses looked under and the epoch's `Anchored` event, or None.

    Raises:
        ChainError: the chain could not be read.
        StorageError: the store could not be read.
    """
    addresses = anchoring_addresses(chain, store, project, epoch)
    pid = project_id_of(project.author, project.expect(Project).name)
    for address in addresses:
        anchor = chain.find_anchor(address, pid, epoch)
        if anchor is not None:
            return addresses, anchor
    return addresses, None
