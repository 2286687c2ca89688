// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {Vm} from "forge-std/Vm.sol";
import {BaseTest} from "./Base.t.sol";
import {SettlementGate} from "../src/SettlementGate.sol";

/// @notice The gate's guard rails: approvals above a threshold (EIP-712), per-period notional
/// limits per token, pause by a guardian, roles.
contract SettlementGateGuardsTest is BaseTest {
    event ApprovalRequested(uint256 indexed tradeId);
    event TradeApproved(uint256 indexed tradeId, address indexed approver);
    event LimitSet(address indexed token, uint256 cap, uint64 period);
    event ApprovalThresholdSet(address indexed token, uint256 threshold);

    uint256 internal constant APPROVER_KEY = 0xA11CE;
    address internal s_approver;
    address internal s_guardian = makeAddr("guardian");
    bytes32 internal s_approverRole;
    bytes32 internal s_guardianRole;

    function setUp() public override {
        super.setUp();
        s_approver = vm.addr(APPROVER_KEY);
        s_approverRole = s_gate.APPROVER_ROLE();
        s_guardianRole = s_gate.GUARDIAN_ROLE();
        s_gate.grantRole(s_approverRole, s_approver);
        s_gate.grantRole(s_guardianRole, s_guardian);
    }

    function _deliver(uint256 tradeId, uint256 price) internal {
        bytes memory body = _body(tradeId, price, uint64(block.timestamp), s_actionHash);
        _onReportAsForwarder(address(s_gate), abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID), body);
    }

    function _expectDeliverReverts(uint256 tradeId, uint256 price, bytes memory err) internal {
        vm.expectRevert(err);
        _deliver(tradeId, price);
    }

    function _approval(uint256 key, uint256 tradeId) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, s_gate.approvalDigest(tradeId));
        return abi.encodePacked(r, s, v);
    }

    // ------------------------------------------------------------------ roles

    function test_Constructor_DeployerIsAdminAndGuardian() public view {
        assertTrue(s_gate.hasRole(s_gate.DEFAULT_ADMIN_ROLE(), address(this)));
        assertTrue(s_gate.hasRole(s_guardianRole, address(this)));
        assertFalse(s_gate.hasRole(s_approverRole, address(this)));
    }

    function test_SupportsInterface_AccessControl() public view {
        assertTrue(s_gate.supportsInterface(type(IAccessControl).interfaceId));
    }

    // ------------------------------------------------------------------ approvals

    function test_CreateTrade_AboveThresholdRequestsApproval() public {
        vm.expectEmit(address(s_gate));
        emit ApprovalThresholdSet(address(s_weth), 1e18);
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        vm.recordLogs();
        uint256 tradeId = _fundedTrade(); // 2 WETH > 1 WETH
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool requested = false;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(s_gate) && logs[i].topics[0] == ApprovalRequested.selector) {
                requested = logs[i].topics[1] == bytes32(tradeId);
            }
        }
        assertTrue(requested);
        assertTrue(s_gate.getTrade(tradeId).needsApproval);
        assertEq(s_gate.getApprovalThreshold(address(s_weth)), 1e18);
    }

    function test_CreateTrade_QuoteLegAboveThresholdRequestsApproval() public {
        s_gate.setApprovalThreshold(address(s_usdc), MAX_QUOTE - 1);
        assertTrue(s_gate.getTrade(_openTrade()).needsApproval);
    }

    function test_CreateTrade_AtThresholdNeedsNoApproval() public {
        s_gate.setApprovalThreshold(address(s_weth), BASE_AMOUNT);
        uint256 tradeId = _fundedTrade();
        assertFalse(s_gate.getTrade(tradeId).needsApproval);
        _deliver(tradeId, 3_000e18);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
    }

    function test_OnReport_RevertWhen_ApprovalMissing() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 tradeId = _fundedTrade();
        _expectDeliverReverts(
            tradeId, 3_000e18, abi.encodeWithSelector(SettlementGate.ApprovalRequired.selector, tradeId)
        );
    }

    function test_ApproveTrade_LetsTheTradeSettle() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 tradeId = _fundedTrade();
        vm.expectEmit(address(s_gate));
        emit TradeApproved(tradeId, s_approver);
        vm.prank(s_seller); // anyone may submit the approver's signature
        s_gate.approveTrade(tradeId, _approval(APPROVER_KEY, tradeId));
        assertTrue(s_gate.getTrade(tradeId).approved);
        _deliver(tradeId, 3_000e18);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
    }

    function test_ApproveTrade_RevertWhen_SignerIsNotAnApprover() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 tradeId = _openTrade();
        bytes memory signature = _approval(0xB0B, tradeId);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.InvalidApproval.selector, tradeId, vm.addr(0xB0B)));
        s_gate.approveTrade(tradeId, signature);
    }

    function test_ApproveTrade_RevertWhen_SignedForAnotherTrade() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 first = _openTrade();
        uint256 second = _openTrade();
        bytes memory signature = _approval(APPROVER_KEY, first);
        (address recovered,,) = _recover(s_gate.approvalDigest(second), signature);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.InvalidApproval.selector, second, recovered));
        s_gate.approveTrade(second, signature);
    }

    function test_ApproveTrade_RevertWhen_MalformedSignature() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 tradeId = _openTrade();
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.InvalidApproval.selector, tradeId, address(0)));
        s_gate.approveTrade(tradeId, hex"1234");
    }

    function test_ApproveTrade_AheadOfAThresholdIsAllowedOnce() public {
        uint256 tradeId = _openTrade(); // no threshold yet: an approval ahead of one is kept
        bytes memory signature = _approval(APPROVER_KEY, tradeId);
        s_gate.approveTrade(tradeId, signature);
        assertTrue(s_gate.getTrade(tradeId).approved);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.ApprovalNotPending.selector, tradeId));
        s_gate.approveTrade(tradeId, signature);
    }

    // L-1: the thresholds in force at settlement apply, both ways.
    function test_OnReport_RevertWhen_ThresholdLoweredAfterCreation() public {
        uint256 tradeId = _fundedTrade(); // created with no threshold: needsApproval false
        assertFalse(s_gate.getTrade(tradeId).needsApproval);
        s_gate.setApprovalThreshold(address(s_weth), 1e18); // the admin lowers it: 2 WETH is above
        _expectDeliverReverts(
            tradeId, 3_000e18, abi.encodeWithSelector(SettlementGate.ApprovalRequired.selector, tradeId)
        );
        s_gate.approveTrade(tradeId, _approval(APPROVER_KEY, tradeId));
        _deliver(tradeId, 3_000e18);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
    }

    function test_OnReport_ThresholdRaisedAfterCreationNeedsNoApproval() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 tradeId = _fundedTrade();
        assertTrue(s_gate.getTrade(tradeId).needsApproval);
        s_gate.setApprovalThreshold(address(s_weth), 10e18); // 2 WETH is now below
        _deliver(tradeId, 3_000e18);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
    }

    function test_ApproveTrade_RevertWhen_AlreadyApproved() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 tradeId = _openTrade();
        bytes memory signature = _approval(APPROVER_KEY, tradeId);
        s_gate.approveTrade(tradeId, signature);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.ApprovalNotPending.selector, tradeId));
        s_gate.approveTrade(tradeId, signature);
    }

    function test_ApproveTrade_RevertWhen_TradeClosed() public {
        s_gate.setApprovalThreshold(address(s_weth), 1e18);
        uint256 tradeId = _openTrade();
        vm.warp(block.timestamp + 601);
        vm.prank(s_seller);
        s_gate.refund(tradeId);
        bytes memory signature = _approval(APPROVER_KEY, tradeId);
        vm.expectRevert(
            abi.encodeWithSelector(SettlementGate.TradeClosed.selector, tradeId, SettlementGate.Status.Refunded)
        );
        s_gate.approveTrade(tradeId, signature);
    }

    function test_ApproveTrade_RevertWhen_UnknownTrade() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.UnknownTrade.selector, 9));
        s_gate.approveTrade(9, hex"");
    }

    function test_SetApprovalThreshold_RevertWhen_NotAdmin() public {
        bytes32 admin = s_gate.DEFAULT_ADMIN_ROLE();
        vm.prank(s_seller);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, s_seller, admin)
        );
        s_gate.setApprovalThreshold(address(s_weth), 1);
    }

    function _recover(bytes32 digest, bytes memory signature) internal pure returns (address, uint8, bytes32) {
        (bytes32 r, bytes32 s) = abi.decode(signature, (bytes32, bytes32));
        uint8 v = uint8(signature[64]);
        return (ecrecover(digest, v, r, s), v, s);
    }

    // ------------------------------------------------------------------ limits

    function test_SetLimit_StoresAndEmits() public {
        vm.expectEmit(address(s_gate));
        emit LimitSet(address(s_weth), 3e18, 1 days);
        s_gate.setLimit(address(s_weth), 3e18, 1 days);
        (uint256 cap, uint64 period, uint256 used) = s_gate.getLimit(address(s_weth));
        assertEq(cap, 3e18);
        assertEq(period, 1 days);
        assertEq(used, 0);
    }

    function test_SetLimit_RevertWhen_CapWithoutPeriod() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.InvalidLimit.selector, 1, 0));
        s_gate.setLimit(address(s_weth), 1, 0);
    }

    function test_SetLimit_RevertWhen_NotAdmin() public {
        bytes32 admin = s_gate.DEFAULT_ADMIN_ROLE();
        vm.prank(s_guardian);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, s_guardian, admin)
        );
        s_gate.setLimit(address(s_weth), 1, 1);
    }

    function test_OnReport_CountsBothLegsAgainstTheirLimits() public {
        s_gate.setLimit(address(s_weth), 3e18, 1 days);
        s_gate.setLimit(address(s_usdc), 10_000e18, 1 days);
        _deliver(_fundedTrade(), 3_000e18);
        (,, uint256 usedBase) = s_gate.getLimit(address(s_weth));
        (,, uint256 usedQuote) = s_gate.getLimit(address(s_usdc));
        assertEq(usedBase, 2e18);
        assertEq(usedQuote, 6_000e18);
    }

    function test_OnReport_RevertWhen_NotionalLimitExceeded() public {
        s_gate.setLimit(address(s_weth), 3e18, 1 days);
        _deliver(_fundedTrade(), 3_000e18);
        uint256 second = _fundedTrade();
        uint256 periodStart = block.timestamp / 1 days * 1 days;
        _expectDeliverReverts(
            second,
            3_000e18,
            abi.encodeWithSelector(
                SettlementGate.NotionalLimitExceeded.selector, address(s_weth), periodStart, 2e18, 2e18, 3e18
            )
        );
    }

    function test_OnReport_LimitResetsNextPeriod() public {
        s_gate.setLimit(address(s_weth), 3e18, 300);
        _deliver(_fundedTrade(), 3_000e18);
        uint256 second = _fundedTrade();
        vm.warp((block.timestamp / 300 + 1) * 300); // next period, trade still before its deadline
        _deliver(second, 3_000e18);
        assertEq(uint8(_status(second)), uint8(SettlementGate.Status.Settled));
    }

    // ------------------------------------------------------------------ pause

    function test_Pause_StopsCreationFundingApprovalAndSettlementButNotRefunds() public {
        uint256 open = _openTrade();
        uint256 funded = _fundedTrade();
        vm.prank(s_guardian);
        s_gate.pause();
        assertTrue(s_gate.paused());
        bytes memory paused = abi.encodeWithSelector(Pausable.EnforcedPause.selector);
        vm.expectRevert(paused);
        s_gate.createTrade(s_buyer, address(s_weth), 1, address(s_usdc), 1, 1, uint64(block.timestamp + 1), bytes32(0));
        vm.prank(s_buyer);
        vm.expectRevert(paused);
        s_gate.fundTrade(open);
        vm.expectRevert(paused);
        s_gate.approveTrade(open, hex"");
        _expectDeliverReverts(funded, 3_000e18, paused);
        vm.warp(block.timestamp + 601);
        vm.prank(s_buyer);
        s_gate.refund(funded);
        assertEq(uint8(_status(funded)), uint8(SettlementGate.Status.Refunded));
    }

    function test_Unpause_ResumesSettlement() public {
        uint256 funded = _fundedTrade();
        vm.prank(s_guardian);
        s_gate.pause();
        s_gate.unpause();
        _deliver(funded, 3_000e18);
        assertEq(uint8(_status(funded)), uint8(SettlementGate.Status.Settled));
    }

    function test_Pause_RevertWhen_NotGuardian() public {
        vm.prank(s_seller);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, s_seller, s_guardianRole)
        );
        s_gate.pause();
    }

    function test_Unpause_RevertWhen_GuardianIsNotAdmin() public {
        bytes32 admin = s_gate.DEFAULT_ADMIN_ROLE();
        vm.prank(s_guardian);
        s_gate.pause();
        vm.prank(s_guardian);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, s_guardian, admin)
        );
        s_gate.unpause();
    }
}
