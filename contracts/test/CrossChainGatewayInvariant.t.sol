// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Test} from "forge-std/Test.sol";
import {console2} from "forge-std/console2.sol";
import {GatewayFixture} from "./CrossChainGateway.t.sol";
import {MessageSink} from "../src/test/MessageSink.sol";
import {CrossChainGateway} from "../src/CrossChainGateway.sol";

/// @dev Drives three chains the way the world does: two senders send real messages from A to B
/// and to C, ordered and out of order, with random values; reports of those very messages arrive
/// in any order, with any gas from starved to plenty, sometimes on the wrong chain; the receiver
/// breaks and mends; anyone re-executes failed messages; time passes (both rate limiters).
contract GatewayHandler is Test {
    CrossChainGatewayInvariantTest internal immutable i_fixture;

    constructor(CrossChainGatewayInvariantTest fixture) {
        i_fixture = fixture;
    }

    function send(uint256 value, bool toC, bool outOfOrder, bool secondSender) external {
        try i_fixture.sendReal(bound(value, 0, 400e18), toC, outOfOrder, secondSender) {} catch {}
    }

    function attest(uint256 pick, uint256 gas, bool wrongChain) external {
        try i_fixture.attestSent(pick, bound(gas, 150_000, 1_500_000), wrongChain) {} catch {}
    }

    function attestNextInLane(bool toC, bool secondSender, uint256 gas) external {
        try i_fixture.attestNext(toC, secondSender, bound(gas, 150_000, 1_500_000)) {} catch {}
    }

    function breakSink(bool broken) external {
        i_fixture.sink().setBroken(broken);
    }

    function reexecute(uint256 pick) external {
        try i_fixture.reexecuteSent(pick) {} catch {}
    }

    function wait(uint256 secondsToWait) external {
        vm.warp(block.timestamp + bound(secondsToWait, 1, 600));
    }
}

/// @notice Value released across all chains never exceeds value locked, per lane and in all; no
/// ordered message executes before its predecessor; no message executes twice or on a chain it
/// was not sent to; the rate limiters never exceed their capacity.
contract CrossChainGatewayInvariantTest is GatewayFixture {
    GatewayHandler internal s_handler;
    address internal s_sender2 = makeAddr("sender2");
    CrossChainGateway.Message[] internal s_sent;
    /// @dev Ghost accounting per lane (destination chain, sender): value locked on A by sends.
    mapping(uint256 destChainId => mapping(address sender => uint256 value)) internal s_locked;

    function setUp() public override {
        super.setUp();
        s_token.mint(s_sender2, 1_000_000e18);
        vm.prank(s_sender2);
        s_token.approve(address(s_gwA), type(uint256).max);
        s_handler = new GatewayHandler(this);
        targetContract(address(s_handler));
    }

    function sink() external view returns (MessageSink) {
        return s_sink;
    }

    function sendReal(uint256 value, bool toC, bool outOfOrder, bool secondSender) external {
        address sender = secondSender ? s_sender2 : s_sender;
        uint256 dest = toC ? CHAIN_C : CHAIN_B;
        CrossChainGateway.Message memory message =
            _sendFrom(sender, dest, abi.encode(s_sent.length), value, outOfOrder, s_gwA.DEFAULT_GAS_LIMIT());
        s_sent.push(message);
        s_locked[dest][sender] += value;
    }

    function attestSent(uint256 pick, uint256 gas, bool wrongChain) external {
        if (s_sent.length == 0) return;
        CrossChainGateway.Message memory message = s_sent[pick % s_sent.length];
        uint256 chain = message.destChainId;
        if (wrongChain) chain = chain == CHAIN_B ? CHAIN_C : CHAIN_B;
        _attestOn(chain, message, gas);
    }

    /// @dev The lane's next ordered message (so deep lanes get delivered, not only first messages).
    function attestNext(bool toC, bool secondSender, uint256 gas) external {
        uint256 dest = toC ? CHAIN_C : CHAIN_B;
        address sender = secondSender ? s_sender2 : s_sender;
        uint64 next = _gatewayOn(dest).getExecutedNonce(CHAIN_A, sender) + 1;
        for (uint256 i = 0; i < s_sent.length; ++i) {
            CrossChainGateway.Message memory m = s_sent[i];
            if (!m.outOfOrder && m.destChainId == dest && m.sender == sender && m.nonce == next) {
                _attestOn(dest, m, gas);
                return;
            }
        }
    }

    function reexecuteSent(uint256 pick) external {
        if (s_sent.length == 0) return;
        CrossChainGateway.Message memory message = s_sent[pick % s_sent.length];
        vm.chainId(message.destChainId);
        _gatewayOn(message.destChainId).executeFailed(message);
    }

    function _state(CrossChainGateway.Message memory message, uint256 chain)
        internal
        view
        returns (CrossChainGateway.State)
    {
        CrossChainGateway gw = _gatewayOn(chain);
        return gw.getState(gw.getMessageId(message));
    }

    /// @dev How much of the run actually delivered (with -vv): the invariants are not vacuous.
    function afterInvariant() public view {
        uint256 executed;
        uint256 deep;
        for (uint256 i = 0; i < s_sent.length; ++i) {
            CrossChainGateway.Message memory m = s_sent[i];
            if (_state(m, m.destChainId) != CrossChainGateway.State.Unknown) {
                ++executed;
                if (!m.outOfOrder && m.nonce > 1) ++deep;
            }
        }
        console2.log("messages sent", s_sent.length, "processed (executed or failed)", executed);
        console2.log("  of which ordered, beyond a lane's first", deep);
    }

    /// @dev The handler's machinery delivers what it sends, deep lanes included, and the
    /// invariants hold on that state (so they are not vacuous on an empty run).
    function test_Handler_DeliversDeepLanesAndTheInvariantsHold() public {
        for (uint256 i = 0; i < 4; ++i) {
            s_handler.send(10e18 + i, i % 2 == 1, false, false);
            s_handler.send(1e18, false, i == 2, true);
        }
        s_handler.attest(0, 150_000, false); // starved: nothing happens
        s_handler.attest(0, 1_000_000, true); // the wrong chain: refused
        for (uint256 i = 0; i < 4; ++i) {
            s_handler.attestNextInLane(false, false, 1_000_000);
            s_handler.attestNextInLane(true, false, 1_000_000);
            s_handler.attestNextInLane(false, true, 1_000_000);
        }
        s_handler.attest(5, 1_000_000, false); // sender2's out-of-order message
        uint256 executed;
        uint256 deep;
        for (uint256 i = 0; i < s_sent.length; ++i) {
            CrossChainGateway.Message memory m = s_sent[i];
            if (_state(m, m.destChainId) == CrossChainGateway.State.Executed) {
                ++executed;
                if (!m.outOfOrder && m.nonce > 1) ++deep;
            }
        }
        assertEq(s_sent.length, 8);
        assertEq(executed, 8);
        assertEq(deep, 4); // lane (B, sender) 2, (C, sender) 2, (B, sender2) 2 and 3
        invariant_ValueReleasedNeverExceedsValueLocked();
        invariant_NoOrderedMessageExecutesBeforeItsPredecessor();
        invariant_NoMessageExecutesTwiceOrOnAnotherChain();
        invariant_RateLimitersNeverExceedCapacity();
    }

    // ---------------------------------------------------------------- invariants

    /// forge-config: default.invariant.depth = 96
    /// forge-config: ci.invariant.depth = 96
    function invariant_ValueReleasedNeverExceedsValueLocked() public view {
        uint256 locked = s_token.balanceOf(address(s_gwA));
        uint256[2] memory dests = [CHAIN_B, CHAIN_C];
        address[2] memory senders = [s_sender, s_sender2];
        uint256 ghostLocked;
        for (uint256 d = 0; d < 2; ++d) {
            for (uint256 s = 0; s < 2; ++s) {
                uint256 released;
                for (uint256 i = 0; i < s_sent.length; ++i) {
                    CrossChainGateway.Message memory m = s_sent[i];
                    if (m.destChainId != dests[d] || m.sender != senders[s]) continue;
                    if (_state(m, dests[d]) == CrossChainGateway.State.Executed) released += m.value;
                }
                assertLe(released, s_locked[dests[d]][senders[s]], "a lane released more than it locked");
                ghostLocked += s_locked[dests[d]][senders[s]];
            }
        }
        assertEq(locked, ghostLocked, "A holds exactly what was sent");
        // every release lands at the sink: all chains together never pay out more than A locked
        assertLe(s_token.balanceOf(address(s_sink)), locked);
    }

    /// forge-config: default.invariant.depth = 96
    /// forge-config: ci.invariant.depth = 96
    function invariant_NoOrderedMessageExecutesBeforeItsPredecessor() public view {
        for (uint256 i = 0; i < s_sent.length; ++i) {
            CrossChainGateway.Message memory m = s_sent[i];
            if (m.outOfOrder || _state(m, m.destChainId) == CrossChainGateway.State.Unknown) continue;
            // its predecessor in the lane (same destination and sender, nonce - 1) was processed
            for (uint256 j = 0; j < i; ++j) {
                CrossChainGateway.Message memory p = s_sent[j];
                if (!p.outOfOrder && p.destChainId == m.destChainId && p.sender == m.sender && p.nonce + 1 == m.nonce) {
                    assertTrue(_state(p, p.destChainId) != CrossChainGateway.State.Unknown, "predecessor pending");
                }
            }
            assertLe(m.nonce, _gatewayOn(m.destChainId).getExecutedNonce(CHAIN_A, m.sender));
        }
    }

    function invariant_NoMessageExecutesTwiceOrOnAnotherChain() public view {
        for (uint256 i = 0; i < s_sent.length; ++i) {
            CrossChainGateway.Message memory m = s_sent[i];
            assertLe(s_sink.received(CHAIN_A, m.sender, m.payload), 1);
            uint256 other = m.destChainId == CHAIN_B ? CHAIN_C : CHAIN_B;
            assertEq(uint8(_state(m, other)), uint8(CrossChainGateway.State.Unknown), "processed off its chain");
        }
    }

    function invariant_RateLimitersNeverExceedCapacity() public view {
        uint256[2] memory dests = [CHAIN_B, CHAIN_C];
        for (uint256 d = 0; d < 2; ++d) {
            (CrossChainGateway.Bucket memory bucket, uint256 available) = s_gwA.getBucket(dests[d]);
            assertLe(bucket.tokens, bucket.capacity);
            assertLe(available, bucket.capacity);
            (bucket, available) = _gatewayOn(dests[d]).getInboundBucket(CHAIN_A);
            assertLe(bucket.tokens, bucket.capacity);
            assertLe(available, bucket.capacity);
        }
    }
}
