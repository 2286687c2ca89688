// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {ERC165, IERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {IReceiver} from "./interfaces/IReceiver.sol";

/// @title ReceiverBase - the checks every vouch receiver makes before it acts on a report
/// @notice Only the configured forwarder may deliver; the workflow owner and id must match;
/// the body must name this chain and this contract; the report must be fresh. A receiver may
/// also pin the DON: only reports verified under that DON's config (at or above a minimum config
/// version) are accepted, not any DON the forwarder is configured for. vouch's Forwarder appends
/// the verifying config's id after onReport's arguments (one word, ERC-2771 style:
/// (donId << 32) | configVersion); a pinned receiver refuses a call without it.
/// Body layout: abi.encode(uint256 chainId, address receiver, uint64 timestamp, bytes32 actionHash, bytes payload).
abstract contract ReceiverBase is IReceiver, ERC165 {
    /// @notice The caller is not the configured forwarder.
    error InvalidForwarder(address sender, address expected);
    /// @notice The report comes from another workflow owner.
    error InvalidWorkflowOwner(address received, address expected);
    /// @notice The report comes from another workflow.
    error InvalidWorkflowId(bytes32 received, bytes32 expected);
    /// @notice The report was built for another chain.
    error WrongChain(uint256 received, uint256 expected);
    /// @notice The report was built for another receiver.
    error WrongReceiver(address received, address expected);
    /// @notice The report is older than the freshness window.
    error StaleReport(uint64 reportTimestamp, uint256 blockTimestamp, uint32 window);
    /// @notice The report's timestamp lies more than MAX_FUTURE_SKEW seconds in the future.
    error ReportFromFuture(uint64 reportTimestamp, uint256 blockTimestamp);
    /// @notice The metadata is not 64 bytes.
    error InvalidMetadata(uint256 length);
    /// @notice The report was verified under another DON's config.
    error InvalidDon(uint32 received, uint32 expected);
    /// @notice The report was verified under a config version below the accepted minimum.
    error InvalidConfigVersion(uint32 received, uint32 minimum);
    /// @notice A pinned receiver got a call without the forwarder's config word (calldata length).
    error MissingConfigId(uint256 calldataLength);

    /// @dev How far (seconds) a report's timestamp may run ahead of the block (clock skew).
    uint256 internal constant MAX_FUTURE_SKEW = 60;
    /// @dev workflowId (32) | workflowName (10) | workflowOwner (20) | reportId (2).
    uint256 internal constant METADATA_LENGTH = 64;

    address internal immutable i_forwarder;
    address internal immutable i_workflowOwner;
    bytes32 internal immutable i_workflowId;
    uint32 internal immutable i_freshnessWindow;
    uint32 internal immutable i_donId;
    uint32 internal immutable i_minConfigVersion;

    /// @param forwarder The only address allowed to call onReport.
    /// @param workflowOwner The workflow owner every report's metadata must name.
    /// @param workflowId The workflow id every report's metadata must name.
    /// @param freshnessWindowSeconds How old (seconds) a report may be when it arrives.
    /// @param donId The only DON whose reports are accepted; 0 accepts any DON the forwarder has
    /// (required for Chainlink's KeystoneForwarder, which does not pass the DON on).
    /// @param minConfigVersion The lowest accepted config version of that DON.
    constructor(
        address forwarder,
        address workflowOwner,
        bytes32 workflowId,
        uint32 freshnessWindowSeconds,
        uint32 donId,
        uint32 minConfigVersion
    ) {
        i_forwarder = forwarder;
        i_workflowOwner = workflowOwner;
        i_workflowId = workflowId;
        i_freshnessWindow = freshnessWindowSeconds;
        i_donId = donId;
        i_minConfigVersion = minConfigVersion;
    }

    /// @inheritdoc IReceiver
    function onReport(bytes calldata metadata, bytes calldata report) external override {
        if (msg.sender != i_forwarder) revert InvalidForwarder(msg.sender, i_forwarder);
        if (metadata.length != METADATA_LENGTH) revert InvalidMetadata(metadata.length);
        bytes32 workflowId = bytes32(metadata[0:32]);
        address owner = address(bytes20(metadata[42:62]));
        if (owner != i_workflowOwner) revert InvalidWorkflowOwner(owner, i_workflowOwner);
        if (workflowId != i_workflowId) revert InvalidWorkflowId(workflowId, i_workflowId);
        (uint256 chainId, address receiver, uint64 timestamp, bytes32 actionHash, bytes memory payload) =
            abi.decode(report, (uint256, address, uint64, bytes32, bytes));
        if (chainId != block.chainid) revert WrongChain(chainId, block.chainid);
        if (receiver != address(this)) revert WrongReceiver(receiver, address(this));
        if (timestamp > block.timestamp + MAX_FUTURE_SKEW) revert ReportFromFuture(timestamp, block.timestamp);
        if (timestamp + i_freshnessWindow < block.timestamp) {
            revert StaleReport(timestamp, block.timestamp, i_freshnessWindow);
        }
        if (i_donId != 0) _checkDon(report.length);
        _processReport(workflowId, bytes2(metadata[62:64]), actionHash, payload);
    }

    /// @inheritdoc ERC165
    function supportsInterface(bytes4 interfaceId) public view virtual override(ERC165, IERC165) returns (bool) {
        return interfaceId == type(IReceiver).interfaceId || super.supportsInterface(interfaceId);
    }

    /// @notice The forwarder, workflow owner, workflow id and freshness window this receiver accepts.
    function getReceiverConfig()
        external
        view
        returns (address forwarder, address workflowOwner, bytes32 workflowId, uint32 freshnessWindow)
    {
        return (i_forwarder, i_workflowOwner, i_workflowId, i_freshnessWindow);
    }

    /// @notice The DON this receiver is pinned to (0: any) and the lowest config version it accepts.
    function getDonPin() external view returns (uint32 donId, uint32 minConfigVersion) {
        return (i_donId, i_minConfigVersion);
    }

    /// @dev The forwarder's config word follows onReport's canonical ABI encoding: selector (4),
    /// two offsets (64), metadata length and its 64 bytes (96), report length (32) and the report
    /// padded to a word; anything else means no (or a forged-length) word, and a pinned receiver refuses.
    function _checkDon(uint256 reportLength) internal view {
        uint256 encoded = 196 + ((reportLength + 31) & ~uint256(31));
        if (msg.data.length != encoded + 32) revert MissingConfigId(msg.data.length);
        uint256 configId = uint256(bytes32(msg.data[encoded:encoded + 32]));
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 donId = uint32(configId >> 32); // the forwarder's 64-bit config id: two 32-bit halves
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 configVersion = uint32(configId);
        if (donId != i_donId) revert InvalidDon(donId, i_donId);
        if (configVersion < i_minConfigVersion) revert InvalidConfigVersion(configVersion, i_minConfigVersion);
    }

    /// @dev Act on a report that passed every check above.
    function _processReport(bytes32 workflowId, bytes2 reportId, bytes32 actionHash, bytes memory payload)
        internal
        virtual;
}
