// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ERC165Checker} from "@openzeppelin/contracts/utils/introspection/ERC165Checker.sol";
import {IReceiver} from "./interfaces/IReceiver.sol";

/// @title Forwarder - verifies DON-signed reports and delivers them to receivers
/// @notice Wire-compatible with Chainlink's KeystoneForwarder: same report layout
/// (109-byte metadata), same signed digest keccak256(keccak256(rawReport) || reportContext),
/// same r || s || v signatures with v in {0, 1}, same transmission id and states.
/// Stricter: high-s signatures are rejected (OpenZeppelin ECDSA), and a receiver cannot have the
/// report it is handling delivered again from inside its own onReport.
contract Forwarder is Ownable2Step {
    /// @notice The report is shorter than its 109-byte metadata.
    error InvalidReport();
    /// @notice A config with f = 0.
    error FaultToleranceMustBePositive();
    /// @notice More signers than the maximum.
    error ExcessSigners(uint256 numSigners, uint256 maxSigners);
    /// @notice Fewer signers than 3f+1.
    error InsufficientSigners(uint256 numSigners, uint256 minSigners);
    /// @notice A signer appears twice (in a config or among a report's signatures).
    error DuplicateSigner(address signer);
    /// @notice The report's signature count is not f+1.
    error InvalidSignatureCount(uint256 expected, uint256 received);
    /// @notice No config exists for the report's (donId, configVersion).
    error InvalidConfig(uint64 configId);
    /// @notice A signature recovers to an address outside the config (or a zero signer in a config).
    error InvalidSigner(address signer);
    /// @notice A signature is malformed (length, v) or recovers to no address.
    error InvalidSignature(bytes signature);
    /// @notice A signature's s is in the upper half of the curve order (malleable).
    error HighSSignature(bytes32 s);
    /// @notice The report was already delivered, or its receiver is not an IReceiver.
    error AlreadyAttempted(bytes32 transmissionId);
    /// @notice Too little gas left to route the report with the minimum receiver gas.
    error InsufficientGasForRouting(bytes32 transmissionId);

    /// @notice Emitted when a DON config is set.
    event ConfigSet(uint32 indexed donId, uint32 indexed configVersion, uint8 f, address[] signers);
    /// @notice Emitted when a report has been processed; result is true if the receiver accepted it.
    event ReportProcessed(
        address indexed receiver, bytes32 indexed workflowExecutionId, bytes2 indexed reportId, bool result
    );

    /// @notice Delivery state of a transmission (as Keystone's IRouter).
    enum TransmissionState {
        NOT_ATTEMPTED,
        SUCCEEDED,
        INVALID_RECEIVER,
        FAILED
    }

    /// @notice What the forwarder knows about one transmission (as Keystone's IRouter).
    struct TransmissionInfo {
        bytes32 transmissionId;
        TransmissionState state;
        address transmitter;
        bool invalidReceiver;
        bool success;
        uint80 gasLimit;
    }

    struct Transmission {
        address transmitter;
        bool invalidReceiver;
        bool success;
        uint80 gasLimit;
    }

    struct OracleSet {
        uint8 f;
        address[] signers;
        mapping(address signer => uint256 position) positions; // 1-indexed; 0 = not a signer
    }

    /// @notice The contract's type and version.
    string public constant typeAndVersion = "vouch Forwarder 1.0.0";

    uint256 internal constant MAX_ORACLES = 31;
    uint256 internal constant METADATA_LENGTH = 109;
    // slither-disable-next-line unused-state (used as a calldata slice bound, which slither misses)
    uint256 internal constant FORWARDER_METADATA_LENGTH = 45;
    uint256 internal constant SIGNATURE_LENGTH = 65;
    /// @dev Gas kept back for the bookkeeping and the event after the receiver call.
    uint256 internal constant GAS_AFTER_REPORT = 5_000;
    /// @dev Least gas routing starts with: the ERC-165 probe (up to 3 x 30k, as Keystone) and at
    /// least 10k for the receiver. An honest receiver can therefore never be starved into
    /// INVALID_RECEIVER (final); starving its onReport only records FAILED, which may be retried.
    uint256 internal constant MINIMUM_GAS_LIMIT = 30_000 * 3 + 10_000;

    mapping(uint64 configId => OracleSet oracleSet) internal s_configs;
    mapping(bytes32 transmissionId => Transmission transmission) internal s_transmissions;

    constructor() Ownable(msg.sender) {}

    /// @notice Set the signer set and fault tolerance of one (donId, configVersion).
    /// @dev Each version is kept separately, so reports in flight under an older version stay valid.
    /// @param donId The DON's id.
    /// @param configVersion The config version.
    /// @param f Faulty signers tolerated; reports need exactly f+1 signatures.
    /// @param signers The signer addresses, at least 3f+1 and at most 31.
    function setConfig(uint32 donId, uint32 configVersion, uint8 f, address[] calldata signers) external onlyOwner {
        if (f == 0) revert FaultToleranceMustBePositive();
        if (signers.length > MAX_ORACLES) revert ExcessSigners(signers.length, MAX_ORACLES);
        if (signers.length <= 3 * uint256(f)) revert InsufficientSigners(signers.length, 3 * uint256(f) + 1);
        OracleSet storage config = s_configs[_configId(donId, configVersion)];
        for (uint256 i = 0; i < config.signers.length; ++i) {
            delete config.positions[config.signers[i]];
        }
        for (uint256 i = 0; i < signers.length; ++i) {
            address signer = signers[i];
            if (signer == address(0)) revert InvalidSigner(signer);
            if (config.positions[signer] != 0) revert DuplicateSigner(signer);
            config.positions[signer] = i + 1;
        }
        config.signers = signers;
        config.f = f;
        emit ConfigSet(donId, configVersion, f, signers);
    }

    /// @notice The fault tolerance and signers of one (donId, configVersion); f = 0 if unset.
    /// @param donId The DON's id.
    /// @param configVersion The config version.
    function getConfig(uint32 donId, uint32 configVersion) external view returns (uint8 f, address[] memory signers) {
        OracleSet storage config = s_configs[_configId(donId, configVersion)];
        return (config.f, config.signers);
    }

    /// @notice Verify a DON-signed report and deliver it to `receiver`.
    /// @dev Reverts on any verification failure; a receiver that reverts is recorded (FAILED)
    /// and may be retried, exactly like Keystone.
    /// @param receiver The IReceiver contract the report is for.
    /// @param rawReport metadata (109 bytes) || body.
    /// @param reportContext configDigest (32) || sequence number (32) || 32 zero bytes.
    /// @param signatures Exactly f+1 signatures (r || s || v, v in {0, 1}) from distinct signers.
    function report(
        address receiver,
        bytes calldata rawReport,
        bytes calldata reportContext,
        bytes[] calldata signatures
    ) external {
        if (rawReport.length < METADATA_LENGTH) revert InvalidReport();
        // metadata: version (1) | executionId (32) | timestamp (4) | donId (4) | configVersion (4) | ...
        bytes32 executionId = bytes32(rawReport[1:33]);
        bytes2 reportId = bytes2(rawReport[107:109]);
        _verify(rawReport, reportContext, signatures, uint64(bytes8(rawReport[37:45])));
        bytes32 transmissionId = getTransmissionId(receiver, executionId, reportId);
        bool success = _route(transmissionId, receiver, rawReport);
        emit ReportProcessed(receiver, executionId, reportId, success);
    }

    /// @dev Exactly f+1 signatures over keccak256(keccak256(rawReport) || reportContext) from
    /// distinct configured signers (a bitmap of their 1-based positions catches repeats).
    function _verify(
        bytes calldata rawReport,
        bytes calldata reportContext,
        bytes[] calldata signatures,
        uint64 configId
    ) internal view {
        OracleSet storage config = s_configs[configId];
        uint256 f = config.f;
        if (f == 0) revert InvalidConfig(configId);
        if (f + 1 != signatures.length) revert InvalidSignatureCount(f + 1, signatures.length);
        bytes32 digest = keccak256(abi.encodePacked(keccak256(rawReport), reportContext));
        uint256 seen = 0; // bitmap of signer positions
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = _recover(digest, signatures[i]);
            uint256 position = config.positions[signer];
            if (position == 0) revert InvalidSigner(signer);
            // forge-lint: disable-next-line(incorrect-shift)
            uint256 bit = 1 << position; // position <= MAX_ORACLES < 256
            if (seen & bit != 0) revert DuplicateSigner(signer);
            seen |= bit;
        }
    }

    /// @dev r || s || v with v in {0, 1}; OpenZeppelin's tryRecover rejects high s and zero signers.
    function _recover(bytes32 digest, bytes calldata signature) internal pure returns (address signer) {
        if (signature.length != SIGNATURE_LENGTH) revert InvalidSignature(signature);
        uint8 v = uint8(signature[64]);
        if (v > 1) revert InvalidSignature(signature);
        ECDSA.RecoverError err;
        bytes32 errArg;
        (signer, err, errArg) = ECDSA.tryRecover(digest, v + 27, bytes32(signature[0:32]), bytes32(signature[32:64]));
        if (err == ECDSA.RecoverError.InvalidSignatureS) revert HighSSignature(errArg);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(signature);
    }

    /// @dev Deliver a verified report; a reverting receiver is recorded as FAILED, not reverted.
    function _route(bytes32 transmissionId, address receiver, bytes calldata rawReport)
        internal
        returns (bool success)
    {
        Transmission storage transmission = s_transmissions[transmissionId];
        if (transmission.success || transmission.invalidReceiver) revert AlreadyAttempted(transmissionId);
        if (gasleft() < MINIMUM_GAS_LIMIT + GAS_AFTER_REPORT) revert InsufficientGasForRouting(transmissionId);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint80 gasLimit = uint80(gasleft() - GAS_AFTER_REPORT); // below any block gas limit
        if (!ERC165Checker.supportsInterface(receiver, type(IReceiver).interfaceId)) {
            s_transmissions[transmissionId] = Transmission(msg.sender, true, false, gasLimit);
            return false;
        }
        // One packed write, marked delivered before the call: a receiver that reenters report()
        // with the same report while handling it meets AlreadyAttempted. Reset below on failure.
        s_transmissions[transmissionId] = Transmission(msg.sender, false, true, gasLimit);
        bytes memory payload = abi.encodeCall(
            IReceiver.onReport, (rawReport[FORWARDER_METADATA_LENGTH:METADATA_LENGTH], rawReport[METADATA_LENGTH:])
        );
        uint256 remaining = gasleft() - GAS_AFTER_REPORT;
        assembly ("memory-safe") {
            // ignore return data: a receiver cannot make the forwarder pay to copy it
            success := call(remaining, receiver, 0, add(payload, 0x20), mload(payload), 0x0, 0x0)
        }
        if (!success) transmission.success = false;
    }

    /// @notice The replay key of a report: keccak256(receiver || workflowExecutionId || reportId).
    /// @param receiver The receiver the report was sent to.
    /// @param workflowExecutionId The report's workflow execution id (metadata bytes 1..33).
    /// @param reportId The report's id (metadata bytes 107..109).
    function getTransmissionId(address receiver, bytes32 workflowExecutionId, bytes2 reportId)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(bytes20(receiver), workflowExecutionId, reportId));
    }

    /// @notice Everything the forwarder recorded about one transmission.
    /// @param receiver The receiver the report was sent to.
    /// @param workflowExecutionId The report's workflow execution id.
    /// @param reportId The report's id.
    function getTransmissionInfo(address receiver, bytes32 workflowExecutionId, bytes2 reportId)
        external
        view
        returns (TransmissionInfo memory info)
    {
        bytes32 transmissionId = getTransmissionId(receiver, workflowExecutionId, reportId);
        Transmission memory t = s_transmissions[transmissionId];
        TransmissionState state;
        if (t.transmitter == address(0)) state = TransmissionState.NOT_ATTEMPTED;
        else if (t.invalidReceiver) state = TransmissionState.INVALID_RECEIVER;
        else state = t.success ? TransmissionState.SUCCEEDED : TransmissionState.FAILED;
        return TransmissionInfo(transmissionId, state, t.transmitter, t.invalidReceiver, t.success, t.gasLimit);
    }

    /// @notice Who last transmitted a report, or the zero address if nobody did.
    /// @param receiver The receiver the report was sent to.
    /// @param workflowExecutionId The report's workflow execution id.
    /// @param reportId The report's id.
    function getTransmitter(address receiver, bytes32 workflowExecutionId, bytes2 reportId)
        external
        view
        returns (address)
    {
        return s_transmissions[getTransmissionId(receiver, workflowExecutionId, reportId)].transmitter;
    }

    function _configId(uint32 donId, uint32 configVersion) internal pure returns (uint64) {
        return (uint64(donId) << 32) | configVersion;
    }
}
