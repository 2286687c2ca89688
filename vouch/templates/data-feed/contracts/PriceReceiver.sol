// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReceiverBase} from "vouch/ReceiverBase.sol";

/// @notice Keeps the latest price the workflow's DON attested (a data-feed receiver).
/// The forwarder calls onReport; ReceiverBase checks the forwarder, the workflow owner and id,
/// the chain, the receiver and the report's age before _processReport runs.
contract PriceReceiver is ReceiverBase {
    /// @notice A report above the bound this receiver accepts.
    error PriceOutOfBounds(uint256 price, uint256 maxPrice);

    event PriceUpdated(uint256 price, uint64 at);

    uint256 public immutable maxPrice;
    uint256 public price;
    uint64 public updatedAt;

    constructor(address forwarder, address workflowOwner, bytes32 workflowId, uint256 maxPrice_)
        ReceiverBase(forwarder, workflowOwner, workflowId, 3600, 0, 0)
    {
        maxPrice = maxPrice_;
    }

    function _processReport(bytes32, bytes2, bytes32, bytes memory payload) internal override {
        uint256 value = abi.decode(payload, (uint256));
        if (value > maxPrice) revert PriceOutOfBounds(value, maxPrice);
        price = value;
        updatedAt = uint64(block.timestamp);
        emit PriceUpdated(value, updatedAt);
    }
}
