// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @dev Keeps 1% of every transfer (a fee-on-transfer token).
contract FeeToken is ERC20 {
    constructor() ERC20("Fee", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0xFEE), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}

/// @dev Refuses transfers to blocked accounts (a blocklist, as USDC's), or all while paused.
contract BlockingToken is ERC20 {
    mapping(address account => bool blocked) public blocked;
    bool public paused;

    constructor() ERC20("Blocking", "BLK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBlocked(address account, bool isBlocked) external {
        blocked[account] = isBlocked;
    }

    function setPaused(bool isPaused) external {
        paused = isPaused;
    }

    function _update(address from, address to, uint256 value) internal override {
        require(!paused && !blocked[to] && !blocked[from], "BlockingToken: blocked");
        super._update(from, to, value);
    }
}

/// @dev Burns all the gas it is given on transfers to a marked account (a hostile hook).
contract GasBurningToken is ERC20 {
    mapping(address account => bool marked) public marked;

    constructor() ERC20("Burner", "BRN") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function mark(address account) external {
        marked[account] = true;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (marked[to]) {
            while (true) {} // forge-lint: disable-line
        }
        super._update(from, to, value);
    }
}
