// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReceiverBase} from "vouch/ReceiverBase.sol";

/// @notice Proof of reserve: the DON reports the custodian's reserves (HTTP) and the token's
/// supply (an EVM read); this receiver checks the threshold onchain and keeps the last proof.
contract ReserveReceiver is ReceiverBase {
    /// @notice Reserves below minRatioBps of the supply: the report is refused.
    error Undercollateralized(uint256 reserves, uint256 supply, uint256 minRatioBps);

    event ReservesProven(uint256 reserves, uint256 supply, uint64 at);

    uint256 public immutable minRatioBps;
    uint256 public reserves;
    uint256 public supply;
    uint64 public provenAt;

    constructor(address forwarder, address workflowOwner, bytes32 workflowId, uint256 minRatioBps_)
        ReceiverBase(forwarder, workflowOwner, workflowId, 3600, 0, 0)
    {
        minRatioBps = minRatioBps_;
    }

    function _processReport(bytes32, bytes2, bytes32, bytes memory payload) internal override {
        (uint256 reported, uint256 total) = abi.decode(payload, (uint256, uint256));
        if (reported * 10_000 < total * minRatioBps) revert Undercollateralized(reported, total, minRatioBps);
        reserves = reported;
        supply = total;
        provenAt = uint64(block.timestamp);
        emit ReservesProven(reported, total, provenAt);
    }
}
