// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {console2} from "forge-std/console2.sol";
import {GatewayFixture} from "./CrossChainGateway.t.sol";
import {CrossChainGateway} from "../src/CrossChainGateway.sol";
import {SettlementGate} from "../src/SettlementGate.sol";

/// @notice Gas of each hot call alone (execution, measured around the call; run with -vv to see
/// the figures docs/contracts.md quotes). Each test checks the call did its work.
contract HotPathGasTest is GatewayFixture {
    function test_HotPath_Gate() public {
        s_weth.mint(s_seller, BASE_AMOUNT);
        vm.prank(s_seller);
        s_weth.approve(address(s_gate), BASE_AMOUNT);
        vm.prank(s_seller);
        uint256 g = gasleft();
        uint256 tradeId = s_gate.createTrade(
            s_buyer,
            address(s_weth),
            BASE_AMOUNT,
            address(s_usdc),
            MIN_PRICE,
            MAX_PRICE,
            uint64(block.timestamp + 600),
            s_actionHash
        );
        console2.log("gate createTrade", g - gasleft());
        s_usdc.mint(s_buyer, MAX_QUOTE);
        vm.prank(s_buyer);
        s_usdc.approve(address(s_gate), MAX_QUOTE);
        vm.prank(s_buyer);
        g = gasleft();
        s_gate.fundTrade(tradeId);
        console2.log("gate fundTrade", g - gasleft());
        bytes memory raw = _report(_executionId(0), tradeId, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        bytes memory context = _context();
        g = gasleft();
        s_forwarder.report(address(s_gate), raw, context, sigs);
        console2.log("forwarder report, gate settles", g - gasleft());
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
        assertEq(s_usdc.balanceOf(s_seller), 6_000e18);

        uint256 second = _fundedTrade();
        vm.warp(block.timestamp + 601);
        vm.prank(s_seller);
        g = gasleft();
        s_gate.refund(second);
        console2.log("gate refund (both legs)", g - gasleft());
        assertEq(s_weth.balanceOf(s_seller), BASE_AMOUNT);
    }

    function test_HotPath_Gateway() public {
        vm.chainId(CHAIN_A);
        vm.prank(s_sender);
        uint256 g = gasleft();
        s_gwA.send(CHAIN_B, address(s_sink), "hello", 5e18);
        console2.log("gateway send", g - gasleft());
        CrossChainGateway.Message memory message = _send(CHAIN_B, "hello", 5e18, false);
        vm.chainId(CHAIN_B);
        bytes memory raw = _raw(CHAIN_B, message);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        bytes memory context = _context();
        message.nonce = 1; // deliver the first send's twin: same lane position
        raw = _raw(CHAIN_B, message);
        sigs = _sigs(_keys(0, 1), raw);
        g = gasleft();
        s_forwarder.report(address(s_gwB), raw, context, sigs);
        console2.log("forwarder report, gateway executes", g - gasleft());
        assertEq(s_token.balanceOf(address(s_sink)), 5e18);
    }
}
