// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {BaseTest} from "./Base.t.sol";
import {ReceiverBase} from "../src/ReceiverBase.sol";
import {SettlementGate} from "../src/SettlementGate.sol";

contract SettlementGateTest is BaseTest {
    function _deliver(bytes memory metadata, bytes memory body) internal {
        vm.prank(address(s_forwarder));
        s_gate.onReport(metadata, body);
    }

    function _meta() internal view returns (bytes memory) {
        return abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID);
    }

    function test_OnReport_SwapsBothLegsAtTheAttestedPrice() public {
        uint256 tradeId = _fundedTrade();
        _deliver(_meta(), _body(tradeId, 3_000e18, uint64(block.timestamp), s_actionHash));
        assertEq(s_weth.balanceOf(s_buyer), 2e18);
        assertEq(s_usdc.balanceOf(s_seller), 6_000e18);
        assertEq(s_usdc.balanceOf(s_buyer), 1_000e18); // 7,000 escrowed at the max price, 1,000 back
        assertEq(s_usdc.balanceOf(address(s_gate)), 0);
        assertEq(uint8(s_gate.getTrade(tradeId).status), uint8(SettlementGate.Status.Settled));
    }

    function test_OnReport_RevertWhen_PriceOutOfBounds() public {
        uint256 tradeId = _fundedTrade();
        vm.prank(address(s_forwarder));
        vm.expectRevert(
            abi.encodeWithSelector(SettlementGate.PriceOutOfBounds.selector, tradeId, 4_000e18, 2_500e18, 3_500e18)
        );
        s_gate.onReport(_meta(), _body(tradeId, 4_000e18, uint64(block.timestamp), s_actionHash));
    }

    function test_OnReport_RevertWhen_NotForwarder() public {
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidForwarder.selector, address(this), s_forwarder));
        s_gate.onReport(_meta(), _body(1, 3_000e18, uint64(block.timestamp), s_actionHash));
    }

    function test_OnReport_RevertWhen_WrongWorkflowOwner() public {
        bytes memory meta = abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_seller, REPORT_ID);
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidWorkflowOwner.selector, s_seller, s_owner));
        s_gate.onReport(meta, _body(1, 3_000e18, uint64(block.timestamp), s_actionHash));
    }

    function test_OnReport_RevertWhen_WrongWorkflowId() public {
        bytes memory meta = abi.encodePacked(bytes32(uint256(5)), WORKFLOW_NAME, s_owner, REPORT_ID);
        vm.prank(address(s_forwarder));
        vm.expectRevert(
            abi.encodeWithSelector(ReceiverBase.InvalidWorkflowId.selector, bytes32(uint256(5)), s_workflowId)
        );
        s_gate.onReport(meta, _body(1, 3_000e18, uint64(block.timestamp), s_actionHash));
    }

    function test_OnReport_RevertWhen_Stale() public {
        uint256 tradeId = _fundedTrade();
        uint64 old = uint64(block.timestamp - FRESHNESS - 1);
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.StaleReport.selector, old, block.timestamp, FRESHNESS));
        s_gate.onReport(_meta(), _body(tradeId, 3_000e18, old, s_actionHash));
    }

    function test_OnReport_RevertWhen_WrongChain() public {
        bytes memory body =
            abi.encode(uint256(1), address(s_gate), uint64(block.timestamp), s_actionHash, abi.encode(1, 1));
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.WrongChain.selector, 1, block.chainid));
        s_gate.onReport(_meta(), body);
    }

    function test_OnReport_RevertWhen_WrongReceiver() public {
        bytes memory body =
            abi.encode(block.chainid, address(s_weth), uint64(block.timestamp), s_actionHash, abi.encode(1, 1));
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.WrongReceiver.selector, address(s_weth), address(s_gate)));
        s_gate.onReport(_meta(), body);
    }

    function test_OnReport_RevertWhen_ActionHashDiffers() public {
        uint256 tradeId = _fundedTrade();
        vm.prank(address(s_forwarder));
        vm.expectRevert(
            abi.encodeWithSelector(SettlementGate.ActionHashMismatch.selector, tradeId, s_actionHash, bytes32(0))
        );
        s_gate.onReport(_meta(), _body(tradeId, 3_000e18, uint64(block.timestamp), bytes32(0)));
    }

    function test_OnReport_RevertWhen_Expired() public {
        uint256 tradeId = _fundedTrade();
        vm.warp(block.timestamp + 601);
        vm.prank(address(s_forwarder));
        vm.expectRevert(
            abi.encodeWithSelector(
                SettlementGate.TradeExpired.selector, tradeId, uint64(block.timestamp - 1), block.timestamp
            )
        );
        s_gate.onReport(_meta(), _body(tradeId, 3_000e18, uint64(block.timestamp), s_actionHash));
    }

    function test_Refund_ReturnsBothDepositsAfterExpiry() public {
        uint256 tradeId = _fundedTrade();
        vm.prank(s_buyer);
        vm.expectRevert(
            abi.encodeWithSelector(
                SettlementGate.TradeNotExpired.selector, tradeId, block.timestamp + 600, block.timestamp
            )
        );
        s_gate.refund(tradeId);
        vm.warp(block.timestamp + 601);
        vm.prank(s_buyer);
        s_gate.refund(tradeId);
        assertEq(s_weth.balanceOf(s_seller), 2e18);
        assertEq(s_usdc.balanceOf(s_buyer), 7_000e18);
    }

    function test_CreateTrade_RevertWhen_BoundsInverted() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.InvalidPriceBounds.selector, 2, 1));
        s_gate.createTrade(
            s_buyer, address(s_weth), 1, address(s_usdc), 2, 1, uint64(block.timestamp + 1), s_actionHash
        );
    }

    function test_FundTrade_RevertWhen_NotBuyer() public {
        s_weth.mint(s_seller, 1e18);
        vm.startPrank(s_seller);
        s_weth.approve(address(s_gate), 1e18);
        uint256 tradeId = s_gate.createTrade(
            s_buyer, address(s_weth), 1e18, address(s_usdc), 1e18, 2e18, uint64(block.timestamp + 60), s_actionHash
        );
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.NotParty.selector, tradeId, s_seller));
        s_gate.fundTrade(tradeId);
        vm.stopPrank();
    }

    function test_SupportsInterface_IReceiverAndERC165() public view {
        assertTrue(s_gate.supportsInterface(0x805f2132)); // IReceiver.onReport.selector
        assertTrue(s_gate.supportsInterface(0x01ffc9a7)); // ERC-165
        assertFalse(s_gate.supportsInterface(0xffffffff));
    }

    function testFuzz_OnReport_SettlesExactlyWhenPriceInBounds(uint256 price) public {
        price = bound(price, 1, 10_000e18);
        uint256 tradeId = _fundedTrade();
        vm.prank(address(s_forwarder));
        if (price < 2_500e18 || price > 3_500e18) {
            vm.expectRevert();
            s_gate.onReport(_meta(), _body(tradeId, price, uint64(block.timestamp), s_actionHash));
            assertEq(uint8(s_gate.getTrade(tradeId).status), uint8(SettlementGate.Status.Funded));
        } else {
            s_gate.onReport(_meta(), _body(tradeId, price, uint64(block.timestamp), s_actionHash));
            assertEq(s_usdc.balanceOf(s_seller) + s_usdc.balanceOf(s_buyer), 7_000e18);
            assertEq(s_usdc.balanceOf(s_seller), 2e18 * price / 1e18);
        }
    }
}
