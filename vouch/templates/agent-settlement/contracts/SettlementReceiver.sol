// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReceiverBase} from "vouch/ReceiverBase.sol";

/// @notice Settles an agent's trade at the price the workflow's DON attested: only inside the
/// agent's bounds, before its deadline, and once. ReceiverBase checks the forwarder, the
/// workflow owner and id, the chain, the receiver and the report's age first.
contract SettlementReceiver is ReceiverBase {
    /// @notice The attested price is outside the bounds the agent proposed.
    error PriceOutOfBounds(uint256 price, uint256 minPrice, uint256 maxPrice);
    /// @notice The trade's deadline has passed.
    error TradeExpired(bytes32 tradeId, uint64 deadline, uint64 nowAt);
    /// @notice The trade was settled before: a report settles a trade once.
    error AlreadySettled(bytes32 tradeId);

    event TradeSettled(bytes32 indexed tradeId, uint256 baseAmount, uint256 price, uint256 quoteAmount);

    struct Settlement {
        uint256 baseAmount;
        uint256 price;
        uint256 quoteAmount;
        uint64 settledAt;
    }

    mapping(bytes32 => Settlement) public settlements;
    uint256 public settledCount;

    constructor(address forwarder, address workflowOwner, bytes32 workflowId)
        ReceiverBase(forwarder, workflowOwner, workflowId, 3600, 0, 0)
    {}

    function _processReport(bytes32, bytes2, bytes32, bytes memory payload) internal override {
        (bytes32 tradeId, uint256 amount, uint256 price, uint256 minPrice, uint256 maxPrice, uint64 deadline) =
            abi.decode(payload, (bytes32, uint256, uint256, uint256, uint256, uint64));
        if (price < minPrice || price > maxPrice) revert PriceOutOfBounds(price, minPrice, maxPrice);
        if (block.timestamp > deadline) revert TradeExpired(tradeId, deadline, uint64(block.timestamp));
        if (settlements[tradeId].settledAt != 0) revert AlreadySettled(tradeId);
        uint256 quoteAmount = amount * price / 1e18;
        settlements[tradeId] = Settlement(amount, price, quoteAmount, uint64(block.timestamp));
        settledCount += 1;
        emit TradeSettled(tradeId, amount, price, quoteAmount);
    }
}
