// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {BlockingToken} from "./Tokens.t.sol";
import {BaseTest} from "./Base.t.sol";
import {Forwarder} from "../src/Forwarder.sol";
import {SettlementGate} from "../src/SettlementGate.sol";
import {TestToken} from "../src/test/TestToken.sol";

/// @dev Drives the gate the way the world does: sellers open trades, buyers fund them, the DON's
/// signed reports arrive through the real forwarder (replays and out-of-bounds prices included),
/// time passes, parties refund and withdraw; half the trades are quoted in a token that blocks the
/// buyer now and then. Counts every TradeSettled event the gate emits per trade (so a second
/// settlement of a trade would show as 2, whatever the status says).
contract GateHandler is Test {
    SettlementGate internal immutable i_gate;
    Forwarder internal immutable i_forwarder;
    TestToken internal immutable i_weth;
    TestToken internal immutable i_usdc;
    BlockingToken internal immutable i_blk;
    SettlementGateInvariantTest internal immutable i_fixture;
    address internal immutable i_seller = makeAddr("seller");
    address internal immutable i_buyer = makeAddr("buyer");

    uint256[] internal s_ids;
    mapping(uint256 tradeId => uint256 count) public s_settlements;

    constructor(
        SettlementGateInvariantTest fixture,
        SettlementGate gate,
        Forwarder forwarder,
        TestToken weth,
        TestToken usdc,
        BlockingToken blk
    ) {
        i_fixture = fixture;
        i_gate = gate;
        i_forwarder = forwarder;
        i_weth = weth;
        i_usdc = usdc;
        i_blk = blk;
    }

    function tradeIds() external view returns (uint256[] memory) {
        return s_ids;
    }

    function create(uint256 amount, uint256 life, bool fundNow, bool blocking) external {
        amount = bound(amount, 1, 100e18);
        life = bound(life, 60, 3_600);
        i_weth.mint(i_seller, amount);
        vm.startPrank(i_seller);
        i_weth.approve(address(i_gate), amount);
        uint256 id = i_gate.createTrade(
            i_buyer,
            address(i_weth),
            amount,
            blocking ? address(i_blk) : address(i_usdc),
            2_500e18,
            3_500e18,
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64(block.timestamp + life),
            keccak256("proposal")
        );
        vm.stopPrank();
        s_ids.push(id);
        if (fundNow) fund(s_ids.length - 1);
    }

    function fund(uint256 pick) public {
        if (s_ids.length == 0) return;
        uint256 id = s_ids[pick % s_ids.length];
        SettlementGate.Trade memory trade = i_gate.getTrade(id);
        TestToken(trade.quoteToken).mint(i_buyer, trade.maxQuote);
        vm.startPrank(i_buyer);
        TestToken(trade.quoteToken).approve(address(i_gate), trade.maxQuote);
        try i_gate.fundTrade(id) {} catch {}
        vm.stopPrank();
    }

    function settle(uint256 pick, uint256 price, uint8 round) external {
        if (s_ids.length == 0) return;
        uint256 id = s_ids[pick % s_ids.length];
        // one report in four is out of bounds; the rest anywhere inside [2,500, 3,500]
        price = round % 4 == 3 ? 4_000e18 : 2_500e18 + price % 1_000e18;
        bytes memory raw = i_fixture.settlementReport(id, price, round % 3);
        bytes[] memory sigs = i_fixture.signedBy01(raw);
        bytes memory context = i_fixture.context();
        vm.recordLogs();
        try i_forwarder.report(address(i_gate), raw, context, sigs) {} catch {}
        // and once more, the very same report: replay must change nothing
        try i_forwarder.report(address(i_gate), raw, context, sigs) {} catch {}
        // and a fresh report (another round) for the same trade: it must not settle it again
        raw = i_fixture.settlementReport(id, 3_000e18, 3 + round % 4);
        sigs = i_fixture.signedBy01(raw);
        try i_forwarder.report(address(i_gate), raw, context, sigs) {} catch {}
        _countSettlements(vm.getRecordedLogs());
    }

    function _countSettlements(Vm.Log[] memory logs) internal {
        bytes32 settled = SettlementGate.TradeSettled.selector;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(i_gate) && logs[i].topics[0] == settled) {
                ++s_settlements[uint256(logs[i].topics[1])];
            }
        }
    }

    function blockBuyer(bool blocked) external {
        i_blk.setBlocked(i_buyer, blocked);
    }

    function withdraw(bool asBuyer, bool blocking) external {
        vm.prank(asBuyer ? i_buyer : i_seller);
        try i_gate.withdraw(blocking ? address(i_blk) : address(i_usdc)) {} catch {}
    }

    function refund(uint256 pick, bool asBuyer) external {
        if (s_ids.length == 0) return;
        uint256 id = s_ids[pick % s_ids.length];
        vm.prank(asBuyer ? i_buyer : i_seller);
        try i_gate.refund(id) {} catch {}
    }

    function wait(uint256 secondsToWait) external {
        vm.warp(block.timestamp + bound(secondsToWait, 1, 900));
    }
}

/// @notice Invariants of the escrow: no trade settles twice; the gate holds exactly the deposits
/// of its open trades (the base leg of Open and Funded trades, the max quote of Funded ones) plus
/// what it credited to parties and they have not withdrawn yet.
contract SettlementGateInvariantTest is BaseTest {
    GateHandler internal s_handler;
    BlockingToken internal s_blk;

    function setUp() public override {
        super.setUp();
        s_blk = new BlockingToken();
        s_gate.setTokenAllowed(address(s_blk), true);
        s_handler = new GateHandler(this, s_gate, s_forwarder, s_weth, s_usdc, s_blk);
        targetContract(address(s_handler));
    }

    // ---------------------------------------------------------------- helpers the handler calls

    function settlementReport(uint256 tradeId, uint256 price, uint64 round) external view returns (bytes memory) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return _report(_executionId(round + uint64(tradeId) * 8), tradeId, price);
    }

    function signedBy01(bytes memory raw) external view returns (bytes[] memory) {
        return _sigs(_keys(0, 1), raw);
    }

    function context() external view returns (bytes memory) {
        return _context();
    }

    // ---------------------------------------------------------------- invariants

    function invariant_NoTradeSettlesTwice() public view {
        uint256[] memory ids = s_handler.tradeIds();
        for (uint256 i = 0; i < ids.length; ++i) {
            uint256 count = s_handler.s_settlements(ids[i]);
            assertLe(count, 1);
            assertEq(count == 1, _status(ids[i]) == SettlementGate.Status.Settled);
        }
    }

    function invariant_EscrowEqualsOpenTrades() public view {
        uint256[] memory ids = s_handler.tradeIds();
        uint256 base;
        uint256 quote;
        uint256 blocking;
        for (uint256 i = 0; i < ids.length; ++i) {
            SettlementGate.Trade memory trade = s_gate.getTrade(ids[i]);
            if (trade.status == SettlementGate.Status.Open || trade.status == SettlementGate.Status.Funded) {
                base += trade.baseAmount;
            }
            if (trade.status == SettlementGate.Status.Funded) {
                if (trade.quoteToken == address(s_blk)) blocking += trade.maxQuote;
                else quote += trade.maxQuote;
            }
        }
        assertEq(s_weth.balanceOf(address(s_gate)), base + _owed(address(s_weth)));
        assertEq(s_usdc.balanceOf(address(s_gate)), quote + _owed(address(s_usdc)));
        assertEq(s_blk.balanceOf(address(s_gate)), blocking + _owed(address(s_blk)));
    }

    function _owed(address token) internal view returns (uint256) {
        return s_gate.owed(s_seller, token) + s_gate.owed(s_buyer, token);
    }
}

