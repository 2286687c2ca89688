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
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

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
        s_gate = new SettlementGate(address(s_forwarder), s_owner, s_workflowId, FRESHNESS);
        s_weth = new TestToken("WETH", "WETH");
        s_usdc = new TestToken("USDC", "USDC");
    }

    function _metadata(bytes32 executionId, uint32 timestamp) internal view returns (bytes memory) {
        return abi.encodePacked(
            uint8(1), executionId, timestamp, DON_ID, CONFIG_VERSION, s_workflowId, WORKFLOW_NAME, s_owner, REPORT_ID
        );
    }

    function _body(uint256 tradeId, uint256 price, uint64 timestamp, bytes32 actionHash)
        internal
        view
        returns (bytes memory)
    {
        return abi.encode(block.chainid, address(s_gate), timestamp, actionHash, abi.encode(tradeId, price));
    }

    function _report(bytes32 executionId, uint256 tradeId, uint256 price) internal view returns (bytes memory) {
        return bytes.concat(
            _metadata(executionId, uint32(block.timestamp)),
            _body(tradeId, price, uint64(block.timestamp), s_actionHash)
        );
    }

    function _context() internal pure returns (bytes memory) {
        return abi.encodePacked(keccak256("configDigest"), uint256(7), bytes32(0));
    }

    function _sign(uint256 key, bytes memory raw, bytes memory context) internal pure returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked(keccak256(raw), context));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v - 27);
    }

    function _sigs(uint256[] memory keys, bytes memory raw) internal pure returns (bytes[] memory sigs) {
        sigs = new bytes[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            sigs[i] = _sign(keys[i], raw, _context());
        }
    }

    function _keys(uint256 a, uint256 b) internal view returns (uint256[] memory keys) {
        keys = new uint256[](2);
        keys[0] = s_keys[a];
        keys[1] = s_keys[b];
    }

    /// @dev Open and fund a 2 WETH trade with bounds [2,500, 3,500].
    function _fundedTrade() internal returns (uint256 tradeId) {
        s_weth.mint(s_seller, 2e18);
        s_usdc.mint(s_buyer, 7_000e18);
        vm.startPrank(s_seller);
        s_weth.approve(address(s_gate), 2e18);
        tradeId = s_gate.createTrade(
            s_buyer,
            address(s_weth),
            2e18,
            address(s_usdc),
            2_500e18,
            3_500e18,
            uint64(block.timestamp + 600),
            s_actionHash
        );
        vm.stopPrank();
        vm.startPrank(s_buyer);
        s_usdc.approve(address(s_gate), 7_000e18);
        s_gate.fundTrade(tradeId);
        vm.stopPrank();
    }
}
