// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken - a freely mintable ERC-20 for local test chains only
/// @notice Anyone can mint. Never deploy this anywhere value is at stake.
contract TestToken is ERC20 {
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Mint `amount` to `to` (local test chains only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
