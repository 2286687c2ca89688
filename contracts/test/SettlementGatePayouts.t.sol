// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {BaseTest} from "./Base.t.sol";
import {SettlementGate} from "../src/SettlementGate.sol";
import {BlockingToken, FeeToken, GasBurningToken} from "./Tokens.t.sol";

/// @notice Issue 15's gate exploits: a blocking or gas-burning quote token freezing the seller's
/// leg (M-3), fee-on-transfer and unlisted tokens (M-4).
contract SettlementGatePayoutsTest is BaseTest {
    event PaymentDeferred(uint256 indexed tradeId, address indexed account, address indexed token, uint256 amount);
    event Withdrawn(address indexed account, address indexed token, address to, uint256 amount);

    BlockingToken internal s_blk;

    function setUp() public override {
        super.setUp();
        s_blk = new BlockingToken();
        s_gate.setTokenAllowed(address(s_blk), true);
    }

    function _tradeIn(address quote) internal returns (uint256 tradeId) {
        s_weth.mint(s_seller, BASE_AMOUNT);
        vm.startPrank(s_seller);
        s_weth.approve(address(s_gate), BASE_AMOUNT);
        tradeId = s_gate.createTrade(
            s_buyer,
            address(s_weth),
            BASE_AMOUNT,
            quote,
            MIN_PRICE,
            MAX_PRICE,
            uint64(block.timestamp + 600),
            s_actionHash
        );
        vm.stopPrank();
    }

    function _fundIn(BlockingToken token, uint256 tradeId) internal {
        token.mint(s_buyer, MAX_QUOTE);
        vm.startPrank(s_buyer);
        token.approve(address(s_gate), MAX_QUOTE);
        s_gate.fundTrade(tradeId);
        vm.stopPrank();
    }

    function _settle(uint256 tradeId, uint256 price) internal {
        bytes memory raw = _report(_executionId(uint64(tradeId)), tradeId, price);
        _submit(address(s_gate), raw);
    }

    /// @dev M-3: the quote token blocks the buyer. Before, settlement reverted (the surplus refund
    /// to the buyer) and so did refund (both legs in one call): the seller's WETH was stuck for good.
    function test_M3_ABlockedBuyerCannotFreezeTheSellersLegAtRefund() public {
        uint256 tradeId = _tradeIn(address(s_blk));
        _fundIn(s_blk, tradeId);
        s_blk.setBlocked(s_buyer, true);
        vm.warp(block.timestamp + 601);
        vm.expectEmit(address(s_gate));
        emit PaymentDeferred(tradeId, s_buyer, address(s_blk), MAX_QUOTE);
        vm.prank(s_seller);
        s_gate.refund(tradeId);
        assertEq(s_weth.balanceOf(s_seller), BASE_AMOUNT); // the seller's leg came home
        assertEq(s_gate.owed(s_buyer, address(s_blk)), MAX_QUOTE);
        // the buyer takes its leg elsewhere
        address elsewhere = makeAddr("elsewhere");
        vm.expectEmit(address(s_gate));
        emit Withdrawn(s_buyer, address(s_blk), elsewhere, MAX_QUOTE);
        vm.prank(s_buyer);
        assertEq(s_gate.withdrawTo(address(s_blk), elsewhere), MAX_QUOTE);
        assertEq(s_blk.balanceOf(elsewhere), MAX_QUOTE);
        assertEq(s_gate.owed(s_buyer, address(s_blk)), 0);
        assertEq(s_blk.balanceOf(address(s_gate)), 0);
    }

    function test_M3_ABlockedBuyerCannotStopSettlement() public {
        uint256 tradeId = _tradeIn(address(s_blk));
        _fundIn(s_blk, tradeId);
        s_blk.setBlocked(s_buyer, true);
        _settle(tradeId, 3_000e18);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
        assertEq(s_weth.balanceOf(s_buyer), BASE_AMOUNT);
        assertEq(s_blk.balanceOf(s_seller), 6_000e18); // the seller is paid
        assertEq(s_gate.owed(s_buyer, address(s_blk)), 1_000e18); // the buyer's surplus waits
        s_blk.setBlocked(s_buyer, false);
        vm.prank(s_buyer);
        s_gate.withdraw(address(s_blk));
        assertEq(s_blk.balanceOf(s_buyer), 1_000e18);
    }

    function test_M3_APausedQuoteTokenCreditsBothItsLegs() public {
        uint256 tradeId = _tradeIn(address(s_blk));
        _fundIn(s_blk, tradeId);
        s_blk.setPaused(true);
        _settle(tradeId, 3_000e18);
        assertEq(s_weth.balanceOf(s_buyer), BASE_AMOUNT); // WETH still moves
        assertEq(s_gate.owed(s_seller, address(s_blk)), 6_000e18);
        assertEq(s_gate.owed(s_buyer, address(s_blk)), 1_000e18);
        vm.expectRevert("BlockingToken: blocked");
        vm.prank(s_seller);
        s_gate.withdraw(address(s_blk)); // still paused: the credit stays
        s_blk.setPaused(false);
        vm.prank(s_seller);
        s_gate.withdraw(address(s_blk));
        assertEq(s_blk.balanceOf(s_seller), 6_000e18);
    }

    /// @dev A token that burns every unit of gas on a transfer to the buyer gets PAYOUT_GAS, not
    /// the whole transaction: the seller's leg is still refunded.
    function test_M3_AGasBurningHookCannotStarveTheOtherLeg() public {
        GasBurningToken burner = new GasBurningToken();
        s_gate.setTokenAllowed(address(burner), true);
        uint256 tradeId = _tradeIn(address(burner));
        burner.mint(s_buyer, MAX_QUOTE);
        vm.startPrank(s_buyer);
        burner.approve(address(s_gate), MAX_QUOTE);
        s_gate.fundTrade(tradeId);
        vm.stopPrank();
        burner.mark(s_buyer);
        vm.warp(block.timestamp + 601);
        vm.prank(s_seller);
        s_gate.refund{gas: 1_000_000}(tradeId);
        assertEq(s_weth.balanceOf(s_seller), BASE_AMOUNT);
        assertEq(s_gate.owed(s_buyer, address(burner)), MAX_QUOTE);
    }

    function test_Refund_RevertWhen_TooLittleGasToPushALeg() public {
        uint256 tradeId = _fundedTrade();
        vm.warp(block.timestamp + 601);
        vm.prank(s_seller);
        // a low-gas caller cannot turn a push into a credit: the whole refund reverts
        (bool ok,) = address(s_gate).call{gas: 90_000}(abi.encodeCall(SettlementGate.refund, (tradeId)));
        assertFalse(ok);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
    }

    function test_Withdraw_RevertWhen_NothingOwed() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.NothingOwed.selector, s_buyer, address(s_usdc)));
        vm.prank(s_buyer);
        s_gate.withdraw(address(s_usdc));
    }

    function test_WithdrawTo_RevertWhen_ZeroAddress() public {
        vm.expectRevert(SettlementGate.ZeroAddress.selector);
        s_gate.withdrawTo(address(s_usdc), address(0));
    }

    /// @dev M-4: a fee-on-transfer quote token. Before, the gate recorded maxQuote and held 1% less;
    /// the refund paid the difference out of another trade's escrow. Now the deposit is refused.
    function test_M4_AFeeOnTransferDepositIsRefused() public {
        FeeToken fee = new FeeToken();
        s_gate.setTokenAllowed(address(fee), true);
        uint256 tradeId = _tradeIn(address(fee));
        fee.mint(s_buyer, MAX_QUOTE);
        vm.startPrank(s_buyer);
        fee.approve(address(s_gate), MAX_QUOTE);
        vm.expectRevert(
            abi.encodeWithSelector(
                SettlementGate.TransferShortfall.selector, address(fee), MAX_QUOTE, MAX_QUOTE * 99 / 100
            )
        );
        s_gate.fundTrade(tradeId);
        vm.stopPrank();
    }

    function test_M4_AnUnlistedTokenIsRefused() public {
        address other = makeAddr("unlisted");
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.TokenNotAllowed.selector, other));
        s_gate.createTrade(s_buyer, address(s_weth), 1, other, 1, 1, uint64(block.timestamp + 60), s_actionHash);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.TokenNotAllowed.selector, other));
        s_gate.createTrade(s_buyer, other, 1, address(s_usdc), 1, 1, uint64(block.timestamp + 60), s_actionHash);
    }

    function test_SetTokenAllowed_RevertWhen_NotAdmin() public {
        vm.prank(s_buyer);
        vm.expectRevert();
        s_gate.setTokenAllowed(address(s_blk), false);
        assertTrue(s_gate.isTokenAllowed(address(s_blk)));
    }

    /// @dev The gate is pinned to DON 1: a report from DON 2 on the same forwarder is refused.
    function test_Pin_AReportOfAnotherDonIsRefused() public {
        s_forwarder.setConfig(DON_ID + 1, CONFIG_VERSION, F, s_signers);
        uint256 tradeId = _fundedTrade();
        bytes memory raw = bytes.concat(
            _metadataFor(keccak256("other"), uint32(block.timestamp), DON_ID + 1, CONFIG_VERSION),
            _body(tradeId, 3_000e18, uint64(block.timestamp), s_actionHash)
        );
        bytes32 digest =
            keccak256(abi.encode(block.chainid, address(s_forwarder), DON_ID + 1, CONFIG_VERSION, F, s_signers));
        bytes memory context = abi.encodePacked(digest, uint256(SEQUENCE), bytes32(0));
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[0], raw, context);
        sigs[1] = _sign(s_keys[1], raw, context);
        s_forwarder.report(address(s_gate), raw, context, sigs);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
        (uint32 donId, uint32 minVersion) = s_gate.getDonPin();
        assertEq(donId, DON_ID);
        assertEq(minVersion, CONFIG_VERSION);
    }
}
