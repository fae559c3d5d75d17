"""The settlement contract's compiled artifact, as shipped in this package.

`protocol/contracts/WorkWorkSettlement.sol` is the source and `WorkWorkSettlement.json` the
artifact that `scripts/build-contract` compiles from it with the pinned solc; a test rebuilds it
and checks that the bytes are the same. This module only reads that file: deploying and calling
the contract is the node's business.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["ETHER", "NAME", "Artifact", "artifact", "redirect_typed_data"]

NAME = "WorkWorkSettlement"
# The token address that stands for ether in every function of the contract that takes a token.
ETHER = bytes(20)

# The EIP-712 type a leaf's payout signs to let its claims be paid to another address (the
# contract's `claimTo`); the contract hashes exactly these fields in this order.
_REDIRECT_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Redirect": [
        {"name": "owner", "type": "address"},
        {"name": "projectId", "type": "bytes32"},
        {"name": "epoch", "type": "uint64"},
        {"name": "contributionId", "type": "bytes32"},
        {"name": "payout", "type": "address"},
        {"name": "weight", "type": "uint256"},
        {"name": "to", "type": "address"},
        {"name": "deadline", "type": "uint256"},
    ],
}


@dataclass(frozen=True, slots=True)
class Artifact:
    """A compiled contract: what a client needs to deploy it, call it and verify it.

    `abi` is the JSON ABI as solc writes it, a tuple of entries; `settings` and `input_sha256`
    identify the build (the sha256 of the exact standard JSON input given to the compiler, which
    `node scripts/contract/build.mjs --input <source>` prints for block-explorer verification).
    """

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler: str
    settings: dict[str, Any]
    input_sha256: str


def artifact() -> Artifact:
    """Returns the settlement contract's artifact, read from the package's data.

    Every call reads and parses the file again (about a millisecond), so callers never share, and
    cannot corrupt, each other's ABI dictionaries.
    """
    text = resources.files("protocol").joinpath(f"contracts/{NAME}.json").read_text("utf-8")
    data = json.loads(text)
    compiler = data["compiler"]
    return Artifact(
        name=data["contractName"],
        abi=tuple(data["abi"]),
        bytecode=_hex(data["bytecode"]),
        deployed_bytecode=_hex(data["deployedBytecode"]),
        compiler=f"{compiler['name']} {compiler['version']}",
        settings=data["settings"],
        input_sha256=data["inputSha256"],
    )


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def redirect_typed_data(
    *,
    chain_id: int,
    contract: bytes,
    owner: bytes,
    project_id: bytes,
    epoch: int,
    contribution_id: bytes,
    payout: bytes,
    weight: int,
    to: bytes,
    deadline: int,
) -> dict[str, Any]:
    """Returns the EIP-712 message by which a leaf's payout lets its claims go to `to`.

    The message is the JSON form of `eth_signTypedData_v4` (addresses and bytes as 0x-hex), so a
    wallet shows it field by field and any EIP-712 library signs it; the contract checks the
    signature against the leaf's payout (ECDSA, or ERC-1271 for a contract wallet) in `claimTo`,
    on this chain and at this contract only, until `deadline` (a Unix time, inclusive).
    """
    return {
        # A fresh copy each time, so that no caller can change another's message.
        "types": {name: [dict(f) for f in fields] for name, fields in _REDIRECT_TYPES.items()},
        "primaryType": "Redirect",
        "domain": {
            "name": NAME,
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": "0x" + contract.hex(),
        },
        "message": {
            "owner": "0x" + owner.hex(),
            "projectId": "0x" + project_id.hex(),
            "epoch": epoch,
            "contributionId": "0x" + contribution_id.hex(),
            "payout": "0x" + payout.hex(),
            "weight": weight,
            "to": "0x" + to.hex(),
            "deadline": deadline,
        },
    }
