"""The contract's artifact: what the package ships, that it is what runs, and that it rebuilds."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from protocol.contract import NAME, artifact
from tests.support.anvil import HARDFORK, ROOT
from tests.support.evm import CONTRACTS, Chain

ARTIFACTS = [
    ROOT / "protocol" / "contracts" / f"{NAME}.json",
    *(
        CONTRACTS / f"{name}.json"
        for name in (
            "RejectingPayee",
            "ReentrantPayee",
            "TestToken",
            "NoReturnToken",
            "FeeToken",
            "ReentrantToken",
            "SigningWallet",
        )
    ),
]
BUILD_TIMEOUT = 300

# The external interface the node, relayers, wallets and block explorers rely on. A change here is
# a protocol change: it needs a new contract, not an edit of this list. This is the second
# contract: it kept every function of the first (ether funding and claims) with its signature
# and added tokens, expiry and refunds, redirects and pools; its events carry the token.
INTERFACE = {
    # Epochs.
    "function anchor(bytes32,uint64,bytes32,uint32,uint256)",
    "function fund(address,bytes32,uint64)",
    "function fundToken(address,bytes32,uint64,address,uint256)",
    "function claim(address,bytes32,uint64,bytes32,address,uint256,bytes32[])",
    "function claimToken(address,bytes32,uint64,address,bytes32,address,uint256,bytes32[])",
    "function claimTo(address,bytes32,uint64,address,bytes32,address,uint256,bytes32[],"
    "(address,uint256,bytes))",
    "function refund(address,bytes32,uint64,address,address,address)",
    "function returnToPool(address,bytes32,uint64,address)",
    # Pools.
    "function fundPool(address,bytes32)",
    "function fundPoolToken(address,bytes32,address,uint256)",
    "function allocate(bytes32,uint64,address,uint256)",
    "function refundPool(address,bytes32,address,address,address)",
    "function closePools(bytes32)",
    # Views.
    "function getEpoch(address,bytes32,uint64)",
    "function getExpiry(address,bytes32,uint64)",
    "function getFunds(address,bytes32,uint64,address)",
    "function claimed(address,bytes32,uint64,bytes32,address,uint256)",
    "function claimedToken(address,bytes32,uint64,address,bytes32,address,uint256)",
    "function claimable(address,bytes32,uint64,bytes32,address,uint256)",
    "function claimableToken(address,bytes32,uint64,address,bytes32,address,uint256)",
    "function stake(address,bytes32,uint64,address,address)",
    "function refundable(address,bytes32,uint64,address,address)",
    "function getPool(address,bytes32,address)",
    "function poolStake(address,bytes32,address,address)",
    "function poolsClosedAt(address,bytes32)",
    "function poolRefundable(address,bytes32,address,address)",
    "function verify(address,bytes32,uint64,bytes32,address,uint256,bytes32[])",
    "function leafHash(bytes32,address,uint256)",
    "function redirectDigest(address,bytes32,uint64,bytes32,address,uint256,address,uint256)",
    "function eip712Domain()",
    "function ETHER()",
    "function CLAIM_PERIOD()",
    "function POOL_TIMEOUT()",
    # Events.
    "event Anchored(address,bytes32,uint64,bytes32,uint32,uint256,uint64)",
    "event Funded(address,bytes32,uint64,address,address,uint256,uint256)",
    "event Claimed(address,bytes32,uint64,address,bytes32,address,address,uint256,uint256)",
    "event Refunded(address,bytes32,uint64,address,address,address,uint256)",
    "event PoolFunded(address,bytes32,address,address,uint256,uint256,uint64)",
    "event PoolAllocated(address,bytes32,uint64,address,uint256,uint256,uint64)",
    "event PoolReturned(address,bytes32,uint64,address,uint256,uint256)",
    "event PoolRefunded(address,bytes32,address,address,address,uint256)",
    "event PoolsClosed(address,bytes32,uint64)",
    # Errors.
    "error ZeroRoot()",
    "error EmptyEpoch()",
    "error TotalWeightOutOfRange(uint32,uint256)",
    "error AlreadyAnchored(address,bytes32,uint64)",
    "error NotAnchored(address,bytes32,uint64)",
    "error EpochExpired(address,bytes32,uint64,uint64)",
    "error EpochNotExpired(address,bytes32,uint64,uint64)",
    "error ZeroFunding()",
    "error NotAToken()",
    "error FundingOverflow(uint256)",
    "error InvalidProof()",
    "error NothingToClaim()",
    "error Overdrawn(uint256,uint256)",
    "error PaymentFailed(address,uint256)",
    "error BadRecipient(address)",
    "error InvalidSignature(address)",
    "error SignatureExpired(uint256)",
    "error NotFunder(address)",
    "error NothingToRefund()",
    "error PoolExpired(address,bytes32,address,uint64)",
    "error PoolNotExpired(address,bytes32,address,uint64)",
    "error PoolsAlreadyClosed(address,bytes32,uint64)",
    "error InsufficientPool(uint256,uint256)",
    "error ReentrancyGuardReentrantCall()",
    "error SafeERC20FailedOperation(address)",
}

# Every event names the owner (the anchoring address) and the project as indexed topics, so that
# a node or an auditor can follow a project's money with one log filter.
INDEXED = {"owner", "projectId"}


def _type(entry: dict[str, Any]) -> str:
    if entry["type"] == "tuple":
        return "(" + ",".join(_type(c) for c in entry["components"]) + ")"
    return str(entry["type"])


def test_the_artifact_loads() -> None:
    built = artifact()
    assert built.name == NAME
    assert built.compiler == "solc 0.8.37+commit.f401782d"
    assert built.settings["evmVersion"] == HARDFORK
    assert built.settings["optimizer"] == {"enabled": True, "runs": 10000}
    assert len(built.input_sha256) == 64
    signatures = {
        f"{e['type']} {e['name']}({','.join(_type(i) for i in e['inputs'])})" for e in built.abi
    }
    assert signatures == INTERFACE
    for event in (e for e in built.abi if e["type"] == "event"):
        indexed = {i["name"] for i in event["inputs"] if i["indexed"]}
        assert indexed >= INDEXED, event["name"]
    # Each call returns its own ABI dictionaries, so that no caller can change another's.
    assert artifact().abi[0] is not built.abi[0]
    assert artifact() == built


def test_the_deployed_code_is_the_artifact(chain: Chain) -> None:
    contract = chain.settlement()
    assert bytes(chain.w3.eth.get_code(contract.address)) == artifact().deployed_bytecode


def test_the_package_ships_source_and_artifact() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["package-data"]["protocol"]
    assert {"contracts/*.sol", "contracts/*.json"} <= set(shipped)
    assert (ROOT / "protocol" / "contracts" / f"{NAME}.sol").is_file()


@pytest.mark.slow
def test_the_artifacts_rebuild_byte_for_byte(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the pinned compiler is the npm package solc")
    if not (ROOT / "node_modules" / "solc" / "package.json").is_file():
        pytest.skip("node_modules/solc is missing: run scripts/setup")
    subprocess.run(
        [node, "scripts/contract/build.mjs", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT,
    )
    for committed in ARTIFACTS:
        want = json.loads(committed.read_text())
        got = json.loads((tmp_path / committed.name).read_text())
        name = committed.relative_to(ROOT)
        assert got["bytecode"] == want["bytecode"], f"{name}: creation bytecode differs"
        assert got["deployedBytecode"] == want["deployedBytecode"], f"{name}: runtime differs"
        assert got == want, f"{name} differs from a fresh build: run scripts/build-contract"
