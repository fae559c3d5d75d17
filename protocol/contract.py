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

__all__ = ["NAME", "Artifact", "artifact"]

NAME = "WorkWorkSettlement"


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
