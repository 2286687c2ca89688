// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Test} from "forge-std/Test.sol";
import {GatewayFixture} from "./CrossChainGateway.t.sol";
import {MessageSink} from "../src/test/MessageSink.sol";
import {CrossChainGateway} from "../src/CrossChainGateway.sol";

/// @dev Sends with random values and waits (the source's rate limiter); attests messages from a
/// small pool again and again, ordered and out of order, while the receiver breaks and mends;
/// re-executes failed ones.
contract GatewayHandler is Test {
    CrossChainGatewayInvariantTest internal immutable i_fixture;

    constructor(CrossChainGatewayInvariantTest fixture) {
        i_fixture = fixture;
    }

    function send(uint256 value) external {
        try i_fixture.sendOnA(bound(value, 0, 600e18)) {} catch {}
    }

    function wait(uint256 secondsToWait) external {
        vm.warp(block.timestamp + bound(secondsToWait, 1, 600));
    }

    function attest(uint8 nonce, bool outOfOrder) external {
        try i_fixture.attestPooled(uint64(bound(nonce, 1, 5)), outOfOrder) {} catch {}
    }

    function breakSink(bool broken) external {
        i_fixture.sink().setBroken(broken);
    }

    function reexecute(uint8 nonce, bool outOfOrder) external {
        try i_fixture.reexecutePooled(uint64(bound(nonce, 1, 5)), outOfOrder) {} catch {}
    }
}

/// @notice A message never executes twice; the rate limiter never holds more than its capacity.
contract CrossChainGatewayInvariantTest is GatewayFixture {
    GatewayHandler internal s_handler;

    function setUp() public override {
        super.setUp();
        s_handler = new GatewayHandler(this);
        targetContract(address(s_handler));
    }

    function sink() external view returns (MessageSink) {
        return s_sink;
    }

    function sendOnA(uint256 value) external {
        _sendOnA("", value);
    }

    function pooled(uint64 nonce, bool outOfOrder) public view returns (CrossChainGateway.Message memory) {
        return _message(nonce, 1e18, outOfOrder, abi.encode(nonce, outOfOrder));
    }

    function attestPooled(uint64 nonce, bool outOfOrder) external {
        _attest(pooled(nonce, outOfOrder));
    }

    function reexecutePooled(uint64 nonce, bool outOfOrder) external {
        vm.chainId(CHAIN_B);
        s_gwB.executeFailed(pooled(nonce, outOfOrder));
    }

    function invariant_AMessageNeverExecutesTwice() public view {
        for (uint64 nonce = 1; nonce <= 5; ++nonce) {
            for (uint256 flag = 0; flag < 2; ++flag) {
                bytes memory payload = abi.encode(nonce, flag == 1);
                assertLe(s_sink.received(CHAIN_A, s_sender, payload), 1);
            }
        }
    }

    function invariant_RateLimiterNeverExceedsCapacity() public view {
        (CrossChainGateway.Bucket memory bucket, uint256 available) = s_gwA.getBucket(CHAIN_B);
        assertLe(bucket.tokens, bucket.capacity);
        assertLe(available, bucket.capacity);
    }
}
