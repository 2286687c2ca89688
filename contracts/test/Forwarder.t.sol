// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC165, IERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {BaseTest} from "./Base.t.sol";
import {Forwarder} from "../src/Forwarder.sol";
import {SettlementGate} from "../src/SettlementGate.sol";
import {IReceiver} from "../src/interfaces/IReceiver.sol";

/// @dev Accepts every report and remembers the last one.
contract RecordingReceiver is IReceiver, ERC165 {
    bytes public s_metadata;
    bytes public s_report;
    uint256 public s_calls;

    function onReport(bytes calldata metadata, bytes calldata report) external virtual {
        s_metadata = metadata;
        s_report = report;
        ++s_calls;
    }

    function supportsInterface(bytes4 id) public view override(ERC165, IERC165) returns (bool) {
        return id == type(IReceiver).interfaceId || super.supportsInterface(id);
    }
}

/// @dev Records the word after onReport's arguments.
contract ConfigWordReceiver is RecordingReceiver {
    bytes32 public s_word;

    function onReport(bytes calldata, bytes calldata) external override {
        s_word = bytes32(msg.data[msg.data.length - 32:]);
    }
}

/// @dev Reverts unless it is given at least NEEDED gas.
contract GasHungryReceiver is RecordingReceiver {
    uint256 internal constant NEEDED = 300_000;

    function onReport(bytes calldata, bytes calldata) external view override {
        if (gasleft() < NEEDED) revert("starved");
    }
}

/// @dev While handling a report, submits the same report again and records how that went.
contract ReentrantReceiver is RecordingReceiver {
    Forwarder internal immutable i_forwarder;
    bytes internal s_raw;
    bytes internal s_context;
    bytes[] internal s_sigs;
    bytes public s_reentryError;

    constructor(Forwarder forwarder) {
        i_forwarder = forwarder;
    }

    function arm(bytes calldata raw, bytes calldata context, bytes[] calldata sigs) external {
        s_raw = raw;
        s_context = context;
        for (uint256 i = 0; i < sigs.length; ++i) {
            s_sigs.push(sigs[i]);
        }
    }

    function onReport(bytes calldata, bytes calldata) external override {
        ++s_calls;
        try i_forwarder.report(address(this), s_raw, s_context, s_sigs) {}
        catch (bytes memory err) {
            s_reentryError = err;
        }
    }
}

/// @dev Claims every interface, 0xffffffff included: not a well-behaved ERC-165 contract.
contract YesToEverything {
    uint256 public s_calls;

    function supportsInterface(bytes4) external pure returns (bool) {
        return true;
    }

    fallback() external {
        ++s_calls;
    }
}

contract ForwarderTest is BaseTest {
    event ConfigSet(uint32 indexed donId, uint32 indexed configVersion, uint8 f, address[] signers);
    event ReportProcessed(
        address indexed receiver, bytes32 indexed workflowExecutionId, bytes2 indexed reportId, bool result
    );

    RecordingReceiver internal s_recorder;

    function setUp() public override {
        super.setUp();
        s_recorder = new RecordingReceiver();
    }

    function _signerSet(uint256 n, uint256 seed)
        internal
        pure
        returns (address[] memory signers, uint256[] memory keys)
    {
        signers = new address[](n);
        keys = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            keys[i] = uint256(keccak256(abi.encode(seed, i))) % (SECP256K1_N - 1) + 1;
            signers[i] = vm.addr(keys[i]);
        }
    }

    // ------------------------------------------------------------------ typeAndVersion, ownership

    function test_TypeAndVersion() public view {
        assertEq(s_forwarder.typeAndVersion(), "vouch Forwarder 1.2.0");
    }

    function test_TransferOwnership_TakesTwoSteps() public {
        s_forwarder.transferOwnership(s_seller);
        assertEq(s_forwarder.owner(), address(this));
        assertEq(s_forwarder.pendingOwner(), s_seller);
        vm.prank(s_seller);
        s_forwarder.acceptOwnership();
        assertEq(s_forwarder.owner(), s_seller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        s_forwarder.setConfig(1, 2, 1, s_signers);
    }

    // ------------------------------------------------------------------ setConfig / getConfig

    function test_SetConfig_StoresEachVersionSeparately() public {
        (address[] memory seven,) = _signerSet(7, 1);
        vm.expectEmit(address(s_forwarder));
        emit ConfigSet(DON_ID, 2, 2, seven);
        s_forwarder.setConfig(DON_ID, 2, 2, seven);
        (uint8 f1, address[] memory v1) = s_forwarder.getConfig(DON_ID, 1);
        (uint8 f2, address[] memory v2) = s_forwarder.getConfig(DON_ID, 2);
        assertEq(f1, 1);
        assertEq(v1, s_signers);
        assertEq(f2, 2);
        assertEq(v2, seven);
        (uint8 none, address[] memory empty) = s_forwarder.getConfig(2, 1);
        assertEq(none, 0);
        assertEq(empty.length, 0);
    }

    function test_SetConfig_ReplacingAVersionDropsItsOldSigners() public {
        (address[] memory fresh,) = _signerSet(4, 2);
        s_forwarder.setConfig(DON_ID, CONFIG_VERSION, F, fresh);
        bytes memory raw = _report(bytes32(uint256(1)), 1, 3_000e18);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, s_signers[0]));
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(_keys(0, 1), raw));
    }

    function test_SetConfig_RevertWhen_FaultToleranceIsZero() public {
        vm.expectRevert(Forwarder.FaultToleranceMustBePositive.selector);
        s_forwarder.setConfig(1, 2, 0, s_signers);
    }

    function test_SetConfig_RevertWhen_FewerThan3FPlus1Signers() public {
        address[] memory three = new address[](3);
        (three[0], three[1], three[2]) = (address(1), address(2), address(3));
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InsufficientSigners.selector, 3, 4));
        s_forwarder.setConfig(1, 2, 1, three);
    }

    function test_SetConfig_RevertWhen_MoreThan31Signers() public {
        (address[] memory many,) = _signerSet(32, 3);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.ExcessSigners.selector, 32, 31));
        s_forwarder.setConfig(1, 2, 1, many);
    }

    function test_SetConfig_RevertWhen_ZeroSigner() public {
        address[] memory signers = s_signers;
        signers[2] = address(0);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, address(0)));
        s_forwarder.setConfig(1, 2, 1, signers);
    }

    function test_SetConfig_RevertWhen_DuplicateSigner() public {
        address[] memory signers = s_signers;
        signers[3] = signers[1];
        vm.expectRevert(abi.encodeWithSelector(Forwarder.DuplicateSigner.selector, signers[1]));
        s_forwarder.setConfig(1, 2, 1, signers);
    }

    function test_SetConfig_RevertWhen_NotOwner() public {
        vm.prank(s_seller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, s_seller));
        s_forwarder.setConfig(1, 2, 1, s_signers);
    }

    function testFuzz_SetConfig_AcceptsExactlyValidSizes(uint8 f, uint8 n) public {
        f = uint8(bound(f, 0, 12));
        n = uint8(bound(n, 0, 40));
        (address[] memory signers,) = _signerSet(n, 4);
        if (f == 0) {
            vm.expectRevert(Forwarder.FaultToleranceMustBePositive.selector);
        } else if (n > 31) {
            vm.expectRevert(abi.encodeWithSelector(Forwarder.ExcessSigners.selector, n, 31));
        } else if (n < 3 * uint256(f) + 1) {
            vm.expectRevert(abi.encodeWithSelector(Forwarder.InsufficientSigners.selector, n, 3 * uint256(f) + 1));
        }
        s_forwarder.setConfig(9, 9, f, signers);
    }

    // ------------------------------------------------------------------ report: settlement end to end

    function test_Report_SettlesTradeEndToEnd() public {
        uint256 tradeId = _fundedTrade();
        bytes32 executionId = _executionId(0);
        bytes memory raw = _report(executionId, tradeId, 3_000e18);
        assertEq(raw.length, 109 + 5 * 32 + 32 + 64); // metadata, body head (5 words), payload length, payload
        vm.expectEmit(address(s_gate));
        emit SettlementGate.TradeSettled(tradeId, 3_000e18, 6_000e18, s_actionHash);
        vm.expectEmit(address(s_forwarder));
        emit ReportProcessed(address(s_gate), executionId, REPORT_ID, true);
        vm.prank(s_seller, s_seller); // any transmitter will do
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(_keys(0, 3), raw));
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
        assertEq(s_weth.balanceOf(s_buyer), BASE_AMOUNT);
        assertEq(s_usdc.balanceOf(s_seller), 6_000e18);
        assertEq(s_usdc.balanceOf(s_buyer), 1_000e18);
        Forwarder.TransmissionInfo memory info =
            s_forwarder.getTransmissionInfo(address(s_gate), executionId, REPORT_ID);
        assertEq(uint8(info.state), uint8(Forwarder.TransmissionState.SUCCEEDED));
        assertEq(info.transmissionId, s_forwarder.getTransmissionId(address(s_gate), executionId, REPORT_ID));
        assertEq(info.transmitter, s_seller);
        assertTrue(info.success);
        assertFalse(info.invalidReceiver);
        assertGt(info.gasLimit, 100_000);
        assertEq(s_forwarder.getTransmitter(address(s_gate), executionId, REPORT_ID), s_seller);
    }

    function test_Report_DeliversMetadataSliceAndBody() public {
        bytes memory body = hex"c0ffee";
        bytes memory meta = _metadata(bytes32(uint256(5)), uint32(block.timestamp));
        bytes memory raw = bytes.concat(meta, body);
        _submit(address(s_recorder), raw);
        assertEq(s_recorder.s_metadata(), abi.encodePacked(s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID));
        assertEq(s_recorder.s_report(), body);
    }

    function test_Report_AcceptsAnEmptyBody() public {
        _submit(address(s_recorder), _metadata(bytes32(uint256(5)), uint32(block.timestamp)));
        assertEq(s_recorder.s_calls(), 1);
        assertEq(s_recorder.s_report().length, 0);
    }

    function test_Report_UsesTheReportsConfigVersion() public {
        (address[] memory seven, uint256[] memory keys) = _signerSet(7, 5);
        s_forwarder.setConfig(DON_ID, 2, 2, seven);
        bytes memory raw = bytes.concat(_metadataFor(bytes32(uint256(1)), uint32(block.timestamp), DON_ID, 2), "x");
        uint256[] memory three = new uint256[](3);
        (three[0], three[1], three[2]) = (keys[6], keys[0], keys[3]);
        s_forwarder.report(address(s_recorder), raw, _context(), _sigs(three, raw));
        assertEq(s_recorder.s_calls(), 1);
        // the version-1 signers are not signers of version 2
        raw = bytes.concat(_metadataFor(bytes32(uint256(2)), uint32(block.timestamp), DON_ID, 2), "x");
        three[0] = s_keys[0];
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, s_signers[0]));
        s_forwarder.report(address(s_recorder), raw, _context(), _sigs(three, raw));
    }

    // ------------------------------------------------------------------ report: verification failures

    function test_Report_RevertWhen_ReportShorterThanMetadata() public {
        bytes memory raw = _report(bytes32(uint256(1)), 1, 3_000e18);
        bytes memory short = new bytes(108);
        for (uint256 i = 0; i < 108; ++i) {
            short[i] = raw[i];
        }
        vm.expectRevert(Forwarder.InvalidReport.selector);
        s_forwarder.report(address(s_gate), short, _context(), _sigs(_keys(0, 1), short));
    }

    function test_Report_RevertWhen_UnknownConfig() public {
        bytes memory raw = bytes.concat(_metadataFor(bytes32(uint256(1)), uint32(block.timestamp), 7, 3), "x");
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidConfig.selector, (uint64(7) << 32) | 3));
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(_keys(0, 1), raw));
    }

    function test_Report_RevertWhen_OnlyFSignatures() public {
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(bytes32(uint256(1)), tradeId, 3_000e18);
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _sign(s_keys[0], raw, _context());
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSignatureCount.selector, 2, 1));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
    }

    function test_Report_RevertWhen_MoreThanFPlus1Signatures() public {
        bytes memory raw = _report(bytes32(uint256(1)), 1, 3_000e18);
        uint256[] memory three = new uint256[](3);
        (three[0], three[1], three[2]) = (s_keys[0], s_keys[1], s_keys[2]);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSignatureCount.selector, 2, 3));
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(three, raw));
    }

    function test_Report_RevertWhen_SignatureNot65Bytes() public {
        bytes memory raw = _report(bytes32(uint256(1)), 1, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        sigs[1] = bytes.concat(sigs[1], hex"00");
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSignature.selector, sigs[1]));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
    }

    function test_Report_RevertWhen_VIs27Not0() public {
        bytes memory raw = _report(bytes32(uint256(1)), 1, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        sigs[0][64] = bytes1(uint8(sigs[0][64]) + 27);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSignature.selector, sigs[0]));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
    }

    function test_Report_RevertWhen_SignatureRecoversNoAddress() public {
        bytes memory raw = _report(bytes32(uint256(1)), 1, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        sigs[0] = abi.encodePacked(bytes32(0), bytes32(uint256(1)), uint8(0));
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSignature.selector, sigs[0]));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
    }

    function test_Report_RevertWhen_HighS() public {
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(bytes32(uint256(1)), tradeId, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        bytes memory sig = sigs[0];
        bytes32 r;
        bytes32 s;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        // (r, n - s, flipped v) is the same signer's other, malleable signature
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        sigs[0] = abi.encodePacked(r, highS, uint8(1) - uint8(sig[64]));
        assertEq(
            ecrecover(keccak256(abi.encodePacked(keccak256(raw), _context())), uint8(sigs[0][64]) + 27, r, highS),
            s_signers[0]
        );
        vm.expectRevert(abi.encodeWithSelector(Forwarder.HighSSignature.selector, highS));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
    }

    function test_Report_RevertWhen_UnknownSigner() public {
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(bytes32(uint256(1)), tradeId, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        sigs[1] = _sign(999, raw, _context());
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, vm.addr(999)));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
    }

    function test_Report_RevertWhen_DuplicateSigner() public {
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(bytes32(uint256(1)), tradeId, 3_000e18);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.DuplicateSigner.selector, s_signers[2]));
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(_keys(2, 2), raw));
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
    }

    function test_Report_RevertWhen_SignedUnderAnotherContext() public {
        bytes memory raw = _report(bytes32(uint256(1)), 1, 3_000e18);
        bytes memory other = abi.encodePacked(bytes32(0), uint256(SEQUENCE), bytes32(0));
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[0], raw, other);
        sigs[1] = _sign(s_keys[1], raw, other);
        // the signature recovers, under the submitted context, to some unrelated address
        bytes32 digest = keccak256(abi.encodePacked(keccak256(raw), _context()));
        (bytes32 r, bytes32 s) = (bytes32(0), bytes32(0));
        bytes memory sig = sigs[0];
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        address stranger = ecrecover(digest, uint8(sig[64]) + 27, r, s);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, stranger));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
    }

    // ------------------------------------------------------------------ report: replay, failures, retries

    function test_Report_RevertWhen_Replayed() public {
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(bytes32(uint256(1)), tradeId, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
        bytes32 id = s_forwarder.getTransmissionId(address(s_gate), bytes32(uint256(1)), REPORT_ID);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.AlreadyAttempted.selector, id));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
        // other signers, same report: still the same transmission
        vm.expectRevert(abi.encodeWithSelector(Forwarder.AlreadyAttempted.selector, id));
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(_keys(2, 3), raw));
    }

    function test_Report_RecordsReceiverFailureInsteadOfReverting() public {
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(bytes32(uint256(2)), tradeId, 10e18); // below the trade's bounds
        vm.expectEmit(address(s_forwarder));
        emit ReportProcessed(address(s_gate), bytes32(uint256(2)), REPORT_ID, false);
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(_keys(1, 2), raw));
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
        assertEq(s_usdc.balanceOf(address(s_gate)), MAX_QUOTE);
        Forwarder.TransmissionInfo memory info =
            s_forwarder.getTransmissionInfo(address(s_gate), bytes32(uint256(2)), REPORT_ID);
        assertEq(uint8(info.state), uint8(Forwarder.TransmissionState.FAILED));
        assertFalse(info.success);
        assertEq(info.transmitter, address(this));
    }

    function test_Report_RetriesAFailedTransmission() public {
        uint256 tradeId = _openTrade(); // not funded yet: the gate refuses
        bytes32 executionId = _executionId(1);
        bytes memory raw = _report(executionId, tradeId, 3_000e18);
        _submit(address(s_gate), raw);
        assertEq(uint8(_state(address(s_gate), executionId)), uint8(Forwarder.TransmissionState.FAILED));
        _fund(tradeId);
        vm.prank(s_buyer);
        s_forwarder.report(address(s_gate), raw, _context(), _sigs(_keys(2, 3), raw));
        assertEq(uint8(_state(address(s_gate), executionId)), uint8(Forwarder.TransmissionState.SUCCEEDED));
        assertEq(s_forwarder.getTransmitter(address(s_gate), executionId, REPORT_ID), s_buyer);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
    }

    function test_Report_RetriesWithMoreGasAfterAStarvedReceiver() public {
        GasHungryReceiver hungry = new GasHungryReceiver();
        bytes memory raw = _metadata(bytes32(uint256(3)), uint32(block.timestamp));
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        s_forwarder.report{gas: 250_000}(address(hungry), raw, _context(), sigs);
        Forwarder.TransmissionInfo memory first =
            s_forwarder.getTransmissionInfo(address(hungry), bytes32(uint256(3)), REPORT_ID);
        assertEq(uint8(first.state), uint8(Forwarder.TransmissionState.FAILED));
        s_forwarder.report{gas: 1_000_000}(address(hungry), raw, _context(), sigs);
        Forwarder.TransmissionInfo memory second =
            s_forwarder.getTransmissionInfo(address(hungry), bytes32(uint256(3)), REPORT_ID);
        assertEq(uint8(second.state), uint8(Forwarder.TransmissionState.SUCCEEDED));
        assertGt(second.gasLimit, first.gasLimit);
    }

    function test_Report_RevertWhen_InsufficientGasForRouting() public {
        bytes memory raw = _metadata(bytes32(uint256(4)), uint32(block.timestamp));
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        bytes32 id = s_forwarder.getTransmissionId(address(s_recorder), bytes32(uint256(4)), REPORT_ID);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InsufficientGasForRouting.selector, id));
        s_forwarder.report{gas: 90_000}(address(s_recorder), raw, _context(), sigs);
        assertEq(
            uint8(_state(address(s_recorder), bytes32(uint256(4)))), uint8(Forwarder.TransmissionState.NOT_ATTEMPTED)
        );
    }

    /// @dev L-3: Keystone's floor. At the least gas report() accepts, the receiver's recorded
    /// allowance is Keystone's 160k floor less the 5k kept for the bookkeeping (was 100k).
    function test_Report_RoutesOnlyWithKeystonesGasFloor() public {
        bytes memory raw = _metadata(bytes32(uint256(44)), uint32(block.timestamp));
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        bytes memory context = _context();
        uint256 gas = 100_000;
        while (true) {
            (bool ok,) = address(s_forwarder).call{gas: gas}(
                abi.encodeCall(Forwarder.report, (address(s_recorder), raw, context, sigs))
            );
            if (ok) break;
            gas += 1_000;
        }
        Forwarder.TransmissionInfo memory info =
            s_forwarder.getTransmissionInfo(address(s_recorder), bytes32(uint256(44)), REPORT_ID);
        assertGe(info.gasLimit, 160_000 - 5_000);
        assertLt(info.gasLimit, 160_000 - 5_000 + 1_000);
    }

    /// @dev The forwarder appends the verifying config's id to onReport's arguments.
    function test_Report_AppendsTheConfigWord() public {
        ConfigWordReceiver receiver = new ConfigWordReceiver();
        bytes memory raw = _metadata(bytes32(uint256(45)), uint32(block.timestamp));
        s_forwarder.report(address(receiver), raw, _context(), _sigs(_keys(0, 1), raw));
        assertEq(receiver.s_word(), _configWord(DON_ID, CONFIG_VERSION));
    }

    function test_Report_RecordsInvalidReceiverOnceAndForAll() public {
        bytes memory raw = _metadata(bytes32(uint256(6)), uint32(block.timestamp));
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        address token = address(s_weth); // a contract without IReceiver
        vm.expectEmit(address(s_forwarder));
        emit ReportProcessed(token, bytes32(uint256(6)), REPORT_ID, false);
        s_forwarder.report(token, raw, _context(), sigs);
        Forwarder.TransmissionInfo memory info = s_forwarder.getTransmissionInfo(token, bytes32(uint256(6)), REPORT_ID);
        assertEq(uint8(info.state), uint8(Forwarder.TransmissionState.INVALID_RECEIVER));
        assertTrue(info.invalidReceiver);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.AlreadyAttempted.selector, info.transmissionId));
        s_forwarder.report(token, raw, _context(), sigs);
        // an account without code is no receiver either
        s_forwarder.report(s_seller, raw, _context(), sigs);
        assertEq(uint8(_state(s_seller, bytes32(uint256(6)))), uint8(Forwarder.TransmissionState.INVALID_RECEIVER));
    }

    function test_Report_ReceiverCannotReenterWithTheSameReport() public {
        ReentrantReceiver reentrant = new ReentrantReceiver(s_forwarder);
        bytes memory raw = _metadata(bytes32(uint256(8)), uint32(block.timestamp));
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        reentrant.arm(raw, _context(), sigs);
        s_forwarder.report(address(reentrant), raw, _context(), sigs);
        bytes32 id = s_forwarder.getTransmissionId(address(reentrant), bytes32(uint256(8)), REPORT_ID);
        assertEq(reentrant.s_calls(), 1);
        assertEq(reentrant.s_reentryError(), abi.encodeWithSelector(Forwarder.AlreadyAttempted.selector, id));
        assertEq(uint8(_state(address(reentrant), bytes32(uint256(8)))), uint8(Forwarder.TransmissionState.SUCCEEDED));
    }

    // ------------------------------------------------------------------ getters

    function test_GetTransmissionId_IsKeccakOfReceiverExecutionIdReportId() public view {
        bytes32 executionId = _executionId(3);
        assertEq(
            s_forwarder.getTransmissionId(address(s_gate), executionId, REPORT_ID),
            keccak256(abi.encodePacked(address(s_gate), executionId, REPORT_ID))
        );
    }

    function test_GetTransmissionInfo_NotAttempted() public view {
        Forwarder.TransmissionInfo memory info = s_forwarder.getTransmissionInfo(address(s_gate), bytes32(0), REPORT_ID);
        assertEq(uint8(info.state), uint8(Forwarder.TransmissionState.NOT_ATTEMPTED));
        assertEq(info.transmitter, address(0));
        assertEq(info.gasLimit, 0);
        assertEq(s_forwarder.getTransmitter(address(s_gate), bytes32(0), REPORT_ID), address(0));
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_Report_AcceptsAnyTwoDistinctConfiguredSigners(uint256 a, uint256 b) public {
        a = bound(a, 0, 3);
        b = bound(b, 0, 3);
        bytes memory raw = _metadata(bytes32(uint256(9)), uint32(block.timestamp));
        if (a == b) vm.expectRevert(abi.encodeWithSelector(Forwarder.DuplicateSigner.selector, s_signers[a]));
        s_forwarder.report(address(s_recorder), raw, _context(), _sigs(_keys(a, b), raw));
        assertEq(s_recorder.s_calls(), a == b ? 0 : 1);
    }

    function testFuzz_Report_RejectsAnySignerOutsideTheConfig(uint256 key) public {
        key = bound(key, 1, SECP256K1_N - 1);
        vm.assume(key != s_keys[0] && key != s_keys[1] && key != s_keys[2] && key != s_keys[3]);
        bytes memory raw = _report(bytes32(uint256(1)), _fundedTrade(), 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        sigs[1] = _sign(key, raw, _context());
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, vm.addr(key)));
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
    }

    function testFuzz_Report_AnyTamperedByteBreaksTheSignatures(uint256 index, uint8 flip) public {
        vm.assume(flip != 0);
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(bytes32(uint256(1)), tradeId, 3_000e18);
        bytes[] memory sigs = _sigs(_keys(0, 1), raw);
        index = bound(index, 0, raw.length - 1);
        raw[index] = bytes1(uint8(raw[index]) ^ flip);
        // InvalidSigner, or InvalidConfig if the flipped byte moved the report to an unset config
        vm.expectRevert();
        s_forwarder.report(address(s_gate), raw, _context(), sigs);
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
    }

    // ------------------------------------------------------------------ clearConfig, signer table

    function test_ClearConfig_RejectsItsReportsAndEmits() public {
        vm.expectEmit(address(s_forwarder));
        emit ConfigSet(DON_ID, CONFIG_VERSION, 0, new address[](0));
        s_forwarder.clearConfig(DON_ID, CONFIG_VERSION);
        (uint8 f, address[] memory signers) = s_forwarder.getConfig(DON_ID, CONFIG_VERSION);
        assertEq(f, 0);
        assertEq(signers.length, 0);
        bytes memory raw = _metadata(bytes32(uint256(1)), uint32(block.timestamp));
        uint64 configId = (uint64(DON_ID) << 32) | CONFIG_VERSION;
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidConfig.selector, configId));
        _submit(address(s_recorder), raw);
    }

    function test_ClearConfig_RevertWhen_NotOwner() public {
        vm.prank(s_seller);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, s_seller));
        s_forwarder.clearConfig(DON_ID, CONFIG_VERSION);
    }

    /// @dev The signer table lives in its own contract's code; an empty entry must never match,
    /// whatever lies in memory before the copied table (here: a context ending in the
    /// attacker's own address, which sits right before it in memory).
    function test_Report_RevertWhen_SignerHitsAnEmptyTableEntry() public {
        uint256 attacker = 0xBAD;
        bytes memory raw = _metadata(bytes32(uint256(1)), uint32(block.timestamp));
        bytes memory context = abi.encodePacked(bytes32(0), bytes32(0), bytes12(0), vm.addr(attacker));
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(attacker, raw, context);
        sigs[1] = _sign(s_keys[0], raw, context);
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, vm.addr(attacker)));
        s_forwarder.report(address(s_recorder), raw, context, sigs);
    }

    function test_Report_RecordsInvalidReceiverForAYesToEverythingContract() public {
        YesToEverything yes = new YesToEverything();
        bytes memory raw = _metadata(bytes32(uint256(1)), uint32(block.timestamp));
        _submit(address(yes), raw);
        assertEq(uint8(_state(address(yes), bytes32(uint256(1)))), uint8(Forwarder.TransmissionState.INVALID_RECEIVER));
        assertEq(yes.s_calls(), 0);
    }

    /// @dev Any valid signer set round-trips through getConfig, and any f+1 of its signers, in
    /// any order, sign a report the forwarder accepts.
    function testFuzz_Report_AnyConfigAcceptsAnyFPlus1OfItsSigners(uint256 seed, uint8 n, uint256 start) public {
        n = uint8(bound(n, 4, 31));
        uint8 f = uint8((uint256(n) - 1) / 3);
        (address[] memory signers, uint256[] memory keys) = _signerSet(n, seed);
        s_forwarder.setConfig(7, 1, f, signers);
        (uint8 storedF, address[] memory stored) = s_forwarder.getConfig(7, 1);
        assertEq(storedF, f);
        assertEq(stored, signers);
        bytes memory raw = _metadataFor(bytes32(seed), uint32(block.timestamp), 7, 1);
        bytes memory context = _context();
        bytes[] memory sigs = new bytes[](uint256(f) + 1);
        start = bound(start, 0, n - 1);
        for (uint256 i = 0; i <= f; ++i) {
            sigs[i] = _sign(keys[(start + i * 7) % n], raw, context); // 7 and n <= 31 coprime unless n = 7, 14, 21, 28
        }
        bool distinct = true;
        for (uint256 i = 0; i <= f; ++i) {
            for (uint256 j = 0; j < i; ++j) {
                if ((start + i * 7) % n == (start + j * 7) % n) distinct = false;
            }
        }
        vm.assume(distinct);
        s_forwarder.report(address(s_recorder), raw, context, sigs);
        assertEq(s_recorder.s_calls(), 1);
    }

    /// @dev Whatever the config and the table entry an outsider's address hashes to (empty, or
    /// taken by a signer), the outsider is refused.
    function testFuzz_Report_AnyConfigRefusesAnOutsider(uint256 seed, uint8 n, uint256 outsider) public {
        n = uint8(bound(n, 4, 31));
        outsider = bound(outsider, 1, SECP256K1_N - 1);
        (address[] memory signers, uint256[] memory keys) = _signerSet(n, seed);
        for (uint256 i = 0; i < n; ++i) {
            vm.assume(signers[i] != vm.addr(outsider));
        }
        uint8 f = uint8((uint256(n) - 1) / 3);
        s_forwarder.setConfig(7, 1, f, signers);
        bytes memory raw = _metadataFor(bytes32(seed), uint32(block.timestamp), 7, 1);
        bytes[] memory sigs = new bytes[](uint256(f) + 1);
        for (uint256 i = 0; i < f; ++i) {
            sigs[i] = _sign(keys[i], raw, _context());
        }
        sigs[f] = _sign(outsider, raw, _context());
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, vm.addr(outsider)));
        s_forwarder.report(address(s_recorder), raw, _context(), sigs);
    }

    /// @dev An outsider whose address lands on the very table entry of a configured signer is
    /// still refused: the entry's signer is compared, not just its presence.
    function test_Report_RevertWhen_OutsiderSharesASignersTableEntry() public {
        uint64 configId = (uint64(DON_ID) << 32) | CONFIG_VERSION;
        // s_configs is slot 2 (after Ownable's owner and Ownable2Step's pending owner)
        uint256 config = uint256(vm.load(address(s_forwarder), keccak256(abi.encode(configId, uint256(2)))));
        uint256 multiplier = config >> 176;
        // the slot is the config's: f in bits 160-167, a data contract in bits 0-159
        assertEq((config >> 160) & 0xff, F);
        // forge-lint: disable-next-line(unsafe-typecast)
        assertGt(address(uint160(config)).code.length, 0); // the low 160 bits, as meant
        uint256 target = ((uint256(uint160(s_signers[0])) * multiplier) >> 160) & 0xff;
        uint256 key = 1;
        while (((uint256(uint160(vm.addr(key))) * multiplier) >> 160) & 0xff != target || _isSigner(vm.addr(key))) {
            ++key;
        }
        bytes memory raw = _metadata(bytes32(uint256(1)), uint32(block.timestamp));
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[1], raw, _context());
        sigs[1] = _sign(key, raw, _context());
        vm.expectRevert(abi.encodeWithSelector(Forwarder.InvalidSigner.selector, vm.addr(key)));
        s_forwarder.report(address(s_recorder), raw, _context(), sigs);
    }

    function _isSigner(address who) internal view returns (bool) {
        for (uint256 i = 0; i < s_signers.length; ++i) {
            if (s_signers[i] == who) return true;
        }
        return false;
    }
}
