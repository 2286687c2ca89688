// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ReserveReceiver} from "../contracts/ReserveReceiver.sol";

/// The receiver on its own: this test is the forwarder.
contract ReserveReceiverTest is Test {
    bytes32 internal constant WORKFLOW_ID = keccak256("__SHORT__");
    address internal constant OWNER = address(0xA11CE);
    ReserveReceiver internal receiver;

    function setUp() public {
        vm.warp(1_800_000_000);
        receiver = new ReserveReceiver(address(this), OWNER, WORKFLOW_ID, 10_000);
    }

    function _deliver(uint256 reserves, uint256 supply) internal {
        bytes memory metadata = abi.encodePacked(WORKFLOW_ID, bytes10("__SHORT__"), OWNER, bytes2(0x0001));
        bytes memory body = abi.encode(
            block.chainid, address(receiver), uint64(block.timestamp), bytes32(0), abi.encode(reserves, supply)
        );
        receiver.onReport(metadata, body);
    }

    function test_KeepsAProofAtOrAboveTheRatio() public {
        _deliver(1_000e6, 1_000e6);
        assertEq(receiver.reserves(), 1_000e6);
        assertEq(receiver.supply(), 1_000e6);
    }

    function test_RefusesUndercollateralizedReserves() public {
        vm.expectRevert(abi.encodeWithSelector(ReserveReceiver.Undercollateralized.selector, 999e6, 1_000e6, 10_000));
        _deliver(999e6, 1_000e6);
    }
}
