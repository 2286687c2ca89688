// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {PriceReceiver} from "../contracts/PriceReceiver.sol";
import {ReceiverBase} from "vouch/ReceiverBase.sol";

/// The receiver on its own: this test is the forwarder.
contract PriceReceiverTest is Test {
    bytes32 internal constant WORKFLOW_ID = keccak256("__SHORT__");
    address internal constant OWNER = address(0xA11CE);
    PriceReceiver internal receiver;

    function setUp() public {
        vm.warp(1_800_000_000);
        receiver = new PriceReceiver(address(this), OWNER, WORKFLOW_ID, 1e15);
    }

    function _report(uint256 price) internal view returns (bytes memory, bytes memory) {
        bytes memory metadata = abi.encodePacked(WORKFLOW_ID, bytes10("__SHORT__"), OWNER, bytes2(0x0001));
        bytes memory body =
            abi.encode(block.chainid, address(receiver), uint64(block.timestamp), bytes32(0), abi.encode(price));
        return (metadata, body);
    }

    function test_StoresThePrice() public {
        (bytes memory metadata, bytes memory body) = _report(3000e8);
        receiver.onReport(metadata, body);
        assertEq(receiver.price(), 3000e8);
        assertEq(receiver.updatedAt(), block.timestamp);
    }

    function test_RefusesAPriceAboveTheBound() public {
        (bytes memory metadata, bytes memory body) = _report(2e15);
        vm.expectRevert(abi.encodeWithSelector(PriceReceiver.PriceOutOfBounds.selector, 2e15, 1e15));
        receiver.onReport(metadata, body);
    }

    function test_RefusesAnyoneButTheForwarder() public {
        (bytes memory metadata, bytes memory body) = _report(1);
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidForwarder.selector, address(0xBAD), address(this)));
        receiver.onReport(metadata, body);
    }
}
