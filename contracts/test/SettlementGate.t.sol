// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {BaseTest} from "./Base.t.sol";
import {ReceiverBase} from "../src/ReceiverBase.sol";
import {SettlementGate} from "../src/SettlementGate.sol";

contract SettlementGateTest is BaseTest {
    event TradeCreated(
        uint256 indexed tradeId,
        address indexed seller,
        address indexed buyer,
        address baseToken,
        uint256 baseAmount,
        address quoteToken,
        uint256 minPrice,
        uint256 maxPrice,
        uint64 deadline,
        bytes32 actionHash
    );
    event TradeFunded(uint256 indexed tradeId, uint256 maxQuote);
    event TradeSettled(uint256 indexed tradeId, uint256 price, uint256 quoteAmount, bytes32 actionHash);
    event TradeRefunded(uint256 indexed tradeId, uint256 baseAmount, uint256 quoteAmount);

    function _meta() internal view returns (bytes memory) {
        return abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID);
    }

    function _now() internal view returns (uint64) {
        return uint64(block.timestamp);
    }

    /// @dev Deliver as the forwarder; expect `err` unless it is empty.
    function _deliver(bytes memory body, bytes memory err) internal {
        if (err.length > 0) vm.expectRevert(err);
        _onReportAsForwarder(address(s_gate), _meta(), body);
    }

    function _create(address buyer, address base, uint256 amount, address quote, uint256 lo, uint256 hi, uint64 dl)
        internal
        returns (uint256)
    {
        return s_gate.createTrade(buyer, base, amount, quote, lo, hi, dl, s_actionHash);
    }

    // ------------------------------------------------------------------ metadata

    function test_TypeAndVersion() public view {
        assertEq(s_gate.typeAndVersion(), "vouch SettlementGate 1.2.0");
    }

    function test_GetReceiverConfig_ReturnsConstructorArguments() public view {
        (address forwarder, address owner, bytes32 workflowId, uint32 window) = s_gate.getReceiverConfig();
        assertEq(forwarder, address(s_forwarder));
        assertEq(owner, s_owner);
        assertEq(workflowId, s_workflowId);
        assertEq(window, FRESHNESS);
    }

    function test_SupportsInterface_IReceiverAndERC165() public view {
        assertTrue(s_gate.supportsInterface(0x805f2132)); // IReceiver: onReport(bytes,bytes)
        assertTrue(s_gate.supportsInterface(0x01ffc9a7)); // ERC-165
        assertFalse(s_gate.supportsInterface(0xffffffff));
    }

    // ------------------------------------------------------------------ createTrade

    function test_CreateTrade_EscrowsTheBaseLeg() public {
        s_weth.mint(s_seller, BASE_AMOUNT);
        vm.startPrank(s_seller);
        s_weth.approve(address(s_gate), BASE_AMOUNT);
        uint64 deadline = _now() + 600;
        vm.expectEmit(address(s_gate));
        emit TradeCreated(
            1,
            s_seller,
            s_buyer,
            address(s_weth),
            BASE_AMOUNT,
            address(s_usdc),
            MIN_PRICE,
            MAX_PRICE,
            deadline,
            s_actionHash
        );
        uint256 tradeId =
            _create(s_buyer, address(s_weth), BASE_AMOUNT, address(s_usdc), MIN_PRICE, MAX_PRICE, deadline);
        vm.stopPrank();
        assertEq(tradeId, 1);
        SettlementGate.Trade memory t = s_gate.getTrade(tradeId);
        assertEq(t.seller, s_seller);
        assertEq(t.buyer, s_buyer);
        assertEq(t.baseToken, address(s_weth));
        assertEq(t.baseAmount, BASE_AMOUNT);
        assertEq(t.quoteToken, address(s_usdc));
        assertEq(t.minPrice, MIN_PRICE);
        assertEq(t.maxPrice, MAX_PRICE);
        assertEq(t.maxQuote, MAX_QUOTE);
        assertEq(t.deadline, deadline);
        assertEq(t.actionHash, s_actionHash);
        assertEq(uint8(t.status), uint8(SettlementGate.Status.Open));
        assertEq(s_weth.balanceOf(address(s_gate)), BASE_AMOUNT);
        assertEq(_openTrade(), 2);
    }

    function test_CreateTrade_RevertWhen_ZeroBuyer() public {
        vm.expectRevert(SettlementGate.ZeroAddress.selector);
        _create(address(0), address(s_weth), 1, address(s_usdc), 1, 1, _now() + 1);
    }

    function test_CreateTrade_RevertWhen_ZeroBaseToken() public {
        vm.expectRevert(SettlementGate.ZeroAddress.selector);
        _create(s_buyer, address(0), 1, address(s_usdc), 1, 1, _now() + 1);
    }

    function test_CreateTrade_RevertWhen_ZeroQuoteToken() public {
        vm.expectRevert(SettlementGate.ZeroAddress.selector);
        _create(s_buyer, address(s_weth), 1, address(0), 1, 1, _now() + 1);
    }

    function test_CreateTrade_RevertWhen_ZeroBaseAmount() public {
        vm.expectRevert(SettlementGate.ZeroAmount.selector);
        _create(s_buyer, address(s_weth), 0, address(s_usdc), 1, 1, _now() + 1);
    }

    function test_CreateTrade_RevertWhen_ZeroMinPrice() public {
        vm.expectRevert(SettlementGate.ZeroAmount.selector);
        _create(s_buyer, address(s_weth), 1, address(s_usdc), 0, 1, _now() + 1);
    }

    function test_CreateTrade_RevertWhen_BoundsInverted() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.InvalidPriceBounds.selector, 2, 1));
        _create(s_buyer, address(s_weth), 1, address(s_usdc), 2, 1, _now() + 1);
    }

    function test_CreateTrade_RevertWhen_DeadlineNotInFuture() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.DeadlineInPast.selector, _now(), block.timestamp));
        _create(s_buyer, address(s_weth), 1, address(s_usdc), 1, 1, _now());
    }

    function test_CreateTrade_RevertWhen_BaseNotApproved() public {
        s_weth.mint(s_seller, 1e18);
        vm.prank(s_seller);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(s_gate), 0, 1e18)
        );
        _create(s_buyer, address(s_weth), 1e18, address(s_usdc), 1, 1, _now() + 1);
    }

    function testFuzz_CreateTrade_MaxQuoteRoundsUp(uint256 baseAmount, uint256 maxPrice) public {
        baseAmount = bound(baseAmount, 1, 1e30);
        maxPrice = bound(maxPrice, 1, 1e30);
        s_weth.mint(s_seller, baseAmount);
        vm.startPrank(s_seller);
        s_weth.approve(address(s_gate), baseAmount);
        uint256 tradeId = _create(s_buyer, address(s_weth), baseAmount, address(s_usdc), 1, maxPrice, _now() + 1);
        vm.stopPrank();
        uint256 maxQuote = s_gate.getTrade(tradeId).maxQuote;
        assertGe(maxQuote * 1e18, baseAmount * maxPrice);
        assertLt((maxQuote - 1) * 1e18, baseAmount * maxPrice);
    }

    // ------------------------------------------------------------------ fundTrade

    function test_FundTrade_EscrowsTheMaxQuote() public {
        uint256 tradeId = _openTrade();
        s_usdc.mint(s_buyer, MAX_QUOTE);
        vm.startPrank(s_buyer);
        s_usdc.approve(address(s_gate), MAX_QUOTE);
        vm.expectEmit(address(s_gate));
        emit TradeFunded(tradeId, MAX_QUOTE);
        s_gate.fundTrade(tradeId);
        vm.stopPrank();
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
        assertEq(s_usdc.balanceOf(address(s_gate)), MAX_QUOTE);
        assertEq(s_usdc.balanceOf(s_buyer), 0);
    }

    function test_FundTrade_RevertWhen_NotBuyer() public {
        uint256 tradeId = _openTrade();
        vm.prank(s_seller);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.NotParty.selector, tradeId, s_seller));
        s_gate.fundTrade(tradeId);
    }

    function test_FundTrade_RevertWhen_UnknownTrade() public {
        vm.prank(s_buyer);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.UnknownTrade.selector, 42));
        s_gate.fundTrade(42);
    }

    function test_FundTrade_RevertWhen_AlreadyFunded() public {
        uint256 tradeId = _fundedTrade();
        vm.prank(s_buyer);
        vm.expectRevert(
            abi.encodeWithSelector(SettlementGate.TradeNotOpen.selector, tradeId, SettlementGate.Status.Funded)
        );
        s_gate.fundTrade(tradeId);
    }

    function test_FundTrade_RevertWhen_Expired() public {
        uint256 tradeId = _openTrade();
        uint64 deadline = s_gate.getTrade(tradeId).deadline;
        vm.warp(deadline + 1);
        vm.prank(s_buyer);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.TradeExpired.selector, tradeId, deadline, deadline + 1));
        s_gate.fundTrade(tradeId);
    }

    // ------------------------------------------------------------------ onReport: settlement

    function test_OnReport_SwapsBothLegsAtTheAttestedPrice() public {
        uint256 tradeId = _fundedTrade();
        vm.expectEmit(address(s_gate));
        emit TradeSettled(tradeId, 3_000e18, 6_000e18, s_actionHash);
        _deliver(_body(tradeId, 3_000e18, _now(), s_actionHash), "");
        assertEq(s_weth.balanceOf(s_buyer), BASE_AMOUNT);
        assertEq(s_usdc.balanceOf(s_seller), 6_000e18);
        assertEq(s_usdc.balanceOf(s_buyer), 1_000e18); // 7,000 escrowed at the max price, 1,000 back
        assertEq(s_usdc.balanceOf(address(s_gate)), 0);
        assertEq(s_weth.balanceOf(address(s_gate)), 0);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
    }

    function test_OnReport_SettlesAtTheBoundsInclusive() public {
        uint256 low = _fundedTrade();
        _deliver(_body(low, MIN_PRICE, _now(), s_actionHash), "");
        uint256 high = _fundedTrade();
        _deliver(_body(high, MAX_PRICE, _now(), s_actionHash), "");
        assertEq(uint8(_status(low)), uint8(SettlementGate.Status.Settled));
        assertEq(uint8(_status(high)), uint8(SettlementGate.Status.Settled));
    }

    function test_OnReport_RevertWhen_PriceOutOfBounds() public {
        uint256 tradeId = _fundedTrade();
        _deliver(
            _body(tradeId, 4_000e18, _now(), s_actionHash),
            abi.encodeWithSelector(SettlementGate.PriceOutOfBounds.selector, tradeId, 4_000e18, MIN_PRICE, MAX_PRICE)
        );
    }

    function test_OnReport_RevertWhen_UnknownTrade() public {
        _deliver(
            _body(5, 3_000e18, _now(), s_actionHash), abi.encodeWithSelector(SettlementGate.UnknownTrade.selector, 5)
        );
    }

    function test_OnReport_RevertWhen_TradeNotFunded() public {
        uint256 tradeId = _openTrade();
        _deliver(
            _body(tradeId, 3_000e18, _now(), s_actionHash),
            abi.encodeWithSelector(SettlementGate.TradeNotFunded.selector, tradeId, SettlementGate.Status.Open)
        );
    }

    function test_OnReport_RevertWhen_AlreadySettled() public {
        uint256 tradeId = _fundedTrade();
        _deliver(_body(tradeId, 3_000e18, _now(), s_actionHash), "");
        _deliver(
            _body(tradeId, 3_000e18, _now(), s_actionHash),
            abi.encodeWithSelector(SettlementGate.TradeNotFunded.selector, tradeId, SettlementGate.Status.Settled)
        );
    }

    function test_OnReport_RevertWhen_ActionHashDiffers() public {
        uint256 tradeId = _fundedTrade();
        _deliver(
            _body(tradeId, 3_000e18, _now(), bytes32(0)),
            abi.encodeWithSelector(SettlementGate.ActionHashMismatch.selector, tradeId, s_actionHash, bytes32(0))
        );
    }

    function test_OnReport_RevertWhen_TradeExpired() public {
        uint256 tradeId = _fundedTrade();
        uint64 deadline = s_gate.getTrade(tradeId).deadline;
        vm.warp(deadline + 1);
        _deliver(
            _body(tradeId, 3_000e18, _now(), s_actionHash),
            abi.encodeWithSelector(SettlementGate.TradeExpired.selector, tradeId, deadline, deadline + 1)
        );
    }

    function testFuzz_OnReport_SettlesExactlyWhenPriceInBounds(uint256 price) public {
        price = bound(price, 1, 10_000e18);
        uint256 tradeId = _fundedTrade();
        bool inBounds = price >= MIN_PRICE && price <= MAX_PRICE;
        _deliver(
            _body(tradeId, price, _now(), s_actionHash),
            inBounds
                ? bytes("")
                : abi.encodeWithSelector(SettlementGate.PriceOutOfBounds.selector, tradeId, price, MIN_PRICE, MAX_PRICE)
        );
        if (inBounds) {
            assertEq(s_usdc.balanceOf(s_seller) + s_usdc.balanceOf(s_buyer), MAX_QUOTE);
            assertEq(s_usdc.balanceOf(s_seller), BASE_AMOUNT * price / 1e18);
            assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
        } else {
            assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
        }
    }

    // ------------------------------------------------------------------ onReport: ReceiverBase checks

    function test_OnReport_RevertWhen_NotForwarder() public {
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidForwarder.selector, address(this), s_forwarder));
        s_gate.onReport(_meta(), _body(1, 3_000e18, _now(), s_actionHash));
    }

    function test_OnReport_RevertWhen_MetadataNot64Bytes() public {
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidMetadata.selector, 65));
        s_gate.onReport(bytes.concat(_meta(), hex"00"), _body(1, 3_000e18, _now(), s_actionHash));
    }

    function test_OnReport_RevertWhen_WrongWorkflowOwner() public {
        bytes memory meta = abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_seller, REPORT_ID);
        vm.prank(address(s_forwarder));
        vm.expectRevert(abi.encodeWithSelector(ReceiverBase.InvalidWorkflowOwner.selector, s_seller, s_owner));
        s_gate.onReport(meta, _body(1, 3_000e18, _now(), s_actionHash));
    }

    function test_OnReport_RevertWhen_WrongWorkflowId() public {
        bytes memory meta = abi.encodePacked(bytes32(uint256(5)), WORKFLOW_NAME, s_owner, REPORT_ID);
        vm.prank(address(s_forwarder));
        vm.expectRevert(
            abi.encodeWithSelector(ReceiverBase.InvalidWorkflowId.selector, bytes32(uint256(5)), s_workflowId)
        );
        s_gate.onReport(meta, _body(1, 3_000e18, _now(), s_actionHash));
    }

    function test_OnReport_RevertWhen_WrongChain() public {
        bytes memory body = abi.encode(uint256(1), address(s_gate), _now(), s_actionHash, abi.encode(1, 1));
        _deliver(body, abi.encodeWithSelector(ReceiverBase.WrongChain.selector, 1, block.chainid));
    }

    function test_OnReport_RevertWhen_WrongReceiver() public {
        bytes memory body = abi.encode(block.chainid, address(s_weth), _now(), s_actionHash, abi.encode(1, 1));
        _deliver(body, abi.encodeWithSelector(ReceiverBase.WrongReceiver.selector, address(s_weth), address(s_gate)));
    }

    function test_OnReport_RevertWhen_Stale() public {
        uint256 tradeId = _fundedTrade();
        uint64 old = uint64(block.timestamp - FRESHNESS - 1);
        _deliver(
            _body(tradeId, 3_000e18, old, s_actionHash),
            abi.encodeWithSelector(ReceiverBase.StaleReport.selector, old, block.timestamp, FRESHNESS)
        );
        // exactly the window old is still fresh
        _deliver(_body(tradeId, 3_000e18, old + 1, s_actionHash), "");
    }

    function test_OnReport_RevertWhen_ReportFromFuture() public {
        uint256 tradeId = _fundedTrade();
        uint64 ahead = _now() + 61;
        _deliver(
            _body(tradeId, 3_000e18, ahead, s_actionHash),
            abi.encodeWithSelector(ReceiverBase.ReportFromFuture.selector, ahead, block.timestamp)
        );
        // up to 60 s of clock skew is tolerated
        _deliver(_body(tradeId, 3_000e18, ahead - 1, s_actionHash), "");
    }

    function testFuzz_OnReport_FreshnessWindow(uint64 age, bool future) public {
        age = uint64(bound(age, 0, 10_000));
        uint256 tradeId = _fundedTrade();
        uint64 ts = future ? _now() + age : _now() - age;
        bytes memory err;
        if (future && age > 60) {
            err = abi.encodeWithSelector(ReceiverBase.ReportFromFuture.selector, ts, block.timestamp);
        }
        if (!future && age > FRESHNESS) {
            err = abi.encodeWithSelector(ReceiverBase.StaleReport.selector, ts, block.timestamp, FRESHNESS);
        }
        _deliver(_body(tradeId, 3_000e18, ts, s_actionHash), err);
    }

    // ------------------------------------------------------------------ refund

    function test_Refund_ReturnsBothDepositsAfterExpiry() public {
        uint256 tradeId = _fundedTrade();
        uint64 deadline = s_gate.getTrade(tradeId).deadline;
        vm.warp(deadline + 1);
        vm.expectEmit(address(s_gate));
        emit TradeRefunded(tradeId, BASE_AMOUNT, MAX_QUOTE);
        vm.prank(s_seller);
        s_gate.refund(tradeId);
        assertEq(s_weth.balanceOf(s_seller), BASE_AMOUNT);
        assertEq(s_usdc.balanceOf(s_buyer), MAX_QUOTE);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Refunded));
    }

    function test_Refund_ReturnsTheBaseLegOfAnUnfundedTrade() public {
        uint256 tradeId = _openTrade();
        vm.warp(s_gate.getTrade(tradeId).deadline + 1);
        vm.expectEmit(address(s_gate));
        emit TradeRefunded(tradeId, BASE_AMOUNT, 0);
        vm.prank(s_buyer);
        s_gate.refund(tradeId);
        assertEq(s_weth.balanceOf(s_seller), BASE_AMOUNT);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Refunded));
    }

    function test_Refund_RevertWhen_NotExpired() public {
        uint256 tradeId = _fundedTrade();
        uint64 deadline = s_gate.getTrade(tradeId).deadline;
        vm.warp(deadline); // the deadline itself still belongs to the trade
        vm.prank(s_buyer);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.TradeNotExpired.selector, tradeId, deadline, deadline));
        s_gate.refund(tradeId);
    }

    function test_Refund_RevertWhen_NotParty() public {
        uint256 tradeId = _fundedTrade();
        vm.warp(block.timestamp + 601);
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.NotParty.selector, tradeId, address(this)));
        s_gate.refund(tradeId);
    }

    function test_Refund_RevertWhen_UnknownTrade() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementGate.UnknownTrade.selector, 3));
        s_gate.refund(3);
    }

    function test_Refund_RevertWhen_AlreadySettled() public {
        uint256 tradeId = _fundedTrade();
        _deliver(_body(tradeId, 3_000e18, _now(), s_actionHash), "");
        vm.warp(block.timestamp + 601);
        vm.prank(s_seller);
        vm.expectRevert(
            abi.encodeWithSelector(SettlementGate.TradeClosed.selector, tradeId, SettlementGate.Status.Settled)
        );
        s_gate.refund(tradeId);
    }

    function test_Refund_RevertWhen_AlreadyRefunded() public {
        uint256 tradeId = _fundedTrade();
        vm.warp(block.timestamp + 601);
        vm.prank(s_seller);
        s_gate.refund(tradeId);
        vm.prank(s_buyer);
        vm.expectRevert(
            abi.encodeWithSelector(SettlementGate.TradeClosed.selector, tradeId, SettlementGate.Status.Refunded)
        );
        s_gate.refund(tradeId);
    }

    // ------------------------------------------------------------------ getTrade

    function test_GetTrade_UnknownIsEmpty() public view {
        SettlementGate.Trade memory t = s_gate.getTrade(99);
        assertEq(uint8(t.status), uint8(SettlementGate.Status.None));
        assertEq(t.seller, address(0));
    }
}
