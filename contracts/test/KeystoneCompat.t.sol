// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {KeystoneForwarder} from "@chainlink/contracts/src/v0.8/keystone/KeystoneForwarder.sol";
import {IRouter} from "@chainlink/contracts/src/v0.8/keystone/interfaces/IRouter.sol";
import {IReceiver as IKeystoneReceiver} from "@chainlink/contracts/src/v0.8/keystone/interfaces/IReceiver.sol";
import {IERC165} from "@openzeppelin/contracts@5.0.2/utils/introspection/IERC165.sol";
import {BaseTest} from "./Base.t.sol";
import {Forwarder} from "../src/Forwarder.sol";
import {SettlementGate} from "../src/SettlementGate.sol";
import {IReceiver} from "../src/interfaces/IReceiver.sol";

/// @dev A receiver written against Chainlink's own IReceiver: remembers what it was handed.
contract KeystoneRecordingReceiver is IKeystoneReceiver {
    bytes public s_metadata;
    bytes public s_report;

    function onReport(bytes calldata metadata, bytes calldata report) external {
        s_metadata = metadata;
        s_report = report;
    }

    function supportsInterface(bytes4 id) public pure override returns (bool) {
        return id == type(IKeystoneReceiver).interfaceId || id == type(IERC165).interfaceId;
    }
}

/// @notice Compatibility both ways with the real KeystoneForwarder from @chainlink/contracts 1.5.0
/// (scripts/fetch-chainlink.sh), compiled by the same solc as ours:
/// - a report built and signed the vouch way (docs/internals.md, Base.t.sol) is accepted by
///   Chainlink's forwarder and settles a vouch SettlementGate;
/// - a report built exactly as Chainlink's own KeystoneForwarder_ReportTest builds it (31 signers,
///   F = 1, an all-zero 96-byte context, bytes[] body) is accepted by the vouch Forwarder;
/// - for any report and any signer choice, both forwarders reach the same verdict, with the same
///   revert data, transmission id, event and receiver calldata.
contract KeystoneCompatTest is BaseTest {
    event ReportProcessed(
        address indexed receiver, bytes32 indexed workflowExecutionId, bytes2 indexed reportId, bool result
    );

    KeystoneForwarder internal s_keystone;

    function setUp() public override {
        super.setUp();
        s_keystone = new KeystoneForwarder();
        s_keystone.setConfig(DON_ID, CONFIG_VERSION, F, s_signers);
    }

    function test_IReceiver_SameInterfaceIdAsKeystone() public pure {
        assertEq(type(IReceiver).interfaceId, type(IKeystoneReceiver).interfaceId);
    }

    function test_Keystone_SettlesAVouchTradeFromAVouchSignedReport() public {
        SettlementGate gate = new SettlementGate(address(s_keystone), s_owner, s_workflowId, FRESHNESS, 0, 0);
        s_gate = gate; // the Base helpers build trades and bodies for s_gate
        gate.setTokenAllowed(address(s_weth), true);
        gate.setTokenAllowed(address(s_usdc), true);
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(_executionId(0), tradeId, 3_000e18);
        bytes memory context = _keystoneContext();
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[2], raw, context);
        sigs[1] = _sign(s_keys[0], raw, context);

        vm.expectEmit(address(s_keystone));
        emit ReportProcessed(address(gate), _executionId(0), REPORT_ID, true);
        s_keystone.report(address(gate), raw, context, sigs);

        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
        assertEq(s_weth.balanceOf(s_buyer), BASE_AMOUNT);
        assertEq(s_usdc.balanceOf(s_seller), 6_000e18);
        IRouter.TransmissionInfo memory info = s_keystone.getTransmissionInfo(address(gate), _executionId(0), REPORT_ID);
        assertEq(uint8(info.state), uint8(IRouter.TransmissionState.SUCCEEDED));
        assertEq(info.transmissionId, s_forwarder.getTransmissionId(address(gate), _executionId(0), REPORT_ID));
    }

    function test_Keystone_VouchReceiverRefusesAnotherForwarder() public {
        // the gate trusts s_forwarder only: a Keystone delivery is recorded as a receiver failure
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(_executionId(0), tradeId, 3_000e18);
        bytes memory context = _keystoneContext();
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[0], raw, context);
        sigs[1] = _sign(s_keys[1], raw, context);
        s_keystone.report(address(s_gate), raw, context, sigs);
        IRouter.TransmissionInfo memory info =
            s_keystone.getTransmissionInfo(address(s_gate), _executionId(0), REPORT_ID);
        assertEq(uint8(info.state), uint8(IRouter.TransmissionState.FAILED));
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Funded));
    }

    /// @dev Chainlink's KeystoneForwarder_ReportTest.setUp, field for field.
    function test_Vouch_AcceptsAReportBuiltAsKeystoneTestsBuildIt() public {
        address[] memory signers = new address[](31);
        for (uint256 i = 0; i < 31; ++i) {
            signers[i] = vm.addr(i + 1);
        }
        uint32 donId = 0x01020304;
        s_forwarder.setConfig(donId, 1, 1, signers);
        s_keystone.setConfig(donId, 1, 1, signers);
        bytes[] memory mercuryReports = new bytes[](2);
        mercuryReports[0] = hex"010203";
        mercuryReports[1] = hex"aabbccdd";
        bytes memory metadata =
        // forge-lint: disable-next-line(unsafe-typecast)
        abi.encodePacked(bytes32(hex"6d795f6964"), bytes10(hex"000000000000DEADBEEF"), address(51), bytes2(0x0001));
        bytes32 executionId = hex"6d795f657865637574696f6e5f6964";
        bytes memory header = abi.encodePacked(uint8(1), executionId, uint32(0), donId, uint32(1), metadata);
        bytes memory report = abi.encodePacked(header, abi.encode(mercuryReports));
        bytes memory reportContext = new bytes(96);
        bytes[] memory signatures = new bytes[](2);
        for (uint256 i = 0; i < 2; ++i) {
            (uint8 v, bytes32 r, bytes32 s) =
                vm.sign(i + 1, keccak256(abi.encodePacked(keccak256(report), reportContext)));
            signatures[i] = bytes.concat(r, s, bytes1(v - 27));
        }
        KeystoneRecordingReceiver receiver = new KeystoneRecordingReceiver();

        vm.expectEmit(address(s_forwarder));
        emit ReportProcessed(address(receiver), executionId, 0x0001, true);
        vm.prank(address(50));
        s_forwarder.report(address(receiver), report, reportContext, signatures);

        assertEq(receiver.s_metadata(), metadata);
        assertEq(receiver.s_report(), abi.encode(mercuryReports));
        Forwarder.TransmissionInfo memory info = s_forwarder.getTransmissionInfo(address(receiver), executionId, 0x0001);
        assertEq(uint8(info.state), uint8(Forwarder.TransmissionState.SUCCEEDED));
        assertEq(info.transmitter, address(50));
        assertEq(s_forwarder.getTransmitter(address(receiver), executionId, 0x0001), address(50));
    }

    /// @dev Same report, same signatures, delivered by both: same outcome, bytes and state.
    function testFuzz_BothForwardersAgreeOnValidReports(bytes32 executionId, bytes memory body, uint256 a, uint256 b)
        public
    {
        a = bound(a, 0, 3);
        b = bound(b, 0, 3);
        vm.assume(a != b);
        KeystoneRecordingReceiver receiver = new KeystoneRecordingReceiver();
        bytes memory raw = bytes.concat(_metadata(executionId, uint32(block.timestamp)), body);
        bytes memory context = _context();
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[a], raw, context);
        sigs[1] = _sign(s_keys[b], raw, context);

        s_forwarder.report(address(receiver), raw, context, sigs);
        bytes memory vouchMetadata = receiver.s_metadata();
        bytes memory vouchReport = receiver.s_report();
        s_keystone.report(address(receiver), raw, context, sigs);

        assertEq(receiver.s_metadata(), vouchMetadata);
        assertEq(receiver.s_report(), vouchReport);
        assertEq(vouchReport, body);
        assertEq(
            s_forwarder.getTransmissionId(address(receiver), executionId, REPORT_ID),
            s_keystone.getTransmissionId(address(receiver), executionId, REPORT_ID)
        );
        assertEq(
            uint8(s_forwarder.getTransmissionInfo(address(receiver), executionId, REPORT_ID).state),
            uint8(s_keystone.getTransmissionInfo(address(receiver), executionId, REPORT_ID).state)
        );
    }

    /// @dev Bad signer sets and bad signatures: both revert, with identical revert data.
    function testFuzz_BothForwardersRejectAlike(uint256 key, uint8 mode, bytes32 executionId) public {
        key = bound(key, 1, SECP256K1_N - 1);
        bytes memory raw = _metadata(executionId, uint32(block.timestamp));
        bytes memory context = _context();
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(s_keys[0], raw, context);
        sigs[1] = _sign(key, raw, context);
        mode = uint8(bound(mode, 0, 3));
        if (mode == 1) sigs[1] = sigs[0]; // duplicate
        if (mode == 2) sigs[1] = bytes.concat(sigs[1], hex"00"); // 66 bytes
        if (mode == 3) {
            bytes[] memory one = new bytes[](1);
            one[0] = sigs[0];
            sigs = one; // f signatures
        }
        vm.assume(mode != 0 || vm.addr(key) != s_signers[0]);
        address receiver = address(new KeystoneRecordingReceiver());
        (bool okVouch, bytes memory errVouch) =
            address(s_forwarder).call(abi.encodeCall(Forwarder.report, (receiver, raw, context, sigs)));
        (bool okKeystone, bytes memory errKeystone) =
            address(s_keystone).call(abi.encodeCall(KeystoneForwarder.report, (receiver, raw, context, sigs)));
        bool configured = mode == 0 && _isSigner(vm.addr(key));
        assertEq(okVouch, configured);
        assertEq(okKeystone, configured);
        assertEq(errVouch, errKeystone);
    }

    function _isSigner(address who) internal view returns (bool) {
        for (uint256 i = 0; i < s_signers.length; ++i) {
            if (s_signers[i] == who) return true;
        }
        return false;
    }

    /// @dev The vouch context shape with Keystone's address in the config digest (Keystone itself
    /// does not check the digest; it only signs over it).
    function _keystoneContext() internal view returns (bytes memory) {
        bytes32 configDigest =
            keccak256(abi.encode(block.chainid, address(s_keystone), DON_ID, CONFIG_VERSION, F, s_signers));
        return abi.encodePacked(configDigest, uint256(SEQUENCE), bytes32(0));
    }
}
