"""A payout that cannot receive sends its share elsewhere: `claimTo`.

A leaf's payout may be a contract that refuses ether, or an address a token blocks. Its share then
stays claimable, and the payout redirects it to another address: by sending `claimTo` itself, or
by signing an EIP-712 `Redirect` that anyone may send (ECDSA for an ordinary account, ERC-1271 for
a contract wallet, checked by OpenZeppelin's SignatureChecker). The typed data comes from
protocol.contract, so these tests also check that the Python message and the contract's digest
agree.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from protocol.contract import redirect_typed_data
from protocol.merkle import Leaf
from protocol.settlement import share
from tests.support.evm import (
    ETH,
    NATIVE,
    Chain,
    Epoch,
    anchor,
    checksum,
    leaf_args,
    make_leaves,
    mint_and_approve,
    proof_of,
    reverts,
)
from tests.support.factories import pid

PROJECT = pid("alice", "redirect")
USDC = 10**6
FAR = 2**64


def key(name: str) -> LocalAccount:
    """A fixed key that holds nothing on chain: it only signs."""
    return Account.from_key(hashlib.sha256(f"redirect key {name}".encode()).digest())


@pytest.fixture
def settlement(chain: Chain) -> Contract:
    return chain.settlement()


def message(
    chain: Chain, contract: Contract, epoch: Epoch, leaf: Leaf, to: str, deadline: int
) -> dict[str, Any]:
    return redirect_typed_data(
        chain_id=chain.w3.eth.chain_id,
        contract=bytes.fromhex(contract.address[2:]),
        owner=bytes.fromhex(epoch.owner[2:]),
        project_id=epoch.project,
        epoch=epoch.number,
        contribution_id=leaf.contribution_id,
        payout=leaf.payout,
        weight=leaf.weight,
        to=bytes.fromhex(to[2:]),
        deadline=deadline,
    )


def sign(
    signer: LocalAccount,
    chain: Chain,
    contract: Contract,
    epoch: Epoch,
    leaf: Leaf,
    to: str,
    deadline: int = FAR,
) -> bytes:
    full = message(chain, contract, epoch, leaf, to, deadline)
    return bytes(signer.sign_typed_data(full_message=full).signature)


def claim_to(
    contract: Contract,
    epoch: Epoch,
    leaf: Leaf,
    to: str,
    signature: bytes = b"",
    deadline: int = FAR,
    token: str = NATIVE,
) -> Any:
    return contract.functions.claimTo(
        *epoch.ref(),
        token,
        *leaf_args(leaf),
        proof_of(epoch.tree, leaf),
        (to, deadline, signature),
    )


def test_the_redirect_digest_is_the_eip712_hash_of_the_python_message(
    chain: Chain, settlement: Contract
) -> None:
    epoch = anchor(chain, settlement, make_leaves("digest", [3]), project=PROJECT)
    (leaf,) = epoch.leaves
    to = chain.accounts[5]
    full = message(chain, settlement, epoch, leaf, to, 12345)
    signable = encode_typed_data(full_message=full)
    digest = Web3.keccak(b"\x19" + signable.version + signable.header + signable.body)
    got = settlement.functions.redirectDigest(*epoch.ref(), *leaf_args(leaf), to, 12345).call()
    assert bytes(got) == bytes(digest)
    assert settlement.functions.eip712Domain().call() == [
        b"\x0f",
        "WorkWorkSettlement",
        "1",
        chain.w3.eth.chain_id,
        settlement.address,
        bytes(32),
        [],
    ]


def test_a_contract_wallet_that_refuses_ether_redirects_by_erc1271(
    chain: Chain, settlement: Contract
) -> None:
    keeper = key("keeper")
    wallet = chain.payee("SigningWallet", keeper.address)
    leaf = Leaf(b"\xdd" * 32, bytes.fromhex(wallet.address[2:]), 1)
    leaves = [leaf, *make_leaves("wallet others", [3])]
    epoch = anchor(chain, settlement, leaves, project=PROJECT)
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=4 * ETH)
    plain = settlement.functions.claim(*epoch.ref(), *leaf_args(leaf), proof_of(epoch.tree, leaf))
    with reverts(settlement, "PaymentFailed", wallet.address, ETH):
        plain.transact({"from": chain.accounts[2]})

    to = chain.accounts[6]
    signature = sign(keeper, chain, settlement, epoch, leaf, to)
    # A signature for another address, by another key, or past its deadline is refused.
    refusals = [
        (claim_to(settlement, epoch, leaf, chain.accounts[2], signature), "InvalidSignature"),
        (
            claim_to(
                settlement, epoch, leaf, to, sign(key("thief"), chain, settlement, epoch, leaf, to)
            ),
            "InvalidSignature",
        ),
        (claim_to(settlement, epoch, leaf, to, signature, deadline=FAR - 1), "InvalidSignature"),
        (claim_to(settlement, epoch, leaf, to, b""), "InvalidSignature"),
    ]
    for call, error in refusals:
        with reverts(settlement, error, wallet.address):
            call.transact({"from": chain.accounts[2]})
    old = chain.now() - 1
    stale = sign(keeper, chain, settlement, epoch, leaf, to, old)
    with reverts(settlement, "SignatureExpired", old):
        claim_to(settlement, epoch, leaf, to, stale, old).transact({"from": chain.accounts[2]})

    # The keeper's signature, sent by a relayer, pays the wallet's share to `to`.
    before = chain.balance(to)
    receipt = chain.send(claim_to(settlement, epoch, leaf, to, signature), sender=chain.accounts[2])
    chain.record("claimTo, ether, ERC-1271 signature", receipt)
    assert chain.balance(to) - before == ETH
    (event,) = settlement.events.Claimed().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["payout"], event["args"]["to"]) == (wallet.address, to)
    assert settlement.functions.claimed(*epoch.ref(), *leaf_args(leaf)).call() == ETH
    # The same authorization pays the difference after a top-up, to the same address only.
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=4 * ETH)
    chain.send(claim_to(settlement, epoch, leaf, to, signature), sender=chain.accounts[3])
    assert chain.balance(to) - before == 2 * ETH
    with reverts(settlement, "NothingToClaim"):
        claim_to(settlement, epoch, leaf, to, signature).transact({"from": chain.accounts[2]})
    assert chain.balance(wallet.address) == 0


def test_a_contract_wallet_redirects_by_calling_itself(chain: Chain, settlement: Contract) -> None:
    keeper = chain.accounts[7]
    wallet = chain.payee("SigningWallet", keeper)
    leaf = Leaf(b"\xde" * 32, bytes.fromhex(wallet.address[2:]), 2)
    epoch = anchor(chain, settlement, [leaf, *make_leaves("self", [2])], project=PROJECT)
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=ETH)
    call = claim_to(settlement, epoch, leaf, keeper, b"", deadline=0)
    data = bytes.fromhex(call._encode_transaction_data()[2:])
    before = chain.balance(keeper)
    receipt = chain.send(wallet.functions.execute(settlement.address, data), sender=keeper)
    gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert chain.balance(keeper) - before + gas == ETH // 2
    # Nobody else may send it without the signature.
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=ETH)
    with reverts(settlement, "SignatureExpired", 0):
        call.transact({"from": keeper})
    with reverts(settlement, "InvalidSignature", wallet.address):
        claim_to(settlement, epoch, leaf, keeper, b"").transact({"from": keeper})


def test_an_account_a_token_blocks_redirects_by_ecdsa(chain: Chain, settlement: Contract) -> None:
    token = chain.token("TestToken", "USD", "USDC", 6)
    holder = key("blocked holder")
    leaf = Leaf(b"\xdf" * 32, bytes.fromhex(holder.address[2:]), 1)
    epoch = anchor(chain, settlement, [leaf, *make_leaves("ecdsa", [1])], project=PROJECT)
    funder = chain.accounts[1]
    mint_and_approve(chain, token, settlement.address, funder, 10 * USDC)
    chain.send(
        settlement.functions.fundToken(*epoch.ref(), token.address, 10 * USDC), sender=funder
    )
    chain.send(token.functions.setBlocked(holder.address, True))
    to = chain.accounts[8]
    signature = sign(holder, chain, settlement, epoch, leaf, to)
    receipt = chain.send(
        claim_to(settlement, epoch, leaf, to, signature, token=token.address),
        sender=chain.accounts[2],
    )
    chain.record("claimTo, token, ECDSA signature", receipt)
    assert token.functions.balanceOf(to).call() == 5 * USDC
    claimed = settlement.functions.claimedToken(*epoch.ref(), token.address, *leaf_args(leaf))
    assert claimed.call() == 5 * USDC
    # A redirect covers every token of the leaf: ether funded later goes to `to` as well.
    chain.send(settlement.functions.fund(*epoch.ref()), sender=funder, value=2 * ETH)
    before = chain.balance(to)
    chain.send(claim_to(settlement, epoch, leaf, to, signature), sender=chain.accounts[2])
    assert chain.balance(to) - before == ETH


def test_an_account_redirects_by_calling_without_a_signature(
    chain: Chain, settlement: Contract
) -> None:
    payout = chain.accounts[5]
    leaf = Leaf(b"\xe0" * 32, bytes.fromhex(payout[2:]), 1)
    epoch = anchor(chain, settlement, [leaf], project=PROJECT)
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=ETH)
    to = chain.accounts[6]
    before = chain.balance(to)
    # The payout sends it: no signature, and the deadline is not looked at.
    chain.send(claim_to(settlement, epoch, leaf, to, b"", deadline=0), sender=payout)
    assert chain.balance(to) - before == ETH


def test_a_redirect_holds_for_its_leaf_epoch_and_contract_only(chain: Chain) -> None:
    settlement = chain.settlement()
    elsewhere = chain.settlement()
    signer = key("one leaf")
    leaf = Leaf(b"\xe1" * 32, bytes.fromhex(signer.address[2:]), 1)
    first = anchor(chain, settlement, [leaf], project=PROJECT, number=1)
    second = anchor(chain, settlement, [leaf], project=PROJECT, number=2)
    copy = anchor(chain, elsewhere, [leaf], project=PROJECT, number=1)
    for contract, epoch in [(settlement, first), (settlement, second), (elsewhere, copy)]:
        chain.send(contract.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=ETH)
    to = chain.accounts[6]
    signature = sign(signer, chain, settlement, first, leaf, to)
    for contract, epoch in [(settlement, second), (elsewhere, copy)]:
        with reverts(contract, "InvalidSignature", checksum(leaf.payout)):
            claim_to(contract, epoch, leaf, to, signature).transact({"from": chain.accounts[2]})
    # Nor does it let the money go nowhere, even from the payout itself.
    own = sign(signer, chain, settlement, first, leaf, "0x" + "00" * 20)
    zero = "0x" + "00" * 20
    with reverts(settlement, "BadRecipient", zero):
        claim_to(settlement, first, leaf, zero, own).transact({"from": chain.accounts[2]})
    before = chain.balance(to)
    chain.send(claim_to(settlement, first, leaf, to, signature), sender=chain.accounts[2])
    assert chain.balance(to) - before == share(ETH, 1, 1)


def test_a_redirect_closes_with_the_claims(chain: Chain, settlement: Contract) -> None:
    signer = key("late")
    leaf = Leaf(b"\xe2" * 32, bytes.fromhex(signer.address[2:]), 1)
    epoch = anchor(chain, settlement, [leaf], project=PROJECT)
    chain.send(settlement.functions.fund(*epoch.ref()), sender=chain.accounts[1], value=ETH)
    to = chain.accounts[6]
    signature = sign(signer, chain, settlement, epoch, leaf, to)
    expires = settlement.functions.getExpiry(*epoch.ref()).call()
    chain.warp(expires - chain.now())
    with reverts(settlement, "EpochExpired", *epoch.ref(), expires):
        claim_to(settlement, epoch, leaf, to, signature).transact({"from": chain.accounts[2]})
