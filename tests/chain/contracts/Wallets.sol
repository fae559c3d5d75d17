// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

// A test-only smart-contract wallet, compiled by scripts/build-contract like the protocol's
// contract and never deployed outside tests.

/// @notice A contract wallet that refuses ether (as a wallet without a receive function does),
/// signs for itself through ERC-1271 with its keeper's key, and lets its keeper make calls from
/// it. As a leaf's payout it cannot be paid in ether, but it can redirect its claims: by a
/// signature the settlement contract checks with `isValidSignature`, or by calling `claimTo`
/// itself through `execute`.
contract SigningWallet is IERC1271 {
    address public immutable keeper;

    /// @notice Raised on every payment of ether.
    error Refused();

    /// @notice Raised when someone other than the keeper asks the wallet to make a call.
    error NotKeeper();

    constructor(address keeper_) {
        keeper = keeper_;
    }

    receive() external payable {
        revert Refused();
    }

    /// @notice Accepts a hash signed by the keeper's key (ERC-1271's magic value), nothing else.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (err == ECDSA.RecoverError.NoError && signer == keeper) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }

    /// @notice Calls `target` with `data` from the wallet, for its keeper; passes on a revert.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != keeper) revert NotKeeper();
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }
}
