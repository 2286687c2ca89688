// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {BaseTest} from "./Base.t.sol";
import {Forwarder} from "../src/Forwarder.sol";
import {FeedConsumer} from "../src/FeedConsumer.sol";
import {ReceiverBase} from "../src/ReceiverBase.sol";

contract FeedConsumerTest is BaseTest {
    event FeedUpdated(string feed, int256 value, uint64 timestamp, bytes32 indexed executionId);
    event ReportProcessed(
        address indexed receiver, bytes32 indexed workflowExecutionId, bytes2 indexed reportId, bool result
    );

    int256 internal constant ETH = 3_000e18;
    int256 internal constant BTC = 60_000e18;

    FeedConsumer internal s_consumer;

    function setUp() public override {
        super.setUp();
        s_consumer = new FeedConsumer(address(s_forwarder), s_owner, s_workflowId, FRESHNESS);
    }

    // ------------------------------------------------------------------ helpers

    function _one(string memory feed) internal pure returns (string[] memory feeds) {
        feeds = new string[](1);
        feeds[0] = feed;
    }

    function _values(int256 value) internal pure returns (int256[] memory values) {
        values = new int256[](1);
        values[0] = value;
    }

    function _modes(uint256 n) internal pure returns (string[] memory modes) {
        modes = new string[](n);
        for (uint256 i = 0; i < n; ++i) {
            modes[i] = "median";
        }
    }

    /// @dev A feeds body for s_consumer: abi.encode(chainId, receiver, timestamp, executionId, payload).
    function _feedsBody(string[] memory feeds, int256[] memory values, uint64 timestamp, bytes32 executionId)
        internal
        view
        returns (bytes memory)
    {
        bytes memory payload = abi.encode(feeds, _modes(feeds.length), values);
        return abi.encode(block.chainid, address(s_consumer), timestamp, executionId, payload);
    }

    function _meta() internal view returns (bytes memory) {
        return abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID);
    }

    /// @dev Deliver as the forwarder; expect `err` unless it is empty.
    function _deliver(bytes memory body, bytes memory err) internal {
        vm.prank(address(s_forwarder));
        if (err.length > 0) vm.expectRevert(err);
        s_consumer.onReport(_meta(), body);
    }

    function _deliverOne(string memory feed, int256 value, uint64 timestamp, bytes memory err) internal {
        _deliver(_feedsBody(_one(feed), _values(value), timestamp, keccak256(abi.encode(timestamp))), err);
    }

    /// @dev A signed raw report (metadata || body) stamped `timestamp`.
    function _raw(bytes32 executionId, string memory feed, int256 value, uint64 timestamp)
        internal
        view
        returns (bytes memory)
    {
        return bytes.concat(
            _metadata(executionId, uint32(timestamp)), _feedsBody(_one(feed), _values(value), timestamp, executionId)
        );
    }

    function _assertLatest(string memory feed, int256 value, uint64 timestamp) internal view {
        (int256 got, uint64 at) = s_consumer.latest(feed);
        assertEq(got, value);
        assertEq(at, timestamp);
    }

    // ------------------------------------------------------------------ metadata

    function test_TypeAndVersion() public view {
        assertEq(s_consumer.typeAndVersion(), "vouch FeedConsumer 1.0.0");
    }

    function test_SupportsInterface_IReceiverAndERC165() public view {
        assertTrue(s_consumer.supportsInterface(0x805f2132)); // IReceiver: onReport(bytes,bytes)
        assertTrue(s_consumer.supportsInterface(0x01ffc9a7));
        assertFalse(s_consumer.supportsInterface(0xffffffff));
    }

    function test_GetReceiverConfig_ReturnsConstructorArguments() public view {
        (address forwarder, address owner, bytes32 workflowId, uint32 window) = s_consumer.getReceiverConfig();
        assertEq(forwarder, address(s_forwarder));
        assertEq(owner, s_owner);
        assertEq(workflowId, s_workflowId);
        assertEq(window, FRESHNESS);
    }

    // ------------------------------------------------------------------ onReport

    function test_OnReport_StoresEveryFieldAndEmitsFeedUpdated() public {
        string[] memory feeds = new string[](2);
        (feeds[0], feeds[1]) = ("ETH/USD", "BTC/USD");
        int256[] memory values = new int256[](2);
        (values[0], values[1]) = (ETH, BTC);
        uint64 ts = uint64(block.timestamp);
        bytes32 executionId = keccak256("execution");
        vm.expectEmit(address(s_consumer));
        emit FeedUpdated("ETH/USD", ETH, ts, executionId);
        vm.expectEmit(address(s_consumer));
        emit FeedUpdated("BTC/USD", BTC, ts, executionId);
        _deliver(_feedsBody(feeds, values, ts, executionId), "");
        _assertLatest("ETH/USD", ETH, ts);
        _assertLatest("BTC/USD", BTC, ts);
    }

    function test_OnReport_ANewerReportReplacesTheValue() public {
        _deliverOne("ETH/USD", ETH, uint64(block.timestamp), "");
        vm.warp(block.timestamp + 10);
        _deliverOne("ETH/USD", ETH + 1, uint64(block.timestamp), "");
        _assertLatest("ETH/USD", ETH + 1, uint64(block.timestamp));
    }

    function test_OnReport_AReportOfTheSameSecondIsAccepted() public {
        uint64 ts = uint64(block.timestamp);
        _deliverOne("ETH/USD", ETH, ts, "");
        _deliverOne("ETH/USD", -ETH, ts, "");
        _assertLatest("ETH/USD", -ETH, ts);
    }

    function test_OnReport_RevertWhen_OlderThanTheFeedsLatest() public {
        uint64 ts = uint64(block.timestamp);
        _deliverOne("ETH/USD", ETH, ts, "");
        bytes memory err = abi.encodeWithSelector(FeedConsumer.StaleFeedReport.selector, "ETH/USD", ts - 1, ts);
        _deliverOne("ETH/USD", ETH + 1, ts - 1, err);
        _assertLatest("ETH/USD", ETH, ts);
    }

    function test_OnReport_RevertWhen_OneFieldIsOlder_NothingChanges() public {
        uint64 ts = uint64(block.timestamp);
        _deliverOne("BTC/USD", BTC, ts, "");
        string[] memory feeds = new string[](2);
        (feeds[0], feeds[1]) = ("ETH/USD", "BTC/USD");
        int256[] memory values = new int256[](2);
        (values[0], values[1]) = (ETH, BTC + 1);
        bytes memory err = abi.encodeWithSelector(FeedConsumer.StaleFeedReport.selector, "BTC/USD", ts - 5, ts);
        _deliver(_feedsBody(feeds, values, ts - 5, bytes32(0)), err);
        _assertLatest("BTC/USD", BTC, ts);
        vm.expectRevert(abi.encodeWithSelector(FeedConsumer.FeedNotReported.selector, "ETH/USD"));
        s_consumer.latest("ETH/USD");
    }

    function test_OnReport_RevertWhen_ArraysDifferInLength() public {
        int256[] memory values = new int256[](2);
        bytes memory payload = abi.encode(_one("ETH/USD"), _modes(1), values);
        bytes memory body = abi.encode(block.chainid, address(s_consumer), uint64(block.timestamp), bytes32(0), payload);
        _deliver(body, abi.encodeWithSelector(FeedConsumer.InvalidFeedsPayload.selector, 1, 1, 2));
    }

    function test_OnReport_RevertWhen_NoField() public {
        bytes memory payload = abi.encode(new string[](0), new string[](0), new int256[](0));
        bytes memory body = abi.encode(block.chainid, address(s_consumer), uint64(block.timestamp), bytes32(0), payload);
        _deliver(body, abi.encodeWithSelector(FeedConsumer.InvalidFeedsPayload.selector, 0, 0, 0));
    }

    function test_OnReport_RevertWhen_NotTheForwarder() public {
        bytes memory body = _feedsBody(_one("ETH/USD"), _values(ETH), uint64(block.timestamp), bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(ReceiverBase.InvalidForwarder.selector, address(this), address(s_forwarder))
        );
        s_consumer.onReport(_meta(), body);
    }

    function test_OnReport_RevertWhen_AnotherWorkflowId() public {
        bytes memory body = _feedsBody(_one("ETH/USD"), _values(ETH), uint64(block.timestamp), bytes32(0));
        bytes32 other = keccak256("other");
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidWorkflowId.selector, other, s_workflowId));
        s_consumer.onReport(abi.encodePacked(other, WORKFLOW_NAME, s_owner, REPORT_ID), body);
    }

    function test_OnReport_RevertWhen_AnotherWorkflowOwner() public {
        bytes memory body = _feedsBody(_one("ETH/USD"), _values(ETH), uint64(block.timestamp), bytes32(0));
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidWorkflowOwner.selector, s_seller, s_owner));
        s_consumer.onReport(abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_seller, REPORT_ID), body);
    }

    function test_OnReport_RevertWhen_BuiltForAnotherReceiver() public {
        bytes memory payload = abi.encode(_one("ETH/USD"), _modes(1), _values(ETH));
        bytes memory body = abi.encode(block.chainid, address(s_gate), uint64(block.timestamp), bytes32(0), payload);
        _deliver(body, abi.encodeWithSelector(ReceiverBase.WrongReceiver.selector, address(s_gate), s_consumer));
    }

    function test_OnReport_RevertWhen_BuiltForAnotherChain() public {
        bytes memory payload = abi.encode(_one("ETH/USD"), _modes(1), _values(ETH));
        bytes memory body = abi.encode(uint256(5), address(s_consumer), uint64(block.timestamp), bytes32(0), payload);
        _deliver(body, abi.encodeWithSelector(ReceiverBase.WrongChain.selector, 5, block.chainid));
    }

    function test_OnReport_RevertWhen_OutsideTheFreshnessWindow() public {
        uint64 ts = uint64(block.timestamp - FRESHNESS - 1);
        bytes memory err = abi.encodeWithSelector(ReceiverBase.StaleReport.selector, ts, block.timestamp, FRESHNESS);
        _deliverOne("ETH/USD", ETH, ts, err);
    }

    function test_Latest_RevertWhen_NeverReported() public {
        vm.expectRevert(abi.encodeWithSelector(FeedConsumer.FeedNotReported.selector, "ETH/USD"));
        s_consumer.latest("ETH/USD");
    }

    // ------------------------------------------------------------------ through the forwarder

    function test_Report_DeliversASignedFeedsReport() public {
        bytes32 executionId = keccak256("e1");
        bytes memory raw = _raw(executionId, "ETH/USD", ETH, uint64(block.timestamp));
        vm.expectEmit(address(s_consumer));
        emit FeedUpdated("ETH/USD", ETH, uint64(block.timestamp), executionId);
        vm.expectEmit(address(s_forwarder));
        emit ReportProcessed(address(s_consumer), executionId, REPORT_ID, true);
        _submit(address(s_consumer), raw);
        _assertLatest("ETH/USD", ETH, uint64(block.timestamp));
        assertEq(uint8(_state(address(s_consumer), executionId)), uint8(Forwarder.TransmissionState.SUCCEEDED));
    }

    function test_Report_RevertWhen_Replayed() public {
        bytes32 executionId = keccak256("e1");
        bytes memory raw = _raw(executionId, "ETH/USD", ETH, uint64(block.timestamp));
        _submit(address(s_consumer), raw);
        bytes32 transmissionId = s_forwarder.getTransmissionId(address(s_consumer), executionId, REPORT_ID);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.AlreadyAttempted.selector, transmissionId));
        _submit(address(s_consumer), raw);
    }

    /// @dev A report signed earlier but delivered after a newer one: the forwarder records the
    /// consumer's refusal (FAILED, result false) and the feed keeps the newer value.
    function test_Report_AnOlderReportDeliveredLateIsRefused() public {
        uint64 earlier = uint64(block.timestamp);
        bytes memory held = _raw(keccak256("e1"), "ETH/USD", ETH, earlier);
        vm.warp(block.timestamp + 30);
        _submit(address(s_consumer), _raw(keccak256("e2"), "ETH/USD", ETH + 7, uint64(block.timestamp)));
        vm.expectEmit(address(s_forwarder));
        emit ReportProcessed(address(s_consumer), keccak256("e1"), REPORT_ID, false);
        _submit(address(s_consumer), held);
        _assertLatest("ETH/USD", ETH + 7, uint64(block.timestamp));
        assertEq(uint8(_state(address(s_consumer), keccak256("e1"))), uint8(Forwarder.TransmissionState.FAILED));
    }

    // ------------------------------------------------------------------ fuzz

    /// @dev Whatever order two reports of one feed arrive in, the feed ends on the newer one
    /// (the later arrival on a tie), and an older arrival is refused with both timestamps.
    function testFuzz_OnReport_KeepsTheNewestReport(uint32 ageA, uint32 ageB, int256 a, int256 b) public {
        ageA = uint32(bound(ageA, 0, FRESHNESS));
        ageB = uint32(bound(ageB, 0, FRESHNESS));
        uint64 tsA = uint64(block.timestamp - ageA);
        uint64 tsB = uint64(block.timestamp - ageB);
        _deliverOne("ETH/USD", a, tsA, "");
        if (tsB < tsA) {
            _deliverOne(
                "ETH/USD", b, tsB, abi.encodeWithSelector(FeedConsumer.StaleFeedReport.selector, "ETH/USD", tsB, tsA)
            );
            _assertLatest("ETH/USD", a, tsA);
        } else {
            _deliverOne("ETH/USD", b, tsB, "");
            _assertLatest("ETH/USD", b, tsB);
        }
    }

    /// @dev Any int256 and any feed name round-trips; other feeds are untouched.
    function testFuzz_OnReport_StoresAnyValueUnderItsFeed(string calldata feed, int256 value) public {
        vm.assume(keccak256(bytes(feed)) != keccak256("BTC/USD"));
        _deliverOne("BTC/USD", BTC, uint64(block.timestamp), "");
        _deliverOne(feed, value, uint64(block.timestamp), "");
        _assertLatest(feed, value, uint64(block.timestamp));
        _assertLatest("BTC/USD", BTC, uint64(block.timestamp));
    }
}
