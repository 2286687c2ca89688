// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @title IReceiver - receives Keystone reports (same interface as Chainlink's keystone IReceiver)
/// @notice Implementations must support the IReceiver interface through ERC165.
interface IReceiver is IERC165 {
    /// @notice Handles an incoming report.
    /// @param metadata workflowId (32) | workflowName (10) | workflowOwner (20) | reportId (2)
    /// @param report The workflow's report body.
    function onReport(bytes calldata metadata, bytes calldata report) external;
}
