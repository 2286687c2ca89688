// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Test} from "forge-std/Test.sol";
import {Forwarder} from "../src/Forwarder.sol";
import {SettlementGate} from "../src/SettlementGate.sol";
import {TestToken} from "../src/test/TestToken.sol";

/// @notice Shared fixture: a forwarder with a 4-node DON (f=1), a settlement gate, two tokens,
/// and helpers that build and sign reports exactly as docs/internals.md specifies.
abstract contract BaseTest is Test {
    uint32 internal constant DON_ID = 1;
    uint32 internal constant CONFIG_VERSION = 1;
    uint8 internal constant F = 1;
    bytes10 internal constant WORKFLOW_NAME = "settlement";
    bytes2 internal constant REPORT_ID = 0x0001;
    uint32 internal constant FRESHNESS = 300;
    uint64 internal constant SEQUENCE = 7;
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant MIN_PRICE = 2_500e18;
    uint256 internal constant MAX_PRICE = 3_500e18;
    uint256 internal constant BASE_AMOUNT = 2e18;
    uint256 internal constant MAX_QUOTE = 7_000e18; // 2 * 3,500

    Forwarder internal s_forwarder;
    SettlementGate internal s_gate;
    TestToken internal s_weth;
    TestToken internal s_usdc;
    uint256[] internal s_keys;
    address[] internal s_signers;
    bytes32 internal s_workflowId = keccak256("settlement");
    address internal s_owner = makeAddr("workflowOwner");
    address internal s_seller = makeAddr("seller");
    address internal s_buyer = makeAddr("buyer");
    bytes32 internal s_actionHash = keccak256("proposal");

    function setUp() public virtual {
        vm.warp(1_800_000_000);
        s_forwarder = new Forwarder();
        for (uint256 i = 1; i <= 4; ++i) {
            s_keys.push(i * 1111);
            s_signers.push(vm.addr(i * 1111));
        }
        s_forwarder.setConfig(DON_ID, CONFIG_VERSION, F, s_signers);
        s_gate = new SettlementGate(address(s_forwarder), s_owner, s_workflowId, FRESHNESS, DON_ID, CONFIG_VERSION);
        s_weth = new TestToken("Wrapped Ether", "WETH");
        s_usdc = new TestToken("USD Coin", "USDC");
        s_gate.setTokenAllowed(address(s_weth), true);
        s_gate.setTokenAllowed(address(s_usdc), true);
    }

    // ------------------------------------------------------------------ reports

    /// @dev 109 bytes, packed: version | executionId | timestamp | donId | configVersion |
    /// workflowId | workflowName | workflowOwner | reportId.
    function _metadataFor(bytes32 executionId, uint32 timestamp, uint32 donId, uint32 configVersion)
        internal
        view
        returns (bytes memory)
    {
        return abi.encodePacked(
            uint8(1), executionId, timestamp, donId, configVersion, s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID
        );
    }

    function _metadata(bytes32 executionId, uint32 timestamp) internal view returns (bytes memory) {
        return _metadataFor(executionId, timestamp, DON_ID, CONFIG_VERSION);
    }

    /// @dev abi.encode(chainId, receiver, timestamp, actionHash, abi.encode(tradeId, price)).
    function _body(uint256 tradeId, uint256 price, uint64 timestamp, bytes32 actionHash)
        internal
        view
        returns (bytes memory)
    {
        return abi.encode(block.chainid, address(s_gate), timestamp, actionHash, abi.encode(tradeId, price));
    }

    function _executionId(uint64 round) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(s_workflowId, s_actionHash, round));
    }

    /// @dev A settlement report for s_gate, built now.
    function _report(bytes32 executionId, uint256 tradeId, uint256 price) internal view returns (bytes memory) {
        return bytes.concat(
            _metadata(executionId, uint32(block.timestamp)),
            _body(tradeId, price, uint64(block.timestamp), s_actionHash)
        );
    }

    /// @dev configDigest (32) | sequence (32) | 32 zero bytes; the digest as docs/internals.md.
    function _context() internal view returns (bytes memory) {
        bytes32 configDigest =
            keccak256(abi.encode(block.chainid, address(s_forwarder), DON_ID, CONFIG_VERSION, F, s_signers));
        return abi.encodePacked(configDigest, uint256(SEQUENCE), bytes32(0));
    }

    /// @dev r | s | (v - 27), signed over keccak256(keccak256(raw) | context), no EIP-191 prefix.
    function _sign(uint256 key, bytes memory raw, bytes memory context) internal pure returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked(keccak256(raw), context));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v - 27);
    }

    function _sigs(uint256[] memory keys, bytes memory raw) internal view returns (bytes[] memory sigs) {
        bytes memory context = _context();
        sigs = new bytes[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            sigs[i] = _sign(keys[i], raw, context);
        }
    }

    function _keys(uint256 a, uint256 b) internal view returns (uint256[] memory keys) {
        keys = new uint256[](2);
        keys[0] = s_keys[a];
        keys[1] = s_keys[b];
    }

    /// @dev Submit with signers 0 and 1.
    function _submit(address receiver, bytes memory raw) internal {
        s_forwarder.report(receiver, raw, _context(), _sigs(_keys(0, 1), raw));
    }

    /// @dev The config word vouch's Forwarder appends to onReport's arguments.
    function _configWord(uint32 donId, uint32 configVersion) internal pure returns (bytes32) {
        return bytes32(uint256((uint64(donId) << 32) | configVersion));
    }

    /// @dev Call `receiver`.onReport as the forwarder does (the arguments, then the config word of
    /// DON_ID / CONFIG_VERSION), pranking as the forwarder; reverts as the receiver did.
    function _onReportAsForwarder(address receiver, bytes memory metadata, bytes memory body) internal {
        bytes memory data = bytes.concat(
            abi.encodeWithSignature("onReport(bytes,bytes)", metadata, body), _configWord(DON_ID, CONFIG_VERSION)
        );
        vm.prank(address(s_forwarder));
        (bool ok, bytes memory ret) = receiver.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    function _state(address receiver, bytes32 executionId) internal view returns (Forwarder.TransmissionState) {
        return s_forwarder.getTransmissionInfo(receiver, executionId, REPORT_ID).state;
    }

    // ------------------------------------------------------------------ trades

    /// @dev Open a 2 WETH trade with bounds [2,500, 3,500], deadline in 600 s.
    function _openTrade() internal returns (uint256 tradeId) {
        s_weth.mint(s_seller, BASE_AMOUNT);
        vm.startPrank(s_seller);
        s_weth.approve(address(s_gate), BASE_AMOUNT);
        tradeId = s_gate.createTrade(
            s_buyer,
            address(s_weth),
            BASE_AMOUNT,
            address(s_usdc),
            MIN_PRICE,
            MAX_PRICE,
            uint64(block.timestamp + 600),
            s_actionHash
        );
        vm.stopPrank();
    }

    function _fund(uint256 tradeId) internal {
        s_usdc.mint(s_buyer, MAX_QUOTE);
        vm.startPrank(s_buyer);
        s_usdc.approve(address(s_gate), MAX_QUOTE);
        s_gate.fundTrade(tradeId);
        vm.stopPrank();
    }

    function _fundedTrade() internal returns (uint256 tradeId) {
        tradeId = _openTrade();
        _fund(tradeId);
    }

    function _status(uint256 tradeId) internal view returns (SettlementGate.Status) {
        return s_gate.getTrade(tradeId).status;
    }
}
