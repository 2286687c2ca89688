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
    /// @notice The signer set's lookup table could not be built or stored.
    error NoSignerTable();

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

    /// @notice The contract's type and version.
    string public constant typeAndVersion = "vouch Forwarder 1.2.0";

    uint256 internal constant MAX_ORACLES = 31;
    uint256 internal constant METADATA_LENGTH = 109;
    // slither-disable-next-line unused-state (used as a calldata slice bound, which slither misses)
    uint256 internal constant FORWARDER_METADATA_LENGTH = 45;
    uint256 internal constant SIGNATURE_LENGTH = 65;
    /// @dev secp256k1n / 2: a larger s is the malleable twin of a valid signature.
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 internal constant FAILED_SIGNATURE = 1;
    uint256 internal constant FAILED_HIGH_S = 2;
    uint256 internal constant FAILED_SIGNER = 3;
    uint256 internal constant FAILED_DUPLICATE = 4;
    /// @dev Entries of a config's signer lookup table (one byte each: a 1-based signer position).
    uint256 internal constant TABLE_SIZE = 256;
    /// @dev Gas kept back for the bookkeeping and the event after the receiver call.
    uint256 internal constant GAS_AFTER_REPORT = 5_000;
    /// @dev Least gas routing starts with, exactly Keystone's: its route() reverts unless
    /// gasleft() - INTERNAL_GAS_REQUIREMENTS (30k) >= MINIMUM_GAS_LIMIT (30k + 3 x 30k + 10k), i.e.
    /// below 160k. The ERC-165 probes take up to 2 x 30k, so an honest receiver can never be
    /// starved into INVALID_RECEIVER (final), and a report vouch refuses Keystone refuses too.
    uint256 internal constant MINIMUM_GAS_LIMIT = 30_000 + (30_000 + 30_000 * 3 + 10_000);
    /// @dev Gas given to each ERC-165 probe, as OpenZeppelin's ERC165Checker.
    uint256 internal constant PROBE_GAS = 30_000;

    /// @dev Per (donId, configVersion), one slot: the address of a data contract holding the
    /// config (bits 0-159), f (160-167), n (168-175) and the lookup table's hash multiplier
    /// (176-255). The data contract's code is 0x00 || 20 zero bytes || signers (n x 20 bytes) ||
    /// table (256 bytes),
    /// with table[(signer * multiplier) >> 160 & 0xff] = the signer's 1-based position. Reading a
    /// report's config therefore costs one slot and one code copy, whatever f is, instead of a
    /// slot per signature.
    mapping(uint64 configId => uint256 config) internal s_configs;
    mapping(bytes32 transmissionId => Transmission transmission) internal s_transmissions;

    constructor() Ownable(msg.sender) {}

    /// @notice Set the signer set and fault tolerance of one (donId, configVersion).
    /// @dev Each version is kept separately, so reports in flight under an older version stay valid.
    /// Replacing a version's config drops its old signers at once.
    /// @param donId The DON's id.
    /// @param configVersion The config version.
    /// @param f Faulty signers tolerated; reports need exactly f+1 signatures.
    /// @param signers The signer addresses, at least 3f+1 and at most 31, none zero, no repeats.
    function setConfig(uint32 donId, uint32 configVersion, uint8 f, address[] calldata signers) external onlyOwner {
        if (f == 0) revert FaultToleranceMustBePositive();
        if (signers.length > MAX_ORACLES) revert ExcessSigners(signers.length, MAX_ORACLES);
        if (signers.length <= 3 * uint256(f)) revert InsufficientSigners(signers.length, 3 * uint256(f) + 1);
        for (uint256 i = 0; i < signers.length; ++i) {
            if (signers[i] == address(0)) revert InvalidSigner(address(0));
            for (uint256 j = 0; j < i; ++j) {
                if (signers[j] == signers[i]) revert DuplicateSigner(signers[i]);
            }
        }
        (uint256 multiplier, bytes memory table) = _lookupTable(signers);
        address data = _store(abi.encodePacked(hex"00", bytes20(0), _packed(signers), table));
        s_configs[_configId(donId, configVersion)] =
            uint256(uint160(data)) | (uint256(f) << 160) | (signers.length << 168) | (multiplier << 176);
        emit ConfigSet(donId, configVersion, f, signers);
    }

    /// @notice Remove the config of one (donId, configVersion): its reports are no longer accepted.
    /// @param donId The DON's id.
    /// @param configVersion The config version.
    function clearConfig(uint32 donId, uint32 configVersion) external onlyOwner {
        delete s_configs[_configId(donId, configVersion)];
        emit ConfigSet(donId, configVersion, 0, new address[](0));
    }

    /// @notice The fault tolerance and signers of one (donId, configVersion); f = 0 if unset.
    /// @param donId The DON's id.
    /// @param configVersion The config version.
    function getConfig(uint32 donId, uint32 configVersion) external view returns (uint8 f, address[] memory signers) {
        // the casts below take bit fields out of the packed config word (layout at s_configs)
        uint256 config = s_configs[_configId(donId, configVersion)];
        // forge-lint: disable-next-line(unsafe-typecast)
        f = uint8(config >> 160);
        // forge-lint: disable-next-line(unsafe-typecast)
        signers = new address[](uint8(config >> 168));
        // forge-lint: disable-next-line(unsafe-typecast)
        address data = address(uint160(config));
        for (uint256 i = 0; i < signers.length; ++i) {
            bytes memory word = new bytes(20);
            // slither-disable-next-line assembly (reads 20 bytes of the config's data contract with extcodecopy, which Solidity cannot express)
            assembly ("memory-safe") {
                extcodecopy(data, add(word, 0x20), add(21, mul(i, 20)), 20)
            }
            // forge-lint: disable-next-line(unsafe-typecast)
            signers[i] = address(bytes20(word));
        }
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
        bool success = _route(transmissionId, receiver, rawReport, uint64(bytes8(rawReport[37:45])));
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
        uint256 config = s_configs[configId];
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 f = uint8(config >> 160);
        if (f == 0) revert InvalidConfig(configId);
        if (f + 1 != signatures.length) revert InvalidSignatureCount(f + 1, signatures.length);
        bytes32 digest = keccak256(abi.encodePacked(keccak256(rawReport), reportContext));
        (uint256 failure, uint256 index, bytes32 value) = _checkSignatures(config, digest, signatures);
        if (failure == FAILED_SIGNATURE) revert InvalidSignature(signatures[index]);
        if (failure == FAILED_HIGH_S) revert HighSSignature(value);
        if (failure == FAILED_SIGNER) revert InvalidSigner(address(uint160(uint256(value))));
        if (failure == FAILED_DUPLICATE) revert DuplicateSigner(address(uint160(uint256(value))));
    }

    /// @dev The signature loop, in assembly because it runs f+1 times per report: per signature
    /// only the precompile, a table lookup in memory and a few words of calldata. The first
    /// failure stops it and is returned (kind, signature index, offending s or signer).
    /// A signature is r || s || v, v in {0, 1}; high s and no-address recoveries are refused.
    function _checkSignatures(uint256 config, bytes32 digest, bytes[] calldata signatures)
        internal
        view
        returns (uint256 failure, uint256 index, bytes32 value)
    {
        // slither-disable-next-line assembly (the signature loop, run f+1 times per report: ecrecover precompile, table lookup and bitmap in memory without allocations; fuzzed and checked against OpenZeppelin ECDSA in Forwarder.t.sol)
        assembly ("memory-safe") {
            // memory: signers (1 + n entries of 20 bytes, entry 0 is zero) | table (256) |
            // precompile input (128) | output (32). Each step's temporaries live in their own
            // block so the code also compiles without the optimizer (forge coverage).
            let signerList := mload(0x40)
            let table := add(signerList, mul(add(and(shr(168, config), 0xff), 1), 20))
            let input := add(table, 256)
            mstore(0x40, add(input, 160))
            extcodecopy(and(config, 0xffffffffffffffffffffffffffffffffffffffff), signerList, 1, sub(input, signerList))
            mstore(input, digest)
            let seen := 0
            for {} lt(index, signatures.length) { index := add(index, 1) } {
                {
                    let at := add(signatures.offset, calldataload(add(signatures.offset, shl(5, index))))
                    let v := byte(0, calldataload(add(at, 96)))
                    let wellFormed := and(eq(calldataload(at), SIGNATURE_LENGTH), lt(v, 2))
                    value := calldataload(add(at, 64)) // s
                    if iszero(and(wellFormed, iszero(gt(value, HALF_N)))) {
                        failure := add(1, wellFormed) // FAILED_SIGNATURE, or FAILED_HIGH_S if well formed
                        break
                    }
                    mstore(add(input, 32), add(v, 27))
                    calldatacopy(add(input, 64), add(at, 32), 64) // r, s
                }
                // A failed recovery returns no data and leaves output as it was (zero, or the
                // previous signer, which the returndatasize check discards). Yul evaluates
                // arguments right to left, so the call must be its own statement.
                let signer := staticcall(gas(), 1, input, 128, add(input, 128), 32)
                signer := mul(mload(add(input, 128)), and(signer, eq(returndatasize(), 32)))
                if iszero(signer) {
                    failure := 1 // FAILED_SIGNATURE
                    break
                }
                // The entry must hold this very signer, not another one hashing alike; an empty
                // entry (position 0) points at the zero entry, which no recovered signer equals.
                let position := byte(0, mload(add(table, and(shr(160, mul(signer, shr(176, config))), 0xff))))
                if iszero(eq(shr(96, mload(add(signerList, mul(position, 20)))), signer)) {
                    failure := 3 // FAILED_SIGNER
                    value := signer
                    break
                }
                // slither-disable-next-line incorrect-shift (shl(shift, value): 1 << position, as meant)
                position := shl(position, 1)
                if and(seen, position) {
                    failure := 4 // FAILED_DUPLICATE
                    value := signer
                    break
                }
                seen := or(seen, position)
            }
        }
    }

    /// @dev Deliver a verified report; a reverting receiver is recorded as FAILED, not reverted.
    /// The call is onReport(metadata, body) followed by one word, the verifying config's id
    /// ((donId << 32) | configVersion), so a receiver can pin the DON (ReceiverBase); receivers
    /// that decode only the arguments (Keystone's) ignore it, as ERC-2771 trailers are ignored.
    function _route(bytes32 transmissionId, address receiver, bytes calldata rawReport, uint64 configId)
        internal
        returns (bool success)
    {
        Transmission storage transmission = s_transmissions[transmissionId];
        if (transmission.success || transmission.invalidReceiver) revert AlreadyAttempted(transmissionId);
        if (gasleft() < MINIMUM_GAS_LIMIT) revert InsufficientGasForRouting(transmissionId);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint80 gasLimit = uint80(gasleft() - GAS_AFTER_REPORT); // below any block gas limit
        if (!_isReceiver(receiver)) {
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
        // slither-disable-next-line assembly (appends the config word in place instead of copying the report again; ignores return data so a receiver cannot make the forwarder pay to copy it, as Keystone)
        assembly ("memory-safe") {
            let length := mload(payload)
            mstore(add(add(payload, 0x20), length), configId) // the trailing config word
            mstore(0x40, add(add(payload, 0x40), length))
            success := call(remaining, receiver, 0, add(payload, 0x20), add(length, 0x20), 0x0, 0x0)
        }
        if (!success) transmission.success = false;
    }

    /// @dev ERC-165 as OpenZeppelin's ERC165Checker.supportsInterface, in two probes instead of
    /// three: the receiver must answer true for IReceiver and false for 0xffffffff (true for
    /// IReceiver already implies it implements supportsInterface, ERC-165's first probe).
    function _isReceiver(address receiver) internal view returns (bool) {
        return _probe(receiver, type(IReceiver).interfaceId) && !_probe(receiver, 0xffffffff);
    }

    /// @dev supportsInterface(interfaceId) with PROBE_GAS, false on any failure or short answer.
    function _probe(address target, bytes4 interfaceId) internal view returns (bool yes) {
        // slither-disable-next-line assembly (an ERC-165 probe with a fixed gas allowance that reads at most one word back, as ERC165Checker)
        assembly ("memory-safe") {
            mstore(0x00, shl(224, 0x01ffc9a7)) // supportsInterface(bytes4)
            mstore(0x04, interfaceId)
            let ok := staticcall(PROBE_GAS, target, 0x00, 0x24, 0x00, 0x20)
            yes := and(ok, and(gt(returndatasize(), 0x1f), iszero(iszero(mload(0x00)))))
        }
    }

    /// @dev A hash multiplier under which no two signers share a table entry, and that table.
    function _lookupTable(address[] calldata signers) internal pure returns (uint256 multiplier, bytes memory table) {
        for (uint256 attempt = 0; attempt < 256; ++attempt) {
            multiplier = uint80(uint256(keccak256(abi.encode(attempt)))) | 1;
            table = new bytes(TABLE_SIZE);
            bool clash = false;
            for (uint256 i = 0; i < signers.length && !clash; ++i) {
                uint256 slot = ((uint256(uint160(signers[i])) * multiplier) >> 160) & 0xff;
                clash = table[slot] != 0;
                // forge-lint: disable-next-line(unsafe-typecast)
                table[slot] = bytes1(uint8(i + 1));
            }
            if (!clash) return (multiplier, table);
        }
        revert NoSignerTable(); // 256 attempts at < 85% clash odds each (n <= 31): unreachable in practice
    }

    /// @dev The signers as 20 bytes each, back to back (encodePacked pads array elements to 32).
    function _packed(address[] calldata signers) internal pure returns (bytes memory packed) {
        packed = new bytes(signers.length * 20);
        for (uint256 i = 0; i < signers.length; ++i) {
            address signer = signers[i];
            // slither-disable-next-line assembly (writes 20 address bytes in place, keeping the bytes after them)
            assembly ("memory-safe") {
                let at := add(add(packed, 0x20), mul(i, 20))
                // write the 20 address bytes, keep whatever follows them
                mstore(at, or(shl(96, signer), and(mload(at), sub(shl(96, 1), 1))))
            }
        }
    }

    /// @dev Deploy `code` as the runtime code of a new contract (SSTORE2); its address.
    function _store(bytes memory code) internal returns (address data) {
        // PUSH2 len DUP1 PUSH1 12 PUSH1 0 CODECOPY PUSH1 0 RETURN, then the code (starting with
        // STOP). PUSH1 0, not PUSH0: the initcode runs on pre-Shanghai chains too.
        bytes memory init = abi.encodePacked(hex"61", uint16(code.length), hex"80600c6000396000f3", code);
        // slither-disable-next-line assembly (CREATE of the data contract from hand-written initcode (SSTORE2); the initcode avoids PUSH0)
        assembly ("memory-safe") {
            data := create(0, add(init, 0x20), mload(init))
        }
        if (data == address(0)) revert NoSignerTable();
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
