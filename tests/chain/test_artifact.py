"""The contract's artifact: what the package ships, that it is what runs, and that it rebuilds."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from protocol.contract import NAME, artifact
from tests.support.anvil import HARDFORK, ROOT
from tests.support.evm import CONTRACTS, Chain

ARTIFACTS = [
    ROOT / "protocol" / "contracts" / f"{NAME}.json",
    CONTRACTS / "RejectingPayee.json",
    CONTRACTS / "ReentrantPayee.json",
]
BUILD_TIMEOUT = 300

# The external interface the node, relayers and block explorers rely on. A change here is a
# protocol change: it needs a new contract, not an edit of this list.
INTERFACE = {
    "function anchor(bytes32,uint64,bytes32,uint32,uint256)",
    "function fund(address,bytes32,uint64)",
    "function claim(address,bytes32,uint64,bytes32,address,uint256,bytes32[])",
    "function getEpoch(address,bytes32,uint64)",
    "function claimed(address,bytes32,uint64,bytes32,address,uint256)",
    "function claimable(address,bytes32,uint64,bytes32,address,uint256)",
    "function verify(address,bytes32,uint64,bytes32,address,uint256,bytes32[])",
    "function leafHash(bytes32,address,uint256)",
    "event Anchored(address,bytes32,uint64,bytes32,uint32,uint256)",
    "event Funded(address,bytes32,uint64,address,uint256,uint256)",
    "event Claimed(address,bytes32,uint64,bytes32,address,uint256,uint256)",
    "error ZeroRoot()",
    "error EmptyEpoch()",
    "error TotalWeightOutOfRange(uint32,uint256)",
    "error AlreadyAnchored(address,bytes32,uint64)",
    "error NotAnchored(address,bytes32,uint64)",
    "error ZeroFunding()",
    "error FundingOverflow(uint256)",
    "error InvalidProof()",
    "error NothingToClaim()",
    "error Overdrawn(uint256,uint256)",
    "error PaymentFailed(address,uint256)",
    "error ReentrancyGuardReentrantCall()",
}


def test_the_artifact_loads() -> None:
    built = artifact()
    assert built.name == NAME
    assert built.compiler == "solc 0.8.37+commit.f401782d"
    assert built.settings["evmVersion"] == HARDFORK
    assert built.settings["optimizer"] == {"enabled": True, "runs": 10000}
    assert len(built.input_sha256) == 64
    signatures = {
        f"{e['type']} {e['name']}({','.join(i['type'] for i in e['inputs'])})" for e in built.abi
    }
    assert signatures == INTERFACE
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
