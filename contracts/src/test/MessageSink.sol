// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IMessageReceiver} from "../CrossChainGateway.sol";

/// @title MessageSink - a CrossChainGateway receiver for local test chains: records what arrives
/// @notice Reverts while broken, so a failed execution and its manual re-execution can be shown.
contract MessageSink is IMessageReceiver {
    /// @notice Emitted for every message received.
    event MessageReceived(uint256 indexed sourceChainId, address indexed sender, bytes payload, uint256 value);

    bool internal s_broken;
    uint256 internal s_calls;
    bytes internal s_lastPayload;
    mapping(bytes32 key => uint256 count) internal s_received;

    /// @notice Make receiveMessage revert (true) or accept (false).
    /// @param broken Whether to revert.
    function setBroken(bool broken) external {
        s_broken = broken;
    }

    /// @inheritdoc IMessageReceiver
    function receiveMessage(uint256 sourceChainId, address sender, bytes calldata payload, uint256 value) external {
        if (s_broken) revert("MessageSink: broken");
        ++s_calls;
        s_lastPayload = payload;
        ++s_received[keccak256(abi.encode(sourceChainId, sender, payload))];
        emit MessageReceived(sourceChainId, sender, payload, value);
    }

    /// @notice How many messages arrived.
    function calls() external view returns (uint256) {
        return s_calls;
    }

    /// @notice The last payload received.
    function lastPayload() external view returns (bytes memory) {
        return s_lastPayload;
    }

    /// @notice How often (sourceChainId, sender, payload) arrived.
    /// @param sourceChainId The source chain.
    /// @param sender The sender there.
    /// @param payload The payload.
    function received(uint256 sourceChainId, address sender, bytes calldata payload) external view returns (uint256) {
        return s_received[keccak256(abi.encode(sourceChainId, sender, payload))];
    }
}
