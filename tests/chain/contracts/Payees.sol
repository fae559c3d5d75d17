// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

// Test-only payout addresses that misbehave when paid. They are compiled by
// scripts/build-contract like the protocol's contract, and never deployed outside tests.

/// @notice A payout address that refuses every payment.
contract RejectingPayee {
    /// @notice Raised on every payment.
    error Refused();

    receive() external payable {
        revert Refused();
    }
}

/// @notice A payout address that, when paid, calls back into the contract that pays it: to try to
/// be paid again, or to read its state in the middle of the payment. The outcome of the call is
/// recorded rather than passed on, so that the outer payment succeeds and a test can check both
/// what was paid and what the call returned or why it failed.
contract ReentrantPayee {
    address public target;
    bytes public payload;
    uint256 public attemptsLeft;
    uint256 public attempts;
    uint256 public successes;
    /// @notice The return data of the last call, or its revert data if it failed.
    bytes public lastResult;

    /// @notice Makes the next `attempts_` payments each call `target_` with `payload_`.
    function arm(address target_, bytes calldata payload_, uint256 attempts_) external {
        target = target_;
        payload = payload_;
        attemptsLeft = attempts_;
    }

    receive() external payable {
        if (attemptsLeft == 0) return;
        attemptsLeft -= 1;
        attempts += 1;
        (bool ok, bytes memory result) = target.call(payload);
        if (ok) successes += 1;
        lastResult = result;
    }
}
