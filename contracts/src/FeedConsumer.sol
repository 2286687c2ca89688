// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {ReceiverBase} from "./ReceiverBase.sol";

/// @title FeedConsumer - keeps the latest DON-attested value of each feed a feeds workflow reports
/// @notice A Keystone receiver for feeds reports, payload abi.encode(string[] feeds, string[] modes,
/// int256[] values): every field becomes its feed's latest value, stamped with the report's timestamp.
/// ReceiverBase checks the forwarder, the workflow owner and id, the chain, this contract and the
/// freshness window first. A report older than a feed's latest is refused as a whole, so reports
/// that arrive out of order never move a feed back in time. Reports of the same second are accepted
/// in the order they arrive (the forwarder refuses an exact replay of one).
contract FeedConsumer is ReceiverBase {
    /// @notice A feed's latest attested value and the timestamp of the report that carried it.
    struct Latest {
        int256 value;
        uint64 timestamp;
    }

    /// @notice The payload's arrays differ in length, or carry no field.
    error InvalidFeedsPayload(uint256 feeds, uint256 modes, uint256 values);
    /// @notice The report is older than the value already stored for `feed`.
    error StaleFeedReport(string feed, uint64 reportTimestamp, uint64 latestTimestamp);
    /// @notice No report has carried `feed` yet.
    error FeedNotReported(string feed);

    /// @notice Emitted for every field of a delivered report: `feed` now reads `value`.
    /// @param executionId The workflow execution that attested it (the report's action hash).
    event FeedUpdated(string feed, int256 value, uint64 timestamp, bytes32 indexed executionId);

    /// @notice The contract's type and version.
    string public constant typeAndVersion = "vouch FeedConsumer 1.0.0";

    mapping(bytes32 feedId => Latest latest) internal s_latest;

    /// @param forwarder The only address allowed to deliver reports.
    /// @param workflowOwner The workflow owner reports must name.
    /// @param workflowId The workflow id reports must name.
    /// @param freshnessWindow How old (seconds) a report may be when it arrives.
    constructor(address forwarder, address workflowOwner, bytes32 workflowId, uint32 freshnessWindow)
        ReceiverBase(forwarder, workflowOwner, workflowId, freshnessWindow, 0, 0)
    {}

    /// @notice The latest attested value of `feed` and the timestamp of its report.
    /// @param feed The feed's name, as the workflow reports it (e.g. "ETH/USD").
    /// @return value The value (the feed's own decimals; prices carry 18).
    /// @return timestamp The report's timestamp (seconds).
    function latest(string calldata feed) external view returns (int256 value, uint64 timestamp) {
        Latest memory stored = s_latest[keccak256(bytes(feed))];
        if (stored.timestamp == 0) revert FeedNotReported(feed);
        return (stored.value, stored.timestamp);
    }

    /// @inheritdoc ReceiverBase
    function _processReport(bytes32, bytes2, bytes32 actionHash, bytes memory payload) internal override {
        (string[] memory feeds, string[] memory modes, int256[] memory values) =
            abi.decode(payload, (string[], string[], int256[]));
        if (feeds.length == 0 || feeds.length != modes.length || feeds.length != values.length) {
            revert InvalidFeedsPayload(feeds.length, modes.length, values.length);
        }
        uint64 timestamp = _reportTimestamp();
        for (uint256 i = 0; i < feeds.length; ++i) {
            Latest storage stored = s_latest[keccak256(bytes(feeds[i]))];
            if (timestamp < stored.timestamp) revert StaleFeedReport(feeds[i], timestamp, stored.timestamp);
            stored.value = values[i];
            stored.timestamp = timestamp;
            emit FeedUpdated(feeds[i], values[i], timestamp, actionHash);
        }
    }

    /// @dev The body's timestamp, which ReceiverBase decoded and checked but does not hand to
    /// _processReport: read it again from onReport(bytes metadata, bytes report)'s calldata. The
    /// second head word is the offset of `report`; its third word (after the length) is the timestamp.
    function _reportTimestamp() private pure returns (uint64) {
        uint256 at = 4 + uint256(bytes32(msg.data[36:68])) + 32 + 64;
        return uint64(uint256(bytes32(msg.data[at:at + 32])));
    }
}
