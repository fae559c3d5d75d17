// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

// Test-only ERC-20 tokens, each with one of the habits that real tokens have and that the
// settlement contract must survive. They are compiled by scripts/build-contract like the
// protocol's contract, and never deployed outside tests and benchmarks. Anyone may mint: a test
// gives its accounts what they need.

/// @notice A plain token with the decimals it is given (18 like most, 6 like USDC), and a
/// blocklist like USDC's: a transfer from or to a blocked address reverts with USDC's reason.
contract TestToken is ERC20 {
    uint8 private immutable _decimals;
    mapping(address account => bool) public blocked;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBlocked(address account, bool value) external {
        blocked[account] = value;
    }

    function _update(address from, address to, uint256 value) internal override {
        require(!blocked[from] && !blocked[to], "Blacklistable: account is blacklisted");
        super._update(from, to, value);
    }
}

/// @notice A token in the manner of USDT on Ethereum: `transfer`, `transferFrom` and `approve`
/// return nothing (so a caller that expects a bool fails to decode), a failure reverts without a
/// reason, an allowance can only be set when it is zero (approve 0 first), and 6 decimals.
contract NoReturnToken {
    string public constant name = "Tether-like";
    string public constant symbol = "USDT";
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address holder => mapping(address spender => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 value) external {
        _move(msg.sender, to, value);
    }

    function transferFrom(address from, address to, uint256 value) external {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value);
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
    }

    function approve(address spender, uint256 value) external {
        require(value == 0 || allowance[msg.sender][spender] == 0);
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
    }

    function _move(address from, address to, uint256 value) private {
        require(balanceOf[from] >= value);
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

/// @notice A fee-on-transfer token: every transfer burns `feeBps` / 10,000 of the amount, so the
/// recipient gets less than was sent (and the sender loses exactly what was sent).
contract FeeToken is ERC20 {
    uint256 public immutable feeBps;

    constructor(uint256 feeBps_) ERC20("Fee token", "FEE") {
        feeBps = feeBps_;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = value * feeBps / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}

/// @notice A token that calls back into a contract whenever it moves (as ERC-777 hooks or a
/// malicious token would): after each of its next `attemptsLeft` transfers it calls `target` with
/// `payload` and records the outcome rather than passing it on, so that the transfer itself
/// succeeds and a test can check both what moved and what the call returned or why it failed.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public payload;
    uint256 public attemptsLeft;
    uint256 public attempts;
    uint256 public successes;
    /// @notice The return data of the last call, or its revert data if it failed.
    bytes public lastResult;

    constructor() ERC20("Reentrant token", "HOOK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Makes the next `attempts_` transfers each call `target_` with `payload_`.
    function arm(address target_, bytes calldata payload_, uint256 attempts_) external {
        target = target_;
        payload = payload_;
        attemptsLeft = attempts_;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (attemptsLeft == 0 || from == address(0)) return;
        attemptsLeft -= 1;
        attempts += 1;
        (bool ok, bytes memory result) = target.call(payload);
        if (ok) successes += 1;
        lastResult = result;
    }
}
