// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReceiverBase} from "../src/ReceiverBase.sol";
import {FeeToken} from "./Tokens.t.sol";
import {Vm} from "forge-std/Vm.sol";
import {BaseTest} from "./Base.t.sol";
import {Forwarder} from "../src/Forwarder.sol";
import {IReceiver} from "../src/interfaces/IReceiver.sol";
import {CrossChainGateway} from "../src/CrossChainGateway.sol";
import {TestToken} from "../src/test/TestToken.sol";
import {MessageSink} from "../src/test/MessageSink.sol";

/// @notice Shared fixture: gateway A on chain 1001 (source), gateways B on 2002 and C on 3003
/// (destinations, fed by the one forwarder and DON, both trusting A), one token, one sink.
/// Messages are taken from real sends: the MessageSent log is read back and turned into the
/// Message the DON attests, field by field as cre_adapters/_messages.py does.
abstract contract GatewayFixture is BaseTest {
    uint256 internal constant CHAIN_A = 1001;
    uint256 internal constant CHAIN_B = 2002;
    uint256 internal constant CHAIN_C = 3003;
    bytes32 internal constant MESSAGE_SENT =
        keccak256("MessageSent(uint256,address,uint64,address,uint256,bool,uint32,bytes)");
    CrossChainGateway internal s_gwA;
    CrossChainGateway internal s_gwB;
    CrossChainGateway internal s_gwC;
    TestToken internal s_token;
    MessageSink internal s_sink;
    address internal s_sender = makeAddr("sender");
    uint256 internal s_round;
    uint256 internal s_sends;

    function setUp() public virtual override {
        super.setUp();
        s_token = new TestToken("Bridged", "BRG");
        s_gwA = _gateway();
        s_gwB = _gateway();
        s_gwC = _gateway();
        s_sink = new MessageSink();
        s_gwA.setBucket(CHAIN_B, 1_000e18, 1e18);
        s_gwA.setBucket(CHAIN_C, 1_000e18, 1e18);
        s_gwB.setSource(CHAIN_A, address(s_gwA));
        s_gwC.setSource(CHAIN_A, address(s_gwA));
        s_gwB.setInboundBucket(CHAIN_A, 1_000e18, 1e18);
        s_gwC.setInboundBucket(CHAIN_A, 1_000e18, 1e18);
        s_token.mint(address(s_gwB), 1_000_000e18); // destination liquidity for releases
        s_token.mint(address(s_gwC), 1_000_000e18);
        s_token.mint(s_sender, 1_000_000e18);
        vm.prank(s_sender);
        s_token.approve(address(s_gwA), type(uint256).max);
    }

    function _gateway() internal returns (CrossChainGateway) {
        return
            new CrossChainGateway(
                s_token, address(s_forwarder), s_owner, s_workflowId, FRESHNESS, DON_ID, CONFIG_VERSION
            );
    }

    function _gatewayOn(uint256 chainId) internal view returns (CrossChainGateway) {
        if (chainId == CHAIN_B) return s_gwB;
        if (chainId == CHAIN_C) return s_gwC;
        revert("no gateway on that chain");
    }

    /// @dev A made-up message to B (for tests of the destination's checks alone).
    function _message(uint64 nonce, uint256 value, bool outOfOrder, bytes memory payload)
        internal
        view
        returns (CrossChainGateway.Message memory)
    {
        return CrossChainGateway.Message(
            CHAIN_A,
            address(s_gwA),
            keccak256(abi.encode("tx", nonce, payload)),
            nonce,
            s_sender,
            CHAIN_B,
            nonce,
            address(s_sink),
            value,
            outOfOrder,
            s_gwA.DEFAULT_GAS_LIMIT(),
            payload
        );
    }

    function _sendOnA(bytes memory payload, uint256 value) internal returns (uint64 nonce) {
        vm.chainId(CHAIN_A);
        vm.prank(s_sender);
        nonce = s_gwA.send(CHAIN_B, address(s_sink), payload, value);
    }

    /// @dev Send on A as `sender` and return the Message read back from the MessageSent log.
    function _sendFrom(
        address sender,
        uint256 destChainId,
        bytes memory payload,
        uint256 value,
        bool outOfOrder,
        uint32 gasLimit
    ) internal returns (CrossChainGateway.Message memory message) {
        vm.chainId(CHAIN_A);
        vm.recordLogs();
        vm.prank(sender);
        s_gwA.sendWithGasLimit(destChainId, address(s_sink), payload, value, gasLimit, outOfOrder);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(s_gwA) && logs[i].topics[0] == MESSAGE_SENT) {
                return _fromLog(logs[i], ++s_sends);
            }
        }
        revert("no MessageSent");
    }

    function _send(uint256 destChainId, bytes memory payload, uint256 value, bool outOfOrder)
        internal
        returns (CrossChainGateway.Message memory)
    {
        return _sendFrom(s_sender, destChainId, payload, value, outOfOrder, s_gwA.DEFAULT_GAS_LIMIT());
    }

    /// @dev The relay's reading of a MessageSent log; the tx hash and log index stand in for the
    /// real ones (unique per send).
    function _fromLog(Vm.Log memory entry, uint256 index) internal pure returns (CrossChainGateway.Message memory m) {
        (address receiver, uint256 value, bool outOfOrder, uint32 gasLimit, bytes memory payload) =
            abi.decode(entry.data, (address, uint256, bool, uint32, bytes));
        m = CrossChainGateway.Message(
            CHAIN_A,
            entry.emitter,
            keccak256(abi.encode("tx", index)),
            index,
            address(uint160(uint256(entry.topics[2]))),
            uint256(entry.topics[1]),
            uint64(uint256(entry.topics[3])),
            receiver,
            value,
            outOfOrder,
            gasLimit,
            payload
        );
    }

    /// @dev The report body for the gateway of `chainId`, built on that chain.
    function _bodyFor(uint256 chainId, CrossChainGateway.Message memory message) internal view returns (bytes memory) {
        return
            abi.encode(chainId, address(_gatewayOn(chainId)), uint64(block.timestamp), bytes32(0), abi.encode(message));
    }

    function _body(CrossChainGateway.Message memory message) internal view returns (bytes memory) {
        return _bodyFor(CHAIN_B, message);
    }

    /// @dev A signed report of `message` for the gateway of `chainId`.
    function _raw(uint256 chainId, CrossChainGateway.Message memory message) internal returns (bytes memory) {
        return bytes.concat(
            _metadata(keccak256(abi.encode("exec", ++s_round)), uint32(block.timestamp)), _bodyFor(chainId, message)
        );
    }

    /// @dev Deliver through the real forwarder on `chainId` with `gas`, signed by two DON keys;
    /// whether the gateway accepted it.
    function _attestOn(uint256 chainId, CrossChainGateway.Message memory message, uint256 gas)
        internal
        returns (bool accepted)
    {
        vm.chainId(chainId);
        bytes memory raw = _raw(chainId, message);
        bytes32 executionId = keccak256(abi.encode("exec", s_round));
        s_forwarder.report{gas: gas}(address(_gatewayOn(chainId)), raw, _context(), _sigs(_keys(0, 1), raw));
        return _state(address(_gatewayOn(chainId)), executionId) == Forwarder.TransmissionState.SUCCEEDED;
    }

    /// @dev Deliver on B with plenty of gas.
    function _attest(CrossChainGateway.Message memory message) internal {
        _attestOn(CHAIN_B, message, 5_000_000);
    }

    /// @dev onReport as the forwarder calls it: the arguments, then the config word.
    function _onReportCall(uint256 chainId, CrossChainGateway.Message memory message)
        internal
        view
        returns (bytes memory)
    {
        return bytes.concat(
            abi.encodeCall(
                IReceiver.onReport,
                (abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID), _bodyFor(chainId, message))
            ),
            bytes32(uint256((uint64(DON_ID) << 32) | CONFIG_VERSION))
        );
    }

    /// @dev Deliver on B as the forwarder directly, expecting `err`.
    function _attestReverts(CrossChainGateway.Message memory message, bytes memory err) internal {
        vm.chainId(CHAIN_B);
        vm.prank(address(s_forwarder));
        (bool ok, bytes memory got) = address(s_gwB).call(_onReportCall(CHAIN_B, message));
        assertFalse(ok, "onReport should revert");
        assertEq(got, err);
    }

    function _id(CrossChainGateway.Message memory message) internal view returns (bytes32) {
        return s_gwB.getMessageId(message);
    }
}

contract CrossChainGatewayTest is GatewayFixture {
    event MessageSent(
        uint256 indexed destChainId,
        address indexed sender,
        uint64 indexed nonce,
        address receiver,
        uint256 value,
        bool outOfOrder,
        uint32 gasLimit,
        bytes payload
    );
    event MessageExecuted(
        bytes32 indexed messageId, uint256 indexed sourceChainId, address indexed sender, uint64 nonce
    );

    function test_TypeAndVersion() public view {
        assertEq(s_gwA.typeAndVersion(), "vouch CrossChainGateway 2.0.0");
        assertEq(address(s_gwA.token()), address(s_token));
        assertEq(s_gwB.getSource(CHAIN_A), address(s_gwA));
    }

    // ---------------------------------------------------------------- send

    function test_Send_LocksValueTakesNonceAndEmits() public {
        vm.chainId(CHAIN_A);
        vm.expectEmit(address(s_gwA));
        emit MessageSent(CHAIN_B, s_sender, 1, address(s_sink), 5e18, false, 200_000, "hi");
        vm.prank(s_sender);
        assertEq(s_gwA.send(CHAIN_B, address(s_sink), "hi", 5e18), 1);
        assertEq(_sendOnA("again", 0), 2);
        assertEq(s_gwA.getSentNonce(CHAIN_B, s_sender), 2);
        assertEq(s_token.balanceOf(address(s_gwA)), 5e18);
    }

    function test_SendOutOfOrder_FlagsTheMessage() public {
        vm.chainId(CHAIN_A);
        vm.expectEmit(address(s_gwA));
        emit MessageSent(CHAIN_B, s_sender, 0, address(s_sink), 0, true, 200_000, "x");
        vm.prank(s_sender);
        assertEq(s_gwA.sendOutOfOrder(CHAIN_B, address(s_sink), "x", 0), 0); // no place in the order
        assertEq(s_gwA.getSentNonce(CHAIN_B, s_sender), 0);
    }

    function test_Send_RevertWhen_ZeroReceiver() public {
        vm.chainId(CHAIN_A);
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.InvalidDestination.selector, CHAIN_B, address(0)));
        s_gwA.send(CHAIN_B, address(0), "", 0);
    }

    function test_Send_RevertWhen_DestinationIsThisChain() public {
        vm.chainId(CHAIN_A);
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.InvalidDestination.selector, CHAIN_A, address(1)));
        s_gwA.send(CHAIN_A, address(1), "", 0);
    }

    function test_Send_RevertWhen_DestinationDisabled() public {
        vm.chainId(CHAIN_A);
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.DestinationDisabled.selector, 4004));
        s_gwA.send(4004, address(1), "", 0);
    }

    function test_Send_RevertWhen_RateLimited() public {
        _sendOnA("", 800e18);
        vm.chainId(CHAIN_A);
        vm.prank(s_sender);
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.RateLimited.selector, CHAIN_B, 300e18, 200e18));
        s_gwA.send(CHAIN_B, address(s_sink), "", 300e18);
    }

    function test_Send_BucketRefillsUpToCapacity() public {
        _sendOnA("", 1_000e18);
        vm.warp(block.timestamp + 100);
        (, uint256 available) = s_gwA.getBucket(CHAIN_B);
        assertEq(available, 100e18);
        vm.warp(block.timestamp + 1 days);
        (CrossChainGateway.Bucket memory bucket, uint256 full) = s_gwA.getBucket(CHAIN_B);
        assertEq(full, 1_000e18);
        assertEq(bucket.capacity, 1_000e18);
    }

    // ---------------------------------------------------------------- deliver

    function test_Report_ExecutesReleasesAndCalls() public {
        uint64 nonce = _sendOnA("hello", 7e18);
        CrossChainGateway.Message memory message = _message(nonce, 7e18, false, "hello");
        vm.expectEmit(address(s_gwB));
        emit MessageExecuted(_id(message), CHAIN_A, s_sender, 1);
        _attest(message);
        assertEq(s_sink.calls(), 1);
        assertEq(s_sink.lastPayload(), "hello");
        assertEq(s_token.balanceOf(address(s_sink)), 7e18);
        assertEq(uint8(s_gwB.getState(_id(message))), uint8(CrossChainGateway.State.Executed));
        assertEq(s_gwB.getExecutedNonce(CHAIN_A, s_sender), 1);
    }

    function test_Report_RevertWhen_UnknownSource() public {
        CrossChainGateway.Message memory message = _message(1, 0, false, "");
        message.sourceGateway = address(0xBAD);
        _attestReverts(
            message, abi.encodeWithSelector(CrossChainGateway.UnknownSource.selector, CHAIN_A, address(0xBAD))
        );
    }

    function test_Report_RevertWhen_AlreadyExecuted() public {
        CrossChainGateway.Message memory message = _message(1, 0, false, "m");
        _attest(message);
        _attestReverts(
            message,
            abi.encodeWithSelector(
                CrossChainGateway.AlreadyProcessed.selector, _id(message), CrossChainGateway.State.Executed
            )
        );
        assertEq(s_sink.calls(), 1);
    }

    function test_Report_RevertWhen_OutOfOrder() public {
        _attestReverts(
            _message(2, 0, false, ""),
            abi.encodeWithSelector(CrossChainGateway.OutOfOrder.selector, CHAIN_A, s_sender, 1, 2)
        );
    }

    function test_Report_OutOfOrderFlagSkipsTheQueue() public {
        _attest(_message(0, 0, true, "early"));
        assertEq(s_sink.calls(), 1);
        assertEq(s_gwB.getExecutedNonce(CHAIN_A, s_sender), 0); // ordered messages still start at 1
        _attest(_message(1, 0, false, "first"));
        assertEq(s_gwB.getExecutedNonce(CHAIN_A, s_sender), 1);
    }

    function test_Report_RecordsAFailureAndTheSenderMovesOn() public {
        s_sink.setBroken(true);
        CrossChainGateway.Message memory first = _message(1, 3e18, false, "a");
        _attest(first);
        assertEq(uint8(s_gwB.getState(_id(first))), uint8(CrossChainGateway.State.Failed));
        assertEq(s_token.balanceOf(address(s_sink)), 0); // the release was undone with the call
        s_sink.setBroken(false);
        _attest(_message(2, 0, false, "b"));
        assertEq(s_sink.calls(), 1);
    }

    function test_ExecuteFailed_ReexecutesOnce() public {
        s_sink.setBroken(true);
        CrossChainGateway.Message memory message = _message(1, 3e18, false, "a");
        _attest(message);
        s_sink.setBroken(false);
        vm.prank(makeAddr("anyone"));
        s_gwB.executeFailed(message);
        assertEq(uint8(s_gwB.getState(_id(message))), uint8(CrossChainGateway.State.Executed));
        assertEq(s_token.balanceOf(address(s_sink)), 3e18);
        vm.expectRevert(
            abi.encodeWithSelector(CrossChainGateway.NotFailed.selector, _id(message), CrossChainGateway.State.Executed)
        );
        s_gwB.executeFailed(message);
    }

    function test_ExecuteFailed_RevertWhen_Unknown() public {
        CrossChainGateway.Message memory message = _message(1, 0, false, "");
        vm.chainId(CHAIN_B);
        vm.expectRevert(
            abi.encodeWithSelector(CrossChainGateway.NotFailed.selector, _id(message), CrossChainGateway.State.Unknown)
        );
        s_gwB.executeFailed(message);
    }

    function test_Deliver_RevertWhen_NotSelf() public {
        CrossChainGateway.Message memory message = _message(1, 0, false, "");
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.OnlySelf.selector, address(this)));
        s_gwB.deliver(message);
    }

    // ---------------------------------------------------------------- review exploits (issue 15)

    /// @dev H-1: B, then C, then B. Numbered per sender, the third message was B's nonce 3 while
    /// B waited for 2: OutOfOrder forever, its value locked on A. Per (destination, sender) it is B's 2.
    function test_H1_SendingToAnotherChainDoesNotJamALane() public {
        CrossChainGateway.Message memory b1 = _send(CHAIN_B, "b1", 1e18, false);
        CrossChainGateway.Message memory c1 = _send(CHAIN_C, "c1", 1e18, false);
        CrossChainGateway.Message memory b2 = _send(CHAIN_B, "b2", 1e18, false);
        assertEq(b1.nonce, 1);
        assertEq(c1.nonce, 1);
        assertEq(b2.nonce, 2);
        assertTrue(_attestOn(CHAIN_B, b1, 5_000_000));
        assertTrue(_attestOn(CHAIN_C, c1, 5_000_000));
        assertTrue(_attestOn(CHAIN_B, b2, 5_000_000));
        assertEq(s_gwB.getExecutedNonce(CHAIN_A, s_sender), 2);
        assertEq(s_gwC.getExecutedNonce(CHAIN_A, s_sender), 1);
        assertEq(s_sink.calls(), 3);
    }

    /// @dev H-2: a message sent to C, attested to B: refused on B (5 locked, 5 released at most).
    function test_H2_AMessageForCIsRefusedOnB() public {
        CrossChainGateway.Message memory toC = _send(CHAIN_C, "for C", 5e18, false);
        assertFalse(_attestOn(CHAIN_B, toC, 5_000_000)); // the forwarder records FAILED
        assertEq(uint8(s_gwB.getState(s_gwB.getMessageId(toC))), uint8(CrossChainGateway.State.Unknown));
        _attestReverts(toC, abi.encodeWithSelector(CrossChainGateway.WrongDestination.selector, CHAIN_C, CHAIN_B));
        assertTrue(_attestOn(CHAIN_C, toC, 5_000_000));
        assertEq(s_token.balanceOf(address(s_sink)), 5e18); // released once, where it was sent
    }

    /// @dev M-1: ordered, out of order, ordered. With one shared sequence the third carried 3 while
    /// the destination expected 2. Out-of-order messages now take no nonce.
    function test_M1_AnOutOfOrderMessageTakesNoPlaceInTheOrder() public {
        CrossChainGateway.Message memory first = _send(CHAIN_B, "1", 0, false);
        CrossChainGateway.Message memory loose = _send(CHAIN_B, "x", 0, true);
        CrossChainGateway.Message memory second = _send(CHAIN_B, "2", 0, false);
        assertEq(loose.nonce, 0);
        assertEq(second.nonce, 2);
        assertTrue(_attestOn(CHAIN_B, first, 5_000_000));
        assertTrue(_attestOn(CHAIN_B, second, 5_000_000));
        assertTrue(_attestOn(CHAIN_B, loose, 5_000_000));
        assertEq(s_gwB.getExecutedNonce(CHAIN_A, s_sender), 2);
        assertEq(s_sink.calls(), 3);
    }

    /// @dev M-2: a report with too little gas for the receiver's limit. Before, the gateway caught
    /// the receiver's out-of-gas, recorded Failed and advanced the nonce, and the forwarder recorded
    /// success (final). Now the gateway reverts: nothing recorded, the same report retried succeeds.
    function test_M2_ALowGasSubmitterCannotFailAMessage() public {
        CrossChainGateway.Message memory first = _send(CHAIN_B, "1", 1e18, false);
        CrossChainGateway.Message memory second = _send(CHAIN_B, "2", 0, false);
        // from the forwarder's floor up to what a full delivery needs, every gas amount either
        // delivers or leaves the message untouched
        for (uint256 gas = 180_000; gas <= 420_000; gas += 20_000) {
            uint256 snapshot = vm.snapshotState();
            bool accepted = _attestOn(CHAIN_B, first, gas);
            CrossChainGateway.State state = s_gwB.getState(s_gwB.getMessageId(first));
            if (accepted) {
                assertEq(uint8(state), uint8(CrossChainGateway.State.Executed), "accepted means executed");
            } else {
                assertEq(uint8(state), uint8(CrossChainGateway.State.Unknown), "refused means untouched");
                assertEq(s_gwB.getExecutedNonce(CHAIN_A, s_sender), 0);
            }
            vm.revertToState(snapshot);
        }
        assertFalse(_attestOn(CHAIN_B, first, 300_000)); // starved: refused, retryable
        assertTrue(_attestOn(CHAIN_B, first, 5_000_000));
        assertTrue(_attestOn(CHAIN_B, second, 5_000_000));
        assertEq(s_sink.calls(), 2);
    }

    /// @dev M-2: the receiver gets exactly the message's gas limit, whatever the submitter sends.
    function test_M2_TheReceiverGetsExactlyItsGasLimit() public {
        CrossChainGateway.Message memory message = _sendFrom(s_sender, CHAIN_B, "tight", 0, false, 30_000);
        assertTrue(_attestOn(CHAIN_B, message, 5_000_000));
        // the sink needs more than 30k for its writes: it fails within its limit, recorded Failed
        assertEq(uint8(s_gwB.getState(s_gwB.getMessageId(message))), uint8(CrossChainGateway.State.Failed));
    }

    function test_SendWithGasLimit_RevertWhen_AboveTheMaximum() public {
        vm.chainId(CHAIN_A);
        vm.prank(s_sender);
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.GasLimitTooHigh.selector, 5_000_001, 5_000_000));
        s_gwA.sendWithGasLimit(CHAIN_B, address(s_sink), "", 0, 5_000_001, false);
    }

    /// @dev L-2: one attested message could release any amount; now the source chain's inbound bucket caps it.
    function test_L2_InboundValueIsRateLimitedPerSourceChain() public {
        CrossChainGateway.Message memory big = _message(1, 1_000_000e18, false, "drain");
        _attestReverts(
            big, abi.encodeWithSelector(CrossChainGateway.InboundRateLimited.selector, CHAIN_A, 1_000_000e18, 1_000e18)
        );
        s_gwB.setInboundBucket(CHAIN_A, 0, 0); // no value may arrive from A; messages without value still do
        _attestReverts(
            _message(1, 1, false, "one"),
            abi.encodeWithSelector(CrossChainGateway.InboundRateLimited.selector, CHAIN_A, 1, 0)
        );
        assertTrue(_attestOn(CHAIN_B, _message(1, 0, false, "free"), 5_000_000));
    }

    function test_L2_InboundBucketRefills() public {
        assertTrue(_attestOn(CHAIN_B, _message(1, 1_000e18, false, "all"), 5_000_000));
        (, uint256 available) = s_gwB.getInboundBucket(CHAIN_A);
        assertEq(available, 0);
        vm.warp(block.timestamp + 10);
        (, available) = s_gwB.getInboundBucket(CHAIN_A);
        assertEq(available, 10e18);
    }

    /// @dev A message sent with a fee-on-transfer token would lock less than it releases.
    function test_Send_RevertWhen_TokenTakesAFee() public {
        FeeToken fee = new FeeToken();
        CrossChainGateway gw = new CrossChainGateway(
            IERC20(address(fee)), address(s_forwarder), s_owner, s_workflowId, FRESHNESS, DON_ID, CONFIG_VERSION
        );
        gw.setBucket(CHAIN_B, 1_000e18, 1e18);
        fee.mint(s_sender, 100e18);
        vm.startPrank(s_sender);
        fee.approve(address(gw), 100e18);
        vm.chainId(CHAIN_A);
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.TransferShortfall.selector, 100e18, 99e18));
        gw.send(CHAIN_B, address(s_sink), "", 100e18);
        vm.stopPrank();
    }

    /// @dev Receivers pin the DON: a report signed by another DON configured on the same forwarder is refused.
    function test_Pin_AReportOfAnotherDonIsRefused() public {
        s_forwarder.setConfig(DON_ID + 1, CONFIG_VERSION, F, s_signers); // same keys, another DON id
        CrossChainGateway.Message memory message = _send(CHAIN_B, "pinned", 0, false);
        vm.chainId(CHAIN_B);
        bytes memory raw = bytes.concat(
            _metadataFor(keccak256("other-don"), uint32(block.timestamp), DON_ID + 1, CONFIG_VERSION), _body(message)
        );
        bytes32 digest =
            keccak256(abi.encode(block.chainid, address(s_forwarder), DON_ID + 1, CONFIG_VERSION, F, s_signers));
        bytes memory context = abi.encodePacked(digest, uint256(SEQUENCE), bytes32(0));
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[0], raw, context);
        sigs[1] = _sign(s_keys[1], raw, context);
        s_forwarder.report(address(s_gwB), raw, context, sigs);
        assertEq(uint8(_state(address(s_gwB), keccak256("other-don"))), uint8(Forwarder.TransmissionState.FAILED));
        assertEq(s_sink.calls(), 0);
        // the receiver's own error, called as the forwarder would with the other DON's config word
        bytes memory call = bytes.concat(
            abi.encodeCall(
                IReceiver.onReport, (abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID), _body(message))
            ),
            _configWord(DON_ID + 1, CONFIG_VERSION)
        );
        vm.prank(address(s_forwarder));
        (bool ok, bytes memory err) = address(s_gwB).call(call);
        assertFalse(ok);
        assertEq(err, abi.encodeWithSelector(ReceiverBase.InvalidDon.selector, DON_ID + 1, DON_ID));
    }

    function test_Pin_AnOlderConfigVersionAndAMissingWordAreRefused() public {
        CrossChainGateway gw = new CrossChainGateway(
            s_token, address(s_forwarder), s_owner, s_workflowId, FRESHNESS, DON_ID, CONFIG_VERSION + 1
        );
        (uint32 donId, uint32 minVersion) = gw.getDonPin();
        assertEq(donId, DON_ID);
        assertEq(minVersion, CONFIG_VERSION + 1);
        bytes memory args = abi.encodeCall(
            IReceiver.onReport,
            (
                abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID),
                abi.encode(
                    CHAIN_B, address(gw), uint64(block.timestamp), bytes32(0), abi.encode(_message(1, 0, false, ""))
                )
            )
        );
        vm.chainId(CHAIN_B);
        vm.prank(address(s_forwarder));
        (bool ok, bytes memory err) = address(gw).call(bytes.concat(args, _configWord(DON_ID, CONFIG_VERSION)));
        assertFalse(ok);
        assertEq(
            err, abi.encodeWithSelector(ReceiverBase.InvalidConfigVersion.selector, CONFIG_VERSION, CONFIG_VERSION + 1)
        );
        vm.prank(address(s_forwarder));
        (ok, err) = address(gw).call(args); // as Keystone's forwarder calls: no config word
        assertFalse(ok);
        assertEq(err, abi.encodeWithSelector(ReceiverBase.MissingConfigId.selector, args.length));
    }

    // ---------------------------------------------------------------- admin

    function test_SetSource_RevertWhen_NotOwner() public {
        vm.prank(s_sender);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, s_sender));
        s_gwB.setSource(CHAIN_A, address(1));
    }

    function test_SetBucket_RevertWhen_NotOwner() public {
        vm.prank(s_sender);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, s_sender));
        s_gwA.setBucket(CHAIN_B, 1, 1);
    }

    function test_SetBucket_RevertWhen_RateWithoutCapacity() public {
        vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.InvalidBucket.selector, 0, 1));
        s_gwA.setBucket(CHAIN_B, 0, 1);
    }

    function test_SetBucket_ShrinkingCapsWhatIsAvailable() public {
        s_gwA.setBucket(CHAIN_B, 10e18, 0);
        (CrossChainGateway.Bucket memory bucket, uint256 available) = s_gwA.getBucket(CHAIN_B);
        assertEq(bucket.tokens, 10e18);
        assertEq(available, 10e18);
    }

    function testFuzz_Send_NeverTakesMoreThanTheBucketHolds(uint256 first, uint256 second, uint32 gap) public {
        first = bound(first, 0, 1_000e18);
        second = bound(second, 0, 2_000e18);
        _sendOnA("", first);
        vm.warp(block.timestamp + gap);
        uint256 refilled = 1_000e18 - first + uint256(gap) * 1e18;
        uint256 available = refilled > 1_000e18 ? 1_000e18 : refilled;
        vm.chainId(CHAIN_A);
        vm.prank(s_sender);
        if (second > available) {
            vm.expectRevert(abi.encodeWithSelector(CrossChainGateway.RateLimited.selector, CHAIN_B, second, available));
        }
        s_gwA.send(CHAIN_B, address(s_sink), "", second);
    }
}
