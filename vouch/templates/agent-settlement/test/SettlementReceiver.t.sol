// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {SettlementReceiver} from "../contracts/SettlementReceiver.sol";
import {ReceiverBase} from "vouch/ReceiverBase.sol";

/// The receiver on its own: this test is the forwarder.
contract SettlementReceiverTest is Test {
    bytes32 internal constant WORKFLOW_ID = keccak256("__SHORT__");
    address internal constant OWNER = address(0xA11CE);
    bytes32 internal constant TRADE = keccak256("trade-1");
    SettlementReceiver internal receiver;

    function setUp() public {
        vm.warp(1_800_000_000);
        receiver = new SettlementReceiver(address(this), OWNER, WORKFLOW_ID);
    }

    function _report(bytes32 id, uint256 price, uint64 deadline) internal view returns (bytes memory, bytes memory) {
        bytes memory metadata = abi.encodePacked(WORKFLOW_ID, bytes10("__SHORT__"), OWNER, bytes2(0x0001));
        bytes memory payload = abi.encode(id, 1.5e18, price, 2500e18, 3500e18, deadline);
        bytes memory body = abi.encode(block.chainid, address(receiver), uint64(block.timestamp), bytes32(0), payload);
        return (metadata, body);
    }

    function test_SettlesInsideTheBounds() public {
        (bytes memory metadata, bytes memory body) = _report(TRADE, 3000e18, uint64(block.timestamp + 600));
        receiver.onReport(metadata, body);
        (uint256 amount, uint256 price, uint256 quoteAmount, uint64 at) = receiver.settlements(TRADE);
        assertEq(amount, 1.5e18);
        assertEq(price, 3000e18);
        assertEq(quoteAmount, 4500e18);
        assertEq(at, block.timestamp);
        assertEq(receiver.settledCount(), 1);
    }

    function test_RefusesAPriceOutsideTheBounds() public {
        (bytes memory metadata, bytes memory body) = _report(TRADE, 3600e18, uint64(block.timestamp + 600));
        vm.expectRevert(abi.encodeWithSelector(SettlementReceiver.PriceOutOfBounds.selector, 3600e18, 2500e18, 3500e18));
        receiver.onReport(metadata, body);
    }

    function test_RefusesAnExpiredTrade() public {
        uint64 deadline = uint64(block.timestamp - 1);
        (bytes memory metadata, bytes memory body) = _report(TRADE, 3000e18, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(SettlementReceiver.TradeExpired.selector, TRADE, deadline, uint64(block.timestamp))
        );
        receiver.onReport(metadata, body);
    }

    function test_SettlesATradeOnce() public {
        (bytes memory metadata, bytes memory body) = _report(TRADE, 3000e18, uint64(block.timestamp + 600));
        receiver.onReport(metadata, body);
        vm.expectRevert(abi.encodeWithSelector(SettlementReceiver.AlreadySettled.selector, TRADE));
        receiver.onReport(metadata, body);
    }

    function test_RefusesAnyoneButTheForwarder() public {
        (bytes memory metadata, bytes memory body) = _report(TRADE, 3000e18, uint64(block.timestamp + 600));
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidForwarder.selector, address(0xBAD), address(this)));
        receiver.onReport(metadata, body);
    }
}
